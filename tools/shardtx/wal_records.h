// Human- and machine-readable descriptions of WAL records: the engine's kCommit
// (engine/log_record.h) and the transaction layer's records (txn/txn_records.h).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "wal/reader.h"

namespace shardtx::cli {

// The name of a record type ("commit", "prepare", "commit_prepared", "abort_prepared",
// "decision", "end"; "type_N" for another).
std::string RecordTypeName(uint8_t type);

// One line describing `rec` of `shard`: LSN, type, payload length, transaction id, timestamps
// and, for records with writes, up to max_keys keys (0: all) in printable form (cli::Printable,
// keys cut at 64 bytes), their ops and value sizes. As text ("shard=0 lsn=7 type=commit ...")
// or as one JSON object. kDataLoss "malformed <type> record at LSN n" if the payload does not
// decode (as Database::Open would say), or for an unknown type.
absl::StatusOr<std::string> DescribeRecord(uint32_t shard, const wal::WalRecord& rec,
                                           size_t max_keys, bool json);

// Whether the payload decodes as its type says (what DescribeRecord checks, without the text).
absl::Status CheckRecord(const wal::WalRecord& rec);

}  // namespace shardtx::cli
