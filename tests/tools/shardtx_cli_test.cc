// The shardtx tool, run as a subprocess on real databases: help and exit codes, bad input,
// stat (also on a database this process has open), wal dump, wal verify and check on intact
// and damaged copies (a flipped byte mid-WAL, a torn WAL tail, a flipped byte in data.mdb).
#include <algorithm>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "engine/log_record.h"
#include "tests/tools/shardtx_cli_util.h"
#include "wal/writer.h"

namespace shardtx::testing {
namespace {

namespace fs = std::filesystem;

// A database of `n` single-key commits ("key-000" ...) over `shards` shards, all still in
// the WAL (no checkpoint), plus one key with non-printable bytes and one of 300 bytes.
std::string WalDb(uint32_t shards, int n) {
  const std::string dir = FreshDir();
  auto db = OpenOrDie(SmallDb(dir, shards, /*keep_wal=*/true));
  for (int i = 0; i < n; ++i) {
    EXPECT_TRUE(PutOne(db.get(), absl::StrFormat("key-%03d", i), "value").ok());
  }
  EXPECT_TRUE(PutOne(db.get(), std::string("\x01k\xff", 3), "v").ok());
  EXPECT_TRUE(PutOne(db.get(), std::string(300, 'L'), "v").ok());
  EXPECT_TRUE(db->Close().ok());
  return dir;
}

size_t CountLines(const std::string& s, absl::string_view prefix) {
  size_t n = 0;
  for (absl::string_view line : absl::StrSplit(s, '\n')) n += absl::StartsWith(line, prefix);
  return n;
}

TEST(ShardtxCli, HelpDocumentsEverySubcommandAndTheExitCodes) {
  CliResult r = RunCli({"--help"});
  EXPECT_EQ(r.code, 0) << Describe(r);
  for (const char* word :
       {"stat DIR", "wal dump", "wal verify", "check DIR", "prepared list", "prepared commit",
        "prepared rollback", "checkpoint DIR", "dump DIR", "load DIR FILE", "backup DIR DEST",
        "restore BACKUP DIR", "Exit status", "torn WAL tail", "# shardtx dump 1"}) {
    EXPECT_TRUE(absl::StrContains(r.out, word)) << word;
  }
  EXPECT_EQ(RunCli({}).code, 2);
}

// The files RunCli captures a run's output in are gone once it returned: every test run used to
// leave a pair per process in the temp directory (about 2,000 found there after a few days).
TEST(ShardtxCli, RunsLeaveNoCaptureFilesBehind) {
  EXPECT_EQ(RunCli({"--help"}).code, 0);
  for (const std::string& f : CliCaptureFiles()) {
    EXPECT_FALSE(std::filesystem::exists(f)) << f;
  }
}

TEST(ShardtxCli, BadInputIsExit2AndTouchesNothing) {
  const std::string empty = FreshDir("_empty");
  fs::create_directories(empty);
  const std::string other = FreshDir("_other");
  fs::create_directories(other);
  WriteFile(other + "/notes.txt", "not a database");
  const std::string newer = FreshDir("_newer");
  fs::create_directories(newer);
  WriteFile(newer + "/SHARDTX", "format 99\nshards 1\npartitioning hash\n");
  const std::string missing = FreshDir("_missing");

  const std::vector<std::vector<std::string>> commands = {
      {"stat"}, {"wal", "dump"},      {"wal", "verify"}, {"check"},
      {"dump"}, {"prepared", "list"}, {"checkpoint"}};
  for (const std::string& dir : {empty, other, newer, missing}) {
    const bool exists = fs::exists(dir);
    const auto before = exists ? Fingerprint(dir) : std::map<std::string, std::string>();
    std::vector<std::vector<std::string>> runs = commands;
    runs.push_back({"prepared", "commit", dir, "x"});
    runs.push_back({"load", dir, "/dev/null"});
    for (auto args : runs) {
      if (args.size() <= 2 && args.back() != dir) args.push_back(dir);
      CliResult r = RunCli(args);
      EXPECT_EQ(r.code, 2) << args[0] << " " << dir << "\n" << Describe(r);
      EXPECT_TRUE(absl::StrContains(r.err, "shardtx: ")) << Describe(r);
      EXPECT_TRUE(r.out.empty()) << Describe(r);
    }
    EXPECT_EQ(fs::exists(dir), exists);
    if (exists) {
      EXPECT_EQ(Fingerprint(dir), before) << dir;  // no LOCK file either
    }
  }
  EXPECT_TRUE(absl::StrContains(RunCli({"stat", empty}).err, "not a shardtx database"));
  EXPECT_TRUE(absl::StrContains(RunCli({"stat", newer}).err, "newer"));
  EXPECT_TRUE(absl::StrContains(RunCli({"stat", missing}).err, "no such directory"));

  const std::string db = WalDb(1, 1);
  fs::remove_all(db + "_restored");
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"stat", db, "--bogus"},
           {"stat", db, "--hex"},  // another command's flag
           {"wal", "dump", db, "--limit=abc"},
           {"wal", "dump", db, "--shard=5"},
           {"stat"},
           {"frobnicate", db},
           {"backup", db},
           {"restore", db + "_no_such_backup", db + "_restored"}}) {
    CliResult r = RunCli(args);
    EXPECT_EQ(r.code, 2) << args[0] << "\n" << Describe(r);
  }
  EXPECT_FALSE(fs::exists(db + "_restored"));
}

