// Crash tests of one shard under concurrent load, on the fault-injecting Env: crashes at random
// file operations and at named kill points (commit, checkpoint, WAL, recovery), with torn
// writes. After every crash the database is reopened (sometimes crashing again during
// recovery) and checked against what was acknowledged.
//
// SHARDTX_SEED replays a run; SHARDTX_CRASH_ROUNDS changes the round count (default 200).
#include <atomic>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "shardtx/database.h"
#include "tests/engine/test_db.h"
#include "tests/support/fault_injection_env.h"
#include "util/kill_point.h"
#include "util/mutex.h"

namespace shardtx {
namespace {

using testing::FaultInjectionEnv;

uint64_t SeedFromEnv() {
  if (const char* s = std::getenv("SHARDTX_SEED")) return std::strtoull(s, nullptr, 10);
  return std::random_device{}();
}

int RoundsFromEnv(int def) {
  if (const char* s = std::getenv("SHARDTX_CRASH_ROUNDS")) return std::atoi(s);
  return def;
}

constexpr int kWriters = 4;
constexpr int kKeysPerWriter = 12;

// What the test knows of each writer's keys: the value after the last acknowledged commit
// (nullopt: absent), and the one commit in flight when the crash came, if any.
struct WriterModel {
  std::map<std::string, std::optional<std::string>> acked;
  std::map<std::string, std::optional<std::string>> in_flight;  // empty: none
};

class EngineCrashTest : public ::testing::Test {
 protected:
  Options MakeOptions(const std::string& dir) {
    Options o;
    o.path = dir;
    o.env = &env_;
    o.wal_segment_size = 64 << 10;
    o.max_txn_bytes = 16 << 10;
    o.checkpoint_wal_bytes = 48 << 10;
    o.checkpoint_overlay_bytes = 32 << 10;
    o.overlay_limit_bytes = 4 << 20;
    o.checkpoint_interval = absl::ZeroDuration();
    o.checkpoint_on_close = false;
    o.max_open_transactions = 64;
    o.lmdb_map_size = 64 << 20;
    return o;
  }

