// What txbench prints and writes: the header that states the fairness rules, a table per
// group of runs (same workload and thread count) with each engine's ratio to the others, the
// summary with issue 5's targets, and the JSON and CSV files.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "bench/txbench/config.h"
#include "bench/txbench/machine.h"
#include "bench/txbench/runner.h"

namespace txbench {

std::string HeaderText(const Config& config, const MachineInfo& machine);

// The table of `runs` (failed runs as a line with their error), then the ratio matrix of the
// engines that ran the same workload at the same thread count.
std::string TableText(const std::vector<RunResult>& runs);

// One line per target of issue 5 that these runs measure: the figures, and "holds" or
// "MISSED".
std::string TargetsText(const std::vector<RunResult>& runs);

// {"machine": {...}, "results": [{"engine", "workload", "threads", "shards", "shards_per_txn",
// "durability", "txn_per_s", "ops_per_s", "abort_pct", "p50_us", "p95_us", "p99_us",
// "p999_us", "fsyncs_per_s"}, ...]}. Failed runs are left out; fsyncs_per_s is null when the
// engine cannot count them.
std::string ToJson(const Config& config, const MachineInfo& machine,
                   const std::vector<RunResult>& runs);
// The same rows, with a header line.
std::string ToCsv(const std::vector<RunResult>& runs);

absl::Status WriteFile(const std::string& path, const std::string& contents);

}  // namespace txbench
