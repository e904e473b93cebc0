// txbench --replicas (issue 16): a tiny run of three replicated Databases beside shardtx and
// the floor completes and prints each replica's Raft log writes; so does one of cross-shard
// transactions (issue 17), and one of follower reads (issue 17 step 9); the flag's refusals
// (replica counts other than 3 and 5, the mixed and bank workloads, unsynced commits).
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "bench/txbench/config.h"
#include "bench/txbench/keyspace.h"
#include "bench/txbench/report.h"
#include "bench/txbench/runner.h"
#include "bench/txbench/txbench.h"
#include "bench/txbench/workload.h"
#include "gtest/gtest.h"
#include "tests/bench/txbench_test_util.h"

namespace txbench {
namespace {

using ::txbench::testing::FreshDir;
using ::txbench::testing::ReadFile;
using ::txbench::testing::SmallConfig;

// (No std::regex here: GCC 12's -Wmaybe-uninitialized fires inside <regex> in the ASan build.)

// Whether `text` has a line that, after leading blanks, is `first` then blanks then `second`.
bool HasLine(const std::string& text, absl::string_view first, absl::string_view second) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripLeadingAsciiWhitespace(line);
    if (!absl::ConsumePrefix(&line, first)) continue;
    const absl::string_view rest = absl::StripLeadingAsciiWhitespace(line);
    if (rest.size() < line.size() && absl::StartsWith(rest, second)) return true;
  }
  return false;
}

// The positive number that `text` has right after the first `before` and right before the next
// `after`: "<before><number><after>"; 0 if there is none.
double NumberBetween(const std::string& text, absl::string_view before, absl::string_view after) {
  const size_t at = text.find(std::string(before));
  if (at == std::string::npos) return 0;
  const size_t from = at + before.size();
  const size_t end = text.find(std::string(after), from);
  double v = 0;
  if (end == std::string::npos ||
      !absl::SimpleAtod(absl::string_view(text).substr(from, end - from), &v)) {
    return 0;
  }
  return v;
}

// txbench::Run of `c`, its printed report in *text.
Outcome RunPrinting(const Config& c, std::string* text) {
  const std::string path = FreshDir() + "/out.txt";
  FILE* f = std::fopen(path.c_str(), "w");
  EXPECT_NE(f, nullptr) << path;
  if (f == nullptr) {
    Outcome failed;
    failed.exit_code = -1;
    return failed;
  }
  Outcome outcome = txbench::Run(c, f);
  std::fclose(f);
  *text = ReadFile(path);
  return outcome;
}

Config TinyReplicasConfig() {
  Config c = SmallConfig();
  c.replicas = 3;
  c.reps = 1;
  c.seconds = 0.3;
  return c;
}

// A tiny catch-up phase: 2 MiB, and Raft groups that snapshot every 64 entries keeping 32, so
// that a few hundred one-key commits make every group snapshot past the fill.
Config TinyCatchUpConfig() {
  Config c = TinyReplicasConfig();
  c.catchup_bytes = 2ull << 20;
  c.raft_snapshot_threshold = 64;
  c.raft_snapshot_trailing = 32;
  return c;
}

// The readonly plan's three rows of 0.6 s, 3 readers, the followers' max_staleness as given; the
// printed report in *text. Every window must have succeeded and carry its readonly figures.
Outcome RunReadonly(int64_t max_staleness_ms, std::string* text) {
  Config c = TinyReplicasConfig();
  c.workload = Workload::kReadonly;
  c.seconds = 0.6;
  c.threads = 3;
  c.follower_max_staleness_ms = max_staleness_ms;
  EXPECT_TRUE(Validate(c).ok()) << Validate(c);
  Outcome outcome = RunPrinting(c, text);
  for (const RunResult& r : outcome.runs) {
    EXPECT_TRUE(r.status.ok()) << r.status;
    EXPECT_TRUE(r.readonly.has_value()) << RowName(r);
    if (!r.readonly.has_value()) outcome.exit_code = -1;  // the callers read it
  }
  return outcome;
}

