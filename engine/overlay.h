// Overlay: an in-memory, multi-version map of committed writes of one shard that are not yet
// (or only recently) in LMDB. Versions of a key are kept newest first; a reader picks the
// newest version whose commit timestamp is at or below its snapshot.
//
// Thread safety: all methods may be called concurrently. Writers are serialised by the shard's
// commit lock; a frozen overlay is never written again.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"
#include "engine/types.h"
#include "util/arena.h"

namespace shardtx::engine {

struct Version {
  Timestamp ts = 0;
  bool tombstone = false;
  absl::string_view value;  // owned by the overlay: valid as long as the overlay
};

// What a lookup found: nothing in this layer, a value, or a deletion.
struct Found {
  Timestamp ts = 0;
  bool tombstone = false;
  std::string value;
};

// One layer's entry as a scan merges it: views into the layer's own storage (an overlay's
// arena, or an LMDB snapshot's pages). A tombstone hides the key in older layers.
struct ScanEntry {
  absl::string_view key;
  absl::string_view value;
  bool tombstone = false;
};

class Overlay {
 public:
  Overlay() = default;
  Overlay(const Overlay&) = delete;
  Overlay& operator=(const Overlay&) = delete;

  // Adds a version (copying the key and value); `ts` must exceed every version already
  // present for `key`.
  void Add(absl::string_view key, Timestamp ts, bool tombstone, absl::string_view value) {
    Add(key, ts, tombstone, std::string(value));
  }
  // The same, taking the value over when it is large (more than Arena::kOwnBlock bytes): its
  // bytes are then not copied (nor allocated under the lock). A small value is copied.
  void Add(absl::string_view key, Timestamp ts, bool tombstone, std::string&& value);

  // Removes the version of `key` with exactly `ts`, if present (a commit that failed before
  // it became visible).
  void Remove(absl::string_view key, Timestamp ts);

  // The newest version of `key` with ts <= snapshot, if any.
  std::optional<Found> Get(absl::string_view key, Timestamp snapshot) const;
  // The commit timestamp of the newest version of `key` (any snapshot), or 0.
  Timestamp LatestTs(absl::string_view key) const;
  // True if some key in [lower, upper) (empty upper: unbounded) has a version newer than ts.
  bool AnyNewerInRange(absl::string_view lower, absl::string_view upper, Timestamp ts) const;

  // Appends to *out up to `limit` entries visible at `snapshot` with key >= from (or > from
  // when !inclusive), ascending, or key <= from descending when `reverse` (empty `from`: from
  // the end). A tombstone visible at the snapshot is returned as such so it can hide older
  // layers. Looks at no more than kScanWork keys (keys with no version visible at the
  // snapshot count too), so the shared lock is short. Sets *stopped_at to the last key looked
  // at when the scan stopped before the end of the overlay, else to nullopt. The keys and
  // values point into the overlay: valid as long as it lives, whatever is added meanwhile.
  static constexpr size_t kScanWork = 1024;
  void Scan(absl::string_view from, bool inclusive, bool reverse, size_t limit,
            Timestamp snapshot, std::vector<ScanEntry>* out,
            std::optional<absl::string_view>* stopped_at) const;

  // Calls fn(key, newest version) for every key in order after `*after` (from the first key
  // when `after` is null) until fn returns false. Returns true when it reached the end. Only
  // for frozen overlays; the lock is held for this call only, so a caller may resume later
  // (after taking other locks) from the last key it saw.
  template <class Fn>
  bool ForEachNewestAfter(const std::string* after, Fn fn) const {
    Order();
    std::shared_lock l(mu_);
    for (auto it = after == nullptr ? map_.begin() : map_.upper_bound(*after); it != map_.end();
         ++it) {
      if (!fn(absl::string_view(it->first), it->second->front())) return false;
    }
    return true;
  }

  uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
  Timestamp max_ts() const { return max_ts_.load(std::memory_order_relaxed); }
  // Whether a delete was ever added (a checkpoint then has deletes to remember).
  bool had_tombstones() const { return had_tombstones_.load(std::memory_order_relaxed); }

 private:
  using Chain = absl::InlinedVector<Version, 1>;  // newest first
  mutable std::shared_mutex mu_;
  // Keys and small values live in arena_, chains in chains_ and large values in values_ (a
  // deque never moves its elements, and a moved string keeps its bytes), so what a reader was
  // given stays put while the maps and the chains move entries around; all of it is freed with
  // the overlay.
  Arena arena_;
  std::deque<std::string> values_;
  std::deque<Chain> chains_;
  // Every key with a version is hashed in index_, for the point lookups of reads and commit
  // validation (one probe instead of a tree descent of key comparisons). The ordered map_ that
  // scans and checkpoints walk is brought up to date lazily (Order): Add, under the shard's
  // commit lock, only appends a new key to unordered_. Both maps name the same chain.
  absl::flat_hash_map<absl::string_view, Chain*> index_;
  mutable absl::btree_map<absl::string_view, Chain*> map_;
  // Keys added since the last Order, in no order; a key removed since is skipped by Order.
  mutable std::vector<absl::string_view> unordered_;
  mutable std::atomic<bool> has_unordered_{false};

  // Moves the keys of unordered_ into map_ (under the exclusive lock, if there are any), so
  // that map_ holds every key with a version as of the call. A key added afterwards has only
  // versions newer than every snapshot already visible: a scan at such a snapshot, or a
  // validation under the commit lock, misses nothing by not seeing it.
  void Order() const;
  std::atomic<uint64_t> bytes_{0};
  std::atomic<Timestamp> max_ts_{0};
  std::atomic<bool> had_tombstones_{false};
};

}  // namespace shardtx::engine
