// engine_bench: the figures issue 3 asks of one shard, measured in one run on this machine:
// durable and no-sync single-key commits/s at 1 and 64 threads, p99 commit latency with and
// without a checkpoint running, and recovery time for ~100 MB of WAL. Also range-scan speed
// (a transaction's iterator over the overlay and over LMDB) next to a plain LMDB cursor over
// the same keys and values, in the same run.
//
//   build/bench/engine_bench [--dir=PATH] [--seconds=3] [--ratio_runs=3] [--recovery_mb=100]
//   build/bench/engine_bench --only=scan   (the scan comparison alone; also: checkpoint,
//                                           recovery, reopen, syncN, noneN)
#include <lmdb.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "shardtx/database.h"
#include "util/histogram.h"

ABSL_FLAG(std::string, dir, "", "directory on the disk to measure (default: under the build dir)");
ABSL_FLAG(double, seconds, 3, "seconds per throughput phase");
ABSL_FLAG(int, recovery_mb, 100, "MB of WAL to recover");
ABSL_FLAG(int, value_size, 100, "value bytes");
ABSL_FLAG(int, checkpoint_mb, 64, "overlay MB written by the one large checkpoint");
ABSL_FLAG(double, checkpoint_pace, shardtx::Options{}.checkpoint_pace,
          "Options::checkpoint_pace (pause between a checkpoint's LMDB transactions)");
ABSL_FLAG(int, ratio_runs, 3, "alternating durable/no-sync 64-thread runs for the ratio");
ABSL_FLAG(int, scan_keys, 200000, "keys in the range-scan comparison");
ABSL_FLAG(int, reopens, 10, "Opens timed per database in the reopen phase");
ABSL_FLAG(std::string, only, "",
          "run one phase and stop (for profiling): scan, checkpoint, recovery, reopen, or syncN or "
          "noneN (N threads), e.g. sync64");

namespace shardtx {
namespace {

using Clock = std::chrono::steady_clock;

struct Result {
  double commits_per_s = 0;
  uint64_t p50 = 0, p99 = 0, p999 = 0, max = 0;
  double records_per_fsync = 0;
  double cpu_us_per_commit = 0;       // this process's CPU time (all threads) per commit
  double switches_per_commit = 0;     // its voluntary + involuntary context switches
};

struct Usage {
  double cpu_us = 0;
  double switches = 0;
};

Usage ProcessUsage() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  Usage u;
  u.cpu_us = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + ru.ru_utime.tv_usec +
             ru.ru_stime.tv_usec;
  u.switches = static_cast<double>(ru.ru_nvcsw + ru.ru_nivcsw);
  return u;
}

std::string Dir(const std::string& name) {
  std::string base = absl::GetFlag(FLAGS_dir);
  if (base.empty()) base = SHARDTX_BENCH_DEFAULT_DIR;
  std::string d = base + "/" + name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(base);
  return d;
}

Options BaseOptions(const std::string& dir) {
  Options o;
  o.path = dir;
  o.checkpoint_interval = absl::ZeroDuration();
  o.checkpoint_wal_bytes = 256ull << 20;
  o.checkpoint_overlay_bytes = 128ull << 20;
  o.overlay_limit_bytes = 512ull << 20;
  o.checkpoint_pace = absl::GetFlag(FLAGS_checkpoint_pace);
  return o;
}

Result Run(Database* db, int threads, Durability d, double seconds, bool checkpointing) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> commits{0};
  Histogram lat;
  const std::string value(absl::GetFlag(FLAGS_value_size), 'v');
  std::vector<std::thread> ts;
  const uint64_t fsyncs_before = db->GetStats().fsyncs;
  const Usage usage_before = ProcessUsage();
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      TxnOptions o;
      o.durability = d;
      while (!stop.load(std::memory_order_relaxed)) {
        const auto start = Clock::now();
        auto txn = db->Begin(o);
        txn->Put(absl::StrCat("key", rng() % 100000), value).IgnoreError();
        if (txn->Commit().ok()) {
          commits.fetch_add(1, std::memory_order_relaxed);
          lat.Add(static_cast<uint64_t>(
              std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count()));
        }
      }
    });
  }
  std::atomic<int> checkpoints{0};
  std::thread ckpt;
  if (checkpointing) {
    ckpt = std::thread([&] {
      while (!stop.load()) {
        if (db->Checkpoint().ok()) checkpoints++;
      }
    });
  }
  const auto start = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));  // the measured window
  stop = true;
  for (auto& t : ts) t.join();
  if (ckpt.joinable()) ckpt.join();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  Result r;
  r.commits_per_s = commits.load() / secs;
  r.p50 = lat.Percentile(50);
  r.p99 = lat.Percentile(99);
  r.p999 = lat.Percentile(99.9);
  r.max = lat.Max();
  const uint64_t fsyncs = db->GetStats().fsyncs - fsyncs_before;
  r.records_per_fsync = fsyncs == 0 ? 0 : static_cast<double>(commits.load()) / fsyncs;
  const Usage usage_after = ProcessUsage();
  const double n = std::max<double>(1, static_cast<double>(commits.load()));
  r.cpu_us_per_commit = (usage_after.cpu_us - usage_before.cpu_us) / n;
  r.switches_per_commit = (usage_after.switches - usage_before.switches) / n;
  if (checkpointing) std::printf("  (%d checkpoints during the run)\n", checkpoints.load());
  return r;
}

