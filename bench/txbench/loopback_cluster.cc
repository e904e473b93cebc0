#include "bench/txbench/loopback_cluster.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "util/loopback_ports.h"

namespace txbench {
namespace {

std::string Describe(const shardtx::Database::ShardLeadership& l) {
  using Role = shardtx::Database::ShardLeadership::Role;
  const char* role = l.role == Role::kLeader      ? "leader"
                     : l.role == Role::kCandidate ? "candidate"
                     : l.role == Role::kFollower  ? "follower"
                                                  : "unavailable";
  return absl::StrCat("shard ", l.shard, " ", role, l.ready ? " (ready)" : "", " term ", l.term,
                      " leader ", l.leader_id);
}

}  // namespace

bool LeadsEveryShard(shardtx::Database& db) {
  const std::vector<shardtx::Database::ShardLeadership> l = db.Leadership();
  return !l.empty() && std::all_of(l.begin(), l.end(), [](const auto& s) { return s.ready; });
}

bool AwaitLeadership(shardtx::Database& db) {
  const absl::Time until = absl::Now() + kLeadershipWait;
  while (!LeadsEveryShard(db)) {
    if (absl::Now() >= until) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

absl::StatusOr<int> FreePortRange(int count, const std::vector<int>& avoid) {
  const int first = shardtx::FreeLoopbackPortRange(count, avoid);
  if (first == 0) {
    return absl::UnavailableError(
        absl::StrCat("no ", count,
                     " consecutive free TCP ports on 127.0.0.1 below the ephemeral "
                     "range"));
  }
  return first;
}

namespace {

// The ports P .. P + num_shards of every member of `cluster`.
std::vector<int> UsedPorts(const LoopbackCluster& cluster) {
  const int shards = static_cast<int>(std::max<uint32_t>(cluster.base.num_shards, 1));
  std::vector<int> used;
  for (const shardtx::ReplicationMember& m : cluster.members) {
    const size_t colon = m.address.rfind(':');
    int p = 0;
    if (colon == std::string::npos || !absl::SimpleAtoi(m.address.substr(colon + 1), &p)) continue;
    for (int i = 0; i <= shards; ++i) used.push_back(p + i);
  }
  return used;
}

}  // namespace

shardtx::Options NodeOptions(const LoopbackCluster& cluster, uint64_t id) {
  shardtx::Options o = cluster.base;
  o.path = absl::StrCat(cluster.dir, "/node", id);
  o.replication.node_id = id;
  o.replication.members = cluster.members;
  o.replication.election_timeout = id == 1 ? kLeaderElectionTimeout : kFollowerElectionTimeout;
  o.replication.heartbeat = kHeartbeat;
  // Leadership gathering brings every shard back to node 1 after it lost one (a cross-shard
  // commit needs one node leading every participant).
  o.replication.preferred_leader = 1;
  o.replication.join = false;
  return o;
}

absl::StatusOr<shardtx::ReplicationMember> NewLoopbackMember(const LoopbackCluster& cluster) {
  uint64_t id = 0;
  for (const shardtx::ReplicationMember& m : cluster.members) id = std::max(id, m.id);
  const int shards = static_cast<int>(std::max<uint32_t>(cluster.base.num_shards, 1));
  auto p = FreePortRange(shards + 1, UsedPorts(cluster));  // P (snapshots) + one per shard
  if (!p.ok()) return p.status();
  return shardtx::ReplicationMember{id + 1, absl::StrCat("127.0.0.1:", *p)};
}

absl::StatusOr<LoopbackCluster> OpenLoopbackCluster(const shardtx::Options& base,
                                                    const std::string& dir, int replicas) {
  const uint32_t shards = std::max<uint32_t>(base.num_shards, 1);
  LoopbackCluster cluster;
  cluster.base = base;
  cluster.dir = dir;
  for (int id = 1; id <= replicas; ++id) {
    auto m = NewLoopbackMember(cluster);
    if (!m.ok()) return m.status();
    cluster.members.push_back(*m);
  }
  // A cluster id of its own for every run: a directory left by another run is never joined.
  std::random_device rd;
  cluster.base.replication.cluster_id =
      absl::StrCat("txbench-", getpid(), "-", absl::Hex(rd(), absl::kZeroPad8));
  for (int id = 1; id <= replicas; ++id) {
    const shardtx::Options o = NodeOptions(cluster, static_cast<uint64_t>(id));
    std::error_code ec;
    std::filesystem::remove_all(o.path, ec);
    auto db = shardtx::Database::Open(o);
    if (!db.ok()) {
      return absl::Status(db.status().code(), absl::StrCat("replica ", id, " (", o.path, ", ",
                                                           cluster.members[id - 1].address,
                                                           "): ", db.status().message()));
    }
    cluster.dbs.push_back(std::move(*db));
  }
  // Polled against a deadline: Leadership() never blocks, and nothing notifies a caller.
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(absl::ToInt64Milliseconds(kLeadershipDeadline));
  for (;;) {
    const std::vector<shardtx::Database::ShardLeadership> l = cluster.dbs[0]->Leadership();
    const bool ready = l.size() == shards &&
                       std::all_of(l.begin(), l.end(), [](const auto& s) { return s.ready; });
    if (ready) return cluster;
    if (std::chrono::steady_clock::now() >= deadline) {
      std::vector<std::string> seen;
      for (size_t i = 0; i < cluster.dbs.size(); ++i) {
        std::vector<std::string> shards_seen;
        for (const auto& s : cluster.dbs[i]->Leadership()) shards_seen.push_back(Describe(s));
        seen.push_back(absl::StrCat("node ", i + 1, ": ", absl::StrJoin(shards_seen, ", ")));
      }
      return absl::DeadlineExceededError(
          absl::StrCat("txbench --replicas: node 1 did not become the ready leader of all ", shards,
                       " shards within ", absl::FormatDuration(kLeadershipDeadline), " (",
                       absl::StrJoin(seen, "; "), ")"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

ReplicaCounters CountersOf(uint64_t node_id, const shardtx::Stats& stats) {
  ReplicaCounters c;
  c.node_id = node_id;
  c.wal_fsyncs = stats.fsyncs;  // a shared log's counted once
  c.read_only_commits = stats.read_only_commits;
  c.follower_reads = stats.follower_reads;
  c.follower_reads_too_stale = stats.follower_reads_too_stale;
  bool staleness_known = !stats.shards.empty();
  int64_t staleness = 0;
  for (const shardtx::ShardStatsView& s : stats.shards) {
    c.raft_log_writes += s.raft_log_writes;
    c.raft_entries_stored += s.raft_entries_stored;
    c.lmdb_syncs += s.checkpoint_txns + s.checkpoints;
    // A shared log's figures are repeated in every shard: count its appends once.
    if (!stats.shared_log || &s == &stats.shards.front()) c.wal_records += s.wal_appends;
    staleness_known = staleness_known && s.replication.follower_staleness_ms >= 0;
    staleness = std::max(staleness, s.replication.follower_staleness_ms);
  }
  c.staleness_ms = staleness_known ? staleness : -1;
  return c;
}

}  // namespace txbench
