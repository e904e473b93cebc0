// ReleasedTxns (engine/released_txns.h): the window of transactions a replicated shard's released
// entries committed, its horizons, and its checkpointed rows (applied to a map standing in for
// the store's table, as ShardStore applies TableWrites).
#include "engine/released_txns.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace shardtx::engine {
namespace {

using State = ReleasedTxns::State;

uint64_t Id(uint32_t prefix, uint32_t counter) { return uint64_t{prefix} << 32 | counter; }

// The store's table: the rows of every committed checkpoint applied in turn.
struct Table {
  std::map<std::string, std::string> rows;
  void Apply(const std::vector<TableWrite>& writes) {
    for (const TableWrite& w : writes) {
      ASSERT_EQ(w.table, ReleasedTxns::kTable);
      if (w.value.has_value()) {
        rows[w.key] = *w.value;
      } else {
        rows.erase(w.key);
      }
    }
  }
  void Checkpoint(ReleasedTxns* r) {
    std::vector<TableWrite> writes;
    r->CheckpointRows(&writes);
    Apply(writes);
    r->CheckpointCommitted();
  }
  std::vector<std::pair<std::string, std::string>> Rows() const {
    return {rows.begin(), rows.end()};
  }
};

TEST(ReleasedTxns, WindowEvictsOldestAndKeepsAHorizonPerPrefix) {
  ReleasedTxns r(3);
  r.Add(Id(7, 5));
  r.Add(Id(7, 2));
  r.Add(Id(9, 1));
  r.Add(0);  // a fence entry's empty commit: not a transaction
  EXPECT_EQ(r.size(), 3u);
  EXPECT_EQ(r.Lookup(Id(7, 5)), State::kReleased);
  EXPECT_EQ(r.Lookup(Id(7, 3)), State::kNotReleased);
  r.Add(Id(7, 9));  // evicts (7, 5)
  EXPECT_EQ(r.Lookup(Id(7, 5)), State::kMaybeEvicted);
  EXPECT_EQ(r.Lookup(Id(7, 4)), State::kMaybeEvicted);  // below the horizon: not known
  EXPECT_EQ(r.Lookup(Id(7, 2)), State::kReleased);      // still in the window
  EXPECT_EQ(r.Lookup(Id(7, 6)), State::kNotReleased);   // above it
  EXPECT_EQ(r.Lookup(Id(9, 0)), State::kNotReleased);   // another prefix: no horizon
  r.Add(Id(7, 9));                                      // the same id twice counts once
  EXPECT_EQ(r.size(), 3u);
  EXPECT_EQ(r.evicted(), 1u);
}

TEST(ReleasedTxns, CheckpointedRowsRebuildTheSameWindowAndHorizons) {
  ReleasedTxns r(4);
  Table table;
  for (uint32_t i = 1; i <= 6; ++i) r.Add(Id(1, i));
  table.Checkpoint(&r);
  for (uint32_t i = 7; i <= 9; ++i) r.Add(Id(2, i));
  // A checkpoint that fails (its rows never reach the store): the next one writes them again.
  std::vector<TableWrite> lost;
  r.CheckpointRows(&lost);
  r.Add(Id(2, 10));
  table.Checkpoint(&r);
  EXPECT_EQ(table.rows.size(), 4u + 1u);  // the window and prefix 1's horizon
  ReleasedTxns loaded(4);
  ASSERT_TRUE(loaded.Load(0, table.Rows()).ok());
  for (uint32_t i = 1; i <= 10; ++i) {
    const uint64_t id = Id(i <= 6 ? 1 : 2, i);
    EXPECT_EQ(loaded.Lookup(id), r.Lookup(id)) << i;
  }
  EXPECT_EQ(loaded.Lookup(Id(1, 6)), State::kMaybeEvicted);
  EXPECT_EQ(loaded.Lookup(Id(2, 10)), State::kReleased);
  // Loaded, then on: more ids and a checkpoint delete exactly the evicted rows.
  loaded.Add(Id(3, 1));
  table.Checkpoint(&loaded);
  ReleasedTxns again(4);
  ASSERT_TRUE(again.Load(0, table.Rows()).ok());
  EXPECT_EQ(again.Lookup(Id(3, 1)), State::kReleased);
  EXPECT_EQ(again.Lookup(Id(2, 7)), State::kMaybeEvicted);
  EXPECT_EQ(again.size(), 4u);
  // A smaller window on reopen evicts down to it, raising the horizons.
  ReleasedTxns small(1);
  ASSERT_TRUE(small.Load(0, table.Rows()).ok());
  EXPECT_EQ(small.Lookup(Id(3, 1)), State::kReleased);
  EXPECT_EQ(small.Lookup(Id(2, 10)), State::kMaybeEvicted);
}

TEST(ReleasedTxns, MalformedRowIsDataLoss) {
  ReleasedTxns r(4);
  EXPECT_TRUE(absl::IsDataLoss(r.Load(3, {{"x", "y"}})));
  EXPECT_TRUE(absl::IsDataLoss(r.Load(3, {{std::string("w\0\0\0\0\0\0\0\1", 9), "short"}})));
  // Window rows must be contiguous.
  const std::string id(8, '\1');
  EXPECT_TRUE(absl::IsDataLoss(r.Load(
      3, {{std::string("w\0\0\0\0\0\0\0\1", 9), id}, {std::string("w\0\0\0\0\0\0\0\3", 9), id}})));
}

}  // namespace
}  // namespace shardtx::engine
