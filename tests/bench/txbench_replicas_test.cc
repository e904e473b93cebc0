// txbench --replicas (issue 16): a tiny run of three replicated Databases beside shardtx and
// the floor completes and prints each replica's Raft log writes; the flag's refusals (replica
// counts other than 3 and 5, workloads with cross-shard transactions, unsynced commits).
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "bench/txbench/config.h"
#include "bench/txbench/report.h"
#include "bench/txbench/runner.h"
#include "bench/txbench/txbench.h"
#include "gtest/gtest.h"
#include "tests/bench/txbench_test_util.h"

namespace txbench {
namespace {

using ::txbench::testing::FreshDir;
using ::txbench::testing::ReadFile;
using ::txbench::testing::SmallConfig;

Config TinyReplicasConfig() {
  Config c = SmallConfig();
  c.replicas = 3;
  c.reps = 1;
  c.seconds = 0.3;
  return c;
}

TEST(TxbenchReplicas, PlanIsTheFloorThenShardtxUnreplicatedAndReplicatedAtOneAndSixtyFour) {
  const Config c = TinyReplicasConfig();
  ASSERT_TRUE(Validate(c).ok()) << Validate(c);
  const std::vector<RunSpec> plan = PlanRuns(c);
  ASSERT_EQ(plan.size(), 5u);
  EXPECT_EQ(plan[0].engine, EngineKind::kFsync);
  for (size_t i = 1; i < plan.size(); ++i) {
    EXPECT_EQ(plan[i].engine, i % 2 == 1 ? EngineKind::kShardtx : EngineKind::kShardtxReplicated);
    EXPECT_EQ(plan[i].threads, i <= 2 ? 1 : 64);
    EXPECT_EQ(plan[i].workload, Workload::kSingle);
  }
}

TEST(TxbenchReplicas, TinyRunCompletesAndPrintsEveryReplicasWrites) {
  const Config c = TinyReplicasConfig();
  const std::string path = FreshDir() + "/out.txt";
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  const Outcome outcome = txbench::Run(c, f);
  std::fclose(f);
  const std::string text = ReadFile(path);
  ASSERT_EQ(outcome.exit_code, 0) << text;
  int replicated_windows = 0;
  for (const RunResult& r : outcome.runs) {
    ASSERT_TRUE(r.status.ok()) << r.status;
    if (r.spec.engine != EngineKind::kShardtxReplicated) continue;
    ++replicated_windows;
    EXPECT_GT(r.committed, 0u);
    ASSERT_EQ(r.replica_figures.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
      const ReplicaFigures& fig = r.replica_figures[i];
      EXPECT_EQ(fig.node_id, i + 1);
      // Every replica stored the window's commits in its Raft log: at least one entry a write.
      EXPECT_GT(fig.raft_log_writes_per_s, 0) << "replica " << i + 1;
      EXPECT_GE(fig.raft_entries_per_write, 1.0) << "replica " << i + 1;
    }
  }
  EXPECT_EQ(replicated_windows, 2);
  EXPECT_TRUE(absl::StrContains(text, "shardtx-3replicas")) << text;
  for (int node = 1; node <= 3; ++node) {
    EXPECT_TRUE(absl::StrContains(
        text, absl::StrCat("replica ", node, node == 1 ? " (leader)" : "", ": raft log ")))
        << "no line for replica " << node << " in:\n"
        << text;
  }
  EXPECT_TRUE(absl::StrContains(text, "commit p50 <= 3x the fsync floor")) << text;
  EXPECT_TRUE(absl::StrContains(text, ">= 0.4x shardtx unreplicated")) << text;
  EXPECT_TRUE(absl::StrContains(text, "catch up 1 GB")) << text;
  EXPECT_TRUE(absl::StrContains(text, "not measured: snapshot catch-up")) << text;
}

TEST(TxbenchReplicas, RefusesCrossShardWorkloadsNamingIssue17) {
  for (Workload w : {Workload::kCross, Workload::kMixed, Workload::kBank, Workload::kReadonly}) {
    Config c = TinyReplicasConfig();
    c.workload = w;
    const absl::Status s = Validate(c);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << WorkloadName(w) << ": " << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "issue 17")) << s;
  }
  for (Workload w : {Workload::kSingle, Workload::kYcsbA, Workload::kYcsbB}) {
    Config c = TinyReplicasConfig();
    c.workload = w;
    EXPECT_TRUE(Validate(c).ok()) << WorkloadName(w) << ": " << Validate(c);
  }
}

TEST(TxbenchReplicas, RefusesOtherCountsUnsyncedCommitsAndTheBenchMatrices) {
  for (int n : {-1, 1, 2, 4, 6, 7}) {
    Config c = TinyReplicasConfig();
    c.replicas = n;
    const absl::Status s = Validate(c);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << n << ": " << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "3 or 5")) << s;
  }
  Config c = TinyReplicasConfig();
  c.replicas = 5;
  EXPECT_TRUE(Validate(c).ok()) << Validate(c);
  c = TinyReplicasConfig();
  c.durability = DurabilityMode::kAsync;
  EXPECT_FALSE(Validate(c).ok());
  c = TinyReplicasConfig();
  c.make_bench = true;
  EXPECT_FALSE(Validate(c).ok());
}

}  // namespace
}  // namespace txbench
