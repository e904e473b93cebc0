// Isolation anomalies: what snapshot isolation prevents and allows, and what serializable adds.
#include "gtest/gtest.h"
#include "tests/support/test_db.h"

namespace shardtx {
namespace {

using testing::FreshDir;
using testing::GetOne;
using testing::OpenOrDie;
using testing::PutOne;

class IsolationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options o;
    o.path = FreshDir();
    o.checkpoint_interval = absl::ZeroDuration();
    db_ = OpenOrDie(o);
    ASSERT_NE(db_, nullptr);
  }
  std::unique_ptr<Transaction> Begin(Isolation i = Isolation::kSnapshot) {
    TxnOptions o;
    o.isolation = i;
    return db_->Begin(o);
  }
  std::unique_ptr<Database> db_;
};

TEST_F(IsolationTest, LostUpdateIsPreventedFirstCommitterWins) {
  ASSERT_TRUE(PutOne(db_.get(), "counter", "0").ok());
  auto t1 = Begin();
  auto t2 = Begin();
  ASSERT_EQ(*t1->Get("counter"), "0");
  ASSERT_EQ(*t2->Get("counter"), "0");
  ASSERT_TRUE(t1->Put("counter", "1").ok());
  ASSERT_TRUE(t2->Put("counter", "1").ok());
  ASSERT_TRUE(t1->Commit().ok());
  absl::Status s = t2->Commit();
  EXPECT_TRUE(absl::IsAborted(s)) << s;
  EXPECT_NE(s.message().find("'counter'"), std::string::npos) << s;  // names the key
  EXPECT_EQ(db_->GetStats().aborts_write_conflict, 1u);
  // Retrying the loser on a new snapshot succeeds and sees the winner's write.
  auto t3 = Begin();
  ASSERT_EQ(*t3->Get("counter"), "1");
  ASSERT_TRUE(t3->Put("counter", "2").ok());
  ASSERT_TRUE(t3->Commit().ok());
  EXPECT_EQ(*GetOne(db_.get(), "counter"), "2");
}

TEST_F(IsolationTest, BlindWritesConflictToo) {
  auto t1 = Begin();
  auto t2 = Begin();
  ASSERT_TRUE(t1->Put("k", "a").ok());
  ASSERT_TRUE(t2->Delete("k").ok());
  ASSERT_TRUE(t2->Commit().ok());
  EXPECT_TRUE(absl::IsAborted(t1->Commit()));
}

TEST_F(IsolationTest, NoDirtyReads) {
  ASSERT_TRUE(PutOne(db_.get(), "x", "committed").ok());
  auto writer = Begin();
  ASSERT_TRUE(writer->Put("x", "dirty").ok());
  ASSERT_TRUE(writer->Put("y", "dirty").ok());
  auto reader = Begin();
  EXPECT_EQ(*reader->Get("x"), "committed");
  EXPECT_TRUE(absl::IsNotFound(reader->Get("y").status()));
  ASSERT_TRUE(writer->Rollback().ok());
  EXPECT_EQ(*GetOne(db_.get(), "x"), "committed");
}

TEST_F(IsolationTest, RepeatableReadsWithinATransaction) {
  ASSERT_TRUE(PutOne(db_.get(), "x", "v1").ok());
  auto reader = Begin();
  EXPECT_EQ(*reader->Get("x"), "v1");
  ASSERT_TRUE(PutOne(db_.get(), "x", "v2").ok());
  ASSERT_TRUE(PutOne(db_.get(), "new", "v").ok());
  EXPECT_EQ(*reader->Get("x"), "v1");
  EXPECT_TRUE(absl::IsNotFound(reader->Get("new").status()));
  auto it = reader->NewIterator();
  int n = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
  EXPECT_EQ(n, 1);  // the phantom "new" is not seen either
  EXPECT_EQ(*GetOne(db_.get(), "x"), "v2");
}

// Two on-call doctors: each checks that the other is on call, then goes off call.
void SetUpDoctors(Database* db) {
  ASSERT_TRUE(PutOne(db, "alice", "on").ok());
  ASSERT_TRUE(PutOne(db, "bob", "on").ok());
}

TEST_F(IsolationTest, WriteSkewIsAllowedUnderSnapshotIsolation) {
  SetUpDoctors(db_.get());
  auto t1 = Begin();
  auto t2 = Begin();
  ASSERT_EQ(*t1->Get("bob"), "on");
  ASSERT_EQ(*t2->Get("alice"), "on");
  ASSERT_TRUE(t1->Put("alice", "off").ok());
  ASSERT_TRUE(t2->Put("bob", "off").ok());
  EXPECT_TRUE(t1->Commit().ok());
  EXPECT_TRUE(t2->Commit().ok());  // the anomaly: nobody is on call
  EXPECT_EQ(*GetOne(db_.get(), "alice"), "off");
  EXPECT_EQ(*GetOne(db_.get(), "bob"), "off");
}

