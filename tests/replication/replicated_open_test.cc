// Plan step 8: a replicated Database opened through the public Database::Open (Options::
// replication), three nodes in one process on 127.0.0.1, two shards each (shard g's Raft group on
// port P+1+g). They form a cluster, elect, commit on the leader, refuse on the others naming it,
// reopen with data, leadership and a higher incarnation; and the node manifest's checks refuse a
// wrong member list, a foreign directory, mixed Raft state and a failed Open leaves nothing
// behind. Waits poll Leadership() or reads against a deadline.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "engine/log_record.h"
#include "gtest/gtest.h"
#include "replication/link_filter.h"
#include "replication/shard_replica.h"
#include "shardtx/database.h"
#include "tests/replication/db_calls.h"
#include "tests/replication/free_ports.h"
#include "tests/replication/loopback_timing.h"
#include "txn/database_impl.h"
#include "txn/replicated_shards.h"
#include "txn/txn_ids.h"

namespace shardtx {
namespace {

using replication::kDeadline;
using replication::kElectionMs;
using replication::kHeartbeatMs;
using replication::WaitFor;
constexpr uint32_t kShards = 2;

std::string Root(const std::string& name) {
  std::error_code ec;
  const std::string base =
      std::filesystem::is_directory("/dev/shm", ec) ? "/dev/shm" : ::testing::TempDir();
  std::string root = absl::StrCat(base, "/shardtx_repl_open_p", ::getpid(), "_", name);
  std::filesystem::remove_all(root, ec);
  std::filesystem::create_directories(root, ec);
  return root;
}

// Three members' options, each with its own P .. P+kShards free.
std::vector<ReplicationMember> Members() {
  std::vector<ReplicationMember> members;
  std::vector<int> used;
  for (uint64_t id = 1; id <= 3; ++id) {
    const int p = replication::FreePortRange(1 + kShards, used);
    for (uint32_t i = 0; i <= kShards; ++i) used.push_back(p + static_cast<int>(i));
    members.push_back({id, absl::StrCat("127.0.0.1:", p)});
  }
  return members;
}

Options NodeOptions(const std::string& dir, uint64_t id, const std::string& cluster,
                    const std::vector<ReplicationMember>& members) {
  // "a..." on shard 0, anything else on 1.
  Options o = replication::LoopbackNodeOptions(dir, kShards, id, cluster, members);
  // These tests find each shard's leader and commit there: leaders stay where elected (a
  // transfer in between would refuse the commit). Gathering: gather_test.cc.
  o.replication.gather_leaders = false;
  return o;
}

using replication::PutOne;
using replication::ReadOne;

uint64_t Incarnation(Database& db) { return static_cast<txn::DatabaseImpl&>(db).incarnation(); }

class Cluster {
 public:
  explicit Cluster(const std::string& name, const std::string& cluster = "c1")
      : root_(Root(name)), cluster_(cluster), members_(Members()) {}
  ~Cluster() {
    dbs_.clear();
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  std::string Dir(int i) const { return absl::StrCat(root_, "/node", i + 1); }
  Options OptionsOf(int i) const {
    Options o = NodeOptions(Dir(i), members_[i].id, cluster_, members_);
    if (tweak_) tweak_(o);
    return o;
  }
  // Applied to every node's options from now on.
  void Tweak(std::function<void(Options&)> tweak) { tweak_ = std::move(tweak); }
  void Close(int i) { dbs_[i].reset(); }
  absl::Status Reopen(int i) {
    auto db = Database::Open(OptionsOf(i));
    if (!db.ok()) return db.status();
    dbs_[i] = std::move(*db);
    return absl::OkStatus();
  }
  const ReplicationMember& member(int i) const { return members_[i]; }
  const std::vector<ReplicationMember>& members() const { return members_; }
  const std::string& root() const { return root_; }

  absl::Status OpenAll() {
    dbs_.clear();
    for (int i = 0; i < 3; ++i) {
      auto db = Database::Open(OptionsOf(i));
      if (!db.ok()) return db.status();
      dbs_.push_back(std::move(*db));
    }
    return absl::OkStatus();
  }
  void CloseAll() { dbs_.clear(); }
  Database& db(int i) { return *dbs_[i]; }

  // The node whose shard `shard` is a ready leader, once every node agrees on it.
  std::optional<int> Leader(uint32_t shard) {
    std::optional<int> leader;
    bool agreed = WaitFor([&] {
      leader.reset();
      for (int i = 0; i < 3; ++i) {
        std::vector<Database::ShardLeadership> l = dbs_[i]->Leadership();
        if (l.size() != kShards) return false;
        if (l[shard].ready) leader = i;
      }
      if (!leader.has_value()) return false;
      for (int i = 0; i < 3; ++i) {
        if (dbs_[i]->Leadership()[shard].leader_id != members_[*leader].id) return false;
      }
      return true;
    });
    return agreed ? leader : std::nullopt;
  }

 private:
  std::string root_;
  std::string cluster_;
  std::vector<ReplicationMember> members_;
  std::function<void(Options&)> tweak_;
  std::vector<std::unique_ptr<Database>> dbs_;
};

TEST(ReplicatedOpen, ThreeNodesElectCommitRefuseAndReopen) {
  Cluster c("basic");
  ASSERT_TRUE(c.OpenAll().ok());
  struct sigaction sa {};
  ASSERT_EQ(sigaction(SIGPIPE, nullptr, &sa), 0);
  EXPECT_EQ(sa.sa_handler, SIG_IGN);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Incarnation(c.db(i)), 1u);
  std::optional<int> leader = c.Leader(0);
  ASSERT_TRUE(leader.has_value());
  ASSERT_TRUE(PutOne(c.db(*leader), "a1", "v1").ok());
  const std::string names_leader =
      absl::StrCat("leader is server ", c.member(*leader).id, " at ", c.member(*leader).address);
  for (int i = 0; i < 3; ++i) {
    if (i == *leader) continue;
    absl::Status refused = PutOne(c.db(i), "a2", "no");
    EXPECT_TRUE(absl::IsUnavailable(refused)) << refused;
    EXPECT_TRUE(absl::StrContains(refused.message(), names_leader)) << refused;
    std::vector<Database::ShardLeadership> l = c.db(i).Leadership();
    ASSERT_EQ(l.size(), kShards);
    EXPECT_EQ(l[0].role, Database::ShardLeadership::Role::kFollower);
    EXPECT_EQ(l[0].leader_address, c.member(*leader).address);
    EXPECT_EQ(l[0].term, c.db(*leader).Leadership()[0].term);
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(WaitFor([&] { return ReadOne(c.db(i), "a1") == "v1"; })) << "node " << i;
    EXPECT_EQ(ReadOne(c.db(i), "a2"), std::nullopt) << "node " << i;
  }
  // Reads are confirmed at Commit (plan step 7): a follower's read-only commit of shard 0 is
  // refused naming the leader, the leader's is confirmed by a barrier.
  for (int i = 0; i < 3; ++i) {
    std::unique_ptr<Transaction> txn = c.db(i).Begin();
    absl::StatusOr<std::string> v = txn->Get("a1");
    EXPECT_TRUE(v.ok() && *v == "v1") << "node " << i << ": " << v.status();
    const absl::Status s = txn->Commit();
    if (i == *leader) {
      EXPECT_TRUE(s.ok()) << s;
    } else {
      EXPECT_TRUE(absl::IsUnavailable(s)) << s;
      EXPECT_TRUE(absl::StrContains(s.message(), names_leader)) << s;
    }
  }
  // Shard 1 is a group of its own (its own leader, maybe another node).
  std::optional<int> leader1 = c.Leader(1);
  ASSERT_TRUE(leader1.has_value());
  ASSERT_TRUE(PutOne(c.db(*leader1), "b1", "w1").ok());
  // A cross-shard commit runs on a node leading both shards (issue 17 step 2); elsewhere it is
  // refused naming the leaders. CommitAsync with writes stays closed.
  {
    std::unique_ptr<Transaction> txn = c.db(*leader).Begin();
    ASSERT_TRUE(txn->Put("a3", "x").ok() && txn->Put("b3", "x").ok());
    const absl::Status cross = txn->Commit();
    if (*leader == *leader1) {
      EXPECT_TRUE(cross.ok()) << cross;
    } else {
      EXPECT_TRUE(absl::IsUnavailable(cross)) << cross;
      EXPECT_TRUE(absl::StrContains(cross.message(), "shard 1: ")) << cross;
    }
    // A named prepare of shard 0 on its leader (issue 17 step 3), rolled back there.
    txn = c.db(*leader).Begin();
    ASSERT_TRUE(txn->Put("a3", "x").ok());
    EXPECT_TRUE(txn->Prepare("named").ok());
    EXPECT_TRUE(c.db(*leader).RollbackPrepared("named").ok());
    txn = c.db(*leader).Begin();
    ASSERT_TRUE(txn->Put("a3", "x").ok());
    EXPECT_TRUE(absl::IsUnimplemented(txn->CommitAsync([](absl::Status) {})));
  }