TEST(ShardtxCli, StatReportsShardsLsnsAndThatNobodyHasItOpen) {
  const std::string dir = WalDb(2, 10);
  CliResult r = RunCli({"stat", dir});
  ASSERT_EQ(r.code, 0) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.out, "2 shards, partitioning hash")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "not open by any process")) << r.out;
  EXPECT_EQ(CountLines(r.out, "shard "), 2u) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "applied LSN 0")) << r.out;  // never checkpointed
  EXPECT_TRUE(absl::StrContains(r.out, "prepared transactions: none")) << r.out;

  CliResult j = RunCli({"stat", dir, "--json"});
  ASSERT_EQ(j.code, 0) << Describe(j);
  EXPECT_TRUE(absl::StartsWith(j.out, "{\"path\":")) << j.out;
  EXPECT_TRUE(absl::StrContains(j.out, "\"open_by_pid\":null")) << j.out;
  EXPECT_TRUE(absl::StrContains(j.out, "\"shards\":2")) << j.out;
}

TEST(ShardtxCli, StatWorksOnADatabaseThisProcessHasOpenWithoutTakingItsLock) {
  const std::string dir = FreshDir();
  auto db = OpenOrDie(SmallDb(dir, 2, /*keep_wal=*/false));
  ASSERT_TRUE(PutOne(db.get(), "a", "1").ok());
  ASSERT_TRUE(PutOne(db.get(), "b", "2").ok());
  ASSERT_TRUE(db->Checkpoint().ok());
  auto txn = db->Begin();
  ASSERT_TRUE(txn->Put("a", "3").ok());
  ASSERT_TRUE(txn->Put("b", "4").ok());
  ASSERT_TRUE(txn->Put("c", "5").ok());
  ASSERT_TRUE(txn->Prepare("xa-17").ok());

  CliResult r = RunCli({"stat", dir});
  ASSERT_EQ(r.code, 0) << Describe(r);
  EXPECT_TRUE(absl::StrContains(
      r.out, absl::StrCat("open by pid ", ::getpid(), ": figures are a snapshot")))
      << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "prepared: \"xa-17\"")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "last checkpoint")) << r.out;
  CliResult j = RunCli({"stat", dir, "--json"});
  EXPECT_TRUE(absl::StrContains(j.out, absl::StrCat("\"open_by_pid\":\"", ::getpid(), "\"")))
      << j.out;
  EXPECT_TRUE(absl::StrContains(j.out, "\"name\":\"xa-17\"")) << j.out;

  // The tool took no lock: this process still commits, and the commands that need the lock
  // say who has it.
  EXPECT_TRUE(PutOne(db.get(), "d", "6").ok());
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"prepared", "list", dir}, {"checkpoint", dir}, {"dump", dir}, {"check", dir}}) {
    CliResult busy = RunCli(args);
    EXPECT_EQ(busy.code, 2) << args[0] << "\n" << Describe(busy);
    EXPECT_TRUE(absl::StrContains(busy.err, absl::StrCat("by pid ", ::getpid()))) << busy.err;
    EXPECT_TRUE(busy.out.empty()) << busy.out;
  }
  EXPECT_TRUE(db->RollbackPrepared("xa-17").ok());
  EXPECT_TRUE(db->Close().ok());
}

