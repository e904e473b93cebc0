#include "txn/transaction_impl.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "absl/base/optimization.h"
#include "absl/cleanup/cleanup.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/log_record.h"
#include "engine/replicated_log.h"
#include "txn/coordinator.h"
#include "txn/database_impl.h"
#include "txn/merge_iterator.h"
#include "txn/txn_records.h"
#include "util/kill_point.h"
#include "util/op_gate.h"
#include "util/status_latch.h"
#include "util/status_macros.h"

namespace shardtx::txn {

SHARDTX_DEFINE_KILL_POINT(commit_after_append, "commit.after_wal_append");
SHARDTX_DEFINE_KILL_POINT(commit_after_durable, "commit.after_durable");

static_assert(kMaxKeySize == engine::kMaxKeySize, "the public key limit is the engine's");

namespace {

engine::Durability ToEngine(Durability d) {
  switch (d) {
    case Durability::kSync:
      return engine::Durability::kSync;
    case Durability::kAsync:
      return engine::Durability::kAsync;
    case Durability::kNone:
      return engine::Durability::kNone;
  }
  return engine::Durability::kSync;
}

std::string Printable(absl::string_view key) {
  std::string k = absl::CHexEscape(key.substr(0, 64));
  if (key.size() > 64) k += "...";
  return "'" + k + "'";
}

}  // namespace

TransactionImpl::TransactionImpl(DatabaseImpl* db, const TxnOptions& options)
    : db_(db), options_(options), id_(db->NewTxnId()) {
  db_->TxnBegun();  // before looking at the gate: a Close from now on keeps the shards
  views_.resize(db->num_shards());
  if (ABSL_PREDICT_FALSE(options_.follower_read && db_->follower_reads() != nullptr)) {
    TakeFollowerSnapshot();
  } else if (ABSL_PREDICT_FALSE(db_->replicated())) {
    TakeReplicatedSnapshot();
  } else {
    TakeSnapshot();
  }
}

void TransactionImpl::TakeFollowerSnapshot() {
  if (db_->gate().closed()) {  // its shards may be gone (TxnBegun keeps them only from now on)
    follower_error_ = db_->ClosedError();
    return;
  }
  db_->counters().follower_reads++;
  const FollowerReads::Safe safe = db_->follower_reads()->SafeTimestamp();
  snapshot_ = safe.ts;
  if (safe.staleness > options_.max_staleness) {
    db_->counters().follower_reads_too_stale++;
    follower_error_ = absl::UnavailableError(
        absl::StrCat("follower read: this node's safe timestamp ", safe.ts, " is ",
                     safe.staleness == absl::InfiniteDuration()
                         ? std::string("of unknown staleness")
                         : absl::StrCat(absl::FormatDuration(safe.staleness), " stale"),
                     safe.held_by.empty() ? "" : absl::StrCat(" (", safe.held_by, ")"),
                     ", more than the max_staleness ", absl::FormatDuration(options_.max_staleness),
                     " asked: read on a fresher replica or the leader, or accept more"));
  }
}

void TransactionImpl::TakeReplicatedSnapshot() {
  // The term each replicated shard leads before the snapshot, the barriers it proposed after:
  // a barrier proposed later and committed in that term confirms the snapshot's reads
  // (engine/replicated_log.h).
  read_stamps_.resize(db_->num_shards());
  for (uint32_t s = 0; s < db_->num_shards(); ++s) {
    if (engine::ReplicatedLog* log = db_->replicated_log(s)) {
      read_stamps_[s].term = log->StampRead().term;
    }
  }
  TakeSnapshot();
  for (uint32_t s = 0; s < db_->num_shards(); ++s) {
    if (engine::ReplicatedLog* log = db_->replicated_log(s)) {
      read_stamps_[s].barriers = log->StampRead().barriers;
    }
  }
}

void TransactionImpl::TakeSnapshot() {
  snapshot_ = db_->oracle().visible();
  // With one shard, pin it now: a snapshot pinned at Begin can never be "too old". A
  // checkpoint may have moved LMDB past the snapshot just read; then take a newer one.
  if (db_->num_shards() == 1 && !db_->gate().closed()) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      auto v = db_->shard(0)->Pin(snapshot_);
      if (v.ok()) {
        views_[0] = std::move(*v);
        break;
      }
      if (!absl::IsAborted(v.status())) break;  // surfaces again on first use
      snapshot_ = db_->oracle().visible();
    }
  }
}

TransactionImpl::~TransactionImpl() {
  if (active()) Rollback().IgnoreError();
  Finish();  // a finished transaction touches no Database here: it may outlive it
}

void TransactionImpl::Finish() {
  for (auto& v : views_) v.reset();
  if (live_) {
    live_ = false;
    db_->TxnEnded();
  }
}

absl::Status TransactionImpl::CheckWritable() const {
  if (ABSL_PREDICT_FALSE(options_.follower_read)) {
    return absl::FailedPreconditionError(
        "a follower-read transaction (TxnOptions::follower_read) is read-only: write in a "
        "transaction of its own, on the leader");
  }
  return absl::OkStatus();
}