TEST_F(IsolationTest, WriteSkewIsPreventedUnderSerializable) {
  SetUpDoctors(db_.get());
  auto t1 = Begin(Isolation::kSerializable);
  auto t2 = Begin(Isolation::kSerializable);
  ASSERT_EQ(*t1->Get("bob"), "on");
  ASSERT_EQ(*t2->Get("alice"), "on");
  ASSERT_TRUE(t1->Put("alice", "off").ok());
  ASSERT_TRUE(t2->Put("bob", "off").ok());
  EXPECT_TRUE(t1->Commit().ok());
  absl::Status s = t2->Commit();
  EXPECT_TRUE(absl::IsAborted(s)) << s;
  EXPECT_NE(s.message().find("'alice'"), std::string::npos) << s;
  EXPECT_EQ(*GetOne(db_.get(), "bob"), "on");
  EXPECT_EQ(db_->GetStats().aborts_read_validation, 1u);
}

TEST_F(IsolationTest, SerializableDetectsPhantomsInScannedRanges) {
  ASSERT_TRUE(PutOne(db_.get(), "task/1", "x").ok());
  auto t1 = Begin(Isolation::kSerializable);
  IteratorOptions io;
  io.lower_bound = "task/";
  io.upper_bound = "task0";
  auto it = t1->NewIterator(io);
  int n = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
  ASSERT_EQ(n, 1);
  ASSERT_TRUE(PutOne(db_.get(), "task/2", "y").ok());  // a phantom in t1's range
  ASSERT_TRUE(t1->Put("summary", "1 task").ok());
  EXPECT_TRUE(absl::IsAborted(t1->Commit()));
}

TEST_F(IsolationTest, SnapshotStaysStableWhileACheckpointFreesItsOverlay) {
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(PutOne(db_.get(), "k" + std::to_string(i), "old").ok());
  }
  auto reader = Begin();
  ASSERT_EQ(*reader->Get("k0"), "old");
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(PutOne(db_.get(), "k" + std::to_string(i), "new").ok());
  }
  ASSERT_TRUE(db_->Checkpoint().ok());  // "old" and "new" now in LMDB; overlays released
  ASSERT_TRUE(PutOne(db_.get(), "k1", "newer").ok());
  ASSERT_TRUE(db_->Checkpoint().ok());
  Stats st = db_->GetStats();
  EXPECT_EQ(st.checkpoints, 2u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(*reader->Get("k" + std::to_string(i)), "old");
  auto it = reader->NewIterator();
  int n = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next(), ++n) EXPECT_EQ(it->value(), "old");
  EXPECT_EQ(n, 100);
  EXPECT_EQ(*GetOne(db_.get(), "k1"), "newer");
  EXPECT_EQ(*GetOne(db_.get(), "k2"), "new");
}

// Conflict checks look a key up in LMDB only when a checkpoint moved there a version newer
// than the committer's snapshot. Both halves matter: skipping the read would miss the conflict
// below; doing it always holds the shard's commit lock across a B-tree lookup.
TEST_F(IsolationTest, ConflictWithAVersionAlreadyCheckpointedIsStillFound) {
  ASSERT_TRUE(PutOne(db_.get(), "k", "v0").ok());
  auto loser = Begin();  // its snapshot is taken here
  ASSERT_TRUE(PutOne(db_.get(), "k", "winner").ok());
  ASSERT_TRUE(db_->Checkpoint().ok());  // the winner now lives only in LMDB
  ASSERT_EQ(db_->GetStats().overlay_bytes, 0u);
  ASSERT_TRUE(loser->Put("k", "loser").ok());
  absl::Status s = loser->Commit();
  EXPECT_TRUE(absl::IsAborted(s)) << s;
  EXPECT_NE(s.message().find("'k'"), std::string::npos) << s;
  EXPECT_EQ(db_->GetStats().shards[0].validation_lmdb_reads, 1u);
  EXPECT_EQ(*GetOne(db_.get(), "k"), "winner");

  // The same for a serializable read: 'k' changed after the snapshot and is only in LMDB.
  auto reader = Begin(Isolation::kSerializable);
  ASSERT_EQ(*reader->Get("k"), "winner");
  ASSERT_TRUE(PutOne(db_.get(), "k", "again").ok());
  ASSERT_TRUE(db_->Checkpoint().ok());
  ASSERT_TRUE(reader->Put("other", "x").ok());
  EXPECT_TRUE(absl::IsAborted(reader->Commit()));
  EXPECT_EQ(db_->GetStats().aborts_read_validation, 1u);
  // Two more lookups: the write 'other' and the read 'k' (the snapshot predates the checkpoint).
  const uint64_t reads = db_->GetStats().shards[0].validation_lmdb_reads;
  EXPECT_EQ(reads, 3u);

  // A snapshot taken after the checkpoint needs no LMDB lookup for a checkpointed key.
  auto fresh = Begin(Isolation::kSerializable);
  ASSERT_EQ(*fresh->Get("k"), "again");
  ASSERT_TRUE(fresh->Put("k", "fresh").ok());
  ASSERT_TRUE(fresh->Commit().ok());
  EXPECT_EQ(db_->GetStats().shards[0].validation_lmdb_reads, reads);
  EXPECT_EQ(*GetOne(db_.get(), "k"), "fresh");
}

