// txbench configuration: what one invocation runs (engines, workload, sizes, durability) and
// the --make-bench matrix. Parsed from the command-line flags defined in config.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "shardtx/options.h"

namespace txbench {

// kRocksdbSerial2pc: RocksDB with the serial 2PC baseline of earlier sessions (see engine.h's
// Rocksdb2pc), for comparison with the careful protocol of kRocksdb.
// kShardtxAsync: shardtx committing with Transaction::CommitAsync (each client thread keeps
// up to RunSpec::inflight / threads transactions in flight); same database as kShardtx.
// kShardtxReplicated: shardtx on Config::replicas replicated Databases in this process
// (--replicas; loopback_cluster.h), every session on node 1, which leads every shard.
enum class EngineKind {
  kShardtx,
  kRocksdb,
  kLmdb,
  kFsync,
  kRocksdbSerial2pc,
  kShardtxAsync,
  kShardtxReplicated
};
// kFsync and kDsync are the floors' (EngineKind::kFsync) only: a pwrite then fdatasync, or one
// pwrite on a file opened O_DSYNC (what libraft's raft_uv does for a Raft log write).
enum class Workload { kSingle, kCross, kMixed, kYcsbA, kYcsbB, kReadonly, kBank, kFsync, kDsync };
// kFsync or kDsync: a floor's row, not transactions.
bool IsFloor(Workload w);
enum class DurabilityMode { kSync, kAsync, kNone };
// How the rocksdb engine lays out its data: one TransactionDB for everything, or one per
// shard (needed for cross-shard transactions, which then use 2PC on RocksDB's prepare).
enum class RocksdbLayout { kAuto, kOne, kPerShard };
// --replicas --workload=readonly (issue 17 step 9): where a row's readers run and how they read.
// kLeaderLinearizable: every reader on node 1 (the leader of every shard), ordinary read-only
// transactions (linearizable: each commit waits for a Raft barrier, shared by the reads begun
// before it). kLeaderFollowerRead: every reader on node 1, TxnOptions::follower_read (the node's
// safe timestamp, no barrier). kAllFollowerRead: readers spread over all the nodes, reader i on
// node i % N + 1, TxnOptions::follower_read. kNone: any other row.
enum class ReadPlacement { kNone, kLeaderLinearizable, kLeaderFollowerRead, kAllFollowerRead };
const char* ReadPlacementName(ReadPlacement p);
// Where shardtx keeps its shards' logs (shardtx::Options::log_layout): one log per shard, or one
// log shared by every shard of the database (one fsync covers all shards' commits). Other
// engines ignore it. Named and parsed by the library ("per-shard" | "shared").
using LogLayout = shardtx::Options::LogLayout;
using shardtx::LogLayoutName;
using shardtx::ParseLogLayout;

const char* EngineName(EngineKind e);
const char* WorkloadName(Workload w);
const char* DurabilityName(DurabilityMode d);

absl::StatusOr<std::vector<EngineKind>> ParseEngines(absl::string_view list);
absl::StatusOr<Workload> ParseWorkload(absl::string_view name);
absl::StatusOr<DurabilityMode> ParseDurability(absl::string_view name);
absl::StatusOr<RocksdbLayout> ParseRocksdbLayout(absl::string_view name);

// --catchup-bytes: the default with --replicas, and the least accepted (other than 0).
inline constexpr uint64_t kDefaultCatchupBytes = 1ull << 30;
inline constexpr uint64_t kMinCatchupBytes = 1ull << 20;

// Settings shared by every run of an invocation.
struct Config {
  std::vector<EngineKind> engines = {EngineKind::kShardtx, EngineKind::kRocksdb, EngineKind::kLmdb};
  Workload workload = Workload::kSingle;
  int threads = 8;
  double seconds = 5;   // measured seconds per window (deferred work comes on top)
  int reps = 1;         // repetitions of the whole plan, interleaved (see PlanRuns)
  double warmup_s = 1;  // an unrecorded window per run of the plan before the first repetition
  uint32_t shards = 4;
  uint32_t shards_per_txn = 2;  // keys per read-write transaction (on as many shards in cross)
  double cross_pct = 10;        // mixed: percentage of cross-shard transactions
  uint64_t keys = 100000;
  uint32_t key_size = 16;
  uint32_t value_size = 100;
  double zipf = 0;  // 0: uniform; else the YCSB Zipfian constant, in (0, 1)
  DurabilityMode durability = DurabilityMode::kSync;
  int async_inflight = 256;  // shardtx-async: transactions in flight over all client threads
  RocksdbLayout rocksdb_layout = RocksdbLayout::kAuto;
  LogLayout log_layout = LogLayout::kPerShard;  // shardtx's, for runs that do not set their own
  std::string dir;
  std::string json_path;
  std::string csv_path;
  std::string chart_path;
  bool make_bench = false;
  bool long_bench = false;  // the long steady-state matrix (`make bench-long`)
  bool keep_data = false;
  // Issue 16: 0, or the number of replicated Databases (3 or 5) of the shardtx-replicated
  // engine; its own plan (see PlanRuns), on single, ycsb-a, ycsb-b or cross.
  int replicas = 0;
  // --replicas: bytes of committed data the catch-up phase fills the cluster with before a new
  // replica joins and catches up (0: no catch-up phase). ConfigFromFlags makes it 1 GiB with
  // --replicas unless --catchup-bytes says otherwise.
  uint64_t catchup_bytes = 0;
  // --replicas: the loopback cluster's ReplicationOptions::snapshot_threshold and
  // snapshot_trailing (0: the library's defaults, which the command line always uses). Tests set
  // small values so that a tiny catch-up phase needs few commits to make the groups snapshot.
  uint32_t raft_snapshot_threshold = 0;
  uint32_t raft_snapshot_trailing = 0;
  uint64_t seed = 1;
  bool progress = true;  // progress lines on stderr
  // --replicas --workload=readonly: threads committing bank transfers inside the read groups on
  // node 1 during every window (the background write load), and the readers' max_staleness in
  // milliseconds (-1: infinite).
  int readonly_writers = 2;
  int64_t follower_max_staleness_ms = 2000;
};

// One measured run: one engine, one workload at one thread count.
struct RunSpec {
  RunSpec() = default;
  RunSpec(EngineKind e, Workload w, int t, uint32_t k,
          std::optional<DurabilityMode> d = std::nullopt, int in_flight = 0)
      : engine(e), workload(w), threads(t), shards_per_txn(k), durability(d), inflight(in_flight) {}
  EngineKind engine = EngineKind::kShardtx;
  Workload workload = Workload::kSingle;
  int threads = 1;
  uint32_t shards_per_txn = 2;
  // This run's durability, when not the invocation's (--make-bench's shardtx no-sync row).
  std::optional<DurabilityMode> durability;
  int inflight = 0;  // shardtx-async: transactions in flight over all threads
  // This run's shard count, when not the invocation's --shards (0): --make-bench's one-shard
  // row, and its four-shard shared-log row. Runs with different shard counts (or log layouts)
  // run on different databases.
  uint32_t shards = 0;
  // This run's shardtx log layout, when not the invocation's --log_layout (shardtx engines
  // only).
  std::optional<LogLayout> log_layout;
  // --replicas --workload=readonly: where the readers run (kNone for every other run).
  ReadPlacement reads = ReadPlacement::kNone;