absl::Status TransactionImpl::CheckActive() const {
  if (!active()) {
    return absl::FailedPreconditionError("transaction already committed or rolled back");
  }
  return absl::OkStatus();
}

absl::StatusOr<engine::Shard::View*> TransactionImpl::ViewOf(uint32_t shard) {
  if (db_->gate().closed()) return db_->ClosedError();
  if (ABSL_PREDICT_FALSE(!follower_error_.ok())) return follower_error_;
  if (views_[shard] == nullptr) {
    auto v = db_->shard(shard)->Pin(snapshot_);
    if (!v.ok()) {
      if (absl::IsAborted(v.status())) db_->counters().aborts_snapshot_too_old++;
      return v.status();
    }
    // A part prepared here of a transaction that committed at or below the snapshot (its other
    // parts' commits are applied, this one's not yet: replicated shards, in doubt after a
    // failover or a refused entry) would show the snapshot half of that transaction.
    if (auto [ts, id] = db_->two_phase().KnownCommitFloor(shard); id != 0 && ts <= snapshot_) {
      return absl::UnavailableError(absl::StrCat(
          "shard ", shard, " holds a part of transaction ", id, ", committed at ts ", ts,
          " (at or below this snapshot ", snapshot_,
          "), still prepared here: it is being resolved; retry the transaction"));
    }
    views_[shard] = std::move(*v);
  }
  return views_[shard].get();
}

namespace {

absl::Status CheckKey(absl::string_view key) {
  if (key.empty() || key.size() > kMaxKeySize) {
    return absl::InvalidArgumentError(absl::StrCat("key of ", key.size(), " bytes: keys are 1 to ",
                                                   kMaxKeySize, " bytes (LMDB's limit)"));
  }
  return absl::OkStatus();
}

absl::Status ReplicatedUnimplemented(absl::string_view what) {
  return absl::UnimplementedError(
      absl::StrCat(what, " on a database with replicated shards (issue 17)"));
}

}  // namespace

absl::StatusOr<std::string> TransactionImpl::Get(absl::string_view key) {
  RETURN_IF_ERROR(CheckActive());
  RETURN_IF_ERROR(CheckKey(key));
  if (db_->gate().closed()) return db_->ClosedError();
  if (auto it = writes_.find(key); it != writes_.end()) {
    if (!it->second.has_value()) return absl::NotFoundError(Printable(key));
    return *it->second;
  }
  const uint32_t shard = db_->partitioner().ShardOf(key);
  ASSIGN_OR_RETURN(engine::Shard::View * view, ViewOf(shard));
  if (options_.isolation == Isolation::kSerializable) reads_.insert(std::string(key));
  ASSIGN_OR_RETURN(std::optional<engine::Found> f, engine::Shard::Get(view, key));
  if (!f.has_value() || f->tombstone) return absl::NotFoundError(Printable(key));
  return std::move(f->value);
}

absl::Status TransactionImpl::Put(absl::string_view key, absl::string_view value) {
  RETURN_IF_ERROR(CheckActive());
  RETURN_IF_ERROR(CheckKey(key));
  RETURN_IF_ERROR(CheckWritable());
  if (write_bytes_ + key.size() + value.size() > db_->options().max_txn_bytes) {
    // Refused at once, so a runaway transaction cannot exhaust memory before Commit.
    db_->counters().aborts_too_large++;
    return absl::ResourceExhaustedError(absl::StrCat(
        "transaction would exceed Options.max_txn_bytes ", db_->options().max_txn_bytes, " (",
        write_bytes_, " bytes buffered); split it"));
  }
  auto [it, inserted] = writes_.try_emplace(key);
  if (inserted) NoteWrittenShard(key);
  if (!inserted) write_bytes_ -= it->first.size() + (it->second ? it->second->size() : 0);
  it->second = std::string(value);
  write_bytes_ += key.size() + value.size();
  return absl::OkStatus();
}

absl::Status TransactionImpl::Delete(absl::string_view key) {
  RETURN_IF_ERROR(CheckActive());
  RETURN_IF_ERROR(CheckKey(key));
  RETURN_IF_ERROR(CheckWritable());
  auto [it, inserted] = writes_.try_emplace(key);
  if (inserted) NoteWrittenShard(key);
  if (!inserted) write_bytes_ -= it->first.size() + (it->second ? it->second->size() : 0);
  it->second.reset();
  write_bytes_ += key.size();
  return absl::OkStatus();
}

void TransactionImpl::RecordRange(absl::string_view lower, absl::string_view upper) {
  if (options_.isolation == Isolation::kSerializable) {
    ranges_.emplace_back(std::string(lower), std::string(upper));
  }
}

std::unique_ptr<Iterator> TransactionImpl::NewIterator(const IteratorOptions& options) {
  return std::make_unique<MergeIterator>(this, options);
}

