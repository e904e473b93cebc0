#include "engine/released_txns.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "util/coding.h"

namespace shardtx::engine {

namespace {

std::string BigEndian(uint64_t v, int bytes) {
  std::string out(static_cast<size_t>(bytes), '\0');
  for (int i = bytes - 1; i >= 0; --i, v >>= 8) out[static_cast<size_t>(i)] = static_cast<char>(v);
  return out;
}

uint64_t FromBigEndian(absl::string_view s) {
  uint64_t v = 0;
  for (char c : s) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

std::string WindowKey(uint64_t seq) { return "w" + BigEndian(seq, 8); }
std::string HorizonKey(uint32_t prefix) { return "h" + BigEndian(prefix, 4); }

}  // namespace

ReleasedTxns::State ReleasedTxns::Lookup(uint64_t txn_id) const {
  if (present_.contains(txn_id)) return State::kReleased;
  auto it = horizon_.find(static_cast<uint32_t>(txn_id >> 32));
  if (it != horizon_.end() && static_cast<uint32_t>(txn_id) <= it->second) {
    return State::kMaybeEvicted;
  }
  return State::kNotReleased;
}

void ReleasedTxns::Add(uint64_t txn_id) {
  if (txn_id == 0 || !present_.insert(txn_id).second) return;
  ids_.push_back(txn_id);
  while (ids_.size() > window_) Evict();
}

void ReleasedTxns::Evict() {
  const uint64_t old = ids_.front();
  ids_.pop_front();
  ++first_seq_;
  ++evicted_;
  present_.erase(old);
  uint32_t& h = horizon_[static_cast<uint32_t>(old >> 32)];
  h = std::max(h, static_cast<uint32_t>(old));
}

absl::Status ReleasedTxns::Load(uint32_t shard,
                                const std::vector<std::pair<std::string, std::string>>& rows) {
  ids_.clear();
  present_.clear();
  horizon_.clear();
  first_seq_ = 1;
  bool first = true;
  for (const auto& [key, value] : rows) {
    auto malformed = [&, &key = key] {
      return absl::DataLossError(absl::StrCat("shard ", shard, ": malformed row of ", key.size(),
                                              " bytes in the store's table ", kTable));
    };
    if (key.size() == 9 && key[0] == 'w' && value.size() == 8) {
      const uint64_t seq = FromBigEndian(absl::string_view(key).substr(1));
      if (first) {
        first_seq_ = seq;
        first = false;
      } else if (seq != first_seq_ + ids_.size()) {
        return malformed();  // the window's sequences are contiguous
      }
      const uint64_t id = DecodeFixed64(value.data());
      ids_.push_back(id);
      present_.insert(id);
    } else if (key.size() == 5 && key[0] == 'h' && value.size() == 4) {
      horizon_[static_cast<uint32_t>(FromBigEndian(absl::string_view(key).substr(1)))] =
          DecodeFixed32(value.data());
    } else {
      return malformed();
    }
  }
  if (first) first_seq_ = 1;
  // What the store holds, before any eviction below.
  stored_first_ = first_seq_;
  stored_next_ = first_seq_ + ids_.size();
  taking_first_ = stored_first_;
  taking_next_ = stored_next_;
  // A smaller window than the store's (the options changed): evict down to it.
  while (ids_.size() > window_) Evict();
  return absl::OkStatus();
}

void ReleasedTxns::CheckpointRows(std::vector<TableWrite>* out) {
  const uint64_t next = first_seq_ + ids_.size();
  // Evicted since the store's contents: delete.
  for (uint64_t s = stored_first_; s < std::min(first_seq_, stored_next_); ++s) {
    out->push_back({kTable, WindowKey(s), std::nullopt});
  }
  // Added since: put (those still in the window).
  for (uint64_t s = std::max(stored_next_, first_seq_); s < next; ++s) {
    std::string v;
    PutFixed64(&v, ids_[s - first_seq_]);
    out->push_back({kTable, WindowKey(s), std::move(v)});
  }
  for (const auto& [prefix, counter] : horizon_) {
    std::string v;
    PutFixed32(&v, counter);
    out->push_back({kTable, HorizonKey(prefix), std::move(v)});
  }
  taking_first_ = first_seq_;
  taking_next_ = next;
}

void ReleasedTxns::CheckpointCommitted() {
  stored_first_ = taking_first_;
  stored_next_ = taking_next_;
}

}  // namespace shardtx::engine