TEST(TxbenchReplicas, PlanIsTheFloorsThenShardtxUnreplicatedAndReplicatedAtOneAndSixtyFour) {
  const Config c = TinyReplicasConfig();
  ASSERT_TRUE(Validate(c).ok()) << Validate(c);
  const std::vector<RunSpec> plan = PlanRuns(c);
  ASSERT_EQ(plan.size(), 7u);
  EXPECT_EQ(plan[0].engine, EngineKind::kFsync);
  EXPECT_EQ(plan[0].workload, Workload::kFsync);
  // The O_DSYNC floors: one write alone, and one per replica at once.
  for (size_t i : {1, 2}) {
    EXPECT_EQ(plan[i].engine, EngineKind::kFsync);
    EXPECT_EQ(plan[i].workload, Workload::kDsync);
    EXPECT_EQ(plan[i].threads, i == 1 ? 1 : 3);
  }
  for (size_t i = 3; i < plan.size(); ++i) {
    EXPECT_EQ(plan[i].engine, i % 2 == 1 ? EngineKind::kShardtx : EngineKind::kShardtxReplicated);
    EXPECT_EQ(plan[i].threads, i <= 4 ? 1 : 64);
    EXPECT_EQ(plan[i].workload, Workload::kSingle);
  }
}

TEST(TxbenchReplicas, TinyRunCompletesAndPrintsEveryReplicasWrites) {
  const Config c = TinyCatchUpConfig();
  std::string text;
  const Outcome outcome = RunPrinting(c, &text);
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
  // Both floors measured, each with a row of its own.
  int floors = 0;
  for (const RunResult& r : outcome.runs) {
    if (r.spec.engine != EngineKind::kFsync) continue;
    ++floors;
    EXPECT_GT(r.committed, 0u) << WorkloadName(r.spec.workload);
    EXPECT_GT(r.p50_us, 0) << WorkloadName(r.spec.workload);
  }
  EXPECT_EQ(floors, 3);
  EXPECT_TRUE(HasLine(text, "1 fsync", "o_dsync ")) << text;
  EXPECT_TRUE(absl::StrContains(text, "shardtx-3replicas")) << text;
  for (int node = 1; node <= 3; ++node) {
    EXPECT_TRUE(absl::StrContains(
        text, absl::StrCat("replica ", node, node == 1 ? " (leader)" : "", ": raft log ")))
        << "no line for replica " << node << " in:\n"
        << text;
  }
  EXPECT_TRUE(
      absl::StrContains(text, "commit p50 <= 3x the O_DSYNC write floor, 3 at once, majority"))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "commit p50 / one O_DSYNC write alone")) << text;
  EXPECT_TRUE(absl::StrContains(text, "commit p50 / the fsync (pwrite+fdatasync) floor")) << text;
  EXPECT_TRUE(absl::StrContains(text, "the verdict is the line above")) << text;
  EXPECT_TRUE(absl::StrContains(text, "O_DSYNC write floor (3 at once) p50")) << text;
  EXPECT_TRUE(absl::StrContains(text, ">= 0.4x shardtx unreplicated")) << text;
  // The catch-up phase ran and printed its time, also in the targets.
  // "catch-up: <size> GB|MB caught up in <seconds> s (<rate> MB/s)"
  const size_t line = text.find("catch-up: ");
  ASSERT_NE(line, std::string::npos) << text;
  const std::string caught = text.substr(line, text.find('\n', line) - line);
  EXPECT_TRUE(absl::StrContains(caught, "B caught up in ")) << caught;
  const double seconds = NumberBetween(caught, "caught up in ", " s (");
  EXPECT_GT(seconds, 0) << caught;
  EXPECT_GT(NumberBetween(caught, " s (", " MB/s)"), 0) << caught;
  // The target's line: "catch up <size> GB|MB (issue 16: 1 GB)   <seconds> s, ..."
  EXPECT_GT(NumberBetween(text, "B (issue 16: 1 GB)", " s, "), 0) << text;
  EXPECT_GT(NumberBetween(text, "catch up ", " GB (issue 16") +
                NumberBetween(text, "catch up ", " MB (issue 16"),
            0)
      << text;
  ASSERT_TRUE(outcome.catch_up.has_value());
  ASSERT_TRUE(outcome.catch_up->ok()) << outcome.catch_up->status();
  EXPECT_GE((*outcome.catch_up)->bytes_committed, c.catchup_bytes);
  EXPECT_NEAR((*outcome.catch_up)->seconds, seconds, 0.051);
}

