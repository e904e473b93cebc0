#include "engine/shard.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "engine/lmdb_store.h"
#include "util/coding.h"
#include "util/kill_point.h"
#include "util/status_macros.h"
#include "wal/reader.h"
#include "wal/writer.h"

namespace shardtx::engine {

static_assert(std::is_same_v<Lsn, wal::Lsn>, "the engine's LSNs are the log's");

namespace {

wal::Durability ToWal(Durability d) {
  switch (d) {
    case Durability::kSync:
      return wal::Durability::kSync;
    case Durability::kAsync:
      return wal::Durability::kAsync;
    case Durability::kNone:
      return wal::Durability::kNone;
    case Durability::kDeferred:
      return wal::Durability::kDeferred;
  }
  return wal::Durability::kSync;
}

}  // namespace

Shard::View::View() = default;
Shard::View::~View() = default;

SHARDTX_DEFINE_KILL_POINT(ckpt_after_freeze, "checkpoint.after_freeze");
SHARDTX_DEFINE_KILL_POINT(ckpt_after_lmdb_commit, "checkpoint.after_lmdb_commit");
SHARDTX_DEFINE_KILL_POINT(ckpt_before_truncate, "checkpoint.before_wal_truncate");
SHARDTX_DEFINE_KILL_POINT(recovery_mid_redo, "recovery.mid_redo");
SHARDTX_DEFINE_KILL_POINT(recovery_before_wal_open, "recovery.before_wal_open");

Shard::Shard(uint32_t id, const ShardOptions& options, ShardHooks* hooks)
    : id_(id),
      options_(options),
      hooks_(hooks),
      stream_(options.shared_log ? static_cast<uint16_t>(id) : 0),
      released_(options.released_txn_window),
      checkpointed_deletes_(options.checkpointed_deletes_bytes) {
  Checkpointer::Triggers triggers;
  triggers.wal_bytes = options.checkpoint_wal_bytes;
  triggers.interval = options.checkpoint_interval;
  triggers.overlay_limit_bytes = options.overlay_limit_bytes;
  triggers.pace = options.checkpoint_pace;
  checkpointer_ = std::make_unique<Checkpointer>(
      triggers, Checkpointer::ShardProbes{
                    [this] { return Checkpoint(); }, [this] { return wal()->Stats().bytes; },
                    [this] { return wal()->fsyncs(); }, [this] { return OverlayBytesUsed(); }});
}

absl::StatusOr<std::unique_ptr<Shard>> Shard::Open(uint32_t id, const ShardOptions& options,
                                                   ShardHooks* hooks) {
  std::unique_ptr<Shard> s(new Shard(id, options, hooks));
  RETURN_IF_ERROR(s->Recover());
  return s;
}

void Shard::StartBackground() { checkpointer_->Start(); }

absl::StatusOr<Lsn> Shard::OpenStore() {
  open_start_ = std::chrono::steady_clock::now();
  Env* env = options_.env;
  RETURN_IF_ERROR(CreateDirDurably(env, options_.dir));
  const std::string lmdb_dir = options_.dir + "/lmdb";
  RETURN_IF_ERROR(env->CreateDir(lmdb_dir));
  if (!options_.shared_log) RETURN_IF_ERROR(env->CreateDir(options_.dir + "/wal"));
  RETURN_IF_ERROR(env->SyncDir(options_.dir));
  StoreOptions store_options;
  store_options.initial_map_size = options_.lmdb_map_size;
  store_options.max_readers = options_.max_readers;
  store_options.checkpoint_chunk_bytes = options_.checkpoint_chunk_bytes;
  ASSIGN_OR_RETURN(store_, ShardStore::Open(lmdb_dir, store_options));
  const StoreMeta meta = store_->meta();

  for (const std::string& table : hooks_->CheckpointTableNames()) {
    ASSIGN_OR_RETURN(auto rows, store_->ReadTable(table));
    RETURN_IF_ERROR(hooks_->LoadTable(id_, table, rows));
  }

  RaftPosition raft_applied;
  ASSIGN_OR_RETURN(auto raft_rows, store_->ReadTable(kRaftTable));
  ClosedTs closed;
  for (const auto& [key, value] : raft_rows) {
    absl::string_view rest;
    if (key == kRaftClosedKey
            ? !DecodeClosedTs(value, &closed)
            : key != kRaftAppliedKey || !DecodeRaftEntry(value, &raft_applied, &rest) ||
                  !rest.empty()) {
      return absl::DataLossError(absl::StrCat("shard ", id_, ": malformed row '", key,
                                              "' in the store's table ", kRaftTable));
    }
  }

  ASSIGN_OR_RETURN(auto released_rows, store_->ReadTable(ReleasedTxns::kTable));

  {
    auto active = std::make_shared<Overlay>();
    MutexLock l(&commit_mu_);
    RETURN_IF_ERROR(released_.Load(id_, released_rows));
    active_ = active;
    raft_applied_ = raft_applied;
    recovered_max_ts_ = std::max(meta.max_ts, closed.ts);
    safe_bound_ = {recovered_max_ts_, closed.ts, closed.leader_time_us};
    closed_history_.clear();
    if (closed.ts != 0) closed_history_.push_back(closed);
    MutexLock v(&view_mu_);
    overlays_ = {active};
    lmdb_max_ts_ = meta.max_ts;
  }
  store_applied_lsn_ = meta.applied_lsn;
  applied_lsn_.store(meta.applied_lsn);
  return meta.applied_lsn;
}

absl::Status Shard::RedoRecovered(Lsn lsn, uint8_t type, absl::string_view payload) {
  MutexLock l(&commit_mu_);  // uncontended: nothing else runs on the shard yet
  const bool applied = lsn <= store_applied_lsn_;
  if (!applied) {
    SHARDTX_KILL_POINT("recovery.mid_redo");
    if (recovery_.from_lsn == 0) recovery_.from_lsn = lsn;
    recovery_.to_lsn = lsn;
    ++recovery_.records;
    recovery_.bytes += payload.size();
  }
  return RedoLocked(lsn, type, payload, applied);
}

void Shard::AttachSharedLog(wal::WalWriter* log, Lsn last_lsn, bool torn) {
  wal_.store(log, std::memory_order_release);
  {
    MutexLock l(&commit_mu_);
    last_lsn_ = last_lsn;
  }
  recovery_.torn_tail = torn;
  recovery_.millis =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - open_start_)
          .count();
}