double MedianRate(std::vector<Result> rs) {
  std::sort(rs.begin(), rs.end(),
            [](const Result& a, const Result& b) { return a.commits_per_s < b.commits_per_s; });
  const size_t n = rs.size();
  return n % 2 == 1 ? rs[n / 2].commits_per_s
                    : (rs[n / 2 - 1].commits_per_s + rs[n / 2].commits_per_s) / 2;
}

void Print(const char* what, const Result& r) {
  std::printf("%-44s %10.0f commits/s  p50 %6llu us  p99 %6llu us  p99.9 %6llu us  max %7llu us"
              "  %.1f commits/fsync  %.1f us CPU/commit  %.2f switches/commit\n",
              what, r.commits_per_s, static_cast<unsigned long long>(r.p50),
              static_cast<unsigned long long>(r.p99), static_cast<unsigned long long>(r.p999),
              static_cast<unsigned long long>(r.max), r.records_per_fsync, r.cpu_us_per_commit,
              r.switches_per_commit);
  std::fflush(stdout);
}

double P99(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, v.size() * 99 / 100)];
}

// One checkpoint of a large overlay while 16 threads commit durably: the p99 of the commits
// that started while it ran against the p99 of those that started before or after it, in the
// same run (so the disk's drift cannot pass for the checkpoint's cost).
bool OneLargeCheckpoint() {
  Options o = BaseOptions(Dir("large_checkpoint"));
  o.checkpoint_wal_bytes = 0;  // only the explicit checkpoint below
  o.checkpoint_overlay_bytes = 0;
  const uint64_t target = static_cast<uint64_t>(absl::GetFlag(FLAGS_checkpoint_mb)) << 20;
  o.overlay_limit_bytes = 4 * target + (256ull << 20);
  auto db = Database::Open(o);
  if (!db.ok()) {
    std::fprintf(stderr, "%s\n", db.status().ToString().c_str());
    return false;
  }
  {
    const std::string value(1000, 'c');
    TxnOptions none;
    none.durability = Durability::kNone;
    uint64_t written = 0;
    for (int i = 0; written < target; ++i) {
      auto t = (*db)->Begin(none);
      for (int k = 0; k < 100; ++k) t->Put(absl::StrCat("fill", i, "/", k), value).IgnoreError();
      if (!t->Commit().ok()) return false;
      written += 100 * (value.size() + 16);
    }
  }
  const std::string value(absl::GetFlag(FLAGS_value_size), 'v');
  std::atomic<bool> stop{false};
  std::vector<std::vector<std::pair<Clock::time_point, double>>> samples(16);
  std::vector<std::thread> ts;
  for (int t = 0; t < 16; ++t) {
    ts.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      samples[t].reserve(1 << 16);
      while (!stop.load(std::memory_order_relaxed)) {
        const auto start = Clock::now();
        auto txn = (*db)->Begin(TxnOptions{});
        txn->Put(absl::StrCat("key", rng() % 100000), value).IgnoreError();
        if (txn->Commit().ok()) {
          samples[t].emplace_back(
              start, std::chrono::duration<double, std::micro>(Clock::now() - start).count());
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));  // the "before" window
  const auto ck_start = Clock::now();
  absl::Status ck = (*db)->Checkpoint();
  const auto ck_end = Clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(1));  // the "after" window
  stop = true;
  for (auto& t : ts) t.join();
  if (!ck.ok()) {
    std::fprintf(stderr, "checkpoint: %s\n", ck.ToString().c_str());
    return false;
  }
  std::vector<double> during, outside;
  for (const auto& thread : samples) {
    for (const auto& [start, us] : thread) {
      (start >= ck_start && start < ck_end ? during : outside).push_back(us);
    }
  }
  const double ms = std::chrono::duration<double, std::milli>(ck_end - ck_start).count();
  std::printf("one checkpoint of %.0f MB of overlay took %.0f ms; durable, 16 threads: p99 %.0f us "
              "during it (%zu commits) vs %.0f us outside it (%zu commits): %.2fx\n",
              target / 1048576.0, ms, P99(during), during.size(), P99(outside), outside.size(),
              P99(outside) == 0 ? 0.0 : P99(during) / P99(outside));
  return true;
}

