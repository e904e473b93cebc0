// Segment file names and the codecs of the segment header and record header (format.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "wal/format.h"

namespace shardtx::wal {

std::string SegmentFileName(uint64_t segment);  // "000000000000002a.wal"
std::string SegmentPath(const std::string& dir, uint64_t segment);
// The segment number of a file name, or nullopt if it is not a segment file.
std::optional<uint64_t> ParseSegmentFileName(absl::string_view name);

struct SegmentHeader {
  uint64_t segment = 0;
  Lsn first_lsn = 0;
  uint64_t salt = 0;
  uint64_t seed() const { return RecordSeed(segment, salt); }
};

void EncodeSegmentHeader(const SegmentHeader& h, char out[kSegmentHeaderSize]);
// nullopt unless magic, version, checksum and the expected segment number all match.
std::optional<SegmentHeader> DecodeSegmentHeader(absl::string_view bytes,
                                                 uint64_t expected_segment);

// Writes a record header (checksum left zero) followed by the payload and zero padding into
// dst, which must hold AlignedRecordSize(payload.size()) bytes.
void EncodeRecord(char* dst, uint8_t type, Lsn lsn, absl::string_view payload,
                  uint16_t stream = 0);
// Fills sync_lsn and the checksum of an encoded record in place.
void SealRecord(char* record, Lsn sync_lsn, uint64_t seed);

// Encodes a close mark (format.h) for a segment whose next LSN is `next_lsn` into out.
void EncodeCloseMark(Lsn next_lsn, uint64_t seed, char out[kRecordHeaderSize]);
// Whether `bytes` (at least kRecordHeaderSize of them) start with a close mark sealed with
// `seed`; sets *next_lsn to its LSN.
bool IsCloseMark(absl::string_view bytes, uint64_t seed, Lsn* next_lsn);

struct ParsedRecord {
  Lsn lsn = 0;
  Lsn sync_lsn = 0;
  uint8_t type = 0;
  uint16_t stream = 0;
  absl::string_view payload;
  uint64_t aligned_size = 0;
};
// Parses the record at `offset` of `segment` (the whole file). nullopt if the header does not
// fit, the length runs past the end or above max_payload, the type is 0, or the checksum fails.
std::optional<ParsedRecord> ParseRecord(absl::string_view segment, uint64_t offset,
                                        uint64_t seed, uint64_t max_payload);

}  // namespace shardtx::wal
