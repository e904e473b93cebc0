// Many threads appending to one WalWriter through group commit, on the real POSIX Env: every
// acknowledged record is read back exactly once, at the LSN Append returned, with its content,
// and each thread's records in the order it appended them.
#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/wal/wal_test_util.h"
#include "util/coding.h"

namespace shardtx::wal {
namespace {

using testutil::Mix;
using testutil::OpenWriter;
using testutil::Payload;
using testutil::ReadLog;
using testutil::ReadResult;
using testutil::ScratchDir;
using testutil::SmallSegments;
using testutil::TestSeed;

constexpr int kThreads = 16;

// A payload that names its writer: thread, sequence number, then filler derived from both.
std::string ThreadPayload(uint64_t run, uint64_t thread, uint64_t seq) {
  const uint64_t key = Mix(run ^ (thread << 32) ^ seq);
  std::string s;
  PutFixed64(&s, thread);
  PutFixed64(&s, seq);
  s += Payload(key, key % 700);
  return s;
}

struct Written {
  Lsn lsn = 0;
  std::string payload;
};

// acks[thread][seq]: what each thread appended and was acknowledged.
using Acks = std::vector<std::vector<Written>>;

// Reads the log and checks it holds exactly the acknowledged records with LSN >= oldest, once
// each, at their LSNs, with their content, and LSNs without gaps.
void ExpectLogHoldsExactly(const std::string& dir, const std::vector<Acks>& runs, Lsn oldest,
                           Lsn next_lsn) {
  ReadResult r = ReadLog(dir);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_FALSE(r.tail.torn);
  ASSERT_EQ(r.records.size(), next_lsn - oldest);
  std::vector<const Written*> by_lsn(next_lsn, nullptr);
  for (const Acks& acks : runs) {
    for (const auto& thread : acks) {
      for (const Written& w : thread) {
        ASSERT_LT(w.lsn, next_lsn);
        ASSERT_EQ(by_lsn[w.lsn], nullptr) << "LSN " << w.lsn << " acknowledged twice";
        by_lsn[w.lsn] = &w;
      }
    }
  }
  for (size_t i = 0; i < r.records.size(); ++i) {
    const testutil::Record& rec = r.records[i];
    ASSERT_EQ(rec.lsn, oldest + i) << "LSNs must be consecutive";
    const Written* w = by_lsn[rec.lsn];
    ASSERT_NE(w, nullptr) << "LSN " << rec.lsn << " was never acknowledged";
    ASSERT_EQ(rec.payload, w->payload) << "LSN " << rec.lsn;
    ASSERT_GE(rec.payload.size(), 16u);
    EXPECT_EQ(rec.type, 1 + DecodeFixed64(rec.payload.data()) % 255);
  }
  // Every acknowledged record at or above `oldest` was read (the count and uniqueness above make
  // this exact); a thread's records appear in the order it appended them.
  for (const Acks& acks : runs) {
    for (const auto& thread : acks) {
      for (size_t seq = 1; seq < thread.size(); ++seq) {
        ASSERT_LT(thread[seq - 1].lsn, thread[seq].lsn);
      }
    }
  }
}

TEST(WalConcurrency, SyncWritersEveryAcknowledgedRecordIsReadOnceInOrder) {
  constexpr int kPerThread = 120;
  ScratchDir dir;
  std::vector<Acks> runs;
  Lsn next_lsn = 1;
  for (uint64_t run = 0; run < 2; ++run) {  // the second run reopens the log
    SCOPED_TRACE(absl::StrCat("run ", run));
    auto w = OpenWriter(dir.path(), SmallSegments(), Env::Default());
    ASSERT_NE(w, nullptr);
    Acks acks(kThreads);
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int seq = 0; seq < kPerThread; ++seq) {
          std::string payload = ThreadPayload(run, t, seq);
          absl::StatusOr<Lsn> lsn = w->Append(1 + t % 255, payload, Durability::kSync);
          if (!lsn.ok() || !w->WaitDurable(*lsn).ok() || w->durable_lsn() < *lsn) {
            failures.fetch_add(1);
            return;
          }
          acks[t].push_back({*lsn, std::move(payload)});
        }
      });
    }
    for (auto& th : threads) th.join();
    ASSERT_EQ(failures.load(), 0);
    const WalStats stats = w->Stats();
    EXPECT_EQ(stats.durable_lsn, next_lsn - 1 + kThreads * kPerThread);
    // Group commit: with sixteen threads waiting, some sync covers more than one record.
    EXPECT_GT(stats.max_records_per_fsync, 1u) << "fsyncs " << stats.fsyncs;
    std::fprintf(stderr, "[ stats    ] %llu records, %llu fsyncs, %.1f records/fsync (max %llu)\n",
                 static_cast<unsigned long long>(stats.appends),
                 static_cast<unsigned long long>(stats.fsyncs), stats.records_per_fsync,
                 static_cast<unsigned long long>(stats.max_records_per_fsync));
    ASSERT_TRUE(w->Close().ok());
    next_lsn += kThreads * kPerThread;
    runs.push_back(std::move(acks));
    ExpectLogHoldsExactly(dir.path(), runs, 1, next_lsn);
  }
}

