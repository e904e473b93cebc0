#include "txn/database_impl.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "txn/transaction_impl.h"
#include "util/kill_point.h"
#include "util/status_macros.h"

namespace shardtx {

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const Options& options) {
  return txn::DatabaseImpl::Open(options);
}

namespace txn {

SHARDTX_DEFINE_KILL_POINT(resolve_in_doubt, "recovery.resolve_in_doubt");
SHARDTX_DEFINE_KILL_POINT(after_decision, "2pc.after_decision");
SHARDTX_DEFINE_KILL_POINT(after_some_commits, "2pc.after_some_commits");

namespace {

constexpr char kManifest[] = "SHARDTX";
constexpr char kLockFile[] = "LOCK";
constexpr uint32_t kFormatVersion = 1;
constexpr uint32_t kMaxShards = 1024;

std::string ShardDir(const std::string& path, uint32_t i) {
  return absl::StrFormat("%s/shard-%03d", path, i);
}

absl::StatusOr<std::string> ReadSmallFile(Env* env, const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<File> f, env->OpenFile(path, Env::OpenMode::kRead));
  ASSIGN_OR_RETURN(uint64_t size, f->Size());
  if (size > 4096) return absl::DataLossError(absl::StrCat(path, ": unexpectedly large"));
  std::string data(size, '\0');
  ASSIGN_OR_RETURN(size_t got, f->Read(0, size, data.data()));
  data.resize(got);
  return data;
}

// Writes a small file atomically: temp file, fsync, rename, fsync of the directory.
absl::Status WriteFileAtomically(Env* env, const std::string& dir, const std::string& name,
                                 const std::string& data) {
  const std::string tmp = dir + "/" + name + ".tmp";
  {
    ASSIGN_OR_RETURN(std::unique_ptr<File> f, env->OpenFile(tmp, Env::OpenMode::kCreate));
    RETURN_IF_ERROR(f->Write(0, data));
    RETURN_IF_ERROR(f->Sync());
  }
  RETURN_IF_ERROR(env->RenameFile(tmp, dir + "/" + name));
  return env->SyncDir(dir);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Database>> DatabaseImpl::Open(const Options& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("Options.path is empty");
  if (options.num_shards > kMaxShards) {
    return absl::InvalidArgumentError(
        absl::StrCat("Options.num_shards ", options.num_shards, " exceeds ", kMaxShards));
  }
  if (options.overlay_limit_bytes != 0 &&
      options.overlay_limit_bytes < options.checkpoint_overlay_bytes) {
    return absl::InvalidArgumentError(
        "Options.overlay_limit_bytes must be >= checkpoint_overlay_bytes");
  }
  if (options.max_txn_bytes == 0 || options.max_txn_bytes > options.wal_segment_size / 2) {
    return absl::InvalidArgumentError(absl::StrCat("Options.max_txn_bytes ", options.max_txn_bytes,
                                                   " must be in [1, wal_segment_size / 2]"));
  }
  // Written so that NaN fails too.
  if (!(options.checkpoint_pace >= 0 && options.checkpoint_pace <= 100)) {
    return absl::InvalidArgumentError(absl::StrCat("Options.checkpoint_pace ",
                                                   options.checkpoint_pace, " must be in [0, 100]"));
  }
  std::unique_ptr<DatabaseImpl> db(new DatabaseImpl(options));
  db->env_ = options.env != nullptr ? options.env : Env::Default();
  absl::Status s = db->OpenDirectory();
  if (s.ok()) s = db->OpenShards();
  if (!s.ok()) {
    // Release what was opened as it is: a checkpoint or a truncation now could act on a
    // half-recovered state (and would wait for commits that recovery never finished).
    db->Release(/*checkpoint=*/false).IgnoreError();
    return s;
  }
  return std::unique_ptr<Database>(std::move(db));
}

absl::Status DatabaseImpl::OpenDirectory() {
  const std::string& path = options_.path;
  absl::Status exists = env_->FileExists(path);
  if (absl::IsNotFound(exists)) {
    if (!options_.create_if_missing) {
      return absl::NotFoundError(absl::StrCat("database ", path, " does not exist"));
    }
  } else if (!exists.ok()) {
    return exists;
  }
  // The directory's own entry must be durable before anything in it counts.
  absl::Status mk = CreateDirDurably(env_, path);
  if (!mk.ok()) {
    return absl::Status(mk.code(),
                        absl::StrCat("cannot create database directory: ", mk.message()));
  }

  ASSIGN_OR_RETURN(std::vector<std::string> names, env_->ListDir(path));
  const bool has_manifest = std::find(names.begin(), names.end(), kManifest) != names.end();
  if (!has_manifest) {
    for (const std::string& n : names) {
      if (n != kLockFile && n != std::string(kManifest) + ".tmp") {
        return absl::FailedPreconditionError(
            absl::StrCat(path, " holds something other than a shardtx database (found '", n, "')"));
      }
    }
  }
  // The lock comes before anything is written, so a second opener changes nothing.
  auto lock = env_->LockFile(path + "/" + kLockFile);
  if (!lock.ok()) {
    if (absl::IsPermissionDenied(lock.status())) {
      return absl::PermissionDeniedError(
          absl::StrCat("database directory ", path, " is not writable: ", lock.status().message()));
    }
    return lock.status();
  }
  lock_ = std::move(*lock);

  uint32_t shards = options_.num_shards == 0 ? 1 : options_.num_shards;
  if (has_manifest) {
    ASSIGN_OR_RETURN(std::string m, ReadSmallFile(env_, path + "/" + kManifest));
    uint32_t version = 0, recorded = 0;
    std::string partitioning = "hash";
    for (absl::string_view line : absl::StrSplit(m, '\n', absl::SkipEmpty())) {
      std::vector<absl::string_view> kv = absl::StrSplit(line, absl::MaxSplits(' ', 1));
      if (kv.size() != 2) continue;
      if (kv[0] == "format") (void)absl::SimpleAtoi(kv[1], &version);
      if (kv[0] == "shards") (void)absl::SimpleAtoi(kv[1], &recorded);
      if (kv[0] == "partitioning") partitioning = std::string(kv[1]);
    }
    if (version == 0 || recorded == 0 || recorded > kMaxShards) {
      return absl::DataLossError(absl::StrCat(path, "/", kManifest, " is corrupt"));
    }
    if (version > kFormatVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          path, " has format version ", version, ", newer than this build's ", kFormatVersion));
    }
    if (options_.num_shards != 0 && options_.num_shards != recorded) {
      return absl::InvalidArgumentError(absl::StrCat(path, " was created with ", recorded,
                                                     " shards; Options.num_shards is ",
                                                     options_.num_shards));
    }
    shards = recorded;
    if (Partitioner::Describe(options_) != partitioning) {
      return absl::InvalidArgumentError(absl::StrCat(path, " was created with partitioning '",
                                                     partitioning, "'; the options say '",
                                                     Partitioner::Describe(options_), "'"));
    }
    RETURN_IF_ERROR(Partitioner::Validate(options_, shards));
  } else {
    RETURN_IF_ERROR(Partitioner::Validate(options_, shards));
    RETURN_IF_ERROR(WriteFileAtomically(
        env_, path, kManifest,
        absl::StrCat("format ", kFormatVersion, "\nshards ", shards, "\npartitioning ",
                     Partitioner::Describe(options_), "\n")));
  }
  options_.num_shards = shards;
  return absl::OkStatus();
}