absl::Status Shard::StateLogFloor() {
  Lsn keep = applied_lsn_.load() + 1;
  if (Lsn pinned = hooks_->PinnedLsn(id_); pinned != 0) keep = std::min(keep, pinned);
  return wal()->Truncate(keep, stream_);
}

absl::Status Shard::Recover() {
  ASSIGN_OR_RETURN(const Lsn applied_lsn, OpenStore());
  if (options_.shared_log) return absl::OkStatus();
  Env* env = options_.env;
  const std::string wal_dir = options_.dir + "/wal";
  // Everything still in the WAL: records at or below applied_lsn are in LMDB already, but
  // transaction records among them (a decision a participant still needs) matter. Every LSN
  // above applied_lsn must be there (a gap is kDataLoss naming it). Below it, checkpoints
  // truncate oldest first, so what they leave is the run of segments that reaches
  // applied_lsn + 1; a segment cut off from that run by a gap (a crash inside WalWriter::Truncate
  // removed a later one but not it) was being freed and is skipped, not read.
  wal::ReaderOptions ropts;
  ropts.from_lsn = 0;
  ropts.needed_lsn = applied_lsn + 1;
  auto reader_or = wal::WalReader::Open(env, wal_dir, ropts);
  if (absl::IsNotFound(reader_or.status())) {
    return absl::DataLossError(
        absl::StrCat("shard ", id_, ": LMDB has applied LSN ", applied_lsn,
                     " but the WAL cannot continue it: ", reader_or.status().message()));
  }
  RETURN_IF_ERROR(reader_or.status());
  std::unique_ptr<wal::WalReader> reader = std::move(*reader_or);
  wal::WalRecord rec;
  {
    MutexLock l(&commit_mu_);  // uncontended: nothing else runs on the shard yet
    while (true) {
      ASSIGN_OR_RETURN(bool more, reader->Next(&rec));
      if (!more) break;
      const bool applied = rec.lsn <= applied_lsn;
      if (!applied) {
        SHARDTX_KILL_POINT("recovery.mid_redo");
        if (recovery_.from_lsn == 0) recovery_.from_lsn = rec.lsn;
        recovery_.to_lsn = rec.lsn;
        ++recovery_.records;
        recovery_.bytes += rec.payload.size();
      }
      RETURN_IF_ERROR(RedoLocked(rec.lsn, rec.type, rec.payload, applied));
    }
  }
  const wal::WalTail& tail = reader->tail();
  if (tail.next_lsn <= applied_lsn) {
    return absl::DataLossError(absl::StrCat("shard ", id_, ": WAL ends at LSN ", tail.next_lsn - 1,
                                            " but LMDB has applied LSN ", applied_lsn));
  }
  recovery_.torn_tail = tail.torn;
  SHARDTX_KILL_POINT("recovery.before_wal_open");
  wal::WalOptions wal_options;
  wal_options.segment_size = options_.wal_segment_size;
  wal_options.max_record_size = options_.max_record_size;
  if (DurableListener* listener = options_.durable_listener; listener != nullptr) {
    wal_options.on_durable = [listener, id = id_](Lsn lsn) { listener->Durable(id, lsn); };
    wal_options.on_poisoned = [listener, id = id_](const absl::Status& error) {
      listener->Poisoned(id, error);
    };
  }
  ASSIGN_OR_RETURN(own_wal_, wal::WalWriter::Open(env, wal_dir, wal_options, tail));
  wal_.store(own_wal_.get(), std::memory_order_release);
  {
    MutexLock l(&commit_mu_);
    last_lsn_ = tail.next_lsn - 1;
  }
  recovery_.millis =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - open_start_)
          .count();
  return absl::OkStatus();
}

