// A WAL as the tool reads it, one shard's or the log all shards share (the shared layout, where
// each record's stream is its shard): every record through wal::WalReader (which opens the
// segment files read-only and never truncates), and the verdict of `wal verify`.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/shardtx/cli.h"
#include "wal/reader.h"

namespace shardtx::cli {

struct WalVerdict {
  uint64_t records = 0;     // valid records read
  wal::Lsn first_lsn = 0;   // of the first of them (0: none)
  wal::Lsn end_lsn = 0;     // of the last valid record (0: none)
  uint64_t bytes_read = 0;  // segment bytes read
  // A torn tail: bad bytes after the last record that no later record depends on, as a crash
  // leaves them (Open cuts them off). Not damage.
  bool torn = false;
  std::string torn_file;
  uint64_t torn_offset = 0;
  // Corruption: a bad record (or segment) followed by records written after it was durable.
  bool corrupt = false;
  std::string detail;  // the reader's message: file and offset
  wal::Lsn lost_from = 0, lost_to = 0;

  std::string Text() const;  // "clean", "torn tail: FILE offset N", "CORRUPT: ..."
  std::string Json() const;  // the fields above, as members of a JSON object (no braces)
};

// Reads every record of the log in wal_dir from `from_lsn` (0: the oldest), calling `each`
// for each (it returns false to stop early, verdict then partial). Corruption is a verdict, not
// an error; errors are I/O failures and a log truncated past from_lsn (kNotFound).
using RecordFn = std::function<bool(const wal::WalRecord&)>;
absl::StatusOr<WalVerdict> ReadShardWal(const std::string& wal_dir, wal::Lsn from_lsn,
                                        const RecordFn& each, Progress* progress = nullptr);

// One stream's records in a shared log (one shard's).
struct StreamFigures {
  uint64_t records = 0;
  wal::Lsn first_lsn = 0, end_lsn = 0;  // of its first and last record (0: none)
};

// What `wal verify` finds in one shard's log, or in the shared log: the verdict, and the
// records that passed their checksum but whose payload does not decode, or, in a shared log,
// whose stream is no shard of the database (Database::Open would fail on them).
struct ShardWalReport {
  WalVerdict verdict;
  std::vector<std::string> malformed;  // the decoder's messages, naming the LSN
  // A shared log's records by stream (index: shard); empty for a shard's own log.
  std::vector<StreamFigures> streams;
  bool damaged() const { return verdict.corrupt || !malformed.empty(); }
  std::string Text(uint32_t shard) const;  // "shard 0: 12 records, LSN 1..12, clean"
  std::string Json(uint32_t shard) const;  // one JSON object
  // The shared log's: "shared log (all 4 shards): 40 records, LSN 1..40, clean; records by
  // shard: 0:10 1:10 2:10 3:10", and one JSON object with the records by shard.
  std::string SharedText() const;
  std::string SharedJson() const;
};
// Verifies the log in wal_dir: a shard's own (shared_streams 0) or the log shared by
// `shared_streams` shards, where a record of another stream is malformed.
absl::StatusOr<ShardWalReport> VerifyShardWal(const std::string& wal_dir, Progress* progress,
                                              uint32_t shared_streams = 0);

}  // namespace shardtx::cli
