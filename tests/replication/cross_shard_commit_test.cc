// Issue 17 step 2: the leader's cross-shard commit over replicated shards
// (docs/replicated-2pc-plan.md section 3). Three replicated Databases in one process on
// 127.0.0.1, two shards each ("a..." on shard 0, anything else on shard 1); node 1 has the
// shortest election timeout, so it leads both shards. A cross-shard commit on it is visible there
// at once and, once applied, on both followers (equal digests); a commit on a node that leads
// only some participants, or none, is refused naming the leaders, with nothing proposed; a
// prepare refused on one part aborts with no effect on any replica; the leader cut off mid-commit
// answers kUnknown, and GetOutcomeOfKey on the next leaders answers; concurrent cross-shard
// transfers keep the bank's total on every replica. Waits poll against a deadline.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "replication/link_filter.h"
#include "replication/shard_machine.h"
#include "replication/shard_replica.h"
#include "shardtx/database.h"
#include "tests/replication/cross_cluster.h"
#include "tests/replication/db_calls.h"
#include "tests/replication/free_ports.h"
#include "tests/replication/loopback_timing.h"
#include "txn/database_impl.h"
#include "util/mutex.h"

namespace shardtx {
namespace {

using replication::kElectionMs;
using replication::kHeartbeatMs;
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

TEST(CrossShardCommit, VisibleOnTheLeaderAtOnceAndOnFollowersOnceApplied) {
  Cluster c("visible");
  ASSERT_TRUE(c.open());
  ASSERT_TRUE(c.NodeZeroLeadsAll());
  uint64_t id = 0;
  ASSERT_TRUE(Write(c.db(0), {{"a1", "x"}, {"b1", "y"}, {"b2", "z"}}, &id).ok());
  // Visible on the leader as soon as Commit returns, both parts at one timestamp.
  {
    std::unique_ptr<Transaction> txn = c.db(0).Begin();
    EXPECT_EQ(txn->Get("a1").value_or("-"), "x");
    EXPECT_EQ(txn->Get("b1").value_or("-"), "y");
    EXPECT_EQ(txn->Get("b2").value_or("-"), "z");
  }
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(WaitFor([&] {
      return ReadOne(c.db(i), "a1") == "x" && ReadOne(c.db(i), "b1") == "y" &&
             ReadOne(c.db(i), "b2") == "z";
    })) << "node "
        << i;
  }
  // Every part's commit entry applied everywhere: no part left prepared (its keys unlocked).
  ASSERT_TRUE(c.CaughtUpWith(0));
  for (int i = 0; i < kNodes; ++i) EXPECT_TRUE(c.NothingPrepared(i)) << "node " << i;
  // Each participant's commit record counts as released on every replica (the table that
  // answers GetOutcome once the outcome window has forgotten it, also after a restart).
  for (int i = 0; i < kNodes; ++i) {
    for (uint32_t g = 0; g < kShards; ++g) {
      engine::Shard* shard = Impl(c.db(i)).shard(g);
      MutexLock l(shard->commit_mu());
      EXPECT_EQ(shard->ReleasedTxnLocked(id), engine::ReleasedTxns::State::kReleased)
          << "node " << i << " shard " << g;
    }
  }
  // Committed, as the leader and the followers answer it.
  for (const char* key : {"a1", "b1"}) {
    absl::StatusOr<Database::Outcome> o = c.db(0).GetOutcomeOfKey(id, key);
    ASSERT_TRUE(o.ok()) << o.status();
    EXPECT_EQ(*o, Database::Outcome::kCommitted) << key;
    for (int i = 1; i < kNodes; ++i) {
      EXPECT_EQ(c.db(i).GetOutcome(id), Database::Outcome::kCommitted) << "node " << i;
    }
  }
  // A second cross-shard commit over the same keys: the locks were released.
  ASSERT_TRUE(Write(c.db(0), {{"a1", "x2"}, {"b1", "y2"}}).ok());
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(WaitFor([&] {
      return ReadOne(c.db(i), "a1") == "x2" && ReadOne(c.db(i), "b1") == "y2";
    })) << "node "
        << i;
  }
  ExpectSameDigests(c);
}

