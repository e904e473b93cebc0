// OpGate: admits calls until it is closed, and lets the closer wait for the calls admitted
// before. Admission is two atomic operations on one counter; no lock is taken.
#pragma once

#include <atomic>
#include <cstdint>

namespace shardtx {

class OpGate {
 public:
  // True if admitted: the caller must call Exit once done. False once Close has begun.
  bool Enter() {
    ops_.fetch_add(1, std::memory_order_seq_cst);
    if (closed_.load(std::memory_order_seq_cst)) {
      Exit();
      return false;
    }
    return true;
  }
  void Exit() {
    if (ops_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
        closed_.load(std::memory_order_seq_cst)) {
      ops_.notify_all();
    }
  }
  // Refuses later calls and waits until every admitted one has exited. Returns false if the
  // gate was closed before (by another caller, who did the waiting).
  bool CloseAndDrain() {
    if (closed_.exchange(true, std::memory_order_seq_cst)) return false;
    for (int64_t n = ops_.load(std::memory_order_seq_cst); n != 0;
         n = ops_.load(std::memory_order_seq_cst)) {
      ops_.wait(n, std::memory_order_seq_cst);
    }
    return true;
  }
  // Sequentially consistent, so that a caller that announced itself elsewhere (another
  // seq_cst counter) and then finds the gate open is ordered before the closer's check.
  bool closed() const { return closed_.load(std::memory_order_seq_cst); }

 private:
  std::atomic<int64_t> ops_{0};
  std::atomic<bool> closed_{false};
};

// Enter on construction; Exit on destruction if admitted.
class OpGuard {
 public:
  explicit OpGuard(OpGate* gate) : gate_(gate), admitted_(gate->Enter()) {}
  ~OpGuard() {
    if (admitted_) gate_->Exit();
  }
  OpGuard(const OpGuard&) = delete;
  OpGuard& operator=(const OpGuard&) = delete;
  bool admitted() const { return admitted_; }

 private:
  OpGate* const gate_;
  const bool admitted_;
};

}  // namespace shardtx
