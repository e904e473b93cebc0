// Options::LogLayout::kShared: one log (PATH/log) for all the shards of a database. Commits on
// every shard and across shards survive reopening; a cross-shard durable commit costs one fsync
// (two with a log per shard); a segment is freed once no shard needs it (an idle shard pins
// nothing, a shard with records not yet checkpointed pins them); power cuts at the steps of
// two-phase commit and of recovery lose no acknowledged commit; the layout is the manifest's;
// a backup under concurrent commits is a consistent cut.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "tests/support/fault_injection_env.h"
#include "tests/support/test_db.h"
#include "tests/txn/backup_test_util.h"
#include "util/kill_point.h"
#include "wal/segment.h"

namespace shardtx {
namespace {

using testing::FaultInjectionEnv;
using testing::FreshDir;
using testing::GetOne;
using testing::OpenOrDie;
using testing::PutOne;

constexpr int kShards = 4;

// Range partitioning: "a/..." on shard 0, "b/..." on 1, "c/..." on 2, "d/..." on 3. No timed
// checkpoint, none at Close, 64 KiB segments.
Options Opts(const std::string& dir, Options::LogLayout layout = Options::LogLayout::kShared) {
  Options o;
  o.path = dir;
  o.num_shards = kShards;
  o.partitioning = Options::Partitioning::kRange;
  o.range_split_points = {"b", "c", "d"};
  o.checkpoint_interval = absl::ZeroDuration();
  o.checkpoint_on_close = false;
  o.wal_segment_size = 64 << 10;
  o.max_txn_bytes = 16 << 10;
  o.log_layout = layout;
  return o;
}

std::string Key(int shard, int i) { return absl::StrCat(std::string(1, 'a' + shard), "/", i); }

bool IsDir(const std::string& path) { return std::filesystem::is_directory(path); }

// The live segments (*.wal) of the log in `dir`, by number.
std::vector<uint64_t> Segments(const std::string& dir) {
  std::vector<uint64_t> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (auto n = wal::ParseSegmentFileName(e.path().filename().string())) out.push_back(*n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::trunc);
  out << data;
}

absl::Status CrossShard(Database* db, int from, int to, const std::string& tag) {
  auto t = db->Begin();
  absl::Status s = t->Put(Key(from, 1000), tag);
  if (s.ok()) s = t->Put(Key(to, 1000), tag);
  if (s.ok()) s = t->Commit();
  return s;
}

// Blocks until `done` holds, re-checking whenever a short wait passes (for background
// checkpoints, which the test cannot call itself for one shard alone). Fails after 60 s.
void AwaitCondition(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!done()) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "condition never held";
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

class SharedLogReopen : public ::testing::TestWithParam<bool> {};

TEST_P(SharedLogReopen, CommitsOnEveryShardAndAcrossShardsSurvive) {
  const bool checkpoint_on_close = GetParam();
  const std::string dir = FreshDir();
  Options o = Opts(dir);
  o.checkpoint_on_close = checkpoint_on_close;
  {
    auto db = OpenOrDie(o);
    ASSERT_NE(db, nullptr);
    for (int s = 0; s < kShards; ++s) {
      for (int i = 0; i < 10; ++i) ASSERT_TRUE(PutOne(db.get(), Key(s, i), "v").ok());
    }
    ASSERT_TRUE(CrossShard(db.get(), 0, 3, "x").ok());
    const Stats st = db->GetStats();
    EXPECT_TRUE(st.shared_log);
    EXPECT_EQ(st.cross_shard_commits, 1u);
    ASSERT_EQ(st.shards.size(), static_cast<size_t>(kShards));
    // Every shard reports the one log, and the total counts it once.
    for (const ShardStatsView& v : st.shards) {
      EXPECT_EQ(v.wal_fsyncs, st.fsyncs) << "shard " << v.shard;
      EXPECT_EQ(v.wal_bytes, st.wal_bytes) << "shard " << v.shard;
    }
    ASSERT_TRUE(db->Close().ok());
  }
  EXPECT_TRUE(IsDir(dir + "/log"));
  for (int s = 0; s < kShards; ++s) {
    const std::string shard_dir = absl::StrCat(dir, "/shard-00", s);
    EXPECT_TRUE(IsDir(shard_dir + "/lmdb")) << shard_dir;
    EXPECT_FALSE(IsDir(shard_dir + "/wal")) << shard_dir << " has a log of its own";
  }
  const std::string manifest = ReadFile(dir + "/SHARDTX");
  EXPECT_TRUE(absl::StrContains(manifest, "format 3\n")) << manifest;
  EXPECT_TRUE(absl::StrContains(manifest, "log shared\n")) << manifest;
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(absl::StrCat("reopen ", round));
    auto db = OpenOrDie(o);
    ASSERT_NE(db, nullptr);
    const Stats st = db->GetStats();
    EXPECT_TRUE(st.shared_log);
    if (round == 0) {
      if (checkpoint_on_close) {
        EXPECT_EQ(st.recovery_records, 0u) << "checkpointed at close: nothing to redo";
      } else {
        EXPECT_GE(st.recovery_records, 41u) << "every commit redone from the shared log";
        for (const ShardStatsView& v : st.shards) {
          EXPECT_GE(v.recovery_records, 10u) << "shard " << v.shard;
        }
      }
    }
    for (int s = 0; s < kShards; ++s) {
      for (int i = 0; i < 10; ++i) EXPECT_EQ(*GetOne(db.get(), Key(s, i)), "v") << Key(s, i);
    }
    EXPECT_EQ(*GetOne(db.get(), Key(0, 1000)), round == 0 ? "x" : "y");
    EXPECT_EQ(*GetOne(db.get(), Key(3, 1000)), round == 0 ? "x" : "y");
    if (round == 1) {
      EXPECT_EQ(*GetOne(db.get(), Key(2, 2000)), "r0");
    }
    // The reopened log goes on after its tail, for every shard.
    ASSERT_TRUE(CrossShard(db.get(), 0, 3, "y").ok());
    if (round == 0) {
      ASSERT_TRUE(PutOne(db.get(), Key(2, 2000), "r0").ok());
    }
    ASSERT_TRUE(db->Close().ok());
  }
}

INSTANTIATE_TEST_SUITE_P(CheckpointOnClose, SharedLogReopen, ::testing::Bool());

// fsyncs of `n` cross-shard durable commits, one after another (after a first one), in the
// layout given.
uint64_t CrossShardCommitFsyncs(const std::string& dir, Options::LogLayout layout, int n) {
  auto db = OpenOrDie(Opts(dir, layout));
  if (db == nullptr) return 0;
  EXPECT_TRUE(CrossShard(db.get(), 0, 3, "warm").ok());
  const uint64_t before = db->GetStats().fsyncs;
  for (int i = 0; i < n; ++i) EXPECT_TRUE(CrossShard(db.get(), 0, 3, absl::StrCat(i)).ok());
  const uint64_t after = db->GetStats().fsyncs;
  EXPECT_TRUE(db->Close().ok());
  return after - before;
}

// Options' default: shards that share a disk share one log (issue 19: a disk's durable commit
// rate must not fall as its shards grow in number).
TEST(SharedLog, IsTheDefaultLayout) {
  Options o;
  o.path = FreshDir();
  o.num_shards = 3;
  {
    auto db = OpenOrDie(o);
    ASSERT_NE(db, nullptr);
    EXPECT_TRUE(db->GetStats().shared_log);
    ASSERT_TRUE(PutOne(db.get(), "k", "v").ok());
  }
  EXPECT_TRUE(std::filesystem::is_directory(o.path + "/log"));
  for (int s = 0; s < 3; ++s) {
    EXPECT_FALSE(std::filesystem::exists(absl::StrCat(o.path, "/shard-00", s, "/wal")));
  }
  // A directory made with a log per shard keeps it under the default options.
  Options per_shard = o;
  per_shard.path = FreshDir("_per_shard");
  per_shard.log_layout = Options::LogLayout::kPerShard;
  { ASSERT_NE(OpenOrDie(per_shard), nullptr); }
  per_shard.log_layout = Options().log_layout;
  auto db = OpenOrDie(per_shard);
  ASSERT_NE(db, nullptr);
  EXPECT_FALSE(db->GetStats().shared_log);
}

TEST(SharedLog, CrossShardDurableCommitCostsOneFsync) {
  // Each shard's log syncs its own prepare; the shared log syncs both prepares at once. Counted
  // over 20 commits: a background sync (a flusher that took the first prepare alone, a spare
  // segment) may add one now and then, never one per commit.
  constexpr int kCommits = 20;
  EXPECT_GE(CrossShardCommitFsyncs(FreshDir("_per_shard"), Options::LogLayout::kPerShard, kCommits),
            2u * kCommits);
  EXPECT_LE(CrossShardCommitFsyncs(FreshDir("_shared"), Options::LogLayout::kShared, kCommits),
            kCommits + kCommits / 4);
}

TEST(SharedLog, SegmentsAreFreedOnceEveryShardIsCheckpointed) {
  const std::string dir = FreshDir();
  auto db = OpenOrDie(Opts(dir));
  ASSERT_NE(db, nullptr);
  const std::string value(4000, 'v');
  for (int i = 0; i < 40; ++i) {
    for (int s = 0; s < kShards; ++s) ASSERT_TRUE(PutOne(db.get(), Key(s, i), value).ok());
  }
  const size_t before = Segments(dir + "/log").size();
  EXPECT_GE(before, 8u);
  ASSERT_TRUE(db->Checkpoint().ok());
  const size_t after = Segments(dir + "/log").size();
  EXPECT_LE(after, 2u) << before << " segments before the checkpoint";
  ASSERT_TRUE(db->Close().ok());
  db = OpenOrDie(Opts(dir));
  ASSERT_NE(db, nullptr);
  for (int s = 0; s < kShards; ++s) EXPECT_EQ(*GetOne(db.get(), Key(s, 39)), value);
}

// Shard 3 writes one record in a first session; then, reopened, shards 0-2 write many segments'
// worth and checkpoint on their own (overlay trigger) while shard 3 does nothing. Whether the
// oldest segment (holding shard 3's record) may go depends on shard 3 alone: idle since its
// checkpoint, it pins nothing; with that record not yet checkpointed, it keeps it.
class SharedLogTruncation : public ::testing::TestWithParam<bool> {};

TEST_P(SharedLogTruncation, OnlyAShardWithRecordsToRedoHoldsTheLog) {
  const bool shard3_checkpointed = GetParam();
  const std::string dir = FreshDir();
  Options o = Opts(dir);
  o.checkpoint_wal_bytes = 0;  // only the overlay trigger: shard 3 never checkpoints by itself
  o.checkpoint_overlay_bytes = 64 << 10;
  {
    auto db = OpenOrDie(o);
    ASSERT_NE(db, nullptr);
    for (int s = 0; s < kShards; ++s) ASSERT_TRUE(PutOne(db.get(), Key(s, 0), "first").ok());
    if (shard3_checkpointed) {
      ASSERT_TRUE(db->Checkpoint().ok());
    }
    ASSERT_TRUE(db->Close().ok());
  }
  const std::vector<uint64_t> first_session = Segments(dir + "/log");
  ASSERT_FALSE(first_session.empty());
  const uint64_t oldest = first_session.front();
  {
    auto db = OpenOrDie(o);
    ASSERT_NE(db, nullptr);
    const std::string value(4000, 'v');
    for (int i = 1; i <= 40; ++i) {
      for (int s = 0; s < 3; ++s) ASSERT_TRUE(PutOne(db.get(), Key(s, i), value).ok());
    }
    // Shards 0-2 have each checkpointed (and so stated a floor above every record of the first
    // session) at least once since their last write of the first session.
    AwaitCondition([&] {
      const Stats st = db->GetStats();
      for (int s = 0; s < 3; ++s) {
        if (st.shards[s].checkpoints < 1) return false;
      }
      return true;
    });
    const Stats st = db->GetStats();
    EXPECT_EQ(st.shards[3].checkpoints, 0u);
    const std::vector<uint64_t> now = Segments(dir + "/log");
    ASSERT_FALSE(now.empty());
    if (shard3_checkpointed) {
      EXPECT_GT(now.front(), oldest) << "an idle shard held the log";
    } else {
      EXPECT_EQ(now.front(), oldest) << "shard 3's record was freed before its checkpoint";
    }
    ASSERT_TRUE(db->Close().ok());  // no checkpoint at close
  }
  auto db = OpenOrDie(o);
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(*GetOne(db.get(), Key(3, 0)), "first");
  if (!shard3_checkpointed) {
    EXPECT_EQ(db->GetStats().shards[3].recovery_records, 1u);
  }
  ASSERT_TRUE(db->Checkpoint().ok());
  // Everything checkpointed: the first session's segment goes now in both cases.
  EXPECT_GT(Segments(dir + "/log").front(), oldest);
}

INSTANTIATE_TEST_SUITE_P(Shard3Checkpointed, SharedLogTruncation, ::testing::Bool());

// --- Power cuts (FaultInjectionEnv: what was not synced is lost). ---

bool IsCrash(const absl::Status& s) {
  return s.code() == absl::StatusCode::kInternal &&
         absl::StrContains(s.message(), "simulated crash");
}

class SharedLogCrash : public ::testing::TestWithParam<std::string> {
 protected:
  void TearDown() override { KillPoints::DisarmAll(); }
  Options CrashOpts(const std::string& dir) {
    Options o = Opts(dir);
    o.env = &env_;
    return o;
  }
  // Commits acknowledged before the crash: on every shard, and across shards.
  void CommitAcknowledged(Database* db) {
    for (int s = 0; s < kShards; ++s) {
      for (int i = 0; i < 5; ++i) ASSERT_TRUE(PutOne(db, Key(s, i), "acked").ok());
    }
    ASSERT_TRUE(CrossShard(db, 1, 2, "acked").ok());
  }
  void ExpectAcknowledged(Database* db) {
    for (int s = 0; s < kShards; ++s) {
      for (int i = 0; i < 5; ++i) EXPECT_EQ(*GetOne(db, Key(s, i)), "acked") << Key(s, i);
    }
    EXPECT_EQ(*GetOne(db, Key(1, 1000)), "acked");
    EXPECT_EQ(*GetOne(db, Key(2, 1000)), "acked");
  }
  FaultInjectionEnv env_{Env::Default(), FaultInjectionEnv::Options{.sync_base = false}};
};

// A power cut at a step of a cross-shard commit (shards 0 and 3). In the shared layout both
// prepares are made durable by one fsync before the first step is reached, so by the rule of
// parallel commit (every prepare durable: committed) recovery commits it on both shards,
// wherever the cut came.
class SharedLogTwoPhaseCrash : public SharedLogCrash {};

TEST_P(SharedLogTwoPhaseCrash, CrossShardCommitIsCommittedOnBothShards) {
  const std::string point = GetParam();
  const std::string dir = FreshDir();
  {
    auto db = OpenOrDie(CrashOpts(dir));
    ASSERT_NE(db, nullptr);
    CommitAcknowledged(db.get());
    std::atomic<bool> fired{false};
    KillPoints::Arm(point, 0, [&] {
      fired = true;
      env_.SimulateCrash().IgnoreError();
    });
    absl::Status s = CrossShard(db.get(), 0, 3, "cut");
    KillPoints::DisarmAll();
    ASSERT_TRUE(fired.load()) << point << " never reached";
    EXPECT_TRUE(s.ok() || IsCrash(s)) << s;
    db.reset();
  }
  env_.Reset();
  auto db = OpenOrDie(CrashOpts(dir));
  ASSERT_NE(db, nullptr);
  ExpectAcknowledged(db.get());
  EXPECT_EQ(*GetOne(db.get(), Key(0, 1000)), "cut");
  EXPECT_EQ(*GetOne(db.get(), Key(3, 1000)), "cut");
  EXPECT_EQ(db->GetStats().in_doubt, 0u);
  EXPECT_EQ(db->GetStats().recovered_aborts, 0u);
}

INSTANTIATE_TEST_SUITE_P(KillPoints, SharedLogTwoPhaseCrash,
                         ::testing::Values("2pc.after_some_prepares", "2pc.after_all_prepares",
                                           "2pc.after_decision", "2pc.after_some_commits"),
                         [](const auto& info) {
                           return absl::StrReplaceAll(std::string(info.param), {{".", "_"}});
                         });

// With the deliberate bug commit_with_prepare_missing (SHARDTX_DELIBERATE_BUG, set by the ctest
// that runs this; skipped otherwise), the shared layout still acknowledges a cross-shard commit
// whose last prepare is not durable, and a power cut loses it: the bug the crash tests must
// catch exists in this layout too (one fsync does not hide it).
TEST_F(SharedLogCrash, DeliberateBugLosesAnAcknowledgedCrossShardCommit) {
  if (!KillPoints::DeliberateBug("commit_with_prepare_missing")) {
    GTEST_SKIP() << "SHARDTX_DELIBERATE_BUG=commit_with_prepare_missing not set";
  }
  const std::string dir = FreshDir();
  {
    auto db = OpenOrDie(CrashOpts(dir));
    ASSERT_NE(db, nullptr);
    ASSERT_TRUE(CrossShard(db.get(), 0, 3, "acked").ok());
    ASSERT_TRUE(env_.SimulateCrash().ok());
    db.reset();
  }
  env_.Reset();
  auto db = OpenOrDie(CrashOpts(dir));
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(absl::IsNotFound(GetOne(db.get(), Key(0, 1000)).status()));
  EXPECT_TRUE(absl::IsNotFound(GetOne(db.get(), Key(3, 1000)).status()));
  EXPECT_EQ(db->GetStats().recovered_aborts, 1u);
}

// A power cut during recovery (redo, before the shared log is reopened, resolving the
// transaction a first cut left in doubt), then recovery again: nothing acknowledged is lost and
// the transaction in doubt is committed (its prepares were durable).
class SharedLogRecoveryCrash : public SharedLogCrash {};

TEST_P(SharedLogRecoveryCrash, SecondRecoveryLosesNothing) {
  const std::string point = GetParam();
  const std::string dir = FreshDir();
  {
    auto db = OpenOrDie(CrashOpts(dir));
    ASSERT_NE(db, nullptr);
    CommitAcknowledged(db.get());
    // Leaves a transaction in doubt: prepares durable, decision and commit records not.
    KillPoints::Arm("2pc.after_all_prepares", 0, [&] { env_.SimulateCrash().IgnoreError(); });
    CrossShard(db.get(), 0, 3, "in doubt").IgnoreError();
    KillPoints::DisarmAll();
    ASSERT_TRUE(env_.crashed());
    db.reset();
  }
  env_.Reset();
  std::atomic<bool> fired{false};
  KillPoints::Arm(point, point == "recovery.mid_redo" ? 7 : 0, [&] {
    fired = true;
    env_.SimulateCrash().IgnoreError();
  });
  {
    auto r = Database::Open(CrashOpts(dir));
    KillPoints::DisarmAll();
    EXPECT_TRUE(fired.load()) << point << " never reached";
    if (r.ok()) {
      (*r)->Close().IgnoreError();
    } else {
      EXPECT_TRUE(IsCrash(r.status())) << r.status();
    }
  }
  env_.Reset();
  auto db = OpenOrDie(CrashOpts(dir));
  ASSERT_NE(db, nullptr);
  ExpectAcknowledged(db.get());
  EXPECT_EQ(*GetOne(db.get(), Key(0, 1000)), "in doubt");
  EXPECT_EQ(*GetOne(db.get(), Key(3, 1000)), "in doubt");
  EXPECT_EQ(db->GetStats().in_doubt, 0u);
}

INSTANTIATE_TEST_SUITE_P(KillPoints, SharedLogRecoveryCrash,
                         ::testing::Values("recovery.mid_redo", "recovery.before_wal_open",
                                           "recovery.resolve_in_doubt"),
                         [](const auto& info) {
                           return absl::StrReplaceAll(std::string(info.param), {{".", "_"}});
                         });

// --- The layout is the directory's. ---

TEST(SharedLog, LayoutIsTheManifestsWhateverTheOptionsSay) {
  for (const bool created_shared : {true, false}) {
    SCOPED_TRACE(created_shared ? "created shared" : "created per shard");
    const std::string dir = FreshDir(created_shared ? "_shared" : "_per_shard");
    const auto created =
        created_shared ? Options::LogLayout::kShared : Options::LogLayout::kPerShard;
    const auto other = created_shared ? Options::LogLayout::kPerShard : Options::LogLayout::kShared;
    {
      auto db = OpenOrDie(Opts(dir, created));
      ASSERT_NE(db, nullptr);
      ASSERT_TRUE(CrossShard(db.get(), 0, 2, "one").ok());
      ASSERT_TRUE(db->Close().ok());
    }
    for (int round = 0; round < 2; ++round) {
      auto db = OpenOrDie(Opts(dir, other));
      ASSERT_NE(db, nullptr);
      EXPECT_EQ(db->GetStats().shared_log, created_shared);
      EXPECT_EQ(*GetOne(db.get(), Key(0, 1000)), round == 0 ? "one" : "two");
      EXPECT_EQ(*GetOne(db.get(), Key(2, 1000)), round == 0 ? "one" : "two");
      ASSERT_TRUE(CrossShard(db.get(), 0, 2, "two").ok());
      ASSERT_TRUE(db->Close().ok());
    }
    EXPECT_EQ(IsDir(dir + "/log"), created_shared);
    EXPECT_EQ(IsDir(dir + "/shard-000/wal"), !created_shared);
    EXPECT_EQ(absl::StrContains(ReadFile(dir + "/SHARDTX"), "log shared"), created_shared);
  }
}

TEST(SharedLog, ManifestLayoutMismatchIsDataLoss) {
  const std::string dir = FreshDir();
  {
    auto db = OpenOrDie(Opts(dir));
    ASSERT_NE(db, nullptr);
    ASSERT_TRUE(db->Close().ok());
  }
  const std::string manifest = ReadFile(dir + "/SHARDTX");
  ASSERT_TRUE(absl::StrContains(manifest, "format 3\n"));
  // Format 3 without its "log shared" line.
  WriteFile(dir + "/SHARDTX", absl::StrReplaceAll(manifest, {{"log shared\n", ""}}));
  auto r = Database::Open(Opts(dir));
  EXPECT_TRUE(absl::IsDataLoss(r.status())) << r.status();
  // "log shared" in a format that has no such line.
  WriteFile(dir + "/SHARDTX", absl::StrReplaceAll(manifest, {{"format 3\n", "format 2\n"}}));
  r = Database::Open(Opts(dir));
  EXPECT_TRUE(absl::IsDataLoss(r.status())) << r.status();
  // A layout this build does not know.
  WriteFile(dir + "/SHARDTX", absl::StrReplaceAll(manifest, {{"log shared\n", "log striped\n"}}));
  r = Database::Open(Opts(dir));
  EXPECT_TRUE(absl::IsDataLoss(r.status())) << r.status();
  // A newer format.
  WriteFile(dir + "/SHARDTX", absl::StrReplaceAll(manifest, {{"format 3\n", "format 4\n"}}));
  r = Database::Open(Opts(dir));
  EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
  WriteFile(dir + "/SHARDTX", manifest);
  EXPECT_TRUE(Database::Open(Opts(dir)).ok());
}

TEST(SharedLog, RecordOfAStreamWithNoShardIsDataLoss) {
  const std::string dir = FreshDir();
  Options o = Opts(dir);
  o.partitioning = Options::Partitioning::kHash;
  o.range_split_points.clear();
  {
    auto db = OpenOrDie(o);
    ASSERT_NE(db, nullptr);
    // 32 keys hashed over 4 shards: some land on shard 2 or 3.
    for (int i = 0; i < 32; ++i) ASSERT_TRUE(PutOne(db.get(), Key(0, i), "v").ok());
    ASSERT_TRUE(db->Close().ok());  // no checkpoint: the records stay to be redone
  }
  // Some record belongs to shard 2 or 3, which the manifest no longer has.
  const std::string manifest = ReadFile(dir + "/SHARDTX");
  WriteFile(dir + "/SHARDTX", absl::StrReplaceAll(manifest, {{"shards 4\n", "shards 2\n"}}));
  o.num_shards = 0;
  auto r = Database::Open(o);
  EXPECT_TRUE(absl::IsDataLoss(r.status())) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "stream")) << r.status();
}

