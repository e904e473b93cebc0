// Bad input at Open: clear errors, never a crash.
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "tests/engine/test_db.h"

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

TEST(BadInput, MissingPathWithoutCreateIsNotFound) {
  Options o = Opts(FreshDir());
  o.create_if_missing = false;
  auto db = Database::Open(o);
  EXPECT_TRUE(absl::IsNotFound(db.status())) << db.status();
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
    auto db = OpenOrDie(Opts(dir));
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
  auto db = Database::Open(Opts(dir));
  ASSERT_TRUE(absl::IsDataLoss(db.status())) << db.status();
  EXPECT_NE(db.status().message().find(".wal"), std::string::npos) << db.status();
  EXPECT_NE(db.status().message().find("offset"), std::string::npos) << db.status();
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
