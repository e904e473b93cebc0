// Coordinator: two-phase commit across shards, and the host's named prepares.
//
//   Prepare          phase one: validate and lock under every involved shard's commit lock,
//                    log a kPrepare record (naming every participant) on each participant,
//                    wait for their fsyncs, all in one round. For our own cross-shard commit,
//                    every prepare durable is the commit point (parallel commit); for a named
//                    prepare, the transaction is then prepared until its host decides
//   CommitDecided    the decision on the coordinator shard (parts[0]), then phase two:
//                    kCommitPrepared on each participant, install, visible everywhere at
//                    once. Our own transaction's decision is bookkeeping, appended without
//                    waiting; a named one's is synced first (its commit point)
//   AbortPrepared    kAbortPrepared on each participant (presumed abort needs no decision)
//   Redo, LoadPrepared, ResolveInDoubt
//                    recovery: the 2PC records and prepared-table rows of every shard, then
//                    each prepared transaction resolved: our own by DecideInDoubt (a commit
//                    decision or commit record anywhere, else an abort record anywhere, else
//                    every participant's prepare durable); a named one committed if its
//                    decision is on record, aborted if some participant's prepare is missing,
//                    else kept prepared for its host
//
// Evidence pin: until the decision is durable, each participant's commit record stays in its
// WAL (TwoPhaseState::PinnedLsn), so a checkpoint that drops a resolved part's prepare (its
// row, or the WAL below it) never leaves recovery without proof that the transaction
// committed. The protocol and its records: docs/architecture.md, txn/txn_records.h. The state
// it keeps between the phases (prepared transactions, key locks, decisions, outcomes) is
// TwoPhaseState.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/shard.h"
#include "shardtx/database.h"
#include "txn/two_phase_state.h"
#include "txn/txn_records.h"
#include "util/mutex.h"
#include "util/status_latch.h"

namespace shardtx::txn {

class DatabaseImpl;
class InDoubtResolver;

// A transaction's writes by shard, and the shards its commit must lock.
struct CommitPlan {
  std::vector<std::vector<engine::Write>> by_shard;
  // Inline: most transactions touch few shards, and the commit path allocates nothing for these.
  absl::InlinedVector<uint32_t, 4> parts;     // shards written, ascending
  absl::InlinedVector<uint32_t, 4> involved;  // shards to validate and lock, ascending: the
                                              // parts, and (serializable) the shards read
};

// Holds the commit locks of several shards, taken in ascending shard order (no deadlock).
class ShardLocks {
 public:
  ShardLocks(DatabaseImpl* db, absl::Span<const uint32_t> shards);
  ~ShardLocks();
  ShardLocks(const ShardLocks&) = delete;
  ShardLocks& operator=(const ShardLocks&) = delete;

 private:
  absl::InlinedVector<Mutex*, 4> held_;
};

// What recovery found of one participant's part of a transaction in doubt.
struct PartEvidence {
  bool prepare = false;  // its prepare: a kPrepare record in the WAL or a prepared-table row
  bool commit = false;   // a kCommitPrepared record
  bool abort = false;    // a kAbortPrepared record
};
enum class InDoubtVerdict { kCommit, kAbort };
// The in-doubt rule of parallel commit, for our own (unnamed) cross-shard transactions.
// `commit_decision`: a commit decision is on record on the coordinator shard; `parts`: one
// entry per participant named in the prepare record. In this order:
//   a commit decision, or a commit record on any participant     -> kCommit
//   else an abort record on any participant                      -> kAbort (abort records are
//        written only for a commit never acknowledged: a prepare failed to append or to sync)
//   else a durable prepare on every participant                  -> kCommit (the commit point)
//   else                                                         -> kAbort (never committed)
InDoubtVerdict DecideInDoubt(bool commit_decision, absl::Span<const PartEvidence> parts);

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
  // fails the prepare with its status. Returns, once every prepare is durable, the early
  // commit timestamp (0 unless early_ts), to hand to CommitDecided: an unnamed transaction
  // is then committed and must be finished by CommitDecided. On an I/O failure the parts
  // prepared so far are aborted, on the record too (a failed fsync: without waiting, and the
  // outcome is known only after reopening).
  absl::StatusOr<engine::Timestamp> Prepare(PrepareRequest& request,
                                            absl::FunctionRef<absl::Status()> validate);

