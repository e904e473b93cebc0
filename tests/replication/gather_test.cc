// Issue 17 step 5: leadership gathering (ReplicationOptions::preferred_leader). Three replicated
// Databases in one process on 127.0.0.1, four shards each (shard g's Raft group on port P+1+g).
// "Gathered" means one open node is the ready leader of every shard. Every wait polls Leadership()
// or stats against a deadline; the gathering waits use the documented bound (10 election
// timeouts) as theirs.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "replication/raft_node.h"
#include "replication/shard_replica.h"
#include "shardtx/database.h"
#include "tests/replication/db_calls.h"
#include "tests/replication/free_ports.h"
#include "tests/replication/loopback_timing.h"
#include "txn/database_impl.h"

namespace shardtx {
namespace {

using replication::kElectionMs;
using replication::kHeartbeatMs;
using replication::PutOne;
using replication::ReadOne;
using replication::WaitFor;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kShards = 4;
constexpr int kNodes = 3;
// The documented bound (ReplicationOptions::preferred_leader): 10 election timeouts.
constexpr auto kBound = std::chrono::milliseconds(10 * kElectionMs);

// The key numbered i of shard `shard` (its first byte names the shard).
std::string Key(uint32_t shard, int i) {
  return absl::StrCat(std::string(1, static_cast<char>('a' + shard)), i);
}

// Polls `done` every few milliseconds until it holds or `limit` has passed since `start`.
bool WaitUntil(Clock::time_point start, Clock::duration limit, const std::function<bool()>& done) {
  while (!done()) {
    if (Clock::now() - start >= limit) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// `holds` stays true for `d` (checked every few milliseconds).
bool HoldsFor(const std::function<bool()>& holds, std::chrono::milliseconds d) {
  const auto end = Clock::now() + d;
  while (Clock::now() < end) {
    if (!holds()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

class Cluster {
 public:
  explicit Cluster(const std::string& name, uint64_t preferred = 0) : preferred_(preferred) {
    root_ = replication::FreshTestRoot("repl_gather", name);
    members_ = replication::LoopbackMembers(kNodes, kShards);
    dbs_.resize(kNodes);
  }
  ~Cluster() {
    for (auto& db : dbs_) db.reset();
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  Options OptionsOf(int i) const {
    Options o = replication::LoopbackNodeOptions(absl::StrCat(root_, "/node", i + 1), kShards,
                                                 members_[i].id, "gather", members_);
    o.replication.preferred_leader = preferred_;
    o.replication.gather_leaders = gather_;
    return o;
  }
  // ReplicationOptions::gather_leaders = false on every node opened from now on.
  void NoGathering() { gather_ = false; }
  void OpenAll() {
    for (int i = 0; i < kNodes; ++i) Open(i);
  }
  void Open(int i) {
    auto db = Database::Open(OptionsOf(i));
    ASSERT_TRUE(db.ok()) << db.status();
    dbs_[i] = std::move(*db);
  }
  void Close(int i) { dbs_[i].reset(); }
  bool open(int i) const { return dbs_[i] != nullptr; }
  Database& db(int i) { return *dbs_[i]; }
  uint64_t id(int i) const { return members_[i].id; }

  // The open node that is the ready leader of every shard, if one is.
  std::optional<int> Gathered() {
    for (int i = 0; i < kNodes; ++i) {
      if (!open(i)) continue;
      std::vector<Database::ShardLeadership> l = db(i).Leadership();
      bool all = l.size() == kShards;
      for (const Database::ShardLeadership& s : l) {
        all = all && s.role == Database::ShardLeadership::Role::kLeader && s.ready;
      }
      if (all) return i;
    }
    return std::nullopt;
  }
  // Waits (at most kBound from `start`) until one node leads every shard; that node.
  std::optional<int> WaitGathered(Clock::time_point start) {
    std::optional<int> at;
    WaitUntil(start, kBound, [&] {
      at = Gathered();
      return at.has_value();
    });
    return at;
  }

  // The open node that is the ready leader of `shard`, if one is.
  std::optional<int> LeaderOf(uint32_t shard) {
    for (int i = 0; i < kNodes; ++i) {
      if (!open(i)) continue;
      std::vector<Database::ShardLeadership> l = db(i).Leadership();
      if (l.size() == kShards && l[shard].role == Database::ShardLeadership::Role::kLeader &&
          l[shard].ready) {
        return i;
      }
    }
    return std::nullopt;
  }

  ShardReplicationStats ShardStats(int i, uint32_t shard) {
    Stats s = db(i).GetStats();
    return s.shards.size() == kShards ? s.shards[shard].replication : ShardReplicationStats();
  }

  // Node i's Raft node of `shard` (to move one shard's leadership by hand).
  replication::RaftNode* Node(int i, uint32_t shard) {
    auto* log = static_cast<txn::DatabaseImpl&>(db(i)).replicated_log(shard);
    auto* replica = dynamic_cast<replication::ShardReplica*>(log);
    return replica != nullptr ? replica->node() : nullptr;
  }

  // Commits one key on every shard on node i; the first failure.
  absl::Status PutEveryShard(int i, int n) {
    for (uint32_t g = 0; g < kShards; ++g) {
      if (absl::Status s = PutOne(db(i), Key(g, n), "v"); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  const uint64_t preferred_;
  bool gather_ = true;
  std::string root_;
  std::vector<ReplicationMember> members_;
  std::vector<std::unique_ptr<Database>> dbs_;
};

double MillisSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// (1) With preferred_leader = 2, every shard's leader ends on node 2 within the bound, stays
// there, and commits on node 2 succeed on every shard.
TEST(Gather, PreferredLeaderGathersEveryShard) {
  Cluster c("preferred", /*preferred=*/2);
  c.OpenAll();
  const Clock::time_point start = Clock::now();
  const bool on_two = WaitUntil(start, kBound, [&] { return c.Gathered() == 1; });
  std::printf("gathered on the preferred node after %.0f ms (bound %lld ms)\n", MillisSince(start),
              static_cast<long long>(kBound.count()));
  ASSERT_TRUE(on_two) << "node 2 does not lead every shard " << kBound.count()
                      << " ms after the cluster opened";
  EXPECT_TRUE(
      HoldsFor([&] { return c.Gathered() == 1; }, std::chrono::milliseconds(3 * kElectionMs)))
      << "the leadership left the preferred node";
  const absl::Status put = c.PutEveryShard(1, 1);
  ASSERT_TRUE(put.ok()) << put;
  for (uint32_t g = 0; g < kShards; ++g) {
    EXPECT_EQ(ReadOne(c.db(1), Key(g, 1)), "v") << "shard " << g;
  }
  const Stats s = c.db(1).GetStats();
  EXPECT_TRUE(s.gathering.gathered);
  EXPECT_EQ(s.gathering.leader_id, 2u);
  EXPECT_GE(s.gathering.gathers, 1u);
  EXPECT_TRUE(absl::StrContains(s.ToString(), "leadership: on node 2")) << s.ToString();
  // Whoever led a shard first and was not node 2 handed it over: the transfers it asked for
  // ended with node 2 leading.
  uint64_t asked = 0, done = 0;
  for (int i = 0; i < kNodes; ++i) {
    for (uint32_t g = 0; g < kShards; ++g) {
      asked += c.ShardStats(i, g).transfers_asked;
      done += c.ShardStats(i, g).transfers_done;
    }
  }
  std::printf("transfers asked %llu done %llu\n", static_cast<unsigned long long>(asked),
              static_cast<unsigned long long>(done));
  // A transfer to a live, caught-up voter was done in every run seen; one failing under a heavy
  // load (the target not winning its election in time) would still leave node 2 gathered above.
  EXPECT_GE(done, asked > 0 ? 1u : 0u);
}

// (2) The node that led everything (the preferred one) is closed: the survivors gather every
// shard on one of them within the bound, and do not keep trying to hand shards to the dead
// preferred node. Reopened and caught up, it gets every shard back within the bound. Twice.
TEST(Gather, SurvivorsGatherAfterTheLeaderIsKilled) {
  Cluster c("killed", /*preferred=*/3);
  c.OpenAll();
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    ASSERT_TRUE(WaitUntil(Clock::now(), kBound, [&] { return c.Gathered() == 2; }))
        << "not gathered on the preferred node 3";
    ASSERT_TRUE(c.PutEveryShard(2, round).ok());
    const Clock::time_point killed = Clock::now();
    c.Close(2);
    const std::optional<int> anchor = c.WaitGathered(killed);
    std::printf("survivors gathered after %.0f ms (bound %lld ms)\n", MillisSince(killed),
                static_cast<long long>(kBound.count()));
    ASSERT_TRUE(anchor.has_value()) << "the survivors did not gather within the bound";
    // The dead preferred node is not live: nobody hands a shard to it (each try would refuse
    // commits for an election timeout and fail).
    auto failed = [&] {
      uint64_t n = 0;
      for (int i = 0; i < 2; ++i) {
        for (uint32_t g = 0; g < kShards; ++g) n += c.ShardStats(i, g).transfers_failed;
      }
      return n;
    };
    const uint64_t failed_before = failed();
    EXPECT_TRUE(HoldsFor([&] { return c.Gathered() == anchor; },
                         std::chrono::milliseconds(3 * kElectionMs)));
    EXPECT_EQ(failed(), failed_before);
    ASSERT_TRUE(c.PutEveryShard(*anchor, 100 + round).ok());
    // The anchor saw the leaders scattered by the failover and gathered again, in less than the
    // bound (Open's gathering and the one before on node 3 count too).
    const LeadershipGatherStats gs = c.db(*anchor).GetStats().gathering;
    EXPECT_TRUE(gs.gathered);
    EXPECT_EQ(gs.leader_id, c.id(*anchor));
    EXPECT_GE(gs.scatters, 2u + 2u * round);
    EXPECT_EQ(gs.gathers, gs.scatters);
    EXPECT_GT(gs.last_gather_ms, 0);
    EXPECT_LT(gs.last_gather_ms, static_cast<double>(kBound.count()));
    const Clock::time_point reopened = Clock::now();
    c.Open(2);
    const bool back = WaitUntil(reopened, 2 * kBound, [&] { return c.Gathered() == 2; });
    std::printf("back on the preferred node after %.0f ms\n", MillisSince(reopened));
    ASSERT_TRUE(back) << "the reopened preferred node did not get every shard back";
    for (uint32_t g = 0; g < kShards; ++g) {
      EXPECT_EQ(ReadOne(c.db(2), Key(g, 100 + round)), "v");
    }
  }
}

// (3) Leaderships split across nodes (one shard handed away by hand) gather again within the
// bound, on shard 0's leader.
TEST(Gather, SplitLeadershipsGather) {
  Cluster c("split");
  c.OpenAll();
  const std::optional<int> l = c.WaitGathered(Clock::now());
  ASSERT_TRUE(l.has_value());
  ASSERT_TRUE(c.PutEveryShard(*l, 1).ok());
  const int m = (*l + 1) % kNodes;
  const uint64_t done_before = c.ShardStats(*l, 1).transfers_done;
  const uint64_t moves_before = c.ShardStats(*l, 1).leader_moves;
  const Clock::time_point start = Clock::now();
  ASSERT_TRUE(c.Node(*l, 1)->TransferLeadership(c.id(m)).ok());
  // The transfer by hand succeeds (node m led shard 1)...
  ASSERT_TRUE(WaitFor([&] { return c.ShardStats(*l, 1).transfers_done == done_before + 1; }));
  // ... and node m hands it back to shard 0's leader.
  const bool back = WaitUntil(start, kBound, [&] { return c.Gathered() == l; });
  std::printf("split leadership gathered again after %.0f ms\n", MillisSince(start));
  ASSERT_TRUE(back);
  EXPECT_TRUE(WaitFor([&] { return c.ShardStats(m, 1).transfers_done >= 1; }));
  EXPECT_TRUE(WaitFor([&] { return c.ShardStats(*l, 1).leader_moves >= moves_before + 2; }))
      << c.ShardStats(*l, 1).leader_moves;
  EXPECT_TRUE(c.PutEveryShard(*l, 2).ok());
}

// The off switch (ReplicationOptions::gather_leaders = false): a leadership moved by hand stays
// where it was moved for the whole bound (with gathering, the test above sees it back within
// it), and the node does not ask for a transfer of its own.
TEST(Gather, WithoutGatheringALeadershipMovedByHandStays) {
  Cluster c("off");
  c.NoGathering();
  c.OpenAll();
  // Shard g's ready leader, as the node that leads it says.
  auto leader_of = [&](uint32_t g) -> std::optional<int> {
    for (int i = 0; i < kNodes; ++i) {
      std::vector<Database::ShardLeadership> l = c.db(i).Leadership();
      if (l.size() == kShards && l[g].role == Database::ShardLeadership::Role::kLeader &&
          l[g].ready) {
        return i;
      }
    }
    return std::nullopt;
  };
  std::optional<int> l0, l1;
  ASSERT_TRUE(WaitFor([&] {
    l0 = leader_of(0);
    l1 = leader_of(1);
    return l0.has_value() && l1.has_value();
  }));
  // Shard 1 onto a node that does not lead shard 0 (the anchor gathering would choose).
  int m = (*l0 + 1) % kNodes;
  if (m == *l1) m = (m + 1) % kNodes;
  ASSERT_TRUE(c.Node(*l1, 1)->TransferLeadership(c.id(m)).ok());
  ASSERT_TRUE(WaitFor([&] { return leader_of(1) == m; }));
  EXPECT_TRUE(HoldsFor([&] { return leader_of(1) == m; },
                       std::chrono::duration_cast<std::chrono::milliseconds>(kBound)));
  EXPECT_EQ(c.ShardStats(m, 1).transfers_asked, 0u);
}

// (4) Commits running on the leader while it hands every shard to another node: each is
// acknowledged (and then present on the new leader), refused with kUnavailable (and then absent
// there), or unknown; none is lost, none applied after a refusal.
TEST(Gather, CommitsDuringATransferAreAcknowledgedOrRefused) {
  Cluster c("during");
  c.OpenAll();
  const std::optional<int> l = c.WaitGathered(Clock::now());
  ASSERT_TRUE(l.has_value());
  const int m = (*l + 1) % kNodes;
  struct Outcome {
    std::string key;
    absl::Status status;
  };
  std::mutex mu;
  std::vector<Outcome> outcomes;
  std::atomic<bool> stop{false};
  std::atomic<int> refusals_handing{0};
  std::vector<std::thread> writers;
  for (uint32_t g = 0; g < kShards; ++g) {
    writers.emplace_back([&, g] {
      for (int i = 0; !stop.load(); ++i) {
        const std::string key = Key(g, i);
        absl::Status s = PutOne(c.db(*l), key, "v");
        if (absl::StrContains(s.message(), "handing its leadership")) refusals_handing++;
        std::lock_guard<std::mutex> lock(mu);
        outcomes.push_back({key, s});
      }
    });
  }
  auto acked = [&] {
    std::lock_guard<std::mutex> lock(mu);
    int n = 0;
    for (const Outcome& o : outcomes) n += o.status.ok();
    return n;
  };
  ASSERT_TRUE(WaitFor([&] { return acked() >= 40; }));
  // Shard 0 by hand; the others follow the anchor (shard 0's leader), handed over by gathering.
  ASSERT_TRUE(c.Node(*l, 0)->TransferLeadership(c.id(m)).ok());
  const bool moved = WaitUntil(Clock::now(), kBound, [&] { return c.Gathered() == m; });
  stop = true;
  for (std::thread& t : writers) t.join();
  ASSERT_TRUE(moved) << "node " << c.id(m) << " does not lead every shard";
  int ok = 0, refused = 0, unknown = 0;
  for (const Outcome& o : outcomes) {
    if (o.status.ok()) {
      ok++;
      EXPECT_EQ(ReadOne(c.db(m), o.key), "v") << o.key << " was acknowledged but is missing";
    } else if (absl::IsUnavailable(o.status)) {
      refused++;
      EXPECT_EQ(ReadOne(c.db(m), o.key), std::nullopt) << o.key << " was refused but is present";
    } else {
      EXPECT_TRUE(absl::IsUnknown(o.status)) << o.key << ": " << o.status;
      unknown++;
    }
  }
  std::printf(
      "commits during the transfers: %d acknowledged, %d refused (%d while handing over), "
      "%d unknown\n",
      ok, refused, refusals_handing.load(), unknown);
  EXPECT_GT(refused + unknown, 0) << "the old leader never refused";
}

// A transfer to a node that cannot take over (closed) gives up after an election timeout and
// counts as failed; meanwhile the leader refuses commits ("handing its leadership", no effect).
// Afterwards it usually leads on in its term; now and then libraft 0.15's leader steps down as
// the transfer ends (no follower answer counted during it: its contact check fails), and the
// commit in flight then is unknown. Either way the shard gathers again and commits go on.
TEST(Gather, ATransferToADeadNodeTimesOutAndTheLeaderStays) {
  Cluster c("dead");
  c.OpenAll();
  const std::optional<int> l = c.WaitGathered(Clock::now());
  ASSERT_TRUE(l.has_value());
  const int m = (*l + 1) % kNodes;
  c.Close(m);
  const uint64_t term = c.ShardStats(*l, 0).term;
  const uint64_t failed_before = c.ShardStats(*l, 0).transfers_failed;
  ASSERT_TRUE(c.Node(*l, 0)->TransferLeadership(c.id(m)).ok());
  // Commits on the shard meanwhile: acknowledged (before the loop took the transfer), or refused
  // while it is in flight, with no effect.
  std::vector<std::pair<std::string, absl::Status>> tried;
  int handing = 0;
  const bool ended = WaitFor([&] {
    const std::string key = Key(0, 1000 + static_cast<int>(tried.size()));
    absl::Status s = PutOne(c.db(*l), key, "v");
    handing += absl::IsUnavailable(s) && absl::StrContains(s.message(), "handing its leadership");
    tried.emplace_back(key, s);
    return c.ShardStats(*l, 0).transfers_failed == failed_before + 1;
  });
  ASSERT_TRUE(ended) << "the transfer to a closed node did not end";
  EXPECT_GT(handing, 0) << "no commit was refused while the transfer was in flight";
  for (const auto& [key, s] : tried) {
    if (s.ok()) {
      EXPECT_EQ(ReadOne(c.db(*l), key), "v") << key;
    } else if (absl::IsUnavailable(s)) {
      EXPECT_EQ(ReadOne(c.db(*l), key), std::nullopt) << key << " was refused but is present";
    } else {
      EXPECT_TRUE(absl::IsUnknown(s) && &key == &tried.back().first)
          << key << ": " << s << " (only the last commit, accepted as the transfer ended, may be "
          << "unknown)";
    }
  }
  std::printf(
      "commits while the transfer to a closed node was in flight: %zu tried, %d refused "
      "as handing over\n",
      tried.size(), handing);
  const absl::Status after = PutOne(c.db(*l), Key(0, 1), "v");
  if (after.ok()) {
    EXPECT_EQ(c.ShardStats(*l, 0).term, term);
  } else {
    std::printf("the leader stepped down as the transfer ended: %s\n",
                std::string(after.message()).c_str());
    // Its stats may still show the iteration before the step-down.
    ASSERT_TRUE(WaitFor([&] {
      const ShardReplicationStats s = c.ShardStats(*l, 0);
      return !s.ready || s.term != term;
    }));
  }
  const Clock::time_point start = Clock::now();
  int n = 2;
  EXPECT_TRUE(WaitUntil(start, kBound, [&] {
    const std::optional<int> g = c.Gathered();
    return g.has_value() && PutOne(c.db(*g), Key(0, n++), "v").ok();
  })) << "no node leads every shard and commits";
}

// (5) A preferred_leader that is not a member is refused at Open, naming it; nothing is created.
TEST(Gather, BadPreferredLeaderIsRefusedAtOpen) {
  Cluster c("bad", /*preferred=*/7);
  Options o = c.OptionsOf(0);
  auto db = Database::Open(o);
  ASSERT_FALSE(db.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(db.status())) << db.status();
  EXPECT_TRUE(absl::StrContains(db.status().message(), "preferred_leader 7")) << db.status();
  std::error_code ec;
  EXPECT_FALSE(std::filesystem::exists(o.path + "/NODE", ec));
  o.replication.preferred_leader = 3;
  auto good = Database::Open(o);
  EXPECT_TRUE(good.ok()) << good.status();
}

}  // namespace
}  // namespace shardtx
