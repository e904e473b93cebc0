// Which shard holds a key, without opening a database: for hosts that route work or place
// data by shard, and for tools that must agree with a database's own map (the benchmark
// gives every engine shardtx's map this way).
#pragma once

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "shardtx/options.h"

namespace shardtx {

namespace txn {
class Partitioner;
}  // namespace txn

class KeyPartitioning {
 public:
  // The map that a database opened with `options` and `num_shards` shards uses (the
  // partitioning options: Options::partitioning and what it needs). kInvalidArgument when the
  // options do not describe a valid partitioning of num_shards (0 or above 1024 included).
  static absl::StatusOr<KeyPartitioning> Make(const Options& options, uint32_t num_shards);

  // The shard of `key`, in [0, num_shards()).
  uint32_t ShardOf(absl::string_view key) const;
  uint32_t num_shards() const;

 private:
  explicit KeyPartitioning(std::shared_ptr<const txn::Partitioner> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const txn::Partitioner> impl_;  // shared: copies are cheap and immutable
};

}  // namespace shardtx
