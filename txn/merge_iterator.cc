#include "txn/merge_iterator.h"

#include "txn/database_impl.h"
#include "txn/transaction_impl.h"

namespace shardtx::txn {

MergeIterator::MergeIterator(TransactionImpl* txn, const IteratorOptions& options)
    : txn_(txn), options_(options), heads_(txn->db()->num_shards()) {
  status_ = txn_->CheckActive();
  txn_->RecordRange(options_.lower_bound, options_.upper_bound);
}

bool MergeIterator::InBounds(const std::string& k) const {
  if (!options_.upper_bound.empty() && k >= options_.upper_bound) return false;
  if (k < options_.lower_bound) return false;
  return true;
}

MergeIterator::Entry MergeIterator::Fetch(uint32_t shard, const std::string& from,
                                          bool inclusive) {
  if (!status_.ok()) return std::nullopt;
  auto view = txn_->ViewOf(shard);
  if (!view.ok()) {
    status_ = view.status();
    return std::nullopt;
  }
  auto e = engine::Shard::NextVisible(*view, from, inclusive, options_.reverse);
  if (!e.ok()) {
    status_ = e.status();
    return std::nullopt;
  }
  return std::move(*e);
}

std::optional<std::pair<std::string, std::optional<std::string>>> MergeIterator::BufferNext(
    const std::string& from, bool inclusive) const {
  const auto& w = txn_->writes();
  if (!options_.reverse) {
    auto it = inclusive ? w.lower_bound(from) : w.upper_bound(from);
    if (it == w.end()) return std::nullopt;
    return std::make_pair(it->first, it->second);
  }
  auto it = from.empty() ? w.end() : (inclusive ? w.upper_bound(from) : w.lower_bound(from));
  if (it == w.begin()) return std::nullopt;
  --it;
  return std::make_pair(it->first, it->second);
}

void MergeIterator::Position(const std::string& from, bool inclusive) {
  valid_ = false;
  status_ = txn_->CheckActive();
  for (uint32_t s = 0; s < heads_.size(); ++s) heads_[s] = Fetch(s, from, inclusive);
  Settle(from, inclusive);
}

void MergeIterator::Settle(std::string from, bool inclusive) {
  valid_ = false;
  while (status_.ok()) {
    const std::string* best = nullptr;
    for (const Entry& h : heads_) {
      if (h.has_value() && (best == nullptr || Before(h->first, *best))) best = &h->first;
    }
    auto buf = BufferNext(from, inclusive);
    std::string k;
    bool from_buffer = false;
    if (buf.has_value() && (best == nullptr || !Before(*best, buf->first))) {
      k = buf->first;
      from_buffer = true;
    } else if (best != nullptr) {
      k = *best;
    } else {
      return;
    }
    if (!InBounds(k)) {
      // Past the range end in the direction of travel (reverse starts within bounds).
      if (options_.reverse ? k < options_.lower_bound : true) return;
    }
    std::optional<std::string> value;
    if (from_buffer) {
      value = buf->second;
    } else {
      for (const Entry& h : heads_) {
        if (h.has_value() && h->first == k) {
          value = h->second;
          break;
        }
      }
    }
    if (value.has_value() && InBounds(k)) {
      valid_ = true;
      key_ = std::move(k);
      value_ = std::move(*value);
      return;
    }
    // A key deleted by this transaction (or out of bounds on the near side): step over it.
    for (uint32_t s = 0; s < heads_.size(); ++s) {
      if (heads_[s].has_value() && heads_[s]->first == k) heads_[s] = Fetch(s, k, false);
    }
    from = k;
    inclusive = false;
  }
}

void MergeIterator::SeekToFirst() {
  if (!options_.reverse) {
    Position(options_.lower_bound, true);
  } else {
    Position(options_.upper_bound, false);  // empty: from the last key
  }
}

void MergeIterator::Seek(absl::string_view target) {
  std::string t(target);
  if (!options_.reverse) {
    if (t < options_.lower_bound) t = options_.lower_bound;
    Position(t, true);
  } else if (!options_.upper_bound.empty() && t >= options_.upper_bound) {
    Position(options_.upper_bound, false);
  } else {
    Position(t, true);
  }
}

void MergeIterator::Next() {
  if (!valid_) return;
  status_ = txn_->CheckActive();
  const std::string cur = key_;
  for (uint32_t s = 0; s < heads_.size(); ++s) {
    if (heads_[s].has_value() && heads_[s]->first == cur) heads_[s] = Fetch(s, cur, false);
  }
  Settle(cur, false);
}

}  // namespace shardtx::txn
