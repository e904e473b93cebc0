// The shardtx tool's commands that open the database as a host does: dump and load (binary
// round trip, ranges, malformed and truncated files), prepared list/commit/rollback, checkpoint.
#include <filesystem>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/tools/shardtx_cli_util.h"

namespace shardtx::testing {
namespace {

namespace fs = std::filesystem;

uint64_t Seed() {
  const char* env = std::getenv("SHARDTX_SEED");
  const uint64_t seed = env != nullptr ? std::strtoull(env, nullptr, 10) : std::random_device()();
  std::printf("SHARDTX_SEED=%llu\n", static_cast<unsigned long long>(seed));
  return seed;
}

std::string RandomBytes(std::mt19937_64* rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>((*rng)() & 0xff);
  return s;
}

// Keys and values that exercise the format: every byte value, quotes, backslashes, newlines,
// spaces, an empty value, a key of the largest size, a 100 KB value, random binary.
std::map<std::string, std::string> AwkwardContents(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::map<std::string, std::string> kv;
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  kv[all.substr(1, 255)] = all;
  kv["quote\"back\\slash"] = "line\nbreak\r\ttab and space";
  kv[std::string("\0zero", 5)] = "";
  kv["# end 1 records"] = "\"\" 0x";
  kv[std::string(kMaxKeySize, '\xee')] = std::string(100000, 'x');
  for (int i = 0; i < 300; ++i)
    kv[RandomBytes(&rng, 1 + rng() % 40)] = RandomBytes(&rng, rng() % 200);
  return kv;
}

std::string FilledDb(const std::map<std::string, std::string>& kv, uint32_t shards) {
  const std::string dir = FreshDir(absl::StrCat("_src", shards));
  auto db = OpenOrDie(SmallDb(dir, shards, /*keep_wal=*/false));
  auto txn = db->Begin();
  for (const auto& [k, v] : kv) EXPECT_TRUE(txn->Put(k, v).ok());
  EXPECT_TRUE(txn->Commit().ok());
  EXPECT_TRUE(db->Close().ok());
  return dir;
}

std::map<std::string, std::string> ContentsOf(const std::string& dir) {
  auto db = OpenOrDie(SmallDb(dir, 0, false));
  if (db == nullptr) return {};
  auto out = Contents(db.get());
  EXPECT_TRUE(db->Close().ok());
  return out;
}

TEST(ShardtxCliData, DumpThenLoadRoundTripsBinaryKeysAndValuesExactly) {
  const auto kv = AwkwardContents(Seed());
  const std::string src = FilledDb(kv, 3);
  for (bool hex : {false, true}) {
    std::vector<std::string> args = {"dump", src};
    if (hex) args.push_back("--hex");
    CliResult d = RunCli(args);
    ASSERT_EQ(d.code, 0) << Describe(d);
    EXPECT_TRUE(absl::StartsWith(d.out, "# shardtx dump 1\n")) << d.out.substr(0, 100);
    EXPECT_TRUE(absl::EndsWith(d.out, absl::StrCat("# end ", kv.size(), " records\n")));
    EXPECT_EQ(std::count(d.out.begin(), d.out.end(), '\n'), static_cast<long>(kv.size() + 2));
    const std::string file = FreshDir(hex ? "_hex.txt" : "_text.txt");
    WriteFile(file, d.out);

    const std::string dst = FreshDir(hex ? "_dst_hex" : "_dst_text");
    CliResult l = RunCli({"load", dst, file, "--create", "--shards=2", "--batch_keys=7"});
    ASSERT_EQ(l.code, 0) << Describe(l);
    EXPECT_TRUE(absl::StrContains(l.out, absl::StrCat("loaded ", kv.size(), " records"))) << l.out;
    EXPECT_EQ(ContentsOf(dst), kv) << (hex ? "hex" : "escaped");
    // A dump of the copy is the same text: key order does not depend on the shard count.
    CliResult again = RunCli(args.size() == 3 ? std::vector<std::string>{"dump", dst, "--hex"}
                                              : std::vector<std::string>{"dump", dst});
    EXPECT_EQ(again.out, d.out);
  }
}

// load --create makes the library's default layout (one shared log), or the one asked for; a
// layout it does not know creates nothing.
TEST(ShardtxCliData, LoadCreateTakesTheLogLayout) {
  std::map<std::string, std::string> kv = {{"a", "1"}, {"b", "2"}};
  const std::string file = FreshDir("_kv.txt");
  WriteFile(file, "# shardtx dump 1\n\"a\" \"1\"\n\"b\" \"2\"\n# end 2 records\n");
  const std::string shared = FreshDir("_shared");
  CliResult l = RunCli({"load", shared, file, "--create", "--shards=2"});
  ASSERT_EQ(l.code, 0) << Describe(l);
  EXPECT_TRUE(fs::is_directory(shared + "/log"));
  EXPECT_FALSE(fs::exists(shared + "/shard-000/wal"));
  EXPECT_EQ(ContentsOf(shared), kv);

  const std::string per_shard = FreshDir("_per_shard");
  l = RunCli({"load", per_shard, file, "--create", "--shards=2", "--log_layout=per-shard"});
  ASSERT_EQ(l.code, 0) << Describe(l);
  EXPECT_FALSE(fs::exists(per_shard + "/log"));
  EXPECT_TRUE(fs::is_directory(per_shard + "/shard-001/wal"));
  EXPECT_EQ(ContentsOf(per_shard), kv);

  const std::string bad = FreshDir("_bad");
  l = RunCli({"load", bad, file, "--create", "--log_layout=one"});
  EXPECT_EQ(l.code, 2) << Describe(l);
  EXPECT_TRUE(absl::StrContains(l.err, "shared|per-shard")) << Describe(l);
  EXPECT_FALSE(fs::exists(bad));
}

TEST(ShardtxCliData, DumpTakesAKeyRange) {
  std::map<std::string, std::string> kv;
  for (int i = 0; i < 10; ++i) kv[absl::StrCat("k", i)] = absl::StrCat("v", i);
  const std::string src = FilledDb(kv, 2);
  CliResult d = RunCli({"dump", src, "--from", "k3", "--to", "0x6b36"});  // [k3, k6)
  ASSERT_EQ(d.code, 0) << Describe(d);
  EXPECT_EQ(d.out,
            "# shardtx dump 1\n\"k3\" \"v3\"\n\"k4\" \"v4\"\n\"k5\" \"v5\"\n# end 3 records\n");
}

TEST(ShardtxCliData, LoadOfAMalformedOrTruncatedFileCommitsNothing) {
  const std::string dst = FilledDb({{"keep", "me"}}, 2);
  const auto before = ContentsOf(dst);
  const std::string good = "\"a\" \"1\"\n\"b\" 0x02\n\"c\" \"3\"\n";
  const std::vector<std::pair<std::string, std::string>> files = {
      {"# shardtx dump 1\n" + good + "\"d\" \"unterminated\n\"e\" \"5\"\n# end 5 records\n",
       "line 5: value: unterminated"},
      {"# shardtx dump 1\n" + good + "0x6 \"x\"\n# end 4 records\n", "line 5: key: odd number"},
      {"# shardtx dump 1\n" + good + "\"d\"  \"x\"\n# end 4 records\n", "line 5: value"},
      {"# shardtx dump 1\n" + good + "\"\" \"empty key\"\n# end 4 records\n", "line 5: key of 0"},
      {"# shardtx dump 1\n" + good + "\"\\q\" \"x\"\n# end 4 records\n", "line 5: key: bad escape"},
      {"# shardtx dump 1\n" + good, "truncated"},
      {"# shardtx dump 1\n" + good + "# end 4 records\n", "line 5: the dump says 4 records"},
      {"# shardtx dump 1\n" + good + "# end 3 records\n\"z\" \"late\"\n", "line 6: after"},
      {good, "line 1: expected '# shardtx dump 1'"},
      {"", "empty"}};
  for (const auto& [text, message] : files) {
    const std::string file = FreshDir("_bad.txt");
    WriteFile(file, text);
    CliResult l = RunCli({"load", dst, file, "--batch_keys=1"});
    EXPECT_EQ(l.code, 2) << message << "\n" << Describe(l);
    EXPECT_TRUE(absl::StrContains(l.err, message)) << Describe(l);
    EXPECT_TRUE(absl::StrContains(l.err, "nothing loaded")) << Describe(l);
    EXPECT_EQ(ContentsOf(dst), before) << message;
    const std::string fresh = FreshDir("_never");
    EXPECT_EQ(RunCli({"load", fresh, file, "--create"}).code, 2);
    EXPECT_FALSE(fs::exists(fresh)) << "a bad file creates no database";
  }
  EXPECT_EQ(RunCli({"load", dst, FreshDir("_absent.txt")}).code, 2);
  EXPECT_EQ(RunCli({"load", dst, "/dev/null", "--batch_keys=0"}).code, 2);
}

TEST(ShardtxCliData, PreparedListCommitAndRollbackByName) {
  const std::string dir = FreshDir();
  {
    auto db = OpenOrDie(SmallDb(dir, 2, /*keep_wal=*/false));
    for (const char* name : {"xa-commit", "xa-rollback"}) {
      auto txn = db->Begin();
      ASSERT_TRUE(txn->Put(absl::StrCat(name, "-a"), "1").ok());
      ASSERT_TRUE(txn->Put(absl::StrCat(name, "-b"), "2").ok());
      ASSERT_TRUE(txn->Prepare(name).ok());
    }
    ASSERT_TRUE(db->Close().ok());
  }
  CliResult s = RunCli({"stat", dir});
  EXPECT_TRUE(absl::StrContains(s.out, "prepared: \"xa-commit\"")) << s.out;
  CliResult l = RunCli({"prepared", "list", dir});
  ASSERT_EQ(l.code, 0) << Describe(l);
  EXPECT_EQ(l.out, "xa-commit\nxa-rollback\n");
  EXPECT_EQ(RunCli({"prepared", "list", dir, "--json"}).out,
            "{\"prepared\":[\"xa-commit\",\"xa-rollback\"]}\n");

  CliResult c = RunCli({"prepared", "commit", dir, "xa-commit"});
  EXPECT_EQ(c.code, 0) << Describe(c);
  CliResult r = RunCli({"prepared", "rollback", dir, "xa-rollback"});
  EXPECT_EQ(r.code, 0) << Describe(r);
  EXPECT_EQ(RunCli({"prepared", "list", dir}).out, "");
  CliResult again = RunCli({"prepared", "commit", dir, "xa-commit"});
  EXPECT_EQ(again.code, 1) << Describe(again);             // ran; no such prepared transaction
  EXPECT_EQ(RunCli({"prepared", "commit", dir}).code, 2);  // usage

  const auto contents = ContentsOf(dir);
  EXPECT_EQ(contents.count("xa-commit-a"), 1u);
  EXPECT_EQ(contents.count("xa-commit-b"), 1u);
  EXPECT_EQ(contents.count("xa-rollback-a"), 0u);
  EXPECT_TRUE(absl::StrContains(RunCli({"stat", dir}).out, "prepared transactions: none"));
}

TEST(ShardtxCliData, CheckpointMovesTheWalIntoLmdb) {
  const std::string dir = FreshDir();
  {
    auto db = OpenOrDie(SmallDb(dir, 1, /*keep_wal=*/true));
    for (int i = 0; i < 8; ++i) ASSERT_TRUE(PutOne(db.get(), absl::StrCat("k", i), "v").ok());
    ASSERT_TRUE(db->Close().ok());
  }
  EXPECT_TRUE(absl::StrContains(RunCli({"stat", dir}).out, "applied LSN 0 (8 records to redo)"));
  CliResult c = RunCli({"checkpoint", dir});
  EXPECT_EQ(c.code, 0) << Describe(c);
  CliResult s = RunCli({"stat", dir, "--json"});
  EXPECT_TRUE(absl::StrContains(s.out, "\"applied_lsn\":8")) << s.out;
}

}  // namespace
}  // namespace shardtx::testing
