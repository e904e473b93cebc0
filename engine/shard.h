// Shard: one LMDB environment + the in-memory overlay of committed versions + one WAL (its own,
// or its stream in a log all shards share). Commits append to the WAL and install into the
// active overlay (never LMDB); fuzzy checkpoints freeze the overlay and write it to LMDB (in
// chunks, the last of which records the applied LSN and is durable), pausing between chunks
// while commits flow; Open redoes the WAL above LMDB's applied_lsn (a shared log is read by
// the layer above, which hands the shard its records). Knows nothing of transactions or other
// shards: the transaction layer drives the commit path under commit_mu().
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "engine/checkpointed_deletes.h"
#include "engine/checkpointer.h"
#include "engine/log_record.h"
#include "engine/overlay.h"
#include "engine/released_txns.h"
#include "engine/types.h"
#include "shardtx/env.h"
#include "util/histogram.h"
#include "util/mutex.h"

namespace shardtx::wal {
class WalWriter;
}  // namespace shardtx::wal

namespace shardtx::engine {

// The store's table of a replica's applied Raft position (Shard::raft_applied_locked), one row
// under kRaftAppliedKey, written by checkpoints only once a kRaftEntry was redone. Its value is
// EncodeRaftEntry(position, "") (engine/log_record.h). Read by the shardtx tool's stat too.
inline constexpr char kRaftTable[] = "engine.raft";
inline constexpr char kRaftAppliedKey[] = "applied";
// The same table's row of the last kClosedTs record redone or noted (its payload, log_record.h).
inline constexpr char kRaftClosedKey[] = "closed";

class ShardStore;
class ReadView;

// Hears, in LSN order, that a shard's records up to `lsn` are durable: before any WaitDurable
// for them returns, on whichever thread wrote them (the log's flusher or a committer in
// WaitDurable). Must be quick and must not call into the shard's log.
class DurableListener {
 public:
  virtual ~DurableListener() = default;
  virtual void Durable(uint32_t shard, Lsn lsn) = 0;
  // The shard's log failed (and will report nothing durable again): `error` is why. Called
  // once, after every Durable call, on the thread whose write or sync failed.
  virtual void Poisoned(uint32_t /*shard*/, const absl::Status& /*error*/) {}
};

struct ShardOptions {
  std::string dir;  // the shard's directory: wal/ (unless shared_log) and lmdb/ below it
  Env* env = nullptr;
  DurableListener* durable_listener = nullptr;  // optional; outlives the shard
  // The log: its segment size, and the largest record it accepts.
  uint64_t wal_segment_size = 64ull << 20;
  uint64_t max_record_size = 16ull << 20;
  // The store: LMDB's initial map size (grown when it fills), its reader slots (pinned
  // snapshots), and the size of a checkpoint's LMDB transactions (0: one per checkpoint).
  uint64_t lmdb_map_size = 64ull << 30;
  unsigned max_readers = 1024;
  uint64_t checkpoint_chunk_bytes = 64ull << 10;
  uint64_t checkpoint_wal_bytes = 64ull << 20;
  uint64_t checkpoint_overlay_bytes = 64ull << 20;
  uint64_t overlay_limit_bytes = 256ull << 20;
  absl::Duration checkpoint_interval = absl::Seconds(30);
  // Memory for the keys checkpoints deleted from LMDB (see Shard::checkpointed_deletes_).
  uint64_t checkpointed_deletes_bytes = 8ull << 20;
  // A replicated shard's window of transactions its released Raft entries committed
  // (ReleasedTxns; Shard::ReleasedTxnLocked).
  size_t released_txn_window = 100000;
  // See Options::checkpoint_pace.
  double checkpoint_pace = 1.0;
  // The shard's records go to a log shared with other shards, as the stream numbered after the
  // shard (Options::LogLayout::kShared): Open opens the store only; the owner of the log
  // redoes it (RedoRecovered) and then attaches it (AttachSharedLog). durable_listener is
  // unused (the log's owner reports durability).
  bool shared_log = false;
};

// What the shard needs from the layer above, without knowing it.
class ShardHooks {
 public:
  virtual ~ShardHooks() = default;
  // Blocks until every commit with a timestamp at or below `ts` is installed and visible.
  virtual absl::Status WaitVisible(Timestamp ts) = 0;
  // The tables the layer above keeps in the store with checkpoints (CheckpointTables).
  virtual std::vector<std::string> CheckpointTableNames() = 0;
  // Before redo: the rows of each of those tables as the last checkpoint left them.
  virtual absl::Status LoadTable(uint32_t shard, const std::string& table,
                                 const std::vector<std::pair<std::string, std::string>>& rows) = 0;
  // Records of types other than kCommit met during redo, in LSN order, including those at or
  // below applied_lsn that are still in the WAL (`applied`: their writes are in LMDB already).
  // Returns writes to install into the overlay at `ts` (only when !applied).
  struct RedoInstall {
    Timestamp ts = 0;
    std::vector<Write> writes;
  };
  virtual absl::StatusOr<std::optional<RedoInstall>> Redo(uint32_t shard, Lsn lsn, bool applied,
                                                          uint8_t type,
                                                          absl::string_view payload) = 0;
  // A replica is about to append a released Raft entry holding `records` (in entry order; at
  // least one not a kCommit) and redo it (Shard::CheckRedoLocked), under commit_mu(): OK if
  // Redo will take each record that is not a kCommit, given the state redone so far; else
  // why not (kInvalidArgument: malformed; kFailedPrecondition: it does not fit the state;
  // kUnimplemented: a type these hooks do not redo on a replica). Nothing of the entry reaches
  // the WAL unless this is OK. Default: every such record is kUnimplemented (no transaction
  // layer).
  virtual absl::Status CheckRedo(uint32_t shard, absl::Span<const EntryRecord> records);
  // Shard::ReplaceState is about to recover the shard's directory afresh (a replica installing
  // a snapshot), under commit_mu(): drop what LoadTable and Redo built for `shard`; they are
  // called again for the new state. Default: nothing.
  virtual void ForgetShardState(uint32_t /*shard*/) {}
  // Called at a checkpoint's freeze, under commit_mu(): table rows to write to LMDB in the
  // checkpoint's transaction, reflecting exactly the records at or below the frozen LSN.
  virtual std::vector<TableWrite> CheckpointTables(uint32_t shard) = 0;
  // The checkpoint whose tables were taken last is committed in LMDB.
  virtual void CheckpointCommitted(uint32_t shard) = 0;
  // The smallest LSN on this shard that must stay in the WAL (e.g. an undecided prepare not
  // yet in LMDB, or a decision some participant may still need), or 0.
  virtual Lsn PinnedLsn(uint32_t shard) = 0;
};

struct RecoveryStats {
  uint64_t records = 0;
  uint64_t bytes = 0;
  double millis = 0;
  Lsn from_lsn = 0;
  Lsn to_lsn = 0;
  bool torn_tail = false;
};

// The shard's log, as its stats report it.
struct LogStats {
  uint64_t appends = 0;
  uint64_t bytes = 0;  // record bytes appended (headers and padding included)
  uint64_t fsyncs = 0;
  double records_per_fsync = 0;
  uint64_t max_records_per_fsync = 0;
  uint64_t inline_syncs = 0;     // fsyncs a lone committer did on its own thread
  uint64_t unsynced_bytes = 0;   // appended, not yet durable
  std::string fsync_latency_us;  // Histogram summary
  uint64_t segments_created = 0;
  uint64_t segments_recycled = 0;
  Lsn durable_lsn = 0;
};

struct ShardStats {
  uint64_t checkpoints = 0;
  // Attempts that returned an error (nothing applied, or applied and then the log
  // truncation failed).
  uint64_t checkpoint_failures = 0;
  uint64_t checkpoint_bytes = 0;  // overlay bytes written to LMDB
  uint64_t checkpoint_txns = 0;   // LMDB write transactions they took (chunks)
  std::string checkpoint_ms;      // Histogram summary
  uint64_t overlay_bytes = 0;     // active + frozen
  uint64_t backpressure_waits = 0;
  uint64_t checkpoint_pauses = 0;     // pauses between LMDB chunks to let commits through
  uint64_t checkpoint_paused_ms = 0;  // their total length
  uint64_t validation_lmdb_reads = 0;
  uint64_t snapshot_too_old = 0;
  Lsn applied_lsn = 0;
  uint64_t lmdb_map_size = 0;
  uint64_t lmdb_map_growths = 0;
  RecoveryStats recovery;
  LogStats wal;
};

class Shard {
 public:
  // Opens (creating) the shard in options.dir and redoes its WAL above LMDB's applied_lsn.
  // With options.shared_log, opens the store only: the shard is not usable until
  // AttachSharedLog. `hooks` must outlive the shard.
  static absl::StatusOr<std::unique_ptr<Shard>> Open(uint32_t id, const ShardOptions& options,
                                                     ShardHooks* hooks);

