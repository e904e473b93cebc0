#include "tests/support/fault_injection_env.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace shardtx::testing {
namespace {

namespace fs = std::filesystem;
using Tear = FaultInjectionEnv::Tear;

// Reads a file behind the env's back (what a rebooted machine would see).
std::string Contents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool Exists(const std::string& path) { return fs::exists(path); }

class FaultInjectionEnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = absl::StrCat(::testing::TempDir(), "/fienv_", info->name(), "_", ::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);  // made outside the env: durable from its point of view
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  // Creates `name` through the env and makes its existence durable.
  std::unique_ptr<File> CreateDurable(const std::string& name) {
    auto f = env_.OpenFile(Path(name), Env::OpenMode::kCreate);
    EXPECT_TRUE(f.ok()) << f.status();
    EXPECT_TRUE(env_.SyncDir(dir_).ok());
    return std::move(*f);
  }

  std::string dir_;
  FaultInjectionEnv env_{Env::Default(), FaultInjectionEnv::Options{.sync_base = false}};
};

TEST_F(FaultInjectionEnvTest, UnsyncedWriteIsDropped) {
  auto f = CreateDurable("a");
  ASSERT_TRUE(f->Write(0, "hello").ok());
  EXPECT_EQ(Contents(Path("a")), "hello");
  EXPECT_EQ(env_.unsynced_bytes(), 5u);
  ASSERT_TRUE(env_.SimulateCrash().ok());
  EXPECT_TRUE(Exists(Path("a")));
  EXPECT_EQ(Contents(Path("a")), "");
}

TEST_F(FaultInjectionEnvTest, SyncedWriteSurvivesAndLaterOverwriteIsReverted) {
  auto f = CreateDurable("a");
  ASSERT_TRUE(f->Write(0, "0123456789").ok());
  ASSERT_TRUE(f->Sync().ok());
  EXPECT_EQ(env_.unsynced_bytes(), 0u);
  ASSERT_TRUE(f->Write(3, "abc").ok());    // overwrites synced bytes
  ASSERT_TRUE(f->Write(10, "tail").ok());  // extends the file
  ASSERT_TRUE(f->Allocate(0, 100).ok());   // grows it further
  EXPECT_EQ(Contents(Path("a")).size(), 100u);
  ASSERT_TRUE(env_.SimulateCrash().ok());
  EXPECT_EQ(Contents(Path("a")), "0123456789");
}

TEST_F(FaultInjectionEnvTest, FileCreatedInUnsyncedDirectoryIsDropped) {
  {
    auto f = env_.OpenFile(Path("new"), Env::OpenMode::kCreate);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Write(0, "data").ok());
    ASSERT_TRUE((*f)->Sync().ok());  // the data is durable, the name is not
  }
  auto synced = CreateDurable("kept");
  ASSERT_TRUE(env_.SimulateCrash().ok());
  // SyncDir after "new" was created made it durable too: create a third, unsynced one.
  env_.Reset();
  {
    auto f = env_.OpenFile(Path("lost"), Env::OpenMode::kCreateExclusive);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Write(0, "data").ok());
    ASSERT_TRUE((*f)->Sync().ok());
  }
  ASSERT_TRUE(env_.SimulateCrash().ok());
  EXPECT_TRUE(Exists(Path("new")));
  EXPECT_EQ(Contents(Path("new")), "data");
  EXPECT_TRUE(Exists(Path("kept")));
  EXPECT_FALSE(Exists(Path("lost")));
}

TEST_F(FaultInjectionEnvTest, DirectoryCreatedWithoutParentSyncVanishes) {
  const std::string sub = Path("sub");
  ASSERT_TRUE(env_.CreateDir(sub).ok());
  {
    auto f = env_.OpenFile(sub + "/x", Env::OpenMode::kCreate);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Write(0, "x").ok());
    ASSERT_TRUE((*f)->Sync().ok());
  }
  ASSERT_TRUE(env_.SyncDir(sub).ok());  // the file's name is durable, the directory's is not
  ASSERT_TRUE(env_.SimulateCrash().ok());
  EXPECT_FALSE(Exists(sub));

  env_.Reset();
  ASSERT_TRUE(env_.CreateDir(sub).ok());
  ASSERT_TRUE(env_.SyncDir(dir_).ok());
  ASSERT_TRUE(env_.SimulateCrash().ok());
  EXPECT_TRUE(Exists(sub));
}

