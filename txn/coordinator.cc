#include "txn/coordinator.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "txn/database_impl.h"
#include "util/kill_point.h"
#include "util/op_gate.h"
#include "util/status_macros.h"

namespace shardtx::txn {

SHARDTX_DEFINE_KILL_POINT(after_some_prepares, "2pc.after_some_prepares");
SHARDTX_DEFINE_KILL_POINT(between_prepares, "2pc.between_prepares");
SHARDTX_DEFINE_KILL_POINT(after_all_prepares, "2pc.after_all_prepares");
SHARDTX_DEFINE_KILL_POINT(after_failed_prepare, "2pc.after_failed_prepare");
SHARDTX_DEFINE_KILL_POINT(after_decision, "2pc.after_decision");
SHARDTX_DEFINE_KILL_POINT(after_some_commits, "2pc.after_some_commits");
SHARDTX_DEFINE_KILL_POINT(resolve_in_doubt, "recovery.resolve_in_doubt");

ShardLocks::ShardLocks(DatabaseImpl* db,
                       absl::Span<const uint32_t> shards) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  for (uint32_t s : shards) {
    Mutex* mu = db->shard(s)->commit_mu();
    mu->Lock();
    held_.push_back(mu);
  }
}

ShardLocks::~ShardLocks() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  for (auto it = held_.rbegin(); it != held_.rend(); ++it) (*it)->Unlock();
}

InDoubtVerdict DecideInDoubt(bool commit_decision, absl::Span<const PartEvidence> parts) {
  bool all_prepared = !parts.empty();
  bool any_abort = false;
  for (const PartEvidence& p : parts) {
    if (p.commit) commit_decision = true;
    any_abort = any_abort || p.abort;
    all_prepared = all_prepared && p.prepare;
  }
  if (commit_decision) return InDoubtVerdict::kCommit;
  if (any_abort) return InDoubtVerdict::kAbort;
  return all_prepared ? InDoubtVerdict::kCommit : InDoubtVerdict::kAbort;
}

Coordinator::Coordinator(DatabaseImpl* db, uint32_t num_shards) : db_(db), state_(num_shards) {}

