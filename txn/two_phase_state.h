// TwoPhaseState: what two-phase commit keeps between a prepare and its decision: the prepared
// transactions (by id and by name) with their write sets per shard, the locks on their keys,
// the read locks of prepared serializable named transactions, the decisions a coordinator shard
// must remember until every participant has its commit record durable (and, until the decision
// itself is durable, the participants' commit records each WAL must keep), the rows checkpoints
// write to each shard's prepared table, and a bounded window of transaction outcomes.
//
// A transaction's life here: AddPart (once per participant, kPreparing: not listed, not
// resolvable by name) -> MarkPrepared once every part is durable (kPrepared) -> Claim by one
// resolver (kCommitting or kRollingBack; a second resolver is refused) -> ResolvePart per
// participant; the last one forgets the transaction, its name and its read locks.
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

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/shard.h"
#include "engine/types.h"
#include "shardtx/database.h"
#include "util/mutex.h"

namespace shardtx::txn {

using engine::Lsn;
using engine::Timestamp;

class TwoPhaseState {
 public:
  explicit TwoPhaseState(uint32_t num_shards);

  // --- Locks. ---
  // A description of the prepared transaction holding a write lock on `key` on `shard`, or
  // nullopt.
  std::optional<std::string> LockHolder(uint32_t shard, absl::string_view key) const;
  // The same for any key of [lower, upper) on `shard` (empty upper: no upper bound).
  std::optional<std::string> LockHolderInRange(uint32_t shard, absl::string_view lower,
                                               absl::string_view upper) const;
  // A description of the prepared transaction holding a read lock that covers `key` on `shard`
  // (a key it read there, or a range it read), or nullopt.
  std::optional<std::string> ReadLockHolder(uint32_t shard, absl::string_view key) const;
  // REQUIRES the commit locks of every shard in `keys` (all shards when `ranges` is not
  // empty), taken before the transaction's read validation. Takes read locks for prepared
  // transaction `txn_id` (which must have a part): writers of these keys and ranges are
  // refused until it is resolved. A second call for the same transaction is ignored.
  void AddReadLocks(uint64_t txn_id, std::vector<std::pair<uint32_t, std::string>> keys,
                    std::vector<std::pair<std::string, std::string>> ranges);

  // --- Names. ---
  // Reserves a name for a named prepare; kAlreadyExists if a prepared transaction has it.
  absl::Status ReserveName(const std::string& name, uint64_t txn_id);
  // Releases `name` if `txn_id` still holds it (a concurrent Prepare may hold it by now).
  void ReleaseName(const std::string& name, uint64_t txn_id);