  // The decision and phase two of prepared transaction `txn_id` on `parts` (ascending;
  // parts[0] is the coordinator). `named` (a host's CommitPrepared): logs and syncs the
  // decision (the commit point) first. Otherwise (our own transaction, committed once its
  // prepares are durable) the decision is appended without a sync (kDeferred), and a failed
  // append does not undo the commit. Then on each participant logs the commit record without
  // waiting, installs the writes at one commit timestamp and releases the locks; then makes
  // the commit visible everywhere at once. `commit_ts` 0: chosen here (one taken before is
  // finished on every path). Returns the commit timestamp, or an I/O status (named or single
  // participant only): if a named decision could not be appended or synced, the transaction
  // stays prepared (in doubt until the database is reopened); a single participant's commit
  // record that failed is taken back, unseen.
  absl::StatusOr<engine::Timestamp> CommitDecided(uint64_t txn_id,
                                                  absl::Span<const uint32_t> parts,
                                                  engine::Timestamp commit_ts, bool named);
  // Our own cross-shard commit over replicated shards (docs/replicated-2pc-plan.md section 3),
  // on a node that is the ready leader of every participant: `terms[p]` is the term participant
  // p's reads were stamped in (ReplicatedLog::ReadStamp), every part's shard has a replicated
  // log, and the request is unnamed. Phase one, under every involved shard's commit lock:
  // `validate`, then one kPrepare entry per participant (ProposeLocked with its stamp term),
  // the part prepared here (its keys locked; a serializable request's read keys and ranges
  // locked too, instead of an early timestamp). Then, without locks, every entry's outcome:
  //   all Committed: the commit point. Under the participants' commit locks the commit
  //     timestamp is taken, the writes installed, and one entry per participant proposed
  //     (kDecision + kCommitPrepared on parts[0], kCommitPrepared on the others); the writes are
  //     visible here at once, without waiting for those entries (each part is resolved here at
  //     once, its keys free; one whose entry is refused or unknown is put back, prepared, for
  //     the in-doubt resolver, NoteInDoubt). Returns the commit timestamp.
  //   any Refused: aborted, no effect. kAbortPrepared is proposed on each part whose prepare
  //     committed (resolved likewise); kUnavailable.
  //   else (some Unknown): kUnknown naming the transaction. The parts whose prepares committed
  //     stay prepared, their keys locked, until a ready leader of every participant resolves
  //     them (ResolveReplicated); a part whose prepare is
  //     unknown leaves this node's state, and comes back by redo if its entry commits after all.
  // A prepare entry refused or unknown always leaves its part (the state here stays what the
  // applied entries say). kUnavailable with nothing proposed if the first ProposeLocked fails.
  absl::StatusOr<engine::Timestamp> CommitReplicated(PrepareRequest& request,
                                                     absl::Span<const uint64_t> terms,
                                                     absl::FunctionRef<absl::Status()> validate);
  // CommitReplicated's phase one, shared with a named prepare over replicated shards (the
  // request's name in every prepare entry): OK once every prepare entry is committed (a named
  // transaction is then prepared: listed, and claimable by CommitPreparedReplicated); the
  // outcomes above otherwise (any Refused: kUnavailable, abort entries for the committed ones,
  // no effect; else kUnknown naming the transaction).
  absl::Status PrepareReplicated(PrepareRequest& request, absl::Span<const uint64_t> terms,
                                 absl::FunctionRef<absl::Status()> validate);
  // The host's decisions on a replicated database (docs/replicated-2pc-plan.md section 3), on a
  // node that is the ready leader of every part, else kUnavailable naming each part's leader as
  // this node knows it, no effect. CommitPreparedReplicated proposes the decision entry on the
  // coordinator shard (parts[0]) in the current term and waits for it: committed is the commit
  // point, then one commit entry per part (not waited for; visible here at once), OK; refused:
  // kUnavailable, nothing decided, listed again; unknown: kUnknown (prepared again here; the
  // decision may still commit: ask GetOutcome on the next leader). RollbackPreparedReplicated
  // proposes an abort entry on every part (presumed abort: no decision) and waits for them: OK
  // once any committed (the transaction can then only abort); all refused: kUnavailable, listed
  // again; else kUnknown.
  absl::Status CommitPreparedReplicated(const std::string& name);
  absl::Status RollbackPreparedReplicated(const std::string& name);
  // Whether this node is the ready leader of every one of `parts`, each a replicated shard.
  // `stamped` (indexed by shard; empty: none): the terms a transaction's reads were stamped in,
  // which must still be led now. Fills `terms` (indexed by shard) with the term each part is led
  // in. kUnavailable otherwise, "<what> refused with no effect: ..." naming each part's
  // leadership as this node knows it; kUnimplemented if a part is not replicated.
  absl::Status CheckLeadsParts(absl::Span<const uint32_t> parts, absl::Span<const uint64_t> stamped,
                               std::vector<uint64_t>* terms, absl::string_view what);
  // TEST ONLY: called under the shard's commit lock before each entry of CommitReplicated is
  // proposed, with the participant's shard and the entry's 2PC record (kPrepare in phase one,
  // kCommitPrepared in phase two, kAbortPrepared; kDecision for CommitPreparedReplicated's
  // decision entry, alone on the coordinator shard); a non-OK status is taken as that
  // ProposeLocked's refusal (the entry is not proposed). Set before any commit.
  void SetReplicatedProposeHookForTesting(
      std::function<absl::Status(uint32_t shard, uint8_t record)> hook) {
    replicated_propose_hook_ = std::move(hook);
  }

