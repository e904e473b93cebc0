#include "replication/shard_machine.h"

#include <xxhash.h>

#include <atomic>
#include <filesystem>
#include <limits>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/log_record.h"
#include "util/coding.h"
#include "util/mutex.h"
#include "util/status_macros.h"

namespace shardtx::replication {

namespace {

absl::string_view ToAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

std::string ParentOf(const std::string& path) {
  std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

}  // namespace

absl::Status CheckEntryPayload(engine::Shard& shard, uint64_t index, absl::string_view payload) {
  std::vector<engine::EntryRecord> records;
  if (!engine::DecodeEntryRecords(payload, &records)) {
    return absl::InvalidArgumentError(
        absl::StrCat("shard ", shard.id(), ": malformed entry payload at raft index ", index));
  }
  // Refused before anything reaches the WAL: a record the shard's hooks cannot redo here.
  if (absl::Status s = shard.CheckRedoLocked(records); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("shard ", shard.id(), ": entry at raft index ",
                                               index, " refused: ", s.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<ShardDigest> DigestOf(engine::Shard& shard) {
  ASSIGN_OR_RETURN(std::unique_ptr<engine::Shard::View> view,
                   shard.Pin(std::numeric_limits<engine::Timestamp>::max()));
  XXH3_state_t* state = XXH3_createState();
  if (state == nullptr) return absl::ResourceExhaustedError("XXH3_createState");
  XXH3_64bits_reset(state);
  ShardDigest digest;
  engine::Shard::ScanBatch batch;
  std::string from;
  bool inclusive = true;
  absl::Status status;
  while (true) {
    status =
        engine::Shard::ScanVisible(view.get(), from, inclusive, /*reverse=*/false, 256, &batch);
    if (!status.ok()) break;
    for (const auto& [key, value] : batch.entries) {
      char sizes[4];
      EncodeFixed32(sizes, static_cast<uint32_t>(key.size()));
      XXH3_64bits_update(state, sizes, sizeof sizes);
      XXH3_64bits_update(state, key.data(), key.size());
      EncodeFixed32(sizes, static_cast<uint32_t>(value.size()));
      XXH3_64bits_update(state, sizes, sizeof sizes);
      XXH3_64bits_update(state, value.data(), value.size());
      ++digest.keys;
    }
    if (batch.done) break;
    from = batch.resume;
    inclusive = false;
  }
  digest.hash = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  if (!status.ok()) return status;
  return digest;
}

ShardMachine::ShardMachine(const ShardMachineOptions& options)
    : options_(options), hooks_(std::make_unique<ReplicaShardHooks>()) {}

absl::StatusOr<std::unique_ptr<ShardMachine>> ShardMachine::Open(
    const ShardMachineOptions& options) {
  if (options.shard.durable_listener != nullptr || options.shard.shared_log ||
      options.shard.env == nullptr || options.shard.dir.empty()) {
    return absl::InvalidArgumentError(
        "ShardMachine: needs a directory and an Env, and takes no durable listener or shared log");
  }
  std::unique_ptr<ShardMachine> m(new ShardMachine(options));
  RETURN_IF_ERROR(m->ReopenShard());
  if (options.sources != nullptr) options.sources->Add(options.server, m.get());
  return m;
}

ShardMachine::~ShardMachine() {
  if (options_.sources != nullptr) options_.sources->Remove(options_.server, this);
  CloseShard().IgnoreError();
}

absl::Status ShardMachine::CloseShard() {
  if (shard_ == nullptr) return absl::OkStatus();
  if (serving_) {
    options_.snapshot_server->RemoveShard(options_.shard_id);  // waits for its streams
    serving_ = false;
  }
  absl::Status s = shard_->Close(/*checkpoint=*/false);
  shard_.reset();
  return s;
}

absl::Status ShardMachine::ReopenShard() {
  if (shard_ != nullptr) return absl::FailedPreconditionError("ShardMachine: shard is open");
  engine::ShardOptions o = options_.shard;
  // The machine checkpoints itself (checkpoint_every); no background thread runs.
  o.checkpoint_interval = absl::ZeroDuration();
  o.checkpoint_wal_bytes = 0;
  o.checkpoint_overlay_bytes = 0;
  ASSIGN_OR_RETURN(shard_, engine::Shard::Open(options_.shard_id, o, hooks_.get()));
  stop_ = absl::OkStatus();
  if (options_.snapshot_server != nullptr) {
    RETURN_IF_ERROR(options_.snapshot_server->AddShard(options_.shard_id, this));
    serving_ = true;
  }
  return absl::OkStatus();
}

void ShardMachine::Release(const ReleasedEntry& entry) { Apply(entry).IgnoreError(); }

absl::Status ShardMachine::Apply(const ReleasedEntry& entry) {
  absl::Status s = stop_.ok() ? ApplyOnce(entry) : stop_;
  if (!s.ok()) {
    ++failures_;
    if (first_error_.ok()) first_error_ = s;
    if (stop_.ok()) stop_ = s;
  }
  return s;
}

absl::Status ShardMachine::ApplyOnce(const ReleasedEntry& entry) {
  if (shard_ == nullptr) return absl::FailedPreconditionError("ShardMachine: shard is closed");
  const absl::string_view payload = ToAbsl(entry.payload);
  {
    MutexLock l(shard_->commit_mu());
    if (entry.index <= shard_->raft_applied_locked().index) {
      ++entries_skipped_;  // applied before (this run, or before a reopen)
      return absl::OkStatus();
    }
    RETURN_IF_ERROR(CheckEntryPayload(*shard_, entry.index, payload));
    // One WAL record for the whole entry, so that a crash keeps all of it or none; no fsync
    // (libraft's log holds the entry durably; Snapshot syncs).
    const std::string record =
        engine::EncodeRaftEntry(engine::RaftPosition{entry.index, entry.term}, payload);
    ASSIGN_OR_RETURN(engine::Lsn lsn,
                     shard_->AppendLocked(engine::kRaftEntry, record, engine::Durability::kNone));
    // Crash recovery's step. Its failure (a malformed commit record inside a well-formed entry:
    // every replica fails it alike) leaves the record in the WAL, and reopening reports the
    // same error: the entry stops this replica for good, as it would stop recovery.
    RETURN_IF_ERROR(shard_->RedoLocked(lsn, engine::kRaftEntry, record, /*applied=*/false));
  }
  ++entries_applied_;
  if (options_.checkpoint_every != 0 && entries_applied_ % options_.checkpoint_every == 0) {
    RETURN_IF_ERROR(shard_->Checkpoint());
  }
  return absl::OkStatus();
}

void ShardMachine::PinWal(engine::Lsn lsn) { hooks_->pinned.store(lsn); }

engine::RaftPosition ShardMachine::applied() {
  MutexLock l(shard_->commit_mu());
  return shard_->raft_applied_locked();
}

absl::StatusOr<std::string> ShardMachine::Snapshot() {
  if (shard_ == nullptr) return absl::FailedPreconditionError("ShardMachine: shard is closed");
  RETURN_IF_ERROR(shard_->SyncWal());
  const engine::RaftPosition at = applied();
  return EncodeSnapshotMeta(SnapshotMeta{options_.shard_id, options_.server, at});
}

absl::Status ShardMachine::CopyTo(const std::string& dir) {
  if (shard_ == nullptr) return absl::FailedPreconditionError("ShardMachine: shard is closed");
  Env* env = options_.shard.env;
  RETURN_IF_ERROR(env->CreateDir(dir));
  // As Database::Backup does for one shard: the WAL from the store's applied LSN (nothing
  // truncates it meanwhile: checkpoints run only inside Apply, on this thread), the store, then
  // the cut, once durable.
  const engine::Lsn from = shard_->applied_lsn() + 1;
  ASSIGN_OR_RETURN(const engine::Lsn copied, shard_->CopyStoreTo(dir));
  engine::Lsn cut;
  {
    MutexLock l(shard_->commit_mu());
    cut = shard_->last_lsn_locked();
  }
  if (copied > cut || from > copied + 1) {
    return absl::InternalError(absl::StrCat("copy of shard ", options_.shard_id, ": store at LSN ",
                                            copied, " outside [", from - 1, ", ", cut, "]"));
  }
  RETURN_IF_ERROR(shard_->SyncWal());
  RETURN_IF_ERROR(shard_->CopyWalTo(dir, from, cut));
  RETURN_IF_ERROR(env->SyncDir(dir));
  return env->SyncDir(ParentOf(dir));
}

absl::Status ShardMachine::Restore(std::string_view snapshot) {
  ASSIGN_OR_RETURN(const SnapshotMeta meta, DecodeSnapshotMeta(options_.shard_id, snapshot));
  const engine::RaftPosition at = meta.at;
  if (shard_ == nullptr) return absl::FailedPreconditionError("ShardMachine: shard is closed");
  if (applied().index >= at.index) {
    ++restores_kept_;  // this replica's own state already covers the snapshot
    return absl::OkStatus();
  }
  // A copy beside the shard's directory, checked, then exchanged with it: a failure before the
  // exchange leaves the state as it was.
  const std::string& dir = options_.shard.dir;
  RETURN_IF_ERROR(InstallCopy(
      dir,
      [&](const std::string& staging) {
        return options_.snapshot_address ? StreamCopy(meta.producer, at, staging)
                                         : LocalCopy(meta.producer, at, staging);
      },
      [&](const std::string& staging) {
        RETURN_IF_ERROR(CloseShard());
        if (absl::Status s = InstallSnapshotDir(staging, dir); !s.ok()) {
          RETURN_IF_ERROR(ReopenShard());
          return s;
        }
        return ReopenShard();
      }));
  ++restores_;
  if (const engine::RaftPosition now = applied(); now.index < at.index) {
    return absl::InternalError(absl::StrCat("shard ", options_.shard_id, ": copy of server ",
                                            meta.producer, " reaches raft index ", now.index,
                                            ", the snapshot ", at.index));
  }
  return absl::OkStatus();
}

absl::Status ShardMachine::LocalCopy(uint32_t producer, engine::RaftPosition at,
                                     const std::string& staging) {
  ShardMachine* source = options_.sources == nullptr ? nullptr : options_.sources->Find(producer);
  if (source == nullptr || source == this) {
    return absl::NotFoundError(
        absl::StrCat("shard ", options_.shard_id, ": no copy of snapshot producer ", producer));
  }
  // The copy holds at least what the producer has applied now.
  if (const engine::RaftPosition has = source->applied(); has.index < at.index) {
    return absl::DataLossError(absl::StrCat("shard ", options_.shard_id, ": server ", producer,
                                            " has applied raft index ", has.index,
                                            ", its snapshot ", at.index));
  }
  return source->CopyTo(staging);
}

absl::Status ShardMachine::StreamCopy(uint32_t producer, engine::RaftPosition at,
                                      const std::string& staging) {
  FetchOptions f;
  f.address = options_.snapshot_address(producer);
  if (f.address.empty()) {
    return absl::NotFoundError(
        absl::StrCat("shard ", options_.shard_id, ": no address for snapshot producer ", producer));
  }
  f.cluster = options_.cluster;
  f.shard = options_.shard_id;
  f.min_raft_index = at.index;
  f.env = options_.shard.env;
  return FetchCheckedCopy(f, options_.shard, at, staging);
}

absl::StatusOr<ShardDigest> ShardMachine::Digest() {
  if (shard_ == nullptr) return absl::FailedPreconditionError("ShardMachine: shard is closed");
  return DigestOf(*shard_);
}

absl::StatusOr<std::optional<std::string>> ShardMachine::Get(std::string_view key) {
  if (shard_ == nullptr) return absl::FailedPreconditionError("ShardMachine: shard is closed");
  ASSIGN_OR_RETURN(std::unique_ptr<engine::Shard::View> view,
                   shard_->Pin(std::numeric_limits<engine::Timestamp>::max()));
  ASSIGN_OR_RETURN(std::optional<engine::Found> found, engine::Shard::Get(view.get(), ToAbsl(key)));
  if (!found.has_value() || found->tombstone) return std::optional<std::string>();
  return std::optional<std::string>(std::string(found->value));
}

}  // namespace shardtx::replication