// The catch-up phase goes through snapshots: the new replica installed one on every shard (its
// own ShardStatsView::snapshots_installed), none failed, and the leader sent them; it applied
// everything (it was timed until then); the fill is what was asked.
TEST(TxbenchReplicas, CatchUpInstallsASnapshotOnEveryShard) {
  Config c = TinyCatchUpConfig();
  const RunSpec spec{EngineKind::kShardtxReplicated, Workload::kSingle, 1, 2};
  auto contender = Contender::Open(c, spec, 1, nullptr);
  ASSERT_TRUE(contender.ok()) << contender.status();
  absl::StatusOr<CatchUpResult> r = (*contender)->CatchUp(nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->shards, c.shards);
  EXPECT_EQ(r->new_node_id, 4u);
  EXPECT_GE(r->bytes_committed, c.catchup_bytes);
  EXPECT_LT(r->bytes_committed, c.catchup_bytes + (1u << 20));
  EXPECT_GE(r->min_shard_installs, 1u) << CatchUpText(*r);
  EXPECT_GE(r->snapshots_installed, c.shards) << CatchUpText(*r);
  EXPECT_EQ(r->install_failures, 0u) << CatchUpText(*r);
  EXPECT_GE(r->leader_snapshots_sent, c.shards) << CatchUpText(*r);
  // Timed until it had applied what the leader committed: the fill and the commits that made
  // every group snapshot past it (about snapshot_trailing + 2 x snapshot_threshold per shard).
  EXPECT_GE(r->applied_index, r->leader_commit_index) << CatchUpText(*r);
  EXPECT_GE(r->leader_commit_index, r->fill_txns + r->truncate_commits) << CatchUpText(*r);
  EXPECT_GE(r->truncate_commits, c.shards * 2 * 64u) << CatchUpText(*r);
  // Its directory holds the shards it installed: at least the data committed.
  EXPECT_GE(r->new_node_disk_bytes, c.catchup_bytes) << CatchUpText(*r);
  EXPECT_EQ(r->add_member_status, "OK") << CatchUpText(*r);
  EXPECT_GT(r->seconds, 0);
  ASSERT_TRUE((*contender)->Close().ok());
}

// The unreplicated engine has no catch-up phase; --catchup-bytes needs --replicas and is 0 or
// at least 1 MiB.
TEST(TxbenchReplicas, CatchUpRefusals) {
  Config c = SmallConfig();
  auto contender = Contender::Open(c, {EngineKind::kShardtx, Workload::kSingle, 1, 2}, 1, nullptr);
  ASSERT_TRUE(contender.ok()) << contender.status();
  EXPECT_TRUE(absl::IsUnimplemented((*contender)->CatchUp(nullptr).status()));
  ASSERT_TRUE((*contender)->Close().ok());

  c.catchup_bytes = 4ull << 20;
  absl::Status s = Validate(c);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "--replicas")) << s;
  c = TinyReplicasConfig();
  c.catchup_bytes = 1000;
  s = Validate(c);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "--catchup-bytes")) << s;
  c.catchup_bytes = kMinCatchupBytes;
  EXPECT_TRUE(Validate(c).ok()) << Validate(c);
}

