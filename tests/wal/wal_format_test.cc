// The on-disk format of format.h, pinned byte by byte: file names, the segment header and the
// record framing, and that their decoders reject every damaged or foreign byte sequence.
#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/wal/wal_test_util.h"
#include "util/coding.h"
#include "wal/format.h"
#include "wal/segment.h"
#include "xxhash.h"

namespace shardtx::wal {
namespace {

using testutil::Payload;

std::string Encoded(uint8_t type, Lsn lsn, Lsn sync_lsn, uint64_t seed,
                    const std::string& payload) {
  std::string buf(AlignedRecordSize(payload.size()), '\xEE');  // not zero: padding must be set
  EncodeRecord(buf.data(), type, lsn, payload);
  SealRecord(buf.data(), sync_lsn, seed);
  return buf;
}

std::string EncodedHeader(const SegmentHeader& h) {
  std::string buf(kSegmentHeaderSize, '\xEE');
  EncodeSegmentHeader(h, buf.data());
  return buf;
}

TEST(WalFileName, IsSixteenLowercaseHexDigitsDotWal) {
  EXPECT_EQ(SegmentFileName(42), "000000000000002a.wal");
  EXPECT_EQ(SegmentFileName(0), "0000000000000000.wal");
  EXPECT_EQ(SegmentFileName(~uint64_t{0}), "ffffffffffffffff.wal");
  EXPECT_EQ(SegmentPath("/x/y", 1), "/x/y/0000000000000001.wal");
  for (uint64_t n :
       {uint64_t{0}, uint64_t{1}, uint64_t{0xabcdef}, ~uint64_t{0}, uint64_t{1} << 63}) {
    EXPECT_EQ(ParseSegmentFileName(SegmentFileName(n)), n);
  }
}

TEST(WalFileName, ParseRejectsEverythingElse) {
  for (const char* name :
       {"", "LOCK", "000000000000002a", "000000000000002A.wal", "000000000000002a.WAL",
        "00000000000002a.wal", "0000000000000002a.wal", "000000000000002a.wal.free",
        "000000000000002a.wal.lost", "000000000000002g.wal", "-00000000000002a.wal",
        " 00000000000002a.wal", "000000000000002a.log"}) {
    EXPECT_EQ(ParseSegmentFileName(name), std::nullopt) << "'" << name << "'";
  }
}

TEST(WalSegmentHeader, LayoutMatchesFormatH) {
  const SegmentHeader h{0x0102030405060708ull, 0x1112131415161718ull, 0x2122232425262728ull};
  const std::string b = EncodedHeader(h);
  ASSERT_EQ(b.size(), 64u);
  EXPECT_EQ(b.substr(0, 8), "SHTXWAL1");
  EXPECT_EQ(DecodeFixed32(&b[8]), kWalFormatVersion);
  EXPECT_EQ(DecodeFixed32(&b[12]), 0u);
  EXPECT_EQ(DecodeFixed64(&b[16]), h.segment);
  EXPECT_EQ(DecodeFixed64(&b[24]), h.first_lsn);
  EXPECT_EQ(DecodeFixed64(&b[32]), h.salt);
  EXPECT_EQ(DecodeFixed64(&b[40]), 0u);
  EXPECT_EQ(DecodeFixed64(&b[48]), 0u);
  EXPECT_EQ(DecodeFixed64(&b[56]), XXH3_64bits(b.data(), 56));
}

TEST(WalSegmentHeader, RoundTrips) {
  const SegmentHeader h{7, 1234, 0xfeedface};
  auto d = DecodeSegmentHeader(EncodedHeader(h), 7);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->segment, 7u);
  EXPECT_EQ(d->first_lsn, 1234u);
  EXPECT_EQ(d->salt, 0xfeedfaceu);
  EXPECT_EQ(d->seed(), RecordSeed(7, 0xfeedface));
  // Extra bytes after the header (the records) are ignored.
  EXPECT_TRUE(DecodeSegmentHeader(EncodedHeader(h) + "records...", 7).has_value());
}

TEST(WalSegmentHeader, EveryBitFlipIsRejected) {
  const std::string good = EncodedHeader({3, 99, 0x5a5a5a5a5a5a5a5aull});
  ASSERT_TRUE(DecodeSegmentHeader(good, 3).has_value());
  for (size_t byte = 0; byte < good.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = good;
      bad[byte] = static_cast<char>(bad[byte] ^ (1 << bit));
      EXPECT_FALSE(DecodeSegmentHeader(bad, 3).has_value()) << "byte " << byte << " bit " << bit;
    }
  }
}

