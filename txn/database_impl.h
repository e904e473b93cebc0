// DatabaseImpl: the Database behind the public API. Owns the shards, the timestamp oracle and
// the partitioner; implements the shards' hooks (visibility, redo of transaction records).
#pragma once

#include <atomic>
#include <optional>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "engine/shard.h"
#include "shardtx/database.h"
#include "shardtx/env.h"
#include "txn/partitioner.h"
#include "txn/timestamp_oracle.h"
#include "txn/two_phase_state.h"
#include "txn/txn_records.h"
#include "util/histogram.h"
#include "util/op_gate.h"

namespace shardtx::txn {

// Counters shared by all transactions of a database.
struct TxnCounters {
  std::atomic<uint64_t> commits{0}, read_only_commits{0}, cross_shard_commits{0}, rollbacks{0};
  std::atomic<uint64_t> aborts_write_conflict{0}, aborts_read_validation{0};
  std::atomic<uint64_t> aborts_snapshot_too_old{0}, aborts_locked{0}, aborts_too_large{0};
  std::atomic<uint64_t> aborts_io_error{0};
  std::atomic<uint64_t> recovered_commits{0}, recovered_aborts{0};
  Histogram commit_latency_us;
  // Two-phase commit phases, microseconds.
  Histogram prepare_us, decision_us, phase2_us;
};

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

  // engine::ShardHooks
  absl::Status WaitVisible(engine::Timestamp ts) override;
  absl::Status LoadPrepared(uint32_t shard,
                            const std::vector<std::pair<std::string, std::string>>& rows) override;
  absl::StatusOr<std::optional<RedoInstall>> Redo(uint32_t shard, engine::Lsn lsn, bool applied,
                                                  uint8_t type,
                                                  absl::string_view payload) override;
  std::vector<engine::ShardStore::TableWrite> CheckpointTables(uint32_t shard) override;
  void CheckpointCommitted(uint32_t shard) override;
  engine::Lsn PinnedLsn(uint32_t shard) override;
  void Durable(uint32_t shard, engine::Lsn lsn) override;

  // For transactions.
  engine::Shard* shard(uint32_t i) { return shards_[i].get(); }
  // From the options, not shards_ (which Close may clear while a transaction is being begun).
  uint32_t num_shards() const { return options_.num_shards; }
  const Partitioner& partitioner() const { return *partitioner_; }
  TimestampOracle& oracle() { return *oracle_; }
  const Options& options() const { return options_; }
  TxnCounters& counters() { return counters_; }
  TwoPhaseState& two_phase() { return *two_phase_; }
  uint64_t NewTxnId() { return txn_id_base_ + next_txn_.fetch_add(1); }
  // Calls that write the log are admitted through the gate; Close drains it.
  OpGate& gate() { return gate_; }
  absl::Status ClosedError();
  // Transactions begun and not yet finished (committed, rolled back, prepared or failed):
  // Close keeps the shards while any is, since it may hold read views of them.
  void TxnBegun() { live_txns_.fetch_add(1, std::memory_order_seq_cst); }
  void TxnEnded() { live_txns_.fetch_sub(1, std::memory_order_seq_cst); }

  // Phase two of a decided commit of prepared transaction `txn_id` on `parts` (ascending;
  // parts[0] is the coordinator): logs and syncs the decision (the commit point), then on
  // each participant logs the commit record without waiting, installs the writes at one new
  // commit timestamp and releases the locks; then makes the commit visible everywhere at
  // once. `commit_ts` 0: chosen after the decision (one taken before is finished on every
  // path). Returns the commit timestamp, or an I/O status: then, if the decision could not be
  // appended, an unnamed transaction is aborted and a `named` one stays prepared; if its sync
  // failed, the transaction stays prepared (in doubt until the database is reopened); and a
  // single participant's commit record that failed is taken back, unseen.
  absl::StatusOr<engine::Timestamp> CommitDecided(uint64_t txn_id,
                                                  const std::vector<uint32_t>& parts,
                                                  engine::Timestamp commit_ts, bool named);
  // Logs kAbortPrepared on each part and releases its locks. `sync`: wait for durability.
  // REQUIRES no shard commit lock held.
  absl::Status AbortPrepared(uint64_t txn_id, const std::vector<uint32_t>& parts, bool sync);

  // Durable-commit bookkeeping: a single-shard synchronous commit is registered (under its
  // shard's commit lock, so in LSN order) and finished (made visible) when the WAL reports its
  // record durable (Durable, before its thread is woken), all covered ones at once: a commit
  // becomes visible when its fsync returns, not when its own thread gets to run.
  void RegisterDurableCommit(uint32_t shard, engine::Lsn lsn, engine::Timestamp ts);

 private:
  explicit DatabaseImpl(const Options& options) : options_(options) {}
  absl::Status OpenDirectory();
  absl::Status OpenShards();
  // After redo on every shard: commits prepared transactions whose decision is on record,
  // aborts unnamed ones without one (presumed abort), keeps named ones prepared.
  absl::Status ResolveInDoubt();
  // Read locks of a prepared transaction found in a prepare record or prepared-table row.
  void AddRecoveredReadLocks(const PrepareRecord& r);
  // Close: refuses new calls, waits for those in flight, closes the shards (checkpointing
  // first when `checkpoint`) and releases the directory. Also undoes a failed Open.
  absl::Status Release(bool checkpoint);

  Options options_;
  Env* env_ = nullptr;
  std::unique_ptr<FileLock> lock_;
  std::vector<std::unique_ptr<engine::Shard>> shards_;
  std::unique_ptr<Partitioner> partitioner_;
  std::unique_ptr<TimestampOracle> oracle_;
  struct CommitQueue {
    Mutex mu;
    std::deque<std::pair<engine::Lsn, engine::Timestamp>> pending ABSL_GUARDED_BY(mu);
  };
  std::vector<std::unique_ptr<CommitQueue>> commit_queues_;
  TxnCounters counters_;
  std::unique_ptr<TwoPhaseState> two_phase_;
  uint64_t txn_id_base_ = 0;
  std::atomic<uint64_t> next_txn_{1};
  // Recovery only: decisions and commit timestamps found in the WALs.
  absl::flat_hash_map<uint64_t, DecisionRecord> recovered_decisions_;
  absl::flat_hash_map<uint64_t, engine::Timestamp> recovered_commit_ts_;
  OpGate gate_;
  Mutex close_mu_;   // one Close at a time; a concurrent one waits for it
  Mutex shards_mu_;  // GetStats against Close's release of shards_
  std::atomic<uint64_t> live_txns_{0};
};

}  // namespace shardtx::txn
