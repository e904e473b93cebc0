// txbench: the throughput benchmark of shardtx next to RocksDB and LMDB (issue 5). The binary
// (main.cc) parses flags into a Config and calls Run; tests call the pieces directly.
//
//   txbench --engines=shardtx,rocksdb,lmdb --workload=single --threads=64 --seconds=5
//   txbench --make-bench --json=build/bench-results.json --chart=build/bench-results.png
#pragma once

#include <cstdio>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/txbench/catch_up.h"
#include "bench/txbench/config.h"
#include "bench/txbench/runner.h"

namespace txbench {

struct Outcome {
  std::vector<RunResult> runs;
  // --replicas' catch-up phase, when it ran (config.catchup_bytes > 0): its figures or error.
  std::optional<absl::StatusOr<CatchUpResult>> catch_up;
  int exit_code = 0;  // 0 when every run succeeded and every file was written
};

// Runs every planned run, printing the header, a table per group of runs and the targets to
// `out`, progress to stderr (when config.progress), and writes --json, --csv and --chart.
Outcome Run(const Config& config, FILE* out);

}  // namespace txbench