TEST(WalSegmentHeader, RejectsShortWrongSegmentZeroLsnZerosAndOtherVersions) {
  const std::string good = EncodedHeader({3, 99, 1});
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(DecodeSegmentHeader(good.substr(0, n), 3).has_value()) << n;
  }
  // A recycled file still carries the valid header of its earlier number.
  EXPECT_FALSE(DecodeSegmentHeader(good, 4).has_value());
  EXPECT_FALSE(DecodeSegmentHeader(good, 2).has_value());
  // first_lsn 0 is never valid, even with a correct checksum.
  EXPECT_FALSE(DecodeSegmentHeader(EncodedHeader({3, 0, 1}), 3).has_value());
  // A preallocated (zero-filled) file.
  EXPECT_FALSE(DecodeSegmentHeader(std::string(64, '\0'), 0).has_value());
  // Another format version with a correct checksum.
  std::string v2 = good;
  EncodeFixed32(&v2[8], kWalFormatVersion + 1);
  EncodeFixed64(&v2[56], XXH3_64bits(v2.data(), 56));
  EXPECT_FALSE(DecodeSegmentHeader(v2, 3).has_value());
}

TEST(WalRecord, AlignedSizeIsHeaderPlusPayloadRoundedUpToEight) {
  EXPECT_EQ(AlignedRecordSize(0), 32u);
  EXPECT_EQ(AlignedRecordSize(1), 40u);
  EXPECT_EQ(AlignedRecordSize(8), 40u);
  EXPECT_EQ(AlignedRecordSize(9), 48u);
  for (uint64_t n = 0; n < 100; ++n) {
    EXPECT_EQ(AlignedRecordSize(n) % 8, 0u);
    EXPECT_GE(AlignedRecordSize(n), 32 + n);
    EXPECT_LT(AlignedRecordSize(n), 32 + n + 8);
  }
}

TEST(WalRecord, LayoutMatchesFormatH) {
  const uint64_t seed = RecordSeed(5, 77);
  const std::string payload = "hello, log";
  const std::string b = Encoded(200, 0x0102030405060708ull, 0x0102030405060700ull, seed, payload);
  ASSERT_EQ(b.size(), 48u);
  EXPECT_EQ(DecodeFixed32(&b[8]), payload.size());
  EXPECT_EQ(static_cast<uint8_t>(b[12]), 200);
  EXPECT_EQ(b.substr(13, 3), std::string(3, '\0'));
  EXPECT_EQ(DecodeFixed64(&b[16]), 0x0102030405060708ull);
  EXPECT_EQ(DecodeFixed64(&b[24]), 0x0102030405060700ull);
  EXPECT_EQ(b.substr(32, payload.size()), payload);
  EXPECT_EQ(b.substr(32 + payload.size()), std::string(6, '\0'));  // zero padding
  EXPECT_EQ(DecodeFixed64(&b[0]), XXH3_64bits_withSeed(b.data() + 8, 24 + payload.size(), seed));
}

TEST(WalRecord, RoundTripsEveryPayloadSize) {
  const uint64_t seed = RecordSeed(9, 0x1234);
  std::vector<size_t> sizes;
  for (size_t n = 0; n <= 300; ++n) sizes.push_back(n);
  for (size_t n : {4095, 4096, 4097, 65000, 1 << 20}) sizes.push_back(n);
  for (size_t n : sizes) {
    const std::string payload = Payload(n, n);
    // Parse it inside a larger "segment" at a non-zero offset, with bytes after it.
    std::string seg = std::string(64, 'x') + Encoded(17, 1000 + n, 990, seed, payload) + "tail";
    auto r = ParseRecord(seg, 64, seed, 1 << 20);
    ASSERT_TRUE(r.has_value()) << n;
    EXPECT_EQ(r->lsn, 1000 + n);
    EXPECT_EQ(r->sync_lsn, 990u);
    EXPECT_EQ(r->type, 17);
    EXPECT_EQ(r->payload, payload);
    EXPECT_EQ(r->aligned_size, AlignedRecordSize(n));
  }
}

TEST(WalRecord, EveryBitFlipInCheckedBytesIsRejected) {
  const uint64_t seed = RecordSeed(2, 0xabc);
  for (size_t n : {0, 1, 7, 8, 9, 100}) {
    const std::string good = Encoded(3, 50, 49, seed, Payload(n, n));
    ASSERT_TRUE(ParseRecord(good, 0, seed, 1 << 20).has_value());
    for (size_t byte = 0; byte < kRecordHeaderSize + n; ++byte) {
      for (int bit = 0; bit < 8; ++bit) {
        std::string bad = good;
        bad[byte] = static_cast<char>(bad[byte] ^ (1 << bit));
        EXPECT_FALSE(ParseRecord(bad, 0, seed, 1 << 20).has_value())
            << "size " << n << " byte " << byte << " bit " << bit;
      }
    }
  }
}

TEST(WalRecord, PaddingIsNotCheckedButNeverChangesThePayload) {
  const uint64_t seed = RecordSeed(2, 0xabc);
  const std::string payload = Payload(1, 3);
  std::string rec = Encoded(3, 50, 49, seed, payload);
  for (size_t byte = kRecordHeaderSize + payload.size(); byte < rec.size(); ++byte) rec[byte] = 'P';
  auto r = ParseRecord(rec, 0, seed, 1 << 20);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->payload, payload);
  EXPECT_EQ(r->aligned_size, rec.size());
}

