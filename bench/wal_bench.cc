// wal_bench: Google Benchmark micro-benchmarks of WalWriter appends (group commit, design brief
// §5) next to the physical floor of the same disk: one pwrite + fdatasync per record on a
// preallocated file in the same directory.
//
//   wal_bench                          default subset (128 B, 4 KiB, 64 KiB x 1/8/64 threads,
//                                      sync and none, raw floor), about 30 s
//   wal_bench --benchmark_filter=.     the full matrix: 64 B..64 KiB x 1..64 threads
//   wal_bench --benchmark_filter='WalAppend/sync/bytes:128/|RawPwriteFdatasync/bytes:128/'
//             --benchmark_repetitions=5 --benchmark_display_aggregates_only=true
//                                      (one command line) the two group-commit targets,
//                                      medians of 5 runs
//
// Benchmarks:
//   WalAppend/sync/bytes:N/...threads:T   T threads each Append(kSync) + WaitDurable, one shared
//                                         writer: the durable commit path
//   WalAppend/none/bytes:N/...threads:T   T threads each Append(kNone): the write path alone
//   RawPwriteFdatasync/bytes:N/prealloc:P one thread, pwrite + fdatasync of the record's size at
//                                         the next offset of a file preallocated by fallocate
//                                         (P=0, as the WAL does) or by writing zeros (P=1: no
//                                         extent conversion, the disk's true floor)
//   BareGroupCommit/bytes:N/...threads:T  the simplest group commit there is, as a yardstick
//                                         for WalAppend/sync: one mutex, one syncer thread, one
//                                         FUTEX_WAKE per batch; no framing, checksums, segments
// Counters: items_per_second (records/s), bytes_per_second (payload), lat_us (mean time one
// thread waits per record), p50_us/p99_us (sync and raw only), records_per_fsync,
// max_records_per_fsync, fsyncs_per_second, fsync_p50_us (WalWriter::Stats), cpu_cores (this
// process's CPU seconds per wall second, flusher included) and other_cores (the rest of the
// machine's: a busy neighbour skews fsync and wake-up latencies, so distrust such runs).
//
// Files go to --bench_dir, else $SHARDTX_BENCH_DIR, else a directory under the build tree. It
// must be on the disk being measured: on a tmpfs fdatasync costs nothing. Each run gets a fresh
// log that is removed afterwards.
//
// With the console reporter the run ends with a check of the group-commit targets when their
// benchmarks ran (medians when repeated): 64 threads vs 1 thread of durable 128 B appends (>= 20x)
// and 1-thread durable latency vs the raw pwrite + fdatasync of 128 B (<= 1.3x).
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "benchmark/benchmark.h"
#include "bench/wal_bench_targets.h"
#include "util/histogram.h"
#include "wal/format.h"
#include "wal/writer.h"

ABSL_FLAG(std::string, bench_dir, "",
          "Directory for the benchmark's files (default: $SHARDTX_BENCH_DIR, "
          "else " SHARDTX_BENCH_DEFAULT_DIR "). Must be on the disk to measure.");

namespace shardtx::wal {
namespace {

constexpr int64_t kSizes[] = {64, 128, 512, 1024, 4096, 16384, 65536};
constexpr int kThreads[] = {1, 2, 4, 8, 16, 32, 64};
constexpr uint64_t kRawFileSize = 64ull << 20;  // as WalOptions::segment_size

// What runs without --benchmark_filter: bounded (about 30 s on a ~300 us fdatasync disk).
constexpr char kDefaultFilter[] =
    "^(WalAppend/(sync|none)/bytes:(128|4096|65536)/real_time/threads:(1|8|64)"
    "|RawPwriteFdatasync/bytes:(128|4096|65536)/prealloc:0/real_time"
    "|RawPwriteFdatasync/bytes:128/prealloc:1/real_time"
    "|BareGroupCommit/bytes:128/real_time/threads:64)$";

std::string g_base_dir;  // this process's directory under the bench dir

std::string NextRunDir() {
  static std::atomic<int> n{0};
  return absl::StrCat(g_base_dir, "/run", n.fetch_add(1));
}

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto sec = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

// Busy CPU seconds of the whole machine (all processes), from /proc/stat; 0 if unreadable.
double MachineBusySeconds() {
  FILE* f = std::fopen("/proc/stat", "r");
  if (f == nullptr) return 0;
  unsigned long long v[8] = {};
  const int n = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                            &v[3], &v[4], &v[5], &v[6], &v[7]);
  std::fclose(f);
  if (n != 8) return 0;
  const unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];  // not idle, iowait
  return static_cast<double>(busy) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// CPU use during a run: this process's, and everyone else's (a noisy neighbour shows there).
struct CpuMeter {
  double own = CpuSeconds();
  double all = MachineBusySeconds();
  void Report(benchmark::State& state, double wall) const {
    if (wall <= 0) return;
    const double own_delta = CpuSeconds() - own;
    state.counters["cpu_cores"] = own_delta / wall;
    state.counters["other_cores"] = std::max(0.0, (MachineBusySeconds() - all - own_delta) / wall);
  }
};

using Clock = std::chrono::steady_clock;

uint64_t MicrosSince(Clock::time_point start) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count());
}