absl::Status DatabaseImpl::OpenShards() {
  partitioner_ = std::make_unique<Partitioner>(options_, options_.num_shards);
  two_phase_ = std::make_unique<TwoPhaseState>(options_.num_shards);
  {
    std::random_device rd;
    txn_id_base_ = ((static_cast<uint64_t>(rd()) << 32) ^ rd()) & ~uint64_t{0xFFFFFFFF};
  }
  // Recover every shard before any checkpoint can run (the hooks need the oracle).
  oracle_ = std::make_unique<TimestampOracle>(0);
  // Before any WAL exists: its flusher reports durable LSNs here (nothing is queued until the
  // database is open, so the recovery-time oracle above is never touched from there).
  for (uint32_t i = 0; i < options_.num_shards; ++i) {
    commit_queues_.push_back(std::make_unique<CommitQueue>());
  }
  engine::Timestamp max_ts = 0;
  for (uint32_t i = 0; i < options_.num_shards; ++i) {
    engine::ShardOptions so;
    so.dir = ShardDir(options_.path, i);
    so.env = env_;
    so.wal.segment_size = options_.wal_segment_size;
    so.wal.max_record_size = options_.max_txn_bytes + 1024;
    so.store.initial_map_size = options_.lmdb_map_size;
    so.store.max_readers = options_.max_open_transactions;
    so.checkpoint_wal_bytes = options_.checkpoint_wal_bytes;
    so.checkpoint_overlay_bytes = options_.checkpoint_overlay_bytes;
    so.store.checkpoint_chunk_bytes = options_.checkpoint_txn_bytes;
    so.overlay_limit_bytes = options_.overlay_limit_bytes;
    so.checkpoint_interval = options_.checkpoint_interval;
    so.checkpointed_deletes_bytes = options_.checkpointed_deletes_bytes;
    so.checkpoint_pace = options_.checkpoint_pace;
    ASSIGN_OR_RETURN(std::unique_ptr<engine::Shard> shard, engine::Shard::Open(i, so, this));
    max_ts = std::max(max_ts, shard->recovered_max_ts());
    shards_.push_back(std::move(shard));
  }
  for (const auto& [id, d] : recovered_decisions_) max_ts = std::max(max_ts, d.commit_ts);
  oracle_ = std::make_unique<TimestampOracle>(max_ts);
  RETURN_IF_ERROR(ResolveInDoubt());
  for (auto& s : shards_) s->StartBackground();
  return absl::OkStatus();
}

