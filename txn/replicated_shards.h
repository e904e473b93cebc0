// ReplicatedShards: the Raft side of a replicated Database (Options::replication; plan step 8).
// It checks or writes the node manifest (txn/node_manifest.h) and runs, for each shard g, a
// RaftNode on port P+1+g of this node's host (Raft state in raft-NNN/) with a ShardReplica
// attached to the shard as its replicated log, and this node's SnapshotServer on port P, which
// serves every shard to followers that install a snapshot (the streams' WAL pins go to
// DatabaseImpl::PinWalForSnapshots); a follower fetches from the producer's member host:P.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "replication/leader_gather.h"
#include "replication/raft_node.h"
#include "replication/shard_replica.h"
#include "replication/snapshot_stream.h"
#include "shardtx/database.h"
#include "shardtx/options.h"
#include "txn/replicated_resolver.h"
#include "util/mutex.h"

namespace shardtx::txn {

class DatabaseImpl;

class ReplicatedShards {
 public:
  // Checks options.replication alone (before anything is opened). OK when it is off.
  static absl::Status Validate(const Options& options);

  // Checks the node manifest against the options (bootstrapping a pristine node), bumps and
  // syncs its incarnation, then opens and attaches every shard's group. REQUIRES: db's shards
  // are open and recovered, no transaction has begun. On error, whatever was opened is closed
  // (and the shards are detached) before it returns.
  static absl::StatusOr<std::unique_ptr<ReplicatedShards>> Open(DatabaseImpl* db);

  // Stop(), then destroys the nodes and their replicas. REQUIRES: before the shards close.
  ~ReplicatedShards();
  ReplicatedShards(const ReplicatedShards&) = delete;
  ReplicatedShards& operator=(const ReplicatedShards&) = delete;

  // Closes every node: proposals in flight are answered kUnknown, later ones are refused
  // (kUnavailable); nothing is applied to the shards after it returns. Idempotent.
  void Stop();

  // Database::Leadership: empty once stopped.
  std::vector<Database::ShardLeadership> Leadership();

  // Adds each shard's Raft log counters (raft_log_writes, raft_entries_stored) and its group's
  // state (ShardStatsView::replication) to `stats`. Nothing once stopped.
  void AddStats(Stats* stats);

  // Database::AddMember and RemoveMember (see there): one status per shard in *per_shard, the
  // summary returned. REQUIRES: the caller keeps this object alive until it returns (the
  // database's op gate); Stop() meanwhile answers the shards still in flight.
  absl::Status AddMember(const ReplicationMember& member, std::vector<absl::Status>* per_shard);
  absl::Status RemoveMember(uint64_t id, std::vector<absl::Status>* per_shard);

  // This Open's incarnation of the node (1 at bootstrap, then one more at every Open).
  uint64_t incarnation() const { return incarnation_; }
  // Records `incarnation` (above this Open's) in the node manifest, synced: transaction ids'
  // counter wrapped into it (txn/txn_ids.h). REQUIRES: one call at a time.
  absl::Status PersistIncarnation(uint64_t incarnation);

  // TEST ONLY, in the testing library (SHARDTX_KILL_POINTS): the SnapshotServerOptions::tamper
  // of the snapshot servers that Open starts from now on, process-wide (null: none).
  static void SetSnapshotTamperForTesting(std::function<bool(uint64_t, std::string*)> tamper);

 private:
  explicit ReplicatedShards(DatabaseImpl* db) : db_(db) {}
  absl::Status OpenGroups();
  // The options' members against each shard's replicated configuration (see ReplicationOptions,
  // "Members after the first Open"). REQUIRES: every group open.
  absl::Status CheckMembers(const std::vector<std::vector<ReplicationMember>>& configured) const;
  std::string MemberAddress(uint64_t id) const;
  // Runs `start` on every shard's node (it returns a refusal or calls back once), waits for all.
  using StartChange = std::function<absl::Status(uint32_t shard, replication::RaftNode* node,
                                                 replication::RaftNode::ChangeCallback done)>;
  absl::Status ChangeEveryShard(const StartChange& start, std::vector<absl::Status>* per_shard);

  DatabaseImpl* const db_;
  ReplicationOptions options_;
  uint64_t incarnation_ = 0;
  bool join_ = false;  // a pristine Raft directory is not bootstrapped
  mutable Mutex members_mu_;
  // Members added through this node (AddMember) since Open: their addresses for messages.
  std::vector<ReplicationMember> added_ ABSL_GUARDED_BY(members_mu_);
  Mutex mu_;  // Stop against Leadership
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  // Leadership gathering (ReplicationOptions::preferred_leader): set by OpenGroups, destroyed
  // after the nodes, whose loop threads call it.
  static constexpr uint64_t kGatherMaxLag = 64;
  std::unique_ptr<replication::LeaderGather> gather_;
  // The in-doubt resolver (issue 17 step 4), told by each group's loop when its shard becomes
  // ready-led here: set by OpenGroups before any node, stopped first (Stop), destroyed after
  // the nodes.
  std::unique_ptr<InDoubtResolver> resolver_;
  // Stopped first (Stop), destroyed after the nodes (their replicas are its sources).
  std::unique_ptr<replication::SnapshotServer> snapshot_server_;
  // One per shard; each owns its ShardReplica.
  std::vector<std::unique_ptr<replication::RaftNode>> nodes_;
  std::vector<replication::ShardReplica*> replicas_;
};

}  // namespace shardtx::txn
