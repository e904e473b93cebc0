// What ShardMachine (the simulator's replica) and ShardReplica (a Database's) share to take a
// Raft snapshot of a shard: the snapshot's metadata (the libraft snapshot carries only this; the
// state moves over the snapshot stream, replication/snapshot_stream.h), the hooks of a shard
// opened by replication alone, and the fetch-check-swap sequence that installs a producer's copy.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/shard.h"
#include "replication/snapshot_stream.h"

namespace shardtx::replication {

// A snapshot's metadata: u32 magic, u32 shard id, u32 producer, u64 raft index, u64 term of the
// last applied entry, little-endian (28 bytes).
struct SnapshotMeta {
  uint32_t shard = 0;
  uint32_t producer = 0;
  engine::RaftPosition at;
};
std::string EncodeSnapshotMeta(const SnapshotMeta& meta);
// kInvalidArgument (naming `shard`) if `bytes` is not a snapshot, or one of another shard.
absl::StatusOr<SnapshotMeta> DecodeSnapshotMeta(uint32_t shard, std::string_view bytes);

// The hooks of a shard that replication opens on its own (no transaction layer): no tables, only
// the engine's own kCommit records (CheckRedo refuses the others), and the WAL pin of the
// snapshot streams copying it. With `position_only` (a fetched copy opened only to check the
// Raft position it reaches), the transaction layer's records are passed over: redone without
// their writes.
class ReplicaShardHooks final : public engine::ShardHooks {
 public:
  explicit ReplicaShardHooks(bool position_only = false) : position_only_(position_only) {}
  absl::Status WaitVisible(engine::Timestamp) override { return absl::OkStatus(); }
  std::vector<std::string> CheckpointTableNames() override { return {}; }
  absl::Status LoadTable(uint32_t, const std::string&,
                         const std::vector<std::pair<std::string, std::string>>&) override {
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<RedoInstall>> Redo(uint32_t shard, engine::Lsn lsn, bool,
                                                  uint8_t type, absl::string_view) override;
  std::vector<engine::TableWrite> CheckpointTables(uint32_t) override { return {}; }
  void CheckpointCommitted(uint32_t) override {}
  engine::Lsn PinnedLsn(uint32_t) override { return pinned.load(); }

  std::atomic<engine::Lsn> pinned{0};

 private:
  const bool position_only_;
};

// Fetches the shard named by `fetch` from its producer's SnapshotServer into `staging` (which
// must not exist), then opens the copy as a shard (options `shard`, dir replaced) to check that it
// recovers to at least raft index `at.index` and the stream's own header; the copy is closed again
// before this returns. On failure `staging` may remain (InstallCopy removes it). Errors:
// FetchSnapshot's (kFailedPrecondition, the producer not having applied the index, becomes
// kDataLoss), the copy's Open, kDataLoss if it falls short.
absl::Status FetchCheckedCopy(const FetchOptions& fetch, const engine::ShardOptions& shard,
                              engine::RaftPosition at, const std::string& staging);

// The install sequence: `copy` writes a checked copy into "<dir>.partial" (removed first: a
// crash's leftover), then `swap_in` puts it in place of `dir` (InstallSnapshotDir, and the
// reopen). Either failing removes the staging directory and returns its error; `copy` failing
// leaves `dir` untouched.
absl::Status InstallCopy(const std::string& dir,
                         const std::function<absl::Status(const std::string& staging)>& copy,
                         const std::function<absl::Status(const std::string& staging)>& swap_in);

}  // namespace shardtx::replication