absl::Status DatabaseImpl::ResolveInDoubt() {
  for (const TwoPhaseState::PreparedInfo& p : two_phase_->AllPrepared()) {
    SHARDTX_KILL_POINT("recovery.resolve_in_doubt");
    auto d = recovered_decisions_.find(p.txn_id);
    if (d != recovered_decisions_.end() && d->second.commit) {
      engine::Timestamp ts = d->second.commit_ts;
      if (ts == 0) {
        auto c = recovered_commit_ts_.find(p.txn_id);  // some participant committed already
        if (c != recovered_commit_ts_.end()) ts = c->second;
      }
      ASSIGN_OR_RETURN(engine::Timestamp done, CommitDecided(p.txn_id, p.shards, ts, !p.name.empty()));
      (void)done;
      counters_.recovered_commits++;
    } else if (p.name.empty() || p.shards != p.participants) {
      // Presumed abort; and a named Prepare that died before every participant's part was
      // durable was never acknowledged (nor was a rollback that died half-way).
      RETURN_IF_ERROR(AbortPrepared(p.txn_id, p.shards, false));
      counters_.recovered_aborts++;
    } else {
      // Named, complete and undecided: stays prepared, its locks held, until the host decides.
      two_phase_->MarkPrepared(p.txn_id);
    }
  }
  recovered_decisions_.clear();
  recovered_commit_ts_.clear();
  // Make the resolutions durable now, so no decision needs remembering.
  for (auto& s : shards_) RETURN_IF_ERROR(s->SyncWal());
  return absl::OkStatus();
}

