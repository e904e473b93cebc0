// Serializable transactions next to prepared ones. The rule (transaction.h): a serializable
// named prepare keeps its reads locked until its decision (writers of them abort), and a
// serializable commit whose reads meet a prepared write aborts (prepare conflict). Either way
// no cycle can form with a transaction that is prepared but not yet decided.
#include <atomic>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/test_db.h"
#include "tests/support/fault_injection_env.h"
#include "tests/txn/fault_db_test.h"
#include "util/kill_point.h"

namespace shardtx {
namespace {

using testing::FaultInjectionEnv;
using testing::GetOne;
using testing::PutOne;

class SerializablePrepareTest : public testing::FaultDbTest {
 protected:
  void SetUp() override {
    FaultDbTest::SetUp();
    Open();
    ASSERT_TRUE(PutOne(db_.get(), "alice", "on").ok());  // shard 0
    ASSERT_TRUE(PutOne(db_.get(), "zoe", "on").ok());    // shard 1
  }
  // The doctors' rule: read both, go off call only if the other one is on.
  std::unique_ptr<Transaction> GoOffCall(const std::string& me, const std::string& other) {
    auto t = Serializable();
    EXPECT_EQ(*t->Get(me), "on");
    EXPECT_EQ(*t->Get(other), "on");
    EXPECT_TRUE(t->Put(me, "off").ok());
    return t;
  }
};

TEST_F(SerializablePrepareTest, WriteSkewThroughANamedPrepareIsRefused) {
  auto t1 = GoOffCall("zoe", "alice");
  ASSERT_TRUE(t1->Prepare("a").ok());
  auto t2 = GoOffCall("alice", "zoe");
  absl::Status s = t2->Commit();
  EXPECT_TRUE(absl::IsAborted(s)) << s;
  EXPECT_NE(s.message().find("'a'"), std::string::npos) << s;
  ASSERT_TRUE(db_->CommitPrepared("a").ok());
  EXPECT_EQ(*GetOne(db_.get(), "alice"), "on");
  EXPECT_EQ(*GetOne(db_.get(), "zoe"), "off");
  // Decided: the read lock is gone.
  EXPECT_TRUE(PutOne(db_.get(), "alice", "on").ok());
}

TEST_F(SerializablePrepareTest, ReadLocksSurviveARestartAndACheckpoint) {
  auto t1 = GoOffCall("zoe", "alice");
  ASSERT_TRUE(t1->Prepare("a").ok());
  CrashAndReopen();
  {
    auto t2 = GoOffCall("alice", "zoe");
    absl::Status s = t2->Commit();
    EXPECT_TRUE(absl::IsAborted(s)) << s;
  }
  // Through the prepared-transactions table too (the WAL behind it is recycled).
  ASSERT_TRUE(db_->Checkpoint().ok());
  CrashAndReopen();
  {
    auto t2 = GoOffCall("alice", "zoe");
    absl::Status s = t2->Commit();
    EXPECT_TRUE(absl::IsAborted(s)) << s;
  }
  ASSERT_TRUE(db_->RollbackPrepared("a").ok());
  auto t3 = GoOffCall("alice", "zoe");
  EXPECT_TRUE(t3->Commit().ok());
}

TEST_F(SerializablePrepareTest, AScannedRangeStaysLockedUntilTheDecision) {
  auto t1 = Serializable();
  {
    IteratorOptions io;
    io.lower_bound = "b";
    io.upper_bound = "d";
    auto it = t1->NewIterator(io);
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
    }
    ASSERT_TRUE(it->status().ok());
  }
  ASSERT_TRUE(t1->Put("zoe", "off").ok());
  ASSERT_TRUE(t1->Prepare("scan").ok());
  absl::Status s = PutOne(db_.get(), "carol", "phantom");  // inside [b, d)
  EXPECT_TRUE(absl::IsAborted(s)) << s;
  EXPECT_TRUE(PutOne(db_.get(), "dave", "outside").ok());
  ASSERT_TRUE(db_->CommitPrepared("scan").ok());
  EXPECT_TRUE(PutOne(db_.get(), "carol", "now").ok());
}

// The read set goes into the prepare record and is locked: it is bounded with the writes.
TEST_F(SerializablePrepareTest, AReadSetPastTheTransactionLimitIsRefusedCleanly) {
  auto t = Serializable();
  const std::string long_key(400, 'k');
  for (int i = 0; i < 60; ++i) {  // 60 x ~400 bytes of reads > max_txn_bytes (16 KiB)
    EXPECT_TRUE(absl::IsNotFound(t->Get(absl::StrCat(long_key, i)).status()));
  }
  ASSERT_TRUE(t->Put("zoe", "off").ok());
  absl::Status s = t->Prepare("big");
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_TRUE(db_->ListPrepared()->empty());
  EXPECT_TRUE(PutOne(db_.get(), "zoe", "free").ok());  // nothing stayed locked
}

// Our own cross-shard serializable commit takes its timestamp at validation and then waits for
// its fsyncs with its writes prepared but not installed. A serializable transaction that reads
// one of them in that window and commits would be ordered after it while having read the older
// version: it must abort.
TEST_F(SerializablePrepareTest, ReaderOfAPreparedWriteInTheCommitWindowAborts) {
  auto t1 = Serializable();
  ASSERT_EQ(*t1->Get("alice"), "on");
  ASSERT_EQ(*t1->Get("zoe"), "on");
  ASSERT_TRUE(t1->Put("zoe", "off").ok());
  ASSERT_TRUE(t1->Put("bob", "t1").ok());  // cross-shard: bob on shard 0, zoe on shard 1
  absl::Status t2_status;
  const uint64_t hits = KillPoints::Hits("2pc.after_all_prepares");
  KillPoints::Arm("2pc.after_all_prepares", 0, [&] {
    auto t2 = GoOffCall("alice", "zoe");  // reads zoe (prepared by t1), writes alice (t1 read)
    t2_status = t2->Commit();
  });
  ASSERT_TRUE(t1->Commit().ok());
  ASSERT_EQ(KillPoints::Hits("2pc.after_all_prepares"), hits + 1);
  EXPECT_TRUE(absl::IsAborted(t2_status)) << t2_status;
  EXPECT_NE(t2_status.message().find("prepare conflict"), std::string::npos) << t2_status;
  EXPECT_EQ(*GetOne(db_.get(), "alice"), "on");
}

// The doctors under concurrency, through every commit path at once: two threads each try to
// go off call when the other is on; whatever the interleaving and the path (one-phase on one
// shard, our own 2PC across shards, a named prepare decided by its thread), one of them stays
// on call. Seeded; SHARDTX_SEED replays.
TEST(SerializablePrepareConcurrency, OneDoctorAlwaysStaysOnCall) {
  const std::string dir = testing::FreshDir();
  Options o;
  o.path = dir;
  o.num_shards = 2;
  o.partitioning = Options::Partitioning::kRange;
  o.range_split_points = {"m"};
  o.checkpoint_interval = absl::ZeroDuration();
  auto db = testing::OpenOrDie(o);
  ASSERT_NE(db, nullptr);
  uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("SHARDTX_SEED")) seed = std::strtoull(s, nullptr, 10);
  std::printf("OneDoctorAlwaysStaysOnCall seed=%llu\n", static_cast<unsigned long long>(seed));
  constexpr int kRounds = 150;
  int both_committed = 0;
  for (int round = 0; round < kRounds; ++round) {
    // alice on shard 0; zoe on shard 1 in odd rounds, on shard 0 ("bob") in even ones.
    const std::string a = "alice";
    const std::string b = round % 2 ? "zoe" : "bob";
    ASSERT_TRUE(PutOne(db.get(), a, "on", Durability::kNone).ok());
    ASSERT_TRUE(PutOne(db.get(), b, "on", Durability::kNone).ok());
    std::atomic<int> ready{0};
    std::atomic<int> committed{0};
    auto doctor = [&](const std::string& me, const std::string& other, uint64_t s) {
      std::mt19937_64 rng(s);
      TxnOptions to;
      to.isolation = Isolation::kSerializable;
      to.durability = Durability::kNone;
      auto t = db->Begin(to);
      ready++;
      while (ready.load() < 2) std::this_thread::yield();
      auto mine = t->Get(me);
      auto theirs = t->Get(other);
      if (!mine.ok() || !theirs.ok() || *mine != "on" || *theirs != "on") return;
      if (!t->Put(me, "off").ok()) return;
      if (rng() % 2) {  // a second shard written: our own 2PC in odd rounds
        if (!t->Put(absl::StrCat(me == "alice" ? "zz-" : "aa-", round), "x").ok()) return;
      }
      if (rng() % 3 == 0) {
        const std::string name = absl::StrCat(me, "-", round);
        if (!t->Prepare(name).ok()) return;
        if (db->CommitPrepared(name).ok()) committed++;
      } else if (t->Commit().ok()) {
        committed++;
      }
    };
    std::thread t1(doctor, a, b, seed + 2 * round);
    std::thread t2(doctor, b, a, seed + 2 * round + 1);
    t1.join();
    t2.join();
    const bool a_on = *GetOne(db.get(), a) == "on";
    const bool b_on = *GetOne(db.get(), b) == "on";
    ASSERT_TRUE(a_on || b_on) << "round " << round << ": both went off call (seed " << seed << ")";
    both_committed += committed.load() == 2;
  }
  EXPECT_EQ(both_committed, 0);
}

}  // namespace
}  // namespace shardtx
