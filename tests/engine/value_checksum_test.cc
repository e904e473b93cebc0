// Value checksums and the store digest (engine/stored_value.h): a damaged value is never read
// back as if it were right, a lost or resurrected entry changes the digest, and format-1 stores
// are upgraded.
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/lmdb_store.h"
#include "engine/overlay.h"
#include "engine/stored_value.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/raw_lmdb.h"
#include "tests/support/test_db.h"
#include "util/coding.h"

namespace shardtx::engine {
namespace {

using ::shardtx::testing::FreshDir;
using ::shardtx::testing::RawGet;
using ::shardtx::testing::RawPut;
using ::shardtx::testing::RawWrite;
using ::shardtx::testing::WriteFormat1Store;
using ::testing::HasSubstr;

// Every single-bit change of the stored bytes, and the same bytes under another key, fail.
TEST(StoredValue, EveryFlippedBitAndAnotherKeyFailTheCheck) {
  std::string data, table, meta;
  EncodeData(&data, "key", 42, "value");
  EncodeTableValue(&table, "prepared", "key", "value");
  EncodeMeta(&meta, "key", "value");
  Timestamp ts;
  absl::string_view v;
  ASSERT_EQ(DecodeData("key", data, &ts, &v), StoredState::kOk);
  EXPECT_EQ(ts, 42u);
  EXPECT_EQ(v, "value");
  ASSERT_EQ(DecodeTableValue("prepared", "key", table, &v), StoredState::kOk);
  EXPECT_EQ(v, "value");
  ASSERT_EQ(DecodeMeta("key", meta, &v), StoredState::kOk);
  EXPECT_EQ(v, "value");

  EXPECT_EQ(DecodeData("kez", data, &ts, &v), StoredState::kMismatch);
  EXPECT_EQ(DecodeTableValue("prepared", "kez", table, &v), StoredState::kMismatch);
  EXPECT_EQ(DecodeTableValue("other", "key", table, &v), StoredState::kMismatch);
  EXPECT_EQ(DecodeMeta("kez", meta, &v), StoredState::kMismatch);
  for (size_t i = 0; i < data.size() * 8; ++i) {
    std::string d = data;
    d[i / 8] ^= static_cast<char>(1 << (i % 8));
    EXPECT_EQ(DecodeData("key", d, &ts, &v), StoredState::kMismatch) << "bit " << i;
  }
  for (size_t i = 0; i < table.size() * 8; ++i) {
    std::string d = table;
    d[i / 8] ^= static_cast<char>(1 << (i % 8));
    EXPECT_EQ(DecodeTableValue("prepared", "key", d, &v), StoredState::kMismatch) << "bit " << i;
  }
  for (size_t i = 0; i < meta.size() * 8; ++i) {
    std::string d = meta;
    d[i / 8] ^= static_cast<char>(1 << (i % 8));
    EXPECT_EQ(DecodeMeta("key", d, &v), StoredState::kMismatch) << "bit " << i;
  }
  EXPECT_EQ(DecodeData("key", data.substr(0, 15), &ts, &v), StoredState::kMalformed);
  EXPECT_EQ(DecodeTableValue("prepared", "key", table.substr(0, 7), &v), StoredState::kMalformed);
  // A byte moved from the key into the value changes the check too.
  std::string moved;
  EncodeData(&moved, "ke", 42, "yvalue");
  EXPECT_NE(StoredDataCheck(moved), StoredDataCheck(data));
}

class ValueChecksums : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshDir();
    std::filesystem::create_directories(dir_);
  }

  std::unique_ptr<ShardStore> Open() {
    StoreOptions o;
    o.initial_map_size = 64 << 20;
    o.checkpoint_chunk_bytes = 0;
    auto s = ShardStore::Open(dir_, o);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }

  // Checkpoints `puts` (key -> value; an empty value deletes) at timestamp ts.
  static void Apply(ShardStore* store, const std::map<std::string, std::string>& puts, Timestamp ts,
                    uint64_t lsn, const std::vector<TableWrite>& tables = {}) {
    Overlay o;
    for (const auto& [k, v] : puts) o.Add(k, ts, v.empty(), v);
    ASSERT_TRUE(store->Apply({&o}, lsn, ts, tables).ok());
  }