// Issue 17 step 9: the cross-shard workload on three replicas beside the unreplicated engine
// and the floors, every commit cross-shard, node 1's leadership losses printed under each
// replicated row.
TEST(TxbenchReplicas, TinyCrossRunCompletesAndPrintsTheCrossRows) {
  Config c = TinyReplicasConfig();
  c.workload = Workload::kCross;
  ASSERT_TRUE(Validate(c).ok()) << Validate(c);
  std::string text;
  const Outcome outcome = RunPrinting(c, &text);
  ASSERT_EQ(outcome.exit_code, 0) << text;
  int replicated = 0, unreplicated = 0;
  for (const RunResult& r : outcome.runs) {
    ASSERT_TRUE(r.status.ok()) << r.status;
    if (r.spec.engine == EngineKind::kFsync) continue;
    EXPECT_EQ(r.spec.workload, Workload::kCross);
    EXPECT_GT(r.committed, 0u) << RowName(r);
    EXPECT_EQ(r.cross_shard, r.committed) << RowName(r);
    EXPECT_GT(r.p50_us, 0) << RowName(r);
    if (r.spec.engine == EngineKind::kShardtxReplicated) {
      ++replicated;
      ASSERT_EQ(r.replica_figures.size(), 3u);
      // Each commit's prepares and decision went through every replica's Raft logs.
      for (const ReplicaFigures& fig : r.replica_figures) {
        EXPECT_GT(fig.raft_log_writes_per_s, 0) << "replica " << fig.node_id;
      }
    } else {
      ++unreplicated;
    }
  }
  EXPECT_EQ(replicated, 2);
  EXPECT_EQ(unreplicated, 2);
  EXPECT_TRUE(HasLine(text, "1 shardtx-3replicas", "cross ")) << text;
  EXPECT_TRUE(HasLine(text, "shardtx-3replicas", "cross ")) << text;
  EXPECT_TRUE(HasLine(text, "1 shardtx", "cross ")) << text;
  EXPECT_TRUE(absl::StrContains(text, "node 1 not leading every shard: ")) << text;
  EXPECT_TRUE(absl::StrContains(text, "all windows: node 1 not leading every shard: ")) << text;
  EXPECT_TRUE(absl::StrContains(text, "kUnknown (maybe committed)")) << text;
  EXPECT_TRUE(
      absl::StrContains(text, "commit p50 <= 3x the O_DSYNC write floor, 3 at once, majority"))
      << text;
  EXPECT_TRUE(absl::StrContains(text, ">= 0.4x shardtx unreplicated")) << text;
}

TEST(TxbenchReplicas, RefusesMixedAndBankWorkloads) {
  for (Workload w : {Workload::kMixed, Workload::kBank}) {
    Config c = TinyReplicasConfig();
    c.workload = w;
    const absl::Status s = Validate(c);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << WorkloadName(w) << ": " << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "follower reads (readonly)")) << s;
  }
  for (Workload w : {Workload::kSingle, Workload::kYcsbA, Workload::kYcsbB, Workload::kCross,
                     Workload::kReadonly}) {
    Config c = TinyReplicasConfig();
    c.workload = w;
    EXPECT_TRUE(Validate(c).ok()) << WorkloadName(w) << ": " << Validate(c);
  }
}

// Issue 17 step 9: readonly needs groups of at least two accounts on as many shards, a writer
// count in range and a positive (or infinite) max_staleness.
TEST(TxbenchReplicas, ReadonlyRefusesOneShardGroupsAndBadWritersOrStaleness) {
  Config c = TinyReplicasConfig();
  c.workload = Workload::kReadonly;
  c.shards_per_txn = 1;
  absl::Status s = Validate(c);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "2 <= --shards_per_txn <= --shards")) << s;
  c.shards_per_txn = 3;  // 2 shards
  EXPECT_TRUE(absl::IsInvalidArgument(Validate(c))) << Validate(c);
  c.shards_per_txn = 2;
  c.readonly_writers = 65;
  s = Validate(c);
  EXPECT_TRUE(absl::StrContains(s.message(), "--readonly_writers 65")) << s;
  c.readonly_writers = 0;
  EXPECT_TRUE(Validate(c).ok()) << Validate(c);
  for (int64_t ms : {int64_t{0}, int64_t{-2}}) {
    c.follower_max_staleness_ms = ms;
    s = Validate(c);
    EXPECT_TRUE(absl::StrContains(s.message(), "--follower_max_staleness_ms")) << ms << ": " << s;
  }
  c.follower_max_staleness_ms = -1;
  EXPECT_TRUE(Validate(c).ok()) << Validate(c);
}