absl::Status TransactionImpl::Rollback() {
  RETURN_IF_ERROR(CheckActive());
  state_ = State::kAborted;
  db_->counters().rollbacks++;
  Finish();
  return absl::OkStatus();
}

absl::Status TransactionImpl::ValidateWritesLocked(uint32_t shard,
                                                   const std::vector<engine::Write>& writes) {
  engine::Shard* s = db_->shard(shard);
  for (const engine::Write& w : writes) {
    std::optional<std::string> holder = db_->two_phase().LockHolder(shard, w.key);
    if (!holder.has_value()) holder = db_->two_phase().ReadLockHolder(shard, w.key);
    if (holder.has_value()) {
      db_->counters().aborts_locked++;
      return absl::AbortedError(absl::StrCat("key ", Printable(w.key), " (shard ", shard,
                                             ", commit phase) is locked by ", *holder));
    }
    ASSIGN_OR_RETURN(engine::Timestamp ts, s->NewestTsAfterLocked(w.key, snapshot_));
    if (ts != 0) {
      db_->counters().aborts_write_conflict++;
      return absl::AbortedError(absl::StrCat("write-write conflict on key ", Printable(w.key),
                                             " (shard ", shard, ", commit phase): committed at ts ",
                                             ts, " after this snapshot ", snapshot_));
    }
  }
  return absl::OkStatus();
}