  // Close all, reopen all: data, leadership, a higher incarnation.
  c.CloseAll();
  ASSERT_TRUE(c.OpenAll().ok());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Incarnation(c.db(i)), 2u);
    EXPECT_EQ(ReadOne(c.db(i), "a1"), "v1") << "node " << i;
    EXPECT_TRUE(WaitFor([&] { return ReadOne(c.db(i), "b1") == "w1"; })) << "node " << i;
  }
  leader = c.Leader(0);
  ASSERT_TRUE(leader.has_value());
  ASSERT_TRUE(PutOne(c.db(*leader), "a1", "v2").ok());
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(WaitFor([&] { return ReadOne(c.db(i), "a1") == "v2"; })) << "node " << i;
  }
}

// Step 6 over real nodes: transaction ids name the node and its incarnation (unique across
// nodes and restarts), and after every node restarted (a checkpoint first, so the tables come
// from the stores) the leader of shard 0 answers kCommitted for a commit and kAborted for a
// transaction that never committed; a follower answers kCommitted from its own table and sends
// a host asking about the other to the leader.
TEST(ReplicatedOpen, TxnIdsAndOutcomesSurviveARestart) {
  Cluster c("outcome");
  ASSERT_TRUE(c.OpenAll().ok());
  std::vector<uint64_t> seen;
  auto check_ids = [&](uint64_t incarnation) {
    for (int i = 0; i < 3; ++i) {
      const uint64_t id = c.db(i).Begin()->id();
      EXPECT_EQ(txn::TxnIds::NodeOf(id), c.member(i).id) << "node " << i;
      EXPECT_EQ(txn::TxnIds::IncarnationOf(id), incarnation) << "node " << i;
      for (uint64_t other : seen) EXPECT_NE(id, other);
      seen.push_back(id);
    }
  };
  check_ids(1);
  std::optional<int> leader = c.Leader(0);
  ASSERT_TRUE(leader.has_value());
  std::unique_ptr<Transaction> committed = c.db(*leader).Begin();
  ASSERT_TRUE(committed->Put("a1", "v1").ok());
  ASSERT_TRUE(committed->Commit().ok());
  std::unique_ptr<Transaction> never = c.db(*leader).Begin();
  ASSERT_TRUE(never->Put("a2", "v2").ok());
  const uint64_t committed_id = committed->id(), never_id = never->id();
  never.reset();  // rolled back: never proposed
  // This process gave never_id: it cannot tell yet.
  absl::StatusOr<Database::Outcome> own = c.db(*leader).GetOutcomeOfKey(never_id, "a2");
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(*own, Database::Outcome::kUnknown);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(WaitFor([&] { return ReadOne(c.db(i), "a1") == "v1"; })) << "node " << i;
    ASSERT_TRUE(c.db(i).Checkpoint().ok());
  }
  c.CloseAll();
  ASSERT_TRUE(c.OpenAll().ok());
  check_ids(2);
  leader = c.Leader(0);
  ASSERT_TRUE(leader.has_value());
  absl::StatusOr<Database::Outcome> o = c.db(*leader).GetOutcomeOfKey(committed_id, "a1");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(*o, Database::Outcome::kCommitted);
  o = c.db(*leader).GetOutcomeOfKey(never_id, "a2");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(*o, Database::Outcome::kAborted);
  const int follower = (*leader + 1) % 3;
  o = c.db(follower).GetOutcomeOfKey(committed_id, "a1");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(*o, Database::Outcome::kCommitted);
  o = c.db(follower).GetOutcomeOfKey(never_id, "a2");
  EXPECT_TRUE(absl::IsUnavailable(o.status())) << o.status();
  EXPECT_TRUE(absl::StrContains(o.status().message(),
                                absl::StrCat("leader is server ", c.member(*leader).id)))
      << o.status();
  EXPECT_EQ(c.db(follower).GetOutcome(never_id), Database::Outcome::kUnknown);
}

