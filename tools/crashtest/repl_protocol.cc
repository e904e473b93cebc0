#include "tools/crashtest/repl_protocol.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
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

std::string ReplCycleKey(int node) {
  return absl::StrFormat("%s/cyc/%04d", ReplShardPrefix(node / kReplCycleNodes), node);
}
bool ReplCycleNode(const std::string& key, int* node) {
  const size_t at = key.find("/cyc/");
  return at != std::string::npos && absl::SimpleAtoi(key.substr(at + 5), node) && *node >= 0;
}
bool ReplOneCycle(const std::map<int, int>& next, int count, std::string* broken) {
  std::vector<bool> seen(static_cast<size_t>(count), false);
  int at = 0;
  for (int step = 0; step < count; ++step) {
    if (seen[static_cast<size_t>(at)]) {
      *broken = absl::StrCat("node ", at, " reached again after ", step, " of ", count, " steps");
      return false;
    }
    seen[static_cast<size_t>(at)] = true;
    auto it = next.find(at);
    const int n = it == next.end() ? (at + 1) % count : it->second;
    if (n < 0 || n >= count) {
      *broken = absl::StrCat("node ", at, " points to ", n, ", not a node");
      return false;
    }
    at = n;
  }
  if (at != 0) {
    *broken = absl::StrCat("the walk from node 0 ends at node ", at, " after ", count, " steps");
    return false;
  }
  return true;
}

std::string ReplNamedName(uint64_t txn) { return absl::StrFormat("ct-%016x", txn); }
bool ReplNamedTxn(const std::string& name, uint64_t* txn) {
  return absl::StartsWith(name, "ct-") && absl::SimpleHexAtoi(name.substr(3), txn);
}
bool ReplNamedCommits(uint64_t seed, uint64_t txn) {
  uint64_t x = (seed ^ txn) * 0x9E3779B97F4A7C15ULL;  // one round of a 64-bit mix
  x ^= x >> 29;
  x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 32;
  return x % 4 != 0;
}

}  // namespace shardtx::crashtest
