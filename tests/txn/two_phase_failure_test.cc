// Two-phase commit when the log fails: a failed decision never undoes a commit whose prepares
// are durable, a failed commit point never leaves a timestamp unfinished or a version visible, a
// prepare that failed half-way leaves no orphan that takes a later prepare's lock on replay, and a
// failed Open releases what it opened without hanging. Each hang is caught by a deadline, not
// waited out.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/test_db.h"
#include "tests/support/fault_injection_env.h"
#include "tests/txn/fault_db_test.h"
#include "util/kill_point.h"

namespace shardtx {
namespace {

using testing::FaultInjectionEnv;
using testing::GetOne;
using testing::PutOne;

// Runs `fn` on its own thread; if it has not returned after `seconds`, fails the test and ends
// the process (the thread is stuck for good: that is the defect under test).
void WithinDeadline(const std::string& what, std::function<void()> fn, int seconds = 60) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> f = done->get_future();
  std::thread([fn = std::move(fn), done] {
    fn();
    done->set_value();
  }).detach();
  if (f.wait_for(std::chrono::seconds(seconds)) != std::future_status::ready) {
    ADD_FAILURE() << what << " did not return within " << seconds << " s (hang)";
    std::fflush(stdout);
    std::_Exit(1);
  }
}

class TwoPhaseFailureTest : public testing::FaultDbTest {
 protected:
  // Makes `key`'s shard's log fail for good: a synchronous commit there whose fsync fails.
  // (Every fsync fails meanwhile; a background one preparing a spare segment elsewhere is
  // retried later, and no other log has a batch to sync.)
  void PoisonShardOf(const std::string& key) {
    env_.FailSyncAfter(1, /*persistent=*/true);
    absl::Status s = PutOne(db_.get(), key, "poison");
    env_.ClearFaults();
    ASSERT_FALSE(s.ok());
  }
};

// Item 7: a serializable cross-shard commit takes its timestamp with the validation. Under
// parallel commit it is committed once its prepares are durable: a decision whose fsync then
// fails does not undo it (before parallel commit the decision's fsync was the commit point
// and this test expected the transaction in doubt, then aborted), and leaves no timestamp
// unfinished (or every later synchronous commit, checkpoint and Close would wait forever).
TEST_F(TwoPhaseFailureTest, FailedDecisionSyncLeavesTheCommitCommittedAndNoTimestampUnfinished) {
  UsePerShardLogs();
  Open();
  auto t = Serializable();
  ASSERT_TRUE(t->Put("apple", "1").ok());
  ASSERT_TRUE(t->Put("zebra", "1").ok());
  // Every prepare is durable; from here every fsync fails, the decision's on shard 0 included.
  const uint64_t hits = KillPoints::Hits("2pc.after_all_prepares");
  KillPoints::Arm("2pc.after_all_prepares", 0, [&] { env_.FailSyncAfter(1, /*persistent=*/true); });
  absl::Status s = t->Commit();
  ASSERT_EQ(KillPoints::Hits("2pc.after_all_prepares"), hits + 1);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_NE(t->commit_timestamp(), 0u);
  EXPECT_EQ(db_->GetOutcome(t->id()), Database::Outcome::kCommitted);
  // A synchronous commit on shard 0 fails (its fsync, or the decision's before it, failed):
  // the decision certainly never reached the disk.
  EXPECT_FALSE(PutOne(db_.get(), "avocado", "x").ok());
  env_.ClearFaults();
  WithinDeadline("a commit on the healthy shard",
                 [&] { EXPECT_TRUE(PutOne(db_.get(), "zulu", "after").ok()); });
  EXPECT_EQ(*GetOne(db_.get(), "zulu"), "after");
  EXPECT_EQ(*GetOne(db_.get(), "apple"), "1");
  WithinDeadline("Close", [&] { db_->Close().IgnoreError(); });
  // No decision on disk, but both prepares are: committed.
  CrashAndReopen();
  EXPECT_EQ(*GetOne(db_.get(), "apple"), "1");
  EXPECT_EQ(*GetOne(db_.get(), "zebra"), "1");
  EXPECT_EQ(*GetOne(db_.get(), "zulu"), "after");
  EXPECT_EQ(db_->GetOutcome(t->id()), Database::Outcome::kCommitted);
}

// Item 7, the other exit: the decision cannot even be appended (the coordinator's log failed
// between the prepares and the decision). The transaction is committed all the same (before
// parallel commit this aborted it): phase two finishes, the timestamp too, and recovery
// commits it from its prepares.
TEST_F(TwoPhaseFailureTest, FailedDecisionAppendStillCommitsAndFinishesTheTimestamp) {
  UsePerShardLogs();
  Open();
  auto t = Serializable();
  ASSERT_TRUE(t->Put("apple", "1").ok());
  ASSERT_TRUE(t->Put("zebra", "1").ok());
  const uint64_t hits = KillPoints::Hits("2pc.after_all_prepares");
  KillPoints::Arm("2pc.after_all_prepares", 0, [&] { PoisonShardOf("avocado"); });
  absl::Status s = t->Commit();
  ASSERT_EQ(KillPoints::Hits("2pc.after_all_prepares"), hits + 1);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(db_->GetOutcome(t->id()), Database::Outcome::kCommitted);
  EXPECT_EQ(*GetOne(db_.get(), "apple"), "1");
  WithinDeadline("a commit on the healthy shard", [&] {
    EXPECT_TRUE(PutOne(db_.get(), "zebra", "free").ok());  // committed: its lock is gone too
  });
  WithinDeadline("Close", [&] { db_->Close().IgnoreError(); });
  CrashAndReopen();
  EXPECT_EQ(*GetOne(db_.get(), "apple"), "1");
  EXPECT_EQ(*GetOne(db_.get(), "zebra"), "free");
}

// Found by make tsan's crashtest_shared_log_short: a cross-shard transaction whose prepares are
// durable is committed even if the log fails before its decision and commit records can be
// appended; its writes are installed without them. A checkpoint whose cut was durable (below the
// failure) then moved them into shard 0's LMDB: the store was past the prepare, with no commit
// record at or below its applied LSN and no prepared-table row. Recovery committed the
// transaction again, but shard 0's floor (applied + 1) no longer kept the prepare; once another
// shard's checkpoint freed its segment, the next Open failed with kDataLoss ("commit record ...
// whose prepare is neither in the WAL nor in LMDB"). Now no checkpoint writes to LMDB once the
// log has failed.
TEST_F(TwoPhaseFailureTest, NoCheckpointAfterTheLogFailedSoNoPrepareIsLostOnReopen) {
  Options o = Opts();
  o.log_layout = Options::LogLayout::kShared;
  o.checkpoint_wal_bytes = 0;
  o.checkpoint_overlay_bytes = 1 << 20;  // shard 1 checkpoints by itself at the end
  Open(o);
  const std::string filler(12 << 10, 'f');
  auto t = db_->Begin();
  ASSERT_TRUE(t->Put("apple", "1").ok());
  ASSERT_TRUE(t->Put("zebra", "1").ok());
  const uint64_t hits = KillPoints::Hits("2pc.after_all_prepares");
  KillPoints::Arm("2pc.after_all_prepares", 0, [&] {
    // Both prepares are durable. Shard 0's records go on durably into a later segment than
    // its prepare's (segments of 64 KiB), so that a cut there is durable...
    for (int i = 0; i < 8; ++i) {
      ASSERT_TRUE(PutOne(db_.get(), absl::StrCat("b", i), filler).ok());
    }
    // ... then the log fails: a commit on shard 1 whose fsync fails.
    PoisonShardOf("zulu");
  });
  ASSERT_TRUE(t->Commit().ok());
  ASSERT_EQ(KillPoints::Hits("2pc.after_all_prepares"), hits + 1);
  EXPECT_EQ(*GetOne(db_.get(), "apple"), "1");
  const uint64_t applied = db_->GetStats().shards[0].applied_lsn;
  EXPECT_FALSE(db_->Checkpoint().ok());
  EXPECT_EQ(db_->GetStats().shards[0].applied_lsn, applied) << "LMDB written after the log failed";
  WithinDeadline("Close", [&] { db_->Close().IgnoreError(); });
  db_.reset();

  Open(o);  // recovery commits the transaction from its prepares
  EXPECT_EQ(*GetOne(db_.get(), "apple"), "1");
  EXPECT_EQ(*GetOne(db_.get(), "zebra"), "1");
  // Shard 1 alone checkpoints (its overlay fills) and frees every segment no shard's floor keeps.
  for (int i = 0; i < 100 && db_->GetStats().shards[1].checkpoints == 0; ++i) {
    ASSERT_TRUE(PutOne(db_.get(), absl::StrCat("n", i), filler).ok());
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (db_->GetStats().shards[1].checkpoints == 0) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "shard 1 never checkpointed";
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(db_->GetStats().shards[0].checkpoints, 0u);
  ASSERT_TRUE(db_->Close().ok());  // no checkpoint at Close (Opts)
  db_.reset();

  auto reopened = Database::Open(o);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  db_ = std::move(*reopened);
  EXPECT_EQ(*GetOne(db_.get(), "apple"), "1");
  EXPECT_EQ(*GetOne(db_.get(), "zebra"), "1");
}

// A checkpoint that fails once the log has failed (every one does, until the database is
// reopened) backs off until the next trigger. It retried at once while the WAL bytes that had
// triggered it were still unabsorbed: a thread spinning on checkpoints, each freezing one more
// overlay layer, for as long as the database stayed open.
TEST_F(TwoPhaseFailureTest, CheckpointsFailingAfterTheLogFailedAreNotRetriedInALoop) {
  Options o = Opts();
  o.checkpoint_wal_bytes = 32 << 10;  // the only trigger (no interval, Opts)
  Open(o);
  std::atomic<bool> poisoned{false};
  // The first triggered checkpoint: the log fails just after its freeze.
  KillPoints::Arm("checkpoint.after_freeze", 0, [&] {
    PoisonShardOf("apple");
    poisoned = true;
  });
  const std::string value(8 << 10, 'v');
  for (int i = 0; i < 8 && !poisoned; ++i) {
    (void)PutOne(db_.get(), absl::StrCat("b", i), value);  // fails once the log has
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!poisoned) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no checkpoint was triggered";
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // An observation window, not a synchronisation: a loop makes thousands of attempts in it.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  uint64_t failures = 0;
  for (const ShardStatsView& v : db_->GetStats().shards) failures += v.checkpoint_failures;
  EXPECT_GE(failures, 1u);
  EXPECT_LE(failures, 2u);
  EXPECT_FALSE(db_->Checkpoint().ok());  // still refused, and counted
  uint64_t after = 0;
  for (const ShardStatsView& v : db_->GetStats().shards) after += v.checkpoint_failures;
  EXPECT_GT(after, failures);
}

// Item 8: a single participant's commit record is the commit point. If its fsync fails, the
// writes must not become visible and the outcome must not read "committed".
TEST_F(TwoPhaseFailureTest, SingleParticipantCommitPreparedWhoseSyncFailsIsNotVisible) {
  Open();
  auto t = db_->Begin();
  ASSERT_TRUE(t->Put("apple", "prepared").ok());
  ASSERT_TRUE(t->Prepare("x").ok());
  env_.FailSyncAfter(1, /*persistent=*/true);
  absl::Status s = db_->CommitPrepared("x");
  env_.ClearFaults();
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::IsNotFound(GetOne(db_.get(), "apple").status()));
  EXPECT_NE(db_->GetOutcome(t->id()), Database::Outcome::kCommitted);
  // Still prepared here too, in doubt: its name is held (a Prepare on the healthy shard may not
  // take it) and no second resolution is accepted before a reopen.
  {
    auto u = db_->Begin();
    ASSERT_TRUE(u->Put("zebra", "u").ok());
    absl::Status p = u->Prepare("x");
    EXPECT_TRUE(absl::IsAlreadyExists(p)) << p;
  }
  absl::Status again = db_->CommitPrepared("x");
  EXPECT_TRUE(absl::IsFailedPrecondition(again)) << again;
  EXPECT_NE(again.message().find("in doubt"), std::string::npos) << again;
  // The commit record did not reach the disk: after a restart the transaction is prepared
  // again, and the host decides once more.
  CrashAndReopen();
  EXPECT_EQ(*db_->ListPrepared(), std::vector<std::string>{"x"});
  ASSERT_TRUE(db_->CommitPrepared("x").ok());
  EXPECT_EQ(*GetOne(db_.get(), "apple"), "prepared");
  EXPECT_EQ(db_->GetOutcome(t->id()), Database::Outcome::kCommitted);
}

// A named transaction committed (decision durable) but whose deferred commit records are lost
// in a crash is replayed as prepared, and takes its name before a later prepare of the same
// name (made after the first was resolved in memory) is replayed. When recovery commits the
// first from its decision, the name must pass to the second, not vanish.
TEST_F(TwoPhaseFailureTest, ANameFreedBeforeACrashPassesToItsLaterOwnerOnRecovery) {
  Options o = Opts();
  o.num_shards = 3;
  o.range_split_points = {"m", "t"};  // apple: 0, mango: 1, zebra: 2
  {
    auto db = Database::Open(o);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
  }
  {
    auto p = db_->Begin();
    ASSERT_TRUE(p->Put("apple", "p").ok());
    ASSERT_TRUE(p->Put("mango", "p").ok());
    ASSERT_TRUE(p->Prepare("n").ok());
  }
  ASSERT_TRUE(db_->CommitPrepared("n").ok());  // decision synced; commit records deferred
  {
    auto q = db_->Begin();
    ASSERT_TRUE(q->Put("zebra", "q").ok());
    ASSERT_TRUE(q->Prepare("n").ok());  // synced on shard 2 only
  }
  ASSERT_TRUE(env_.SimulateCrash().ok());
  db_.reset();
  env_.Reset();
  {
    auto db = Database::Open(o);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
  }
  EXPECT_EQ(*GetOne(db_.get(), "apple"), "p");  // committed from its decision
  EXPECT_EQ(*db_->ListPrepared(), std::vector<std::string>{"n"});
  ASSERT_TRUE(db_->CommitPrepared("n").ok());
  EXPECT_EQ(*GetOne(db_.get(), "zebra"), "q");
}

// Item 9: a named prepare that failed on one participant after another had logged its part
// must leave that part aborted on the record. Otherwise its replay takes the key's lock ahead
// of a later prepare of the same key, and recovery's presumed abort then releases it: the later
// prepared transaction comes back without its lock (a lost update waiting to happen).
TEST_F(TwoPhaseFailureTest, HalfFailedPrepareLeavesNoOrphanToStealALockOnReplay) {
  UsePerShardLogs();
  Open();
  PoisonShardOf("zulu");  // shard 1's log is gone; shard 0's is healthy
  {
    auto t = db_->Begin();
    ASSERT_TRUE(t->Put("apple", "a").ok());  // shard 0: logged
    ASSERT_TRUE(t->Put("zebra", "a").ok());  // shard 1: fails
    absl::Status s = t->Prepare("a");
    ASSERT_FALSE(s.ok());
  }
  {
    auto t = db_->Begin();
    ASSERT_TRUE(t->Put("apple", "b").ok());
    ASSERT_TRUE(t->Prepare("b").ok());
  }
  CrashAndReopen();
  EXPECT_EQ(*db_->ListPrepared(), std::vector<std::string>{"b"});
  auto w = db_->Begin();
  ASSERT_TRUE(w->Put("apple", "writer").ok());
  absl::Status s = w->Commit();
  EXPECT_TRUE(absl::IsAborted(s)) << s << ": 'b' came back without its lock on 'apple'";
  ASSERT_TRUE(db_->CommitPrepared("b").ok());
  EXPECT_EQ(*GetOne(db_.get(), "apple"), "b");
}

// Item 4: Open fails on a damaged WAL of shard 1 after shard 0 recovered. It must return
// kDataLoss naming the file and offset, without checkpointing (or truncating) the shards it
// opened: their checkpoint would wait on commits recovery never finished.
TEST(FailedOpen, ReturnsDataLossWithoutHangingOrTouchingOpenedShards) {
  const std::string dir = testing::FreshDir();
  Options o;
  o.path = dir;
  o.num_shards = 2;
  o.partitioning = Options::Partitioning::kRange;
  o.range_split_points = {"m"};
  o.checkpoint_interval = absl::ZeroDuration();
  o.checkpoint_on_close = false;
  o.wal_segment_size = 64 << 10;
  o.max_txn_bytes = 16 << 10;
  o.log_layout = Options::LogLayout::kPerShard;  // damages shard 1's own log
  {
    auto db = testing::OpenOrDie(o);
    ASSERT_NE(db, nullptr);
    for (int i = 0; i < 1000; ++i) {  // 2,000 single-shard commits, 1,000 per shard
      for (const char* prefix : {"a", "z"}) {
        ASSERT_TRUE(
            PutOne(db.get(), absl::StrCat(prefix, i), std::string(40, 'x'), Durability::kAsync)
                .ok());
      }
    }
    ASSERT_TRUE(db->Close().ok());
  }
  // One byte in the middle of shard 1's first segment (later segments follow it).
  std::vector<std::filesystem::path> segments;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/shard-001/wal")) {
    segments.push_back(e.path());
  }
  std::sort(segments.begin(), segments.end());
  ASSERT_GE(segments.size(), 2u);
  const std::filesystem::path target = segments.front();
  const uint64_t offset = 32 << 10;
  FaultInjectionEnv env;
  ASSERT_TRUE(env.FlipBit(target.string(), offset, 3).ok());
  o.checkpoint_on_close = true;  // the default: a Close of the half-opened database would
                                 // checkpoint the shards it opened
  absl::StatusOr<std::unique_ptr<Database>> db = absl::UnknownError("not run");
  WithinDeadline("Open of a database with a damaged WAL", [&] { db = Database::Open(o); });
  ASSERT_TRUE(absl::IsDataLoss(db.status())) << db.status();
  EXPECT_NE(db.status().message().find(target.filename().string()), std::string::npos)
      << db.status();
  EXPECT_NE(db.status().message().find("offset"), std::string::npos) << db.status();
  // The directory is released: a second attempt meets the same damage, not a lock.
  auto again = Database::Open(o);
  EXPECT_TRUE(absl::IsDataLoss(again.status())) << again.status();
  // Repaired, the database opens; shard 0 redoes every one of its commits from its WAL, so
  // the failed opens neither checkpointed it nor truncated its log.
  ASSERT_TRUE(env.FlipBit(target.string(), offset, 3).ok());
  auto repaired = testing::OpenOrDie(o);
  ASSERT_NE(repaired, nullptr);
  EXPECT_EQ(repaired->GetStats().shards[0].recovery_records, 1000u);
  EXPECT_EQ(repaired->GetStats().shards[0].checkpoints, 0u);
  EXPECT_EQ(*GetOne(repaired.get(), "z999"), std::string(40, 'x'));
}

}  // namespace
}  // namespace shardtx