// Found by crashtest --mode=replicated: once libraft had taken a snapshot of a shard (every 1,024
// released entries), a node no longer restarted: raft_start restores the latest snapshot and
// ShardReplica::Restore refused every one (catch-up by snapshot was not built). A snapshot at or
// below what the shard applied (its own, taken after syncing the WAL) needs nothing installed.
// Node 1 reopens from the layout of earlier builds (Raft state in shard-NNN/raft/): moved back
// to raft-NNN/ at Open.
TEST(ReplicatedOpen, ReopensAfterLibraftTookASnapshot) {
  Cluster c("snapshot");
  ASSERT_TRUE(c.OpenAll().ok());
  std::optional<int> leader = c.Leader(0);
  ASSERT_TRUE(leader.has_value());
  constexpr int kCommits = 1100;  // past the snapshot threshold (1,024 entries)
  for (int i = 0; i < kCommits; ++i) {
    ASSERT_TRUE(PutOne(c.db(*leader), absl::StrCat("a", i % 10), absl::StrCat(i)).ok()) << i;
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(WaitFor([&] { return ReadOne(c.db(i), "a9") == absl::StrCat(kCommits - 1); }))
        << "node " << i;
  }
  c.CloseAll();
  for (uint32_t g = 0; g < kShards; ++g) {
    const std::string dir = absl::StrCat(c.Dir(0), "/raft-00", g);
    ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
    std::filesystem::rename(dir, absl::StrCat(c.Dir(0), "/shard-00", g, "/raft"));
  }
  ASSERT_TRUE(c.OpenAll().ok());
  for (uint32_t g = 0; g < kShards; ++g) {
    EXPECT_TRUE(std::filesystem::is_directory(absl::StrCat(c.Dir(0), "/raft-00", g))) << g;
    EXPECT_FALSE(std::filesystem::exists(absl::StrCat(c.Dir(0), "/shard-00", g, "/raft"))) << g;
  }
  leader = c.Leader(0);
  ASSERT_TRUE(leader.has_value());
  ASSERT_TRUE(PutOne(c.db(*leader), "a0", "after").ok());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(ReadOne(c.db(i), "a9"), absl::StrCat(kCommits - 1)) << "node " << i;
    EXPECT_TRUE(WaitFor([&] { return ReadOne(c.db(i), "a0") == "after"; })) << "node " << i;
  }
}

