// DatabaseImpl: the Database behind the public API, and the engine's ShardHooks. A façade: it
// owns the pieces and passes each call to the one that does the work.
//
//   DbDirectory     the directory, its manifest and its lock
//   engine::Shard   one per shard: log, overlay, LMDB, checkpoints, redo
//   shared_log_     the log all shards share, in that layout (read and opened here)
//   TimestampOracle commit timestamps and what is visible
//   DurableCommits  when single-shard synchronous commits become visible
//   AsyncCommits    CommitAsync's completion thread, back-pressure and draining
//   Coordinator     two-phase commit, named prepares, and their recovery
//   TransactionImpl one transaction: reads, writes, the one-phase commit
//   MakeStats       the public Stats
//   RunBackup       online backup (txn/backup.h)
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/replicated_log.h"
#include "engine/shard.h"
#include "shardtx/database.h"
#include "shardtx/env.h"
#include "txn/async_commits.h"
#include "txn/backup.h"
#include "txn/coordinator.h"
#include "txn/db_directory.h"
#include "txn/db_stats.h"
#include "txn/durable_commits.h"
#include "txn/follower_reads.h"
#include "txn/partitioner.h"
#include "txn/replicated_shards.h"
#include "txn/timestamp_oracle.h"
#include "txn/txn_ids.h"
#include "util/op_gate.h"
#include "wal/writer.h"

namespace shardtx::txn {

class DatabaseImpl final : public Database, public engine::ShardHooks {
 public:
  static absl::StatusOr<std::unique_ptr<Database>> Open(const Options& options);
  ~DatabaseImpl() override;

  std::unique_ptr<Transaction> Begin(const TxnOptions& options) override;
  absl::Status Checkpoint() override;
  Stats GetStats() override;
  absl::Status Close() override;

  absl::StatusOr<std::vector<std::string>> ListPrepared() override;
  absl::Status CommitPrepared(const std::string& name) override;
  absl::Status RollbackPrepared(const std::string& name) override;
  Outcome GetOutcome(uint64_t id) override;
  // What this process's prepared state and outcome window say of `id`; kUnknown (replicated:
  // ask the shards) also for our own cross-shard transaction prepared here and not decided here.
  Outcome LocalOutcome(uint64_t id);
  absl::StatusOr<Outcome> GetOutcomeOfKey(uint64_t id, const std::string& key) override;
  absl::Status Backup(const std::string& dest) override;
  std::vector<ShardLeadership> Leadership() override;
  absl::Status AddMember(const ReplicationMember& member,
                         std::vector<absl::Status>* per_shard) override;
  absl::Status RemoveMember(uint64_t id, std::vector<absl::Status>* per_shard) override;

  // engine::ShardHooks
  absl::Status WaitVisible(engine::Timestamp ts) override;
  std::vector<std::string> CheckpointTableNames() override;
  absl::Status LoadTable(uint32_t shard, const std::string& table,
                         const std::vector<std::pair<std::string, std::string>>& rows) override;
  absl::StatusOr<std::optional<RedoInstall>> Redo(uint32_t shard, engine::Lsn lsn, bool applied,
                                                  uint8_t type, absl::string_view payload) override;
  // A replicated shard's entries: the transaction layer's records are redone on replicas
  // (Coordinator::CheckRedo, ForgetShard).
  absl::Status CheckRedo(uint32_t shard, absl::Span<const engine::EntryRecord> records) override;
  void ForgetShardState(uint32_t shard) override;
  std::vector<engine::TableWrite> CheckpointTables(uint32_t shard) override;
  void CheckpointCommitted(uint32_t shard) override;
  // What two-phase commit pins, folded with a running backup's pin (BackupPins). Syncs the
  // logs of coordinators whose undurable decisions would otherwise pin `shard`'s WAL.
  engine::Lsn PinnedLsn(uint32_t shard) override;

