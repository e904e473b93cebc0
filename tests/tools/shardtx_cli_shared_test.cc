// The shardtx tool on a database in the shared log layout (one log for all shards, PATH/log,
// each record's stream its shard), built through the library: wal dump filters the log by
// stream, wal verify and check read it once and say it is shared, stat counts its segments
// once; damage in it is found once; the manifest's format 3 needs its "log shared" line.
#include <filesystem>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "shardtx/partitioning.h"
#include "tests/tools/shardtx_cli_util.h"

namespace shardtx::testing {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kShards = 3;

Options SharedDb(const std::string& dir, bool keep_wal) {
  Options o = SmallDb(dir, kShards, keep_wal);
  o.log_layout = Options::LogLayout::kShared;
  return o;
}

// A shared-layout database of `n` single-key commits ("key-000" ...) over kShards shards, all
// still in the log (no checkpoint). *per_shard: the commits that landed on each shard.
std::string SharedWalDb(int n, std::vector<int>* per_shard = nullptr) {
  const std::string dir = FreshDir();
  const Options options = SharedDb(dir, /*keep_wal=*/true);
  auto partitioner = KeyPartitioning::Make(options, kShards);
  EXPECT_TRUE(partitioner.ok()) << partitioner.status();
  auto db = OpenOrDie(options);
  EXPECT_TRUE(db->GetStats().shared_log);
  std::vector<int> counts(kShards, 0);
  for (int i = 0; i < n; ++i) {
    const std::string key = absl::StrFormat("key-%03d", i);
    EXPECT_TRUE(PutOne(db.get(), key, "value").ok());
    ++counts[partitioner->ShardOf(key)];
  }
  EXPECT_TRUE(db->Close().ok());
  if (per_shard != nullptr) *per_shard = counts;
  return dir;
}

std::vector<std::string> LinesStartingWith(const std::string& s, absl::string_view prefix) {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(s, '\n')) {
    if (absl::StartsWith(line, prefix)) out.emplace_back(line);
  }
  return out;
}

// The value of "name=" in a dump line ("shard=1 lsn=7 type=commit ...").
uint64_t Field(absl::string_view line, absl::string_view name) {
  for (absl::string_view word : absl::StrSplit(line, ' ')) {
    if (absl::ConsumePrefix(&word, absl::StrCat(name, "="))) {
      uint64_t v = 0;
      EXPECT_TRUE(absl::SimpleAtoi(word, &v)) << line;
      return v;
    }
  }
  ADD_FAILURE() << "no " << name << " in " << line;
  return 0;
}

