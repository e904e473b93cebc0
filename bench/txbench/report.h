// What txbench prints and writes: the header that states the fairness rules and the verdict
// rule, a row per measured window, the medians over the repetitions with each engine's
// per-repetition ratio to the others, the targets of issues 5 and 19 with their verdicts, and the
// JSON and CSV files.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bench/txbench/catch_up.h"
#include "bench/txbench/config.h"
#include "bench/txbench/machine.h"
#include "bench/txbench/runner.h"

namespace txbench {

std::string HeaderText(const Config& config, const MachineInfo& machine);

// How a row's run differs from the invocation's default, for its label: "/Nsh" when the run
// has its own shard count (RunSpec::shards), "/shared" when shardtx shares one log among the
// shards; "" otherwise.
std::string VariantSuffix(const RunResult& r);

// A row's engine with its variant: "shardtx-3replicas" for the replicated engine (with
// RunResult::replicas), then VariantSuffix.
std::string RowName(const RunResult& r);

// A row per window of `runs`, with its repetition (failed windows as a line with their error).
std::string TableText(const std::vector<RunResult>& runs);

// The windows of one engine, workload, thread count, keys per transaction and durability over
// the repetitions: each figure the median over the windows (other_cores: the maximum;
// committed, aborts, ops and elapsed_s: the sums), and the spread of txn/s.
struct Summary {
  RunResult median;
  int windows = 0;
  double txn_min = 0, txn_max = 0;
};
// One Summary per row of the plan that has a successful window, in the order of first run.
std::vector<Summary> Summarize(const std::vector<RunResult>& runs);

// The Summary rows as a table, then, for the engines that ran the same workload at the same
// thread count, the median (min-max, pairs) of the per-repetition txn/s ratios, and of each
// engine's p50 over the fsync floor's p50 of the same repetition.
std::string SummaryText(const std::vector<RunResult>& runs);

// The verdict rule: at least kMinPairs interleaved pairs; "holds" when the worst pair meets
// the bound, "MISSED" when the best pair does not, otherwise "undecided".
inline constexpr int kMinPairs = 5;
struct Verdict {
  std::string target;
  double bound = 0;
  bool at_least = true;  // the ratio must be >= bound (else <= bound)
  int pairs = 0;
  double median = 0, min = 0, max = 0;
  std::string outcome;  // holds | MISSED | undecided | no verdict (n pairs < 5) | not measured
};
Verdict Judge(const std::string& target, const std::vector<double>& ratios, double bound,
              bool at_least);

// Issue 5's and 19's targets (the per-shard and shared-log ones labelled so), each judged from the
// per-repetition pairs of synced windows in `runs`.
std::vector<Verdict> JudgeTargets(const std::vector<RunResult>& runs);
// One line per target: median (min-max, pairs) and the verdict.
std::string TargetsText(const std::vector<RunResult>& runs);

// Issue 16's targets, for each workload (and log layout) the replicated engine ran: its
// single-thread commit p50 at most 3x the O_DSYNC write floor's (like for like: a Raft log write
// is one O_DSYNC write), then the same ratio to the fsync (pwrite + fdatasync) floor, printed for
// reference (its outcome says so; not a verdict); its commits/s at 64 threads at least 0.4x
// shardtx unreplicated on the same workload, shards and log layout; then the catch-up phase:
// `catch_up` null means it did not run ("not measured"), an error "FAILED: ...", else its time
// and rate (no bound: issue 16 asks for the figure). Empty when no replicated run was planned.
// In the JSON's "targets" too.
std::vector<Verdict> JudgeReplicationTargets(
    const std::vector<RunResult>& runs, const absl::StatusOr<CatchUpResult>* catch_up = nullptr);
std::string ReplicationTargetsText(const std::vector<RunResult>& runs,
                                   const absl::StatusOr<CatchUpResult>* catch_up = nullptr);

// {"machine": {...}, "results": [{"engine", "workload", "threads", "shards", "log_layout",
// "shards_per_txn", "durability", "rep", "txn_per_s", "ops_per_s", "abort_pct", "p50_us",
// "p95_us", "p99_us", "p999_us", "fsyncs_per_s", "settle_s"}, ...], "targets": [{"target", "pairs",
// "median", "min", "max", "verdict"}, ...]}: a result per window. Failed windows are left out;
// fsyncs_per_s is null when the engine cannot count them; a target's figures are null when
// it was not measured. With `catch_up` (--replicas' catch-up phase ran), also "catch_up": its
// figures (CatchUpResult's fields), or {"error": "..."}.
std::string ToJson(const Config& config, const MachineInfo& machine,
                   const std::vector<RunResult>& runs,
                   const absl::StatusOr<CatchUpResult>* catch_up = nullptr);
// The same rows, with a header line.
std::string ToCsv(const std::vector<RunResult>& runs);

absl::Status WriteFile(const std::string& path, const std::string& contents);

}  // namespace txbench