TEST(WalConcurrency, MixedDurabilityWritersWithConcurrentTruncation) {
  const uint64_t seed = TestSeed(31337);
  constexpr int kPerThread = 200;
  ScratchDir dir;
  WalOptions options = SmallSegments();
  options.recycle_segments = true;
  options.buffer_limit = 64 << 10;  // back-pressure too
  auto w = OpenWriter(dir.path(), options, Env::Default());
  ASSERT_NE(w, nullptr);

  Acks acks(kThreads);
  std::atomic<int> failures{0};
  std::atomic<int> running{kThreads};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(seed + t);
      for (int seq = 0; seq < kPerThread; ++seq) {
        std::string payload = ThreadPayload(seed, t, seq);
        const Durability d = static_cast<Durability>(rng() % 3);
        absl::StatusOr<Lsn> lsn = w->Append(1 + t % 255, payload, d);
        if (!lsn.ok() || (d == Durability::kSync && !w->WaitDurable(*lsn).ok())) {
          failures.fetch_add(1);
          break;
        }
        acks[t].push_back({*lsn, std::move(payload)});
      }
      running.fetch_sub(1);
    });
  }
  // A checkpointer truncating behind the durable LSN while the writers run.
  int truncations = 0;
  std::thread truncator([&] {
    while (running.load() > 0) {
      const Lsn durable = w->durable_lsn();
      if (durable > 200 && !w->Truncate(durable - 200).ok()) failures.fetch_add(1);
      ++truncations;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  for (auto& th : threads) th.join();
  truncator.join();
  ASSERT_EQ(failures.load(), 0);
  ASSERT_TRUE(w->Sync().ok());
  const Lsn oldest = w->oldest_lsn();
  const WalStats stats = w->Stats();
  ASSERT_TRUE(w->Close().ok());
  EXPECT_GT(oldest, 1u) << "truncation should have freed segments (" << truncations << " calls)";
  EXPECT_GT(stats.segments_recycled, 0u);

  // Drop the acknowledgements below `oldest`: those records were truncated away.
  for (auto& thread : acks) {
    std::erase_if(thread, [&](const Written& x) { return x.lsn < oldest; });
  }
  ExpectLogHoldsExactly(dir.path(), {acks}, oldest, 1 + kThreads * kPerThread);
}


// kNone and kAsync records need no later call to go out: the flusher is woken for them, and
// whether it was asleep, about to sleep, or busy with the previous one, none is left waiting
// in the buffer (a lost wake-up leaves one there, and the wait below runs into its deadline).
// Two appenders make the flusher's state at each append vary.
TEST(WalGroupCommit, NoSyncAndAsyncRecordsGoOutWithoutBeingAsked) {
  ScratchDir dir;
  auto w = OpenWriter(dir.path(), SmallSegments(), Env::Default());
  ASSERT_NE(w, nullptr);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  auto until = [&](auto done) {
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::yield();
    }
    return true;
  };
  std::atomic<bool> stuck{false};
  auto appender = [&](int id) {
    for (int i = 0; i < 1500 && !stuck; ++i) {
      const bool async = (i + id) % 3 == 0;
      absl::StatusOr<Lsn> lsn =
          w->Append(1, Payload(i, 50), async ? Durability::kAsync : Durability::kNone);
      ASSERT_TRUE(lsn.ok()) << lsn.status();
      const bool out = async ? until([&] { return w->durable_lsn() >= *lsn; })
                             : until([&] { return w->Stats().written_lsn >= *lsn; });
      if (!out) {
        stuck = true;
        ADD_FAILURE() << "record " << *lsn << (async ? " (async)" : " (none)")
                      << " was never written";
      }
    }
  };
  std::thread other(appender, 1);
  appender(0);
  other.join();
  ASSERT_TRUE(w->Close().ok());
}

// Records appended kDeferred wake nobody: they wait in the buffer and go out, in one write and
// one sync, with the next batch someone asks for.
TEST(WalGroupCommit, DeferredRecordsGoOutWithTheNextSyncAndWakeNobody) {
  ScratchDir dir;
  auto w = OpenWriter(dir.path(), SmallSegments(), Env::Default());
  ASSERT_NE(w, nullptr);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(w->Append(1, Payload(i, 100), Durability::kDeferred).ok());
  }
  // Give a wrongly woken flusher every chance to write them (correct code passes regardless).
  for (int i = 0; i < 2000 && w->Stats().writes == 0; ++i) std::this_thread::yield();
  EXPECT_EQ(w->Stats().writes, 0u) << "a deferred append woke the flusher";
  absl::StatusOr<Lsn> last = w->Append(2, Payload(10, 100), Durability::kSync);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(*last, 11u);
  ASSERT_TRUE(w->WaitDurable(*last).ok());
  const WalStats stats = w->Stats();
  EXPECT_EQ(stats.durable_lsn, 11u);
  // Had a deferred append woken the flusher, it would have taken a partial batch first.
  EXPECT_EQ(stats.writes, 1u);
  EXPECT_EQ(stats.fsyncs, 1u);
  EXPECT_EQ(stats.max_records_per_fsync, 11u);
  ASSERT_TRUE(w->Close().ok());
  ReadResult r = ReadLog(dir.path());
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.records.size(), 11u);
  for (int i = 0; i < 11; ++i) EXPECT_EQ(r.records[i].payload, Payload(i, 100)) << i;
}