absl::StatusOr<engine::Timestamp> Coordinator::Prepare(PrepareRequest& request,
                                                       absl::FunctionRef<absl::Status()> validate) {
  const auto start = std::chrono::steady_clock::now();
  CommitPlan& plan = *request.plan;
  const uint64_t id = request.txn_id;
  const std::string& name = request.name;
  TimestampOracle& oracle = db_->oracle();
  // Deliberately broken (crash tests must catch it): our own cross-shard commit is decided
  // with its last participant's prepare neither synced nor waited for.
  const bool skip_last = name.empty() && plan.parts.size() > 1 &&
                         KillPoints::DeliberateBug("commit_with_prepare_missing");
  engine::Timestamp commit_ts = 0;
  std::vector<engine::Lsn> lsns;
  const bool shared_log = db_->shared_log() != nullptr;
  {
    ShardLocks locks(db_, plan.involved);
    RETURN_IF_ERROR(validate());
    if (request.early_ts) commit_ts = oracle.Assign();
    // A serializable named prepare keeps what it read locked until its decision, which takes
    // its commit timestamp only then: no writer may change its reads meanwhile. (Our own
    // cross-shard commits took their timestamp above, with the validation.)
    const bool read_locks = !request.read_keys.empty() || !request.read_ranges.empty();
    for (size_t i = 0; i < plan.parts.size(); ++i) {
      const uint32_t p = plan.parts[i];
      engine::Shard* s = db_->shard(p);
      s->commit_mu()->AssertHeld();
      PrepareRecord r{id,  name, request.snapshot, {plan.parts.begin(), plan.parts.end()},
                      plan.by_shard[p], {}, {}};
      if (read_locks && i == 0) {
        r.read_keys = request.read_keys;
        r.read_ranges = request.read_ranges;
      }
      // Every prepare is synced, all in one round: the first by this thread (kSync), the
      // others by their shards' flushers at once, in parallel (kAsync). For our own cross-shard
      // commit, all of them durable is the commit point (parallel commit). In a log shared by
      // the shards, all of them kSync, which wakes no flusher: the first WaitDurable below
      // writes them together and one fsync covers them all.
      engine::Durability durability =
          i == 0 || shared_log ? engine::Durability::kSync : engine::Durability::kAsync;
      if (skip_last && i + 1 == plan.parts.size()) {
        durability = engine::Durability::kDeferred;
        // In a shared log the others' fsync would cover this prepare too: synced first (the
        // bug's path only; an fsync under the commit locks).
        if (shared_log) db_->shard(plan.parts[0])->WaitDurable(lsns[0]).IgnoreError();
      }
      auto lsn = s->AppendLocked(engine::kPrepare, EncodePrepare(r), durability);
      if (!lsn.ok()) {
        db_->counters().aborts_io_error++;
        // Undo the parts prepared so far, on the record too: a replay must not find them
        // prepared (with their keys locked) ahead of a later prepare of the same keys.
        for (uint32_t q : plan.parts) {
          if (q == p) break;
          db_->shard(q)->commit_mu()->AssertHeld();
          db_->shard(q)
              ->AppendLocked(engine::kAbortPrepared, EncodeTxn(id), engine::Durability::kAsync)
              .IgnoreError();  // if that log failed too, recovery finds a prepare missing
          state_.ResolvePart(id, q);
        }
        if (request.early_ts) oracle.Finish(commit_ts);
        return lsn.status();
      }
      lsns.push_back(*lsn);
      state_.AddPart(id, name, request.snapshot, plan.parts, p, *lsn, std::move(plan.by_shard[p]),
                     false);
      if (read_locks && i == 0) {
        std::vector<std::pair<uint32_t, std::string>> keys;
        for (const std::string& k : request.read_keys) {
          keys.emplace_back(db_->partitioner().ShardOf(k), k);
        }
        state_.AddReadLocks(id, std::move(keys), request.read_ranges);
      }
    }
  }
  // The other participants' prepares are being synced by their flushers meanwhile. Waited for
  // in shard order; any of them may become durable before an earlier one.
  absl::Status status;
  for (size_t i = 0; i < plan.parts.size() && status.ok(); ++i) {
    if (skip_last && i + 1 == plan.parts.size()) break;
    status = db_->shard(plan.parts[i])->WaitDurable(lsns[i]);
    if (!status.ok() || i + 1 == plan.parts.size()) continue;
    // This participant's prepare is durable; some later one's may not be.
    if (i == 0) SHARDTX_KILL_POINT("2pc.after_some_prepares");
    SHARDTX_KILL_POINT("2pc.between_prepares");
  }
  if (!status.ok()) {
    // A prepare's fsync failed: its shard's log is failed, and whether that prepare reached
    // the disk is unknown, so the outcome is known only after reopening (abort records go with
    // the next batches of the shards that can still write; see ResolveInDoubt).
    db_->counters().aborts_io_error++;
    AbortPrepared(id, plan.parts, false).IgnoreError();
    if (request.early_ts) oracle.Finish(commit_ts);
    SHARDTX_KILL_POINT("2pc.after_failed_prepare");  // its name may be taken by another now
    return status;
  }
  // Every prepare is durable: a named one is prepared; our own cross-shard commit is committed
  // (the commit point of parallel commit), its decision and phase two still to come.
  SHARDTX_KILL_POINT("2pc.after_all_prepares");
  state_.MarkPrepared(id);  // durable everywhere: listed and resolvable by name
  db_->counters().prepare_us.Add(MicrosSince(start));
  return commit_ts;
}

