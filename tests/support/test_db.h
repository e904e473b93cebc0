// Helpers for engine tests: a fresh database directory per test, and small transaction
// shorthands.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "shardtx/database.h"

namespace shardtx::testing {

// A fresh directory under the test temp dir, named after the running test and this test
// process (the first to ask: children forked later keep its name), so that suites of two
// build trees running at once (make asan and make tsan) never share one.
inline std::string FreshDir(const std::string& suffix = "") {
  static const std::string process = "_p" + std::to_string(::getpid());
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = ::testing::TempDir() + "/shardtx_" + info->test_suite_name() + "_" +
                    info->name() + process + suffix;
  for (size_t i = ::testing::TempDir().size() + 1; i < dir.size(); ++i) {
    if (dir[i] == '/') dir[i] = '_';  // parameterised test names contain slashes
  }
  std::filesystem::remove_all(dir);
  return dir;
}

inline std::unique_ptr<Database> OpenOrDie(const Options& options) {
  auto db = Database::Open(options);
  EXPECT_TRUE(db.ok()) << db.status();
  return db.ok() ? std::move(*db) : nullptr;
}

inline absl::Status PutOne(Database* db, const std::string& k, const std::string& v,
                           Durability d = Durability::kSync) {
  TxnOptions o;
  o.durability = d;
  auto t = db->Begin(o);
  absl::Status s = t->Put(k, v);
  if (!s.ok()) return s;
  return t->Commit();
}

inline absl::StatusOr<std::string> GetOne(Database* db, const std::string& k) {
  auto t = db->Begin();
  return t->Get(k);
}

}  // namespace shardtx::testing
