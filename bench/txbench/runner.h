// The runner: each engine opened once in a fresh directory and preloaded (a Contender), then
// measured windows: N client threads running transactions for S seconds (aborts retried and
// counted), then the engine's deferred work (Engine::SettleDeferredWork) inside the same
// window, and the figures the report prints.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bench/txbench/catch_up.h"
#include "bench/txbench/config.h"

namespace txbench {

// One replica's durable writes over a measured window (the replicated engine only).
struct ReplicaFigures {
  uint64_t node_id = 0;
  double raft_log_writes_per_s = 0;
  double raft_entries_per_write = 0;  // 0 when it wrote nothing
  double wal_fsyncs_per_s = 0;        // its applied log's fdatasyncs
  double wal_records_per_fsync = 0;   // 0 when it synced nothing
  double lmdb_syncs_per_s = 0;        // checkpoint LMDB transactions and meta pages
  // Follower reads (--workload=readonly): read-only transactions this replica committed over the
  // window (Stats::read_only_commits: the reads it served), and follower reads it refused as
  // staler than max_staleness (Stats::follower_reads_too_stale).
  uint64_t reads_served = 0;
  uint64_t reads_too_stale = 0;
};

// --replicas --workload=readonly: what a window's readers, writers and the followers' stats saw.
struct ReadonlyFigures {
  // Over the replicas of replica_figures (node 1 first): the share of the reads served by nodes
  // other than node 1 (0 when no read was served).
  double follower_share = 0;
  uint64_t reads_too_stale = 0;           // over every node
  uint64_t writes = 0, write_aborts = 0;  // the background transfers on node 1
  double writes_per_s = 0;
  uint64_t sums_checked = 0;  // read transactions whose group sum was checked
  uint64_t violations = 0;    // ... and was not the group's initial total
  std::string first_violation;
  // The followers' staleness (nodes 2..N, Stats' follower_staleness_ms, the largest over the
  // shards of a node), sampled every 100 ms during the window: the median and largest of the
  // known samples, and how many samples were not known (-1) out of how many.
  double staleness_median_ms = -1, staleness_max_ms = -1;
  int staleness_samples = 0, staleness_unknown = 0;
};

struct RunResult {
  RunSpec spec;
  int replicas = 0;                             // kShardtxReplicated: Config::replicas
  uint32_t shards = 1;                          // the run's (ShardsOf)
  LogLayout log_layout = LogLayout::kPerShard;  // the run's (LogLayoutOf)
  DurabilityMode durability = DurabilityMode::kSync;
  absl::Status status;  // not OK: the run failed (the figures below are not valid)
  std::string engine_description;
  std::string notes;  // Engine::Notes() after the run
  int rep = 0;        // which repetition of the plan this window belongs to

  uint64_t committed = 0;    // committed transactions in the measured window
  uint64_t aborts = 0;       // aborted attempts (each retried)
  uint64_t ops = 0;          // Gets and Puts of committed transactions
  uint64_t cross_shard = 0;  // committed transactions that wrote on several shards
  // From the start signal until every client stopped and the engine's deferred work was done
  // (settle_s of it): txn/s = committed / elapsed_s.
  double elapsed_s = 0;
  double settle_s = 0;

