// What a read costs: the live log, not the preallocated segment. The close mark a clean Close
// writes ends the scan; without it a reader still tells lost records from a torn tail.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/wal/wal_reader_test_util.h"
#include "wal/format.h"
#include "wal/reader.h"
#include "wal/segment.h"
#include "wal/writer.h"

namespace shardtx::wal::testutil {
namespace {

// Segments of the default size: 64 MiB preallocated, almost all of it beyond the records.
WalOptions FullSizeSegments() {
  WalOptions o;
  o.max_record_size = 1 << 20;
  return o;
}

TEST(WalReader, ReadsOnlyTheLiveRecordsOfACleanlyClosedSegment) {
  ScratchDir dir;
  const std::vector<Record> written =
      WriteLog(dir.path(), Sizes(10, 200, 5), Durability::kSync, 0, FullSizeSegments());
  for (int reopen = 0; reopen < 3; ++reopen) {  // each adds an empty segment, closed at once
    SCOPED_TRACE(reopen);
    ReadResult r = ReadLog(dir.path());
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_EQ(r.records, written);
    EXPECT_FALSE(r.tail.torn);
    EXPECT_LE(r.tail.bytes_read, (reopen + 1) * 8u << 10)
        << "read " << r.tail.bytes_read << " bytes of " << reopen + 1 << " segments";
    ASSERT_NE(OpenWriter(dir.path(), FullSizeSegments()), nullptr);
  }
}

TEST(WalReader, CloseMarkIsWrittenWhereTheNextRecordWouldGoAndIsNeverARecord) {
  ScratchDir dir;
  const std::vector<Record> written = WriteLog(dir.path(), Sizes(10, 200, 6));
  const uint64_t number = ReadLog(dir.path()).tail.last_segment;
  const std::string path = SegmentPath(dir.path(), number);
  const std::vector<RecordExtent> ext = RecordExtents(path, number);
  ASSERT_EQ(ext.size(), written.size());
  const uint64_t end = ext.back().offset + ext.back().aligned_size;
  const std::string pristine = ReadFile(path);
  const std::optional<SegmentHeader> h = DecodeSegmentHeader(pristine, number);
  ASSERT_TRUE(h.has_value());
  Lsn next = 0;
  ASSERT_TRUE(IsCloseMark(absl::string_view(pristine).substr(end), h->seed(), &next));
  EXPECT_EQ(next, written.size() + 1);
  EXPECT_FALSE(IsCloseMark(absl::string_view(pristine).substr(end), ~h->seed(), &next));
  EXPECT_FALSE(ParseRecord(pristine, end, h->seed(), kMaxSegmentSize).has_value());
  // Damaged, it is only bytes after the last record: the log reads the same.
  for (uint64_t byte = 0; byte < kRecordHeaderSize; ++byte) {
    SCOPED_TRACE(absl::StrCat("byte ", byte));
    FlipBit(path, end + byte, static_cast<int>(byte % 8));
    EXPECT_FALSE(IsCloseMark(absl::string_view(ReadFile(path)).substr(end), h->seed(), &next));
    ReadResult r = ReadLog(dir.path());
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_EQ(r.records, written);
    testutil::WriteFile(path, pristine);
  }
}

TEST(WalReader, ManyMiBOfLostRecordsBeforeDurableOnesAreDataLossWithOrWithoutACloseMark) {
  ScratchDir dir;
  // Each record durable before the next: record n carries sync_lsn n.
  const std::vector<Record> written = WriteLog(dir.path(), std::vector<size_t>(40, 512 << 10),
                                               Durability::kSync, 0, FullSizeSegments());
  const uint64_t number = ReadLog(dir.path()).tail.last_segment;
  const std::string path = SegmentPath(dir.path(), number);
  const std::vector<RecordExtent> ext = RecordExtents(path, number);
  ASSERT_EQ(ext.size(), written.size());
  const uint64_t end = ext.back().offset + ext.back().aligned_size;
  // Records 2 to 30 (about 15 MiB) read as zeros; 31 to 40 prove that 2 was durable.
  const uint64_t from = ext[1].offset;
  const uint64_t to = ext[29].offset + ext[29].aligned_size;
  PatchFile(path, from, std::string(to - from, '\0'));
  ReadResult r = ReadLog(dir.path());
  ExpectDataLossAt(r, path, from);
  EXPECT_EQ(r.records, Prefix(written, 1));
  // The same after a crash: no close mark.
  PatchFile(path, end, std::string(kRecordHeaderSize, '\0'));
  r = ReadLog(dir.path());
  ExpectDataLossAt(r, path, from);
  EXPECT_EQ(r.records, Prefix(written, 1));
}

}  // namespace
}  // namespace shardtx::wal::testutil
