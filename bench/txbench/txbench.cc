#include "bench/txbench/txbench.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
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

std::string RunLabel(const Config& config, const RunSpec& spec) {
  RunResult r;
  r.spec = spec;
  if (spec.engine == EngineKind::kShardtxReplicated) r.replicas = config.replicas;
  r.shards = ShardsOf(config, spec);
  r.log_layout = LogLayoutOf(config, spec);
  return absl::StrFormat("%s %s %dt", RowName(r), WorkloadName(spec.workload), spec.threads);
}

// A failed window that never ran (its contender did not open, or its warm-up failed).
RunResult FailedRun(const Config& config, const RunSpec& spec, int rep, absl::Status status) {
  RunResult r;
  r.spec = spec;
  r.rep = rep;
  if (spec.engine == EngineKind::kShardtxReplicated) r.replicas = config.replicas;
  r.shards = ShardsOf(config, spec);
  r.log_layout = LogLayoutOf(config, spec);
  r.durability = config.durability;
  r.status = std::move(status);
  return r;
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
  auto show = [&](const std::string& prefix) {
    return [&progress, prefix](const std::string& line, bool transient) {
      progress.Show(prefix + line, transient);
    };
  };
  const std::vector<RunSpec> plan = PlanRuns(config);

  // Every engine opened and preloaded once, before any window.
  std::map<ContenderKey, int> threads;
  for (const RunSpec& spec : plan) {
    int& t = threads[KeyOfRun(config, spec)];
    t = std::max(t, spec.threads);
  }
  std::map<ContenderKey, std::unique_ptr<Contender>> contenders;
  std::map<ContenderKey, absl::Status> broken;  // why a contender is missing
  for (const RunSpec& spec : plan) {
    const ContenderKey key = KeyOfRun(config, spec);
    if (contenders.count(key) != 0 || broken.count(key) != 0) continue;
    auto c = Contender::Open(config, spec, threads[key], show("[open] "));
    progress.Clear();
    if (c.ok()) {
      contenders[key] = std::move(*c);
    } else {
      broken[key] = c.status();
    }
  }
  auto failed = [&](const RunSpec& spec, int rep, absl::Status s) {
    outcome.exit_code = 1;
    std::fprintf(stderr, "txbench: %s FAILED: %s\n", RunLabel(config, spec).c_str(),
                 s.ToString().c_str());
    outcome.runs.push_back(FailedRun(config, spec, rep, std::move(s)));
  };

  // Warm-up: a window of each run, not recorded.
  if (config.warmup_s > 0) {
    for (const RunSpec& spec : plan) {
      const ContenderKey key = KeyOfRun(config, spec);
      if (contenders.count(key) == 0) continue;
      RunResult w = contenders[key]->Measure(spec, config.warmup_s, config.seed + 1000003,
                                             show("[warm-up] "));
      progress.Clear();
      if (!w.status.ok()) {
        broken[key] = w.status;
        contenders.erase(key);
      }
    }
  }

  std::fprintf(out, "%s", TableText({}).c_str());
  std::string described;  // engine descriptions already printed
  for (int rep = 0; rep < config.reps; ++rep) {
    std::vector<RunSpec> order = plan;
    if (rep % 2 == 1) std::reverse(order.begin(), order.end());
    for (size_t i = 0; i < order.size(); ++i) {
      const RunSpec& spec = order[i];
      const ContenderKey key = KeyOfRun(config, spec);
      if (contenders.count(key) == 0) {
        failed(spec, rep, broken[key]);
        continue;
      }
      RunResult r = contenders[key]->Measure(
          spec, config.seconds, config.seed + static_cast<uint64_t>(rep) * 7919,
          show(absl::StrFormat("[rep %d/%d, %d/%d] ", rep + 1, config.reps, i + 1, order.size())));
      r.rep = rep;
      progress.Clear();
      if (!r.engine_description.empty() &&
          described.find(r.engine_description) == std::string::npos) {
        described += r.engine_description;
        std::fprintf(out, "  engine %s\n", r.engine_description.c_str());
      }
      if (!r.status.ok()) {
        outcome.exit_code = 1;
        std::fprintf(stderr, "txbench: %s FAILED: %s\n", RunLabel(config, r.spec).c_str(),
                     r.status.ToString().c_str());
      }
      if (r.bank_total.has_value()) {
        std::fprintf(out, "  bank check (%s): total %lld, as preloaded\n",
                     EngineName(r.spec.engine), static_cast<long long>(*r.bank_total));
      }
      std::vector<RunResult> one = {r};
      const std::string row = TableText(one);
      std::fprintf(out, "%s", row.substr(row.find('\n') + 1).c_str());
      std::fflush(out);
      outcome.runs.push_back(std::move(r));
    }
  }
  // --replicas: the catch-up phase, once, on the replicated cluster after its last window (it
  // fills the cluster with data no window should see).
  if (config.replicas > 0 && config.catchup_bytes > 0) {
    absl::StatusOr<CatchUpResult> c = absl::FailedPreconditionError(
        "catch-up: the replicated engine did not open or failed its warm-up");
    for (auto& [key, contender] : contenders) {
      if (key.engine == EngineKind::kShardtxReplicated) c = contender->CatchUp(show("[catch-up] "));
    }
    progress.Clear();
    if (c.ok()) {
      std::fprintf(out, "  catch-up: %s\n", CatchUpText(*c).c_str());
    } else {
      outcome.exit_code = 1;
      std::fprintf(out, "  catch-up FAILED: %s\n", c.status().ToString().c_str());
      std::fprintf(stderr, "txbench: catch-up FAILED: %s\n", c.status().ToString().c_str());
    }
    std::fflush(out);
    outcome.catch_up = std::move(c);
  }
  const absl::StatusOr<CatchUpResult>* catch_up =
      outcome.catch_up.has_value() ? &*outcome.catch_up : nullptr;
  for (auto& [key, c] : contenders) {
    absl::Status s = c->Close();
    if (!s.ok()) {
      outcome.exit_code = 1;
      std::fprintf(stderr, "txbench: close %s: %s\n", EngineName(key.engine), s.ToString().c_str());
    }
  }
  contenders.clear();
  std::map<EngineKind, std::string> notes;  // each engine's figures after its last window
  for (const RunResult& r : outcome.runs) {
    if (!r.notes.empty()) notes[r.spec.engine] = r.notes;
  }
  for (const auto& [engine, text] : notes) {
    std::fprintf(out, "  %s after its last window: %s\n", EngineName(engine), text.c_str());
  }
  std::fprintf(out, "\n== medians over %d repetition%s ==\n%s\n", config.reps,
               config.reps == 1 ? "" : "s", SummaryText(outcome.runs).c_str());
  if (config.replicas == 0) {  // --replicas' plan measures none of them
    std::fprintf(out, "== targets (issues 5 and 19) ==\n%s", TargetsText(outcome.runs).c_str());
  } else {
    std::fprintf(out, "== targets (issue %s: %d replicas on 127.0.0.1, one disk) ==\n%s",
                 config.workload == Workload::kReadonly ? "17 step 9, follower reads" : "16",
                 config.replicas, ReplicationTargetsText(outcome.runs, catch_up).c_str());
  }
  std::fflush(out);

  if (!config.json_path.empty()) {
    absl::Status s = WriteFile(config.json_path, ToJson(config, machine, outcome.runs, catch_up));
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
    std::vector<RunResult> medians;
    for (Summary& row : Summarize(outcome.runs)) medians.push_back(std::move(row.median));
    absl::Status s = DrawChart(medians, config.chart_path, title);
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