TEST(TxbenchReplicas, ReadonlyPlanIsTheThreeReaderPlacementsWithoutFloors) {
  Config c = TinyReplicasConfig();
  c.workload = Workload::kReadonly;
  const std::vector<RunSpec> plan = PlanRuns(c);
  ASSERT_EQ(plan.size(), 3u);
  const ReadPlacement want[] = {ReadPlacement::kLeaderLinearizable,
                                ReadPlacement::kLeaderFollowerRead,
                                ReadPlacement::kAllFollowerRead};
  for (size_t i = 0; i < plan.size(); ++i) {
    EXPECT_EQ(plan[i].engine, EngineKind::kShardtxReplicated);
    EXPECT_EQ(plan[i].workload, Workload::kReadonly);
    EXPECT_EQ(plan[i].threads, c.threads);
    EXPECT_EQ(plan[i].reads, want[i]);
    EXPECT_TRUE(UsesBalances(plan[i]));
    // One cluster serves the three rows.
    EXPECT_TRUE(KeyOfRun(c, plan[i]) == KeyOfRun(c, plan[0]));
  }
}

// The read groups: disjoint, each on distinct shards, as many as the smallest shard has keys.
TEST(TxbenchReplicas, AccountGroupsAreDisjointAndEachOnDistinctShards) {
  const KeySpace keys(2000, 16, 100, 4, 0, 1);
  for (uint32_t k : {2u, 3u, 4u}) {
    const std::vector<uint64_t> groups = AccountGroups(keys, k);
    size_t smallest = keys.size();
    for (uint32_t s = 0; s < 4; ++s) smallest = std::min(smallest, keys.KeysOfShard(s).size());
    ASSERT_EQ(groups.size(), smallest * k) << k;
    std::vector<bool> used(keys.size());
    for (size_t g = 0; g < groups.size() / k; ++g) {
      std::vector<bool> shard(4);
      for (size_t i = g * k; i < (g + 1) * k; ++i) {
        EXPECT_FALSE(used[groups[i]]) << "key " << groups[i] << " in two groups";
        used[groups[i]] = true;
        EXPECT_FALSE(shard[keys.ShardOfIndex(groups[i])]) << "group " << g << " k " << k;
        shard[keys.ShardOfIndex(groups[i])] = true;
        if (i > g * k) {
          EXPECT_LT(groups[i - 1], groups[i]);
        }
      }
    }
  }
  EXPECT_TRUE(AccountGroups(keys, 1).empty());
  EXPECT_TRUE(AccountGroups(keys, 5).empty());
}

