// A checkpoint writes LMDB in chunks (Options::checkpoint_txn_bytes), each a durable LMDB
// transaction; only the last records applied_lsn. A process that dies between two chunks leaves
// LMDB holding some of the frozen versions under the old applied_lsn: reopening must give
// exactly the committed state, and a later checkpoint must finish the job.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "shardtx/database.h"
#include "tests/support/test_db.h"
#include "util/kill_point.h"

namespace shardtx {
namespace {

constexpr int kKeys = 600;
constexpr int kExitAtKillPoint = 7;

Options Opts(const std::string& dir) {
  Options o;
  o.path = dir;
  o.checkpoint_wal_bytes = 0;  // only explicit checkpoints
  o.checkpoint_overlay_bytes = 0;
  o.checkpoint_interval = absl::ZeroDuration();
  o.checkpoint_on_close = false;
  o.checkpoint_txn_bytes = 4 << 10;  // ~20 keys per LMDB transaction
  return o;
}

std::string Key(int i) { return absl::StrCat("k", 1000 + i); }
// The second generation: every third key deleted, the rest overwritten.
std::optional<std::string> SecondValue(int i) {
  if (i % 3 == 0) return std::nullopt;
  return absl::StrCat("v2-", i, std::string(150, 'b'));
}

// The child: v1 of every key, checkpointed; then the second generation, and a checkpoint that
// dies at the `skip`+1-th boundary between two of its LMDB transactions.
[[noreturn]] void RunChild(const std::string& dir, int skip) {
  auto db = Database::Open(Opts(dir));
  if (!db.ok()) _exit(2);
  for (int i = 0; i < kKeys; i += 50) {
    auto t = (*db)->Begin();
    for (int j = i; j < std::min(kKeys, i + 50); ++j) {
      if (!t->Put(Key(j), absl::StrCat("v1-", j, std::string(150, 'a'))).ok()) _exit(3);
    }
    if (!t->Commit().ok()) _exit(3);
  }
  if (!(*db)->Checkpoint().ok()) _exit(4);
  for (int i = 0; i < kKeys; i += 50) {
    auto t = (*db)->Begin();
    for (int j = i; j < std::min(kKeys, i + 50); ++j) {
      std::optional<std::string> v = SecondValue(j);
      absl::Status s = v.has_value() ? t->Put(Key(j), *v) : t->Delete(Key(j));
      if (!s.ok()) _exit(3);
    }
    if (!t->Commit().ok()) _exit(3);
  }
  KillPoints::Arm("checkpoint.between_lmdb_chunks", skip, [] { _exit(kExitAtKillPoint); });
  (void)(*db)->Checkpoint();
  _exit(5);  // the checkpoint finished: the kill point was never reached
}

void ExpectSecondGeneration(Database* db) {
  auto t = db->Begin();
  for (int i = 0; i < kKeys; ++i) {
    absl::StatusOr<std::string> v = t->Get(Key(i));
    std::optional<std::string> want = SecondValue(i);
    if (want.has_value()) {
      ASSERT_TRUE(v.ok()) << Key(i) << ": " << v.status();
      EXPECT_EQ(*v, *want) << Key(i);
    } else {
      EXPECT_TRUE(absl::IsNotFound(v.status())) << Key(i) << " should be deleted";
    }
  }
}

TEST(CheckpointChunks, ACrashBetweenChunksLosesNothingAndTheNextCheckpointFinishes) {
  if (KillPoints::All().empty()) GTEST_SKIP() << "built without SHARDTX_KILL_POINTS";
  for (int skip : {0, 3, 9}) {
    SCOPED_TRACE(absl::StrCat("dies at chunk boundary ", skip + 1));
    const std::string dir = testing::FreshDir();
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) RunChild(dir, skip);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), kExitAtKillPoint) << "the child did not die mid-checkpoint";
    {
      auto db = Database::Open(Opts(dir));
      ASSERT_TRUE(db.ok()) << db.status();
      ExpectSecondGeneration(db->get());
      ASSERT_TRUE((*db)->Checkpoint().ok());
      EXPECT_GT((*db)->GetStats().shards[0].checkpoint_txns, 1u) << "not written in chunks";
      ExpectSecondGeneration(db->get());
    }
    auto db = Database::Open(Opts(dir));  // nothing left to redo: all from LMDB
    ASSERT_TRUE(db.ok()) << db.status();
    EXPECT_EQ((*db)->GetStats().recovery_records, 0u);
    ExpectSecondGeneration(db->get());
  }
}

}  // namespace
}  // namespace shardtx
