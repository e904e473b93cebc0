// Named prepares over replicated shards (docs/replicated-2pc-plan.md sections 2 and 3, issue 17
// step 3): Transaction::Prepare(name), Database::CommitPrepared and RollbackPrepared on a node
// that is the ready leader of every part, and the leadership check they share with our own
// cross-shard commit. Phase one is Coordinator::PrepareReplicated (txn/replicated_commit.cc).
// The commit point of a named transaction is its decision entry committed in the coordinator
// shard's group: its commit entries are proposed only after that, so a decision on a deposed
// leader is refused or unknown, never half applied.
#include <algorithm>
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
#include "txn/transaction_impl.h"
#include "util/histogram.h"
#include "util/status_latch.h"
#include "util/status_macros.h"

namespace shardtx::txn {

namespace {

// A named transaction's decision entry, waited for by CommitPreparedReplicated. Its methods run
// with the coordinator shard's commit_mu held, on the replication layer's thread.
class DecisionEntry final : public engine::ReplicatedLog::Proposal {
 public:
  DecisionEntry(TwoPhaseState* state, uint64_t txn_id) : state_(state), txn_id_(txn_id) {}

  void Committed(engine::RaftPosition) override { latch_.Set(absl::OkStatus()); }
  // Refused: in no log, nothing decided. Unknown: it may still commit, and then this replica's
  // redo of it marks the transaction resolving, after this (same thread, same lock). Either
  // way the transaction is prepared again here, as the applied entries say.
  void Unknown(const absl::Status& status) override { Undecided(status); }
  void Refused(const absl::Status& status) override { Undecided(status); }

  absl::Status Wait() { return latch_.Wait(); }

 private:
  void Undecided(const absl::Status& status) {
    state_->ReturnToPrepared(txn_id_);
    // A status of its own: the waiter may destroy it while this thread still holds the caller's.
    latch_.Set(absl::Status(status.code(), status.message()));
  }

  TwoPhaseState* const state_;
  const uint64_t txn_id_;
  StatusLatch latch_;
};

// Claims prepared transaction `name` for `commit` (else a rollback) on the ready leader of all
// its parts, filling `terms` with the term each is led in. Not led here: kUnavailable, nothing
// claimed. The leadership is checked before the claim too, so that a follower's claim never
// races its redo of the leader's entries.
// `mark` keeps the in-doubt resolver off the transaction from before the claim (a claimed one
// looks like one whose resolution began, which the resolver would finish itself).
absl::StatusOr<TwoPhaseState::PreparedInfo> ClaimOnLeader(
    Coordinator& c, const std::string& name, bool commit, std::vector<uint64_t>* terms,
    std::optional<Coordinator::InFlightMark>* mark) {
  const std::string what =
      absl::StrCat(commit ? "CommitPrepared('" : "RollbackPrepared('", name, "')");
  std::vector<TwoPhaseState::PreparedInfo> all = c.state().AllPrepared();
  auto it = std::find_if(all.begin(), all.end(),
                         [&](const TwoPhaseState::PreparedInfo& p) { return p.name == name; });
  if (it != all.end()) {
    RETURN_IF_ERROR(c.CheckLeadsParts(it->participants, {}, terms, what));
    mark->emplace(&c, it->txn_id);
  }
  ASSIGN_OR_RETURN(TwoPhaseState::PreparedInfo p, c.state().Claim(name, commit));
  if (it == all.end() || it->txn_id != p.txn_id) mark->emplace(&c, p.txn_id);
  // Checked again for what was claimed (leadership may have moved since).
  if (absl::Status s = c.CheckLeadsParts(p.shards, {}, terms, what); !s.ok()) {
    c.state().ReturnToPrepared(p.txn_id);
    return s;
  }
  return p;
}

}  // namespace

absl::Status Coordinator::CheckLeadsParts(absl::Span<const uint32_t> parts,
                                          absl::Span<const uint64_t> stamped,
                                          std::vector<uint64_t>* terms, absl::string_view what) {
  terms->assign(db_->num_shards(), 0);
  std::vector<std::string> where;  // each part's leadership, as this node knows it
  bool leads_all = true;
  for (uint32_t p : parts) {
    engine::ReplicatedLog* log = db_->replicated_log(p);
    if (log == nullptr) {
      return absl::UnimplementedError(
          absl::StrCat("a ", what, " writing unreplicated shard ", p,
                       " on a database with replicated shards (issue 17)"));
    }
    absl::Status s = log->CheckLeader();
    const uint64_t now = log->StampRead().term;
    (*terms)[p] = stamped.empty() ? now : stamped[p];
    if (s.ok() && now != (*terms)[p]) {
      s = absl::UnavailableError(absl::StrCat(
          "shard ", p, " is led here in term ", now, ", but the transaction's reads began ",
          stamped[p] == 0 ? std::string("while this node was not its ready leader")
                          : absl::StrCat("in term ", stamped[p])));
    } else if (s.ok() && now == 0) {
      s = absl::UnavailableError(absl::StrCat("shard ", p, " is not led here in a ready term"));
    }
    leads_all = leads_all && s.ok();
    where.push_back(s.ok() ? absl::StrCat("shard ", p, ": led here, term ", now)
                           : absl::StrCat("shard ", p, ": ", s.message()));
  }
  if (leads_all) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(
      what,
      " refused with no effect: it runs only on a node that is the ready leader of every "
      "participant",
      stamped.empty() ? "" : ", since the transaction began",
      " (retry it there): ", absl::StrJoin(where, "; ")));
}