  // The in-doubt resolver's step (issue 17 step 4; txn/replicated_resolver.cc), run on the
  // resolver's own thread, never a Raft loop's. Transaction `txn_id`, prepared here over
  // replicated shards, is decided by docs/replicated-2pc-plan.md section 1's rule if this node
  // is the ready leader of every participant (else kNotLeader, nothing done), on the evidence
  // of this node's applied state, read under the participants' commit locks: a part present is
  // a prepare committed in its group, an absent one (its transaction not resolving) a prepare
  // that never committed; a commit decision or commit record redone (or this node's own
  // commit in its outcome window) is a commit, an abort record an abort.
  //   unnamed: DecideInDoubt. Committed: kCommitPrepared on every part still prepared (with
  //     the decision on the coordinator shard when its part is among them), installed at the
  //     transaction's commit timestamp if a record here carries it (PreparedInfo::commit_ts),
  //     else at a new one; aborted: kAbortPrepared on each part present.
  //   named: committed if a commit is on record, aborted if an abort is or some participant
  //     has no part, else kLeftForHost (still prepared, listed, for the host to decide).
  // The entries are proposed in the terms read before the evidence (ProposeLocked's term
  // check): one refused or unknown puts its part back (NoteInDoubt), and a node that lost the
  // term leaves the transaction to the next leader. kGone: nothing of it is prepared here.
  // kBusy: this node's own commit of it is still running (CommitReplicated has not returned:
  // its parts may be prepares still in flight); nothing done, to be tried again.
  enum class Resolution { kGone, kCommitted, kAborted, kLeftForHost, kNotLeader, kBusy };
  Resolution ResolveReplicated(uint64_t txn_id);
  // The resolver told of transactions put back in doubt on this node (a commit or abort entry
  // refused or unknown); null: none. Set while the replicated shards run.
  void SetInDoubtResolver(InDoubtResolver* resolver) { resolver_.store(resolver); }
  // A part of `txn_id` was put back prepared: queued for the resolver, if one is set. Any thread.
  void NoteInDoubt(uint64_t txn_id);
  // A phase-two entry of ProposeResolution for `shard`'s part was refused or its outcome is
  // unknown: the part is prepared again (`saved`, from before it was resolved), with the
  // versions a commit installed at `commit_ts` (0: an abort, none) taken back, `commit_ts`
  // remembered for its resolution, and the resolver told. REQUIRES: the shard's commit lock.
  void PutBackPart(uint64_t txn_id, uint32_t shard, TwoPhaseState::SavedPart saved,
                   engine::Timestamp commit_ts);

