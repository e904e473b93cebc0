// A crash at each step of two-phase commit (named kill points), on the fault-injecting Env
// (unsynced bytes lost, as in a power cut), under concurrent cross-shard transfers. After
// recovery: every acknowledged transaction is committed on every shard, none is partly
// applied, and the bank total is exact. Also a crash during recovery's in-doubt resolution.
// Every round's kill point must fire, and every failure the workload sees must be its crash.
#include <atomic>
#include <map>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/test_db.h"
#include "tests/support/fault_injection_env.h"
#include "util/kill_point.h"
#include "util/mutex.h"

namespace shardtx {
namespace {

using testing::FaultInjectionEnv;

constexpr int kShards = 4;
constexpr int kAccountsPerShard = 8;
constexpr int64_t kInitial = 1000;
const char kPrefix[kShards] = {'a', 'b', 'c', 'd'};  // range partitioning: shard i holds prefix i

std::string AccountKey(int shard, int i) { return absl::StrCat(std::string(1, kPrefix[shard]), "/acct/", i); }
std::string MarkKey(int shard, uint64_t txn) {
  return absl::StrCat(std::string(1, kPrefix[shard]), "/mark/", txn);
}

// The status of an operation that failed because of the injected crash (the Env fails every
// operation with "simulated crash" once it crashed; the WAL passes that status on).
bool IsCrash(const absl::Status& s) {
  return s.code() == absl::StatusCode::kInternal &&
         absl::StrContains(s.message(), "simulated crash");
}

class TwoPhaseCrashTest : public ::testing::TestWithParam<std::string> {
 protected:
  Options Opts(const std::string& dir) {
    Options o;
    o.path = dir;
    o.env = &env_;
    o.num_shards = kShards;
    o.partitioning = Options::Partitioning::kRange;
    o.range_split_points = {"b", "c", "d"};
    o.checkpoint_interval = absl::ZeroDuration();
    o.checkpoint_overlay_bytes = 64 << 10;
    o.checkpoint_on_close = false;
    o.wal_segment_size = 64 << 10;
    o.max_txn_bytes = 16 << 10;
    o.log_layout = testing::TestLogLayout();
    return o;
  }
  FaultInjectionEnv env_{Env::Default(), FaultInjectionEnv::Options{.sync_base = false}};
};

TEST_P(TwoPhaseCrashTest, EveryAcknowledgedTransactionCommittedOnEveryShard) {
  const std::string kill_point = GetParam();
  const std::string dir = testing::FreshDir("_" + std::to_string(std::hash<std::string>()(kill_point)));
  const Options options = Opts(dir);
  uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("SHARDTX_SEED")) seed = std::strtoull(s, nullptr, 10);
  std::printf("TwoPhaseCrash %s seed=%llu\n", kill_point.c_str(), static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  {
    auto db = testing::OpenOrDie(options);
    auto t = db->Begin();
    for (int s = 0; s < kShards; ++s) {
      for (int i = 0; i < kAccountsPerShard; ++i) {
        ASSERT_TRUE(t->Put(AccountKey(s, i), std::to_string(kInitial)).ok());
      }
    }
    ASSERT_TRUE(t->Commit().ok());
  }
  // Transaction id -> its shards; acknowledged ones in `acked`.
  Mutex mu;
  std::map<uint64_t, std::vector<int>> attempted;
  std::vector<uint64_t> acked;
  const int rounds = 6;
  int crashes = 0;
  uint64_t recovered_commits = 0, recovered_aborts = 0;
  for (int round = 0; round < rounds; ++round) {
    SCOPED_TRACE(absl::StrCat("seed ", seed, " round ", round));
    const bool in_recovery = kill_point == "recovery.resolve_in_doubt";
    auto db = testing::OpenOrDie(options);
    ASSERT_NE(db, nullptr);
    // The crash comes at the armed step of some transaction a little way into the run.
    const std::string workload_point = in_recovery ? "2pc.after_decision" : kill_point;
    std::atomic<bool> fired{false};
    KillPoints::Arm(workload_point, static_cast<int>(rng() % 20), [&] {
      fired = true;
      env_.SimulateCrash().IgnoreError();
    });
    std::vector<std::thread> threads;
    for (int w = 0; w < 8; ++w) {
      threads.emplace_back([&, w, tseed = rng()] {
        std::mt19937_64 r(tseed);
        for (int n = 0; n < 200; ++n) {
          const int s1 = static_cast<int>(r() % kShards);
          int s2 = static_cast<int>(r() % kShards);
          if (s2 == s1) s2 = (s1 + 1) % kShards;
          const std::string from = AccountKey(s1, static_cast<int>(r() % kAccountsPerShard));
          const std::string to = AccountKey(s2, static_cast<int>(r() % kAccountsPerShard));
          auto t = db->Begin();
          auto vf = t->Get(from);
          auto vt = t->Get(to);
          if (!vf.ok() || !vt.ok()) {
            if (env_.crashed()) return;
            const absl::Status& e = vf.ok() ? vt.status() : vf.status();
            EXPECT_TRUE(absl::IsAborted(e)) << "a read failed with no crash: " << e;
            continue;
          }
          const int64_t amount = static_cast<int64_t>(r() % 5);
          t->Put(from, std::to_string(std::stoll(*vf) - amount)).IgnoreError();
          t->Put(to, std::to_string(std::stoll(*vt) + amount)).IgnoreError();
          t->Put(MarkKey(s1, t->id()), "m").IgnoreError();
          t->Put(MarkKey(s2, t->id()), "m").IgnoreError();
          {
            MutexLock l(&mu);
            attempted[t->id()] = {s1, s2};
          }
          absl::Status st = t->Commit();
          if (st.ok()) {
            MutexLock l(&mu);
            acked.push_back(t->id());
          } else if (!absl::IsAborted(st)) {
            // Only the crash may fail a commit (a conflict aborts it: kAborted).
            EXPECT_TRUE(env_.crashed() && IsCrash(st))
                << "a commit failed, and not by the injected crash: " << st;
            return;
          }
        }
        (void)w;
      });
    }
    for (auto& th : threads) th.join();
    KillPoints::DisarmAll();
    // Skips are below 20 and every transfer is cross-shard: the point is reached every round.
    EXPECT_TRUE(fired.load()) << workload_point << " never fired in this round";
    if (fired.load()) ++crashes;
    if (!env_.crashed()) env_.SimulateCrash().IgnoreError();
    db->Close().IgnoreError();
    db.reset();
    env_.Reset();
    if (in_recovery) {
      // Crash in the middle of resolving the in-doubt transactions, then recover again. The
      // crash at 2pc.after_decision left at least one decided transaction in doubt, so the
      // point is reached.
      std::atomic<bool> resolving{false};
      KillPoints::Arm("recovery.resolve_in_doubt", 0, [&] {
        resolving = true;
        env_.SimulateCrash().IgnoreError();
      });
      auto r = Database::Open(options);
      KillPoints::DisarmAll();
      EXPECT_TRUE(resolving.load()) << "recovery.resolve_in_doubt never fired in recovery";
      if (r.ok()) {
        (*r)->Close().IgnoreError();
      } else {
        EXPECT_TRUE(IsCrash(r.status()))
            << "recovery failed, and not by the crash injected into it: " << r.status();
      }
      env_.Reset();
    }
    db = testing::OpenOrDie(options);
    ASSERT_NE(db, nullptr);
    EXPECT_EQ(db->GetStats().in_doubt, 0u);
    recovered_commits += db->GetStats().recovered_commits;
    recovered_aborts += db->GetStats().recovered_aborts;
    auto t = db->Begin();
    int64_t total = 0;
    for (int s = 0; s < kShards; ++s) {
      for (int i = 0; i < kAccountsPerShard; ++i) total += std::stoll(*t->Get(AccountKey(s, i)));
    }
    ASSERT_EQ(total, kShards * kAccountsPerShard * kInitial) << "money created or destroyed";
    MutexLock l(&mu);
    for (uint64_t id : acked) {
      for (int s : attempted[id]) {
        ASSERT_TRUE(t->Get(MarkKey(s, id)).ok())
            << "acknowledged transaction " << id << " missing on shard " << s;
      }
    }
    for (const auto& [id, shards] : attempted) {
      const bool a = t->Get(MarkKey(shards[0], id)).ok();
      const bool b = t->Get(MarkKey(shards[1], id)).ok();
      ASSERT_EQ(a, b) << "transaction " << id << " partly applied";
    }
  }
  std::printf("TwoPhaseCrash %s: %d rounds, %d crashes at the point, %zu acknowledged\n",
              kill_point.c_str(), rounds, crashes, acked.size());
  EXPECT_GT(crashes, 0) << "the kill point was never reached";
  // The protocol's promise at each point (parallel commit): with some prepare not yet known
  // durable, recovery commits iff every prepare reached the disk, so it resolves the crashing
  // transaction one way or the other; once every prepare is durable, it commits on every
  // participant. (Before parallel commit, after_all_prepares meant presumed abort.) Other
  // threads' transactions may be at other steps when the crash comes, so only the crashing
  // one's side is checked; tests/txn/parallel_commit_test.cc pins each outcome down.
  if (kill_point == "2pc.after_some_prepares" || kill_point == "2pc.between_prepares") {
    EXPECT_GT(recovered_aborts + recovered_commits, 0u);
  } else {
    EXPECT_GT(recovered_commits, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(KillPoints, TwoPhaseCrashTest,
                         ::testing::Values("2pc.after_some_prepares", "2pc.between_prepares",
                                           "2pc.after_all_prepares", "2pc.after_decision",
                                           "2pc.after_some_commits", "recovery.resolve_in_doubt"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) {
                             if (c == '.') c = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace shardtx
