// Plan step 7, read fencing, over the Cluster of leader_cluster.h (three Databases whose shard is
// replicated through a SimulatedGroup): a read-only commit succeeds only once a Raft barrier
// proposed after its snapshot commits in the term its replica led when the snapshot was taken.
// A follower refuses at once naming the leader; a leader paused past the election timeout (and
// cut off) never confirms a read after a newer leader committed; concurrent read-only commits
// share barriers. The seeded run of leader_commit_test.cc checks reads under faults.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/replication/leader_cluster.h"

namespace shardtx::replication {
namespace {

// Commits `key` = `value` on `server` and steps until every server applied it.
void CommitAndSpread(Cluster& c, unsigned server, const std::string& key,
                     const std::string& value) {
  CommitJob* job = c.StartCommit(server, key + "=" + value, {{key, value}});
  ASSERT_TRUE(c.StepUntil([&] { return c.Done(job) && c.CaughtUp(server); }, 10'000));
  ASSERT_TRUE(c.StatusOf(job).ok()) << c.StatusOf(job);
}

// What a new transaction on `server` reads for `key`, and the transaction (not committed).
std::unique_ptr<Transaction> BeginAndRead(Cluster& c, unsigned server, const std::string& key,
                                          std::string* value) {
  std::unique_ptr<Transaction> txn = c.db(server).Begin();
  absl::StatusOr<std::string> v = txn->Get(key);
  *value = v.ok() ? *v : v.status().ToString();
  return txn;
}

// The fencing case: the leader is paused (SIGSTOP) past the election timeout, a newer
// leader commits a write, and the old leader resumes cut off from the others, still taking
// itself for the ready leader of its term. A read there sees the old value; its commit must
// not succeed. (Without the barrier it did: the read-only commit returned OK.)
TEST(ReadFence, PausedLeaderNeverConfirmsAReadAfterANewerLeaderCommitted) {
  Cluster c(Root("paused"), 3, 11);
  ASSERT_EQ(c.error(), "");
  ASSERT_TRUE(c.Elect(0).ok());
  CommitAndSpread(c, 0, "k", "old");
  const uint64_t old_term = c.group().Info(0).term;
  c.group().Kill(0);
  c.Pump();
  ASSERT_TRUE(c.StepUntil([&] { return c.group().Leader().has_value(); }, 20'000));
  const unsigned leader = *c.group().Leader();
  ASSERT_NE(leader, 0u);
  CommitJob* write = c.StartCommit(leader, "new", {{"k", "new"}});
  ASSERT_TRUE(c.StepUntil([&] { return c.Done(write); }, 10'000));
  ASSERT_TRUE(c.StatusOf(write).ok()) << c.StatusOf(write);
  c.group().Isolate(0);
  c.group().Revive(0);
  c.Pump();
  ASSERT_EQ(c.group().Info(0).role, Role::kLeader);
  ASSERT_EQ(c.group().Info(0).term, old_term);
  ASSERT_TRUE(c.replica(0).CheckLeader().ok()) << "server 0 no longer takes itself for leader";
  std::string seen;
  std::unique_ptr<Transaction> txn = BeginAndRead(c, 0, "k", &seen);
  EXPECT_EQ(seen, "old");  // stale: the write acknowledged before this transaction began
  CommitJob* read = c.StartReadOnlyCommit(0, "stale read", std::move(txn));
  ASSERT_TRUE(c.StepUntil(
      [&] {
        EXPECT_FALSE(c.Done(read) && c.StatusOf(read).ok())
            << "a read that missed an acknowledged write was confirmed";
        return c.Done(read);
      },
      20'000));
  const absl::Status s = c.StatusOf(read);
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), absl::StrCat("term ", old_term))) << s;
  EXPECT_EQ(c.replica(0).reads_confirmed(), 0u);
  EXPECT_EQ(c.replica(0).reads_failed(), 1u);
  EXPECT_EQ(c.replica(0).barriers_committed(), 0u);
  EXPECT_GE(c.replica(0).barriers_proposed(), 1u);
  // Healed, the old leader follows; a read on the new leader is confirmed and sees the write.
  c.group().HealAll();
  ASSERT_TRUE(c.StepUntil([&] { return c.CaughtUp(leader); }, 20'000));
  txn = BeginAndRead(c, leader, "k", &seen);
  EXPECT_EQ(seen, "new");
  read = c.StartReadOnlyCommit(leader, "read on the new leader", std::move(txn));
  ASSERT_TRUE(c.StepUntil([&] { return c.Done(read); }, 10'000));
  EXPECT_TRUE(c.StatusOf(read).ok()) << c.StatusOf(read);
  EXPECT_EQ(c.replica(leader).reads_confirmed(), 1u);
}

// A follower's read-only commit fails at once, naming the leader's id and address, with no
// effect: no barrier proposed anywhere, the Raft log unchanged.
TEST(ReadFence, FollowerRefusesReadOnlyCommitNamingTheLeader) {
  Cluster c(Root("follower"), 3, 12);
  ASSERT_EQ(c.error(), "");
  ASSERT_TRUE(c.Elect(0).ok());
  CommitAndSpread(c, 0, "k", "v");
  const uint64_t last_index = c.group().Info(0).last_index;
  std::string seen;
  std::unique_ptr<Transaction> txn = BeginAndRead(c, 1, "k", &seen);
  EXPECT_EQ(seen, "v");  // the Get answers; the commit is where success would be reported
  const absl::Status s = txn->Commit();  // on this thread: the refusal does not wait
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "leader is server 0 at " + AddressOf(0))) << s;
  EXPECT_TRUE(absl::IsFailedPrecondition(txn->Commit()));  // the transaction is over
  c.StepFor(300);
  EXPECT_EQ(c.group().Info(0).last_index, last_index);
  for (unsigned i = 0; i < 3; ++i) EXPECT_EQ(c.replica(i).barriers_proposed(), 0u);
  EXPECT_EQ(c.replica(1).reads_refused(), 1u);
  // A read-write transaction begun on the follower is refused the same way.
  txn = BeginAndRead(c, 1, "k", &seen);
  ASSERT_TRUE(txn->Put("other", "x").ok());
  const absl::Status w = txn->Commit();
  EXPECT_TRUE(absl::IsUnavailable(w)) << w;
  EXPECT_TRUE(absl::StrContains(w.message(), "leader is server 0 at " + AddressOf(0))) << w;
}

// Read-only commits on a healthy leader share barriers: every one whose snapshot was taken
// before a barrier was proposed is confirmed by it, even if its commit arrives while that
// barrier is in flight; one whose snapshot was taken after waits for the next barrier.
TEST(ReadFence, ConcurrentReadOnlyCommitsShareBarriers) {
  Cluster c(Root("batched"), 3, 13);
  ASSERT_EQ(c.error(), "");
  ASSERT_TRUE(c.Elect(0).ok());
  CommitAndSpread(c, 0, "k", "v");
  constexpr int kEarly = 10, kLate = 6;
  std::vector<std::unique_ptr<Transaction>> early;
  for (int i = 0; i < kEarly; ++i) {
    std::string seen;
    early.push_back(BeginAndRead(c, 0, "k", &seen));
    ASSERT_EQ(seen, "v");
  }
  std::vector<CommitJob*> jobs;
  // The first commit proposes barrier 1 (Pump); the other nine arrive while it is in flight.
  for (int i = 0; i < kEarly; ++i) {
    jobs.push_back(c.StartReadOnlyCommit(0, absl::StrCat("early", i), std::move(early[i])));
  }
  ASSERT_EQ(c.replica(0).barriers_proposed(), 1u);
  ASSERT_EQ(c.replica(0).barriers_committed(), 0u);
  // Begun after barrier 1 was proposed: barrier 1 cannot confirm them.
  for (int i = 0; i < kLate; ++i) {
    std::string seen;
    std::unique_ptr<Transaction> txn = BeginAndRead(c, 0, "k", &seen);
    jobs.push_back(c.StartReadOnlyCommit(0, absl::StrCat("late", i), std::move(txn)));
  }
  ASSERT_TRUE(c.StepUntil(
      [&] {
        // The late ones are never answered by barrier 1.
        if (c.replica(0).barriers_committed() < 2) {
          for (int i = kEarly; i < kEarly + kLate; ++i) EXPECT_FALSE(c.Done(jobs[i]));
        }
        return c.AllDone();
      },
      10'000));
  for (CommitJob* j : jobs) EXPECT_TRUE(c.StatusOf(j).ok()) << j->label << ": " << c.StatusOf(j);
  EXPECT_EQ(c.replica(0).reads_confirmed(), static_cast<uint64_t>(kEarly + kLate));
  EXPECT_EQ(c.replica(0).barriers_proposed(), 2u);
  EXPECT_EQ(c.replica(0).barriers_committed(), 2u);
  EXPECT_LT(c.replica(0).barriers_proposed(), c.replica(0).reads_confirmed());
}

// A read-write transaction is confirmed by its own entry only if the entry is released in the
// term its replica led when the snapshot was taken: one begun on a follower that leads by the
// time it commits is refused (its snapshot may miss what the old leader acknowledged), with no
// effect; one begun on the new leader commits.
TEST(ReadFence, ReadWriteTransactionBegunBeforeItsReplicaLedIsRefused) {
  Cluster c(Root("rwterm"), 3, 14);
  ASSERT_EQ(c.error(), "");
  ASSERT_TRUE(c.Elect(0).ok());
  CommitAndSpread(c, 0, "k", "v");
  std::string seen;
  std::unique_ptr<Transaction> on1 = BeginAndRead(c, 1, "k", &seen);
  std::unique_ptr<Transaction> on2 = BeginAndRead(c, 2, "k", &seen);
  c.group().Kill(0);
  c.Pump();
  ASSERT_TRUE(c.StepUntil([&] { return c.group().Leader().has_value(); }, 20'000));
  const unsigned leader = *c.group().Leader();
  ASSERT_NE(leader, 0u);
  std::unique_ptr<Transaction>& early = leader == 1 ? on1 : on2;
  ASSERT_TRUE(early->Put("k", "early").ok());
  const uint64_t last_index = c.group().Info(leader).last_index;
  CommitJob* job = c.StartCommitOf(leader, "early", std::move(early));
  ASSERT_TRUE(c.StepUntil([&] { return c.Done(job); }, 10'000));
  const absl::Status s = c.StatusOf(job);
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "while it was not the ready leader")) << s;
  EXPECT_TRUE(absl::StrContains(
      s.message(), absl::StrCat("leader is server ", leader, " at ", AddressOf(leader))))
      << s;
  EXPECT_EQ(c.group().Info(leader).last_index, last_index);
  EXPECT_EQ(c.replica(leader).refused() + c.replica(leader).unknown(), 0u);
  CommitJob* fresh = c.StartCommit(leader, "fresh", {{"k", "fresh"}});
  ASSERT_TRUE(c.StepUntil([&] { return c.Done(fresh); }, 10'000));
  EXPECT_TRUE(c.StatusOf(fresh).ok()) << c.StatusOf(fresh);
  auto v = c.Read(leader, "k");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, std::optional<std::string>("fresh"));
}

// With two shards, only shard 0 replicated: a read-only transaction is confirmed for the
// replicated shards it read, and only those. On a follower, one that read only the unreplicated
// shard commits; one that also read shard 0 is refused; on the leader it waits for a barrier.
TEST(ReadFence, ReadOnlyCommitConfirmsOnlyTheReplicatedShardsItRead) {
  Cluster c(Root("twoshards"), 3, 15, /*shards=*/2);
  ASSERT_EQ(c.error(), "");
  ASSERT_TRUE(c.Elect(0).ok());
  std::string on0, on1;  // a key of each shard
  for (int i = 0; on0.empty() || on1.empty(); ++i) {
    std::string k = absl::StrCat("key", i);
    (Impl(&c.db(0))->partitioner().ShardOf(k) == 0 ? on0 : on1) = k;
  }
  std::unique_ptr<Transaction> txn = c.db(1).Begin();
  EXPECT_TRUE(absl::IsNotFound(txn->Get(on1).status()));
  EXPECT_TRUE(txn->Commit().ok());  // no replicated shard read: nothing to confirm
  txn = c.db(1).Begin();
  EXPECT_TRUE(absl::IsNotFound(txn->Get(on1).status()));
  EXPECT_TRUE(absl::IsNotFound(txn->Get(on0).status()));
  const absl::Status s = txn->Commit();
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "leader is server 0 at " + AddressOf(0))) << s;
  txn = c.db(0).Begin();
  EXPECT_TRUE(absl::IsNotFound(txn->Get(on0).status()));
  CommitJob* read = c.StartReadOnlyCommit(0, "on the leader", std::move(txn));
  ASSERT_TRUE(c.StepUntil([&] { return c.Done(read); }, 10'000));
  EXPECT_TRUE(c.StatusOf(read).ok()) << c.StatusOf(read);
  EXPECT_EQ(c.replica(0).barriers_committed(), 1u);
  EXPECT_EQ(c.replica(0).reads_confirmed(), 1u);
}

}  // namespace
}  // namespace shardtx::replication