absl::Status TransactionImpl::ValidateReadsLocked(uint32_t shard) {
  if (options_.isolation != Isolation::kSerializable) return absl::OkStatus();
  engine::Shard* s = db_->shard(shard);
  // A prepared write on something read may commit at a timestamp below this transaction's
  // while this one read the older version: no serial order would explain both (see
  // Transaction::Commit). Retryable once the prepared transaction is decided.
  auto prepare_conflict = [&](absl::string_view what, const std::string& holder) {
    db_->counters().aborts_read_validation++;
    return absl::AbortedError(absl::StrCat("serializable validation failed: ", what, " (shard ",
                                           shard, ") read at snapshot ", snapshot_,
                                           " is written by ", holder, " (prepare conflict)"));
  };
  for (const std::string& key : reads_) {
    if (db_->partitioner().ShardOf(key) != shard) continue;
    if (std::optional<std::string> holder = db_->two_phase().LockHolder(shard, key)) {
      return prepare_conflict(absl::StrCat("key ", Printable(key)), *holder);
    }
    ASSIGN_OR_RETURN(engine::Timestamp ts, s->NewestTsAfterLocked(key, snapshot_));
    if (ts != 0) {
      db_->counters().aborts_read_validation++;
      return absl::AbortedError(absl::StrCat("serializable validation failed: key ", Printable(key),
                                             " (shard ", shard, ") read at snapshot ", snapshot_,
                                             " was changed at ts ", ts));
    }
  }
  for (const auto& [lower, upper] : ranges_) {
    if (std::optional<std::string> holder =
            db_->two_phase().LockHolderInRange(shard, lower, upper)) {
      return prepare_conflict(
          absl::StrCat("range [", Printable(lower), ", ", Printable(upper), ")"), *holder);
    }
    ASSIGN_OR_RETURN(bool newer, s->AnyNewerInRangeLocked(lower, upper, snapshot_));
    if (newer) {
      db_->counters().aborts_read_validation++;
      return absl::AbortedError(absl::StrCat(
          "serializable validation failed: range [", Printable(lower), ", ", Printable(upper),
          ") on shard ", shard, " changed after snapshot ", snapshot_));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<CommitPlan> TransactionImpl::MakePlan() {
  if (write_bytes_ + 16 * writes_.size() > db_->options().max_txn_bytes) {
    db_->counters().aborts_too_large++;
    return absl::ResourceExhaustedError(
        absl::StrCat("transaction of ", write_bytes_, " bytes in ", writes_.size(),
                     " writes exceeds Options.max_txn_bytes ", db_->options().max_txn_bytes));
  }
  CommitPlan plan;
  plan.by_shard.resize(db_->num_shards());
  absl::InlinedVector<bool, 16> involved(db_->num_shards(), false);
  // Each shard's write set is sized before it is filled: one allocation per part. Writes to
  // one shard (the common case) need no partitioning: Put noted their shard.
  absl::InlinedVector<uint32_t, 16> shard_of;
  if (several_shards_) {
    absl::InlinedVector<uint32_t, 16> count(db_->num_shards(), 0);
    for (const auto& [key, value] : writes_) {
      shard_of.push_back(db_->partitioner().ShardOf(key));
      ++count[shard_of.back()];
    }
    for (uint32_t s = 0; s < db_->num_shards(); ++s) {
      if (count[s] != 0) plan.by_shard[s].reserve(count[s]);
    }
  } else {
    plan.by_shard[first_shard_].reserve(writes_.size());
  }
  // The buffer's entries are taken over, keys too (extracted, not copied), in key order.
  for (size_t i = 0; !writes_.empty(); ++i) {
    auto entry = writes_.extract(writes_.begin());
    const uint32_t s = several_shards_ ? shard_of[i] : first_shard_;
    involved[s] = true;
    engine::Write w;
    w.op = entry.mapped().has_value() ? engine::WriteOp::kPut : engine::WriteOp::kDelete;
    w.key = std::move(entry.key());
    if (entry.mapped().has_value()) w.value = std::move(*entry.mapped());
    plan.by_shard[s].push_back(std::move(w));
  }
  for (uint32_t s = 0; s < db_->num_shards(); ++s) {
    if (!plan.by_shard[s].empty()) plan.parts.push_back(s);
  }
  if (options_.isolation == Isolation::kSerializable) {
    for (const std::string& key : reads_) involved[db_->partitioner().ShardOf(key)] = true;
    if (!ranges_.empty()) involved.assign(involved.size(), true);
  }
  for (uint32_t s = 0; s < db_->num_shards(); ++s) {
    if (involved[s]) plan.involved.push_back(s);
  }
  return plan;
}

absl::Status TransactionImpl::Commit() {
  RETURN_IF_ERROR(CheckActive());
  const auto start = std::chrono::steady_clock::now();
  auto fail = [&](absl::Status s) {
    state_ = State::kAborted;
    Finish();
    return s;
  };
  OpGuard op(&db_->gate());
  if (!op.admitted()) return fail(db_->ClosedError());
  if (ABSL_PREDICT_FALSE(options_.follower_read)) {
    // Read-only at a safe timestamp: nothing to confirm with a leader.
    if (!follower_error_.ok()) return fail(follower_error_);
    for (auto& v : views_) v.reset();
    return Committed(/*wrote=*/false, start);
  }
  if (ABSL_PREDICT_FALSE(db_->replicated())) return CommitOnReplicatedDatabase(start);
  for (auto& v : views_) v.reset();  // release LMDB readers early
  if (writes_.empty()) return Committed(/*wrote=*/false, start);
  absl::StatusOr<CommitPlan> plan = MakePlan();
  if (!plan.ok()) return fail(plan.status());
  if (plan->parts.size() == 1) {
    absl::Status s = CommitOnePhase(*plan);
    if (!s.ok()) return fail(s);
  } else {
    // Serializable: the commit timestamp is taken with the validation, under the locks, so
    // that no transaction validated later can commit "before" this one.
    Coordinator::PrepareRequest request{
        id_, "", snapshot_, &*plan, {}, {}, options_.isolation == Isolation::kSerializable};
    auto early_ts = db_->coordinator().Prepare(request, [&] { return ValidateLocked(*plan); });
    if (!early_ts.ok()) return fail(early_ts.status());
    // Every prepare is durable: committed (parallel commit). The decision is bookkeeping, and
    // CommitDecided finishes phase two whatever it can still log.
    auto ts = db_->coordinator().CommitDecided(id_, plan->parts, *early_ts, /*named=*/false);
    if (!ts.ok()) return fail(ts.status());
    commit_ts_ = *ts;
    db_->counters().cross_shard_commits++;
  }
  return Committed(/*wrote=*/true, start);
}

absl::Status TransactionImpl::Committed(bool wrote, std::chrono::steady_clock::time_point start) {
  state_ = State::kCommitted;
  if (wrote) {
    db_->counters().commits++;
    db_->counters().commit_latency_us.Add(MicrosSince(start));
  } else {
    db_->counters().read_only_commits++;
  }
  Finish();
  return absl::OkStatus();
}

absl::InlinedVector<uint32_t, 4> TransactionImpl::ReplicatedShardsPinned() const {
  absl::InlinedVector<uint32_t, 4> out;
  for (uint32_t s = 0; s < views_.size(); ++s) {
    if (views_[s] != nullptr && db_->replicated_log(s) != nullptr) out.push_back(s);
  }
  return out;
}

absl::Status TransactionImpl::CommitOnReplicatedDatabase(
    std::chrono::steady_clock::time_point start) {
  auto fail = [&](absl::Status s) {
    state_ = State::kAborted;
    Finish();
    return s;
  };
  absl::InlinedVector<uint32_t, 4> read = ReplicatedShardsPinned();
  for (auto& v : views_) v.reset();  // release LMDB readers before waiting
  if (writes_.empty()) {
    if (absl::Status s = ConfirmReplicatedReads(read); !s.ok()) return fail(s);
    return Committed(/*wrote=*/false, start);
  }
  absl::StatusOr<CommitPlan> plan = MakePlan();
  if (!plan.ok()) return fail(plan.status());
  if (plan->parts.size() != 1) {
    // The written shards' prepare entries confirm their reads; other replicated shards read
    // get a barrier each, first.
    if (absl::Status s = ConfirmReplicatedReadsBesides(read, plan->parts); !s.ok()) {
      return fail(s);
    }
    if (absl::Status s = CommitCrossShardReplicated(*plan); !s.ok()) return fail(s);
    db_->counters().cross_shard_commits++;
    return Committed(/*wrote=*/true, start);
  }
  const uint32_t part = plan->parts.front();
  engine::ReplicatedLog* log = db_->replicated_log(part);
  // The written shard's entry confirms its reads (CommitReplicated); any other replicated shard
  // read is confirmed first, by its own barrier.
  if (log != nullptr) read.erase(std::remove(read.begin(), read.end(), part), read.end());
  if (absl::Status s = ConfirmReplicatedReads(read); !s.ok()) return fail(s);
  absl::Status s = log != nullptr ? CommitReplicated(*plan, log) : CommitOnePhase(*plan);
  if (!s.ok()) return fail(s);
  return Committed(/*wrote=*/true, start);
}

absl::Status TransactionImpl::Prepare(absl::string_view name) {
  RETURN_IF_ERROR(CheckActive());
  if (name.empty()) return absl::InvalidArgumentError("Prepare: the name is empty");
  RETURN_IF_ERROR(CheckWritable());
  const std::string n(name);
  OpGuard op(&db_->gate());
  if (!op.admitted()) {
    state_ = State::kAborted;
    Finish();
    return db_->ClosedError();
  }
  RETURN_IF_ERROR(db_->two_phase().ReserveName(n, id_));
  // Replicated: the shards read, before the views go (their reads are confirmed).
  absl::InlinedVector<uint32_t, 4> read;
  if (db_->replicated()) read = ReplicatedShardsPinned();
  for (auto& v : views_) v.reset();
  auto fail = [&](absl::Status s) {
    db_->two_phase().ReleaseName(n, id_);
    state_ = State::kAborted;
    Finish();
    return s;
  };
  if (options_.isolation == Isolation::kSerializable) {
    // The read set is written in the prepare record and locked: bounded like the writes.
    uint64_t read_bytes = 0;
    for (const std::string& k : reads_) read_bytes += k.size() + 8;
    for (const auto& [lower, upper] : ranges_) read_bytes += lower.size() + upper.size() + 16;
    if (write_bytes_ + read_bytes > db_->options().max_txn_bytes) {
      db_->counters().aborts_too_large++;
      return fail(absl::ResourceExhaustedError(absl::StrCat(
          "Prepare: the read set (", read_bytes, " bytes) and writes (", write_bytes_,
          " bytes) of a serializable prepare exceed Options::max_txn_bytes ",
          db_->options().max_txn_bytes)));
    }
  }
  absl::StatusOr<CommitPlan> plan = MakePlan();
  if (!plan.ok()) return fail(plan.status());
  if (plan->parts.empty()) {  // nothing written: a prepare record on shard 0 keeps the name
    plan->parts.push_back(0);
    if (plan->involved.empty() || plan->involved.front() != 0) {
      plan->involved.insert(plan->involved.begin(), 0);
    }
  }
  Coordinator::PrepareRequest request{id_, n, snapshot_, &*plan, {}, {}, false};
  // A serializable named prepare keeps what it read locked until its decision.
  if (options_.isolation == Isolation::kSerializable) {
    request.read_keys.assign(reads_.begin(), reads_.end());
    request.read_ranges = ranges_;
  }
  absl::Status s =
      db_->replicated()
          ? PrepareReplicated(request, std::move(read))
          : db_->coordinator().Prepare(request, [&] { return ValidateLocked(*plan); }).status();
  if (!s.ok()) return fail(s);
  state_ = State::kPrepared;
  Finish();
  return absl::OkStatus();
}

absl::Status TransactionImpl::ValidateLocked(const CommitPlan& plan) {
  for (uint32_t p : plan.parts) RETURN_IF_ERROR(ValidateWritesLocked(p, plan.by_shard[p]));
  for (uint32_t s : plan.involved) RETURN_IF_ERROR(ValidateReadsLocked(s));
  return absl::OkStatus();
}

absl::Status TransactionImpl::CommitOnePhase(CommitPlan& plan) {
  const uint32_t shard = plan.parts.front();
  std::vector<engine::Write>& writes = plan.by_shard[shard];
  engine::Shard* s = db_->shard(shard);
  s->WaitForSpace();
  engine::Lsn lsn;
  // Encoded before the lock; the commit timestamp is filled in under it.
  std::string record = engine::EncodeCommit(/*commit_ts=*/0, id_, writes);
  {
    ShardLocks locks(db_, plan.involved);
    s->commit_mu()->AssertHeld();
    RETURN_IF_ERROR(ValidateLocked(plan));
    commit_ts_ = db_->oracle().Assign();
    engine::SetCommitTs(&record, commit_ts_);
    auto appended = s->AppendLocked(engine::kCommit, record, ToEngine(options_.durability));
    if (!appended.ok()) {
      db_->oracle().Finish(commit_ts_);  // nothing installed under it
      commit_ts_ = 0;
      db_->counters().aborts_io_error++;
      return appended.status();
    }
    lsn = *appended;
    s->InstallLocked(&writes, commit_ts_);  // the transaction is done with the values
    if (options_.durability == Durability::kSync) {
      db_->durable_commits().Add(shard, lsn, commit_ts_);
    } else {
      db_->oracle().Finish(commit_ts_);  // visible now; durable soon (async) or later (none)
    }
  }
  SHARDTX_KILL_POINT("commit.after_wal_append");
  if (options_.durability == Durability::kSync && KillPoints::DeliberateBug("ack_before_fsync")) {
    db_->oracle().Finish(commit_ts_);  // the bug: acknowledged before the fsync
    return absl::OkStatus();
  }
  if (options_.durability == Durability::kSync) {
    absl::Status d = s->WaitDurable(lsn);
    if (!d.ok()) {
      // The log is poisoned. Nobody has seen the versions (visible_ts is below commit_ts_):
      // take them back. The record may still have reached the disk; an I/O status means the
      // outcome is unknown until the database is reopened.
      {
        MutexLock l(s->commit_mu());
        s->UninstallLocked(writes, commit_ts_);
      }
      db_->oracle().Finish(commit_ts_);
      db_->counters().aborts_io_error++;
      commit_ts_ = 0;
      return d;
    }
  }
  SHARDTX_KILL_POINT("commit.after_durable");
  db_->two_phase().SetOutcome(id_, Database::Outcome::kCommitted);
  // Read-your-commits: a transaction begun after Commit returns sees this one.
  db_->oracle().WaitVisible(commit_ts_);
  return absl::OkStatus();
}

namespace {

// A replicated commit waiting for its entry's outcome (engine/replicated_log.h). The
// replication layer calls one method, with the shard's commit_mu held, on its own thread.
class ReplicatedCommit final : public engine::ReplicatedLog::Proposal {
 public:
  ReplicatedCommit(TimestampOracle* oracle, engine::Shard* shard,
                   const std::vector<engine::Write>* writes, engine::Timestamp ts)
      : oracle_(oracle), shard_(shard), writes_(writes), ts_(ts) {}

  void Committed(engine::RaftPosition) override {
    oracle_->Finish(ts_);  // visible: a majority holds the entry
    outcome_.Set(absl::OkStatus());
  }
  void Unknown(const absl::Status& status) override { TakeBack(status); }
  void Refused(const absl::Status& status) override { TakeBack(status); }

  // Blocks until one of the above ran; returns its status.
  absl::Status Wait() { return outcome_.Wait(); }

 private:
  void TakeBack(const absl::Status& status) {
    // Nobody saw the versions (visible_ts is below ts_). Should the entry commit after all,
    // this replica redoes it like any entry it did not propose.
    shard_->commit_mu()->AssertHeld();
    shard_->UninstallLocked(*writes_, ts_);
    oracle_->Finish(ts_);
    outcome_.Set(status);
  }

  TimestampOracle* const oracle_;
  engine::Shard* const shard_;
  const std::vector<engine::Write>* const writes_;
  const engine::Timestamp ts_;
  StatusLatch outcome_;  // set once, on the replication layer's thread
};

// A read-only commit waiting for its reads' confirmation (ReplicatedLog::ConfirmReads).
class ReadConfirmation final : public engine::ReplicatedLog::ReadCheck {
 public:
  void Done(const absl::Status& status) override { outcome_.Set(status); }
  absl::Status Wait() { return outcome_.Wait(); }

 private:
  StatusLatch outcome_;  // set once, on the replication layer's thread
};

}  // namespace

absl::Status TransactionImpl::ConfirmReplicatedReads(absl::Span<const uint32_t> shards) {
  std::vector<std::unique_ptr<ReadConfirmation>> asked;
  absl::Status status;
  for (uint32_t s : shards) {
    auto check = std::make_unique<ReadConfirmation>();
    status = db_->replicated_log(s)->ConfirmReads(read_stamps_[s], check.get());
    if (!status.ok()) break;
    asked.push_back(std::move(check));
  }
  for (auto& check : asked) {  // each one accepted must be answered before it goes
    absl::Status s = check->Wait();
    if (status.ok()) status = s;
  }
  return status;
}

absl::Status TransactionImpl::ConfirmReplicatedReadsBesides(absl::InlinedVector<uint32_t, 4> read,
                                                            absl::Span<const uint32_t> written) {
  read.erase(std::remove_if(
                 read.begin(), read.end(),
                 [&](uint32_t s) { return std::binary_search(written.begin(), written.end(), s); }),
             read.end());
  return ConfirmReplicatedReads(read);
}

absl::Status TransactionImpl::CommitCrossShardReplicated(CommitPlan& plan) {
  std::vector<uint64_t> stamped(db_->num_shards(), 0);
  for (uint32_t p : plan.parts) stamped[p] = read_stamps_[p].term;
  std::vector<uint64_t> terms;
  RETURN_IF_ERROR(
      db_->coordinator().CheckLeadsParts(plan.parts, stamped, &terms, "cross-shard commit"));
  if (id_ == 0) return db_->txn_ids().error();  // no unique id could be given (txn/txn_ids.h)
  Coordinator::PrepareRequest request{id_, "", snapshot_, &plan, {}, {}, false};
  if (options_.isolation == Isolation::kSerializable) {
    // Read locks until the commit is resolved instead of an early commit timestamp.
    request.read_keys.assign(reads_.begin(), reads_.end());
    request.read_ranges = ranges_;
  }
  absl::StatusOr<engine::Timestamp> ts =
      db_->coordinator().CommitReplicated(request, terms, [&] { return ValidateLocked(plan); });
  if (!ts.ok()) return ts.status();
  commit_ts_ = *ts;
  return absl::OkStatus();
}

absl::Status TransactionImpl::CommitReplicated(CommitPlan& plan, engine::ReplicatedLog* log) {
  const uint32_t shard = plan.parts.front();
  std::vector<engine::Write>& writes = plan.by_shard[shard];
  engine::Shard* s = db_->shard(shard);
  // A replica that does not lead refuses before anything else (checked again when proposing).
  RETURN_IF_ERROR(log->CheckLeader());
  if (id_ == 0) return db_->txn_ids().error();  // no unique id could be given (txn/txn_ids.h)
  s->WaitForSpace();
  std::string record = engine::EncodeCommit(/*commit_ts=*/0, id_, writes);
  std::optional<ReplicatedCommit> commit;
  {
    ShardLocks locks(db_, plan.involved);
    s->commit_mu()->AssertHeld();
    RETURN_IF_ERROR(ValidateLocked(plan));
    commit_ts_ = db_->oracle().Assign();
    engine::SetCommitTs(&record, commit_ts_);
    std::string entry;
    engine::AppendEntryRecord(&entry, engine::kCommit, record);
    s->InstallLocked(&writes, commit_ts_);  // invisible until the entry is released here
    commit.emplace(&db_->oracle(), s, &writes, commit_ts_);
    absl::Status proposed = log->ProposeLocked(entry, read_stamps_[shard].term, &*commit);
    if (!proposed.ok()) {
      s->UninstallLocked(writes, commit_ts_);
      db_->oracle().Finish(commit_ts_);
      commit_ts_ = 0;
      return proposed;
    }
  }
  absl::Status outcome = commit->Wait();
  if (!outcome.ok()) {
    commit_ts_ = 0;
    return outcome;
  }
  db_->two_phase().SetOutcome(id_, Database::Outcome::kCommitted);
  db_->oracle().WaitVisible(commit_ts_);  // read-your-commits, as CommitOnePhase
  return absl::OkStatus();
}

}  // namespace shardtx::txn

namespace shardtx::txn {

TransactionImpl::TransactionImpl(TransactionImpl* from)
    : db_(from->db_),
      options_(from->options_),
      id_(from->id_),
      snapshot_(from->snapshot_),
      writes_(std::move(from->writes_)),
      write_bytes_(from->write_bytes_),
      first_shard_(from->first_shard_),
      several_shards_(from->several_shards_),
      views_(std::move(from->views_)),
      live_(std::exchange(from->live_, false)),
      reads_(std::move(from->reads_)),
      ranges_(std::move(from->ranges_)),
      read_stamps_(std::move(from->read_stamps_)) {
  from->writes_.clear();
  from->views_.clear();
}

void TransactionImpl::NoteWrittenShard(absl::string_view key) {
  if (db_->num_shards() == 1) return;  // first_shard_ stays 0
  const uint32_t s = db_->partitioner().ShardOf(key);
  if (writes_.size() == 1) {
    first_shard_ = s;
  } else if (s != first_shard_) {
    several_shards_ = true;
  }
}

absl::Status TransactionImpl::CommitAsync(CommitCallback done) {
  RETURN_IF_ERROR(CheckActive());
  auto fail = [&](absl::Status s) {
    state_ = State::kAborted;
    Finish();
    return s;
  };
  if (!done) return fail(absl::InvalidArgumentError("CommitAsync: the callback is empty"));
  AsyncCommits& async = db_->async_commits();
  if (!async.Admit()) return fail(db_->ClosedError());
  // Released on every way out (a throw included) until a commit that releases it takes it.
  AsyncCommits::Slot slot(&async);
  const auto start = std::chrono::steady_clock::now();
  if (ABSL_PREDICT_FALSE(options_.follower_read)) {
    if (!follower_error_.ok()) return fail(follower_error_);  // read-only, nothing to confirm
  } else if (ABSL_PREDICT_FALSE(db_->replicated())) {
    if (!writes_.empty()) return fail(ReplicatedUnimplemented("CommitAsync"));
    // Read-only: the reads are confirmed before `done` runs, on this thread (so this blocks).
    absl::InlinedVector<uint32_t, 4> read = ReplicatedShardsPinned();
    for (auto& v : views_) v.reset();
    if (absl::Status s = ConfirmReplicatedReads(read); !s.ok()) return fail(s);
  }
  for (auto& v : views_) v.reset();  // release LMDB readers early
  if (writes_.empty()) {
    state_ = State::kCommitted;
    db_->counters().read_only_commits++;
    Finish();
    // This thread holds a slot while `done` runs: a CommitAsync in `done` must not wait for it.
    AsyncCommits::CallbackScope callback_thread;
    CommitCallback d = std::move(done);  // its captures go before the slot
    d(absl::OkStatus());
    return absl::OkStatus();
  }
  if (WritesSeveralShards()) {
    // The blocking two-phase commit, on a pool thread, of a copy: the caller may destroy
    // this Transaction as soon as this returns.
    std::unique_ptr<TransactionImpl> copy(new TransactionImpl(this));
    state_ = State::kCommitted;
    db_->counters().async_commits++;
    Finish();
    async.RunOnPool([copy = copy.get(), done = std::move(done), &async]() mutable {
      std::unique_ptr<TransactionImpl> owned(copy);
      absl::Status s = owned->Commit();
      owned.reset();
      {
        CommitCallback d = std::move(done);  // its captures go before the slot
        d(s);
      }
      async.Release();
    });
    copy.release();  // the task owns it now
    slot.HandOver();
    return absl::OkStatus();
  }
  absl::StatusOr<CommitPlan> plan = MakePlan();
  if (!plan.ok()) return fail(plan.status());
  std::unique_ptr<AsyncCommit> commit = async.NewCommit();
  commit->done = std::move(done);
  commit->txn_id = id_;
  commit->start = start;
  absl::Status s = CommitOnePhaseAsync(*plan, std::move(commit));
  if (!s.ok()) return fail(s);
  // The commit's callback releases the slot (it may have already).
  slot.HandOver();
  return absl::OkStatus();  // `this` may be gone already: the callback may have destroyed it
}

absl::Status TransactionImpl::CommitOnePhaseAsync(CommitPlan& plan,
                                                  std::unique_ptr<AsyncCommit> commit) {
  DatabaseImpl* const db = db_;  // `this` may be destroyed once the commit is handed over
  const uint32_t shard = plan.parts.front();
  std::vector<engine::Write>& writes = plan.by_shard[shard];
  engine::Shard* s = db->shard(shard);
  const bool sync = options_.durability == Durability::kSync;
  // A durable commit is synced by the log's flusher as promptly as an async one: nobody
  // waits in WaitDurable to write it.
  const engine::Durability durability =
      sync ? engine::Durability::kAsync : ToEngine(options_.durability);
  const bool early = sync && KillPoints::DeliberateBug("async_complete_before_fsync");
  s->WaitForSpace();
  std::string record = engine::EncodeCommit(/*commit_ts=*/0, id_, writes);
  // The keys to take the commit back by if its log fails: copied here, before anything is
  // done that a throw would have to undo.
  if (sync && !early) commit->keys.Assign(writes);
  {
    ShardLocks locks(db, plan.involved);
    s->commit_mu()->AssertHeld();
    RETURN_IF_ERROR(ValidateLocked(plan));
    const engine::Timestamp ts = db->oracle().Assign();
    // Should anything below throw (an allocation) before the commit is handed over, it is
    // taken back here: a timestamp never finished would stop visible_ts for good.
    bool installed = false, finished = false;
    absl::Cleanup take_back = [&] {
      if (commit == nullptr || finished) return;  // handed over, or visible already
      // `take_back` goes before `locks`.
      s->commit_mu()->AssertHeld();
      if (installed) s->UninstallLocked(writes, ts);
      db->oracle().Finish(ts);
    };
    engine::SetCommitTs(&record, ts);
    auto appended = s->AppendLocked(engine::kCommit, record, durability);
    if (!appended.ok()) {
      db->counters().aborts_io_error++;
      return appended.status();  // nothing installed: take_back finishes the timestamp
    }
    installed = true;
    s->InstallLocked(&writes, ts);  // the transaction is done with the values
    commit->shard = shard;
    commit->ts = ts;
    commit_ts_ = ts;
    state_ = State::kCommitted;
    db->counters().async_commits++;
    Finish();
    if (sync && !early) {
      db->durable_commits().AddAsync(*appended, commit);  // may complete at once
    } else {
      // kAsync or kNone: no fsync to wait for (or the deliberate bug: complete before it).
      // Visible now, durable soon (async) or later (none); delivered under the commit lock,
      // so that one shard's commits of one durability are delivered in commit order.
      db->oracle().Finish(ts);
      finished = true;
      AsyncBatch batch;
      batch.push_back(std::move(commit));
      db->async_commits().Deliver(std::move(batch));
    }
  }
  SHARDTX_KILL_POINT("commit.after_wal_append");
  return absl::OkStatus();
}

}  // namespace shardtx::txn