TEST(ShardtxCli, WalDumpPrintsEveryRecordWithPrintableKeysAndASummary) {
  const std::string dir = WalDb(2, 20);
  CliResult r = RunCli({"wal", "dump", dir});
  ASSERT_EQ(r.code, 0) << Describe(r);
  EXPECT_EQ(CountLines(r.out, "shard="), 22u) << r.out;  // one commit record per transaction
  EXPECT_TRUE(absl::StrContains(r.out, "type=commit")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "put \"key-007\" (5 B)")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "put \"\\x01k\\xff\" (1 B)")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, std::string(64, 'L') + "...(300 bytes)\"")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "# 22 records,")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "records/s")) << r.out;

  CliResult one = RunCli({"wal", "dump", dir, "--shard", "1", "--from=2", "--limit=1"});
  ASSERT_EQ(one.code, 0) << Describe(one);
  EXPECT_EQ(CountLines(one.out, "shard="), 1u) << one.out;
  EXPECT_TRUE(absl::StartsWith(one.out, "shard=1 lsn=2 type=commit")) << one.out;

  CliResult json = RunCli({"wal", "dump", dir, "--json", "--limit=3"});
  ASSERT_EQ(json.code, 0) << Describe(json);
  EXPECT_EQ(CountLines(json.out, "{\"shard\":"), 3u) << json.out;
  EXPECT_TRUE(absl::StrContains(json.out, "{\"summary\":{\"records\":3,")) << json.out;
  EXPECT_TRUE(absl::StrContains(json.out, "\"keys\":[{\"op\":\"put\",\"key\":\"key-")) << json.out;
}

// A replica's WAL carries kRaftEntry records (replication/shard_machine.h): the tool reads
// their position and the records inside, and a carried record that does not decode is damage.
TEST(ShardtxCli, RaftEntryRecordsAreDumpedAndVerified) {
  const std::string dir = WalDb(1, 3);
  std::string entry;
  engine::AppendEntryRecord(
      &entry, engine::kCommit,
      engine::EncodeCommit(1000, 77, {engine::Write{engine::WriteOp::kPut, "raft-key", "v"}}));
  const std::string good = engine::EncodeRaftEntry({/*index=*/41, /*term=*/3}, entry);
  {
    auto w = wal::WalWriter::OpenAfterScan(Env::Default(), dir + "/shard-000/wal", {});
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE((*w)->Append(engine::kRaftEntry, good, wal::Durability::kSync).ok());
    ASSERT_TRUE((*w)->Close().ok());
  }
  CliResult verify = RunCli({"wal", "verify", dir});
  EXPECT_EQ(verify.code, 0) << Describe(verify);
  CliResult dump = RunCli({"wal", "dump", dir});
  ASSERT_EQ(dump.code, 0) << Describe(dump);
  EXPECT_TRUE(absl::StrContains(dump.out, "type=raft_entry")) << dump.out;
  EXPECT_TRUE(absl::StrContains(dump.out, "raft_index=41 raft_term=3 records=1 carries=commit"))
      << dump.out;
  EXPECT_TRUE(absl::StrContains(dump.out, "put \"raft-key\"")) << dump.out;

  // A well-framed entry whose carried commit record is cut short.
  std::string bad_entry;
  engine::AppendEntryRecord(&bad_entry, engine::kCommit, "\x01\x02");
  {
    auto w = wal::WalWriter::OpenAfterScan(Env::Default(), dir + "/shard-000/wal", {});
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE((*w)->Append(engine::kRaftEntry, engine::EncodeRaftEntry({42, 3}, bad_entry),
                             wal::Durability::kSync)
                    .ok());
    ASSERT_TRUE((*w)->Close().ok());
  }
  verify = RunCli({"wal", "verify", dir});
  EXPECT_EQ(verify.code, 1) << Describe(verify);
  EXPECT_TRUE(absl::StrContains(verify.out + verify.err, "Raft entry at LSN")) << Describe(verify);
}

