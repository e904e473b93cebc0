#include "txn/durable_commits.h"

#include <algorithm>

#include "absl/cleanup/cleanup.h"

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

void DurableCommits::AddAsync(engine::Lsn lsn, std::unique_ptr<AsyncCommit>& commit)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Queue& q = *queues_[commit->shard];
  q.mu.Lock();
  if (q.error.ok() && q.durable < lsn) {
    // Queued first, so that a throw leaves `commit` with the caller.
    absl::Cleanup unlock = [&q]() ABSL_NO_THREAD_SAFETY_ANALYSIS { q.mu.Unlock(); };
    q.pending.push_back(Pending{lsn, commit->ts, nullptr});
    q.pending.back().async = std::move(commit);
    return;
  }
  const absl::Status error = q.error;
  if (error.ok()) {
    // Reported durable already. Delivered after the batches taken from `q` before (each holds
    // deliver_mu_ from its taking until it is delivered): one shard's commits reach
    // AsyncCommits in LSN order.
    deliver_mu_.Lock();
    q.mu.Unlock();
    absl::Cleanup unlock = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { deliver_mu_.Unlock(); };
    oracle_->Finish(commit->ts);
    AsyncBatch batch;
    batch.push_back(std::move(commit));
    async_->Deliver(std::move(batch));
    return;
  }
  q.mu.Unlock();
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

void DurableCommits::Complete(const std::vector<engine::Timestamp>& done, AsyncBatch async)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (async.empty()) {
    if (!done.empty()) oracle_->FinishMany(done);
    return;
  }
  // deliver_mu_ is held (taken before the queue locks were released).
  absl::Cleanup unlock = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { deliver_mu_.Unlock(); };
  oracle_->FinishMany(done);
  async_->Deliver(std::move(async));
}

void DurableCommits::DurableAll(engine::Lsn lsn) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  std::vector<engine::Timestamp> done;
  AsyncBatch async;
  // The queue locks are held only while the batch is taken. A batch with asynchronous commits
  // takes deliver_mu_ before they are released and keeps it until it is delivered (see
  // AddAsync).
  for (auto& q : queues_) q->mu.Lock();
  for (auto& q : queues_) TakeDurableLocked(*q, lsn, &done, &async);
  if (!async.empty()) deliver_mu_.Lock();
  for (auto it = queues_.rbegin(); it != queues_.rend(); ++it) (*it)->mu.Unlock();
  Complete(done, std::move(async));
}

void DurableCommits::Durable(uint32_t shard, engine::Lsn lsn) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Queue& q = *queues_[shard];
  std::vector<engine::Timestamp> done;
  AsyncBatch async;
  q.mu.Lock();
  TakeDurableLocked(q, lsn, &done, &async);
  if (!async.empty()) deliver_mu_.Lock();  // as in DurableAll
  q.mu.Unlock();
  Complete(done, std::move(async));
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
    // Wait for a batch taken before to be delivered: these failures reach AsyncCommits after
    // the shard's earlier successes.
    MutexLock d(&deliver_mu_);
  }
  // Here, on the thread that wrote the failed batch (which holds no WAL lock and no commit
  // lock), not on the completion thread: a callback running there may wait for visible_ts to
  // pass these timestamps.
  async_->TakeBack(shard, std::move(failed), e);
}

}  // namespace shardtx::txn