  // --- A shared log (options.shared_log), in this order, before StartBackground. ---
  // Redo of the shard's record `lsn` read from the shared log, in LSN order: what Open does
  // with each record of a log of its own (RedoLocked; records above the store's applied LSN
  // count in the recovery stats). Errors: RedoLocked's.
  absl::Status RedoRecovered(Lsn lsn, uint8_t type, absl::string_view payload);
  // The shard appends to `log` (not owned; it outlives the shard's use of it, up to Close) as
  // stream id(): `last_lsn` is the log's last LSN, `torn` whether recovery cut a torn tail.
  void AttachSharedLog(wal::WalWriter* log, Lsn last_lsn, bool torn);
  // Tells the shared log which of the shard's records it must keep (what a checkpoint would:
  // from min(applied LSN + 1, ShardHooks::PinnedLsn) on): once the layer above has resolved
  // what recovery left in doubt, so that a shard with nothing to redo pins nothing.
  absl::Status StateLogFloor();
  // Starts the checkpoint thread (triggers: WAL bytes, overlay bytes, interval). Call once
  // the layer above is ready to answer the hooks.
  void StartBackground();
  // Stops the checkpoint thread; checkpoints first when `checkpoint`. Closes the shard's own
  // log (a shared one is its owner's to close, after every shard's Close). Returns the first
  // error.
  absl::Status Close(bool checkpoint);
  ~Shard();

