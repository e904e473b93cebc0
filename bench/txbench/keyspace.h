// KeySpace: the keys every engine stores, the shard of each (shardtx's own partitioner, used
// for every engine so that all do the same work), the preloaded values, and the uniform or
// Zipfian choice of keys. Immutable after construction; shared by all client threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "shardtx/partitioning.h"

namespace txbench {

// A small, fast generator (SplitMix64): one per client thread.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n). REQUIRES: n > 0.
  uint64_t Uniform(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }
  // Uniform in [0, 1).
  double NextDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

// YCSB's Zipfian generator (Gray et al., "Quickly generating billion-record synthetic
// databases"): rank 0 is the most popular of n items. theta in (0, 1).
class Zipf {
 public:
  Zipf(uint64_t n, double theta);
  uint64_t Next(Rng& rng) const;

 private:
  uint64_t n_;
  double zetan_, alpha_, eta_, half_pow_theta_;
};

class KeySpace {
 public:
  // Keys are "k" followed by the decimal index zero-padded to key_size bytes.
  // zipf = 0 chooses uniformly.
  KeySpace(uint64_t num_keys, uint32_t key_size, uint32_t value_size, uint32_t num_shards,
           double zipf, uint64_t seed);

  uint64_t size() const { return num_keys_; }
  uint32_t num_shards() const { return num_shards_; }
  uint32_t key_size() const { return key_size_; }
  uint32_t value_size() const { return value_size_; }

  std::string Key(uint64_t index) const;
  // The same key, written into *key (reusing its capacity: no allocation per key).
  void KeyInto(uint64_t index, std::string* key) const;
  uint32_t ShardOfIndex(uint64_t index) const { return shard_of_[index]; }
  uint32_t ShardOfKey(absl::string_view key) const { return partitioner_.ShardOf(key); }
  // The indexes of the keys that live on `shard`, ascending.
  const std::vector<uint64_t>& KeysOfShard(uint32_t shard) const { return by_shard_[shard]; }

  // A key index over the whole key space / within one shard (uniform or Zipfian by rank).
  uint64_t PickAny(Rng& rng) const;
  uint64_t PickInShard(uint32_t shard, Rng& rng) const;

  // value_size bytes: the value preloaded under key `index` (deterministic), or fresh bytes
  // for a write. Views into a shared pool of random printable bytes.
  absl::string_view InitialValue(uint64_t index) const;
  absl::string_view RandomValue(Rng& rng) const;

 private:
  uint64_t num_keys_;
  uint32_t key_size_, value_size_, num_shards_;
  shardtx::KeyPartitioning partitioner_;
  std::vector<uint32_t> shard_of_;
  std::vector<std::vector<uint64_t>> by_shard_;
  std::vector<Zipf> shard_zipf_;  // one per shard when zipf > 0
  std::vector<Zipf> any_zipf_;    // empty or one
  std::string pool_;
};

// Bank balances are stored as a value of value_size bytes (at least 20): the balance in
// decimal, zero-padded to 20 digits, then filler.
std::string EncodeBalance(int64_t balance, uint32_t value_size);
// -1 if the value is not a balance.
int64_t DecodeBalance(absl::string_view value);
inline constexpr int64_t kInitialBalance = 1000;

}  // namespace txbench
