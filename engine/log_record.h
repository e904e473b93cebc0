// The engine's own log records, redone by the engine itself: kCommit, a single-shard commit, and
// kRaftEntry, a Raft entry a replica applied. Payload, integers little-endian, strings
// varint-length-prefixed:
//
//   kCommit          u64 commit_ts, u64 txn_id, varint n, n x (u8 op, key, value)
//                    op: 1 put, 2 delete
//   kRaftEntry       u64 raft index, u64 raft term, then the entry's payload verbatim:
//                    m >= 1 x (u8 record type, lp record payload), to the end
//                    (record type: any but kRaftEntry)
//   kClosedTs        u64 closed_ts, u64 leader_time (the proposing leader's clock, microseconds
//                    since the Unix epoch); only inside a kRaftEntry, alone in its entry
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

// A closed-timestamp record's payload (kClosedTs).
struct ClosedTs {
  uint64_t ts = 0;
  int64_t leader_time_us = 0;
};
std::string EncodeClosedTs(const ClosedTs& closed);
// False unless `in` is exactly one well-formed payload.
bool DecodeClosedTs(absl::string_view in, ClosedTs* closed);

// A Raft entry's payload (what the group replicates) is a list of engine records: appends one.
void AppendEntryRecord(std::string* entry, uint8_t type, absl::string_view payload);
struct EntryRecord {
  uint8_t type = 0;
  absl::string_view payload;  // points into the decoded input
};
// Decodes an entry payload; false unless it is one or more well-formed records of types other
// than kRaftEntry, and nothing else.
bool DecodeEntryRecords(absl::string_view entry, std::vector<EntryRecord>* records);
// The kRaftEntry record of the entry at `position` with payload `entry`.
std::string EncodeRaftEntry(const RaftPosition& position, absl::string_view entry);
// Splits a kRaftEntry record (the entry payload is not decoded: DecodeEntryRecords).
bool DecodeRaftEntry(absl::string_view in, RaftPosition* position, absl::string_view* entry);

}  // namespace shardtx::engine
