#include "txn/database_impl.h"

#include "absl/strings/str_cat.h"
#include "txn/db_options.h"
#include "txn/replicated_outcome.h"
#include "txn/transaction_impl.h"
#include "util/kill_point.h"
#include "util/status_macros.h"
#include "wal/reader.h"
#include "wal/writer.h"

namespace shardtx {

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const Options& options) {
  return txn::DatabaseImpl::Open(options);
}

namespace txn {

absl::StatusOr<std::unique_ptr<Database>> DatabaseImpl::Open(const Options& options) {
  RETURN_IF_ERROR(ValidateOptions(options));
  // A replicated database is created with a log per shard: a replica that installs a snapshot
  // swaps its shard's directory, log included, for a copy of another replica's (the Raft log,
  // not the shard's, is what a commit waits for, so one shared fsync gains nothing there).
  Options chosen = options;
  if (options.replication.enabled()) chosen.log_layout = Options::LogLayout::kPerShard;
  std::unique_ptr<DatabaseImpl> db(new DatabaseImpl(chosen));
  db->async_commits_ = std::make_unique<AsyncCommits>(db.get(), options.max_async_commits);
  db->env_ = options.env != nullptr ? options.env : Env::Default();
  auto directory = DbDirectory::Open(db->env_, chosen);
  absl::Status s = directory.status();
  if (s.ok()) {
    db->directory_ = std::move(*directory);
    db->options_.num_shards = db->directory_->num_shards();
    db->snapshot_pins_ = std::make_unique<std::atomic<engine::Lsn>[]>(db->options_.num_shards);
    s = db->OpenShards();
  }
  if (s.ok() && options.replication.enabled()) {
    auto replicated = ReplicatedShards::Open(db.get());
    s = replicated.status();
    if (s.ok()) {
      db->incarnation_ = (*replicated)->incarnation();
      DatabaseImpl* d = db.get();
      db->UseReplicatedTxnIds(options.replication.node_id, db->incarnation_,
                              [d](uint64_t incarnation) -> absl::Status {
                                MutexLock l(&d->replication_mu_);
                                if (d->replicated_shards_ == nullptr) return d->ClosedError();
                                return d->replicated_shards_->PersistIncarnation(incarnation);
                              });
      MutexLock l(&db->replication_mu_);
      db->replicated_shards_ = std::move(*replicated);
    }
    if (s.ok() && db->follower_reads_ != nullptr) db->follower_reads_->Start();
  }
  if (!s.ok()) {
    // Release what was opened as it is: a checkpoint or a truncation now could act on a
    // half-recovered state (and would wait for commits that recovery never finished).
    db->Release(/*checkpoint=*/false).IgnoreError();
    return s;
  }
  return std::unique_ptr<Database>(std::move(db));
}

absl::Status DatabaseImpl::OpenShards() {
  const uint32_t n = options_.num_shards;
  partitioner_ = std::make_unique<Partitioner>(options_, n);
  coordinator_ = std::make_unique<Coordinator>(this, n);
  // Before any WAL exists: its flusher reports durable LSNs here (nothing is queued until the
  // database is open).
  durable_commits_ = std::make_unique<DurableCommits>(n, &oracle_, async_commits_.get());
  // Every shard is redone before any checkpoint can run, and before the oracle learns the
  // largest recovered timestamp.
  const bool shared = directory_->shared_log();
  for (uint32_t i = 0; i < n; ++i) {
    engine::ShardOptions so = ShardOptionsFor(options_, env_, directory_->ShardDir(i));
    so.durable_listener = durable_commits_.get();
    so.shared_log = shared;
    ASSIGN_OR_RETURN(std::unique_ptr<engine::Shard> shard, engine::Shard::Open(i, so, this));
    shards_.push_back(std::move(shard));
  }
  if (shared) RETURN_IF_ERROR(RecoverSharedLog());
  engine::Timestamp max_ts = 0;
  for (auto& s : shards_) max_ts = std::max(max_ts, s->recovered_max_ts());
  RETURN_IF_ERROR(directory_->RecordCurrentFormat());
  oracle_.Recovered(std::max(max_ts, coordinator_->RecoveredMaxTs()));
  // A replicated shard (a replicated database's, or one that has applied Raft entries: a test
  // may attach its logs after Open) resolves nothing by itself: its leader does, through Raft.
  std::vector<bool> replica(n);
  for (uint32_t i = 0; i < n; ++i) {
    MutexLock l(shards_[i]->commit_mu());
    replica[i] = options_.replication.enabled() || shards_[i]->raft_applied_locked().index != 0;
  }
  RETURN_IF_ERROR(coordinator_->ResolveInDoubt(replica));
  if (shared) {
    // Until a shard states what it needs, the shared log keeps every record of its: a shard
    // with nothing to redo must not hold the log back until its first checkpoint.
    for (auto& s : shards_) RETURN_IF_ERROR(s->StateLogFloor());
  }
  for (auto& s : shards_) s->StartBackground();
  return absl::OkStatus();
}

absl::Status DatabaseImpl::RecoverSharedLog() {
  const uint32_t n = options_.num_shards;
  const std::string log_dir = directory_->LogDir();
  RETURN_IF_ERROR(CreateDirDurably(env_, log_dir));
  // Every LSN above the largest applied LSN must be there; one at or below it may be another
  // shard's record that was freed (a per-shard demand of applied + 1 could name one). Each
  // shard's records above its own applied LSN are kept by that shard's floor.
  engine::Lsn max_applied = 0;
  for (auto& s : shards_) max_applied = std::max(max_applied, s->applied_lsn());
  wal::ReaderOptions ropts;
  ropts.from_lsn = 0;
  ropts.needed_lsn = max_applied + 1;
  auto reader_or = wal::WalReader::Open(env_, log_dir, ropts);
  if (absl::IsNotFound(reader_or.status())) {
    return absl::DataLossError(absl::StrCat(
        "the shards' stores have applied LSNs up to ", max_applied, " but the shared log ", log_dir,
        " cannot continue them: ", reader_or.status().message()));
  }
  RETURN_IF_ERROR(reader_or.status());
  std::unique_ptr<wal::WalReader> reader = std::move(*reader_or);
  wal::WalRecord rec;
  while (true) {
    ASSIGN_OR_RETURN(bool more, reader->Next(&rec));
    if (!more) break;
    if (rec.stream >= n) {
      return absl::DataLossError(absl::StrCat("shared log ", log_dir, ": record at LSN ", rec.lsn,
                                              " belongs to stream ", rec.stream,
                                              ", but the database has ", n, " shards"));
    }
    RETURN_IF_ERROR(shards_[rec.stream]->RedoRecovered(rec.lsn, rec.type, rec.payload));
  }
  const wal::WalTail& tail = reader->tail();
  if (tail.next_lsn <= max_applied) {
    return absl::DataLossError(absl::StrCat("shared log ", log_dir, " ends at LSN ",
                                            tail.next_lsn - 1,
                                            " but a shard's store has applied LSN ", max_applied));
  }
  // The per-shard layout's point (defined in engine/shard.cc), here before the one log opens.
  SHARDTX_KILL_POINT("recovery.before_wal_open");
  wal::WalOptions wopts;
  wopts.segment_size = options_.wal_segment_size;
  wopts.max_record_size = ShardOptionsFor(options_, env_, "").max_record_size;
  wopts.streams = n;
  DurableCommits* listener = durable_commits_.get();
  wopts.on_durable = [listener](engine::Lsn lsn) { listener->DurableAll(lsn); };
  wopts.on_poisoned = [listener, n](const absl::Status& error) {
    for (uint32_t s = 0; s < n; ++s) listener->Poisoned(s, error);
  };
  ASSIGN_OR_RETURN(shared_log_, wal::WalWriter::Open(env_, log_dir, wopts, tail));
  for (auto& s : shards_) s->AttachSharedLog(shared_log_.get(), tail.next_lsn - 1, tail.torn);
  return absl::OkStatus();
}

DatabaseImpl::~DatabaseImpl() {
  Close().IgnoreError();
  MutexLock l(&shards_mu_);
  shards_.clear();  // before the directory lock (declared first, so destroyed last)
}

absl::Status DatabaseImpl::Close() { return Release(options_.checkpoint_on_close); }

absl::Status DatabaseImpl::Release(bool checkpoint) {
  MutexLock close(&close_mu_);  // a second Close returns once the first is done
  // Every accepted CommitAsync completes first: its commit needs the shards (and, when it
  // writes several, the gate below).
  if (async_commits_ != nullptr) async_commits_->Drain();
  // Raft stops before the gate drains: a commit waiting for its entry's outcome is answered
  // (kUnknown) instead of holding Close; one arriving meanwhile is refused (kUnavailable).
  if (follower_reads_ != nullptr) follower_reads_->Stop();  // it proposes no more
  {
    MutexLock l(&replication_mu_);
    if (replicated_shards_ != nullptr) replicated_shards_->Stop();
  }
  if (!gate_.CloseAndDrain()) return absl::OkStatus();
  // No commit runs now: the groups (and their replicas) go before the shards close.
  {
    MutexLock l(&replication_mu_);
    if (replicated_shards_ != nullptr) {
      replicated_shards_.reset();
      DetachReplicatedLogs();
    }
  }
  absl::Status result;
  for (auto& s : shards_) {
    absl::Status st = s->Close(checkpoint);
    if (result.ok()) result = st;
  }
  // The shared log after every shard's last checkpoint and truncation. (Kept, closed, until
  // the shards that point at it are gone.)
  if (shared_log_ != nullptr) {
    absl::Status st = shared_log_->Close();
    if (result.ok()) result = st;
  }
  // Transactions still open may hold read views of the shards: then the shards (and the
  // directory lock) stay until the Database is destroyed.
  if (live_txns_.load(std::memory_order_seq_cst) == 0) {
    MutexLock l(&shards_mu_);
    shards_.clear();
    if (directory_ != nullptr) directory_->Unlock();
  }
  return result;
}

void DatabaseImpl::AttachReplicatedLog(uint32_t shard, engine::ReplicatedLog* log) {
  if (replicated_logs_.empty()) replicated_logs_.assign(options_.num_shards, nullptr);
  replicated_logs_[shard] = log;
  log->SetListener(&replica_listener_);
  replicated_ = true;
  if (follower_reads_ == nullptr) {
    follower_reads_ = std::make_unique<FollowerReads>(this, options_.replication.heartbeat,
                                                      options_.replication.closed_ts_refresh);
  }
}

void DatabaseImpl::DetachReplicatedLogs() {
  for (auto& log : replicated_logs_) log = nullptr;
}

std::vector<Database::ShardLeadership> DatabaseImpl::Leadership() {
  MutexLock l(&replication_mu_);
  if (replicated_shards_ == nullptr) return {};
  return replicated_shards_->Leadership();
}

absl::Status DatabaseImpl::AddMember(const ReplicationMember& member,
                                     std::vector<absl::Status>* per_shard) {
  return ChangeMembership([&](ReplicatedShards* rs) { return rs->AddMember(member, per_shard); });
}

absl::Status DatabaseImpl::RemoveMember(uint64_t id, std::vector<absl::Status>* per_shard) {
  return ChangeMembership([&](ReplicatedShards* rs) { return rs->RemoveMember(id, per_shard); });
}

absl::Status DatabaseImpl::ChangeMembership(
    const std::function<absl::Status(ReplicatedShards*)>& change) {
  if (!options_.replication.enabled()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "database ", options_.path, " is not replicated (Options::replication): no members"));
  }
  OpGuard op(&gate_);  // Release destroys the groups only after the gate drains
  if (!op.admitted()) return ClosedError();
  ReplicatedShards* rs;
  {
    MutexLock l(&replication_mu_);
    rs = replicated_shards_.get();
  }
  if (rs == nullptr) return ClosedError();
  return change(rs);
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

