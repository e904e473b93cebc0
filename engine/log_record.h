// The meaning of the WAL records a shard writes (the WAL itself only frames bytes). Payload
// layouts, all integers little-endian, strings varint-length-prefixed:
//
//   kCommit          u64 commit_ts, u64 txn_id, varint n, n x (u8 op, key, value)
//                    op: 1 put, 2 delete
//   kPrepare         u64 txn_id, name, u64 snapshot_ts, varint n, n x (op, key, value)
//   kCommitPrepared  u64 txn_id, u64 commit_ts
//   kAbortPrepared   u64 txn_id
//   kDecision        u64 txn_id, u8 commit(1)/abort(0), u64 commit_ts (0: chosen at phase 2),
//                    varint n, n x varint shard
//   kEnd             u64 txn_id
//
// Every committed version carries its commit timestamp in the record, never implied by LSN.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace shardtx::engine {

enum RecordType : uint8_t {
  kCommit = 1,
  kPrepare = 2,
  kCommitPrepared = 3,
  kAbortPrepared = 4,
  kDecision = 5,
  kEnd = 6,
};

enum class WriteOp : uint8_t { kPut = 1, kDelete = 2 };

struct Write {
  WriteOp op = WriteOp::kPut;
  std::string key;
  std::string value;
};

// Appends the (op, key, value) list.
void EncodeWrites(std::string* dst, const std::vector<Write>& writes);
// Decodes a list written by EncodeWrites; false on malformed input (never reads past the end,
// never reserves more entries than the input could hold).
bool DecodeWrites(absl::string_view* in, std::vector<Write>* writes);

// Overwrites the commit timestamp of a record EncodeCommit made.
void SetCommitTs(std::string* commit_record, uint64_t commit_ts);
std::string EncodeCommit(uint64_t commit_ts, uint64_t txn_id, const std::vector<Write>& writes);
bool DecodeCommit(absl::string_view in, uint64_t* commit_ts, uint64_t* txn_id,
                  std::vector<Write>* writes);
// Only the fixed header of a commit record (no write set is decoded).
bool DecodeCommitHeader(absl::string_view in, uint64_t* commit_ts, uint64_t* txn_id);

}  // namespace shardtx::engine
