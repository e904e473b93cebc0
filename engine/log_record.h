// The engine's own log record, kCommit: a single-shard commit, redone by the engine itself.
// Payload, integers little-endian, strings varint-length-prefixed:
//
//   kCommit          u64 commit_ts, u64 txn_id, varint n, n x (u8 op, key, value)
//                    op: 1 put, 2 delete
//
// Every committed version carries its commit timestamp in the record, never implied by LSN.
// The record types are in engine/types.h; the transaction layer's records (kPrepare and the
// rest of two-phase commit) are described in txn/txn_records.h alone.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "engine/types.h"

namespace shardtx::engine {

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
