// DurableCommits: when single-shard synchronous commits become visible. Each is queued, in
// LSN order, as its record is appended, and finished (made visible through the timestamp
// oracle) when its shard's log reports the record durable: every commit one fsync covered at
// once, before any of their threads is woken. A commit becomes visible when its fsync
// returns, not when its own thread gets to run.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <utility>
#include <vector>

#include "engine/shard.h"
#include "engine/types.h"
#include "txn/timestamp_oracle.h"
#include "util/mutex.h"

namespace shardtx::txn {

class DurableCommits final : public engine::DurableListener {
 public:
  // `oracle` outlives this.
  DurableCommits(uint32_t num_shards, TimestampOracle* oracle);

  // A commit at `ts` whose record is at `lsn` on `shard` becomes visible once that record is
  // durable; at once if the log already reported it durable. REQUIRES: the shard's commit
  // lock, held since the record was appended (so that the queue is in LSN order).
  void Add(uint32_t shard, engine::Lsn lsn, engine::Timestamp ts);

  // The shard's log: every record through `lsn` is durable.
  void Durable(uint32_t shard, engine::Lsn lsn) override;

 private:
  struct Queue {
    Mutex mu;
    std::deque<std::pair<engine::Lsn, engine::Timestamp>> pending ABSL_GUARDED_BY(mu);
    engine::Lsn durable ABSL_GUARDED_BY(mu) = 0;  // the highest LSN the log reported
  };
  TimestampOracle* const oracle_;
  std::vector<std::unique_ptr<Queue>> queues_;
};

}  // namespace shardtx::txn
