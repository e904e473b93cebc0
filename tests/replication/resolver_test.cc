// Issue 17 step 4: the in-doubt resolver over replicated shards (docs/replicated-2pc-plan.md
// sections 1 and 4). Three replicated Databases of two shards on 127.0.0.1
// (tests/replication/cross_cluster.h: node 1 leads both shards first). Each row of the in-doubt
// rule is reached by a failover, or by an entry refused after the commit point, and checked once
// the cluster has healed: the outcome on every replica, nothing prepared anywhere, the keys free,
// equal digests, GetOutcomeOfKey on the leader. Waits poll against a deadline.
#include <atomic>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/log_record.h"
#include "engine/replicated_log.h"
#include "gtest/gtest.h"
#include "replication/link_filter.h"
#include "shardtx/database.h"
#include "tests/replication/cross_cluster.h"
#include "tests/replication/db_calls.h"
#include "tests/replication/loopback_timing.h"
#include "txn/database_impl.h"
#include "txn/txn_records.h"
#include "util/mutex.h"
#include "util/status_latch.h"

namespace shardtx {
namespace {

using Outcome = Database::Outcome;
using replication::ReadOne;
using replication::WaitFor;
using replication::cross::Cluster;
using replication::cross::CommitOnceHealed;
using replication::cross::ExpectSameDigests;
using replication::cross::Impl;
using replication::cross::kNodes;
using replication::cross::kShards;
using replication::cross::Others;
using replication::cross::Write;
using replication::cross::WriteRefusing;

// Node `i` cut off from the other two both ways (`both`) or only from hearing them.
void CutOff(Cluster& c, int i, bool both) {
  for (int other : Others(i)) {
    ASSERT_TRUE(replication::BlockSend(c.id(other), c.id(i), true).ok());
    if (both) {
      ASSERT_TRUE(replication::BlockSend(c.id(i), c.id(other), true).ok());
    }
  }
}

// GetOutcomeOfKey(id, key) asked of the ready leader of key's shard among `among` until it
// answers (kUnavailable, "being resolved", while the transaction is in doubt there).
absl::StatusOr<Outcome> SettledOutcome(Cluster& c, uint64_t id, const std::string& key,
                                       const std::vector<int>& among) {
  const uint32_t shard = key[0] == 'a' ? 0 : 1;
  absl::StatusOr<Outcome> o = absl::UnavailableError("no leader");
  WaitFor([&] {
    std::optional<int> l = c.Leader(shard, among);
    if (l.has_value()) o = c.db(*l).GetOutcomeOfKey(id, key);
    return o.ok();
  });
  return o;
}

// The ready leader of each key's shard among the nodes other than node 0 answers `outcome`.
void ExpectOutcomeWithoutNodeZero(Cluster& c, uint64_t id, const std::vector<std::string>& keys,
                                  Outcome outcome) {
  for (const std::string& key : keys) {
    absl::StatusOr<Outcome> o = SettledOutcome(c, id, key, Others(0));
    ASSERT_TRUE(o.ok()) << key << ": " << o.status();
    EXPECT_EQ(*o, outcome) << key;
  }
}

// The commit timestamp of the newest version of `key` on node i's shard (0: none).
engine::Timestamp NewestTs(Cluster& c, int i, const std::string& key) {
  engine::Shard* s = Impl(c.db(i)).shard(key[0] == 'a' ? 0 : 1);
  MutexLock l(s->commit_mu());
  absl::StatusOr<engine::Timestamp> ts = s->NewestTsAfterLocked(key, 0);
  EXPECT_TRUE(ts.ok()) << ts.status();
  return ts.ok() ? *ts : 0;
}

// After healing: every node up reads each key's value (nullopt: absent), holds nothing
// prepared, the leader answers `outcome` for each key, the keys take a new commit, and the
// replicas' digests are equal. Committed: every key's version has one commit timestamp on every
// node (the parts' commits on every replica at the transaction's one timestamp).
using KeyValues = std::vector<std::pair<std::string, std::optional<std::string>>>;
void ExpectResolvedEverywhere(Cluster& c, uint64_t id, const KeyValues& kv, Outcome outcome) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : kv) keys.push_back(k);
  std::vector<int> up;
  for (int i = 0; i < kNodes; ++i) {
    if (c.up(i)) up.push_back(i);
  }
  for (int i : up) {
    EXPECT_TRUE(WaitFor([&] {
      for (const auto& [k, v] : kv) {
        if (ReadOne(c.db(i), k) != v) return false;
      }
      return c.NothingPrepared(i);
    })) << "node "
        << i << ": " << Impl(c.db(i)).coordinator().state().DescribeForTesting();
  }
  if (outcome == Outcome::kCommitted) {
    const engine::Timestamp ts = NewestTs(c, up[0], keys[0]);
    for (int i : up) {
      for (const std::string& k : keys) {
        EXPECT_EQ(NewestTs(c, i, k), ts) << "node " << i << ", " << k;
      }
    }
  }
  for (const std::string& k : keys) {
    absl::StatusOr<Outcome> o = SettledOutcome(c, id, k, up);
    ASSERT_TRUE(o.ok()) << k << ": " << o.status();
    EXPECT_EQ(*o, outcome) << k;
  }
  std::optional<int> leader = c.Leader(0, up);
  ASSERT_TRUE(leader.has_value());
  ASSERT_EQ(c.Leader(1, up), leader) << "leaderships not gathered";
  std::vector<std::pair<std::string, std::string>> again;
  for (const std::string& k : keys) again.emplace_back(k, "again");
  absl::Status s = Write(c.db(*leader), again);
  EXPECT_TRUE(s.ok()) << "the keys are not free: " << s;
  for (int i : up) {
    EXPECT_TRUE(WaitFor([&] { return ReadOne(c.db(i), keys[0]) == "again"; })) << "node " << i;
  }
  ExpectSameDigests(c);
}

