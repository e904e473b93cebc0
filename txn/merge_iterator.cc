#include "txn/merge_iterator.h"

#include "txn/database_impl.h"
#include "txn/transaction_impl.h"

namespace shardtx::txn {

MergeIterator::MergeIterator(TransactionImpl* txn, const IteratorOptions& options)
    : txn_(txn), options_(options), sources_(txn->db()->num_shards()) {
  status_ = txn_->CheckActive();
  txn_->RecordRange(options_.lower_bound, options_.upper_bound);
}

bool MergeIterator::InBounds(absl::string_view k) const {
  if (!options_.upper_bound.empty() && k >= options_.upper_bound) return false;
  if (k < options_.lower_bound) return false;
  return true;
}

void MergeIterator::Fill(uint32_t s, absl::string_view from, bool inclusive) {
  Source& src = sources_[s];
  src.pos = 0;
  src.batch.entries.clear();
  src.batch.done = true;
  if (!status_.ok()) return;
  auto view = txn_->ViewOf(s);
  if (!view.ok()) {
    status_ = view.status();
    return;
  }
  status_ =
      engine::Shard::ScanVisible(*view, from, inclusive, options_.reverse, src.limit, &src.batch);
  if (!status_.ok()) {
    src.batch.entries.clear();
    src.batch.done = true;
    return;
  }
  size_t bytes = 0;
  for (const auto& [k, v] : src.batch.entries) bytes += k.size() + v.size();
  if (bytes < kBatchBytes / 2) src.limit = std::min(src.limit * 2, kMaxBatch);
}

void MergeIterator::Advance(uint32_t s) {
  Source& src = sources_[s];
  if (++src.pos < src.batch.entries.size() || src.batch.done) return;
  const std::string resume = std::move(src.batch.resume);
  Fill(s, resume, false);
}

const TransactionImpl::WriteBuffer::value_type* MergeIterator::BufferNext(absl::string_view from,
                                                                         bool inclusive) const {
  const auto& w = txn_->writes();
  if (!options_.reverse) {
    auto it = inclusive ? w.lower_bound(from) : w.upper_bound(from);
    return it == w.end() ? nullptr : &*it;
  }
  auto it = from.empty() ? w.end() : (inclusive ? w.upper_bound(from) : w.lower_bound(from));
  if (it == w.begin()) return nullptr;
  --it;
  return &*it;
}

void MergeIterator::StepPast(absl::string_view key, std::string* copy) {
  // Advancing may refill the batch `key` points into: compare with (and keep) a copy.
  copy->assign(key.data(), key.size());
  for (uint32_t s = 0; s < sources_.size(); ++s) {
    if (const auto* h = sources_[s].head(); h != nullptr && h->first == *copy) Advance(s);
  }
}

void MergeIterator::Position(absl::string_view from, bool inclusive) {
  valid_ = false;
  status_ = txn_->CheckActive();
  for (uint32_t s = 0; s < sources_.size(); ++s) {
    sources_[s].limit = kFirstBatch;
    Fill(s, from, inclusive);
  }
  Settle(from, inclusive);
}

void MergeIterator::Settle(absl::string_view from, bool inclusive) {
  valid_ = false;
  std::string skipped;  // owns `from` once a key has been stepped over
  while (status_.ok()) {
    int best = -1;  // the shard with the nearest head
    for (uint32_t s = 0; s < sources_.size(); ++s) {
      const auto* h = sources_[s].head();
      if (h != nullptr && (best < 0 || Before(h->first, sources_[best].head()->first))) {
        best = static_cast<int>(s);
      }
    }
    const auto* buf = BufferNext(from, inclusive);
    // The transaction's own write of a key wins over the shard's version of it.
    const bool from_buffer =
        buf != nullptr && (best < 0 || !Before(sources_[best].head()->first, buf->first));
    if (!from_buffer && best < 0) return;
    const absl::string_view k = from_buffer ? buf->first : sources_[best].head()->first;
    // Past the range end in the direction of travel (reverse starts within bounds).
    if (!InBounds(k) && (options_.reverse ? k < options_.lower_bound : true)) return;
    const bool live = !from_buffer || buf->second.has_value();
    if (live && InBounds(k)) {
      valid_ = true;
      if (from_buffer) {
        own_key_ = buf->first;
        own_value_ = *buf->second;
        key_ = own_key_;
        value_ = own_value_;
      } else {
        key_ = sources_[best].head()->first;
        value_ = sources_[best].head()->second;
      }
      return;
    }
    // A key deleted by this transaction (or out of bounds on the near side): step over it.
    StepPast(k, &skipped);
    from = skipped;
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
  } else if (t.empty()) {
    // No key is <= "" (keys are not empty). Not Position(""): that means "from the end".
    valid_ = false;
    status_ = txn_->CheckActive();
  } else {
    Position(t, true);
  }
}

void MergeIterator::Next() {
  if (!valid_) return;
  status_ = txn_->CheckActive();
  if (!status_.ok()) {
    valid_ = false;  // the transaction ended (see Valid)
    return;
  }
  StepPast(key_, &at_);
  Settle(at_, false);
}

}  // namespace shardtx::txn