void Shard::NoteReleasedLocked(const std::vector<EntryRecord>& records) {
  for (const EntryRecord& r : records) {
    uint64_t ts, txn_id;
    if (r.type == kCommit && DecodeCommitHeader(r.payload, &ts, &txn_id)) released_.Add(txn_id);
    // A cross-shard transaction's commit record on this shard (txn/txn_records.h: u64 txn id
    // first) commits it too.
    absl::string_view payload = r.payload;
    if (r.type == kCommitPrepared && GetFixed64(&payload, &txn_id)) released_.Add(txn_id);
  }
}

bool Shard::NoteClosedTsLocked(absl::string_view payload) {
  ClosedTs closed;
  if (!DecodeClosedTs(payload, &closed)) return false;
  recovered_max_ts_ = std::max(recovered_max_ts_, closed.ts);
  safe_bound_.ts = std::max(safe_bound_.ts, closed.ts);
  safe_bound_.closed_ts = std::max(safe_bound_.closed_ts, closed.ts);
  safe_bound_.closed_time_us = std::max(safe_bound_.closed_time_us, closed.leader_time_us);
  closed_history_.push_back(closed);
  if (closed_history_.size() > 256) closed_history_.pop_front();
  return true;
}

int64_t Shard::ClosedTimeAtOrBelowLocked(Timestamp ts) const {
  // Newest first: entries later in the log were proposed later, by the leader's clock.
  for (auto it = closed_history_.rbegin(); it != closed_history_.rend(); ++it) {
    if (it->ts <= ts) return it->leader_time_us;
  }
  return 0;
}

void Shard::NoteRaftAppliedLocked(RaftPosition position, absl::string_view entry) {
  std::vector<EntryRecord> records;
  if (DecodeEntryRecords(entry, &records)) {
    NoteReleasedLocked(records);
    // The leader installed its own commits at commit; released now, they raise the bound.
    for (const EntryRecord& r : records) {
      uint64_t ts = 0, txn_id = 0;
      absl::string_view payload = r.payload;
      if (r.type == kCommit && DecodeCommitHeader(r.payload, &ts, &txn_id)) {
        safe_bound_.ts = std::max(safe_bound_.ts, ts);
      } else if (r.type == kCommitPrepared && GetFixed64(&payload, &txn_id) &&
                 GetFixed64(&payload, &ts)) {  // txn/txn_records.h: u64 txn id, u64 commit ts
        safe_bound_.ts = std::max(safe_bound_.ts, ts);
      } else if (r.type == kClosedTs) {
        NoteClosedTsLocked(r.payload);
      }
    }
  }
  if (position.index > raft_applied_.index) raft_applied_ = position;
}

