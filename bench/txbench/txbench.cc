#include "bench/txbench/txbench.h"

#include <unistd.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/txbench/chart.h"
#include "bench/txbench/machine.h"
#include "bench/txbench/report.h"

namespace txbench {
namespace {

// Progress on stderr: on a terminal one line rewritten in place; otherwise only the lines
// that mark a step (transient updates would flood a log).
class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled), tty_(isatty(STDERR_FILENO) != 0) {}
  void Show(const std::string& line, bool transient) {
    if (!enabled_) return;
    if (tty_) {
      std::fprintf(stderr, "\r\033[K%s", line.c_str());
      if (!transient) std::fprintf(stderr, "\n");
    } else if (!transient) {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
    std::fflush(stderr);
  }
  void Clear() {
    if (enabled_ && tty_) std::fprintf(stderr, "\r\033[K");
  }

 private:
  const bool enabled_, tty_;
};

bool SameGroup(const RunSpec& a, const RunSpec& b) {
  return a.workload == b.workload && a.threads == b.threads && a.shards_per_txn == b.shards_per_txn;
}

}  // namespace

Outcome Run(const Config& config, FILE* out) {
  Outcome outcome;
  std::error_code ec;
  std::filesystem::create_directories(config.dir, ec);
  const MachineInfo machine = DescribeMachine(config.dir);
  std::fprintf(out, "%s\n", HeaderText(config, machine).c_str());
  std::fflush(out);

  ProgressLine progress(config.progress);
  const std::vector<RunSpec> plan = PlanRuns(config);
  std::vector<RunResult> group;
  std::string described;  // engine descriptions already printed
  for (size_t i = 0; i < plan.size(); ++i) {
    const std::string prefix = absl::StrFormat("[%d/%d] ", i + 1, plan.size());
    RunResult r = RunOne(config, plan[i], [&](const std::string& line, bool transient) {
      progress.Show(prefix + line, transient);
    });
    progress.Clear();
    if (!r.engine_description.empty() &&
        described.find(r.engine_description) == std::string::npos) {
      described += r.engine_description;
      std::fprintf(out, "  engine %s\n", r.engine_description.c_str());
    }
    if (!r.status.ok()) {
      outcome.exit_code = 1;
      std::fprintf(stderr, "txbench: %s %s %dt FAILED: %s\n", EngineName(r.spec.engine),
                   WorkloadName(r.spec.workload), r.spec.threads, r.status.ToString().c_str());
    }
    if (!r.notes.empty()) {
      std::fprintf(out, "  %s %s %dt: %s\n", EngineName(r.spec.engine),
                   WorkloadName(r.spec.workload), r.spec.threads, r.notes.c_str());
    }
    if (r.bank_total.has_value()) {
      std::fprintf(out, "  bank check (%s): total %lld, as preloaded\n", EngineName(r.spec.engine),
                   static_cast<long long>(*r.bank_total));
    }
    group.push_back(r);
    outcome.runs.push_back(std::move(r));
    const bool group_done = i + 1 == plan.size() || !SameGroup(plan[i + 1], plan[i]);
    if (group_done) {
      std::fprintf(out, "\n%s\n", TableText(group).c_str());
      std::fflush(out);
      group.clear();
    }
  }

  std::fprintf(out, "== all runs ==\n%s\n== issue 5 targets ==\n%s",
               TableText(outcome.runs).c_str(), TargetsText(outcome.runs).c_str());
  std::fflush(out);

  if (!config.json_path.empty()) {
    absl::Status s = WriteFile(config.json_path, ToJson(config, machine, outcome.runs));
    if (!s.ok()) {
      std::fprintf(stderr, "txbench: %s\n", s.ToString().c_str());
      outcome.exit_code = 1;
    } else {
      std::fprintf(out, "wrote %s\n", config.json_path.c_str());
    }
  }
  if (!config.csv_path.empty()) {
    absl::Status s = WriteFile(config.csv_path, ToCsv(outcome.runs));
    if (!s.ok()) {
      std::fprintf(stderr, "txbench: %s\n", s.ToString().c_str());
      outcome.exit_code = 1;
    } else {
      std::fprintf(out, "wrote %s\n", config.csv_path.c_str());
    }
  }
  if (!config.chart_path.empty()) {
    const std::string title =
        absl::StrFormat("txbench %s: %s, %d keys, %d B values, durability %s, %d shards (%s)",
                        machine.date_utc, machine.host, config.keys, config.value_size,
                        DurabilityName(config.durability), config.shards, machine.filesystem);
    absl::Status s = DrawChart(outcome.runs, config.chart_path, title);
    if (!s.ok()) {
      std::fprintf(stderr, "txbench: chart: %s\n", s.ToString().c_str());
      outcome.exit_code = 1;
    } else {
      std::fprintf(out, "wrote %s\n", config.chart_path.c_str());
    }
  }
  if (outcome.exit_code != 0) {
    std::fprintf(out, "txbench: some runs or outputs FAILED (see above)\n");
  }
  std::fflush(out);
  return outcome;
}

}  // namespace txbench
