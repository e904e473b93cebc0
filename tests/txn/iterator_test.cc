// Iterators against a model: thousands of keys spread over LMDB (checkpointed), the overlay
// (overwrites and tombstones newer than LMDB, versions newer than the reader's snapshot) and
// the transaction's own writes, on two shards, so every read-ahead batch boundary, the batch
// growth and the merge of layers and shards are crossed, forward and in reverse.
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tests/support/test_db.h"

namespace shardtx {
namespace {

using testing::FreshDir;
using testing::OpenOrDie;

using Model = std::map<std::string, std::string>;

std::string Key(int i) { return absl::StrFormat("k%05d", i); }

// A database that checkpoints only when the test asks.
std::unique_ptr<Database> OpenManual(uint32_t shards = 1) {
  Options o;
  o.path = FreshDir();
  o.num_shards = shards;
  o.checkpoint_interval = absl::ZeroDuration();
  return OpenOrDie(o);
}

// Everything `it` yields after positioning with `position`, as key=value pairs.
template <class Position>
std::vector<std::pair<std::string, std::string>> Drain(Iterator* it, Position position,
                                                       size_t max = SIZE_MAX) {
  std::vector<std::pair<std::string, std::string>> out;
  for (position(it); it->Valid() && out.size() < max; it->Next()) {
    out.emplace_back(std::string(it->key()), std::string(it->value()));
  }
  EXPECT_TRUE(it->status().ok()) << it->status();
  return out;
}

// What an iterator over [lower, upper) of `m` yields, from `from` (inclusive) when given.
std::vector<std::pair<std::string, std::string>> Expect(const Model& m, const std::string& lower,
                                                        const std::string& upper, bool reverse,
                                                        const std::string* from = nullptr,
                                                        size_t max = SIZE_MAX) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& kv : m) {
    if (kv.first < lower || (!upper.empty() && kv.first >= upper)) continue;
    if (from != nullptr && (reverse ? kv.first > *from : kv.first < *from)) continue;
    out.push_back(kv);
  }
  if (reverse) std::reverse(out.begin(), out.end());
  if (out.size() > max) out.resize(max);
  return out;
}

