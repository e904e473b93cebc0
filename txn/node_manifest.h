// NodeManifest: PATH/NODE, the identity of a replicated database's node (docs/replication-plan.md
// section 6, "Membership"; format in docs/architecture.md). Text, one field a line:
//
//   shardtx-node 1
//   cluster <cluster id>
//   node <this node's id>
//   incarnation <n>          bumped (and synced) by every Open
//   member <id> <address>    one line per member, in the order of the options of the last
//                            successful Open (the list that matched the Raft configuration)
//   join 1                   only if the node joined an existing cluster (never bootstraps)
//
// Written whole and atomically (temp file, fsync, rename, fsync of PATH).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "shardtx/env.h"
#include "shardtx/options.h"

namespace shardtx::txn {

struct NodeManifest {
  std::string cluster_id;
  uint64_t node_id = 0;
  uint64_t incarnation = 0;
  std::vector<ReplicationMember> members;
  bool join = false;
};

// PATH/NODE's contents, or nullopt when there is none. kDataLoss naming the file and line when it
// does not parse.
absl::StatusOr<std::optional<NodeManifest>> ReadNodeManifest(Env* env, const std::string& path);
// Writes PATH/NODE atomically and durably.
absl::Status WriteNodeManifest(Env* env, const std::string& path, const NodeManifest& manifest);

// "1@10.0.0.1:7000, 2@10.0.0.2:7000": a member list for messages.
std::string MembersToString(const std::vector<ReplicationMember>& members);
// The same members (ids and addresses), in any order.
bool SameMembers(std::vector<ReplicationMember> a, std::vector<ReplicationMember> b);
// One list is the other with one member more (the same ids and addresses otherwise).
bool OneMemberApart(const std::vector<ReplicationMember>& a,
                    const std::vector<ReplicationMember>& b);

}  // namespace shardtx::txn