size_t FilesIn(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

TEST(ShardtxCliSharedLog, WalDumpReadsTheOneLogInLsnOrderAndFiltersByShard) {
  std::vector<int> per_shard;
  const std::string dir = SharedWalDb(30, &per_shard);
  ASSERT_TRUE(fs::is_directory(dir + "/log"));
  ASSERT_FALSE(fs::exists(dir + "/shard-000/wal"));
  const auto before = Fingerprint(dir);

  CliResult all = RunCli({"wal", "dump", dir});
  ASSERT_EQ(all.code, 0) << Describe(all);
  const std::vector<std::string> lines = LinesStartingWith(all.out, "shard=");
  ASSERT_EQ(lines.size(), 30u) << all.out;  // one commit record per transaction
  uint64_t last = 0;
  std::vector<int> seen(kShards, 0);
  for (const std::string& line : lines) {
    const uint64_t lsn = Field(line, "lsn");
    EXPECT_GT(lsn, last) << "one pass over the shared log, in LSN order: " << line;
    last = lsn;
    const uint64_t shard = Field(line, "shard");
    ASSERT_LT(shard, kShards) << line;
    ++seen[shard];
  }
  EXPECT_EQ(seen, per_shard) << "each record under the shard its stream names";
  EXPECT_TRUE(absl::StrContains(all.out, "# 30 records,")) << all.out;

  int total = 0;
  for (uint32_t s = 0; s < kShards; ++s) {
    CliResult one = RunCli({"wal", "dump", dir, "--shard", absl::StrCat(s)});
    ASSERT_EQ(one.code, 0) << Describe(one);
    const std::vector<std::string> mine = LinesStartingWith(one.out, "shard=");
    EXPECT_EQ(static_cast<int>(mine.size()), per_shard[s]) << one.out;
    for (const std::string& line : mine) EXPECT_EQ(Field(line, "shard"), s) << line;
    total += static_cast<int>(mine.size());
  }
  EXPECT_EQ(total, 30);
  // --limit counts the shard's records, --from the log's LSNs.
  CliResult limited = RunCli({"wal", "dump", dir, "--shard=2", "--from=5", "--limit=2", "--json"});
  ASSERT_EQ(limited.code, 0) << Describe(limited);
  const std::vector<std::string> json = LinesStartingWith(limited.out, "{\"shard\":");
  ASSERT_EQ(json.size(), std::min<size_t>(2, per_shard[2])) << limited.out;
  for (const std::string& line : json) EXPECT_TRUE(absl::StartsWith(line, "{\"shard\":2,")) << line;
  EXPECT_EQ(RunCli({"wal", "dump", dir, "--shard=3"}).code, 2);  // no such shard
  EXPECT_EQ(Fingerprint(dir), before) << "wal dump changes no byte";
}

TEST(ShardtxCliSharedLog, VerifyStatAndCheckReadTheSharedLogOnceAndSaySo) {
  std::vector<int> per_shard;
  const std::string dir = SharedWalDb(30, &per_shard);
  const auto before = Fingerprint(dir);
  const std::string by_shard =
      absl::StrCat("records by shard: 0:", per_shard[0], " 1:", per_shard[1], " 2:", per_shard[2]);

  CliResult v = RunCli({"wal", "verify", dir});
  EXPECT_EQ(v.code, 0) << Describe(v);
  EXPECT_EQ(LinesStartingWith(v.out, "shared log (all 3 shards): 30 records, LSN ").size(), 1u)
      << v.out;
  EXPECT_TRUE(LinesStartingWith(v.out, "shard ").empty()) << "verified once, not per shard";
  EXPECT_TRUE(absl::StrContains(v.out, by_shard)) << v.out;
  EXPECT_TRUE(absl::StrContains(v.out, "verdict: clean")) << v.out;
  CliResult vj = RunCli({"wal", "verify", dir, "--json"});
  EXPECT_EQ(vj.code, 0) << Describe(vj);
  EXPECT_TRUE(absl::StrContains(vj.out, "\"log_layout\":\"shared\",\"log\":{\"shared_by\":3,"))
      << vj.out;
  EXPECT_TRUE(absl::StrContains(vj.out, absl::StrCat("{\"shard\":1,\"records\":", per_shard[1])))
      << vj.out;

  // stat: the log's segment files once (as many as PATH/log holds), each shard its records.
  const size_t segments = FilesIn(dir + "/log");
  ASSERT_GE(segments, 1u);
  CliResult st = RunCli({"stat", dir});
  ASSERT_EQ(st.code, 0) << Describe(st);
  EXPECT_TRUE(absl::StrContains(st.out, "3 shards, partitioning hash, one log shared by all"))
      << st.out;
  EXPECT_EQ(
      LinesStartingWith(st.out, absl::StrCat("shared log: ", segments, " segment files")).size(),
      1u)
      << st.out;
  for (uint32_t s = 0; s < kShards; ++s) {
    EXPECT_TRUE(absl::StrContains(
        st.out, absl::StrCat("shard ", s, ": ", per_shard[s], " records in the shared log")))
        << st.out;
  }
  EXPECT_EQ(LinesStartingWith(st.out, "shard ").size(), kShards) << st.out;
  EXPECT_EQ(st.out.find("segment files", st.out.find("\nshard ")), std::string::npos)
      << "no shard line counts segment files: " << st.out;
  CliResult sj = RunCli({"stat", dir, "--json"});
  ASSERT_EQ(sj.code, 0) << Describe(sj);
  EXPECT_TRUE(absl::StrContains(
      sj.out, absl::StrCat("\"log_layout\":\"shared\",\"log\":{\"wal_segments\":", segments, ",")))
      << sj.out;
  EXPECT_FALSE(absl::StrContains(sj.out, "{\"shard\":0,\"wal_segments\"")) << sj.out;

  CliResult c = RunCli({"check", dir});
  EXPECT_EQ(c.code, 0) << Describe(c);
  EXPECT_EQ(LinesStartingWith(c.out, "shared log (all 3 shards): 30 records").size(), 1u) << c.out;
  EXPECT_EQ(LinesStartingWith(c.out, "shard ").size(), kShards) << c.out;
  EXPECT_TRUE(absl::StrContains(c.out, "verdict: clean")) << c.out;
  // (stat registers as a reader in LMDB's lock.mdb, as beside a host that has it open.)
  auto without_lmdb_locks = [](std::map<std::string, std::string> files) {
    std::erase_if(files, [](const auto& f) { return absl::EndsWith(f.first, "/lock.mdb"); });
    return files;
  };
  EXPECT_EQ(without_lmdb_locks(Fingerprint(dir)), without_lmdb_locks(before))
      << "verify, stat and check change no byte";

  // After a checkpoint (stores hold the data, the log is cut behind them) all is still clean.
  ASSERT_EQ(RunCli({"checkpoint", dir}).code, 0);
  c = RunCli({"check", dir, "--json"});
  EXPECT_EQ(c.code, 0) << Describe(c);
  EXPECT_TRUE(absl::StrContains(c.out, "\"log_problems\":[]")) << c.out;
  EXPECT_TRUE(absl::StrContains(c.out, "\"verdict\":\"clean\"")) << c.out;
}

TEST(ShardtxCliSharedLog, AFlippedByteMidLogIsOneCorruptionOfTheSharedLog) {
  const std::string dir = SharedWalDb(40);
  const std::string segment = LiveSegment(dir + "/log");
  ASSERT_FALSE(segment.empty());
  const std::vector<uint64_t> offsets = RecordOffsets(segment);
  ASSERT_GE(offsets.size(), 40u);
  FlipByte(segment, offsets[10] + wal::kRecordHeaderSize + 2);  // a record mid-log
  const auto before = Fingerprint(dir);

  CliResult v = RunCli({"wal", "verify", dir});
  EXPECT_EQ(v.code, 1) << Describe(v);
  EXPECT_TRUE(absl::StrContains(v.out, "shared log (all 3 shards): ")) << v.out;
  EXPECT_TRUE(absl::StrContains(v.out, "CORRUPT")) << v.out;
  EXPECT_TRUE(absl::StrContains(v.out, absl::StrCat("offset ", offsets[10]))) << v.out;
  EXPECT_TRUE(absl::StrContains(v.out, "verdict: damaged")) << v.out;
  CliResult c = RunCli({"check", dir});
  EXPECT_EQ(c.code, 1) << Describe(c);
  EXPECT_EQ(LinesStartingWith(c.out, "  shared log: WAL CORRUPT").size(), 1u) << c.out;
  EXPECT_FALSE(absl::StrContains(c.out, "  shard 0: WAL")) << "reported once, not per shard";
  CliResult w = RunCli({"wal", "dump", dir});
  EXPECT_EQ(w.code, 1) << Describe(w);
  EXPECT_EQ(LinesStartingWith(w.out, "shard=").size(), 10u) << w.out;
  EXPECT_TRUE(absl::StrContains(w.out, "# shared log: CORRUPT")) << w.out;
  EXPECT_EQ(Fingerprint(dir), before);
}

TEST(ShardtxCliSharedLog, CheckNeedsTheLogToReachTheLargestAppliedLsn) {
  const std::string dir = FreshDir();
  {
    auto db = OpenOrDie(SharedDb(dir, /*keep_wal=*/false));
    for (int i = 0; i < 9; ++i) ASSERT_TRUE(PutOne(db.get(), absl::StrCat("k", i), "v").ok());
    ASSERT_TRUE(db->Close().ok());  // checkpoints every shard
  }
  ASSERT_EQ(RunCli({"check", dir}).code, 0);
  // The shared log emptied behind the stores' back: every segment file gone.
  for (const auto& e : fs::directory_iterator(dir + "/log")) fs::remove(e.path());
  CliResult c = RunCli({"check", dir});
  EXPECT_EQ(c.code, 1) << Describe(c);
  EXPECT_EQ(
      LinesStartingWith(c.out, "  shared log: WAL ends at LSN 0, below LMDB's applied LSN").size(),
      1u)
      << c.out;
}

// A record whose stream names no shard of the database (here: the manifest rewritten to 2 of
// the 3 shards whose records the log holds) is damage Database::Open would refuse: wal verify,
// wal dump, stat and check each say so.
TEST(ShardtxCliSharedLog, ARecordOfNoShardIsDamage) {
  std::vector<int> per_shard;
  const std::string dir = SharedWalDb(30, &per_shard);
  ASSERT_GT(per_shard[2], 0);
  const std::string manifest = ReadFile(dir + "/SHARDTX");
  std::string two = manifest;
  two.replace(two.find("shards 3\n"), 9, "shards 2\n");
  WriteFile(dir + "/SHARDTX", two);

  CliResult v = RunCli({"wal", "verify", dir});
  EXPECT_EQ(v.code, 1) << Describe(v);
  EXPECT_TRUE(absl::StrContains(v.out, "MALFORMED: LSN ")) << v.out;
  EXPECT_TRUE(absl::StrContains(v.out, ": stream 2, but the database has 2 shards")) << v.out;
  EXPECT_TRUE(absl::StrContains(v.out, "verdict: damaged")) << v.out;
  CliResult d = RunCli({"wal", "dump", dir});
  EXPECT_EQ(d.code, 1) << Describe(d);
  EXPECT_EQ(LinesStartingWith(d.out, "shard=2 ").size(), static_cast<size_t>(per_shard[2]))
      << d.out;
  EXPECT_TRUE(absl::StrContains(d.out, "MALFORMED: stream 2")) << d.out;
  CliResult st = RunCli({"stat", dir});
  EXPECT_EQ(st.code, 1) << Describe(st);
  EXPECT_TRUE(
      absl::StrContains(st.out, absl::StrCat(per_shard[2], " records of no shard (DAMAGE)")))
      << st.out;
  EXPECT_EQ(RunCli({"check", dir}).code, 1);
  WriteFile(dir + "/SHARDTX", manifest);
  EXPECT_EQ(RunCli({"wal", "verify", dir}).code, 0);
}

TEST(ShardtxCliSharedLog, Format3NeedsItsLogSharedLineAndOlderFormatsRefuseIt) {
  const std::string dir = SharedWalDb(3);
  const std::string manifest = ReadFile(dir + "/SHARDTX");
  ASSERT_TRUE(absl::StrContains(manifest, "format 3\n")) << manifest;
  ASSERT_TRUE(absl::StrContains(manifest, "log shared\n")) << manifest;
  ASSERT_EQ(RunCli({"stat", dir}).code, 0);

  auto rewrite = [&](const std::string& from, const std::string& to) {
    std::string m = manifest;
    m.replace(m.find(from), from.size(), to);
    WriteFile(dir + "/SHARDTX", m);
  };
  rewrite("log shared\n", "");  // format 3 without its line
  CliResult r = RunCli({"stat", dir});
  EXPECT_EQ(r.code, 2) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.err, "corrupt")) << r.err;
  rewrite("format 3\n", "format 2\n");  // the line in a format that has none
  r = RunCli({"wal", "verify", dir});
  EXPECT_EQ(r.code, 2) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.err, "corrupt")) << r.err;
  rewrite("log shared\n", "log sometimes\n");
  EXPECT_EQ(RunCli({"check", dir}).code, 2);
  WriteFile(dir + "/SHARDTX", manifest);
  EXPECT_EQ(RunCli({"check", dir}).code, 0);
}

TEST(ShardtxCliSharedLog, BackupAndRestoreOfASharedLogDatabaseCheckClean) {
  const std::string dir = SharedWalDb(12);
  const std::string copy = FreshDir("_copy"), restored = FreshDir("_restored");
  fs::remove_all(copy);
  fs::remove_all(restored);
  CliResult b = RunCli({"backup", dir, copy});
  ASSERT_EQ(b.code, 0) << Describe(b);
  CliResult r = RunCli({"restore", copy, restored});
  ASSERT_EQ(r.code, 0) << Describe(r);
  for (const std::string& d : {copy, restored}) {
    CliResult c = RunCli({"check", d});
    EXPECT_EQ(c.code, 0) << d << "\n" << Describe(c);
    EXPECT_TRUE(absl::StrContains(c.out, "shared log (all 3 shards)")) << c.out;
  }
  auto db = OpenOrDie(SharedDb(restored, /*keep_wal=*/true));
  EXPECT_TRUE(db->GetStats().shared_log);
  EXPECT_EQ(Contents(db.get()).size(), 12u);
  EXPECT_TRUE(db->Close().ok());
}

}  // namespace
}  // namespace shardtx::testing
