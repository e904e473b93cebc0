// The engines txbench drives, behind one small transactional interface so that every workload
// is written once and every engine runs exactly the same operations.
//
// Status conventions for all Session calls: kNotFound (Get of a missing key), kAborted
// (retryable: the runner starts the transaction over and counts an abort), anything else is a
// hard error that stops the run (kUnimplemented included: shardtx's cross-shard commit before
// it lands).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "bench/txbench/config.h"
#include "bench/txbench/keyspace.h"

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
  // Abandons the transaction (after a failed call). Never fails.
  virtual void Rollback() = 0;
};

struct EngineSetup {
  std::string dir;  // fresh, empty directory of this run
  uint32_t shards = 1;
  int threads = 1;
  DurabilityMode durability = DurabilityMode::kSync;
  // rocksdb: one TransactionDB per shard (and RocksDB's 2PC across them) rather than one.
  bool per_shard = false;
  const KeySpace* keys = nullptr;  // key -> shard map; outlives the engine
};

class Engine {
 public:
  virtual ~Engine() = default;
  virtual std::unique_ptr<Session> NewSession() = 0;

  // While on, commits need not be durable (preload); turning it off makes everything written
  // so far durable and settled in the engine's stable store (shardtx checkpoint, RocksDB
  // memtable flush, LMDB sync), so that every run starts from the same kind of state.
  virtual absl::Status SetBulkLoad(bool on) = 0;

  // fsync-type calls made so far (WAL and data syncs), or nullopt when the engine cannot tell.
  virtual std::optional<uint64_t> Fsyncs() = 0;
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