// A facade of a shard's log as a node that does not lead the shard sees it: CheckLeader and
// ProposeLocked refuse naming the leader, StampRead has no term. The rest goes to the real one.
class NotLeading final : public engine::ReplicatedLog {
 public:
  NotLeading(engine::ReplicatedLog* real, std::string why) : real_(real), why_(std::move(why)) {}
  void SetListener(Listener* listener) override { real_->SetListener(listener); }
  absl::Status CheckLeader() override { return absl::UnavailableError(why_); }
  absl::Status ProposeLocked(absl::string_view, uint64_t, Proposal*) override {
    return absl::UnavailableError(why_);
  }
  ReadStamp StampRead() override { return ReadStamp{0, real_->StampRead().barriers}; }
  absl::Status ConfirmReads(const ReadStamp&, ReadCheck*) override {
    return absl::UnavailableError(why_);
  }

 private:
  engine::ReplicatedLog* const real_;
  const std::string why_;
};

TEST(CrossShardCommit, RefusedWithNoEffectUnlessThisNodeLeadsEveryParticipant) {
  Cluster c("refused");
  ASSERT_TRUE(c.open());
  ASSERT_TRUE(c.NodeZeroLeadsAll());
  auto applied = [&] {
    std::vector<uint64_t> out;
    for (int i = 0; i < kNodes; ++i) {
      for (uint32_t g = 0; g < kShards; ++g) out.push_back(c.Applied(i, g));
    }
    return out;
  };
  ExpectSameDigests(c);
  const std::vector<uint64_t> before = applied();
  const std::string leader = absl::StrCat("leader is server ", c.id(0), " at ", c.address(0));
  // A follower leads neither participant: both named, with their leader.
  for (int i = 1; i < kNodes; ++i) {
    absl::Status s = Write(c.db(i), {{"a1", "no"}, {"b1", "no"}});
    EXPECT_TRUE(absl::IsUnavailable(s)) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "shard 0: ")) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "shard 1: ")) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), leader)) << s;
  }
  // Node 1 leads shard 0 but (as far as its commit path sees) not shard 1.
  txn::DatabaseImpl& db = Impl(c.db(0));
  engine::ReplicatedLog* real = db.replicated_log(1);
  NotLeading facade(real, absl::StrCat("server ", c.id(0), " of shard 1 does not lead (term 9); ",
                                       "leader is server ", c.id(1), " at ", c.address(1)));
  db.AttachReplicatedLog(1, &facade);
  {
    absl::Cleanup restore = [&] { db.AttachReplicatedLog(1, real); };
    absl::Status s = Write(c.db(0), {{"a2", "no"}, {"b2", "no"}});
    EXPECT_TRUE(absl::IsUnavailable(s)) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "shard 0: led here")) << s;
    EXPECT_TRUE(absl::StrContains(
        s.message(), absl::StrCat("shard 1: server ", c.id(0), " of shard 1 does not lead")))
        << s;
    EXPECT_TRUE(absl::StrContains(s.message(), absl::StrCat("leader is server ", c.id(1)))) << s;
  }
  // Nothing proposed anywhere: no replica's shard moved, nothing prepared, nothing written.
  EXPECT_EQ(applied(), before);
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(c.NothingPrepared(i)) << "node " << i;
    for (const char* key : {"a1", "b1", "a2", "b2"}) {
      EXPECT_EQ(ReadOne(c.db(i), key), std::nullopt) << "node " << i << " " << key;
    }
  }
  // Its keys are free: the same commit on the leader of both succeeds.
  ASSERT_TRUE(Write(c.db(0), {{"a2", "yes"}, {"b2", "yes"}}).ok());
  ExpectSameDigests(c);
}

