// LeaderGather: see leader_gather.h.
#include "replication/leader_gather.h"

namespace shardtx::replication {

LeaderGather::LeaderGather(uint32_t num_shards, uint64_t preferred, uint64_t max_lag)
    : preferred_(preferred),
      max_lag_(max_lag),
      leader_(num_shards, 0),
      last_known_(num_shards, 0),
      moves_(num_shards, 0),
      scattered_at_(Clock::now()) {
  stats_.scatters = 1;  // from Open until the first gathering
}

void LeaderGather::Observe(uint32_t shard, const NodeInfo& info) {
  const uint64_t leader = info.role == Role::kLeader ? info.id : info.leader_id;
  MutexLock l(&mu_);
  if (shard >= leader_.size()) return;
  leader_[shard] = leader;
  if (leader != 0) {
    if (last_known_[shard] != 0 && last_known_[shard] != leader) moves_[shard]++;
    last_known_[shard] = leader;
  }
  bool gathered = leader_[0] != 0;
  for (uint64_t id : leader_) gathered = gathered && id == leader_[0];
  if (gathered && !stats_.gathered) {
    const double ms =
        std::chrono::duration<double, std::milli>(Clock::now() - scattered_at_).count();
    stats_.gathers++;
    stats_.last_gather_ms = ms;
    if (ms > stats_.max_gather_ms) stats_.max_gather_ms = ms;
  } else if (!gathered && stats_.gathered) {
    stats_.scatters++;
    scattered_at_ = Clock::now();
  }
  stats_.gathered = gathered;
  stats_.leader_id = gathered ? leader_[0] : 0;
}

uint64_t LeaderGather::Anchor(uint32_t shard, const NodeInfo& info) {
  if (preferred_ != 0 && (preferred_ == info.id || TransferEligible(info, preferred_, max_lag_))) {
    return preferred_;
  }
  if (shard == 0) return info.id;
  MutexLock l(&mu_);
  return leader_.empty() ? 0 : leader_[0];
}

uint64_t LeaderGather::leader_moves(uint32_t shard) {
  MutexLock l(&mu_);
  return shard < moves_.size() ? moves_[shard] : 0;
}

LeadershipGatherStats LeaderGather::Stats() {
  MutexLock l(&mu_);
  return stats_;
}

}  // namespace shardtx::replication