TEST_F(FaultInjectionEnvTest, RenameAndRemoveWithoutSyncDirAreUndone) {
  {
    auto a = CreateDurable("a");
    ASSERT_TRUE(a->Write(0, "aaaa").ok());
    ASSERT_TRUE(a->Sync().ok());
    auto b = CreateDurable("b");
    ASSERT_TRUE(b->Write(0, "bbbb").ok());
    ASSERT_TRUE(b->Sync().ok());
    ASSERT_TRUE(b->Write(4, "unsynced").ok());
    auto c = CreateDurable("c");
    ASSERT_TRUE(c->Write(0, "cccc").ok());
    ASSERT_TRUE(c->Sync().ok());
  }
  ASSERT_TRUE(env_.RenameFile(Path("a"), Path("a2")).ok());
  ASSERT_TRUE(env_.RemoveFile(Path("b")).ok());
  ASSERT_TRUE(env_.RenameFile(Path("a2"), Path("c")).ok());  // replaces c
  EXPECT_FALSE(Exists(Path("a")));
  EXPECT_FALSE(Exists(Path("b")));
  EXPECT_EQ(Contents(Path("c")), "aaaa");
  ASSERT_TRUE(env_.SimulateCrash().ok());
  EXPECT_EQ(Contents(Path("a")), "aaaa");
  EXPECT_EQ(Contents(Path("b")), "bbbb");  // its durable content, not the unsynced tail
  EXPECT_EQ(Contents(Path("c")), "cccc");
  EXPECT_FALSE(Exists(Path("a2")));

  env_.Reset();
  ASSERT_TRUE(env_.RenameFile(Path("a"), Path("a3")).ok());
  ASSERT_TRUE(env_.RemoveFile(Path("b")).ok());
  ASSERT_TRUE(env_.SyncDir(dir_).ok());
  ASSERT_TRUE(env_.SimulateCrash().ok());
  EXPECT_FALSE(Exists(Path("a")));
  EXPECT_EQ(Contents(Path("a3")), "aaaa");
  EXPECT_FALSE(Exists(Path("b")));
}

TEST_F(FaultInjectionEnvTest, UnsyncedWritesFollowARenamedFile) {
  auto f = CreateDurable("seg");
  ASSERT_TRUE(f->Write(0, "durable").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(f->Write(7, "+unsynced").ok());
  ASSERT_TRUE(env_.RenameFile(Path("seg"), Path("seg.free")).ok());
  ASSERT_TRUE(env_.SyncDir(dir_).ok());
  ASSERT_TRUE(env_.SimulateCrash().ok());
  EXPECT_FALSE(Exists(Path("seg")));
  EXPECT_EQ(Contents(Path("seg.free")), "durable");
}

TEST_F(FaultInjectionEnvTest, EverythingFailsAfterACrashUntilReset) {
  auto f = CreateDurable("a");
  ASSERT_TRUE(env_.SimulateCrash().ok());
  EXPECT_TRUE(env_.crashed());
  const std::vector<absl::Status> statuses = {
      f->Write(0, "x"),
      f->Sync(),
      f->Allocate(0, 10),
      f->Size().status(),
      env_.OpenFile(Path("a"), Env::OpenMode::kRead).status(),
      env_.RenameFile(Path("a"), Path("b")),
      env_.RemoveFile(Path("a")),
      env_.CreateDir(Path("d")),
      env_.SyncDir(dir_),
      env_.ListDir(dir_).status(),
      env_.FileExists(Path("a")),
  };
  for (const absl::Status& s : statuses) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
    EXPECT_TRUE(absl::StartsWith(s.message(), "simulated crash")) << s;
  }
  env_.Reset();
  EXPECT_FALSE(env_.crashed());
  EXPECT_TRUE(f->Write(0, "x").ok());
  EXPECT_TRUE(env_.FileExists(Path("a")).ok());
}

TEST_F(FaultInjectionEnvTest, FailAfterOnce) {
  auto f = CreateDurable("a");
  const uint64_t before = env_.ops();
  env_.FailAfter(3, /*persistent=*/false);
  EXPECT_TRUE(f->Write(0, "1").ok());
  EXPECT_TRUE(f->Sync().ok());
  absl::Status s = f->Write(1, "2");
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(absl::StrContains(s.message(), "injected I/O error")) << s;
  EXPECT_TRUE(f->Write(1, "3").ok());
  EXPECT_TRUE(env_.SyncDir(dir_).ok());
  EXPECT_EQ(env_.faults_injected(), 1u);
  EXPECT_EQ(env_.ops(), before + 5);
  EXPECT_EQ(Contents(Path("a")), "13");  // the failed write did not reach the file
}

