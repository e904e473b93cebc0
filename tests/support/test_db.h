// Helpers for engine tests: a fresh database directory per test, and small transaction
// shorthands.
#pragma once

#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "gtest/gtest.h"
#include "shardtx/database.h"

namespace shardtx::testing {

namespace internal {

// The directories FreshDir made for the running test.
inline std::vector<std::string>& DirsOfThisTest() {
  static auto* dirs = new std::vector<std::string>;
  return *dirs;
}

// Removes what a test that passed left in its FreshDir directories, and their siblings named
// after them (dir + ".copy", a backup's partial directories...); a failed test keeps them for
// a look. Without this, every run of the suite would leave gigabytes behind, since the names
// differ from run to run.
class RemoveDirsOfPassedTests : public ::testing::EmptyTestEventListener {
  void OnTestEnd(const ::testing::TestInfo& info) override {
    std::vector<std::string>& dirs = DirsOfThisTest();
    if (info.result()->Passed()) {
      std::error_code ec;
      for (const std::string& dir : dirs) {
        const std::filesystem::path p(dir);
        const std::string base = p.filename().string();
        for (const auto& e : std::filesystem::directory_iterator(p.parent_path(), ec)) {
          const std::string name = e.path().filename().string();
          // (Not another process's: "..._p12" must not take "..._p123".)
          if (name.rfind(base, 0) == 0 &&
              (name.size() == base.size() ||
               !std::isdigit(static_cast<unsigned char>(name[base.size()])))) {
            std::filesystem::remove_all(e.path(), ec);
          }
        }
      }
    }
    dirs.clear();
  }
};

inline const bool kRemoveDirsRegistered = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new RemoveDirsOfPassedTests);
  return true;
}();

}  // namespace internal

// A fresh directory under the test temp dir, named after the running test and this test
// process (the first to ask: children forked later keep its name), so that suites of two
// build trees running at once (make asan and make tsan) never share one. Removed, with its
// siblings named after it, when the test passes.
inline std::string FreshDir(const std::string& suffix = "") {
  static const std::string process = "_p" + std::to_string(::getpid());
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = ::testing::TempDir() + "/shardtx_" + info->test_suite_name() + "_" +
                    info->name() + process + suffix;
  for (size_t i = ::testing::TempDir().size() + 1; i < dir.size(); ++i) {
    if (dir[i] == '/') dir[i] = '_';  // parameterised test names contain slashes
  }
  std::filesystem::remove_all(dir);
  internal::DirsOfThisTest().push_back(dir);
  return dir;
}

// The log layout a suite runs in: kPerShard when the environment variable
// SHARDTX_TEST_LOG_LAYOUT is "per-shard" (ctest runs some suites a second time so), else the
// default, kShared. For suites that do not look at the log's files themselves.
inline Options::LogLayout TestLogLayout() {
  const char* v = std::getenv("SHARDTX_TEST_LOG_LAYOUT");
  return v != nullptr && std::string(v) == "per-shard" ? Options::LogLayout::kPerShard
                                                       : Options::LogLayout::kShared;
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
