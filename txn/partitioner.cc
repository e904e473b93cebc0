#include "txn/partitioner.h"

#include "xxhash.h"

namespace shardtx::txn {
namespace {

// Jump consistent hash: maps a 64-bit key to one of n buckets, moving only 1/n of the keys
// when n grows by one.
uint32_t JumpHash(uint64_t key, uint32_t n) {
  int64_t b = -1, j = 0;
  while (j < static_cast<int64_t>(n)) {
    b = j;
    key = key * 2862933555777941757ull + 1;
    j = static_cast<int64_t>(static_cast<double>(b + 1) *
                             (static_cast<double>(1ll << 31) /
                              static_cast<double>((key >> 33) + 1)));
  }
  return static_cast<uint32_t>(b);
}

}  // namespace

uint32_t Partitioner::ShardOf(absl::string_view key) const {
  if (num_shards_ <= 1) return 0;
  return JumpHash(XXH3_64bits(key.data(), key.size()), num_shards_);
}

}  // namespace shardtx::txn
