// Workloads: what one benchmark transaction does, generated from a seeded Rng, and its
// execution against any engine's Session. Every engine runs the same plans.
//
//   single    shards_per_txn keys of one shard (shard chosen uniformly): Get then Put each
//   cross     one key on each of shards_per_txn distinct shards: Get then Put each
//   mixed     cross with probability cross_pct %, else single
//   ycsb-a    one key over the whole key space: 50% Get, 50% blind Put
//   ycsb-b    the same, 95% Get, 5% Put
//   readonly  shards_per_txn Gets from one snapshot, keys anywhere
//   bank      two accounts: GetForUpdate both, move 1..100 from one to the other (at most
//             the source's balance), Put both
// Keys of a transaction are accessed in ascending order, so pessimistic engines never
// deadlock. Keys are chosen uniformly, or Zipfian within the chosen shard / key space.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "bench/txbench/config.h"
#include "bench/txbench/engine.h"
#include "bench/txbench/keyspace.h"

namespace txbench {

struct TxnPlan {
  enum class Kind { kReadWrite, kReadOnly, kUpdate, kBank };
  Kind kind = Kind::kReadWrite;
  std::vector<uint64_t> keys;  // key indexes, ascending
  bool cross_shard = false;
  bool bank_first_pays = true;  // bank: keys[0] pays keys[1], else the reverse
  uint32_t bank_amount = 0;
  // Operations (Get/Put) the transaction performs.
  uint64_t ops() const;
};

struct WorkloadParams {
  Workload workload = Workload::kSingle;
  uint32_t shards_per_txn = 2;
  double cross_pct = 10;
  uint32_t value_size = 100;
};

// Fills *plan (reusing its storage) with the next transaction.
void NextPlan(const WorkloadParams& params, const KeySpace& keys, Rng& rng, TxnPlan* plan);

// Runs one attempt of the plan in a transaction of `session`. On error the transaction is
// rolled back; kAborted means retry; kNotFound of a preloaded key and anything else are hard
// errors.
absl::Status Execute(const TxnPlan& plan, const KeySpace& keys, Session& session, Rng& rng,
                     uint32_t value_size);
// The same, ending with `commit(session)` instead of session.Commit() (asynchronous commits).
absl::Status Execute(const TxnPlan& plan, const KeySpace& keys, Session& session, Rng& rng,
                     uint32_t value_size, const std::function<absl::Status(Session&)>& commit);

// Loads every key with its initial value (bank: kInitialBalance), in transactions of up to
// `batch` keys of one shard. progress(done) is called after each batch.
absl::Status Preload(Engine& engine, const KeySpace& keys, bool bank, uint32_t value_size,
                     uint32_t batch, const std::function<void(uint64_t)>& progress);

// --replicas --workload=readonly: disjoint groups of k accounts, each on k distinct shards
// (REQUIRES: 2 <= k <= keys.num_shards()): group j holds the j-th key of shards j % S .. (j + k -
// 1) % S, for j below the smallest shard's key count. Flat: group j is [j * k, (j + 1) * k).
// Transfers inside a group keep its sum at k x kInitialBalance, which every read of the whole
// group at one snapshot must see.
std::vector<uint64_t> AccountGroups(const KeySpace& keys, uint32_t k);

// Bank: the sum of all balances, read in one read-only transaction.
absl::StatusOr<int64_t> BankTotal(Engine& engine, const KeySpace& keys);

}  // namespace txbench
