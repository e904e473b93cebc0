// TwoPhaseState: what two-phase commit keeps between a prepare and its decision: the prepared
// transactions (by id and by name) with their write sets per shard, the locks on their keys,
// the decisions a coordinator shard must remember until every participant has its commit
// record durable, the rows checkpoints write to each shard's prepared table, and a bounded
// window of transaction outcomes.
//
// Lock order: a shard's commit lock before this object's mutex. Methods that change a shard's
// part say REQUIRES that shard's commit lock (not expressible to the analysis; by contract).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"
#include "engine/lmdb_store.h"
#include "engine/shard.h"
#include "engine/log_record.h"
#include "shardtx/database.h"
#include "util/mutex.h"
#include "wal/format.h"

namespace shardtx::txn {

using engine::Timestamp;
using wal::Lsn;

class TwoPhaseState {
 public:
  explicit TwoPhaseState(uint32_t num_shards);

  // --- Locks. ---
  // A description of the prepared transaction holding `key` on `shard`, or nullopt.
  std::optional<std::string> LockHolder(uint32_t shard, absl::string_view key) const;

  // --- Names. ---
  // Reserves a name for a named prepare; kAlreadyExists if a prepared transaction has it.
  absl::Status ReserveName(const std::string& name, uint64_t txn_id);
  void ReleaseName(const std::string& name);

  // --- Prepared parts. ---
  // REQUIRES the shard's commit lock. Registers the part and locks its keys. `persisted`: the
  // part was loaded from the shard's prepared table.
  // A key already locked by another transaction keeps its holder: during recovery the replay
  // of an older, long-decided prepare must not take a lock a still-prepared one holds.
  void AddPart(uint64_t txn_id, const std::string& name, Timestamp snapshot,
               const std::vector<uint32_t>& participants, uint32_t shard, Lsn lsn,
               std::vector<engine::Write> writes, bool persisted);
  bool HasPart(uint64_t txn_id, uint32_t shard) const;
  // REQUIRES the shard's commit lock. Removes the part, unlocks its keys, and returns its
  // writes (nullopt if there is no such part).
  std::optional<std::vector<engine::Write>> ResolvePart(uint64_t txn_id, uint32_t shard);

  struct PreparedInfo {
    uint64_t txn_id = 0;
    std::string name;
    Timestamp snapshot = 0;
    std::vector<uint32_t> shards;        // parts present, ascending
    std::vector<uint32_t> participants;  // parts the transaction prepared, ascending
  };
  std::optional<PreparedInfo> FindByName(const std::string& name) const;
  std::vector<PreparedInfo> AllPrepared() const;
  std::vector<std::string> Names() const;
  size_t InDoubt() const;

  // --- Decisions (the coordinator's memory). ---
  void AddDecision(uint64_t txn_id, uint32_t coordinator, Lsn lsn, size_t participants);
  // A participant's commit record for a decided transaction was appended at `lsn`.
  void AddCommitLsn(uint64_t txn_id, uint32_t shard, Lsn lsn);

  // --- Checkpoint hooks. ---
  std::vector<engine::ShardStore::TableWrite> CheckpointTables(uint32_t shard);
  void CheckpointCommitted(uint32_t shard);
  // The smallest LSN of `shard` still needed: unpersisted prepares and decisions some
  // participant may still need (durable_lsn(s) tells which commit records are durable).
  Lsn PinnedLsn(uint32_t shard, const std::function<Lsn(uint32_t)>& durable_lsn);

  // --- Outcomes, for callers that lost track of a commit. ---
  void SetOutcome(uint64_t txn_id, Database::Outcome outcome);
  Database::Outcome GetOutcome(uint64_t txn_id) const;

 private:
  struct Part {
    std::vector<engine::Write> writes;
    Lsn lsn = 0;             // its prepare record (0: loaded from the prepared table)
    bool persisted = false;  // in the shard's prepared table
    bool pending = false;    // being written to the table by a checkpoint
  };
  struct PreparedTxn {
    std::string name;
    Timestamp snapshot = 0;
    std::vector<uint32_t> participants;
    std::map<uint32_t, Part> parts;
  };
  struct Decision {
    uint32_t coordinator = 0;
    Lsn lsn = 0;
    size_t participants = 0;
    std::vector<std::pair<uint32_t, Lsn>> commit_lsns;
  };
  struct TableState {
    absl::flat_hash_set<uint64_t> deletes;
    std::vector<uint64_t> puts_in_flight;
    std::vector<uint64_t> deletes_in_flight;
  };

  mutable Mutex mu_;
  absl::node_hash_map<uint64_t, PreparedTxn> prepared_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::flat_hash_map<std::string, uint64_t>> locks_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint64_t> names_ ABSL_GUARDED_BY(mu_);
  std::vector<TableState> tables_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, Decision> decisions_ ABSL_GUARDED_BY(mu_);
  // Keys locked, over all shards: lets the commit path skip the lock table (and mu_) when no
  // transaction is prepared.
  std::atomic<uint64_t> locked_keys_{0};

  // Outcomes, striped by id so committers do not contend on one mutex.
  static constexpr size_t kOutcomeWindow = 100000;
  static constexpr size_t kStripes = 16;
  struct OutcomeStripe {
    Mutex mu;
    absl::flat_hash_map<uint64_t, Database::Outcome> map ABSL_GUARDED_BY(mu);
    std::deque<uint64_t> order ABSL_GUARDED_BY(mu);
  };
  mutable std::array<OutcomeStripe, kStripes> outcomes_;
};

}  // namespace shardtx::txn
