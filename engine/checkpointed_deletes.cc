#include "engine/checkpointed_deletes.h"

#include <algorithm>

namespace shardtx::engine {

void CheckpointedDeletes::Remember(std::vector<std::pair<std::string, Timestamp>> deletes) {
  for (auto& [key, ts] : deletes) {
    auto [it, inserted] = by_key_.try_emplace(key, ts);
    if (!inserted) {
      if (it->second >= ts) continue;
      it->second = ts;
    }
    bytes_ += key.size() + kEntryOverhead;
    order_.emplace_back(ts, std::move(key));
  }
  while (bytes_ > limit_bytes_ && !order_.empty()) {
    auto& [ts, key] = order_.front();
    if (auto it = by_key_.find(key); it != by_key_.end() && it->second == ts) by_key_.erase(it);
    floor_ts_ = std::max(floor_ts_, ts);
    bytes_ -= key.size() + kEntryOverhead;
    order_.pop_front();
  }
}

Timestamp CheckpointedDeletes::DeletedAt(absl::string_view key) const {
  auto it = by_key_.find(key);
  return it == by_key_.end() ? 0 : it->second;
}

bool CheckpointedDeletes::AnyDeletedAfter(absl::string_view lower, absl::string_view upper,
                                          Timestamp ts) const {
  for (auto it = by_key_.lower_bound(lower);
       it != by_key_.end() && (upper.empty() || it->first < upper); ++it) {
    if (it->second > ts) return true;
  }
  return false;
}

}  // namespace shardtx::engine
