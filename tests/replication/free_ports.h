// Free TCP ports on 127.0.0.1 for the tests that run RaftNodes over real sockets
// (util/loopback_ports.h, with a test failure when none is found).
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "absl/time/time.h"
#include "shardtx/options.h"
#include "tests/replication/loopback_timing.h"
#include "util/loopback_ports.h"

namespace shardtx::replication {

// n distinct free TCP ports on 127.0.0.1.
inline std::vector<int> FreePorts(int n) {
  std::vector<int> ports;
  for (int i = 0; i < n; i++) {
    const int p = FreeLoopbackPortRange(1, ports);
    if (p == 0) {
      ADD_FAILURE() << "cannot find a free port";
      continue;
    }
    ports.push_back(p);
  }
  return ports;
}

// The first of `count` consecutive free TCP ports on 127.0.0.1 (a replicated Database's member
// uses P .. P+shards), avoiding `avoid` ports already handed out; 0 if none was found.
inline int FreePortRange(int count, const std::vector<int>& avoid = {}) {
  const int first = FreeLoopbackPortRange(count, avoid);
  if (first == 0) ADD_FAILURE() << "no " << count << " consecutive free ports";
  return first;
}

// `n` members with ids 1..n on 127.0.0.1, each address "127.0.0.1:P" with P .. P+shards free
// (a replicated Database's member uses P for snapshots and P+1+g for shard g's group).
inline std::vector<ReplicationMember> LoopbackMembers(int n, uint32_t shards) {
  std::vector<ReplicationMember> members;
  std::vector<int> used;
  for (int id = 1; id <= n; ++id) {
    const int p = FreePortRange(1 + static_cast<int>(shards), used);
    for (uint32_t i = 0; i <= shards; ++i) used.push_back(p + static_cast<int>(i));
    members.push_back({static_cast<uint64_t>(id), absl::StrCat("127.0.0.1:", p)});
  }
  return members;
}

// An empty directory for one test's nodes: <base>/shardtx_<kind>_p<pid>_<name>, base /dev/shm
// when there is one (the Raft logs' O_DSYNC writes are cheap there), else the test temp dir.
inline std::string FreshTestRoot(const std::string& kind, const std::string& name) {
  std::error_code ec;
  const std::string base =
      std::filesystem::is_directory("/dev/shm", ec) ? "/dev/shm" : ::testing::TempDir();
  std::string root = absl::StrCat(base, "/shardtx_", kind, "_p", ::getpid(), "_", name);
  std::filesystem::remove_all(root, ec);
  std::filesystem::create_directories(root, ec);
  return root;
}

// The options of a small replicated node as the loopback tests open it, at `path`: `shards`
// shards, a key placed by its first byte ('a' on shard 0, 'b' on 1, ...; anything past the last
// shard, or before 'a', on the last), 256 KiB WAL segments, 64 KiB transactions, a 32 MiB LMDB
// map; member `id` of `cluster`, with loopback_timing.h's Raft timing. Gathering stays on.
inline Options LoopbackNodeOptions(const std::string& path, uint32_t shards, uint64_t id,
                                   const std::string& cluster,
                                   const std::vector<ReplicationMember>& members) {
  Options o;
  o.path = path;
  o.num_shards = shards;
  o.partitioning = Options::Partitioning::kExplicit;
  o.explicit_shard = [shards](absl::string_view key) {
    const uint32_t byte = key.empty() ? shards : static_cast<unsigned char>(key[0]);
    return byte < 'a' ? shards - 1 : std::min<uint32_t>(byte - 'a', shards - 1);
  };
  o.wal_segment_size = 256 << 10;
  o.max_txn_bytes = 64 << 10;
  o.lmdb_map_size = 32ull << 20;
  o.replication.node_id = id;
  o.replication.cluster_id = cluster;
  o.replication.members = members;
  o.replication.election_timeout = absl::Milliseconds(kElectionMs);
  o.replication.heartbeat = absl::Milliseconds(kHeartbeatMs);
  return o;
}

}  // namespace shardtx::replication