TEST(ReplicatedOpen, CloseAnswersACommitThatCannotReachAMajority) {
  Cluster c("close");
  ASSERT_TRUE(c.OpenAll().ok());
  std::optional<int> leader = c.Leader(0);
  ASSERT_TRUE(leader.has_value());
  auto db = Database::Open(c.OptionsOf(*leader));  // the directory is taken: refused at once
  ASSERT_TRUE(absl::IsFailedPrecondition(db.status())) << db.status();
  for (int i = 0; i < 3; ++i) {
    if (i != *leader) {
      ASSERT_TRUE(c.db(i).Close().ok());
    }
  }
  absl::Status outcome;
  std::thread committer([&] { outcome = PutOne(c.db(*leader), "a1", "stuck"); });
  auto* replica = static_cast<replication::ShardReplica*>(
      static_cast<txn::DatabaseImpl&>(c.db(*leader)).replicated_log(0));
  const bool in_flight = WaitFor([&] { return replica->waiting() == 1; });
  EXPECT_TRUE(in_flight);
  // Raft stops before Close waits for commits: the commit is answered (kUnknown once libraft
  // had it; kUnavailable, no effect, if still queued for the loop thread), Close returns.
  EXPECT_TRUE(c.db(*leader).Close().ok());
  committer.join();
  if (in_flight) {
    EXPECT_TRUE(absl::IsUnknown(outcome) || absl::IsUnavailable(outcome)) << outcome;
  }
  EXPECT_TRUE(c.db(*leader).Leadership().empty());
}

// Opens node 0 alone (no quorum needed) and closes it: its directory is bootstrapped.
void Bootstrap(const Cluster& c, int i) {
  auto db = Database::Open(c.OptionsOf(i));
  ASSERT_TRUE(db.ok()) << db.status();
}

TEST(ReplicatedOpen, WrongMemberListIsReportedWithBothLists) {
  Cluster c("members");
  ASSERT_NO_FATAL_FAILURE(Bootstrap(c, 0));
  Options o = c.OptionsOf(0);
  o.replication.members[2].address = "127.0.0.1:1";
  auto db = Database::Open(o);
  ASSERT_TRUE(absl::IsFailedPrecondition(db.status())) << db.status();
  EXPECT_TRUE(absl::StrContains(db.status().message(), "3@127.0.0.1:1")) << db.status();
  EXPECT_TRUE(absl::StrContains(db.status().message(), absl::StrCat("3@", c.member(2).address)))
      << db.status();
  o = c.OptionsOf(0);
  o.replication.members.push_back({4, "127.0.0.1:2"});
  db = Database::Open(o);
  EXPECT_TRUE(absl::IsFailedPrecondition(db.status())) << db.status();
  // A manifest edited to agree with wrong options: the shards' Raft configuration still says no
  // (with Raft state, the configuration is what the options are checked against; the message
  // gives member addresses, P, not shard 0's Raft port P+1).
  const std::string node_file = c.Dir(0) + "/NODE";
  std::stringstream text;
  text << std::ifstream(node_file).rdbuf();
  std::ofstream(node_file, std::ios::trunc) << absl::StrReplaceAll(
      text.str(), {{absl::StrCat("member 3 ", c.member(2).address), "member 3 127.0.0.1:1"}});
  o = c.OptionsOf(0);
  o.replication.members[2].address = "127.0.0.1:1";
  db = Database::Open(o);
  ASSERT_TRUE(absl::IsFailedPrecondition(db.status())) << db.status();
  EXPECT_TRUE(absl::StrContains(db.status().message(), "replicated Raft configuration"))
      << db.status();
  EXPECT_TRUE(absl::StrContains(db.status().message(), "3@127.0.0.1:1]")) << db.status();
  EXPECT_TRUE(absl::StrContains(db.status().message(), absl::StrCat("3@", c.member(2).address)))
      << db.status();
}

TEST(ReplicatedOpen, ForeignClusterOrNodeIsRefused) {
  Cluster c("foreign");
  ASSERT_NO_FATAL_FAILURE(Bootstrap(c, 0));
  Options o = c.OptionsOf(0);
  o.replication.cluster_id = "other";
  auto db = Database::Open(o);
  ASSERT_TRUE(absl::IsFailedPrecondition(db.status())) << db.status();
  EXPECT_TRUE(absl::StrContains(db.status().message(), "belongs to cluster 'c1'")) << db.status();
  EXPECT_TRUE(absl::StrContains(db.status().message(), "'other'")) << db.status();
  o = c.OptionsOf(0);
  o.replication.node_id = 2;
  db = Database::Open(o);
  ASSERT_TRUE(absl::IsFailedPrecondition(db.status())) << db.status();
  EXPECT_TRUE(absl::StrContains(db.status().message(), "is node 1")) << db.status();
  // The right options still open it.
  db = Database::Open(c.OptionsOf(0));
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_EQ(Incarnation(**db), 2u);
}