// "count=… mean=… p50=… …" -> the p50 value, 0 if absent.
double SummaryField(const std::string& summary, const std::string& field) {
  size_t at = summary.find(field + "=");
  return at == std::string::npos ? 0.0 : std::atof(summary.c_str() + at + field.size() + 1);
}

// State shared by the threads of one WalAppend run. Thread 0 sets it up before the loop and
// tears it down after; Google Benchmark puts a barrier at both ends of the loop.
struct SharedRun {
  std::string dir;
  std::unique_ptr<WalWriter> writer;
  std::vector<std::unique_ptr<Histogram>> latency;  // one per thread, merged by thread 0
  Clock::time_point start;
  CpuMeter cpu;
};
SharedRun g_run;

void BM_WalAppend(benchmark::State& state, Durability durability) {
  const size_t size = static_cast<size_t>(state.range(0));
  const bool sync = durability == Durability::kSync;
  if (state.thread_index() == 0) {
    g_run.dir = NextRunDir();
    std::filesystem::remove_all(g_run.dir);
    auto w = WalWriter::OpenAfterScan(Env::Default(), g_run.dir, WalOptions{});
    if (!w.ok()) {
      state.SkipWithError(w.status().ToString().c_str());
    } else {
      g_run.writer = std::move(*w);
    }
    g_run.latency.clear();
    for (int i = 0; i < state.threads(); ++i)
      g_run.latency.push_back(std::make_unique<Histogram>());
    g_run.cpu = CpuMeter();
    g_run.start = Clock::now();
  }
  const std::string payload(size, static_cast<char>('a' + state.thread_index() % 26));
  Histogram* latency = nullptr;
  int64_t records = 0;
  Clock::time_point my_start;
  for (auto _ : state) {
    if (latency == nullptr) {  // first iteration: past the start barrier, the writer is open
      if (g_run.writer == nullptr) break;  // thread 0 failed to open it (and said why)
      latency = g_run.latency[state.thread_index()].get();
      my_start = Clock::now();
    }
    const Clock::time_point t0 = sync ? Clock::now() : Clock::time_point{};
    absl::StatusOr<Lsn> lsn = g_run.writer->Append(1, payload, durability);
    absl::Status s = lsn.status();
    if (s.ok() && sync) s = g_run.writer->WaitDurable(*lsn);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    if (sync) latency->Add(MicrosSince(t0));
    ++records;
  }
  const double my_seconds =
      records == 0 ? 0 : std::chrono::duration<double>(Clock::now() - my_start).count();
  state.SetItemsProcessed(records);
  state.SetBytesProcessed(records * static_cast<int64_t>(size));
  state.counters["lat_us"] = benchmark::Counter(records == 0 ? 0 : my_seconds * 1e6 / records,
                                                benchmark::Counter::kAvgThreads);
  if (state.thread_index() != 0) return;

  // Every thread has passed the loop's closing barrier: the writer is thread 0's again.
  const double wall = std::chrono::duration<double>(Clock::now() - g_run.start).count();
  if (g_run.writer != nullptr) {
    const WalStats st = g_run.writer->Stats();
    state.counters["records_per_fsync"] = st.records_per_fsync;
    state.counters["max_records_per_fsync"] = static_cast<double>(st.max_records_per_fsync);
    state.counters["fsyncs_per_second"] =
        benchmark::Counter(static_cast<double>(st.fsyncs), benchmark::Counter::kIsRate);
    state.counters["fsync_p50_us"] = SummaryField(st.fsync_latency_us, "p50");
    if (sync) {
      Histogram all;
      for (const auto& h : g_run.latency) all.Merge(*h);
      state.counters["p50_us"] = static_cast<double>(all.Percentile(50));
      state.counters["p99_us"] = static_cast<double>(all.Percentile(99));
    }
    absl::Status s = g_run.writer->Close();
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    g_run.writer.reset();
  }
  g_run.cpu.Report(state, wall);
  std::error_code ec;
  std::filesystem::remove_all(g_run.dir, ec);
}

