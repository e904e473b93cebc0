// WalReader: iterates a shard's log from any LSN, validating every record, and reports where
// the live log ends (the tail a WalWriter resumes from).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "shardtx/env.h"
#include "wal/format.h"

namespace shardtx::wal {

class SegmentWindow;  // reader.cc: bounded reads of one segment

struct ReaderOptions {
  // First LSN to return; 0 means the oldest record still on disk. Records below it are
  // validated but not returned.
  Lsn from_lsn = 0;
  // Every LSN from this one on must be in the log (0: no such demand): a log whose oldest
  // segment starts above it is kDataLoss naming the missing LSNs. Segments wholly below it need
  // not be contiguous (a crash inside WalWriter::Truncate, which removes segments oldest first
  // but makes the removals durable only together, may leave any subset of them): those cut off
  // by a missing segment from the run of segments that reaches it are listed in
  // WalTail::segments (so that a writer frees them) but never read. With from_lsn 0, reading
  // starts at the oldest segment of that run.
  Lsn needed_lsn = 0;
  // On corruption (a bad record followed by records written after it was durable), stop at the
  // last good record and report the LSN range lost, instead of failing with kDataLoss.
  bool point_in_time = false;
};

struct WalRecord {
  Lsn lsn = 0;
  uint8_t type = 0;
  uint16_t stream = 0;  // format.h; 0 in a log of one stream
  absl::string_view payload;  // valid until the next call to Next()
};

// Where the live log ends and what the reader cut off. Complete once Next() returned false.
struct WalTail {
  Lsn next_lsn = 1;           // one past the last valid record
  uint64_t last_segment = 0;  // the segment holding the end of the log (0: none yet)
  // Every segment file present, ascending, with its first LSN (spares and lost ones excluded).
  std::vector<std::pair<uint64_t, Lsn>> segments;
  // A torn tail: bad bytes after the last valid record that no later record depends on.
  bool torn = false;
  std::string torn_file;
  uint64_t torn_offset = 0;
  // Point-in-time stop: records [lost_from, lost_to] were skipped as corrupt.
  bool lost = false;
  Lsn lost_from = 0;
  Lsn lost_to = 0;
  // The last LSN of each stream among the records read (returned or not): index = stream, 0 for
  // a stream with none; as long as the largest stream seen + 1.
  std::vector<Lsn> stream_last_lsn;
  uint64_t records_read = 0;  // valid records returned
  uint64_t bytes_read = 0;    // segment bytes read
};

class WalReader {
 public:
  // Opens the log in `dir`. kNotFound if the log was truncated past from_lsn; kDataLoss if a
  // segment is missing or its header is corrupt, or if the log starts above needed_lsn.
  static absl::StatusOr<std::unique_ptr<WalReader>> Open(Env* env, const std::string& dir,
                                                         const ReaderOptions& options);

  // Returns true and fills *rec with the next record, false at the end of the log, or
  // kDataLoss naming the file and offset of a corrupt record.
  absl::StatusOr<bool> Next(WalRecord* rec);

  const WalTail& tail() const { return tail_; }

  ~WalReader();

 private:
  struct Segment {
    uint64_t number;
    Lsn first_lsn;
    uint64_t seed;
  };
  WalReader(Env* env, std::string dir, ReaderOptions options);
  absl::Status Init();
  absl::Status LoadSegment(size_t index);
  // Called at a bad record at offset_ of the current segment, expecting lsn expected_.
  absl::StatusOr<bool> HandleBadRecord();

  Env* const env_;
  const std::string dir_;
  const ReaderOptions options_;
  std::vector<Segment> segments_;
  size_t current_ = 0;
  std::unique_ptr<SegmentWindow> window_;  // the current segment
  uint64_t offset_ = 0;
  Lsn expected_ = 0;
  bool loaded_ = false;
  bool done_ = false;
  WalTail tail_;
};

}  // namespace shardtx::wal
