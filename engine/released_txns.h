// ReleasedTxns: which transactions a replicated shard's released Raft entries committed (plan §6
// "kUnknown / GetOutcome", step 6). Every replica fills it the same way, in release order: the
// txn id of each kCommit record (and of each kCommitPrepared: a cross-shard transaction's part,
// issue 17) in a kRaftEntry it redoes or completes (ids 0 are skipped). It is
// bounded: a FIFO window of the last `window` ids, and for each id prefix (the high 32 bits:
// node:16|incarnation:16 in a replicated database's ids) the largest low half (counter) evicted
// from the window, its horizon. Checkpoints keep it in the store's table "engine.released"
// (incrementally); recovery loads the table, then adds the ids of the entries it redoes above
// the store's applied LSN, so it is rebuilt exactly, also from a snapshot (an LMDB copy plus a
// WAL tail). Not thread-safe: the shard keeps it under its commit_mu.
//
// Table rows (keys big-endian, so LMDB's order is the window's):
//   'w' u64 sequence -> u64 txn id (little-endian)    one per id in the window
//   'h' u32 prefix   -> u32 horizon (little-endian)   one per prefix that had an id evicted
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "engine/types.h"

namespace shardtx::engine {

class ReleasedTxns {
 public:
  static constexpr char kTable[] = "engine.released";

  explicit ReleasedTxns(size_t window) : window_(window == 0 ? 1 : window) {}

  enum class State {
    kReleased,      // in the window: an entry committing it was released here
    kMaybeEvicted,  // not in the window, but its counter is at or below its prefix's horizon
    kNotReleased,   // not released here: counter above the horizon (or no horizon)
  };
  State Lookup(uint64_t txn_id) const;

  // Records that a released entry committed `txn_id` (0 is ignored), evicting the oldest id
  // once the window is full.
  void Add(uint64_t txn_id);

  // Replaces the contents with the table's rows (Open). kDataLoss on a malformed row.
  absl::Status Load(uint32_t shard, const std::vector<std::pair<std::string, std::string>>& rows);

  // At a checkpoint's freeze: the rows that bring the table from the last committed
  // checkpoint's contents to the current ones (window rows added and evicted since; every
  // horizon row, one per prefix that ever had an id evicted). CheckpointCommitted() once that
  // checkpoint is in the store; if it fails, the next call writes the same changes again.
  void CheckpointRows(std::vector<TableWrite>* out);
  void CheckpointCommitted();

  size_t size() const { return ids_.size(); }
  uint64_t evicted() const { return evicted_; }

 private:
  void Evict();

  size_t window_;             // not const: a shard's ReplaceState moves a recovered window in
  uint64_t first_seq_ = 1;    // sequence of ids_.front()
  std::deque<uint64_t> ids_;  // sequences first_seq_ .. first_seq_ + size - 1
  absl::flat_hash_set<uint64_t> present_;
  absl::flat_hash_map<uint32_t, uint32_t> horizon_;
  uint64_t evicted_ = 0;
  // What the store holds (the last committed checkpoint): sequences [stored_first_,
  // stored_next_), and what the checkpoint in progress will make it.
  uint64_t stored_first_ = 1, stored_next_ = 1;
  uint64_t taking_first_ = 1, taking_next_ = 1;
};

}  // namespace shardtx::engine