  FaultInjectionEnv env_{Env::Default(), FaultInjectionEnv::Options{.sync_base = false}};
};

TEST_F(EngineCrashTest, AcknowledgedCommitsSurviveRandomCrashes) {
  const uint64_t seed = SeedFromEnv();
  const int rounds = RoundsFromEnv(200);
  std::printf("EngineCrashTest seed=%llu rounds=%d (replay: SHARDTX_SEED=%llu)\n",
              static_cast<unsigned long long>(seed), rounds,
              static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  const std::string dir = testing::FreshDir();
  const Options options = MakeOptions(dir);
  const std::vector<std::string> kill_points = {
      "checkpoint.after_freeze",      "checkpoint.before_lmdb_commit",
      "checkpoint.after_lmdb_commit", "checkpoint.before_wal_truncate",
      "wal.after_write",              "wal.after_sync",
      "wal.segment_roll",             "wal.truncate",
      "commit.after_wal_append",      "commit.after_durable"};
  const std::vector<std::string> recovery_points = {"recovery.mid_redo",
                                                    "recovery.before_wal_open"};

  std::vector<WriterModel> model(kWriters);
  uint64_t async_next = 0;  // async keys a/0 .. a/(async_next-1) may exist
  uint64_t verified = 0;
  std::atomic<uint64_t> acked_commits{0};
  std::map<std::string, int> crash_kinds;

  for (int round = 0; round < rounds; ++round) {
    SCOPED_TRACE(absl::StrCat("seed ", seed, " round ", round));
    // 1. Open, sometimes crashing during recovery first.
    std::unique_ptr<Database> db;
    if (round > 0 && rng() % 4 == 0) {
      const auto& kp = recovery_points[rng() % recovery_points.size()];
      if (rng() % 2 == 0) {
        KillPoints::Arm(kp, 0, [&] { env_.SimulateCrash().IgnoreError(); });
      } else {
        env_.CrashAfter(1 + rng() % 40);
      }
      auto r = Database::Open(options);
      KillPoints::DisarmAll();
      if (r.ok()) (*r)->Close().IgnoreError();
      env_.Reset();
      crash_kinds["recovery"]++;
    }
    auto opened = Database::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status();
    db = std::move(*opened);

    // 2. Verify against the model, then adopt what survived as the new truth.
    for (int w = 0; w < kWriters; ++w) {
      WriterModel& m = model[w];
      bool flight_applied = false, flight_absent = false;
      for (auto& [key, acked] : m.acked) {
        auto got = testing::GetOne(db.get(), key);
        ASSERT_TRUE(got.ok() || absl::IsNotFound(got.status())) << got.status();
        std::optional<std::string> v = got.ok() ? std::optional<std::string>(*got) : std::nullopt;
        auto f = m.in_flight.find(key);
        if (f != m.in_flight.end() && v == f->second && v != acked) {
          flight_applied = true;
        } else {
          ASSERT_EQ(v, acked) << "key " << key << " lost its acknowledged value";
          if (f != m.in_flight.end() && f->second != acked) flight_absent = true;
        }
        ++verified;
      }
      ASSERT_FALSE(flight_applied && flight_absent)
          << "writer " << w << ": the commit in flight at the crash is partly visible";
      if (flight_applied) {
        for (auto& [k, v] : m.in_flight) m.acked[k] = v;
      }
      m.in_flight.clear();
    }
    uint64_t survived = 0;
    while (survived < async_next && testing::GetOne(db.get(), absl::StrCat("a/", survived)).ok()) {
      ++survived;
    }
    for (uint64_t i = survived; i < async_next; ++i) {
      ASSERT_TRUE(absl::IsNotFound(testing::GetOne(db.get(), absl::StrCat("a/", i)).status()))
          << "async commits survived with a hole at a/" << survived;
    }
    async_next = survived;

    // 3. Run the workload until a crash.
    const int mode = static_cast<int>(rng() % 3);
    if (mode == 0) {
      env_.CrashAfter(20 + rng() % 1500, FaultInjectionEnv::CrashOptions{
                                             static_cast<FaultInjectionEnv::Tear>(rng() % 4),
                                             rng()});
      crash_kinds["file-op"]++;
    } else if (mode == 1) {
      const auto& kp = kill_points[rng() % kill_points.size()];
      KillPoints::Arm(kp, static_cast<int>(rng() % 5),
                      [&] { env_.SimulateCrash().IgnoreError(); });
      crash_kinds[kp]++;
    } else {
      crash_kinds["explicit"]++;
    }
    std::atomic<bool> stop{false};
    Mutex model_mu;
    std::vector<std::thread> threads;
    for (int w = 0; w < kWriters; ++w) {
      threads.emplace_back([&, w, tseed = rng()] {
        std::mt19937_64 r(tseed);
        for (int i = 0; i < 400 && !stop.load(); ++i) {
          auto txn = db->Begin();
          std::map<std::string, std::optional<std::string>> writes;
          const int n = 1 + static_cast<int>(r() % 3);
          for (int j = 0; j < n; ++j) {
            std::string key = absl::StrCat("s", w, "/", r() % kKeysPerWriter);
            std::optional<std::string> v;
            if (r() % 5 != 0) v = absl::StrCat("r", round, ".", i, ".", j);
            writes[key] = v;
          }
          for (auto& [k, v] : writes) {
            if (v) {
              txn->Put(k, *v).IgnoreError();
            } else {
              txn->Delete(k).IgnoreError();
            }
          }
          {
            MutexLock l(&model_mu);
            model[w].in_flight = writes;
          }
          absl::Status s = txn->Commit();
          MutexLock l(&model_mu);
          if (!s.ok()) return;  // the crash: leave the commit in flight
          acked_commits++;
          for (auto& [k, v] : writes) model[w].acked[k] = v;
          model[w].in_flight.clear();
        }
      });
    }
    std::atomic<uint64_t> async_acked{async_next};
    threads.emplace_back([&] {
      TxnOptions o;
      o.durability = Durability::kAsync;
      for (uint64_t i = async_next; i < async_next + 400 && !stop.load(); ++i) {
        auto t = db->Begin(o);
        t->Put(absl::StrCat("a/", i), "x").IgnoreError();
        if (!t->Commit().ok()) return;
        async_acked = i + 1;
      }
    });
    threads.emplace_back([&] {
      while (!stop.load()) {
        if (!db->Checkpoint().ok()) return;
      }
    });
    for (int w = 0; w < kWriters; ++w) threads[w].join();
    if (!env_.crashed()) env_.SimulateCrash().IgnoreError();
    stop = true;
    for (size_t t = kWriters; t < threads.size(); ++t) threads[t].join();
    KillPoints::DisarmAll();
    async_next = async_acked.load() + 1;  // the one in flight may have landed too
    db->Close().IgnoreError();
    db.reset();
    env_.Reset();
  }
  std::string kinds;
  for (const auto& [k, n] : crash_kinds) absl::StrAppend(&kinds, k, "=", n, " ");
  std::printf("EngineCrashTest: %d rounds, %llu acknowledged commits, %llu key checks; "
              "crashes: %s\n",
              rounds, static_cast<unsigned long long>(acked_commits.load()),
              static_cast<unsigned long long>(verified), kinds.c_str());
  EXPECT_GT(acked_commits.load(), static_cast<uint64_t>(rounds));
}

}  // namespace
}  // namespace shardtx