TEST_F(FaultInjectionEnvTest, FailAfterPersistent) {
  auto f = CreateDurable("a");
  env_.FailAfter(2, /*persistent=*/true);
  EXPECT_TRUE(env_.CreateDir(Path("d")).ok());
  EXPECT_FALSE(f->Write(0, "x").ok());
  EXPECT_FALSE(f->Sync().ok());
  EXPECT_FALSE(env_.OpenFile(Path("a"), Env::OpenMode::kRead).ok());
  EXPECT_FALSE(env_.RenameFile(Path("a"), Path("b")).ok());
  EXPECT_FALSE(env_.RemoveFile(Path("a")).ok());
  EXPECT_FALSE(env_.SyncDir(dir_).ok());
  EXPECT_FALSE(f->Allocate(0, 4096).ok());
  // Reads are not file operations in this sense and keep working.
  EXPECT_TRUE(env_.ListDir(dir_).ok());
  EXPECT_EQ(env_.faults_injected(), 7u);
  env_.ClearFaults();
  EXPECT_TRUE(f->Write(0, "x").ok());
}

TEST_F(FaultInjectionEnvTest, FailedSyncLosesTheUnsyncedWrites) {
  auto f = CreateDurable("a");
  ASSERT_TRUE(f->Write(0, "durable").ok());
  ASSERT_TRUE(f->Sync().ok());
  env_.FailSyncAfter(1, /*persistent=*/false);
  ASSERT_TRUE(f->Write(7, "-lost").ok());  // writes are not counted by a sync fault
  absl::Status s = f->Sync();
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(Contents(Path("a")), "durable");  // dropped at once, not only in a crash
  ASSERT_TRUE(f->Write(7, "+later").ok());
  EXPECT_TRUE(f->Sync().ok());  // the next sync succeeds, covering only the later write
  ASSERT_TRUE(f->Write(13, "+unsynced").ok());
  ASSERT_TRUE(env_.SimulateCrash().ok());
  EXPECT_EQ(Contents(Path("a")), "durable+later");
}

TEST_F(FaultInjectionEnvTest, DiskFullAndAllocateUnsupported) {
  auto f = CreateDurable("a");
  env_.DiskFullAfter(2, /*persistent=*/true);
  EXPECT_TRUE(f->Write(0, "x").ok());
  EXPECT_TRUE(f->Sync().ok());  // not counted
  absl::Status s = f->Allocate(0, 1 << 16);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "ENOSPC")) << s;
  EXPECT_EQ(f->Write(1, "y").code(), absl::StatusCode::kResourceExhausted);
  env_.ClearFaults();

  env_.DisableAllocate();
  EXPECT_EQ(f->Allocate(0, 1 << 16).code(), absl::StatusCode::kUnimplemented);
  env_.DisableAllocate(false);
  EXPECT_TRUE(f->Allocate(0, 1 << 16).ok());
  EXPECT_EQ(*f->Size(), 1u << 16);
}

TEST_F(FaultInjectionEnvTest, CrashAfterCrashesInsteadOfTheNthOperation) {
  auto f = CreateDurable("a");
  ASSERT_TRUE(f->Write(0, "one").ok());
  env_.CrashAfter(3);
  EXPECT_TRUE(f->Sync().ok());
  EXPECT_TRUE(f->Write(3, "two").ok());
  absl::Status s = f->Write(6, "three");
  EXPECT_TRUE(absl::StartsWith(s.message(), "simulated crash")) << s;
  EXPECT_TRUE(env_.crashed());
  EXPECT_TRUE(env_.crash_status().ok());
  EXPECT_EQ(Contents(Path("a")), "one");
}

