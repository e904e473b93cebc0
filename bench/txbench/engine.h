// The engines txbench drives, behind one small transactional interface so that every workload
// is written once and every engine runs exactly the same operations.
//
// Status conventions for all Session calls: kNotFound (Get of a missing key), kAborted
// (retryable: the runner starts the transaction over and counts an abort), anything else is a
// hard error that stops the run.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "bench/txbench/catch_up.h"
#include "bench/txbench/config.h"
#include "bench/txbench/keyspace.h"
#include "bench/txbench/loopback_cluster.h"

namespace txbench {

// What a transaction will do, declared at Begin so that each engine can use the read path its
// users would: LMDB's read-only transaction, a RocksDB snapshot (or none for a single read).
enum class TxnShape {
  kReadWrite,
  kReadOnly,    // only Gets, from one snapshot
  kSingleRead,  // exactly one Get
};

// One client's connection: runs one transaction at a time. Used by one thread.
class Session {
 public:
  virtual ~Session() = default;
  virtual void Begin(TxnShape shape) = 0;
  virtual absl::StatusOr<std::string> Get(const std::string& key) = 0;
  // A read of a key the transaction will write, where the value written depends on it (bank).
  // Pessimistic engines lock it (RocksDB GetForUpdate); shardtx and LMDB read as usual.
  virtual absl::StatusOr<std::string> GetForUpdate(const std::string& key) = 0;
  virtual absl::Status Put(const std::string& key, absl::string_view value) = 0;
  // Commits; kAborted means the transaction had no effect and may be retried.
  virtual absl::Status Commit() = 0;
  // Commits without waiting (shardtx's Transaction::CommitAsync): an error returned at once
  // means `done` is never called (kAborted: retry); OK means `done` is called once, on
  // another thread, when the commit is durable and visible (or failed). The session is free
  // for its next transaction as soon as this returns. kUnimplemented by other engines.
  virtual absl::Status CommitAsync(std::function<void(absl::Status)> done) {
    (void)done;
    return absl::UnimplementedError("this engine has no asynchronous commit");
  }
  // Abandons the transaction (after a failed call). Never fails.
  virtual void Rollback() = 0;
};

// How the rocksdb engine commits a transaction that writes on several of its per-shard
// TransactionDBs (see rocksdb_engine.cc and bench/txbench/README.md).
enum class Rocksdb2pc {
  // Prepares in parallel (the coordinator's unsynced, the others synced), a synced decision
  // in the coordinator's DB, then commits that do not wait for their sync: two fsync rounds,
  // as shardtx.
  kCareful,
  // Sessions 1-6's baseline, kept for comparison: prepare on each participant, then commit on
  // each, one after the other, every one synced: 2 x participants fsync rounds.
  kSerial,
};

struct EngineSetup {
  std::string dir;  // fresh, empty directory of this run
  uint32_t shards = 1;
  int threads = 1;
  DurabilityMode durability = DurabilityMode::kSync;
  // rocksdb: one TransactionDB per shard (and 2PC across them) rather than one.
  bool per_shard = false;
  // shardtx: Options::log_layout = kShared (one log for all shards) rather than kPerShard.
  bool shared_log = false;
  Rocksdb2pc rocksdb_2pc = Rocksdb2pc::kCareful;
  // shardtx: 0, or this many replicated Databases in dir/node1 .. dir/nodeN, sessions on
  // node 1 (OpenLoopbackCluster).
  int replicas = 0;
  // replicas > 0: ReplicationOptions::snapshot_threshold / snapshot_trailing (0: the library's).
  uint32_t raft_snapshot_threshold = 0;
  uint32_t raft_snapshot_trailing = 0;
  // replicas > 0: ReplicationOptions::closed_ts_refresh (follower reads' staleness).
  absl::Duration closed_ts_refresh = absl::InfiniteDuration();
  const KeySpace* keys = nullptr;  // key -> shard map; outlives the engine
};

class Engine {
 public:
  virtual ~Engine() = default;
  virtual std::unique_ptr<Session> NewSession() = 0;
  // The replicated engine: a session on node `node` (1 .. replicas), its transactions follower
  // reads (TxnOptions::follower_read, at most `max_staleness` stale) when `follower_read`, else
  // as NewSession's. A follower read refused as too stale (kUnavailable) comes back from Get or
  // Commit as kAborted (retry). nullptr from every other engine, or for a node out of range.
  virtual std::unique_ptr<Session> NewSessionOn(int node, bool follower_read,
                                                absl::Duration max_staleness) {
    (void)node;
    (void)follower_read;
    (void)max_staleness;
    return nullptr;
  }