TEST(Iterator, MatchesAModelAcrossLayersShardsAndReadAheadBatches) {
  auto db = OpenManual(2);
  ASSERT_NE(db, nullptr);
  std::mt19937 rng(7);
  constexpr int kKeys = 6000;
  Model model;
  TxnOptions fast;
  fast.durability = Durability::kNone;
  auto commit = [&](const std::vector<std::pair<int, int>>& ops, const std::string& tag) {
    auto t = db->Begin(fast);
    for (const auto& [k, op] : ops) {
      if (op == 0) {
        ASSERT_TRUE(t->Delete(Key(k)).ok());
        model.erase(Key(k));
      } else {
        ASSERT_TRUE(t->Put(Key(k), tag + std::to_string(k)).ok());
        model[Key(k)] = tag + std::to_string(k);
      }
    }
    ASSERT_TRUE(t->Commit().ok());
  };
  // LMDB: half of the key space.
  std::vector<std::pair<int, int>> ops;
  for (int i = 0; i < kKeys; ++i) {
    if (rng() % 2 == 0) ops.emplace_back(i, 1);
  }
  commit(ops, "lmdb");
  ASSERT_TRUE(db->Checkpoint().ok());
  // The overlay: overwrites, new keys, and deletes that hide LMDB versions, in runs long
  // enough that a whole read-ahead batch can be tombstones.
  ops.clear();
  for (int i = 0; i < kKeys; ++i) {
    const uint32_t r = rng() % 10;
    if (i >= 3000 && i < 3600) {
      ops.emplace_back(i, 0);  // a long run of deletes
    } else if (r < 2) {
      ops.emplace_back(i, 0);
    } else if (r < 4) {
      ops.emplace_back(i, 1);
    }
  }
  commit(ops, "overlay");
  // The reader's snapshot; later commits (overlay versions it must not see) follow.
  auto reader = db->Begin();
  const Model at_snapshot = model;
  ops.clear();
  for (int i = 0; i < kKeys; i += 3) ops.emplace_back(i, i % 2);
  commit(ops, "later");
  // The reader's own writes win over everything.
  Model mine = at_snapshot;
  for (int n = 0; n < 300; ++n) {
    const int k = static_cast<int>(rng() % kKeys);
    if (rng() % 3 == 0) {
      ASSERT_TRUE(reader->Delete(Key(k)).ok());
      mine.erase(Key(k));
    } else {
      ASSERT_TRUE(reader->Put(Key(k), "mine" + std::to_string(k)).ok());
      mine[Key(k)] = "mine" + std::to_string(k);
    }
  }

  for (bool reverse : {false, true}) {
    SCOPED_TRACE(reverse ? "reverse" : "forward");
    IteratorOptions io;
    io.reverse = reverse;
    auto it = reader->NewIterator(io);
    EXPECT_EQ(Drain(it.get(), [](Iterator* i) { i->SeekToFirst(); }),
              Expect(mine, "", "", reverse));
    // A fresh transaction sees the latest state, and none of the reader's writes.
    auto latest = db->Begin();
    auto lit = latest->NewIterator(io);
    EXPECT_EQ(Drain(lit.get(), [](Iterator* i) { i->SeekToFirst(); }),
              Expect(model, "", "", reverse));
    for (int n = 0; n < 40; ++n) {
      int a = static_cast<int>(rng() % (kKeys + 200)) - 100;
      int b = a + static_cast<int>(rng() % 1500);
      IteratorOptions bo;
      bo.reverse = reverse;
      bo.lower_bound = a < 0 ? "" : Key(a);
      bo.upper_bound = b >= kKeys + 100 ? "" : Key(b);
      auto bit = reader->NewIterator(bo);
      ASSERT_EQ(Drain(bit.get(), [](Iterator* i) { i->SeekToFirst(); }),
                Expect(mine, bo.lower_bound, bo.upper_bound, reverse))
          << "[" << bo.lower_bound << ", " << bo.upper_bound << ")";
      // Seek, then a short read, then a seek elsewhere on the same iterator.
      const std::string target = Key(static_cast<int>(rng() % kKeys));
      ASSERT_EQ(Drain(
                    bit.get(), [&](Iterator* i) { i->Seek(target); }, 5),
                Expect(mine, bo.lower_bound, bo.upper_bound, reverse, &target, 5))
          << "seek " << target << " in [" << bo.lower_bound << ", " << bo.upper_bound << ")";
    }
  }
}

// An overlay scan looks at a bounded number of keys per call (Overlay::kScanWork), visible or
// not, so that its shared lock never stalls commits for long. A run of keys committed after the
// reader's snapshot, longer than that bound, must be crossed, not taken for the end.
TEST(Iterator, CrossesLongRunsOfKeysNewerThanTheSnapshot) {
  auto db = OpenManual();
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(testing::PutOne(db.get(), "a", "1").ok());
  ASSERT_TRUE(testing::PutOne(db.get(), "z", "2").ok());
  auto reader = db->Begin();
  auto t = db->Begin();
  for (int i = 0; i < 3 * 1024 + 7; ++i) {  // three times Overlay::kScanWork, and some
    ASSERT_TRUE(t->Put(Key(i), "later").ok());
  }
  ASSERT_TRUE(t->Commit().ok());
  for (bool reverse : {false, true}) {
    IteratorOptions io;
    io.reverse = reverse;
    auto it = reader->NewIterator(io);
    std::string got;
    for (it->SeekToFirst(); it->Valid(); it->Next()) got += std::string(it->key()) + " ";
    ASSERT_TRUE(it->status().ok()) << it->status();
    EXPECT_EQ(got, reverse ? "z a " : "a z ");
  }
}

