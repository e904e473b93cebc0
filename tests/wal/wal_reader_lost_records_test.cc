// What a read reports when records are gone: a missing or corrupt segment (kDataLoss naming
// file and LSNs), needed_lsn (leftovers of a crash inside Truncate below it), and point-in-time
// recovery, which stops there, reports the LSN range lost and lets a writer continue.
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/wal/no_sync_env.h"
#include "tests/wal/wal_reader_test_util.h"
#include "wal/reader.h"
#include "wal/segment.h"
#include "wal/writer.h"

namespace shardtx::wal::testutil {
namespace {

TEST(WalReader, MissingMiddleSegmentIsDataLoss) {
  ScratchDir dir;
  std::vector<uint64_t> live;
  const std::vector<Record> written = WriteThreeSegments(dir.path(), &live);
  ASSERT_GE(live.size(), 3u);
  const ReadResult full = ReadLog(dir.path());
  const Lsn lost_from = full.tail.segments[1].second;
  const Lsn third = full.tail.segments[2].second;
  std::filesystem::remove(SegmentPath(dir.path(), live[1]));

  ReadResult r = ReadLog(dir.path());
  EXPECT_TRUE(absl::IsDataLoss(r.status)) << r.status;
  EXPECT_TRUE(absl::StrContains(r.status.message(), SegmentPath(dir.path(), live[2]))) << r.status;
  // Reading from a segment after the gap needs nothing before it.
  ReadResult from = ReadLog(dir.path(), ReaderOptions{.from_lsn = third});
  ASSERT_TRUE(from.status.ok()) << from.status;
  EXPECT_EQ(from.records, std::vector<Record>(written.begin() + (third - 1), written.end()));

  // Point in time: the log ends at the gap; everything after it is reported lost and kept.
  ExpectPointInTimeResumes(dir.path(), written, lost_from, MakeRecords(lost_from, {10, 20, 30}, 9),
                           std::vector<uint64_t>(live.begin() + 2, live.end()));
}

TEST(WalReader, MissingMiddleSegmentIsDataLossNamingItsLsns) {
  ScratchDir dir;
  std::vector<uint64_t> live;
  WriteThreeSegments(dir.path(), &live);
  const ReadResult full = ReadLog(dir.path());
  const Lsn second = full.tail.segments[1].second;
  const Lsn third = full.tail.segments[2].second;
  std::filesystem::remove(SegmentPath(dir.path(), live[1]));
  ReadResult r = ReadLog(dir.path(), ReaderOptions{.needed_lsn = 1});
  EXPECT_TRUE(absl::IsDataLoss(r.status)) << r.status;
  EXPECT_TRUE(
      absl::StrContains(r.status.message(), absl::StrCat("with LSN ", second, " to ", third - 1)))
      << r.status;
}

// needed_lsn: every LSN from it on must be there; below it, what a crash inside Truncate left.
TEST(WalReaderNeededLsn, LogStartingAboveItIsDataLossNamingTheMissingLsns) {
  ScratchDir dir;
  std::vector<uint64_t> live;
  const std::vector<Record> written = WriteThreeSegments(dir.path(), &live);
  const ReadResult full = ReadLog(dir.path());
  const Lsn second = full.tail.segments[1].second;
  std::filesystem::remove(SegmentPath(dir.path(), live[0]));

  for (Lsn needed : {Lsn{1}, second - 1}) {
    ReadResult r = ReadLog(dir.path(), ReaderOptions{.needed_lsn = needed});
    EXPECT_TRUE(absl::IsDataLoss(r.status)) << r.status;
    EXPECT_TRUE(absl::StrContains(r.status.message(),
                                  absl::StrCat("LSN ", needed, " to ", second - 1, " missing")))
        << r.status;
    EXPECT_TRUE(absl::StrContains(r.status.message(), SegmentPath(dir.path(), live[1])))
        << r.status;
    EXPECT_TRUE(r.records.empty());
  }
  // From the first LSN the log still has, nothing is missing.
  ReadResult r = ReadLog(dir.path(), ReaderOptions{.needed_lsn = second});
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.records, std::vector<Record>(written.begin() + (second - 1), written.end()));

