// FollowerReads: reads of a replicated Database at its safe timestamp, on any replica (issue 17
// step 6, docs/replicated-2pc-plan.md section 6; the contract is TxnOptions::follower_read).
//
// A shard's bound (engine::Shard::SafeBoundLocked) is the largest commit timestamp of the Raft
// entries this replica applied, raised by closed-timestamp entries (engine kClosedTs) its leader
// proposes: per shard, commit timestamps increase in log order, so every entry that can still
// commit at or below the bound is applied here. The exception is a transaction prepared on the
// shard and not decided here: it may still commit, above its snapshot, so the bound is held at
// the smallest such snapshot. The node's safe timestamp is the minimum over its shards: a
// cross-shard transaction is seen whole or not at all.
//
// The closer: on each shard this replica leads (ready), every interval (the heartbeat), a
// closed-timestamp entry is proposed, carrying the oracle's last assigned timestamp (held below
// prepared snapshots, as above) and the leader's clock, if no entry of the shard was released
// here since the last look and that raises the shard's bound, or, busy or not, if the last one
// is older than ReplicationOptions::closed_ts_refresh. Taken under the shard's commit_mu, the lock
// every commit takes to assign its timestamp and propose its entry: no later commit entry of the
// shard has a timestamp at or below it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "engine/types.h"
#include "util/mutex.h"

namespace shardtx::txn {

class DatabaseImpl;

class FollowerReads {
 public:
  // `interval`: how often the closer looks; `refresh`: see the header comment.
  FollowerReads(DatabaseImpl* db, absl::Duration interval, absl::Duration refresh);
  ~FollowerReads();  // stops the closer
  FollowerReads(const FollowerReads&) = delete;
  FollowerReads& operator=(const FollowerReads&) = delete;

  // Starts the closer thread (once). Stop ends it (idempotent); proposals in flight are answered
  // by their groups later, which they outlive.
  void Start();
  void Stop();

  // The node's safe timestamp and how stale it is: the leader's clock of the newest closed
  // timestamp at or below it on the stalest shard, against this node's clock (infinite when a
  // shard has no such closed timestamp known, e.g. held below a prepared transaction's snapshot
  // since before the last one). `held_by` names what holds it back when infinite.
  struct Safe {
    engine::Timestamp ts = 0;
    absl::Duration staleness = absl::InfiniteDuration();
    std::string held_by;
  };
  Safe SafeTimestamp();
  // One shard's bound and its staleness at that bound (for stats).
  Safe ShardSafe(uint32_t shard);

  // One look of the closer at `shard` now (tests; the thread calls it too). OK if an entry was
  // proposed or none was needed; kUnavailable if this replica does not lead the shard.
  absl::Status CloseShard(uint32_t shard, bool force);

 private:
  struct ShardState {
    std::shared_ptr<std::atomic<bool>> in_flight = std::make_shared<std::atomic<bool>>(false);
    uint64_t last_released = 0;  // the shard's applied Raft index at the closer's last look
  };
  void Run();
  // The smallest snapshot of a transaction prepared on `shard`, or 0 when none.
  engine::Timestamp PreparedFloor(uint32_t shard, std::string* who);

  DatabaseImpl* const db_;
  const absl::Duration interval_;
  const absl::Duration refresh_;
  std::vector<ShardState> shards_;  // touched by the closer thread only (and tests)
  Mutex mu_;
  CondVar cv_{&mu_};
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace shardtx::txn
