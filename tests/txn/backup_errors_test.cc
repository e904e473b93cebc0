// Database::Backup refusing bad input (touching nothing) and failing cleanly: every failed write,
// sync, open, rename or directory operation of a backup returns its error and leaves no
// destination and no partial directory, and the database goes on (its WAL pin released).
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/fault_injection_env.h"
#include "tests/support/test_db.h"
#include "tests/txn/backup_test_util.h"
#include "util/kill_point.h"

namespace shardtx {
namespace {

namespace fs = std::filesystem;
using testing::FreshDir;
using testing::GetOne;
using testing::OpenOrDie;
using testing::PartialsOf;
using testing::PutOne;

Options Opts(const std::string& dir, Env* env = nullptr) {
  Options o;
  o.path = dir;
  o.env = env;
  o.num_shards = 2;
  o.wal_segment_size = 64 << 10;
  o.max_txn_bytes = 16 << 10;
  o.checkpoint_interval = absl::ZeroDuration();  // no background file operations
  return o;
}

class BackupErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = OpenOrDie(Opts(dir_));
    ASSERT_TRUE(PutOne(db_.get(), "k", "v").ok());
  }
  void TearDown() override { KillPoints::DisarmAll(); }

  const std::string dir_ = FreshDir();
  const std::string dest_ = FreshDir("_copy");
  std::unique_ptr<Database> db_;
};

TEST_F(BackupErrors, ExistingDestinationIsAlreadyExistsAndUntouched) {
  fs::create_directories(dest_);
  std::ofstream(dest_ + "/mine") << "the host's";
  absl::Status s = db_->Backup(dest_);
  EXPECT_TRUE(absl::IsAlreadyExists(s)) << s;
  EXPECT_EQ(std::distance(fs::directory_iterator(dest_), fs::directory_iterator()), 1);
  std::ifstream in(dest_ + "/mine");
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "the host's");
  // A file in the way counts as existing too; so does the database itself.
  EXPECT_TRUE(absl::IsAlreadyExists(db_->Backup(dest_ + "/mine")));
  EXPECT_TRUE(absl::IsAlreadyExists(db_->Backup(dir_)));
  EXPECT_TRUE(PartialsOf(dest_).empty());
}

// An unfinished backup (its note, no manifest) is removed only when its writer is gone: one
// whose writer lives may still be writing its manifest.
TEST_F(BackupErrors, AnUnfinishedBackupIsReplacedOnlyWhenItsWriterIsGone) {
  fs::create_directories(dest_ + "/shard-000");
  std::ofstream(dest_ + "/BACKUP") << "backup of elsewhere by pid 1\n";  // init: alive
  absl::Status s = db_->Backup(dest_);
  EXPECT_TRUE(absl::IsAlreadyExists(s)) << s;
  EXPECT_TRUE(fs::exists(dest_ + "/shard-000"));
  // Its writer gone (a pid no process can have), it is debris: replaced by a whole backup.
  std::ofstream(dest_ + "/BACKUP") << "backup of elsewhere by pid 2147483646\n";
  ASSERT_TRUE(db_->Backup(dest_).ok());
  EXPECT_TRUE(fs::exists(dest_ + "/SHARDTX"));
  Options o = Opts(dest_);
  o.create_if_missing = false;
  EXPECT_TRUE(Database::Open(o).ok());
}

TEST_F(BackupErrors, BadDestinationsAreRefusedWithNothingWritten) {
  absl::Status s = db_->Backup(dest_ + "/no/such/parent");
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_FALSE(fs::exists(dest_));
  s = db_->Backup("");
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  s = db_->Backup(dir_ + "/shard-000/inside");
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_FALSE(fs::exists(dir_ + "/shard-000/inside"));
  // Trailing slashes name the same directory.
  ASSERT_TRUE(db_->Backup(dest_ + "//").ok());
  EXPECT_EQ(*GetOne(OpenOrDie(Opts(dest_)).get(), "k"), "v");
}