  uint32_t id() const { return id_; }
  const ShardOptions& options() const { return options_; }

  // Replaces the shard's whole state by what its directory holds after `install` ran (a
  // replica installing a snapshot: `install` puts a copy of another replica's shard in place
  // of options().dir). Waits for a checkpoint in progress and holds commit_mu() throughout:
  // closes the shard's log (synced), runs `install`, then recovers the directory as Open would
  // (into a new store, overlays and log; the hooks hear ForgetShardState, then LoadTable and
  // Redo as at Open) and swaps that state in. `before_publish`, if set, runs with the recovered
  // state's largest timestamp just before readers can see it (under commit_mu()). Views pinned
  // before keep reading the old state (its store stays open until the last of them is
  // released); views pinned after read the new one. Raft position, released transactions, LSNs
  // and the log's stats are the new state's. REQUIRES: the shard's own log (not
  // options.shared_log), no commit in flight on it (a replica's follower: the replicated log
  // refuses commits), and no stream copying it (CopyStoreToFd/CopyWalTo). If `install` fails,
  // the directory as it is then (the old state, for an install that changed nothing) is
  // recovered and swapped in, and `install`'s error returned. If recovery fails, the shard
  // keeps its old state for reads (the hooks' state of it is whatever the failed recovery
  // rebuilt), its log stays closed (appends fail) and the error is returned: reopen the
  // database.
  absl::Status ReplaceState(const std::function<absl::Status()>& install,
                            const std::function<void(Timestamp)>& before_publish)
      ABSL_LOCKS_EXCLUDED(commit_mu_, checkpoint_mu_);
  // Largest commit timestamp in LMDB or the redone WAL.
  Timestamp recovered_max_ts() const ABSL_NO_THREAD_SAFETY_ANALYSIS { return recovered_max_ts_; }

