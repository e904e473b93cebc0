#include "txn/partitioner.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/test_db.h"

namespace shardtx {
namespace {

TEST(Partitioner, HashSpreadsKeysEvenly) {
  Options o;
  for (uint32_t shards : {2u, 4u, 8u, 16u}) {
    txn::Partitioner p(o, shards);
    std::vector<int> counts(shards, 0);
    const int n = 200000;
    for (int i = 0; i < n; ++i) counts[p.ShardOf(absl::StrCat("user", i))]++;
    const double mean = static_cast<double>(n) / shards;
    const int max = *std::max_element(counts.begin(), counts.end());
    const int min = *std::min_element(counts.begin(), counts.end());
    // With 200k keys a fair hash stays within a few standard deviations (~1% here).
    EXPECT_LT(max / mean, 1.03) << shards << " shards";
    EXPECT_GT(min / mean, 0.97) << shards << " shards";
  }
}

TEST(Partitioner, HashIsStableAndConsistentWhenShardsGrow) {
  Options o;
  txn::Partitioner four(o, 4), five(o, 5);
  int moved = 0;
  for (int i = 0; i < 10000; ++i) {
    const std::string k = absl::StrCat("k", i);
    EXPECT_EQ(four.ShardOf(k), four.ShardOf(k));
    if (four.ShardOf(k) != five.ShardOf(k)) {
      ++moved;
      EXPECT_EQ(five.ShardOf(k), 4u);  // jump hash only moves keys to the new shard
    }
  }
  EXPECT_NEAR(moved, 2000, 300);
}

TEST(Partitioner, RangeBoundariesAreHonoured) {
  Options o;
  o.partitioning = Options::Partitioning::kRange;
  o.range_split_points = {"g", "p"};
  ASSERT_TRUE(txn::Partitioner::Validate(o, 3).ok());
  txn::Partitioner p(o, 3);
  EXPECT_EQ(p.ShardOf(""), 0u);
  EXPECT_EQ(p.ShardOf("f\xff"), 0u);
  EXPECT_EQ(p.ShardOf("g"), 1u);  // a split point starts its shard
  EXPECT_EQ(p.ShardOf("o"), 1u);
  EXPECT_EQ(p.ShardOf("p"), 2u);
  EXPECT_EQ(p.ShardOf("zzz"), 2u);
  o.range_split_points = {"p", "g"};
  EXPECT_TRUE(absl::IsInvalidArgument(txn::Partitioner::Validate(o, 3)));
  o.range_split_points = {"g"};
  EXPECT_TRUE(absl::IsInvalidArgument(txn::Partitioner::Validate(o, 3)));
}

TEST(Partitioner, ExplicitShardIsTheHostsChoice) {
  Options o;
  o.path = testing::FreshDir();
  o.num_shards = 3;
  // A log per shard, so that each shard's WAL appends say where the record went.
  o.log_layout = Options::LogLayout::kPerShard;
  o.partitioning = Options::Partitioning::kExplicit;
  o.explicit_shard = [](absl::string_view key) -> uint32_t { return key[0] - '0'; };
  auto db = testing::OpenOrDie(o);
  ASSERT_TRUE(testing::PutOne(db.get(), "2-key", "v").ok());
  Stats st = db->GetStats();
  EXPECT_EQ(st.shards[2].wal_appends, 1u);
  EXPECT_EQ(st.shards[0].wal_appends, 0u);
}

TEST(Partitioner, ReopeningWithAnotherSchemeIsRefused) {
  Options o;
  o.path = testing::FreshDir();
  o.num_shards = 2;
  o.partitioning = Options::Partitioning::kRange;
  o.range_split_points = {"m"};
  { auto db = testing::OpenOrDie(o); }
  o.range_split_points = {"n"};
  EXPECT_TRUE(absl::IsInvalidArgument(Database::Open(o).status()));
  o.partitioning = Options::Partitioning::kHash;
  EXPECT_TRUE(absl::IsInvalidArgument(Database::Open(o).status()));
}

TEST(Partitioner, MergedScanOverHashedShardsIsOrderedAndComplete) {
  Options o;
  o.path = testing::FreshDir();
  o.num_shards = 8;
  auto db = testing::OpenOrDie(o);
  std::set<std::string> want;
  for (int batch = 0; batch < 10; ++batch) {
    auto t = db->Begin();
    for (int i = 0; i < 100; ++i) {
      std::string k = absl::StrCat("key", batch * 100 + i);
      want.insert(k);
      ASSERT_TRUE(t->Put(k, k).ok());
    }
    ASSERT_TRUE(t->Commit().ok());
    if (batch == 5) {
      ASSERT_TRUE(db->Checkpoint().ok());  // half in LMDB, half in overlays
    }
  }
  auto t = db->Begin();
  auto it = t->NewIterator();
  std::vector<std::string> got;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    EXPECT_EQ(it->key(), it->value());
    got.emplace_back(it->key());
  }
  ASSERT_TRUE(it->status().ok()) << it->status();
  EXPECT_EQ(got, std::vector<std::string>(want.begin(), want.end()));
}

}  // namespace
}  // namespace shardtx