Stats DatabaseImpl::GetStats() {
  std::vector<std::pair<uint32_t, engine::ShardStats>> shards;
  {
    MutexLock l(&shards_mu_);  // Close may clear shards_ meanwhile
    for (auto& shard : shards_) shards.emplace_back(shard->id(), shard->Stats());
  }
  Stats stats = MakeStats(counters_, coordinator_->state().InDoubt(), shards,
                          directory_ != nullptr && directory_->shared_log());
  {
    MutexLock l(&replication_mu_);
    if (replicated_shards_ != nullptr) replicated_shards_->AddStats(&stats);
  }
  MutexLock l(&shards_mu_);  // Close may clear shards_ meanwhile
  if (follower_reads_ != nullptr && !shards_.empty()) {
    for (ShardStatsView& v : stats.shards) {
      if (!v.replicated || replicated_log(v.shard) == nullptr) continue;
      const FollowerReads::Safe safe = follower_reads_->ShardSafe(v.shard);
      v.replication.safe_ts = safe.ts;
      if (safe.staleness != absl::InfiniteDuration()) {
        v.replication.follower_staleness_ms = absl::ToInt64Milliseconds(safe.staleness);
      }
    }
  }
  return stats;
}

absl::StatusOr<std::vector<std::string>> DatabaseImpl::ListPrepared() {
  if (gate_.closed()) return ClosedError();
  return coordinator_->state().Names();
}

