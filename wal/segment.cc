#include "wal/segment.h"

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "util/coding.h"
#include "xxhash.h"

namespace shardtx::wal {

std::string SegmentFileName(uint64_t segment) { return absl::StrFormat("%016x.wal", segment); }

std::string SegmentPath(const std::string& dir, uint64_t segment) {
  return dir + "/" + SegmentFileName(segment);
}

std::optional<uint64_t> ParseSegmentFileName(absl::string_view name) {
  if (name.size() != 20 || name.substr(16) != ".wal") return std::nullopt;
  uint64_t n = 0;
  for (char c : name.substr(0, 16)) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return std::nullopt;
    }
    n = (n << 4) | static_cast<uint64_t>(d);
  }
  return n;
}

void EncodeSegmentHeader(const SegmentHeader& h, char out[kSegmentHeaderSize]) {
  std::memset(out, 0, kSegmentHeaderSize);
  EncodeFixed64(out, kSegmentMagic);
  EncodeFixed32(out + 8, kWalFormatVersion);
  EncodeFixed64(out + 16, h.segment);
  EncodeFixed64(out + 24, h.first_lsn);
  EncodeFixed64(out + 32, h.salt);
  EncodeFixed64(out + 56, XXH3_64bits(out, 56));
}

std::optional<SegmentHeader> DecodeSegmentHeader(absl::string_view bytes,
                                                 uint64_t expected_segment) {
  if (bytes.size() < kSegmentHeaderSize) return std::nullopt;
  const char* p = bytes.data();
  if (DecodeFixed64(p) != kSegmentMagic || DecodeFixed32(p + 8) != kWalFormatVersion ||
      DecodeFixed64(p + 56) != XXH3_64bits(p, 56)) {
    return std::nullopt;
  }
  SegmentHeader h;
  h.segment = DecodeFixed64(p + 16);
  h.first_lsn = DecodeFixed64(p + 24);
  h.salt = DecodeFixed64(p + 32);
  if (h.segment != expected_segment || h.first_lsn == 0) return std::nullopt;
  return h;
}

void EncodeRecord(char* dst, uint8_t type, Lsn lsn, absl::string_view payload,
                  uint16_t stream) {
  std::memset(dst, 0, kRecordHeaderSize);
  EncodeFixed32(dst + 8, static_cast<uint32_t>(payload.size()));
  dst[12] = static_cast<char>(type);
  EncodeFixed16(dst + 14, stream);
  EncodeFixed64(dst + 16, lsn);
  if (!payload.empty()) std::memcpy(dst + kRecordHeaderSize, payload.data(), payload.size());
  uint64_t total = AlignedRecordSize(payload.size());
  uint64_t used = kRecordHeaderSize + payload.size();
  if (total > used) std::memset(dst + used, 0, total - used);
}

void SealRecord(char* record, Lsn sync_lsn, uint64_t seed) {
  EncodeFixed64(record + 24, sync_lsn);
  uint32_t len = DecodeFixed32(record + 8);
  EncodeFixed64(record, XXH3_64bits_withSeed(record + 8, kRecordHeaderSize - 8 + len, seed));
}

void EncodeCloseMark(Lsn next_lsn, uint64_t seed, char out[kRecordHeaderSize]) {
  EncodeRecord(out, /*type=*/0, next_lsn, absl::string_view());
  out[13] = static_cast<char>(kCloseMark);
  SealRecord(out, next_lsn - 1, seed);
}

bool IsCloseMark(absl::string_view bytes, uint64_t seed, Lsn* next_lsn) {
  if (bytes.size() < kRecordHeaderSize) return false;
  const char* p = bytes.data();
  if (DecodeFixed32(p + 8) != 0 || p[12] != 0 || static_cast<uint8_t>(p[13]) != kCloseMark ||
      p[14] != 0 || p[15] != 0) {
    return false;
  }
  const Lsn lsn = DecodeFixed64(p + 16);
  if (lsn == 0 || DecodeFixed64(p + 24) != lsn - 1 ||
      DecodeFixed64(p) != XXH3_64bits_withSeed(p + 8, kRecordHeaderSize - 8, seed)) {
    return false;
  }
  *next_lsn = lsn;
  return true;
}

std::optional<ParsedRecord> ParseRecord(absl::string_view segment, uint64_t offset,
                                        uint64_t seed, uint64_t max_payload) {
  if (offset > segment.size() || segment.size() - offset < kRecordHeaderSize) {
    return std::nullopt;
  }
  const char* p = segment.data() + offset;
  uint64_t len = DecodeFixed32(p + 8);
  if (len > max_payload || len > segment.size() - offset - kRecordHeaderSize) return std::nullopt;
  uint8_t type = static_cast<uint8_t>(p[12]);
  if (type == 0 || p[13] != 0) return std::nullopt;
  if (DecodeFixed64(p) != XXH3_64bits_withSeed(p + 8, kRecordHeaderSize - 8 + len, seed)) {
    return std::nullopt;
  }
  ParsedRecord r;
  r.type = type;
  r.stream = DecodeFixed16(p + 14);
  r.lsn = DecodeFixed64(p + 16);
  r.sync_lsn = DecodeFixed64(p + 24);
  r.payload = absl::string_view(p + kRecordHeaderSize, len);
  r.aligned_size = AlignedRecordSize(len);
  return r;
}

}  // namespace shardtx::wal