// A loaded machine can cost node 1 its leadership before a test's hook is reached (its commit
// then answers kUnknown and the scenario did not happen): such a test starts again on a fresh
// cluster, at most this many times.
constexpr int kAttempts = 3;

InDoubtResolverStats ResolverStats(Cluster& c, int i) { return c.db(i).GetStats().resolver; }

// (a) Every prepare committed, the decision not: the leader is cut off from hearing its
// followers while it commits, so both prepares reach them and the next leader's term-start
// entries commit them; the commit answers kUnknown. Parallel commit: committed, and the next
// ready leader of both shards commits it (in doubt there until then).
TEST(InDoubtResolver, AllPreparesCommittedBeforeTheDecisionCommitOnTheNextLeader) {
  Cluster c("all_prepared");
  ASSERT_TRUE(c.open());
  ASSERT_TRUE(c.NodeZeroLeadsAll());
  absl::Cleanup heal = [&] { replication::UnblockAllLinks(); };
  CutOff(c, 0, /*both=*/false);
  uint64_t id = 0;
  absl::Status s = Write(c.db(0), {{"a1", "doubt"}, {"b1", "doubt"}}, &id);
  ASSERT_TRUE(absl::IsUnknown(s)) << s;
  // Before healing: the next leader of both shards resolves it, committed.
  ExpectOutcomeWithoutNodeZero(c, id, {"a1", "b1"}, Outcome::kCommitted);
  std::optional<int> next = c.Leader(0, Others(0));
  ASSERT_TRUE(next.has_value());
  const InDoubtResolverStats st = ResolverStats(c, *next);
  EXPECT_GE(st.found, 1u);
  EXPECT_GE(st.resolved_committed, 1u);
  EXPECT_EQ(st.resolved_aborted, 0u);
  EXPECT_GT(st.max_resolve_ms, 0);
  EXPECT_TRUE(absl::StrContains(c.db(*next).GetStats().ToString(), "in doubt after failover"));
  std::move(heal).Invoke();
  ExpectResolvedEverywhere(c, id, {{"a1", "doubt"}, {"b1", "doubt"}}, Outcome::kCommitted);
}

