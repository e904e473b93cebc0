// Database::Backup of a live database: the copy is exact, holds every commit acknowledged before
// Backup was called, opens and commits like any database; checkpoints and segment recycling
// during the copy lose nothing; a cut between the phases of two-phase commit comes back as
// after a crash there. (Bad input, failures: backup_errors_test.cc; kill -9: tests/crash/.)
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "shardtx/partitioning.h"
#include "tests/support/test_db.h"
#include "tests/txn/backup_test_util.h"
#include "util/kill_point.h"

namespace shardtx {
namespace {

using testing::BankLedger;
using testing::BankOptions;
using testing::BankTransfer;
using testing::CheckBankCopy;
using testing::FreshDir;
using testing::GetOne;
using testing::OpenOrDie;
using testing::PutOne;

// Acknowledged transfers per writer, and a way to wait until they have grown.
class Acks {
 public:
  explicit Acks(int writers) : acked_(writers, 0) {}
  void Add(int w) {
    std::lock_guard<std::mutex> l(mu_);
    ++acked_[w];
    ++total_;
    cv_.notify_all();
  }
  std::vector<int64_t> Snapshot() {
    std::lock_guard<std::mutex> l(mu_);
    return acked_;
  }
  // Waits until `n` more transfers than now are acknowledged.
  void WaitForMore(int64_t n) {
    std::unique_lock<std::mutex> l(mu_);
    const int64_t target = total_ + n;
    cv_.wait(l, [&] { return total_ >= target; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int64_t> acked_;
  int64_t total_ = 0;
};

class BackupTest : public ::testing::Test {
 protected:
  void TearDown() override { KillPoints::DisarmAll(); }
};

TEST_F(BackupTest, BankCopyIsExactAndHoldsEveryTransferAcknowledgedBefore) {
  constexpr int kWriters = 6;
  constexpr int kRounds = 3;
  const std::string dir = FreshDir();
  auto db = OpenOrDie(BankOptions(dir));
  ASSERT_TRUE(testing::FundBank(db.get()).ok());
  Acks acks(kWriters);
  std::atomic<bool> done{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      std::mt19937_64 rng(w);
      while (!done.load()) {
        absl::Status s = BankTransfer(db.get(), w, rng);
        if (s.ok()) {
          acks.Add(w);
        } else {
          ASSERT_TRUE(absl::IsAborted(s)) << s;
        }
      }
    });
  }
  std::vector<std::vector<int64_t>> before(kRounds), copies(kRounds);
  std::vector<std::string> dests(kRounds);
  for (int r = 0; r < kRounds; ++r) {
    acks.WaitForMore(50);
    before[r] = acks.Snapshot();
    dests[r] = FreshDir(absl::StrCat("_copy", r));
    absl::Status s = db->Backup(dests[r]);
    ASSERT_TRUE(s.ok()) << "round " << r << ": " << s;
  }
  done = true;
  for (auto& t : writers) t.join();
  const std::vector<int64_t> final_acks = acks.Snapshot();
  const uint64_t cross = db->GetStats().cross_shard_commits;
  EXPECT_GT(cross, static_cast<uint64_t>(db->GetStats().commits / 2)) << "mostly cross-shard";
  db.reset();

  for (int r = 0; r < kRounds; ++r) {
    SCOPED_TRACE(absl::StrCat("round ", r));
    const std::string& dest = dests[r];
    copies[r] = CheckBankCopy(dest, kWriters);
    for (int w = 0; w < kWriters; ++w) {
      EXPECT_GE(copies[r][w], before[r][w]) << "writer " << w << " lost an acknowledged transfer";
      EXPECT_LE(copies[r][w], final_acks[w]) << "writer " << w << ": a transfer never made";
    }
    if (r > 0) {
      for (int w = 0; w < kWriters; ++w) EXPECT_GE(copies[r][w], copies[r - 1][w]);
    }
    // The copy commits like any database, and keeps it over a reopen.
    {
      auto copy = OpenOrDie(BankOptions(dest));
      std::mt19937_64 rng(99);
      absl::Status s;
      do {
        s = BankTransfer(copy.get(), 0, rng);
      } while (absl::IsAborted(s));
      ASSERT_TRUE(s.ok()) << s;
    }
    EXPECT_EQ(CheckBankCopy(dest, kWriters)[0], copies[r][0] + 1);
    EXPECT_TRUE(testing::PartialsOf(dest).empty());
  }
}

// Two shards split at "m" (range partitioning): "a..." on shard 0, "z..." on shard 1.
Options TwoShards(const std::string& dir) {
  Options o;
  o.path = dir;
  o.num_shards = 2;
  o.partitioning = Options::Partitioning::kRange;
  o.range_split_points = {"m"};
  o.wal_segment_size = 64 << 10;
  o.max_txn_bytes = 16 << 10;
  o.checkpoint_txn_bytes = 1 << 10;
  o.checkpoint_interval = absl::ZeroDuration();
  return o;
}

// Live WAL segment files (*.wal) in `wal_dir`.
size_t SegmentFiles(const std::string& wal_dir) {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(wal_dir)) {
    n += e.path().extension() == ".wal";
  }
  return n;
}

TEST_F(BackupTest, CheckpointsDuringTheCopyFreeNothingItNeeds) {
  const std::string dir = FreshDir();
  const std::string dest = FreshDir("_copy");
  Options o = TwoShards(dir);
  o.log_layout = Options::LogLayout::kPerShard;  // counts each shard's own segment files
  auto db = OpenOrDie(o);
  // Named prepares waiting for their host, across both shards.
  for (const char* name : {"np-1", "np-2"}) {
    auto t = db->Begin();
    ASSERT_TRUE(t->Put(absl::StrCat("a/", name), "prepared").ok());
    ASSERT_TRUE(t->Put(absl::StrCat("z/", name), "prepared").ok());
    ASSERT_TRUE(t->Prepare(name).ok());
  }
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(PutOne(db.get(), absl::StrCat("a/old", i), "o").ok());
  ASSERT_TRUE(db->Checkpoint().ok());  // the prepares move into LMDB: only the backup pins now
  const Stats at_start = db->GetStats();
  // Between the store copies and the cut: enough commits to fill several segments on both
  // shards, each acknowledged, and checkpoints that free every segment they may.
  KillPoints::Arm("backup.after_store_copy", 0, [&] {
    const std::string value(900, 'v');
    for (int i = 0; i < 300; ++i) {
      ASSERT_TRUE(PutOne(db.get(), absl::StrCat(i % 2 ? "a/new" : "z/new", i), value).ok());
      if (i % 100 == 99) {
        ASSERT_TRUE(db->Checkpoint().ok());
      }
    }
  });
  absl::Status backup = db->Backup(dest);
  ASSERT_TRUE(backup.ok()) << backup;
  ASSERT_EQ(KillPoints::Hits("backup.after_store_copy"), 1u) << "the action did not run";
  EXPECT_GE(db->GetStats().checkpoints, at_start.checkpoints + 6);
  // The pin held the segments the copy needed through those checkpoints; released now, the
  // next checkpoint frees them.
  const size_t segments = SegmentFiles(dir + "/shard-001/wal");
  ASSERT_TRUE(db->Checkpoint().ok());
  EXPECT_LT(SegmentFiles(dir + "/shard-001/wal"), segments) << "the backup's pin stayed";

  auto copy = OpenOrDie(TwoShards(dest));
  auto names = copy->ListPrepared();
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"np-1", "np-2"}));
  for (int i = 0; i < 200; ++i) EXPECT_TRUE(GetOne(copy.get(), absl::StrCat("a/old", i)).ok());
  for (int i = 0; i < 300; ++i) {
    const std::string key = absl::StrCat(i % 2 ? "a/new" : "z/new", i);
    EXPECT_TRUE(GetOne(copy.get(), key).ok()) << key << " acknowledged before the cut, missing";
  }
  // The copy's named prepares are its own: committed there, rolled back here.
  ASSERT_TRUE(copy->CommitPrepared("np-1").ok());
  ASSERT_TRUE(copy->RollbackPrepared("np-2").ok());
  EXPECT_EQ(*GetOne(copy.get(), "z/np-1"), "prepared");
  EXPECT_TRUE(absl::IsNotFound(GetOne(copy.get(), "a/np-2").status()));
  ASSERT_TRUE(db->RollbackPrepared("np-1").ok());
  EXPECT_TRUE(absl::IsNotFound(GetOne(db.get(), "z/np-1").status()));
}

