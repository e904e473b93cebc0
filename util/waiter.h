// Waiter: a one-shot wake-up for a thread blocked until another thread completes something it
// tracks (a WAL batch made durable, say), without a mutex on the wake-up path. The blocked
// thread links a Waiter that lives on its own stack into a list kept by the waker, then calls
// Wait(); the waker detaches the list and calls WakeAll().
//
// WakeAll wakes only the list's head itself. Every woken waiter then wakes (at most) two more
// before Wait() returns, so waking n threads costs the waker one wake-up instead of n, and the
// rest is spread over the woken threads (a binary tree, depth log2 n). A woken thread never
// needs a lock to learn that it was woken, so there is no convoy on the waker's mutex.
#pragma once

#include <atomic>
#include <cstdint>

namespace shardtx {

class Waiter {
 public:
  Waiter() = default;
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  // Blocks until a WakeAll over a list holding this waiter has reached it, then passes the
  // wake-up on to its share of that list. Returns at once if it was already woken.
  void Wait();

  // Wakes every waiter of the list starting at `head` (linked through `next`; may be null).
  // After this call the caller must not touch the list: its waiters may already be gone.
  static void WakeAll(Waiter* head);

  // Link of the waker's list. Owned by whoever owns the list until WakeAll.
  Waiter* next = nullptr;

 private:
  // Sets the flag and wakes the thread. The waiter may return (and its memory be reused) as
  // soon as the flag is set, so this touches nothing of `w` after that store.
  static void Release(Waiter* w);

  std::atomic<uint32_t> woken_{0};
  Waiter* children_[2] = {nullptr, nullptr};  // written by WakeAll before woken_ is set
};

}  // namespace shardtx
