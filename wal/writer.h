// WalWriter: appends records to a shard's log with group commit. Many threads append at once;
// one flusher thread writes each batch with one pwrite and covers it with one fdatasync while
// the next batch fills. A failed write or sync poisons the writer for good. Where the bytes go
// (segment files, their creation, rolling and truncation) is SegmentFiles' (segment_files.h).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "shardtx/env.h"
#include "util/histogram.h"
#include "util/mutex.h"
#include "util/wait_word.h"
#include "wal/format.h"
#include "wal/reader.h"
#include "wal/segment_files.h"

namespace shardtx::wal {

enum class Durability {
  kSync,      // the caller waits (WaitDurable) until the record is fsynced
  kAsync,     // the flusher writes and fsyncs it promptly; the caller does not wait
  kNone,      // the flusher writes it promptly; made durable only by a later sync
  kDeferred,  // no wake-up at all: written and synced with whatever batch comes next (a sync,
              // an async or none append, a full buffer, Close); for records whose durability
              // a later synced record, or nothing, depends on
};

struct WalOptions {
  // Segment size; segments are preallocated to this size. Multiple of 8, at least 64 KiB.
  uint64_t segment_size = 64ull << 20;
  // Largest payload accepted by Append (kInvalidArgument above). At most segment_size - 96.
  uint64_t max_record_size = 16ull << 20;
  // Appenders wait (back-pressure) while this many bytes are buffered and not yet written.
  uint64_t buffer_limit = 8ull << 20;
  // Reuse segments freed by Truncate as future segments instead of deleting them.
  bool recycle_segments = true;
  // Streams the log carries (format.h): each record belongs to one, numbered below this, and
  // each stream states its own truncation floor. A log shared by several shards has a stream
  // per shard. In [1, 65536].
  uint32_t streams = 1;
  // Called each time records become durable, with the new durable LSN, before any WaitDurable
  // for those records returns: one call at a time, in LSN order, on whichever thread wrote the
  // batch (the flusher, or a committer inside WaitDurable, holding whatever locks it holds).
  // Must not call into this writer; it delays the next batch, so keep it short.
  std::function<void(Lsn)> on_durable;
  // Called once when a write or sync fails and poisons the log, with its error, after every
  // on_durable call (records not reported durable by then never will be): on the thread that
  // wrote the failed batch, holding no lock of this writer (a committer in WaitDurable holds
  // whatever else it holds), after every Append waiting for buffer space has been woken to
  // fail. So it may take a lock that Append's callers hold. Must not call into this writer.
  std::function<void(const absl::Status&)> on_poisoned;
};

struct WalStats {
  uint64_t appends = 0;
  uint64_t bytes = 0;           // record bytes appended (headers and padding included)
  uint64_t writes = 0;          // pwrite calls
  uint64_t fsyncs = 0;          // fdatasync calls covering records
  uint64_t max_records_per_fsync = 0;
  double records_per_fsync = 0;
  uint64_t inline_syncs = 0;    // of fsyncs: batches a lone committer wrote on its own thread
  uint64_t segments_created = 0;
  uint64_t segments_recycled = 0;
  uint64_t segments_removed = 0;
  uint64_t fallocate_fallbacks = 0;  // segments zero-filled because fallocate was refused
  uint64_t zeroed_ahead_bytes = 0;   // zeros written ahead of the records in new segments
  Lsn durable_lsn = 0;
  Lsn written_lsn = 0;
  Lsn next_lsn = 0;
  uint64_t unsynced_bytes = 0;  // appended but not yet durable: the async loss window
  std::string fsync_latency_us;  // Histogram::Summary()
};

class WalWriter {
 public:
  // Opens the log in `dir` for appending after `tail` (from a WalReader that read to the end).
  // Always starts a new segment: the bytes after the tail are never overwritten, so no stale
  // record can be mistaken for a new one. Segments after tail.last_segment are removed (spares)
  // or renamed to *.lost (records skipped by a point-in-time recovery).
  static absl::StatusOr<std::unique_ptr<WalWriter>> Open(Env* env, const std::string& dir,
                                                         const WalOptions& options,
                                                         const WalTail& tail);
  // Reads the log to its end (validating it) and opens a writer after it.
  static absl::StatusOr<std::unique_ptr<WalWriter>> OpenAfterScan(Env* env,
                                                                  const std::string& dir,
                                                                  const WalOptions& options);

  // Flushes and syncs what was appended, then stops the flusher.
  ~WalWriter();

  // Appends one record of `type` (1..255) to `stream` and returns its LSN. Does not wait for
  // the disk; call WaitDurable(lsn) for kSync. Errors: kInvalidArgument (type 0, payload too
  // large, stream not below WalOptions::streams), the poisoning I/O error, kFailedPrecondition
  // after Close.
  absl::StatusOr<Lsn> Append(uint8_t type, absl::string_view payload, Durability durability,
                             uint16_t stream = 0);

  // Blocks until the record `lsn` is durable, or returns the I/O error that poisoned the log.
  absl::Status WaitDurable(Lsn lsn);

  // Makes every record appended so far durable.
  absl::Status Sync();

  // Says that `stream` needs no record below `lsn` any more, and recycles (or removes) every
  // segment that no stream and no Retain needs: one whose records all lie below every stream's
  // floor. A stream that has appended nothing at or above its floor needs nothing (until its
  // next append); one that has not stated a floor since Open needs every record of its that is
  // in the log. Never frees the segment being written, nor one holding the last durable record.
  // Errors: kInvalidArgument (stream), the poisoning error, the Env's.
  absl::Status Truncate(Lsn lsn, uint16_t stream = 0);

