// txbench's runs: each workload briefly on each engine (counts consistent), the bank check,
// the fsync floor, deferred work inside the window, and the RocksDB 2PC protocols' shapes.
#include "bench/txbench/txbench.h"

#include <filesystem>
#include <string>
#include <vector>

#include "bench/txbench/config.h"
#include "bench/txbench/engine.h"
#include "bench/txbench/keyspace.h"
#include "bench/txbench/report.h"
#include "bench/txbench/runner.h"
#include "bench/txbench/workload.h"
#include "gtest/gtest.h"
#include "tests/bench/txbench_test_util.h"

namespace txbench {
namespace {

using ::txbench::testing::FreshDir;
using ::txbench::testing::kNoRocksdb;
using ::txbench::testing::ReadFile;
using ::txbench::testing::SmallConfig;
using ::txbench::testing::WithoutRocksdb;

// ---------------------------------------------------------------------------------------------
// Each workload on each engine, briefly.

struct EngineWorkload {
  EngineKind engine;
  Workload workload;
};

void PrintTo(const EngineWorkload& ew, std::ostream* os) {
  *os << EngineName(ew.engine) << "/" << WorkloadName(ew.workload);
}

class TxbenchRun : public ::testing::TestWithParam<EngineWorkload> {};

TEST_P(TxbenchRun, RunsBrieflyAndCountsConsistently) {
  const EngineWorkload ew = GetParam();
  if (IsRocksdb(ew.engine) && !HaveRocksdb()) GTEST_SKIP() << kNoRocksdb;
  Config c = SmallConfig();
  RunSpec spec{ew.engine, ew.workload, c.threads, c.shards_per_txn};
  RunResult r = RunOne(c, spec, nullptr);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_GT(r.committed, 0u);
  // The window holds the clients' seconds and the engine's deferred work after them.
  EXPECT_GE(r.settle_s, 0);
  EXPECT_GE(r.elapsed_s, c.seconds * 0.9 + r.settle_s);
  EXPECT_LT(r.elapsed_s, c.seconds + 10);
  EXPECT_NEAR(r.txn_per_s * r.elapsed_s, static_cast<double>(r.committed), 1.0);
  EXPECT_NEAR(r.ops_per_s * r.elapsed_s, static_cast<double>(r.ops), 1.0);
  EXPECT_GE(r.abort_pct, 0);
  EXPECT_LT(r.abort_pct, 100);
  EXPECT_LE(r.p50_us, r.p95_us);
  EXPECT_LE(r.p95_us, r.p99_us);
  EXPECT_LE(r.p99_us, r.p999_us);
  EXPECT_GT(r.p50_us, 0);
  ASSERT_TRUE(r.fsyncs_per_s.has_value());
  switch (ew.workload) {
    case Workload::kSingle:
    case Workload::kCross:
    case Workload::kMixed:
      EXPECT_EQ(r.ops, 4 * r.committed);  // 2 keys: Get + Put each
      EXPECT_GT(*r.fsyncs_per_s, 0);
      break;
    case Workload::kBank:
      EXPECT_EQ(r.ops, 4 * r.committed);
      ASSERT_TRUE(r.bank_total.has_value());
      EXPECT_EQ(*r.bank_total, static_cast<int64_t>(c.keys) * kInitialBalance);
      break;
    case Workload::kReadonly:
      EXPECT_EQ(r.ops, 2 * r.committed);
      EXPECT_EQ(r.abort_pct, 0);
      break;
    case Workload::kYcsbA:
    case Workload::kYcsbB:
      EXPECT_EQ(r.ops, r.committed);
      break;
    case Workload::kFsync:
    case Workload::kDsync:
      break;
  }
  if (ew.workload == Workload::kCross) {
    EXPECT_EQ(r.cross_shard, r.committed);
  } else if (ew.workload == Workload::kSingle) {
    EXPECT_EQ(r.cross_shard, 0u);
  }
  // The run's files are gone.
  EXPECT_TRUE(std::filesystem::is_empty(c.dir));
}

std::vector<EngineWorkload> AllRuns() {
  std::vector<EngineWorkload> out;
  for (EngineKind e : {EngineKind::kShardtx, EngineKind::kRocksdb, EngineKind::kLmdb}) {
    for (Workload w : {Workload::kSingle, Workload::kCross, Workload::kMixed, Workload::kYcsbA,
                       Workload::kYcsbB, Workload::kReadonly, Workload::kBank}) {
      out.push_back({e, w});
    }
  }
  out.push_back({EngineKind::kRocksdbSerial2pc, Workload::kCross});
  return out;
}

std::string RunName(const ::testing::TestParamInfo<EngineWorkload>& info) {
  std::string name =
      std::string(EngineName(info.param.engine)) + "_" + WorkloadName(info.param.workload);
  for (char& ch : name) {
    if (ch == '-') ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(EachEngineEachWorkload, TxbenchRun, ::testing::ValuesIn(AllRuns()),
                         RunName);

// Issue 19 part 3: a run on shardtx's shared log opens a database of that layout, in a
// directory of its own, and reports its layout.
TEST(TxbenchSharedLog, RunsOnADatabaseWithOneLogForAllShards) {
  Config c = SmallConfig();
  c.keep_data = true;
  for (EngineKind e : {EngineKind::kShardtx, EngineKind::kShardtxAsync}) {
    // Cross-shard commits for the blocking client (their prepares share the log), single for
    // the asynchronous one (as --make-bench runs it).
    const Workload w = e == EngineKind::kShardtx ? Workload::kCross : Workload::kSingle;
    const RunSpec spec = RunSpec(e, w, 2, 2, std::nullopt, 8).With(0, LogLayout::kShared);
    RunResult r = RunOne(c, spec, nullptr);
    ASSERT_TRUE(r.status.ok()) << EngineName(e) << ": " << r.status;
    EXPECT_GT(r.committed, 0u);
    EXPECT_EQ(r.cross_shard, w == Workload::kCross ? r.committed : 0u);
    EXPECT_EQ(r.log_layout, LogLayout::kShared);
    EXPECT_EQ(r.shards, 2u);
    EXPECT_NE(r.engine_description.find("log_layout=kShared"), std::string::npos)
        << r.engine_description;
  }
  // The kept directory: one shared log (PATH/log), no per-shard log, a manifest that says so.
  int databases = 0;
  for (const auto& entry : std::filesystem::directory_iterator(c.dir)) {
    ++databases;
    EXPECT_NE(entry.path().filename().string().find("sharedlog"), std::string::npos)
        << entry.path();
    EXPECT_TRUE(std::filesystem::is_directory(entry.path() / "log")) << entry.path();
    EXPECT_FALSE(std::filesystem::exists(entry.path() / "shard-000" / "wal")) << entry.path();
    EXPECT_NE(ReadFile((entry.path() / "SHARDTX").string()).find("log shared"), std::string::npos);
  }
  EXPECT_EQ(databases, 2);  // one per RunOne
}

// Bank on one shard: shardtx needs no cross-shard commit, so the check runs for it today.
TEST(TxbenchBank, OneShardBankKeepsTheTotalOnEveryEngine) {
  for (EngineKind e : {EngineKind::kShardtx, EngineKind::kRocksdb, EngineKind::kLmdb}) {
    if (WithoutRocksdb(e)) continue;  // the other engines are still checked
    Config c = SmallConfig();
    c.shards = 1;
    c.zipf = 0.9;  // hot accounts: conflicts
    RunResult r = RunOne(c, {e, Workload::kBank, 8, 2}, nullptr);
    ASSERT_TRUE(r.status.ok()) << EngineName(e) << ": " << r.status;
    ASSERT_TRUE(r.bank_total.has_value());
    EXPECT_EQ(*r.bank_total, static_cast<int64_t>(c.keys) * kInitialBalance) << EngineName(e);
  }
}

TEST(TxbenchBank, TheCheckNoticesMoneyCreated) {
  const std::string dir = FreshDir();
  const KeySpace keys(100, 16, 100, 1, 0, 1);
  EngineSetup setup;
  setup.dir = dir;
  setup.keys = &keys;
  auto engine = OpenLmdb(setup);
  ASSERT_TRUE(engine.ok()) << engine.status();
  ASSERT_TRUE(Preload(**engine, keys, /*bank=*/true, 100, 1000, nullptr).ok());
  auto total = BankTotal(**engine, keys);
  ASSERT_TRUE(total.ok()) << total.status();
  EXPECT_EQ(*total, 100 * kInitialBalance);
  {
    auto session = (*engine)->NewSession();
    session->Begin(TxnShape::kReadWrite);
    ASSERT_TRUE(session->Put(keys.Key(5), EncodeBalance(kInitialBalance + 1, 100)).ok());
    ASSERT_TRUE(session->Commit().ok());
  }
  total = BankTotal(**engine, keys);
  ASSERT_TRUE(total.ok());
  EXPECT_EQ(*total, 100 * kInitialBalance + 1);
  EXPECT_TRUE((*engine)->Close().ok());
}

TEST(TxbenchFsync, FloorMeasuresSyncs) {
  Config c = SmallConfig();
  RunResult r = RunOne(c, {EngineKind::kFsync, Workload::kFsync, 1, 1}, nullptr);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_GT(r.committed, 0u);
  EXPECT_GT(r.p50_us, 0);
  ASSERT_TRUE(r.fsyncs_per_s.has_value());
  EXPECT_DOUBLE_EQ(*r.fsyncs_per_s, r.txn_per_s);
  EXPECT_TRUE(std::filesystem::is_empty(c.dir));
}

TEST(TxbenchFsync, TwoFileFloorSyncsBothFilesEachRound) {
  Config c = SmallConfig();
  RunResult r = RunOne(c, {EngineKind::kFsync, Workload::kFsync, 2, 1}, nullptr);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_GT(r.committed, 0u);
  EXPECT_GT(r.p50_us, 0);
  ASSERT_TRUE(r.fsyncs_per_s.has_value());
  EXPECT_DOUBLE_EQ(*r.fsyncs_per_s, 2 * r.txn_per_s);  // a round is one sync of each file
  EXPECT_NE(r.engine_description.find("2 threads at once"), std::string::npos)
      << r.engine_description;
  EXPECT_TRUE(std::filesystem::is_empty(c.dir));  // both files removed
}

// --make-bench opens one floor contender for both floors (with as many files as the larger
// needs): each run syncs as many files as its own spec says.
TEST(TxbenchFsync, SharedFloorContenderSyncsTheRunsOwnNumberOfFiles) {
  Config c = SmallConfig();
  auto contender = Contender::Open(c, {EngineKind::kFsync, Workload::kFsync, 2, 1}, 2, nullptr);
  ASSERT_TRUE(contender.ok()) << contender.status();
  for (int files : {1, 2}) {
    RunResult r =
        (*contender)
            ->Measure({EngineKind::kFsync, Workload::kFsync, files, 1}, 0.2, c.seed, nullptr);
    ASSERT_TRUE(r.status.ok()) << r.status;
    ASSERT_GT(r.committed, 0u);
    ASSERT_TRUE(r.fsyncs_per_s.has_value());
    EXPECT_DOUBLE_EQ(*r.fsyncs_per_s, files * r.txn_per_s) << files;
  }
}

// ---------------------------------------------------------------------------------------------
// Deferred work inside the window, and the RocksDB 2PC baselines

// Writes `n` keys of the key space through a session, outside bulk load.
void WriteSome(Engine& engine, const KeySpace& keys, int n) {
  std::unique_ptr<Session> session = engine.NewSession();
  for (int i = 0; i < n; ++i) {
    session->Begin(TxnShape::kReadWrite);
    ASSERT_TRUE(session->Put(keys.Key(static_cast<uint64_t>(i)), std::string(100, 'v')).ok());
    ASSERT_TRUE(session->Commit().ok());
  }
}

size_t FilesEndingIn(const std::string& dir, const std::string& suffix) {
  size_t n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    const std::string p = e.path().string();
    if (p.size() >= suffix.size() &&
        p.compare(p.size() - suffix.size(), suffix.size(), suffix) == 0) {
      ++n;
    }
  }
  return n;
}

// With one log for 4 shards, every shard's statistics are that log's: its fsyncs count once.
// One client commits 20 times, one after the other: about one fsync each, not four.
TEST(TxbenchSharedLog, FsyncsOfTheSharedLogCountOnce) {
  const KeySpace keys(2000, 16, 100, 4, 0, 1);
  EngineSetup setup;
  setup.dir = FreshDir();
  setup.shards = 4;
  setup.shared_log = true;
  setup.keys = &keys;
  auto engine = OpenShardtx(setup);
  ASSERT_TRUE(engine.ok()) << engine.status();
  const std::optional<uint64_t> before = (*engine)->Fsyncs();
  ASSERT_TRUE(before.has_value());
  WriteSome(**engine, keys, 20);
  const uint64_t synced = *(*engine)->Fsyncs() - *before;
  EXPECT_GE(synced, 20u);
  EXPECT_LT(synced, 40u);
  EXPECT_TRUE((*engine)->Close().ok());
}

TEST(TxbenchSettle, ShardtxCheckpointsAndRocksdbFlushesInsideTheWindow) {
  const std::string dir = FreshDir();
  const KeySpace keys(2000, 16, 100, 2, 0, 1);
  for (EngineKind kind : {EngineKind::kShardtx, EngineKind::kRocksdb}) {
    if (WithoutRocksdb(kind)) continue;  // shardtx is still checked
    SCOPED_TRACE(EngineName(kind));
    EngineSetup setup;
    setup.dir = dir + "/" + EngineName(kind);
    std::filesystem::create_directories(setup.dir);
    setup.shards = 2;
    setup.keys = &keys;
    auto engine = OpenEngine(kind, setup);
    ASSERT_TRUE(engine.ok()) << engine.status();
    WriteSome(**engine, keys, 200);
    const uint64_t fsyncs0 = (*engine)->Fsyncs().value_or(0);
    const size_t ssts0 = FilesEndingIn(setup.dir, ".sst");
    ASSERT_TRUE((*engine)->SettleDeferredWork().ok());
    if (kind == EngineKind::kShardtx) {
      // A checkpoint of both shards: at least one LMDB chunk and one meta-page sync each.
      EXPECT_GE((*engine)->Fsyncs().value_or(0), fsyncs0 + 4);
    } else {
      EXPECT_GT(FilesEndingIn(setup.dir, ".sst"), ssts0);  // the memtable is on disk
    }
    ASSERT_TRUE((*engine)->Close().ok());
  }
}

TEST(TxbenchRocksdb2pc, CarefulWaitsForTwoSyncsPerCrossShardCommitAndSerialForFour) {
  if (!HaveRocksdb()) GTEST_SKIP() << kNoRocksdb;
  Config c = SmallConfig();
  c.threads = 1;  // one client: no group commit merges the syncs of two transactions
  c.seconds = 0.5;
  double per_txn[2] = {0, 0};
  int i = 0;
  for (EngineKind kind : {EngineKind::kRocksdb, EngineKind::kRocksdbSerial2pc}) {
    RunResult r = RunOne(c, {kind, Workload::kCross, 1, 2}, nullptr);
    ASSERT_TRUE(r.status.ok()) << r.status;
    ASSERT_GT(r.committed, 10u);
    ASSERT_TRUE(r.fsyncs_per_s.has_value());
    per_txn[i++] = *r.fsyncs_per_s / r.txn_per_s;
  }
  // Careful: the other participant's prepare, then the decision (the coordinator's prepare
  // and commits wait for no sync of their own). Serial: two prepares, two commits.
  EXPECT_NEAR(per_txn[0], 2.0, 0.25);
  EXPECT_NEAR(per_txn[1], 4.0, 0.4);
}

}  // namespace
}  // namespace txbench