// (b) Some prepares only: shard 0's prepare commits, shard 1's is refused (the commit answers
// kUnavailable, aborted) and shard 0's abort entry is refused too, the leader cut off as it is:
// shard 0's part stays prepared, in doubt. Its old leader cannot resolve it (its entries reach
// nobody); the next leader of both shards finds no prepare of shard 1 (final on a ready leader):
// aborted.
TEST(InDoubtResolver, SomePreparesOnlyAbortOnTheNextLeader) {
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    Cluster c(absl::StrCat("some_prepared", attempt));
    ASSERT_TRUE(c.open());
    ASSERT_TRUE(c.NodeZeroLeadsAll());
    ASSERT_TRUE(Write(c.db(0), {{"a1", "old"}, {"b1", "old"}}).ok());
    // Its commit entries applied everywhere before the cut (else the next leader resolves it too).
    ASSERT_TRUE(c.SettledEverywhere("b1", "old"));
    absl::Cleanup heal = [&] { replication::UnblockAllLinks(); };
    std::atomic<bool> reached{false};  // shard 0's prepare committed, shard 1's refused
    c.SetProposeHook(0, [&](uint32_t shard, uint8_t record) {
      if (shard == 1 && record == engine::kPrepare) return absl::UnavailableError("test: refused");
      if (shard == 0 && record == engine::kAbortPrepared) {
        reached = true;
        CutOff(c, 0, /*both=*/true);
        return absl::UnavailableError("test: refused");
      }
      return absl::OkStatus();
    });
    uint64_t id = 0;
    absl::Status s = Write(c.db(0), {{"a1", "new"}, {"b1", "new"}}, &id);
    if (!reached) {
      std::printf("attempt %d: node 1 lost its leadership first (%s)\n", attempt,
                  s.ToString().c_str());
      c.SetProposeHook(0, nullptr);
      continue;
    }
    EXPECT_TRUE(absl::IsUnavailable(s)) << s;
    ExpectOutcomeWithoutNodeZero(c, id, {"a1", "b1"}, Outcome::kAborted);
    std::optional<int> next = c.Leader(0, Others(0));
    ASSERT_TRUE(next.has_value());
    EXPECT_GE(ResolverStats(c, *next).resolved_aborted, 1u);
    EXPECT_EQ(ResolverStats(c, *next).resolved_committed, 0u);
    c.SetProposeHook(0, nullptr);
    std::move(heal).Invoke();
    ExpectResolvedEverywhere(c, id, {{"a1", "old"}, {"b1", "old"}}, Outcome::kAborted);
    return;
  }
  FAIL() << "the prepares never got that far in " << kAttempts << " attempts";
}

// (c) Past the commit point, shard 1's commit entry is refused (cross_shard_commit_test's
// refusal: leadership of shard 1 moved, as the hook plays it). The commit is acknowledged; the
// part put back prepared on the leader goes to its resolver, which commits it (a decision and
// shard 0's commit are on record) once the hook lets the entry through.
TEST(InDoubtResolver, CommitEntryRefusedAfterTheCommitPointIsCommittedByTheResolver) {
  Cluster c("phase_two");
  ASSERT_TRUE(c.open());
  ASSERT_TRUE(c.NodeZeroLeadsAll());
  uint64_t id = 0;
  absl::Status s = WriteRefusing(c, 0, engine::kCommitPrepared, {{"a1", "x"}, {"b1", "y"}}, &id);
  ASSERT_TRUE(s.ok()) << s;
  // Shard 1's part is visible once the resolver has committed it (not before: the refused
  // entry's versions were taken back), on every node.
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(WaitFor([&] { return ReadOne(c.db(i), "b1") == "y"; })) << "node " << i;
    engine::Shard* shard1 = Impl(c.db(i)).shard(1);
    EXPECT_TRUE(WaitFor([&] {
      MutexLock l(shard1->commit_mu());
      return shard1->ReleasedTxnLocked(id) == engine::ReleasedTxns::State::kReleased;
    })) << "node "
        << i;
  }
  const InDoubtResolverStats st = ResolverStats(c, 0);
  EXPECT_GE(st.found, 1u);
  EXPECT_GE(st.resolved_committed, 1u);
  ExpectResolvedEverywhere(c, id, {{"a1", "x"}, {"b1", "y"}}, Outcome::kCommitted);
}

