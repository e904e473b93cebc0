// Crash tests of the WAL (design brief decisions 5-7): simulated power cuts with torn writes while
// many threads append, and a crash inside Truncate right after a segment roll.
//
// Randomised tests print their seed; set SHARDTX_SEED to replay one. SHARDTX_CRASH_ROUNDS
// overrides the number of rounds of the random crash test (default 200).
#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/wal/wal_crash_test_util.h"
#include "util/kill_point.h"
#include "wal/writer.h"

namespace shardtx::wal::crashtest {
namespace {

// The main crash test: 8 threads append with mixed durability (and one truncates, one calls
// Sync) while the env crashes at a random file operation, with a random tear mode; some rounds
// also crash during recovery. After every crash: each record reported durable is present with
// its content, LSNs are contiguous and never restart, no record appears that nobody wrote,
// appends continue at the recovered tail, and reopening twice reads the same log.
TEST(WalCrash, RandomCrashesWhileManyThreadsAppend) {
  const uint64_t seed = TestSeed();
  const uint64_t rounds = EnvNumber("SHARDTX_CRASH_ROUNDS", 200);
  constexpr int kThreads = 8;
  constexpr uint64_t kCrashWindow = 300;  // a little more than one round's file operations
  std::mt19937_64 rng(seed);
  const TestDir test_dir("");
  const std::string& dir = test_dir.path();
  FaultInjectionEnv env(Env::Default(), NoRealSync());
  LogModel model;
  uint64_t crashes_in_workload = 0, crashes_in_recovery = 0, acked = 0, torn = 0;
  uint64_t max_ops = 0;

  for (uint64_t round = 0; round < rounds; ++round) {
    SCOPED_TRACE(absl::StrCat("SHARDTX_SEED=", seed, " round ", round));
    const WalOptions options = SmallSegments(/*recycle=*/rng() % 4 != 0);
    const FaultInjectionEnv::CrashOptions crash{static_cast<Tear>(rng() % 4), rng()};

    // Sometimes crash during recovery (scan, removal of spares, first segment).
    if (round > 0 && rng() % 4 == 0) {
      env.CrashAfter(1 + rng() % 12, {static_cast<Tear>(rng() % 4), rng()});
      {
        auto w = WalWriter::OpenAfterScan(&env, dir, options);
        if (!w.ok()) {
          EXPECT_TRUE(IsCrash(w.status())) << w.status();
        }
      }
      if (env.crashed()) ++crashes_in_recovery;
      if (!env.crashed()) {
        ASSERT_TRUE(env.SimulateCrash().ok());
      }
      ASSERT_TRUE(env.crash_status().ok()) << env.crash_status();
      env.Reset();
      absl::StatusOr<LogImage> img = ReadLog(&env, dir);
      ASSERT_TRUE(img.ok()) << img.status();
      ASSERT_TRUE(model.Check(*img)) << Describe(dir, *img);
      model.Adopt(*img);
    }

    auto w = WalWriter::OpenAfterScan(&env, dir, options);
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_EQ((*w)->Stats().next_lsn, model.start());
    const uint64_t ops_before = env.ops();
    env.CrashAfter(1 + rng() % kCrashWindow, crash);

    std::vector<WorkerConfig> configs(kThreads);
    for (int t = 0; t < kThreads; ++t) {
      configs[t].thread = t;
      configs[t].seed = rng();
      configs[t].tag = absl::StrCat("r", round);
      configs[t].truncates = t == 0;
      configs[t].syncs = t == 1;
    }
    std::vector<WorkerResult> results = RunWorkers(w->get(), configs, &model);
    if (env.crashed()) {
      ++crashes_in_workload;
    } else {
      max_ops = std::max(max_ops, env.ops() - ops_before);
      ASSERT_TRUE(env.SimulateCrash(crash).ok());  // a crash at rest loses the unsynced tail
    }
    ASSERT_TRUE(env.crash_status().ok()) << env.crash_status();
    for (const WorkerResult& r : results) {
      if (!r.first_error.ok()) {
        EXPECT_TRUE(IsCrash(r.first_error)) << r.first_error;
      }
      EXPECT_FALSE(r.poisoned_call_ok);
    }
    w->reset();  // the process is gone: closing only fails
    acked += model.acked();

    env.Reset();
    absl::StatusOr<LogImage> img = ReadLog(&env, dir);
    ASSERT_TRUE(img.ok()) << img.status();
    ASSERT_TRUE(model.Check(*img)) << Describe(dir, *img);
    torn += img->tail.torn;
    model.Adopt(*img);

    // Reopening (and closing without appending) twice reads back the same log.
    if (round % 4 == 0) {
      for (int k = 0; k < 2; ++k) {
        {
          auto again = WalWriter::OpenAfterScan(&env, dir, options);
          ASSERT_TRUE(again.ok()) << again.status();
          ASSERT_TRUE((*again)->Close().ok());
        }
        absl::StatusOr<LogImage> img2 = ReadLog(&env, dir);
        ASSERT_TRUE(img2.ok()) << img2.status();
        EXPECT_EQ(Lsns(*img2), Lsns(*img));
        EXPECT_EQ(img2->tail.next_lsn, img->tail.next_lsn);
        ASSERT_TRUE(model.Check(*img2)) << Describe(dir, *img2);
      }
    }
  }
  std::fprintf(
      stderr,
      "%llu rounds: %llu crashes while appending, %llu in recovery, %llu records "
      "acknowledged, %llu torn tails, at most %llu file ops in an uncrashed round\n",
      static_cast<unsigned long long>(rounds), static_cast<unsigned long long>(crashes_in_workload),
      static_cast<unsigned long long>(crashes_in_recovery), static_cast<unsigned long long>(acked),
      static_cast<unsigned long long>(torn), static_cast<unsigned long long>(max_ops));
  EXPECT_GT(crashes_in_workload, rounds / 4);
  EXPECT_GT(acked, rounds * 10);
}

// Regression: Truncate(durable_lsn() + 1) right after a segment roll whose new header was not
// yet synced used to free every older segment; a crash then left no valid segment and the log
// restarted at LSN 1.
TEST(WalCrash, TruncateNeverLeavesOnlyAnUnsyncedSegment) {
#ifndef SHARDTX_KILL_POINTS
  GTEST_SKIP() << "needs kill points";
#else
  const TestDir test_dir("");
  const std::string& dir = test_dir.path();
  FaultInjectionEnv env(Env::Default(), NoRealSync());
  LogModel model;
  auto w = WalWriter::OpenAfterScan(&env, dir, SmallSegments());
  ASSERT_TRUE(w.ok()) << w.status();
  // 15 records of 4096 bytes fill segment 1 but for 4032 bytes; the 16th does not fit.
  const std::string payload(4096 - kRecordHeaderSize, 'p');
  for (int i = 0; i < 15; ++i) {
    auto lsn = (*w)->Append(1, payload, Durability::kSync);
    ASSERT_TRUE(lsn.ok());
    ASSERT_TRUE((*w)->WaitDurable(*lsn).ok());
    model.Appended(*lsn, Rec{1, payload});
    model.Acked(*lsn);
  }
  // The 16th record rolls to segment 2 and is written without a sync. Right after that write,
  // the checkpointer truncates below the first LSN not yet durable, and the power fails.
  WalWriter* writer = w->get();
  KillPoints::Arm("wal.after_write", 0, [&] {
    const Lsn to = writer->durable_lsn() + 1;
    model.Truncating(to);
    EXPECT_TRUE(writer->Truncate(to).ok());
    EXPECT_TRUE(env.SimulateCrash().ok());
  });
  auto lsn = (*w)->Append(1, payload, Durability::kNone);
  ASSERT_TRUE(lsn.ok());
  model.Appended(*lsn, Rec{1, payload});
  EXPECT_FALSE((*w)->Sync().ok());  // the crash came first
  KillPoints::DisarmAll();
  ASSERT_TRUE(env.crashed());
  w->reset();
  env.Reset();
  absl::StatusOr<LogImage> img = ReadLog(&env, dir);
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_TRUE(model.Check(*img)) << Describe(dir, *img);
  EXPECT_GE(img->tail.next_lsn, 16u);
#endif
}

}  // namespace
}  // namespace shardtx::wal::crashtest
