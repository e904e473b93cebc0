#include "txn/timestamp_oracle.h"

namespace shardtx::txn {

TimestampOracle::TimestampOracle(Timestamp max_ts) : last_(max_ts), visible_(max_ts) {}

Timestamp TimestampOracle::Assign() {
  MutexLock l(&mu_);
  window_.push_back(false);
  return ++last_;
}

void TimestampOracle::FinishLocked(Timestamp ts) {
  if (ts <= visible_ || ts > last_) return;
  window_[ts - visible_ - 1] = true;
}

void TimestampOracle::AdvanceLocked() {
  bool advanced = false;
  while (!window_.empty() && window_.front()) {
    window_.pop_front();
    ++visible_;
    advanced = true;
  }
  if (advanced && waiters_ > 0) cv_.SignalAll();
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

Timestamp TimestampOracle::visible() const {
  MutexLock l(&mu_);
  return visible_;
}

Timestamp TimestampOracle::BeginSnapshot() {
  MutexLock l(&mu_);
  ++snapshots_[visible_];
  return visible_;
}

void TimestampOracle::EndSnapshot(Timestamp ts) {
  MutexLock l(&mu_);
  auto it = snapshots_.find(ts);
  if (it != snapshots_.end() && --it->second == 0) snapshots_.erase(it);
}

Timestamp TimestampOracle::OldestSnapshot() const {
  MutexLock l(&mu_);
  return snapshots_.empty() ? visible_ : snapshots_.begin()->first;
}

void TimestampOracle::WaitVisible(Timestamp ts) {
  MutexLock l(&mu_);
  if (visible_ >= ts) return;
  ++waiters_;
  while (visible_ < ts) cv_.Wait();
  --waiters_;
}

}  // namespace shardtx::txn
