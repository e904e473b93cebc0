// A latency histogram with logarithmic buckets (about 4% wide), safe to record into from many
// threads at once, cheap enough for the commit path (one relaxed atomic increment).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace shardtx {

// Whole microseconds from `start` until now: what latency histograms record.
inline uint64_t MicrosSince(std::chrono::steady_clock::time_point start) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now() - start)
                                   .count());
}

class Histogram {
 public:
  // Records one value (microseconds, or any non-negative unit).
  void Add(uint64_t value);
  // The value below which `p` percent of recorded values fall (upper bucket bound).
  uint64_t Percentile(double p) const;
  uint64_t Count() const;
  uint64_t Max() const { return max_.load(std::memory_order_relaxed); }
  double Mean() const;
  void Merge(const Histogram& other);
  void Clear();
  // "count=… mean=… p50=… p99=… p99.9=… max=…"
  std::string Summary() const;

 private:
  static constexpr int kBuckets = 512;
  static int BucketFor(uint64_t v);
  static uint64_t BucketUpper(int b);
  std::array<std::atomic<uint64_t>, kBuckets> counts_{};
  std::atomic<uint64_t> sum_{0};
  std::atomic<uint64_t> max_{0};
};

}  // namespace shardtx
