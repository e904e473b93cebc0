// SegmentFiles: the segment files of one log directory through their life: cleaned up at open,
// created (preallocated) or recycled, activated, written and synced, truncated. WalWriter frames
// and batches records; this class decides where their bytes go.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "shardtx/env.h"
#include "util/mutex.h"
#include "wal/format.h"
#include "wal/reader.h"

namespace shardtx::wal {

// Invariants (from a successful Open on):
//  - The live segments, ascending by number and by first LSN, hold every record from
//    oldest_lsn() on; the last of them is the active segment, the only one written, and there
//    is always one. A segment is synced before the next one is activated, so a valid record in
//    a later segment proves every earlier segment complete.
//  - Every activation writes a new header with a fresh salt at the start of a file that holds
//    no live record, so a stale record left in it (from a recycled file, or an earlier
//    activation) fails its checksum.
//  - A file exists as a segment (created, recycled, removed) only once its directory is synced.
//  - At most one spare: the next segment file, preallocated but not yet activated.
//  - A segment file created here is preallocated (fallocate), which leaves its blocks
//    unwritten. The first write into an unwritten block makes the next fdatasync also persist
//    the file's extent map (measured on this project's ext4: about 215 us per 4.5 KB write and
//    fdatasync, against 165 us on blocks written before). So the active segment is written
//    with zeros ahead of its write position, kZeroChunk at a time: the extent change is paid
//    once per chunk, not once per group commit. Zeros read as the end of the log, as the
//    unwritten blocks did. A recycled file was written in its earlier use and needs none.
//
// Thread safety: two sides.
//  - The writing side (Fits, seed, unsynced, Write, Sync, Roll, has_spare, PrepareSpare,
//    WriteCloseMark) owns the active segment and the spare. One thread at a time, serialised by
//    the caller (WalWriter's flush token); these take no lock.
//  - Truncate, oldest_lsn and stats may be called from any thread, also while the writing side
//    runs: the list of live segments and the free files are guarded by an internal mutex, which
//    nothing holds across file I/O.
class SegmentFiles {
 public:
  struct Options {
    uint64_t segment_size = 0;  // validated by the caller (WalOptions)
    bool recycle = true;        // keep files freed by Truncate for reuse (WalOptions)
  };

  struct Stats {
    uint64_t writes = 0;  // Write calls (one pwrite each)
    uint64_t syncs = 0;   // fdatasyncs of record bytes (by Sync, and by Roll before it moves on)
    uint64_t created = 0;
    uint64_t recycled = 0;
    uint64_t removed = 0;
    uint64_t fallocate_fallbacks = 0;  // segments zero-filled because fallocate was refused
    uint64_t zeroed_ahead = 0;         // bytes of zeros written ahead of the write position
  };

  // Zeros are written ahead of the write position in pieces of this size (see above).
  static constexpr uint64_t kZeroChunk = 256 << 10;

  SegmentFiles(Env* env, std::string dir, const Options& options);
  SegmentFiles(const SegmentFiles&) = delete;
  SegmentFiles& operator=(const SegmentFiles&) = delete;

  // Takes over the directory after `tail` (from a WalReader that read to the end), once, before
  // any other call. Creates the directory durably; removes segment files after the tail (spares)
  // or renames them to *.lost when they may hold records (a point-in-time recovery skipped
  // them); adopts *.free files for reuse; syncs the last segment (what the reader found may
  // have come from the page cache); and activates a new segment at tail.next_lsn, synced. The
  // bytes after the tail are never overwritten. Errors: the Env's.
  absl::Status Open(const WalTail& tail);

  const std::string& dir() const { return dir_; }

  // --- The writing side (one thread at a time, see above) ---

  // Whether `bytes` more fit in the active segment.
  bool Fits(uint64_t bytes) const { return active_.offset + bytes <= options_.segment_size; }
  // The checksum seed of records in the active segment (format.h: RecordSeed).
  uint64_t seed() const { return active_.seed; }
  // Whether bytes written to the active segment are not yet synced.
  bool unsynced() const { return active_.unsynced; }