// A file of kRawFileSize bytes reserved the way the WAL reserves a segment (fallocate), or
// written with zeros so that no write into it changes an extent, then synced with its directory.
int CreateRawFile(const std::string& dir, bool zeroed, std::string* error) {
  const std::string path = dir + "/raw.dat";
  ::unlink(path.c_str());
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    *error = absl::StrCat("open ", path, ": ", std::strerror(errno));
    return -1;
  }
  bool ok = true;
  if (zeroed) {
    const std::string zeros(1 << 20, '\0');
    for (uint64_t off = 0; ok && off < kRawFileSize; off += zeros.size()) {
      ok = ::pwrite(fd, zeros.data(), zeros.size(), static_cast<off_t>(off)) ==
           static_cast<ssize_t>(zeros.size());
    }
  } else {
    ok = ::fallocate(fd, 0, 0, static_cast<off_t>(kRawFileSize)) == 0;
  }
  ok = ok && ::fsync(fd) == 0;
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ok = ok && dfd >= 0 && ::fsync(dfd) == 0;
  if (dfd >= 0) ::close(dfd);
  if (!ok) {
    *error = absl::StrCat("preparing ", path, ": ", std::strerror(errno));
    ::close(fd);
    return -1;
  }
  return fd;
}

// The physical floor: what one durable record costs with no WAL at all. Plain POSIX calls on
// purpose (the Env would add only a virtual call); the record size includes the WAL's header and
// padding so both write the same bytes.
void BM_RawPwriteFdatasync(benchmark::State& state) {
  const size_t size = AlignedRecordSize(static_cast<uint64_t>(state.range(0)));
  const bool zeroed = state.range(1) != 0;
  const std::string dir = NextRunDir();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string error;
  int fd = CreateRawFile(dir, zeroed, &error);
  if (fd < 0) {
    state.SkipWithError(error.c_str());
    return;
  }
  const std::string data(size, 'r');
  Histogram latency;
  uint64_t offset = 0;
  int64_t records = 0;
  const CpuMeter cpu;
  const Clock::time_point start = Clock::now();
  for (auto _ : state) {
    if (offset + size > kRawFileSize) {  // a fresh file, as the WAL rolls to a fresh segment
      state.PauseTiming();
      ::close(fd);
      fd = CreateRawFile(dir, zeroed, &error);
      offset = 0;
      state.ResumeTiming();
      if (fd < 0) {
        state.SkipWithError(error.c_str());
        break;
      }
    }
    const Clock::time_point t0 = Clock::now();
    if (::pwrite(fd, data.data(), size, static_cast<off_t>(offset)) != static_cast<ssize_t>(size) ||
        ::fdatasync(fd) != 0) {
      state.SkipWithError(absl::StrCat("pwrite/fdatasync: ", std::strerror(errno)).c_str());
      break;
    }
    latency.Add(MicrosSince(t0));
    offset += size;
    ++records;
  }
  const double wall = std::chrono::duration<double>(Clock::now() - start).count();
  if (fd >= 0) ::close(fd);
  state.SetItemsProcessed(records);
  state.SetBytesProcessed(records * state.range(0));
  state.counters["lat_us"] = records == 0 ? 0 : wall * 1e6 / records;
  state.counters["p50_us"] = static_cast<double>(latency.Percentile(50));
  state.counters["p99_us"] = static_cast<double>(latency.Percentile(99));
  cpu.Report(state, wall);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// The simplest group commit there is, as a yardstick for WalAppend/sync at many threads:
// clients append a record's bytes to a shared buffer under one mutex and sleep on the futex
// word of their batch; one syncer thread writes each batch with one pwrite, fdatasyncs it and
// wakes the whole batch with one FUTEX_WAKE while the next batch fills. No framing, checksums,
// segments or error handling beyond stopping. When WalAppend/sync comes near it, what a
// target asks beyond that is the machine's to give (fsync cost per batch, wake-up latency),
// not the WAL's.
class BareGroupCommit {
 public:
  bool Start(const std::string& dir, std::string* error) {
    std::filesystem::create_directories(dir);
    fd_ = CreateRawFile(dir, /*zeroed=*/false, error);
    if (fd_ < 0) return false;
    syncer_ = std::thread([this] { SyncLoop(); });
    return true;
  }
  // Appends `record` and returns once a fdatasync covered it; false once the syncer failed.
  bool Commit(absl::string_view record) {
    uint64_t batch;
    uint32_t seen;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (failed_) return false;
      batch = filling_batch_;
      seen = words_[batch % 2].load(std::memory_order_acquire);
      const bool wake = filling_.empty();
      filling_.append(record.data(), record.size());
      if (wake) cv_.notify_one();
    }
    // Batch b's word changes only when b is synced: b+2, which shares it, fills after that.
    while (synced_batch_.load(std::memory_order_acquire) < batch) {
      ::syscall(SYS_futex, &words_[batch % 2], FUTEX_WAIT_PRIVATE, seen, nullptr, nullptr, 0);
      seen = words_[batch % 2].load(std::memory_order_acquire);
    }
    return !failed_sync_.load(std::memory_order_acquire);
  }
  void Stop() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
      cv_.notify_one();
    }
    if (syncer_.joinable()) syncer_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  uint64_t fsyncs() const { return fsyncs_; }  // after Stop

 private:
  void SyncLoop() {
    std::string batch;
    std::unique_lock<std::mutex> l(mu_);
    while (true) {
      cv_.wait(l, [&] { return stop_ || !filling_.empty(); });
      if (filling_.empty()) return;
      batch.swap(filling_);
      filling_.clear();
      const uint64_t b = filling_batch_++;
      l.unlock();
      if (offset_ + batch.size() > kRawFileSize) offset_ = 0;  // reuse the preallocated file
      const bool ok = ::pwrite(fd_, batch.data(), batch.size(), static_cast<off_t>(offset_)) ==
                          static_cast<ssize_t>(batch.size()) &&
                      ::fdatasync(fd_) == 0;
      offset_ += batch.size();
      ++fsyncs_;
      if (!ok) failed_sync_.store(true, std::memory_order_release);
      synced_batch_.store(b, std::memory_order_release);
      words_[b % 2].fetch_add(1, std::memory_order_release);
      ::syscall(SYS_futex, &words_[b % 2], FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
      l.lock();
      if (!ok) failed_ = true;
    }
  }

  int fd_ = -1;
  std::mutex mu_;
  std::condition_variable cv_;  // work for the syncer
  std::string filling_;
  uint64_t filling_batch_ = 1;
  bool stop_ = false, failed_ = false;
  std::atomic<uint64_t> synced_batch_{0};
  std::atomic<bool> failed_sync_{false};
  std::atomic<uint32_t> words_[2] = {0, 0};
  uint64_t offset_ = 0, fsyncs_ = 0;  // the syncer's
  std::thread syncer_;
};