TEST(WalRecord, ForeignSeedIsRejected) {
  // A recycled file, or an earlier activation of the same segment number, has another seed.
  const std::string rec = Encoded(3, 50, 49, RecordSeed(4, 1000), "payload");
  EXPECT_TRUE(ParseRecord(rec, 0, RecordSeed(4, 1000), 1 << 20).has_value());
  EXPECT_FALSE(ParseRecord(rec, 0, RecordSeed(4, 1001), 1 << 20).has_value());
  EXPECT_FALSE(ParseRecord(rec, 0, RecordSeed(5, 1000), 1 << 20).has_value());
  EXPECT_FALSE(ParseRecord(rec, 0, RecordSeed(3, 1000), 1 << 20).has_value());
  EXPECT_NE(RecordSeed(4, 1000), RecordSeed(5, 1000));
  EXPECT_NE(RecordSeed(4, 1000), RecordSeed(4, 1001));
}

// Rewrites the checksum so only the rule under test can reject the record.
void Reseal(std::string* rec, uint64_t seed) {
  uint32_t len = DecodeFixed32(rec->data() + 8);
  EncodeFixed64(rec->data(), XXH3_64bits_withSeed(rec->data() + 8, 24 + len, seed));
}

TEST(WalRecord, TypeZeroAndANonZeroReservedByteAreRejectedEvenWithAGoodChecksum) {
  const uint64_t seed = 42;
  std::string rec = Encoded(3, 50, 49, seed, "abc");
  rec[12] = 0;
  Reseal(&rec, seed);
  EXPECT_FALSE(ParseRecord(rec, 0, seed, 1 << 20).has_value());
  std::string r2 = Encoded(3, 50, 49, seed, "abc");
  r2[13] = 1;
  Reseal(&r2, seed);
  EXPECT_FALSE(ParseRecord(r2, 0, seed, 1 << 20).has_value());
}

TEST(WalRecord, BytesFourteenAndFifteenAreTheStream) {
  const uint64_t seed = 42;
  std::string rec = Encoded(3, 50, 49, seed, "abc");
  rec[14] = 0x34;
  rec[15] = 0x12;
  Reseal(&rec, seed);
  std::optional<ParsedRecord> r = ParseRecord(rec, 0, seed, 1 << 20);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->stream, 0x1234);
  EXPECT_EQ(r->payload, "abc");
  char enc[kRecordHeaderSize + 8];
  EncodeRecord(enc, 3, 50, "abc", 0xBEEF);
  EXPECT_EQ(DecodeFixed16(enc + 14), 0xBEEF);
}

TEST(WalRecord, LengthAboveLimitOrPastTheEndIsRejectedWithoutReadingIt) {
  const uint64_t seed = 42;
  const std::string rec = Encoded(3, 50, 49, seed, Payload(0, 100));
  EXPECT_TRUE(ParseRecord(rec, 0, seed, 100).has_value());
  EXPECT_FALSE(ParseRecord(rec, 0, seed, 99).has_value());
  // Every cut of the record: the length now runs past the end of the data.
  for (size_t cut = 0; cut < kRecordHeaderSize + 100; ++cut) {
    EXPECT_FALSE(ParseRecord(absl::string_view(rec.data(), cut), 0, seed, 1 << 20).has_value())
        << cut;
  }
  // Huge lengths, with a checksum over what the length claims impossible to compute: rejected
  // by the bounds check alone (a sanitizer build would catch a read past the buffer).
  for (uint32_t len : {0xFFFFFFFFu, 0x80000000u, 0x10000u, 101u}) {
    std::string bad = rec;
    EncodeFixed32(&bad[8], len);
    EXPECT_FALSE(ParseRecord(bad, 0, seed, ~uint64_t{0}).has_value()) << len;
  }
}

TEST(WalRecord, OffsetsAtOrPastTheEndAreRejected) {
  const std::string rec = Encoded(3, 50, 49, 42, "abc");
  EXPECT_FALSE(ParseRecord(rec, rec.size(), 42, 1 << 20).has_value());
  EXPECT_FALSE(ParseRecord(rec, rec.size() + 1, 42, 1 << 20).has_value());
  EXPECT_FALSE(ParseRecord(rec, ~uint64_t{0}, 42, 1 << 20).has_value());
  EXPECT_FALSE(ParseRecord(rec, 8, 42, 1 << 20).has_value());
  EXPECT_FALSE(ParseRecord("", 0, 42, 1 << 20).has_value());
}

TEST(WalRecord, ZeroFilledBytesAreNeverARecord) {
  const std::string zeros(4096, '\0');
  for (uint64_t seed : {uint64_t{0}, uint64_t{1}, RecordSeed(1, 0), ~uint64_t{0}}) {
    for (uint64_t off = 0; off < zeros.size(); off += 8) {
      EXPECT_FALSE(ParseRecord(zeros, off, seed, 1 << 20).has_value());
    }
  }
}

}  // namespace
}  // namespace shardtx::wal
