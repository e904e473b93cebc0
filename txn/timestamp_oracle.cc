#include "txn/timestamp_oracle.h"

#include <algorithm>

namespace shardtx::txn {

TimestampOracle::TimestampOracle(Timestamp max_ts) : last_(max_ts), visible_(max_ts) {}

void TimestampOracle::Recovered(Timestamp max_ts) {
  MutexLock l(&mu_);
  last_ = std::max(last_, max_ts);
  visible_.store(last_, std::memory_order_release);
  window_.clear();
}

void TimestampOracle::RaiseTo(Timestamp ts) {
  MutexLock l(&mu_);
  if (ts <= last_) return;
  if (window_.empty()) {  // nothing in flight: jump
    last_ = ts;
    visible_.store(ts, std::memory_order_release);
    if (waiters_ > 0) cv_.SignalAll();
    return;
  }
  while (last_ < ts) {
    window_.push_back(true);
    ++last_;
  }
  AdvanceLocked();
}

Timestamp TimestampOracle::Assign() {
  MutexLock l(&mu_);
  window_.push_back(false);
  return ++last_;
}

void TimestampOracle::FinishLocked(Timestamp ts) {
  const Timestamp v = visible_.load(std::memory_order_relaxed);
  if (ts <= v || ts > last_) return;
  window_[ts - v - 1] = true;
}

void TimestampOracle::AdvanceLocked() {
  Timestamp v = visible_.load(std::memory_order_relaxed);
  const Timestamp before = v;
  while (!window_.empty() && window_.front()) {
    window_.pop_front();
    ++v;
  }
  if (v != before) {
    visible_.store(v, std::memory_order_release);
    if (waiters_ > 0) cv_.SignalAll();
  }
}

void TimestampOracle::Finish(Timestamp ts) {
  MutexLock l(&mu_);
  FinishLocked(ts);
  AdvanceLocked();
}

void TimestampOracle::FinishMany(const std::vector<Timestamp>& ts) {
  MutexLock l(&mu_);
  for (Timestamp t : ts) FinishLocked(t);
  AdvanceLocked();
}

void TimestampOracle::WaitVisible(Timestamp ts) {
  if (visible() >= ts) return;
  MutexLock l(&mu_);
  ++waiters_;
  while (visible_.load(std::memory_order_relaxed) < ts) cv_.Wait();
  --waiters_;
}

}  // namespace shardtx::txn
