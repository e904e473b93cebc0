// Helpers shared by txbench's tests: a fresh directory per test, a small fast configuration,
// reading a file whole.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "bench/txbench/config.h"
#include "bench/txbench/engine.h"
#include "gtest/gtest.h"
#include "tests/support/test_db.h"

namespace txbench::testing {

inline std::string FreshDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string(info->test_suite_name()) + "_" + info->name();
  for (char& c : name) {
    if (c == '/') c = '_';
  }
  const std::string dir =
      ::testing::TempDir() + "/txbench_" + name + "_p" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  shardtx::testing::internal::DirsOfThisTest().push_back(dir);  // removed if the test passes
  std::filesystem::create_directories(dir);
  return dir;
}

// A small, fast configuration: a few keys, a short run.
inline Config SmallConfig() {
  Config c;
  c.dir = FreshDir();
  c.keys = 2000;
  c.seconds = 0.3;
  c.threads = 4;
  c.shards = 2;
  c.shards_per_txn = 2;
  c.warmup_s = 0;
  c.progress = false;
  return c;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Why a RocksDB case cannot run: `make test` installs librocksdb-dev and configures with
// SHARDTX_WITH_ROCKSDB=ON, so only a build made otherwise (the option OFF, or the package
// missing on a machine where make could not install it) lacks the engine.
inline constexpr char kNoRocksdb[] =
    "txbench was built without RocksDB (SHARDTX_WITH_ROCKSDB=OFF or no librocksdb-dev; "
    "make test installs it)";

// True when `engine` runs on RocksDB and this build has none; says so in the test's output.
inline bool WithoutRocksdb(EngineKind engine) {
  if (!IsRocksdb(engine) || HaveRocksdb()) return false;
  std::printf("[ SKIPPED  ] %s: %s\n", EngineName(engine), kNoRocksdb);
  return true;
}

}  // namespace txbench::testing
