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
#include "tests/bench/json_reader.h"
#include "txn/partitioner.h"

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
  auto e = ParseEngines("shardtx, rocksdb,lmdb,fsync,lmdb");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(*e, (std::vector<EngineKind>{EngineKind::kShardtx, EngineKind::kRocksdb,
                                         EngineKind::kLmdb, EngineKind::kFsync}));
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
  auto mb = ConfigFromFlags();
  ASSERT_TRUE(mb.ok()) << mb.status();
  EXPECT_EQ(mb->seconds, 4);  // --make-bench's default
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

TEST(TxbenchFlags, MakeBenchPlanIsTheDefaultMatrix) {
  Config c;
  c.make_bench = true;
  c.engines = {EngineKind::kShardtx, EngineKind::kRocksdb, EngineKind::kLmdb};
  const std::vector<RunSpec> runs = PlanRuns(c);
  ASSERT_EQ(runs.size(), 10u);
  EXPECT_EQ(runs[0].engine, EngineKind::kFsync);
  int single1 = 0, single64 = 0, cross64 = 0;
  for (size_t i = 1; i < runs.size(); ++i) {
    if (runs[i].workload == Workload::kSingle && runs[i].threads == 1) ++single1;
    if (runs[i].workload == Workload::kSingle && runs[i].threads == 64) ++single64;
    if (runs[i].workload == Workload::kCross && runs[i].threads == 64 &&
        runs[i].shards_per_txn == 2) {
      ++cross64;
    }
  }
  EXPECT_EQ(single1, 3);
  EXPECT_EQ(single64, 3);
  EXPECT_EQ(cross64, 3);
}

// ---------------------------------------------------------------------------------------------
// Key space and workloads

TEST(TxbenchKeySpace, ShardsAreShardtxsAndBucketsCoverEveryKey) {
  const KeySpace keys(5000, 16, 100, 4, 0, 1);
  const shardtx::txn::Partitioner partitioner(shardtx::Options(), 4);
  uint64_t total = 0;
  for (uint32_t s = 0; s < 4; ++s) {
    EXPECT_GT(keys.KeysOfShard(s).size(), 500u);
    for (uint64_t k : keys.KeysOfShard(s)) {
      EXPECT_EQ(partitioner.ShardOf(keys.Key(k)), s);
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
  if (ew.engine == EngineKind::kRocksdb && !HaveRocksdb()) GTEST_SKIP() << "built without RocksDB";
  Config c = SmallConfig();
  RunSpec spec{ew.engine, ew.workload, c.threads, c.shards_per_txn};
  RunResult r = RunOne(c, spec, nullptr);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_GT(r.committed, 0u);
  EXPECT_GE(r.elapsed_s, c.seconds * 0.9);
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
  return out;
}

std::string RunName(const ::testing::TestParamInfo<EngineWorkload>& info) {
  std::string w = WorkloadName(info.param.workload);
  for (char& ch : w) {
    if (ch == '-') ch = '_';
  }
  return std::string(EngineName(info.param.engine)) + "_" + w;
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

  JsonReader reader;
  auto doc = reader.Parse(ReadFile(c.json_path));
  ASSERT_TRUE(doc.has_value()) << reader.error();
  ASSERT_EQ(doc->type, JsonValue::Type::kObject);
  ASSERT_EQ(doc->object.size(), 2u);
  const JsonValue* machine = doc->Get("machine");
  const JsonValue* results = doc->Get("results");
  ASSERT_NE(machine, nullptr);
  ASSERT_NE(results, nullptr);
  EXPECT_EQ(machine->type, JsonValue::Type::kObject);
  EXPECT_NE(machine->Get("cpus"), nullptr);
  ASSERT_EQ(results->type, JsonValue::Type::kArray);
  ASSERT_EQ(results->array.size(), outcome.runs.size());

  const std::vector<std::string> schema = {
      "engine",     "workload",  "threads",   "shards",      "shards_per_txn",
      "durability", "txn_per_s", "ops_per_s", "abort_pct",   "p50_us",
      "p95_us",     "p99_us",    "p999_us",   "fsyncs_per_s"};
  for (size_t i = 0; i < results->array.size(); ++i) {
    const JsonValue& row = results->array[i];
    const RunResult& run = outcome.runs[i];
    ASSERT_EQ(row.object.size(), schema.size());
    for (size_t f = 0; f < schema.size(); ++f) EXPECT_EQ(row.object[f].first, schema[f]);
    EXPECT_EQ(row.Get("engine")->string, EngineName(run.spec.engine));
    EXPECT_EQ(row.Get("workload")->string, WorkloadName(run.spec.workload));
    EXPECT_EQ(row.Get("threads")->number, run.spec.threads);
    EXPECT_EQ(row.Get("durability")->string, "sync");
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
            "engine,workload,threads,shards,shards_per_txn,durability,txn_per_s,ops_per_s,"
            "abort_pct,p50_us,p95_us,p99_us,p999_us,fsyncs_per_s");
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(std::vector<std::string>(absl::StrSplit(lines[i], ',')).size(), schema.size());
  }
}

TEST(TxbenchOutput, FailedRunsAreReportedAndLeftOutOfTheJson) {
  RunResult ok;
  ok.spec = {EngineKind::kLmdb, Workload::kSingle, 1, 2};
  ok.committed = 10;
  ok.elapsed_s = 1;
  ok.txn_per_s = 10;
  RunResult failed;
  failed.spec = {EngineKind::kShardtx, Workload::kCross, 64, 2};
  failed.status = absl::UnimplementedError("cross-shard commit");
  const std::vector<RunResult> runs = {ok, failed};
  Config c;
  const std::string table = TableText(runs);
  EXPECT_NE(table.find("FAILED"), std::string::npos);
  EXPECT_NE(table.find("cross-shard commit"), std::string::npos);
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
