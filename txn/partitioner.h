// Partitioner: which shard holds a key. Jump consistent hashing (Lamping & Veach, 2014) over
// XXH3 of the key by default.
#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"

namespace shardtx::txn {

class Partitioner {
 public:
  explicit Partitioner(uint32_t num_shards) : num_shards_(num_shards) {}
  uint32_t ShardOf(absl::string_view key) const;
  uint32_t num_shards() const { return num_shards_; }

 private:
  uint32_t num_shards_;
};

}  // namespace shardtx::txn
