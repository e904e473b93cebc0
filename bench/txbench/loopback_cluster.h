// txbench --replicas: N replicated shardtx Databases in this process, members on 127.0.0.1, with
// node 1 the leader of every shard; and the per-replica counters the report prints.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "shardtx/database.h"
#include "shardtx/options.h"

namespace txbench {

// Election timeouts of the loopback cluster. Node 1 keeps libraft's default; the others wait
// far longer, so node 1 stands first and wins every shard's election, and nobody challenges it
// while its heartbeats arrive. An election timeout is a per-node setting that only decides when
// a follower that hears no leader stands for election: the commit path of a leader in steady
// state never reads it, so skewing it changes who leads, not what a commit costs. The
// benchmark measures steady state under a known leader, not failover.
inline constexpr absl::Duration kLeaderElectionTimeout = absl::Seconds(1);
inline constexpr absl::Duration kFollowerElectionTimeout = absl::Seconds(30);
inline constexpr absl::Duration kHeartbeat = absl::Milliseconds(100);
// How long Open waits for node 1 to lead every shard.
inline constexpr absl::Duration kLeadershipDeadline = absl::Seconds(30);
// --workload=readonly: ReplicationOptions::closed_ts_refresh of every node. A leader then closes
// each shard's timestamp at least this often, busy or idle, so a follower's staleness stays
// within about this plus the replication delay.
inline constexpr absl::Duration kClosedTsRefresh = absl::Milliseconds(250);

// How long a commit that failed because node 1 lost the leadership of a shard waits for it to
// lead every shard again. A libraft leader that hears from no majority for its election timeout
// (a heavily loaded machine) steps down; node 1, whose timeout is the shortest, wins it back,
// which can take a follower's election timeout (30 s) and more: a follower that heard from a
// leader within its timeout refuses votes.
inline constexpr absl::Duration kLeadershipWait = absl::Seconds(180);

// Whether `db` is the ready leader of every shard.
bool LeadsEveryShard(shardtx::Database& db);

// Polls until `db` leads every shard (true), or kLeadershipWait passed (false).
bool AwaitLeadership(shardtx::Database& db);

// The first of `count` consecutive TCP ports on 127.0.0.1 that could all be bound just now,
// none of them in `avoid`. They are released before it returns, so another process may take
// one before the caller does (Open then fails, naming the address). kUnavailable if none found.
absl::StatusOr<int> FreePortRange(int count, const std::vector<int>& avoid);

// The members and the open Databases of one loopback cluster.
struct LoopbackCluster {
  std::vector<shardtx::ReplicationMember> members;
  // dbs[i] is node i + 1; dbs[0] leads every shard once Open returned.
  std::vector<std::unique_ptr<shardtx::Database>> dbs;
  // What every node was opened with besides its own id, path and election timeout (the caller's
  // options with the cluster id and the members set); nodes live in dir/node<id>.
  shardtx::Options base;
  std::string dir;
};

// The options of node `id` of `cluster` (dir/node<id>, the cluster's members, the election
// timeouts above: node 1 the leader's, any other a follower's), not joining.
shardtx::Options NodeOptions(const LoopbackCluster& cluster, uint64_t id);

// A member for a node to be added to `cluster`: id one above the largest member's, an address
// on 127.0.0.1 with a free port range (P .. P + num_shards) none of the members use.
// kUnavailable if no range is free.
absl::StatusOr<shardtx::ReplicationMember> NewLoopbackMember(const LoopbackCluster& cluster);

// Opens `replicas` Databases with `base`'s options (path, replication and the shard count's
// port needs aside), in `dir`/node1 .. `dir`/nodeN, members on 127.0.0.1 with free port ranges
// (P .. P + num_shards each), election timeouts as above; then waits, polling
// Database::Leadership() against kLeadershipDeadline, until node 1 says ready for every shard.
// kDeadlineExceeded naming what each node saw if it does not; any Open error as it is.
absl::StatusOr<LoopbackCluster> OpenLoopbackCluster(const shardtx::Options& base,
                                                    const std::string& dir, int replicas);

// One replica's durable-write counters since it opened, from Database::GetStats().
struct ReplicaCounters {
  uint64_t node_id = 0;
  uint64_t raft_log_writes = 0;      // O_DSYNC writes of the shards' Raft logs (summed)
  uint64_t raft_entries_stored = 0;  // entries they stored
  uint64_t wal_fsyncs = 0;           // the applied log's fdatasyncs (a shared log once)
  uint64_t wal_records = 0;          // records appended to it
  uint64_t lmdb_syncs = 0;           // checkpoint LMDB transactions plus checkpoints
  // Follower reads (issue 17 step 9): read-only transactions committed here (follower reads
  // and, on a leader, linearizable ones), follower-read transactions begun and refused as too
  // stale; and at the time of the stats, the largest follower_staleness_ms over the shards (-1
  // when a shard's is not known).
  uint64_t read_only_commits = 0;
  uint64_t follower_reads = 0;
  uint64_t follower_reads_too_stale = 0;
  int64_t staleness_ms = -1;
};
ReplicaCounters CountersOf(uint64_t node_id, const shardtx::Stats& stats);

}  // namespace txbench
