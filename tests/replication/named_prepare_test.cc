// Issue 17 step 3: named prepares over replicated shards (docs/replicated-2pc-plan.md sections 2
// and 3). The three-node cluster of cross_cluster.h: node 1 (index 0) leads both shards. A named
// prepare on it is listed on every replica once applied and decided there; after node 1 closes,
// the next leader (gathering brings both shards to one node) lists it and decides it; a decision
// on a deposed leader is refused or unknown, never half applied; a prepare or a decision off the
// leader of every part is refused with no effect, naming the leaders. Waits poll a deadline.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "replication/link_filter.h"
#include "replication/shard_replica.h"
#include "shardtx/database.h"
#include "tests/replication/cross_cluster.h"
#include "tests/replication/db_calls.h"
#include "tests/replication/loopback_timing.h"
#include "txn/database_impl.h"

namespace shardtx {
namespace {

using replication::ReadOne;
using replication::WaitFor;
using replication::cross::Cluster;
using replication::cross::ExpectSameDigests;
using replication::cross::Impl;
using replication::cross::kNodes;
using replication::cross::kShards;
using replication::cross::Others;
using Kv = std::vector<std::pair<std::string, std::string>>;

// Writes `kv` in one transaction on `db` and prepares it as `name`; its id in *id.
absl::Status PrepareNamed(Database& db, const Kv& kv, const std::string& name,
                          uint64_t* id = nullptr) {
  std::unique_ptr<Transaction> txn = db.Begin();
  if (id != nullptr) *id = txn->id();
  for (const auto& [k, v] : kv) {
    if (absl::Status s = txn->Put(k, v); !s.ok()) return s;
  }
  return txn->Prepare(name);
}

bool Listed(Database& db, const std::string& name) {
  absl::StatusOr<std::vector<std::string>> names = db.ListPrepared();
  if (!names.ok()) return false;
  for (const std::string& n : *names) {
    if (n == name) return true;
  }
  return false;
}

// Every node's applied index of every shard.
std::vector<uint64_t> AppliedEverywhere(Cluster& c) {
  std::vector<uint64_t> out;
  for (int i = 0; i < kNodes; ++i) {
    for (uint32_t g = 0; g < kShards; ++g) out.push_back(c.Applied(i, g));
  }
  return out;
}

// The node among `among` that is the ready leader of both shards, once there is one.
std::optional<int> GatheredLeader(Cluster& c, const std::vector<int>& among) {
  std::optional<int> leader;
  WaitFor([&] {
    std::optional<int> l0 = c.Leader(0, among), l1 = c.Leader(1, among);
    leader = l0 == l1 ? l0 : std::nullopt;
    return leader.has_value();
  });
  return leader;
}

// `decide` on node i, asked again while it answers kUnavailable (gathering may still be moving
// a shard's leadership: "handing its leadership"); its last status.
absl::Status DecideWhenLed(Cluster& c, int i,
                           const std::function<absl::Status(Database&)>& decide) {
  absl::Status s;
  WaitFor([&] {
    s = decide(c.db(i));
    return !absl::IsUnavailable(s);
  });
  return s;
}

TEST(NamedPrepare, ListedOnEveryReplicaAndCommittedOnTheLeader) {
  Cluster c("listed", true, "named");
  ASSERT_TRUE(c.open());
  ASSERT_TRUE(c.NodeZeroLeadsAll());
  uint64_t id = 0;
  ASSERT_TRUE(PrepareNamed(c.db(0), {{"a1", "x"}, {"b1", "y"}}, "t1", &id).ok());
  // Prepared on the leader: listed, kPrepared, not visible, its keys locked.
  EXPECT_TRUE(Listed(c.db(0), "t1"));
  EXPECT_EQ(c.db(0).GetOutcome(id), Database::Outcome::kPrepared);
  absl::StatusOr<Database::Outcome> o = c.db(0).GetOutcomeOfKey(id, "b1");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(*o, Database::Outcome::kPrepared);
  EXPECT_EQ(ReadOne(c.db(0), "a1"), std::nullopt);
  EXPECT_TRUE(absl::IsAborted(replication::PutOne(c.db(0), "b1", "other")));
  // The name is taken.
  EXPECT_TRUE(absl::IsAlreadyExists(PrepareNamed(c.db(0), {{"a2", "z"}}, "t1")));
  // Every follower lists it once it applied both prepares.
  for (int i = 1; i < kNodes; ++i) {
    EXPECT_TRUE(WaitFor([&] { return Listed(c.db(i), "t1"); })) << "node " << i;
    EXPECT_EQ(ReadOne(c.db(i), "a1"), std::nullopt) << "node " << i;
  }
  ASSERT_TRUE(c.db(0).CommitPrepared("t1").ok());
  // Visible on the leader at once, decided there.
  EXPECT_EQ(ReadOne(c.db(0), "a1"), "x");
  EXPECT_EQ(ReadOne(c.db(0), "b1"), "y");
  EXPECT_EQ(c.db(0).GetOutcome(id), Database::Outcome::kCommitted);
  EXPECT_FALSE(Listed(c.db(0), "t1"));
  EXPECT_TRUE(absl::IsNotFound(c.db(0).CommitPrepared("t1")));
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(WaitFor([&] {
      return ReadOne(c.db(i), "a1") == "x" && ReadOne(c.db(i), "b1") == "y" && c.NothingPrepared(i);
    })) << "node "
        << i;
    EXPECT_FALSE(Listed(c.db(i), "t1")) << "node " << i;
  }
  // Its keys are free, its name too.
  ASSERT_TRUE(replication::cross::Write(c.db(0), {{"a1", "x2"}, {"b1", "y2"}}).ok());
  // A rollback whose abort entries are all refused (the hook plays leadership moving):
  // kUnavailable, nothing rolled back, listed again; then rolled back.
  ASSERT_TRUE(PrepareNamed(c.db(0), {{"a2", "z"}, {"b2", "z"}}, "t1", &id).ok());
  c.SetProposeHook(0, [](uint32_t, uint8_t record) {
    return record == engine::kAbortPrepared ? absl::UnavailableError("test: not leading")
                                            : absl::OkStatus();
  });
  absl::Status s = c.db(0).RollbackPrepared("t1");
  c.SetProposeHook(0, nullptr);
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "nothing rolled back")) << s;
  EXPECT_TRUE(Listed(c.db(0), "t1"));
  EXPECT_EQ(c.db(0).GetOutcome(id), Database::Outcome::kPrepared);
  EXPECT_TRUE(absl::IsAborted(replication::PutOne(c.db(0), "b2", "other")));
  ASSERT_TRUE(c.db(0).RollbackPrepared("t1").ok());
  EXPECT_FALSE(Listed(c.db(0), "t1"));
  EXPECT_EQ(c.db(0).GetOutcome(id), Database::Outcome::kAborted);
  EXPECT_EQ(ReadOne(c.db(0), "a2"), std::nullopt);
  ASSERT_TRUE(c.CaughtUpWith(0));
  ExpectSameDigests(c);
}