struct BareRun {
  std::string dir;
  std::unique_ptr<BareGroupCommit> gc;
  Clock::time_point start;
  CpuMeter cpu;
};
BareRun g_bare;

void BM_BareGroupCommit(benchmark::State& state) {
  // The WAL's bytes for the same payload: header and padding included.
  const std::string record(AlignedRecordSize(static_cast<uint64_t>(state.range(0))), 'b');
  if (state.thread_index() == 0) {
    g_bare.dir = NextRunDir();
    std::filesystem::remove_all(g_bare.dir);
    g_bare.gc = std::make_unique<BareGroupCommit>();
    std::string error;
    if (!g_bare.gc->Start(g_bare.dir, &error)) {
      state.SkipWithError(error.c_str());
      g_bare.gc.reset();
    }
    g_bare.cpu = CpuMeter();
    g_bare.start = Clock::now();
  }
  int64_t records = 0;
  for (auto _ : state) {
    if (g_bare.gc == nullptr) break;  // thread 0 failed to start it (and said why)
    if (!g_bare.gc->Commit(record)) {
      state.SkipWithError("pwrite/fdatasync failed");
      break;
    }
    ++records;
  }
  state.SetItemsProcessed(records);
  state.SetBytesProcessed(records * state.range(0));
  if (state.thread_index() != 0 || g_bare.gc == nullptr) return;
  const double wall = std::chrono::duration<double>(Clock::now() - g_bare.start).count();
  g_bare.gc->Stop();
  state.counters["fsyncs_per_second"] =
      benchmark::Counter(static_cast<double>(g_bare.gc->fsyncs()), benchmark::Counter::kIsRate);
  g_bare.gc.reset();
  g_bare.cpu.Report(state, wall);
  std::error_code ec;
  std::filesystem::remove_all(g_bare.dir, ec);
}

