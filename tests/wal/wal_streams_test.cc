// A log of several streams (WalOptions::streams): records carry their stream, readers report
// it, and truncation frees a segment only when no stream (and no Retain) needs it.
#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/wal/wal_test_util.h"

namespace shardtx::wal {
namespace {

using testutil::OpenWriter;
using testutil::ReadLog;
using testutil::ScratchDir;

WalOptions Streams(uint32_t n) {
  WalOptions o = testutil::SmallSegments();
  o.streams = n;
  return o;
}

// Appends `count` synced records of `size` bytes to `stream`; returns their LSNs.
std::vector<Lsn> AppendTo(WalWriter* w, uint16_t stream, int count, size_t size = 1000) {
  std::vector<Lsn> lsns;
  for (int i = 0; i < count; ++i) {
    absl::StatusOr<Lsn> lsn = w->Append(1, std::string(size, static_cast<char>('a' + stream)),
                                        Durability::kNone, stream);
    EXPECT_TRUE(lsn.ok()) << lsn.status();
    if (!lsn.ok()) break;
    lsns.push_back(*lsn);
  }
  EXPECT_TRUE(w->Sync().ok());
  return lsns;
}

// The LSNs of the records of `stream` that a reader finds from the oldest segment on.
std::vector<Lsn> StreamLsns(const std::string& dir, uint16_t stream) {
  std::vector<Lsn> out;
  auto reader = WalReader::Open(Env::Default(), dir, ReaderOptions{});
  EXPECT_TRUE(reader.ok()) << reader.status();
  if (!reader.ok()) return out;
  WalRecord rec;
  while (true) {
    absl::StatusOr<bool> more = (*reader)->Next(&rec);
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok() || !*more) break;
    if (rec.stream == stream) out.push_back(rec.lsn);
  }
  return out;
}

Lsn OldestLsn(const std::string& dir) {
  ReaderOptions o;
  testutil::ReadResult r = ReadLog(dir, o);
  EXPECT_TRUE(r.status.ok()) << r.status;
  return r.records.empty() ? 0 : r.records.front().lsn;
}

TEST(WalStreams, RecordsCarryTheirStreamAndTheTailEachStreamsLastLsn) {
  ScratchDir dir;
  std::map<Lsn, uint16_t> expected;
  {
    auto w = OpenWriter(dir.path(), Streams(3));
    ASSERT_NE(w, nullptr);
    for (int i = 0; i < 30; ++i) {
      const uint16_t stream = static_cast<uint16_t>(i % 3 == 2 ? 2 : i % 2);
      absl::StatusOr<Lsn> lsn = w->Append(7, "x", Durability::kNone, stream);
      ASSERT_TRUE(lsn.ok()) << lsn.status();
      expected[*lsn] = stream;
    }
    ASSERT_TRUE(w->Close().ok());
  }
  auto reader = WalReader::Open(Env::Default(), dir.path(), ReaderOptions{});
  ASSERT_TRUE(reader.ok()) << reader.status();
  WalRecord rec;
  std::vector<Lsn> last(3, 0);
  size_t n = 0;
  while (true) {
    absl::StatusOr<bool> more = (*reader)->Next(&rec);
    ASSERT_TRUE(more.ok()) << more.status();
    if (!*more) break;
    ASSERT_EQ(rec.stream, expected.at(rec.lsn)) << "LSN " << rec.lsn;
    last[rec.stream] = rec.lsn;
    ++n;
  }
  EXPECT_EQ(n, expected.size());
  EXPECT_EQ((*reader)->tail().stream_last_lsn, last);
}

TEST(WalStreams, AOneStreamLogKeepsTheReservedBytesZero) {
  // A per-shard log's record header is unchanged: bytes 14-15 (the stream) are zero.
  ScratchDir dir;
  {
    auto w = OpenWriter(dir.path(), Streams(1));
    ASSERT_NE(w, nullptr);
    ASSERT_TRUE(w->Append(3, "payload", Durability::kNone).ok());
    ASSERT_TRUE(w->Close().ok());
  }
  const std::string bytes = testutil::ReadFile(SegmentPath(dir.path(), 1));
  ASSERT_GT(bytes.size(), kSegmentHeaderSize + kRecordHeaderSize);
  EXPECT_EQ(bytes[kSegmentHeaderSize + 12], 3);
  EXPECT_EQ(bytes[kSegmentHeaderSize + 13], 0);
  EXPECT_EQ(bytes[kSegmentHeaderSize + 14], 0);
  EXPECT_EQ(bytes[kSegmentHeaderSize + 15], 0);
}

TEST(WalStreams, BadStreamsAreRefused) {
  ScratchDir dir;
  WalOptions zero = Streams(0);
  EXPECT_TRUE(absl::IsInvalidArgument(
      WalWriter::OpenAfterScan(Env::Default(), dir.path(), zero).status()));
  {
    auto w = OpenWriter(dir.path(), Streams(4));
    ASSERT_NE(w, nullptr);
    EXPECT_TRUE(absl::IsInvalidArgument(w->Append(1, "x", Durability::kNone, 4).status()));
    EXPECT_TRUE(absl::IsInvalidArgument(w->Truncate(1, 4)));
    ASSERT_TRUE(w->Append(1, "x", Durability::kNone, 3).ok());
    ASSERT_TRUE(w->Close().ok());
  }
  // The log holds a record of stream 3: a writer of 2 streams could not account for it.
  absl::Status s = WalWriter::OpenAfterScan(Env::Default(), dir.path(), Streams(2)).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
}

TEST(WalStreams, ASegmentStaysWhileAnyStreamNeedsIt) {
  // 1000-byte records: 63 to a 64 KiB segment, so LSNs 1-63 fill segment 1, 64-126 segment 2.
  ScratchDir dir;
  auto w = OpenWriter(dir.path(), Streams(2));
  ASSERT_NE(w, nullptr);
  const std::vector<Lsn> a = AppendTo(w.get(), 0, 100);
  const std::vector<Lsn> b = AppendTo(w.get(), 1, 100);
  AppendTo(w.get(), 0, 100);
  ASSERT_EQ(b[0], 101u);
  // Stream 0 needs nothing below its last record; stream 1 needs all of its own (from b[0]):
  // only segment 1, wholly below b[0], goes.
  ASSERT_TRUE(w->Truncate(w->durable_lsn(), 0).ok());
  EXPECT_EQ(OldestLsn(dir.path()), 64u);
  EXPECT_EQ(StreamLsns(dir.path(), 1), b);
  // Stream 1 needs its records from b[50] on: segment 2 (which holds b[0]) goes too.
  ASSERT_TRUE(w->Truncate(b[50], 1).ok());
  const Lsn oldest = OldestLsn(dir.path());
  EXPECT_GT(oldest, b[0]);
  EXPECT_LE(oldest, b[50]);
  const std::vector<Lsn> left = StreamLsns(dir.path(), 1);
  ASSERT_FALSE(left.empty());
  EXPECT_EQ(left.back(), b.back());
  EXPECT_LE(left.front(), b[50]);
}

TEST(WalStreams, AnIdleStreamPinsNothing) {
  ScratchDir dir;
  auto w = OpenWriter(dir.path(), Streams(2));
  ASSERT_NE(w, nullptr);
  const std::vector<Lsn> early = AppendTo(w.get(), 1, 5);
  // Stream 1 has everything below early.back() + 1 elsewhere (a checkpoint), and then idles.
  ASSERT_TRUE(w->Truncate(early.back() + 1, 1).ok());
  std::vector<Lsn> a;
  for (int round = 0; round < 4; ++round) {
    a = AppendTo(w.get(), 0, 100);
    ASSERT_TRUE(w->Truncate(a.front(), 0).ok());
  }
  // Stream 1's old segment went with stream 0's.
  EXPECT_GT(OldestLsn(dir.path()), early.back());
  EXPECT_TRUE(StreamLsns(dir.path(), 1).empty());
}

TEST(WalStreams, AnIdleStreamsNextRecordIsNeeded) {
  ScratchDir dir;
  auto w = OpenWriter(dir.path(), Streams(2));
  ASSERT_NE(w, nullptr);
  const std::vector<Lsn> early = AppendTo(w.get(), 1, 5);
  ASSERT_TRUE(w->Truncate(early.back() + 1, 1).ok());  // stream 1 needs nothing now
  const std::vector<Lsn> late = AppendTo(w.get(), 1, 1);  // ... until this
  for (int round = 0; round < 4; ++round) {
    const std::vector<Lsn> a = AppendTo(w.get(), 0, 100);
    ASSERT_TRUE(w->Truncate(a.back() + 1, 0).ok());
  }
  const std::vector<Lsn> left = StreamLsns(dir.path(), 1);
  ASSERT_FALSE(left.empty());
  EXPECT_EQ(left.back(), late[0]);
  EXPECT_LE(OldestLsn(dir.path()), late[0]);
}

TEST(WalStreams, RetainKeepsRecordsUntilReleased) {
  ScratchDir dir;
  auto w = OpenWriter(dir.path(), Streams(1));
  ASSERT_NE(w, nullptr);
  const std::vector<Lsn> a = AppendTo(w.get(), 0, 100);
  ASSERT_TRUE(w->Truncate(a[10], 0).ok());
  const Lsn kept = w->Retain(a.back());
  EXPECT_LE(kept, a[10]);
  EXPECT_LE(OldestLsn(dir.path()), kept);
  const std::vector<Lsn> b = AppendTo(w.get(), 0, 200);
  ASSERT_TRUE(w->Truncate(b.back() + 1, 0).ok());
  EXPECT_LE(OldestLsn(dir.path()), kept);
  w->Release(kept);
  ASSERT_TRUE(w->Truncate(b.back() + 1, 0).ok());
  EXPECT_GT(OldestLsn(dir.path()), a.back());
}

TEST(WalStreams, RetainIsNeverAboveWhatItIsAskedFor) {
  ScratchDir dir;
  auto w = OpenWriter(dir.path(), Streams(2));
  ASSERT_NE(w, nullptr);
  const std::vector<Lsn> a = AppendTo(w.get(), 0, 100);
  ASSERT_TRUE(w->Truncate(a.back() + 1, 0).ok());  // nobody needs anything
  const Lsn kept = w->Retain(a.back());
  EXPECT_EQ(kept, a.back());
  AppendTo(w.get(), 1, 300);
  ASSERT_TRUE(w->Truncate(w->durable_lsn() + 1, 1).ok());
  const testutil::ReadResult r = ReadLog(dir.path());
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_FALSE(r.records.empty());
  EXPECT_LE(r.records.front().lsn, a.back());
  w->Release(kept);
}

TEST(WalStreams, AfterReopenAStreamNeedsItsRecordsUntilItSaysOtherwise) {
  ScratchDir dir;
  std::vector<Lsn> b;
  {
    auto w = OpenWriter(dir.path(), Streams(2));
    ASSERT_NE(w, nullptr);
    b = AppendTo(w.get(), 1, 50);
    AppendTo(w.get(), 0, 200);
    ASSERT_TRUE(w->Close().ok());
  }
  auto w = OpenWriter(dir.path(), Streams(2));
  ASSERT_NE(w, nullptr);
  const std::vector<Lsn> a = AppendTo(w.get(), 0, 200);
  ASSERT_TRUE(w->Truncate(a.back() + 1, 0).ok());
  // Stream 1 has stated no floor since the reopen: its records stay.
  EXPECT_EQ(StreamLsns(dir.path(), 1), b);
  ASSERT_TRUE(w->Truncate(b.back() + 1, 1).ok());
  EXPECT_TRUE(StreamLsns(dir.path(), 1).empty());
}

}  // namespace
}  // namespace shardtx::wal