// Node 1 prepares, then closes; the survivors gather both shards on one node, which lists the
// transaction (its replicas built the prepared state by redo) and decides it; node 1 reopened
// agrees.
void FailoverThenDecide(const std::string& name, bool commit) {
  Cluster c(name, true, "named");
  ASSERT_TRUE(c.open());
  ASSERT_TRUE(c.NodeZeroLeadsAll());
  uint64_t id = 0;
  ASSERT_TRUE(PrepareNamed(c.db(0), {{"a1", "x"}, {"b1", "y"}}, "t2", &id).ok());
  for (int i = 1; i < kNodes; ++i) {
    ASSERT_TRUE(WaitFor([&] { return Listed(c.db(i), "t2"); })) << "node " << i;
  }
  c.Close(0);
  std::optional<int> next = GatheredLeader(c, Others(0));
  ASSERT_TRUE(next.has_value()) << "the survivors did not gather";
  EXPECT_TRUE(Listed(c.db(*next), "t2"));
  EXPECT_EQ(c.db(*next).GetOutcome(id), Database::Outcome::kPrepared);
  absl::Status s = DecideWhenLed(c, *next, [&](Database& db) {
    return commit ? db.CommitPrepared("t2") : db.RollbackPrepared("t2");
  });
  ASSERT_TRUE(s.ok()) << s;
  const std::optional<std::string> a1 = commit ? std::optional<std::string>("x") : std::nullopt;
  EXPECT_EQ(ReadOne(c.db(*next), "a1"), a1);
  EXPECT_EQ(c.db(*next).GetOutcome(id),
            commit ? Database::Outcome::kCommitted : Database::Outcome::kAborted);
  ASSERT_TRUE(c.Reopen(0));
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(WaitFor([&] {
      return ReadOne(c.db(i), "a1") == a1 && ReadOne(c.db(i), "b1") == (commit ? "y" : a1) &&
             c.NothingPrepared(i) && !Listed(c.db(i), "t2");
    })) << "node "
        << i;
  }
  // The keys are free: a cross-shard commit writing them, on whichever node leads both now.
  std::optional<int> leader = GatheredLeader(c, {0, 1, 2});
  ASSERT_TRUE(leader.has_value());
  s = DecideWhenLed(c, *leader, [](Database& db) {
    return replication::cross::Write(db, {{"a1", "after"}, {"b1", "after"}});
  });
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_TRUE(c.CaughtUpWith(*leader));
  ExpectSameDigests(c);
}