// Full forward scans of `keys` keys in one transaction; entries per second (median of 5).
double ScanRate(Database* db, int keys) {
  std::vector<double> rates;
  for (int rep = 0; rep < 5; ++rep) {
    auto t = db->Begin();
    auto it = t->NewIterator();
    const auto start = Clock::now();
    int n = 0;
    size_t bytes = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next(), ++n) bytes += it->value().size();
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    if (!it->status().ok() || n != keys || bytes == 0) {
      std::fprintf(stderr, "scan saw %d of %d keys: %s\n", n, keys,
                   it->status().ToString().c_str());
      return 0;
    }
    rates.push_back(n / s);
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

// The same keys and values in a plain LMDB environment, scanned with one cursor (median of 5).
double LmdbScanRate(const std::string& dir, int keys, const std::string& value) {
  std::filesystem::create_directories(dir);
  MDB_env* env = nullptr;
  MDB_dbi dbi;
  MDB_txn* txn = nullptr;
  double rate = 0;
  if (mdb_env_create(&env) != 0) return 0;
  mdb_env_set_mapsize(env, 4ull << 30);
  // MDB_NOSYNC only to load this comparison store quickly: its scan speed is all we measure.
  if (mdb_env_open(env, dir.c_str(), MDB_NOSYNC | MDB_NOTLS, 0644) == 0 &&
      mdb_txn_begin(env, nullptr, 0, &txn) == 0 && mdb_dbi_open(txn, nullptr, 0, &dbi) == 0) {
    for (int i = 0; i < keys; ++i) {
      std::string k = absl::StrCat("s", 1000000 + i);
      MDB_val mk{k.size(), k.data()}, mv{value.size(), const_cast<char*>(value.data())};
      mdb_put(txn, dbi, &mk, &mv, MDB_APPEND);
    }
    mdb_txn_commit(txn);
    std::vector<double> rates;
    for (int rep = 0; rep < 5; ++rep) {
      mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn);
      MDB_cursor* c = nullptr;
      mdb_cursor_open(txn, dbi, &c);
      MDB_val k, v;
      int n = 0;
      size_t bytes = 0;
      const auto start = Clock::now();
      for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
           rc = mdb_cursor_get(c, &k, &v, MDB_NEXT), ++n) {
        bytes += v.mv_size;
      }
      const double s = std::chrono::duration<double>(Clock::now() - start).count();
      mdb_cursor_close(c);
      mdb_txn_abort(txn);
      if (n == keys && bytes > 0) rates.push_back(n / s);
    }
    std::sort(rates.begin(), rates.end());
    if (!rates.empty()) rate = rates[rates.size() / 2];
  }
  mdb_env_close(env);
  return rate;
}