absl::StatusOr<engine::Timestamp> DatabaseImpl::CommitDecided(uint64_t txn_id,
                                                              const std::vector<uint32_t>& parts,
                                                              engine::Timestamp commit_ts,
                                                              bool named) {
  const auto t0 = std::chrono::steady_clock::now();
  const uint32_t coordinator = parts.front();
  // The decision is logged even when recovery finishes a commit whose decision is on record
  // already: it is idempotent, and cheaper than telling the cases apart.
  if (parts.size() > 1 && !KillPoints::DeliberateBug("skip_decision_record")) {
    engine::Shard* c = shards_[coordinator].get();
    absl::StatusOr<engine::Lsn> lsn;
    {
      MutexLock l(c->commit_mu());
      DecisionRecord d{txn_id, true, commit_ts, parts};
      lsn = c->AppendLocked(engine::kDecision, EncodeDecision(d), wal::Durability::kSync);
      if (lsn.ok()) two_phase_->AddDecision(txn_id, coordinator, *lsn, parts.size());
    }
    // A timestamp taken before the decision (serializable) must be finished on every exit, or
    // visible_ts would never pass it (nothing is installed under it here).
    if (!lsn.ok()) {
      // No decision on record. Our own transaction is aborted (presumed abort; the abort
      // records go with the next batches of the shards that can still write). A host's named
      // one stays prepared for the host to decide again after reopening.
      if (!named) AbortPrepared(txn_id, parts, false).IgnoreError();
      if (commit_ts != 0) oracle_->Finish(commit_ts);
      return lsn.status();
    }
    if (absl::Status d = c->WaitDurable(*lsn); !d.ok()) {  // the commit point
      // The decision may or may not be on disk: the transaction stays prepared, its locks
      // held, and its outcome is known only after the database is reopened.
      if (commit_ts != 0) oracle_->Finish(commit_ts);
      return d;
    }
  }
  SHARDTX_KILL_POINT("2pc.after_decision");
  const auto t1 = std::chrono::steady_clock::now();
  const bool fresh_ts = commit_ts == 0;
  if (fresh_ts) commit_ts = oracle_->Assign();
  // A single participant's commit record is the commit point itself: it must be synced.
  // Otherwise the decision is: the commit records go with the next batch of their shards.
  const wal::Durability durability =
      parts.size() > 1 ? wal::Durability::kDeferred : wal::Durability::kSync;
  engine::Lsn single_lsn = 0;
  std::vector<engine::Write> single_writes;  // keys only, to take back a failed commit point
  std::optional<TwoPhaseState::SavedPart> single_saved;
  absl::Status status;
  for (size_t i = 0; i < parts.size(); ++i) {
    engine::Shard* s = shards_[parts[i]].get();
    MutexLock l(s->commit_mu());
    // A single participant's commit record is its commit point: should it fail, the part is
    // put back as it was (still prepared on disk). Resolving it here, with the install, keeps
    // a checkpoint's freeze from seeing the writes installed and the part still prepared.
    if (parts.size() == 1) single_saved = two_phase_->SavePart(txn_id, parts[i]);
    std::optional<std::vector<engine::Write>> writes = two_phase_->ResolvePart(txn_id, parts[i]);
    if (!writes.has_value()) continue;  // resolved before (recovery after a partial phase 2)
    auto lsn = s->AppendLocked(engine::kCommitPrepared, EncodeTxnTs(txn_id, commit_ts), durability);
    if (lsn.ok()) {
      two_phase_->AddCommitLsn(txn_id, parts[i], *lsn);
      single_lsn = *lsn;
    } else if (parts.size() == 1) {
      status = lsn.status();  // the commit point itself failed: nothing to install
      if (single_saved.has_value()) two_phase_->RestorePart(txn_id, parts[i], *single_saved);
      break;
    } else if (status.ok()) {
      status = lsn.status();  // decided all the same: recovery finishes it from the decision
    }
    s->InstallLocked(&*writes, commit_ts);  // the part is resolved: its writes are ours
    if (parts.size() == 1) single_writes = std::move(*writes);
    if (i == 0) SHARDTX_KILL_POINT("2pc.after_some_commits");
  }
  if (parts.size() == 1 && single_lsn != 0) {
    engine::Shard* s = shards_[parts[0]].get();
    if (status.ok()) status = s->WaitDurable(single_lsn);
    if (!status.ok()) {
      // The commit record is the commit point and its fsync failed: nobody has seen the
      // versions (visible_ts is below commit_ts); take them back, and the part is prepared
      // again. Its outcome is known only after the database is reopened.
      MutexLock l(s->commit_mu());
      s->UninstallLocked(single_writes, commit_ts);
      if (single_saved.has_value()) two_phase_->RestorePart(txn_id, parts[0], *single_saved);
    }
  }
  oracle_->Finish(commit_ts);  // a no-op for a timestamp recovery found visible already
  if (parts.size() == 1 && !status.ok()) return status;
  oracle_->WaitVisible(commit_ts);
  two_phase_->SetOutcome(txn_id, Outcome::kCommitted);
  const auto t2 = std::chrono::steady_clock::now();
  counters_.decision_us.Add(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count()));
  counters_.phase2_us.Add(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(t2 - t1).count()));
  return commit_ts;
}

