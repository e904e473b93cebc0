// txbench's configuration: flag parsing, validation, the plans (make bench, the long
// matrix), the key space every engine shares, and the workloads' transaction plans.
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "bench/txbench/config.h"
#include "bench/txbench/engine.h"
#include "bench/txbench/flags.h"
#include "bench/txbench/keyspace.h"
#include "bench/txbench/report.h"
#include "bench/txbench/runner.h"
#include "bench/txbench/txbench.h"
#include "bench/txbench/workload.h"
#include "gtest/gtest.h"
#include "shardtx/partitioning.h"
#include "tests/bench/txbench_test_util.h"

namespace txbench {
namespace {

using ::txbench::testing::SmallConfig;

// ---------------------------------------------------------------------------------------------
// Flags

TEST(TxbenchFlags, HyphenatedNamesBecomeAbseilNames) {
  const std::vector<std::string> in = {
      "txbench", "--shards-per-txn=3", "--make-bench", "--workload=ycsb-a", "-cross-pct", "5",
      "--",      "--not-a-flag"};
  const std::vector<std::string> out = NormalizeFlagNames(in);
  EXPECT_EQ(out[0], "txbench");
  EXPECT_EQ(out[1], "--shards_per_txn=3");
  EXPECT_EQ(out[2], "--make_bench");
  EXPECT_EQ(out[3], "--workload=ycsb-a");  // the value keeps its hyphen
  EXPECT_EQ(out[4], "-cross_pct");
  EXPECT_EQ(out[5], "5");
  EXPECT_EQ(out[6], "--");
  EXPECT_EQ(out[7], "--not-a-flag");  // after "--": positional
}

TEST(TxbenchFlags, ParsesEnginesWorkloadsAndDurability) {
  auto e = ParseEngines("shardtx, rocksdb,lmdb,fsync,lmdb,rocksdb-serial2pc");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(*e,
            (std::vector<EngineKind>{EngineKind::kShardtx, EngineKind::kRocksdb, EngineKind::kLmdb,
                                     EngineKind::kFsync, EngineKind::kRocksdbSerial2pc}));
  EXPECT_FALSE(ParseEngines("shardtx,postgres").ok());
  EXPECT_FALSE(ParseEngines("").ok());

  for (const char* w : {"single", "cross", "mixed", "ycsb-a", "ycsb-b", "readonly", "bank"}) {
    auto parsed = ParseWorkload(w);
    ASSERT_TRUE(parsed.ok()) << w;
    EXPECT_STREQ(WorkloadName(*parsed), w);
  }
  EXPECT_FALSE(ParseWorkload("ycsb-c").ok());
  for (const char* d : {"sync", "async", "none"}) {
    auto parsed = ParseDurability(d);
    ASSERT_TRUE(parsed.ok()) << d;
    EXPECT_STREQ(DurabilityName(*parsed), d);
  }
  EXPECT_FALSE(ParseDurability("fsync").ok());
  for (const char* l : {"per-shard", "shared"}) {
    auto parsed = ParseLogLayout(l);
    ASSERT_TRUE(parsed.ok()) << l;
    EXPECT_STREQ(LogLayoutName(*parsed), l);
  }
  EXPECT_FALSE(ParseLogLayout("one").ok());
}

TEST(TxbenchFlags, CommandLineFillsTheConfig) {
  std::vector<std::string> args = {"txbench",
                                   "--engines=lmdb,fsync",
                                   "--workload=mixed",
                                   "--threads=3",
                                   "--seconds=2",
                                   "--shards=8",
                                   "--shards-per-txn=3",
                                   "--cross-pct=25",
                                   "--keys=5000",
                                   "--key-size=20",
                                   "--value-size=64",
                                   "--zipf=0.9",
                                   "--durability=none",
                                   "--dir=/tmp/x",
                                   "--json=/tmp/x.json",
                                   "--csv=/tmp/x.csv",
                                   "--chart=/tmp/x.png",
                                   "--log-layout=shared"};
  args = NormalizeFlagNames(args);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  absl::ParseCommandLine(static_cast<int>(argv.size()), argv.data());
  auto c = ConfigFromFlags();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->engines, (std::vector<EngineKind>{EngineKind::kLmdb, EngineKind::kFsync}));
  EXPECT_EQ(c->workload, Workload::kMixed);
  EXPECT_EQ(c->threads, 3);
  EXPECT_EQ(c->seconds, 2);
  EXPECT_EQ(c->shards, 8u);
  EXPECT_EQ(c->shards_per_txn, 3u);
  EXPECT_EQ(c->cross_pct, 25);
  EXPECT_EQ(c->keys, 5000u);
  EXPECT_EQ(c->key_size, 20u);
  EXPECT_EQ(c->value_size, 64u);
  EXPECT_DOUBLE_EQ(c->zipf, 0.9);
  EXPECT_EQ(c->durability, DurabilityMode::kNone);
  EXPECT_EQ(c->dir, "/tmp/x");
  EXPECT_EQ(c->json_path, "/tmp/x.json");
  EXPECT_EQ(c->csv_path, "/tmp/x.csv");
  EXPECT_EQ(c->chart_path, "/tmp/x.png");
  EXPECT_EQ(c->log_layout, LogLayout::kShared);
  EXPECT_FALSE(c->make_bench);

