// Arena: append-only byte storage. What Copy returns never moves and stays valid until the
// arena is destroyed, which frees it all at once. Not thread-safe: callers serialise Copy; the
// copied bytes may be read concurrently once published (under a lock, say).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/strings/string_view.h"

namespace shardtx {

class Arena {
 public:
  // Bytes are carved from blocks of this size. A copy of more than kOwnBlock bytes gets a
  // block of its own, so that no more than kOwnBlock bytes of a block (6%) go unused.
  static constexpr size_t kBlockSize = 64 << 10;
  static constexpr size_t kOwnBlock = kBlockSize / 16;

  Arena() = default;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // A stable copy of `bytes` (an empty view for empty input).
  absl::string_view Copy(absl::string_view bytes);
  // Bytes held by the blocks allocated so far.
  uint64_t allocated() const { return allocated_; }

 private:
  char* Allocate(size_t n);

  std::vector<std::unique_ptr<char[]>> blocks_;
  char* next_ = nullptr;
  size_t left_ = 0;
  uint64_t allocated_ = 0;
};

}  // namespace shardtx