  // Logs kAbortPrepared on each part and releases its locks. `sync`: wait for durability.
  // REQUIRES no shard commit lock held.
  absl::Status AbortPrepared(uint64_t txn_id, absl::Span<const uint32_t> parts, bool sync);

  // The host's decisions on named prepares (Database::CommitPrepared, RollbackPrepared).
  absl::Status CommitPrepared(const std::string& name);
  absl::Status RollbackPrepared(const std::string& name);

  // Recovery, before any transaction: the rows of a shard's prepared table, then every 2PC
  // record of the shard's WAL in LSN order (ShardHooks::Redo), then ResolveInDoubt once every
  // shard is redone and the oracle knows the recovered timestamps.
  //
  // A replica (replicated shard) runs the same two steps online, after ResolveInDoubt, for the
  // records of each Raft entry it applies (Shard::RedoLocked of a kRaftEntry: its leader's
  // prepares, decisions, commit and abort records), and for the state a snapshot install
  // recovers (ForgetShard first). The prepared state (parts, key and read locks, names, phases,
  // outcomes) is then kept exactly as recovery keeps it; the evidence only in-doubt
  // resolution reads (decisions, commit timestamps, which parts were found) is recorded only
  // during recovery, and dropped by ResolveInDoubt.
  absl::Status LoadPrepared(uint32_t shard,
                            const std::vector<std::pair<std::string, std::string>>& rows);
  absl::StatusOr<std::optional<engine::ShardHooks::RedoInstall>> Redo(uint32_t shard,
                                                                      engine::Lsn lsn, bool applied,
                                                                      uint8_t type,
                                                                      absl::string_view payload);
  // ShardHooks::CheckRedo: whether a replica's entry `records` on `shard` can be redone here.
  // Errors: kInvalidArgument (a malformed 2PC record: its payload, participants or shards out
  // of range or not naming `shard` as they must), kFailedPrecondition (a commit record of a
  // transaction with no part prepared on `shard`), kUnimplemented (kEnd or an unknown type).
  absl::Status CheckRedo(uint32_t shard, absl::Span<const engine::EntryRecord> records);
  // ShardHooks::ForgetShardState: a replica replaces the state of `shard` (snapshot install);
  // its parts are dropped (TwoPhaseState::DropShard) and rebuilt by LoadPrepared and Redo.
  void ForgetShard(uint32_t shard);
  // The largest commit timestamp the recovered decisions hold.
  engine::Timestamp RecoveredMaxTs() const;
  // Resolves every transaction recovery left prepared, then ends recovery (the evidence maps
  // are dropped; Redo records none from now on). `replica[s]`: shard s is replicated. A
  // transaction with a part on a replicated shard is not resolved here (its outcome is its
  // Raft groups', decided on their leader): it stays prepared, its locks held, listed if it is
  // a complete named one that no record began to resolve.
  absl::Status ResolveInDoubt(const std::vector<bool>& replica);
  // TEST ONLY: entries in the recovery-only evidence maps (0 once recovery has ended).
  size_t RecoveryEvidenceSize() const;

