// What recovery demands of a shard's WAL (issue 14, item 10): every LSN above the checkpoint's
// applied LSN must be there (a gap is kDataLoss naming the missing range), while segments wholly
// below it that a crash inside WalWriter::Truncate left behind, cut off by a gap, are tolerated.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "shardtx/database.h"
#include "tests/support/test_db.h"
#include "wal/segment.h"

namespace shardtx {
namespace {

using testing::FreshDir;
using testing::GetOne;
using testing::OpenOrDie;
using testing::PutOne;

// One shard with a log of its own (the tests look at its segment files), small segments,
// checkpoints only when asked.
Options SmallSegments(const std::string& path) {
  Options o;
  o.path = path;
  o.num_shards = 1;
  o.log_layout = Options::LogLayout::kPerShard;
  o.wal_segment_size = 64 << 10;
  o.max_txn_bytes = 16 << 10;
  o.checkpoint_on_close = false;
  o.checkpoint_interval = absl::ZeroDuration();
  o.checkpoint_wal_bytes = 0;
  o.checkpoint_overlay_bytes = 0;
  return o;
}

std::string WalDir(const std::string& path) { return path + "/shard-000/wal"; }

struct SegmentFile {
  uint64_t number = 0;
  uint64_t first_lsn = 0;
  std::string path;
};

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// The segment files with a valid header, ascending.
std::vector<SegmentFile> Segments(const std::string& wal_dir) {
  std::vector<SegmentFile> out;
  for (const auto& e : std::filesystem::directory_iterator(wal_dir)) {
    const std::string name = e.path().filename().string();
    std::optional<uint64_t> n = wal::ParseSegmentFileName(name);
    if (!n.has_value()) continue;
    const std::string bytes = ReadFile(e.path().string()).substr(0, wal::kSegmentHeaderSize);
    if (auto h = wal::DecodeSegmentHeader(bytes, *n)) {
      out.push_back({*n, h->first_lsn, e.path().string()});
    }
  }
  std::sort(out.begin(), out.end(),
            [](const SegmentFile& a, const SegmentFile& b) { return a.number < b.number; });
  return out;
}

std::string Key(int i) { return absl::StrCat("key", i); }
std::string Value(int i) { return absl::StrCat(i, ":", std::string(3000, 'v')); }

TEST(RecoveryWal, MissingSegmentAboveTheAppliedLsnIsDataLossNamingTheLsnRange) {
  const Options o = SmallSegments(FreshDir());
  uint64_t applied = 0;
  {
    auto db = OpenOrDie(o);
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(PutOne(db.get(), Key(i), Value(i)).ok());
    ASSERT_TRUE(db->Checkpoint().ok());
    for (int i = 50; i < 120; ++i) ASSERT_TRUE(PutOne(db.get(), Key(i), Value(i)).ok());
    applied = db->GetStats().shards.at(0).applied_lsn;
    ASSERT_TRUE(db->Close().ok());
  }
  ASSERT_GT(applied, 0u);
  // The oldest segment holding an LSN above the applied one: the one where applied + 1 lies.
  std::vector<SegmentFile> segs = Segments(WalDir(o.path));
  size_t k = 0;
  while (k + 1 < segs.size() && segs[k + 1].first_lsn <= applied + 1) ++k;
  ASSERT_LE(segs[k].first_lsn, applied + 1);
  ASSERT_LT(k + 2, segs.size()) << "too few segments for this test";
  const uint64_t next_first = segs[k + 1].first_lsn;
  ASSERT_GT(next_first, applied + 1);
  std::filesystem::remove(segs[k].path);

  auto db = Database::Open(o);
  ASSERT_FALSE(db.ok()) << "opened with LSNs " << applied + 1 << " to " << next_first - 1
                        << " missing";
  EXPECT_TRUE(absl::IsDataLoss(db.status())) << db.status();
  const std::string range = absl::StrCat("LSN ", applied + 1, " to ", next_first - 1);
  EXPECT_TRUE(absl::StrContains(db.status().message(), range))
      << db.status() << "\n  expected it to name " << range;
}

TEST(RecoveryWal, OldSegmentLeftBehindBeyondAGapBelowTheAppliedLsnIsTolerated) {
  const Options o = SmallSegments(FreshDir());
  std::vector<SegmentFile> before;
  std::string oldest_bytes;
  {
    auto db = OpenOrDie(o);
    for (int i = 0; i < 80; ++i) ASSERT_TRUE(PutOne(db.get(), Key(i), Value(i)).ok());
    before = Segments(WalDir(o.path));
    ASSERT_GE(before.size(), 4u);
    oldest_bytes = ReadFile(before.front().path);
    ASSERT_TRUE(db->Checkpoint().ok());
    for (int i = 80; i < 90; ++i) ASSERT_TRUE(PutOne(db.get(), Key(i), Value(i)).ok());
    ASSERT_TRUE(db->Close().ok());
  }
  // The checkpoint's Truncate freed the oldest segments. A crash inside it could have kept the
  // removal of the second but not of the first (nothing orders directory entries until the
  // directory is synced): put the first back, with the second still missing.
  std::vector<SegmentFile> after = Segments(WalDir(o.path));
  ASSERT_FALSE(after.empty());
  ASSERT_GT(after.front().number, before[1].number) << "Truncate freed fewer than two segments";
  {
    std::ofstream f(before.front().path, std::ios::binary);
    f.write(oldest_bytes.data(), static_cast<std::streamsize>(oldest_bytes.size()));
  }
  ASSERT_EQ(Segments(WalDir(o.path)).front().number, before.front().number);

  {
    auto db = Database::Open(o);
    ASSERT_TRUE(db.ok()) << db.status();
    for (int i = 0; i < 90; ++i) EXPECT_EQ(*GetOne(db->get(), Key(i)), Value(i)) << i;
    // The next checkpoint's Truncate removes the leftover with the rest.
    ASSERT_TRUE(PutOne(db->get(), Key(90), Value(90)).ok());
    ASSERT_TRUE((*db)->Checkpoint().ok());
    ASSERT_TRUE((*db)->Close().ok());
  }
  EXPECT_GT(Segments(WalDir(o.path)).front().number, before.front().number);
  auto db = OpenOrDie(o);
  for (int i = 0; i < 91; ++i) EXPECT_EQ(*GetOne(db.get(), Key(i)), Value(i)) << i;
}

}  // namespace
}  // namespace shardtx