  // While on, commits need not be durable (preload); turning it off makes everything written
  // so far durable and settled in the engine's stable store (shardtx checkpoint, RocksDB
  // memtable flush, LMDB sync), so that every run starts from the same kind of state.
  virtual absl::Status SetBulkLoad(bool on) = 0;

  // Does now, and waits for, the work the engine defers past its commits (shardtx: a
  // checkpoint into LMDB; RocksDB: memtable flush and the compactions it triggers; LMDB:
  // nothing, its commits write the B-tree). The runner calls it inside every measured window,
  // so that no engine leaves part of its cost outside the clock.
  virtual absl::Status SettleDeferredWork() = 0;

  // The durability of the coming runs' transactions, when it may differ from
  // EngineSetup::durability (shardtx's per-transaction TxnOptions); other engines accept only
  // their setup's (kUnimplemented otherwise).
  virtual absl::Status SetRunDurability(DurabilityMode durability) = 0;

  // fsync-type calls made so far (WAL and data syncs), or nullopt when the engine cannot tell.
  virtual std::optional<uint64_t> Fsyncs() = 0;
  // A replicated engine's counters, one entry per replica (node 1 first), since open; empty
  // for every other engine.
  virtual std::vector<ReplicaCounters> Replicas() { return {}; }
  // A replicated engine's commits that failed, since open, because node 1 did not lead every
  // shard (leadership moving, or lost): refused with no effect (kUnavailable) or of unknown
  // outcome (kUnknown); each was retried once node 1 led again. Zero for every other engine.
  struct LeadershipLosses {
    uint64_t unavailable = 0;
    uint64_t unknown = 0;
  };
  virtual LeadershipLosses LostLeadership() { return {}; }
  // The replicated engine: its catch-up phase (MeasureCatchUp on its cluster, catch_up.h).
  // kUnimplemented for every other engine.
  virtual absl::StatusOr<CatchUpResult> CatchUp(
      const CatchUpSpec& spec, const std::function<void(const std::string&, bool)>& progress) {
    (void)spec;
    (void)progress;
    return absl::UnimplementedError("only the replicated engine has a catch-up phase");
  }
  // Engine-specific figures worth printing after a run (abort causes, batching), or "".
  virtual std::string Notes() { return ""; }
  // One line describing the engine's configuration for the run header.
  virtual std::string Describe() const = 0;
  // Closes; the engine must not be used afterwards.
  virtual absl::Status Close() = 0;
};

absl::StatusOr<std::unique_ptr<Engine>> OpenShardtx(const EngineSetup& setup);
absl::StatusOr<std::unique_ptr<Engine>> OpenLmdb(const EngineSetup& setup);
// kUnimplemented when txbench was built without RocksDB.
absl::StatusOr<std::unique_ptr<Engine>> OpenRocksdb(const EngineSetup& setup);
bool HaveRocksdb();

absl::StatusOr<std::unique_ptr<Engine>> OpenEngine(EngineKind kind, const EngineSetup& setup);

// Versions for the report ("7.8.3", "0.9.24").
std::string RocksdbVersion();
std::string LmdbVersion();

}  // namespace txbench
