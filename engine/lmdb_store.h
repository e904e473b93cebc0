// ShardStore: one shard's LMDB environment, the stable page store under the overlay. Written
// only by checkpoints (write transactions of a bounded size, the last of which records
// applied_lsn and is durable when Apply returns); read through pinned read-only transactions.
// Owns every LMDB handle (RAII).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/overlay.h"
#include "lmdb.h"
#include "util/mutex.h"

namespace shardtx::engine {

struct StoreOptions {
  uint64_t initial_map_size = 64ull << 30;  // virtual reservation; grown when it fills
  unsigned max_readers = 1024;              // concurrent pinned snapshots
  // A checkpoint writes its data in LMDB transactions of about this many bytes (0: one
  // transaction), the last of which records applied_lsn.
  uint64_t checkpoint_chunk_bytes = 64ull << 10;
  // Read-only (tools: safe while another process has the store open): MDB_RDONLY; nothing is
  // created or written (not even lock.mdb: without one, no process has the environment open,
  // and the store is read without LMDB's reader locks). Open fails with kNotFound if the store
  // or its tables do not exist; Apply fails.
  bool read_only = false;
  // With read_only, for a store no process has open (the caller knows): MDB_NOLOCK, so that not
  // even lock.mdb's reader table is written. A writer that opens it meanwhile may overwrite
  // pages being read.
  bool no_reader_lock = false;
};

// The checkpoint state recorded in LMDB with the data it describes.
struct StoreMeta {
  uint64_t applied_lsn = 0;  // every WAL record at or below it is in LMDB
  Timestamp max_ts = 0;      // the largest commit timestamp stored
  uint32_t format_version = 0;
};

class ShardStore;

// A pinned LMDB read-only transaction: a consistent view of the store. Returned to the
// store's pool on destruction. Used by one thread at a time (MDB_NOTLS lets it move).
class ReadView {
 public:
  ~ReadView();
  ReadView(const ReadView&) = delete;
  ReadView& operator=(const ReadView&) = delete;

  absl::StatusOr<std::optional<Found>> Get(absl::string_view key);
  // Appends up to `limit` entries from `from` (see Overlay::Scan) to *out, values decoded. Their
  // keys and values point into this view's snapshot: valid while the view lives.
  absl::Status Scan(absl::string_view from, bool inclusive, bool reverse, size_t limit,
                    std::vector<ScanEntry>* out);
  // True if a key in [lower, upper) has a version newer than ts.
  absl::StatusOr<bool> AnyNewerInRange(absl::string_view lower, absl::string_view upper,
                                       Timestamp ts);

 private:
  friend class ShardStore;
  ReadView(ShardStore* store, MDB_txn* txn) : store_(store), txn_(txn) {}
  ShardStore* store_;
  MDB_txn* txn_;
};

class ShardStore {
 public:
  static constexpr uint32_t kFormatVersion = 1;

  // Opens (creating if needed, unless options.read_only) the LMDB environment in directory
  // `dir`. kDataLoss if the files are not a valid LMDB environment or its metadata is corrupt;
  // kFailedPrecondition for a newer format version; kNotFound (read_only) if there is no store.
  static absl::StatusOr<std::unique_ptr<ShardStore>> Open(const std::string& dir,
                                                          const StoreOptions& options);
  ~ShardStore();

  const StoreMeta& meta() const { return meta_; }  // as of the last Apply (or Open)
  // LMDB write transactions committed by checkpoints so far (chunks included).
  uint64_t checkpoint_txns() const { return chunks_.load(std::memory_order_relaxed); }

  // Pins a consistent read view. kResourceExhausted when max_readers views are open.
  absl::StatusOr<std::unique_ptr<ReadView>> Pin();

  // Writes the newest version of every key of the `frozen` overlays, oldest overlay first so
  // newer versions win (deleting tombstoned keys), plus applied_lsn and max_ts. Returns once
  // all of it is durable: the WAL may then be truncated up to applied_lsn. A system crash
  // before that leaves the old applied_lsn and any prefix of the chunks, which redo rewrites.
  // Grows the map when it fills.
  // Also writes `extra_puts`/`extra_dels` into the named sub-database `table` (e.g. prepared
  // transactions) in the same transaction.
  using TableWrite = engine::TableWrite;
  // `between_chunks`, if set, runs after each chunk but the last has committed, with the time
  // that chunk took (from the end of the one before); it may pause (see Shard's pacing).
  using BetweenChunks = std::function<void(std::chrono::steady_clock::duration chunk_time)>;
  absl::Status Apply(const std::vector<const Overlay*>& frozen, uint64_t applied_lsn, Timestamp max_ts,
                     const std::vector<TableWrite>& table_writes = {},
                     const BetweenChunks& between_chunks = nullptr);

  // Reads every entry of a named table (empty if it does not exist).
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ReadTable(
      const std::string& table);

  uint64_t map_size() const { return map_size_; }
  uint64_t map_growths() const { return growths_; }

 private:
  friend class ReadView;
  ShardStore(std::string dir, const StoreOptions& options) : dir_(std::move(dir)), options_(options) {}
  absl::Status Init();
  absl::Status WriteCheckpoint(const std::vector<const Overlay*>& frozen, uint64_t applied_lsn,
                               Timestamp max_ts, const std::vector<TableWrite>& table_writes,
                               const BetweenChunks& between_chunks);
  absl::Status Grow();
  // Makes the last commit durable: its data pages are synced, its meta page (MDB_NOMETASYNC)
  // not yet. For a commit the WAL may be truncated behind.
  absl::Status SyncMetaPage();
  void Release(MDB_txn* txn);

  const std::string dir_;
  const StoreOptions options_;
  std::atomic<uint64_t> chunks_{0};
  MDB_env* env_ = nullptr;
  MDB_dbi data_dbi_ = 0;
  MDB_dbi meta_dbi_ = 0;
  StoreMeta meta_;
  uint64_t map_size_ = 0;
  uint64_t growths_ = 0;
  // LMDB requires that no transaction be active while the map is resized: Grow waits for the
  // active views to end (a counter, not a shared lock, since views move between threads).
  Mutex pool_mu_;
  CondVar pool_cv_{&pool_mu_};
  int active_views_ ABSL_GUARDED_BY(pool_mu_) = 0;
  bool growing_ ABSL_GUARDED_BY(pool_mu_) = false;
  std::vector<MDB_txn*> pool_ ABSL_GUARDED_BY(pool_mu_);  // reset read txns, ready to renew
};

// Errors of LMDB as Status, naming the operation and directory.
absl::Status LmdbError(int rc, absl::string_view op, const std::string& dir);

}  // namespace shardtx::engine
