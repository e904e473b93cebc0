// Transaction::CommitAsync: outcomes and visibility at callback time, exactly-once callbacks,
// synchronous errors, back-pressure, a failing log, Close draining, and callbacks that commit.
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "shardtx/database.h"
#include "tests/txn/fault_db_test.h"

namespace shardtx {
namespace {

// A count that threads can wait on (std::mutex: see the style guide on absl::Mutex and TSan).
class Count {
 public:
  void Add(int n = 1) {
    std::lock_guard<std::mutex> l(mu_);
    n_ += n;
    cv_.notify_all();
  }
  void WaitFor(int target) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return n_ >= target; });
  }
  int Get() {
    std::lock_guard<std::mutex> l(mu_);
    return n_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int n_ = 0;
};

class AsyncCommitTest : public testing::FaultDbTest {
 protected:
  Options OneShard() {
    Options o = Opts(1);
    o.range_split_points.clear();
    o.partitioning = Options::Partitioning::kHash;
    return o;
  }
  absl::StatusOr<std::string> Read(const std::string& key) { return db_->Begin()->Get(key); }
};

TEST_F(AsyncCommitTest, CallbackSeesTheCommitDurableAndVisible) {
  Open(OneShard());
  auto t = db_->Begin();
  ASSERT_TRUE(t->Put("k", "v").ok());
  Count done;
  absl::Status outcome = absl::UnknownError("not called");
  absl::StatusOr<std::string> seen;
  uint64_t fsyncs_at_callback = 0;
  ASSERT_TRUE(t->CommitAsync([&](absl::Status s) {
                 outcome = s;
                 seen = Read("k");  // a transaction begun in the callback sees it
                 fsyncs_at_callback = db_->GetStats().fsyncs;
                 done.Add();
               }).ok());
  const uint64_t ts = t->commit_timestamp();
  EXPECT_GT(ts, 0u);
  t.reset();  // the Transaction may go at once
  done.WaitFor(1);
  EXPECT_TRUE(outcome.ok()) << outcome;
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_EQ(*seen, "v");
  EXPECT_GE(fsyncs_at_callback, 1u) << "completed before any fsync";
  // Durable: a power cut now keeps it.
  CrashAndReopen();
  auto after = Read("k");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, "v");
}

TEST_F(AsyncCommitTest, ReadOnlyCompletesOnTheCallersThreadBeforeReturning) {
  Open(OneShard());
  auto t = db_->Begin();
  EXPECT_FALSE(t->Get("absent").ok());
  bool called = false;
  const std::thread::id caller = std::this_thread::get_id();
  ASSERT_TRUE(t->CommitAsync([&](absl::Status s) {
                 EXPECT_TRUE(s.ok());
                 EXPECT_EQ(std::this_thread::get_id(), caller);
                 called = true;
               }).ok());
  EXPECT_TRUE(called);
}

