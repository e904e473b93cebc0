// Bad input at Open: clear errors, never a crash.
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "engine/log_record.h"
#include "gtest/gtest.h"
#include "tests/support/test_db.h"
#include "wal/writer.h"

namespace shardtx {
namespace {

using testing::FreshDir;
using testing::OpenOrDie;
using testing::PutOne;

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
}

void Scribble(const std::string& path, uint64_t offset, const std::string& data) {
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

Options Opts(const std::string& dir) {
  Options o;
  o.path = dir;
  o.checkpoint_interval = absl::ZeroDuration();
  o.checkpoint_on_close = false;
  o.wal_segment_size = 1 << 20;
  o.max_txn_bytes = 64 << 10;
  return o;
}
// For tests that damage a shard's own log files (shard-NNN/wal).
Options PerShardOpts(const std::string& dir) {
  Options o = Opts(dir);
  o.log_layout = Options::LogLayout::kPerShard;
  return o;
}

TEST(BadInput, MissingPathWithoutCreateIsNotFound) {
  Options o = Opts(FreshDir());
  o.create_if_missing = false;
  auto db = Database::Open(o);
  EXPECT_TRUE(absl::IsNotFound(db.status())) << db.status();
}

// An existing empty directory is no database either: without create_if_missing, Open
// refuses it and writes nothing there (not even a LOCK).
TEST(BadInput, ExistingEmptyDirectoryWithoutCreateIsNotFoundAndUntouched) {
  const std::string dir = FreshDir();
  std::filesystem::create_directories(dir);
  Options o = Opts(dir);
  o.create_if_missing = false;
  auto db = Database::Open(o);
  EXPECT_TRUE(absl::IsNotFound(db.status())) << db.status();
  EXPECT_TRUE(std::filesystem::is_empty(dir));
}

TEST(BadInput, EmptyPathIsInvalid) {
  auto db = Database::Open(Options{});
  EXPECT_TRUE(absl::IsInvalidArgument(db.status())) << db.status();
}

TEST(BadInput, PathThatIsAFileIsRefused) {
  const std::string dir = FreshDir();
  WriteFile(dir, "not a directory");
  auto db = Database::Open(Opts(dir));
  EXPECT_FALSE(db.ok());
  std::filesystem::remove(dir);
}

TEST(BadInput, UnwritablePathIsRefusedClearly) {
  auto db = Database::Open(Opts("/sys/shardtx-cannot-exist"));
  ASSERT_FALSE(db.ok());
  EXPECT_NE(db.status().message().find("/sys/shardtx-cannot-exist"), std::string::npos)
      << db.status();
}

TEST(BadInput, DirectoryHoldingSomethingElseIsRefused) {
  const std::string dir = FreshDir();
  std::filesystem::create_directories(dir);
  WriteFile(dir + "/precious.txt", "someone's data");
  auto db = Database::Open(Opts(dir));
  EXPECT_TRUE(absl::IsFailedPrecondition(db.status())) << db.status();
  EXPECT_NE(db.status().message().find("precious.txt"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(dir + "/precious.txt"));
}

TEST(BadInput, NewerFormatVersionIsRefused) {
  const std::string dir = FreshDir();
  { auto db = OpenOrDie(Opts(dir)); }
  WriteFile(dir + "/SHARDTX", "format 99\nshards 1\n");
  auto db = Database::Open(Opts(dir));
  EXPECT_TRUE(absl::IsFailedPrecondition(db.status())) << db.status();
  EXPECT_NE(db.status().message().find("99"), std::string::npos);
}

TEST(BadInput, DifferentShardCountIsRefused) {
  const std::string dir = FreshDir();
  { auto db = OpenOrDie(Opts(dir)); }
  Options o = Opts(dir);
  o.num_shards = 4;
  auto db = Database::Open(o);
  EXPECT_TRUE(absl::IsInvalidArgument(db.status())) << db.status();
}

TEST(BadInput, CheckpointPaceOutOfRangeIsRefused) {
  for (double pace : {-1.0, 101.0, std::nan("")}) {
    Options o = Opts(FreshDir());
    o.checkpoint_pace = pace;
    auto db = Database::Open(o);
    EXPECT_TRUE(absl::IsInvalidArgument(db.status())) << pace << ": " << db.status();
    EXPECT_NE(db.status().message().find("checkpoint_pace"), std::string::npos);
  }
  Options o = Opts(FreshDir());
  o.checkpoint_pace = 100;
  EXPECT_TRUE(Database::Open(o).ok());
}

TEST(BadInput, SecondOpenInTheSameProcessIsRefusedWithPid) {
  const std::string dir = FreshDir();
  auto first = OpenOrDie(Opts(dir));
  auto second = Database::Open(Opts(dir));
  ASSERT_TRUE(absl::IsFailedPrecondition(second.status())) << second.status();
  EXPECT_NE(second.status().message().find("already open by pid " + std::to_string(getpid())),
            std::string::npos)
      << second.status();
  first.reset();
  EXPECT_TRUE(Database::Open(Opts(dir)).ok());  // released on close
}

TEST(BadInput, SecondProcessIsRefusedWithThePidOfTheFirst) {
  const std::string dir = FreshDir();
  auto first = OpenOrDie(Opts(dir));
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto second = Database::Open(Opts(dir));
    std::string msg = std::string(second.status().message());
    (void)!write(fds[1], msg.data(), msg.size());
    _exit(second.ok() ? 1 : 0);
  }
  close(fds[1]);
  char buf[512] = {0};
  ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_NE(std::string(buf, n > 0 ? n : 0).find("already open by pid " + std::to_string(getpid())),
            std::string::npos)
      << buf;
}

// LMDB stores keys of 1 to 511 bytes. A key outside that range must be refused when written,
// not accepted into the log and then fail every checkpoint from then on.
TEST(BadInput, KeysLmdbCannotStoreAreRefusedAtPutNotAtCheckpoint) {
  Options o;
  o.path = FreshDir();
  o.checkpoint_interval = absl::ZeroDuration();
  const std::string longest(kMaxKeySize, 'b');
  {
    auto db = OpenOrDie(o);
    ASSERT_NE(db, nullptr);
    auto t = db->Begin();
    for (const std::string& bad : {std::string(), std::string(kMaxKeySize + 1, 'b')}) {
      absl::Status s = t->Put(bad, "v");
      EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
      EXPECT_NE(s.message().find("keys are 1 to 511 bytes"), std::string::npos) << s;
      EXPECT_TRUE(absl::IsInvalidArgument(t->Delete(bad)));
      EXPECT_TRUE(absl::IsInvalidArgument(t->Get(bad).status()));
    }
    ASSERT_TRUE(t->Put("a", "1").ok());
    ASSERT_TRUE(t->Put(longest, "2").ok());
    ASSERT_TRUE(t->Put("c", "3").ok());
    ASSERT_TRUE(t->Commit().ok());
    ASSERT_TRUE(db->Checkpoint().ok());
  }
  auto db = OpenOrDie(o);  // reopen: everything was checkpointed into LMDB
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->GetStats().recovery_records, 0u);
  auto t = db->Begin();
  EXPECT_EQ(*t->Get(longest), "2");
  // A Seek target longer than any key still positions correctly in LMDB, both ways.
  const std::string target(kMaxKeySize + 89, 'b');
  auto it = t->NewIterator();
  it->Seek(target);
  ASSERT_TRUE(it->Valid()) << it->status();
  EXPECT_EQ(it->key(), "c");
  IteratorOptions rev;
  rev.reverse = true;
  auto rit = t->NewIterator(rev);
  rit->Seek(target);
  ASSERT_TRUE(rit->Valid()) << rit->status();
  EXPECT_EQ(rit->key(), longest);
  // And as a lower bound of a serializable range that commit-time validation re-reads.
  TxnOptions so;
  so.isolation = Isolation::kSerializable;
  auto st = db->Begin(so);
  IteratorOptions bounded;
  bounded.lower_bound = target;
  auto bit = st->NewIterator(bounded);
  bit->SeekToFirst();
  ASSERT_TRUE(bit->Valid()) << bit->status();
  EXPECT_EQ(bit->key(), "c");
  ASSERT_TRUE(st->Put("z", "x").ok());
  ASSERT_TRUE(PutOne(db.get(), longest, "changed").ok());  // below the range: no conflict
  ASSERT_TRUE(db->Checkpoint().ok());
  EXPECT_TRUE(st->Commit().ok());
}

TEST(BadInput, GarbageInTheLmdbFileGivesAnErrorNotACrash) {
  const std::string dir = FreshDir();
  {
    auto db = OpenOrDie(Opts(dir));
    ASSERT_TRUE(PutOne(db.get(), "k", "v").ok());
    ASSERT_TRUE(db->Checkpoint().ok());
  }
  const std::string data = dir + "/shard-000/lmdb/data.mdb";
  ASSERT_TRUE(std::filesystem::exists(data));
  // Both meta pages (the first two pages) destroyed.
  Scribble(data, 0, std::string(8192, '\x5a'));
  auto db = Database::Open(Opts(dir));
  ASSERT_FALSE(db.ok());
  EXPECT_TRUE(absl::IsDataLoss(db.status())) << db.status();
  EXPECT_NE(db.status().message().find("lmdb"), std::string::npos) << db.status();
}

TEST(BadInput, GarbageInTheMiddleOfTheWalIsDataLossNamingFileAndOffset) {
  const std::string dir = FreshDir();
  {
    auto db = OpenOrDie(PerShardOpts(dir));
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(PutOne(db.get(), "k" + std::to_string(i), "v").ok());
  }
  std::string seg;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/shard-000/wal")) {
    if (e.path().extension() == ".wal" && (seg.empty() || e.path().string() < seg)) {
      seg = e.path().string();  // the oldest segment holds the records
    }
  }
  ASSERT_FALSE(seg.empty());
  Scribble(seg, 64 + 40, "garbage!");  // inside the first record; 49 synced ones follow
  auto db = Database::Open(PerShardOpts(dir));
  ASSERT_TRUE(absl::IsDataLoss(db.status())) << db.status();
  EXPECT_NE(db.status().message().find(".wal"), std::string::npos) << db.status();
  EXPECT_NE(db.status().message().find("offset"), std::string::npos) << db.status();
}

