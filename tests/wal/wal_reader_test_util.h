// Helpers of the WalReader tests: logs written by a WalWriter (WriteLog, Resume), the damage done
// to them (FlipBit), and what a read of a damaged log must report (ExpectDataLossAt,
// ExpectPointInTimeResumes).
#pragma once

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
#include "tests/wal/wal_test_util.h"
#include "wal/reader.h"
#include "wal/segment.h"
#include "wal/writer.h"

namespace shardtx::wal::testutil {

inline std::vector<Record> Prefix(const std::vector<Record>& v, size_t n) {
  return std::vector<Record>(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n));
}

inline std::vector<Record> Concat(std::vector<Record> a, const std::vector<Record>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Writes records with LSNs 1.. of `sizes` to a new log and closes it. With kSync each record is
// durable before the next is appended, so record n carries sync_lsn n.
inline std::vector<Record> WriteLog(const std::string& dir, const std::vector<size_t>& sizes,
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
inline std::vector<Record> Resume(const std::string& dir, size_t n, size_t size, uint64_t key) {
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

inline std::vector<size_t> Sizes(size_t n, size_t max, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<size_t> out;
  for (size_t i = 0; i < n; ++i) out.push_back(rng() % (max + 1));
  return out;
}

inline std::string LastSegmentPath(const std::string& dir) {
  ReadResult r = ReadLog(dir);
  EXPECT_TRUE(r.status.ok()) << r.status;
  return SegmentPath(dir, r.tail.last_segment);
}

inline void FlipBit(const std::string& path, uint64_t offset, int bit) {
  const std::string bytes = ReadFile(path);
  ASSERT_LT(offset, bytes.size());
  PatchFile(path, offset, std::string(1, static_cast<char>(bytes[offset] ^ (1 << bit))));
}

// The segments `numbers` were set aside as <name>.lost, not deleted.
inline void ExpectKeptAsLost(const std::string& dir, const std::vector<uint64_t>& numbers) {
  ASSERT_FALSE(numbers.empty());
  for (uint64_t n : numbers) {
    EXPECT_TRUE(std::filesystem::exists(SegmentPath(dir, n) + ".lost")) << SegmentFileName(n);
  }
}

// Point-in-time recovery of a log whose records from `lost_from` on cannot be read: the read
// ends just before them and reports [lost_from, last written] lost; a writer opened after that
// tail sets the segments `kept_lost` aside as *.lost (none to check when empty), appends
// `more`, and the log then reads as the surviving prefix followed by `more`.
inline void ExpectPointInTimeResumes(const std::string& dir, const std::vector<Record>& written,
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

inline void ExpectDataLossAt(const ReadResult& r, const std::string& path, uint64_t offset) {
  EXPECT_TRUE(absl::IsDataLoss(r.status)) << r.status;
  EXPECT_TRUE(absl::StrContains(r.status.message(), path)) << r.status;
  EXPECT_TRUE(absl::StrContains(r.status.message(), absl::StrCat("offset ", offset, ":")))
      << r.status << " (expected offset " << offset << ")";
}

// Three segments or more; returns the records and the segment numbers.
inline std::vector<Record> WriteThreeSegments(const std::string& dir, std::vector<uint64_t>* live) {
  std::vector<Record> written = WriteLog(dir, std::vector<size_t>(150, 1000), Durability::kNone);
  ReadResult r = ReadLog(dir);
  EXPECT_TRUE(r.status.ok());
  live->clear();
  for (const auto& s : r.tail.segments) live->push_back(s.first);
  EXPECT_GE(live->size(), 3u);
  return written;
}

}  // namespace shardtx::wal::testutil
