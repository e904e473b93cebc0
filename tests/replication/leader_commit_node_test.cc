// Plan step 5 over real Raft nodes (raft_uv, TCP on 127.0.0.1): three Databases whose shard is
// replicated by a ShardReplica attached to a RaftNode each. Blocking commits on the leader are
// acknowledged and reach every replica (a checkpoint on each in between; the latency printed); a
// follower refuses naming the leader's address; after the leader's node closes, a new leader
// commits above every applied timestamp. Read-only commits (plan step 7) are confirmed by
// barriers on the leader, concurrently from several threads, and refused on a follower. Waits are
// on condition variables fed by the replicas' hooks, with generous deadlines (no sleeps).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "replication/raft_node.h"
#include "replication/shard_machine.h"
#include "replication/shard_replica.h"
#include "shardtx/database.h"
#include "tests/replication/db_calls.h"
#include "tests/replication/free_ports.h"
#include "txn/database_impl.h"
#include "util/mutex.h"

namespace shardtx::replication {
namespace {

#ifdef SHARDTX_REPLICATION_SLOW_BUILD
constexpr unsigned kElectionMs = 1000;
constexpr unsigned kHeartbeatMs = 100;
#else
constexpr unsigned kElectionMs = 300;
constexpr unsigned kHeartbeatMs = 50;
#endif
constexpr auto kDeadline = std::chrono::seconds(30);

txn::DatabaseImpl* Impl(Database* db) { return static_cast<txn::DatabaseImpl*>(db); }

class NodeCluster {
 public:
  explicit NodeCluster(const std::string& name) {
    root_ = replication::FreshTestRoot("leader_node", name);
    std::vector<int> ports = FreePorts(3);
    for (int i = 0; i < 3; i++) {
      members_.push_back({static_cast<uint64_t>(i + 1),
                          absl::StrCat("127.0.0.1:", ports.size() > size_t(i) ? ports[i] : 1)});
    }
    for (int i = 0; i < 3; i++) {
      Options o;
      o.path = absl::StrCat(root_, "/db", i + 1);
      o.num_shards = 1;
      o.wal_segment_size = 256 << 10;
      o.max_txn_bytes = 64 << 10;
      o.lmdb_map_size = 32ull << 20;
      auto db = Database::Open(o);
      if (!db.ok()) {
        error_ = db.status().ToString();
        return;
      }
      dbs_.push_back(std::move(*db));
    }
    for (int i = 0; i < 3; i++) {
      ShardReplicaOptions ro;
      ro.server = members_[i].id;
      ro.on_applied = [this] { Notify(); };
      auto replica = std::make_unique<ShardReplica>(ro, Impl(dbs_[i].get())->shard(0));
      ShardReplica* r = replica.get();
      Impl(dbs_[i].get())->AttachReplicatedLog(0, r);
      RaftNodeOptions no;
      no.id = members_[i].id;
      no.address = members_[i].address;
      no.dir = absl::StrCat(root_, "/raft", i + 1);
      no.members = members_;
      no.election_timeout_ms = kElectionMs;
      no.heartbeat_ms = kHeartbeatMs;
      no.snapshot_threshold = 1'000'000;  // a ShardReplica cannot install snapshots yet
      no.snapshot_trailing = 1'000'000;
      no.connect_retry_ms = 50;
      no.on_change = [this, r] {
        r->OnNodeChange();
        Notify();
      };
      auto node = RaftNode::Open(no, std::move(replica));
      if (!node.ok()) {
        error_ = node.status().ToString();
        return;
      }
      r->AttachNode(node->get());
      replicas_.push_back(r);
      nodes_.push_back(std::move(*node));
    }
  }
  ~NodeCluster() {
    for (auto& n : nodes_) n.reset();  // closes each node, then destroys its replica
    dbs_.clear();
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  const std::string& error() const { return error_; }
  Database& db(int i) { return *dbs_[i]; }
  ShardReplica& replica(int i) { return *replicas_[i]; }
  const RaftMember& member(int i) const { return members_[i]; }
  void CloseNode(int i) { nodes_[i]->Close(); }

  // Waits (on the replicas' and nodes' notifications) until `done()`.
  bool WaitFor(const std::function<bool()>& done) {
    const auto end = std::chrono::steady_clock::now() + kDeadline;
    MutexLock l(&mu_);
    while (!done()) {
      if (std::chrono::steady_clock::now() >= end) return false;
      cv_.WaitFor(std::chrono::milliseconds(100));
    }
    return true;
  }
  // The replica whose commit path says it is a ready leader, among those in `among`.
  std::optional<int> ReadyLeader(const std::vector<int>& among) {
    for (int i : among) {
      if (replicas_[i]->CheckLeader().ok()) return i;
    }
    return std::nullopt;
  }

 private:
  void Notify() {
    MutexLock l(&mu_);
    cv_.SignalAll();
  }

  std::string root_;
  std::string error_;
  std::vector<RaftMember> members_;
  std::vector<std::unique_ptr<Database>> dbs_;
  std::vector<ShardReplica*> replicas_;  // owned by nodes_
  std::vector<std::unique_ptr<RaftNode>> nodes_;
  Mutex mu_;
  CondVar cv_{&mu_};
};


TEST(LeaderCommitOverRaftNodes, CommitsFailOverAndRefuseOnFollowers) {
  NodeCluster c("failover");
  ASSERT_EQ(c.error(), "");
  std::optional<int> leader;
  ASSERT_TRUE(c.WaitFor([&] { return (leader = c.ReadyLeader({0, 1, 2})).has_value(); }));
  // One client, one commit at a time; a checkpoint on every replica after the 20th.
  constexpr int kCommits = 120;
  std::vector<double> micros;
  for (int k = 0; k < kCommits; ++k) {
    const auto start = std::chrono::steady_clock::now();
    absl::Status s = PutOne(c.db(*leader), absl::StrCat("k", k), absl::StrCat("v", k));
    micros.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count());
    ASSERT_TRUE(s.ok()) << s;
    if (k == 19) {
      for (int i = 0; i < 3; ++i) ASSERT_TRUE(c.db(i).Checkpoint().ok()) << "server " << i;
    }
  }
  std::sort(micros.begin(), micros.end());
  std::printf("%d replicated commits, one client, 3 nodes on 127.0.0.1: p50 %.0f us, p90 %.0f us\n",
              kCommits, micros[micros.size() / 2], micros[micros.size() * 9 / 10]);
  // Every replica applies them all: the leader logged them, the followers redid them.
  ASSERT_TRUE(c.WaitFor([&] {
    for (int i = 0; i < 3; ++i) {
      if (c.replica(i).committed() + c.replica(i).redone() < kCommits) return false;
    }
    return true;
  }));
  EXPECT_EQ(c.replica(*leader).committed(), static_cast<uint64_t>(kCommits));
  EXPECT_EQ(c.replica(*leader).redone(), 0u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(ReadOne(c.db(i), "k119"), std::optional<std::string>("v119")) << "server " << i;
    EXPECT_EQ(c.replica(i).failures(), 0u) << c.replica(i).first_error();
  }
  // A follower refuses, naming the leader's id and address, with no effect.
  const int follower = (*leader + 1) % 3;
  absl::Status refused = PutOne(c.db(follower), "k0", "follower");
  EXPECT_TRUE(absl::IsUnavailable(refused)) << refused;
  EXPECT_TRUE(absl::StrContains(
      refused.message(),
      absl::StrCat("leader is server ", c.member(*leader).id, " at ", c.member(*leader).address)))
      << refused;
  EXPECT_EQ(ReadOne(c.db(follower), "k0"), std::optional<std::string>("v0"));
  // The leader's node closes; a new leader commits above every applied timestamp.
  c.CloseNode(*leader);
  std::vector<int> rest;
  for (int i = 0; i < 3; ++i) {
    if (i != *leader) rest.push_back(i);
  }
  std::optional<int> next;
  ASSERT_TRUE(c.WaitFor([&] { return (next = c.ReadyLeader(rest)).has_value(); }));
  absl::Status s = PutOne(c.db(*next), "k0", "after failover");
  ASSERT_TRUE(s.ok()) << s;
  const int other = rest[0] == *next ? rest[1] : rest[0];
  ASSERT_TRUE(c.WaitFor([&] { return ReadOne(c.db(other), "k0") == "after failover"; }));
  EXPECT_EQ(ReadOne(c.db(*next), "k0"), std::optional<std::string>("after failover"));
  absl::StatusOr<ShardDigest> a = DigestOf(*Impl(&c.db(*next))->shard(0));
  absl::StatusOr<ShardDigest> b = DigestOf(*Impl(&c.db(other))->shard(0));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(a->keys, static_cast<uint64_t>(kCommits));
}

// Plan step 7 over RaftNodes: a read-only commit on the leader is confirmed by a barrier (the
// RaftNode path proposes it at once, and the next from each barrier's completion); on a follower
// it fails at once naming the leader's id and address.
TEST(LeaderCommitOverRaftNodes, ReadOnlyCommitsConfirmOnTheLeaderAndFailOnAFollower) {
  NodeCluster c("reads");
  ASSERT_EQ(c.error(), "");
  std::optional<int> leader;
  ASSERT_TRUE(c.WaitFor([&] { return (leader = c.ReadyLeader({0, 1, 2})).has_value(); }));
  ASSERT_TRUE(PutOne(c.db(*leader), "k", "v").ok());
  constexpr int kThreads = 4, kReads = 25;
  std::vector<std::thread> readers;
  std::vector<absl::Status> failures(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    readers.emplace_back([&, t] {
      for (int k = 0; k < kReads && failures[t].ok(); ++k) {
        std::unique_ptr<Transaction> txn = c.db(*leader).Begin();
        absl::StatusOr<std::string> v = txn->Get("k");
        if (!v.ok() || *v != "v") {
          failures[t] = absl::InternalError(absl::StrCat("read: ", v.status().ToString()));
          break;
        }
        failures[t] = txn->Commit();
      }
    });
  }
  for (std::thread& r : readers) r.join();
  for (const absl::Status& s : failures) EXPECT_TRUE(s.ok()) << s;
  ShardReplica& r = c.replica(*leader);
  std::printf("%d read-only commits from %d threads on the leader: %llu barriers proposed\n",
              kThreads * kReads, kThreads, static_cast<unsigned long long>(r.barriers_proposed()));
  EXPECT_EQ(r.reads_confirmed(), static_cast<uint64_t>(kThreads * kReads));
  EXPECT_GE(r.barriers_committed(), 1u);
  EXPECT_LE(r.barriers_proposed(), r.reads_confirmed());
  const int follower = (*leader + 1) % 3;
  std::unique_ptr<Transaction> txn = c.db(follower).Begin();
  EXPECT_TRUE(txn->Get("k").ok() || absl::IsNotFound(txn->Get("k").status()));
  const absl::Status refused = txn->Commit();
  EXPECT_TRUE(absl::IsUnavailable(refused)) << refused;
  EXPECT_TRUE(absl::StrContains(
      refused.message(),
      absl::StrCat("leader is server ", c.member(*leader).id, " at ", c.member(*leader).address)))
      << refused;
  EXPECT_EQ(c.replica(follower).barriers_proposed(), 0u);
  EXPECT_EQ(c.replica(follower).reads_refused(), 1u);
}

}  // namespace
}  // namespace shardtx::replication
