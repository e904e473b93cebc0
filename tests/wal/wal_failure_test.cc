// Failures of the disk are final (design brief decision 7): a failed fsync or write, a full disk
// while writing or creating a segment, and a file system without fallocate. Every waiter and
// later call sees the error; a healthy reopen finds every acknowledged record.
#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/wal/wal_crash_test_util.h"
#include "wal/segment.h"
#include "wal/writer.h"

namespace shardtx::wal::crashtest {
namespace {

// Runs 8 threads of durable appends until the injected fault stops the log, then checks what
// every caller was told and what a healthy reopen finds, with and without a crash.
void CheckFailureStopsTheLog(FaultInjectionEnv::Fault fault, uint64_t seed, int trials) {
  std::mt19937_64 rng(seed);
  int failed_trials = 0;
  for (int trial = 0; trial < trials; ++trial) {
    SCOPED_TRACE(absl::StrCat("SHARDTX_SEED=", seed, " trial ", trial));
    const TestDir test_dir(absl::StrCat("_", trial));
    const std::string& dir = test_dir.path();
    FaultInjectionEnv env(Env::Default(), NoRealSync());
    LogModel model;
    auto w = WalWriter::OpenAfterScan(&env, dir, SmallSegments());
    ASSERT_TRUE(w.ok()) << w.status();
    fault.after = 1 + rng() % 40;
    fault.persistent = trial % 2 == 1;
    env.InjectFault(fault);
    std::vector<WorkerConfig> configs(8);
    for (int t = 0; t < 8; ++t) {
      configs[t].thread = t;
      configs[t].seed = rng();
      configs[t].tag = absl::StrCat("x", trial);
      configs[t].max_appends = 400;
      configs[t].all_sync = true;
    }
    std::vector<WorkerResult> results = RunWorkers(w->get(), configs, &model);
    ASSERT_GE(env.faults_injected(), 1u);
    const bool log_failed = std::any_of(results.begin(), results.end(),
                                        [](const WorkerResult& r) { return !r.first_error.ok(); });
    // Only a one-shot sync fault can miss the log: when it hits the sync of a spare segment
    // being prepared, the writer prepares it again (no record was in it). Whether the log then
    // kept its promises is checked below, after a crash, like every other case.
    if (fault.persistent || fault.ops != FaultInjectionEnv::kSync) {
      EXPECT_TRUE(log_failed);
    }
    if (log_failed) {
      ++failed_trials;
      for (const WorkerResult& r : results) {
        // Every thread was stopped by the error (400 appends take far more operations).
        EXPECT_FALSE(r.first_error.ok());
        EXPECT_EQ(r.first_error.code(), fault.code) << r.first_error;
        EXPECT_TRUE(absl::StrContains(r.first_error.message(), "injected")) << r.first_error;
        EXPECT_FALSE(r.poisoned_call_ok);
      }
      // Nothing later succeeds.
      absl::StatusOr<Lsn> later = (*w)->Append(1, "later", Durability::kSync);
      EXPECT_EQ(later.status().code(), fault.code);
      EXPECT_EQ((*w)->Sync().code(), fault.code);
      EXPECT_EQ((*w)->Truncate(~Lsn{0}).code(), fault.code);
      EXPECT_EQ((*w)->Close().code(), fault.code);
    } else {
      EXPECT_TRUE((*w)->Close().ok());
      model.AckedThrough((*w)->durable_lsn());
    }
    w->reset();

    // A healthy reopen, first without a crash (unsynced data may still be there), then after
    // one: every acknowledged record was really synced.
    const size_t acked = model.acked();
    size_t survived = 0;
    ExpectModelHoldsAcrossACrash(&env, dir, &model, {}, &survived);
    EXPECT_GE(survived, acked);
    // And the log goes on.
    {
      auto w2 = WalWriter::OpenAfterScan(&env, dir, SmallSegments());
      ASSERT_TRUE(w2.ok()) << w2.status();
      auto lsn = (*w2)->Append(7, "after reopen", Durability::kSync);
      ASSERT_TRUE(lsn.ok());
      EXPECT_EQ(*lsn, model.start());
      ASSERT_TRUE((*w2)->WaitDurable(*lsn).ok());
    }
  }
  EXPECT_GE(failed_trials, trials / 2 + 1);
}

TEST(WalCrash, FailedFsyncFailsEveryWaiterAndLaterAppend) {
  CheckFailureStopsTheLog({1, false, FaultInjectionEnv::kSync, absl::StatusCode::kInternal},
                          TestSeed(), 8);
}

TEST(WalCrash, FailedWriteFailsEveryWaiterAndLaterAppend) {
  CheckFailureStopsTheLog({1, false, FaultInjectionEnv::kWrite, absl::StatusCode::kInternal},
                          TestSeed(), 8);
}

TEST(WalCrash, DiskFullOnWriteFailsEveryWaiterAndLaterAppend) {
  CheckFailureStopsTheLog(
      {1, false, FaultInjectionEnv::kWrite, absl::StatusCode::kResourceExhausted}, TestSeed(), 4);
}

// The sequence of one failed sync, single-threaded: the waiter, then every later call.
TEST(WalCrash, FailedFsyncIsFinal) {
  const TestDir test_dir("");
  const std::string& dir = test_dir.path();
  FaultInjectionEnv env(Env::Default(), NoRealSync());
  auto w = WalWriter::OpenAfterScan(&env, dir, SmallSegments());
  ASSERT_TRUE(w.ok()) << w.status();
  for (int i = 1; i <= 10; ++i) {
    auto lsn = (*w)->Append(1, absl::StrCat("durable ", i), Durability::kSync);
    ASSERT_TRUE(lsn.ok());
    ASSERT_TRUE((*w)->WaitDurable(*lsn).ok());
  }
  env.FailSyncAfter(1, /*persistent=*/false);  // later syncs would succeed: must not be tried
  auto lsn = (*w)->Append(1, "not durable", Durability::kSync);
  ASSERT_TRUE(lsn.ok());
  absl::Status s = (*w)->WaitDurable(*lsn);
  EXPECT_TRUE(IsInjected(s)) << s;
  EXPECT_EQ((*w)->durable_lsn(), 10u);
  EXPECT_TRUE(IsInjected((*w)->Append(1, "x", Durability::kNone).status()));
  EXPECT_TRUE(IsInjected((*w)->WaitDurable(*lsn)));
  EXPECT_TRUE(IsInjected((*w)->Sync()));
  EXPECT_TRUE(IsInjected((*w)->Close()));
  w->reset();
  ASSERT_TRUE(env.SimulateCrash().ok());
  env.Reset();
  absl::StatusOr<LogImage> img = ReadLog(&env, dir);
  ASSERT_TRUE(img.ok()) << img.status();
  ASSERT_EQ(img->records.size(), 10u);
  EXPECT_EQ(img->records.back().second.payload, "durable 10");
}

// Disk full while creating a segment: a clear kResourceExhausted naming the file, no crash,
// and a healthy reopen finds every acknowledged record.
TEST(WalCrash, DiskFullAtSegmentCreation) {
  const TestDir test_dir("");
  const std::string& dir = test_dir.path();
  FaultInjectionEnv env(Env::Default(), NoRealSync());
  const FaultInjectionEnv::Fault disk_full{1, true, FaultInjectionEnv::kAllocate,
                                           absl::StatusCode::kResourceExhausted};
  // The first segment.
  env.InjectFault(disk_full);
  auto w = WalWriter::OpenAfterScan(&env, dir, SmallSegments());
  ASSERT_EQ(w.status().code(), absl::StatusCode::kResourceExhausted) << w.status();
  EXPECT_TRUE(absl::StrContains(w.status().message(), SegmentFileName(1))) << w.status();
  EXPECT_TRUE(absl::StrContains(w.status().message(), "No space left")) << w.status();
  env.ClearFaults();

  // A later segment, while appending: the spare cannot be made, then the roll fails.
  LogModel model;
  w = WalWriter::OpenAfterScan(&env, dir, SmallSegments());
  ASSERT_TRUE(w.ok()) << w.status();
  env.InjectFault(disk_full);
  absl::Status error;
  for (int i = 0; i < 200 && error.ok(); ++i) {
    const std::string payload(3000, static_cast<char>('a' + i % 26));
    absl::StatusOr<Lsn> lsn = (*w)->Append(2, payload, Durability::kSync);
    if (!lsn.ok()) {
      error = lsn.status();
      break;
    }
    model.Appended(*lsn, Rec{2, payload});
    error = (*w)->WaitDurable(*lsn);
    if (error.ok()) model.Acked(*lsn);
  }
  EXPECT_EQ(error.code(), absl::StatusCode::kResourceExhausted) << error;
  EXPECT_TRUE(absl::StrContains(error.message(), ".wal")) << error;
  EXPECT_GE(model.acked(), 15u);  // the first segment was fine
  EXPECT_EQ((*w)->Append(2, "x", Durability::kNone).status().code(),
            absl::StatusCode::kResourceExhausted);
  w->reset();
  ExpectModelHoldsAcrossACrash(&env, dir, &model);
  w = WalWriter::OpenAfterScan(&env, dir, SmallSegments());
  ASSERT_TRUE(w.ok()) << w.status();
  auto lsn = (*w)->Append(3, "space again", Durability::kSync);
  ASSERT_TRUE(lsn.ok());
  EXPECT_EQ(*lsn, model.start());
  EXPECT_TRUE((*w)->WaitDurable(*lsn).ok());
}

// A file system without fallocate: segments are zero-filled once, counted in stats, and the
// log works (and survives a crash) as usual.
TEST(WalCrash, AllocateUnsupportedFallsBackToZeroFill) {
  const TestDir test_dir("");
  const std::string& dir = test_dir.path();
  FaultInjectionEnv env(Env::Default(), NoRealSync());
  env.DisableAllocate();
  LogModel model;
  auto w = WalWriter::OpenAfterScan(&env, dir, SmallSegments(/*recycle=*/false));
  ASSERT_TRUE(w.ok()) << w.status();
  for (int i = 0; i < 100; ++i) {
    const std::string payload(2000, static_cast<char>('A' + i % 26));
    auto lsn = (*w)->Append(4, payload, Durability::kSync);
    ASSERT_TRUE(lsn.ok());
    ASSERT_TRUE((*w)->WaitDurable(*lsn).ok());
    model.Appended(*lsn, Rec{4, payload});
    model.Acked(*lsn);
  }
  // Close first: the flusher may still be preparing the spare segment.
  ASSERT_TRUE((*w)->Close().ok());
  const WalStats stats = (*w)->Stats();
  EXPECT_GE(stats.segments_created, 4u);  // 200 KB in 64 KiB segments, plus a spare
  EXPECT_EQ(stats.fallocate_fallbacks, stats.segments_created);
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (ParseSegmentFileName(entry.path().filename().string()).has_value()) {
      EXPECT_EQ(fs::file_size(entry.path()), kSegmentSize) << entry.path();
    }
  }
  ASSERT_TRUE(env.SimulateCrash().ok());
  w->reset();
  env.Reset();
  absl::StatusOr<LogImage> img = ReadLog(&env, dir);
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_TRUE(model.Check(*img)) << Describe(dir, *img);
  EXPECT_EQ(img->records.size(), 100u);
}

}  // namespace
}  // namespace shardtx::wal::crashtest