absl::StatusOr<engine::Timestamp> Coordinator::CommitDecided(uint64_t txn_id,
                                                             absl::Span<const uint32_t> parts,
                                                             engine::Timestamp commit_ts,
                                                             bool named) {
  const auto t0 = std::chrono::steady_clock::now();
  TimestampOracle& oracle = db_->oracle();
  const uint32_t coordinator = parts.front();
  // The decision is logged even when recovery finishes a commit whose decision is on record
  // already: it is idempotent, and cheaper than telling the cases apart.
  if (parts.size() > 1 && named) {
    // A host's named transaction: the decision, synced, is the commit point.
    engine::Shard* c = db_->shard(coordinator);
    absl::StatusOr<engine::Lsn> lsn;
    {
      MutexLock l(c->commit_mu());
      DecisionRecord d{txn_id, true, commit_ts, {parts.begin(), parts.end()}};
      lsn = c->AppendLocked(engine::kDecision, EncodeDecision(d), engine::Durability::kSync);
      if (lsn.ok()) state_.AddDecision(txn_id, coordinator, *lsn, parts.size());
    }
    // A timestamp taken before the decision (serializable) must be finished on every exit, or
    // visible_ts would never pass it (nothing is installed under it here).
    if (!lsn.ok()) {
      // No decision on record: the transaction stays prepared for the host to decide again
      // after reopening.
      if (commit_ts != 0) oracle.Finish(commit_ts);
      return lsn.status();
    }
    if (absl::Status d = c->WaitDurable(*lsn); !d.ok()) {  // the commit point
      // The decision may or may not be on disk: the transaction stays prepared, its locks
      // held, and its outcome is known only after the database is reopened.
      if (commit_ts != 0) oracle.Finish(commit_ts);
      return d;
    }
  } else if (parts.size() > 1) {
    // Our own cross-shard transaction is committed already: every participant's prepare is
    // durable (parallel commit). The decision is bookkeeping, so that recovery need not look
    // for every prepare (and so that it records the commit timestamp): appended without a
    // sync of its own (kDeferred), it goes with the coordinator's next batch. (kAsync, a sync
    // per decision, measured slower on one disk, a single client's next prepares queued
    // behind it: p50 2.2-2.35x the fsync floor against 1.4-1.7x; docs/architecture.md.) Until
    // it is durable, each participant's commit record stays in its WAL (TwoPhaseState::PinnedLsn),
    // the evidence recovery needs once the prepare behind it is checkpointed away; a
    // participant's checkpoint syncs the coordinator's log rather than keep it
    // (DatabaseImpl::PinnedLsn).
    if (commit_ts == 0) commit_ts = oracle.Assign();
    engine::Shard* c = db_->shard(coordinator);
    MutexLock l(c->commit_mu());
    DecisionRecord d{txn_id, true, commit_ts, {parts.begin(), parts.end()}};
    auto lsn = c->AppendLocked(engine::kDecision, EncodeDecision(d), engine::Durability::kDeferred);
    // If it failed, the transaction is committed all the same (its prepares are durable):
    // phase two goes on, and the coordinator's log is failed, so later calls report it and
    // the database must be reopened; recovery commits it from its prepares. Remembered with
    // no LSN: the evidence pins stay until then.
    state_.AddDecision(txn_id, coordinator, lsn.ok() ? *lsn : 0, parts.size());
  }
  SHARDTX_KILL_POINT("2pc.after_decision");
  const auto t1 = std::chrono::steady_clock::now();
  if (commit_ts == 0) commit_ts = oracle.Assign();
  // A single participant's commit record is the commit point itself: it must be synced.
  // Otherwise the decision is: the commit records go with the next batch of their shards.
  const engine::Durability durability =
      parts.size() > 1 ? engine::Durability::kDeferred : engine::Durability::kSync;
  engine::Lsn single_lsn = 0;
  std::vector<engine::Write> single_writes;  // keys only, to take back a failed commit point
  std::optional<TwoPhaseState::SavedPart> single_saved;
  absl::Status status;
  for (size_t i = 0; i < parts.size(); ++i) {
    engine::Shard* s = db_->shard(parts[i]);
    MutexLock l(s->commit_mu());
    // A single participant's commit record is its commit point: should it fail, the part is
    // put back as it was (still prepared on disk). Resolving it here, with the install, keeps
    // a checkpoint's freeze from seeing the writes installed and the part still prepared.
    if (parts.size() == 1) single_saved = state_.SavePart(txn_id, parts[i]);
    std::optional<std::vector<engine::Write>> writes = state_.ResolvePart(txn_id, parts[i]);
    if (!writes.has_value()) continue;  // resolved before (recovery after a partial phase 2)
    auto lsn = s->AppendLocked(engine::kCommitPrepared, EncodeTxnTs(txn_id, commit_ts), durability);
    if (lsn.ok()) {
      state_.AddCommitLsn(txn_id, parts[i], *lsn);
      single_lsn = *lsn;
    } else if (parts.size() == 1) {
      status = lsn.status();  // the commit point itself failed: nothing to install
      if (single_saved.has_value()) state_.RestorePart(txn_id, parts[i], *single_saved);
      break;
    } else if (status.ok()) {
      status = lsn.status();  // decided all the same: recovery finishes it from the decision
    }
    s->InstallLocked(&*writes, commit_ts);  // the part is resolved: its writes are ours
    if (parts.size() == 1) single_writes = std::move(*writes);
    if (i == 0) SHARDTX_KILL_POINT("2pc.after_some_commits");
  }
  if (parts.size() == 1 && single_lsn != 0) {
    engine::Shard* s = db_->shard(parts[0]);
    if (status.ok()) status = s->WaitDurable(single_lsn);
    if (!status.ok()) {
      // The commit record is the commit point and its fsync failed: nobody has seen the
      // versions (visible_ts is below commit_ts); take them back, and the part is prepared
      // again. Its outcome is known only after the database is reopened.
      MutexLock l(s->commit_mu());
      s->UninstallLocked(single_writes, commit_ts);
      if (single_saved.has_value()) state_.RestorePart(txn_id, parts[0], *single_saved);
    }
  }
  oracle.Finish(commit_ts);  // a no-op for a timestamp recovery found visible already
  if (parts.size() == 1 && !status.ok()) return status;
  oracle.WaitVisible(commit_ts);
  state_.SetOutcome(txn_id, Database::Outcome::kCommitted);
  // Only a decision the commit waits for (a named one's) is counted: our own cross-shard
  // commit's is appended without waiting, so it costs the commit nothing to time.
  if (named && parts.size() > 1) {
    db_->counters().decision_us.Add(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count()));
  }
  db_->counters().phase2_us.Add(MicrosSince(t1));
  return commit_ts;
}

