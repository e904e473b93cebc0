#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/test_db.h"

namespace shardtx {
namespace {

using testing::FreshDir;
using testing::GetOne;
using testing::OpenOrDie;
using testing::PutOne;

TEST(Database, PutGetDeleteAcrossReopen) {
  Options o;
  o.path = FreshDir();
  {
    auto db = OpenOrDie(o);
    ASSERT_TRUE(PutOne(db.get(), "a", "1").ok());
    ASSERT_TRUE(PutOne(db.get(), "b", "2").ok());
    auto t = db->Begin();
    ASSERT_TRUE(t->Delete("a").ok());
    ASSERT_TRUE(t->Commit().ok());
    EXPECT_TRUE(absl::IsNotFound(GetOne(db.get(), "a").status()));
    EXPECT_EQ(*GetOne(db.get(), "b"), "2");
  }
  auto db = OpenOrDie(o);
  EXPECT_TRUE(absl::IsNotFound(GetOne(db.get(), "a").status()));
  EXPECT_EQ(*GetOne(db.get(), "b"), "2");
}

TEST(Database, RecoversByRedoWithoutCheckpoint) {
  Options o;
  o.path = FreshDir();
  o.checkpoint_on_close = false;
  o.checkpoint_interval = absl::ZeroDuration();
  {
    auto db = OpenOrDie(o);
    for (int i = 0; i < 500; ++i) {
      ASSERT_TRUE(PutOne(db.get(), "k" + std::to_string(i), "v" + std::to_string(i)).ok());
    }
    EXPECT_EQ(db->GetStats().checkpoints, 0u);
  }
  auto db = OpenOrDie(o);
  Stats st = db->GetStats();
  EXPECT_EQ(st.recovery_records, 500u);
  for (int i = 0; i < 500; ++i) {
    EXPECT_EQ(*GetOne(db.get(), "k" + std::to_string(i)), "v" + std::to_string(i));
  }
}

TEST(Database, CheckpointMovesDataToLmdbAndRecoveryRedoesOnlyTheRest) {
  Options o;
  o.path = FreshDir();
  o.checkpoint_on_close = false;
  o.checkpoint_interval = absl::ZeroDuration();
  {
    auto db = OpenOrDie(o);
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(PutOne(db.get(), "k" + std::to_string(i), "a").ok());
    ASSERT_TRUE(db->Checkpoint().ok());
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(PutOne(db.get(), "k" + std::to_string(i), "b").ok());
  }
  auto db = OpenOrDie(o);
  EXPECT_EQ(db->GetStats().recovery_records, 10u);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(*GetOne(db.get(), "k" + std::to_string(i)), i < 10 ? "b" : "a");
  }
}

// Commit timestamps are part of the API (and of the records): after a restart they go on
// rising, whether the last commits were checkpointed into LMDB or live only in the WAL.
TEST(Database, CommitTimestampsKeepRisingAcrossARestart) {
  for (bool checkpoint : {false, true}) {
    SCOPED_TRACE(checkpoint ? "checkpointed" : "WAL only");
    Options o;
    o.path = FreshDir(checkpoint ? "_ck" : "_wal");
    o.checkpoint_on_close = checkpoint;
    o.checkpoint_interval = absl::ZeroDuration();
    uint64_t last = 0;
    {
      auto db = OpenOrDie(o);
      for (int i = 0; i < 20; ++i) {
        auto t = db->Begin();
        ASSERT_TRUE(t->Put(absl::StrCat("k", i), "v").ok());
        ASSERT_TRUE(t->Commit().ok());
        EXPECT_GT(t->commit_timestamp(), last);
        last = t->commit_timestamp();
      }
    }
    auto db = OpenOrDie(o);
    EXPECT_EQ(db->GetStats().recovery_records, checkpoint ? 0u : 20u);
    auto t = db->Begin();
    EXPECT_GE(t->snapshot_timestamp(), last);
    ASSERT_TRUE(t->Put("k0", "w").ok());
    ASSERT_TRUE(t->Commit().ok());
    EXPECT_GT(t->commit_timestamp(), last);
  }
}

TEST(Database, ReadYourOwnWrites) {
  Options o;
  o.path = FreshDir();
  auto db = OpenOrDie(o);
  ASSERT_TRUE(PutOne(db.get(), "x", "old").ok());
  auto t = db->Begin();
  ASSERT_TRUE(t->Put("x", "new").ok());
  EXPECT_EQ(*t->Get("x"), "new");
  ASSERT_TRUE(t->Delete("x").ok());
  EXPECT_TRUE(absl::IsNotFound(t->Get("x").status()));
  EXPECT_EQ(*GetOne(db.get(), "x"), "old");
  ASSERT_TRUE(t->Rollback().ok());
  EXPECT_EQ(*GetOne(db.get(), "x"), "old");
  EXPECT_TRUE(absl::IsFailedPrecondition(t->Commit()));
}

TEST(Database, IteratorMergesOverlayLmdbAndOwnWrites) {
  Options o;
  o.path = FreshDir();
  o.checkpoint_interval = absl::ZeroDuration();
  auto db = OpenOrDie(o);
  for (char c = 'a'; c <= 'j'; ++c) ASSERT_TRUE(PutOne(db.get(), std::string(1, c), "lmdb").ok());
  ASSERT_TRUE(db->Checkpoint().ok());
  ASSERT_TRUE(PutOne(db.get(), "c", "overlay").ok());
  {
    auto t = db->Begin();
    ASSERT_TRUE(t->Delete("d").ok());
    ASSERT_TRUE(t->Commit().ok());
  }
  auto t = db->Begin();
  ASSERT_TRUE(t->Put("e", "mine").ok());
  ASSERT_TRUE(t->Put("bb", "mine").ok());
  ASSERT_TRUE(t->Delete("f").ok());
  IteratorOptions io;
  io.lower_bound = "b";
  io.upper_bound = "h";
  auto it = t->NewIterator(io);
  std::string got;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    got += std::string(it->key()) + "=" + std::string(it->value()) + " ";
  }
  ASSERT_TRUE(it->status().ok()) << it->status();
  EXPECT_EQ(got, "b=lmdb bb=mine c=overlay e=mine g=lmdb ");
  io.reverse = true;
  auto rit = t->NewIterator(io);
  got.clear();
  for (rit->SeekToFirst(); rit->Valid(); rit->Next()) got += std::string(rit->key()) + " ";
  EXPECT_EQ(got, "g e c bb b ");
  auto sit = t->NewIterator(IteratorOptions{});
  sit->Seek("bc");
  ASSERT_TRUE(sit->Valid());
  EXPECT_EQ(sit->key(), "c");
}