absl::Status DatabaseImpl::CommitPrepared(const std::string& name) {
  OpGuard op(&gate_);
  if (!op.admitted()) return ClosedError();
  return replicated_ ? coordinator_->CommitPreparedReplicated(name)
                     : coordinator_->CommitPrepared(name);
}

absl::Status DatabaseImpl::RollbackPrepared(const std::string& name) {
  OpGuard op(&gate_);
  if (!op.admitted()) return ClosedError();
  return replicated_ ? coordinator_->RollbackPreparedReplicated(name)
                     : coordinator_->RollbackPrepared(name);
}

absl::Status DatabaseImpl::Backup(const std::string& dest) {
  OpGuard op(&gate_);  // Close waits for a backup under way
  if (!op.admitted()) return ClosedError();
  return RunBackup(this, dest);
}

Database::Outcome DatabaseImpl::LocalOutcome(uint64_t id) {
  TwoPhaseState& state = coordinator_->state();
  const Outcome local = state.GetOutcome(id);
  if (!replicated_ || local != Outcome::kPrepared || !state.PreparedUnnamed(id)) return local;
  // Our own cross-shard transaction with a part prepared on this replica: decided if this
  // process decided it or redid a commit or abort record of it; otherwise it may be decided in
  // entries not applied here, or be in doubt: the shards answer (never kPrepared). A host's
  // named transaction is prepared until its host decides: kPrepared.
  return state.WindowOutcome(id);
}

