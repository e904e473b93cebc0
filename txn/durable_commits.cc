#include "txn/durable_commits.h"

#include <algorithm>

namespace shardtx::txn {

DurableCommits::DurableCommits(uint32_t num_shards, TimestampOracle* oracle) : oracle_(oracle) {
  for (uint32_t i = 0; i < num_shards; ++i) queues_.push_back(std::make_unique<Queue>());
}

void DurableCommits::Add(uint32_t shard, engine::Lsn lsn, engine::Timestamp ts) {
  Queue& q = *queues_[shard];
  {
    MutexLock l(&q.mu);
    // The log may have synced the record, and reported it, between the append and now.
    if (q.durable < lsn) {
      q.pending.emplace_back(lsn, ts);
      return;
    }
  }
  oracle_->Finish(ts);
}

void DurableCommits::Durable(uint32_t shard, engine::Lsn lsn) {
  Queue& q = *queues_[shard];
  std::vector<engine::Timestamp> done;
  {
    MutexLock l(&q.mu);
    q.durable = std::max(q.durable, lsn);
    while (!q.pending.empty() && q.pending.front().first <= lsn) {
      done.push_back(q.pending.front().second);
      q.pending.pop_front();
    }
  }
  if (!done.empty()) oracle_->FinishMany(done);
}

}  // namespace shardtx::txn
