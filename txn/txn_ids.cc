#include "txn/txn_ids.h"

#include <random>
#include <utility>

#include "absl/strings/str_cat.h"

namespace shardtx::txn {

TxnIds::TxnIds() {
  std::random_device rd;
  const uint64_t base = ((static_cast<uint64_t>(rd()) << 32) ^ rd()) & ~uint64_t{0xFFFFFFFF};
  next_.store(base + 1);
}

void TxnIds::UseNode(uint64_t node, uint64_t incarnation, Persist persist) {
  node_ = node;
  first_incarnation_ = incarnation;
  next_.store(incarnation << 32 | 1);
  durable_incarnation_.store(incarnation);
  MutexLock l(&mu_);
  persist_ = std::move(persist);
}

void TxnIds::SkipTo(uint32_t counter) {
  next_.store((next_.load() & ~uint64_t{0xFFFFFFFF}) | counter);
}

uint64_t TxnIds::Next() {
  const uint64_t v = next_.fetch_add(1, std::memory_order_relaxed);
  if (node_ == 0) return v;
  const uint64_t incarnation = v >> 32;
  if (incarnation > durable_incarnation_.load(std::memory_order_acquire) &&
      !PersistUpTo(incarnation)) {
    return 0;
  }
  return node_ << 48 | v;
}

bool TxnIds::PersistUpTo(uint64_t incarnation) {
  MutexLock l(&mu_);
  if (!error_.ok()) return false;
  if (incarnation <= durable_incarnation_.load()) return true;
  if (incarnation > kMaxIncarnation) {
    error_ = absl::ResourceExhaustedError(
        absl::StrCat("node ", node_, " has used all ", kMaxIncarnation,
                     " incarnations of its transaction ids (node:16|incarnation:16|counter:32)"));
    return false;
  }
  absl::Status s = persist_ ? persist_(incarnation) : absl::OkStatus();
  if (!s.ok()) {
    error_ = absl::Status(s.code(),
                          absl::StrCat("node ", node_, ": cannot record incarnation ", incarnation,
                                       " for new transaction ids: ", s.message()));
    return false;
  }
  durable_incarnation_.store(incarnation, std::memory_order_release);
  return true;
}

absl::Status TxnIds::error() const {
  MutexLock l(&mu_);
  return error_;
}

bool TxnIds::Own(uint64_t id) const {
  if (node_ == 0 || NodeOf(id) != node_) return false;
  const uint64_t incarnation = IncarnationOf(id);
  return incarnation >= first_incarnation_ && incarnation <= (next_.load() >> 32);
}

}  // namespace shardtx::txn
