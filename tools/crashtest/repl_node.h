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
  // commit refused with kUnavailable (no effect) as acknowledged; "torn_read" makes the
  // follower readers read shard 0 in one follower-read transaction and the other shards in a
  // second one, begun after the first's reads (two snapshots: a cross-shard transfer committed
  // between them breaks the total). Empty: none.
  std::string broken;
  // This node is a new member joining the cluster (ReplicationOptions::join; read by its first
  // Open only): it waits for the leaders to add it.
  bool join = false;
  // Percentage of transfers between accounts of two shards (a cross-shard transaction, run
  // only when this node leads both shards); the rest stay inside one shard.
  int cross_pct = 0;
  // Percentage of transfers prepared under a name (Transaction::Prepare) instead of committed,
  // then decided by this node's decider thread (the host's coordinator), or by another node's
  // once that one leads the transfer's shards: commit or rollback as ReplNamedCommits(named_seed,
  // id) says.
  int named_pct = 0;
  uint64_t named_seed = 0;
  // Follower reader threads (TxnOptions::follower_read) while the workload runs: each sums every
  // account of every shard in one transaction, which must give 0 (reported "V" otherwise).
  // Above 0, ReplicationOptions::closed_ts_refresh is twice the heartbeat.
  int readers = 0;
  // "bank" (transfers) or "cycle" (swaps of a cycle's nodes, repl_protocol.h); the readers check
  // both the bank's total and the cycle.
  std::string workload = "bank";
};

// Runs the node if --repl_node was given (never returns then); -1 otherwise.
int ReplNodeMain();

// "1=127.0.0.1:7000,2=..." <-> members. Parse returns false on a malformed list.
std::string FormatMembers(const std::vector<ReplicationMember>& members);
bool ParseMembers(const std::string& text, std::vector<ReplicationMember>* members);

// The options of every node: MakeOptions (layout.h) plus replication.
Options ReplNodeOptions(const ReplNodeConfig& config);

}  // namespace shardtx::crashtest