absl::Status Coordinator::CommitPreparedReplicated(const std::string& name) {
  std::vector<uint64_t> terms;
  std::optional<InFlightMark> in_flight;
  ASSIGN_OR_RETURN(TwoPhaseState::PreparedInfo p,
                   ClaimOnLeader(*this, name, /*commit=*/true, &terms, &in_flight));
  const auto t0 = std::chrono::steady_clock::now();
  const uint32_t coordinator = p.shards.front();
  const std::string what = absl::StrCat("CommitPrepared('", name, "') of transaction ", p.txn_id);
  // The decision alone, in the current term of the coordinator shard: committed, it is the
  // commit point. Its commit timestamp is taken after it (as unreplicated, the decision carries
  // none), so that per shard the commit timestamps in log order stay increasing.
  std::string entry;
  engine::AppendEntryRecord(
      &entry, engine::kDecision,
      EncodeDecision(DecisionRecord{p.txn_id, true, 0, {p.shards.begin(), p.shards.end()}}));
  DecisionEntry decision(&state_, p.txn_id);
  {
    MutexLock l(db_->shard(coordinator)->commit_mu());
    absl::Status s = replicated_propose_hook_
                         ? replicated_propose_hook_(coordinator, engine::kDecision)
                         : absl::OkStatus();
    if (s.ok()) {
      s = db_->replicated_log(coordinator)->ProposeLocked(entry, terms[coordinator], &decision);
    }
    if (!s.ok()) {
      state_.ReturnToPrepared(p.txn_id);
      return absl::UnavailableError(
          absl::StrCat(what,
                       ": the decision was refused, nothing decided (still prepared; retry on the "
                       "leader): ",
                       s.message()));
    }
  }
  if (absl::Status s = decision.Wait(); !s.ok()) {
    if (absl::IsUnknown(s)) {
      return absl::UnknownError(absl::StrCat(
          "outcome unknown: ", what, ": leadership was lost while its decision was in flight (",
          s.message(), "). It committed if that entry commits: GetOutcome(", p.txn_id,
          ") on the next leader of every part answers kPrepared (listed: decide it again) if it "
          "did not"));
    }
    return absl::UnavailableError(
        absl::StrCat(what,
                     ": the decision was refused, nothing decided (still prepared; retry on the "
                     "leader): ",
                     s.message()));
  }
  db_->counters().decision_us.Add(MicrosSince(t0));
  // The commit point: the commit entries, the writes visible here at once.
  const auto t1 = std::chrono::steady_clock::now();
  CommitReplicatedParts(p.txn_id, p.shards, terms, /*decision=*/{}, /*known_ts=*/0);  // on record
  db_->counters().phase2_us.Add(MicrosSince(t1));
  db_->counters().commits++;
  if (p.shards.size() > 1) db_->counters().cross_shard_commits++;
  return absl::OkStatus();
}

absl::Status Coordinator::RollbackPreparedReplicated(const std::string& name) {
  std::vector<uint64_t> terms;
  std::optional<InFlightMark> in_flight;
  ASSIGN_OR_RETURN(TwoPhaseState::PreparedInfo p,
                   ClaimOnLeader(*this, name, /*commit=*/false, &terms, &in_flight));
  db_->counters().rollbacks++;
  std::vector<std::unique_ptr<StatusLatch>> done;
  AbortReplicatedParts(p.txn_id, p.shards, terms, &done);
  bool aborted = false, unknown = false;
  std::vector<std::string> failed;
  for (size_t i = 0; i < done.size(); ++i) {
    absl::Status s = done[i]->Wait();
    aborted = aborted || s.ok();
    unknown = unknown || absl::IsUnknown(s);
    if (!s.ok()) failed.push_back(absl::StrCat("shard ", p.shards[i], ": ", s.message()));
  }
  // One abort entry committed is final: the transaction is no longer prepared on that part, so
  // no leader can commit it (a part left prepared elsewhere is issue 17 step 4's to abort).
  if (aborted) {
    state_.SetOutcome(p.txn_id, Database::Outcome::kAborted);
    return absl::OkStatus();
  }
  const std::string what = absl::StrCat("RollbackPrepared('", name, "') of transaction ", p.txn_id);
  if (!unknown) {
    // Every abort entry refused, in no log: nothing changed, prepared again.
    state_.ReturnToPrepared(p.txn_id);
    return absl::UnavailableError(
        absl::StrCat(what, ": refused, nothing rolled back (still prepared; retry on the leader): ",
                     absl::StrJoin(failed, "; ")));
  }
  return absl::UnknownError(absl::StrCat(
      "outcome unknown: ", what, ": leadership was lost while its abort entries were in flight (",
      absl::StrJoin(failed, "; "), "); it is rolled back if any of them commits"));
}

absl::Status TransactionImpl::PrepareReplicated(Coordinator::PrepareRequest& request,
                                                absl::InlinedVector<uint32_t, 4> read) {
  CommitPlan& plan = *request.plan;
  std::vector<uint64_t> stamped(db_->num_shards(), 0);
  for (uint32_t s = 0; s < db_->num_shards(); ++s) stamped[s] = read_stamps_[s].term;
  std::vector<uint64_t> terms;
  RETURN_IF_ERROR(db_->coordinator().CheckLeadsParts(
      plan.parts, stamped, &terms, absl::StrCat("named prepare '", request.name, "'")));
  if (id_ == 0) return db_->txn_ids().error();  // no unique id could be given (txn/txn_ids.h)
  // The parts' prepare entries confirm their reads; other replicated shards read get a barrier
  // each, first.
  RETURN_IF_ERROR(ConfirmReplicatedReadsBesides(std::move(read), plan.parts));
  return db_->coordinator().PrepareReplicated(request, terms, [&] { return ValidateLocked(plan); });
}

}  // namespace shardtx::txn
