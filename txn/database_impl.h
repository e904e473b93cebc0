// DatabaseImpl: the Database behind the public API. Owns the shards, the timestamp oracle and
// the partitioner; implements the shards' hooks (visibility, redo of transaction records).
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "engine/shard.h"
#include "shardtx/database.h"
#include "shardtx/env.h"
#include "txn/partitioner.h"
#include "txn/timestamp_oracle.h"
#include "util/histogram.h"

namespace shardtx::txn {

// Counters shared by all transactions of a database.
struct TxnCounters {
  std::atomic<uint64_t> commits{0}, read_only_commits{0}, cross_shard_commits{0}, rollbacks{0};
  std::atomic<uint64_t> aborts_write_conflict{0}, aborts_read_validation{0};
  std::atomic<uint64_t> aborts_snapshot_too_old{0}, aborts_locked{0}, aborts_too_large{0};
  std::atomic<uint64_t> aborts_io_error{0};
  Histogram commit_latency_us;
};

class DatabaseImpl final : public Database, public engine::ShardHooks {
 public:
  static absl::StatusOr<std::unique_ptr<Database>> Open(const Options& options);
  ~DatabaseImpl() override;

  std::unique_ptr<Transaction> Begin(const TxnOptions& options) override;
  absl::Status Checkpoint() override;
  Stats GetStats() override;
  absl::Status Close() override;

  // engine::ShardHooks
  absl::Status WaitVisible(engine::Timestamp ts) override;
  absl::Status Redo(uint32_t shard, engine::Lsn lsn, uint8_t type,
                    absl::string_view payload) override;
  engine::Lsn PinnedLsn(uint32_t shard) override;

  // For transactions.
  engine::Shard* shard(uint32_t i) { return shards_[i].get(); }
  uint32_t num_shards() const { return static_cast<uint32_t>(shards_.size()); }
  const Partitioner& partitioner() const { return *partitioner_; }
  TimestampOracle& oracle() { return *oracle_; }
  const Options& options() const { return options_; }
  TxnCounters& counters() { return counters_; }

  // Durable-commit bookkeeping: a synchronous commit is registered (under its shard's commit
  // lock, so in LSN order) and finished (made visible) as soon as its record is durable, by
  // whichever committer of that shard sees the durable LSN first: a commit becomes visible
  // when its fsync returns, not when its own thread gets to run.
  void RegisterDurableCommit(uint32_t shard, engine::Lsn lsn, engine::Timestamp ts);
  void FinishDurableCommits(uint32_t shard);

 private:
  explicit DatabaseImpl(const Options& options) : options_(options) {}
  absl::Status OpenDirectory();
  absl::Status OpenShards();

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
  std::atomic<bool> closed_{false};
};

}  // namespace shardtx::txn