// Where the cut falls in a cross-shard commit ("apple" on shard 0, "zebra" on shard 1): the
// committing thread is held at a 2PC kill point while Backup runs.
struct CutCase {
  const char* kill_point;
  bool named;           // a host's named prepare (then CommitPrepared) instead of Commit
  bool committed;       // the copy has the transaction
  bool still_prepared;  // the copy lists it, prepared
};

class BackupCut : public BackupTest, public ::testing::WithParamInterface<CutCase> {};

TEST_P(BackupCut, CopyShowsTheTransactionAsACrashAtTheCutWould) {
  const CutCase& c = GetParam();
  const std::string dir = FreshDir();
  const std::string dest = FreshDir("_copy");
  auto db = OpenOrDie(TwoShards(dir));
  ASSERT_TRUE(PutOne(db.get(), "apple", "0").ok());
  ASSERT_TRUE(PutOne(db.get(), "zebra", "0").ok());
  std::promise<void> reached, release;
  std::shared_future<void> released = release.get_future().share();
  std::unique_ptr<Transaction> txn = db->Begin();
  ASSERT_TRUE(txn->Put("apple", "1").ok());
  ASSERT_TRUE(txn->Put("zebra", "1").ok());
  if (c.named && std::string(c.kill_point) == "2pc.after_decision") {
    ASSERT_TRUE(txn->Prepare("host-1").ok());  // held in CommitPrepared, not in Prepare
  }
  KillPoints::Arm(c.kill_point, 0, [&] {
    reached.set_value();
    released.wait();
  });
  std::thread committer([&] {
    absl::Status s;
    if (!c.named) {
      s = txn->Commit();
    } else if (std::string(c.kill_point) == "2pc.after_decision") {
      s = db->CommitPrepared("host-1");
    } else {
      s = txn->Prepare("host-1");
    }
    EXPECT_TRUE(s.ok()) << s;
  });
  reached.get_future().wait();
  absl::Status backup = db->Backup(dest);
  release.set_value();
  committer.join();
  ASSERT_TRUE(backup.ok()) << backup;

  auto copy = OpenOrDie(TwoShards(dest));
  auto names = copy->ListPrepared();
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names,
            c.still_prepared ? std::vector<std::string>{"host-1"} : std::vector<std::string>{});
  const std::string want = c.committed ? "1" : "0";
  EXPECT_EQ(*GetOne(copy.get(), "apple"), want);
  EXPECT_EQ(*GetOne(copy.get(), "zebra"), want);
  if (c.still_prepared) {
    ASSERT_TRUE(copy->CommitPrepared("host-1").ok());
    EXPECT_EQ(*GetOne(copy.get(), "apple"), "1");
    EXPECT_EQ(*GetOne(copy.get(), "zebra"), "1");
  }
}

