// DurableCommits: when single-shard synchronous commits become visible. Each is queued, in
// LSN order, as its record is appended, and finished (made visible through the timestamp
// oracle) when its shard's log reports the record durable: every commit one fsync covered at
// once, before any of their threads is woken. A commit becomes visible when its fsync
// returns, not when its own thread gets to run. Asynchronous commits (CommitAsync) are queued
// the same way and handed, one batch per fsync, to AsyncCommits for their callbacks; when a
// shard's log fails, its queued asynchronous commits are taken back and reported failed.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <utility>
#include <vector>

#include "engine/shard.h"
#include "engine/types.h"
#include "txn/async_commits.h"
#include "txn/timestamp_oracle.h"
#include "absl/types/span.h"
#include "util/mutex.h"

namespace shardtx::txn {

class DurableCommits final : public engine::DurableListener {
 public:
  // `oracle` and `async` outlive this.
  DurableCommits(uint32_t num_shards, TimestampOracle* oracle, AsyncCommits* async);

  // A commit at `ts` whose record is at `lsn` on `shard` becomes visible once that record is
  // durable; at once if the log already reported it durable. REQUIRES: the shard's commit
  // lock, held since the record was appended (so that the queue is in LSN order).
  void Add(uint32_t shard, engine::Lsn lsn, engine::Timestamp ts);
  // The same for an asynchronous commit (its timestamp in `commit->ts`, its keys in
  // `commit->keys`), which then goes to AsyncCommits::Deliver; or, if the log fails first (or
  // has failed), is taken back (AsyncCommits::TakeBack). Takes `commit`, unless it throws.
  // REQUIRES: as Add.
  void AddAsync(engine::Lsn lsn, std::unique_ptr<AsyncCommit>& commit);

  // The shard's log: every record through `lsn` is durable.
  void Durable(uint32_t shard, engine::Lsn lsn) override;
  // The log every shard shares (Options::LogLayout::kShared): every record through `lsn`, of
  // every shard, is durable. One batch of completions for all shards, as for one shard's log.
  void DurableAll(engine::Lsn lsn);
  // The shard's log failed: no queued record will become durable. Takes back the queued
  // asynchronous commits on the calling thread, taking the shard's commit lock: REQUIRES: the
  // caller holds no commit lock and no lock of the shard's log.
  void Poisoned(uint32_t shard, const absl::Status& error) override;

 private:
  struct Pending {
    engine::Lsn lsn;
    engine::Timestamp ts;
    std::unique_ptr<AsyncCommit> async;  // null for a synchronous commit
  };
  struct Queue {
    // Durable and AddAsync take one queue's lock; DurableAll takes every queue's, in shard
    // order. Each holds it only to queue or take commits.
    Mutex mu;
    // Orders the shard's deliveries: taken under `mu` when a batch of asynchronous commits is
    // taken (or AddAsync delivers its own), kept until AsyncCommits has it. Then the oracle's
    // and AsyncCommits' locks are taken under it; DurableAll takes several, in shard order.
    Mutex deliver_mu;
    std::deque<Pending> pending ABSL_GUARDED_BY(mu);
    engine::Lsn durable ABSL_GUARDED_BY(mu) = 0;  // the highest LSN the log reported
    absl::Status error ABSL_GUARDED_BY(mu);       // the log failed
  };
  // Moves the pending commits through `lsn` of `q` to `done` and `async`.
  static void TakeDurableLocked(Queue& q, engine::Lsn lsn, std::vector<engine::Timestamp>* done,
                                AsyncBatch* async) ABSL_EXCLUSIVE_LOCKS_REQUIRED(q.mu);

  // Finishes the timestamps of a taken batch and delivers its asynchronous commits, if any,
  // then releases `delivering` (held: the deliver_mu of each queue that gave commits).
  void Complete(const std::vector<engine::Timestamp>& done, AsyncBatch async,
                absl::Span<Mutex* const> delivering);

  TimestampOracle* const oracle_;
  AsyncCommits* const async_;
  std::vector<std::unique_ptr<Queue>> queues_;
};

}  // namespace shardtx::txn
