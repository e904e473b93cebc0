// WaitWord: a futex word that any number of threads sleep on until its owner bumps it, so that
// one FUTEX_WAKE wakes them all (a WAL batch's committers, say). The woken threads take no lock
// to learn that they were woken: each rereads its own condition.
//
//   waiter (under the owner's lock):  seen = w.Load(); register; unlock; w.Wait(seen); recheck
//   owner  (under the same lock):     change the condition; w.Bump(); unlock; w.WakeAll()
#pragma once

#include <atomic>
#include <cstdint>

namespace shardtx {

class WaitWord {
 public:
  uint32_t Load() const { return word_.load(std::memory_order_acquire); }
  // Blocks while the word still equals `seen`. May return spuriously: callers loop.
  void Wait(uint32_t seen);
  void Bump() { word_.fetch_add(1, std::memory_order_release); }
  // Wakes every thread blocked in Wait. One system call, whatever their number.
  void WakeAll();

 private:
  std::atomic<uint32_t> word_{0};
};

}  // namespace shardtx
