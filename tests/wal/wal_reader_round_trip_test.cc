// WalReader reads back what WalWriter wrote: records of every size across many segments, from
// every LSN, after Truncate, and in directories holding other files.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "tests/wal/wal_reader_test_util.h"
#include "wal/reader.h"
#include "wal/writer.h"

namespace shardtx::wal::testutil {
namespace {

TEST(WalReader, RoundTripsRecordsOfEverySizeAcrossManySegments) {
  ScratchDir dir;
  const WalOptions options = SmallSegments();
  std::vector<size_t> sizes;
  for (size_t n = 0; n <= 700; ++n) {
    sizes.push_back(n);
    // Interleave large records, up to one that fills a segment exactly.
    if (n % 100 == 50) {
      for (size_t big : {options.max_record_size, options.max_record_size - 1, size_t{40000},
                         size_t{65536 - 64 - 32 - 8}, size_t{4096}}) {
        sizes.push_back(big);
      }
    }
  }
  const std::vector<Record> written = WriteLog(dir.path(), sizes, Durability::kNone);
  ASSERT_EQ(written.size(), sizes.size());

  ReadResult r = ReadLog(dir.path());
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.records, written);
  EXPECT_EQ(r.tail.next_lsn, written.size() + 1);
  EXPECT_EQ(r.tail.records_read, written.size());
  EXPECT_FALSE(r.tail.torn);
  EXPECT_FALSE(r.tail.lost);
  ASSERT_GE(r.tail.segments.size(), 20u) << "the records should span many segments";
  for (size_t i = 1; i < r.tail.segments.size(); ++i) {
    EXPECT_EQ(r.tail.segments[i].first, r.tail.segments[i - 1].first + 1);
    EXPECT_GT(r.tail.segments[i].second, r.tail.segments[i - 1].second);
  }
  EXPECT_EQ(r.tail.last_segment, r.tail.segments.back().first);
}

TEST(WalReader, ReadsFromEveryLsn) {
  ScratchDir dir;
  const std::vector<Record> written = WriteLog(dir.path(), Sizes(700, 900, 7), Durability::kNone);
  ReadResult all = ReadLog(dir.path());
  ASSERT_TRUE(all.status.ok());
  ASSERT_GE(all.tail.segments.size(), 4u);
  for (Lsn from = 0; from <= written.size() + 3; ++from) {
    ReadResult r = ReadLog(dir.path(), ReaderOptions{.from_lsn = from});
    ASSERT_TRUE(r.status.ok()) << "from " << from << ": " << r.status;
    const size_t skip = from == 0 ? 0 : std::min<size_t>(from - 1, written.size());
    ASSERT_EQ(r.records, std::vector<Record>(written.begin() + skip, written.end()))
        << "from " << from;
    EXPECT_EQ(r.tail.next_lsn, written.size() + 1) << "from " << from;
  }
}

TEST(WalReader, ReadingBelowTheOldestLsnAfterTruncateIsNotFound) {
  for (bool recycle : {true, false}) {
    SCOPED_TRACE(recycle ? "recycling" : "removing");
    ScratchDir dir;
    WalOptions options = SmallSegments();
    options.recycle_segments = recycle;
    const std::vector<Record> written = MakeRecords(1, Sizes(600, 900, 3));
    auto w = OpenWriter(dir.path(), options);
    ASSERT_NE(w, nullptr);
    AppendAll(w.get(), written, Durability::kNone);
    ASSERT_TRUE(w->Truncate(300).ok());
    const Lsn oldest = w->oldest_lsn();
    ASSERT_GT(oldest, 1u);
    ASSERT_LE(oldest, 300u);

    for (int open = 0; open < 2; ++open) {  // with the writer open, then after Close
      ReadResult r = ReadLog(dir.path());
      ASSERT_TRUE(r.status.ok()) << r.status;
      EXPECT_EQ(r.records, std::vector<Record>(written.begin() + (oldest - 1), written.end()));
      EXPECT_EQ(r.tail.segments.front().second, oldest);
      for (Lsn from : {Lsn{1}, oldest - 1}) {
        ReadResult below = ReadLog(dir.path(), ReaderOptions{.from_lsn = from});
        EXPECT_TRUE(absl::IsNotFound(below.status)) << "from " << from << ": " << below.status;
        EXPECT_TRUE(below.records.empty());
      }
      ReadResult at = ReadLog(dir.path(), ReaderOptions{.from_lsn = oldest});
      ASSERT_TRUE(at.status.ok()) << at.status;
      EXPECT_EQ(at.records.front().lsn, oldest);
      if (open == 0) {
        ASSERT_TRUE(w->Close().ok());
      }
    }
    if (!recycle) {
      EXPECT_TRUE(FilesWithSuffix(dir.path(), ".free").empty());
    }
  }
}

TEST(WalReader, EmptyOrMissingLog) {
  ScratchDir dir;
  ReadResult r = ReadLog(dir.path());
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_TRUE(r.records.empty());
  EXPECT_EQ(r.tail.next_lsn, 1u);
  EXPECT_EQ(r.tail.last_segment, 0u);
  EXPECT_TRUE(ReadLog(dir.path(), ReaderOptions{.from_lsn = 1}).status.ok());
  EXPECT_TRUE(absl::IsNotFound(ReadLog(dir.path(), ReaderOptions{.from_lsn = 2}).status));
  EXPECT_FALSE(ReadLog(dir.Sub("nonexistent")).status.ok());
}

TEST(WalReader, IgnoresFilesThatAreNotSegments) {
  ScratchDir dir;
  const std::vector<Record> written = WriteLog(dir.path(), {10, 20, 30});
  const std::string junk = std::string(64, 'j');
  for (const char* name : {"LOCK", "notes.txt", "0000000000000007.wal.free",
                           "0000000000000008.wal.lost", "000000000000000A.wal", "7.wal"}) {
    testutil::WriteFile(dir.path() + "/" + name, junk);
  }
  ReadResult r = ReadLog(dir.path());
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.records, written);
}

}  // namespace
}  // namespace shardtx::wal::testutil