  // Keeps every record from the returned LSN on in the log until the matching Release, and
  // returns an LSN no higher than `at_most` below which no stream needs any record. REQUIRES:
  // `at_most` appended (or the next LSN to be) and not below an earlier return of Retain still
  // held (it is present).
  Lsn Retain(Lsn at_most);
  void Release(Lsn retained);

  // Flushes, syncs and stops, then marks the end of the log (a close mark, format.h) so that the
  // next reader need not scan the rest of the segment. Later appends fail. Returns the first
  // I/O error seen.
  absl::Status Close();

  // OK while the log is healthy; once a write or sync has failed, the error that poisoned it
  // (every later Append and every WaitDurable not yet satisfied return it too).
  absl::Status status() const;

  WalStats Stats() const;
  // fsyncs done so far (cheap: one relaxed load).
  uint64_t fsyncs() const { return segments_.syncs(); }
  Lsn durable_lsn() const { return durable_lsn_.load(std::memory_order_acquire); }
  // The oldest LSN still on disk.
  Lsn oldest_lsn() const;

 private:
  WalWriter(Env* env, std::string dir, const WalOptions& options);

  // Writing is done by whoever holds the flush token (in_flight_): the flusher thread, or a
  // committer in WaitDurable that found nobody writing. The holder owns flushing_ and is the
  // writing side of segments_. A Batch is what one holder took: the records [first, last].
  struct Batch {
    bool taken = false;
    bool by_committer = false;
    bool sync = false;
    uint64_t seq = 0;
    Lsn first = 0, last = 0;
    Lsn sync_lsn = 0;  // every record below it was durable when the batch was taken
  };
  void FlusherLoop();
  // Poisoned or closed: every waiter must wake and recheck. Bump under mu_, wake after.
  void BumpAllLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WakeAllWaiters();
  bool HasWorkLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes the token and the buffered records; syncs them if `sync` or some record asks.
  Batch TakeBatchLocked(bool sync) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes (and syncs) a taken batch, publishes it, gives the token back and wakes its waiters.
  void RunBatch(const Batch& b) ABSL_LOCKS_EXCLUDED(mu_);
  // Writes one batch of encoded records and syncs it if `sync`. Token holder only.
  absl::Status WriteBatch(std::string* batch, Lsn sync_lsn, bool sync);
  // The lowest LSN some stream or Retain needs (kNoFloor when none needs any).
  Lsn FloorLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static constexpr Lsn kNoFloor = ~Lsn{0};

  const WalOptions options_;

  mutable Mutex mu_;
  CondVar flusher_cv_;  // work for the flusher
  CondVar space_cv_;    // buffer space freed
  // WaitDurable callers sleep on the word of their batch's parity (batch_words_[seq % 2]): the
  // batch being written and synced (number batch_seq_) or the next one. Whoever finishes a
  // batch bumps its word and wakes all of them with one system call; the next batch's waiters
  // are on the other word and sleep on. Counts say whether anyone needs waking.
  uint64_t batch_seq_ ABSL_GUARDED_BY(mu_) = 0;  // number of the batch taken last
  int in_flight_waiters_ ABSL_GUARDED_BY(mu_) = 0;
  int filling_waiters_ ABSL_GUARDED_BY(mu_) = 0;
  WaitWord batch_words_[2];
  std::string buffer_ ABSL_GUARDED_BY(mu_);
  Lsn next_lsn_ ABSL_GUARDED_BY(mu_) = 1;
  Lsn taken_lsn_ ABSL_GUARDED_BY(mu_) = 0;  // last LSN handed to the flusher
  Lsn written_lsn_ ABSL_GUARDED_BY(mu_) = 0;
  bool in_flight_ ABSL_GUARDED_BY(mu_) = false;  // the flush token is taken
  bool spare_wanted_ ABSL_GUARDED_BY(mu_) = false;  // the flusher should preallocate a segment
  bool last_sync_shared_ ABSL_GUARDED_BY(mu_) = false;  // the last sync had several waiters
  bool in_flight_sync_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t flushing_size_ ABSL_GUARDED_BY(mu_) = 0;
  bool sync_wanted_ ABSL_GUARDED_BY(mu_) = false;  // some buffered record needs a sync
  bool flush_wanted_ ABSL_GUARDED_BY(mu_) = false;  // some buffered record needs the flusher
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool flusher_done_ ABSL_GUARDED_BY(mu_) = false;  // nobody will wake new waiters
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  // Per stream: its last record, and the lowest LSN it needs (0: none, until its next append).
  struct StreamFloor {
    Lsn last = 0;
    Lsn need = 0;
  };
  std::vector<StreamFloor> streams_ ABSL_GUARDED_BY(mu_);
  std::multiset<Lsn> retained_ ABSL_GUARDED_BY(mu_);  // Retain's pins
  std::atomic<Lsn> durable_lsn_{0};
  // Durable and reported through on_durable: what WaitDurable waits for. Trails durable_lsn_.
  std::atomic<Lsn> acked_lsn_{0};

  // Its writing side is the flush token's holder's; the rest locks for itself.
  SegmentFiles segments_;
  std::string flushing_;  // owned by the flush token's holder

  // Stats.
  std::atomic<uint64_t> appends_{0}, bytes_{0}, synced_records_{0};
  std::atomic<uint64_t> inline_syncs_{0}, max_batch_{0};
  Histogram fsync_us_;

  std::thread flusher_;
};

}  // namespace shardtx::wal
