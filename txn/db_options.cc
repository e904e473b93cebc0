#include "txn/db_options.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "txn/db_directory.h"
#include "txn/replicated_shards.h"

namespace shardtx {

const char* LogLayoutName(Options::LogLayout layout) {
  return layout == Options::LogLayout::kShared ? "shared" : "per-shard";
}

absl::StatusOr<Options::LogLayout> ParseLogLayout(absl::string_view name) {
  const std::string n = absl::AsciiStrToLower(absl::StripAsciiWhitespace(name));
  if (n == "shared") return Options::LogLayout::kShared;
  if (n == "per-shard") return Options::LogLayout::kPerShard;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown log layout '", name, "' (choose from shared|per-shard)"));
}

}  // namespace shardtx

namespace shardtx::txn {

absl::Status ValidateOptions(const Options& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("Options.path is empty");
  if (options.num_shards > DbDirectory::kMaxShards) {
    return absl::InvalidArgumentError(absl::StrCat("Options.num_shards ", options.num_shards,
                                                   " exceeds ", DbDirectory::kMaxShards));
  }
  if (options.overlay_limit_bytes != 0 &&
      options.overlay_limit_bytes < options.checkpoint_overlay_bytes) {
    return absl::InvalidArgumentError(
        "Options.overlay_limit_bytes must be >= checkpoint_overlay_bytes");
  }
  if (options.wal_segment_size % 8 != 0 || options.wal_segment_size < (64u << 10) ||
      options.wal_segment_size > (1u << 30)) {
    return absl::InvalidArgumentError(absl::StrCat("Options.wal_segment_size ",
                                                   options.wal_segment_size,
                                                   " must be a multiple of 8 in [64 KiB, 1 GiB]"));
  }
  if (options.max_txn_bytes == 0 || options.max_txn_bytes > options.wal_segment_size / 2) {
    return absl::InvalidArgumentError(absl::StrCat("Options.max_txn_bytes ", options.max_txn_bytes,
                                                   " must be in [1, wal_segment_size / 2]"));
  }
  // Written so that NaN fails too.
  if (!(options.checkpoint_pace >= 0 && options.checkpoint_pace <= 100)) {
    return absl::InvalidArgumentError(
        absl::StrCat("Options.checkpoint_pace ", options.checkpoint_pace, " must be in [0, 100]"));
  }
  if (options.max_async_commits == 0 || options.max_async_commits > (1u << 20)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Options.max_async_commits ", options.max_async_commits, " must be in [1, 1048576]"));
  }
  return ReplicatedShards::Validate(options);
}

engine::ShardOptions ShardOptionsFor(const Options& options, Env* env, const std::string& dir) {
  engine::ShardOptions so;
  so.dir = dir;
  so.env = env;
  so.wal_segment_size = options.wal_segment_size;
  so.max_record_size = options.max_txn_bytes + 1024;  // room for a record's own fields
  so.lmdb_map_size = options.lmdb_map_size;
  so.max_readers = options.max_open_transactions;
  so.checkpoint_chunk_bytes = options.checkpoint_txn_bytes;
  so.checkpoint_wal_bytes = options.checkpoint_wal_bytes;
  so.checkpoint_overlay_bytes = options.checkpoint_overlay_bytes;
  so.overlay_limit_bytes = options.overlay_limit_bytes;
  so.checkpoint_interval = options.checkpoint_interval;
  so.checkpointed_deletes_bytes = options.checkpointed_deletes_bytes;
  so.checkpoint_pace = options.checkpoint_pace;
  return so;
}

}  // namespace shardtx::txn