// A checkpoint applies a delete by removing the key from LMDB, where "deleted after your
// snapshot" then looks like "never there". A transaction whose snapshot predates the delete
// must still see it as a conflict, or its write silently undoes the delete.
TEST_F(IsolationTest, DeleteAppliedByACheckpointStillConflicts) {
  ASSERT_TRUE(PutOne(db_.get(), "k", "v").ok());
  ASSERT_TRUE(PutOne(db_.get(), "r", "v").ok());
  ASSERT_TRUE(PutOne(db_.get(), "s/1", "v").ok());
  ASSERT_TRUE(db_->Checkpoint().ok());
  auto writer = Begin();
  auto reader = Begin(Isolation::kSerializable);
  ASSERT_EQ(*reader->Get("r"), "v");
  auto scanner = Begin(Isolation::kSerializable);
  IteratorOptions io;
  io.lower_bound = "s/";
  io.upper_bound = "s0";
  auto it = scanner->NewIterator(io);
  int n = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
  ASSERT_EQ(n, 1);
  {
    auto t = db_->Begin();
    ASSERT_TRUE(t->Delete("k").ok());
    ASSERT_TRUE(t->Delete("r").ok());
    ASSERT_TRUE(t->Delete("s/1").ok());
    ASSERT_TRUE(t->Commit().ok());
  }
  ASSERT_TRUE(db_->Checkpoint().ok());  // the deletes now exist only as absence from LMDB

  ASSERT_TRUE(writer->Put("k", "resurrected").ok());
  absl::Status s = writer->Commit();
  EXPECT_TRUE(absl::IsAborted(s)) << s;
  EXPECT_NE(s.message().find("'k'"), std::string::npos) << s;
  EXPECT_TRUE(absl::IsNotFound(GetOne(db_.get(), "k").status()));

  ASSERT_TRUE(reader->Put("x", "1").ok());
  s = reader->Commit();
  EXPECT_TRUE(absl::IsAborted(s)) << s;  // it read r, deleted since
  ASSERT_TRUE(scanner->Put("y", "1").ok());
  s = scanner->Commit();
  EXPECT_TRUE(absl::IsAborted(s)) << s;  // its range lost s/1 since
  EXPECT_EQ(db_->GetStats().aborts_read_validation, 2u);

  // A snapshot taken after the checkpoint may recreate the key.
  ASSERT_TRUE(PutOne(db_.get(), "k", "new").ok());
  EXPECT_EQ(*GetOne(db_.get(), "k"), "new");
}

// With no memory for checkpointed deletes (Options::checkpointed_deletes_bytes = 0), a key
// absent from the store may have been deleted after an old snapshot: writing it aborts,
// retryably, rather than risk undoing a delete. Newer snapshots are not affected.
TEST(Isolation, ForgottenCheckpointedDeletesAbortOldSnapshotsInsteadOfMissingThem) {
  Options o;
  o.path = FreshDir();
  o.checkpoint_interval = absl::ZeroDuration();
  o.checkpointed_deletes_bytes = 0;
  auto db = OpenOrDie(o);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(PutOne(db.get(), "k", "v").ok());
  ASSERT_TRUE(PutOne(db.get(), "z", "v").ok());
  ASSERT_TRUE(db->Checkpoint().ok());
  auto old = db->Begin();
  auto old_inserter = db->Begin();
  TxnOptions so;
  so.isolation = Isolation::kSerializable;
  auto old_scanner = db->Begin(so);
  auto it = old_scanner->NewIterator();
  it->SeekToFirst();
  ASSERT_TRUE(it->Valid());
  {
    auto t = db->Begin();
    ASSERT_TRUE(t->Delete("k").ok());
    ASSERT_TRUE(t->Commit().ok());
  }
  ASSERT_TRUE(db->Checkpoint().ok());
  ASSERT_TRUE(old->Put("k", "resurrected").ok());
  absl::Status s = old->Commit();
  EXPECT_TRUE(absl::IsAborted(s)) << s;
  EXPECT_TRUE(absl::IsNotFound(GetOne(db.get(), "k").status()));
  ASSERT_TRUE(old_scanner->Put("z", "2").ok());  // z is in LMDB, unchanged: no write conflict
  s = old_scanner->Commit();
  EXPECT_TRUE(absl::IsAborted(s)) << s;  // but its range lost k
  EXPECT_NE(s.message().find("range"), std::string::npos) << s;
  // The price: a key that never existed looks the same to an old snapshot.
  ASSERT_TRUE(old_inserter->Put("never-there", "1").ok());
  EXPECT_TRUE(absl::IsAborted(old_inserter->Commit()));
  // A snapshot taken after the checkpoint writes both freely.
  auto fresh = db->Begin();
  ASSERT_TRUE(fresh->Put("k", "new").ok());
  ASSERT_TRUE(fresh->Put("never-there", "1").ok());
  EXPECT_TRUE(fresh->Commit().ok());
}

}  // namespace
}  // namespace shardtx