absl::Status Coordinator::AbortPrepared(uint64_t txn_id, absl::Span<const uint32_t> parts,
                                        bool sync) {
  absl::Status status;
  std::vector<std::pair<engine::Shard*, engine::Lsn>> waits;
  for (uint32_t p : parts) {
    engine::Shard* s = db_->shard(p);
    MutexLock l(s->commit_mu());
    if (!state_.ResolvePart(txn_id, p).has_value()) continue;
    auto lsn = s->AppendLocked(engine::kAbortPrepared, EncodeTxn(txn_id),
                               sync ? engine::Durability::kAsync : engine::Durability::kDeferred);
    if (lsn.ok()) {
      waits.emplace_back(s, *lsn);
    } else if (status.ok()) {
      status = lsn.status();
    }
  }
  if (sync) {
    for (auto& [s, lsn] : waits) {
      absl::Status w = s->WaitDurable(lsn);
      if (status.ok()) status = w;
    }
  }
  state_.SetOutcome(txn_id, Database::Outcome::kAborted);
  return status;
}

absl::Status Coordinator::CommitPrepared(const std::string& name) {
  ASSIGN_OR_RETURN(TwoPhaseState::PreparedInfo p, state_.Claim(name, /*commit=*/true));
  auto ts = CommitDecided(p.txn_id, p.shards, 0, /*named=*/true);
  if (!ts.ok()) {
    state_.MarkInDoubt(p.txn_id);  // if any of it is still prepared
    return ts.status();
  }
  db_->counters().commits++;
  if (p.shards.size() > 1) db_->counters().cross_shard_commits++;
  return absl::OkStatus();
}

