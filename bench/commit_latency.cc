// commit_latency: single-client commit latency against the disk's raw fdatasync, as paired
// samples. The disk of this (shared, virtual) machine changes speed from one second to the next
// (fdatasync p50 moved between 140 and 500 us within a minute), so a floor measured in one
// phase and commits in the next give ratios anywhere from 1x to 6x. Here every sample is a
// pair taken back to back: one pwrite+fdatasync of a 160-byte record at the next offset of a
// preallocated file in the database's directory, then one commit. Reported: p50 of each, the
// ratio of the p50s, and the median of the per-pair ratios.
//
//   build/bench/commit_latency [--dir=PATH] [--pairs=2000] [--shards_per_txn=2]
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "shardtx/database.h"

ABSL_FLAG(std::string, dir, "", "directory on the disk to measure (default: under the build dir)");
ABSL_FLAG(int, pairs, 2000, "samples (floor + commit pairs) per transaction shape");
ABSL_FLAG(int, shards, 4, "shards of the database");

namespace shardtx {
namespace {

using Clock = std::chrono::steady_clock;

double Micros(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// The physical floor: one pwrite + fdatasync of a WAL-record-sized write, appended.
class Floor {
 public:
  explicit Floor(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_CREAT | O_RDWR | O_TRUNC, 0644);
    if (fd_ >= 0 && ::fallocate(fd_, 0, 0, kSize) == 0) ::fsync(fd_);
  }
  ~Floor() {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
  }
  bool ok() const { return fd_ >= 0; }
  // Returns the microseconds of one write + sync, or -1 on error.
  double Sample() {
    if (offset_ + sizeof(buf_) > kSize) offset_ = 0;
    const auto t0 = Clock::now();
    if (::pwrite(fd_, buf_, sizeof(buf_), static_cast<off_t>(offset_)) !=
            static_cast<ssize_t>(sizeof(buf_)) ||
        ::fdatasync(fd_) != 0) {
      return -1;
    }
    offset_ += sizeof(buf_);
    return Micros(t0, Clock::now());
  }

 private:
  static constexpr uint64_t kSize = 64ull << 20;
  const std::string path_;
  int fd_ = -1;
  uint64_t offset_ = 0;
  char buf_[160] = {};
};

int Main() {
  std::string base = absl::GetFlag(FLAGS_dir);
  if (base.empty()) base = SHARDTX_BENCH_DEFAULT_DIR;
  const std::string dir = base + "/commit_latency";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(base);
  const int shards = std::max(2, absl::GetFlag(FLAGS_shards));
  Options o;
  o.path = dir;
  o.num_shards = static_cast<uint32_t>(shards);
  // Key "<s>..." lives on shard s.
  o.partitioning = Options::Partitioning::kRange;
  for (int s = 1; s < shards; ++s) o.range_split_points.push_back(absl::StrCat(s));
  auto db = Database::Open(o);
  if (!db.ok()) {
    std::fprintf(stderr, "%s\n", db.status().ToString().c_str());
    return 1;
  }
  Floor floor(base + "/commit_latency.floor");
  if (!floor.ok()) {
    std::perror("floor file");
    return 1;
  }
  const std::string value(100, 'v');
  const int pairs = absl::GetFlag(FLAGS_pairs);
  std::printf("commit_latency: one client, %d shards, 100-byte values; %d pairs of (raw "
              "pwrite+fdatasync of 160 B, commit) per row\n",
              shards, pairs);
  std::printf("%-22s %12s %12s %14s %18s\n", "commit", "floor p50", "commit p50", "p50 ratio",
              "median pair ratio");
  for (int k : {1, 2, shards}) {
    std::vector<double> f, c, ratio;
    uint64_t i = 0;
    for (int p = 0; p < pairs; ++p) {
      const double fl = floor.Sample();
      const auto t0 = Clock::now();
      auto txn = (*db)->Begin(TxnOptions{});
      for (int s = 0; s < k; ++s) {
        txn->Put(absl::StrCat(s, "key", i++ % 10000), value).IgnoreError();
      }
      absl::Status st = txn->Commit();
      const double cm = Micros(t0, Clock::now());
      if (fl < 0 || !st.ok()) {
        std::fprintf(stderr, "sample failed: %s\n", st.ToString().c_str());
        return 1;
      }
      f.push_back(fl);
      c.push_back(cm);
      ratio.push_back(cm / fl);
    }
    const double fp = Median(f), cp = Median(c);
    std::printf("%-22s %9.0f us %9.0f us %13.2fx %17.2fx\n",
                absl::StrCat(k, k == 1 ? " shard (one-phase)" : " shards (2PC)").c_str(), fp, cp,
                cp / fp, Median(ratio));
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace shardtx

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return shardtx::Main();
}