TEST(ReplicatedOpen, MixedOrOrphanRaftStateIsNotBootstrappedAgain) {
  Cluster a("mixed_a");
  ASSERT_NO_FATAL_FAILURE(Bootstrap(a, 0));
  // Raft state without a node manifest (a directory of another bootstrap, its manifest lost).
  std::filesystem::rename(a.Dir(0) + "/NODE", a.root() + "/NODE.saved");
  auto db = Database::Open(a.OptionsOf(0));
  ASSERT_TRUE(absl::IsFailedPrecondition(db.status())) << db.status();
  EXPECT_TRUE(absl::StrContains(db.status().message(), "no node manifest")) << db.status();
  std::filesystem::rename(a.root() + "/NODE.saved", a.Dir(0) + "/NODE");
  // One shard's Raft state gone: its group is not bootstrapped a second time.
  const std::string raft1 = static_cast<std::string>(a.Dir(0)) + "/raft-001";
  ASSERT_TRUE(std::filesystem::is_directory(raft1));
  std::filesystem::rename(raft1, a.root() + "/raft1.saved");
  db = Database::Open(a.OptionsOf(0));
  ASSERT_TRUE(absl::IsFailedPrecondition(db.status())) << db.status();
  EXPECT_TRUE(absl::StrContains(db.status().message(), "shard 1 has none")) << db.status();
  // Another cluster's Raft state for shard 1, bootstrapped with other members.
  Cluster b("mixed_b", "c1");
  ASSERT_NO_FATAL_FAILURE(Bootstrap(b, 0));
  std::filesystem::rename(b.Dir(0) + "/raft-001", raft1);
  db = Database::Open(a.OptionsOf(0));
  ASSERT_TRUE(absl::IsFailedPrecondition(db.status())) << db.status();
  EXPECT_TRUE(absl::StrContains(db.status().message(), "shard 1 of database")) << db.status();
  // A database that committed without replication does not become a node.
  Options plain = a.OptionsOf(1);
  plain.replication = ReplicationOptions();
  {
    auto p = Database::Open(plain);
    ASSERT_TRUE(p.ok()) << p.status();
    ASSERT_TRUE(PutOne(**p, "a1", "local").ok());
  }
  db = Database::Open(a.OptionsOf(1));
  ASSERT_TRUE(absl::IsFailedPrecondition(db.status())) << db.status();
  EXPECT_TRUE(absl::StrContains(db.status().message(), "without replication")) << db.status();
}

TEST(ReplicatedOpen, FailedOpenOnAPortInUseReturnsAndALaterOpenWorks) {
  Cluster c("port");
  // Shard 0's Raft port (P+1) is taken: libraft bootstraps its directory, then cannot listen.
  const int taken = std::stoi(c.member(0).address.substr(10)) + 1;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(taken));
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  auto db = Database::Open(c.OptionsOf(0));
  EXPECT_TRUE(absl::IsUnavailable(db.status())) << db.status();
  EXPECT_TRUE(absl::StrContains(db.status().message(), "shard 0")) << db.status();
  close(fd);
  // The directory was released, the Raft state left pristine: the bootstrap completes now.
  db = Database::Open(c.OptionsOf(0));
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_EQ((*db)->Leadership().size(), kShards);
}

TEST(ReplicatedOpen, BadReplicationOptionsAreRefused) {
  const std::string root = Root("options");
  std::vector<ReplicationMember> members = {{1, "127.0.0.1:7000"}, {2, "127.0.0.1:7100"}};
  auto refused = [&](const std::function<void(Options&)>& edit) {
    Options o = NodeOptions(root + "/db", 1, "c1", members);
    edit(o);
    return absl::IsInvalidArgument(Database::Open(o).status());
  };
  EXPECT_TRUE(refused([](Options& o) { o.replication.node_id = 3; }));
  EXPECT_TRUE(refused([](Options& o) { o.replication.cluster_id = ""; }));
  EXPECT_TRUE(refused([](Options& o) { o.replication.cluster_id = "a b"; }));
  EXPECT_TRUE(refused([](Options& o) { o.replication.members[1].address = "host:7100"; }));
  EXPECT_TRUE(refused([](Options& o) { o.replication.members[1].id = 1; }));
  EXPECT_TRUE(refused([](Options& o) { o.replication.heartbeat = absl::Seconds(2); }));
  EXPECT_TRUE(refused([](Options& o) { o.replication.node_id = 0; }));
  EXPECT_FALSE(std::filesystem::exists(root + "/db"));
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
}

namespace catch_up {

// The snapshot servers' test seam (ReplicatedShards::SetSnapshotTamperForTesting), shared by the
// catch-up tests: hold the first stream at its first LMDB data message until let go, or flip a
// byte of every data message.
struct Tamper {
  std::mutex mu;
  std::condition_variable cv;
  bool hold = false, holding = false, released = false, corrupt = false;
  int corrupted = 0;