// A real split (gathering off, shard 1's leadership handed to node 2 by hand): node 1 leads
// shard 0 only, node 2 shard 1 only. A cross-shard commit on either is refused naming the other
// shard's leader, nothing proposed anywhere.
TEST(CrossShardCommit, RefusedOnEachNodeOfASplitLeadership) {
  Cluster c("split", /*gather=*/false);
  ASSERT_TRUE(c.open());
  ASSERT_TRUE(c.NodeZeroLeadsAll());
  auto* replica = dynamic_cast<replication::ShardReplica*>(Impl(c.db(0)).replicated_log(1));
  ASSERT_NE(replica, nullptr);
  ASSERT_NE(replica->node(), nullptr);
  ASSERT_TRUE(replica->node()->TransferLeadership(c.id(1)).ok());
  ASSERT_TRUE(WaitFor([&] { return c.db(1).Leadership().at(1).ready; }));
  ASSERT_EQ(c.Leader(1), 1);
  ASSERT_EQ(c.Leader(0), 0);
  ExpectSameDigests(c);
  std::vector<uint64_t> before;
  for (int i = 0; i < kNodes; ++i) {
    for (uint32_t g = 0; g < kShards; ++g) before.push_back(c.Applied(i, g));
  }
  for (int i = 0; i < 2; ++i) {
    absl::Status s = Write(c.db(i), {{"a1", "no"}, {"b1", "no"}});
    EXPECT_TRUE(absl::IsUnavailable(s)) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), i == 0 ? "shard 0: led here" : "shard 1: led here"))
        << s;
    const int other = 1 - i;
    EXPECT_TRUE(absl::StrContains(
        s.message(), absl::StrCat("leader is server ", c.id(other), " at ", c.address(other))))
        << s;
  }
  std::vector<uint64_t> after;
  for (int i = 0; i < kNodes; ++i) {
    for (uint32_t g = 0; g < kShards; ++g) after.push_back(c.Applied(i, g));
  }
  EXPECT_EQ(after, before);
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(c.NothingPrepared(i)) << "node " << i;
    EXPECT_EQ(ReadOne(c.db(i), "a1"), std::nullopt) << "node " << i;
  }
}

TEST(CrossShardCommit, PrepareRefusedOnOnePartAbortsWithNoEffectOnAnyReplica) {
  Cluster c("abort");
  ASSERT_TRUE(c.open());
  ASSERT_TRUE(c.NodeZeroLeadsAll());
  ASSERT_TRUE(Write(c.db(0), {{"a1", "old"}, {"b1", "old"}}).ok());
  for (int i = 0; i < kNodes; ++i) {
    ASSERT_TRUE(WaitFor([&] { return ReadOne(c.db(i), "b1") == "old"; })) << "node " << i;
  }
  // Shard 1's prepare is refused after shard 0's was proposed (as when leadership of shard 1
  // moves between the two): shard 0's prepare commits, then its abort entry.
  uint64_t id = 0;
  absl::Status s = WriteRefusing(c, 0, engine::kPrepare, {{"a1", "new"}, {"b1", "new"}}, &id);
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_TRUE(absl::StrContains(
      s.message(), absl::StrCat("cross-shard transaction ", id, " aborted with no effect")))
      << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "test: shard 1 is led elsewhere now")) << s;
  EXPECT_EQ(c.db(0).GetOutcome(id), Database::Outcome::kAborted);
  // Every replica applied shard 0's prepare and its abort: nothing prepared, the old values.
  for (int i = 1; i < kNodes; ++i) {  // the abort entry applied
    EXPECT_TRUE(WaitFor([&] { return c.db(i).GetOutcome(id) == Database::Outcome::kAborted; }))
        << "node " << i;
  }
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(c.NothingPrepared(i)) << "node " << i;
    EXPECT_EQ(ReadOne(c.db(i), "a1"), "old") << "node " << i;
    EXPECT_EQ(ReadOne(c.db(i), "b1"), "old") << "node " << i;
  }
  // The keys are free again.
  ASSERT_TRUE(Write(c.db(0), {{"a1", "after"}, {"b1", "after"}}).ok());
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(WaitFor([&] { return ReadOne(c.db(i), "b1") == "after"; })) << "node " << i;
  }
  ExpectSameDigests(c);
}