TEST(NamedPrepare, TheNextLeaderListsAndCommitsItAfterTheLeaderCloses) {
  FailoverThenDecide("failover_commit", /*commit=*/true);
}

TEST(NamedPrepare, TheNextLeaderListsAndRollsItBackAfterTheLeaderCloses) {
  FailoverThenDecide("failover_rollback", /*commit=*/false);
}

// The decision entry refused (the hook plays leadership moving just before it is proposed):
// kUnavailable, nothing decided, listed again and decided on a second try. Then the leader is cut
// off both ways: its decision is refused or unknown, never half applied (nothing visible on it),
// and the next leader still lists the transaction and commits it; healed, every replica agrees,
// the old leader included.
TEST(NamedPrepare, ADecisionOnADeposedLeaderIsNeverHalfApplied) {
  Cluster c("deposed", true, "named");
  ASSERT_TRUE(c.open());
  ASSERT_TRUE(c.NodeZeroLeadsAll());
  ASSERT_TRUE(PrepareNamed(c.db(0), {{"a1", "x"}, {"b1", "y"}}, "t3").ok());
  c.SetProposeHook(0, [](uint32_t shard, uint8_t record) {
    return shard == 0 && record == engine::kDecision ? absl::UnavailableError("test: deposed")
                                                     : absl::OkStatus();
  });
  absl::Status s = c.db(0).CommitPrepared("t3");
  c.SetProposeHook(0, nullptr);
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "nothing decided")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "test: deposed")) << s;
  EXPECT_TRUE(Listed(c.db(0), "t3"));
  EXPECT_EQ(ReadOne(c.db(0), "a1"), std::nullopt);
  ASSERT_TRUE(c.db(0).CommitPrepared("t3").ok());
  EXPECT_EQ(ReadOne(c.db(0), "b1"), "y");

  uint64_t id = 0;
  ASSERT_TRUE(PrepareNamed(c.db(0), {{"a2", "x"}, {"b2", "y"}}, "t4", &id).ok());
  for (int i = 0; i < kNodes; ++i) {
    ASSERT_TRUE(WaitFor([&] { return Listed(c.db(i), "t4") && ReadOne(c.db(i), "b1") == "y"; }))
        << "node " << i;
  }
  absl::Cleanup heal = [&] { replication::UnblockAllLinks(); };
  for (int other : Others(0)) {
    ASSERT_TRUE(replication::BlockSend(c.id(0), c.id(other), true).ok());
    ASSERT_TRUE(replication::BlockSend(c.id(other), c.id(0), true).ok());
  }
  s = c.db(0).CommitPrepared("t4");
  EXPECT_TRUE(absl::IsUnknown(s) || absl::IsUnavailable(s)) << s;
  // Nothing of it applied on the deposed leader: no part committed, both still prepared.
  EXPECT_EQ(ReadOne(c.db(0), "a2"), std::nullopt);
  EXPECT_EQ(ReadOne(c.db(0), "b2"), std::nullopt);
  std::vector<txn::TwoPhaseState::PreparedInfo> held =
      Impl(c.db(0)).coordinator().state().AllPrepared();
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].shards, (std::vector<uint32_t>{0, 1}));
  std::optional<int> next = GatheredLeader(c, Others(0));
  ASSERT_TRUE(next.has_value()) << "the others did not gather";
  EXPECT_TRUE(Listed(c.db(*next), "t4"));
  EXPECT_EQ(c.db(*next).GetOutcome(id), Database::Outcome::kPrepared);
  EXPECT_EQ(ReadOne(c.db(*next), "a2"), std::nullopt);
  std::move(heal).Invoke();
  // The old leader follows again and lists it too (prepared again there, as the entries say).
  EXPECT_TRUE(WaitFor([&] { return Listed(c.db(0), "t4"); }));
  s = DecideWhenLed(c, *next, [](Database& db) { return db.CommitPrepared("t4"); });
  ASSERT_TRUE(s.ok()) << s;
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(WaitFor([&] {
      return ReadOne(c.db(i), "a2") == "x" && ReadOne(c.db(i), "b2") == "y" && c.NothingPrepared(i);
    })) << "node "
        << i;
  }
  ExpectSameDigests(c);
}