// key() and value() point into the iterator's read-ahead batch or, for the transaction's own
// write, into a copy: they must not change while the iterator stands, whatever the
// transaction writes meanwhile, and the iteration must go on from where it stood.
TEST(Iterator, CurrentEntrySurvivesTheTransactionsOwnWrites) {
  Options o;
  o.path = FreshDir();
  auto db = OpenOrDie(o);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(testing::PutOne(db.get(), Key(0), "committed").ok());
  auto t = db->Begin();
  const std::string mine(40, 'm');  // longer than any inline string buffer
  ASSERT_TRUE(t->Put(Key(1), mine).ok());
  ASSERT_TRUE(t->Put(Key(3), "three").ok());
  auto it = t->NewIterator(IteratorOptions());
  it->Seek(Key(1));
  ASSERT_TRUE(it->Valid());
  const absl::string_view key = it->key(), value = it->value();
  ASSERT_EQ(key, Key(1));
  ASSERT_EQ(value, mine);
  // Overwrite the very entry, then grow the write buffer enough to move its entries around.
  ASSERT_TRUE(t->Put(Key(1), std::string(40, 'x')).ok());
  for (int i = 100; i < 2100; ++i) ASSERT_TRUE(t->Put(Key(i), "filler").ok());
  EXPECT_EQ(key, Key(1));
  EXPECT_EQ(value, mine);
  EXPECT_EQ(it->key(), Key(1));
  EXPECT_EQ(it->value(), mine);
  it->Next();
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), Key(3));
  EXPECT_EQ(it->value(), "three");
}

// An LMDB entry's bytes are read in place from the transaction's snapshot. Checkpoints that
// rewrite every key (and free the pages the snapshot reads) must not change them.
TEST(Iterator, CheckpointedEntriesStayPutWhileCheckpointsRewriteThem) {
  auto db = OpenManual();
  ASSERT_NE(db, nullptr);
  constexpr int kKeys = 2000;
  auto rewrite = [&](const std::string& tag) {
    auto w = db->Begin();
    for (int i = 0; i < kKeys; ++i) ASSERT_TRUE(w->Put(Key(i), tag + Key(i)).ok());
    ASSERT_TRUE(w->Commit().ok());
    ASSERT_TRUE(db->Checkpoint().ok());
  };
  rewrite("old");
  auto reader = db->Begin();
  auto it = reader->NewIterator(IteratorOptions());
  it->Seek(Key(kKeys / 2));
  ASSERT_TRUE(it->Valid());
  const absl::string_view value = it->value();
  ASSERT_EQ(value, "old" + Key(kKeys / 2));
  for (const char* tag : {"new", "newer", "newest"}) rewrite(tag);
  EXPECT_EQ(value, "old" + Key(kKeys / 2));
  int seen = 0;
  for (; it->Valid(); it->Next(), ++seen) {
    ASSERT_EQ(it->value(), "old" + std::string(it->key()));
  }
  ASSERT_TRUE(it->status().ok()) << it->status();
  EXPECT_EQ(seen, kKeys / 2);
}

// Overlay entries are read in place too. Commits that keep adding keys to the same overlay
// (splitting the nodes that hold its entries) must change neither the entry the iterator
// stands on nor what the rest of the scan yields, whether they ran before it goes on or
// while it goes on.
TEST(Iterator, OverlayEntriesStayPutWhileCommitsKeepArriving) {
  auto db = OpenManual();
  ASSERT_NE(db, nullptr);
  constexpr int kKeys = 500;
  {
    auto w = db->Begin();
    for (int i = 0; i < kKeys; ++i) ASSERT_TRUE(w->Put(Key(i * 10), "v" + Key(i * 10)).ok());
    ASSERT_TRUE(w->Commit().ok());
  }
  auto reader = db->Begin();
  auto it = reader->NewIterator(IteratorOptions());
  it->Seek(Key(2500));
  ASSERT_TRUE(it->Valid());
  const absl::string_view key = it->key(), value = it->value();
  auto commit_between = [&](int offset) {
    auto w = db->Begin();
    for (int i = 0; i < kKeys; ++i) {
      ASSERT_TRUE(w->Put(Key(i * 10 + offset), "new").ok());
      ASSERT_TRUE(w->Put(Key(i * 10), "overwritten").ok());
    }
    ASSERT_TRUE(w->Commit().ok());
  };
  for (int offset = 1; offset < 5; ++offset) commit_between(offset);
  EXPECT_EQ(key, Key(2500));
  EXPECT_EQ(value, "v" + Key(2500));
  std::thread writer([&] {
    for (int offset = 5; offset < 10; ++offset) commit_between(offset);
  });
  int seen = 0;
  for (; it->Valid(); it->Next(), ++seen) {
    ASSERT_EQ(it->value(), "v" + std::string(it->key()));
  }
  writer.join();
  ASSERT_TRUE(it->status().ok()) << it->status();
  EXPECT_EQ(seen, kKeys / 2);
}

