// The bytes a shard's LMDB store holds, format 2: every value carries a checksum, and the store
// carries a digest of all of them. Integers little-endian.
//
//   table "data"   key -> u64 ts | u64 check | value     check = DataCheck(key, ts, value)
//   other tables   key -> u64 check | value              check = TableCheck(table, key, value)
//   (e.g. "prepared", engine::TableWrite)
//   table "meta"   key -> value | u64 check              check = MetaCheck(key, value)
//
// Each check is XXH3-64 over the key, the version (commit timestamp; 0 in other tables) and the
// value, so a value moved to another key, an old version of the right key, and a flipped bit
// in key, version or value all fail it. The digest (meta "digest": u64 entries | u64 sum) covers
// the data and other tables: the number of entries and the sum (mod 2^64) of their stored checks.
// A checkpoint keeps it in step, in the same LMDB transaction as the entries it changes, so a
// lost or resurrected entry, which no value checksum can see, changes it.
//
// Format 1 (the directory's format 1) had no checks: data values were u64 ts | value, meta
// values bare, no digest. ShardStore upgrades such a store when it opens it for writing.
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "engine/types.h"

namespace shardtx::engine {

// The number and the check sum of a store's entries (outside "meta").
struct StoreDigest {
  uint64_t entries = 0;
  uint64_t sum = 0;

  void Add(uint64_t check) {
    ++entries;
    sum += check;
  }
  void Remove(uint64_t check) {
    --entries;
    sum -= check;
  }
  bool operator==(const StoreDigest&) const = default;
};

uint64_t DataCheck(absl::string_view key, Timestamp ts, absl::string_view value);
uint64_t TableCheck(absl::string_view table, absl::string_view key, absl::string_view value);
uint64_t MetaCheck(absl::string_view key, absl::string_view value);

// What decoding a stored value found.
enum class StoredState {
  kOk,
  kMalformed,  // too short to hold its header
  kMismatch,   // the check does not match the bytes
};
// Why a value failed, for messages: "malformed" or "checksum mismatch".
absl::string_view StoredStateName(StoredState s);

// Data table. Encode replaces *dst; returns the check it stored.
uint64_t EncodeData(std::string* dst, absl::string_view key, Timestamp ts, absl::string_view value);
StoredState DecodeData(absl::string_view key, absl::string_view stored, Timestamp* ts,
                       absl::string_view* value);

// Other tables.
uint64_t EncodeTableValue(std::string* dst, absl::string_view table, absl::string_view key,
                          absl::string_view value);
StoredState DecodeTableValue(absl::string_view table, absl::string_view key,
                             absl::string_view stored, absl::string_view* value);

// The check field of a stored data or table value as stored (not verified), for the digest;
// 0 for one too short to hold it.
uint64_t StoredDataCheck(absl::string_view stored);
uint64_t StoredTableCheck(absl::string_view stored);

// Meta table.
void EncodeMeta(std::string* dst, absl::string_view key, absl::string_view value);
StoredState DecodeMeta(absl::string_view key, absl::string_view stored, absl::string_view* value);

}  // namespace shardtx::engine