// (b) again, the refusal held while the resolver tries too: a refused commit entry leaves no
// version of its part on the leader (which holds what its applied entries say, as its followers
// do: equal digests), and the part, committed once the entry goes through, takes the timestamp
// the other part committed at, on every node (a new one would show readers between the two
// timestamps half of the transaction).
TEST(InDoubtResolver, ARefusedCommitEntryLeavesNoVersionAndItsPartTakesTheSameTimestamp) {
  Cluster c("same_ts");
  ASSERT_TRUE(c.open());
  ASSERT_TRUE(c.NodeZeroLeadsAll());
  std::atomic<bool> refuse{true};
  std::atomic<int> refused{0};
  c.SetProposeHook(0, [&](uint32_t shard, uint8_t record) {
    if (shard != 1 || record != engine::kCommitPrepared || !refuse) return absl::OkStatus();
    ++refused;
    return absl::UnavailableError("test: shard 1's commit entry refused");
  });
  absl::Cleanup unhook = [&] { c.SetProposeHook(0, nullptr); };
  uint64_t id = 0;
  absl::Status s = Write(c.db(0), {{"a1", "x"}, {"b1", "y"}}, &id);
  ASSERT_TRUE(s.ok()) << s;  // every prepare committed: the commit point
  const engine::Timestamp ts = NewestTs(c, 0, "a1");
  ASSERT_NE(ts, 0u);
  // The committer's entry and at least one of the resolver's were refused.
  ASSERT_TRUE(WaitFor([&] { return refused.load() >= 2; }));
  {
    // A reader on the leader at a snapshot at or above the commit timestamp: shard 0's part is
    // there, shard 1's is not applied yet, so shard 1 refuses rather than show half of it.
    std::unique_ptr<Transaction> reader = c.db(0).Begin();
    absl::StatusOr<std::string> a = reader->Get("a1");
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(*a, "x");
    absl::StatusOr<std::string> b = reader->Get("b1");
    EXPECT_TRUE(absl::IsUnavailable(b.status())) << (b.ok() ? *b : b.status().ToString());
  }
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(WaitFor([&] { return ReadOne(c.db(i), "a1") == "x"; })) << "node " << i;
    EXPECT_EQ(ReadOne(c.db(i), "b1"), std::nullopt) << "node " << i;
    EXPECT_EQ(NewestTs(c, i, "b1"), 0u) << "node " << i;
  }
  ExpectSameDigests(c);
  refuse = false;
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(WaitFor([&] { return ReadOne(c.db(i), "b1") == "y"; })) << "node " << i;
    EXPECT_EQ(NewestTs(c, i, "a1"), ts) << "node " << i;
    EXPECT_EQ(NewestTs(c, i, "b1"), ts) << "node " << i;
  }
  ExpectResolvedEverywhere(c, id, {{"a1", "x"}, {"b1", "y"}}, Outcome::kCommitted);
}

// (c) with a failover: shard 1's commit entry refused and the leader cut off at that moment. The
// next leader holds shard 1's prepare and either shard 0's commit (with the decision) or both
// prepares: committed either way.
TEST(InDoubtResolver, CommitEntryRefusedAndTheLeaderCutOffCommitsOnTheNextLeader) {
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    Cluster c(absl::StrCat("phase_two_cut", attempt));
    ASSERT_TRUE(c.open());
    ASSERT_TRUE(c.NodeZeroLeadsAll());
    absl::Cleanup heal = [&] { replication::UnblockAllLinks(); };
    std::atomic<bool> reached{false};  // the commit point
    c.SetProposeHook(0, [&](uint32_t shard, uint8_t record) {
      if (shard != 1 || record != engine::kCommitPrepared) return absl::OkStatus();
      reached = true;
      CutOff(c, 0, /*both=*/true);
      return absl::UnavailableError("test: refused");
    });
    uint64_t id = 0;
    absl::Status s = Write(c.db(0), {{"a1", "x"}, {"b1", "y"}}, &id);
    if (!reached) {
      std::printf("attempt %d: node 1 lost its leadership first (%s)\n", attempt,
                  s.ToString().c_str());
      c.SetProposeHook(0, nullptr);
      continue;
    }
    ASSERT_TRUE(s.ok()) << s;
    ExpectOutcomeWithoutNodeZero(c, id, {"a1", "b1"}, Outcome::kCommitted);
    c.SetProposeHook(0, nullptr);
    std::move(heal).Invoke();
    ExpectResolvedEverywhere(c, id, {{"a1", "x"}, {"b1", "y"}}, Outcome::kCommitted);
    return;
  }
  FAIL() << "the commit point was never reached in " << kAttempts << " attempts";
}