absl::Status Shard::RedoLocked(Lsn lsn, uint8_t type, absl::string_view payload, bool applied) {
  if (type == kRaftEntry) {
    // The engine's own: never the hooks' whole. Applied or not (the store's row may be older
    // than an entry the WAL still holds below its applied LSN), the highest position wins.
    RaftPosition position;
    absl::string_view entry;
    std::vector<EntryRecord> records;
    if (!DecodeRaftEntry(payload, &position, &entry) || !DecodeEntryRecords(entry, &records)) {
      return absl::DataLossError(
          absl::StrCat("shard ", id_, ": malformed raft entry record at LSN ", lsn));
    }
    for (const EntryRecord& r : records) {
      RETURN_IF_ERROR(RedoLocked(lsn, r.type, r.payload, applied));
    }
    // At or below the applied LSN, the store's table has them already.
    if (!applied) NoteReleasedLocked(records);
    if (position.index > raft_applied_.index) raft_applied_ = position;
    return absl::OkStatus();
  }
  if (type == kClosedTs) {  // the engine's own, applied or not: no data, a bound
    if (!NoteClosedTsLocked(payload)) {
      return absl::DataLossError(
          absl::StrCat("shard ", id_, ": malformed closed-timestamp record at LSN ", lsn));
    }
    return absl::OkStatus();
  }
  if (applied) {
    // In LMDB already; a transaction record may still matter to the layer above.
    if (type == kCommit) return absl::OkStatus();
    return hooks_->Redo(id_, lsn, true, type, payload).status();
  }
  if (type == kCommit) {
    uint64_t ts, txn_id;
    redo_writes_.clear();
    if (!DecodeCommit(payload, &ts, &txn_id, &redo_writes_)) {
      return absl::DataLossError(
          absl::StrCat("shard ", id_, ": malformed commit record at LSN ", lsn));
    }
    for (const Write& w : redo_writes_) {
      active_->Add(w.key, ts, w.op == WriteOp::kDelete, w.value);
    }
    recovered_max_ts_ = std::max(recovered_max_ts_, ts);
    safe_bound_.ts = std::max(safe_bound_.ts, ts);
    // Lets the layer above note the outcome.
    return hooks_->Redo(id_, lsn, false, type, payload).status();
  }
  ASSIGN_OR_RETURN(std::optional<ShardHooks::RedoInstall> install,
                   hooks_->Redo(id_, lsn, false, type, payload));
  if (install.has_value()) {
    for (const Write& w : install->writes) {
      active_->Add(w.key, install->ts, w.op == WriteOp::kDelete, w.value);
    }
    recovered_max_ts_ = std::max(recovered_max_ts_, install->ts);
    safe_bound_.ts = std::max(safe_bound_.ts, install->ts);
  }
  return absl::OkStatus();
}

absl::Status ShardHooks::CheckRedo(uint32_t shard, absl::Span<const EntryRecord> records) {
  for (const EntryRecord& r : records) {
    if (r.type != kCommit) {
      return absl::UnimplementedError(absl::StrCat(
          "record type ", r.type, " on shard ", shard,
          ": this replica has no transaction layer to redo it (it redoes commits only)"));
    }
  }
  return absl::OkStatus();
}

absl::Status Shard::CheckRedoLocked(absl::Span<const EntryRecord> records) {
  // A leader's RaftNode packs the proposals queued together into one entry, so a closed-timestamp
  // record may share its entry with commits and 2PC records (in proposal order, which is
  // timestamp order on the leader: both are taken under commit_mu). It is the engine's own,
  // redone here whatever the hooks: they are asked about the other records only.
  std::vector<EntryRecord> for_hooks;
  bool others = false;
  for (const EntryRecord& r : records) {
    if (r.type == kClosedTs) {
      ClosedTs closed;
      if (!DecodeClosedTs(r.payload, &closed)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "shard ", id_, ": malformed closed-timestamp record (", r.payload.size(), " bytes)"));
      }
      continue;
    }
    others = others || r.type != kCommit;
    for_hooks.push_back(r);
  }
  return others ? hooks_->CheckRedo(id_, for_hooks) : absl::OkStatus();
}

absl::Status Shard::ReplaceState(const std::function<absl::Status()>& install,
                                 const std::function<void(Timestamp)>& before_publish) {
  if (options_.shared_log || own_wal_ == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("shard ", id_, ": its state can be replaced only with a log of its own"));
  }
  MutexLock ck(&checkpoint_mu_);  // no checkpoint writes the store or truncates the log
  MutexLock l(&commit_mu_);       // nothing appends or redoes
  // The log's files are about to move (or be recovered again): close it, synced. Its object
  // stays (wal() may be read without a lock) and fails every append from now on.
  own_wal_->Close().IgnoreError();  // the directory is recovered from disk below either way
  retired_wals_.push_back(std::move(own_wal_));
  const absl::Status installed = install();
  // The layer above rebuilds its state of the shard (prepared transactions) from the directory
  // as recovery does: from nothing.
  hooks_->ForgetShardState(id_);
  absl::StatusOr<std::unique_ptr<Shard>> fresh = Shard::Open(id_, options_, hooks_);
  if (!fresh.ok()) {
    const std::string after = installed.ok()
                                  ? "installing a new state"
                                  : absl::StrCat("a failed install (", installed.message(), ")");
    return absl::Status(fresh.status().code(),
                        absl::StrCat("shard ", id_, ": recovering its directory after ", after,
                                     " failed; it serves reads of its old state only, until the "
                                     "database is reopened: ",
                                     fresh.status().message()));
  }
  AdoptLocked(**fresh, before_publish);
  return installed;
}