// Range scans: shardtx's iterator with the keys in the overlay, then in LMDB after a
// checkpoint, against a plain LMDB cursor over the same data.
bool ScanComparison() {
  const int keys = absl::GetFlag(FLAGS_scan_keys);
  const std::string value(absl::GetFlag(FLAGS_value_size), 'v');
  auto db = Database::Open(BaseOptions(Dir("scan")));
  if (!db.ok()) return false;
  TxnOptions none;
  none.durability = Durability::kNone;
  for (int i = 0; i < keys;) {
    auto t = (*db)->Begin(none);
    for (int k = 0; k < 1000 && i < keys; ++k, ++i) {
      if (!t->Put(absl::StrCat("s", 1000000 + i), value).ok()) return false;
    }
    if (!t->Commit().ok()) return false;
  }
  const double overlay = ScanRate(db->get(), keys);
  if (!(*db)->Checkpoint().ok()) return false;
  const double lmdb_layer = ScanRate(db->get(), keys);
  const double plain = LmdbScanRate(Dir("scan-lmdb"), keys, value);
  std::printf(
      "range scan, %d keys, %zu-byte values (entries/s, medians of 5): shardtx overlay "
      "%.0f, shardtx after checkpoint (LMDB) %.0f, plain LMDB cursor %.0f; "
      "shardtx/LMDB %.3f (overlay), %.3f (checkpointed)\n",
      keys, value.size(), overlay, lmdb_layer, plain, plain == 0 ? 0 : overlay / plain,
      plain == 0 ? 0 : lmdb_layer / plain);
  return overlay > 0 && lmdb_layer > 0 && plain > 0;
}

// Writes about --recovery_mb of WAL with no checkpoint, then times the Open that redoes it.
bool RecoveryTime() {
  const std::string dir = Dir("recovery");
  Options o = BaseOptions(dir);
  o.checkpoint_wal_bytes = 0;
  o.checkpoint_overlay_bytes = 0;
  o.overlay_limit_bytes = 0;
  o.checkpoint_on_close = false;
  o.wal_segment_size = 64ull << 20;
  const uint64_t target = static_cast<uint64_t>(absl::GetFlag(FLAGS_recovery_mb)) << 20;
  {
    auto db = Database::Open(o);
    if (!db.ok()) return false;
    const std::string value(1000, 'r');
    uint64_t written = 0;
    int i = 0;
    TxnOptions none;
    none.durability = Durability::kNone;
    while (written < target) {
      auto t = (*db)->Begin(none);
      for (int k = 0; k < 10; ++k) t->Put(absl::StrCat("rk", i++ % 200000), value).IgnoreError();
      if (!t->Commit().ok()) return false;
      written += 10 * (value.size() + 8);
    }
  }
  const auto start = Clock::now();
  auto db = Database::Open(o);
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  if (!db.ok()) return false;
  Stats st = (*db)->GetStats();
  std::printf("recovery: %.1f MB of WAL, %llu records, Open took %.0f ms (redo %.0f ms): "
              "%.0f ms per 100 MB\n",
              st.recovery_bytes / 1048576.0, static_cast<unsigned long long>(st.recovery_records),
              ms, st.recovery_ms, ms * 100.0 / (st.recovery_bytes / 1048576.0));
  return true;
}

// Reopening a 4-shard database that holds next to nothing, as a host restarting (or a crash
// test) does: the median of --reopens timed Opens, of an empty database and of a freshly
// checkpointed one (16 commits, Checkpoint, Close). Each Close in between is clean. Issue 14
// (item 5) asks for at most 50 ms: Open must cost in proportion to the live log, not to the
// preallocated WAL segments (64 MiB each).
bool ReopenTime() {
  const int n = std::max(1, absl::GetFlag(FLAGS_reopens));
  for (const bool checkpointed : {false, true}) {
    Options o;
    o.path = Dir(checkpointed ? "reopen_checkpointed" : "reopen_empty");
    o.num_shards = 4;
    o.checkpoint_interval = absl::ZeroDuration();
    {
      auto db = Database::Open(o);
      if (!db.ok()) {
        std::fprintf(stderr, "%s\n", db.status().ToString().c_str());
        return false;
      }
      if (checkpointed) {
        for (int i = 0; i < 16; ++i) {
          auto t = (*db)->Begin();
          if (!t->Put(absl::StrCat("reopen", i), "v").ok() || !t->Commit().ok()) return false;
        }
        if (!(*db)->Checkpoint().ok()) return false;
      }
      if (!(*db)->Close().ok()) return false;
    }
    std::vector<double> open_ms, close_ms;
    for (int r = 0; r < n; ++r) {
      const auto start = Clock::now();
      auto db = Database::Open(o);
      const auto opened = Clock::now();
      if (!db.ok()) {
        std::fprintf(stderr, "%s\n", db.status().ToString().c_str());
        return false;
      }
      if (!(*db)->Close().ok()) return false;
      open_ms.push_back(std::chrono::duration<double, std::milli>(opened - start).count());
      close_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - opened).count());
    }
    std::sort(open_ms.begin(), open_ms.end());
    std::sort(close_ms.begin(), close_ms.end());
    auto median = [](const std::vector<double>& v) {
      return v.size() % 2 == 1 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
    };
    std::printf(
        "reopen, 4 shards, %s: Open median %.1f ms (min %.1f, max %.1f), Close median "
        "%.1f ms, over %d reopens\n",
        checkpointed ? "freshly checkpointed" : "empty", median(open_ms), open_ms.front(),
        open_ms.back(), median(close_ms), n);
  }
  return true;
}