// A committer alone writes and syncs its own batch (no hand-off to the flusher thread), and
// the on_durable callback runs before any WaitDurable it covers returns.
TEST(WalGroupCommit, ALoneCommitterSyncsOnItsOwnThreadAfterTheCallback) {
  ScratchDir dir;
  std::atomic<Lsn> reported{0};
  std::atomic<int> calls_on_this_thread{0};
  const std::thread::id me = std::this_thread::get_id();
  WalOptions options = SmallSegments();
  options.on_durable = [&](Lsn lsn) {
    Lsn old = reported.load();
    while (lsn > old && !reported.compare_exchange_weak(old, lsn)) {
    }
    if (std::this_thread::get_id() == me) calls_on_this_thread.fetch_add(1);
  };
  auto w = OpenWriter(dir.path(), options, Env::Default());
  ASSERT_NE(w, nullptr);
  constexpr int kRecords = 40;
  for (int i = 0; i < kRecords; ++i) {
    absl::StatusOr<Lsn> lsn = w->Append(1, Payload(i, 64), Durability::kSync);
    ASSERT_TRUE(lsn.ok());
    ASSERT_TRUE(w->WaitDurable(*lsn).ok());
    ASSERT_GE(reported.load(), *lsn) << "WaitDurable returned before on_durable covered it";
  }
  const WalStats stats = w->Stats();
  EXPECT_EQ(stats.fsyncs, static_cast<uint64_t>(kRecords));
  // The flusher takes the token only to preallocate the spare segment after the first batch;
  // a sync that met it busy goes through it (at most a couple of times).
  EXPECT_GE(stats.inline_syncs, static_cast<uint64_t>(kRecords - 2));
  EXPECT_GE(calls_on_this_thread.load(), kRecords - 2);
}

// Under concurrency every WaitDurable still returns only after on_durable covered its record.
TEST(WalGroupCommit, OnDurableRunsBeforeEveryWaiterReturns) {
  ScratchDir dir;
  std::atomic<Lsn> reported{0};
  WalOptions options = SmallSegments();
  options.on_durable = [&](Lsn lsn) {
    Lsn old = reported.load();
    while (lsn > old && !reported.compare_exchange_weak(old, lsn)) {
    }
  };
  auto w = OpenWriter(dir.path(), options, Env::Default());
  ASSERT_NE(w, nullptr);
  std::atomic<int> early{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        absl::StatusOr<Lsn> lsn = w->Append(1, Payload(t * 1000 + i, 64), Durability::kSync);
        if (!lsn.ok() || !w->WaitDurable(*lsn).ok()) {
          failures.fetch_add(1);
          return;
        }
        if (reported.load() < *lsn) early.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(early.load(), 0);
  EXPECT_GT(w->Stats().max_records_per_fsync, 1u);
}

}  // namespace
}  // namespace shardtx::wal
