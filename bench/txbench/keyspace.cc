#include "bench/txbench/keyspace.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "shardtx/partitioning.h"

namespace txbench {
namespace {

// shardtx's default map (hash partitioning) of `num_shards` shards; Config::Validate keeps
// the number in range.
shardtx::KeyPartitioning DefaultPartitioning(uint32_t num_shards) {
  auto p = shardtx::KeyPartitioning::Make(shardtx::Options(), num_shards);
  if (!p.ok()) {
    std::fprintf(stderr, "txbench: %s\n", p.status().ToString().c_str());
    std::abort();
  }
  return *std::move(p);
}

double Zeta(uint64_t n, double theta) {
  double sum = 0;
  for (uint64_t i = 1; i <= n; ++i) sum += 1.0 / std::pow(static_cast<double>(i), theta);
  return sum;
}

}  // namespace

Zipf::Zipf(uint64_t n, double theta) : n_(n) {
  zetan_ = Zeta(n, theta);
  const double zeta2 = Zeta(2, theta);
  alpha_ = 1.0 / (1.0 - theta);
  eta_ = (1 - std::pow(2.0 / static_cast<double>(n), 1 - theta)) / (1 - zeta2 / zetan_);
  half_pow_theta_ = 1 + std::pow(0.5, theta);
}

uint64_t Zipf::Next(Rng& rng) const {
  const double u = rng.NextDouble();
  const double uz = u * zetan_;
  if (uz < 1.0) return 0;
  if (uz < half_pow_theta_) return 1 < n_ ? 1 : 0;
  const auto r =
      static_cast<uint64_t>(static_cast<double>(n_) * std::pow(eta_ * u - eta_ + 1, alpha_));
  return std::min(r, n_ - 1);
}

KeySpace::KeySpace(uint64_t num_keys, uint32_t key_size, uint32_t value_size, uint32_t num_shards,
                   double zipf, uint64_t seed)
    : num_keys_(num_keys),
      key_size_(key_size),
      value_size_(value_size),
      num_shards_(num_shards),
      partitioner_(DefaultPartitioning(num_shards)) {
  shard_of_.resize(num_keys);
  by_shard_.resize(num_shards);
  for (uint64_t i = 0; i < num_keys; ++i) {
    shard_of_[i] = partitioner_.ShardOf(Key(i));
    by_shard_[shard_of_[i]].push_back(i);
  }
  if (zipf > 0) {
    any_zipf_.emplace_back(num_keys, zipf);
    for (uint32_t s = 0; s < num_shards; ++s) {
      shard_zipf_.emplace_back(std::max<uint64_t>(by_shard_[s].size(), 1), zipf);
    }
  }
  Rng rng(seed ^ 0x5eed);
  pool_.resize(std::max<size_t>(1 << 16, 4 * static_cast<size_t>(value_size)));
  static constexpr char kAlphabet[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
  for (char& c : pool_) c = kAlphabet[rng.Next() & 63];
}

std::string KeySpace::Key(uint64_t index) const {
  std::string key;
  KeyInto(index, &key);
  return key;
}

void KeySpace::KeyInto(uint64_t index, std::string* key) const {
  // "k" and the index in decimal, zero-padded to key_size_ - 1 digits (more if it needs more).
  // Formatted by hand into the caller's string (its capacity reused): every transaction makes
  // its keys here, and a formatting library's general path, or an allocation per key, costs
  // the clients more CPU than some engines' whole commit.
  char digits[20];
  size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + index % 10);
    index /= 10;
  } while (index != 0);
  const size_t width = std::max<size_t>(key_size_ - 1, n);
  key->assign(1 + width, '0');
  (*key)[0] = 'k';
  for (size_t i = 0; i < n; ++i) (*key)[width - i] = digits[i];
}

uint64_t KeySpace::PickAny(Rng& rng) const {
  if (any_zipf_.empty()) return rng.Uniform(num_keys_);
  return any_zipf_[0].Next(rng);
}

uint64_t KeySpace::PickInShard(uint32_t shard, Rng& rng) const {
  const std::vector<uint64_t>& keys = by_shard_[shard];
  if (shard_zipf_.empty()) return keys[rng.Uniform(keys.size())];
  return keys[shard_zipf_[shard].Next(rng)];
}

absl::string_view KeySpace::InitialValue(uint64_t index) const {
  Rng r(index * 0x9e3779b97f4a7c15ull + 17);
  return absl::string_view(pool_).substr(r.Uniform(pool_.size() - value_size_), value_size_);
}

absl::string_view KeySpace::RandomValue(Rng& rng) const {
  return absl::string_view(pool_).substr(rng.Uniform(pool_.size() - value_size_), value_size_);
}

std::string EncodeBalance(int64_t balance, uint32_t value_size) {
  std::string v = absl::StrFormat("%020d", balance);
  if (v.size() < value_size) v.resize(value_size, '.');
  return v;
}

int64_t DecodeBalance(absl::string_view value) {
  int64_t b;
  if (value.size() < 20 || !absl::SimpleAtoi(value.substr(0, 20), &b)) return -1;
  return b;
}

}  // namespace txbench
