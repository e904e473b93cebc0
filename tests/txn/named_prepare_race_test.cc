// The named-prepare API used concurrently and carelessly, as a host's coordinator might: one
// resolver of a name wins, a name is not visible before its prepare is durable everywhere, a
// failed Prepare never releases a name someone else holds, and Close with work in flight
// answers every call with its outcome or a clear status. A reopen agrees with every answer.
#include <atomic>
#include <barrier>
#include <map>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/test_db.h"
#include "tests/support/fault_injection_env.h"
#include "tests/txn/fault_db_test.h"
#include "util/kill_point.h"
#include "util/mutex.h"

namespace shardtx {
namespace {

using testing::FaultInjectionEnv;
using testing::GetOne;
using testing::PutOne;

uint64_t Seed(const char* test) {
  uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("SHARDTX_SEED")) seed = std::strtoull(s, nullptr, 10);
  std::printf("%s seed=%llu\n", test, static_cast<unsigned long long>(seed));
  return seed;
}

class NamedPrepareRaceTest : public testing::FaultDbTest {
 protected:
  void Open(uint32_t shards = 4) { FaultDbTest::Open(Opts(shards)); }
};

// 8 writes over 4 shards, then CommitPrepared and RollbackPrepared of the name at once.
TEST_F(NamedPrepareRaceTest, CommitAndRollbackAtOnceExactlyOneWins) {
  Open();
  constexpr int kTries = 100;
  std::map<int, bool> committed;  // try -> which resolver won
  for (int i = 0; i < kTries; ++i) {
    const std::string name = absl::StrCat("t", i);
    auto t = db_->Begin();
    for (char shard : {'a', 'b', 'c', 'd'}) {
      for (int j = 0; j < 2; ++j)
        ASSERT_TRUE(t->Put(absl::StrCat(std::string(1, shard), i, "/", j), name).ok());
    }
    ASSERT_TRUE(t->Prepare(name).ok());
    std::barrier start(2);
    absl::Status commit, rollback;
    std::thread c([&] {
      start.arrive_and_wait();
      commit = db_->CommitPrepared(name);
    });
    std::thread r([&] {
      start.arrive_and_wait();
      rollback = db_->RollbackPrepared(name);
    });
    c.join();
    r.join();
    ASSERT_NE(commit.ok(), rollback.ok())
        << "try " << i << ": commit " << commit << ", rollback " << rollback;
    const absl::Status& loser = commit.ok() ? rollback : commit;
    EXPECT_TRUE(absl::IsFailedPrecondition(loser) || absl::IsNotFound(loser)) << loser;
    committed[i] = commit.ok();
    EXPECT_EQ(db_->GetOutcome(t->id()),
              commit.ok() ? Database::Outcome::kCommitted : Database::Outcome::kAborted);
  }
  // The single outcome is the durable one, on every shard.
  auto check = [&] {
    for (const auto& [i, c] : committed) {
      for (char shard : {'a', 'b', 'c', 'd'}) {
        auto v = GetOne(db_.get(), absl::StrCat(std::string(1, shard), i, "/0"));
        if (c) {
          ASSERT_TRUE(v.ok()) << "try " << i << " shard " << shard << ": " << v.status();
        } else {
          ASSERT_TRUE(absl::IsNotFound(v.status())) << "try " << i << " shard " << shard;
        }
      }
    }
  };
  check();
  EXPECT_TRUE(List().empty());
  CrashAndReopen();
  check();
  EXPECT_TRUE(List().empty());
}

// While Prepare is still making its parts durable, the name is neither listed nor resolvable:
// a resolution then would decide a transaction the host was never told is prepared.
TEST_F(NamedPrepareRaceTest, NameIsInvisibleUntilEveryPartIsDurable) {
  Open();
  auto t = db_->Begin();
  ASSERT_TRUE(t->Put("apple", "1").ok());  // shard 0
  ASSERT_TRUE(t->Put("dog", "1").ok());    // shard 3
  std::vector<std::string> listed;
  absl::Status commit, rollback;
  const uint64_t hits = KillPoints::Hits("2pc.after_some_prepares");
  KillPoints::Arm("2pc.after_some_prepares", 0, [&] {
    listed = List();
    commit = db_->CommitPrepared("p");
    rollback = db_->RollbackPrepared("p");
  });
  ASSERT_TRUE(t->Prepare("p").ok());
  ASSERT_EQ(KillPoints::Hits("2pc.after_some_prepares"), hits + 1);
  EXPECT_TRUE(listed.empty());
  EXPECT_TRUE(absl::IsNotFound(commit)) << commit;
  EXPECT_TRUE(absl::IsNotFound(rollback)) << rollback;
  EXPECT_EQ(List(), std::vector<std::string>{"p"});
  ASSERT_TRUE(db_->CommitPrepared("p").ok());
  EXPECT_EQ(*GetOne(db_.get(), "apple"), "1");
  EXPECT_EQ(*GetOne(db_.get(), "dog"), "1");
}

// A Prepare whose fsync failed gives its name up; another Prepare takes the name; the failed
// one's cleanup must not release the name it no longer holds.
TEST_F(NamedPrepareRaceTest, FailedPrepareDoesNotReleaseANameTakenSince) {
  UsePerShardLogs();
  Open(2);  // "apple" on shard 0, "zebra" and later on shard 1
  auto t1 = db_->Begin();
  ASSERT_TRUE(t1->Put("apple", "t1").ok());
  absl::Status t2_prepare = absl::UnknownError("not run");
  const uint64_t hits = KillPoints::Hits("2pc.after_failed_prepare");
  env_.FailSyncAfter(1, /*persistent=*/true);
  KillPoints::Arm("2pc.after_failed_prepare", 0, [&] {
    env_.ClearFaults();  // shard 1 is healthy for the second Prepare
    auto t2 = db_->Begin();
    ASSERT_TRUE(t2->Put("zebra", "t2").ok());
    t2_prepare = t2->Prepare("n");
  });
  EXPECT_FALSE(t1->Prepare("n").ok());
  ASSERT_EQ(KillPoints::Hits("2pc.after_failed_prepare"), hits + 1);
  ASSERT_TRUE(t2_prepare.ok()) << t2_prepare;
  EXPECT_EQ(List(), std::vector<std::string>{"n"});
  // A third Prepare of the name is refused: the name is held.
  auto t3 = db_->Begin();
  ASSERT_TRUE(t3->Put("zulu", "t3").ok());
  EXPECT_TRUE(absl::IsAlreadyExists(t3->Prepare("n")));
  ASSERT_TRUE(db_->CommitPrepared("n").ok());
  EXPECT_EQ(*GetOne(db_.get(), "zebra"), "t2");
}

// Many threads preparing, committing, rolling back and listing the same few names at once.
// Every call succeeds or returns a clear status; per name, the acknowledged prepares equal the
// acknowledged commits plus rollbacks plus the one still prepared, and a reopen shows exactly
// the committed writes.
TEST_F(NamedPrepareRaceTest, ConcurrentMisuseOfTheSameNamesKeepsOneOutcomeEach) {
  Open();
  const uint64_t seed = Seed("ConcurrentMisuseOfTheSameNamesKeepsOneOutcomeEach");
  constexpr int kThreads = 6, kOps = 300, kNames = 4;
  struct Counts {
    int prepared = 0, committed = 0, rolled_back = 0;
  };
  Mutex mu;
  std::map<std::string, Counts> counts;
  std::map<std::string, std::vector<std::string>> prepared_keys;  // name -> keys written
  std::atomic<int> unexpected{0};
  auto worker = [&](int id) {
    std::mt19937_64 rng(seed + id);
    for (int op = 0; op < kOps; ++op) {
      const std::string name = absl::StrCat("n", rng() % kNames);
      switch (rng() % 4) {
        case 0: {
          auto t = db_->Begin();
          // One key on each of two shards, unique to this attempt.
          const std::string k1 = absl::StrCat("a/", name, "/", id, "/", op);
          const std::string k2 = absl::StrCat("c/", name, "/", id, "/", op);
          if (!t->Put(k1, name).ok() || !t->Put(k2, name).ok()) unexpected++;
          absl::Status s = t->Prepare(name);
          if (s.ok()) {
            MutexLock l(&mu);
            counts[name].prepared++;
            prepared_keys[name].push_back(k1);
            prepared_keys[name].push_back(k2);
          } else if (!absl::IsAlreadyExists(s)) {
            ADD_FAILURE() << "Prepare: " << s;
            unexpected++;
          }
          break;
        }
        case 1:
        case 2: {
          const bool commit = rng() % 2;
          absl::Status s = commit ? db_->CommitPrepared(name) : db_->RollbackPrepared(name);
          if (s.ok()) {
            MutexLock l(&mu);
            (commit ? counts[name].committed : counts[name].rolled_back)++;
          } else if (!absl::IsNotFound(s) && !absl::IsFailedPrecondition(s)) {
            ADD_FAILURE() << (commit ? "CommitPrepared: " : "RollbackPrepared: ") << s;
            unexpected++;
          }
          break;
        }
        default: {
          auto l = db_->ListPrepared();
          if (!l.ok()) unexpected++;
        }
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) threads.emplace_back(worker, i);
  for (auto& t : threads) t.join();
  ASSERT_EQ(unexpected.load(), 0);
  auto verify = [&] {
    const std::vector<std::string> listed = List();
    for (int n = 0; n < kNames; ++n) {
      const std::string name = absl::StrCat("n", n);
      const Counts& c = counts[name];
      const int still = std::count(listed.begin(), listed.end(), name);
      EXPECT_EQ(c.prepared, c.committed + c.rolled_back + still) << name;
      // Committed generations are exactly the ones whose keys are visible (two keys each).
      int visible = 0;
      for (const std::string& k : prepared_keys[name]) visible += GetOne(db_.get(), k).ok();
      EXPECT_EQ(visible, 2 * c.committed) << name;
    }
  };
  verify();
  CrashAndReopen();
  verify();
}

// Close while other threads commit and prepare, and while transactions are open: every call
// answers OK or kFailedPrecondition ("closed"), Close returns, open transactions fail cleanly
// afterwards, and every acknowledged commit is there after reopening.
TEST_F(NamedPrepareRaceTest, CloseWhileTransactionsAreInFlight) {
  Open();
  const uint64_t seed = Seed("CloseWhileTransactionsAreInFlight");
  auto idle = db_->Begin();
  ASSERT_TRUE(idle->Put("b/idle", "x").ok());
  ASSERT_TRUE(idle->Get("a/nothing").status().code() == absl::StatusCode::kNotFound);
  std::atomic<bool> stop{false};
  std::atomic<int> acknowledged{0};
  std::atomic<int> unexpected{0};
  Mutex mu;
  std::vector<std::string> acked_keys;
  auto worker = [&](int id) {
    std::mt19937_64 rng(seed + id);
    for (int op = 0; !stop.load(); ++op) {
      auto t = db_->Begin();
      const std::string k1 = absl::StrCat("a/", id, "/", op);
      const std::string k2 = absl::StrCat(rng() % 2 ? "d/" : "a2/", id, "/", op);
      absl::Status s = t->Put(k1, "v");
      if (s.ok()) s = t->Put(k2, "v");
      if (s.ok()) s = rng() % 4 == 0 ? t->Prepare(absl::StrCat("p", id, "/", op)) : t->Commit();
      if (s.ok()) {
        acknowledged++;
        MutexLock l(&mu);
        acked_keys.push_back(k1);
      } else if (!absl::IsFailedPrecondition(s)) {
        ADD_FAILURE() << s;
        unexpected++;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back(worker, i);
  while (acknowledged.load() < 50) std::this_thread::yield();
  ASSERT_TRUE(db_->Close().ok());
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(unexpected.load(), 0);
  EXPECT_TRUE(absl::IsFailedPrecondition(idle->Commit()));
  EXPECT_TRUE(absl::IsFailedPrecondition(db_->Begin()->Get("a/x").status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(db_->CommitPrepared("p0/0")));
  EXPECT_TRUE(absl::IsFailedPrecondition(db_->Checkpoint()));
  idle.reset();
  db_.reset();
  Open();
  const std::vector<std::string> listed = List();
  for (const std::string& k : acked_keys) {
    // A prepared one's write is not visible yet, but its name is listed.
    auto v = GetOne(db_.get(), k);
    if (!v.ok()) {
      const std::string id_op = k.substr(2);
      EXPECT_TRUE(std::count(listed.begin(), listed.end(), "p" + id_op) == 1)
          << k << " acknowledged, then lost: " << v.status();
    }
  }
}

}  // namespace
}  // namespace shardtx