TEST(ShardtxCli, WalVerifyAndCheckAreCleanOnAnIntactDatabase) {
  const std::string dir = WalDb(3, 30);
  const auto before = Fingerprint(dir);
  CliResult v = RunCli({"wal", "verify", dir});
  EXPECT_EQ(v.code, 0) << Describe(v);
  EXPECT_EQ(CountLines(v.out, "shard "), 3u) << v.out;
  EXPECT_TRUE(absl::StrContains(v.out, "verdict: clean")) << v.out;
  EXPECT_FALSE(absl::StrContains(v.err, "\r")) << "no progress bar when stderr is no terminal";
  CliResult c = RunCli({"check", dir, "--json"});
  EXPECT_EQ(c.code, 0) << Describe(c);
  EXPECT_TRUE(absl::StrContains(c.out, "\"verdict\":\"clean\"")) << c.out;
  EXPECT_EQ(Fingerprint(dir), before);

  // After a checkpoint the store holds the entries and the WAL still covers it.
  ASSERT_EQ(RunCli({"checkpoint", dir}).code, 0);
  c = RunCli({"check", dir});
  EXPECT_EQ(c.code, 0) << Describe(c);
  EXPECT_TRUE(absl::StrContains(c.out, "verdict: clean")) << c.out;
  EXPECT_TRUE(absl::StrContains(c.out, "LMDB ")) << c.out;
}

TEST(ShardtxCli, AFlippedByteMidWalIsCorruptionVerifyExits1DumpRefusesNothingChanges) {
  const std::string dir = WalDb(1, 40);
  const std::string segment = LiveSegment(dir + "/shard-000/wal");
  ASSERT_FALSE(segment.empty());
  const std::vector<uint64_t> offsets = RecordOffsets(segment);
  ASSERT_GE(offsets.size(), 40u);
  FlipByte(segment, offsets[10] + wal::kRecordHeaderSize + 2);  // record LSN 11's payload
  const auto before = Fingerprint(dir);

  CliResult v = RunCli({"wal", "verify", dir});
  EXPECT_EQ(v.code, 1) << Describe(v);
  EXPECT_TRUE(absl::StrContains(v.out, "CORRUPT")) << v.out;
  EXPECT_TRUE(absl::StrContains(v.out, absl::StrCat("offset ", offsets[10]))) << v.out;
  EXPECT_TRUE(absl::StrContains(v.out, "LSN 11 to")) << v.out;
  EXPECT_TRUE(absl::StrContains(v.out, "shard 0: 10 records, LSN 1..10")) << v.out;
  CliResult vj = RunCli({"wal", "verify", dir, "--json"});
  EXPECT_EQ(vj.code, 1);
  EXPECT_TRUE(absl::StrContains(vj.out, "\"verdict\":\"corrupt\"")) << vj.out;

  CliResult c = RunCli({"check", dir});
  EXPECT_EQ(c.code, 1) << Describe(c);
  EXPECT_TRUE(absl::StrContains(c.out, "shard 0: WAL CORRUPT")) << c.out;
  CliResult w = RunCli({"wal", "dump", dir});
  EXPECT_EQ(w.code, 1) << Describe(w);
  EXPECT_EQ(CountLines(w.out, "shard="), 10u) << w.out;
  EXPECT_EQ(Fingerprint(dir), before) << "verify, check and wal dump change no byte";

  CliResult d = RunCli({"dump", dir});
  EXPECT_EQ(d.code, 2) << Describe(d);
  EXPECT_TRUE(d.out.empty()) << d.out;
  EXPECT_TRUE(absl::StrContains(d.err, "WAL corrupt")) << d.err;
}