Database::Outcome DatabaseImpl::GetOutcome(uint64_t id) {
  if (id == 0) return Outcome::kUnknown;  // no transaction's (a fence entry's empty commit)
  const Outcome local = LocalOutcome(id);
  if (!replicated_ || local != Outcome::kUnknown) return local;
  // Replicated: committed if a released entry of any shard here committed it (a cross-shard
  // transaction: its commit record on a participant); aborted only if every shard's leader (this
  // node) says so.
  OpGuard op(&gate_);  // a fence entry may be proposed
  if (!op.admitted()) return Outcome::kUnknown;
  bool leads_all = true;
  for (uint32_t g = 0; g < num_shards(); ++g) {
    engine::Shard* s = shards_[g].get();
    {
      MutexLock l(s->commit_mu());
      if (s->ReleasedTxnLocked(id) == engine::ReleasedTxns::State::kReleased) {
        return Outcome::kCommitted;
      }
    }
    engine::ReplicatedLog* log = replicated_log(g);
    leads_all = leads_all && log != nullptr && log->CheckLeader().ok();
  }
  if (!leads_all) return Outcome::kUnknown;  // no fence proposed for an answer that cannot be final
  for (uint32_t g = 0; g < num_shards(); ++g) {
    absl::StatusOr<Outcome> o = ReplicatedOutcomeOnShard(this, g, id);
    if (o.ok() && *o == Outcome::kCommitted) return Outcome::kCommitted;
    if (!o.ok() || *o != Outcome::kAborted) return Outcome::kUnknown;
  }
  return Outcome::kAborted;
}