// Serializable: the read set goes into the first prepare and is locked (read locks, instead of an
// early commit timestamp) until the commit is resolved, on the leader and, by redo, on the
// followers; then released everywhere, so a writer of a key read commits. A read key changed
// after the snapshot aborts the commit (kAborted), nothing proposed.
TEST(CrossShardCommit, SerializableReadsAreLockedUntilResolvedAndValidated) {
  Cluster c("serializable");
  ASSERT_TRUE(c.open());
  ASSERT_TRUE(c.NodeZeroLeadsAll());
  ASSERT_TRUE(Write(c.db(0), {{"a5", "r0"}, {"b5", "r1"}}).ok());
  TxnOptions serializable;
  serializable.isolation = Isolation::kSerializable;
  {
    std::unique_ptr<Transaction> txn = c.db(0).Begin(serializable);
    ASSERT_EQ(txn->Get("a5").value_or("-"), "r0");
    ASSERT_EQ(txn->Get("b5").value_or("-"), "r1");
    ASSERT_TRUE(txn->Put("a6", "w").ok() && txn->Put("b6", "w").ok());
    // Seen when shard 1's prepare is proposed: the keys read are locked already.
    txn::TwoPhaseState& state = Impl(c.db(0)).coordinator().state();
    bool locked_at_prepare = false;
    c.SetProposeHook(0, [&](uint32_t shard, uint8_t record) {
      if (shard == 1 && record == engine::kPrepare) {
        locked_at_prepare =
            state.ReadLockHolder(0, "a5").has_value() && state.ReadLockHolder(1, "b5").has_value();
      }
      return absl::OkStatus();
    });
    absl::Status s = txn->Commit();
    c.SetProposeHook(0, nullptr);
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_TRUE(locked_at_prepare);
  }
  ASSERT_TRUE(WaitFor([&] {
    for (int i = 0; i < kNodes; ++i) {
      if (ReadOne(c.db(i), "b6") != "w" || !c.NothingPrepared(i)) return false;
    }
    return true;
  }));
  for (int i = 0; i < kNodes; ++i) {
    txn::TwoPhaseState& state = Impl(c.db(i)).coordinator().state();
    EXPECT_FALSE(state.ReadLockHolder(0, "a5").has_value()) << "node " << i;
    EXPECT_FALSE(state.ReadLockHolder(1, "b5").has_value()) << "node " << i;
  }
  ASSERT_TRUE(Write(c.db(0), {{"a5", "changed"}}).ok());  // the read lock is gone
  // Read before that change, committed after it: refused by validation, nothing proposed.
  std::unique_ptr<Transaction> stale = c.db(0).Begin(serializable);
  ASSERT_EQ(stale->Get("b5").value_or("-"), "r1");
  ASSERT_TRUE(Write(c.db(0), {{"b5", "changed"}}).ok());
  ASSERT_TRUE(c.CaughtUpWith(0));
  const uint64_t applied0 = c.Applied(0, 0), applied1 = c.Applied(0, 1);
  ASSERT_TRUE(stale->Put("a7", "w").ok() && stale->Put("b7", "w").ok());
  absl::Status s = stale->Commit();
  EXPECT_TRUE(absl::IsAborted(s)) << s;
  EXPECT_EQ(c.Applied(0, 0), applied0);
  EXPECT_EQ(c.Applied(0, 1), applied1);
  EXPECT_EQ(ReadOne(c.db(0), "a7"), std::nullopt);
  ExpectSameDigests(c);
  // Left in doubt by a commit entry refused on shard 1 (the read set, in the first prepare, is
  // locked on the followers too), the transaction is committed by the in-doubt resolver: then
  // the read lock is gone on every replica and shard 1's part committed everywhere.
  std::unique_ptr<Transaction> doubt = c.db(0).Begin(serializable);
  ASSERT_EQ(doubt->Get("a8").value_or("-"), "-");
  ASSERT_TRUE(doubt->Put("a9", "w").ok() && doubt->Put("b9", "w").ok());
  c.SetProposeHook(0, [](uint32_t shard, uint8_t record) {
    return shard == 1 && record == engine::kCommitPrepared ? absl::UnavailableError("test: refused")
                                                           : absl::OkStatus();
  });
  s = doubt->Commit();
  c.SetProposeHook(0, nullptr);
  ASSERT_TRUE(s.ok()) << s;
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(WaitFor([&] {
      return ReadOne(c.db(i), "b9") == "w" && c.NothingPrepared(i) &&
             !Impl(c.db(i)).coordinator().state().ReadLockHolder(0, "a8").has_value();
    })) << "node "
        << i;
  }
  ExpectSameDigests(c);
}

