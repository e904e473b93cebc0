#include "util/wait_word.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace shardtx {
namespace {

// n threads sleep on one word, following the protocol of util/wait_word.h (read the word under
// the owner's lock, wait outside it); one Bump plus one WakeAll must release every one of them.
class WaitWordTest : public ::testing::TestWithParam<int> {};

TEST_P(WaitWordTest, OneWakeAllReleasesEveryWaiter) {
  const int n = GetParam();
  WaitWord word;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;  // the owner's condition
  int registered = 0;
  int returned = 0;
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&] {
      while (true) {
        uint32_t seen;
        {
          std::lock_guard<std::mutex> l(mu);
          if (done) break;
          seen = word.Load();
          ++registered;
        }
        cv.notify_all();
        word.Wait(seen);
      }
      std::lock_guard<std::mutex> l(mu);
      ++returned;
      cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return registered >= n; });
    done = true;
    word.Bump();
  }
  word.WakeAll();
  bool all;
  {
    std::unique_lock<std::mutex> l(mu);
    // A bound on a hang, not a timing assumption: a waiter the wake-up missed never returns.
    all = cv.wait_for(l, std::chrono::seconds(30), [&] { return returned == n; });
    EXPECT_EQ(returned, n) << "waiters never woken";
  }
  for (auto& t : threads) {
    if (all) {
      t.join();
    } else {
      t.detach();  // stuck for good; the process ends with the test binary
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Waiters, WaitWordTest, ::testing::Values(1, 2, 3, 16, 64, 100));

TEST(WaitWordTest, WaitOnAStaleValueReturnsAtOnce) {
  WaitWord word;
  const uint32_t seen = word.Load();
  word.Bump();
  word.Wait(seen);  // the word moved on: no sleep, no wake-up needed
  EXPECT_EQ(word.Load(), seen + 1);
}

}  // namespace
}  // namespace shardtx
