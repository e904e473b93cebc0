#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/test_db.h"
#include "txn/partitioner.h"
#include "util/kill_point.h"

namespace shardtx {
namespace {

using testing::FreshDir;
using testing::GetOne;
using testing::OpenOrDie;

// Keys known to land on shards 0 and 1 (range partitioning: split at "m").
Options RangeOpts(const std::string& dir) {
  Options o;
  o.path = dir;
  o.num_shards = 2;
  o.partitioning = Options::Partitioning::kRange;
  o.range_split_points = {"m"};
  o.checkpoint_interval = absl::ZeroDuration();
  o.log_layout = testing::TestLogLayout();
  return o;
}

TEST(CrossShard, CommitIsAtomicAndDurableAcrossShards) {
  const std::string dir = FreshDir();
  {
    auto db = OpenOrDie(RangeOpts(dir));
    auto t = db->Begin();
    ASSERT_TRUE(t->Put("apple", "1").ok());   // shard 0
    ASSERT_TRUE(t->Put("zebra", "2").ok());   // shard 1
    ASSERT_TRUE(t->Commit().ok());
    Stats st = db->GetStats();
    EXPECT_EQ(st.cross_shard_commits, 1u);
    EXPECT_EQ(db->GetOutcome(t->id()), Database::Outcome::kCommitted);
    EXPECT_EQ(*GetOne(db.get(), "apple"), "1");
    EXPECT_EQ(*GetOne(db.get(), "zebra"), "2");
  }
  auto db = OpenOrDie(RangeOpts(dir));
  EXPECT_EQ(*GetOne(db.get(), "apple"), "1");
  EXPECT_EQ(*GetOne(db.get(), "zebra"), "2");
}

TEST(CrossShard, RecoveryWithoutCheckpointRedoesBothShards) {
  const std::string dir = FreshDir();
  Options o = RangeOpts(dir);
  o.checkpoint_on_close = false;
  {
    auto db = OpenOrDie(o);
    for (int i = 0; i < 20; ++i) {
      auto t = db->Begin();
      ASSERT_TRUE(t->Put(absl::StrCat("a", i), "x").ok());
      ASSERT_TRUE(t->Put(absl::StrCat("z", i), "y").ok());
      ASSERT_TRUE(t->Commit().ok());
    }
  }
  auto db = OpenOrDie(o);
  EXPECT_EQ(db->GetStats().in_doubt, 0u);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(*GetOne(db.get(), absl::StrCat("a", i)), "x");
    EXPECT_EQ(*GetOne(db.get(), absl::StrCat("z", i)), "y");
  }
}

TEST(CrossShard, ConflictAbortsNamingKeyAndShard) {
  auto db = OpenOrDie(RangeOpts(FreshDir()));
  auto t1 = db->Begin();
  auto t2 = db->Begin();
  ASSERT_TRUE(t1->Put("apple", "t1").ok());
  ASSERT_TRUE(t1->Put("zebra", "t1").ok());
  ASSERT_TRUE(t2->Put("zebra", "t2").ok());
  ASSERT_TRUE(t2->Commit().ok());
  absl::Status s = t1->Commit();
  ASSERT_TRUE(absl::IsAborted(s)) << s;
  EXPECT_NE(s.message().find("'zebra'"), std::string::npos) << s;
  EXPECT_NE(s.message().find("shard 1"), std::string::npos) << s;
  EXPECT_TRUE(absl::IsNotFound(GetOne(db.get(), "apple").status()));  // nothing half-done
  EXPECT_EQ(*GetOne(db.get(), "zebra"), "t2");
}

TEST(CrossShard, MergedScanIsOrderedAcrossShards) {
  auto db = OpenOrDie(RangeOpts(FreshDir()));
  auto t = db->Begin();
  for (const char* k : {"b", "y", "a", "n", "m", "l", "z"}) ASSERT_TRUE(t->Put(k, k).ok());
  ASSERT_TRUE(t->Commit().ok());
  auto r = db->Begin();
  auto it = r->NewIterator();
  std::string got;
  for (it->SeekToFirst(); it->Valid(); it->Next()) got += std::string(it->key());
  EXPECT_EQ(got, "ablmnyz");
  IteratorOptions rev;
  rev.reverse = true;
  auto rit = r->NewIterator(rev);
  got.clear();
  for (rit->SeekToFirst(); rit->Valid(); rit->Next()) got += std::string(rit->key());
  EXPECT_EQ(got, "zynmlba");
}

TEST(CrossShard, SerializableCrossShardPreventsWriteSkew) {
  Options o = RangeOpts(FreshDir());
  auto db = OpenOrDie(o);
  {
    auto t = db->Begin();
    ASSERT_TRUE(t->Put("alice", "on").ok());  // shard 0
    ASSERT_TRUE(t->Put("zoe", "on").ok());    // shard 1
    ASSERT_TRUE(t->Commit().ok());
  }
  TxnOptions ser;
  ser.isolation = Isolation::kSerializable;
  auto t1 = db->Begin(ser);
  auto t2 = db->Begin(ser);
  ASSERT_EQ(*t1->Get("zoe"), "on");
  ASSERT_EQ(*t2->Get("alice"), "on");
  ASSERT_TRUE(t1->Put("alice", "off").ok());
  ASSERT_TRUE(t2->Put("zoe", "off").ok());
  EXPECT_TRUE(t1->Commit().ok());
  EXPECT_TRUE(absl::IsAborted(t2->Commit()));
}

TEST(CrossShard, ReadersNeverSeeHalfACrossShardTransaction) {
  auto db = OpenOrDie(RangeOpts(FreshDir()));
  {
    auto t = db->Begin();
    ASSERT_TRUE(t->Put("a", "0").ok());
    ASSERT_TRUE(t->Put("z", "0").ok());
    ASSERT_TRUE(t->Commit().ok());
  }
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 1; i <= 300; ++i) {
      auto t = db->Begin();
      ASSERT_TRUE(t->Put("a", std::to_string(i)).ok());
      ASSERT_TRUE(t->Put("z", std::to_string(i)).ok());
      ASSERT_TRUE(t->Commit().ok());
    }
    done = true;
  });
  int checks = 0;
  while (!done.load()) {
    auto t = db->Begin();
    auto a = t->Get("a");
    auto z = t->Get("z");
    if (!a.ok() || !z.ok()) {
      ASSERT_TRUE(absl::IsAborted(a.status()) || absl::IsAborted(z.status()));
      continue;  // snapshot too old: retry
    }
    ASSERT_EQ(*a, *z) << "half a transaction visible";
    ++checks;
  }
  writer.join();
  EXPECT_GT(checks, 0);
}


