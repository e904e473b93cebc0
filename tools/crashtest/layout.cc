#include "tools/crashtest/layout.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace shardtx::crashtest {

std::string ShardPrefix(int shard) { return absl::StrFormat("s%03d", shard); }

std::string AccountKey(int shard, int i) { return absl::StrFormat("s%03d/bank/%02d", shard, i); }

std::string MarkerKey(int shard, int thread) {
  return absl::StrFormat("s%03d/mark/t%02d", shard, thread);
}

std::string OverwriteKey(int shard, int thread, int k) {
  return absl::StrFormat("s%03d/ow/t%02d/%d", shard, thread, k);
}

std::string InsertKey(int shard, int round, int thread, uint64_t seq, int j) {
  return absl::StrFormat("s%03d/ins/r%06d/t%02d/%06d.%d", shard, round, thread, seq, j);
}

std::string AsyncKey(int shard, int round, int thread, uint64_t seq, int j) {
  return absl::StrFormat("s%03d/async/r%06d/t%02d/%06d.%d", shard, round, thread, seq, j);
}

std::string PreparedKey(int shard, const std::string& name, const std::string& j) {
  return absl::StrFormat("s%03d/np/%s/%s", shard, name, j);
}

int ShardOfKey(absl::string_view key) {
  if (key.size() < 5 || key[0] != 's' || key[4] != '/') return -1;
  int shard = 0;
  if (!absl::SimpleAtoi(key.substr(1, 3), &shard)) return -1;
  return shard;
}

bool IsAccountKey(absl::string_view key) { return key.size() > 10 && key.substr(4, 6) == "/bank/"; }

std::string UniqueValue(int round, int thread, uint64_t seq, int j) {
  return absl::StrCat(round, ".", thread, ".", seq, ".", j);
}

Options MakeOptions(const std::string& path, int shards, Options::LogLayout log_layout) {
  Options o;
  o.path = path;
  o.num_shards = static_cast<uint32_t>(shards);
  o.log_layout = log_layout;
  o.partitioning = Options::Partitioning::kRange;
  for (int i = 1; i < shards; ++i) o.range_split_points.push_back(ShardPrefix(i));
  o.wal_segment_size = 64 << 10;  // the smallest: many segment rolls and recycled segments
  o.max_txn_bytes = 16 << 10;
  o.checkpoint_wal_bytes = 160 << 10;
  o.checkpoint_overlay_bytes = 96 << 10;
  o.checkpoint_txn_bytes = 4 << 10;  // checkpoints of several LMDB transactions: crashes between
  o.overlay_limit_bytes = 8 << 20;
  o.checkpoint_interval = absl::Milliseconds(200);
  o.max_open_transactions = 256;
  o.lmdb_map_size = 4 << 20;  // small, so that the map grows now and then
  return o;
}

}  // namespace shardtx::crashtest