absl::Status DatabaseImpl::AbortPrepared(uint64_t txn_id, const std::vector<uint32_t>& parts,
                                         bool sync) {
  absl::Status status;
  std::vector<std::pair<engine::Shard*, engine::Lsn>> waits;
  for (uint32_t p : parts) {
    engine::Shard* s = shards_[p].get();
    MutexLock l(s->commit_mu());
    if (!two_phase_->ResolvePart(txn_id, p).has_value()) continue;
    auto lsn = s->AppendLocked(engine::kAbortPrepared, EncodeTxn(txn_id),
                               sync ? wal::Durability::kAsync : wal::Durability::kDeferred);
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
  two_phase_->SetOutcome(txn_id, Outcome::kAborted);
  return status;
}

absl::StatusOr<std::vector<std::string>> DatabaseImpl::ListPrepared() {
  if (gate_.closed()) return ClosedError();
  return two_phase_->Names();
}

absl::Status DatabaseImpl::CommitPrepared(const std::string& name) {
  OpGuard op(&gate_);
  if (!op.admitted()) return ClosedError();
  ASSIGN_OR_RETURN(TwoPhaseState::PreparedInfo p, two_phase_->Claim(name, /*commit=*/true));
  auto ts = CommitDecided(p.txn_id, p.shards, 0, /*named=*/true);
  if (!ts.ok()) {
    two_phase_->MarkInDoubt(p.txn_id);  // if any of it is still prepared
    return ts.status();
  }
  counters_.commits++;
  if (p.shards.size() > 1) counters_.cross_shard_commits++;
  return absl::OkStatus();
}

absl::Status DatabaseImpl::RollbackPrepared(const std::string& name) {
  OpGuard op(&gate_);
  if (!op.admitted()) return ClosedError();
  ASSIGN_OR_RETURN(TwoPhaseState::PreparedInfo p, two_phase_->Claim(name, /*commit=*/false));
  counters_.rollbacks++;
  absl::Status s = AbortPrepared(p.txn_id, p.shards, true);
  if (!s.ok()) two_phase_->MarkInDoubt(p.txn_id);  // if any of it is still prepared
  return s;
}

Database::Outcome DatabaseImpl::GetOutcome(uint64_t id) { return two_phase_->GetOutcome(id); }

DatabaseImpl::~DatabaseImpl() {
  Close().IgnoreError();
  MutexLock l(&shards_mu_);
  shards_.clear();  // before the directory lock (declared first, so destroyed last)
}

absl::Status DatabaseImpl::Close() { return Release(options_.checkpoint_on_close); }

absl::Status DatabaseImpl::Release(bool checkpoint) {
  MutexLock close(&close_mu_);  // a second Close returns once the first is done
  if (!gate_.CloseAndDrain()) return absl::OkStatus();
  absl::Status result;
  for (auto& s : shards_) {
    absl::Status st = s->Close(checkpoint);
    if (result.ok()) result = st;
  }
  // Transactions still open may hold read views of the shards: then the shards (and the
  // directory lock) stay until the Database is destroyed.
  if (live_txns_.load(std::memory_order_seq_cst) == 0) {
    MutexLock l(&shards_mu_);
    shards_.clear();
    lock_.reset();
  }
  return result;
}

absl::Status DatabaseImpl::ClosedError() {
  return absl::FailedPreconditionError(absl::StrCat("database ", options_.path, " is closed"));
}

std::unique_ptr<Transaction> DatabaseImpl::Begin(const TxnOptions& options) {
  return std::make_unique<TransactionImpl>(this, options);
}

absl::Status DatabaseImpl::Checkpoint() {
  OpGuard op(&gate_);
  if (!op.admitted()) return ClosedError();
  absl::Status result;
  for (auto& s : shards_) {
    absl::Status st = s->Checkpoint();
    if (result.ok()) result = st;
  }
  return result;
}

void DatabaseImpl::RegisterDurableCommit(uint32_t shard, engine::Lsn lsn, engine::Timestamp ts) {
  CommitQueue& q = *commit_queues_[shard];
  MutexLock l(&q.mu);
  q.pending.emplace_back(lsn, ts);
}

void DatabaseImpl::Durable(uint32_t shard, engine::Lsn durable) {
  CommitQueue& q = *commit_queues_[shard];
  std::vector<engine::Timestamp> done;
  {
    MutexLock l(&q.mu);
    while (!q.pending.empty() && q.pending.front().first <= durable) {
      done.push_back(q.pending.front().second);
      q.pending.pop_front();
    }
  }
  if (!done.empty()) oracle_->FinishMany(done);
}

absl::Status DatabaseImpl::WaitVisible(engine::Timestamp ts) {
  oracle_->WaitVisible(ts);
  return absl::OkStatus();
}

absl::Status DatabaseImpl::LoadPrepared(
    uint32_t shard, const std::vector<std::pair<std::string, std::string>>& rows) {
  for (const auto& [key, value] : rows) {
    PrepareRecord r;
    if (!DecodePrepare(value, &r)) {
      return absl::DataLossError(
          absl::StrCat("shard ", shard, ": corrupt row in the prepared-transactions table"));
    }
    two_phase_->AddPart(r.txn_id, r.name, r.snapshot_ts, r.participants, shard, 0,
                        std::move(r.writes), true);
    AddRecoveredReadLocks(r);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<engine::ShardHooks::RedoInstall>> DatabaseImpl::Redo(
    uint32_t shard, engine::Lsn lsn, bool applied, uint8_t type, absl::string_view payload) {
  using Install = std::optional<engine::ShardHooks::RedoInstall>;
  auto corrupt = [&](absl::string_view what) {
    return absl::DataLossError(
        absl::StrCat("shard ", shard, ": malformed ", what, " record at LSN ", lsn));
  };
  switch (type) {
    case engine::kCommit: {
      uint64_t ts, id;  // the shard decoded and installed the writes; only the id matters here
      if (!engine::DecodeCommitHeader(payload, &ts, &id)) return corrupt("commit");
      two_phase_->SetOutcome(id, Outcome::kCommitted);
      return Install();
    }
    case engine::kPrepare: {
      PrepareRecord r;
      if (!DecodePrepare(payload, &r)) return corrupt("prepare");
      if (!two_phase_->HasPart(r.txn_id, shard)) {
        two_phase_->AddPart(r.txn_id, r.name, r.snapshot_ts, r.participants, shard, lsn,
                            std::move(r.writes), false);
        AddRecoveredReadLocks(r);
      }
      return Install();
    }
    case engine::kCommitPrepared: {
      uint64_t id, ts;
      if (!DecodeTxnTs(payload, &id, &ts)) return corrupt("commit-prepared");
      recovered_commit_ts_[id] = ts;
      two_phase_->SetOutcome(id, Outcome::kCommitted);
      std::optional<std::vector<engine::Write>> writes = two_phase_->ResolvePart(id, shard);
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
      two_phase_->ResolvePart(id, shard);
      two_phase_->SetOutcome(id, Outcome::kAborted);
      return Install();
    }
    case engine::kDecision: {
      DecisionRecord d;
      if (!DecodeDecision(payload, &d)) return corrupt("decision");
      recovered_decisions_[d.txn_id] = d;
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

void DatabaseImpl::AddRecoveredReadLocks(const PrepareRecord& r) {
  if (r.read_keys.empty() && r.read_ranges.empty()) return;
  std::vector<std::pair<uint32_t, std::string>> keys;
  for (const std::string& k : r.read_keys) keys.emplace_back(partitioner_->ShardOf(k), k);
  two_phase_->AddReadLocks(r.txn_id, std::move(keys), r.read_ranges);
}

std::vector<engine::ShardStore::TableWrite> DatabaseImpl::CheckpointTables(uint32_t shard) {
  return two_phase_->CheckpointTables(shard);
}

void DatabaseImpl::CheckpointCommitted(uint32_t shard) { two_phase_->CheckpointCommitted(shard); }

engine::Lsn DatabaseImpl::PinnedLsn(uint32_t shard) {
  return two_phase_->PinnedLsn(shard, [this](uint32_t s) { return shards_[s]->durable_lsn(); });
}

Stats DatabaseImpl::GetStats() {
  Stats s;
  s.commits = counters_.commits.load();
  s.read_only_commits = counters_.read_only_commits.load();
  s.cross_shard_commits = counters_.cross_shard_commits.load();
  s.rollbacks = counters_.rollbacks.load();
  s.aborts_write_conflict = counters_.aborts_write_conflict.load();
  s.aborts_read_validation = counters_.aborts_read_validation.load();
  s.aborts_snapshot_too_old = counters_.aborts_snapshot_too_old.load();
  s.aborts_locked = counters_.aborts_locked.load();
  s.aborts_too_large = counters_.aborts_too_large.load();
  s.aborts_io_error = counters_.aborts_io_error.load();
  s.commit_latency_us = counters_.commit_latency_us.Summary();
  s.in_doubt = two_phase_->InDoubt();
  s.recovered_commits = counters_.recovered_commits.load();
  s.recovered_aborts = counters_.recovered_aborts.load();
  s.prepare_us = counters_.prepare_us.Summary();
  s.decision_us = counters_.decision_us.Summary();
  s.phase2_us = counters_.phase2_us.Summary();
  uint64_t synced_records = 0;
  MutexLock l(&shards_mu_);  // Close may clear shards_ meanwhile
  for (auto& shard : shards_) {
    engine::ShardStats st = shard->Stats();
    ShardStatsView v;
    v.shard = shard->id();
    v.wal_appends = st.wal.appends;
    v.wal_bytes = st.wal.bytes;
    v.wal_fsyncs = st.wal.fsyncs;
    v.wal_records_per_fsync = st.wal.records_per_fsync;
    v.wal_max_records_per_fsync = st.wal.max_records_per_fsync;
    v.wal_inline_syncs = st.wal.inline_syncs;
    v.wal_unsynced_bytes = st.wal.unsynced_bytes;
    v.wal_fsync_latency_us = st.wal.fsync_latency_us;
    v.wal_segments_created = st.wal.segments_created;
    v.wal_segments_recycled = st.wal.segments_recycled;
    v.checkpoints = st.checkpoints;
    v.checkpoint_bytes = st.checkpoint_bytes;
    v.checkpoint_txns = st.checkpoint_txns;
    v.checkpoint_ms = st.checkpoint_ms;
    v.overlay_bytes = st.overlay_bytes;
    v.backpressure_waits = st.backpressure_waits;
    v.checkpoint_pauses = st.checkpoint_pauses;
    v.checkpoint_paused_ms = st.checkpoint_paused_ms;
    v.validation_lmdb_reads = st.validation_lmdb_reads;
    v.applied_lsn = st.applied_lsn;
    v.durable_lsn = st.wal.durable_lsn;
    v.lmdb_map_size = st.lmdb_map_size;
    v.lmdb_map_growths = st.lmdb_map_growths;
    v.recovery_records = st.recovery.records;
    v.recovery_bytes = st.recovery.bytes;
    v.recovery_ms = st.recovery.millis;
    v.recovery_torn_tail = st.recovery.torn_tail;
    s.fsyncs += v.wal_fsyncs;
    synced_records += static_cast<uint64_t>(v.wal_records_per_fsync * v.wal_fsyncs);
    s.checkpoints += v.checkpoints;
    s.checkpoint_bytes += v.checkpoint_bytes;
    s.overlay_bytes += v.overlay_bytes;
    s.wal_bytes += v.wal_bytes;
    s.recovery_records += v.recovery_records;
    s.recovery_bytes += v.recovery_bytes;
    s.recovery_ms = std::max(s.recovery_ms, v.recovery_ms);
    s.shards.push_back(std::move(v));
  }
  s.records_per_fsync = s.fsyncs == 0 ? 0 : static_cast<double>(synced_records) / s.fsyncs;
  return s;
}

}  // namespace txn

std::string Stats::ToString() const {
  std::string out = absl::StrFormat(
      "commits: %d (read-only %d, cross-shard %d), rollbacks %d\n"
      "aborts: write-conflict %d, read-validation %d, snapshot-too-old %d, locked %d, "
      "too-large %d, io-error %d\n"
      "in-doubt: %d (recovery committed %d, aborted %d)\ncommit latency us: %s\n"
      "2pc us: prepare %s | decision %s | phase 2 %s\n"
      "wal: %d bytes, %d fsyncs, %.1f records/fsync\n"
      "checkpoints: %d, %d bytes; overlay %d bytes\n"
      "recovery: %d records, %d bytes, %.1f ms\n",
      commits, read_only_commits, cross_shard_commits, rollbacks, aborts_write_conflict,
      aborts_read_validation, aborts_snapshot_too_old, aborts_locked, aborts_too_large,
      aborts_io_error, in_doubt, recovered_commits, recovered_aborts, commit_latency_us, prepare_us,
      decision_us, phase2_us, wal_bytes, fsyncs, records_per_fsync, checkpoints, checkpoint_bytes,
      overlay_bytes, recovery_records, recovery_bytes, recovery_ms);
  for (const ShardStatsView& s : shards) {
    absl::StrAppendFormat(
        &out,
        "shard %d: wal appends %d bytes %d fsyncs %d (%.1f rec/fsync, max %d, inline %d) "
        "unsynced %d segments created %d recycled %d; fsync us %s; "
        "checkpoints %d (%d bytes, %d LMDB txns, ms %s, paused %d times %d ms); "
        "overlay %d bytes; "
        "backpressure waits %d; validation LMDB reads %d; applied LSN %d durable LSN %d; "
        "lmdb map %d (grown %d); recovery %d records %d bytes %.1f ms%s\n",
        s.shard, s.wal_appends, s.wal_bytes, s.wal_fsyncs, s.wal_records_per_fsync,
        s.wal_max_records_per_fsync, s.wal_inline_syncs, s.wal_unsynced_bytes,
        s.wal_segments_created, s.wal_segments_recycled, s.wal_fsync_latency_us, s.checkpoints,
        s.checkpoint_bytes, s.checkpoint_txns, s.checkpoint_ms, s.checkpoint_pauses,
        s.checkpoint_paused_ms, s.overlay_bytes,
        s.backpressure_waits, s.validation_lmdb_reads, s.applied_lsn, s.durable_lsn,
        s.lmdb_map_size, s.lmdb_map_growths, s.recovery_records, s.recovery_bytes, s.recovery_ms,
        s.recovery_torn_tail ? " (torn tail cut)" : "");
  }
  return out;
}

}  // namespace shardtx