  // Bad values come back as errors naming the flag.
  absl::SetFlag(&FLAGS_workload, "cross");
  absl::SetFlag(&FLAGS_shards, 2);  // fewer than shards_per_txn = 3
  auto bad = ConfigFromFlags();
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--shards"), absl::string_view::npos) << bad.status();
  absl::SetFlag(&FLAGS_shards, 8);
  absl::SetFlag(&FLAGS_zipf, 1.0);
  EXPECT_FALSE(ConfigFromFlags().ok());
  absl::SetFlag(&FLAGS_zipf, 0.0);
  absl::SetFlag(&FLAGS_key_size, 4);
  EXPECT_FALSE(ConfigFromFlags().ok());
  absl::SetFlag(&FLAGS_key_size, 16);
  absl::SetFlag(&FLAGS_engines, "sqlite");
  EXPECT_FALSE(ConfigFromFlags().ok());
  absl::SetFlag(&FLAGS_engines, "shardtx");
  absl::SetFlag(&FLAGS_log_layout, "both");
  EXPECT_FALSE(ConfigFromFlags().ok());
  absl::SetFlag(&FLAGS_log_layout, "per-shard");
  absl::SetFlag(&FLAGS_make_bench, true);
  absl::SetFlag(&FLAGS_seconds, 0);
  absl::SetFlag(&FLAGS_reps, 0);
  absl::SetFlag(&FLAGS_warmup, -1);
  auto mb = ConfigFromFlags();
  ASSERT_TRUE(mb.ok()) << mb.status();
  EXPECT_EQ(mb->seconds, 3);  // --make-bench's defaults
  EXPECT_EQ(mb->reps, 5);
  EXPECT_EQ(mb->warmup_s, 1);
  absl::SetFlag(&FLAGS_make_bench, false);
  absl::SetFlag(&FLAGS_long_bench, true);
  auto lb = ConfigFromFlags();
  ASSERT_TRUE(lb.ok()) << lb.status();
  EXPECT_EQ(lb->seconds, 30);  // --long-bench's defaults
  EXPECT_EQ(lb->reps, 5);
  EXPECT_EQ(lb->warmup_s, 5);
  absl::SetFlag(&FLAGS_make_bench, true);
  EXPECT_FALSE(ConfigFromFlags().ok());  // not both
  absl::SetFlag(&FLAGS_make_bench, false);
  absl::SetFlag(&FLAGS_long_bench, false);
  absl::SetFlag(&FLAGS_reps, 3);
  absl::SetFlag(&FLAGS_warmup, 0.5);
  auto adhoc = ConfigFromFlags();
  ASSERT_TRUE(adhoc.ok()) << adhoc.status();
  EXPECT_EQ(adhoc->reps, 3);
  EXPECT_EQ(adhoc->warmup_s, 0.5);
  absl::SetFlag(&FLAGS_reps, -2);
  EXPECT_FALSE(ConfigFromFlags().ok());
  absl::SetFlag(&FLAGS_reps, 0);
  absl::SetFlag(&FLAGS_warmup, -1);
}

TEST(TxbenchFlags, ValidateRejectsImpossibleSetups) {
  Config c = SmallConfig();
  EXPECT_TRUE(Validate(c).ok());
  c.workload = Workload::kCross;
  c.shards = 1;
  EXPECT_FALSE(Validate(c).ok());  // cross needs shards >= shards_per_txn
  c = SmallConfig();
  c.threads = 0;
  EXPECT_FALSE(Validate(c).ok());
  c = SmallConfig();
  c.keys = 100000;
  c.key_size = 6;
  EXPECT_FALSE(Validate(c).ok());
  c = SmallConfig();
  c.cross_pct = 101;
  EXPECT_FALSE(Validate(c).ok());
}

TEST(TxbenchFlags, RunsTakeTheInvocationsShardsAndLayoutUnlessTheyHaveTheirOwn) {
  Config c = SmallConfig();
  c.shards = 4;
  c.log_layout = LogLayout::kShared;
  const RunSpec plain(EngineKind::kShardtx, Workload::kSingle, 8, 2);
  EXPECT_EQ(ShardsOf(c, plain), 4u);
  EXPECT_EQ(LogLayoutOf(c, plain), LogLayout::kShared);
  const RunSpec own = plain.With(1, LogLayout::kPerShard);
  EXPECT_EQ(ShardsOf(c, own), 1u);
  EXPECT_EQ(LogLayoutOf(c, own), LogLayout::kPerShard);
  // Only shardtx has log layouts: another engine is per-shard whatever the run says.
  EXPECT_EQ(LogLayoutOf(c, RunSpec(EngineKind::kLmdb, Workload::kSingle, 8, 2)),
            LogLayout::kPerShard);
  EXPECT_EQ(LogLayoutOf(c, RunSpec(EngineKind::kShardtxAsync, Workload::kSingle, 8, 2)),
            LogLayout::kShared);
  // Each shard count and layout is a database of its own; the async client shares shardtx's.
  EXPECT_FALSE(KeyOfRun(c, plain) == KeyOfRun(c, own));
  EXPECT_FALSE(KeyOfRun(c, plain) == KeyOfRun(c, plain.With(0, LogLayout::kPerShard)));
  EXPECT_FALSE(KeyOfRun(c, plain) == KeyOfRun(c, plain.With(2, std::nullopt)));
  EXPECT_TRUE(KeyOfRun(c, plain) == KeyOfRun(c, plain.With(4, LogLayout::kShared)));
  EXPECT_TRUE(KeyOfRun(c, plain) ==
              KeyOfRun(c, RunSpec(EngineKind::kShardtxAsync, Workload::kCross, 2, 2)));
  // A run's own shard count is validated like --shards: cross over 1 shard is impossible.
  c.make_bench = true;
  c.engines = {EngineKind::kShardtx};
  EXPECT_TRUE(Validate(c).ok()) << Validate(c);
  c.shards = 1;  // --make-bench's cross rows need 2
  EXPECT_FALSE(Validate(c).ok());
}

TEST(TxbenchFlags, MakeBenchPlanHoldsTheTargetsRunsOnly) {
  Config c;
  c.make_bench = true;
  c.engines = {EngineKind::kShardtx, EngineKind::kRocksdb, EngineKind::kLmdb};
  const std::vector<RunSpec> runs = PlanRuns(c);
  constexpr LogLayout kPerShard = LogLayout::kPerShard, kShared = LogLayout::kShared;
  const std::vector<RunSpec> expected = {
      {EngineKind::kFsync, Workload::kFsync, 1, 1},
      {EngineKind::kFsync, Workload::kFsync, 2, 1},
      RunSpec(EngineKind::kShardtx, Workload::kSingle, 1, 2).With(0, kPerShard),
      RunSpec(EngineKind::kShardtx, Workload::kCross, 1, 2).With(0, kPerShard),
      // Issue 19 part 3: cross at 1 thread on the shared log (against the one-file floor).
      RunSpec(EngineKind::kShardtx, Workload::kCross, 1, 2).With(0, kShared),
      RunSpec(EngineKind::kShardtx, Workload::kSingle, 64, 2).With(0, kPerShard),
      {EngineKind::kRocksdb, Workload::kSingle, 64, 2},
      {EngineKind::kLmdb, Workload::kSingle, 64, 2},
      // Single at 64 threads: 4 shards sharing one log, and 1 shard.
      RunSpec(EngineKind::kShardtx, Workload::kSingle, 64, 2).With(4, kShared),
      RunSpec(EngineKind::kShardtx, Workload::kSingle, 64, 2).With(1, kPerShard),
      RunSpec(EngineKind::kShardtx, Workload::kCross, 64, 2).With(0, kPerShard),
      {EngineKind::kRocksdb, Workload::kCross, 64, 2},
      {EngineKind::kRocksdbSerial2pc, Workload::kCross, 64, 2},
      RunSpec(EngineKind::kShardtx, Workload::kCross, 64, 2).With(0, kShared),
      // Issue 19: async commits (2 submitters, 256 in flight) on both layouts, shardtx
      // no-sync at 64 threads, RocksDB with 256 blocking threads.
      RunSpec(EngineKind::kShardtxAsync, Workload::kSingle, 2, 2, std::nullopt, 256)
          .With(0, kPerShard),
      RunSpec(EngineKind::kShardtxAsync, Workload::kSingle, 2, 2, std::nullopt, 256)
          .With(0, kShared),
      RunSpec(EngineKind::kShardtx, Workload::kSingle, 64, 2, DurabilityMode::kNone)
          .With(0, kPerShard),
      {EngineKind::kRocksdb, Workload::kSingle, 256, 2},
  };
  ASSERT_EQ(runs.size(), expected.size());
  for (size_t i = 0; i < runs.size(); ++i) {
    EXPECT_EQ(runs[i].engine, expected[i].engine) << i;
    EXPECT_EQ(runs[i].workload, expected[i].workload) << i;
    EXPECT_EQ(runs[i].threads, expected[i].threads) << i;
    EXPECT_EQ(runs[i].shards_per_txn, expected[i].shards_per_txn) << i;
    EXPECT_EQ(runs[i].durability, expected[i].durability) << i;
    EXPECT_EQ(runs[i].inflight, expected[i].inflight) << i;
    EXPECT_EQ(runs[i].shards, expected[i].shards) << i;
    EXPECT_EQ(runs[i].log_layout, expected[i].log_layout) << i;
  }
  // --log_layout does not change the plan: it holds both layouts already.
  c.log_layout = LogLayout::kShared;
  const std::vector<RunSpec> again = PlanRuns(c);
  ASSERT_EQ(again.size(), runs.size());
  for (size_t i = 0; i < runs.size(); ++i) EXPECT_EQ(again[i].log_layout, runs[i].log_layout) << i;
  // The shared-log rows of 4 shards share one database with the cross and async shared rows
  // (at the default --shards 4): three shardtx databases in all (per-shard, shared, 1 shard).
  std::set<std::tuple<uint32_t, LogLayout>> shardtx_dbs;
  for (const RunSpec& r : runs) {
    if (IsShardtx(r.engine)) {
      const ContenderKey key = KeyOfRun(c, r);
      shardtx_dbs.insert({key.shards, key.log_layout});
    }
  }
  EXPECT_EQ(shardtx_dbs.size(), 3u);
  // The long matrix: every engine on single 1t, 64t, cross 64t (and RocksDB's serial 2PC) and
  // ycsb-b 2t, after the floor.
  c.make_bench = false;
  c.long_bench = true;
  EXPECT_EQ(PlanRuns(c).size(), 1u + 4 * 3 + 1);
}

// ---------------------------------------------------------------------------------------------
// Key space and workloads

TEST(TxbenchKeySpace, ShardsAreShardtxsAndBucketsCoverEveryKey) {
  const KeySpace keys(5000, 16, 100, 4, 0, 1);
  auto partitioner = shardtx::KeyPartitioning::Make(shardtx::Options(), 4);
  ASSERT_TRUE(partitioner.ok()) << partitioner.status();
  uint64_t total = 0;
  for (uint32_t s = 0; s < 4; ++s) {
    EXPECT_GT(keys.KeysOfShard(s).size(), 500u);
    for (uint64_t k : keys.KeysOfShard(s)) {
      EXPECT_EQ(partitioner->ShardOf(keys.Key(k)), s);
      EXPECT_EQ(keys.ShardOfKey(keys.Key(k)), s);
    }
    total += keys.KeysOfShard(s).size();
  }
  EXPECT_EQ(total, 5000u);
  EXPECT_EQ(keys.Key(42), "k000000000000042");
  EXPECT_EQ(keys.Key(0), "k000000000000000");
  EXPECT_EQ(keys.Key(999999999999999), "k999999999999999");
  EXPECT_EQ(keys.Key(18446744073709551615ull), "k18446744073709551615");  // wider than the keys
  EXPECT_EQ(keys.InitialValue(7), keys.InitialValue(7));
  EXPECT_EQ(keys.InitialValue(7).size(), 100u);
}

TEST(TxbenchKeySpace, ZipfFavoursLowRanksAndStaysInRange) {
  const Zipf zipf(1000, 0.99);
  Rng rng(3);
  uint64_t low = 0;
  for (int i = 0; i < 20000; ++i) {
    const uint64_t r = zipf.Next(rng);
    ASSERT_LT(r, 1000u);
    if (r < 10) ++low;
  }
  EXPECT_GT(low, 20000u / 4);  // uniform would give 1%
}

TEST(TxbenchWorkload, PlansTouchTheShardsTheyPromise) {
  const KeySpace keys(4000, 16, 100, 4, 0, 1);
  Rng rng(9);
  TxnPlan plan;
  WorkloadParams p;
  p.shards_per_txn = 3;
  for (int i = 0; i < 200; ++i) {
    p.workload = Workload::kSingle;
    NextPlan(p, keys, rng, &plan);
    ASSERT_EQ(plan.keys.size(), 3u);
    EXPECT_TRUE(std::is_sorted(plan.keys.begin(), plan.keys.end()));
    for (uint64_t k : plan.keys) EXPECT_EQ(keys.ShardOfIndex(k), keys.ShardOfIndex(plan.keys[0]));
    EXPECT_EQ(std::set<uint64_t>(plan.keys.begin(), plan.keys.end()).size(), 3u);
    EXPECT_EQ(plan.ops(), 6u);

    p.workload = Workload::kCross;
    NextPlan(p, keys, rng, &plan);
    std::set<uint32_t> shards;
    for (uint64_t k : plan.keys) shards.insert(keys.ShardOfIndex(k));
    EXPECT_EQ(shards.size(), 3u);
    EXPECT_TRUE(plan.cross_shard);

    p.workload = Workload::kBank;
    NextPlan(p, keys, rng, &plan);
    ASSERT_EQ(plan.keys.size(), 2u);
    EXPECT_NE(plan.keys[0], plan.keys[1]);
    EXPECT_GE(plan.bank_amount, 1u);
    EXPECT_LE(plan.bank_amount, 100u);
  }
  int reads = 0;
  p.workload = Workload::kYcsbB;
  for (int i = 0; i < 2000; ++i) {
    NextPlan(p, keys, rng, &plan);
    ASSERT_EQ(plan.keys.size(), 1u);
    if (plan.kind == TxnPlan::Kind::kReadOnly) ++reads;
  }
  EXPECT_GT(reads, 1800);
  EXPECT_LT(reads, 1980);
}

TEST(TxbenchWorkload, BalancesRoundTrip) {
  EXPECT_EQ(DecodeBalance(EncodeBalance(1234, 100)), 1234);
  EXPECT_EQ(EncodeBalance(5, 100).size(), 100u);
  EXPECT_EQ(EncodeBalance(5, 8).size(), 20u);
  EXPECT_EQ(DecodeBalance("garbage"), -1);
}

}  // namespace
}  // namespace txbench
