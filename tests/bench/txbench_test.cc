// txbench: flag parsing, the --make-bench plan, the key space every engine shares, each
// workload briefly on each engine, the bank check, the fsync floor, and the JSON/CSV/chart
// outputs (well-formed, and their figures consistent with the counts).
#include "bench/txbench/txbench.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_split.h"
#include "bench/txbench/chart.h"
#include "bench/txbench/config.h"
#include "bench/txbench/engine.h"
#include "bench/txbench/flags.h"
#include "bench/txbench/keyspace.h"
#include "bench/txbench/report.h"
#include "bench/txbench/runner.h"
#include "bench/txbench/workload.h"
#include "gtest/gtest.h"
#include "shardtx/partitioning.h"
#include "tests/bench/json_reader.h"

namespace txbench {
namespace {

using ::txbench::testing::JsonReader;
using ::txbench::testing::JsonValue;

std::string FreshDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string(info->test_suite_name()) + "_" + info->name();
  for (char& c : name) {
    if (c == '/') c = '_';
  }
  const std::string dir = ::testing::TempDir() + "/txbench_" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// A small, fast configuration: a few keys, a short run.
Config SmallConfig() {
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

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

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
}

TEST(TxbenchFlags, CommandLineFillsTheConfig) {
  std::vector<std::string> args = {
      "txbench",           "--engines=lmdb,fsync", "--workload=mixed",   "--threads=3",
      "--seconds=2",       "--shards=8",           "--shards-per-txn=3", "--cross-pct=25",
      "--keys=5000",       "--key-size=20",        "--value-size=64",    "--zipf=0.9",
      "--durability=none", "--dir=/tmp/x",         "--json=/tmp/x.json", "--csv=/tmp/x.csv",
      "--chart=/tmp/x.png"};
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

TEST(TxbenchFlags, MakeBenchPlanHoldsTheTargetsRunsOnly) {
  Config c;
  c.make_bench = true;
  c.engines = {EngineKind::kShardtx, EngineKind::kRocksdb, EngineKind::kLmdb};
  const std::vector<RunSpec> runs = PlanRuns(c);
  const std::vector<RunSpec> expected = {
      {EngineKind::kFsync, Workload::kFsync, 1, 1},
      {EngineKind::kShardtx, Workload::kSingle, 1, 2},
      {EngineKind::kShardtx, Workload::kSingle, 64, 2},
      {EngineKind::kRocksdb, Workload::kSingle, 64, 2},
      {EngineKind::kLmdb, Workload::kSingle, 64, 2},
      {EngineKind::kShardtx, Workload::kCross, 64, 2},
      {EngineKind::kRocksdb, Workload::kCross, 64, 2},
  };
  ASSERT_EQ(runs.size(), expected.size());
  for (size_t i = 0; i < runs.size(); ++i) {
    EXPECT_EQ(runs[i].engine, expected[i].engine) << i;
    EXPECT_EQ(runs[i].workload, expected[i].workload) << i;
    EXPECT_EQ(runs[i].threads, expected[i].threads) << i;
    EXPECT_EQ(runs[i].shards_per_txn, expected[i].shards_per_txn) << i;
  }
  // The long matrix: every engine on single 1t, 64t, cross 64t and ycsb-b 2t, after the floor.
  c.make_bench = false;
  c.long_bench = true;
  EXPECT_EQ(PlanRuns(c).size(), 1u + 4 * 3);
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
  if (IsRocksdb(ew.engine) && !HaveRocksdb()) GTEST_SKIP() << "built without RocksDB";
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

// Bank on one shard: shardtx needs no cross-shard commit, so the check runs for it today.
TEST(TxbenchBank, OneShardBankKeepsTheTotalOnEveryEngine) {
  for (EngineKind e : {EngineKind::kShardtx, EngineKind::kRocksdb, EngineKind::kLmdb}) {
    if (e == EngineKind::kRocksdb && !HaveRocksdb()) continue;
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
  RunResult r = RunFsyncFloor(c, 296, 0.3, nullptr);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_GT(r.committed, 0u);
  EXPECT_GT(r.p50_us, 0);
  ASSERT_TRUE(r.fsyncs_per_s.has_value());
  EXPECT_DOUBLE_EQ(*r.fsyncs_per_s, r.txn_per_s);
  EXPECT_TRUE(std::filesystem::is_empty(c.dir));
}

// ---------------------------------------------------------------------------------------------
// Outputs

TEST(TxbenchOutput, JsonIsWellFormedAndMatchesTheCounts) {
  Config c = SmallConfig();
  c.engines = {EngineKind::kFsync, EngineKind::kShardtx, EngineKind::kLmdb};
  if (HaveRocksdb()) c.engines.push_back(EngineKind::kRocksdb);
  c.json_path = c.dir + "/results.json";
  c.csv_path = c.dir + "/results.csv";
  c.reps = 2;
  FILE* sink = std::tmpfile();
  Outcome outcome = txbench::Run(c, sink);
  std::rewind(sink);
  std::string printed;
  for (int ch; (ch = std::fgetc(sink)) != EOF;) printed.push_back(static_cast<char>(ch));
  std::fclose(sink);
  ASSERT_EQ(outcome.exit_code, 0) << printed;
  EXPECT_NE(printed.find("fair:"), std::string::npos);
  EXPECT_NE(printed.find("ratios"), std::string::npos);
  EXPECT_NE(printed.find("issue 5 targets"), std::string::npos);
  EXPECT_NE(printed.find("medians over 2 repetitions"), std::string::npos);

  JsonReader reader;
  auto doc = reader.Parse(ReadFile(c.json_path));
  ASSERT_TRUE(doc.has_value()) << reader.error();
  ASSERT_EQ(doc->type, JsonValue::Type::kObject);
  ASSERT_EQ(doc->object.size(), 3u);
  const JsonValue* targets = doc->Get("targets");
  ASSERT_NE(targets, nullptr);
  ASSERT_EQ(targets->type, JsonValue::Type::kArray);
  EXPECT_EQ(targets->array.size(), JudgeTargets(outcome.runs).size());
  const JsonValue* machine = doc->Get("machine");
  const JsonValue* results = doc->Get("results");
  ASSERT_NE(machine, nullptr);
  ASSERT_NE(results, nullptr);
  EXPECT_EQ(machine->type, JsonValue::Type::kObject);
  EXPECT_NE(machine->Get("cpus"), nullptr);
  ASSERT_EQ(results->type, JsonValue::Type::kArray);
  ASSERT_EQ(results->array.size(), outcome.runs.size());

  const std::vector<std::string> schema = {
      "engine", "workload",  "threads",      "shards",    "shards_per_txn", "durability",
      "rep",    "txn_per_s", "ops_per_s",    "abort_pct", "p50_us",         "p95_us",
      "p99_us", "p999_us",   "fsyncs_per_s", "settle_s"};
  for (size_t i = 0; i < results->array.size(); ++i) {
    const JsonValue& row = results->array[i];
    const RunResult& run = outcome.runs[i];
    ASSERT_EQ(row.object.size(), schema.size());
    for (size_t f = 0; f < schema.size(); ++f) EXPECT_EQ(row.object[f].first, schema[f]);
    EXPECT_EQ(row.Get("engine")->string, EngineName(run.spec.engine));
    EXPECT_EQ(row.Get("workload")->string, WorkloadName(run.spec.workload));
    EXPECT_EQ(row.Get("threads")->number, run.spec.threads);
    EXPECT_EQ(row.Get("durability")->string, "sync");
    EXPECT_EQ(row.Get("rep")->number, run.rep);
    const double txn_per_s = row.Get("txn_per_s")->number;
    // The figures agree with the counts: txn/s x seconds = committed transactions.
    EXPECT_NEAR(txn_per_s * run.elapsed_s, static_cast<double>(run.committed),
                0.01 * static_cast<double>(run.committed) + 1)
        << row.Get("engine")->string;
    EXPECT_NEAR(row.Get("ops_per_s")->number * run.elapsed_s, static_cast<double>(run.ops),
                0.01 * static_cast<double>(run.ops) + 1);
    if (run.spec.workload == Workload::kSingle) {
      EXPECT_NEAR(row.Get("ops_per_s")->number / txn_per_s, 4.0, 0.01);
    }
    EXPECT_LE(row.Get("p50_us")->number, row.Get("p95_us")->number);
    EXPECT_LE(row.Get("p95_us")->number, row.Get("p99_us")->number);
    EXPECT_LE(row.Get("p99_us")->number, row.Get("p999_us")->number);
    const JsonValue* fs = row.Get("fsyncs_per_s");
    ASSERT_TRUE(fs->type == JsonValue::Type::kNumber || fs->type == JsonValue::Type::kNull);
    if (run.spec.engine == EngineKind::kFsync) {
      EXPECT_NEAR(fs->number, txn_per_s, 0.01 * txn_per_s + 0.01);
    }
  }

  const std::vector<std::string> lines =
      absl::StrSplit(ReadFile(c.csv_path), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), outcome.runs.size() + 1);
  EXPECT_EQ(lines[0],
            "engine,workload,threads,shards,shards_per_txn,durability,rep,txn_per_s,ops_per_s,"
            "abort_pct,p50_us,p95_us,p99_us,p999_us,fsyncs_per_s,settle_s");
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(std::vector<std::string>(absl::StrSplit(lines[i], ',')).size(), schema.size());
  }
}

// ---------------------------------------------------------------------------------------------
// Verdicts from interleaved pairs

TEST(TxbenchVerdict, HoldsOnlyWhenTheWorstPairClearsAndMissesOnlyWhenTheBestFails) {
  EXPECT_EQ(Judge("t", {5.1, 6, 7, 5.0, 9}, 5, true).outcome, "holds");
  EXPECT_EQ(Judge("t", {5.1, 6, 7, 4.9, 9}, 5, true).outcome, "undecided");
  EXPECT_EQ(Judge("t", {1, 2, 3, 4.99, 4}, 5, true).outcome, "MISSED");
  // At most: the highest pair must stay within the bound.
  EXPECT_EQ(Judge("t", {1.0, 1.1, 1.2, 1.05, 1.15}, 1.2, false).outcome, "holds");
  EXPECT_EQ(Judge("t", {1.0, 1.1, 1.3, 1.05, 1.15}, 1.2, false).outcome, "undecided");
  EXPECT_EQ(Judge("t", {1.3, 1.4, 2.0, 1.25, 1.5}, 1.2, false).outcome, "MISSED");
  // Fewer than five pairs: figures, but no verdict, however clear they look.
  const Verdict four = Judge("t", {9, 9, 9, 9}, 5, true);
  EXPECT_EQ(four.outcome, "no verdict (4 pairs < 5)");
  EXPECT_EQ(four.median, 9);
  EXPECT_EQ(Judge("t", {}, 5, true).outcome, "not measured");
  const Verdict v = Judge("t", {3, 1, 2, 5, 4, 6}, 5, true);
  EXPECT_EQ(v.pairs, 6);
  EXPECT_DOUBLE_EQ(v.median, 3.5);
  EXPECT_EQ(v.min, 1);
  EXPECT_EQ(v.max, 6);
}

RunResult Window(EngineKind e, Workload w, int threads, int rep, double txn_per_s,
                 double p50_us = 100) {
  RunResult r;
  r.spec = {e, w, threads, w == Workload::kFsync ? 1u : 2u};
  r.rep = rep;
  r.txn_per_s = txn_per_s;
  r.p50_us = p50_us;
  return r;
}

TEST(TxbenchVerdict, TargetsPairWindowsOfTheSameRepetition) {
  // shardtx rises over the repetitions while RocksDB falls: the per-repetition ratios are
  // 2, 5, 10, 20, 50 (an undecided 10x), where pairing sorted figures would claim 10x each.
  std::vector<RunResult> runs;
  const double shardtx[] = {10, 20, 30, 40, 50}, rocksdb[] = {5, 4, 3, 2, 1};
  for (int rep = 0; rep < 5; ++rep) {
    runs.push_back(Window(EngineKind::kShardtx, Workload::kCross, 64, rep, shardtx[rep]));
    runs.push_back(Window(EngineKind::kRocksdb, Workload::kCross, 64, rep, rocksdb[rep]));
    // A failed window and an async one take no part.
    RunResult failed = Window(EngineKind::kRocksdb, Workload::kCross, 64, rep, 1000);
    failed.status = absl::InternalError("x");
    runs.push_back(failed);
    RunResult async = Window(EngineKind::kShardtx, Workload::kCross, 64, rep, 1e9);
    async.durability = DurabilityMode::kAsync;
    runs.push_back(async);
    // The floor and shardtx at one thread: p50 1.1x the floor in every repetition.
    runs.push_back(Window(EngineKind::kFsync, Workload::kFsync, 1, rep, 4000, 200));
    runs.push_back(Window(EngineKind::kShardtx, Workload::kSingle, 1, rep, 3000, 220));
  }
  const std::vector<Verdict> verdicts = JudgeTargets(runs);
  const Verdict* cross = nullptr;
  const Verdict* latency = nullptr;
  for (const Verdict& v : verdicts) {
    if (v.target.find("cross") != std::string::npos) cross = &v;
    if (v.target.find("fsync floor") != std::string::npos) latency = &v;
  }
  ASSERT_NE(cross, nullptr);
  EXPECT_EQ(cross->pairs, 5);
  EXPECT_DOUBLE_EQ(cross->median, 10);
  EXPECT_DOUBLE_EQ(cross->min, 2);
  EXPECT_DOUBLE_EQ(cross->max, 50);
  EXPECT_EQ(cross->outcome, "undecided");
  ASSERT_NE(latency, nullptr);
  EXPECT_EQ(latency->pairs, 5);
  EXPECT_NEAR(latency->median, 1.1, 1e-9);
  EXPECT_EQ(latency->outcome, "holds");
  // The printed summary shows the same figures.
  const std::string text = TargetsText(runs);
  EXPECT_NE(text.find("10.00x (2.00-50.00, 5 pairs)  undecided"), std::string::npos) << text;
  EXPECT_NE(text.find("not measured"), std::string::npos);  // single 64t and ycsb-b: no windows
  const std::string summary = SummaryText(runs);
  EXPECT_NE(summary.find("txn/s shardtx / rocksdb: 10x (2.00x-50x, 5)"), std::string::npos)
      << summary;
  EXPECT_EQ(summary.find("shardtx / shardtx"), std::string::npos) << summary;  // async apart
}

TEST(TxbenchVerdict, RepetitionsAlternateTheOrderOfTheEngines) {
  Config c = SmallConfig();
  c.engines = {EngineKind::kShardtx, EngineKind::kLmdb};
  c.seconds = 0.2;
  c.reps = 3;
  FILE* sink = std::tmpfile();
  Outcome outcome = txbench::Run(c, sink);
  std::fclose(sink);
  ASSERT_EQ(outcome.exit_code, 0);
  ASSERT_EQ(outcome.runs.size(), 6u);
  const EngineKind s = EngineKind::kShardtx, l = EngineKind::kLmdb;
  const std::vector<std::pair<int, EngineKind>> expected = {{0, s}, {0, l}, {1, l},
                                                            {1, s}, {2, s}, {2, l}};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(outcome.runs[i].rep, expected[i].first) << i;
    EXPECT_EQ(outcome.runs[i].spec.engine, expected[i].second) << i;
    EXPECT_TRUE(outcome.runs[i].status.ok()) << outcome.runs[i].status;
  }
  EXPECT_TRUE(std::filesystem::is_empty(c.dir));  // every contender's files are gone
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

TEST(TxbenchSettle, ShardtxCheckpointsAndRocksdbFlushesInsideTheWindow) {
  const std::string dir = FreshDir();
  const KeySpace keys(2000, 16, 100, 2, 0, 1);
  for (EngineKind kind : {EngineKind::kShardtx, EngineKind::kRocksdb}) {
    if (IsRocksdb(kind) && !HaveRocksdb()) continue;
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
  if (!HaveRocksdb()) GTEST_SKIP() << "built without RocksDB";
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

TEST(TxbenchOutput, FailedRunsAreReportedAndLeftOutOfTheJson) {
  RunResult ok;
  ok.spec = {EngineKind::kLmdb, Workload::kSingle, 1, 2};
  ok.committed = 10;
  ok.elapsed_s = 1;
  ok.txn_per_s = 10;
  RunResult failed;
  failed.spec = {EngineKind::kShardtx, Workload::kCross, 64, 2};
  failed.status = absl::InternalError("disk on fire");
  const std::vector<RunResult> runs = {ok, failed};
  Config c;
  const std::string table = TableText(runs);
  EXPECT_NE(table.find("FAILED"), std::string::npos);
  EXPECT_NE(table.find("disk on fire"), std::string::npos);
  JsonReader reader;
  auto doc = reader.Parse(ToJson(c, MachineInfo(), runs));
  ASSERT_TRUE(doc.has_value()) << reader.error();
  EXPECT_EQ(doc->Get("results")->array.size(), 1u);
  EXPECT_EQ(doc->Get("results")->array[0].Get("fsyncs_per_s")->type, JsonValue::Type::kNull);
}

TEST(TxbenchOutput, JsonReaderRejectsMalformedDocuments) {
  JsonReader reader;
  EXPECT_TRUE(reader.Parse(R"({"a": [1, -2.5e3, "x\"y", true, null], "b": {}})").has_value());
  EXPECT_FALSE(reader.Parse(R"({"a": 1,})").has_value());
  EXPECT_FALSE(reader.Parse(R"({"a": nan})").has_value());
  EXPECT_FALSE(reader.Parse(R"({"a": 1} x)").has_value());
  EXPECT_FALSE(reader.Parse(R"(["unterminated)").has_value());
}

TEST(TxbenchOutput, ChartIsDrawnWhenGnuplotIsPresent) {
  const std::string dir = FreshDir();
  RunResult a;
  a.spec = {EngineKind::kShardtx, Workload::kSingle, 64, 2};
  a.txn_per_s = 50000;
  a.p50_us = 900;
  a.p95_us = 1500;
  a.p99_us = 2500;
  a.p999_us = 4000;
  RunResult b = a;
  b.spec.engine = EngineKind::kLmdb;
  b.txn_per_s = 300;
  RunResult f;
  f.spec = {EngineKind::kFsync, Workload::kFsync, 1, 1};
  f.txn_per_s = 4000;
  f.p50_us = 230;
  f.p95_us = f.p99_us = f.p999_us = 300;
  const std::string png = dir + "/chart.png";
  ChartFiles files = MakeChart({f, a, b}, png, "test");
  EXPECT_NE(files.script.find(png), std::string::npos);
  EXPECT_NE(files.throughput_data.find("\"single 64t\" - 50000.0 300.0"), std::string::npos)
      << files.throughput_data;
  EXPECT_NE(files.latency_data.find("\"fsync floor\" 230.00"), std::string::npos);
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "gnuplot not installed";
  }
  absl::Status s = DrawChart({f, a, b}, png, "test");
  ASSERT_TRUE(s.ok()) << s;
  const std::string bytes = ReadFile(png);
  ASSERT_GT(bytes.size(), 1000u);
  EXPECT_EQ(bytes.substr(1, 3), "PNG");
}

}  // namespace
}  // namespace txbench