int Main() {
  const double secs = absl::GetFlag(FLAGS_seconds);
  std::printf("engine_bench: one shard, single-key commits, %d-byte values, 100k keys\n",
              absl::GetFlag(FLAGS_value_size));
  {
    auto db = Database::Open(BaseOptions(Dir("throughput")));
    if (!db.ok()) {
      std::fprintf(stderr, "%s\n", db.status().ToString().c_str());
      return 1;
    }
    if (const std::string only = absl::GetFlag(FLAGS_only); !only.empty()) {
      if (only == "scan") return ScanComparison() ? 0 : 1;
      if (only == "checkpoint") return OneLargeCheckpoint() ? 0 : 1;
      if (only == "recovery") return RecoveryTime() ? 0 : 1;
      if (only == "reopen") return ReopenTime() ? 0 : 1;
      int threads = 0;
      const bool sync = absl::StartsWith(only, "sync");
      if ((!sync && !absl::StartsWith(only, "none")) ||
          !absl::SimpleAtoi(only.substr(4), &threads) || threads < 1) {
        std::fprintf(stderr,
                     "--only must be scan, checkpoint, recovery, reopen, syncN or noneN (N "
                     "threads), not '%s'\n",
                     only.c_str());
        return 2;
      }
      Print(absl::StrCat(sync ? "durable (sync), " : "no sync, ", threads, " threads").c_str(),
            Run(db->get(), threads, sync ? Durability::kSync : Durability::kNone, secs, false));
      std::printf("%s", (*db)->GetStats().ToString().c_str());
      return 0;
    }
    Result s1 = Run(db->get(), 1, Durability::kSync, secs, false);
    Print("durable (sync), 1 thread", s1);
    Result n1 = Run(db->get(), 1, Durability::kNone, secs, false);
    Print("no sync, 1 thread", n1);
    // The 64-thread ratio alternates the two modes, so that a neighbour's burst on this shared
    // machine hits both alike; medians of the repetitions.
    const int reps = std::max(1, absl::GetFlag(FLAGS_ratio_runs));
    std::vector<Result> s64, n64;
    for (int r = 0; r < reps; ++r) {
      s64.push_back(Run(db->get(), 64, Durability::kSync, secs, false));
      Print("durable (sync), 64 threads", s64.back());
      n64.push_back(Run(db->get(), 64, Durability::kNone, secs, false));
      Print("no sync, 64 threads", n64.back());
    }
    const double s64_median = MedianRate(s64), n64_median = MedianRate(n64);
    std::printf("durable/no-sync at 64 threads: %.0f / %.0f commits/s (medians of %d) = %.2f\n",
                s64_median, n64_median, reps, s64_median / n64_median);
    Result quiet = Run(db->get(), 16, Durability::kSync, secs, false);
    Print("durable, 16 threads, no checkpoint", quiet);
    Result busy = Run(db->get(), 16, Durability::kSync, secs, true);
    Print("durable, 16 threads, checkpoints running", busy);
    std::printf("p99 with/without checkpoint: %.2f (checkpoints back to back: a storm)\n",
                quiet.p99 == 0 ? 0.0 : static_cast<double>(busy.p99) / quiet.p99);
  }
  if (!OneLargeCheckpoint()) return 1;
  if (!ScanComparison()) return 1;
  if (!ReopenTime()) return 1;
  return RecoveryTime() ? 0 : 1;
}

}  // namespace
}  // namespace shardtx

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return shardtx::Main();
}
