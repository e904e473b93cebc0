// Partitioner: which shard holds a key. Jump consistent hashing (Lamping & Veach, 2014) over
// XXH3 of the key by default; range partitioning by split points; or the host's own function.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "shardtx/options.h"

namespace shardtx::txn {

class Partitioner {
 public:
  // kInvalidArgument if the options do not describe a valid partitioning of num_shards.
  static absl::Status Validate(const Options& options, uint32_t num_shards);
  Partitioner(const Options& options, uint32_t num_shards);
  uint32_t ShardOf(absl::string_view key) const;
  uint32_t num_shards() const { return num_shards_; }
  // A one-line description recorded in the directory ("hash", "range <hex split points>",
  // "explicit").
  static std::string Describe(const Options& options);

 private:
  Options::Partitioning scheme_;
  uint32_t num_shards_;
  std::vector<std::string> splits_;
  std::function<uint32_t(absl::string_view)> explicit_;
};

}  // namespace shardtx::txn
