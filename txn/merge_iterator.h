// MergeIterator: a transaction's view of a key range, merged in key order across every
// shard's snapshot and the transaction's own (uncommitted) writes, which win.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/shard.h"
#include "shardtx/iterator.h"

namespace shardtx::txn {

class TransactionImpl;

class MergeIterator final : public Iterator {
 public:
  MergeIterator(TransactionImpl* txn, const IteratorOptions& options);

  void SeekToFirst() override;
  void Seek(absl::string_view target) override;
  bool Valid() const override { return valid_; }
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
    const std::pair<std::string, std::string>* head() const {
      return pos < batch.entries.size() ? &batch.entries[pos] : nullptr;
    }
    std::pair<std::string, std::string>* mutable_head() {
      return pos < batch.entries.size() ? &batch.entries[pos] : nullptr;
    }
  };
  void Position(const std::string& from, bool inclusive);
  // Reads shard `s`'s next batch from `from`, until one holds an entry or the shard is done.
  void Fill(uint32_t s, const std::string& from, bool inclusive);
  // Moves shard `s` past its head.
  void Advance(uint32_t s);
  // The write-buffer entry nearest `from`: (key, value or nullopt for a delete).
  std::optional<std::pair<std::string, std::optional<std::string>>> BufferNext(
      const std::string& from, bool inclusive) const;
  bool Before(const std::string& a, const std::string& b) const {
    return options_.reverse ? a > b : a < b;
  }
  bool InBounds(const std::string& k) const;
  void Settle(std::string from, bool inclusive);

  TransactionImpl* const txn_;
  const IteratorOptions options_;
  std::vector<Source> sources_;  // per shard
  int taken_ = -1;               // the shard whose head was moved into key_/value_, or -1
  bool valid_ = false;
  std::string key_, value_;
  absl::Status status_;
};

}  // namespace shardtx::txn
