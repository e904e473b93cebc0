// Coordinator::CommitReplicated: our own cross-shard commit over replicated shards, on the
// ready leader of every participant (docs/replicated-2pc-plan.md sections 1-3; the contract is in
// coordinator.h). The parts' state here always follows the entries: a part is added when its
// prepare entry is proposed, stays while that entry may commit or has committed, and leaves
// when its entry is refused or unknown (redo adds it again should the entry commit after all)
// or when its commit or abort entry is released here. So a follower that redoes the same
// entries ends with the same prepared state, and the next leader's in-doubt resolver
// (txn/replicated_resolver.cc) reads what the logs hold.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/log_record.h"
#include "engine/replicated_log.h"
#include "txn/coordinator.h"
#include "txn/database_impl.h"
#include "util/histogram.h"
#include "util/status_latch.h"
#include "util/status_macros.h"

namespace shardtx::txn {

namespace {

enum class EntryOutcome { kCommitted, kUnknown, kRefused };

// A phase-one prepare entry, waited for by the committer. Its methods run with the shard's
// commit_mu held, on the replication layer's thread.
class PrepareEntry final : public engine::ReplicatedLog::Proposal {
 public:
  PrepareEntry(TwoPhaseState* state, uint64_t txn_id, uint32_t shard)
      : state_(state), txn_id_(txn_id), shard_(shard) {}

  void Committed(engine::RaftPosition) override { Set(EntryOutcome::kCommitted, {}); }
  // The entry may still commit (then redo prepares the part here again) or is in no log: the
  // part leaves this node's state either way, so that it is what the applied entries say.
  void Unknown(const absl::Status& status) override {
    state_->ResolvePart(txn_id_, shard_);
    Set(EntryOutcome::kUnknown, status);
  }
  void Refused(const absl::Status& status) override {
    state_->ResolvePart(txn_id_, shard_);
    Set(EntryOutcome::kRefused, status);
  }

  // Blocks until one of the above ran.
  EntryOutcome Wait(absl::Status* status) {
    *status = latch_.Wait();
    return outcome_;
  }
  uint32_t shard() const { return shard_; }

 private:
  void Set(EntryOutcome outcome, const absl::Status& status) {
    outcome_ = outcome;  // before the latch: Wait reads it after
    // A status of its own, sharing no representation with the caller's: the committer may
    // read and destroy it while the replication thread still destroys its own.
    latch_.Set(status.ok() ? absl::OkStatus() : absl::Status(status.code(), status.message()));
  }

  TwoPhaseState* const state_;
  const uint64_t txn_id_;
  const uint32_t shard_;
  EntryOutcome outcome_ = EntryOutcome::kRefused;
  StatusLatch latch_;
};

// A phase-two entry (commit or abort of one part), which nobody waits for: it deletes itself
// once answered. The part was resolved here when the entry was proposed (so its keys are free at
// once, as in an unreplicated commit; a commit's writes installed at its timestamp). Refused or
// unknown: the part is put back as prepared (Coordinator::PutBackPart), since that is what the
// applied entries say (should the entry commit after all, its redo resolves the part; otherwise
// the in-doubt resolver of a ready leader does: it is told at once).
class ResolveEntry final : public engine::ReplicatedLog::Proposal {
 public:
  // `commit_ts`: the part's writes were installed at it (0: an abort). `done`, if given, hears
  // the entry's outcome (OK: committed), after the part was put back.
  ResolveEntry(Coordinator* coordinator, uint64_t txn_id, uint32_t shard,
               TwoPhaseState::SavedPart saved, engine::Timestamp commit_ts, StatusLatch* done)
      : coordinator_(coordinator),
        txn_id_(txn_id),
        shard_(shard),
        saved_(std::move(saved)),
        commit_ts_(commit_ts),
        done_(done) {}