TEST_F(FaultInjectionEnvTest, TearModes) {
  // A durable 4096-byte file; then two unsynced writes: [4096, 5096) 'c' and [5096, 7096) 'b'.
  auto setup = [&](std::unique_ptr<File>* f) {
    env_.Reset();
    fs::remove(Path("t"));
    *f = CreateDurable("t");
    ASSERT_TRUE((*f)->Write(0, std::string(4096, 'a')).ok());
    ASSERT_TRUE((*f)->Sync().ok());
    ASSERT_TRUE((*f)->Write(4096, std::string(1000, 'c')).ok());
    ASSERT_TRUE((*f)->Write(5096, std::string(2000, 'b')).ok());
  };
  const std::string durable(4096, 'a');
  std::unique_ptr<File> f;

  setup(&f);
  ASSERT_TRUE(env_.SimulateCrash({Tear::kNone, 1}).ok());
  EXPECT_EQ(Contents(Path("t")), durable);

  setup(&f);
  ASSERT_TRUE(env_.SimulateCrash({Tear::kZeros, 1}).ok());
  EXPECT_EQ(Contents(Path("t")), durable + std::string(3000, '\0'));

  setup(&f);
  ASSERT_TRUE(env_.SimulateCrash({Tear::kGarbage, 1}).ok());
  std::string got = Contents(Path("t"));
  ASSERT_EQ(got.size(), 7096u);
  EXPECT_EQ(got.substr(0, 5096), durable + std::string(1000, '\0'));  // earlier write dropped
  EXPECT_NE(got.substr(5096), std::string(2000, 'b'));
  EXPECT_NE(got.substr(5096), std::string(2000, '\0'));

  // Prefix: the file ends at the write's start, at a sector boundary inside it (5120, 5632,
  // 6144, 6656) or at its end; earlier unsynced writes are dropped (a hole of zeros).
  std::set<uint64_t> sizes;
  for (uint64_t seed = 0; seed < 64; ++seed) {
    setup(&f);
    ASSERT_TRUE(env_.SimulateCrash({Tear::kPrefix, seed}).ok());
    got = Contents(Path("t"));
    sizes.insert(got.size());
    ASSERT_EQ(got.substr(0, 4096), durable);
    if (got.size() == 4096) continue;
    EXPECT_EQ(got.substr(4096, 1000), std::string(1000, '\0'));
    EXPECT_EQ(got.substr(5096), std::string(got.size() - 5096, 'b'));
  }
  EXPECT_EQ(sizes, (std::set<uint64_t>{4096, 5120, 5632, 6144, 6656, 7096}));

  // Tearing an overwrite inside existing data (a recycled file) keeps the old bytes after it.
  env_.Reset();
  fs::remove(Path("t"));
  f = CreateDurable("t");
  ASSERT_TRUE(f->Write(0, std::string(8192, 'x')).ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(f->Write(1000, std::string(2000, 'y')).ok());
  bool saw_partial = false;
  for (uint64_t seed = 0; seed < 32; ++seed) {
    ASSERT_TRUE(env_.SimulateCrash({Tear::kPrefix, seed}).ok());
    got = Contents(Path("t"));
    ASSERT_EQ(got.size(), 8192u);
    const size_t ys = got.find_first_not_of('y', 1000) - 1000;
    EXPECT_TRUE(ys == 0 || ys == 2000 || (1000 + ys) % 512 == 0) << ys;
    EXPECT_EQ(got.substr(1000 + ys), std::string(8192 - 1000 - ys, 'x'));
    saw_partial |= ys > 0 && ys < 2000;
    // Crashing reverted the write; redo it for the next seed.
    env_.Reset();
    ASSERT_TRUE(f->Write(1000, std::string(2000, 'y')).ok());
  }
  EXPECT_TRUE(saw_partial);
}

TEST_F(FaultInjectionEnvTest, TearIsDeterministicGivenTheSeed) {
  std::string first;
  for (int i = 0; i < 2; ++i) {
    env_.Reset();
    fs::remove(Path("t"));
    auto f = CreateDurable("t");
    ASSERT_TRUE(f->Write(0, std::string(5000, 'q')).ok());
    ASSERT_TRUE(env_.SimulateCrash({Tear::kGarbage, 42}).ok());
    if (i == 0) {
      first = Contents(Path("t"));
    } else {
      EXPECT_EQ(Contents(Path("t")), first);
    }
  }
}

TEST_F(FaultInjectionEnvTest, FlipBit) {
  auto f = CreateDurable("a");
  ASSERT_TRUE(f->Write(0, "A").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(env_.FlipBit(Path("a"), 0, 5).ok());
  EXPECT_EQ(Contents(Path("a")), "a");
  EXPECT_EQ(env_.FlipBit(Path("a"), 1, 0).code(), absl::StatusCode::kOutOfRange);
}

// Many threads write and sync their own files while another crashes the env: every write that
// was synced before the crash survives, and nothing else does.
TEST_F(FaultInjectionEnvTest, ConcurrentWritersAndACrash) {
  constexpr int kThreads = 6;
  std::vector<std::unique_ptr<File>> files;
  for (int t = 0; t < kThreads; ++t) files.push_back(CreateDurable(absl::StrCat("f", t)));
  std::vector<uint64_t> synced(kThreads, 0);
  env_.CrashAfter(500);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string block(100, static_cast<char>('a' + t));
      for (uint64_t off = 0;; off += block.size()) {
        if (!files[t]->Write(off, block).ok()) return;
        if (!files[t]->Sync().ok()) return;
        synced[t] = off + block.size();
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(env_.crashed());
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(Contents(Path(absl::StrCat("f", t))),
              std::string(synced[t], static_cast<char>('a' + t)));
  }
}

}  // namespace
}  // namespace shardtx::testing
