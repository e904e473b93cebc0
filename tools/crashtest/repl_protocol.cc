#include "tools/crashtest/repl_protocol.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tools/crashtest/layout.h"

namespace shardtx::crashtest {

std::string ReplMarkerKey(int shard, uint64_t txn) {
  return absl::StrFormat("%s/x/%016x", ReplShardPrefix(shard), txn);
}
std::string ReplMarkerValue(int from, int to, int64_t amount) {
  return absl::StrCat(from, ":", to, ":", amount);
}
std::string ReplMarkerValue(int from_shard, int from, int to_shard, int to, int64_t amount) {
  if (from_shard == to_shard) return ReplMarkerValue(from, to, amount);
  return absl::StrCat(from_shard, ".", from, ":", to_shard, ".", to, ":", amount);
}
std::string ReplShardPrefix(int shard) { return ShardPrefix(shard); }

}  // namespace shardtx::crashtest
