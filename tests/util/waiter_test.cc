#include "util/waiter.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace shardtx {
namespace {

// n threads link their Waiters into one list; a single WakeAll must release every one of
// them, whatever the list's length (the wake-up is passed on through a tree of waiters).
class WaiterListTest : public ::testing::TestWithParam<int> {};

TEST_P(WaiterListTest, WakeAllReleasesEveryWaiterOfTheList) {
  const int n = GetParam();
  std::mutex mu;
  std::condition_variable cv;
  Waiter* list = nullptr;
  int linked = 0;
  int returned = 0;
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&] {
      Waiter w;
      {
        std::lock_guard<std::mutex> l(mu);
        w.next = list;
        list = &w;
        ++linked;
      }
      cv.notify_all();
      w.Wait();
      std::lock_guard<std::mutex> l(mu);
      ++returned;
      cv.notify_all();
    });
  }
  Waiter* head;
  {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return linked == n; });
    head = list;
    list = nullptr;
  }
  Waiter::WakeAll(head);
  bool all;
  {
    std::unique_lock<std::mutex> l(mu);
    // A bound on a hang, not a timing assumption: a waiter left out of the tree never returns.
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

INSTANTIATE_TEST_SUITE_P(ListLengths, WaiterListTest,
                         ::testing::Values(1, 2, 3, 4, 5, 6, 7, 8, 15, 16, 17, 64, 100));

TEST(WaiterTest, WaitAfterWakeReturnsAtOnce) {
  Waiter a, b;
  a.next = &b;
  Waiter::WakeAll(&a);
  a.Wait();  // passes the wake-up on to b
  b.Wait();
}

TEST(WaiterTest, WakeAllOfAnEmptyListIsANoOp) { Waiter::WakeAll(nullptr); }

}  // namespace
}  // namespace shardtx