TEST(ShardtxCli, ATornWalTailIsReportedButClean) {
  const std::string dir = WalDb(1, 12);
  const std::string segment = LiveSegment(dir + "/shard-000/wal");
  const std::vector<uint64_t> offsets = RecordOffsets(segment);
  ASSERT_EQ(offsets.size(), 14u);
  FlipByte(segment, offsets.back() + wal::kRecordHeaderSize + 1);  // the last record
  const auto before = Fingerprint(dir);

  CliResult v = RunCli({"wal", "verify", dir});
  EXPECT_EQ(v.code, 0) << Describe(v);
  EXPECT_TRUE(
      absl::StrContains(v.out, absl::StrCat("torn tail: ", segment, " offset ", offsets.back())))
      << v.out;
  EXPECT_TRUE(absl::StrContains(v.out, "verdict: torn tail (not damage)")) << v.out;
  CliResult c = RunCli({"check", dir});
  EXPECT_EQ(c.code, 0) << Describe(c);
  EXPECT_EQ(Fingerprint(dir), before);
  // (stat registers as a reader in LMDB's lock.mdb: it may run beside a host that has the
  // database open.)
  EXPECT_TRUE(absl::StrContains(RunCli({"stat", dir}).out, "torn tail"));
  // Open cuts the tail off: the dump holds the 13 records before it.
  CliResult d = RunCli({"dump", dir});
  EXPECT_EQ(d.code, 0) << Describe(d);
  EXPECT_TRUE(absl::StrContains(d.out, "# end 13 records")) << d.out;
}

TEST(ShardtxCli, AFlippedByteInDataMdbIsFoundByCheck) {
  const std::string dir = FreshDir();
  {
    auto db = OpenOrDie(SmallDb(dir, 1, /*keep_wal=*/false));
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(PutOne(db.get(), absl::StrFormat("needle-%02d", i), "hay").ok());
    }
    ASSERT_TRUE(db->Close().ok());  // checkpoints: the keys are in data.mdb
  }
  ASSERT_EQ(RunCli({"check", dir}).code, 0);
  // Flip the leaf flag of every page holding a key (the data table's root leaf): LMDB finds
  // a page of the wrong type.
  const std::string mdb = dir + "/shard-000/lmdb/data.mdb";
  const std::string bytes = ReadFile(mdb);
  std::set<size_t> pages;
  for (size_t at = bytes.find("needle-07"); at != std::string::npos;
       at = bytes.find("needle-07", at + 1)) {
    pages.insert(at - at % 4096);
  }
  ASSERT_FALSE(pages.empty());
  for (size_t page : pages) FlipByte(mdb, page + 10, 0x02);  // mp_flags: P_LEAF
  const auto before = Fingerprint(dir);

  CliResult c = RunCli({"check", dir});
  EXPECT_EQ(c.code, 1) << Describe(c);
  EXPECT_TRUE(absl::StrContains(c.out, "shard 0: store: ")) << c.out;
  EXPECT_TRUE(absl::StrContains(c.out, "verdict: DAMAGED")) << c.out;
  CliResult j = RunCli({"check", dir, "--json"});
  EXPECT_EQ(j.code, 1);
  EXPECT_TRUE(absl::StrContains(j.out, "\"verdict\":\"damaged\"")) << j.out;
  EXPECT_EQ(Fingerprint(dir), before);
}

TEST(ShardtxCli, CheckFindsAWalThatNoLongerCoversTheStore) {
  const std::string dir = FreshDir();
  {
    auto db = OpenOrDie(SmallDb(dir, 1, /*keep_wal=*/false));
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(PutOne(db.get(), absl::StrCat("k", i), "v").ok());
    ASSERT_TRUE(db->Close().ok());  // applied LSN 5
  }
  // A WAL emptied behind LMDB's back: every segment file gone.
  for (const auto& e : fs::directory_iterator(dir + "/shard-000/wal")) fs::remove(e.path());
  CliResult c = RunCli({"check", dir});
  EXPECT_EQ(c.code, 1) << Describe(c);
  EXPECT_TRUE(absl::StrContains(c.out, "below LMDB's applied LSN 5")) << c.out;
}

}  // namespace
}  // namespace shardtx::testing