void Shard::AdoptLocked(Shard& fresh, const std::function<void(Timestamp)>& before_publish) {
  MutexLock fl(&fresh.commit_mu_);  // uncontended: nothing else knows `fresh`
  recovered_max_ts_ = fresh.recovered_max_ts_;
  safe_bound_ = fresh.safe_bound_;
  closed_history_ = fresh.closed_history_;
  if (before_publish) before_publish(recovered_max_ts_);
  last_lsn_ = fresh.last_lsn_;
  raft_applied_ = fresh.raft_applied_;
  released_ = std::move(fresh.released_);
  active_ = fresh.active_;
  own_wal_ = std::move(fresh.own_wal_);
  wal_.store(own_wal_.get(), std::memory_order_release);
  fresh.wal_.store(nullptr, std::memory_order_release);
  store_applied_lsn_ = fresh.store_applied_lsn_;
  applied_lsn_.store(fresh.applied_lsn_.load());
  frozen_bytes_.store(0);
  std::shared_ptr<ShardStore> old_store;
  {
    MutexLock v(&view_mu_);
    MutexLock fv(&fresh.view_mu_);
    old_store = std::move(store_);  // released here unless a view still reads it
    store_ = std::move(fresh.store_);
    overlays_ = fresh.overlays_;
    lmdb_max_ts_ = fresh.lmdb_max_ts_;
    // The new store's deletes were never remembered here: a snapshot below its largest
    // timestamp may miss one (checkpointed_deletes.h).
    checkpointed_deletes_ = CheckpointedDeletes(options_.checkpointed_deletes_bytes);
    checkpointed_deletes_.RaiseFloor(lmdb_max_ts_);
    recovery_ = fresh.recovery_;
  }
}

Shard::~Shard() { Close(false).IgnoreError(); }

absl::Status Shard::Close(bool checkpoint) {
  // Checkpoints stop pausing: a paused one goes on, Close's own never waits.
  checkpointer_->BeginClose();
  absl::Status result;
  if (checkpoint && wal() != nullptr) result = Checkpoint();
  checkpointer_->Stop();
  if (own_wal_ != nullptr) {
    absl::Status s = own_wal_->Close();
    if (result.ok()) result = s;
  }
  return result;
}

absl::StatusOr<std::unique_ptr<Shard::View>> Shard::Pin(Timestamp snapshot) {
  auto view = std::make_unique<View>();
  view->snapshot = snapshot;
  MutexLock l(&view_mu_);
  if (lmdb_max_ts_ > snapshot) {
    snapshot_too_old_.fetch_add(1, std::memory_order_relaxed);
    return absl::AbortedError(absl::StrCat("snapshot too old on shard ", id_, ": snapshot ",
                                           snapshot, ", checkpointed through ", lmdb_max_ts_));
  }
  view->overlays.assign(overlays_.begin(), overlays_.end());
  view->store = store_;
  ASSIGN_OR_RETURN(view->lmdb, store_->Pin());
  return view;
}

absl::StatusOr<std::optional<Found>> Shard::Get(View* view, absl::string_view key) {
  for (const auto& o : view->overlays) {
    if (std::optional<Found> f = o->Get(key, view->snapshot)) return f;
  }
  return view->lmdb->Get(key);
}

absl::Status Shard::ScanVisible(View* view, absl::string_view from, bool inclusive, bool reverse,
                                size_t limit, ScanBatch* out) {
  out->entries.clear();
  out->done = false;
  std::string cursor(from);
  bool incl = inclusive;
  const auto before = [reverse](absl::string_view a, absl::string_view b) {
    return reverse ? a > b : a < b;
  };
  // Layers newest first: the overlays, then LMDB.
  const size_t lmdb_layer = view->overlays.size();
  out->layers.resize(lmdb_layer + 1);
  std::vector<size_t> pos(lmdb_layer + 1);
  while (out->entries.empty()) {
    // Each layer's next entries (at most `limit`). A layer that stopped before its end may
    // hold more past the last key it looked at: only keys up to the nearest such stop (the
    // horizon) are complete. Every key here points into an overlay or LMDB's snapshot, which
    // the view keeps alive.
    std::optional<absl::string_view> horizon;
    auto stop = [&](absl::string_view at) {
      if (!horizon.has_value() || before(at, *horizon)) horizon = at;
    };
    std::optional<absl::string_view> stopped_at;
    for (size_t i = 0; i < lmdb_layer; ++i) {
      std::vector<ScanEntry>& layer = out->layers[i];
      layer.clear();
      view->overlays[i]->Scan(cursor, incl, reverse, limit, view->snapshot, &layer, &stopped_at);
      if (stopped_at.has_value()) stop(*stopped_at);
    }
    std::vector<ScanEntry>& lmdb = out->layers[lmdb_layer];
    lmdb.clear();
    RETURN_IF_ERROR(view->lmdb->Scan(cursor, incl, reverse, limit, &lmdb));
    if (lmdb.size() == limit) stop(lmdb.back().key);
    // Merge: repeatedly take the nearest key among the layers' heads; on equal keys the first
    // (newest) layer's version wins and the others are skipped.
    const auto& layers = out->layers;
    std::fill(pos.begin(), pos.end(), 0);
    while (true) {
      int best = -1;
      for (size_t i = 0; i < layers.size(); ++i) {
        if (pos[i] < layers[i].size() &&
            (best < 0 || before(layers[i][pos[i]].key, layers[best][pos[best]].key))) {
          best = static_cast<int>(i);
        }
      }
      if (best < 0) break;
      const ScanEntry& e = layers[best][pos[best]];
      if (horizon.has_value() && before(*horizon, e.key)) break;
      for (size_t i = 0; i < layers.size(); ++i) {
        if (static_cast<int>(i) != best && pos[i] < layers[i].size() &&
            layers[i][pos[i]].key == e.key) {
          ++pos[i];
        }
      }
      ++pos[best];
      if (!e.tombstone) out->entries.emplace_back(e.key, e.value);
    }
    if (!horizon.has_value()) {
      out->done = true;
      return absl::OkStatus();
    }
    cursor.assign(horizon->data(), horizon->size());
    incl = false;
  }
  out->resume = std::move(cursor);
  return absl::OkStatus();
}

