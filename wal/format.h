// The on-disk format of WAL segments and records (drawn byte by byte in docs/architecture.md).
//
// A shard's log is a sequence of segment files  <dir>/<segment number, 16 hex digits>.wal.
// Each segment starts with a 64-byte header; records follow, each 8-byte aligned:
//
//   segment header (64 bytes, little-endian)
//     0  magic     u64  "SHTXWAL1"
//     8  version   u32  kWalFormatVersion
//    12  reserved  u32  0
//    16  segment   u64  segment number (equals the file name)
//    24  first_lsn u64  LSN of the first record in this segment
//    32  salt      u64  random, chosen when the segment is activated
//    40  reserved  u64  0
//    48  reserved  u64  0
//    56  checksum  u64  XXH3-64 of bytes [0, 56)
//
//   record header (32 bytes), then `length` payload bytes, then zero padding to 8 bytes
//     0  checksum  u64  XXH3-64 of bytes [8, 32 + length), seeded with RecordSeed(segment, salt)
//     8  length    u32  payload bytes
//    12  type      u8   1..255, meaning owned by the layer above (0 is never valid)
//    13  reserved  u8   0
//    14  stream    u16  the stream the record belongs to (WalOptions::streams): in a log shared
//                       by several shards, the shard's number; 0 in a log of one stream
//    16  lsn       u64  this record's log sequence number
//    24  sync_lsn  u64  every record with a smaller LSN was durable when this one was written
//
//   close mark (32 bytes, laid out as a record header, never a record): what WalWriter::Close
//   writes (and syncs) after the last record, where the next record would go
//     0  checksum  u64  as a record's, with length 0
//     8  length    u32  0
//    12  type      u8   0
//    13  mark      u8   kCloseMark
//    14  reserved  u8[2] 0
//    16  lsn       u64  the next LSN (one past the last record)
//    24  sync_lsn  u64  lsn - 1 (every record is durable)
//   No writer ever writes to the segment after it (a reopened writer starts a new segment), so a
//   reader that finds it where the next record would be knows that no record of this activation
//   lies further on: it need not read the rest of the preallocated segment to tell a torn tail
//   from corruption. (Readers that predate it see a bad record at the tail: a torn tail.)
//
// LSNs number records: 1, 2, 3, ... with no gaps, across segments and streams (a stream's own
// records have increasing LSNs with the other streams' records between them). The seed makes a record from
// a recycled file or from an earlier activation of the same file fail its checksum; the LSN
// check makes the reader stop where the live records end. sync_lsn separates a torn tail (bad
// bytes followed only by records written before the bad one was synced) from corruption (bad
// bytes followed by a record written after the bad one was known durable).
#pragma once

#include <cstdint>

namespace shardtx::wal {

using Lsn = uint64_t;

inline constexpr uint64_t kSegmentMagic = 0x314C415758544853ull;  // "SHTXWAL1"
inline constexpr uint32_t kWalFormatVersion = 1;
inline constexpr uint32_t kSegmentHeaderSize = 64;
inline constexpr uint32_t kRecordHeaderSize = 32;
inline constexpr uint32_t kRecordAlign = 8;
inline constexpr uint8_t kCloseMark = 0x43;  // 'C', byte 13 of a close mark
// Hard upper bound on any segment file the reader will load, whatever its options say.
inline constexpr uint64_t kMaxSegmentSize = 1ull << 30;

inline constexpr uint64_t RecordSeed(uint64_t segment, uint64_t salt) {
  return salt ^ (segment * 0x9E3779B97F4A7C15ull);
}

inline constexpr uint64_t AlignedRecordSize(uint64_t payload) {
  return (kRecordHeaderSize + payload + kRecordAlign - 1) & ~uint64_t{kRecordAlign - 1};
}

}  // namespace shardtx::wal
