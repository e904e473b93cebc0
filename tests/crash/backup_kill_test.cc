// kill -9 during Database::Backup: a child process backs up a live database while its writers
// run, and dies by SIGKILL, either at a backup kill point (it sends the signal to itself there)
// or from the parent at a random moment. Then nothing at the destination opens as a database; a
// partial directory, or a dest left without its manifest, is refused by Database::Open; and a
// second Backup to the same destination works, removing what the killed one left.
//
// SHARDTX_SEED replays a run; SHARDTX_KILL_ROUNDS sets the random-moment rounds (default 8).
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "shardtx/database.h"
#include "tests/support/test_db.h"
#include "tests/txn/backup_test_util.h"
#include "util/kill_point.h"

namespace shardtx {
namespace {

using testing::BankOptions;
using testing::CheckBankCopy;
using testing::FreshDir;
using testing::PartialsOf;

constexpr int kWriters = 3;

// The child: opens the database, starts writers, arms `kill_point` (if any) to SIGKILL itself,
// says "B" and backs up into `dest`, then says "D" and how it went.
[[noreturn]] void RunChild(const std::string& dir, const std::string& dest,
                           const std::string& kill_point, int skip, int out) {
  auto db = Database::Open(BankOptions(dir));
  if (!db.ok()) _exit(2);
  std::atomic<bool> done{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      std::mt19937_64 rng(w);
      while (!done.load()) testing::BankTransfer(db->get(), w, rng).IgnoreError();
    });
  }
  if (!kill_point.empty()) KillPoints::Arm(kill_point, skip, [] { ::kill(::getpid(), SIGKILL); });
  (void)!write(out, "B", 1);
  absl::Status s = (*db)->Backup(dest);
  const std::string line = s.ok() ? "D" : absl::StrCat("E", s.ToString());
  (void)!write(out, line.data(), line.size());
  _exit(s.ok() ? 0 : 1);  // the writers are never joined: the process just ends
}

struct Round {
  std::string kill_point;  // empty: SIGKILL from the parent after `delay_us`
  int skip = 0;
  int delay_us = 0;
};

// Runs one round; returns whether the child finished its backup before it died.
bool KillDuringBackup(const std::string& dir, const std::string& dest, const Round& r) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  EXPECT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    RunChild(dir, dest, r.kill_point, r.skip, fds[1]);
  }
  close(fds[1]);
  std::string said;
  char buf[512];
  bool killed = false;
  while (true) {
    if (!killed && r.kill_point.empty() && said.find('B') != std::string::npos) {
      // The random moment: wait for the delay (or for the child's next word), then kill.
      pollfd p{fds[0], POLLIN, 0};
      ::poll(&p, 1, r.delay_us / 1000);
      ::kill(child, SIGKILL);
      killed = true;
    }
    const ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n <= 0) break;  // EOF: the child is gone
    said.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_NE(said.find('B'), std::string::npos) << "the child never began: " << said;
  EXPECT_EQ(said.find('E'), std::string::npos) << "the backup failed: " << said;
  if (!r.kill_point.empty()) {
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << r.kill_point << " was never reached: " << said;
  }
  return said.find('D') != std::string::npos;
}