// The leader cut off from both followers right before a cross-shard commit: its prepares reach
// no follower, so they never commit. The commit answers kUnknown naming the transaction (the
// leader cannot tell); the next leaders, each the ready leader of its shard after a fence,
// hold no prepare of it, so GetOutcomeOfKey answers kAborted, final. (No resolver exists yet,
// issue 17 step 4: a transaction whose prepares did reach the new leaders would be answered
// kUnavailable, "being resolved", for as long as it stays in doubt; not this case.) Healed, the
// old leader follows, has dropped its parts (nothing prepared) and the keys are nowhere.
TEST(CrossShardCommit, LeaderCutOffMidCommitAnswersUnknownAndTheNextLeadersAnswerAborted) {
  Cluster c("cutoff");
  ASSERT_TRUE(c.open());
  ASSERT_TRUE(c.NodeZeroLeadsAll());
  ASSERT_TRUE(Write(c.db(0), {{"a0", "1"}, {"b0", "1"}}).ok());
  // Its commit entries applied everywhere before the cut (one still in flight at the cut would
  // leave it in doubt, prepared, for the next leader's resolver).
  ASSERT_TRUE(c.SettledEverywhere("b0", "1"));
  absl::Cleanup heal = [&] { replication::UnblockAllLinks(); };
  for (int other : Others(0)) {
    ASSERT_TRUE(replication::BlockSend(c.id(0), c.id(other), true).ok());
    ASSERT_TRUE(replication::BlockSend(c.id(other), c.id(0), true).ok());
  }
  uint64_t id = 0;
  absl::Status s = Write(c.db(0), {{"a1", "cut"}, {"b1", "cut"}}, &id);
  ASSERT_TRUE(absl::IsUnknown(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), absl::StrCat("cross-shard transaction ", id))) << s;
  EXPECT_EQ(c.db(0).GetOutcome(id), Database::Outcome::kUnknown);
  // The old leader dropped the parts whose prepares it could not confirm.
  EXPECT_TRUE(c.NothingPrepared(0));
  // New leaders among the other two (each shard's may be either). Asked again while a shard's
  // leadership is still moving: gathering may hand it over between finding it and asking
  // (kUnavailable, "handing its leadership"; seen once under load).
  for (uint32_t g = 0; g < kShards; ++g) {
    absl::StatusOr<Database::Outcome> o = absl::UnavailableError("no new leader");
    EXPECT_TRUE(WaitFor([&] {
      std::optional<int> next = c.Leader(g, Others(0));
      if (next.has_value()) o = c.db(*next).GetOutcomeOfKey(id, g == 0 ? "a1" : "b1");
      return o.ok();
    })) << "shard " << g;
    ASSERT_TRUE(o.ok()) << o.status();
    EXPECT_EQ(*o, Database::Outcome::kAborted) << "shard " << g;
  }
  std::move(heal).Invoke();
  CommitOnceHealed(c);
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_EQ(ReadOne(c.db(i), "a1"), std::nullopt) << "node " << i;
    EXPECT_EQ(ReadOne(c.db(i), "b1"), std::nullopt) << "node " << i;
    EXPECT_TRUE(c.NothingPrepared(i)) << "node " << i;
  }
  ExpectSameDigests(c);
}

