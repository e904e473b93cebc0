// Library bugs found by crashtest, each reduced to a deterministic reproducer through the public
// API. A test here fails until its bug is fixed; the crashtest run that found it is named.
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "shardtx/database.h"
#include "tests/support/test_db.h"
#include "tests/support/fault_injection_env.h"

namespace shardtx {
namespace {

Options Opts(const std::string& dir) {
  Options o;
  o.path = dir;
  o.num_shards = 1;
  o.checkpoint_interval = absl::ZeroDuration();
  o.checkpoint_wal_bytes = 0;
  o.checkpoint_overlay_bytes = 0;
  o.checkpoint_on_close = false;
  return o;
}

// Found by `crashtest --mode=blackbox` (round 2 of seed 4659470321868705554): "prepared
// transaction 'np.2.1.416' does not lock its key: a conflicting write committed".
//
// Recovery loads prepared transactions from the LMDB prepared table, then replays every
// transaction record still in the WAL. Replaying the prepare of an older transaction B that
// wrote the same key (and was decided long ago) re-assigns the key's lock to B
// (TwoPhaseState::AddPart uses insert_or_assign); B's decision record, replayed next, releases
// it. The still-prepared transaction A has lost its lock on that key after the restart.
TEST(CrashtestFindings, PreparedLockSurvivesReplayOfAnOlderDecidedPrepare) {
  const std::string dir = testing::FreshDir();
  {
    auto db = testing::OpenOrDie(Opts(dir));
    ASSERT_NE(db, nullptr);
    auto b = db->Begin();
    ASSERT_TRUE(b->Put("k", "from B").ok());
    ASSERT_TRUE(b->Prepare("B").ok());
    ASSERT_TRUE(db->CommitPrepared("B").ok());
    auto a = db->Begin();
    ASSERT_TRUE(a->Put("k", "from A").ok());
    ASSERT_TRUE(a->Prepare("A").ok());
    // A's write set goes to the prepared table; B's records stay in the (active) WAL segment.
    ASSERT_TRUE(db->Checkpoint().ok());
    ASSERT_TRUE(db->Close().ok());
  }
  auto db = testing::OpenOrDie(Opts(dir));
  ASSERT_NE(db, nullptr);
  auto listed = db->ListPrepared();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(*listed, std::vector<std::string>{"A"});
  auto t = db->Begin();
  ASSERT_TRUE(t->Put("k", "conflicting").ok());
  absl::Status s = t->Commit();
  EXPECT_TRUE(absl::IsAborted(s)) << "a write to a key of prepared transaction A committed (" << s
                                  << "): A lost its lock in recovery";
}

// Found by `crashtest --mode=mixed` (round 49 of seed 6166858420593940212, a power loss: "prepared
// transaction 'np.49.1.301' does not lock its key"; and round 9 of seed 5104098995070725614,
// blackbox: a named prepare committed on one shard only, bank total off by the amount).
//
// Transaction::Prepare(name) across shards appends a prepare record on every participant and
// waits for each to be durable. If it fails (or the process dies) after some participants'
// records are durable and before the others' are, recovery finds a named transaction with only
// some of its parts and no decision, keeps it prepared (named), lists it, and CommitPrepared
// commits the surviving parts: the transaction is partly applied, and the lost part's keys are
// not locked. The prepare record does not name its participants, so recovery cannot tell.
// Here the second participant's log is poisoned (a failed write) so that Prepare fails after
// appending to the first, deterministically.
TEST(CrashtestFindings, IncompleteNamedPrepareDoesNotSurviveRecovery) {
  const std::string dir = testing::FreshDir();
  testing::FaultInjectionEnv env(Env::Default(),
                                 testing::FaultInjectionEnv::Options{.sync_base = false});
  Options o = Opts(dir);
  o.env = &env;
  o.num_shards = 2;
  o.partitioning = Options::Partitioning::kRange;
  o.range_split_points = {"b"};  // "a..." on shard 0, "b..." on shard 1
  o.log_layout = Options::LogLayout::kPerShard;  // one participant's log fails, not the other's
  {
    auto db = testing::OpenOrDie(o);
    ASSERT_NE(db, nullptr);
    env.FailWriteAfter(1, false);  // poisons shard 1's log: only its flusher writes now
    EXPECT_FALSE(testing::PutOne(db.get(), "b0", "x").ok());
    env.ClearFaults();
    auto t = db->Begin();
    ASSERT_TRUE(t->Put("a1", "x").ok());
    ASSERT_TRUE(t->Put("b1", "y").ok());
    ASSERT_FALSE(t->Prepare("X").ok()) << "shard 1's log is poisoned";
    // A later sync commit on shard 0 makes X's prepare record there durable.
    ASSERT_TRUE(testing::PutOne(db.get(), "a2", "z").ok());
    ASSERT_TRUE(env.SimulateCrash().ok());
    db->Close().IgnoreError();
  }
  env.Reset();
  auto db = testing::OpenOrDie(o);
  ASSERT_NE(db, nullptr);
  auto listed = db->ListPrepared();
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty()) << "the failed (never acknowledged) prepare 'X' survived "
                                  "recovery with only its shard-0 part";
  if (!listed->empty() && db->CommitPrepared("X").ok()) {
    EXPECT_EQ(testing::GetOne(db.get(), "a1").ok(), testing::GetOne(db.get(), "b1").ok())
        << "CommitPrepared('X') applied the transaction partly";
  }
}

}  // namespace
}  // namespace shardtx
