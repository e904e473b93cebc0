#include "engine/overlay.h"

#include <algorithm>
#include <iterator>
#include <mutex>

namespace shardtx::engine {
namespace {
// Rough per-version cost of the chain entry and the value string beyond the bytes themselves,
// and per-key cost of the two maps' entries and the chain.
constexpr uint64_t kVersionOverhead = 64;
constexpr uint64_t kKeyOverhead = 96;
}  // namespace

void Overlay::Add(absl::string_view key, Timestamp ts, bool tombstone, std::string&& value) {
  std::unique_lock l(mu_);
  uint64_t added = value.size() + kVersionOverhead;
  Chain* chain;
  if (auto hit = index_.find(key); hit != index_.end()) {
    chain = hit->second;
  } else {
    const absl::string_view kept_key = arena_.Copy(key);
    chain = &chains_.emplace_back();
    index_.emplace(kept_key, chain);
    unordered_.push_back(kept_key);
    has_unordered_.store(true, std::memory_order_relaxed);
    added += key.size() + kKeyOverhead;
  }
  // A small value is copied into the arena: the caller's string is then freed by the thread
  // that allocated it, and the overlay's memory goes back in a few blocks rather than a string
  // per version. A large one is taken over, so that no large copy is made under the lock.
  absl::string_view kept;
  if (value.size() <= Arena::kOwnBlock) {
    kept = arena_.Copy(value);
  } else {
    kept = values_.emplace_back(std::move(value));
  }
  chain->insert(chain->begin(), Version{ts, tombstone, kept});
  bytes_.fetch_add(added, std::memory_order_relaxed);
  if (ts > max_ts_.load(std::memory_order_relaxed)) max_ts_.store(ts, std::memory_order_relaxed);
  if (tombstone) had_tombstones_.store(true, std::memory_order_relaxed);
}

void Overlay::Remove(absl::string_view key, Timestamp ts) {
  std::unique_lock l(mu_);
  auto hit = index_.find(key);
  if (hit == index_.end()) return;
  Chain& chain = *hit->second;
  for (auto v = chain.begin(); v != chain.end(); ++v) {
    if (v->ts == ts) {
      chain.erase(v);
      break;
    }
  }
  if (chain.empty()) {
    // Its key stays in the arena and its chain in chains_ (empty), freed with the overlay. If
    // it is still in unordered_, Order skips it (it is no longer in index_).
    map_.erase(key);
    index_.erase(hit);
  }
}

void Overlay::Order() const {
  if (!has_unordered_.load(std::memory_order_relaxed)) return;
  std::unique_lock l(mu_);
  if (unordered_.empty()) return;
  std::sort(unordered_.begin(), unordered_.end());
  auto hint = map_.end();
  for (absl::string_view key : unordered_) {
    auto hit = index_.find(key);
    if (hit == index_.end()) continue;  // removed since it was added
    // In key order, each key lands next to the one before it: the hint saves the descent.
    hint = std::next(map_.emplace_hint(hint, hit->first, hit->second));
  }
  unordered_.clear();
  has_unordered_.store(false, std::memory_order_relaxed);
}

std::optional<Found> Overlay::Get(absl::string_view key, Timestamp snapshot) const {
  std::shared_lock l(mu_);
  auto hit = index_.find(key);
  if (hit == index_.end()) return std::nullopt;
  for (const Version& v : *hit->second) {
    if (v.ts <= snapshot) return Found{v.ts, v.tombstone, std::string(v.value)};
  }
  return std::nullopt;
}

Timestamp Overlay::LatestTs(absl::string_view key) const {
  std::shared_lock l(mu_);
  auto hit = index_.find(key);
  return hit == index_.end() ? 0 : hit->second->front().ts;
}

bool Overlay::AnyNewerInRange(absl::string_view lower, absl::string_view upper,
                              Timestamp ts) const {
  Order();
  std::shared_lock l(mu_);
  for (auto it = map_.lower_bound(lower); it != map_.end(); ++it) {
    if (!upper.empty() && it->first >= upper) break;
    if (it->second->front().ts > ts) return true;
  }
  return false;
}

void Overlay::Scan(absl::string_view from, bool inclusive, bool reverse, size_t limit,
                   Timestamp snapshot, std::vector<ScanEntry>* out,
                   std::optional<absl::string_view>* stopped_at) const {
  stopped_at->reset();
  Order();
  std::shared_lock l(mu_);
  size_t work = 0, emitted = 0;
  absl::string_view last;
  auto emit = [&](absl::string_view key, const Chain& chain) {
    ++work;
    last = key;
    for (const Version& v : chain) {
      if (v.ts <= snapshot) {
        out->push_back(ScanEntry{key, v.value, v.tombstone});
        ++emitted;
        return;
      }
    }
  };
  auto more = [&] { return emitted < limit && work < kScanWork; };
  if (!reverse) {
    auto it = inclusive ? map_.lower_bound(from) : map_.upper_bound(from);
    for (; it != map_.end() && more(); ++it) emit(it->first, *it->second);
    if (it != map_.end() && work > 0) *stopped_at = last;
  } else {
    auto it = from.empty() ? map_.end() : (inclusive ? map_.upper_bound(from) : map_.lower_bound(from));
    while (it != map_.begin() && more()) {
      --it;
      emit(it->first, *it->second);
    }
    if (it != map_.begin() && work > 0) *stopped_at = last;
  }
}

}  // namespace shardtx::engine