void RegisterAll() {
  for (Durability d : {Durability::kSync, Durability::kNone}) {
    const char* name = d == Durability::kSync ? "WalAppend/sync" : "WalAppend/none";
    for (int64_t size : kSizes) {
      for (int threads : kThreads) {
        benchmark::RegisterBenchmark(name, BM_WalAppend, d)
            ->Arg(size)
            ->ArgName("bytes")
            ->UseRealTime()
            ->Threads(threads);
      }
    }
  }
  for (int threads : kThreads) {
    benchmark::RegisterBenchmark("BareGroupCommit", BM_BareGroupCommit)
        ->Arg(128)
        ->ArgName("bytes")
        ->UseRealTime()
        ->Threads(threads);
  }
  for (int64_t size : kSizes) {
    benchmark::RegisterBenchmark("RawPwriteFdatasync", BM_RawPwriteFdatasync)
        ->Args({size, 0})
        ->Args({size, 1})
        ->ArgNames({"bytes", "prealloc"})
        ->UseRealTime();
  }
}

std::string FileSystemType(const std::string& dir) {
  struct statfs fs {};
  if (::statfs(dir.c_str(), &fs) != 0) return "unknown";
  switch (static_cast<unsigned long>(fs.f_type)) {
    case 0xEF53:
      return "ext2/3/4";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x01021994:
      return "tmpfs (fdatasync is free: not a disk measurement)";
    case 0x794C7630:
      return "overlayfs";
    default:
      return absl::StrFormat("0x%x", static_cast<unsigned long>(fs.f_type));
  }
}

}  // namespace
}  // namespace shardtx::wal

int main(int argc, char** argv) {
  using namespace shardtx::wal;
  // A default filter keeps a bare run bounded; any --benchmark_filter replaces it.
  std::vector<char*> args(argv, argv + argc);
  std::string default_filter = std::string("--benchmark_filter=") + kDefaultFilter;
  bool console = true;
  bool filtered = false;
  bool color = ::isatty(STDOUT_FILENO) != 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--benchmark_filter", 0) == 0) filtered = true;
    if (a.rfind("--benchmark_color=", 0) == 0) {
      color = a == "--benchmark_color=true" || a == "--benchmark_color=yes" ||
              a == "--benchmark_color=1" ||
              (a == "--benchmark_color=auto" && ::isatty(STDOUT_FILENO));
    }
    if (a.rfind("--benchmark_format=", 0) == 0 && a != "--benchmark_format=console") {
      console = false;
    }
  }
  if (!filtered) args.insert(args.begin() + 1, default_filter.data());
  int n = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&n, args.data());
  absl::ParseCommandLine(n, args.data());  // --bench_dir; fails on anything unknown

  std::string dir = absl::GetFlag(FLAGS_bench_dir);
  if (dir.empty() && std::getenv("SHARDTX_BENCH_DIR") != nullptr) {
    dir = std::getenv("SHARDTX_BENCH_DIR");
  }
  if (dir.empty()) dir = SHARDTX_BENCH_DEFAULT_DIR;
  g_base_dir = absl::StrCat(dir, "/wal_bench.", ::getpid());
  std::error_code ec;
  std::filesystem::create_directories(g_base_dir, ec);
  if (ec) {
    std::fprintf(stderr, "wal_bench: cannot create %s: %s\n", g_base_dir.c_str(),
                 ec.message().c_str());
    return 1;
  }
  benchmark::AddCustomContext("bench_dir", g_base_dir);
  benchmark::AddCustomContext("file_system", FileSystemType(g_base_dir));

  RegisterAll();
  TargetReporter reporter(color);
  if (console) {
    benchmark::RunSpecifiedBenchmarks(&reporter);
  } else {
    benchmark::RunSpecifiedBenchmarks();
  }
  benchmark::Shutdown();
  std::filesystem::remove_all(g_base_dir, ec);
  return 0;
}
