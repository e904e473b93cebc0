// WalReader and torn tails: an incomplete or bad record at the very end of the log is cut off
// (and reported), never taken for corruption, and a writer resumes at its LSN.
#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iterator>
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

TEST(WalReader, TornTailOfEveryLengthIsCutAndWritingResumesAfterIt) {
  ScratchDir dir;
  const std::string pristine = dir.Sub("pristine");
  // 60 records fill the first segment and start the second; the last one is torn below.
  std::vector<size_t> sizes(60, 1200);
  sizes.push_back(100);
  const std::vector<Record> written = WriteLog(pristine, sizes);
  const ReadResult full = ReadLog(pristine);
  ASSERT_TRUE(full.status.ok());
  ASSERT_EQ(full.records, written);
  ASSERT_GE(full.tail.segments.size(), 2u);
  const uint64_t last_segment = full.tail.last_segment;
  const std::vector<RecordExtent> extents =
      RecordExtents(SegmentPath(pristine, last_segment), last_segment);
  ASSERT_FALSE(extents.empty());
  const RecordExtent last = extents.back();
  ASSERT_EQ(last.lsn, written.size());
  ASSERT_EQ(last.size, 132u);

  const std::string work = dir.Sub("work");
  const std::string path = SegmentPath(work, last_segment);
  std::string pristine_bytes;
  {
    std::ifstream f(SegmentPath(pristine, last_segment), std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    pristine_bytes = all.substr(last.offset, last.aligned_size);
  }
  auto AnyNonZero = [](const std::string& b) {
    return std::any_of(b.begin(), b.end(), [](char c) { return c != 0; });
  };
  for (bool zero_fill : {false, true}) {
    for (uint64_t cut = 0; cut < last.aligned_size; ++cut) {
      SCOPED_TRACE(absl::StrCat(zero_fill ? "zeroed" : "truncated", " from byte ", cut));
      CopyDir(pristine, work);
      if (zero_fill) {
        PatchFile(path, last.offset + cut, std::string(last.aligned_size - cut, '\0'));
      } else {
        TruncateFile(path, last.offset + cut);
      }
      const bool intact = cut >= last.size;  // only padding lost
      ReadResult r = ReadLog(work);
      ASSERT_TRUE(r.status.ok()) << r.status;
      ASSERT_EQ(r.records, Prefix(written, intact ? written.size() : written.size() - 1));
      EXPECT_EQ(r.tail.next_lsn, intact ? last.lsn + 1 : last.lsn);
      EXPECT_EQ(r.tail.last_segment, last_segment);
      EXPECT_FALSE(r.tail.lost);
      if (cut == 0 || intact) {
        EXPECT_FALSE(r.tail.torn);
      } else if (zero_fill ? cut >= 24 : AnyNonZero(pristine_bytes.substr(0, cut))) {
        // Bytes of an attempted record remain. (A random checksum can start with zero bytes:
        // a cut inside them leaves nothing that looks like a record, 1 run in 256 per byte.)
        EXPECT_TRUE(r.tail.torn);
      }
      if (r.tail.torn) {
        EXPECT_EQ(r.tail.torn_file, path);
        EXPECT_EQ(r.tail.torn_offset, last.offset);
      }
      if (intact) continue;

      // A writer resumes at the torn record's LSN; the torn bytes never come back.
      const std::vector<Record> more = Resume(work, 3, 100, /*key=*/1000 + cut);
      ASSERT_EQ(more.front().lsn, last.lsn);
      ASSERT_NE(more.front(), written.back());
      for (int reopen = 0; reopen < 2; ++reopen) {
        ReadResult after = ReadLog(work);
        ASSERT_TRUE(after.status.ok()) << after.status;
        EXPECT_EQ(after.records, Concat(Prefix(written, written.size() - 1), more));
        EXPECT_FALSE(after.tail.torn);
        if (reopen == 0) {  // an empty activation
          ASSERT_NE(OpenWriter(work), nullptr);
        }
      }
    }
  }
}

TEST(WalReader, BadRecordInsideAnUnsyncedBatchIsATornTailNotCorruption) {
  ScratchDir dir;
  // Ten records synced one by one, then ten written in batches covered by one final sync: the
  // batch records all carry sync_lsn 11, so none proves that an earlier one was durable.
  std::vector<Record> written = MakeRecords(1, Sizes(20, 200, 11));
  auto w = OpenWriter(dir.path());
  ASSERT_NE(w, nullptr);
  AppendAll(w.get(), Prefix(written, 10), Durability::kSync);
  AppendAll(w.get(), std::vector<Record>(written.begin() + 10, written.end()), Durability::kNone);
  ASSERT_TRUE(w->Close().ok());
  const std::string path = LastSegmentPath(dir.path());
  const std::vector<RecordExtent> ext = RecordExtents(path, SegmentNumbers(dir.path()).front());
  ASSERT_EQ(ext.size(), 20u);
  for (const RecordExtent& e : ext) ASSERT_EQ(e.sync_lsn, e.lsn <= 10 ? e.lsn : 11u);

  const std::string pristine = ReadFile(path);
  for (size_t k = 10; k < 20; ++k) {  // damage record LSN k+1, inside the batch
    testutil::WriteFile(path, pristine);
    FlipBit(path, ext[k].offset + 20, 3);  // its LSN field
    ReadResult r = ReadLog(dir.path());
    ASSERT_TRUE(r.status.ok()) << "record " << k + 1 << ": " << r.status;
    EXPECT_EQ(r.records, Prefix(written, k));
    EXPECT_EQ(r.tail.next_lsn, k + 1);
  }
  for (size_t k = 0; k < 10; ++k) {  // damage a synced record: records after it prove it durable
    testutil::WriteFile(path, pristine);
    FlipBit(path, ext[k].offset + 20, 3);
    ReadResult r = ReadLog(dir.path());
    ExpectDataLossAt(r, path, ext[k].offset);
    EXPECT_EQ(r.records, Prefix(written, k));
  }
}

}  // namespace
}  // namespace shardtx::wal::testutil