  double txn_per_s = 0, ops_per_s = 0, abort_pct = 0;
  // Latency of committed transactions, first attempt to successful commit, microseconds.
  double p50_us = 0, p95_us = 0, p99_us = 0, p999_us = 0;
  std::optional<double> fsyncs_per_s;  // nullopt: the engine cannot tell
  double cpu_cores = 0;                // this process's CPU seconds per second
  double other_cores = 0;              // the rest of the machine's
  double preload_s = 0;
  std::optional<int64_t> bank_total;            // bank: the checked total
  std::vector<ReplicaFigures> replica_figures;  // replicated: one per replica, node 1 first
  // Replicated: commits of the window that failed because node 1 did not lead every shard,
  // kUnavailable (no effect) and kUnknown (maybe committed); each retried (counted in aborts).
  uint64_t leadership_unavailable = 0, leadership_unknown = 0;
  // Replicated readonly (spec.reads != kNone): its figures; committed counts the reads.
  std::optional<ReadonlyFigures> readonly;
};

// Called with a transient progress text (nullptr-free); the runner prints nothing itself.
using ProgressFn = std::function<void(const std::string& line, bool transient)>;

class Engine;
class FsyncFile;
class KeySpace;

// One engine opened on a directory of its own under config.dir and preloaded, measured in as
// many windows as the schedule asks (engines of one invocation stay open side by side, so
// that repetitions can alternate between them without preloading again); or, for kFsync, the
// fsync floor's preallocated file. Several runs of the plan may share a contender (shardtx
// serves single and cross workloads alike); ContenderKey says which.
class Contender {
 public:
  // Opens the engine of `spec` for its workload (which decides RocksDB's layout and the bank's
  // balances), its shard count and shardtx log layout (ShardsOf, LogLayoutOf), ready for up
  // to max_threads client threads, and preloads the keys. The fsync floor's contender
  // (kFsync) creates max_threads files.
  static absl::StatusOr<std::unique_ptr<Contender>> Open(const Config& config, const RunSpec& spec,
                                                         int max_threads,
                                                         const ProgressFn& progress);
  ~Contender();

  // One window of `spec` (which must match this contender): `seconds` of client threads, then
  // the engine's deferred work, all on the clock. The client threads' seeds derive from
  // `seed`, so that every engine of a repetition runs the same transactions. A bank run checks
  // the total afterwards (a wrong total fails the run).
  RunResult Measure(const RunSpec& spec, double seconds, uint64_t seed, const ProgressFn& progress);

  // The replicated engine's catch-up phase (catch_up.h) with config.catchup_bytes and the
  // deadline CatchUpDeadline gives it; kUnimplemented for any other engine.
  absl::StatusOr<CatchUpResult> CatchUp(const ProgressFn& progress);

  // Closes the engine; removes its directory unless config.keep_data.
  absl::Status Close();

  double preload_s() const { return preload_s_; }

 private:
  Contender(const Config& config, const RunSpec& spec);

  const Config& config_;
  const RunSpec spec_;  // the run it was opened for (engine, workload, shards, log layout)
  std::string dir_;
  std::unique_ptr<KeySpace> keys_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<FsyncFile> fsync_;
  double preload_s_ = 0;
};

// Which contender serves a run: runs with equal keys share one.
struct ContenderKey {
  EngineKind engine;
  bool rocksdb_per_shard;
  bool bank;
  uint32_t shards = 0;                          // ShardsOf (0 for the fsync floor)
  LogLayout log_layout = LogLayout::kPerShard;  // LogLayoutOf
  bool operator<(const ContenderKey& o) const {
    return std::tie(engine, rocksdb_per_shard, bank, shards, log_layout) <
           std::tie(o.engine, o.rocksdb_per_shard, o.bank, o.shards, o.log_layout);
  }
  bool operator==(const ContenderKey& o) const = default;
};
ContenderKey KeyOfRun(const Config& config, const RunSpec& spec);

// Runs one spec on a contender of its own: open, preload, config.warmup_s of warm-up (if
// any), one window of config.seconds, close. Never throws; failures are in RunResult::status.
RunResult RunOne(const Config& config, const RunSpec& spec, const ProgressFn& progress);

// The size of one commit record of the single workload, for the fsync floor: shards_per_txn
// writes of key_size + value_size bytes plus 64 bytes of framing.
uint32_t RecordSize(const Config& config);

// Whether the rocksdb engine uses one TransactionDB per shard for this workload over `shards`
// shards.
bool RocksdbPerShard(const Config& config, Workload workload, uint32_t shards);

}  // namespace txbench
