#include "txn/durable_commits.h"

#include <algorithm>

#include "absl/cleanup/cleanup.h"
#include "absl/container/inlined_vector.h"

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
    // q.deliver_mu from its taking until it is delivered): one shard's commits reach
    // AsyncCommits in LSN order.
    absl::Cleanup unlock_queue = [&q]() ABSL_NO_THREAD_SAFETY_ANALYSIS { q.mu.Unlock(); };
    AsyncBatch batch;
    batch.push_back(nullptr);  // a throw here leaves `commit` with the caller
    const engine::Timestamp ts = commit->ts;
    batch.back() = std::move(commit);
    q.deliver_mu.Lock();
    std::move(unlock_queue).Invoke();
    absl::Cleanup unlock = [&q]() ABSL_NO_THREAD_SAFETY_ANALYSIS { q.deliver_mu.Unlock(); };
    oracle_->Finish(ts);
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

void DurableCommits::Complete(const std::vector<engine::Timestamp>& done, AsyncBatch async,
                              absl::Span<Mutex* const> delivering) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  absl::Cleanup unlock = [delivering]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    for (Mutex* mu : delivering) mu->Unlock();
  };
  if (!done.empty()) oracle_->FinishMany(done);
  async_->Deliver(std::move(async));  // nothing if empty
}

void DurableCommits::DurableAll(engine::Lsn lsn) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  std::vector<engine::Timestamp> done;
  AsyncBatch async;
  absl::InlinedVector<Mutex*, 4> delivering;
  // The queue locks are held only while the batch is taken. Each queue that gave asynchronous
  // commits has its deliver_mu taken before they are released, and kept until the batch is
  // delivered (see AddAsync).
  for (auto& q : queues_) q->mu.Lock();
  for (auto& q : queues_) {
    const size_t before = async.size();
    TakeDurableLocked(*q, lsn, &done, &async);
    if (async.size() != before) {
      q->deliver_mu.Lock();
      delivering.push_back(&q->deliver_mu);
    }
  }
  for (auto it = queues_.rbegin(); it != queues_.rend(); ++it) (*it)->mu.Unlock();
  Complete(done, std::move(async), delivering);
}

void DurableCommits::Durable(uint32_t shard, engine::Lsn lsn) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Queue& q = *queues_[shard];
  std::vector<engine::Timestamp> done;
  AsyncBatch async;
  Mutex* delivering = nullptr;
  q.mu.Lock();
  TakeDurableLocked(q, lsn, &done, &async);
  if (!async.empty()) {  // as in DurableAll
    delivering = &q.deliver_mu;
    delivering->Lock();
  }
  q.mu.Unlock();
  Complete(done, std::move(async),
           delivering == nullptr ? absl::Span<Mutex* const>() : absl::MakeConstSpan(&delivering, 1));
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
    MutexLock d(&q.deliver_mu);
  }
  // Here, on the thread that wrote the failed batch (which holds no WAL lock and no commit
  // lock), not on the completion thread: a callback running there may wait for visible_ts to
  // pass these timestamps.
  async_->TakeBack(shard, std::move(failed), e);
}

}  // namespace shardtx::txn