  // A consistent read view of the shard at `snapshot`.
  struct View {
    View();
    ~View();
    Timestamp snapshot = 0;
    // Newest first: the active overlay and those frozen by a checkpoint in progress (rarely
    // more than one), held inline so that pinning a view allocates nothing for them.
    absl::InlinedVector<std::shared_ptr<const Overlay>, 3> overlays;
    // The store `lmdb` reads (kept alive by the view: ReplaceState may replace the shard's).
    std::shared_ptr<ShardStore> store;
    std::unique_ptr<ReadView> lmdb;
  };
  // kAborted "snapshot too old" when a checkpoint already replaced versions older than
  // `snapshot` in LMDB (the caller retries with a newer snapshot).
  absl::StatusOr<std::unique_ptr<View>> Pin(Timestamp snapshot);
  // The visible version of `key` (a tombstone means deleted), or nullopt.
  static absl::StatusOr<std::optional<Found>> Get(View* view, absl::string_view key);
  // Visible live entries after (or at, if inclusive) `from` in the given direction (empty
  // `from` in reverse: from the last key), in order, read from every layer at once: up to
  // `limit` entries per layer, merged (the newest layer wins a key; tombstones hide it).
  struct ScanBatch {
    // Empty only when done. The keys and values point into the view's overlays or its LMDB
    // snapshot: valid until the view is released.
    std::vector<std::pair<absl::string_view, absl::string_view>> entries;
    bool done = false;   // no entry lies beyond this batch
    std::string resume;  // when !done: continue after this key (exclusive)
    // Each layer's entries as the merge sees them; kept here so their capacity is reused.
    std::vector<std::vector<ScanEntry>> layers;
  };
  static absl::Status ScanVisible(View* view, absl::string_view from, bool inclusive, bool reverse,
                                  size_t limit, ScanBatch* out);

