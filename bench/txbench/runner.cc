#include "bench/txbench/runner.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/txbench/engine.h"
#include "bench/txbench/first_error.h"
#include "bench/txbench/keyspace.h"
#include "bench/txbench/machine.h"
#include "bench/txbench/workload.h"
#include "util/histogram.h"

namespace txbench {
namespace {

using Clock = std::chrono::steady_clock;

// One client thread's counters, on its own cache lines.
struct alignas(64) ClientStats {
  std::atomic<uint64_t> committed{0}, aborts{0}, ops{0}, cross{0};
  shardtx::Histogram latency_ns;
};

std::string RunName(const RunSpec& spec) {
  return absl::StrCat(EngineName(spec.engine), spec.reads == ReadPlacement::kNone ? "" : "@",
                      ReadPlacementName(spec.reads), " ", WorkloadName(spec.workload), " ",
                      spec.threads, "t");
}

void FillLatency(const shardtx::Histogram& h, RunResult* r) {
  r->p50_us = static_cast<double>(h.Percentile(50)) / 1000.0;
  r->p95_us = static_cast<double>(h.Percentile(95)) / 1000.0;
  r->p99_us = static_cast<double>(h.Percentile(99)) / 1000.0;
  r->p999_us = static_cast<double>(h.Percentile(99.9)) / 1000.0;
}

void FillRates(RunResult* r) {
  if (r->elapsed_s > 0) {
    r->txn_per_s = static_cast<double>(r->committed) / r->elapsed_s;
    r->ops_per_s = static_cast<double>(r->ops) / r->elapsed_s;
  }
  const uint64_t attempts = r->committed + r->aborts;
  r->abort_pct = attempts == 0 ? 0 : 100.0 * static_cast<double>(r->aborts) / attempts;
}

// Before retrying an aborted transaction: a randomised exponential backoff, 25-50 us after
// the first abort doubling up to 2.5-5 ms, as client libraries do. Retrying at once would only
// spin: the usual cause is a conflicting commit still waiting for its fsync, which the retry's
// snapshot cannot see yet, and the spinning would take CPU from the engines' log writers.
void Backoff(int retries, Rng& rng) {
  const uint64_t cap_us = std::min<uint64_t>(uint64_t{50} << std::min(retries - 1, 10), 5000);
  const uint64_t us = cap_us / 2 + rng.Uniform(cap_us / 2 + 1);
  std::this_thread::sleep_for(std::chrono::microseconds(us));
}

// Runs `attempt` (a transaction, or its submission) until it succeeds: true. An error other
// than kAborted fails the run (false, `stop` raised); an abort is counted, backed off and
// retried until the run ends (false).
template <typename Attempt>
bool RetryAborted(const Attempt& attempt, ClientStats& st, std::atomic<bool>& stop,
                  FirstError& error, Rng& rng) {
  for (int retries = 0;;) {
    absl::Status s = attempt();
    if (s.ok()) return true;
    if (!absl::IsAborted(s)) {
      error.Set(std::move(s));
      stop.store(true);
      return false;
    }
    st.aborts.fetch_add(1, std::memory_order_relaxed);
    if (stop.load(std::memory_order_relaxed)) return false;  // give up at the end of the run
    Backoff(++retries, rng);
  }
}

// The value size a workload writes (bank balances need at least 20 bytes).
uint32_t ValueSize(const Config& config, const RunSpec& spec) {
  return UsesBalances(spec) ? std::max<uint32_t>(config.value_size, 20) : config.value_size;
}

WorkloadParams ParamsFor(const Config& config, const RunSpec& spec) {
  WorkloadParams params;
  params.workload = spec.workload;
  params.shards_per_txn = spec.shards_per_txn;
  params.cross_pct = config.cross_pct;
  params.value_size = config.value_size;
  return params;
}

// A transaction of `ops` operations, begun at `t0`, committed.
void CountCommitted(ClientStats& st, Clock::time_point t0, uint64_t ops, bool cross) {
  st.latency_ns.Add(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count()));
  st.committed.fetch_add(1, std::memory_order_relaxed);
  st.ops.fetch_add(ops, std::memory_order_relaxed);
  if (cross) st.cross.fetch_add(1, std::memory_order_relaxed);
}

absl::Status ErrnoError(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// Each replica's figures over a window of `seconds`, from its counters at either end.
std::vector<ReplicaFigures> ReplicaWindow(const std::vector<ReplicaCounters>& before,
                                          const std::vector<ReplicaCounters>& after,
                                          double seconds) {
  std::vector<ReplicaFigures> out;
  for (size_t i = 0; i < before.size(); ++i) {
    const ReplicaCounters& a = before[i];
    const ReplicaCounters& b = after[i];
    auto delta = [](uint64_t x, uint64_t y) { return static_cast<double>(y >= x ? y - x : 0); };
    const double writes = delta(a.raft_log_writes, b.raft_log_writes);
    const double fsyncs = delta(a.wal_fsyncs, b.wal_fsyncs);
    ReplicaFigures f;
    f.node_id = b.node_id;
    f.raft_log_writes_per_s = writes / seconds;
    f.raft_entries_per_write =
        writes > 0 ? delta(a.raft_entries_stored, b.raft_entries_stored) / writes : 0;
    f.wal_fsyncs_per_s = fsyncs / seconds;
    f.wal_records_per_fsync = fsyncs > 0 ? delta(a.wal_records, b.wal_records) / fsyncs : 0;
    f.lmdb_syncs_per_s = delta(a.lmdb_syncs, b.lmdb_syncs) / seconds;
    f.reads_served = b.read_only_commits - std::min(a.read_only_commits, b.read_only_commits);
    f.reads_too_stale = b.follower_reads_too_stale -
                        std::min(a.follower_reads_too_stale, b.follower_reads_too_stale);
    out.push_back(f);
  }
  return out;
}

// One client thread of a window: runs transactions until `stop`, counting into its stats.
// `start` is passed once the thread is ready.
using ClientFn = std::function<void(int i, ClientStats& st, std::latch& start)>;

// One measured window once the engine is open and loaded: the clients for `seconds`, then
// the engine's deferred work, on one clock.
void DriveWindow(const RunSpec& spec, Engine& engine, double seconds, const ProgressFn& progress,
                 std::vector<std::unique_ptr<ClientStats>>& stats, std::atomic<bool>& stop,
                 FirstError& error, const ClientFn& client, RunResult* r);

void MeasureWindow(const Config& config, const RunSpec& spec, const KeySpace& keys, Engine& engine,
                   double seconds, uint64_t seed, const ProgressFn& progress, RunResult* r) {
  const WorkloadParams params = ParamsFor(config, spec);
  const uint32_t value_size = ValueSize(config, spec);

  std::vector<std::unique_ptr<ClientStats>> stats;
  std::atomic<bool> stop{false};
  FirstError error;
  DriveWindow(
      spec, engine, seconds, progress, stats, stop, error,
      [&](int i, ClientStats& st, std::latch& start) {
        Rng rng(seed * 0x100000001b3ull + static_cast<uint64_t>(i) * 7919 + 1);
        std::unique_ptr<Session> session = engine.NewSession();
        TxnPlan plan;
        start.arrive_and_wait();
        while (!stop.load(std::memory_order_relaxed)) {
          NextPlan(params, keys, rng, &plan);
          const auto t0 = Clock::now();
          if (!RetryAborted([&] { return Execute(plan, keys, *session, rng, value_size); }, st,
                            stop, error, rng)) {
            break;
          }
          CountCommitted(st, t0, plan.ops(),
                         plan.cross_shard && plan.kind != TxnPlan::Kind::kReadOnly);
        }
      },
      r);
}

// shardtx-async: each client thread keeps up to its share of spec.inflight transactions in
// flight through Session::CommitAsync; a transaction counts (and its latency, from its first
// attempt, ends) when its callback reports it committed.
void MeasureAsyncWindow(const Config& config, const RunSpec& spec, const KeySpace& keys,
                        Engine& engine, double seconds, uint64_t seed, const ProgressFn& progress,
                        RunResult* r) {
  const WorkloadParams params = ParamsFor(config, spec);
  const uint32_t value_size = ValueSize(config, spec);
  // Per client: its transactions in flight. Callbacks lock `mu` to count down, so the client
  // may return (and this be destroyed) once it has seen zero under the lock.
  struct InFlight {
    std::mutex mu;
    std::condition_variable cv;
    int n = 0;
    bool waiting = false;
  };
  std::vector<std::unique_ptr<InFlight>> in_flight;
  for (int i = 0; i < spec.threads; ++i) in_flight.push_back(std::make_unique<InFlight>());
  std::vector<std::unique_ptr<ClientStats>> stats;
  std::atomic<bool> stop{false};
  FirstError error;
  DriveWindow(
      spec, engine, seconds, progress, stats, stop, error,
      [&](int i, ClientStats& st, std::latch& start) {
        InFlight& f = *in_flight[i];
        const int window =
            std::max(1, spec.inflight / spec.threads + (i < spec.inflight % spec.threads ? 1 : 0));
        // A full client sleeps until a quarter of its window completed, not one commit: one
        // wake-up per completion batch rather than per commit.
        const int low_water = window - std::max(1, window / 4);
        Rng rng(seed * 0x100000001b3ull + static_cast<uint64_t>(i) * 7919 + 1);
        std::unique_ptr<Session> session = engine.NewSession();
        TxnPlan plan;
        start.arrive_and_wait();
        while (!stop.load(std::memory_order_relaxed)) {
          {
            std::unique_lock<std::mutex> l(f.mu);
            if (f.n >= window) {
              f.waiting = true;
              f.cv.wait(l, [&] { return f.n <= low_water; });
              f.waiting = false;
            }
            ++f.n;
          }
          NextPlan(params, keys, rng, &plan);
          const auto t0 = Clock::now();
          const uint64_t ops = plan.ops();
          const bool cross = plan.cross_shard && plan.kind != TxnPlan::Kind::kReadOnly;
          auto done = [&st, &f, &error, &stop, t0, ops, cross, low_water](absl::Status s) {
            if (s.ok()) {
              CountCommitted(st, t0, ops, cross);
            } else {
              error.Set(std::move(s));
              stop.store(true);
            }
            std::lock_guard<std::mutex> l(f.mu);
            --f.n;
            if ((f.waiting && f.n <= low_water) || f.n == 0) f.cv.notify_one();
          };
          const bool submitted = RetryAborted(
              [&] {
                return Execute(plan, keys, *session, rng, value_size,
                               [&](Session& ss) { return ss.CommitAsync(done); });
              },
              st, stop, error, rng);
          if (!submitted) {
            std::lock_guard<std::mutex> l(f.mu);
            --f.n;
            break;
          }
        }
        // The callbacks still to come count into `st` and `f`.
        std::unique_lock<std::mutex> l(f.mu);
        f.cv.wait(l, [&] { return f.n == 0; });
      },
      r);
}

// --replicas --workload=readonly (issue 17 step 9): spec.threads readers placed as spec.reads
// says, each read transaction the sum of one group of accounts (AccountGroups), checked against
// the group's initial total; config.readonly_writers threads transferring within the groups on
// node 1 meanwhile; the followers' staleness sampled from their stats every 100 ms.
void MeasureReadonlyWindow(const Config& config, const RunSpec& spec, const KeySpace& keys,
                           Engine& engine, double seconds, uint64_t seed,
                           const ProgressFn& progress, RunResult* r) {
  const uint32_t k = spec.shards_per_txn;
  const std::vector<uint64_t> groups = AccountGroups(keys, k);
  const uint64_t num_groups = groups.size() / k;
  const int64_t expected = static_cast<int64_t>(k) * kInitialBalance;
  const uint32_t value_size = ValueSize(config, spec);
  const absl::Duration max_staleness = config.follower_max_staleness_ms < 0
                                           ? absl::InfiniteDuration()
                                           : absl::Milliseconds(config.follower_max_staleness_ms);
  const bool follower_read = spec.reads != ReadPlacement::kLeaderLinearizable;
  const int nodes = std::max(config.replicas, 1);
  ReadonlyFigures fig;
  std::atomic<uint64_t> writes{0}, write_aborts{0}, checked{0}, violations{0};
  std::mutex mu;  // guards fig.first_violation and the staleness samples
  std::vector<int64_t> staleness;
  std::vector<std::unique_ptr<ClientStats>> stats;
  std::atomic<bool> stop{false};
  FirstError error;
  if (num_groups == 0) {
    r->status = absl::InvalidArgumentError("readonly: too few keys for one group per shard");
    return;
  }
  // The background writes: transfers between two accounts of a group (on distinct shards).
  std::vector<std::thread> background;
  for (int w = 0; w < config.readonly_writers; ++w) {
    background.emplace_back([&, w] {
      Rng rng(seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(w) * 104729 + 17);
      std::unique_ptr<Session> session = engine.NewSession();
      ClientStats st;
      TxnPlan plan;
      plan.kind = TxnPlan::Kind::kBank;
      plan.cross_shard = true;
      while (!stop.load(std::memory_order_relaxed)) {
        const uint64_t g = rng.Uniform(num_groups);
        const auto a = static_cast<uint32_t>(rng.Uniform(k));
        auto b = static_cast<uint32_t>(rng.Uniform(k - 1));
        if (b >= a) ++b;
        plan.keys = {groups[g * k + a], groups[g * k + b]};
        std::sort(plan.keys.begin(), plan.keys.end());
        plan.bank_first_pays = (rng.Next() & 1) != 0;
        plan.bank_amount = static_cast<uint32_t>(1 + rng.Uniform(100));
        if (!RetryAborted([&] { return Execute(plan, keys, *session, rng, value_size); }, st, stop,
                          error, rng)) {
          break;
        }
        writes.fetch_add(1, std::memory_order_relaxed);
      }
      write_aborts.fetch_add(st.aborts.load());
    });
  }
  // The followers' staleness as their stats give it (Engine::Replicas: nodes 2..N).
  background.emplace_back([&] {
    while (!stop.load()) {
      const std::vector<ReplicaCounters> now = engine.Replicas();
      {
        std::lock_guard<std::mutex> l(mu);
        for (size_t n = 1; n < now.size(); ++n) staleness.push_back(now[n].staleness_ms);
      }
      for (int i = 0; i < 10 && !stop.load(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  });
  DriveWindow(
      spec, engine, seconds, progress, stats, stop, error,
      [&](int i, ClientStats& st, std::latch& start) {
        Rng rng(seed * 0x100000001b3ull + static_cast<uint64_t>(i) * 7919 + 1);
        const int node = spec.reads == ReadPlacement::kAllFollowerRead ? i % nodes + 1 : 1;
        std::unique_ptr<Session> session = engine.NewSessionOn(node, follower_read, max_staleness);
        start.arrive_and_wait();
        if (session == nullptr) {
          error.Set(absl::InternalError(absl::StrCat("readonly: no session on node ", node)));
          stop.store(true);
          return;
        }
        std::string key;
        std::vector<int64_t> seen(k);  // the balances read, printed if their sum is wrong
        while (!stop.load(std::memory_order_relaxed)) {
          const uint64_t g = rng.Uniform(num_groups);
          int64_t sum = 0;
          auto attempt = [&]() -> absl::Status {
            session->Begin(TxnShape::kReadOnly);
            sum = 0;
            for (uint32_t m = 0; m < k; ++m) {
              keys.KeyInto(groups[g * k + m], &key);
              absl::StatusOr<std::string> v = session->Get(key);
              const int64_t b = v.ok() ? DecodeBalance(*v) : -1;
              if (b < 0) {
                session->Rollback();
                if (!v.ok() && !absl::IsNotFound(v.status())) return v.status();
                return absl::DataLossError(absl::StrCat("readonly: account ", key, " on node ",
                                                        node, " holds no balance"));
              }
              sum += b;
              seen[m] = b;
            }
            absl::Status s = session->Commit();
            if (!s.ok()) session->Rollback();
            return s;
          };
          const auto t0 = Clock::now();
          if (!RetryAborted(attempt, st, stop, error, rng)) break;
          checked.fetch_add(1, std::memory_order_relaxed);
          if (sum != expected) {
            violations.fetch_add(1);
            std::lock_guard<std::mutex> l(mu);
            if (fig.first_violation.empty()) {
              fig.first_violation = absl::StrCat("node ", node, ":");
              for (uint32_t m = 0; m < k; ++m) {
                absl::StrAppend(&fig.first_violation, m == 0 ? " " : " + ",
                                keys.Key(groups[g * k + m]), "=", seen[m]);
              }
              absl::StrAppend(&fig.first_violation, " = ", sum, " != ", expected);
            }
          }
          CountCommitted(st, t0, k, /*cross=*/false);
        }
      },
      r);
  for (std::thread& t : background) t.join();
  fig.writes = writes.load();
  fig.write_aborts = write_aborts.load();
  fig.writes_per_s = r->elapsed_s > 0 ? static_cast<double>(fig.writes) / r->elapsed_s : 0;
  fig.sums_checked = checked.load();
  fig.violations = violations.load();
  uint64_t all = 0, followers = 0;
  for (const ReplicaFigures& f : r->replica_figures) {
    all += f.reads_served;
    if (f.node_id != 1) followers += f.reads_served;
    fig.reads_too_stale += f.reads_too_stale;
  }
  fig.follower_share = all > 0 ? static_cast<double>(followers) / static_cast<double>(all) : 0;
  std::vector<double> known;
  for (int64_t ms : staleness) {
    if (ms < 0) {
      ++fig.staleness_unknown;
    } else {
      known.push_back(static_cast<double>(ms));
    }
  }
  fig.staleness_samples = static_cast<int>(staleness.size());
  if (!known.empty()) {
    std::sort(known.begin(), known.end());
    fig.staleness_median_ms = known[known.size() / 2];
    fig.staleness_max_ms = known.back();
  }
  if (fig.violations > 0 && r->status.ok()) {
    r->status = absl::DataLossError(absl::StrCat(
        "follower reads: ", fig.violations, " of ", fig.sums_checked,
        " group sums were wrong (a read saw part of a transfer); first: ", fig.first_violation));
  }
  r->readonly = std::move(fig);
}

void DriveWindow(const RunSpec& spec, Engine& engine, double seconds, const ProgressFn& progress,
                 std::vector<std::unique_ptr<ClientStats>>& stats, std::atomic<bool>& stop,
                 FirstError& error, const ClientFn& client, RunResult* r) {
  for (int i = 0; i < spec.threads; ++i) stats.push_back(std::make_unique<ClientStats>());
  std::latch start(spec.threads + 1);
  std::vector<std::thread> clients;
  for (int i = 0; i < spec.threads; ++i) {
    clients.emplace_back([&, i] { client(i, *stats[i], start); });
  }

  const std::optional<uint64_t> fsyncs0 = engine.Fsyncs();
  const std::vector<ReplicaCounters> replicas0 = engine.Replicas();
  const Engine::LeadershipLosses lost0 = engine.LostLeadership();
  const CpuSample cpu0 = SampleCpu();
  start.arrive_and_wait();
  const auto t0 = Clock::now();
  const auto deadline =
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  auto last_progress = t0;
  while (!stop.load() && Clock::now() < deadline) {
    std::this_thread::sleep_for(
        std::min<Clock::duration>(std::chrono::milliseconds(50), deadline - Clock::now()));
    const auto now = Clock::now();
    if (progress && now - last_progress >= std::chrono::milliseconds(500)) {
      last_progress = now;
      uint64_t committed = 0, aborts = 0;
      for (auto& st : stats) {
        committed += st->committed.load(std::memory_order_relaxed);
        aborts += st->aborts.load(std::memory_order_relaxed);
      }
      const double t = std::chrono::duration<double>(now - t0).count();
      progress(absl::StrFormat("%s: %.1f/%.0f s, %d txn, %.0f txn/s, %d aborts", RunName(spec), t,
                               seconds, committed, committed / t, aborts),
               true);
    }
  }
  stop.store(true);
  for (std::thread& t : clients) t.join();
  const auto settle0 = Clock::now();
  if (progress) progress(absl::StrCat(RunName(spec), ": deferred work"), true);
  absl::Status settled = engine.SettleDeferredWork();
  if (!settled.ok()) error.Set(settled);
  const auto t1 = Clock::now();
  r->settle_s = std::chrono::duration<double>(t1 - settle0).count();
  const CpuSample cpu1 = SampleCpu();
  const std::optional<uint64_t> fsyncs1 = engine.Fsyncs();
  const std::vector<ReplicaCounters> replicas1 = engine.Replicas();
  const Engine::LeadershipLosses lost1 = engine.LostLeadership();
  r->leadership_unavailable = lost1.unavailable - lost0.unavailable;
  r->leadership_unknown = lost1.unknown - lost0.unknown;

  shardtx::Histogram latency;
  for (auto& st : stats) {
    r->committed += st->committed.load();
    r->aborts += st->aborts.load();
    r->ops += st->ops.load();
    r->cross_shard += st->cross.load();
    latency.Merge(st->latency_ns);
  }
  r->elapsed_s = std::chrono::duration<double>(t1 - t0).count();
  FillRates(r);
  FillLatency(latency, r);
  if (fsyncs0.has_value() && fsyncs1.has_value() && r->elapsed_s > 0) {
    r->fsyncs_per_s = static_cast<double>(*fsyncs1 - *fsyncs0) / r->elapsed_s;
  }
  std::tie(r->cpu_cores, r->other_cores) = CoresUsed(cpu0, cpu1);
  if (replicas0.size() == replicas1.size() && r->elapsed_s > 0) {
    r->replica_figures = ReplicaWindow(replicas0, replicas1, r->elapsed_s);
  }
  r->status = error.Get();
}

}  // namespace

bool RocksdbPerShard(const Config& config, Workload workload, uint32_t shards) {
  switch (config.rocksdb_layout) {
    case RocksdbLayout::kOne:
      return false;
    case RocksdbLayout::kPerShard:
      return shards > 1;
    case RocksdbLayout::kAuto:
      return shards > 1 && (workload == Workload::kCross || workload == Workload::kMixed ||
                            workload == Workload::kBank);
  }
  return false;
}

uint32_t RecordSize(const Config& config) {
  return config.shards_per_txn * (config.key_size + config.value_size) + 64;
}

// The O_DSYNC write floor: one Raft log write as libraft's raft_uv makes it. Checked with strace
// on this machine (libraft 0.15, ext4): raft_uv creates each 8 MiB segment O_WRONLY | O_CREAT |
// O_EXCL | O_DSYNC, fallocates it, adds O_DIRECT by fcntl when its probe found the file system
// takes it, and appends by writes (Linux AIO) of the whole 4 KiB blocks that hold the new entries,
// the last partial block rewritten by the next append; no fdatasync. Here: a 64 MiB file,
// fallocated (unwritten extents, as a fresh segment), opened O_WRONLY | O_DSYNC | O_DIRECT (without
// O_DIRECT where the file system refuses it, as raft_uv's probe would); a round appends one record
// by one pwrite of the aligned blocks that hold it, waited for on this thread.
class DsyncLog {
 public:
  static constexpr uint64_t kFileSize = 64ull << 20;
  static constexpr uint64_t kBlock = 4096;

  explicit DsyncLog(std::string path) : path_(std::move(path)) {}
  ~DsyncLog() {
    if (fd_ >= 0) close(fd_);
    unlink(path_.c_str());
  }

  // Creates (or recreates) the file: empty, fallocated, synced.
  absl::Status Reset() {
    if (fd_ < 0) {
      fd_ =
          open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DSYNC | O_DIRECT, 0644);
      direct_ = fd_ >= 0;
      if (fd_ < 0 && errno == EINVAL) {
        fd_ = open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DSYNC, 0644);
      }
      if (fd_ < 0) return ErrnoError(absl::StrCat("open O_DSYNC ", path_));
    }
    if (ftruncate(fd_, 0) != 0) return ErrnoError(absl::StrCat("ftruncate ", path_));
    if (fallocate(fd_, 0, 0, static_cast<off_t>(kFileSize)) != 0) {
      return ErrnoError(absl::StrCat("fallocate ", path_));
    }
    if (fsync(fd_) != 0) return ErrnoError(absl::StrCat("fsync ", path_));
    off_ = 0;
    return absl::OkStatus();
  }

  bool direct() const { return direct_; }

  // Before a round (untimed): room for a record of `size` bytes, else Reset.
  absl::Status MakeRoom(uint32_t size) {
    if (BlockEnd(off_ + size) <= kFileSize) return absl::OkStatus();
    return Reset();
  }

  // One round: the blocks holding the next `size` bytes, in one pwrite.
  absl::Status Append(uint32_t size) {
    const uint64_t start = off_ / kBlock * kBlock;
    const uint64_t len = BlockEnd(off_ + size) - start;
    if (len > buf_len_) {  // O_DIRECT: an aligned buffer
      void* p = nullptr;
      if (posix_memalign(&p, kBlock, len) != 0) return absl::ResourceExhaustedError("buffer");
      buf_.reset(static_cast<char*>(p));
      buf_len_ = len;
      std::memset(buf_.get(), 'r', len);
    }
    if (pwrite(fd_, buf_.get(), len, static_cast<off_t>(start)) != static_cast<ssize_t>(len)) {
      return ErrnoError(absl::StrCat("pwrite O_DSYNC ", path_));
    }
    off_ += size;
    return absl::OkStatus();
  }

 private:
  static uint64_t BlockEnd(uint64_t end) { return (end + kBlock - 1) / kBlock * kBlock; }

  const std::string path_;
  int fd_ = -1;
  bool direct_ = false;
  uint64_t off_ = 0;  // where the next record starts
  struct Free {
    void operator()(char* p) const { std::free(p); }
  };
  std::unique_ptr<char, Free> buf_;
  uint64_t buf_len_ = 0;
};

// The fsync floor: one file per concurrent syncer, each 64 MiB written with zeros and synced
// once; then, round after round, every syncer's pwrite of one commit record at the next offset
// of its file and fdatasync, all syncers at once (a round ends when the last returns). One file
// is the floor of a commit that waits for one fsync; two files on one disk, the floor of a
// cross-shard commit whose two prepares are synced in parallel on two logs. Also the O_DSYNC
// write floor (DsyncLog, files of their own): one writer, or N at once (N replicas' Raft log
// writes on one disk), a round then ending when a majority of them returned.
class FsyncFile {
 public:
  static constexpr uint64_t kFileSize = 64ull << 20;

  FsyncFile(std::string path, int files) : path_(std::move(path)), fds_(std::max(files, 1), -1) {
    for (size_t i = 0; i < fds_.size(); ++i) {
      dsyncs_.push_back(std::make_unique<DsyncLog>(absl::StrCat(PathOf(i), ".dsync")));
    }
  }
  ~FsyncFile() {
    for (size_t i = 0; i < fds_.size(); ++i) {
      if (fds_[i] >= 0) close(fds_[i]);
      unlink(PathOf(i).c_str());
    }
  }

  absl::Status Create() {
    const std::string zeros(1 << 20, '\0');
    for (size_t i = 0; i < fds_.size(); ++i) {
      const std::string path = PathOf(i);
      fds_[i] = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fds_[i] < 0) return ErrnoError(absl::StrCat("open ", path));
      for (uint64_t off = 0; off < kFileSize; off += zeros.size()) {
        if (pwrite(fds_[i], zeros.data(), zeros.size(), static_cast<off_t>(off)) !=
            static_cast<ssize_t>(zeros.size())) {
          return ErrnoError(absl::StrCat("pwrite ", path));
        }
      }
      if (fsync(fds_[i]) != 0) return ErrnoError(absl::StrCat("fsync ", path));
    }
    for (auto& d : dsyncs_) {
      if (absl::Status s = d->Reset(); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // Syncs the first `files` files (at most as many as were created) at once, round by round.
  // dsync: the O_DSYNC write floor instead (DsyncLogs, no fdatasync); with several files a round
  // ends (its latency) when a majority of the writes returned, and the next starts once all did.
  void Measure(int files, bool dsync, uint32_t record_size, double seconds,
               const ProgressFn& progress, RunResult* r) {
    files = std::clamp(files, 1, static_cast<int>(fds_.size()));
    const int needed = dsync ? files / 2 + 1 : files;  // writes a round's latency waits for
    const std::string what = dsync
                                 ? (files == 1 ? "O_DSYNC write floor"
                                               : absl::StrCat("O_DSYNC write floor (", files,
                                                              " at once, ", needed, " waited for)"))
                             : files == 1 ? "fsync floor"
                                          : absl::StrCat("fsync floor (", files, " files at once)");
    r->engine_description =
        dsync ? absl::StrCat(
                    "fsync, o_dsync: ",
                    files == 1 ? "one thread" : absl::StrCat(files, " threads at once, each"),
                    " a ", record_size,
                    " B record appended to a fallocated 64 MiB file of its own opened O_WRONLY | "
                    "O_DSYNC",
                    dsyncs_[0]->direct() ? " | O_DIRECT" : " (O_DIRECT refused here)",
                    " by one pwrite of the 4 KiB blocks that hold it, no fdatasync: a Raft log "
                    "write as libraft's raft_uv makes it",
                    files == 1 ? ""
                               : absl::StrCat("; a round's latency ends when ", needed, " of the ",
                                              files, " returned (a majority of replicas)"))
        : files == 1
            ? absl::StrCat("fsync: one thread, pwrite of ", record_size,
                           " B (one commit record) at the next offset of a 64 MiB file written "
                           "with zeros and synced beforehand, then fdatasync")
            : absl::StrCat("fsync: ", files, " threads at once, each a pwrite of ", record_size,
                           " B and fdatasync on its own 64 MiB file written with zeros and "
                           "synced beforehand; a round ends when the last sync returns");
    if (progress) {
      progress(absl::StrFormat("%s: pwrite %d B%s for %.0f s", what, record_size,
                               dsync ? " (O_DSYNC)" : " + fdatasync", seconds),
               false);
    }
    const std::string record(record_size, 'r');
    // Round i: every syncer writes and syncs its file; the round ends at the barrier.
    std::atomic<bool> stop{false};
    std::vector<absl::Status> errors(files);
    std::barrier round(files);
    std::atomic<int> done{0};  // writes of this round returned
    auto sync_one = [&](int i) {
      if (dsync) {
        errors[i] = dsyncs_[i]->Append(record_size);
        if (!errors[i].ok()) stop = true;
      } else if (pwrite(fds_[i], record.data(), record.size(), static_cast<off_t>(off_)) !=
                 static_cast<ssize_t>(record.size())) {
        errors[i] = ErrnoError(absl::StrCat("pwrite ", PathOf(i)));
        stop = true;
      } else if (fdatasync(fds_[i]) != 0) {
        errors[i] = ErrnoError(absl::StrCat("fdatasync ", PathOf(i)));
        stop = true;
      }
      done.fetch_add(1);
      done.notify_all();
    };
    // The other syncers follow syncer 0 (this thread) round by round: wait for the start,
    // sync, meet at the end.
    std::vector<std::thread> others;
    for (int i = 1; i < files; ++i) {
      others.emplace_back([&, i] {
        while (true) {
          round.arrive_and_wait();  // start
          if (stop) return;
          sync_one(i);
          round.arrive_and_wait();  // end
        }
      });
    }
    shardtx::Histogram latency;
    uint64_t n = 0;
    const CpuSample cpu0 = SampleCpu();
    const auto t0 = Clock::now();
    const auto deadline =
        t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    auto last = t0;
    for (auto now = t0; now < deadline && !stop; now = Clock::now()) {
      if (off_ + record_size > kFileSize) off_ = 0;
      if (dsync) {
        for (int i = 0; i < files && errors[0].ok(); ++i) {
          errors[0] = dsyncs_[i]->MakeRoom(record_size);
        }
        if (!errors[0].ok()) break;
      }
      done = 0;
      const auto s0 = Clock::now();
      if (files > 1) round.arrive_and_wait();
      sync_one(0);
      for (int d = done.load(); d < needed; d = done.load()) done.wait(d);
      const auto s1 = Clock::now();
      if (files > 1) round.arrive_and_wait();
      if (stop) break;
      latency.Add(static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(s1 - s0).count()));
      if (!dsync) off_ += record_size;
      ++n;
      if (progress && s1 - last >= std::chrono::milliseconds(500)) {
        last = s1;
        const double t = std::chrono::duration<double>(s1 - t0).count();
        progress(absl::StrFormat("%s: %.1f/%.0f s, %d rounds, %.0f/s", what, t, seconds, n, n / t),
                 true);
      }
    }
    if (files > 1) {
      stop = true;
      round.arrive_and_wait();  // releases the others from their start, to see stop
    }
    for (std::thread& t : others) t.join();
    for (const absl::Status& e : errors) {
      if (!e.ok() && r->status.ok()) r->status = e;
    }
    r->elapsed_s = std::chrono::duration<double>(Clock::now() - t0).count();
    std::tie(r->cpu_cores, r->other_cores) = CoresUsed(cpu0, SampleCpu());
    r->committed = n;
    r->ops = n;
    FillRates(r);
    FillLatency(latency, r);
    r->fsyncs_per_s = r->txn_per_s * files;
  }

 private:
  std::string PathOf(size_t i) const { return i == 0 ? path_ : absl::StrCat(path_, ".", i); }

  const std::string path_;
  std::vector<int> fds_;
  uint64_t off_ = 0;
  std::vector<std::unique_ptr<DsyncLog>> dsyncs_;  // one per file, for the O_DSYNC floor
};

ContenderKey KeyOfRun(const Config& config, const RunSpec& spec) {
  // shardtx-async measures the same database as shardtx.
  const EngineKind engine =
      spec.engine == EngineKind::kShardtxAsync ? EngineKind::kShardtx : spec.engine;
  if (engine == EngineKind::kFsync) return {engine, false, false, 0, LogLayout::kPerShard};
  const uint32_t shards = ShardsOf(config, spec);
  return {engine, IsRocksdb(spec.engine) && RocksdbPerShard(config, spec.workload, shards),
          UsesBalances(spec), shards, LogLayoutOf(config, spec)};
}

Contender::Contender(const Config& config, const RunSpec& spec) : config_(config), spec_(spec) {}

Contender::~Contender() { Close().IgnoreError(); }

absl::StatusOr<std::unique_ptr<Contender>> Contender::Open(const Config& config,
                                                           const RunSpec& spec, int max_threads,
                                                           const ProgressFn& progress) {
  const EngineKind kind = spec.engine;
  std::unique_ptr<Contender> c(new Contender(config, spec));
  std::error_code ec;
  std::filesystem::create_directories(config.dir, ec);
  if (kind == EngineKind::kFsync) {
    c->fsync_ = std::make_unique<FsyncFile>(
        absl::StrCat(config.dir, "/fsync-floor-", getpid(), ".dat"), max_threads);
    if (absl::Status s = c->fsync_->Create(); !s.ok()) return s;
    return c;
  }
  const ContenderKey key = KeyOfRun(config, spec);
  // Contenders that differ only in shard count or log layout need directories of their own.
  const std::string variant =
      absl::StrCat(key.shards != config.shards ? absl::StrCat("-", key.shards, "shards") : "",
                   key.log_layout == LogLayout::kShared ? "-sharedlog" : "");
  c->dir_ =
      absl::StrCat(config.dir, "/", EngineName(kind), key.rocksdb_per_shard ? "-pershard" : "",
                   key.bank ? "-bank" : "", variant, "-", getpid());
  std::filesystem::remove_all(c->dir_, ec);
  std::filesystem::create_directories(c->dir_, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", c->dir_, ": ", ec.message()));
  const bool bank = UsesBalances(spec);
  const uint32_t value_size = ValueSize(config, spec);
  c->keys_ = std::make_unique<KeySpace>(config.keys, config.key_size, value_size, key.shards,
                                        config.zipf, config.seed);
  EngineSetup setup;
  setup.dir = c->dir_;
  setup.shards = key.shards;
  setup.shared_log = key.log_layout == LogLayout::kShared;
  setup.threads = max_threads;
  setup.durability = config.durability;
  setup.per_shard = key.rocksdb_per_shard;
  setup.rocksdb_2pc =
      kind == EngineKind::kRocksdbSerial2pc ? Rocksdb2pc::kSerial : Rocksdb2pc::kCareful;
  setup.keys = c->keys_.get();
  setup.replicas = kind == EngineKind::kShardtxReplicated ? config.replicas : 0;
  setup.raft_snapshot_threshold = config.raft_snapshot_threshold;
  setup.raft_snapshot_trailing = config.raft_snapshot_trailing;
  // Follower reads: the leaders close their shards' timestamps often enough for a bounded
  // staleness (the rows of one contender all read).
  if (spec.reads != ReadPlacement::kNone) setup.closed_ts_refresh = kClosedTsRefresh;
  auto opened = OpenEngine(kind, setup);
  if (!opened.ok()) return opened.status();
  c->engine_ = std::move(*opened);

  const std::string name = absl::StrCat(
      EngineName(kind), key.rocksdb_per_shard ? " (per shard)" : "", bank ? " (bank)" : "",
      key.shards != config.shards ? absl::StrCat(" (", key.shards, " shards)") : "",
      key.log_layout == LogLayout::kShared ? " (shared log)" : "");
  const auto p0 = Clock::now();
  auto last = p0;
  const KeySpace& keys = *c->keys_;
  absl::Status s = c->engine_->SetBulkLoad(true);
  if (s.ok()) {
    s = Preload(*c->engine_, keys, bank, value_size, 1000, [&](uint64_t done) {
      const auto now = Clock::now();
      if (progress && (now - last >= std::chrono::milliseconds(500) || done == keys.size())) {
        last = now;
        progress(absl::StrFormat("%s: preloading %d/%d keys", name, done, keys.size()), true);
      }
    });
  }
  if (s.ok()) s = c->engine_->SetBulkLoad(false);
  c->preload_s_ = std::chrono::duration<double>(Clock::now() - p0).count();
  if (!s.ok()) return s;
  if (progress) {
    progress(absl::StrFormat("%s: preloaded %d keys in %.1f s", name, keys.size(), c->preload_s_),
             false);
  }
  return c;
}

RunResult Contender::Measure(const RunSpec& spec, double seconds, uint64_t seed,
                             const ProgressFn& progress) {
  RunResult r;
  r.spec = spec;
  r.preload_s = preload_s_;
  if (spec_.engine == EngineKind::kFsync) {
    r.shards = 1;
    r.durability = DurabilityMode::kSync;
    fsync_->Measure(spec.threads, spec.workload == Workload::kDsync, RecordSize(config_),
                    std::min(seconds, 3.0), progress, &r);
    return r;
  }
  r.shards = ShardsOf(config_, spec);
  r.log_layout = LogLayoutOf(config_, spec);
  r.durability = spec.durability.value_or(config_.durability);
  if (spec.engine == EngineKind::kShardtxReplicated) r.replicas = config_.replicas;
  if (!(KeyOfRun(config_, spec) == KeyOfRun(config_, spec_))) {
    r.status = absl::InternalError(
        absl::StrCat("txbench: ", RunName(spec), " measured on another engine's contender"));
    return r;
  }
  if (engine_ == nullptr) {
    r.status = absl::FailedPreconditionError("txbench: contender closed");
    return r;
  }
  if (absl::Status s = engine_->SetRunDurability(r.durability); !s.ok()) {
    r.status = s;
    return r;
  }
  r.engine_description = engine_->Describe();
  if (spec.reads != ReadPlacement::kNone) {
    MeasureReadonlyWindow(config_, spec, *keys_, *engine_, seconds, seed, progress, &r);
  } else if (spec.engine == EngineKind::kShardtxAsync) {
    MeasureAsyncWindow(config_, spec, *keys_, *engine_, seconds, seed, progress, &r);
  } else {
    MeasureWindow(config_, spec, *keys_, *engine_, seconds, seed, progress, &r);
  }
  r.notes = engine_->Notes();
  engine_->SetRunDurability(config_.durability).IgnoreError();
  if (r.status.ok() && UsesBalances(spec)) {
    auto total = BankTotal(*engine_, *keys_);
    if (!total.ok()) {
      r.status = total.status();
    } else {
      r.bank_total = *total;
      const int64_t expected = static_cast<int64_t>(keys_->size()) * kInitialBalance;
      if (*total != expected) {
        r.status = absl::DataLossError(
            absl::StrCat("bank check FAILED for ", EngineName(spec.engine), ": total ", *total,
                         " != expected ", expected, " (", keys_->size(), " accounts x ",
                         kInitialBalance, "): money was created or destroyed"));
      }
    }
  }
  return r;
}

absl::StatusOr<CatchUpResult> Contender::CatchUp(const ProgressFn& progress) {
  if (engine_ == nullptr) return absl::FailedPreconditionError("txbench: contender closed");
  CatchUpSpec spec;
  spec.bytes = config_.catchup_bytes;
  spec.deadline = CatchUpDeadline(spec.bytes);
  return engine_->CatchUp(spec, progress);
}

absl::Status Contender::Close() {
  absl::Status s;
  if (engine_ != nullptr) {
    s = engine_->Close();
    engine_.reset();
  }
  fsync_.reset();
  if (!dir_.empty() && !config_.keep_data) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  return s;
}

RunResult RunOne(const Config& config, const RunSpec& spec, const ProgressFn& progress) {
  auto contender = Contender::Open(config, spec, spec.threads, progress);
  if (!contender.ok()) {
    RunResult r;
    r.spec = spec;
    r.shards = ShardsOf(config, spec);
    r.log_layout = LogLayoutOf(config, spec);
    r.durability = config.durability;
    r.status = contender.status();
    return r;
  }
  if (config.warmup_s > 0) {
    RunResult warm = (*contender)->Measure(spec, config.warmup_s, config.seed + 1000003, nullptr);
    if (!warm.status.ok()) return warm;
  }
  RunResult r = (*contender)->Measure(spec, config.seconds, config.seed, progress);
  absl::Status c = (*contender)->Close();
  if (r.status.ok() && !c.ok()) r.status = c;
  return r;
}

absl::StatusOr<std::unique_ptr<Engine>> OpenEngine(EngineKind kind, const EngineSetup& setup) {
  switch (kind) {
    case EngineKind::kShardtx:
    case EngineKind::kShardtxAsync:
    case EngineKind::kShardtxReplicated:
      return OpenShardtx(setup);
    case EngineKind::kRocksdb:
    case EngineKind::kRocksdbSerial2pc:
      return OpenRocksdb(setup);
    case EngineKind::kLmdb:
      return OpenLmdb(setup);
    case EngineKind::kFsync:
      break;
  }
  return absl::InvalidArgumentError("the fsync engine has no transactions");
}

}  // namespace txbench
