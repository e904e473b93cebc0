// Tests' direct access to a shard store's LMDB files, bypassing ShardStore: to damage what a
// checkpoint wrote, or to write a store in an older format. The store must be closed.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include "gtest/gtest.h"
#include "lmdb.h"
#include "util/coding.h"

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

// A format-1 store (no checks, no digest) in `dir`, written the way the old build wrote it.
inline void WriteFormat1Store(const std::string& dir,
                              const std::map<std::string, std::string>& data, uint64_t ts,
                              uint64_t applied_lsn, bool with_prepared_row = true) {
  std::filesystem::create_directories(dir);
  RawWrite(dir, [&](MDB_txn* txn, const auto& open) {
    const MDB_dbi d = open("data"), meta = open("meta"), prepared = open("prepared");
    for (const auto& [k, v] : data) {
      std::string stored;
      PutFixed64(&stored, ts);
      stored += v;
      RawPut(txn, d, k, stored);
    }
    if (with_prepared_row) {
      RawPut(txn, prepared, std::string("\0\0\0\0\0\0\0\1", 8), "prepare-record");
    }
    std::string f, lsn, max_ts;
    PutFixed32(&f, 1);
    PutFixed64(&lsn, applied_lsn);
    PutFixed64(&max_ts, ts);
    RawPut(txn, meta, "format_version", f);
    RawPut(txn, meta, "applied_lsn", lsn);
    RawPut(txn, meta, "max_ts", max_ts);
  });
}

}  // namespace shardtx::testing