  // --- Commit path. REQUIRES commit_mu() held from validation to InstallLocked. ---
  Mutex* commit_mu() ABSL_LOCK_RETURNED(commit_mu_) { return &commit_mu_; }
  // Blocks while the overlay is over its limit (back-pressure). Call without commit_mu().
  void WaitForSpace();
  // Commit timestamp of the newest committed version of `key` if it is newer than `after`,
  // else 0. Reads LMDB only when a version there can be newer than `after` (a checkpoint
  // applied commits after it); otherwise the overlays answer alone.
  absl::StatusOr<Timestamp> NewestTsAfterLocked(absl::string_view key, Timestamp after)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_);
  absl::StatusOr<bool> AnyNewerInRangeLocked(absl::string_view lower, absl::string_view upper,
                                             Timestamp ts) ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_);
  absl::StatusOr<Lsn> AppendLocked(RecordType type, absl::string_view payload,
                                   Durability durability) ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_);
  // Adds `writes` to the overlay as versions at `ts`. Moves the values in (they are left
  // empty); the keys stay, for UninstallLocked.
  void InstallLocked(std::vector<Write>* writes, Timestamp ts)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_);
  // Takes back versions installed under `ts` whose commit failed before becoming visible.
  void UninstallLocked(const std::vector<Write>& writes, Timestamp ts)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_);
  // The same for one key; allocates nothing.
  void UninstallKeyLocked(absl::string_view key, Timestamp ts)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_);
  // Waits until the record at `lsn` is durable (kSync appends). An error means the log is
  // poisoned: the record may or may not be on disk.
  absl::Status WaitDurable(Lsn lsn);
  Lsn durable_lsn() const;
  // Makes every record appended so far durable.
  absl::Status SyncWal();

  // Redo of one logged record: a kCommit's writes go into the active overlay; a kRaftEntry's
  // records are redone each in turn (at the same LSN) and its position raises
  // raft_applied_locked() (applied or not); any other type goes to ShardHooks::Redo, and the
  // writes it returns, if any, go in too. `applied`: the record is at or below the checkpoint's
  // applied LSN (its writes are in LMDB; only the hooks hear of it, and not of a kCommit). The
  // one step of crash recovery, and of a replica applying its leader's log
  // (replication/shard_machine.h). Errors: kDataLoss for a malformed record, the hooks' own.
  absl::Status RedoLocked(Lsn lsn, uint8_t type, absl::string_view payload, bool applied)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_);
  // Whether RedoLocked can take a released Raft entry's `records` on this replica
  // (ShardHooks::CheckRedo, asked only when a record is not a kCommit): call before appending
  // the entry. Errors: the hooks'.
  absl::Status CheckRedoLocked(absl::Span<const EntryRecord> records)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_);
  // The highest Raft position of a kRaftEntry redone so far ({0, 0} if none): the last entry a
  // replica applied. Checkpoints keep it in the store (table "engine.raft"), so it survives
  // the truncation of the WAL that held its record.
  RaftPosition raft_applied_locked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_) {
    return raft_applied_;
  }
  // A replicated shard's leader appended the kRaftEntry record at `position` of an entry it
  // proposed itself (payload `entry`), whose writes it installed at commit (not redone): raises
  // raft_applied_locked() and records its transactions as released, as the redo of that record
  // would.
  void NoteRaftAppliedLocked(RaftPosition position, absl::string_view entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_);
  // Whether an entry released on this replica committed transaction `txn_id`: the txn ids of
  // the kCommit records of every kRaftEntry redone or noted (NoteRaftAppliedLocked), in a
  // bounded window with per-prefix horizons (engine/released_txns.h). Rebuilt by recovery
  // (the store's table "engine.released" plus the entries redone above it).
  ReleasedTxns::State ReleasedTxnLocked(uint64_t txn_id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_) {
    return released_.Lookup(txn_id);
  }
  // Follower reads (issue 17 step 6): `ts`, the shard's bound, is the largest commit timestamp
  // of the Raft entries redone or noted (NoteRaftAppliedLocked) so far, raised by each
  // kClosedTs record among them; since a shard's commit timestamps increase in its log order,
  // every entry that can still commit at or below it is applied here, except the commits of
  // transactions still prepared (the layer above's to fold in). `closed_ts` and
  // `closed_time_us`: the last kClosedTs record's (0: none yet). Kept with checkpoints (so a
  // reopen or a snapshot install keeps them).
  struct SafeBound {
    Timestamp ts = 0;
    Timestamp closed_ts = 0;
    int64_t closed_time_us = 0;
  };
  SafeBound SafeBoundLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_) {
    return safe_bound_;
  }
  // The leader's clock (microseconds since the Unix epoch) of the newest kClosedTs record kept
  // here whose timestamp is at or below `ts` (the last 256 redone or noted since Open, and the
  // one kept with checkpoints), or 0 if none: a read at `ts` is at least as fresh as that.
  int64_t ClosedTimeAtOrBelowLocked(Timestamp ts) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_);

  // The largest commit timestamp redone so far (recovery, or a replica's redo of entries).
  Timestamp max_redone_ts_locked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_) {
    return recovered_max_ts_;
  }

  // Runs a checkpoint now (waits for one in progress first). Fails, with nothing written to
  // LMDB, once the shard's log has failed (see CheckpointOnce).
  absl::Status Checkpoint();
  // Reads a table written with checkpoints (see ShardStore::TableWrite).
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ReadTable(
      const std::string& table);

  ShardStats Stats();

  // --- Backups (engine/shard_copy.cc). ---
  // The applied LSN of the last checkpoint (what LMDB holds).
  Lsn applied_lsn() const { return applied_lsn_.load(); }
  // The LSN of the last record appended.
  Lsn last_lsn_locked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_) { return last_lsn_; }
  // Copies the store, consistent as of one LMDB snapshot, into `shard_dir`/lmdb (created) and
  // returns the copy's own applied LSN. Commits and checkpoints go on.
  absl::StatusOr<Lsn> CopyStoreTo(const std::string& shard_dir);
  // The same consistent, compacted LMDB copy written to `fd` (a pipe will do: the writes are
  // sequential), neither synced nor closed; its applied LSN is the copy's to tell (open it).
  // Blocks while `fd` does (the caller's back-pressure). Errors: LMDB's (a failed write, e.g.
  // EPIPE when the reader closed the pipe).
  absl::Status CopyStoreToFd(int fd);
  // Copies the log's records `from` through `to` into `shard_dir`/wal
  // (wal::CopyLog). REQUIRES: `to` durable; the segments from `from` on pinned
  // (ShardHooks::PinnedLsn at or below `from`) until this returns; a log of the shard's own
  // (a shared log is copied once, by its owner).
  absl::Status CopyWalTo(const std::string& shard_dir, Lsn from, Lsn to);

 private:
  Shard(uint32_t id, const ShardOptions& options, ShardHooks* hooks);
  absl::Status Recover();
  // Checkpoint's work; Checkpoint counts its failures.
  absl::Status CheckpointOnce();
  // Opens the store, loads the hooks' tables, and starts the overlays. Returns the store's
  // applied LSN.
  absl::StatusOr<Lsn> OpenStore();
  // Adds the txn ids of an applied entry's kCommit records to released_.
  void NoteReleasedLocked(const std::vector<EntryRecord>& records)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_);
  // After an install: wakes the checkpoint thread when the active overlay reached its trigger.
  void RequestCheckpointIfFullLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_);
  // Bytes in the active and frozen overlays, as back-pressure counts them.
  uint64_t OverlayBytesUsed();

  const uint32_t id_;
  const ShardOptions options_;
  ShardHooks* const hooks_;
  // Replaced (ReplaceState) only with checkpoint_mu_, commit_mu_ and view_mu_ all held: read
  // under any of them, or through StoreRef().
  std::shared_ptr<ShardStore> store_;
  std::shared_ptr<ShardStore> StoreRef();
  std::unique_ptr<wal::WalWriter> own_wal_;  // null with a shared log
  // Logs ReplaceState closed, kept while the shard lives (a reader of wal() may still hold one).
  std::vector<std::unique_ptr<wal::WalWriter>> retired_wals_ ABSL_GUARDED_BY(commit_mu_);
  // The log appended to: own_wal_, or the shared log (stream id_). Set before any commit;
  // replaced by ReplaceState.
  std::atomic<wal::WalWriter*> wal_{nullptr};
  wal::WalWriter* wal() const { return wal_.load(std::memory_order_acquire); }
  // ReplaceState's swap: takes `fresh`'s recovered state. REQUIRES: checkpoint_mu_, commit_mu_.
  void AdoptLocked(Shard& fresh, const std::function<void(Timestamp)>& before_publish)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_);
  const uint16_t stream_;      // the shard's stream in its log: id_ if shared, else 0
  Lsn store_applied_lsn_ = 0;  // LMDB's applied LSN at Open
  std::chrono::steady_clock::time_point open_start_;
  Timestamp recovered_max_ts_ ABSL_GUARDED_BY(commit_mu_) = 0;  // the largest redone
  RecoveryStats recovery_;

  Mutex commit_mu_ ABSL_ACQUIRED_BEFORE(view_mu_);
  Lsn last_lsn_ ABSL_GUARDED_BY(commit_mu_) = 0;
  std::vector<Write> redo_writes_ ABSL_GUARDED_BY(commit_mu_);  // reused by RedoLocked
  RaftPosition raft_applied_ ABSL_GUARDED_BY(commit_mu_);       // see raft_applied_locked()
  ReleasedTxns released_ ABSL_GUARDED_BY(commit_mu_);           // see ReleasedTxnLocked()
  SafeBound safe_bound_ ABSL_GUARDED_BY(commit_mu_);            // see SafeBoundLocked()
  std::deque<ClosedTs> closed_history_ ABSL_GUARDED_BY(commit_mu_);  // oldest first
  // Raises safe_bound_ with a kClosedTs record; false if it is malformed.
  bool NoteClosedTsLocked(absl::string_view payload) ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_);

  Mutex view_mu_;
  // Newest first: the active overlay, then the frozen ones a checkpoint is writing (more than
  // one only after a checkpoint failed).
  std::vector<std::shared_ptr<Overlay>> overlays_ ABSL_GUARDED_BY(view_mu_);
  Timestamp lmdb_max_ts_ ABSL_GUARDED_BY(view_mu_) = 0;
  // Keys checkpoints deleted from LMDB. Filled before the checkpoint's LMDB commit (with
  // lmdb_max_ts_).
  CheckpointedDeletes checkpointed_deletes_ ABSL_GUARDED_BY(view_mu_);

  Mutex checkpoint_mu_;  // one checkpoint at a time

  // When to checkpoint, back-pressure, pacing.
  std::unique_ptr<Checkpointer> checkpointer_;
  std::atomic<uint64_t> frozen_bytes_{0};
  std::atomic<Lsn> applied_lsn_{0};
  std::shared_ptr<Overlay> active_ ABSL_GUARDED_BY(commit_mu_);  // == overlays_[0]

  std::atomic<uint64_t> checkpoints_{0}, checkpoint_failures_{0}, checkpoint_bytes_{0};
  std::atomic<uint64_t> validation_lmdb_reads_{0};
  std::atomic<uint64_t> snapshot_too_old_{0};
  Histogram checkpoint_ms_;
};

}  // namespace shardtx::engine