  // --- Prepared parts. ---
  // REQUIRES the shard's commit lock. Registers the part and locks its keys. `persisted`: the
  // part was loaded from the shard's prepared table.
  // A key may have several holders only during recovery (the replay of an older prepare that
  // was resolved before a later one locked the same key); the lock is held until the last of
  // them is resolved, and LockHolder names the first.
  void AddPart(uint64_t txn_id, const std::string& name, Timestamp snapshot,
               absl::Span<const uint32_t> participants, uint32_t shard, Lsn lsn,
               std::vector<engine::Write> writes, bool persisted);
  bool HasPart(uint64_t txn_id, uint32_t shard) const;
  // REQUIRES the shard's commit lock. Removes the part, unlocks its keys, and returns its
  // writes (nullopt if there is no such part).
  std::optional<std::vector<engine::Write>> ResolvePart(uint64_t txn_id, uint32_t shard);
  // ResolvePart for a part resolved before the record resolving it is in the shard's log (a
  // replicated leader's phase-two entry, proposed but not yet applied): until
  // ResolvedPartLogged (or RestorePart), checkpoints keep the part's prepared-table row (and
  // write it if it is not there yet). A checkpoint in between cuts the log before that record
  // while LMDB takes the part's installed writes: without the row, recovery from that LMDB (a
  // reopen, or a snapshot copy) would meet a commit record whose prepare is gone.
  std::optional<std::vector<engine::Write>> ResolvePartUnlogged(uint64_t txn_id, uint32_t shard);
  // REQUIRES the shard's commit lock. The record resolving a part of ResolvePartUnlogged is in
  // the shard's log now: its row goes at the next checkpoint.
  void ResolvedPartLogged(uint64_t txn_id, uint32_t shard);
  // A copy of everything a part and its transaction hold, to put back with RestorePart.
  struct SavedPart {
    std::string name;
    Timestamp snapshot = 0;
    std::vector<uint32_t> participants;
    Lsn lsn = 0;
    bool persisted = false;
    std::vector<engine::Write> writes;
    std::vector<std::pair<uint32_t, std::string>> read_keys;
    std::vector<std::pair<std::string, std::string>> read_ranges;
  };
  std::optional<SavedPart> SavePart(uint64_t txn_id, uint32_t shard) const;
  // REQUIRES the shard's commit lock, and that the shard's log has failed (so no later
  // checkpoint of it succeeds), or that the shard is replicated and the entry resolving the part
  // was refused or its outcome is unknown (Coordinator::CommitReplicated: the part is as its
  // applied entries leave it, prepared). Puts back a part resolved by a commit whose commit
  // point then failed: its locks, read locks and (if still free) its name, in doubt until
  // reopened (replicated: until its entry is redone or a leader resolves it).
  void RestorePart(uint64_t txn_id, uint32_t shard, SavedPart saved);

  struct PreparedInfo {
    uint64_t txn_id = 0;
    std::string name;
    Timestamp snapshot = 0;
    std::vector<uint32_t> shards;        // parts present, ascending
    std::vector<uint32_t> participants;  // parts the transaction prepared, ascending
    // A commit (a decision, or a commit record of some part), or an abort record of some part,
    // was redone or claimed: its resolution has begun (neither is set once it is in doubt after
    // a failed resolution: RestorePart).
    bool commit_begun = false;
    bool abort_begun = false;
    // The commit timestamp a record of the transaction carries (SetCommitTs); 0: none seen. Its
    // parts still prepared commit at it.
    Timestamp commit_ts = 0;
  };
  // Every part of `txn_id` is durable: the transaction may now be listed and resolved by name.
  void MarkPrepared(uint64_t txn_id);
  // `txn_id` committed at `ts` (a replica redid a record carrying it: a decision, or another
  // part's commit record; or this node's own commit entry for a part was refused or unknown):
  // kept while any part of it stays prepared here, whatever its phase, and reported as
  // PreparedInfo::commit_ts. Nothing if no part of it is prepared here or `ts` is 0.
  void SetCommitTs(uint64_t txn_id, Timestamp ts);
  // One resolver of prepared transaction `name` wins: returns it and marks it as being
  // committed (`commit`) or rolled back. kNotFound if no transaction prepared under `name` is
  // durable on every participant; kFailedPrecondition if another resolver claimed it first,
  // or if a resolution failed (in doubt until the database is reopened).
  absl::StatusOr<PreparedInfo> Claim(const std::string& name, bool commit);
  // The claimed resolution of `txn_id` failed on an I/O error: its outcome is known only after
  // the database is reopened, and no further resolution is accepted until then.
  void MarkInDoubt(uint64_t txn_id);
  // A replicated database's claimed resolution of `txn_id` put no entry in any log (refused), or
  // its decision's outcome is unknown and redo will mark it resolving should it commit: prepared
  // again (listed, claimable) if every part is present. REQUIRES the commit lock of the shard
  // whose redo could mark it (the coordinator shard's), or that no entry of it is in flight.
  void ReturnToPrepared(uint64_t txn_id);
  // Redo (recovery, and a replica applying its leader's records; Coordinator::Redo): once every
  // participant's part of `txn_id` is present and no resolution has begun, it is prepared as
  // MarkPrepared makes it. A no-op otherwise.
  void MarkPreparedIfComplete(uint64_t txn_id);
  // Redo met a commit decision of `txn_id` (`commit`), or a commit or abort record of one of
  // its parts while others remain: it is being resolved (neither listed nor claimable), as on
  // the node whose host or coordinator resolves it. A no-op if it has no part here.
  void MarkResolving(uint64_t txn_id, bool commit);
  // A replica replaces the state of `shard` (a snapshot install: Shard::ReplaceState): drops
  // every part on it (its key locks; a transaction left without parts is forgotten with its
  // name and read locks) and the shard's prepared-table bookkeeping, so that the new state's
  // table rows and records rebuild it. REQUIRES the shard's commit lock.
  void DropShard(uint32_t shard);
  // TEST ONLY: every prepared transaction (id, name, listed or not, participants, parts with
  // their keys) and every lock, by shard, in a canonical order.
  // The smallest snapshot of a transaction with a part prepared on `shard` (its commit, if it
  // ever commits, is above it) and that transaction's id; {0, 0} when none (follower reads).
  std::pair<Timestamp, uint64_t> PreparedFloor(uint32_t shard) const;
  // The smallest commit timestamp known (SetCommitTs) of a transaction with a part still
  // prepared on `shard`, and that transaction's id; {0, 0} when none. Such a part commits at
  // that timestamp, below snapshots already taken. Takes no lock when no prepared transaction
  // has a known commit timestamp.
  std::pair<Timestamp, uint64_t> KnownCommitFloor(uint32_t shard) const;
  std::string DescribeForTesting() const;
  std::vector<PreparedInfo> AllPrepared() const;
  // The transaction's entry of AllPrepared, or nullopt if nothing of it is prepared here.
  std::optional<PreparedInfo> Prepared(uint64_t txn_id) const;
  // Names of the transactions that are prepared (durable) and not claimed, sorted.
  std::vector<std::string> Names() const;
  size_t InDoubt() const;