  void Install() {
    txn::ReplicatedShards::SetSnapshotTamperForTesting([this](uint64_t seq, std::string* bytes) {
      (void)seq;
      if (bytes == nullptr || bytes->empty()) return false;  // not a data message
      std::unique_lock<std::mutex> l(mu);
      if (corrupt) {
        (*bytes)[bytes->size() / 2] ^= 0x5a;
        ++corrupted;
      }
      if (hold && !holding && !released) {
        holding = true;
        cv.notify_all();
        cv.wait(l, [this] { return released; });
      }
      return false;
    });
  }
  void Release() {
    std::lock_guard<std::mutex> l(mu);
    released = true;
    cv.notify_all();
  }
  ~Tamper() {
    Release();
    txn::ReplicatedShards::SetSnapshotTamperForTesting(nullptr);
  }
};

void SmallRaftLogs(Options& o) {
  o.replication.snapshot_threshold = 16;
  o.replication.snapshot_trailing = 8;
}

// A node that leads neither shard, with both shards' leaders known.
struct Roles {
  int leader0 = -1, leader1 = -1, follower = -1;
};
std::optional<Roles> FindRoles(Cluster& c) {
  std::optional<int> l0 = c.Leader(0), l1 = c.Leader(1);
  if (!l0.has_value() || !l1.has_value()) return std::nullopt;
  Roles r{*l0, *l1, -1};
  for (int i = 0; i < 3; ++i) {
    if (i != *l0 && i != *l1) r.follower = i;
  }
  return r;
}

std::string Value(int i) {
  return std::string(2000, static_cast<char>('a' + i % 26)) + std::to_string(i);
}

// Commits keys a<from..to) on shard 0's leader and b<from..to) on shard 1's.
void CommitKeys(Cluster& c, const Roles& r, int from, int to) {
  for (int i = from; i < to; ++i) {
    ASSERT_TRUE(PutOne(c.db(r.leader0), absl::StrCat("a", i), Value(i)).ok()) << i;
    ASSERT_TRUE(PutOne(c.db(r.leader1), absl::StrCat("b", i), Value(i)).ok()) << i;
  }
}

// Opens the cluster with small Raft logs, commits keys 0..keys-1 on both shards, waits until the
// node that leads neither shard holds them, and closes that node; `roles` says who is who.
void OpenThenCloseAFollower(Cluster& c, int keys, Roles* roles) {
  c.Tweak(SmallRaftLogs);
  ASSERT_TRUE(c.OpenAll().ok());
  std::optional<Roles> r = FindRoles(c);
  ASSERT_TRUE(r.has_value());
  CommitKeys(c, *r, 0, keys);
  for (int i = 0; i < keys; ++i) {
    for (const char* p : {"a", "b"}) {
      const std::string key = absl::StrCat(p, i);
      ASSERT_TRUE(WaitFor([&] { return ReadOne(c.db(r->follower), key) == Value(i); })) << key;
    }
  }
  c.Close(r->follower);
  *roles = *r;
}

uint64_t Installed(Database& db, uint32_t shard) {
  return db.GetStats().shards.at(shard).snapshots_installed;
}
uint64_t InstallFailures(Database& db, uint32_t shard) {
  return db.GetStats().shards.at(shard).snapshot_install_failures;
}

}  // namespace catch_up