// A shard pinned lazily, in the instant after a checkpoint committed to LMDB and before it
// swapped its overlays out, must not read a version newer than the transaction's snapshot
// from LMDB: the pin either sees the old version or fails "snapshot too old" (kAborted).
TEST(CrossShard, LazyPinDuringACheckpointSwapNeverReadsPastTheSnapshot) {
  const std::string dir = FreshDir();
  auto db = OpenOrDie(RangeOpts(dir));
  {
    auto t = db->Begin();
    ASSERT_TRUE(t->Put("apple", "old").ok());  // shard 0
    ASSERT_TRUE(t->Commit().ok());
  }
  ASSERT_TRUE(db->Checkpoint().ok());  // "old" now lives in LMDB only
  auto reader = db->Begin();
  ASSERT_FALSE(reader->Get("zebra").ok());  // pins shard 1 only
  {
    auto t = db->Begin();
    ASSERT_TRUE(t->Put("apple", "new").ok());
    ASSERT_TRUE(t->Commit().ok());
  }
  absl::StatusOr<std::string> seen = std::string("(not read)");
  int hits = 0;
  KillPoints::Arm("checkpoint.after_lmdb_commit", 0, [&] {
    ++hits;
    seen = reader->Get("apple");  // the first pin of shard 0, mid-checkpoint
  });
  ASSERT_TRUE(db->Checkpoint().ok());
  KillPoints::DisarmAll();
  ASSERT_EQ(hits, 1);
  if (seen.ok()) {
    EXPECT_EQ(*seen, "old") << "read a version committed after the snapshot";
  } else {
    EXPECT_TRUE(absl::IsAborted(seen.status())) << seen.status();
  }
}

}  // namespace
}  // namespace shardtx