  // --- Decisions (the coordinator's memory). ---
  // The decision of `txn_id` was appended at `lsn` on `coordinator` (0: its append failed;
  // the transaction is committed all the same, see PinnedLsn).
  void AddDecision(uint64_t txn_id, uint32_t coordinator, Lsn lsn, size_t participants);
  // A participant's commit record for a decided transaction was appended at `lsn`.
  void AddCommitLsn(uint64_t txn_id, uint32_t shard, Lsn lsn);

  // --- Checkpoint hooks. ---
  std::vector<engine::TableWrite> CheckpointTables(uint32_t shard);
  void CheckpointCommitted(uint32_t shard);
  // The smallest LSN of `shard` still needed (durable_lsn(s) tells what is durable on shard
  // s): unpersisted prepares; decisions until every participant's commit record is durable;
  // and, while a decision is not durable on its coordinator, the participants' commit
  // records (the evidence pin: recovery must find the transaction committed somewhere once a
  // participant's prepare is checkpointed away).
  // `waiting_on`, if given, receives the coordinator shards whose decisions (logged, not yet
  // durable) hold such an evidence pin on `shard`: syncing their logs releases it.
  Lsn PinnedLsn(uint32_t shard, const std::function<Lsn(uint32_t)>& durable_lsn,
                std::vector<uint32_t>* waiting_on = nullptr);

  // --- Outcomes, for callers that lost track of a commit. ---
  // `commit_ts` (0: none given, any earlier one kept): a committed transaction's timestamp,
  // which a part of it prepared here later (a lagging group's prepare, a reopen's prepared row)
  // takes as its PreparedInfo::commit_ts (replicated shards).
  void SetOutcome(uint64_t txn_id, Database::Outcome outcome, Timestamp commit_ts = 0);
  Database::Outcome GetOutcome(uint64_t txn_id) const;
  // Whether `txn_id` is prepared here without a name (our own cross-shard transaction).
  bool PreparedUnnamed(uint64_t txn_id) const;
  // The outcome window's entry for `txn_id` alone (kUnknown if none), prepared or not.
  Database::Outcome WindowOutcome(uint64_t txn_id) const;
  // The commit timestamp the outcome window holds for `txn_id` (SetOutcome), 0 if none.
  Timestamp WindowCommitTs(uint64_t txn_id) const;