// Several threads transfer between accounts on shard 0 ("a*") and shard 1 ("b*") on the leader,
// every transfer a cross-shard transaction; conflicts abort (kAborted) and are not retried.
// The total holds on the leader throughout and on every replica once they caught up.
TEST(CrossShardCommit, ConcurrentTransfersKeepTheTotalOnEveryReplica) {
  Cluster c("bank");
  ASSERT_TRUE(c.open());
  ASSERT_TRUE(c.NodeZeroLeadsAll());
  constexpr int kAccounts = 4;  // per shard
  constexpr int kStart = 100;
  std::vector<std::pair<std::string, std::string>> init;
  std::vector<std::string> accounts;
  for (int k = 0; k < kAccounts; ++k) {
    for (const char* prefix : {"a", "b"}) accounts.push_back(absl::StrCat(prefix, "cct", k));
  }
  for (const std::string& a : accounts) init.emplace_back(a, absl::StrCat(kStart));
  ASSERT_TRUE(Write(c.db(0), init).ok());
  const int expected = kStart * static_cast<int>(accounts.size());
  auto total = [&](Database& db) -> std::optional<int> {
    std::unique_ptr<Transaction> txn = db.Begin();
    int sum = 0;
    for (const std::string& a : accounts) {
      absl::StatusOr<std::string> v = txn->Get(a);
      int n = 0;
      if (!v.ok() || !absl::SimpleAtoi(*v, &n)) return std::nullopt;
      sum += n;
    }
    return sum;
  };
  std::atomic<int> committed{0}, aborted{0}, other{0}, wrong_total{0};
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop.load()) {
      std::optional<int> t = total(c.db(0));
      if (t.has_value() && *t != expected) ++wrong_total;
    }
  });
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937 rng(static_cast<unsigned>(w + 1));
      for (int n = 0; n < 40; ++n) {
        const std::string from = absl::StrCat(n % 2 == 0 ? "a" : "b", "cct", rng() % kAccounts);
        const std::string to = absl::StrCat(n % 2 == 0 ? "b" : "a", "cct", rng() % kAccounts);
        std::unique_ptr<Transaction> txn = c.db(0).Begin();
        absl::StatusOr<std::string> f = txn->Get(from), t = txn->Get(to);
        int fv = 0, tv = 0;
        if (!f.ok() || !t.ok() || !absl::SimpleAtoi(*f, &fv) || !absl::SimpleAtoi(*t, &tv)) {
          ++other;
          continue;
        }
        const int amount = 1 + static_cast<int>(rng() % 5);
        absl::Status s = txn->Put(from, absl::StrCat(fv - amount));
        if (s.ok()) s = txn->Put(to, absl::StrCat(tv + amount));
        if (s.ok()) s = txn->Commit();
        if (s.ok()) {
          ++committed;
        } else if (absl::IsAborted(s)) {
          ++aborted;
        } else {
          ++other;
          ADD_FAILURE() << s;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  stop.store(true);
  reader.join();
  EXPECT_GT(committed.load(), 20);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(wrong_total.load(), 0);
  std::printf("transfers: %d committed, %d aborted by conflicts\n", committed.load(),
              aborted.load());
  EXPECT_EQ(total(c.db(0)), expected);
  ExpectSameDigests(c);  // every node applied the same index of each shard
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_EQ(total(c.db(i)), expected) << "node " << i;
    EXPECT_TRUE(c.NothingPrepared(i)) << "node " << i;
  }
}

}  // namespace
}  // namespace shardtx