uint64_t Shard::OverlayBytesUsed() {
  uint64_t active;
  {
    MutexLock l(&view_mu_);
    active = overlays_.front()->bytes();
  }
  return active + frozen_bytes_.load(std::memory_order_relaxed);
}

void Shard::WaitForSpace() { checkpointer_->WaitForSpace(); }

absl::StatusOr<Timestamp> Shard::NewestTsAfterLocked(absl::string_view key, Timestamp after) {
  Timestamp lmdb_max, deleted = 0, floor;
  {
    MutexLock l(&view_mu_);
    for (const auto& o : overlays_) {
      if (Timestamp ts = o->LatestTs(key)) return ts > after ? ts : Timestamp{0};
    }
    lmdb_max = lmdb_max_ts_;
    if (lmdb_max > after) {  // else neither LMDB nor its deletes can hold the answer (below)
      deleted = checkpointed_deletes_.DeletedAt(key);
    }
    floor = checkpointed_deletes_.floor();
  }
  // No version in LMDB is newer than lmdb_max (raised before a checkpoint's LMDB commit, read
  // here with the overlays in one critical section, so a version leaving the overlays is
  // counted in it; after a crash between checkpoint chunks LMDB may hold newer ones, but redo
  // puts them back in the overlay): below `after`, LMDB cannot hold the answer, and the
  // commit lock is not held across a B-tree lookup.
  if (lmdb_max <= after) return Timestamp{0};
  validation_lmdb_reads_.fetch_add(1, std::memory_order_relaxed);
  ASSIGN_OR_RETURN(std::unique_ptr<ReadView> v, store_->Pin());
  ASSIGN_OR_RETURN(std::optional<Found> f, v->Get(key));
  // A delete a checkpoint applied is absence in LMDB: the remembered timestamp stands for it.
  Timestamp newest = std::max(f.has_value() ? f->ts : Timestamp{0}, deleted);
  // Absent, and a delete of it after `after` may have been forgotten: assume there was one.
  if (newest == 0 && floor > after) newest = floor;
  return newest > after ? newest : Timestamp{0};
}

absl::StatusOr<bool> Shard::AnyNewerInRangeLocked(absl::string_view lower,
                                                  absl::string_view upper, Timestamp ts) {
  Timestamp lmdb_max;
  std::vector<std::shared_ptr<Overlay>> overlays;
  {
    MutexLock l(&view_mu_);
    overlays.assign(overlays_.begin(), overlays_.end());
    lmdb_max = lmdb_max_ts_;
    if (lmdb_max > ts) {
      // A key of the range deleted from LMDB after the snapshot, remembered or forgotten.
      if (checkpointed_deletes_.floor() > ts) return true;
      if (checkpointed_deletes_.AnyDeletedAfter(lower, upper, ts)) return true;
    }
  }
  for (const auto& o : overlays) {
    if (o->AnyNewerInRange(lower, upper, ts)) return true;
  }
  if (lmdb_max <= ts) return false;
  ASSIGN_OR_RETURN(std::unique_ptr<ReadView> v, store_->Pin());
  return v->AnyNewerInRange(lower, upper, ts);
}

absl::StatusOr<Lsn> Shard::AppendLocked(RecordType type, absl::string_view payload,
                                        Durability durability) {
  ASSIGN_OR_RETURN(Lsn lsn, wal()->Append(type, payload, ToWal(durability), stream_));
  last_lsn_ = lsn;
  return lsn;
}

