// Creating a directory durably: the directory is created and the directory holding it is
// fsynced, whatever trailing slashes the path carries (issue 14, item 12).
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "shardtx/database.h"
#include "shardtx/env.h"
#include "tests/support/recording_env.h"
#include "tests/support/test_db.h"

namespace shardtx {
namespace {

using testing::FreshDir;
using testing::RecordingEnv;

// "a//b/" -> "a/b": one spelling per directory, for comparing logged paths.
std::string Normal(const std::string& path) {
  std::string p = std::filesystem::path(path).lexically_normal().string();
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

// The index in `ops` of the first "<op> <path>" naming `path` (any spelling), or -1.
int Find(const std::vector<std::string>& ops, const std::string& op, const std::string& path) {
  for (size_t i = 0; i < ops.size(); ++i) {
    const std::string prefix = op + " ";
    if (ops[i].rfind(prefix, 0) == 0 && Normal(ops[i].substr(prefix.size())) == Normal(path)) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

std::string Dump(const std::vector<std::string>& ops) {
  std::string s;
  for (const std::string& op : ops) s += "\n  " + op;
  return s;
}

TEST(CreateDirDurably, CreatesTheDirectoryAndSyncsTheOneHoldingIt) {
  const std::string base = FreshDir();
  std::filesystem::create_directories(base + "/parent");
  for (const std::string suffix : {"", "/", "//"}) {
    SCOPED_TRACE("suffix '" + suffix + "'");
    const std::string dir = base + "/parent/new" + std::to_string(suffix.size());
    RecordingEnv env;
    ASSERT_TRUE(CreateDirDurably(&env, dir + suffix).ok());
    EXPECT_TRUE(std::filesystem::is_directory(dir));
    const std::vector<std::string> ops = env.dir_ops();
    const int created = Find(ops, "CreateDir", dir);
    const int synced = Find(ops, "SyncDir", base + "/parent");
    EXPECT_GE(created, 0) << Dump(ops);
    EXPECT_GT(synced, created) << Dump(ops);
    EXPECT_EQ(Find(ops, "SyncDir", dir), -1)
        << "synced the directory instead of its parent" << Dump(ops);
    // Again, now that it exists: still OK, still synced.
    env.Reset();
    ASSERT_TRUE(CreateDirDurably(&env, dir + suffix).ok());
    EXPECT_GE(Find(env.dir_ops(), "SyncDir", base + "/parent"), 0) << Dump(env.dir_ops());
  }
}

TEST(CreateDirDurably, ParentOfARelativeNameIsTheWorkingDirectoryAndOfATopLevelOneTheRoot) {
  const std::string base = FreshDir();
  std::filesystem::create_directories(base);
  const std::filesystem::path cwd = std::filesystem::current_path();
  std::filesystem::current_path(base);
  RecordingEnv env;
  EXPECT_TRUE(CreateDirDurably(&env, "rel/").ok());
  std::filesystem::current_path(cwd);
  EXPECT_TRUE(std::filesystem::is_directory(base + "/rel"));
  EXPECT_GE(Find(env.dir_ops(), "SyncDir", "."), 0) << Dump(env.dir_ops());

  env.Reset();
  EXPECT_TRUE(CreateDirDurably(&env, "/tmp//").ok());
  EXPECT_GE(Find(env.dir_ops(), "SyncDir", "/"), 0) << Dump(env.dir_ops());
  EXPECT_FALSE(CreateDirDurably(&env, "").ok());
}

// Through the public API: a database path with trailing slashes gets its parent synced.
TEST(CreateDirDurably, DatabasePathEndingInSlashesSyncsTheDirectoryHoldingIt) {
  const std::string base = FreshDir();
  std::filesystem::create_directories(base + "/parent");
  for (const std::string suffix : {"/", "//"}) {
    SCOPED_TRACE("suffix '" + suffix + "'");
    const std::string dir = base + "/parent/db" + std::to_string(suffix.size());
    RecordingEnv env;
    Options o;
    o.path = dir + suffix;
    o.env = &env;
    o.num_shards = 2;
    {
      auto db = Database::Open(o);
      ASSERT_TRUE(db.ok()) << db.status();
      ASSERT_TRUE((*db)->Close().ok());
    }
    const std::vector<std::string> ops = env.dir_ops();
    const int created = Find(ops, "CreateDir", dir);
    const int synced = Find(ops, "SyncDir", base + "/parent");
    EXPECT_GE(created, 0) << Dump(ops);
    EXPECT_GT(synced, created) << "the directory holding the database was never synced"
                               << Dump(ops);
  }
}

}  // namespace
}  // namespace shardtx