// Issue 16's catch-up: a follower closed while its shards' Raft logs and WALs are truncated past
// it installs both shards' snapshots from their leaders when it comes back, holds every committed
// key, and then counts in the majority. One leader checkpoints while the follower's first stream
// is held after its LMDB copy began: the stream's WAL pin (DatabaseImpl::PinnedLsn) keeps the log
// it still has to copy (without it, the checkpoint recycles those segments and the install fails).
// Found here: the install swapped the shard's directory whole, and the Raft log lived in it
// (shard-NNN/raft/): the follower's libraft then failed every later snapshot write (its next
// install left it storing nothing, commit index stuck: keys committed during the held stream
// never arrived) and its Raft state was gone at the next Open. Now in raft-NNN/; the reopen at the
// end fails without that.
TEST(ReplicatedCatchUp, FollowerInstallsSnapshotsAndCountsInTheMajority) {
  catch_up::Tamper tamper;
  tamper.hold = true;
  tamper.Install();
  Cluster c("catchup");
  absl::Cleanup let_go = [&tamper] { tamper.Release(); };  // before the cluster closes
  catch_up::Roles r;
  ASSERT_NO_FATAL_FAILURE(catch_up::OpenThenCloseAFollower(c, 10, &r));
  const int f = r.follower;
  catch_up::CommitKeys(c, r, 10, 200);  // 380 KB per shard: past a 256 KiB WAL segment
  for (int i = 0; i < 3; ++i) {
    if (i != f) {
      ASSERT_TRUE(c.db(i).Checkpoint().ok());
    }
  }
  ASSERT_TRUE(c.Reopen(f).ok());
  // The first stream is held: commit more, past another segment, and checkpoint the leaders.
  {
    std::unique_lock<std::mutex> l(tamper.mu);
    ASSERT_TRUE(tamper.cv.wait_for(l, kDeadline, [&] { return tamper.holding; }));
  }
  catch_up::CommitKeys(c, r, 200, 400);
  for (int i = 0; i < 3; ++i) {
    if (i != f) {
      ASSERT_TRUE(c.db(i).Checkpoint().ok());
    }
  }
  tamper.Release();
  for (uint32_t g = 0; g < kShards; ++g) {
    EXPECT_TRUE(WaitFor([&] { return catch_up::Installed(c.db(f), g) >= 1; })) << "shard " << g;
  }
  for (int i = 0; i < 400; ++i) {
    for (const char* p : {"a", "b"}) {
      const std::string key = absl::StrCat(p, i);
      ASSERT_TRUE(WaitFor([&] { return ReadOne(c.db(f), key) == catch_up::Value(i); }))
          << key << ": installed " << catch_up::Installed(c.db(f), 0) << "/"
          << catch_up::Installed(c.db(f), 1) << ", failed " << catch_up::InstallFailures(c.db(f), 0)
          << "/" << catch_up::InstallFailures(c.db(f), 1);
    }
  }
  // Shard 0 now needs the caught-up follower: close the third node and commit.
  const int other = 3 - f - r.leader0;
  ASSERT_NE(other, f);
  c.Close(other);
  ASSERT_TRUE(PutOne(c.db(r.leader0), "a-after", "x").ok());
  EXPECT_TRUE(WaitFor([&] { return ReadOne(c.db(f), "a-after") == "x"; }));
  EXPECT_EQ(catch_up::InstallFailures(c.db(f), 0), 0u);
  EXPECT_EQ(catch_up::InstallFailures(c.db(f), 1), 0u);
  // The follower's own Raft state survived the installs: it reopens and still holds the keys.
  c.Close(f);
  ASSERT_TRUE(c.Reopen(f).ok());
  EXPECT_EQ(ReadOne(c.db(f), "a-after"), "x");
  EXPECT_EQ(ReadOne(c.db(f), "b399"), catch_up::Value(399));
}

// A snapshot stream that fails its checks (a byte flipped in its LMDB data) is refused: the
// follower's shard keeps exactly what it had, nothing of the snapshot is applied, the failure
// is counted, and no entry after the snapshot is applied on the old state; a later install
// succeeds.
TEST(ReplicatedCatchUp, CorruptedSnapshotIsRefusedAndTheShardIsUnchanged) {
  catch_up::Tamper tamper;
  tamper.corrupt = true;
  tamper.Install();
  Cluster c("catchup_bad");
  catch_up::Roles r;
  ASSERT_NO_FATAL_FAILURE(catch_up::OpenThenCloseAFollower(c, 5, &r));
  const int f = r.follower;
  catch_up::CommitKeys(c, r, 5, 100);
  ASSERT_TRUE(c.Reopen(f).ok());
  EXPECT_TRUE(WaitFor([&] { return catch_up::InstallFailures(c.db(f), 0) >= 1; }));
  {
    std::lock_guard<std::mutex> l(tamper.mu);
    EXPECT_GE(tamper.corrupted, 1);
  }
  EXPECT_EQ(catch_up::Installed(c.db(f), 0), 0u);
  // What it holds: a prefix a0..a<held-1>, at least its keys from before it was closed (the
  // leader may also deliver entries it queued for it while it was down), never the snapshot's
  // 100 keys.
  int held = 0;
  while (held < 100 && ReadOne(c.db(f), absl::StrCat("a", held)) == catch_up::Value(held)) ++held;
  EXPECT_GE(held, 5);
  EXPECT_LT(held, 100);
  // Commit more: entries the follower would be sent after the snapshot must not be applied.
  ASSERT_TRUE(PutOne(c.db(r.leader0), "a-later", "x").ok());
  for (int i = 0; i < held; ++i) {
    EXPECT_EQ(ReadOne(c.db(f), absl::StrCat("a", i)), catch_up::Value(i)) << i;
  }
  for (int i = held; i < 100; ++i) {
    EXPECT_EQ(ReadOne(c.db(f), absl::StrCat("a", i)), std::nullopt) << i;
  }
  EXPECT_EQ(ReadOne(c.db(f), "a-later"), std::nullopt);
  // The stream mended, the follower installs the leader's next snapshot (libraft offers one once
  // the leader took a newer one, snapshot_threshold entries later) and catches up.
  {
    std::lock_guard<std::mutex> l(tamper.mu);
    tamper.corrupt = false;
  }
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(PutOne(c.db(r.leader0), absl::StrCat("a-next", i), "y").ok()) << i;
  }
  EXPECT_TRUE(WaitFor([&] { return ReadOne(c.db(f), "a-next19") == "y"; }));
  EXPECT_EQ(ReadOne(c.db(f), "a99"), catch_up::Value(99));
  // Counted just after the new state became readable.
  EXPECT_TRUE(WaitFor([&] { return catch_up::Installed(c.db(f), 0) >= 1; }));
  // Closed, it leaves no half-installed shard behind (the leader resends its snapshot, so another
  // attempt may be copying into the staging directory until then).
  c.Close(f);
  EXPECT_FALSE(std::filesystem::exists(c.Dir(f) + "/shard-000.partial"));
}