  // While it lives, the in-doubt resolver leaves transaction `txn_id` alone on this node (its
  // ResolveReplicated answers kBusy): a commit, a prepare or a host's decision of it is running
  // here, whose own entries resolve it. Nests.
  class InFlightMark {
   public:
    InFlightMark(Coordinator* c, uint64_t txn_id) : c_(c), txn_id_(txn_id) {
      MutexLock l(&c_->committing_mu_);
      ++c_->committing_[txn_id_];
    }
    ~InFlightMark() {
      MutexLock l(&c_->committing_mu_);
      if (--c_->committing_[txn_id_] == 0) c_->committing_.erase(txn_id_);
    }
    InFlightMark(const InFlightMark&) = delete;
    InFlightMark& operator=(const InFlightMark&) = delete;

   private:
    Coordinator* const c_;
    const uint64_t txn_id_;
  };

 private:
  // Read locks of a prepared transaction found in a prepare record or prepared-table row.
  void AddRecoveredReadLocks(const PrepareRecord& r);
  // Recovery: what was found of transaction `txn_id` on `shard`.
  PartEvidence& Evidence(uint64_t txn_id, uint32_t shard);

  // CommitReplicated's phase two (the commit point passed) and its abort. The decision record
  // (naming `decision`, the participants) goes with the commit of `decision[0]`'s part if that
  // part is among `parts`; empty `decision`: none (a named one's is on record already).
  // `known_ts`: the timestamp the transaction committed at elsewhere (PreparedInfo::commit_ts),
  // taken again; 0: a new one from the oracle.
  engine::Timestamp CommitReplicatedParts(uint64_t txn_id, absl::Span<const uint32_t> parts,
                                          absl::Span<const uint64_t> terms,
                                          absl::Span<const uint32_t> decision,
                                          engine::Timestamp known_ts);
  void AbortReplicatedParts(uint64_t txn_id, absl::Span<const uint32_t> parts,
                            absl::Span<const uint64_t> terms,
                            std::vector<std::unique_ptr<StatusLatch>>* done = nullptr);
  // Resolves `shard`'s part (installing its writes at `commit_ts` unless 0: an abort) and
  // proposes `entry`, its commit or abort; the part is put back, prepared, if the entry is
  // refused or unknown. `done`, if given, hears the entry's outcome once (OK: committed, or no
  // part here), after the part was put back. REQUIRES: the shard's commit lock.
  void ProposeResolution(uint64_t txn_id, uint32_t shard, uint64_t term, absl::string_view entry,
                         engine::Timestamp commit_ts, StatusLatch* done = nullptr);

  DatabaseImpl* const db_;
  TwoPhaseState state_;
  std::function<absl::Status(uint32_t, uint8_t)> replicated_propose_hook_;
  std::atomic<InDoubtResolver*> resolver_{nullptr};
  // The transactions whose CommitReplicated or PrepareReplicated is running here, each with how
  // many of those calls (nested: CommitReplicated calls PrepareReplicated; a named
  // CommitPrepared or RollbackPrepared too); the resolver leaves them alone (InFlightMark).
  Mutex committing_mu_;
  absl::flat_hash_map<uint64_t, int> committing_ ABSL_GUARDED_BY(committing_mu_);
  // Until ResolveInDoubt ends recovery: Redo then records the evidence below. Afterwards only a
  // replica's redo calls Redo (its shards' groups, on their own threads), which records none.
  std::atomic<bool> recovering_{true};
  // Recovery only: decisions and commit timestamps found in the WALs.
  absl::flat_hash_map<uint64_t, DecisionRecord> recovered_decisions_;
  absl::flat_hash_map<uint64_t, engine::Timestamp> recovered_commit_ts_;
  // Recovery only: the 2PC records and prepared-table rows found, by transaction and shard.
  absl::flat_hash_map<std::pair<uint64_t, uint32_t>, PartEvidence> recovered_evidence_;
};

}  // namespace shardtx::txn
