// The C API (include/shardtx/c.h) on a replicated database: three nodes in this process on
// 127.0.0.1, opened, queried and written through the C calls only (linked against
// libshardtx.so like a C host). C++ only for gtest and the free-port helper.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "shardtx/c.h"
#include "tests/replication/free_ports.h"
#include "tests/replication/loopback_timing.h"

namespace {

using shardtx::replication::kElectionMs;
using shardtx::replication::kHeartbeatMs;
using shardtx::replication::WaitFor;

constexpr uint32_t kShards = 2;

// A malloc'd C string, freed with shardtx_free.
struct CStr {
  char* p = nullptr;
  ~CStr() { shardtx_free(p); }
  std::string str() const { return p == nullptr ? "" : p; }
};

std::string Dir(const std::string& name) {
  std::string d = ::testing::TempDir() + "/shardtx_capi_repl_" + std::to_string(::getpid()) +
                  "_" + name;
  std::error_code ec;
  std::filesystem::remove_all(d, ec);
  std::filesystem::create_directories(d, ec);
  EXPECT_FALSE(ec) << ec.message();
  return d;
}

struct Node {
  shardtx_db_t* db = nullptr;
  ~Node() { EXPECT_EQ(shardtx_close(db, nullptr), SHARDTX_OK); }
};

// Options of member `id` of the cluster whose members are at `ports` (ids 1..3).
shardtx_options_t* NodeOptions(const std::string& dir, uint64_t id, const std::vector<int>& ports) {
  shardtx_options_t* o = shardtx_options_create();
  EXPECT_EQ(shardtx_options_set_path(o, (dir + "/node" + std::to_string(id)).c_str(), nullptr),
            SHARDTX_OK);
  shardtx_options_set_num_shards(o, kShards);
  shardtx_options_set_lmdb_map_size(o, 32ull << 20);
  EXPECT_EQ(shardtx_options_set_replication(o, id, "capi-cluster", nullptr), SHARDTX_OK);
  for (size_t i = 0; i < ports.size(); ++i) {
    const std::string address = "127.0.0.1:" + std::to_string(ports[i]);
    EXPECT_EQ(shardtx_options_add_member(o, i + 1, address.c_str(), nullptr), SHARDTX_OK);
  }
  // Node 1 stands first, and is where the leaders gather: it leads every shard.
  shardtx_options_set_raft_timing(o, id == 1 ? kElectionMs : 10 * kElectionMs, kHeartbeatMs);
  shardtx_options_set_preferred_leader(o, 1);
  return o;
}

std::vector<int> MemberPorts() {
  std::vector<int> ports, used;
  for (int i = 0; i < 3; ++i) {
    const int p = shardtx::replication::FreePortRange(1 + kShards, used);
    for (uint32_t k = 0; k <= kShards; ++k) used.push_back(p + static_cast<int>(k));
    ports.push_back(p);
  }
  return ports;
}

bool ReadyLeaderOfAll(shardtx_db_t* db) {
  for (uint32_t g = 0; g < kShards; ++g) {
    shardtx_role role;
    int ready = 0;
    uint64_t term = 0, leader = 0;
    CStr address;
    if (shardtx_shard_leader(db, g, &role, &ready, &term, &leader, &address.p, nullptr) !=
            SHARDTX_OK ||
        role != SHARDTX_ROLE_LEADER || ready == 0) {
      return false;
    }
  }
  return true;
}

shardtx_code Put(shardtx_db_t* db, const std::string& key, const std::string& value,
                 uint64_t* id, std::string* error) {
  shardtx_txn_t* txn = nullptr;
  EXPECT_EQ(shardtx_begin(db, SHARDTX_SNAPSHOT, SHARDTX_SYNC, &txn, nullptr), SHARDTX_OK);
  EXPECT_EQ(shardtx_put(txn, key.data(), key.size(), value.data(), value.size(), nullptr),
            SHARDTX_OK);
  CStr err;
  const shardtx_code code = shardtx_commit(txn, &err.p);
  if (id != nullptr) *id = shardtx_txn_id(txn);
  if (error != nullptr) *error = err.str();
  shardtx_txn_destroy(txn);
  return code;
}

std::string Get(shardtx_db_t* db, const std::string& key) {
  shardtx_txn_t* txn = nullptr;
  EXPECT_EQ(shardtx_begin(db, SHARDTX_SNAPSHOT, SHARDTX_SYNC, &txn, nullptr), SHARDTX_OK);
  CStr value;
  size_t len = 0;
  const shardtx_code code = shardtx_get(txn, key.data(), key.size(), &value.p, &len, nullptr);
  shardtx_txn_destroy(txn);
  return code == SHARDTX_OK ? std::string(value.p, len) : "<" + std::string(shardtx_code_name(code)) + ">";
}

TEST(CApiReplicated, ThreeNodesElectCommitRefuseOnAFollowerAndAnswerOutcomes) {
  const std::string dir = Dir("three");
  const std::vector<int> ports = MemberPorts();
  Node nodes[3];
  for (uint64_t id = 1; id <= 3; ++id) {
    shardtx_options_t* o = NodeOptions(dir, id, ports);
    CStr err;
    ASSERT_EQ(shardtx_open(o, &nodes[id - 1].db, &err.p), SHARDTX_OK) << err.str();
    shardtx_options_destroy(o);
  }
  ASSERT_TRUE(WaitFor([&] { return ReadyLeaderOfAll(nodes[0].db); }));
  // Every node names node 1 as every shard's leader, with its address.
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(WaitFor([&] {
      for (uint32_t g = 0; g < kShards; ++g) {
        shardtx_role role;
        int ready = 0;
        uint64_t term = 0, leader = 0;
        CStr address;
        if (shardtx_shard_leader(nodes[i].db, g, &role, &ready, &term, &leader, &address.p,
                                 nullptr) != SHARDTX_OK ||
            leader != 1 || address.str() != "127.0.0.1:" + std::to_string(ports[0]) ||
            term == 0 || (i > 0 && (role != SHARDTX_ROLE_FOLLOWER || ready != 0))) {
          return false;
        }
      }
      return true;
    })) << "node " << i + 1;
  }
  uint64_t id = 0;
  std::string error;
  ASSERT_EQ(Put(nodes[0].db, "k1", "v1", &id, &error), SHARDTX_OK) << error;
  ASSERT_NE(id, 0u);
  shardtx_outcome outcome = SHARDTX_OUTCOME_UNKNOWN;
  CStr err;
  ASSERT_EQ(shardtx_get_outcome_of_key(nodes[0].db, id, "k1", 2, &outcome, &err.p), SHARDTX_OK)
      << err.str();
  EXPECT_EQ(outcome, SHARDTX_OUTCOME_COMMITTED);
  for (int i = 1; i < 3; ++i) {
    EXPECT_TRUE(WaitFor([&] { return Get(nodes[i].db, "k1") == "v1"; })) << "node " << i + 1;
  }
  // A follower refuses a commit, naming the leader, with no effect anywhere.
  uint64_t refused_id = 0;
  EXPECT_EQ(Put(nodes[1].db, "k2", "v2", &refused_id, &error), SHARDTX_UNAVAILABLE);
  EXPECT_NE(error.find("server 1"), std::string::npos) << error;
  EXPECT_NE(error.find("127.0.0.1:" + std::to_string(ports[0])), std::string::npos) << error;
  EXPECT_EQ(Get(nodes[0].db, "k2"), "<NOT_FOUND>");
  // A follower that applied the commit knows it; one it refused it cannot call aborted there.
  EXPECT_TRUE(WaitFor([&] {
    return shardtx_get_outcome_of_key(nodes[1].db, id, "k1", 2, &outcome, nullptr) ==
               SHARDTX_OK &&
           outcome == SHARDTX_OUTCOME_COMMITTED;
  }));
  CStr err2;
  EXPECT_EQ(shardtx_get_outcome_of_key(nodes[1].db, refused_id, "k2", 2, &outcome, &err2.p),
            SHARDTX_UNAVAILABLE)
      << err2.str();
  EXPECT_EQ(shardtx_get_outcome_of_key(nodes[0].db, refused_id, "k2", 2, &outcome, nullptr),
            SHARDTX_OK);
  EXPECT_EQ(outcome, SHARDTX_OUTCOME_ABORTED);
}