// Off the leader of every part: a prepare, a commit and a rollback are refused (kUnavailable
// naming each part's leader), with no effect on any replica. A follower lists the transaction
// (it applied the prepares) but cannot decide it. With shard 1's leadership handed to node 2
// (gathering off), node 1 leads only shard 0: refused likewise, naming node 2 for shard 1,
// while a single-shard named prepare of shard 0 runs there.
TEST(NamedPrepare, RefusedWithNoEffectOffTheLeaderOfEveryPart) {
  Cluster c("refused", /*gather=*/false, "named");
  ASSERT_TRUE(c.open());
  ASSERT_TRUE(c.NodeZeroLeadsAll());
  ASSERT_TRUE(PrepareNamed(c.db(0), {{"a1", "x"}, {"b1", "y"}}, "t5").ok());
  for (int i = 1; i < kNodes; ++i) {
    ASSERT_TRUE(WaitFor([&] { return Listed(c.db(i), "t5"); })) << "node " << i;
  }
  ASSERT_TRUE(c.CaughtUpWith(0));
  const std::string leader = absl::StrCat("leader is server ", c.id(0), " at ", c.address(0));
  std::vector<uint64_t> before = AppliedEverywhere(c);
  for (int i = 1; i < kNodes; ++i) {
    absl::Status s = PrepareNamed(c.db(i), {{"a2", "no"}, {"b2", "no"}}, "f");
    EXPECT_TRUE(absl::IsUnavailable(s)) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "named prepare 'f' refused with no effect")) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "shard 0: ")) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "shard 1: ")) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), leader)) << s;
    for (absl::Status d : {c.db(i).CommitPrepared("t5"), c.db(i).RollbackPrepared("t5")}) {
      EXPECT_TRUE(absl::IsUnavailable(d)) << d;
      EXPECT_TRUE(absl::StrContains(d.message(), leader)) << d;
    }
    EXPECT_TRUE(Listed(c.db(i), "t5")) << "node " << i;
  }
  EXPECT_EQ(AppliedEverywhere(c), before);
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_FALSE(Listed(c.db(i), "f")) << "node " << i;
    EXPECT_EQ(ReadOne(c.db(i), "a1"), std::nullopt) << "node " << i;
  }

  // Begun on node 2 while it led nothing: its reads are not confirmed by a term led since.
  std::unique_ptr<Transaction> early = c.db(1).Begin();
  ASSERT_TRUE(early->Put("b4", "early").ok());
  // Split: node 2 leads shard 1.
  auto* replica = dynamic_cast<replication::ShardReplica*>(Impl(c.db(0)).replicated_log(1));
  ASSERT_NE(replica, nullptr);
  ASSERT_NE(replica->node(), nullptr);
  ASSERT_TRUE(replica->node()->TransferLeadership(c.id(1)).ok());
  ASSERT_TRUE(WaitFor([&] { return c.db(1).Leadership().at(1).ready; }));
  ASSERT_EQ(c.Leader(1), 1);
  ASSERT_EQ(c.Leader(0), 0);
  ASSERT_TRUE(c.CaughtUpWith(1));
  before = AppliedEverywhere(c);
  const std::string leader1 = absl::StrCat("leader is server ", c.id(1), " at ", c.address(1));
  for (int i = 0; i < 2; ++i) {
    absl::Status s = PrepareNamed(c.db(i), {{"a2", "no"}, {"b2", "no"}}, "f");
    EXPECT_TRUE(absl::IsUnavailable(s)) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), i == 0 ? "shard 0: led here" : "shard 1: led here"))
        << s;
    EXPECT_TRUE(absl::StrContains(s.message(), i == 0 ? leader1 : leader)) << s;
    for (absl::Status d : {c.db(i).CommitPrepared("t5"), c.db(i).RollbackPrepared("t5")}) {
      EXPECT_TRUE(absl::IsUnavailable(d)) << d;
      EXPECT_TRUE(absl::StrContains(d.message(), i == 0 ? leader1 : leader)) << d;
    }
  }
  // Node 2 leads shard 1 now, but not in the term the early transaction's reads were stamped in.
  absl::Status e = early->Prepare("early");
  EXPECT_TRUE(absl::IsUnavailable(e)) << e;
  EXPECT_TRUE(absl::StrContains(e.message(), "reads began while this node was not its ready")) << e;
  EXPECT_EQ(AppliedEverywhere(c), before);
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(Listed(c.db(i), "t5")) << "node " << i;
    EXPECT_FALSE(Listed(c.db(i), "early")) << "node " << i;
    EXPECT_FALSE(Listed(c.db(i), "f")) << "node " << i;
  }
  // Node 1 leads shard 0: a named prepare of shard 0 alone runs there.
  ASSERT_TRUE(PrepareNamed(c.db(0), {{"a3", "one"}}, "f").ok());
  ASSERT_TRUE(c.db(0).CommitPrepared("f").ok());
  EXPECT_EQ(ReadOne(c.db(0), "a3"), "one");
  // Shard 1 handed back: node 1 decides t5.
  auto* back = dynamic_cast<replication::ShardReplica*>(Impl(c.db(1)).replicated_log(1));
  ASSERT_NE(back, nullptr);
  ASSERT_TRUE(back->node()->TransferLeadership(c.id(0)).ok());
  ASSERT_TRUE(WaitFor([&] { return c.db(0).Leadership().at(1).ready; }));
  ASSERT_TRUE(c.NodeZeroLeadsAll());
  absl::Status s = DecideWhenLed(c, 0, [](Database& db) { return db.CommitPrepared("t5"); });
  ASSERT_TRUE(s.ok()) << s;
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(WaitFor([&] { return ReadOne(c.db(i), "b1") == "y" && c.NothingPrepared(i); }))
        << "node " << i;
  }
  ExpectSameDigests(c);
}