// After a round: what the dead child left is either a complete backup at dest or nothing
// there; the retry by a live process succeeds and cleans up.
void CheckAndRetry(const std::string& dir, const std::string& dest, const Round& r, bool finished) {
  Options at_dest = BankOptions(dest);
  at_dest.create_if_missing = false;
  // Killed after the manifest (before the child could say so), the backup is complete: the
  // manifest is its commit point.
  if (finished || (r.kill_point.empty() && std::filesystem::exists(dest + "/SHARDTX"))) {
    CheckBankCopy(dest, kWriters);
    return;
  }
  // Nothing opens: dest is missing, or (killed between the rename and the manifest) holds a
  // copy without its manifest, which Open refuses.
  const bool renamed = std::filesystem::exists(dest);
  auto opened = Database::Open(at_dest);
  EXPECT_TRUE(absl::IsNotFound(opened.status()))
      << "dest after a killed backup: " << opened.status();
  if (r.kill_point == "backup.before_manifest") {
    EXPECT_TRUE(renamed) << "killed before the rename";
  }
  const std::vector<std::string> partials = PartialsOf(dest);
  EXPECT_LE(partials.size(), 1u);
  EXPECT_TRUE(partials.empty() || !renamed);
  for (const std::string& p : partials) {
    Options o = BankOptions(p);
    o.create_if_missing = false;
    auto partial = Database::Open(o);
    EXPECT_TRUE(absl::IsNotFound(partial.status()))
        << p << " opened as a database: " << partial.status();
  }
  if (!r.kill_point.empty() && r.kill_point != "backup.before_manifest") {
    EXPECT_EQ(partials.size(), 1u) << "no partial directory left";
  }
  auto db = Database::Open(BankOptions(dir));
  ASSERT_TRUE(db.ok()) << db.status();
  const absl::Status retry = (*db)->Backup(dest);
  ASSERT_TRUE(retry.ok()) << "the retry: " << retry;
  EXPECT_TRUE(PartialsOf(dest).empty()) << "the stale partial directory stayed";
  db->reset();
  CheckBankCopy(dest, kWriters);
}

// The rounds at `fixed` kill points, then random moments, on a database created with `layout`
// (the child and the retries open it as it was created).
void RunRounds(Options::LogLayout layout, std::vector<Round> rounds) {
  uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("SHARDTX_SEED")) seed = std::strtoull(s, nullptr, 10);
  int random_rounds = 8;
  if (const char* s = std::getenv("SHARDTX_KILL_ROUNDS")) random_rounds = std::atoi(s);
  std::printf("BackupKill seed=%llu\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  const std::string dir = FreshDir();
  {
    Options o = BankOptions(dir);
    o.log_layout = layout;
    auto db = Database::Open(o);
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE(testing::FundBank(db->get()).ok());
  }
  for (int i = 0; i < random_rounds; ++i)
    rounds.push_back({"", 0, static_cast<int>(rng() % 100000)});
  int finished = 0;
  for (size_t i = 0; i < rounds.size(); ++i) {
    const Round& r = rounds[i];
    SCOPED_TRACE(absl::StrCat(
        "seed ", seed, " round ", i, " ",
        r.kill_point.empty() ? absl::StrCat("SIGKILL after ", r.delay_us, " us") : r.kill_point));
    const std::string dest = FreshDir(absl::StrCat("_copy", i));
    const bool done = KillDuringBackup(dir, dest, r);
    finished += done;
    CheckAndRetry(dir, dest, r, done);
    if (::testing::Test::HasFatalFailure()) return;
  }
  std::printf("BackupKill: %zu rounds, %d backups finished before the kill\n", rounds.size(),
              finished);
}

TEST(BackupKill, NothingAtDestOpensAfterKillNineAndARetryWorks) {
  RunRounds(Options::LogLayout::kPerShard,
            {
                {"backup.after_store_copy", 0},
                {"backup.after_store_copy", 3},
                {"backup.after_cut", 0},
                {"backup.wal_segment_copied", 0},
                {"backup.wal_segment_copied", 2},  // a later shard's log, or a later segment
                {"backup.before_manifest", 0},
                {"backup.before_rename", 0},
            });
}

// One log for all shards: it is copied once, so its first segment is the only one every
// backup is sure to copy.
TEST(BackupKill, SharedLogNothingAtDestOpensAfterKillNineAndARetryWorks) {
  RunRounds(Options::LogLayout::kShared,
            {
                {"backup.after_store_copy", 0},
                {"backup.after_store_copy", 3},
                {"backup.after_cut", 0},
                {"backup.wal_segment_copied", 0},
                {"backup.before_manifest", 0},
                {"backup.before_rename", 0},
            });
}

}  // namespace
}  // namespace shardtx