  // For transactions and the coordinator.
  engine::Shard* shard(uint32_t i) { return shards_[i].get(); }
  // The log all shards share (Options::LogLayout::kShared), or null when each has its own.
  wal::WalWriter* shared_log() { return shared_log_.get(); }
  // From the options, not shards_ (which Close may clear while a transaction is being begun).
  uint32_t num_shards() const { return options_.num_shards; }
  const Partitioner& partitioner() const { return *partitioner_; }
  TimestampOracle& oracle() { return oracle_; }
  DurableCommits& durable_commits() { return *durable_commits_; }
  AsyncCommits& async_commits() { return *async_commits_; }
  Coordinator& coordinator() { return *coordinator_; }
  TwoPhaseState& two_phase() { return coordinator_->state(); }
  const Options& options() const { return options_; }
  // For Backup.
  Env* env() const { return env_; }
  const DbDirectory& directory() const { return *directory_; }
  BackupPins& backup_pins() { return backup_pins_; }
  // The WAL of `shard` from `lsn` on (0: no pin) is kept for the snapshot streams copying it
  // (replication's SnapshotServer; ReplicatedShards passes it on): PinnedLsn folds it in.
  void PinWalForSnapshots(uint32_t shard, engine::Lsn lsn) {
    snapshot_pins_[shard].store(lsn, std::memory_order_seq_cst);
  }
  // The oldest LSN of `shard` that two-phase commit still needs in the WAL, or 0.
  engine::Lsn TwoPhasePinnedLsn(uint32_t shard);
  TxnCounters& counters() { return counters_; }
  // A new transaction id (txn/txn_ids.h); 0 when a replicated database can give none
  // (txn_ids().error()).
  uint64_t NewTxnId() { return txn_ids_.Next(); }
  const TxnIds& txn_ids() const { return txn_ids_; }
  // Transaction ids node:16|incarnation:16|counter:32 from now on, `persist` recording an
  // incarnation the counter wraps into (txn/txn_ids.h). Open calls it for Options::replication;
  // tests that attach replicated logs themselves may too. REQUIRES: before any Begin.
  void UseReplicatedTxnIds(uint64_t node, uint64_t incarnation, TxnIds::Persist persist) {
    txn_ids_.UseNode(node, incarnation, std::move(persist));
  }
  // Internal (tests of the counter's wrap): see TxnIds::SkipTo.
  void SkipTxnCounterTo(uint32_t counter) { txn_ids_.SkipTo(counter); }
  // EXPERIMENTAL, internal (docs/replication-plan.md §8 step 5; opening a replicated database
  // from Options is step 8): from now on the commits of `shard` go through `log`, a Raft group
  // of which this database is one replica (not owned; it outlives every commit, and its group
  // stops applying entries to the shard before the database closes). A single-shard commit on
  // it is acknowledged once a majority holds its
  // entry; on a replica that is not the group's ready leader it fails with kUnavailable, with
  // no effect; named prepares, CommitAsync with writes and cross-shard commits writing an
  // unreplicated shard on a database with a replicated shard return kUnimplemented (issue 17;
  // cross-shard commits over replicated shards: Coordinator::CommitReplicated). Entries of
  // other proposers, applied by
  // redo, raise the oracle. REQUIRES: before any transaction begins; once per shard.
  void AttachReplicatedLog(uint32_t shard, engine::ReplicatedLog* log);
  // Undoes AttachReplicatedLog for every shard (a failed Open; Close, once the logs are gone).
  void DetachReplicatedLogs();
  // Shard `shard`'s Raft directory in a replicated database (Options::replication).
  std::string RaftDir(uint32_t shard) const { return directory_->RaftDir(shard); }
  // A replicated database's incarnation on this node (node manifest; bumped and synced by every
  // Open), or 0 when not replicated. For transaction ids (plan §6: node:16|incarnation:16|...).
  uint64_t incarnation() const { return incarnation_; }
  // Follower reads (null until a replicated log is attached): the safe timestamp, the closer.
  FollowerReads* follower_reads() { return follower_reads_.get(); }
  // Whether any shard is replicated, and shard `shard`'s log (null when not replicated).
  bool replicated() const { return replicated_; }
  engine::ReplicatedLog* replicated_log(uint32_t shard) {
    return replicated_ ? replicated_logs_[shard] : nullptr;
  }
  // Calls that write the log are admitted through the gate; Close drains it.
  OpGate& gate() { return gate_; }
  absl::Status ClosedError();
  // AddMember / RemoveMember: `change` on the database's ReplicatedShards, inside the op gate.
  absl::Status ChangeMembership(const std::function<absl::Status(ReplicatedShards*)>& change);
  // Transactions begun and not yet finished (committed, rolled back, prepared or failed):
  // Close keeps the shards while any is, since it may hold read views of them.
  void TxnBegun() { live_txns_.fetch_add(1, std::memory_order_seq_cst); }
  void TxnEnded() { live_txns_.fetch_sub(1, std::memory_order_seq_cst); }

