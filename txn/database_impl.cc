#include "txn/database_impl.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "txn/transaction_impl.h"
#include "util/status_macros.h"

namespace shardtx {

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const Options& options) {
  return txn::DatabaseImpl::Open(options);
}

namespace txn {
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
    return absl::InvalidArgumentError(absl::StrCat("Options.max_txn_bytes ",
                                                   options.max_txn_bytes,
                                                   " must be in [1, wal_segment_size / 2]"));
  }
  std::unique_ptr<DatabaseImpl> db(new DatabaseImpl(options));
  db->env_ = options.env != nullptr ? options.env : Env::Default();
  RETURN_IF_ERROR(db->OpenDirectory());
  RETURN_IF_ERROR(db->OpenShards());
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
  absl::Status mk = env_->CreateDir(path);
  if (!mk.ok()) {
    return absl::Status(mk.code(),
                        absl::StrCat("cannot create database directory: ", mk.message()));
  }
  // The directory's own entry must be durable before anything in it counts.
  const std::string parent = std::filesystem::path(path).parent_path().string();
  if (!parent.empty()) RETURN_IF_ERROR(env_->SyncDir(parent));

  ASSIGN_OR_RETURN(std::vector<std::string> names, env_->ListDir(path));
  const bool has_manifest = std::find(names.begin(), names.end(), kManifest) != names.end();
  if (!has_manifest) {
    for (const std::string& n : names) {
      if (n != kLockFile && n != std::string(kManifest) + ".tmp") {
        return absl::FailedPreconditionError(absl::StrCat(
            path, " holds something other than a shardtx database (found '", n, "')"));
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
    for (absl::string_view line : absl::StrSplit(m, '\n', absl::SkipEmpty())) {
      std::vector<absl::string_view> kv = absl::StrSplit(line, ' ');
      if (kv.size() != 2) continue;
      if (kv[0] == "format") (void)absl::SimpleAtoi(kv[1], &version);
      if (kv[0] == "shards") (void)absl::SimpleAtoi(kv[1], &recorded);
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
  } else {
    RETURN_IF_ERROR(WriteFileAtomically(
        env_, path, kManifest, absl::StrCat("format ", kFormatVersion, "\nshards ", shards, "\n")));
  }
  options_.num_shards = shards;
  return absl::OkStatus();
}

absl::Status DatabaseImpl::OpenShards() {
  partitioner_ = std::make_unique<Partitioner>(options_.num_shards);
  // Recover every shard before any checkpoint can run (the hooks need the oracle).
  oracle_ = std::make_unique<TimestampOracle>(0);
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
    so.overlay_limit_bytes = options_.overlay_limit_bytes;
    so.checkpoint_interval = options_.checkpoint_interval;
    ASSIGN_OR_RETURN(std::unique_ptr<engine::Shard> shard, engine::Shard::Open(i, so, this));
    max_ts = std::max(max_ts, shard->recovered_max_ts());
    shards_.push_back(std::move(shard));
  }
  oracle_ = std::make_unique<TimestampOracle>(max_ts);
  for (uint32_t i = 0; i < options_.num_shards; ++i) {
    commit_queues_.push_back(std::make_unique<CommitQueue>());
  }
  for (auto& s : shards_) s->StartBackground();
  return absl::OkStatus();
}

DatabaseImpl::~DatabaseImpl() { Close().IgnoreError(); }

absl::Status DatabaseImpl::Close() {
  if (closed_.exchange(true)) return absl::OkStatus();
  absl::Status result;
  for (auto& s : shards_) {
    absl::Status st = s->Close(options_.checkpoint_on_close);
    if (result.ok()) result = st;
  }
  shards_.clear();
  lock_.reset();
  return result;
}

std::unique_ptr<Transaction> DatabaseImpl::Begin(const TxnOptions& options) {
  return std::make_unique<TransactionImpl>(this, options);
}

absl::Status DatabaseImpl::Checkpoint() {
  if (closed_.load()) return absl::FailedPreconditionError("database is closed");
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

void DatabaseImpl::FinishDurableCommits(uint32_t shard) {
  CommitQueue& q = *commit_queues_[shard];
  const engine::Lsn durable = shards_[shard]->durable_lsn();
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

absl::Status DatabaseImpl::Redo(uint32_t shard, engine::Lsn lsn, uint8_t type,
                                absl::string_view /*payload*/) {
  return absl::DataLossError(
      absl::StrCat("shard ", shard, ": unknown WAL record type ", type, " at LSN ", lsn));
}

engine::Lsn DatabaseImpl::PinnedLsn(uint32_t /*shard*/) { return 0; }

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
  uint64_t synced_records = 0;
  for (auto& shard : shards_) {
    engine::ShardStats st = shard->Stats();
    ShardStatsView v;
    v.shard = shard->id();
    v.wal_appends = st.wal.appends;
    v.wal_bytes = st.wal.bytes;
    v.wal_fsyncs = st.wal.fsyncs;
    v.wal_records_per_fsync = st.wal.records_per_fsync;
    v.wal_max_records_per_fsync = st.wal.max_records_per_fsync;
    v.wal_unsynced_bytes = st.wal.unsynced_bytes;
    v.wal_fsync_latency_us = st.wal.fsync_latency_us;
    v.wal_segments_created = st.wal.segments_created;
    v.wal_segments_recycled = st.wal.segments_recycled;
    v.checkpoints = st.checkpoints;
    v.checkpoint_bytes = st.checkpoint_bytes;
    v.checkpoint_ms = st.checkpoint_ms;
    v.overlay_bytes = st.overlay_bytes;
    v.backpressure_waits = st.backpressure_waits;
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
      "in-doubt: %d\ncommit latency us: %s\n"
      "wal: %d bytes, %d fsyncs, %.1f records/fsync\n"
      "checkpoints: %d, %d bytes; overlay %d bytes\n"
      "recovery: %d records, %d bytes, %.1f ms\n",
      commits, read_only_commits, cross_shard_commits, rollbacks, aborts_write_conflict,
      aborts_read_validation, aborts_snapshot_too_old, aborts_locked, aborts_too_large,
      aborts_io_error, in_doubt, commit_latency_us, wal_bytes, fsyncs, records_per_fsync,
      checkpoints, checkpoint_bytes, overlay_bytes, recovery_records, recovery_bytes,
      recovery_ms);
  for (const ShardStatsView& s : shards) {
    absl::StrAppendFormat(
        &out,
        "shard %d: wal appends %d bytes %d fsyncs %d (%.1f rec/fsync, max %d) unsynced %d "
        "segments created %d recycled %d; fsync us %s; checkpoints %d (%d bytes, ms %s); "
        "overlay %d bytes; backpressure waits %d; applied LSN %d durable LSN %d; lmdb map %d "
        "(grown %d); recovery %d records %d bytes %.1f ms%s\n",
        s.shard, s.wal_appends, s.wal_bytes, s.wal_fsyncs, s.wal_records_per_fsync,
        s.wal_max_records_per_fsync, s.wal_unsynced_bytes, s.wal_segments_created,
        s.wal_segments_recycled, s.wal_fsync_latency_us, s.checkpoints, s.checkpoint_bytes,
        s.checkpoint_ms, s.overlay_bytes, s.backpressure_waits, s.applied_lsn, s.durable_lsn,
        s.lmdb_map_size, s.lmdb_map_growths, s.recovery_records, s.recovery_bytes,
        s.recovery_ms, s.recovery_torn_tail ? " (torn tail cut)" : "");
  }
  return out;
}

}  // namespace shardtx