  // A store holding a=1, b=2, c=3 and a prepared-table row, closed.
  void MakeStore() {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    Apply(store.get(), {{"a", "1"}, {"b", "2"}, {"c", "3"}}, 10, 5,
          {TableWrite{"prepared", "p1", std::string("row")}});
  }

  std::string dir_;
};

TEST_F(ValueChecksums, ADamagedValueIsDataLossNamingTheKeyOnEveryReadPath) {
  MakeStore();
  RawWrite(dir_, [](MDB_txn* txn, const auto& open) {
    const MDB_dbi data = open("data");
    std::string v = RawGet(txn, data, "b");
    v.back() ^= 0x01;  // "2" -> "3": still a plausible value
    RawPut(txn, data, "b", v);
  });
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto view = store->Pin();
  ASSERT_TRUE(view.ok());
  auto a = (*view)->Get("a");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)->value, "1");
  auto b = (*view)->Get("b");
  EXPECT_EQ(b.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(b.status().message(), HasSubstr("checksum mismatch in the value of key 'b'"));
  EXPECT_THAT(b.status().message(), HasSubstr(dir_));
  std::vector<ScanEntry> out;
  absl::Status scan = (*view)->Scan("", true, false, 10, &out);
  EXPECT_EQ(scan.code(), absl::StatusCode::kDataLoss) << scan;
  for (const ScanEntry& e : out) EXPECT_NE(e.key, "b") << "returned with the wrong value";
  out.clear();
  EXPECT_EQ((*view)->Scan("", true, true, 10, &out).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ((*view)->AnyNewerInRange("a", "z", 100).status().code(), absl::StatusCode::kDataLoss);
  view->reset();

  auto check = store->Check();
  ASSERT_TRUE(check.ok()) << check.status();
  EXPECT_EQ(check->bad_values, 1u);
  ASSERT_EQ(check->problems.size(), 1u);  // the digest holds: the entry is there, its bytes not
  EXPECT_THAT(check->problems[0], HasSubstr("table data, entry 1, key 'b': checksum mismatch"));
}

TEST_F(ValueChecksums, AValueCopiedToAnotherKeyFailsItsCheck) {
  MakeStore();
  RawWrite(dir_, [](MDB_txn* txn, const auto& open) {
    const MDB_dbi data = open("data");
    RawPut(txn, data, "c", RawGet(txn, data, "a"));
  });
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto view = store->Pin();
  ASSERT_TRUE(view.ok());
  EXPECT_EQ((*view)->Get("c").status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(ValueChecksums, ADamagedPreparedRowFailsReadTable) {
  MakeStore();
  RawWrite(dir_, [](MDB_txn* txn, const auto& open) {
    const MDB_dbi t = open("prepared");
    std::string v = RawGet(txn, t, "p1");
    v[9] ^= 0x20;
    RawPut(txn, t, "p1", v);
  });
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto rows = store->ReadTable("prepared");
  EXPECT_EQ(rows.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(rows.status().message(), HasSubstr("table prepared, key 'p1'"));
}

TEST_F(ValueChecksums, ADamagedMetaValueFailsOpen) {
  MakeStore();
  RawWrite(dir_, [](MDB_txn* txn, const auto& open) {
    const MDB_dbi meta = open("meta");
    std::string v = RawGet(txn, meta, "applied_lsn");
    v[0] ^= 0x04;  // 5 -> 1: redo would start too early or, the other way, too late
    RawPut(txn, meta, "applied_lsn", v);
  });
  StoreOptions o;
  o.initial_map_size = 64 << 20;
  auto store = ShardStore::Open(dir_, o);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(store.status().message(), HasSubstr("applied_lsn: checksum mismatch"));
}

// A store that has been written never starts afresh: without its format_version (or a table)
// it is damaged, and Open says so instead of writing new, empty metadata over it.
TEST_F(ValueChecksums, AWrittenStoreMissingItsFormatIsDataLossNotANewStore) {
  MakeStore();
  RawWrite(dir_, [](MDB_txn* txn, const auto& open) {
    const std::string key = "format_version";
    MDB_val k = ::shardtx::testing::RawVal(key);
    EXPECT_EQ(mdb_del(txn, open("meta"), &k, nullptr), 0);
  });
  StoreOptions o;
  o.initial_map_size = 64 << 20;
  for (int attempt = 0; attempt < 2; ++attempt) {  // and nothing was written the first time
    auto store = ShardStore::Open(dir_, o);
    EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
    EXPECT_THAT(store.status().message(), HasSubstr("format_version is missing"));
  }
}

// A checkpoint that fills the map grows it and starts again; chunks already committed stay,
// and the digest still matches what the store holds.
TEST_F(ValueChecksums, TheDigestSurvivesAMapGrowthInTheMiddleOfAChunkedCheckpoint) {
  StoreOptions o;
  o.initial_map_size = 256 << 10;
  o.checkpoint_chunk_bytes = 16 << 10;
  auto store = ShardStore::Open(dir_, o);
  ASSERT_TRUE(store.ok());
  Overlay layer;
  for (int i = 0; i < 3000; ++i) layer.Add(absl::StrCat("key", i), 5, false, std::string(400, 'g'));
  ASSERT_TRUE((*store)->Apply({&layer}, 1, 5).ok());
  EXPECT_GT((*store)->map_growths(), 0u);
  auto check = (*store)->Check();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->ok()) << check->problems[0];
  EXPECT_EQ(check->computed.entries, 3000u);
}

// No value checksum can see an entry that vanished, or one that came back with its own valid
// check: the digest does.
TEST_F(ValueChecksums, TheDigestFindsALostAndAResurrectedEntry) {
  MakeStore();
  const std::string copy = dir_ + ".copy";
  std::filesystem::remove_all(copy);
  std::filesystem::copy(dir_, copy);
  RawWrite(dir_, [](MDB_txn* txn, const auto& open) {
    const std::string key = "b";
    MDB_val k = ::shardtx::testing::RawVal(key);
    EXPECT_EQ(mdb_del(txn, open("data"), &k, nullptr), 0);
  });
  RawWrite(copy, [](MDB_txn* txn, const auto& open) {
    std::string v;
    EncodeData(&v, "zombie", 3, "deleted long ago");
    RawPut(txn, open("data"), "zombie", v);
  });
  for (const std::string& d : {dir_, copy}) {
    SCOPED_TRACE(d);
    StoreOptions o;
    o.initial_map_size = 64 << 20;
    auto store = ShardStore::Open(d, o);
    ASSERT_TRUE(store.ok()) << store.status();
    auto check = (*store)->Check();
    ASSERT_TRUE(check.ok());
    EXPECT_EQ(check->bad_values, 0u);
    ASSERT_EQ(check->problems.size(), 1u);
    EXPECT_THAT(check->problems[0],
                HasSubstr("digest mismatch: the last checkpoint recorded 4 entries"));
  }
}

// The digest follows overwrites, deletes, deletes of absent keys and table rows, in every
// chunk of a chunked checkpoint, and across a reopen.
TEST_F(ValueChecksums, TheDigestStaysInStepWithEveryCommittedChunk) {
  StoreOptions o;
  o.initial_map_size = 64 << 20;
  o.checkpoint_chunk_bytes = 256;
  auto store = ShardStore::Open(dir_, o);
  ASSERT_TRUE(store.ok());
  std::map<std::string, std::string> live;
  int chunks_checked = 0;
  auto between = [&](std::chrono::steady_clock::duration) {
    auto check = (*store)->Check();
    ASSERT_TRUE(check.ok());
    EXPECT_TRUE(check->ok()) << check->problems[0];
    ++chunks_checked;
  };
  for (int round = 0; round < 4; ++round) {
    Overlay layer;
    for (int i = 0; i < 60; ++i) {
      const std::string key = absl::StrCat("key", (i * 7 + round * 13) % 90);
      const bool del = (i + round) % 5 == 0;
      layer.Add(key, 100 + round, del, del ? "" : std::string(20 + round, 'x'));
      if (del) {
        live.erase(key);
      } else {
        live[key] = std::string(20 + round, 'x');
      }
    }
    std::vector<TableWrite> rows = {{"prepared", absl::StrCat("p", round), std::string("row")},
                                    {"prepared", absl::StrCat("p", round - 1), std::nullopt},
                                    {"prepared", "never-there", std::nullopt}};
    ASSERT_TRUE((*store)->Apply({&layer}, 10 + round, 100 + round, rows, between).ok());
  }
  EXPECT_GT(chunks_checked, 10);
  store->reset();
  store = ShardStore::Open(dir_, o);
  ASSERT_TRUE(store.ok());
  auto check = (*store)->Check();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->ok());
  EXPECT_EQ(check->computed.entries, live.size() + 1);  // plus the last prepared row
  EXPECT_EQ(check->recorded, check->computed);
}

TEST_F(ValueChecksums, AFormat1StoreIsUpgradedWhenOpened) {
  std::map<std::string, std::string> data;
  for (int i = 0; i < 2000; ++i) data[absl::StrCat("key", i)] = std::string(i % 50, 'v');
  WriteFormat1Store(dir_, data, 77, 1234);
  for (int open = 0; open < 2; ++open) {  // upgraded, then opened as format 2
    auto store = Open();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->meta().format_version, 2u);
    EXPECT_EQ(store->meta().applied_lsn, 1234u);
    EXPECT_EQ(store->meta().max_ts, 77u);
    auto check = store->Check();
    ASSERT_TRUE(check.ok());
    EXPECT_TRUE(check->ok()) << check->problems[0];
    EXPECT_EQ(check->computed.entries, data.size() + 1);
    auto view = store->Pin();
    ASSERT_TRUE(view.ok());
    auto got = (*view)->Get("key1999");
    ASSERT_TRUE(got.ok() && got->has_value());
    EXPECT_EQ((*got)->value, data["key1999"]);
    EXPECT_EQ((*got)->ts, 77u);
    view->reset();
    auto rows = store->ReadTable("prepared");
    ASSERT_TRUE(rows.ok());
    ASSERT_EQ(rows->size(), 1u);
    EXPECT_EQ((*rows)[0].second, "prepare-record");
  }
}

TEST_F(ValueChecksums, ANewerFormatIsRefused) {
  MakeStore();
  RawWrite(dir_, [](MDB_txn* txn, const auto& open) {
    std::string f, sealed;
    PutFixed32(&f, 3);
    EncodeMeta(&sealed, "format_version", f);
    RawPut(txn, open("meta"), "format_version", sealed);
  });
  StoreOptions o;
  o.initial_map_size = 64 << 20;
  auto store = ShardStore::Open(dir_, o);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("format version 3 is newer than this build's 2"));
}

// A whole format-1 database directory opens: each store upgrades, then the manifest says 2.
TEST(DirectoryFormat, AFormat1DatabaseIsUpgradedAndItsManifestRewritten) {
  const std::string dir = FreshDir();
  std::filesystem::create_directories(dir + "/shard-000/lmdb");
  WriteFormat1Store(dir + "/shard-000/lmdb", {{"k", "old value"}}, 9, 0,
                    /*with_prepared_row=*/false);
  std::ofstream(dir + "/SHARDTX") << "format 1\nshards 1\npartitioning hash\n";
  Options o;
  o.path = dir;
  o.create_if_missing = false;
  {
    auto db = Database::Open(o);
    ASSERT_TRUE(db.ok()) << db.status();
    EXPECT_EQ(*shardtx::testing::GetOne(db->get(), "k"), "old value");
    ASSERT_TRUE(shardtx::testing::PutOne(db->get(), "k2", "new").ok());
  }
  std::ifstream in(dir + "/SHARDTX");
  std::string first;
  std::getline(in, first);
  EXPECT_EQ(first, "format 2");
  auto db = Database::Open(o);
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_EQ(*shardtx::testing::GetOne(db->get(), "k2"), "new");
}

}  // namespace
}  // namespace shardtx::engine
