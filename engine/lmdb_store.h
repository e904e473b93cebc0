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
#include "engine/stored_value.h"
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

// What ShardStore::Check found: every entry read and verified against its checksum, the
// digest recomputed. Problems are listed one per line, each naming the table and the key.
struct StoreCheck {
  uint64_t entries = 0;     // entries read, outside "meta"
  uint64_t bad_values = 0;  // entries (meta included) whose checksum failed or that are malformed
  StoreDigest recorded;     // the digest the last checkpoint recorded
  StoreDigest computed;     // the digest of what is there
  std::vector<std::string> problems;
  bool ok() const { return problems.empty(); }
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
  // 2: values carry checksums and the store a digest (engine/stored_value.h). A format-1 store
  // is upgraded by Open, in one LMDB transaction.
  static constexpr uint32_t kFormatVersion = 2;

  // Opens (creating if needed, unless options.read_only) the LMDB environment in directory
  // `dir`, upgrading a format-1 store (refused when read_only). kDataLoss if the files are not a
  // valid LMDB environment or its metadata is corrupt (a meta value or the digest fails its
  // checksum, a table of a written store is missing); kFailedPrecondition for a newer format
  // version; kNotFound (read_only) if there is no store. Values are verified when read, not
  // here: opening costs no scan.
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

  // Reads every entry of the store in one consistent view and verifies each against its
  // checksum and all of them against the recorded digest. `progress`, if set, is called with
  // the number of entries read so far every 64 Ki entries. An error status only when the
  // store cannot be read at all; damage found is in the result.
  absl::StatusOr<StoreCheck> Check(const std::function<void(uint64_t)>& progress = nullptr);

  // Reads every entry of a named table (empty if it does not exist). kDataLoss naming the
  // table and key if one fails its checksum.
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ReadTable(
      const std::string& table);

  uint64_t map_size() const { return map_size_; }
  uint64_t map_growths() const { return growths_; }

  // Writes a consistent, compacted copy of the store (one snapshot: the last committed LMDB
  // transaction, which may be a checkpoint chunk newer than its applied_lsn) to `dir`/data.mdb,
  // which must not exist, and syncs it; checkpoints go on meanwhile. A map growth waits for it
  // (30 s at most, then that checkpoint fails and is retried). Streams through LMDB's copy
  // buffers, no whole-file buffer. Defined in engine/shard_copy.cc. Errors: LMDB's, the
  // file system's (kAlreadyExists, kPermissionDenied, kInternal naming the path).
  absl::Status CopyTo(const std::string& dir);
  // The same copy written to `fd` (a file or a pipe; not synced, not closed); `what` names it
  // in errors.
  absl::Status CopyToFd(int fd, const std::string& what);

 private:
  friend class ReadView;
  ShardStore(std::string dir, const StoreOptions& options) : dir_(std::move(dir)), options_(options) {}
  absl::Status Init();
  absl::Status InitTxn(bool* creating);
  // The format recorded in LMDB, 0 for a new store.
  absl::StatusOr<uint32_t> ReadFormat(MDB_txn* txn);
  // Rewrites a format-1 store's values with checks, computes its digest, records format 2.
  absl::Status UpgradeFromFormat1(MDB_txn* txn);
  // Meta values, verified / sealed (engine/stored_value.h).
  absl::StatusOr<std::optional<std::string>> GetMeta(MDB_txn* txn, absl::string_view key);
  absl::Status PutMeta(MDB_txn* txn, absl::string_view key, absl::string_view value);
  absl::Status PutDigest(MDB_txn* txn, const StoreDigest& d);
  // Every meta field: the format, applied_lsn and max_ts, and the digest. A format-2 store
  // always has all four.
  absl::Status PutMetaFields(MDB_txn* txn, const StoreMeta& meta, const StoreDigest& digest);
  // A data value, verified: kDataLoss naming the store and key on a mismatch.
  absl::Status Decode(absl::string_view key, absl::string_view stored, Timestamp* ts,
                      absl::string_view* value) const;
  // The named tables besides "data" and "meta".
  absl::StatusOr<std::vector<std::string>> TableNames(MDB_txn* txn);
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
  StoreDigest digest_;  // what the last committed LMDB write transaction recorded
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
