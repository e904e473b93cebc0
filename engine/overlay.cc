#include "engine/overlay.h"

#include <mutex>

namespace shardtx::engine {
namespace {
// Rough per-version cost of the map node, chain and strings beyond the bytes themselves.
constexpr uint64_t kVersionOverhead = 64;
}  // namespace

void Overlay::Add(absl::string_view key, Timestamp ts, bool tombstone, std::string&& value) {
  std::unique_lock l(mu_);
  uint64_t added = value.size() + kVersionOverhead;
  auto it = map_.lower_bound(key);  // one descent: the hint places a new key
  if (it == map_.end() || it->first != key) {
    it = map_.emplace_hint(it, arena_.Copy(key), Chain{});
    added += key.size();
  }
  Chain& chain = it->second;
  absl::string_view kept;
  if (!value.empty()) kept = values_.emplace_back(std::move(value));
  chain.insert(chain.begin(), Version{ts, tombstone, kept});
  bytes_.fetch_add(added, std::memory_order_relaxed);
  if (ts > max_ts_.load(std::memory_order_relaxed)) max_ts_.store(ts, std::memory_order_relaxed);
  if (tombstone) had_tombstones_.store(true, std::memory_order_relaxed);
}

void Overlay::Remove(absl::string_view key, Timestamp ts) {
  std::unique_lock l(mu_);
  auto it = map_.find(key);
  if (it == map_.end()) return;
  Chain& chain = it->second;
  for (auto v = chain.begin(); v != chain.end(); ++v) {
    if (v->ts == ts) {
      chain.erase(v);
      break;
    }
  }
  if (chain.empty()) map_.erase(it);
}

std::optional<Found> Overlay::Get(absl::string_view key, Timestamp snapshot) const {
  std::shared_lock l(mu_);
  auto it = map_.find(key);
  if (it == map_.end()) return std::nullopt;
  for (const Version& v : it->second) {
    if (v.ts <= snapshot) return Found{v.ts, v.tombstone, std::string(v.value)};
  }
  return std::nullopt;
}

Timestamp Overlay::LatestTs(absl::string_view key) const {
  std::shared_lock l(mu_);
  auto it = map_.find(key);
  return it == map_.end() ? 0 : it->second.front().ts;
}

bool Overlay::AnyNewerInRange(absl::string_view lower, absl::string_view upper,
                              Timestamp ts) const {
  std::shared_lock l(mu_);
  for (auto it = map_.lower_bound(lower); it != map_.end(); ++it) {
    if (!upper.empty() && it->first >= upper) break;
    if (it->second.front().ts > ts) return true;
  }
  return false;
}

void Overlay::Scan(absl::string_view from, bool inclusive, bool reverse, size_t limit,
                   Timestamp snapshot, std::vector<ScanEntry>* out,
                   std::optional<absl::string_view>* stopped_at) const {
  stopped_at->reset();
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
    for (; it != map_.end() && more(); ++it) emit(it->first, it->second);
    if (it != map_.end() && work > 0) *stopped_at = last;
  } else {
    auto it = from.empty() ? map_.end() : (inclusive ? map_.upper_bound(from) : map_.lower_bound(from));
    while (it != map_.begin() && more()) {
      --it;
      emit(it->first, it->second);
    }
    if (it != map_.begin() && work > 0) *stopped_at = last;
  }
}

}  // namespace shardtx::engine
