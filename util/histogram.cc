#include "util/histogram.h"

#include <bit>
#include <cmath>

#include "absl/strings/str_format.h"

namespace shardtx {

// Buckets: values 0..15 exact; above, 16 sub-buckets per power of two.
int Histogram::BucketFor(uint64_t v) {
  if (v < 16) return static_cast<int>(v);
  int log = 63 - std::countl_zero(v);  // >= 4
  int sub = static_cast<int>((v >> (log - 4)) & 15);
  int b = 16 + (log - 4) * 16 + sub;
  return b < kBuckets ? b : kBuckets - 1;
}

uint64_t Histogram::BucketUpper(int b) {
  if (b < 16) return static_cast<uint64_t>(b);
  int log = (b - 16) / 16 + 4;
  int sub = (b - 16) % 16;
  if (log >= 63) return UINT64_MAX;
  return ((16ull + static_cast<uint64_t>(sub) + 1) << (log - 4)) - 1;
}

void Histogram::Add(uint64_t value) {
  counts_[BucketFor(value)].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
  uint64_t m = max_.load(std::memory_order_relaxed);
  while (value > m && !max_.compare_exchange_weak(m, value, std::memory_order_relaxed)) {
  }
}

uint64_t Histogram::Count() const {
  uint64_t n = 0;
  for (const auto& c : counts_) n += c.load(std::memory_order_relaxed);
  return n;
}

double Histogram::Mean() const {
  uint64_t n = Count();
  return n == 0 ? 0.0 : static_cast<double>(sum_.load(std::memory_order_relaxed)) / n;
}

uint64_t Histogram::Percentile(double p) const {
  uint64_t n = Count();
  if (n == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(n)));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (int b = 0; b < kBuckets; ++b) {
    seen += counts_[b].load(std::memory_order_relaxed);
    if (seen >= rank) {
      uint64_t upper = BucketUpper(b);
      uint64_t m = Max();
      return upper < m ? upper : m;
    }
  }
  return Max();
}

void Histogram::Merge(const Histogram& other) {
  for (int b = 0; b < kBuckets; ++b) {
    counts_[b].fetch_add(other.counts_[b].load(std::memory_order_relaxed),
                         std::memory_order_relaxed);
  }
  sum_.fetch_add(other.sum_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  uint64_t om = other.Max();
  uint64_t m = max_.load(std::memory_order_relaxed);
  while (om > m && !max_.compare_exchange_weak(m, om, std::memory_order_relaxed)) {
  }
}

void Histogram::Clear() {
  for (auto& c : counts_) c.store(0, std::memory_order_relaxed);
  sum_.store(0, std::memory_order_relaxed);
  max_.store(0, std::memory_order_relaxed);
}

std::string Histogram::Summary() const {
  return absl::StrFormat("count=%d mean=%.1f p50=%d p99=%d p99.9=%d max=%d", Count(), Mean(),
                         Percentile(50), Percentile(99), Percentile(99.9), Max());
}

}  // namespace shardtx