// A record whose checksum holds but whose payload does not decode (a writer's bug, a crafted
// file): Open fails with kDataLoss naming the record, for every record type, and for a type
// nobody writes. Nothing of it is applied.
TEST(BadInput, WellFramedButMalformedRecordsAreDataLossAtOpen) {
  const struct {
    uint8_t type;
    const char* says;
  } cases[] = {{engine::kCommit, "malformed commit record"},
               {engine::kPrepare, "malformed prepare record"},
               {engine::kCommitPrepared, "malformed commit-prepared record"},
               {engine::kAbortPrepared, "malformed abort-prepared record"},
               {engine::kDecision, "malformed decision record"},
               {engine::kEnd, "malformed end record"},
               {77, "unknown WAL record type 77"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.says);
    const std::string dir = FreshDir();
    {
      auto db = OpenOrDie(PerShardOpts(dir));
      ASSERT_NE(db, nullptr);
      ASSERT_TRUE(PutOne(db.get(), "k", "v").ok());
    }
    {
      wal::WalOptions wo;
      wo.segment_size = PerShardOpts(dir).wal_segment_size;
      wo.max_record_size = 1024;
      auto w = wal::WalWriter::OpenAfterScan(Env::Default(), dir + "/shard-000/wal", wo);
      ASSERT_TRUE(w.ok()) << w.status();
      auto lsn = (*w)->Append(c.type, std::string("\x01\x02\x03", 3), wal::Durability::kSync);
      ASSERT_TRUE(lsn.ok()) << lsn.status();
      ASSERT_TRUE((*w)->WaitDurable(*lsn).ok());
      ASSERT_TRUE((*w)->Close().ok());
    }
    auto db = Database::Open(PerShardOpts(dir));
    ASSERT_TRUE(absl::IsDataLoss(db.status())) << db.status();
    EXPECT_NE(db.status().message().find(c.says), std::string::npos) << db.status();
    EXPECT_NE(db.status().message().find("LSN"), std::string::npos) << db.status();
  }
}

TEST(BadInput, CorruptManifestIsDataLoss) {
  const std::string dir = FreshDir();
  { auto db = OpenOrDie(Opts(dir)); }
  WriteFile(dir + "/SHARDTX", std::string("\x01\x02\xff garbage", 11));
  auto db = Database::Open(Opts(dir));
  EXPECT_TRUE(absl::IsDataLoss(db.status())) << db.status();
}

}  // namespace
}  // namespace shardtx
