// wal_bench's console reporter: Google Benchmark's console output, then a closing check of
// the group-commit targets (design brief §5) from the runs it saw (medians when repeated):
// 64 threads vs 1 thread of durable 128 B appends (>= 20x), and 1-thread durable latency vs
// the raw pwrite + fdatasync of 128 B (<= 1.3x).
#pragma once

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "benchmark/benchmark.h"

namespace shardtx::wal {

// The console reporter plus a closing check of the group-commit targets (design brief §5).
class TargetReporter : public benchmark::ConsoleReporter {
 public:
  explicit TargetReporter(bool color)
      : ConsoleReporter(color ? OutputOptions(OO_Tabular | OO_Color) : OO_Tabular) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.error_occurred) continue;
      Sample s;
      s.time_us = r.GetAdjustedRealTime() * (r.time_unit == benchmark::kNanosecond    ? 1e-3
                                             : r.time_unit == benchmark::kMicrosecond ? 1.0
                                             : r.time_unit == benchmark::kMillisecond ? 1e3
                                                                                      : 1e6);
      auto it = r.counters.find("items_per_second");
      s.rate = it == r.counters.end() ? 0 : it->second.value;
      it = r.counters.find("other_cores");
      s.other_cores = it == r.counters.end() ? 0 : it->second.value;
      const std::string name = r.run_name.str();
      if (r.run_type == Run::RT_Aggregate) {
        if (r.aggregate_name == "median") medians_[name] = s;
      } else {
        samples_[name].push_back(s);
      }
    }
  }

  void Finalize() override {
    ConsoleReporter::Finalize();
    const Sample* one = Find("WalAppend/sync/bytes:128/real_time/threads:1");
    const Sample* many = Find("WalAppend/sync/bytes:128/real_time/threads:64");
    const Sample* raw = Find("RawPwriteFdatasync/bytes:128/prealloc:0/real_time");
    const Sample* raw_zeroed = Find("RawPwriteFdatasync/bytes:128/prealloc:1/real_time");
    const Sample* bare = Find("BareGroupCommit/bytes:128/real_time/threads:64");
    if (one == nullptr || (many == nullptr && raw == nullptr)) return;
    std::printf("\nGroup-commit targets (%s):\n",
                medians_.empty() ? "medians of the runs above" : "median aggregates");
    if (many != nullptr) {
      const double ratio = many->rate / one->rate;
      std::printf(
          "  (a) durable 128 B, 64 threads / 1 thread: %.0f / %.0f records/s = %.1fx "
          "(target >= 20x): %s\n",
          many->rate, one->rate, ratio, ratio >= 20 ? "met" : "MISSED");
      if (bare != nullptr) {
        std::printf(
            "      yardstick, a bare group commit at 64 threads: %.0f records/s = %.1fx the WAL's "
            "1 thread; the WAL at 64 threads is %.2fx of it\n",
            bare->rate, bare->rate / one->rate, many->rate / bare->rate);
      }
    }
    if (raw != nullptr) {
      const double ratio = one->time_us / raw->time_us;
      std::printf(
          "  (b) durable 128 B, 1 thread: %.1f us vs raw pwrite+fdatasync %.1f us = "
          "%.2fx (target <= 1.3x): %s\n",
          one->time_us, raw->time_us, ratio, ratio <= 1.3 ? "met" : "MISSED");
    }
    if (raw_zeroed != nullptr) {
      std::printf("      raw floor on a zero-filled file: %.1f us (1-thread durable is %.2fx)\n",
                  raw_zeroed->time_us, one->time_us / raw_zeroed->time_us);
    }
    double busy = 0;
    for (const Sample* s : {one, many, raw, raw_zeroed, bare}) {
      if (s != nullptr) busy = std::max(busy, s->other_cores);
    }
    if (busy > 0.3) {
      std::printf(
          "  WARNING: other processes kept %.1f cores busy during these runs; fsync and "
          "wake-up latencies then measure the neighbours, not the disk.\n",
          busy);
    }
    std::fflush(stdout);
  }

 private:
  struct Sample {
    double time_us = 0;      // wall time per record
    double rate = 0;         // records/s
    double other_cores = 0;  // CPU used by other processes meanwhile
  };
  const Sample* Find(const std::string& name) {
    if (auto it = medians_.find(name); it != medians_.end()) return &it->second;
    auto it = samples_.find(name);
    if (it == samples_.end() || it->second.empty()) return nullptr;
    std::vector<Sample>& v = it->second;
    auto median = [&](double Sample::*field) {
      std::vector<double> xs;
      for (const Sample& s : v) xs.push_back(s.*field);
      std::sort(xs.begin(), xs.end());
      return xs.size() % 2 ? xs[xs.size() / 2] : (xs[xs.size() / 2 - 1] + xs[xs.size() / 2]) / 2;
    };
    computed_[name] =
        Sample{median(&Sample::time_us), median(&Sample::rate), median(&Sample::other_cores)};
    return &computed_[name];
  }
  std::map<std::string, Sample> medians_;
  std::map<std::string, std::vector<Sample>> samples_;
  std::map<std::string, Sample> computed_;
};

}  // namespace shardtx::wal