// An entry proposed by the test on shard `shard`'s leader (node i) in its current term, waited
// for.
absl::Status ProposeAndWait(Cluster& c, int i, uint32_t shard, const std::string& records) {
  class Wait final : public engine::ReplicatedLog::Proposal {
   public:
    void Committed(engine::RaftPosition) override { done_.Set(absl::OkStatus()); }
    void Unknown(const absl::Status& s) override { done_.Set(s); }
    void Refused(const absl::Status& s) override { done_.Set(s); }
    StatusLatch done_;
  } wait;
  txn::DatabaseImpl& db = Impl(c.db(i));
  engine::ReplicatedLog* log = db.replicated_log(shard);
  {
    MutexLock l(db.shard(shard)->commit_mu());
    if (absl::Status s = log->ProposeLocked(records, log->StampRead().term, &wait); !s.ok()) {
      return s;
    }
  }
  return wait.done_.Wait();
}

// (d) Named transactions (a host's Prepare(name), its records proposed here by the test on node 1
// as the named path of step 3 writes them), node 1 then closed for good. "n1": both prepares and
// a commit decision committed, no commit entry: committed by the next leader. "n2": both
// prepares, no decision: left prepared and listed for the host. "n3": shard 0's prepare only:
// aborted.
TEST(InDoubtResolver, NamedDecidedCommitsUndecidedIsListedHalfPreparedAborts) {
  Cluster c("named");
  ASSERT_TRUE(c.open());
  ASSERT_TRUE(c.NodeZeroLeadsAll());
  const uint64_t base = uint64_t{1} << 60;  // ids no node hands out
  auto prepare = [&](uint64_t id, const std::string& name, uint32_t shard) {
    txn::PrepareRecord r{id, name, 1, {0, 1}, {}, {}, {}};
    r.writes.push_back(
        engine::Write{engine::WriteOp::kPut, absl::StrCat(shard == 0 ? "a" : "b", name), "named"});
    std::string entry;
    engine::AppendEntryRecord(&entry, engine::kPrepare, txn::EncodePrepare(r));
    return entry;
  };
  for (uint32_t g = 0; g < kShards; ++g) {
    ASSERT_TRUE(ProposeAndWait(c, 0, g, prepare(base + 1, "n1", g)).ok());
    ASSERT_TRUE(ProposeAndWait(c, 0, g, prepare(base + 2, "n2", g)).ok());
  }
  ASSERT_TRUE(ProposeAndWait(c, 0, 0, prepare(base + 3, "n3", 0)).ok());
  {
    std::string entry;
    txn::DecisionRecord d{base + 1, true, 0, {0, 1}};
    engine::AppendEntryRecord(&entry, engine::kDecision, txn::EncodeDecision(d));
    ASSERT_TRUE(ProposeAndWait(c, 0, 0, entry).ok());
  }
  for (int i = 1; i < kNodes; ++i) {
    ASSERT_TRUE(WaitFor([&] {
      return Impl(c.db(i)).coordinator().state().AllPrepared().size() == 3;
    })) << "node "
        << i;
  }
  c.Close(0);
  // n1 committed and n3 aborted on both survivors; n2 left, listed on the new leader.
  for (int i : Others(0)) {
    EXPECT_TRUE(WaitFor([&] {
      std::vector<txn::TwoPhaseState::PreparedInfo> p =
          Impl(c.db(i)).coordinator().state().AllPrepared();
      return ReadOne(c.db(i), "an1") == "named" && ReadOne(c.db(i), "bn1") == "named" &&
             p.size() == 1 && p[0].txn_id == base + 2;
    })) << "node "
        << i << ": " << Impl(c.db(i)).coordinator().state().DescribeForTesting();
    EXPECT_EQ(ReadOne(c.db(i), "an3"), std::nullopt);
  }
  std::optional<int> next = c.Leader(0, Others(0));
  ASSERT_TRUE(next.has_value());
  absl::StatusOr<std::vector<std::string>> listed = c.db(*next).ListPrepared();
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(*listed, std::vector<std::string>{"n2"});
  const InDoubtResolverStats st = ResolverStats(c, *next);
  EXPECT_GE(st.resolved_committed, 1u);
  EXPECT_GE(st.resolved_aborted, 1u);
  EXPECT_GE(st.left_for_host, 1u);
  ExpectOutcomeWithoutNodeZero(c, base + 1, {"an1", "bn1"}, Outcome::kCommitted);
  ExpectOutcomeWithoutNodeZero(c, base + 3, {"an3"}, Outcome::kAborted);
  // n2's keys stay locked for the host.
  absl::Status locked = replication::PutOne(c.db(*next), "an2", "other");
  EXPECT_TRUE(absl::IsAborted(locked)) << locked;
  ExpectSameDigests(c);
}

}  // namespace
}  // namespace shardtx