  // Its record is in the shard's log now: the part's prepared-table row may go.
  void Committed(engine::RaftPosition) override {
    coordinator_->state().ResolvedPartLogged(txn_id_, shard_);
    Done(absl::OkStatus());
  }
  void Unknown(const absl::Status& status) override { PutBack(status); }
  void Refused(const absl::Status& status) override { PutBack(status); }

 private:
  void PutBack(const absl::Status& status) {
    coordinator_->PutBackPart(txn_id_, shard_, std::move(saved_), commit_ts_);
    Done(status);
  }
  void Done(const absl::Status& status) {
    // A copy of its own (see PrepareEntry::Set).
    if (done_ != nullptr) done_->Set(absl::Status(status.code(), status.message()));
    delete this;
  }

  Coordinator* const coordinator_;
  const uint64_t txn_id_;
  const uint32_t shard_;
  TwoPhaseState::SavedPart saved_;
  const engine::Timestamp commit_ts_;
  StatusLatch* const done_;
};

}  // namespace

absl::StatusOr<engine::Timestamp> Coordinator::CommitReplicated(
    PrepareRequest& request, absl::Span<const uint64_t> terms,
    absl::FunctionRef<absl::Status()> validate) {
  const auto start = std::chrono::steady_clock::now();
  // The resolver leaves the transaction alone until its commit entries are proposed.
  const InFlightMark in_flight(this, request.txn_id);
  RETURN_IF_ERROR(PrepareReplicated(request, terms, validate));
  db_->counters().prepare_us.Add(MicrosSince(start));
  const auto t1 = std::chrono::steady_clock::now();
  // Every prepare committed in its group: committed (parallel commit); the decision record goes
  // with the coordinator's (parts[0]'s) commit.
  const engine::Timestamp ts = CommitReplicatedParts(request.txn_id, request.plan->parts, terms,
                                                     request.plan->parts, /*known_ts=*/0);
  db_->counters().phase2_us.Add(MicrosSince(t1));
  return ts;
}

absl::Status Coordinator::PrepareReplicated(PrepareRequest& request,
                                            absl::Span<const uint64_t> terms,
                                            absl::FunctionRef<absl::Status()> validate) {
  CommitPlan& plan = *request.plan;
  const uint64_t id = request.txn_id;
  const std::string& name = request.name;
  // How the host knows the transaction, in messages.
  const std::string what = name.empty()
                               ? absl::StrCat("cross-shard transaction ", id)
                               : absl::StrCat("named prepare '", name, "' (transaction ", id, ")");
  // The resolver leaves a transaction alone while its prepares are in flight here.
  const InFlightMark in_flight(this, id);
  const bool read_locks = !request.read_keys.empty() || !request.read_ranges.empty();
  std::vector<std::unique_ptr<PrepareEntry>> entries;  // one per prepare proposed, in part order
  absl::Status refused;                                // a prepare refused before it was proposed
  {
    ShardLocks locks(db_, plan.involved);
    RETURN_IF_ERROR(validate());
    for (size_t i = 0; i < plan.parts.size(); ++i) {
      const uint32_t p = plan.parts[i];
      db_->shard(p)->commit_mu()->AssertHeld();
      PrepareRecord r{id,
                      name,
                      request.snapshot,
                      {plan.parts.begin(), plan.parts.end()},
                      std::move(plan.by_shard[p]),
                      {},
                      {}};
      if (read_locks && i == 0) {
        // Kept locked until the commit is resolved, so the commit timestamp, taken in phase
        // two, still orders this transaction after everything it read (no early timestamp:
        // per shard, commit timestamps stay increasing in log order).
        r.read_keys = request.read_keys;
        r.read_ranges = request.read_ranges;
      }
      std::string entry;
      engine::AppendEntryRecord(&entry, engine::kPrepare, EncodePrepare(r));
      auto e = std::make_unique<PrepareEntry>(&state_, id, p);
      absl::Status s = replicated_propose_hook_ ? replicated_propose_hook_(p, engine::kPrepare)
                                                : absl::OkStatus();
      if (s.ok()) s = db_->replicated_log(p)->ProposeLocked(entry, terms[p], e.get());
      if (!s.ok()) {
        refused = absl::UnavailableError(
            absl::StrCat("the prepare of shard ", p, " was refused: ", s.message()));
        break;
      }
      // No answer before the commit lock is released: the part is in place before it.
      state_.AddPart(id, name, request.snapshot, plan.parts, p, 0, std::move(r.writes), false);
      if (read_locks && i == 0) {
        std::vector<std::pair<uint32_t, std::string>> keys;
        for (const std::string& k : request.read_keys) {
          keys.emplace_back(db_->partitioner().ShardOf(k), k);
        }
        state_.AddReadLocks(id, std::move(keys), request.read_ranges);
      }
      entries.push_back(std::move(e));
    }
  }
  if (entries.empty()) return refused;  // nothing proposed: no effect
  // Every entry's outcome (each answered once, on its group's thread).
  std::vector<uint32_t> prepared;  // parts whose prepare committed
  std::vector<std::string> unknown;
  for (auto& e : entries) {
    absl::Status status;
    switch (e->Wait(&status)) {
      case EntryOutcome::kCommitted:
        prepared.push_back(e->shard());
        break;
      case EntryOutcome::kUnknown:
        unknown.push_back(absl::StrCat("shard ", e->shard(), ": ", status.message()));
        break;
      case EntryOutcome::kRefused:
        if (refused.ok()) {
          refused = absl::UnavailableError(absl::StrCat("the prepare of shard ", e->shard(),
                                                        " was refused: ", status.message()));
        }
        break;
    }
  }
  if (!refused.ok()) {
    // A prepare in no log can never commit: aborted (the in-doubt rule's last case on any later
    // leader), whatever became of the others.
    AbortReplicatedParts(id, prepared, terms);
    state_.SetOutcome(id, Database::Outcome::kAborted);
    return absl::UnavailableError(
        absl::StrCat(what, " aborted with no effect (retry it): ", refused.message()));
  }
  if (!unknown.empty()) {
    return absl::UnknownError(absl::StrCat(
        "outcome unknown: ", what, ": leadership was lost while its prepares were in flight (",
        absl::StrJoin(unknown, "; "), "). ",
        name.empty()
            ? absl::StrCat(
                  "It committed if every participant's prepare entry commits. Until the ready "
                  "leader of every participant resolves it (the in-doubt resolver), "
                  "GetOutcomeOfKey(",
                  id,
                  ", key) on the leader of a key it wrote answers kUnavailable (being resolved) "
                  "if its prepare is there, kAborted if that shard has none")
            : std::string("It is prepared if every participant's prepare entry commits: then "
                          "ListPrepared on the leader of every participant lists it; otherwise "
                          "it never was (the in-doubt resolver of the next ready leader of every "
                          "participant aborts a part left prepared)")));
  }
  // Every prepare committed in its group: a named transaction is prepared, listed here as on
  // every replica that applied them (TwoPhaseState::MarkPreparedIfComplete).
  if (!name.empty()) state_.MarkPrepared(id);
  return absl::OkStatus();
}

engine::Timestamp Coordinator::CommitReplicatedParts(uint64_t txn_id,
                                                     absl::Span<const uint32_t> parts,
                                                     absl::Span<const uint64_t> terms,
                                                     absl::Span<const uint32_t> decision,
                                                     engine::Timestamp known_ts) {
  TimestampOracle& oracle = db_->oracle();
  engine::Timestamp ts = known_ts;
  {
    // The timestamp and the entries under the participants' commit locks: on each shard,
    // commit timestamps increase in log order (replicated-2pc-plan.md section 6 needs it),
    // except a known one: the parts still prepared commit at the timestamp the others did (the
    // prepared floor keeps follower reads below it until then; section 6).
    ShardLocks locks(db_, parts);
    if (known_ts == 0) ts = oracle.Assign();
    for (size_t i = 0; i < parts.size(); ++i) {
      const uint32_t p = parts[i];
      engine::Shard* s = db_->shard(p);
      s->commit_mu()->AssertHeld();
      std::string entry;
      if (!decision.empty() && p == decision[0]) {
        DecisionRecord d{txn_id, true, ts, {decision.begin(), decision.end()}};
        engine::AppendEntryRecord(&entry, engine::kDecision, EncodeDecision(d));
      }
      engine::AppendEntryRecord(&entry, engine::kCommitPrepared, EncodeTxnTs(txn_id, ts));
      ProposeResolution(txn_id, p, terms[p], entry, ts);
    }
  }
  state_.SetOutcome(txn_id, Database::Outcome::kCommitted, ts);
  if (known_ts == 0) oracle.Finish(ts);
  oracle.WaitVisible(ts);  // read-your-commits
  return ts;
}

void Coordinator::AbortReplicatedParts(uint64_t txn_id, absl::Span<const uint32_t> parts,
                                       absl::Span<const uint64_t> terms,
                                       std::vector<std::unique_ptr<StatusLatch>>* done) {
  std::string entry;
  engine::AppendEntryRecord(&entry, engine::kAbortPrepared, EncodeTxn(txn_id));
  for (uint32_t p : parts) {
    StatusLatch* latch =
        done != nullptr ? done->emplace_back(std::make_unique<StatusLatch>()).get() : nullptr;
    MutexLock l(db_->shard(p)->commit_mu());
    ProposeResolution(txn_id, p, terms[p], entry, 0, latch);
  }
}

void Coordinator::ProposeResolution(uint64_t txn_id, uint32_t shard, uint64_t term,
                                    absl::string_view entry, engine::Timestamp commit_ts,
                                    StatusLatch* done) {
  std::optional<TwoPhaseState::SavedPart> saved = state_.SavePart(txn_id, shard);
  if (!saved.has_value()) {  // not prepared here (cannot happen: its prepare committed)
    if (done != nullptr) done->Set(absl::OkStatus());
    return;
  }
  // Its row kept until the entry is in the shard's log (ResolveEntry::Committed).
  std::optional<std::vector<engine::Write>> writes = state_.ResolvePartUnlogged(txn_id, shard);
  // A commit is installed now: the transaction is committed whatever becomes of this entry.
  if (commit_ts != 0) db_->shard(shard)->InstallLocked(&*writes, commit_ts);
  auto* e = new ResolveEntry(this, txn_id, shard, std::move(*saved), commit_ts, done);
  absl::Status s = replicated_propose_hook_
                       ? replicated_propose_hook_(shard, commit_ts != 0 ? engine::kCommitPrepared
                                                                        : engine::kAbortPrepared)
                       : absl::OkStatus();
  if (s.ok()) s = db_->replicated_log(shard)->ProposeLocked(entry, term, e);
  if (!s.ok()) {
    e->Refused(s);  // leadership moved: prepared again, for the next leader's resolver
  }
}

void Coordinator::PutBackPart(uint64_t txn_id, uint32_t shard, TwoPhaseState::SavedPart saved,
                              engine::Timestamp commit_ts) {
  // Prepared again first, with its commit timestamp: from here a new reader at or above it is
  // refused on this shard (TwoPhaseState::KnownCommitFloor) rather than miss the versions.
  std::vector<engine::Write> keys;
  if (commit_ts != 0) keys = saved.writes;
  state_.RestorePart(txn_id, shard, std::move(saved));
  state_.SetCommitTs(txn_id, commit_ts);
  if (commit_ts != 0) {
    // The versions go too: this node's shard holds what its applied entries say, as every other
    // replica's does, until a commit entry for the part is applied (at commit_ts, by the
    // resolver or by this entry's redo should it commit after all).
    db_->shard(shard)->UninstallLocked(keys, commit_ts);
  }
  NoteInDoubt(txn_id);  // the resolver decides it (again) on a ready leader
}

}  // namespace shardtx::txn