// Seek to the iterator's own key(): bytes inside the batch that the seek replaces, so the seek
// must copy them before it reads anew.
TEST(Iterator, SeekToItsOwnKeyAcrossBatches) {
  auto db = OpenManual();
  ASSERT_NE(db, nullptr);
  {
    auto w = db->Begin();
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE(w->Put(Key(i), "v" + Key(i)).ok());
    ASSERT_TRUE(w->Commit().ok());
  }
  ASSERT_TRUE(db->Checkpoint().ok());
  ASSERT_TRUE(testing::PutOne(db.get(), Key(500), "overlay").ok());  // an overlay layer too
  auto t = db->Begin();
  ASSERT_TRUE(t->Put(Key(250), "mine").ok());  // and the transaction's own write
  for (bool reverse : {false, true}) {
    IteratorOptions io;
    io.reverse = reverse;
    auto it = t->NewIterator(io);
    it->SeekToFirst();
    for (int step = 0; step < 700; ++step) {
      ASSERT_TRUE(it->Valid());
      const std::string before(it->key());
      it->Seek(it->key());
      ASSERT_TRUE(it->Valid()) << before;
      ASSERT_EQ(it->key(), before);
      it->Next();
    }
    ASSERT_TRUE(it->status().ok()) << it->status();
  }
}

// Once its transaction ends, an iterator (whose batches pointed into the transaction's
// snapshot) reports an error instead of moving; it must not read what it pointed at.
TEST(Iterator, StopsWithAnErrorOnceItsTransactionEnds) {
  for (bool commit : {true, false}) {
    SCOPED_TRACE(commit ? "commit" : "rollback");
    auto db = OpenManual();
    ASSERT_NE(db, nullptr);
    {
      auto w = db->Begin();
      for (int i = 0; i < 100; ++i) ASSERT_TRUE(w->Put(Key(i), std::string(40, 'v')).ok());
      ASSERT_TRUE(w->Commit().ok());
    }
    auto t = db->Begin();
    auto it = t->NewIterator(IteratorOptions());
    it->SeekToFirst();
    ASSERT_TRUE(it->Valid());
    it->Next();
    ASSERT_TRUE(it->Valid());
    if (commit) {
      ASSERT_TRUE(t->Commit().ok());
    } else {
      ASSERT_TRUE(t->Rollback().ok());
    }
    EXPECT_FALSE(it->Valid());
    // Another transaction's commit and a checkpoint recycle what the snapshot held.
    ASSERT_TRUE(testing::PutOne(db.get(), Key(1), std::string(40, 'w')).ok());
    ASSERT_TRUE(db->Checkpoint().ok());
    it->Next();
    EXPECT_FALSE(it->Valid());
    EXPECT_FALSE(it->status().ok());
    it->Seek(Key(5));
    EXPECT_FALSE(it->Valid());
    EXPECT_FALSE(it->status().ok());
  }
}

TEST(Iterator, ReverseSeekToTheEmptyStringFindsNothing) {
  Options o;
  o.path = FreshDir();
  auto db = OpenOrDie(o);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(testing::PutOne(db.get(), "a", "1").ok());
  auto t = db->Begin();
  IteratorOptions io;
  io.reverse = true;
  auto it = t->NewIterator(io);
  it->Seek("");  // the last key <= "": there is none ("" is below every key)
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().ok()) << it->status();
  it->Seek("a");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "a");
}

}  // namespace
}  // namespace shardtx
