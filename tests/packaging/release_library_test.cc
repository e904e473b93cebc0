// The library a host links (target shardtx, what `cmake --install` ships) has no test switches:
// SHARDTX_DELIBERATE_BUG in the environment changes nothing, and no kill point is compiled in.
// Linked against shardtx, not shardtx_testing; check_release_library.cmake checks the archive.
#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shardtx/database.h"
#include "shardtx/env.h"
#include "util/kill_point.h"

namespace shardtx {
namespace {

// Holds every File::Sync while closed, so a test can see whether a commit returns before its
// fsync.
class SyncGateEnv : public Env {
 public:
  void Close() {
    std::lock_guard<std::mutex> l(mu_);
    closed_ = true;
  }
  void Open() {
    {
      std::lock_guard<std::mutex> l(mu_);
      closed_ = false;
    }
    cv_.notify_all();
  }
  int held() {
    std::lock_guard<std::mutex> l(mu_);
    return held_;
  }

  absl::StatusOr<std::unique_ptr<File>> OpenFile(const std::string& path, OpenMode mode) override {
    auto f = Env::Default()->OpenFile(path, mode);
    if (!f.ok()) return f.status();
    return std::unique_ptr<File>(new GatedFile(this, std::move(*f)));
  }
  absl::Status RemoveFile(const std::string& p) override { return Env::Default()->RemoveFile(p); }
  absl::Status RenameFile(const std::string& from, const std::string& to) override {
    return Env::Default()->RenameFile(from, to);
  }
  absl::Status CreateDir(const std::string& p) override { return Env::Default()->CreateDir(p); }
  absl::Status SyncDir(const std::string& p) override { return Env::Default()->SyncDir(p); }
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& p) override {
    return Env::Default()->ListDir(p);
  }
  absl::Status FileExists(const std::string& p) override { return Env::Default()->FileExists(p); }
  absl::StatusOr<std::unique_ptr<FileLock>> LockFile(const std::string& p) override {
    return Env::Default()->LockFile(p);
  }

 private:
  class GatedFile : public File {
   public:
    GatedFile(SyncGateEnv* env, std::unique_ptr<File> base) : env_(env), base_(std::move(base)) {}
    absl::Status Write(uint64_t offset, absl::string_view data) override {
      return base_->Write(offset, data);
    }
    absl::StatusOr<size_t> Read(uint64_t offset, size_t n, char* scratch) override {
      return base_->Read(offset, n, scratch);
    }
    absl::Status Sync() override {
      env_->WaitWhileClosed();
      return base_->Sync();
    }
    absl::Status Allocate(uint64_t offset, uint64_t len) override {
      return base_->Allocate(offset, len);
    }
    absl::StatusOr<uint64_t> Size() override { return base_->Size(); }

   private:
    SyncGateEnv* const env_;
    const std::unique_ptr<File> base_;
  };

  void WaitWhileClosed() {
    std::unique_lock<std::mutex> l(mu_);
    ++held_;
    cv_.wait(l, [this] { return !closed_; });
    --held_;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  int held_ = 0;
};

std::string TempDir(const std::string& name) {
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("shardtx_release_" + name + "_" + std::to_string(getpid())))
                              .string();
  std::filesystem::remove_all(dir);
  return dir;
}

TEST(ReleaseLibrary, HasNoKillPoints) { EXPECT_THAT(KillPoints::All(), ::testing::IsEmpty()); }

// Each test runs in a process of its own under ctest; the variable is read at most once.
TEST(ReleaseLibrary, IgnoresDeliberateBugAckBeforeFsync) {
  ASSERT_EQ(setenv("SHARDTX_DELIBERATE_BUG", "ack_before_fsync", 1), 0);
  EXPECT_FALSE(KillPoints::DeliberateBug("ack_before_fsync"));
}

TEST(ReleaseLibrary, IgnoresDeliberateBugAsyncCompleteBeforeFsync) {
  ASSERT_EQ(setenv("SHARDTX_DELIBERATE_BUG", "async_complete_before_fsync", 1), 0);
  EXPECT_FALSE(KillPoints::DeliberateBug("async_complete_before_fsync"));
}

TEST(ReleaseLibrary, IgnoresDeliberateBugCommitWithPrepareMissing) {
  ASSERT_EQ(setenv("SHARDTX_DELIBERATE_BUG", "commit_with_prepare_missing", 1), 0);
  EXPECT_FALSE(KillPoints::DeliberateBug("commit_with_prepare_missing"));
}

// The behaviour behind the switch: with SHARDTX_DELIBERATE_BUG=ack_before_fsync set, a durable
// commit still returns only after the WAL's fsync.
TEST(ReleaseLibrary, SyncCommitWaitsForFsyncWhateverTheEnvironmentSays) {
  ASSERT_EQ(setenv("SHARDTX_DELIBERATE_BUG", "ack_before_fsync", 1), 0);
  const std::string dir = TempDir("ack");
  SyncGateEnv env;
  Options options;
  options.path = dir;
  options.env = &env;
  options.num_shards = 1;
  options.wal_segment_size = 1 << 20;
  options.max_txn_bytes = 64 << 10;
  auto db = Database::Open(options);
  ASSERT_TRUE(db.ok()) << db.status();

  env.Close();
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  absl::Status commit;
  std::thread committer([&] {
    std::unique_ptr<Transaction> txn = (*db)->Begin();
    absl::Status s = txn->Put("key", "value");
    if (s.ok()) s = txn->Commit();
    std::lock_guard<std::mutex> l(mu);
    commit = s;
    done = true;
    cv.notify_all();
  });
  // Either the commit returns (the bug) or its fsync reaches the gate; give it time to return
  // early if it is going to.
  {
    std::unique_lock<std::mutex> l(mu);
    for (int i = 0; i < 1000 && !done && env.held() == 0; ++i) {
      cv.wait_for(l, std::chrono::milliseconds(10));
    }
    cv.wait_for(l, std::chrono::milliseconds(300), [&] { return done; });
    EXPECT_FALSE(done) << "Commit returned while every fsync was held";
  }
  env.Open();
  committer.join();
  EXPECT_TRUE(commit.ok()) << commit;
  EXPECT_TRUE((*db)->Close().ok());
  db->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace shardtx
