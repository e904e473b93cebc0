// WalReader across the life of segments: recycled files and earlier activations of the same
// segment never bring stale records back, and a writer reopened many times leaves a readable log.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/wal/wal_reader_test_util.h"
#include "wal/reader.h"
#include "wal/segment.h"
#include "wal/writer.h"

namespace shardtx::wal::testutil {
namespace {

TEST(WalReader, RecycledSegmentsNeverBringOldRecordsBack) {
  ScratchDir dir;
  WalOptions options = SmallSegments();
  options.recycle_segments = true;
  std::vector<Record> expected = MakeRecords(1, Sizes(500, 1000, 21), /*key=*/1);
  auto w = OpenWriter(dir.path(), options);
  ASSERT_NE(w, nullptr);
  AppendAll(w.get(), expected, Durability::kNone);
  uint64_t recycled = 0;
  for (int round = 0; round < 6; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    ASSERT_TRUE(w->Truncate(expected.back().lsn - 50).ok());
    const Lsn oldest = w->oldest_lsn();
    std::vector<Record> more =
        MakeRecords(expected.back().lsn + 1, Sizes(300, 1000, 100 + round), /*key=*/2 + round);
    AppendAll(w.get(), more, Durability::kNone);
    expected = Concat(
        std::vector<Record>(expected.begin() + (oldest - expected.front().lsn), expected.end()),
        more);
    ReadResult r = ReadLog(dir.path());
    ASSERT_TRUE(r.status.ok()) << r.status;
    ASSERT_EQ(r.records, expected);
    EXPECT_FALSE(r.tail.torn);  // stale bytes of a recycled file are not an attempted record
    if (round % 2 == 1) {       // a reopened writer also recycles
      recycled += w->Stats().segments_recycled;
      ASSERT_TRUE(w->Close().ok());
      w = OpenWriter(dir.path(), options);
      ASSERT_NE(w, nullptr);
    }
  }
  recycled += w->Stats().segments_recycled;
  EXPECT_GE(recycled, 6u) << "the test should reuse freed segments";
  ASSERT_TRUE(w->Close().ok());
  ReadResult r = ReadLog(dir.path());
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.records, expected);
}

TEST(WalReader, StaleRecordsOfAnEarlierActivationOfTheSameSegmentAreNeverRead) {
  ScratchDir dir;
  // Two activations of segment 1, both starting at LSN 1, records of the same sizes: the
  // earlier wrote 40 (all synced), the later 20. The earlier's records 21..40 lie exactly where
  // the later's would continue, with consecutive LSNs and sync_lsn past the later's end.
  const std::vector<size_t> sizes = Sizes(40, 200, 8);
  const std::vector<Record> earlier = WriteLog(dir.Sub("a"), sizes, Durability::kSync, 1);
  const std::vector<Record> later = WriteLog(
      dir.Sub("b"), std::vector<size_t>(sizes.begin(), sizes.begin() + 20), Durability::kSync, 2);
  ASSERT_EQ(SegmentNumbers(dir.Sub("a")).front(), SegmentNumbers(dir.Sub("b")).front());
  const uint64_t number = SegmentNumbers(dir.Sub("a")).front();
  const std::string a = SegmentPath(dir.Sub("a"), number);
  const std::string b = SegmentPath(dir.Sub("b"), number);
  const std::vector<RecordExtent> ea = RecordExtents(a, number);
  const std::vector<RecordExtent> eb = RecordExtents(b, number);
  ASSERT_EQ(ea.size(), 40u);
  ASSERT_EQ(eb.size(), 20u);
  ASSERT_EQ(ea[20].offset, eb[19].offset + eb[19].aligned_size);
  const std::string stale = ReadFile(a).substr(ea[20].offset, 8192);
  PatchFile(b, ea[20].offset, stale);

  ReadResult r = ReadLog(dir.Sub("b"));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.records, later);
  EXPECT_EQ(r.tail.next_lsn, 21u);
  ReadResult pit = ReadLog(dir.Sub("b"), ReaderOptions{.point_in_time = true});
  ASSERT_TRUE(pit.status.ok()) << pit.status;
  EXPECT_EQ(pit.records, later);
  EXPECT_FALSE(pit.tail.lost);

  const std::vector<Record> more = Resume(dir.Sub("b"), 5, 30, 3);
  ReadResult after = ReadLog(dir.Sub("b"));
  ASSERT_TRUE(after.status.ok()) << after.status;
  EXPECT_EQ(after.records, Concat(later, more));
}

TEST(WalReader, ReopeningTheWriterRepeatedlyKeepsTheLogReadable) {
  ScratchDir dir;
  std::vector<Record> expected;
  uint64_t last_segment = 0;
  for (int open = 0; open < 40; ++open) {
    SCOPED_TRACE(absl::StrCat("open ", open));
    auto w = OpenWriter(dir.path());
    ASSERT_NE(w, nullptr);
    const std::vector<Record> more =
        MakeRecords(expected.size() + 1, Sizes(open % 4, 3000, open), open);
    AppendAll(w.get(), more, open % 2 ? Durability::kSync : Durability::kNone);
    if (open % 3 != 0) {  // otherwise the destructor closes it
      ASSERT_TRUE(w->Close().ok());
    }
    w.reset();
    expected = Concat(expected, more);
    ReadResult r = ReadLog(dir.path());
    ASSERT_TRUE(r.status.ok()) << r.status;
    ASSERT_EQ(r.records, expected);
    EXPECT_FALSE(r.tail.torn);
    EXPECT_GT(r.tail.last_segment, last_segment) << "each open starts a new segment";
    last_segment = r.tail.last_segment;
  }
}

}  // namespace
}  // namespace shardtx::wal::testutil
