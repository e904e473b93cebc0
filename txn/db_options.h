// What the public Options mean below the façade: which are acceptable, and what each shard
// of the engine is opened with.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "engine/shard.h"
#include "shardtx/env.h"
#include "shardtx/options.h"

namespace shardtx::txn {

// kInvalidArgument naming the first option out of range or at odds with another.
absl::Status ValidateOptions(const Options& options);

// The engine options of a shard whose directory is `dir`.
engine::ShardOptions ShardOptionsFor(const Options& options, Env* env, const std::string& dir);

}  // namespace shardtx::txn
