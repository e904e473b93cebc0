#include "txn/durable_commits.h"

#include <algorithm>

namespace shardtx::txn {

DurableCommits::DurableCommits(uint32_t num_shards, TimestampOracle* oracle, AsyncCommits* async)
    : oracle_(oracle), async_(async) {
  for (uint32_t i = 0; i < num_shards; ++i) queues_.push_back(std::make_unique<Queue>());
}

void DurableCommits::Add(uint32_t shard, engine::Lsn lsn, engine::Timestamp ts) {
  Queue& q = *queues_[shard];
  {
    MutexLock l(&q.mu);
    // The log may have synced the record, and reported it, between the append and now.
    if (q.durable < lsn) {
      q.pending.push_back(Pending{lsn, ts, nullptr});
      return;
    }
  }
  oracle_->Finish(ts);
}

void DurableCommits::AddAsync(engine::Lsn lsn, std::unique_ptr<AsyncCommit>& commit) {
  Queue& q = *queues_[commit->shard];
  const engine::Timestamp ts = commit->ts;
  absl::Status error;
  {
    MutexLock l(&q.mu);
    if (q.error.ok() && q.durable < lsn) {
      // Queued first, so that a throw leaves `commit` with the caller.
      q.pending.push_back(Pending{lsn, ts, nullptr});
      q.pending.back().async = std::move(commit);
      return;
    }
    error = q.error;
    if (error.ok()) {
      // Reported durable already: delivered under q.mu, like Durable's batches, so that they
      // reach AsyncCommits in LSN order.
      oracle_->Finish(ts);
      AsyncBatch batch;
      batch.push_back(std::move(commit));
      async_->Deliver(std::move(batch));
      return;
    }
  }
  // The log failed after the append: taken back here, under the caller's commit lock.
  const uint32_t shard = commit->shard;
  AsyncBatch batch;
  batch.push_back(std::move(commit));
  async_->TakeBackLocked(shard, std::move(batch), error);
}

void DurableCommits::TakeDurableLocked(Queue& q, engine::Lsn lsn,
                                       std::vector<engine::Timestamp>* done, AsyncBatch* async) {
  q.durable = std::max(q.durable, lsn);
  while (!q.pending.empty() && q.pending.front().lsn <= lsn) {
    Pending& p = q.pending.front();
    done->push_back(p.ts);
    if (p.async != nullptr) async->push_back(std::move(p.async));
    q.pending.pop_front();
  }
}

void DurableCommits::DurableAll(engine::Lsn lsn) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  std::vector<engine::Timestamp> done;
  AsyncBatch async;
  // Every queue stays locked until the batch is delivered: each shard's batches reach
  // AsyncCommits in LSN order, also past an AddAsync that delivers its own (see Durable).
  for (auto& q : queues_) q->mu.Lock();
  for (auto& q : queues_) TakeDurableLocked(*q, lsn, &done, &async);
  if (!done.empty()) oracle_->FinishMany(done);
  async_->Deliver(std::move(async));  // nothing if empty
  for (auto it = queues_.rbegin(); it != queues_.rend(); ++it) (*it)->mu.Unlock();
}

void DurableCommits::Durable(uint32_t shard, engine::Lsn lsn) {
  Queue& q = *queues_[shard];
  std::vector<engine::Timestamp> done;
  AsyncBatch async;
  {
    MutexLock l(&q.mu);
    TakeDurableLocked(q, lsn, &done, &async);
    if (!async.empty()) {
      // Under q.mu: one shard's batches reach AsyncCommits in LSN order, also past an AddAsync
      // that finds its record reported durable already (and delivers it itself).
      oracle_->FinishMany(done);
      async_->Deliver(std::move(async));
      return;
    }
  }
  if (!done.empty()) oracle_->FinishMany(done);
}

void DurableCommits::Poisoned(uint32_t shard, const absl::Status& error) {
  Queue& q = *queues_[shard];
  AsyncBatch failed;
  absl::Status e;
  {
    MutexLock l(&q.mu);
    q.error = error.ok() ? absl::InternalError("log failed") : error;
    e = q.error;
    // Synchronous commits learn it from WaitDurable and take themselves back.
    for (Pending& p : q.pending) {
      if (p.async != nullptr) failed.push_back(std::move(p.async));
    }
    q.pending.clear();
  }
  // Here, on the thread that wrote the failed batch (which holds no WAL lock and no commit
  // lock), not on the completion thread: a callback running there may wait for visible_ts to
  // pass these timestamps.
  async_->TakeBack(shard, std::move(failed), e);
}

}  // namespace shardtx::txn