void Shard::InstallLocked(std::vector<Write>* writes, Timestamp ts) {
  for (Write& w : *writes) {
    active_->Add(w.key, ts, w.op == WriteOp::kDelete, std::move(w.value));
    // Freed here, by the committing thread, which allocated it (the overlay copied a small
    // value, moved a large one): a write set kept for a take-back (an async commit's) is freed
    // later on another thread, and a free of another thread's chunk waits for that thread's
    // malloc arena lock.
    std::string().swap(w.value);
  }
  RequestCheckpointIfFullLocked();
}

void Shard::RequestCheckpointIfFullLocked() {
  if (options_.checkpoint_overlay_bytes != 0 &&
      active_->bytes() >= options_.checkpoint_overlay_bytes) {
    checkpointer_->Request();
  }
}

void Shard::UninstallLocked(const std::vector<Write>& writes, Timestamp ts) {
  MutexLock v(&view_mu_);
  for (const auto& o : overlays_) {
    for (const Write& w : writes) o->Remove(w.key, ts);
  }
}

void Shard::UninstallKeyLocked(absl::string_view key, Timestamp ts) {
  MutexLock v(&view_mu_);
  for (const auto& o : overlays_) o->Remove(key, ts);
}

absl::Status Shard::Checkpoint() {
  absl::Status s = CheckpointOnce();
  if (!s.ok()) checkpoint_failures_.fetch_add(1, std::memory_order_relaxed);
  return s;
}

absl::Status Shard::CheckpointOnce() {
  MutexLock ck(&checkpoint_mu_);
  // A failed log fails every checkpoint (below, after the freeze): do not freeze for nothing.
  RETURN_IF_ERROR(wal()->status());
  const auto start = std::chrono::steady_clock::now();
  // Freeze: the active overlay joins the frozen ones (left over from a failed checkpoint, if
  // any); commits go on into a new active overlay. The cut is exact: every record at or below
  // `c` is in a frozen overlay, every later one goes to the new active overlay.
  std::vector<std::shared_ptr<Overlay>> frozen;  // oldest first
  std::vector<ShardStore::TableWrite> table_writes;
  Lsn c;
  {
    MutexLock l(&commit_mu_);
    c = last_lsn_;
    table_writes = hooks_->CheckpointTables(id_);
    if (raft_applied_.index != 0) {  // an unreplicated shard's store stays as it was
      table_writes.push_back({kRaftTable, kRaftAppliedKey, EncodeRaftEntry(raft_applied_, "")});
      if (safe_bound_.closed_ts != 0) {
        table_writes.push_back(
            {kRaftTable, kRaftClosedKey,
             EncodeClosedTs({safe_bound_.closed_ts, safe_bound_.closed_time_us})});
      }
      released_.CheckpointRows(&table_writes);
    }
    active_ = std::make_shared<Overlay>();
    MutexLock v(&view_mu_);
    overlays_.insert(overlays_.begin(), active_);
    frozen.assign(overlays_.rbegin(), overlays_.rend() - 1);
  }
  uint64_t frozen_bytes = 0;
  Timestamp max_ts = 0;
  std::vector<const Overlay*> layers;
  for (const auto& o : frozen) {
    frozen_bytes += o->bytes();
    max_ts = std::max(max_ts, o->max_ts());
    layers.push_back(o.get());
  }
  frozen_bytes_.store(frozen_bytes);
  SHARDTX_KILL_POINT("checkpoint.after_freeze");
  // Every commit in the frozen overlays must be durable in the WAL (WAL before data) and
  // visible (so that no new snapshot is older than what LMDB will hold).
  absl::Status s = hooks_->WaitVisible(max_ts);
  if (s.ok() && c > 0) s = wal()->WaitDurable(c);
  // Once the log has failed, the overlays may hold commits that have no record in it: a
  // decided cross-shard transaction whose commit records could not be appended is installed
  // all the same (it is committed: its prepares are durable). LMDB past its prepare, with no
  // commit record at or below applied_lsn and no prepared-table row, would leave recovery
  // committing it again with nothing to keep the prepare in the log until the next checkpoint.
  // So nothing more reaches LMDB until the database is reopened and redoes the log. (Checked
  // after the freeze: the failure is sticky, and any such install in a frozen overlay followed it.)
  if (s.ok()) s = wal()->status();
  if (s.ok()) {
    // The frozen deletes, which LMDB will hold only as absence (see checkpointed_deletes_).
    std::vector<std::pair<std::string, Timestamp>> deletes;
    for (const auto& o : frozen) {
      if (!o->had_tombstones()) continue;  // no second pass over an insert-only overlay
      o->ForEachNewestAfter(nullptr, [&](absl::string_view key, const Version& newest) {
        if (newest.tombstone) deletes.emplace_back(key, newest.ts);
        return true;
      });
    }
    // From the moment LMDB may hold the frozen versions, a view pinned at an older snapshot
    // could read them from LMDB where its overlays have nothing old enough: refuse such pins
    // ("snapshot too old") before the commit, not after. (Kept if the commit fails: it only
    // makes old pins fail, never lets a wrong read through.) Likewise a delete leaves the
    // overlays' view only once it is remembered here.
    MutexLock v(&view_mu_);
    lmdb_max_ts_ = std::max(lmdb_max_ts_, max_ts);
    checkpointed_deletes_.Remember(std::move(deletes));
  }
  uint64_t wal_syncs_seen = wal()->fsyncs();
  if (s.ok()) {
    s = store_->Apply(layers, c, max_ts, table_writes,
                      [&](std::chrono::steady_clock::duration chunk_time) {
                        checkpointer_->Pace(chunk_time, &wal_syncs_seen);
                      });
  }
  if (!s.ok()) return s;  // the frozen overlays stay in view; the next checkpoint retries them
  SHARDTX_KILL_POINT("checkpoint.after_lmdb_commit");
  {
    MutexLock v(&view_mu_);
    overlays_.resize(1);  // only the active overlay; readers that pinned the rest keep them
  }
  applied_lsn_.store(c);
  {
    MutexLock l(&commit_mu_);
    released_.CheckpointCommitted();
  }
  hooks_->CheckpointCommitted(id_);
  frozen_bytes_.store(0);
  frozen.clear();
  checkpointer_->Checkpointed();
  SHARDTX_KILL_POINT("checkpoint.before_wal_truncate");
  Lsn keep = c + 1;
  if (Lsn pinned = hooks_->PinnedLsn(id_); pinned != 0) keep = std::min(keep, pinned);
  s = wal()->Truncate(keep, stream_);
  checkpoints_.fetch_add(1, std::memory_order_relaxed);
  checkpoint_bytes_.fetch_add(frozen_bytes, std::memory_order_relaxed);
  checkpoint_ms_.Add(static_cast<uint64_t>(std::chrono::duration<double, std::milli>(
                                               std::chrono::steady_clock::now() - start)
                                               .count()));
  return s;
}

