// Coordinator: two-phase commit across shards, and the host's named prepares.
//
//   Prepare          phase one: validate and lock under every involved shard's commit lock,
//                    log a kPrepare record on each participant, wait for their fsyncs
//   CommitDecided    the decision on the coordinator shard (the commit point), then phase two:
//                    kCommitPrepared on each participant, install, visible everywhere at once
//   AbortPrepared    kAbortPrepared on each participant (presumed abort needs no decision)
//   Redo, LoadPrepared, ResolveInDoubt
//                    recovery: the 2PC records and prepared-table rows of every shard, then
//                    each prepared transaction committed (decision on record), aborted
//                    (unnamed or incomplete, none on record) or kept for its host (named)
//
// The protocol and its records: docs/architecture.md, txn/txn_records.h. The state it keeps
// between the phases (prepared transactions, key locks, decisions, outcomes) is TwoPhaseState.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "engine/shard.h"
#include "shardtx/database.h"
#include "txn/two_phase_state.h"
#include "txn/txn_records.h"
#include "util/mutex.h"

namespace shardtx::txn {

class DatabaseImpl;

// A transaction's writes by shard, and the shards its commit must lock.
struct CommitPlan {
  std::vector<std::vector<engine::Write>> by_shard;
  std::vector<uint32_t> parts;     // shards written, ascending
  std::vector<uint32_t> involved;  // shards to validate and lock, ascending: the parts, and
                                   // (serializable) the shards read
};

// Holds the commit locks of several shards, taken in ascending shard order (no deadlock).
class ShardLocks {
 public:
  ShardLocks(DatabaseImpl* db, const std::vector<uint32_t>& shards);
  ~ShardLocks();
  ShardLocks(const ShardLocks&) = delete;
  ShardLocks& operator=(const ShardLocks&) = delete;

 private:
  absl::InlinedVector<Mutex*, 4> held_;
};

class Coordinator {
 public:
  // `db` outlives this.
  Coordinator(DatabaseImpl* db, uint32_t num_shards);

  TwoPhaseState& state() { return state_; }

  // What a transaction brings to phase one.
  struct PrepareRequest {
    uint64_t txn_id = 0;
    std::string name;  // empty: our own cross-shard commit (CommitDecided follows)
    engine::Timestamp snapshot = 0;
    CommitPlan* plan = nullptr;  // its write sets are moved into the prepared state
    // A serializable named prepare's read set, kept locked until its decision (else empty).
    std::vector<std::string> read_keys;
    std::vector<std::pair<std::string, std::string>> read_ranges;
    // Take the commit timestamp under the locks, with the validation (serializable).
    bool early_ts = false;
  };
  // Phase one of plan->parts. `validate` runs under every involved shard's commit lock and
  // fails the prepare with its status. Returns the early commit timestamp (0 unless
  // early_ts), to hand to CommitDecided. On an I/O failure the parts prepared so far are
  // aborted, on the record too.
  absl::StatusOr<engine::Timestamp> Prepare(PrepareRequest& request,
                                            absl::FunctionRef<absl::Status()> validate);

  // The decision and phase two of prepared transaction `txn_id` on `parts` (ascending;
  // parts[0] is the coordinator): logs and syncs the decision (the commit point), then on
  // each participant logs the commit record without waiting, installs the writes at one new
  // commit timestamp and releases the locks; then makes the commit visible everywhere at
  // once. `commit_ts` 0: chosen after the decision (one taken before is finished on every
  // path). Returns the commit timestamp, or an I/O status: then, if the decision could not be
  // appended, an unnamed transaction is aborted and a `named` one stays prepared; if its sync
  // failed, the transaction stays prepared (in doubt until the database is reopened); and a
  // single participant's commit record that failed is taken back, unseen.
  absl::StatusOr<engine::Timestamp> CommitDecided(uint64_t txn_id,
                                                  const std::vector<uint32_t>& parts,
                                                  engine::Timestamp commit_ts, bool named);
  // Logs kAbortPrepared on each part and releases its locks. `sync`: wait for durability.
  // REQUIRES no shard commit lock held.
  absl::Status AbortPrepared(uint64_t txn_id, const std::vector<uint32_t>& parts, bool sync);

  // The host's decisions on named prepares (Database::CommitPrepared, RollbackPrepared).
  absl::Status CommitPrepared(const std::string& name);
  absl::Status RollbackPrepared(const std::string& name);

  // Recovery, before any transaction: the rows of a shard's prepared table, then every 2PC
  // record of the shard's WAL in LSN order (ShardHooks::Redo), then ResolveInDoubt once every
  // shard is redone and the oracle knows the recovered timestamps.
  absl::Status LoadPrepared(uint32_t shard,
                            const std::vector<std::pair<std::string, std::string>>& rows);
  absl::StatusOr<std::optional<engine::ShardHooks::RedoInstall>> Redo(uint32_t shard,
                                                                      engine::Lsn lsn, bool applied,
                                                                      uint8_t type,
                                                                      absl::string_view payload);
  // The largest commit timestamp the recovered decisions hold.
  engine::Timestamp RecoveredMaxTs() const;
  absl::Status ResolveInDoubt();

 private:
  // Read locks of a prepared transaction found in a prepare record or prepared-table row.
  void AddRecoveredReadLocks(const PrepareRecord& r);

  DatabaseImpl* const db_;
  TwoPhaseState state_;
  // Recovery only: decisions and commit timestamps found in the WALs.
  absl::flat_hash_map<uint64_t, DecisionRecord> recovered_decisions_;
  absl::flat_hash_map<uint64_t, engine::Timestamp> recovered_commit_ts_;
};

}  // namespace shardtx::txn
