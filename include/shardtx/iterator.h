// shardtx/iterator.h: ordered iteration over a key range inside a transaction.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace shardtx {

struct IteratorOptions {
  std::string lower_bound;  // inclusive; empty: from the first key
  std::string upper_bound;  // exclusive; empty: to the last key
  bool reverse = false;     // Next() moves to smaller keys
};

// Iterates the keys visible to its transaction (its snapshot plus its own writes) in key
// order, merged across all shards. Not thread-safe; must not outlive its transaction. An
// error (status() not OK; kDataLoss for a stored value that fails its checksum) ends the
// iteration; so does the end of the transaction (Commit,
// Rollback, Prepare): Valid() turns false and a later move sets a kFailedPrecondition status.
class Iterator {
 public:
  virtual ~Iterator() = default;
  // Positions at the first key of the range (the last, if reverse).
  virtual void SeekToFirst() = 0;
  // Positions at the first key >= target (reverse: the last key <= target), within bounds.
  virtual void Seek(absl::string_view target) = 0;
  virtual bool Valid() const = 0;
  // REQUIRES: Valid().
  virtual void Next() = 0;
  // REQUIRES: Valid(). The bytes stay valid until the iterator moves (Seek, SeekToFirst, Next)
  // or is destroyed, or its transaction ends; copy them to keep them longer.
  virtual absl::string_view key() const = 0;
  virtual absl::string_view value() const = 0;
  virtual absl::Status status() const = 0;
};

}  // namespace shardtx
