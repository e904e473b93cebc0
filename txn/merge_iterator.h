// MergeIterator: a transaction's view of a key range, merged in key order across every
// shard's snapshot and the transaction's own (uncommitted) writes, which win.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

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
  using Entry = std::optional<std::pair<std::string, std::string>>;
  void Position(const std::string& from, bool inclusive);
  Entry Fetch(uint32_t shard, const std::string& from, bool inclusive);
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
  std::vector<Entry> heads_;  // per shard: its next visible entry
  bool valid_ = false;
  std::string key_, value_;
  absl::Status status_;
};

}  // namespace shardtx::txn
