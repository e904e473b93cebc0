// CheckpointedDeletes: the memory of keys that checkpoints deleted from LMDB, with each
// delete's commit timestamp. In LMDB a key deleted after a snapshot looks like one that never
// existed; conflict checks for snapshots older than the checkpoint need to tell them apart.
//
// Bounded: past `limit_bytes` the oldest deletes are forgotten, and the floor rises to the
// newest forgotten timestamp. Below the floor an absent key proves nothing: a check must
// assume a delete after its snapshot.
//
// Not thread-safe: the shard guards it with its view lock.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/strings/string_view.h"
#include "engine/types.h"

namespace shardtx::engine {

class CheckpointedDeletes {
 public:
  explicit CheckpointedDeletes(uint64_t limit_bytes) : limit_bytes_(limit_bytes) {}

  // Remembers deletes a checkpoint is about to apply (a newer delete of a key replaces an
  // older one), then forgets the oldest past the limit.
  void Remember(std::vector<std::pair<std::string, Timestamp>> deletes);

  // The timestamp of the remembered delete of `key`, or 0.
  Timestamp DeletedAt(absl::string_view key) const;
  // Whether a remembered delete of a key in [lower, upper) ("" upper: no bound) is newer than
  // `ts`.
  bool AnyDeletedAfter(absl::string_view lower, absl::string_view upper, Timestamp ts) const;
  // Deletes at or below the floor may have been forgotten.
  Timestamp floor() const { return floor_ts_; }
  // Treats every delete at or below `ts` as possibly forgotten (a store whose deletes were never
  // remembered here, as one a shard's ReplaceState installed).
  void RaiseFloor(Timestamp ts) { floor_ts_ = std::max(floor_ts_, ts); }

 private:
  // Counted per remembered delete besides its key: the map's and the queue's nodes, roughly.
  static constexpr uint64_t kEntryOverhead = 64;

  uint64_t limit_bytes_;  // not const: a shard's ReplaceState moves a new instance in
  absl::btree_map<std::string, Timestamp, std::less<>> by_key_;
  std::deque<std::pair<Timestamp, std::string>> order_;  // oldest remembered first
  uint64_t bytes_ = 0;
  Timestamp floor_ts_ = 0;
};

}  // namespace shardtx::engine
