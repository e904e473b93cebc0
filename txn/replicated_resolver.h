// InDoubtResolver: decides the cross-shard transactions a replicated Database holds prepared
// without an outcome, once this node is the ready leader of all their participants (issue 17
// step 4, docs/replicated-2pc-plan.md sections 1 and 4). A transaction is left so by a failover
// (its prepares committed, its decision or commit entries not) or by a commit or abort entry
// refused or unknown here after the commit point.
//
// Each shard's Raft loop tells it when the shard becomes ready-led here (ShardReady: no work on
// that thread but a queue insertion); the coordinator tells it of parts put back in doubt
// (Queue). Its own thread then lists the transactions prepared on that shard and tries each
// queued one (Coordinator::ResolveReplicated): one that waits for this node to lead another
// participant stays queued and is tried again when another shard becomes ready-led here; one
// decided, gone, or left for its host (named) leaves the queue.
#pragma once

#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "shardtx/stats.h"
#include "util/mutex.h"

namespace shardtx::txn {

class DatabaseImpl;

class InDoubtResolver {
 public:
  // `db` outlives this. Starts the thread.
  InDoubtResolver(DatabaseImpl* db, uint32_t num_shards);
  // Stop().
  ~InDoubtResolver();
  InDoubtResolver(const InDoubtResolver&) = delete;
  InDoubtResolver& operator=(const InDoubtResolver&) = delete;

  // Shard `shard`'s node changed; `ready_leader`: this node now leads it, ready, in `term`. A
  // new ready term queues the transactions prepared on the shard. Any thread (a Raft loop's);
  // takes only this object's mutex.
  void ShardReady(uint32_t shard, bool ready_leader, uint64_t term);
  // `txn_id` was put back in doubt here. Any thread, any locks held (a shard's commit lock).
  void Queue(uint64_t txn_id);
  // Ends the thread (a pass under way finishes first). Idempotent. Later calls queue nothing.
  void Stop();

  InDoubtResolverStats Stats();

 private:
  using Clock = std::chrono::steady_clock;
  void Run();
  // One pass: the shards to scan, then every queued transaction. REQUIRES mu_ not held.
  void Pass(std::vector<uint32_t> scan, absl::flat_hash_map<uint64_t, Clock::time_point> queued);

  DatabaseImpl* const db_;
  Mutex mu_;
  CondVar cv_{&mu_};
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool work_ ABSL_GUARDED_BY(mu_) = false;  // something to scan or queued since the last pass
  std::vector<uint64_t> ready_term_ ABSL_GUARDED_BY(mu_);  // per shard: 0 = not ready-led here
  std::vector<Clock::time_point> ready_at_ ABSL_GUARDED_BY(mu_);
  std::vector<uint32_t> scan_ ABSL_GUARDED_BY(mu_);  // shards newly ready-led, to list
  // Waiting for a pass, by id: when it was found.
  absl::flat_hash_map<uint64_t, Clock::time_point> queue_ ABSL_GUARDED_BY(mu_);
  // Counted as found and still waiting (for this node to lead every participant).
  absl::flat_hash_set<uint64_t> known_ ABSL_GUARDED_BY(mu_);
  InDoubtResolverStats stats_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace shardtx::txn
