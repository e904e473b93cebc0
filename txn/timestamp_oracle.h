// TimestampOracle: hands out commit timestamps, tracks which are still being installed, and
// derives visible_ts: the largest timestamp at or below which every commit is installed on
// every shard. Snapshots are taken at visible_ts, so no reader sees part of a commit.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <vector>

#include "absl/status/status.h"
#include "engine/types.h"
#include "util/mutex.h"

namespace shardtx::txn {

using Timestamp = engine::Timestamp;

class TimestampOracle {
 public:
  // After recovery: timestamps continue above `max_ts`, which is visible.
  explicit TimestampOracle(Timestamp max_ts = 0);

  // Recovery found commits up to `max_ts`: timestamps continue above it, and it is visible.
  // REQUIRES: no timestamp in flight.
  void Recovered(Timestamp max_ts);

  // A replica applied commits of another proposer up to `ts` (replicated shards): timestamps
  // continue above it, and every timestamp up to it that this oracle never assigned counts as
  // finished (visible_ts passes it once the ones in flight below it finish). Nothing if `ts` is
  // not above the last assigned.
  void RaiseTo(Timestamp ts);

  // A new commit timestamp, in flight until Finish.
  Timestamp Assign();
  // The commit `ts` is installed everywhere (or abandoned): visible_ts may advance over it.
  // Timestamps at or below visible_ts, or never assigned, are ignored.
  void Finish(Timestamp ts);
  void FinishMany(const std::vector<Timestamp>& ts);

  // The last timestamp assigned (or raised to): every later Assign returns more.
  Timestamp last_assigned() const {
    MutexLock l(&mu_);
    return last_;
  }

  // The snapshot for a new transaction. Lock-free.
  Timestamp visible() const { return visible_.load(std::memory_order_acquire); }

  // Blocks until visible_ts >= ts.
  void WaitVisible(Timestamp ts);

 private:
  void FinishLocked(Timestamp ts) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AdvanceLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  CondVar cv_{&mu_};
  Timestamp last_ ABSL_GUARDED_BY(mu_);
  std::atomic<Timestamp> visible_;  // written under mu_
  // In-flight window: done flags of timestamps visible_+1 .. last_.
  std::deque<bool> window_ ABSL_GUARDED_BY(mu_);
  int waiters_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace shardtx::txn