 private:
  explicit DatabaseImpl(const Options& options) : options_(options) {}
  // Opens (recovering) every shard, then resolves the in-doubt transactions.
  absl::Status OpenShards();
  // The shared layout's recovery: reads PATH/log once, handing each record to the shard of its
  // stream, then opens the shared log after its tail and attaches it to every shard.
  absl::Status RecoverSharedLog();
  // Close: refuses new calls, waits for those in flight, closes the shards (checkpointing
  // first when `checkpoint`) and releases the directory. Also undoes a failed Open.
  absl::Status Release(bool checkpoint);

  Options options_;
  Env* env_ = nullptr;
  std::unique_ptr<DbDirectory> directory_;
  std::vector<std::unique_ptr<engine::Shard>> shards_;
  std::unique_ptr<Partitioner> partitioner_;
  TimestampOracle oracle_;
  std::unique_ptr<DurableCommits> durable_commits_;
  // After durable_commits_ (destroyed before it: its callbacks report there); the shards, which
  // append to it, are cleared before it is destroyed (~DatabaseImpl) and closed before it is
  // (Release).
  std::unique_ptr<wal::WalWriter> shared_log_;
  std::unique_ptr<Coordinator> coordinator_;
  TxnCounters counters_;
  TxnIds txn_ids_;
  OpGate gate_;
  Mutex close_mu_;   // one Close at a time; a concurrent one waits for it
  Mutex shards_mu_;  // GetStats against Close's release of shards_
  std::atomic<uint64_t> live_txns_{0};
  BackupPins backup_pins_;
  std::unique_ptr<std::atomic<engine::Lsn>[]> snapshot_pins_;  // num_shards, set by Open
  // Replicated shards (AttachReplicatedLog): set before any transaction, then only read.
  class ReplicaListener final : public engine::ReplicatedLog::Listener {
   public:
    explicit ReplicaListener(TimestampOracle* oracle) : oracle_(oracle) {}
    void Applied(engine::Timestamp max_ts) override { oracle_->RaiseTo(max_ts); }

   private:
    TimestampOracle* const oracle_;
  };
  bool replicated_ = false;
  std::vector<engine::ReplicatedLog*> replicated_logs_;
  ReplicaListener replica_listener_{&oracle_};
  // Options::replication: the shards' Raft groups (set by Open; stopped, then destroyed, by
  // Release before the shards close). Under replication_mu_ (Leadership against Release).
  Mutex replication_mu_;
  std::unique_ptr<ReplicatedShards> replicated_shards_ ABSL_GUARDED_BY(replication_mu_);
  uint64_t incarnation_ = 0;
  // Created by the first AttachReplicatedLog; its closer runs with Options::replication (Open
  // starts it, Release stops it before the groups). Its proposals answered later reach only
  // objects of their own.
  std::unique_ptr<FollowerReads> follower_reads_;
  // Last: destroyed (its threads stopped) first, while everything its callbacks use remains.
  std::unique_ptr<AsyncCommits> async_commits_;
};

}  // namespace shardtx::txn