TEST(Database, ConcurrentCommittersAllDurable) {
  Options o;
  o.path = FreshDir();
  {
    auto db = OpenOrDie(o);
    std::vector<std::thread> threads;
    for (int t = 0; t < 16; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 50; ++i) {
          ASSERT_TRUE(PutOne(db.get(), "t" + std::to_string(t) + "/" + std::to_string(i),
                             std::to_string(i))
                          .ok());
        }
      });
    }
    for (auto& th : threads) th.join();
    Stats st = db->GetStats();
    EXPECT_EQ(st.commits, 800u);
    EXPECT_GT(st.records_per_fsync, 1.0) << st.ToString();
  }
  auto db = OpenOrDie(o);
  for (int t = 0; t < 16; ++t) {
    for (int i = 0; i < 50; ++i) {
      EXPECT_EQ(*GetOne(db.get(), "t" + std::to_string(t) + "/" + std::to_string(i)),
                std::to_string(i));
    }
  }
}

TEST(Database, TooLargeTransactionFailsWithSizeStatus) {
  Options o;
  o.path = FreshDir();
  o.max_txn_bytes = 1 << 20;
  auto db = OpenOrDie(o);
  auto t = db->Begin();
  // 100 MB in 1 MB pieces: refused once past the limit, never buffered whole.
  absl::Status s;
  int accepted = 0;
  for (int i = 0; i < 100 && s.ok(); ++i) {
    s = t->Put("big" + std::to_string(i), std::string(1 << 20, 'x'));
    if (s.ok()) ++accepted;
  }
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_NE(s.message().find("max_txn_bytes"), std::string::npos) << s;
  EXPECT_LE(accepted, 1);
  EXPECT_TRUE(t->Rollback().ok());
  EXPECT_TRUE(absl::IsNotFound(GetOne(db.get(), "big0").status()));
  EXPECT_EQ(db->GetStats().aborts_too_large, 1u);
}

TEST(Database, StatsDumpNamesTheFigures) {
  Options o;
  o.path = FreshDir();
  auto db = OpenOrDie(o);
  ASSERT_TRUE(PutOne(db.get(), "a", "b").ok());
  std::string dump = db->GetStats().ToString();
  EXPECT_NE(dump.find("commits: 1"), std::string::npos) << dump;
  EXPECT_NE(dump.find("records/fsync"), std::string::npos) << dump;
}

}  // namespace
}  // namespace shardtx
