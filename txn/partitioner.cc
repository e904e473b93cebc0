#include "txn/partitioner.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "shardtx/partitioning.h"
#include "txn/db_directory.h"
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

absl::Status Partitioner::Validate(const Options& options, uint32_t num_shards) {
  switch (options.partitioning) {
    case Options::Partitioning::kHash:
      return absl::OkStatus();
    case Options::Partitioning::kRange: {
      const auto& s = options.range_split_points;
      if (s.size() + 1 != num_shards) {
        return absl::InvalidArgumentError(absl::StrCat("range partitioning of ", num_shards,
                                                       " shards needs ", num_shards - 1,
                                                       " split points, got ", s.size()));
      }
      for (size_t i = 1; i < s.size(); ++i) {
        if (!(s[i - 1] < s[i])) {
          return absl::InvalidArgumentError("range split points must be strictly ascending");
        }
      }
      return absl::OkStatus();
    }
    case Options::Partitioning::kExplicit:
      if (!options.explicit_shard) {
        return absl::InvalidArgumentError("explicit partitioning needs Options.explicit_shard");
      }
      return absl::OkStatus();
  }
  return absl::InvalidArgumentError("unknown partitioning");
}

Partitioner::Partitioner(const Options& options, uint32_t num_shards)
    : scheme_(options.partitioning),
      num_shards_(num_shards),
      splits_(options.range_split_points),
      explicit_(options.explicit_shard) {}

uint32_t Partitioner::ShardOf(absl::string_view key) const {
  if (num_shards_ <= 1) return 0;
  switch (scheme_) {
    case Options::Partitioning::kHash:
      return JumpHash(XXH3_64bits(key.data(), key.size()), num_shards_);
    case Options::Partitioning::kRange:
      return static_cast<uint32_t>(std::upper_bound(splits_.begin(), splits_.end(), key) -
                                   splits_.begin());
    case Options::Partitioning::kExplicit:
      return std::min(explicit_(key), num_shards_ - 1);
  }
  return 0;
}

std::string Partitioner::Describe(const Options& options) {
  switch (options.partitioning) {
    case Options::Partitioning::kHash:
      return "hash";
    case Options::Partitioning::kRange: {
      std::string out = "range";
      for (const auto& s : options.range_split_points) absl::StrAppend(&out, " ", absl::BytesToHexString(s));
      return out;
    }
    case Options::Partitioning::kExplicit:
      return "explicit";
  }
  return "unknown";
}

}  // namespace shardtx::txn

namespace shardtx {

absl::StatusOr<KeyPartitioning> KeyPartitioning::Make(const Options& options, uint32_t num_shards) {
  if (num_shards == 0 || num_shards > txn::DbDirectory::kMaxShards) {
    return absl::InvalidArgumentError(absl::StrCat("KeyPartitioning: ", num_shards,
                                                   " shards (must be in [1, ",
                                                   txn::DbDirectory::kMaxShards, "])"));
  }
  if (absl::Status s = txn::Partitioner::Validate(options, num_shards); !s.ok()) return s;
  return KeyPartitioning(std::make_shared<const txn::Partitioner>(options, num_shards));
}

uint32_t KeyPartitioning::ShardOf(absl::string_view key) const { return impl_->ShardOf(key); }

uint32_t KeyPartitioning::num_shards() const { return impl_->num_shards(); }

}  // namespace shardtx