// The readonly rows for about 2 s: every window reads, none sees a wrong sum, the followers
// serve reads only in the all-fr row (their share from the Database stats), the transfers ran,
// the staleness was sampled; and the report's lines and targets are there.
TEST(TxbenchReplicas, TinyReadonlyRunChecksSumsAndReportsFollowerShareAndStaleness) {
  std::string text;
  const Outcome outcome = RunReadonly(/*max_staleness_ms=*/2000, &text);
  ASSERT_EQ(outcome.exit_code, 0) << text;
  ASSERT_EQ(outcome.runs.size(), 3u) << text;
  for (const RunResult& r : outcome.runs) {
    const ReadonlyFigures& f = *r.readonly;
    EXPECT_GT(r.committed, 0u) << RowName(r);
    EXPECT_EQ(f.sums_checked, r.committed) << RowName(r);
    EXPECT_EQ(f.violations, 0u) << RowName(r);
    EXPECT_GT(f.writes, 0u) << RowName(r);
    EXPECT_GT(f.staleness_samples, 0) << RowName(r);
    ASSERT_EQ(r.replica_figures.size(), 3u);
    uint64_t served = 0;
    for (const ReplicaFigures& n : r.replica_figures) served += n.reads_served;
    // Every read counted by the runner was served by some node (the stats may count a few more:
    // reads of the window's last moments that the runner dropped).
    EXPECT_GE(served, r.committed) << RowName(r);
    if (r.spec.reads == ReadPlacement::kAllFollowerRead) {
      // Reader i on node i % 3 + 1: one reader each.
      EXPECT_GT(r.replica_figures[1].reads_served, 0u);
      EXPECT_GT(r.replica_figures[2].reads_served, 0u);
      EXPECT_GT(f.follower_share, 0.2) << text;
      EXPECT_LT(f.follower_share, 0.9) << text;
    } else {
      EXPECT_EQ(r.replica_figures[1].reads_served, 0u) << RowName(r);
      EXPECT_EQ(r.replica_figures[2].reads_served, 0u) << RowName(r);
      EXPECT_EQ(f.follower_share, 0) << RowName(r);
    }
  }
  EXPECT_TRUE(HasLine(text, "1 shardtx-3replicas@leader", "readonly ")) << text;
  EXPECT_TRUE(HasLine(text, "1 shardtx-3replicas@leader-fr", "readonly ")) << text;
  EXPECT_TRUE(HasLine(text, "1 shardtx-3replicas@all-fr", "readonly ")) << text;
  EXPECT_TRUE(absl::StrContains(text, "reads served (Stats::read_only_commits): node 1 ")) << text;
  EXPECT_TRUE(absl::StrContains(text, "follower staleness (Stats follower_staleness_ms")) << text;
  EXPECT_TRUE(absl::StrContains(text, ", wrong 0; background transfers on node 1: ")) << text;
  EXPECT_TRUE(absl::StrContains(text, "reads/s >= 0.9x leader-only")) << text;
  EXPECT_TRUE(absl::StrContains(text, "no verdict (1 pair < 5)")) << text;
  EXPECT_GT(
      NumberBetween(text, "node 1 follower reads, reads per CPU-second of this process", "x ("), 0)
      << text;
  EXPECT_TRUE(absl::StrContains(text, "share of the reads the followers served (all-fr rows)"))
      << text;
  EXPECT_GT(NumberBetween(text, "share of the reads the followers served (all-fr rows)", "%"), 0)
      << text;
  EXPECT_TRUE(absl::StrContains(text, " wrong in the windows above")) << text;
  // The summary's ratios pair the rows of each repetition.
  EXPECT_GT(
      NumberBetween(text, "txn/s shardtx-3replicas@leader-fr / shardtx-3replicas@all-fr: ", "x ("),
      0)
      << text;
  EXPECT_FALSE(absl::StrContains(text, "catch up")) << text;  // not asked for
}

// A max_staleness far below the closed timestamps' refresh (250 ms): follower reads are refused
// (kUnavailable, Stats::follower_reads_too_stale), and the runner retries them as aborts rather
// than failing the window; the linearizable row is never refused.
TEST(TxbenchReplicas, TinyReadonlyRunRetriesReadsRefusedAsTooStale) {
  std::string text;
  const Outcome outcome = RunReadonly(/*max_staleness_ms=*/5, &text);
  ASSERT_EQ(outcome.exit_code, 0) << text;
  ASSERT_EQ(outcome.runs.size(), 3u) << text;
  for (const RunResult& r : outcome.runs) {
    if (r.spec.reads == ReadPlacement::kLeaderLinearizable) {
      EXPECT_EQ(r.readonly->reads_too_stale, 0u) << text;
      EXPECT_GT(r.committed, 0u) << text;
    } else {
      EXPECT_GT(r.readonly->reads_too_stale, 0u) << RowName(r) << "\n" << text;
      EXPECT_GT(r.aborts, 0u) << RowName(r);  // each refusal retried
    }
    EXPECT_EQ(r.readonly->violations, 0u) << RowName(r);
  }
  EXPECT_TRUE(absl::StrContains(text, "reads refused as too stale")) << text;
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