 private:
  struct Part {
    std::vector<engine::Write> writes;
    Lsn lsn = 0;             // its prepare record (0: loaded from the prepared table)
    bool persisted = false;  // in the shard's prepared table
    bool pending = false;    // being written to the table by a checkpoint
  };
  enum class Phase { kPreparing, kPrepared, kCommitting, kRollingBack, kInDoubt };
  struct PreparedTxn {
    std::string name;
    Timestamp snapshot = 0;
    std::vector<uint32_t> participants;
    std::map<uint32_t, Part> parts;
    Phase phase = Phase::kPreparing;
    Timestamp commit_ts = 0;  // SetCommitTs
    std::vector<std::pair<uint32_t, std::string>> read_keys;
    std::vector<std::pair<std::string, std::string>> read_ranges;
    bool read_locked = false;
  };
  struct RangeLock {
    uint64_t txn_id;
    std::string lower, upper;
  };
  using Holders = absl::InlinedVector<uint64_t, 1>;
  std::string DescribeLocked(uint64_t txn_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  PreparedInfo InfoLocked(uint64_t txn_id, const PreparedTxn& t) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Releases `txn_id`'s write locks on `writes` (its part on `shard`).
  void UnlockLocked(uint64_t txn_id, uint32_t shard, const std::vector<engine::Write>& writes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // ResolvePart (`logged`) or ResolvePartUnlogged.
  std::optional<std::vector<engine::Write>> Resolve(uint64_t txn_id, uint32_t shard, bool logged);
  // The prepared-table row of `txn_id`'s part on `shard` (which it has).
  std::string RowLocked(uint64_t txn_id, const PreparedTxn& t, uint32_t shard) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops the transaction's read locks and its name (if it holds it), and forgets it.
  void ForgetLocked(absl::node_hash_map<uint64_t, PreparedTxn>::iterator it)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
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
    // Parts of ResolvePartUnlogged awaiting ResolvedPartLogged: their encoded row, to write at
    // each checkpoint (empty: already in LMDB).
    absl::flat_hash_map<uint64_t, std::string> rows_kept;
  };

  mutable Mutex mu_;
  absl::node_hash_map<uint64_t, PreparedTxn> prepared_ ABSL_GUARDED_BY(mu_);
  // How many of prepared_ have a commit_ts (written under mu_; KnownCommitFloor's fast path).
  std::atomic<size_t> with_commit_ts_{0};
  // Write locks by shard, ordered so that a range can be checked.
  std::vector<absl::btree_map<std::string, Holders, std::less<>>> locks_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::flat_hash_map<std::string, Holders>> read_locks_ ABSL_GUARDED_BY(mu_);
  std::vector<RangeLock> range_locks_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint64_t> names_ ABSL_GUARDED_BY(mu_);
  std::vector<TableState> tables_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, Decision> decisions_ ABSL_GUARDED_BY(mu_);
  // Keys locked, over all shards: lets the commit path skip the lock table (and mu_) when no
  // transaction is prepared.
  std::atomic<uint64_t> locked_keys_{0};
  // Read locks (keys and ranges), likewise.
  std::atomic<uint64_t> read_lock_count_{0};

  // Outcomes, striped by id so committers do not contend on one mutex.
  static constexpr size_t kOutcomeWindow = 100000;
  static constexpr size_t kStripes = 16;
  struct OutcomeStripe {
    Mutex mu;
    struct Entry {
      Database::Outcome outcome = Database::Outcome::kUnknown;
      Timestamp commit_ts = 0;
    };
    absl::flat_hash_map<uint64_t, Entry> map ABSL_GUARDED_BY(mu);
    std::deque<uint64_t> order ABSL_GUARDED_BY(mu);
  };
  mutable std::array<OutcomeStripe, kStripes> outcomes_;
};

}  // namespace shardtx::txn