TEST(CApiReplicated, BadInputIsRefusedWithAClearError) {
  shardtx_options_t* o = shardtx_options_create();
  CStr e1, e2;
  EXPECT_EQ(shardtx_options_set_replication(o, 1, nullptr, &e1.p), SHARDTX_INVALID_ARGUMENT);
  EXPECT_NE(e1.str().find("NULL"), std::string::npos) << e1.str();
  EXPECT_EQ(shardtx_options_add_member(o, 1, nullptr, &e2.p), SHARDTX_INVALID_ARGUMENT);
  // A node that is not among the members: Open refuses it.
  const std::string dir = Dir("bad");
  EXPECT_EQ(shardtx_options_set_path(o, (dir + "/n").c_str(), nullptr), SHARDTX_OK);
  shardtx_options_set_num_shards(o, kShards);
  EXPECT_EQ(shardtx_options_set_replication(o, 7, "capi-cluster", nullptr), SHARDTX_OK);
  EXPECT_EQ(shardtx_options_add_member(o, 1, "127.0.0.1:1", nullptr), SHARDTX_OK);
  shardtx_db_t* db = nullptr;
  CStr e3;
  EXPECT_EQ(shardtx_open(o, &db, &e3.p), SHARDTX_INVALID_ARGUMENT);
  EXPECT_EQ(db, nullptr);
  EXPECT_FALSE(e3.str().empty());
  shardtx_options_destroy(o);
  // An unreplicated database has no leaders to report, and refuses membership changes.
  o = shardtx_options_create();
  EXPECT_EQ(shardtx_options_set_path(o, (dir + "/n").c_str(), nullptr), SHARDTX_OK);
  CStr e4;
  ASSERT_EQ(shardtx_open(o, &db, &e4.p), SHARDTX_OK) << e4.str();
  shardtx_role role;
  int ready = 0;
  uint64_t term = 0, leader = 0;
  CStr address, e5, e6;
  EXPECT_EQ(shardtx_shard_leader(db, 0, &role, &ready, &term, &leader, &address.p, &e5.p),
            SHARDTX_FAILED_PRECONDITION);
  EXPECT_EQ(address.p, nullptr);
  EXPECT_EQ(shardtx_shard_leader(db, 0, &role, &ready, &term, &leader, nullptr, nullptr),
            SHARDTX_INVALID_ARGUMENT);
  EXPECT_EQ(shardtx_add_member(db, 4, "127.0.0.1:2", &e6.p), SHARDTX_FAILED_PRECONDITION);
  EXPECT_EQ(shardtx_close(db, nullptr), SHARDTX_OK);
  shardtx_options_destroy(o);
}

// A shard out of range is refused; the last shard is answered.
TEST(CApiReplicated, ShardOutOfRangeIsRefused) {
  const std::string dir = Dir("range");
  const std::vector<int> ports = MemberPorts();
  shardtx_options_t* o = NodeOptions(dir, 1, std::vector<int>{ports[0]});
  Node node;
  CStr err;
  ASSERT_EQ(shardtx_open(o, &node.db, &err.p), SHARDTX_OK) << err.str();
  shardtx_options_destroy(o);
  shardtx_role role;
  int ready = 0;
  uint64_t term = 0, leader = 0;
  CStr a1, a2, e;
  EXPECT_EQ(shardtx_shard_leader(node.db, kShards - 1, &role, &ready, &term, &leader, &a1.p,
                                 nullptr),
            SHARDTX_OK);
  EXPECT_NE(a1.p, nullptr);
  EXPECT_EQ(shardtx_shard_leader(node.db, kShards, &role, &ready, &term, &leader, &a2.p, &e.p),
            SHARDTX_INVALID_ARGUMENT);
  EXPECT_NE(e.str().find("out of range"), std::string::npos) << e.str();
}

}  // namespace
