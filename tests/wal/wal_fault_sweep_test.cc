// Sweeps over every file operation of a small workload: an I/O error at the N-th (once, and from
// then on), and a crash at the N-th with each tear mode. The log either reports the error or stays
// correct, and reopens with every acknowledged record.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/wal/wal_crash_test_util.h"
#include "wal/writer.h"

namespace shardtx::wal::crashtest {
namespace {

// The small workload of the sweeps: open, 50 appends of 2.5 KB (three segments) with mostly
// durable ones, a truncation, close. Returns every status it saw, in order; fills `model`.
std::vector<absl::Status> SweepWorkload(Env* env, const std::string& dir, LogModel* model) {
  std::vector<absl::Status> statuses;
  auto w = WalWriter::OpenAfterScan(env, dir, SmallSegments());
  statuses.push_back(w.status());
  if (!w.ok()) return statuses;
  for (int i = 0; i < 50; ++i) {
    const std::string payload(2500, static_cast<char>('a' + i % 26));
    const Durability d = i % 5 == 4 ? Durability::kNone : Durability::kSync;
    absl::StatusOr<Lsn> lsn = (*w)->Append(5, payload, d);
    statuses.push_back(lsn.status());
    if (!lsn.ok()) continue;
    model->Appended(*lsn, Rec{5, payload});
    if (d == Durability::kSync) {
      absl::Status s = (*w)->WaitDurable(*lsn);
      statuses.push_back(s);
      if (s.ok()) model->Acked(*lsn);
    }
    if (i == 35) {
      const Lsn to = (*w)->durable_lsn() + 1;
      model->Truncating(to);
      statuses.push_back((*w)->Truncate(to));
    }
  }
  absl::Status s = (*w)->Close();
  statuses.push_back(s);
  if (s.ok()) model->AckedThrough((*w)->durable_lsn());
  return statuses;
}

// After the sweep's workload: the log reopens with a healthy env (before and after a crash)
// with every acknowledged record, takes appends, and reads back the same again.
void CheckReopens(FaultInjectionEnv* env, const std::string& dir, LogModel* model, Tear tear,
                  uint64_t seed) {
  ExpectModelHoldsAcrossACrash(env, dir, model, {tear, seed});
  {
    auto w = WalWriter::OpenAfterScan(env, dir, SmallSegments());
    ASSERT_TRUE(w.ok()) << w.status();
    for (int i = 0; i < 3; ++i) {
      const std::string payload = absl::StrCat("after ", i);
      auto lsn = (*w)->Append(6, payload, Durability::kSync);
      ASSERT_TRUE(lsn.ok()) << lsn.status();
      EXPECT_EQ(*lsn, model->start() + i);
      ASSERT_TRUE((*w)->WaitDurable(*lsn).ok());
      model->Appended(*lsn, Rec{6, payload});
      model->Acked(*lsn);
    }
  }
  absl::StatusOr<LogImage> img = ReadLog(env, dir);
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_TRUE(model->Check(*img)) << Describe(dir, *img);
}

// Fails the N-th file operation of the workload, for N = 1, 2, ... until the workload runs
// clean; once, and from then on. Each run either reports the injected error or stays correct
// (once a durable append failed, every later one fails), and the log reopens correctly.
TEST(WalCrash, IoErrorSweep) {
  for (bool persistent : {false, true}) {
    uint64_t n = 1;
    for (;; ++n) {
      SCOPED_TRACE(absl::StrCat(persistent ? "persistent" : "once", " fault at op ", n));
      const TestDir test_dir("");
      const std::string& dir = test_dir.path();
      FaultInjectionEnv env(Env::Default(), NoRealSync());
      env.FailAfter(n, persistent);
      LogModel model;
      const std::vector<absl::Status> statuses = SweepWorkload(&env, dir, &model);
      const bool fired = env.faults_injected() > 0;
      bool failed = false;
      for (const absl::Status& s : statuses) {
        if (!s.ok()) {
          EXPECT_TRUE(IsInjected(s)) << s;
        }
        if (!fired) {
          EXPECT_TRUE(s.ok()) << s;
        }
        failed |= !s.ok();
      }
      if (fired && !persistent) {
        EXPECT_EQ(env.faults_injected(), 1u);
      }
      CheckReopens(&env, dir, &model, static_cast<Tear>(n % 4), n);
      if (::testing::Test::HasFatalFailure()) return;
      if (!fired) {
        EXPECT_FALSE(failed);
        break;
      }
    }
    std::fprintf(stderr, "%s faults: the workload has %llu file operations\n",
                 persistent ? "persistent" : "one-shot", static_cast<unsigned long long>(n - 1));
    EXPECT_GT(n, 100u);
  }
}

// Crashes at the N-th file operation of the same workload, for every N, cycling the tear
// modes: every acknowledged record survives, and the log reopens and goes on.
TEST(WalCrash, CrashSweep) {
  uint64_t n = 1;
  for (;; ++n) {
    SCOPED_TRACE(absl::StrCat("crash at op ", n));
    const TestDir test_dir("");
    const std::string& dir = test_dir.path();
    FaultInjectionEnv env(Env::Default(), NoRealSync());
    const Tear tear = static_cast<Tear>(n % 4);
    env.CrashAfter(n, {tear, n});
    LogModel model;
    const std::vector<absl::Status> statuses = SweepWorkload(&env, dir, &model);
    const bool crashed = env.crashed();
    ASSERT_TRUE(env.crash_status().ok()) << env.crash_status();
    for (const absl::Status& s : statuses) {
      if (!s.ok()) {
        EXPECT_TRUE(IsCrash(s)) << s;
      }
    }
    if (!crashed) {
      ASSERT_TRUE(env.SimulateCrash({tear, n}).ok());
    }
    env.Reset();
    CheckReopens(&env, dir, &model, Tear::kNone, n);
    if (::testing::Test::HasFatalFailure()) return;
    if (!crashed) break;
  }
  EXPECT_GT(n, 100u);
}

}  // namespace
}  // namespace shardtx::wal::crashtest
