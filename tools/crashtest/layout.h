// The crashtest database: its options and key layout, shared by the parent (which verifies) and
// the child (which runs the workload). Range partitioning puts every key "sNNN/..." on shard NNN,
// so the tool always knows which shard a write lands on: a transfer can be made cross-shard on
// purpose, and async commits can be checked per shard.
//
//   sNNN/bank/AA          account AA of shard NNN (decimal balance)
//   sNNN/mark/tTT         marker of thread TT on shard NNN: the id of its last transfer there
//   sNNN/ow/tTT/K         overwrite/delete keys owned by thread TT
//   sNNN/ins/rR/tTT/S.J   unique inserts (round R, thread TT, operation S, write J)
//   sNNN/async/rR/tTT/S.J unique inserts committed with Durability::kAsync or kNone
//   sNNN/np/NAME/J        writes of the named prepared transaction NAME
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "shardtx/options.h"

namespace shardtx::crashtest {

constexpr int kMaxShards = 64;
constexpr int kMaxThreads = 64;
constexpr int kAccountsPerShard = 16;
constexpr int64_t kInitialBalance = 1000;
constexpr int kOverwriteKeys = 6;  // per thread and shard

std::string ShardPrefix(int shard);
std::string AccountKey(int shard, int i);
std::string MarkerKey(int shard, int thread);
std::string OverwriteKey(int shard, int thread, int k);
std::string InsertKey(int shard, int round, int thread, uint64_t seq, int j);
std::string AsyncKey(int shard, int round, int thread, uint64_t seq, int j);
std::string PreparedKey(int shard, const std::string& name, const std::string& j);

// The shard of a key of the layout above; -1 if the key does not follow it.
int ShardOfKey(absl::string_view key);
bool IsAccountKey(absl::string_view key);

// A value unique to one write of one operation: "R.T.S.J".
std::string UniqueValue(int round, int thread, uint64_t seq, int j);

// Options of every Open, parent and child: small WAL segments and checkpoint triggers, so that
// segment rolls, checkpoints and WAL recycling happen many times per round. `log_layout` takes
// effect when the database is created (the first Open); later Opens keep the recorded one.
Options MakeOptions(const std::string& path, int shards,
                    Options::LogLayout log_layout = Options::LogLayout::kShared);

}  // namespace shardtx::crashtest
