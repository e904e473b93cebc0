// Payloads of the transaction records the transaction layer writes into shard WALs (record
// types in engine/log_record.h). Layouts, integers little-endian, strings length-prefixed:
//
//   kPrepare         u64 txn_id, name, u64 snapshot_ts, varint n, n x varint participant
//                    shard, writes (see EncodeWrites), then, only for a serializable named
//                    prepare's first participant: varint k, k x read key, varint r,
//                    r x (lower, upper) read range (the read locks it holds until decided;
//                    absent, the record ends after the writes)
//   kCommitPrepared  u64 txn_id, u64 commit_ts
//   kAbortPrepared   u64 txn_id
//   kDecision        u64 txn_id, u8 commit, u64 commit_ts (0: chosen in phase 2),
//                    varint n, n x varint shard
//
// A prepared transaction's row in the LMDB table kPreparedTable (key: u64 txn_id, big-endian)
// holds the kPrepare payload.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "engine/types.h"

namespace shardtx::txn {

struct PrepareRecord {
  uint64_t txn_id = 0;
  std::string name;  // empty for an internal (coordinator-driven) prepare
  uint64_t snapshot_ts = 0;
  // Every shard the transaction prepares on: recovery keeps a named transaction prepared only
  // if all of them have their part (a Prepare that died half-way was never acknowledged).
  std::vector<uint32_t> participants;
  std::vector<engine::Write> writes;
  // The read set a serializable named prepare keeps locked until its decision (see
  // TwoPhaseState::AddReadLocks). Written in the first participant's record only.
  std::vector<std::string> read_keys;
  std::vector<std::pair<std::string, std::string>> read_ranges;  // [lower, upper); "" no bound
};
std::string EncodePrepare(const PrepareRecord& r);
bool DecodePrepare(absl::string_view in, PrepareRecord* r);

std::string EncodeTxnTs(uint64_t txn_id, uint64_t ts);  // kCommitPrepared
bool DecodeTxnTs(absl::string_view in, uint64_t* txn_id, uint64_t* ts);
std::string EncodeTxn(uint64_t txn_id);  // kAbortPrepared, kEnd
bool DecodeTxn(absl::string_view in, uint64_t* txn_id);

struct DecisionRecord {
  uint64_t txn_id = 0;
  bool commit = false;
  uint64_t commit_ts = 0;
  std::vector<uint32_t> shards;
};
std::string EncodeDecision(const DecisionRecord& r);
bool DecodeDecision(absl::string_view in, DecisionRecord* r);

// The table where checkpoints keep prepared transactions' write sets (engine::TableWrite), so
// that a prepared transaction waiting long for its decision does not pin the WAL.
inline constexpr char kPreparedTable[] = "prepared";
std::string PreparedTableKey(uint64_t txn_id);

}  // namespace shardtx::txn
