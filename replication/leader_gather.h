// LeaderGather: where each shard's Raft leadership belongs on one node of a replicated database
// (issue 17 step 5, docs/replicated-2pc-plan.md section 5), and what the node saw of it.
//
// Each shard's RaftNode reports its changes (Observe, from its loop thread) and asks, as a ready
// leader about every election timeout, where its leadership should go (Anchor, from its loop
// thread): the preferred node if it is a live, caught-up voter of that group, else the node that
// leads shard 0 as this node knows it. The RaftNode transfers to that node if it is eligible
// (TransferEligible). Stats() tells whether the leaders this node knows are on one node, and how
// long each gathering took.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "replication/raft_node.h"
#include "shardtx/stats.h"
#include "util/mutex.h"

namespace shardtx::replication {

class LeaderGather {
 public:
  // `preferred`: a member's id, or 0 for none. `max_lag`: how far behind a group's leader the
  // preferred node may be and still be the anchor (RaftNodeOptions::gather_max_lag).
  LeaderGather(uint32_t num_shards, uint64_t preferred, uint64_t max_lag);

  // Shard `shard`'s node changed (role, term, leader, readiness): `info` is its state. Any thread.
  void Observe(uint32_t shard, const NodeInfo& info);

  // Where shard `shard`'s leadership belongs, asked by its leader (`info`): the preferred node
  // if it is this leader or TransferEligible here, else shard 0's leader as observed (this
  // leader itself for shard 0; 0 when none is known). Any thread; never blocks for long.
  uint64_t Anchor(uint32_t shard, const NodeInfo& info);

  // Times the leader observed for `shard` changed to another server.
  uint64_t leader_moves(uint32_t shard);
  LeadershipGatherStats Stats();

 private:
  using Clock = std::chrono::steady_clock;
  const uint64_t preferred_;
  const uint64_t max_lag_;
  Mutex mu_;
  std::vector<uint64_t> leader_ ABSL_GUARDED_BY(mu_);  // per shard: 0 = unknown
  std::vector<uint64_t> last_known_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> moves_ ABSL_GUARDED_BY(mu_);
  LeadershipGatherStats stats_ ABSL_GUARDED_BY(mu_);
  Clock::time_point scattered_at_ ABSL_GUARDED_BY(mu_);
};

}  // namespace shardtx::replication