absl::Status Coordinator::RollbackPrepared(const std::string& name) {
  ASSIGN_OR_RETURN(TwoPhaseState::PreparedInfo p, state_.Claim(name, /*commit=*/false));
  db_->counters().rollbacks++;
  absl::Status s = AbortPrepared(p.txn_id, p.shards, true);
  if (!s.ok()) state_.MarkInDoubt(p.txn_id);  // if any of it is still prepared
  return s;
}

absl::Status Coordinator::LoadPrepared(
    uint32_t shard, const std::vector<std::pair<std::string, std::string>>& rows) {
  const bool recovering = recovering_.load();
  for (const auto& [key, value] : rows) {
    PrepareRecord r;
    if (!DecodePrepare(value, &r)) {
      return absl::DataLossError(
          absl::StrCat("shard ", shard, ": corrupt row in the prepared-transactions table"));
    }
    if (recovering) Evidence(r.txn_id, shard).prepare = true;
    state_.AddPart(r.txn_id, r.name, r.snapshot_ts, r.participants, shard, 0, std::move(r.writes),
                   true);
    AddRecoveredReadLocks(r);
    state_.MarkPreparedIfComplete(r.txn_id);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<engine::ShardHooks::RedoInstall>> Coordinator::Redo(
    uint32_t shard, engine::Lsn lsn, bool applied, uint8_t type, absl::string_view payload) {
  using Install = std::optional<engine::ShardHooks::RedoInstall>;
  auto corrupt = [&](absl::string_view what) {
    return absl::DataLossError(
        absl::StrCat("shard ", shard, ": malformed ", what, " record at LSN ", lsn));
  };
  // Recovery records the evidence in-doubt resolution reads; a replica, online, keeps only the
  // prepared state (its resolver reads the participants' applied state).
  const bool recovering = recovering_.load();
  switch (type) {
    case engine::kCommit: {
      uint64_t ts, id;  // the shard decoded and installed the writes; only the id matters here
      if (!engine::DecodeCommitHeader(payload, &ts, &id)) return corrupt("commit");
      state_.SetOutcome(id, Database::Outcome::kCommitted);
      return Install();
    }
    case engine::kPrepare: {
      PrepareRecord r;
      if (!DecodePrepare(payload, &r)) return corrupt("prepare");
      if (recovering) Evidence(r.txn_id, shard).prepare = true;
      if (!state_.HasPart(r.txn_id, shard)) {
        state_.AddPart(r.txn_id, r.name, r.snapshot_ts, r.participants, shard, lsn,
                       std::move(r.writes), false);
        AddRecoveredReadLocks(r);
        state_.MarkPreparedIfComplete(r.txn_id);
      }
      return Install();
    }
    case engine::kCommitPrepared: {
      uint64_t id, ts;
      if (!DecodeTxnTs(payload, &id, &ts)) return corrupt("commit-prepared");
      if (recovering) {
        recovered_commit_ts_[id] = ts;
        Evidence(id, shard).commit = true;
      }
      state_.SetOutcome(id, Database::Outcome::kCommitted, ts);
      std::optional<std::vector<engine::Write>> writes = state_.ResolvePart(id, shard);
      state_.MarkResolving(id, /*commit=*/true);  // if parts remain elsewhere
      state_.SetCommitTs(id, ts);                 // their commit timestamp
      if (applied) return Install();
      if (!writes.has_value()) {
        return absl::DataLossError(absl::StrCat("shard ", shard, ": commit record at LSN ", lsn,
                                                " for transaction ", id,
                                                " whose prepare is neither in the WAL nor in "
                                                "LMDB"));
      }
      return Install(engine::ShardHooks::RedoInstall{ts, std::move(*writes)});
    }
    case engine::kAbortPrepared: {
      uint64_t id;
      if (!DecodeTxn(payload, &id)) return corrupt("abort-prepared");
      if (recovering) Evidence(id, shard).abort = true;
      state_.ResolvePart(id, shard);
      state_.MarkResolving(id, /*commit=*/false);  // if parts remain elsewhere
      state_.SetOutcome(id, Database::Outcome::kAborted);
      return Install();
    }
    case engine::kDecision: {
      DecisionRecord d;
      if (!DecodeDecision(payload, &d)) return corrupt("decision");
      if (recovering) recovered_decisions_[d.txn_id] = d;
      if (d.commit) {
        state_.MarkResolving(d.txn_id, /*commit=*/true);
        state_.SetCommitTs(d.txn_id, d.commit_ts);  // 0 (none) in a named one's
        if (d.commit_ts != 0) state_.SetOutcome(d.txn_id, Database::Outcome::kCommitted, d.commit_ts);
      }
      return Install();
    }
    case engine::kEnd: {  // reserved: nothing writes it yet; its layout is still checked
      uint64_t id;
      if (!DecodeTxn(payload, &id)) return corrupt("end");
      return Install();
    }
    default:
      return absl::DataLossError(
          absl::StrCat("shard ", shard, ": unknown WAL record type ", type, " at LSN ", lsn));
  }
}

absl::Status Coordinator::CheckRedo(uint32_t shard, absl::Span<const engine::EntryRecord> records) {
  const uint32_t n = db_->num_shards();
  // The shards a record names: ascending, in range, and naming `must` (as the first when
  // `first`).
  auto shards_ok = [n](const std::vector<uint32_t>& shards, uint32_t must, bool first) {
    if (shards.empty() || shards.back() >= n) return false;
    for (size_t i = 1; i < shards.size(); ++i) {
      if (shards[i - 1] >= shards[i]) return false;
    }
    if (first) return shards.front() == must;
    return std::find(shards.begin(), shards.end(), must) != shards.end();
  };
  std::vector<uint64_t> prepared_here;  // by earlier records of this entry
  for (size_t i = 0; i < records.size(); ++i) {
    const engine::EntryRecord& r = records[i];
    auto bad = [&](absl::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed ", what, " record (record ", i + 1, " of ", records.size(), ")"));
    };
    switch (r.type) {
      case engine::kCommit:
        break;
      case engine::kPrepare: {
        PrepareRecord p;
        if (!DecodePrepare(r.payload, &p)) return bad("prepare");
        if (!shards_ok(p.participants, shard, /*first=*/false)) {
          return bad(absl::StrCat("prepare (transaction ", p.txn_id,
                                  ": participants not ascending, out of range or without this "
                                  "shard)"));
        }
        prepared_here.push_back(p.txn_id);
        break;
      }
      case engine::kCommitPrepared: {
        uint64_t id, ts;
        if (!DecodeTxnTs(r.payload, &id, &ts)) return bad("commit-prepared");
        if (!state_.HasPart(id, shard) &&
            std::find(prepared_here.begin(), prepared_here.end(), id) == prepared_here.end()) {
          return absl::FailedPreconditionError(absl::StrCat(
              "commit record (record ", i + 1, " of ", records.size(), ") of transaction ", id,
              ", which has no part prepared on shard ", shard));
        }
        break;
      }
      case engine::kAbortPrepared: {
        uint64_t id;
        if (!DecodeTxn(r.payload, &id)) return bad("abort-prepared");
        break;
      }
      case engine::kDecision: {
        DecisionRecord d;
        if (!DecodeDecision(r.payload, &d)) return bad("decision");
        if (!shards_ok(d.shards, shard, /*first=*/true)) {
          return bad(absl::StrCat("decision (transaction ", d.txn_id,
                                  ": shards not ascending, out of range or not led by this "
                                  "shard, the coordinator)"));
        }
        break;
      }
      default:
        return absl::UnimplementedError(absl::StrCat("record type ", r.type, " (record ", i + 1,
                                                     " of ", records.size(),
                                                     ") is not redone on a replica"));
    }
  }
  return absl::OkStatus();
}

void Coordinator::ForgetShard(uint32_t shard) { state_.DropShard(shard); }

size_t Coordinator::RecoveryEvidenceSize() const {
  return recovered_decisions_.size() + recovered_commit_ts_.size() + recovered_evidence_.size();
}

engine::Timestamp Coordinator::RecoveredMaxTs() const {
  engine::Timestamp max_ts = 0;
  for (const auto& [id, d] : recovered_decisions_) max_ts = std::max(max_ts, d.commit_ts);
  return max_ts;
}

absl::Status Coordinator::ResolveInDoubt(const std::vector<bool>& replica) {
  auto on_replica = [&replica](const std::vector<uint32_t>& shards) {
    for (uint32_t s : shards) {
      if (s < replica.size() && replica[s]) return true;
    }
    return false;
  };
  for (const TwoPhaseState::PreparedInfo& p : state_.AllPrepared()) {
    SHARDTX_KILL_POINT("recovery.resolve_in_doubt");
    // A replica decides nothing by itself: its groups' leader does, through their logs (a
    // record appended here would be in no Raft log). Redo left it as the replica keeps it.
    if (on_replica(p.participants) || on_replica(p.shards)) continue;
    auto d = recovered_decisions_.find(p.txn_id);
    const bool decided = d != recovered_decisions_.end() && d->second.commit;
    bool commit;
    if (p.name.empty()) {
      // Our own cross-shard transaction: the in-doubt rule of parallel commit.
      std::vector<PartEvidence> parts;
      for (uint32_t s : p.participants) parts.push_back(Evidence(p.txn_id, s));
      commit = DecideInDoubt(decided, parts) == InDoubtVerdict::kCommit;
    } else if (decided) {
      commit = true;
    } else if (p.shards != p.participants) {
      // A named Prepare that died before every participant's part was durable was never
      // acknowledged (nor was a rollback that died half-way).
      commit = false;
    } else {
      // Named, complete and undecided: stays prepared, its locks held, until the host decides.
      state_.MarkPrepared(p.txn_id);
      continue;
    }
    if (commit) {
      engine::Timestamp ts = decided ? d->second.commit_ts : 0;
      if (ts == 0) {
        auto c = recovered_commit_ts_.find(p.txn_id);  // some participant committed already
        if (c != recovered_commit_ts_.end()) ts = c->second;
      }
      RETURN_IF_ERROR(CommitDecided(p.txn_id, p.shards, ts, !p.name.empty()).status());
      db_->counters().recovered_commits++;
    } else {
      RETURN_IF_ERROR(AbortPrepared(p.txn_id, p.shards, false));
      db_->counters().recovered_aborts++;
    }
  }
  recovered_decisions_ = {};
  recovered_commit_ts_ = {};
  recovered_evidence_ = {};
  recovering_.store(false);
  // Make the resolutions durable now, so no decision needs remembering.
  for (uint32_t i = 0; i < db_->num_shards(); ++i) RETURN_IF_ERROR(db_->shard(i)->SyncWal());
  return absl::OkStatus();
}

PartEvidence& Coordinator::Evidence(uint64_t txn_id, uint32_t shard) {
  return recovered_evidence_[{txn_id, shard}];
}

void Coordinator::AddRecoveredReadLocks(const PrepareRecord& r) {
  if (r.read_keys.empty() && r.read_ranges.empty()) return;
  std::vector<std::pair<uint32_t, std::string>> keys;
  for (const std::string& k : r.read_keys) keys.emplace_back(db_->partitioner().ShardOf(k), k);
  state_.AddReadLocks(r.txn_id, std::move(keys), r.read_ranges);
}

}  // namespace shardtx::txn