TEST_F(BackupErrors, ClosedDatabaseIsFailedPrecondition) {
  ASSERT_TRUE(db_->Close().ok());
  absl::Status s = db_->Backup(dest_);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_FALSE(fs::exists(dest_));
}

TEST_F(BackupErrors, UnwritableParentIsPermissionDenied) {
  std::string parent = FreshDir("_readonly");
  if (::geteuid() == 0) {
    parent = "/sys";  // root writes through any mode bits; sysfs refuses mkdir (EPERM)
  } else {
    fs::create_directories(parent);
    fs::permissions(parent, fs::perms::owner_read | fs::perms::owner_exec);
  }
  const std::string dest = parent + "/shardtx_backup_test";
  absl::Status s = db_->Backup(dest);
  EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
  EXPECT_FALSE(fs::exists(dest));
  EXPECT_TRUE(PartialsOf(dest).empty());
  if (parent != "/sys") fs::permissions(parent, fs::perms::owner_all);
}

TEST_F(BackupErrors, ASecondBackupWhileOneRunsIsFailedPrecondition) {
  absl::Status second;
  KillPoints::Arm("backup.after_store_copy", 0, [&] { second = db_->Backup(FreshDir("_second")); });
  ASSERT_TRUE(db_->Backup(dest_).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(second)) << second;
  EXPECT_FALSE(fs::exists(FreshDir("_second")));
  // Once it is done, the next one runs.
  ASSERT_TRUE(db_->Backup(FreshDir("_third")).ok());
}

// Every Env operation of a backup fails in turn, once: Backup returns that error, no destination
// or partial directory is left, the database commits on and can be backed up again (the pins
// are released). The first round that fails nothing succeeds, and its copy opens. (The LMDB
// copy does its own I/O, outside the Env: its failures are LMDB's and the file system's.)
TEST(BackupFaults, EveryFailedFileOperationFailsTheBackupCleanly) {
  testing::FaultInjectionEnv env;
  const std::string dir = FreshDir();
  auto db = OpenOrDie(Opts(dir, &env));
  // Several segments per shard to copy; no roll (and so no spare segment prepared in the
  // background) during the sweep.
  const std::string value(1000, 'x');
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(PutOne(db.get(), absl::StrCat("key", i), value).ok());
  int failures = 0, live_hits = 0;
  std::string dest;
  for (uint64_t n = 1;; ++n) {
    SCOPED_TRACE(absl::StrCat("operation ", n));
    ASSERT_TRUE(PutOne(db.get(), "round", absl::StrCat(n)).ok());
    dest = FreshDir(absl::StrCat("_copy", n));
    env.FailAfter(n, /*persistent=*/false);
    const uint64_t injected = env.faults_injected();
    absl::Status s = db->Backup(dest);
    const bool failed = env.faults_injected() > injected;
    env.ClearFaults();
    if (failed && s.ok()) {
      // The fault hit the log's own background work (a spare segment), not the backup.
      ASSERT_LT(++live_hits, 5);
      fs::remove_all(dest);
      --n;
      continue;
    }
    if (!failed) {
      ASSERT_TRUE(s.ok()) << s;
      break;
    }
    ++failures;
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find("injected"), std::string::npos) << s;
    EXPECT_FALSE(fs::exists(dest));
    EXPECT_TRUE(PartialsOf(dest).empty());
  }
  EXPECT_GT(failures, 20) << "too few operations swept: is the backup using the Env?";
  ASSERT_TRUE(PutOne(db.get(), "after", "yes").ok());
  db.reset();
  auto copy = OpenOrDie(Opts(dest, &env));
  EXPECT_EQ(*GetOne(copy.get(), "key199"), value);
  EXPECT_EQ(*GetOne(copy.get(), "round"), absl::StrCat(failures + 1));
  EXPECT_TRUE(absl::IsNotFound(GetOne(copy.get(), "after").status()));
}

}  // namespace
}  // namespace shardtx