TEST_F(AsyncCommitTest, EveryCallbackRunsExactlyOnceUnderManyThreads) {
  Open(OneShard());
  constexpr int kThreads = 8, kPerThread = 150, kTotal = kThreads * kPerThread;
  std::vector<std::atomic<int>> calls(kTotal);
  Count done;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int n = t * kPerThread + i;
        auto txn = db_->Begin();
        ASSERT_TRUE(txn->Put(absl::StrCat("key", n), absl::StrCat(n)).ok());
        ASSERT_TRUE(txn->CommitAsync([&, n](absl::Status s) {
                         EXPECT_TRUE(s.ok()) << s;
                         calls[n].fetch_add(1);
                         done.Add();
                       })
                        .ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  done.WaitFor(kTotal);
  for (int n = 0; n < kTotal; ++n) ASSERT_EQ(calls[n].load(), 1) << n;
  for (int n = 0; n < kTotal; n += 37) EXPECT_EQ(*Read(absl::StrCat("key", n)), absl::StrCat(n));
  ASSERT_TRUE(db_->Close().ok());
  for (int n = 0; n < kTotal; ++n) ASSERT_EQ(calls[n].load(), 1) << n;  // and never again
  Stats st = db_->GetStats();
  EXPECT_EQ(st.async_commits, static_cast<uint64_t>(kTotal));
  EXPECT_GE(st.async_batches, 1u);
  EXPECT_LE(st.async_batches, static_cast<uint64_t>(kTotal));
}

TEST_F(AsyncCommitTest, ConflictIsReturnedAtOnceAndNoCallbackRuns) {
  Open(OneShard());
  auto loser = db_->Begin();
  auto winner = db_->Begin();
  ASSERT_TRUE(winner->Put("k", "winner").ok());
  ASSERT_TRUE(winner->Commit().ok());
  ASSERT_TRUE(loser->Put("k", "loser").ok());
  std::atomic<int> called{0};
  absl::Status s = loser->CommitAsync([&](absl::Status) { called++; });
  EXPECT_TRUE(absl::IsAborted(s)) << s;
  EXPECT_FALSE(loser->Put("x", "y").ok()) << "the transaction is over";
  ASSERT_TRUE(db_->Close().ok());  // drains every accepted CommitAsync
  EXPECT_EQ(called.load(), 0);
  EXPECT_EQ(db_->GetStats().aborts_write_conflict, 1u);
}

TEST_F(AsyncCommitTest, TooLargeIsReturnedAtOnce) {
  Options o = OneShard();
  o.max_txn_bytes = 1024;
  Open(o);
  auto t = db_->Begin();
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(t->Put(absl::StrCat("k", i), "0123456789").ok());
  std::atomic<int> called{0};
  absl::Status s = t->CommitAsync([&](absl::Status) { called++; });
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  ASSERT_TRUE(db_->Close().ok());
  EXPECT_EQ(called.load(), 0);
}

// With max_async_commits = 8 and the first callback held, exactly 8 commits are accepted: the
// ninth CommitAsync waits for a slot, and goes on once the callback returns.
TEST_F(AsyncCommitTest, BackPressureBoundsCommitsInFlight) {
  Options o = OneShard();
  o.max_async_commits = 8;
  Open(o);
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  bool open = false;
  std::atomic<int> returned{0};
  Count done;
  constexpr int kCommits = 20;
  std::thread submitter([&] {
    for (int i = 0; i < kCommits; ++i) {
      auto t = db_->Begin();
      ASSERT_TRUE(t->Put(absl::StrCat("k", i), "v").ok());
      ASSERT_TRUE(t->CommitAsync([&, i](absl::Status s) {
                     EXPECT_TRUE(s.ok());
                     if (i == 0) {
                       std::unique_lock<std::mutex> l(gate_mu);
                       gate_cv.wait(l, [&] { return open; });
                     }
                     done.Add();
                   }).ok());
      returned++;
    }
  });
  // The ninth call announces its wait in the stats before it blocks.
  while (db_->GetStats().async_backpressure_waits == 0) std::this_thread::yield();
  EXPECT_EQ(returned.load(), 8);
  EXPECT_EQ(done.Get(), 0);
  {
    std::lock_guard<std::mutex> l(gate_mu);
    open = true;
  }
  gate_cv.notify_all();
  submitter.join();
  done.WaitFor(kCommits);
  EXPECT_EQ(returned.load(), kCommits);
}

// A callback's own CommitAsync never waits for a slot, even at the limit (its slot is freed
// only after it returns).
TEST_F(AsyncCommitTest, CommitAsyncFromACallbackNeverBlocks) {
  Options o = OneShard();
  o.max_async_commits = 1;
  Open(o);
  constexpr int kChain = 50;
  Count done;
  std::function<void(int)> commit_next = [&](int i) {
    auto t = db_->Begin();
    if (i > 0) {  // the previous link is visible here
      auto prev = t->Get(absl::StrCat("link", i - 1));
      EXPECT_TRUE(prev.ok()) << prev.status();
    }
    ASSERT_TRUE(t->Put(absl::StrCat("link", i), "v").ok());
    ASSERT_TRUE(t->CommitAsync([&, i](absl::Status s) {
                   EXPECT_TRUE(s.ok()) << s;
                   if (i + 1 < kChain) {
                     commit_next(i + 1);
                   } else {
                     done.Add();
                   }
                 }).ok());
  };
  commit_next(0);
  done.WaitFor(1);
  EXPECT_TRUE(Read(absl::StrCat("link", kChain - 1)).ok());
}

// A failed fsync: every accepted commit's callback gets the error, exactly once; none of their
// writes is ever visible; later commits fail at once.
TEST_F(AsyncCommitTest, FailedFsyncFailsEveryPendingCommit) {
  Open(OneShard());
  env_.FailSyncAfter(1, /*persistent=*/true);
  constexpr int kThreads = 4, kPerThread = 50, kTotal = kThreads * kPerThread;
  std::vector<std::atomic<int>> calls(kTotal);
  std::atomic<int> accepted{0}, refused{0};
  Count done;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int n = t * kPerThread + i;
        auto txn = db_->Begin();
        ASSERT_TRUE(txn->Put(absl::StrCat("key", n), "v").ok());
        absl::Status s = txn->CommitAsync([&, n](absl::Status s) {
          EXPECT_FALSE(s.ok());
          // Not visible, even to a transaction begun in the callback.
          EXPECT_TRUE(absl::IsNotFound(Read(absl::StrCat("key", n)).status()));
          calls[n].fetch_add(1);
          done.Add();
        });
        if (s.ok()) {
          accepted++;
        } else {
          refused++;
          calls[n].fetch_add(100);  // refused: must never be called
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_GE(accepted.load(), 1);
  done.WaitFor(accepted.load());
  for (int n = 0; n < kTotal; n += 7) {
    EXPECT_TRUE(absl::IsNotFound(Read(absl::StrCat("key", n)).status())) << n;
  }
  EXPECT_FALSE(db_->Close().ok());
  for (int n = 0; n < kTotal; ++n) {
    ASSERT_TRUE(calls[n].load() == 1 || calls[n].load() == 100) << n << ": " << calls[n].load();
  }
  EXPECT_EQ(done.Get(), accepted.load());
  EXPECT_EQ(db_->GetStats().aborts_io_error, static_cast<uint64_t>(kTotal));
  env_.ClearFaults();
}

TEST_F(AsyncCommitTest, CloseWaitsForEveryAcceptedCallback) {
  Open(OneShard());
  constexpr int kCommits = 300;
  std::atomic<int> called{0};
  int accepted = 0;
  for (int i = 0; i < kCommits; ++i) {
    auto t = db_->Begin();
    ASSERT_TRUE(t->Put(absl::StrCat("k", i), "v").ok());
    if (t->CommitAsync([&](absl::Status s) {
           EXPECT_TRUE(s.ok()) << s;
           called++;
         }).ok()) {
      accepted++;
    }
  }
  ASSERT_TRUE(db_->Close().ok());
  EXPECT_EQ(accepted, kCommits);
  EXPECT_EQ(called.load(), kCommits);
  auto t = db_->Begin();
  ASSERT_TRUE(t->Put("late", "v").ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(t->CommitAsync([&](absl::Status) { called++; })));
  EXPECT_EQ(called.load(), kCommits);
}

// Two shards: the commit runs on a database thread; the outcome, a conflict included, goes to
// the callback; both shards' writes are visible at once when it runs.
TEST_F(AsyncCommitTest, CrossShardCommitCompletesThroughTheCallback) {
  Open(Opts(2));
  auto t = db_->Begin();
  ASSERT_TRUE(t->Put("apple", "1").ok());
  ASSERT_TRUE(t->Put("zebra", "2").ok());
  auto loser = db_->Begin();
  ASSERT_TRUE(loser->Put("apple", "x").ok());
  ASSERT_TRUE(loser->Put("zebra", "x").ok());
  Count done;
  absl::Status outcome = absl::UnknownError("not called");
  std::string apple, zebra;
  ASSERT_TRUE(t->CommitAsync([&](absl::Status s) {
                 outcome = s;
                 auto r = db_->Begin();
                 apple = r->Get("apple").value_or("");
                 zebra = r->Get("zebra").value_or("");
                 done.Add();
               }).ok());
  t.reset();
  done.WaitFor(1);
  EXPECT_TRUE(outcome.ok()) << outcome;
  EXPECT_EQ(apple, "1");
  EXPECT_EQ(zebra, "2");
  absl::Status lost;
  ASSERT_TRUE(loser
                  ->CommitAsync([&](absl::Status s) {
                    lost = s;
                    done.Add();
                  })
                  .ok());
  done.WaitFor(2);
  EXPECT_TRUE(absl::IsAborted(lost)) << lost;
  EXPECT_EQ(*Read("apple"), "1");
}

// A shard's log fails while the completion thread is busy in a callback that makes a blocking
// commit on another shard: that commit waits for visible_ts to pass the failed commit's
// timestamp, so the failed commit must be taken back (and its timestamp finished) by a thread
// other than the completion thread. Everything completes, the failed commit is never visible,
// and Close returns.
TEST_F(AsyncCommitTest, FailedLogIsTakenBackWhileACallbackCommitsOnAnotherShard) {
  Open(Opts(2));
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  bool open = false;
  Count entered, done;
  absl::Status blocking = absl::UnknownError("not run"), failed = absl::UnknownError("not called");
  auto first = db_->Begin();
  ASSERT_TRUE(first->Put("apple", "1").ok());
  ASSERT_TRUE(first
                  ->CommitAsync([&](absl::Status s) {
                    EXPECT_TRUE(s.ok()) << s;
                    entered.Add();
                    {
                      std::unique_lock<std::mutex> l(gate_mu);
                      gate_cv.wait(l, [&] { return open; });
                    }
                    // Durability kAsync: the commit does not wait for the (failing) fsync, only
                    // for visible_ts to reach its timestamp, which is above the failed one's.
                    TxnOptions o;
                    o.durability = Durability::kAsync;
                    auto t = db_->Begin(o);
                    EXPECT_TRUE(t->Put("zebra", "z").ok());
                    blocking = t->Commit();
                    done.Add();
                  })
                  .ok());
  entered.WaitFor(1);  // the completion thread is in the callback
  env_.FailSyncAfter(1, /*persistent=*/true);
  auto doomed = db_->Begin();
  ASSERT_TRUE(doomed->Put("banana", "b").ok());  // shard 0
  ASSERT_TRUE(doomed
                  ->CommitAsync([&](absl::Status s) {
                    failed = s;
                    EXPECT_TRUE(absl::IsNotFound(Read("banana").status()));
                    done.Add();
                  })
                  .ok());
  {
    std::lock_guard<std::mutex> l(gate_mu);
    open = true;
  }
  gate_cv.notify_all();
  done.WaitFor(2);
  EXPECT_FALSE(failed.ok());
  EXPECT_TRUE(absl::IsNotFound(Read("banana").status()));
  if (testing::TestLogLayout() == Options::LogLayout::kShared && !blocking.ok()) {
    // One log for both shards: shard 1's commit meets the failure too when it appends after
    // it. It fails with the log's error and has no effect (what matters here is that it
    // returned at all while the failed commit was taken back).
    EXPECT_TRUE(absl::IsInternal(blocking)) << blocking;
    EXPECT_TRUE(absl::IsNotFound(Read("zebra").status()));
  } else {
    EXPECT_TRUE(blocking.ok()) << blocking;
    EXPECT_EQ(*Read("zebra"), "z");
  }
  EXPECT_FALSE(db_->Close().ok());  // returns: the logs failed
  env_.ClearFaults();
}

// A read-only CommitAsync runs `done` on the caller's thread while holding its slot: with one
// slot, a CommitAsync inside that callback must not wait for it.
TEST_F(AsyncCommitTest, ReadOnlyCallbackCommitsAsyncAtTheLimit) {
  Options o = OneShard();
  o.max_async_commits = 1;
  Open(o);
  Count done;
  absl::Status inner = absl::UnknownError("not called");
  auto reader = db_->Begin();
  ASSERT_TRUE(reader
                  ->CommitAsync([&](absl::Status s) {
                    EXPECT_TRUE(s.ok()) << s;
                    auto t = db_->Begin();
                    EXPECT_TRUE(t->Put("k", "v").ok());
                    EXPECT_TRUE(t->CommitAsync([&](absl::Status s) {
                                   inner = s;
                                   done.Add();
                                 }).ok());
                  })
                  .ok());
  done.WaitFor(1);
  EXPECT_TRUE(inner.ok()) << inner;
  EXPECT_EQ(*Read("k"), "v");
  // The inner CommitAsync took a slot beyond the limit instead of waiting.
  EXPECT_EQ(db_->GetStats().async_backpressure_waits, 0u);
}

// The captures of a cross-shard commit's callback are destroyed on the pool thread before its
// slot is released and outside the pool's lock: a capture whose destructor commits (here: a
// cross-shard CommitAsync, queued to the same pool) works.
TEST_F(AsyncCommitTest, CallbackCapturesAreDestroyedOutsideThePoolLock) {
  Open(Opts(2));
  Count done;
  std::atomic<int> destroyed{0};
  auto cross_shard = [&](const std::string& value, Transaction::CommitCallback callback) {
    auto t = db_->Begin();
    EXPECT_TRUE(t->Put("apple", value).ok());
    EXPECT_TRUE(t->Put("zebra", value).ok());
    EXPECT_TRUE(t->CommitAsync(std::move(callback)).ok());
  };
  // Destroyed with the first callback's captures: commits again.
  std::shared_ptr<void> on_destroy(nullptr, [&](void*) {
    destroyed++;
    cross_shard("2", [&](absl::Status s) {
      EXPECT_TRUE(s.ok()) << s;
      done.Add();
    });
  });
  cross_shard("1", [&, on_destroy = std::move(on_destroy)](absl::Status s) {
    EXPECT_TRUE(s.ok()) << s;
    done.Add();
  });
  done.WaitFor(2);
  EXPECT_EQ(destroyed.load(), 1);
  EXPECT_EQ(*Read("apple"), "2");
  ASSERT_TRUE(db_->Close().ok());
}

TEST_F(AsyncCommitTest, MaxAsyncCommitsIsValidated) {
  Options o = OneShard();
  o.max_async_commits = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(Database::Open(o).status()));
}

}  // namespace
}  // namespace shardtx
