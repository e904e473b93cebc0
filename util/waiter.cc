#include "util/waiter.h"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace shardtx {

namespace {

#if defined(__linux__)
// A raw futex, not std::atomic::wait/notify: the wake may reach an address whose waiter has
// already returned, which the futex tolerates (a spurious wake-up of whoever reuses it, and
// every futex user loops on its condition) but a member call on a dead object does not.
void FutexWait(std::atomic<uint32_t>* word, uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr,
          nullptr, 0);
}
void FutexWakeOne(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr,
          0);
}
#else
// std::atomic::notify_one would be a member call on a Waiter that may be gone (see above).
#error "util/waiter.cc needs a futex (Linux); port FutexWait/FutexWakeOne first"
#endif

}  // namespace

void Waiter::Wait() {
  while (woken_.load(std::memory_order_acquire) == 0) FutexWait(&woken_, 0);
  // Read the children before waking them: after Release a child may be gone, and this
  // waiter's own frame must stay valid until both are read.
  Waiter* const a = children_[0];
  Waiter* const b = children_[1];
  if (a != nullptr) Release(a);
  if (b != nullptr) Release(b);
}

void Waiter::Release(Waiter* w) {
  std::atomic<uint32_t>* const word = &w->woken_;
  word->store(1, std::memory_order_release);
  FutexWakeOne(word);
}

void Waiter::WakeAll(Waiter* head) {
  if (head == nullptr) return;
  // Breadth-first: the i-th waiter of the list gets the (2i+1)-th and (2i+2)-th as children.
  // Nobody is woken yet, so every node is still alive and only this thread touches it.
  Waiter* parent = head;
  int slot = 0;
  for (Waiter* child = head->next; child != nullptr; child = child->next) {
    parent->children_[slot] = child;
    if (++slot == 2) {
      slot = 0;
      parent = parent->next;
    }
  }
  Release(head);
}

}  // namespace shardtx