INSTANTIATE_TEST_SUITE_P(
    Phases, BackupCut,
    ::testing::Values(
        // Every prepare logged before the cut (the copy has all of them), no decision: our
        // own cross-shard commit is committed by its prepares (parallel commit; before it,
        // the copy aborted these two)...
        CutCase{"2pc.after_some_prepares", false, true, false},
        CutCase{"2pc.after_all_prepares", false, true, false},
        // ...a host's named prepare stays prepared, for its host to decide.
        CutCase{"2pc.after_some_prepares", true, false, true},
        CutCase{"2pc.after_all_prepares", true, false, true},
        // The decision durable, no commit record yet: the copy commits it.
        CutCase{"2pc.after_decision", false, true, false},
        CutCase{"2pc.after_decision", true, true, false}),
    [](const ::testing::TestParamInfo<CutCase>& info) {
      std::string name = absl::StrCat(info.param.kill_point, info.param.named ? "_named" : "");
      for (char& ch : name) {
        if (ch == '.') ch = '_';
      }
      return name;
    });


// A database whose every shard has checkpointed past its last record, reopened with nothing
// written since: each Close checkpoints and frees the segments below, so the log holds only
// segments that begin after every shard's last record, and the copy needs none of its records.
// (Found by BackupKill under ASan, where the killed child had not yet written: the retried
// Backup of the shared log asked for the segment of the last cut's LSN and failed kDataLoss.)
class BackupIdle : public BackupTest,
                   public ::testing::WithParamInterface<Options::LogLayout> {};