  // The same run with its own shard count and log layout.
  RunSpec With(uint32_t shard_count, std::optional<LogLayout> layout) const {
    RunSpec r = *this;
    r.shards = shard_count;
    r.log_layout = layout;
    return r;
  }
};

// A run's shard count and shardtx log layout: its own, else the invocation's. Engines other
// than shardtx always report kPerShard (they have no such choice).
uint32_t ShardsOf(const Config& config, const RunSpec& spec);
LogLayout LogLayoutOf(const Config& config, const RunSpec& spec);
bool IsShardtx(EngineKind e);  // kShardtx, kShardtxAsync or kShardtxReplicated
// Whether a run's engine is preloaded with bank balances: the bank workload, and the replicated
// readonly workload (its readers check the sum of each group of accounts they read).
bool UsesBalances(const RunSpec& spec);

// Checks ranges and combinations (e.g. cross needs shards >= shards_per_txn).
absl::Status Validate(const Config& config);

// The runs of one repetition of an invocation, in order; the invocation runs them
// config.reps times, in this order in even repetitions and in the reverse order in odd ones
// (so that each pair of engines is measured A B, B A, A B, ...: a drift of the machine
// during a repetition does not favour the engine that runs first).
//  - make_bench: the fsync floor; shardtx single at 1 thread; single at 64 threads for every
//    engine of the config; cross at 64 threads (2 shards per transaction) for shardtx and the
//    rocksdb engines, both of RocksDB's 2PC protocols when rocksdb is named; issue 19's
//    asynchronous commit rows: shardtx-async single with 2 threads and 256 in flight, shardtx
//    single at 64 threads with durability none, RocksDB single at 256 threads; and issue 19's
//    shared log (part 3): shardtx single at 64 threads over 4 shards sharing one log and over
//    1 shard, and the shared-log variants of shardtx-async and of shardtx cross at 1 and 64
//    threads. Only the runs the targets compare, to keep within about six minutes.
//  - long_bench: the fsync floor, then single at 1 and 64 threads, cross at 64 threads (and
//    RocksDB's serial 2PC when rocksdb is named) and ycsb-b at 2 threads, each for every
//    engine of the config.
//  - replicas with workload readonly (issue 17 step 9): shardtx-replicated readonly at
//    config.threads readers, once per ReadPlacement (leader linearizable, leader follower_read,
//    all nodes follower_read), no floors.
//  - replicas (issue 16): the fsync floor and the O_DSYNC write floor, then shardtx and
//    shardtx-replicated on config.workload at 1 thread and at 64 threads (--engines and
//    --threads are ignored). The catch-up phase (config.catchup_bytes) is not a run of the
//    plan: it runs once, after the repetitions (txbench.cc).
//  - otherwise: every engine of the config on config.workload at config.threads (the fsync
//    floor first when the engines name it).
std::vector<RunSpec> PlanRuns(const Config& config);

// Whether an engine kind runs on RocksDB (kRocksdb or kRocksdbSerial2pc).
bool IsRocksdb(EngineKind e);

// Abseil flag names use underscores; txbench documents hyphens (--shards-per-txn). Rewrites
// the name part of every "--name[=value]" argument (up to a bare "--") to underscores, so both
// spellings work. Values are left alone.
std::vector<std::string> NormalizeFlagNames(const std::vector<std::string>& args);

// The Config the command-line flags describe (after absl::ParseCommandLine), validated.
absl::StatusOr<Config> ConfigFromFlags();

// Default of --dir: a directory under the build tree (TXBENCH_DEFAULT_DIR), else ./txbench.tmp.
std::string DefaultDir();

}  // namespace txbench
