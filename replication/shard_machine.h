// ShardMachine: the StateMachine (simulated_group.h) of one replica of a shard, over a real
// engine::Shard. A released entry is applied by the engine's own redo step (Shard::RedoLocked,
// what crash recovery runs), after its records are appended to the shard's WAL as one kRaftEntry
// record (engine/log_record.h) without waiting for an fsync: the Raft log is the durable one
// (docs/replication-plan.md §5), and the shard's WAL is each replica's log of applied entries.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/shard.h"
#include "replication/simulated_group.h"
#include "replication/snapshot_install.h"
#include "replication/snapshot_stream.h"

namespace shardtx::replication {

class SnapshotSources;

struct ShardMachineOptions {
  // The shard: dir, env and sizes are used as given; the machine's own checkpoints replace the
  // background triggers (none runs), and durable_listener and shared_log must be unset.
  engine::ShardOptions shard;
  uint32_t shard_id = 0;
  // This replica's id, written into its snapshots as their producer.
  uint32_t server = 0;
  // Checkpoint after every this many applied entries (0: never; Close does not either).
  uint64_t checkpoint_every = 0;
  // Where Restore finds a snapshot's producer (may be null: Restore then fails), and where this
  // machine registers itself as `server` while it lives. Not owned; outlives the machine.
  SnapshotSources* sources = nullptr;

  // Catch-up over gRPC (replication/snapshot_stream.h). When snapshot_address is set, Restore
  // streams the snapshot's state from its producer's SnapshotServer at
  // snapshot_address(producer) (empty: unknown producer) instead of using `sources`.
  std::function<std::string(uint32_t server)> snapshot_address;
  // The cluster id both ends of a stream check.
  std::string cluster;
  // This node's SnapshotServer (may be null; not owned; outlives the machine): the machine
  // serves its shard there as shard_id whenever its shard is open.
  SnapshotServer* snapshot_server = nullptr;
};

// A digest of a shard's visible contents: every live key and its value, in key order.
struct ShardDigest {
  uint64_t hash = 0;  // XXH3-64 over (u32 key size, key, u32 value size, value) per key
  uint64_t keys = 0;

  bool operator==(const ShardDigest& o) const { return hash == o.hash && keys == o.keys; }
  bool operator!=(const ShardDigest& o) const { return !(*this == o); }
};

// Checks a released entry's payload before anything of it reaches the WAL of `shard`: a list of
// engine records (engine/log_record.h), each a kCommit or a record the shard's hooks redo on a
// replica (Shard::CheckRedoLocked: in a Database, the transaction layer's kPrepare,
// kCommitPrepared, kAbortPrepared and kDecision, well-formed and fitting the prepared state;
// a ShardMachine's hooks take none). Errors, naming the shard and the raft `index`:
// kInvalidArgument (malformed), the hooks' (kUnimplemented: a record type they do not redo;
// kFailedPrecondition: a record that does not fit the state). REQUIRES shard.commit_mu().
absl::Status CheckEntryPayload(engine::Shard& shard, uint64_t index, absl::string_view payload);

// The digest of `shard` as a reader sees it with every redone or installed version visible.
// Errors: the shard's reads'.
absl::StatusOr<ShardDigest> DigestOf(engine::Shard& shard);

// Not thread-safe: the thread that drives the group calls everything (as StateMachine says).
// The shard's own WAL flusher thread runs beside it, and so do the threads of
// options.snapshot_server while they stream the shard (through SnapshotSource only; CloseShard
// waits for them).
class ShardMachine final : public StateMachine, public SnapshotSource {
 public:
  // Opens the shard in options.shard.dir (creating it; a directory a previous machine left is
  // recovered, its applied Raft position with it). Errors: the shard's Open, kInvalidArgument
  // for options it does not take.
  static absl::StatusOr<std::unique_ptr<ShardMachine>> Open(const ShardMachineOptions& options);
  ShardMachine(const ShardMachine&) = delete;
  ShardMachine& operator=(const ShardMachine&) = delete;
  // Closes the shard without a checkpoint (closing its WAL syncs it).
  ~ShardMachine() override;

  // Applies the entry unless its index is at or below applied().index (then skipped: an entry
  // is never applied twice, across reopens too). entry.payload is a list of engine records
  // (engine::AppendEntryRecord). A failure stops the machine: that entry and every later one
  // are not applied (each counted in failures(); the first error kept) until ReopenShard, since
  // applying an entry above a missing one would diverge from the other replicas. Failures: a
  // malformed payload (kInvalidArgument) or a record type other than kCommit (kUnimplemented:
  // the machine has no transaction layer; a Database's replica, ShardReplica, redoes 2PC
  // records), both before anything reaches the WAL (CheckEntryPayload); the WAL's and redo's
  // errors.
  void Release(const ReleasedEntry& entry) override;
  // Release, with its status (the stopping error, once stopped).
  absl::Status Apply(const ReleasedEntry& entry);