// --- Backup. ---

TEST(SharedLog, BackupUnderConcurrentCommitsIsAConsistentCut) {
  constexpr int kWriters = 4;
  const std::string dir = FreshDir();
  Options o = testing::BankOptions(dir);
  o.log_layout = Options::LogLayout::kShared;
  auto db = OpenOrDie(o);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(testing::FundBank(db.get()).ok());
  std::atomic<int64_t> acked_total{0};
  std::vector<std::atomic<int64_t>> acked(kWriters);
  std::atomic<bool> done{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      std::mt19937_64 rng(w);
      while (!done.load()) {
        absl::Status s = testing::BankTransfer(db.get(), w, rng);
        if (s.ok()) {
          acked[w]++;
          acked_total++;
        } else {
          ASSERT_TRUE(absl::IsAborted(s)) << s;
        }
      }
    });
  }
  std::vector<std::vector<int64_t>> before(2);
  std::vector<std::string> dests(2);
  for (int r = 0; r < 2; ++r) {
    // Some transfers acknowledged since the last backup (the writers run until `done`).
    const int64_t target = acked_total.load() + 100;
    AwaitCondition([&] { return acked_total.load() >= target; });
    for (int w = 0; w < kWriters; ++w) before[r].push_back(acked[w].load());
    dests[r] = FreshDir(absl::StrCat("_copy", r));
    absl::Status s = db->Backup(dests[r]);
    ASSERT_TRUE(s.ok()) << "backup " << r << ": " << s;
  }
  done = true;
  for (auto& t : writers) t.join();
  db.reset();
  for (int r = 0; r < 2; ++r) {
    SCOPED_TRACE(absl::StrCat("backup ", r));
    EXPECT_TRUE(IsDir(dests[r] + "/log"));
    EXPECT_FALSE(IsDir(dests[r] + "/shard-000/wal"));
    const std::vector<int64_t> copy = testing::CheckBankCopy(dests[r], kWriters);
    for (int w = 0; w < kWriters; ++w) {
      EXPECT_GE(copy[w], before[r][w]) << "writer " << w << " lost an acknowledged transfer";
      EXPECT_LE(copy[w], acked[w].load()) << "writer " << w << ": a transfer never made";
    }
    auto copy_db = OpenOrDie(testing::BankOptions(dests[r]));
    ASSERT_NE(copy_db, nullptr);
    EXPECT_TRUE(copy_db->GetStats().shared_log);
  }
}

}  // namespace
}  // namespace shardtx