ShardStats Shard::Stats() {
  ShardStats s;
  s.checkpoints = checkpoints_.load();
  s.checkpoint_failures = checkpoint_failures_.load();
  s.checkpoint_bytes = checkpoint_bytes_.load();
  const std::shared_ptr<ShardStore> store = StoreRef();
  s.checkpoint_txns = store->checkpoint_txns();
  s.checkpoint_ms = checkpoint_ms_.Summary();
  {
    MutexLock l(&view_mu_);
    for (const auto& o : overlays_) s.overlay_bytes += o->bytes();
    s.recovery = recovery_;  // replaced by ReplaceState under view_mu_
  }
  s.backpressure_waits = checkpointer_->backpressure_waits();
  s.checkpoint_pauses = checkpointer_->pauses();
  s.checkpoint_paused_ms = checkpointer_->paused_ms();
  s.validation_lmdb_reads = validation_lmdb_reads_.load();
  s.snapshot_too_old = snapshot_too_old_.load();
  s.applied_lsn = applied_lsn_.load();
  s.lmdb_map_size = store->map_size();
  s.lmdb_map_growths = store->map_growths();
  const wal::WalStats w = wal()->Stats();
  s.wal.appends = w.appends;
  s.wal.bytes = w.bytes;
  s.wal.fsyncs = w.fsyncs;
  s.wal.records_per_fsync = w.records_per_fsync;
  s.wal.max_records_per_fsync = w.max_records_per_fsync;
  s.wal.inline_syncs = w.inline_syncs;
  s.wal.unsynced_bytes = w.unsynced_bytes;
  s.wal.fsync_latency_us = w.fsync_latency_us;
  s.wal.segments_created = w.segments_created;
  s.wal.segments_recycled = w.segments_recycled;
  s.wal.durable_lsn = w.durable_lsn;
  return s;
}

absl::Status Shard::WaitDurable(Lsn lsn) { return wal()->WaitDurable(lsn); }

Lsn Shard::durable_lsn() const { return wal()->durable_lsn(); }

absl::Status Shard::SyncWal() { return wal()->Sync(); }

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Shard::ReadTable(
    const std::string& table) {
  return StoreRef()->ReadTable(table);
}

std::shared_ptr<ShardStore> Shard::StoreRef() {
  MutexLock v(&view_mu_);
  return store_;
}

}  // namespace shardtx::engine
