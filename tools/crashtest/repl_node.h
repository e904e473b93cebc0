// A node of `crashtest --mode=replicated`: one member of a three-node replicated database
// (Options::replication), run as a process of its own by the parent (repl_driver.h). It opens
// its directory (recovery; the Raft groups join the cluster), says "R", then obeys the parent's
// commands, one line each on stdin, and reports on fd 3 (repl_protocol.h). Its workload threads
// run bank transfers inside one shard, or between two shards (cross_pct), on the shards this
// node leads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "shardtx/options.h"

namespace shardtx::crashtest {

struct ReplNodeConfig {
  int fd = 3;  // reports to the parent
  uint64_t node_id = 0;
  std::string dir;  // the node's database directory
  std::string cluster;
  std::vector<ReplicationMember> members;
  int shards = 2;
  int threads = 2;
  int election_ms = 300;
  int pause_ms = 0;  // each workload thread sleeps this long after each transfer
  uint64_t seed = 0;
  // A deliberately lying node, to prove the parent's checks can fail: "ack_refused" reports a
  // commit refused with kUnavailable (no effect) as acknowledged. Empty: none.
  std::string broken;
  // This node is a new member joining the cluster (ReplicationOptions::join; read by its first
  // Open only): it waits for the leaders to add it.
  bool join = false;
  // Percentage of transfers between accounts of two shards (a cross-shard transaction, run
  // only when this node leads both shards); the rest stay inside one shard.
  int cross_pct = 0;
};

// Runs the node if --repl_node was given (never returns then); -1 otherwise.
int ReplNodeMain();

// "1=127.0.0.1:7000,2=..." <-> members. Parse returns false on a malformed list.
std::string FormatMembers(const std::vector<ReplicationMember>& members);
bool ParseMembers(const std::string& text, std::vector<ReplicationMember>* members);

// The options of every node: MakeOptions (layout.h) plus replication.
Options ReplNodeOptions(const ReplNodeConfig& config);

}  // namespace shardtx::crashtest