  // Point in time: nothing is readable; all of it is reported lost, and a writer resumes at
  // needed_lsn with every segment set aside.
  ReadResult pit = ReadLog(dir.path(), ReaderOptions{.needed_lsn = 1, .point_in_time = true});
  ASSERT_TRUE(pit.status.ok()) << pit.status;
  EXPECT_TRUE(pit.records.empty());
  EXPECT_TRUE(pit.tail.lost);
  EXPECT_EQ(pit.tail.lost_from, 1u);
  EXPECT_EQ(pit.tail.lost_to, written.size());
  EXPECT_EQ(pit.tail.next_lsn, 1u);
  EXPECT_EQ(pit.tail.last_segment, 0u);
}

TEST(WalReaderNeededLsn, SegmentsCutOffBelowItByAGapAreSkipped) {
  ScratchDir dir;
  std::vector<uint64_t> live;
  std::vector<Record> written = WriteLog(dir.path(), std::vector<size_t>(300, 1000));
  const ReadResult full = ReadLog(dir.path());
  ASSERT_GE(full.tail.segments.size(), 5u);
  for (const auto& seg : full.tail.segments) live.push_back(seg.first);
  // A crash inside Truncate kept segments 0 and 2 and removed 1 and 3.
  std::filesystem::remove(SegmentPath(dir.path(), live[1]));
  std::filesystem::remove(SegmentPath(dir.path(), live[3]));
  const Lsn fifth = full.tail.segments[4].second;
  EXPECT_TRUE(absl::IsDataLoss(ReadLog(dir.path()).status));  // without needed_lsn

  for (Lsn needed : {fifth, fifth + 1, Lsn{written.size()}, Lsn{written.size() + 1}}) {
    SCOPED_TRACE(absl::StrCat("needed_lsn ", needed));
    ReadResult r = ReadLog(dir.path(), ReaderOptions{.needed_lsn = needed});
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_EQ(r.records, std::vector<Record>(written.begin() + (fifth - 1), written.end()));
    EXPECT_EQ(r.tail.next_lsn, written.size() + 1);
    // The leftovers are listed, so that a writer's Truncate frees them.
    ASSERT_EQ(r.tail.segments.size(), live.size() - 2);
    EXPECT_EQ(r.tail.segments[0].first, live[0]);
    EXPECT_EQ(r.tail.segments[1].first, live[2]);
  }
  // Inside the gap: those LSNs are needed, and gone.
  ReadResult r = ReadLog(dir.path(), ReaderOptions{.needed_lsn = fifth - 1});
  EXPECT_TRUE(absl::IsDataLoss(r.status)) << r.status;

  // A writer resumes after the tail, and its Truncate frees the leftovers with the rest.
  auto w = WalWriter::Open(testutil::NoSyncEnv::Get(), dir.path(), SmallSegments(),
                           ReadLog(dir.path(), ReaderOptions{.needed_lsn = fifth}).tail);
  ASSERT_TRUE(w.ok()) << w.status();
  const std::vector<Record> more = MakeRecords(written.size() + 1, {10, 20}, 3);
  AppendAll(w->get(), more, Durability::kSync);
  ASSERT_TRUE((*w)->Truncate(fifth).ok());
  ASSERT_TRUE((*w)->Close().ok());
  const std::vector<uint64_t> left = SegmentNumbers(dir.path());
  ASSERT_FALSE(left.empty());
  EXPECT_EQ(left.front(), live[4]);
  ReadResult after = ReadLog(dir.path());
  ASSERT_TRUE(after.status.ok()) << after.status;
  EXPECT_EQ(after.records,
            Concat(std::vector<Record>(written.begin() + (fifth - 1), written.end()), more));
}

TEST(WalReader, CorruptHeaderOfAMiddleSegmentIsDataLoss) {
  for (int damage = 0; damage < 3; ++damage) {  // a bit flip, zeros, a short file
    SCOPED_TRACE(absl::StrCat("damage ", damage));
    ScratchDir dir;
    std::vector<uint64_t> live;
    const std::vector<Record> written = WriteThreeSegments(dir.path(), &live);
    ASSERT_GE(live.size(), 3u);
    const Lsn lost_from = ReadLog(dir.path()).tail.segments[1].second;
    const std::string path = SegmentPath(dir.path(), live[1]);
    if (damage == 0) FlipBit(path, 17, 0);
    if (damage == 1) PatchFile(path, 0, std::string(64, '\0'));
    if (damage == 2) TruncateFile(path, 40);

    ReadResult r = ReadLog(dir.path());
    EXPECT_TRUE(absl::IsDataLoss(r.status)) << r.status;
    EXPECT_TRUE(absl::StrContains(r.status.message(), path)) << r.status;

    ExpectPointInTimeResumes(dir.path(), written, lost_from,
                             MakeRecords(lost_from, {10, 20, 30}, 9),
                             std::vector<uint64_t>(live.begin() + 1, live.end()));
  }
}

TEST(WalReader, CorruptHeaderOfAnEmptyLastSegmentMakesItASpare) {
  const uint64_t seed = TestSeed(4242);
  std::mt19937_64 rng(seed);
  for (int damage = 0; damage < 3; ++damage) {  // zeros, garbage, a short file
    SCOPED_TRACE(absl::StrCat("damage ", damage));
    ScratchDir dir;
    std::vector<uint64_t> live;
    const std::vector<Record> written = WriteThreeSegments(dir.path(), &live);
    ASSERT_NE(OpenWriter(dir.path()), nullptr);  // activates a segment, writes no record
    ReadResult before = ReadLog(dir.path());
    ASSERT_EQ(before.tail.segments.size(), live.size() + 1);
    const std::string path = SegmentPath(dir.path(), before.tail.last_segment);
    std::string garbage(64, '\0');
    if (damage == 1) {
      for (char& c : garbage) c = static_cast<char>(rng());
    }
    PatchFile(path, 0, garbage);
    if (damage == 2) TruncateFile(path, 20);

    ReadResult r = ReadLog(dir.path());
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_EQ(r.records, written);
    EXPECT_EQ(r.tail.last_segment, live.back());
    EXPECT_EQ(r.tail.segments.size(), live.size());
    const std::vector<Record> more = Resume(dir.path(), 3, 10, 5);
    ReadResult after = ReadLog(dir.path());
    ASSERT_TRUE(after.status.ok()) << after.status;
    EXPECT_EQ(after.records, Concat(written, more));
  }
}

TEST(WalReader, CorruptHeaderOfALastSegmentHoldingSyncedRecordsIsDataLoss) {
  for (uint64_t byte : {0, 9, 17, 25, 45, 60}) {  // magic, version, number, first LSN, ...
    SCOPED_TRACE(absl::StrCat("byte ", byte));
    ScratchDir dir;
    std::vector<uint64_t> live;
    std::vector<Record> written = WriteThreeSegments(dir.path(), &live);
    const std::vector<Record> more = Resume(dir.path(), 5, 100, 1);  // synced, in a new segment
    const Lsn lost_from = more.front().lsn;
    written = Concat(written, more);
    const std::string path = LastSegmentPath(dir.path());
    FlipBit(path, byte, 2);

    ReadResult r = ReadLog(dir.path());
    EXPECT_TRUE(absl::IsDataLoss(r.status)) << r.status;
    EXPECT_TRUE(absl::StrContains(r.status.message(), path)) << r.status;

    ExpectPointInTimeResumes(dir.path(), written, lost_from, {}, {live.back() + 1});
  }
}

TEST(WalReaderPointInTime, StopsAtTheFirstBadRecordAndWritingContinuesAfterIt) {
  for (bool in_last_segment : {false, true}) {
    SCOPED_TRACE(in_last_segment ? "bad record in the last segment" : "in a sealed segment");
    ScratchDir dir;
    std::vector<Record> written = MakeRecords(1, std::vector<size_t>(250, 1000));
    auto w = OpenWriter(dir.path());
    ASSERT_NE(w, nullptr);
    for (size_t i = 0; i < written.size(); i += 10) {  // batches of ten, each synced
      AppendAll(w.get(), std::vector<Record>(written.begin() + i, written.begin() + i + 10),
                Durability::kNone);
    }
    ASSERT_TRUE(w->Close().ok());
    const ReadResult full = ReadLog(dir.path());
    ASSERT_GE(full.tail.segments.size(), 3u);
    const uint64_t number = in_last_segment ? full.tail.last_segment : full.tail.segments[1].first;
    const std::string path = SegmentPath(dir.path(), number);
    const std::vector<RecordExtent> ext = RecordExtents(path, number);
    ASSERT_GE(ext.size(), 30u);
    const RecordExtent bad = ext[ext.size() / 2 - 11];
    PatchFile(path, bad.offset + 500, "CORRUPT");

    ReadResult r = ReadLog(dir.path());
    ExpectDataLossAt(r, path, bad.offset);
    EXPECT_EQ(r.records, Prefix(written, bad.lsn - 1));

    EXPECT_EQ(ReadLog(dir.path(), ReaderOptions{.point_in_time = true}).tail.last_segment, number);
    std::vector<uint64_t> later;  // the segments after the bad one's
    if (!in_last_segment) {
      for (size_t i = 2; i < full.tail.segments.size(); ++i) {
        later.push_back(full.tail.segments[i].first);
      }
    }
    const std::vector<Record> more = MakeRecords(bad.lsn, std::vector<size_t>(80, 1000), 7);
    ExpectPointInTimeResumes(dir.path(), written, bad.lsn, more, later, Durability::kNone);
    const std::vector<Record> expected = Concat(Prefix(written, bad.lsn - 1), more);
    // And once more through a reopened writer.
    const std::vector<Record> again = Resume(dir.path(), 4, 10, 8);
    ReadResult last = ReadLog(dir.path());
    ASSERT_TRUE(last.status.ok()) << last.status;
    EXPECT_EQ(last.records, Concat(expected, again));
  }
}

}  // namespace
}  // namespace shardtx::wal::testutil