TEST_P(BackupIdle, CopiesADatabaseReopenedAfterItsLogWasFreed) {
  const std::string dir = FreshDir();
  Options o = BankOptions(dir);
  o.log_layout = GetParam();
  {
    auto db = OpenOrDie(o);
    ASSERT_TRUE(testing::FundBank(db.get()).ok());
  }
  for (int reopen = 0; reopen < 2; ++reopen) OpenOrDie(o).reset();
  auto db = OpenOrDie(o);
  for (int i = 0; i < 2; ++i) {
    const std::string dest = FreshDir(absl::StrCat("_copy", i));
    const absl::Status s = db->Backup(dest);
    ASSERT_TRUE(s.ok()) << "backup " << i << ": " << s;
    CheckBankCopy(dest, 0);
  }
}

// One log for all shards: shard 0 checkpointed past its only record and wrote nothing while
// shard 1 filled segments and checkpointed, so the segments holding shard 0's pin were freed
// (it needed nothing then); then shard 0 writes again. Its pin (applied LSN + 1) names a freed
// LSN, yet everything it needs is in the log: the copy starts where the log does. (A fix of
// BackupIdle's bug that copied from the lowest pin failed here, kDataLoss.)
TEST_F(BackupTest, SharedLogCopiesAShardWhosePinWasFreedWhileItWroteNothing) {
  const std::string dir = FreshDir();
  Options o = BankOptions(dir);
  o.log_layout = Options::LogLayout::kShared;
  o.checkpoint_wal_bytes = 0;  // checkpoints only when asked
  o.checkpoint_overlay_bytes = 64 << 20;
  o.checkpoint_txn_bytes = 0;
  auto db = OpenOrDie(o);
  auto parts = KeyPartitioning::Make(o, o.num_shards);
  ASSERT_TRUE(parts.ok()) << parts.status();
  std::vector<std::string> on0, on1;
  for (int i = 0; on0.size() < 2 || on1.size() < 400; ++i) {
    const std::string k = absl::StrCat("key", i);
    (parts->ShardOf(k) == 0 ? on0 : on1).push_back(k);
  }
  ASSERT_TRUE(PutOne(db.get(), on0[0], "first").ok());
  ASSERT_TRUE(db->Checkpoint().ok());
  const std::string big(4000, 'x');
  for (const std::string& k : on1) ASSERT_TRUE(PutOne(db.get(), k, big).ok());  // ~1.6 MB
  ASSERT_TRUE(db->Checkpoint().ok());
  ASSERT_TRUE(PutOne(db.get(), on0[1], "second").ok());
  const std::string dest = FreshDir("_copy");
  const absl::Status s = db->Backup(dest);
  ASSERT_TRUE(s.ok()) << s;
  db.reset();
  Options at_dest = o;
  at_dest.path = dest;
  at_dest.create_if_missing = false;
  auto copy = OpenOrDie(at_dest);
  EXPECT_EQ(GetOne(copy.get(), on0[0]).value_or("missing"), "first");
  EXPECT_EQ(GetOne(copy.get(), on0[1]).value_or("missing"), "second");
  EXPECT_EQ(GetOne(copy.get(), on1.back()).value_or("missing"), big);
}

INSTANTIATE_TEST_SUITE_P(Layouts, BackupIdle,
                         ::testing::Values(Options::LogLayout::kShared,
                                           Options::LogLayout::kPerShard),
                         [](const ::testing::TestParamInfo<Options::LogLayout>& p) {
                           return p.param == Options::LogLayout::kShared ? "Shared" : "PerShard";
                         });

}  // namespace
}  // namespace shardtx
