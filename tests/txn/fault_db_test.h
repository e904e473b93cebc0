// FaultDbTest: a database on the fault-injecting Env for one test, with the steps the 2PC tests
// share: open, crash (unsynced bytes lost, as in a power cut) and reopen, list prepared names.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "shardtx/database.h"
#include "tests/support/test_db.h"
#include "tests/support/fault_injection_env.h"
#include "util/kill_point.h"

namespace shardtx::testing {

class FaultDbTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = FreshDir(); }
  void TearDown() override { KillPoints::DisarmAll(); }

  // Range partitioning over `shards` shards split at "b", "c", ... (two shards: at "m", so
  // "apple" is on shard 0 and "zebra" on shard 1); no timed checkpoint, none at Close; small
  // WAL segments.
  Options Opts(uint32_t shards = 2) {
    Options o;
    o.path = dir_;
    o.env = &env_;
    o.num_shards = shards;
    o.partitioning = Options::Partitioning::kRange;
    if (shards == 2) {
      o.range_split_points = {"m"};
    } else {
      for (uint32_t i = 1; i < shards; ++i) o.range_split_points.push_back(std::string(1, 'a' + i));
    }
    o.checkpoint_interval = absl::ZeroDuration();
    o.checkpoint_on_close = false;
    o.wal_segment_size = 64 << 10;
    o.max_txn_bytes = 16 << 10;
    o.log_layout = per_shard_logs_ ? Options::LogLayout::kPerShard : TestLogLayout();
    return o;
  }
  // For a test of what only per-shard logs have (one shard's log failing while another's goes
  // on, a prepare missing from one log while another's is durable, pins on one shard's WAL
  // files, its segment files): call before Opts.
  void UsePerShardLogs() { per_shard_logs_ = true; }
  // Opens with `options` (remembered for CrashAndReopen).
  void Open(const Options& options) {
    options_ = options;
    auto db = Database::Open(options_);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
  }
  void Open() { Open(Opts()); }
  void CrashAndReopen() {
    ASSERT_TRUE(env_.SimulateCrash().ok());
    db_.reset();
    env_.Reset();
    Open(options_);
  }
  std::vector<std::string> List() {
    auto l = db_->ListPrepared();
    EXPECT_TRUE(l.ok()) << l.status();
    return l.ok() ? *l : std::vector<std::string>{};
  }
  std::unique_ptr<Transaction> Serializable() {
    TxnOptions o;
    o.isolation = Isolation::kSerializable;
    return db_->Begin(o);
  }

  FaultInjectionEnv env_;
  std::string dir_;
  Options options_;
  std::unique_ptr<Database> db_;
  bool per_shard_logs_ = false;
};

}  // namespace shardtx::testing
