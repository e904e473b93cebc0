// Tests' direct access to a shard store's LMDB files, bypassing ShardStore: to damage what a
// checkpoint wrote, or to write a store in an older format. The store must be closed.
#pragma once

#include <functional>
#include <string>

#include "gtest/gtest.h"
#include "lmdb.h"

namespace shardtx::testing {

// One write transaction on the environment in `dir`, committed if `fn` returns without a
// fatal gtest failure. `fn` gets the transaction and a function opening a table by name.
inline void RawWrite(
    const std::string& dir,
    const std::function<void(MDB_txn*, const std::function<MDB_dbi(const char*)>&)>& fn) {
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  ASSERT_EQ(mdb_env_set_maxdbs(env, 8), 0);
  ASSERT_EQ(mdb_env_set_mapsize(env, 64 << 20), 0);
  ASSERT_EQ(mdb_env_open(env, dir.c_str(), 0, 0644), 0);
  MDB_txn* txn = nullptr;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  auto open = [&](const char* name) {
    MDB_dbi dbi = 0;
    EXPECT_EQ(mdb_dbi_open(txn, name, MDB_CREATE, &dbi), 0) << name;
    return dbi;
  };
  fn(txn, open);
  if (::testing::Test::HasFatalFailure()) {
    mdb_txn_abort(txn);
  } else {
    EXPECT_EQ(mdb_txn_commit(txn), 0);
  }
  mdb_env_close(env);
}

inline MDB_val RawVal(const std::string& s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}
MDB_val RawVal(std::string&& s) = delete;  // it would point into a temporary

inline std::string RawGet(MDB_txn* txn, MDB_dbi dbi, const std::string& key) {
  MDB_val k = RawVal(key), v;
  EXPECT_EQ(mdb_get(txn, dbi, &k, &v), 0) << key;
  return std::string(static_cast<const char*>(v.mv_data), v.mv_size);
}

inline void RawPut(MDB_txn* txn, MDB_dbi dbi, const std::string& key, const std::string& value) {
  MDB_val k = RawVal(key), v = RawVal(value);
  EXPECT_EQ(mdb_put(txn, dbi, &k, &v, 0), 0) << key;
}

}  // namespace shardtx::testing
