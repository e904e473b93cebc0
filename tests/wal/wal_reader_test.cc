// WalReader against logs written by WalWriter and then damaged the ways disks and crashes damage
// them: every record written is read back at its LSN or the reader says why not (a cut tail, a
// kDataLoss naming file and offset, or a point-in-time stop with the LSN range lost). It never
// returns a record that was not written.
#include <algorithm>
#include <fstream>
#include <iterator>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/wal/wal_test_util.h"
#include "util/coding.h"

namespace shardtx::wal {
namespace {

using testutil::AppendAll;
using testutil::CopyDir;
using testutil::FilesWithSuffix;
using testutil::MakeRecords;
using testutil::OpenWriter;
using testutil::PatchFile;
using testutil::ReadFile;
using testutil::ReadLog;
using testutil::ReadResult;
using testutil::Record;
using testutil::RecordExtent;
using testutil::RecordExtents;
using testutil::ScratchDir;
using testutil::SegmentNumbers;
using testutil::SmallSegments;
using testutil::TestSeed;
using testutil::TruncateFile;

std::vector<Record> Prefix(const std::vector<Record>& v, size_t n) {
  return std::vector<Record>(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n));
}

std::vector<Record> Concat(std::vector<Record> a, const std::vector<Record>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Writes records with LSNs 1.. of `sizes` to a new log and closes it. With kSync each record is
// durable before the next is appended, so record n carries sync_lsn n.
std::vector<Record> WriteLog(const std::string& dir, const std::vector<size_t>& sizes,
                             Durability durability = Durability::kSync, uint64_t key = 0,
                             const WalOptions& options = SmallSegments()) {
  std::vector<Record> records = MakeRecords(1, sizes, key);
  auto w = OpenWriter(dir, options);
  if (w == nullptr) return {};
  AppendAll(w.get(), records, durability);
  EXPECT_TRUE(w->Close().ok());
  return records;
}

// Appends `n` records of `size` bytes after the end of the log in `dir`, reopening it.
std::vector<Record> Resume(const std::string& dir, size_t n, size_t size, uint64_t key) {
  ReadResult before = ReadLog(dir);
  EXPECT_TRUE(before.status.ok()) << before.status;
  std::vector<Record> records =
      MakeRecords(before.tail.next_lsn, std::vector<size_t>(n, size), key);
  auto w = OpenWriter(dir);
  if (w == nullptr) return {};
  AppendAll(w.get(), records, Durability::kSync);
  EXPECT_TRUE(w->Close().ok());
  return records;
}

std::vector<size_t> Sizes(size_t n, size_t max, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<size_t> out;
  for (size_t i = 0; i < n; ++i) out.push_back(rng() % (max + 1));
  return out;
}

std::string LastSegmentPath(const std::string& dir) {
  ReadResult r = ReadLog(dir);
  EXPECT_TRUE(r.status.ok()) << r.status;
  return SegmentPath(dir, r.tail.last_segment);
}

void FlipBit(const std::string& path, uint64_t offset, int bit) {
  const std::string bytes = ReadFile(path);
  ASSERT_LT(offset, bytes.size());
  PatchFile(path, offset, std::string(1, static_cast<char>(bytes[offset] ^ (1 << bit))));
}

// The segments `numbers` were set aside as <name>.lost, not deleted.
void ExpectKeptAsLost(const std::string& dir, const std::vector<uint64_t>& numbers) {
  ASSERT_FALSE(numbers.empty());
  for (uint64_t n : numbers) {
    EXPECT_TRUE(std::filesystem::exists(SegmentPath(dir, n) + ".lost")) << SegmentFileName(n);
  }
}

// Point-in-time recovery of a log whose records from `lost_from` on cannot be read: the read
// ends just before them and reports [lost_from, last written] lost; a writer opened after that
// tail sets the segments `kept_lost` aside as *.lost (none to check when empty), appends
// `more`, and the log then reads as the surviving prefix followed by `more`.
void ExpectPointInTimeResumes(const std::string& dir, const std::vector<Record>& written,
                              Lsn lost_from, const std::vector<Record>& more,
                              const std::vector<uint64_t>& kept_lost,
                              Durability durability = Durability::kSync) {
  ReadResult pit = ReadLog(dir, ReaderOptions{.point_in_time = true});
  ASSERT_TRUE(pit.status.ok()) << pit.status;
  EXPECT_EQ(pit.records, Prefix(written, lost_from - 1));
  EXPECT_TRUE(pit.tail.lost);
  EXPECT_EQ(pit.tail.lost_from, lost_from);
  EXPECT_EQ(pit.tail.lost_to, written.size());
  EXPECT_EQ(pit.tail.next_lsn, lost_from);
  auto w = WalWriter::Open(testutil::NoSyncEnv::Get(), dir, SmallSegments(), pit.tail);
  ASSERT_TRUE(w.ok()) << w.status();
  AppendAll(w->get(), more, durability);
  ASSERT_TRUE((*w)->Close().ok());
  if (!kept_lost.empty()) ExpectKeptAsLost(dir, kept_lost);
  ReadResult after = ReadLog(dir);
  ASSERT_TRUE(after.status.ok()) << after.status;
  EXPECT_EQ(after.records, Concat(Prefix(written, lost_from - 1), more));
  EXPECT_FALSE(after.tail.lost);
}

void ExpectDataLossAt(const ReadResult& r, const std::string& path, uint64_t offset) {
  EXPECT_TRUE(absl::IsDataLoss(r.status)) << r.status;
  EXPECT_TRUE(absl::StrContains(r.status.message(), path)) << r.status;
  EXPECT_TRUE(absl::StrContains(r.status.message(), absl::StrCat("offset ", offset, ":")))
      << r.status << " (expected offset " << offset << ")";
}

// --- Round trips ---

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

// --- Torn tails ---

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

// --- Corruption ---

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

// --- What a read costs: the live log, not the preallocated segment ---

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

// --- Segments: recycling, reactivation, reopening, missing and corrupt headers ---

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

// Three segments or more; returns the records and the segment numbers.
std::vector<Record> WriteThreeSegments(const std::string& dir, std::vector<uint64_t>* live) {
  std::vector<Record> written = WriteLog(dir, std::vector<size_t>(150, 1000), Durability::kNone);
  ReadResult r = ReadLog(dir);
  EXPECT_TRUE(r.status.ok());
  live->clear();
  for (const auto& s : r.tail.segments) live->push_back(s.first);
  EXPECT_GE(live->size(), 3u);
  return written;
}

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

    EXPECT_EQ(ReadLog(dir.path(), ReaderOptions{.point_in_time = true}).tail.last_segment,
              number);
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
}  // namespace shardtx::wal