  // Writes `bytes` (sealed records) at the active segment's write position and moves it on.
  // REQUIRES: Fits(bytes.size()).
  absl::Status Write(absl::string_view bytes) {
    absl::Status s = active_.file->Write(active_.offset, bytes);
    if (!s.ok()) return s;
    writes_.fetch_add(1, std::memory_order_relaxed);
    active_.offset += bytes.size();
    active_.unsynced = true;
    if (active_.offset > active_.zeroed) return ZeroAhead();
    return absl::OkStatus();
  }

  // Syncs what was written to the active segment (nothing, and no system call, if unsynced()
  // is false).
  absl::Status Sync() {
    if (!active_.unsynced) return absl::OkStatus();
    absl::Status s = active_.file->Sync();
    if (!s.ok()) return s;
    syncs_.fetch_add(1, std::memory_order_relaxed);
    active_.unsynced = false;
    return absl::OkStatus();
  }

  // Seals the active segment (synced first) and activates the next one, whose first record
  // will be `first_lsn`: the spare if there is one, otherwise a file recycled or created now.
  absl::Status Roll(Lsn first_lsn);

  // Whether the next segment is already prepared.
  bool has_spare() const { return spare_ != 0; }
  // Prepares the next segment file ahead of need, so that Roll does not create it on the
  // commit path. A failure is not final: Roll tries again.
  absl::Status PrepareSpare();

  // Writes and syncs the close mark (format.h) at the write position, saying that `next_lsn`
  // would come next and nothing follows; nothing if a record header no longer fits. REQUIRES:
  // everything written is synced, and nothing is written after it.
  absl::Status WriteCloseMark(Lsn next_lsn);

  // --- Any thread ---

  // Frees (recycles up to two files as *.free, or removes) every live segment whose records
  // all lie below `lsn`, oldest first, so that a crash leaves a suffix of the log. Never the
  // active segment, nor the one before it until a record of the active one is durable
  // (`durable_lsn`, the caller's): only then is the active segment's header known to be on
  // disk, and without it a crash would leave no valid segment. Errors: the Env's.
  absl::Status Truncate(Lsn lsn, Lsn durable_lsn);

  // First LSN of the oldest live segment. REQUIRES: Open succeeded.
  Lsn oldest_lsn() const;

  Stats stats() const;
  uint64_t syncs() const { return syncs_.load(std::memory_order_relaxed); }

 private:
  struct Active {
    std::unique_ptr<File> file;
    uint64_t number = 0;
    uint64_t seed = 0;
    uint64_t offset = 0;  // next write position
    uint64_t zeroed = 0;  // [0, zeroed) of the file holds written blocks (see the invariants)
    bool unsynced = false;
  };

  // Writes zeros from the write position to the next kZeroChunk boundary (or the segment's
  // end), and moves active_.zeroed there (writing side).
  absl::Status ZeroAhead();

  // Activates segment active_.number + 1 for records from `first_lsn` on (writing side).
  absl::Status ActivateNext(Lsn first_lsn);
  // Makes segment file `number` exist, preallocated and durable (writing side). Returns whether
  // all its blocks were written before (a recycled file, or zero-filled after fallocate was
  // refused), that is, whether it needs no ZeroAhead.
  absl::StatusOr<bool> CreateFile(uint64_t number);

  Env* const env_;
  const std::string dir_;
  const Options options_;

  mutable Mutex mu_;
  // (number, first LSN) of the live segments, ascending; the last is the active one.
  std::deque<std::pair<uint64_t, Lsn>> live_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> free_ ABSL_GUARDED_BY(mu_);  // paths of files freed for reuse

  // The writing side's.
  Active active_;
  uint64_t spare_ = 0;  // number of a preallocated, not yet activated segment (0: none)
  bool spare_written_ = false;  // CreateFile's answer for the spare

  std::atomic<uint64_t> writes_{0}, syncs_{0}, created_{0}, recycled_{0}, removed_{0};
  std::atomic<uint64_t> fallbacks_{0}, zeroed_ahead_{0};
};

}  // namespace shardtx::wal
