// The PNG chart of a txbench invocation, drawn by gnuplot (Debian's gnuplot-nox): throughput by
// workload and engine (log scale), and the latency percentiles of every run. Next to FILE.png
// it leaves FILE.png.gp (the script) and FILE.png.{tput,lat}.dat (its data), so the chart can be
// redrawn or restyled with `gnuplot FILE.png.gp`.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "bench/txbench/runner.h"

namespace txbench {

// The gnuplot script and its two data files' contents, without running anything.
struct ChartFiles {
  std::string script, throughput_data, latency_data;
};
ChartFiles MakeChart(const std::vector<RunResult>& runs, const std::string& png_path,
                     const std::string& title);

// Writes the files and runs gnuplot. kFailedPrecondition when gnuplot is not installed.
absl::Status DrawChart(const std::vector<RunResult>& runs, const std::string& png_path,
                       const std::string& title);

}  // namespace txbench
