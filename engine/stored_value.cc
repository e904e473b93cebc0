#include "engine/stored_value.h"

#include "util/coding.h"
#include "xxhash.h"

namespace shardtx::engine {

namespace {

// Seeds that keep the three kinds of check apart: a data value can never pass as a meta value.
constexpr uint64_t kDataSeed = 0x5348445444415441;   // "SHDTDATA"
constexpr uint64_t kTableSeed = 0x5348445454424C45;  // "SHDTTBLE"
constexpr uint64_t kMetaSeed = 0x534844544D455441;   // "SHDTMETA"

uint64_t Hash(absl::string_view s, uint64_t seed) { return XXH3_64bits_withSeed(s.data(), s.size(), seed); }

// Chains key, version and value; the key's length goes in the seed so that moving a byte from
// the key to the value changes the check.
uint64_t Check(uint64_t seed, absl::string_view key, uint64_t version, absl::string_view value) {
  const uint64_t k = Hash(key, seed ^ key.size());
  return Hash(value, k ^ (version * 0x9E3779B97F4A7C15ull));
}

}  // namespace

uint64_t DataCheck(absl::string_view key, Timestamp ts, absl::string_view value) {
  return Check(kDataSeed, key, ts, value);
}

uint64_t TableCheck(absl::string_view table, absl::string_view key, absl::string_view value) {
  return Check(Hash(table, kTableSeed), key, 0, value);
}

uint64_t MetaCheck(absl::string_view key, absl::string_view value) {
  return Check(kMetaSeed, key, 0, value);
}

absl::string_view StoredStateName(StoredState s) {
  switch (s) {
    case StoredState::kOk:
      return "ok";
    case StoredState::kMalformed:
      return "malformed";
    case StoredState::kMismatch:
      return "checksum mismatch";
  }
  return "unknown";
}

uint64_t EncodeData(std::string* dst, absl::string_view key, Timestamp ts, absl::string_view value) {
  const uint64_t check = DataCheck(key, ts, value);
  dst->clear();
  PutFixed64(dst, ts);
  PutFixed64(dst, check);
  dst->append(value.data(), value.size());
  return check;
}

StoredState DecodeData(absl::string_view key, absl::string_view stored, Timestamp* ts,
                       absl::string_view* value) {
  if (stored.size() < 16) return StoredState::kMalformed;
  *ts = DecodeFixed64(stored.data());
  *value = stored.substr(16);
  return DataCheck(key, *ts, *value) == DecodeFixed64(stored.data() + 8) ? StoredState::kOk
                                                                           : StoredState::kMismatch;
}

uint64_t EncodeTableValue(std::string* dst, absl::string_view table, absl::string_view key,
                          absl::string_view value) {
  const uint64_t check = TableCheck(table, key, value);
  dst->clear();
  PutFixed64(dst, check);
  dst->append(value.data(), value.size());
  return check;
}

StoredState DecodeTableValue(absl::string_view table, absl::string_view key,
                             absl::string_view stored, absl::string_view* value) {
  if (stored.size() < 8) return StoredState::kMalformed;
  *value = stored.substr(8);
  return TableCheck(table, key, *value) == DecodeFixed64(stored.data()) ? StoredState::kOk
                                                                         : StoredState::kMismatch;
}

uint64_t StoredDataCheck(absl::string_view stored) {
  return stored.size() < 16 ? 0 : DecodeFixed64(stored.data() + 8);
}

uint64_t StoredTableCheck(absl::string_view stored) {
  return stored.size() < 8 ? 0 : DecodeFixed64(stored.data());
}

void EncodeMeta(std::string* dst, absl::string_view key, absl::string_view value) {
  dst->assign(value.data(), value.size());
  PutFixed64(dst, MetaCheck(key, value));
}

StoredState DecodeMeta(absl::string_view key, absl::string_view stored, absl::string_view* value) {
  if (stored.size() < 8) return StoredState::kMalformed;
  *value = stored.substr(0, stored.size() - 8);
  return MetaCheck(key, *value) == DecodeFixed64(stored.data() + stored.size() - 8)
             ? StoredState::kOk
             : StoredState::kMismatch;
}

}  // namespace shardtx::engine
