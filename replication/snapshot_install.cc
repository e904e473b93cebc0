#include "replication/snapshot_install.h"

#include <filesystem>
#include <memory>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "engine/log_record.h"
#include "util/coding.h"
#include "util/mutex.h"
#include "util/status_macros.h"

namespace shardtx::replication {

namespace {

constexpr uint32_t kSnapshotMagic = 0x53484d31;  // "SHM1"
constexpr size_t kSnapshotSize = 4 + 4 + 4 + 8 + 8;

absl::Status RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return absl::InternalError(absl::StrCat("remove ", path, ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace

std::string EncodeSnapshotMeta(const SnapshotMeta& meta) {
  std::string out;
  PutFixed32(&out, kSnapshotMagic);
  PutFixed32(&out, meta.shard);
  PutFixed32(&out, meta.producer);
  PutFixed64(&out, meta.at.index);
  PutFixed64(&out, meta.at.term);
  return out;
}

absl::StatusOr<SnapshotMeta> DecodeSnapshotMeta(uint32_t shard, std::string_view bytes) {
  absl::string_view in(bytes.data(), bytes.size());
  uint32_t magic = 0;
  SnapshotMeta meta;
  if (in.size() != kSnapshotSize || !GetFixed32(&in, &magic) || magic != kSnapshotMagic ||
      !GetFixed32(&in, &meta.shard) || !GetFixed32(&in, &meta.producer) ||
      !GetFixed64(&in, &meta.at.index) || !GetFixed64(&in, &meta.at.term)) {
    return absl::InvalidArgumentError(absl::StrCat("shard ", shard, ": not a shard snapshot"));
  }
  if (meta.shard != shard) {
    return absl::InvalidArgumentError(
        absl::StrCat("shard ", shard, ": snapshot of shard ", meta.shard));
  }
  return meta;
}

absl::StatusOr<std::optional<engine::ShardHooks::RedoInstall>> ReplicaShardHooks::Redo(
    uint32_t shard, engine::Lsn lsn, bool, uint8_t type, absl::string_view) {
  if (type == engine::kCommit || position_only_) return std::optional<RedoInstall>();
  return absl::UnimplementedError(
      absl::StrCat("shard ", shard, ": record type ", type, " at LSN ", lsn,
                   " needs the transaction layer, which replicas do not redo yet"));
}

absl::Status FetchCheckedCopy(const FetchOptions& fetch, const engine::ShardOptions& shard,
                              engine::RaftPosition at, const std::string& staging) {
  absl::StatusOr<FetchResult> fetched = FetchSnapshot(fetch, staging);
  if (!fetched.ok()) {
    // The producer not having applied the index is the same loss as a copy that falls short.
    if (absl::IsFailedPrecondition(fetched.status())) {
      return absl::DataLossError(fetched.status().message());
    }
    return fetched.status();
  }
  // Open the copy before it replaces anything: it must recover and reach the snapshot.
  engine::ShardOptions o = shard;
  o.dir = staging;
  o.durable_listener = nullptr;
  o.checkpoint_interval = absl::ZeroDuration();
  o.checkpoint_wal_bytes = 0;
  o.checkpoint_overlay_bytes = 0;
  ReplicaShardHooks hooks(/*position_only=*/true);  // a Database's copy holds 2PC records
  ASSIGN_OR_RETURN(std::unique_ptr<engine::Shard> copy,
                   engine::Shard::Open(fetch.shard, o, &hooks));
  engine::RaftPosition reached;
  {
    MutexLock l(copy->commit_mu());
    reached = copy->raft_applied_locked();
  }
  RETURN_IF_ERROR(copy->Close(/*checkpoint=*/false));
  if (reached.index < at.index || reached.index < fetched->raft.index) {
    return absl::DataLossError(absl::StrCat("shard ", fetch.shard, ": the stream from server ",
                                            fetched->producer, " reaches raft index ",
                                            reached.index, ", the snapshot ", at.index,
                                            " and the stream's header ", fetched->raft.index));
  }
  return absl::OkStatus();
}

absl::Status InstallCopy(const std::string& dir,
                         const std::function<absl::Status(const std::string& staging)>& copy,
                         const std::function<absl::Status(const std::string& staging)>& swap_in) {
  const std::string staging = dir + ".partial";
  RETURN_IF_ERROR(RemoveTree(staging));  // a leftover of a crash
  absl::Status s = copy(staging);
  if (s.ok()) s = swap_in(staging);
  if (!s.ok()) RemoveTree(staging).IgnoreError();
  return s;
}

}  // namespace shardtx::replication
