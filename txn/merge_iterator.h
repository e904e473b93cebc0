// MergeIterator: a transaction's view of a key range, merged in key order across every
// shard's snapshot and the transaction's own (uncommitted) writes, which win.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/shard.h"
#include "txn/transaction_impl.h"
#include "shardtx/iterator.h"

namespace shardtx::txn {

class TransactionImpl;

class MergeIterator final : public Iterator {
 public:
  MergeIterator(TransactionImpl* txn, const IteratorOptions& options);

  void SeekToFirst() override;
  void Seek(absl::string_view target) override;
  // False once the transaction has ended: its views, which key_ may point into, are gone.
  bool Valid() const override { return valid_ && txn_->active(); }
  void Next() override;
  absl::string_view key() const override { return key_; }
  absl::string_view value() const override { return value_; }
  absl::Status status() const override { return status_; }

 private:
  // One shard's visible entries, read ahead in batches that grow from kFirstBatch to kMaxBatch
  // entries per layer while the iterator keeps moving (a Seek followed by one read stays cheap)
  // and while a batch's values stay under kBatchBytes.
  static constexpr size_t kFirstBatch = 8, kMaxBatch = 256, kBatchBytes = 1 << 20;
  struct Source {
    engine::Shard::ScanBatch batch;
    size_t pos = 0;
    size_t limit = kFirstBatch;
    const std::pair<absl::string_view, absl::string_view>* head() const {
      return pos < batch.entries.size() ? &batch.entries[pos] : nullptr;
    }
  };
  void Position(absl::string_view from, bool inclusive);
  // Reads shard `s`'s next batch from `from`, until one holds an entry or the shard is done.
  void Fill(uint32_t s, absl::string_view from, bool inclusive);
  // Moves shard `s` past its head.
  void Advance(uint32_t s);
  // Moves every shard whose head is `key` past it; *copy receives the key, which outlives
  // the batches `key` may point into.
  void StepPast(absl::string_view key, std::string* copy);
  // The write-buffer entry nearest `from` (its value nullopt for a delete), or null.
  const TransactionImpl::WriteBuffer::value_type* BufferNext(absl::string_view from,
                                                            bool inclusive) const;
  bool Before(absl::string_view a, absl::string_view b) const {
    return options_.reverse ? a > b : a < b;
  }
  bool InBounds(absl::string_view k) const;
  void Settle(absl::string_view from, bool inclusive);

  TransactionImpl* const txn_;
  const IteratorOptions options_;
  std::vector<Source> sources_;  // per shard
  bool valid_ = false;
  // The current entry: a shard's head (its batch holds the bytes) or, for the transaction's
  // own write, the copies below (the write buffer may change while the iterator stands).
  absl::string_view key_, value_;
  std::string own_key_, own_value_;
  std::string at_;  // Next(): the key moved from (StepPast's copy)
  absl::Status status_;
};

}  // namespace shardtx::txn
