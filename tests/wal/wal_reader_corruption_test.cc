// WalReader and corruption: a bad record followed by valid ones is kDataLoss naming file and
// offset (or a point-in-time stop); bit flips, garbage and hostile length fields never yield a
// record that was not written, and never an allocation sized by disk bytes.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/wal/wal_reader_test_util.h"
#include "util/coding.h"
#include "wal/format.h"
#include "wal/reader.h"
#include "wal/segment.h"
#include "wal/writer.h"

namespace shardtx::wal::testutil {
namespace {

TEST(WalReader, BitFlipAnywhereIsDataLossOrACutTailNeverWrongData) {
  const uint64_t seed = TestSeed(20240601);
  std::mt19937_64 rng(seed);
  ScratchDir dir;
  const std::vector<size_t> sizes = {0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 40, 3};
  const std::vector<Record> written = WriteLog(dir.path(), sizes);
  const uint64_t number = SegmentNumbers(dir.path()).front();
  const std::string path = SegmentPath(dir.path(), number);
  const std::vector<RecordExtent> ext = RecordExtents(path, number);
  ASSERT_EQ(ext.size(), written.size());
  for (const RecordExtent& e : ext) ASSERT_EQ(e.sync_lsn, e.lsn);
  const uint64_t end = ext.back().offset + ext.back().aligned_size;
  TruncateFile(path, end + 256);  // the zero tail, shortened to keep this test fast
  const std::string pristine = ReadFile(path);

  int data_loss = 0;
  for (uint64_t byte = 0; byte < pristine.size(); ++byte) {
    // Which record the byte belongs to (-1: segment header; written.size(): after the log).
    size_t k = 0;
    while (k < ext.size() && byte >= ext[k].offset + ext[k].aligned_size) ++k;
    const bool in_header = byte < kSegmentHeaderSize;
    const bool in_record = !in_header && k < ext.size() && byte < ext[k].offset + ext[k].size;
    const int pit_bit = static_cast<int>(rng() % 8);
    for (int bit = 0; bit < 8; ++bit) {
      SCOPED_TRACE(absl::StrCat("byte ", byte, " bit ", bit));
      PatchFile(path, byte, std::string(1, static_cast<char>(pristine[byte] ^ (1 << bit))));
      ReadResult r = ReadLog(dir.path());
      ReadResult pit;
      if (bit == pit_bit) pit = ReadLog(dir.path(), ReaderOptions{.point_in_time = true});
      PatchFile(path, byte, pristine.substr(byte, 1));

      // Whatever happens: only records that were written, each at its LSN, in order.
      ASSERT_LE(r.records.size(), written.size());
      ASSERT_EQ(r.records, Prefix(written, r.records.size()));
      if (!r.status.ok()) {
        ++data_loss;
        ASSERT_TRUE(absl::IsDataLoss(r.status)) << r.status;
        EXPECT_TRUE(absl::StrContains(r.status.message(), path)) << r.status;
      }
      if (in_header) {
        // The header of a segment whose records were synced: unless the flip hit the salt
        // (without which no record can be verified), the records prove the header was durable.
        const bool salt = byte >= 32 && byte < 40;
        if (!salt) {
          EXPECT_TRUE(absl::IsDataLoss(r.status)) << r.status;
        }
        EXPECT_TRUE(r.records.empty());
      } else if (in_record && k + 1 < ext.size()) {
        ExpectDataLossAt(r, path, ext[k].offset);
        EXPECT_EQ(r.records.size(), k);
      } else if (in_record) {  // the last record: a torn tail
        ASSERT_TRUE(r.status.ok()) << r.status;
        EXPECT_EQ(r.records.size(), k);
        EXPECT_EQ(r.tail.next_lsn, k + 1);
      } else {  // padding or the zero tail: nothing is lost
        ASSERT_TRUE(r.status.ok()) << r.status;
        EXPECT_EQ(r.records, written);
      }
      if (bit != pit_bit) continue;
      // Point-in-time recovery never fails on a bad record: it stops and says what it lost.
      ASSERT_EQ(pit.records, Prefix(written, pit.records.size()));
      if (in_record && k + 1 < ext.size()) {
        ASSERT_TRUE(pit.status.ok()) << pit.status;
        EXPECT_EQ(pit.records.size(), k);
        EXPECT_TRUE(pit.tail.lost);
        EXPECT_EQ(pit.tail.lost_from, k + 1);
        EXPECT_EQ(pit.tail.lost_to, written.size());
        EXPECT_EQ(pit.tail.next_lsn, k + 1);
      } else if (!in_header) {
        ASSERT_TRUE(pit.status.ok()) << pit.status;
        EXPECT_FALSE(pit.tail.lost);
        EXPECT_EQ(pit.records, r.records);
      }
    }
  }
  EXPECT_GT(data_loss, 0);
}

TEST(WalReader, BitFlipInASealedSegmentIsDataLossOrHarmless) {
  const uint64_t seed = TestSeed(777);
  std::mt19937_64 rng(seed);
  ScratchDir dir;
  // A segment is synced before the next one starts: the second segment proves every record of
  // the first durable, whatever their sync_lsn says.
  const std::vector<Record> written =
      WriteLog(dir.path(), Sizes(400, 400, seed), Durability::kNone);
  const ReadResult full = ReadLog(dir.path());
  ASSERT_TRUE(full.status.ok());
  ASSERT_GE(full.tail.segments.size(), 2u);
  const uint64_t number = full.tail.segments.front().first;
  const std::string path = SegmentPath(dir.path(), number);
  const std::vector<RecordExtent> ext = RecordExtents(path, number);
  const std::string pristine = ReadFile(path);
  const uint64_t end = ext.back().offset + ext.back().aligned_size;

  for (int trial = 0; trial < 1500; ++trial) {
    const uint64_t byte = trial < 64 ? trial : rng() % (end + 128);
    const int bit = static_cast<int>(rng() % 8);
    SCOPED_TRACE(absl::StrCat("byte ", byte, " bit ", bit));
    PatchFile(path, byte, std::string(1, static_cast<char>(pristine[byte] ^ (1 << bit))));
    ReadResult r = ReadLog(dir.path());
    PatchFile(path, byte, pristine.substr(byte, 1));
    ASSERT_EQ(r.records, Prefix(written, r.records.size()));
    size_t k = 0;
    while (k < ext.size() && byte >= ext[k].offset + ext[k].aligned_size) ++k;
    const bool checked =
        byte < kSegmentHeaderSize || (k < ext.size() && byte < ext[k].offset + ext[k].size);
    if (checked) {
      EXPECT_TRUE(absl::IsDataLoss(r.status)) << r.status;
      EXPECT_TRUE(absl::StrContains(r.status.message(), path)) << r.status;
    } else {
      ASSERT_TRUE(r.status.ok()) << r.status;
      EXPECT_EQ(r.records, written);
    }
  }
}

TEST(WalReader, ZeroFilledAndGarbageTailsEndTheLogCleanly) {
  const uint64_t seed = TestSeed(99);
  std::mt19937_64 rng(seed);
  ScratchDir dir;
  const std::string pristine = dir.Sub("pristine");
  const std::vector<Record> written = WriteLog(pristine, Sizes(50, 300, seed));
  const std::string work = dir.Sub("work");
  const uint64_t number = SegmentNumbers(pristine).front();
  const std::vector<RecordExtent> ext = RecordExtents(SegmentPath(pristine, number), number);
  const uint64_t end = ext.back().offset + ext.back().aligned_size;
  for (int trial = 0; trial < 40; ++trial) {
    SCOPED_TRACE(absl::StrCat("trial ", trial));
    CopyDir(pristine, work);
    const std::string path = SegmentPath(work, number);
    std::string garbage(trial == 0 ? 0 : 1 + rng() % 8192, '\0');
    for (char& c : garbage) c = static_cast<char>(rng());
    if (trial % 4 == 1) {
      // Garbage shaped like the next record: plausible LSNs, a bad checksum.
      garbage.resize(std::max<size_t>(garbage.size(), 64));
      EncodeFixed32(&garbage[8], 16);
      garbage[12] = 1;
      garbage[13] = garbage[14] = garbage[15] = 0;
      EncodeFixed64(&garbage[16], written.size() + 2);
      EncodeFixed64(&garbage[24], written.size() + 2);
    }
    if (trial % 4 == 2) garbage = std::string(1 << 20, '\0');  // a long zero tail
    PatchFile(path, end, garbage);
    ReadResult r = ReadLog(work);
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_EQ(r.records, written);
    EXPECT_FALSE(r.tail.lost);
    if (trial % 4 == 2 || trial == 0) {
      EXPECT_FALSE(r.tail.torn);
    }
    const std::vector<Record> more = Resume(work, 2, 50, trial);
    ReadResult after = ReadLog(work);
    ASSERT_TRUE(after.status.ok()) << after.status;
    EXPECT_EQ(after.records, Concat(written, more));
  }
}

TEST(WalReader, LengthFieldPastTheFileOrHugeIsABadRecordNotAnAllocation) {
  ScratchDir dir;
  const std::string pristine = dir.Sub("pristine");
  const std::vector<Record> written = WriteLog(pristine, Sizes(30, 300, 5));
  const uint64_t number = SegmentNumbers(pristine).front();
  const std::vector<RecordExtent> ext = RecordExtents(SegmentPath(pristine, number), number);
  const std::string work = dir.Sub("work");
  const std::string path = SegmentPath(work, number);
  const uint64_t file_size = std::filesystem::file_size(SegmentPath(pristine, number));
  for (size_t k : {size_t{0}, size_t{10}, ext.size() - 1}) {
    for (uint32_t len : {0xFFFFFFFFu, 0x80000000u, uint32_t(file_size - ext[k].offset - 31),
                         uint32_t(ext[k].size - 32 + 8)}) {
      SCOPED_TRACE(absl::StrCat("record ", k + 1, " length ", len));
      CopyDir(pristine, work);
      std::string field(4, '\0');
      EncodeFixed32(field.data(), len);
      PatchFile(path, ext[k].offset + 8, field);
      ReadResult r = ReadLog(work);
      EXPECT_EQ(r.records, Prefix(written, k));
      if (k + 1 < ext.size()) {
        ExpectDataLossAt(r, path, ext[k].offset);
      } else {
        ASSERT_TRUE(r.status.ok()) << r.status;
        EXPECT_TRUE(r.tail.torn);
        EXPECT_EQ(r.tail.next_lsn, k + 1);
      }
    }
  }
  // The last record's length runs past the end of a file that ends inside it.
  CopyDir(pristine, work);
  TruncateFile(path, ext.back().offset + ext.back().size - 1);
  ReadResult r = ReadLog(work);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.records, Prefix(written, written.size() - 1));
  EXPECT_TRUE(r.tail.torn);
}

TEST(WalReader, SegmentFileLargerThanTheFormatAllowsIsDataLossNotLoaded) {
  ScratchDir dir;
  WriteLog(dir.path(), {10, 20});
  const std::string path = LastSegmentPath(dir.path());
  TruncateFile(path, kMaxSegmentSize + 8);  // sparse: costs no disk
  ReadResult r = ReadLog(dir.path());
  EXPECT_TRUE(absl::IsDataLoss(r.status)) << r.status;
  EXPECT_TRUE(absl::StrContains(r.status.message(), path)) << r.status;
  EXPECT_TRUE(r.records.empty());
}

// A segment file written by hand: a header and records sealed with its seed.
struct HandRecord {
  Lsn lsn;
  Lsn sync_lsn;
  std::string payload;
};
void WriteSegmentByHand(const std::string& dir, uint64_t number, Lsn first_lsn, uint64_t salt,
                        const std::vector<HandRecord>& records) {
  std::string bytes(kSegmentHeaderSize, '\0');
  EncodeSegmentHeader({number, first_lsn, salt}, bytes.data());
  for (const HandRecord& r : records) {
    std::string rec(AlignedRecordSize(r.payload.size()), '\0');
    EncodeRecord(rec.data(), 9, r.lsn, r.payload);
    SealRecord(rec.data(), r.sync_lsn, RecordSeed(number, salt));
    bytes += rec;
  }
  bytes += std::string(4096, '\0');
  std::filesystem::create_directories(dir);
  testutil::WriteFile(SegmentPath(dir, number), bytes);
}

TEST(WalReader, LsnsAtTheTopOfTheRangeNeverWrapOrRunPastTheLastSegment) {
  ScratchDir dir;
  const Lsn top = ~Lsn{0};
  WriteSegmentByHand(dir.path(), 1, top - 2, 42,
                     {{top - 2, top - 2, "a"}, {top - 1, top - 1, "b"}, {top, top, "c"}});
  ReadResult r = ReadLog(dir.path());
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.records.size(), 2u);  // LSN 2^64-1 is never valid: the next would wrap to 0
  EXPECT_EQ(r.records[1].lsn, top - 1);
  EXPECT_EQ(r.tail.next_lsn, top);
  ReadResult pit = ReadLog(dir.path(), ReaderOptions{.from_lsn = top - 1, .point_in_time = true});
  ASSERT_TRUE(pit.status.ok()) << pit.status;
  EXPECT_EQ(pit.records.size(), 1u);
}

}  // namespace
}  // namespace shardtx::wal::testutil
