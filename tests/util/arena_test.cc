#include "util/arena.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace shardtx {
namespace {

std::string Pattern(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (seed * 7 + i) % 26);
  return s;
}

// Whatever was copied keeps its address and bytes while many more copies fill new blocks.
TEST(Arena, CopiesStayPutAcrossBlocks) {
  Arena arena;
  std::vector<std::pair<std::string, absl::string_view>> copies;
  for (int i = 0; i < 5000; ++i) {
    const std::string s = Pattern(1 + i % 300, i);
    const absl::string_view c = arena.Copy(s);
    ASSERT_NE(c.data(), s.data());
    copies.emplace_back(s, c);
  }
  ASSERT_GT(arena.allocated(), 10 * Arena::kBlockSize);  // many blocks were needed
  for (const auto& [want, got] : copies) ASSERT_EQ(got, want);
}

// A copy of more than kOwnBlock bytes gets a block of its own, whatever room the current
// block has; the block small copies come from carries on.
TEST(Arena, LargeCopiesTakeTheirOwnBlock) {
  Arena arena;
  const absl::string_view a = arena.Copy("first");
  EXPECT_EQ(arena.allocated(), Arena::kBlockSize);
  const std::string largest_small = Pattern(Arena::kOwnBlock, 1);
  const absl::string_view q = arena.Copy(largest_small);  // the largest copy the block serves
  EXPECT_EQ(arena.allocated(), Arena::kBlockSize);
  EXPECT_EQ(q.data(), a.data() + a.size());
  const std::string mid = Pattern(Arena::kOwnBlock + 1, 2);
  const absl::string_view m = arena.Copy(mid);
  EXPECT_EQ(arena.allocated(), Arena::kBlockSize + mid.size());
  const std::string big = Pattern(Arena::kBlockSize * 3, 3);
  const absl::string_view b = arena.Copy(big);
  EXPECT_EQ(arena.allocated(), Arena::kBlockSize + mid.size() + big.size());
  const absl::string_view c = arena.Copy("second");
  EXPECT_EQ(arena.allocated(), Arena::kBlockSize + mid.size() + big.size());  // no new block
  EXPECT_EQ(c.data(), q.data() + q.size());  // right after the earlier small copies
  EXPECT_EQ(a, "first");
  EXPECT_EQ(q, largest_small);
  EXPECT_EQ(m, mid);
  EXPECT_EQ(b, big);
  EXPECT_EQ(c, "second");
}

TEST(Arena, EmptyCopiesAllocateNothing) {
  Arena arena;
  EXPECT_TRUE(arena.Copy("").empty());
  EXPECT_EQ(arena.allocated(), 0u);
}

}  // namespace
}  // namespace shardtx
