// TxnIds: transaction ids. Unreplicated: a random high half drawn at Open plus a counter, as
// always. Replicated (plan §6 "Txn ids"): node:16 | incarnation:16 | counter:32, unique across
// the cluster's nodes (node), their restarts (the incarnation, bumped and synced in the node
// manifest by every Open) and leaders (ids do not depend on terms).
//
// Counter wrap: the counter is the low half of one 48-bit (incarnation, counter) sequence, so
// the 2^32nd id of an incarnation carries into the next incarnation; before any id of a new
// incarnation is handed out, `persist` records that incarnation durably (the node manifest), so
// that a later Open starts above it. When it cannot (persist failed, or incarnation 65,535 is
// used up) no further id is given: Next() returns 0 and error() says why.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "util/mutex.h"

namespace shardtx::txn {

class TxnIds {
 public:
  static constexpr uint64_t kMaxNode = 0xFFFF;
  static constexpr uint64_t kMaxIncarnation = 0xFFFF;

  static uint64_t Make(uint64_t node, uint64_t incarnation, uint32_t counter) {
    return node << 48 | incarnation << 32 | counter;
  }
  static uint64_t NodeOf(uint64_t id) { return id >> 48; }
  static uint64_t IncarnationOf(uint64_t id) { return (id >> 32) & 0xFFFF; }
  static uint32_t CounterOf(uint64_t id) { return static_cast<uint32_t>(id); }

  // Unreplicated ids: a random high half, the counter from 1.
  TxnIds();

  // Records `incarnation` durably (called with no id of it handed out yet, one call at a time).
  using Persist = std::function<absl::Status(uint64_t incarnation)>;
  // From now on, replicated ids of `node` (1..kMaxNode) starting at `incarnation`
  // (1..kMaxIncarnation, already persisted), counter 1. REQUIRES: before any Next().
  void UseNode(uint64_t node, uint64_t incarnation, Persist persist);

  // A new id, never 0; 0 when no id can be given (replicated only: see error()). Thread-safe.
  uint64_t Next();
  absl::Status error() const;

  bool replicated() const { return node_ != 0; }
  // `id` is one this object may have handed out or may still hand out: this node, an
  // incarnation from UseNode's on (replicated only; false otherwise).
  bool Own(uint64_t id) const;

  // Internal (tests of the wrap): the next id's counter in the current incarnation is
  // `counter`. REQUIRES: replicated, before any Next().
  void SkipTo(uint32_t counter);

 private:
  bool PersistUpTo(uint64_t incarnation);

  uint64_t node_ = 0;
  uint64_t first_incarnation_ = 0;
  // Unreplicated: the next id. Replicated: incarnation << 32 | the next counter.
  std::atomic<uint64_t> next_{0};
  std::atomic<uint64_t> durable_incarnation_{0};
  mutable Mutex mu_;
  Persist persist_ ABSL_GUARDED_BY(mu_);
  absl::Status error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace shardtx::txn
