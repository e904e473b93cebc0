#include "util/arena.h"

#include <cstring>

namespace shardtx {

absl::string_view Arena::Copy(absl::string_view bytes) {
  if (bytes.empty()) return absl::string_view();
  char* p = Allocate(bytes.size());
  std::memcpy(p, bytes.data(), bytes.size());
  return absl::string_view(p, bytes.size());
}

char* Arena::Allocate(size_t n) {
  if (n > kOwnBlock) {  // its own block; the current one keeps serving small copies
    blocks_.push_back(std::make_unique_for_overwrite<char[]>(n));
    allocated_ += n;
    return blocks_.back().get();
  }
  if (n > left_) {
    blocks_.push_back(std::make_unique_for_overwrite<char[]>(kBlockSize));
    allocated_ += kBlockSize;
    next_ = blocks_.back().get();
    left_ = kBlockSize;
  }
  char* p = next_;
  next_ += n;
  left_ -= n;
  return p;
}

}  // namespace shardtx
