// The shardtx tool on value checksums (check names the damaged key; a lost entry is found by
// the store digest) and on backup/restore.
#include <filesystem>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tests/engine/raw_lmdb.h"
#include "tests/tools/shardtx_cli_util.h"

namespace shardtx::testing {
namespace {

namespace fs = std::filesystem;

// One shard of needle-NN -> "hay of needle-NN", checkpointed into data.mdb.
std::string NeedleDb() {
  const std::string dir = FreshDir();
  auto db = OpenOrDie(SmallDb(dir, 1, /*keep_wal=*/false));
  for (int i = 0; i < 20; ++i) {
    const std::string key = absl::StrFormat("needle-%02d", i);
    EXPECT_TRUE(PutOne(db.get(), key, "hay of " + key).ok());
  }
  EXPECT_TRUE(db->Close().ok());  // checkpoints: the values are in data.mdb
  return dir;
}

TEST(ShardtxCliChecksums, AFlippedValueByteIsReportedWithShardAndKeyAndNeverRead) {
  const std::string dir = NeedleDb();
  ASSERT_EQ(RunCli({"check", dir}).code, 0);
  const std::string mdb = dir + "/shard-000/lmdb/data.mdb";
  const size_t at = ReadFile(mdb).find("hay of needle-07");
  ASSERT_NE(at, std::string::npos);
  FlipByte(mdb, at + 2, 0x01);  // "hay" -> "hax": a plausible value, to LMDB a valid page

  CliResult c = RunCli({"check", dir});
  EXPECT_EQ(c.code, 1) << Describe(c);
  EXPECT_TRUE(absl::StrContains(c.out, "shard 0")) << c.out;
  EXPECT_TRUE(absl::StrContains(c.out, "key 'needle-07': checksum mismatch")) << c.out;
  // Reading it through the library is kDataLoss, never the wrong bytes.
  CliResult d = RunCli({"dump", dir});
  EXPECT_NE(d.code, 0) << Describe(d);
  EXPECT_FALSE(absl::StrContains(d.out, "hax of needle-07")) << d.out;
  auto db = OpenOrDie(SmallDb(dir, 0, false));
  ASSERT_NE(db, nullptr);
  auto got = GetOne(db.get(), "needle-07");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss) << got.status();
  EXPECT_TRUE(absl::StrContains(got.status().message(), "needle-07")) << got.status();
  EXPECT_EQ(*GetOne(db.get(), "needle-08"), "hay of needle-08");
}

// An entry that vanished has no value left to fail a checksum: the digest finds it.
TEST(ShardtxCliChecksums, ALostEntryIsFoundByTheStoreDigest) {
  const std::string dir = NeedleDb();
  RawWrite(dir + "/shard-000/lmdb", [](MDB_txn* txn, const auto& open) {
    const std::string key = "needle-03";
    MDB_val k = RawVal(key);
    EXPECT_EQ(mdb_del(txn, open("data"), &k, nullptr), 0);
  });
  CliResult c = RunCli({"check", dir});
  EXPECT_EQ(c.code, 1) << Describe(c);
  EXPECT_TRUE(absl::StrContains(c.out, "digest mismatch: the last checkpoint recorded 20 entries"))
      << c.out;
}

// A format-1 directory (values without checksums): check cannot vouch for it and says how to
// upgrade; a command that opens it upgrades it, and then it checks clean.
TEST(ShardtxCliChecksums, AFormat1DirectoryIsRefusedByCheckUntilUpgraded) {
  const std::string dir = FreshDir();
  WriteFormat1Store(dir + "/shard-000/lmdb", {{"old", "value"}}, 9, 0,
                    /*with_prepared_row=*/false);
  WriteFile(dir + "/SHARDTX", "format 1\nshards 1\npartitioning hash\n");
  const auto before = Fingerprint(dir);
  CliResult c = RunCli({"check", dir});
  EXPECT_EQ(c.code, 2) << Describe(c);
  EXPECT_TRUE(absl::StrContains(c.err, "has format 1")) << c.err;
  EXPECT_EQ(Fingerprint(dir), before);
  ASSERT_EQ(RunCli({"checkpoint", dir}).code, 0);
  EXPECT_TRUE(absl::StartsWith(ReadFile(dir + "/SHARDTX"), "format 2\n"));
  CliResult after = RunCli({"check", dir});
  EXPECT_EQ(after.code, 0) << Describe(after);
}

TEST(ShardtxCliBackup, BackupAndRestoreCopyADatabaseThatOpensAndChecksClean) {
  const std::string dir = NeedleDb();
  const std::string copy = FreshDir("_copy"), restored = FreshDir("_restored");
  CliResult b = RunCli({"backup", dir, copy});
  ASSERT_EQ(b.code, 0) << Describe(b);
  EXPECT_TRUE(absl::StrContains(b.out, "backed up")) << b.out;
  // Again to the same place: it exists, nothing is touched.
  const auto before = Fingerprint(copy);
  CliResult again = RunCli({"backup", dir, copy});
  EXPECT_EQ(again.code, 2) << Describe(again);
  EXPECT_TRUE(absl::StrContains(again.err, "exists")) << again.err;
  EXPECT_EQ(Fingerprint(copy), before);

  const auto backup_files = Fingerprint(copy);
  CliResult r = RunCli({"restore", copy, restored});
  ASSERT_EQ(r.code, 0) << Describe(r);
  EXPECT_EQ(Fingerprint(copy), backup_files) << "restore changed the backup";
  EXPECT_EQ(RunCli({"restore", copy, restored}).code, 2) << "restored over an existing directory";
  EXPECT_EQ(RunCli({"check", restored}).code, 0);
  std::map<std::string, std::string> want, got;
  {
    auto db = OpenOrDie(SmallDb(dir, 0, false));
    want = Contents(db.get());
  }
  {
    auto db = OpenOrDie(SmallDb(restored, 0, false));
    got = Contents(db.get());
    EXPECT_TRUE(PutOne(db.get(), "after restore", "commits").ok());
  }
  EXPECT_EQ(got.size(), 20u);
  EXPECT_EQ(got, want);
  // A damaged backup is not restored: check's verdict, exit 1, nothing at the destination.
  const std::string damaged_at = FreshDir("_damaged");
  const std::string mdb = copy + "/shard-000/lmdb/data.mdb";
  const size_t at = ReadFile(mdb).find("hay of needle-11");
  ASSERT_NE(at, std::string::npos);
  FlipByte(mdb, at, 0x01);
  CliResult d = RunCli({"restore", copy, damaged_at});
  EXPECT_EQ(d.code, 1) << Describe(d);
  EXPECT_FALSE(fs::exists(damaged_at));
  // A backup of what is not a database: exit 2, nothing created.
  CliResult bad = RunCli({"backup", dir + "_missing", copy + "2"});
  EXPECT_EQ(bad.code, 2) << Describe(bad);
  EXPECT_FALSE(fs::exists(copy + "2"));
}

}  // namespace
}  // namespace shardtx::testing
