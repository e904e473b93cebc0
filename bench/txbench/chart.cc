#include "bench/txbench/chart.h"

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "bench/txbench/report.h"

namespace txbench {
namespace {

std::string Quote(const std::string& s) {
  return absl::StrCat("\"", absl::StrReplaceAll(s, {{"\"", "'"}, {"\\", "/"}}), "\"");
}

std::string GnuplotString(const std::string& s) {
  return absl::StrCat("'", absl::StrReplaceAll(s, {{"'", "''"}}), "'");
}

// The fsync floors: one file, or several synced at once (RunSpec::threads files); and the
// O_DSYNC write floor (--replicas).
std::string FloorLabel(const RunResult& r) {
  if (r.spec.workload == Workload::kDsync) {
    return r.spec.threads == 1 ? "O_DSYNC write floor"
                               : absl::StrFormat("O_DSYNC write floor, %d at once", r.spec.threads);
  }
  return r.spec.threads == 1 ? "fsync floor"
                             : absl::StrFormat("fsync floor, %d files", r.spec.threads);
}

std::string ShellQuote(const std::string& s) {
  return absl::StrCat("'", absl::StrReplaceAll(s, {{"'", "'\\''"}}), "'");
}

std::string DurabilitySuffix(const RunResult& r) {
  return r.durability == DurabilityMode::kSync || IsFloor(r.spec.workload)
             ? ""
             : absl::StrCat(" ", DurabilityName(r.durability));
}

}  // namespace

ChartFiles MakeChart(const std::vector<RunResult>& runs, const std::string& png_path,
                     const std::string& title) {
  ChartFiles files;
  // Throughput: one row per (workload, threads, k) in order of first appearance, one column
  // per engine (the fsync floor included: syncs/s).
  std::vector<EngineKind> engines;
  std::vector<std::string> groups;
  std::map<std::pair<std::string, EngineKind>, double> tput;
  for (const RunResult& r : runs) {
    if (!r.status.ok()) continue;
    // Runs at another durability than sync (--make-bench's no-sync row), with their own shard
    // count or on shardtx's shared log get groups of their own, so that they never hide the
    // default runs of the same engine.
    const std::string g =
        IsFloor(r.spec.workload)
            ? FloorLabel(r)
            : absl::StrFormat("%s %dt%s%s%s", WorkloadName(r.spec.workload), r.spec.threads,
                              r.spec.workload == Workload::kCross
                                  ? absl::StrFormat(" k=%d", r.spec.shards_per_txn)
                                  : "",
                              DurabilitySuffix(r), VariantSuffix(r));
    if (std::find(groups.begin(), groups.end(), g) == groups.end()) groups.push_back(g);
    if (std::find(engines.begin(), engines.end(), r.spec.engine) == engines.end()) {
      engines.push_back(r.spec.engine);
    }
    tput[{g, r.spec.engine}] = r.txn_per_s;
  }
  files.throughput_data = "group";
  for (EngineKind e : engines) files.throughput_data += absl::StrCat(" ", EngineName(e));
  files.throughput_data += "\n";
  for (const std::string& g : groups) {
    files.throughput_data += Quote(g);
    for (EngineKind e : engines) {
      auto it = tput.find({g, e});
      files.throughput_data +=
          it == tput.end() ? " -" : absl::StrFormat(" %.1f", std::max(it->second, 1.0));
    }
    files.throughput_data += "\n";
  }
  // Latency: one row per run.
  files.latency_data = "run p50 p95 p99 p99.9\n";
  for (const RunResult& r : runs) {
    if (!r.status.ok()) continue;
    const std::string label =
        IsFloor(r.spec.workload)
            ? FloorLabel(r)
            : absl::StrFormat("%s %s %dt%s%s", RowName(r), WorkloadName(r.spec.workload),
                              r.spec.threads,
                              r.spec.inflight > 0 ? absl::StrFormat(" x%d", r.spec.inflight) : "",
                              DurabilitySuffix(r));
    files.latency_data += absl::StrFormat("%s %.2f %.2f %.2f %.2f\n", Quote(label),
                                          std::max(r.p50_us, 0.01), std::max(r.p95_us, 0.01),
                                          std::max(r.p99_us, 0.01), std::max(r.p999_us, 0.01));
  }
  const std::string tput_path = png_path + ".tput.dat", lat_path = png_path + ".lat.dat";
  std::string s;
  s += "# txbench chart; redraw with: gnuplot " + png_path + ".gp\n";
  s += "set terminal pngcairo size 1400,1100 noenhanced font ',10'\n";
  s += "set output " + GnuplotString(png_path) + "\n";
  s += "set datafile missing '-'\n";
  s += "set style data histograms\n";
  s += "set style histogram clustered gap 1\n";
  s += "set style fill solid 0.85 border -1\n";
  s += "set boxwidth 0.9\n";
  s += "set logscale y\n";
  s += "set grid ytics mytics\n";
  s += "set key outside right top\n";
  s += "set xtics nomirror rotate by -20\n";
  s += "set multiplot layout 2,1 title " + GnuplotString(title) + "\n";
  s += "set title 'Throughput: committed transactions per second (log scale; fsync floor: "
       "syncs/s)'\n";
  s += "set ylabel 'txn/s'\n";
  double top = 10;
  for (const auto& [key, v] : tput) top = std::max(top, v);
  // Room above the tallest bar for its label.
  s += absl::StrFormat("set yrange [1:%g]\n", std::pow(10.0, std::ceil(std::log10(top * 4))));
  if (engines.empty()) {
    s += "set label 1 'no successful runs' at graph 0.5, 0.5 center\n";
    s += "plot 1 notitle\n";
  } else {
    s += "plot " + GnuplotString(tput_path) + " using 2:xtic(1) title columnheader(2)";
    for (size_t i = 1; i < engines.size(); ++i) {
      s += absl::StrFormat(", '' using %d title columnheader(%d)", i + 2, i + 2);
    }
    // The value over each bar: bar i of n in a cluster is centred at
    // row + (i - (n - 1) / 2) / (n + 1) (clustered histograms, gap 1).
    const double n = static_cast<double>(engines.size());
    for (size_t i = 0; i < engines.size(); ++i) {
      s += absl::StrFormat(
          ", '' using ($0 - 1 + (%d - (%g - 1) / 2.0) / (%g + 1)):%d:(sprintf('%%.0f', $%d)) "
          "with labels rotate by 90 left offset 0,0.3 font ',8' notitle",
          i, n, n, i + 2, i + 2);
    }
    s += "\n";
  }
  s += "set title 'Latency percentiles of committed transactions, microseconds (log scale)'\n";
  s += "set ylabel 'us'\n";
  s += "set yrange [*:*]\n";
  if (engines.empty()) {
    s += "plot 1 notitle\n";
  } else {
    s += "plot " + GnuplotString(lat_path) +
         " using 2:xtic(1) title columnheader(2), '' using 3 title columnheader(3), "
         "'' using 4 title columnheader(4), '' using 5 title columnheader(5)\n";
  }
  s += "unset multiplot\n";
  files.script = s;
  return files;
}

absl::Status DrawChart(const std::vector<RunResult>& runs, const std::string& png_path,
                       const std::string& title) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    return absl::FailedPreconditionError(
        "gnuplot not found: install gnuplot-nox (make bench does) to draw --chart");
  }
  ChartFiles files = MakeChart(runs, png_path, title);
  const std::string script_path = png_path + ".gp";
  for (auto [path, text] : {std::pair{script_path, &files.script},
                            std::pair{png_path + ".tput.dat", &files.throughput_data},
                            std::pair{png_path + ".lat.dat", &files.latency_data}}) {
    if (absl::Status s = WriteFile(path, *text); !s.ok()) return s;
  }
  const std::string cmd = absl::StrCat("gnuplot ", ShellQuote(script_path));
  const int rc = std::system(cmd.c_str());
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("`", cmd, "` failed (status ", rc, ")"));
  }
  return absl::OkStatus();
}

}  // namespace txbench