absl::StatusOr<Database::Outcome> DatabaseImpl::GetOutcomeOfKey(uint64_t id,
                                                                const std::string& key) {
  if (id == 0) return Outcome::kUnknown;
  const Outcome local = LocalOutcome(id);
  if (!replicated_ || local != Outcome::kUnknown) return local;
  OpGuard op(&gate_);
  if (!op.admitted()) return ClosedError();
  return ReplicatedOutcomeOnShard(this, partitioner_->ShardOf(key), id);
}

// engine::ShardHooks

absl::Status DatabaseImpl::WaitVisible(engine::Timestamp ts) {
  oracle_.WaitVisible(ts);
  return absl::OkStatus();
}

std::vector<std::string> DatabaseImpl::CheckpointTableNames() { return {kPreparedTable}; }

absl::Status DatabaseImpl::LoadTable(uint32_t shard, const std::string& table,
                                     const std::vector<std::pair<std::string, std::string>>& rows) {
  if (table != kPreparedTable) return absl::OkStatus();
  return coordinator_->LoadPrepared(shard, rows);
}

absl::StatusOr<std::optional<engine::ShardHooks::RedoInstall>> DatabaseImpl::Redo(
    uint32_t shard, engine::Lsn lsn, bool applied, uint8_t type, absl::string_view payload) {
  return coordinator_->Redo(shard, lsn, applied, type, payload);
}

absl::Status DatabaseImpl::CheckRedo(uint32_t shard,
                                     absl::Span<const engine::EntryRecord> records) {
  return coordinator_->CheckRedo(shard, records);
}

void DatabaseImpl::ForgetShardState(uint32_t shard) { coordinator_->ForgetShard(shard); }

std::vector<engine::TableWrite> DatabaseImpl::CheckpointTables(uint32_t shard) {
  return coordinator_->state().CheckpointTables(shard);
}

void DatabaseImpl::CheckpointCommitted(uint32_t shard) {
  coordinator_->state().CheckpointCommitted(shard);
}

engine::Lsn DatabaseImpl::PinnedLsn(uint32_t shard) {
  // A checkpoint of `shard` about to drop what it may: a participant's commit record whose
  // decision is not yet durable on its coordinator must stay (the evidence pin). Rather than
  // keep it until a later checkpoint, sync those coordinators' logs now (one fsync each at
  // most: the decision is appended without a sync of its own) and ask again. A coordinator
  // whose log failed keeps its pins until the database is reopened.
  auto durable = [this](uint32_t s) { return shards_[s]->durable_lsn(); };
  std::vector<uint32_t> waiting_on;
  engine::Lsn pinned = coordinator_->state().PinnedLsn(shard, durable, &waiting_on);
  bool synced = false;
  for (uint32_t c : waiting_on) {
    synced = shards_[c]->SyncWal().ok() || synced;
    if (shared_log_ != nullptr) break;  // one log: one sync covers every coordinator
  }
  if (synced) pinned = coordinator_->state().PinnedLsn(shard, durable);
  if (const engine::Lsn streams = snapshot_pins_[shard].load(std::memory_order_seq_cst);
      streams != 0 && (pinned == 0 || streams < pinned)) {
    pinned = streams;
  }
  return backup_pins_.Fold(shard, pinned);
}

engine::Lsn DatabaseImpl::TwoPhasePinnedLsn(uint32_t shard) {
  return coordinator_->state().PinnedLsn(shard,
                                         [this](uint32_t s) { return shards_[s]->durable_lsn(); });
}

}  // namespace txn
}  // namespace shardtx