// A named prepare writing one shard goes the same way: one prepare entry, a decision entry, a
// commit entry. Serializable: its read key stays locked on every replica until the decision.
TEST(NamedPrepare, SingleShardNamedPrepareThroughTheSamePath) {
  Cluster c("single", true, "named");
  ASSERT_TRUE(c.open());
  ASSERT_TRUE(c.NodeZeroLeadsAll());
  ASSERT_TRUE(replication::PutOne(c.db(0), "b9", "read").ok());
  TxnOptions serializable;
  serializable.isolation = Isolation::kSerializable;
  std::unique_ptr<Transaction> txn = c.db(0).Begin(serializable);
  const uint64_t id = txn->id();
  ASSERT_EQ(txn->Get("b9").value_or("-"), "read");
  ASSERT_TRUE(txn->Put("a1", "one").ok());
  ASSERT_TRUE(txn->Prepare("s1").ok());
  absl::StatusOr<Database::Outcome> o = c.db(0).GetOutcomeOfKey(id, "a1");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(*o, Database::Outcome::kPrepared);
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(WaitFor([&] {
      txn::TwoPhaseState& state = Impl(c.db(i)).coordinator().state();
      return Listed(c.db(i), "s1") && state.ReadLockHolder(1, "b9").has_value() &&
             state.LockHolder(0, "a1").has_value();
    })) << "node "
        << i;
  }
  // The read key is locked: a writer of it is refused until the decision.
  EXPECT_TRUE(absl::IsAborted(replication::PutOne(c.db(0), "b9", "changed")));
  ASSERT_TRUE(c.db(0).CommitPrepared("s1").ok());
  EXPECT_EQ(ReadOne(c.db(0), "a1"), "one");
  EXPECT_EQ(c.db(0).GetOutcome(id), Database::Outcome::kCommitted);
  ASSERT_TRUE(replication::PutOne(c.db(0), "b9", "changed").ok());
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(WaitFor([&] {
      return ReadOne(c.db(i), "a1") == "one" && ReadOne(c.db(i), "b9") == "changed" &&
             c.NothingPrepared(i);
    })) << "node "
        << i;
  }
  ExpectSameDigests(c);
}

}  // namespace
}  // namespace shardtx