// Found by crashtest's cross-shard runs (seed 7, --cross_pct=80, leader kills): a follower that
// fell behind never caught up; each snapshot install failed ("commit record ... for transaction
// ... whose prepare is neither in the WAL nor in LMDB"). The leader resolves a part in memory
// when it proposes the part's phase-two entry, and logs that entry only once it commits: a
// checkpoint in between put the commit's writes in LMDB and cut the log before the commit
// record, but dropped (or never wrote) the part's prepared-table row. A copy of that shard (the
// snapshot) then held the commit record without its prepare. Here node 1, leader of both shards, is
// cut off from the one running follower while the phase-two entries are in flight, checkpoints,
// and heals; the closed follower, reopened behind the truncated Raft logs, installs both shards'
// snapshots and holds the commit. Fails without TwoPhaseState::ResolvePartUnlogged's kept row.
TEST(ReplicatedCatchUp, SnapshotOfALeaderThatCheckpointedMidCommitInstalls) {
  Cluster c("midcommit");
  c.Tweak([](Options& o) {
    catch_up::SmallRaftLogs(o);
    // Node 1 leads both shards (cross-shard commits), and gets them back if the cut below
    // outlasts an election timeout of node 3's (its term then deposes node 1 at the heal).
    o.replication.gather_leaders = true;
    o.replication.preferred_leader = 1;
    if (o.replication.node_id != 1) {
      o.replication.election_timeout = absl::Milliseconds(4 * kElectionMs);
    }
    o.checkpoint_wal_bytes = 0;           // checkpoints only when the test asks
    o.checkpoint_overlay_bytes = 0;
    o.checkpoint_interval = absl::ZeroDuration();
  });
  ASSERT_TRUE(c.OpenAll().ok());
  const int leader = 0, f = 1, other = 2;
  ASSERT_TRUE(WaitFor([&] { return c.Leader(0) == leader && c.Leader(1) == leader; }));
  ASSERT_TRUE(PutOne(c.db(leader), "b0", "before").ok());
  ASSERT_TRUE(WaitFor([&] { return ReadOne(c.db(f), "b0") == "before"; }));
  c.Close(f);
  // Phase two's entries stay in flight: the leader's links to the running follower are cut as
  // the first is proposed (the commit waits for none of them).
  absl::Cleanup heal = [] { replication::UnblockAllLinks(); };
  txn::Coordinator& coordinator = static_cast<txn::DatabaseImpl&>(c.db(leader)).coordinator();
  const uint64_t l_id = c.member(leader).id, o_id = c.member(other).id;
  coordinator.SetReplicatedProposeHookForTesting([&](uint32_t, uint8_t record) {
    if (record == engine::kCommitPrepared) {
      replication::BlockSend(l_id, o_id, true).IgnoreError();
      replication::BlockSend(o_id, l_id, true).IgnoreError();
    }
    return absl::OkStatus();
  });
  {
    std::unique_ptr<Transaction> txn = c.db(leader).Begin();
    ASSERT_TRUE(txn->Put("a1", "x").ok());
    ASSERT_TRUE(txn->Put("b1", "y").ok());
    absl::Status s = txn->Commit();
    coordinator.SetReplicatedProposeHookForTesting(nullptr);
    ASSERT_TRUE(s.ok()) << s;
  }
  ASSERT_TRUE(c.db(leader).Checkpoint().ok());
  std::move(heal).Invoke();
  ASSERT_TRUE(WaitFor([&] { return ReadOne(c.db(other), "b1") == "y"; }));
  // Past the closed follower in both shards' Raft logs (16 entries a snapshot, 8 kept), with no
  // checkpoint since: the snapshot's copy is LMDB as of the one above plus the log after it.
  int n = 0;
  ASSERT_TRUE(WaitFor([&] {
    for (; n < 40; ++n) {
      const std::string v = absl::StrCat(n);
      if (!PutOne(c.db(leader), absl::StrCat("a-fill", n), v).ok() ||
          !PutOne(c.db(leader), absl::StrCat("b-fill", n), v).ok()) {
        return false;  // leadership moving back to node 1 after the heal: retried
      }
    }
    return true;
  }));
  ASSERT_TRUE(c.Reopen(f).ok());
  EXPECT_TRUE(WaitFor([&] { return ReadOne(c.db(f), "b-fill39") == "39"; }))
      << "installed " << catch_up::Installed(c.db(f), 1) << ", failed "
      << catch_up::InstallFailures(c.db(f), 1);
  EXPECT_EQ(ReadOne(c.db(f), "b1"), "y");
  EXPECT_EQ(ReadOne(c.db(f), "a1"), "x");
  EXPECT_GE(catch_up::Installed(c.db(f), 1), 1u);
  EXPECT_EQ(catch_up::InstallFailures(c.db(f), 1), 0u);
}
}  // namespace
}  // namespace shardtx