  // Syncs the shard's WAL (everything applied so far becomes durable) and returns the snapshot's
  // metadata: u32 magic, u32 shard id, u32 producer (options.server), u64 raft index, u64 term
  // of the last applied entry, little-endian (28 bytes). The state itself is not in it.
  absl::StatusOr<std::string> Snapshot() override;

  // Takes the snapshot's state. If this replica has applied the snapshot's index already, its
  // own state covers the snapshot and is kept (a restarted node restoring its own snapshot).
  // Otherwise it copies the producer's shard.
  //
  // With options.snapshot_address set (the real path): FetchSnapshot from the producer's
  // SnapshotServer into "<dir>.partial" (bounded memory, every chunk checked), open that copy as
  // a shard to check it reaches the snapshot's Raft index, then close this shard, exchange the
  // directories atomically (InstallSnapshotDir) and reopen. Any failure before the exchange
  // leaves this shard's state and directory as they were, open, and applies nothing.
  //
  // SIMULATION ONLY, without snapshot_address: the producer is looked up in options.sources and
  // its shard is copied from its directory in this process (CopyTo: LMDB copy + WAL tail, as
  // Database::Backup does), for the deterministic fixture tests.
  //
  // Errors, with the current state kept: kInvalidArgument (not a snapshot of this shard; the
  // stream's cluster or shard differ), kNotFound (producer unknown), kDataLoss (the producer
  // has not applied the snapshot's index; a stream failed its checks; the copy falls short of
  // the index), FetchSnapshot's (kUnavailable when the stream broke). After the exchange: the
  // reopen's, kInternal if the copy falls short.
  absl::Status Restore(std::string_view snapshot) override;

  // SnapshotSource, for options.snapshot_server (called from its threads while registered).
  engine::Shard& snapshot_shard() override { return *shard_; }
  std::string snapshot_shard_dir() override { return options_.shard.dir; }
  void PinWal(engine::Lsn lsn) override;

  // Writes a consistent copy of this shard into `dir` (which must not exist): its LMDB store and
  // its WAL from the store's applied LSN through the last record, synced. Opening `dir` gives
  // a shard with at least the state and Raft position this one had when the copy began.
  absl::Status CopyTo(const std::string& dir);

  // Closes the shard and opens it again from its directory: crash recovery (LMDB, then redo of
  // the WAL above its applied LSN). A successful reopen clears a stop (see Release). With a
  // FaultInjectionEnv, crash the env between the two (CloseShard, SimulateCrash, Reset,
  // ReopenShard). REQUIRES for ReopenShard: closed.
  absl::Status CloseShard();
  absl::Status ReopenShard();

  // The last entry applied (from the shard: survives reopening).
  engine::RaftPosition applied();
  // DigestOf(shard()).
  absl::StatusOr<ShardDigest> Digest();
  // The visible value of `key`, or nullopt.
  absl::StatusOr<std::optional<std::string>> Get(std::string_view key);
  // REQUIRES: open.
  engine::Shard& shard() { return *shard_; }

  uint64_t entries_applied() const { return entries_applied_; }
  uint64_t entries_skipped() const { return entries_skipped_; }
  uint64_t restores() const { return restores_; }
  uint64_t restores_kept() const { return restores_kept_; }  // own state already covered it
  uint64_t failures() const { return failures_; }
  const absl::Status& first_error() const { return first_error_; }
  bool stopped() const { return !stop_.ok(); }

 private:
  explicit ShardMachine(const ShardMachineOptions& options);
  absl::Status ApplyOnce(const ReleasedEntry& entry);
  // Restore's two ways of getting a copy at or above `at` into `staging` (not existing).
  absl::Status StreamCopy(uint32_t producer, engine::RaftPosition at, const std::string& staging);
  absl::Status LocalCopy(uint32_t producer, engine::RaftPosition at, const std::string& staging);

  const ShardMachineOptions options_;
  std::unique_ptr<ReplicaShardHooks> hooks_;
  std::unique_ptr<engine::Shard> shard_;
  bool serving_ = false;  // registered with options_.snapshot_server
  uint64_t entries_applied_ = 0, entries_skipped_ = 0;
  uint64_t restores_ = 0, restores_kept_ = 0, failures_ = 0;
  absl::Status first_error_;
  absl::Status stop_;  // why Apply refuses entries until ReopenShard; OK when it does not
};

// SIMULATION ONLY (see ShardMachine::Restore): the live machines of one process by server id, so
// that a restoring machine can find a snapshot's producer. Not thread-safe.
class SnapshotSources {
 public:
  void Add(uint32_t server, ShardMachine* machine) { machines_[server] = machine; }
  void Remove(uint32_t server, ShardMachine* machine) {
    auto it = machines_.find(server);
    if (it != machines_.end() && it->second == machine) machines_.erase(it);
  }
  ShardMachine* Find(uint32_t server) const {
    auto it = machines_.find(server);
    return it == machines_.end() ? nullptr : it->second;
  }

 private:
  absl::flat_hash_map<uint32_t, ShardMachine*> machines_;
};

}  // namespace shardtx::replication
