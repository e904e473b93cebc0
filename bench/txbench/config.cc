#include "bench/txbench/config.h"

#include <algorithm>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/txbench/flags.h"

ABSL_FLAG(std::string, engines, "shardtx,rocksdb,lmdb",
          "Comma-separated engines to run, any subset of shardtx,rocksdb,lmdb,fsync,"
          "rocksdb-serial2pc,shardtx-async. shardtx-async is shardtx committing with "
          "Transaction::CommitAsync: each client thread keeps up to --async-inflight / --threads "
          "transactions in flight, and a transaction counts when its callback reports it "
          "durable and visible. fsync measures the disk (pwrite+fdatasync of one commit record, "
          "one thread); rocksdb-serial2pc is RocksDB with the serial 2PC of earlier sessions "
          "(prepare and commit on each participant in turn, all synced), for comparison.");
ABSL_FLAG(std::string, workload, "single",
          "single|cross|mixed|ycsb-a|ycsb-b|readonly|bank. single: each transaction reads and "
          "writes --shards-per-txn keys of one shard; cross: one key on each of "
          "--shards-per-txn shards; mixed: --cross-pct% cross, the rest single; ycsb-a: one "
          "operation, 50% read / 50% update; ycsb-b: 95% read / 5% update; readonly: "
          "--shards-per-txn reads at one snapshot; bank: transfers between two accounts, the "
          "total checked at the end.");
ABSL_FLAG(int, threads, 8, "Client threads (ignored by --make-bench, which runs 1 and 64).");
ABSL_FLAG(double, seconds, 0,
          "Measured seconds per window, before each engine's deferred work (0: 5; 3 with "
          "--make-bench; 30 with --long-bench).");
ABSL_FLAG(int, reps, 0,
          "Repetitions of the plan, interleaved (A B, B A, ...); targets get a verdict from 5 "
          "or more (0: 1; 5 with --make-bench or --long-bench).");
ABSL_FLAG(double, warmup, -1,
          "Seconds of an unrecorded warm-up window per run before the first repetition (-1: 1; "
          "5 with --long-bench).");
ABSL_FLAG(uint32_t, shards, 4,
          "Shards: shardtx's num_shards; the key->shard map every engine uses; rocksdb's number "
          "of TransactionDBs for cross-shard workloads.");
ABSL_FLAG(uint32_t, shards_per_txn, 2,
          "Keys per read-write transaction: in one shard (single) or one on each of this many "
          "shards (cross). Also the reads per readonly transaction.");
ABSL_FLAG(double, cross_pct, 10, "mixed: percentage of cross-shard transactions.");
ABSL_FLAG(uint64_t, keys, 100000, "Keys preloaded before each run (bank: accounts).");
ABSL_FLAG(uint32_t, key_size, 16, "Key size in bytes (>= 8).");
ABSL_FLAG(uint32_t, value_size, 100, "Value size in bytes.");
ABSL_FLAG(double, zipf, 0,
          "Key popularity: 0 uniform, else YCSB's Zipfian constant in (0, 1), e.g. 0.99.");
ABSL_FLAG(std::string, durability, "sync",
          "sync: commit returns after fsync (shardtx kSync, rocksdb sync=true, lmdb default "
          "flags); async: shardtx kAsync, rocksdb sync=false, lmdb MDB_NOSYNC; none: shardtx "
          "kNone, rocksdb sync=false (WAL kept), lmdb MDB_NOSYNC.");
ABSL_FLAG(int, async_inflight, 256,
          "shardtx-async: transactions in flight over all client threads (at least --threads).");
ABSL_FLAG(std::string, rocksdb_layout, "auto",
          "auto: one TransactionDB for workloads without cross-shard transactions, one per "
          "shard (with RocksDB's 2PC) for cross, mixed and bank; one; per-shard.");
ABSL_FLAG(std::string, log_layout, "shared",
          "shardtx's log layout (Options::log_layout): shared (the library's default: one log "
          "for all shards, one fsync covers every shard's commits, and the prepares of a "
          "cross-shard commit share it) or per-shard (a log per shard, each synced on its "
          "own). Other engines ignore it; --make-bench runs both.");
ABSL_FLAG(std::string, dir, "",
          "Directory for the engines' files (default: under the build tree). Must be on the disk "
          "being measured (not a tmpfs).");
ABSL_FLAG(std::string, json, "", "Write the results as JSON to this file.");
ABSL_FLAG(std::string, csv, "", "Write the results as CSV to this file.");
ABSL_FLAG(std::string, chart, "",
          "Draw a PNG (gnuplot) of throughput by engine and workload and of latency percentiles.");
ABSL_FLAG(bool, make_bench, false,
          "Run the matrix of `make bench` (about 6 minutes): 5 interleaved repetitions of the "
          "fsync floors (one file; two files synced at once), shardtx single and cross at 1 "
          "thread, single at 64 threads for every engine and "
          "cross at 64 threads (2 shards per transaction) for shardtx and both of RocksDB's 2PC "
          "protocols (rocksdb, rocksdb-serial2pc), shardtx-async single with 2 threads and 256 "
          "in flight, shardtx single at 64 threads without sync, rocksdb single at 256 threads; "
          "and the shared log: shardtx single at 64 threads over 4 shards sharing one log and "
          "over 1 shard, shardtx cross at 1 and 64 threads and shardtx-async with the shared "
          "log.");
ABSL_FLAG(bool, long_bench, false,
          "Run the long steady-state matrix of `make bench-long` (about 40 minutes): 5 "
          "interleaved repetitions of 30 s windows of single at 1 and 64 threads, cross at 64 "
          "and ycsb-b at 2, for every engine.");
ABSL_FLAG(int, replicas, 0,
          "Issue 16: 0 (off), 3 or 5. Opens that many replicated shardtx Databases in this "
          "process (members on 127.0.0.1, node 1 made the leader of every shard) and runs, "
          "interleaved, the fsync floor, the O_DSYNC write floors (one write alone; one per "
          "replica at once, a majority waited for: the single-client verdict's floor) and "
          "shardtx unreplicated and replicated at 1 and 64 "
          "threads on --workload (single, ycsb-a, ycsb-b, or cross: issue 17's cross-shard "
          "commits, every participant led by node 1), with issue 16's verdicts, each replica's "
          "Raft log writes/s and entries per write, and the commits retried because node 1 "
          "did not lead every shard (kUnavailable, kUnknown). "
          "--engines and --threads are ignored; 5 repetitions of 3 s windows unless --reps, "
          "--seconds say otherwise (about 2-3 minutes); then the catch-up phase "
          "(--catchup-bytes). With --workload=readonly (issue 17 step 9), its own plan: "
          "--threads readers summing groups of bank accounts (--shards-per-txn accounts on as "
          "many shards) while --readonly-writers threads transfer within the groups on node 1, "
          "the readers on node 1 (linearizable reads; follower reads) and spread over every "
          "node (follower reads), reads/s, the share the followers served and their staleness; "
          "no floors, no catch-up phase unless --catchup-bytes asks.");
ABSL_FLAG(int64_t, catchup_bytes, -1,
          "With --replicas: after the repetitions, fill the replicated cluster with about this "
          "many bytes of committed data through the leader (16 KiB values, 1 MiB "
          "transactions), commit small transactions until every group has snapshotted and "
          "truncated its Raft log past them, then add a new empty replica "
          "(Database::AddMember, the node opened with ReplicationOptions::join) and time until "
          "it has installed a snapshot of every shard and applied up to the leader's commit "
          "index. -1: 1073741824 (1 GiB) with --replicas; 0: no catch-up phase; else at least "
          "1048576.");
ABSL_FLAG(int, readonly_writers, 2,
          "--replicas --workload=readonly: threads committing bank transfers between the "
          "accounts of a read group (cross-shard, on node 1) during every window: the "
          "background write load the readers' sums are checked against (0: none).");
ABSL_FLAG(int64_t, follower_max_staleness_ms, 2000,
          "--replicas --workload=readonly: the follower readers' TxnOptions::max_staleness in "
          "milliseconds (-1: infinite). A read refused as staler is counted and retried.");
ABSL_FLAG(bool, keep_data, false, "Keep each run's files under --dir.");
ABSL_FLAG(uint64_t, seed, 1, "Seed of the key and value choices (threads derive theirs).");
ABSL_FLAG(bool, progress, true, "Progress lines on stderr.");

namespace txbench {

const char* EngineName(EngineKind e) {
  switch (e) {
    case EngineKind::kShardtx:
      return "shardtx";
    case EngineKind::kRocksdb:
      return "rocksdb";
    case EngineKind::kLmdb:
      return "lmdb";
    case EngineKind::kFsync:
      return "fsync";
    case EngineKind::kRocksdbSerial2pc:
      return "rocksdb-serial2pc";
    case EngineKind::kShardtxAsync:
      return "shardtx-async";
    case EngineKind::kShardtxReplicated:
      return "shardtx-replicated";
  }
  return "?";
}

bool IsRocksdb(EngineKind e) {
  return e == EngineKind::kRocksdb || e == EngineKind::kRocksdbSerial2pc;
}

const char* WorkloadName(Workload w) {
  switch (w) {
    case Workload::kSingle:
      return "single";
    case Workload::kCross:
      return "cross";
    case Workload::kMixed:
      return "mixed";
    case Workload::kYcsbA:
      return "ycsb-a";
    case Workload::kYcsbB:
      return "ycsb-b";
    case Workload::kReadonly:
      return "readonly";
    case Workload::kBank:
      return "bank";
    case Workload::kFsync:
      return "fsync";
    case Workload::kDsync:
      return "o_dsync";
  }
  return "?";
}

const char* ReadPlacementName(ReadPlacement p) {
  switch (p) {
    case ReadPlacement::kNone:
      return "";
    case ReadPlacement::kLeaderLinearizable:
      return "leader";
    case ReadPlacement::kLeaderFollowerRead:
      return "leader-fr";
    case ReadPlacement::kAllFollowerRead:
      return "all-fr";
  }
  return "?";
}

bool UsesBalances(const RunSpec& spec) {
  return spec.workload == Workload::kBank ||
         (spec.workload == Workload::kReadonly && spec.engine == EngineKind::kShardtxReplicated);
}

bool IsFloor(Workload w) { return w == Workload::kFsync || w == Workload::kDsync; }

const char* DurabilityName(DurabilityMode d) {
  switch (d) {
    case DurabilityMode::kSync:
      return "sync";
    case DurabilityMode::kAsync:
      return "async";
    case DurabilityMode::kNone:
      return "none";
  }
  return "?";
}

bool IsShardtx(EngineKind e) {
  return e == EngineKind::kShardtx || e == EngineKind::kShardtxAsync ||
         e == EngineKind::kShardtxReplicated;
}

uint32_t ShardsOf(const Config& config, const RunSpec& spec) {
  return spec.shards != 0 ? spec.shards : config.shards;
}

LogLayout LogLayoutOf(const Config& config, const RunSpec& spec) {
  if (!IsShardtx(spec.engine)) return LogLayout::kPerShard;
  return spec.log_layout.value_or(config.log_layout);
}

absl::StatusOr<std::vector<EngineKind>> ParseEngines(absl::string_view list) {
  std::vector<EngineKind> out;
  for (absl::string_view raw : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    const std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(raw));
    EngineKind e;
    if (name == "shardtx") {
      e = EngineKind::kShardtx;
    } else if (name == "rocksdb") {
      e = EngineKind::kRocksdb;
    } else if (name == "lmdb") {
      e = EngineKind::kLmdb;
    } else if (name == "fsync") {
      e = EngineKind::kFsync;
    } else if (name == "rocksdb-serial2pc") {
      e = EngineKind::kRocksdbSerial2pc;
    } else if (name == "shardtx-async") {
      e = EngineKind::kShardtxAsync;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "--engines: unknown engine '", name,
          "' (choose from shardtx,shardtx-async,rocksdb,lmdb,fsync,rocksdb-serial2pc)"));
    }
    if (std::find(out.begin(), out.end(), e) == out.end()) out.push_back(e);
  }
  if (out.empty()) return absl::InvalidArgumentError("--engines: no engine named");
  return out;
}

absl::StatusOr<Workload> ParseWorkload(absl::string_view name) {
  const std::string n = absl::AsciiStrToLower(absl::StripAsciiWhitespace(name));
  if (n == "single") return Workload::kSingle;
  if (n == "cross") return Workload::kCross;
  if (n == "mixed") return Workload::kMixed;
  if (n == "ycsb-a") return Workload::kYcsbA;
  if (n == "ycsb-b") return Workload::kYcsbB;
  if (n == "readonly") return Workload::kReadonly;
  if (n == "bank") return Workload::kBank;
  return absl::InvalidArgumentError(
      absl::StrCat("--workload: unknown workload '", n,
                   "' (choose from single|cross|mixed|ycsb-a|ycsb-b|readonly|bank)"));
}

absl::StatusOr<DurabilityMode> ParseDurability(absl::string_view name) {
  const std::string n = absl::AsciiStrToLower(absl::StripAsciiWhitespace(name));
  if (n == "sync") return DurabilityMode::kSync;
  if (n == "async") return DurabilityMode::kAsync;
  if (n == "none") return DurabilityMode::kNone;
  return absl::InvalidArgumentError(
      absl::StrCat("--durability: unknown level '", n, "' (choose from sync|async|none)"));
}

absl::StatusOr<RocksdbLayout> ParseRocksdbLayout(absl::string_view name) {
  const std::string n = absl::AsciiStrToLower(absl::StripAsciiWhitespace(name));
  if (n == "auto") return RocksdbLayout::kAuto;
  if (n == "one") return RocksdbLayout::kOne;
  if (n == "per-shard") return RocksdbLayout::kPerShard;
  return absl::InvalidArgumentError(
      absl::StrCat("--rocksdb_layout: unknown layout '", n, "' (choose from auto|one|per-shard)"));
}

namespace {

// --replicas: 3 or 5 replicas, single-shard or cross-shard transactions, synced commits, its own
// plan.
absl::Status ValidateReplicas(const Config& c) {
  if (c.replicas == 0) {
    if (c.catchup_bytes == 0) return absl::OkStatus();
    return absl::InvalidArgumentError(
        "--catchup-bytes times a new replica's catch-up in a replicated cluster: it needs "
        "--replicas=3 or 5");
  }
  if (c.replicas != 3 && c.replicas != 5) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--replicas ", c.replicas,
        ": choose 0 (off), 3 or 5 (replicated shards tolerate the failure of a minority; 1 is "
        "the unreplicated engine, and an even count costs a replica without tolerating one "
        "more failure)"));
  }
  if (c.make_bench || c.long_bench) {
    return absl::InvalidArgumentError(
        "--replicas runs its own plan; it does not combine with --make-bench or --long-bench");
  }
  switch (c.workload) {
    case Workload::kSingle:
    case Workload::kYcsbA:
    case Workload::kYcsbB:
    case Workload::kCross:
      break;
    case Workload::kReadonly:
      // Each read transaction sums a group of accounts on shards_per_txn distinct shards.
      if (c.shards_per_txn < 2 || c.shards < c.shards_per_txn) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--replicas with --workload=readonly reads groups of --shards_per_txn accounts on as "
            "many distinct shards: it needs 2 <= --shards_per_txn <= --shards (have ",
            c.shards_per_txn, " and ", c.shards, ")"));
      }
      if (c.readonly_writers < 0 || c.readonly_writers > 64) {
        return absl::InvalidArgumentError(
            absl::StrCat("--readonly_writers ", c.readonly_writers, " not in [0, 64]"));
      }
      if (c.follower_max_staleness_ms < -1 || c.follower_max_staleness_ms == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("--follower_max_staleness_ms ", c.follower_max_staleness_ms,
                         ": -1 (infinite) or a positive number of milliseconds"));
      }
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "--replicas with --workload=", WorkloadName(c.workload),
          ": txbench measures single-shard (single, ycsb-a, ycsb-b) and cross-shard (cross) "
          "transactions and follower reads (readonly) on a replicated database; mixed and bank "
          "are not measured replicated"));
  }
  if (c.durability != DurabilityMode::kSync) {
    return absl::InvalidArgumentError(
        absl::StrCat("--replicas with --durability=", DurabilityName(c.durability),
                     ": the replicated engine measures durable commits (held by a majority); use "
                     "--durability=sync"));
  }
  if (c.catchup_bytes != 0 &&
      (c.catchup_bytes < kMinCatchupBytes || c.catchup_bytes > (1ull << 40))) {
    return absl::InvalidArgumentError(absl::StrCat("--catchup-bytes ", c.catchup_bytes,
                                                   ": 0 (no catch-up phase) or in [",
                                                   kMinCatchupBytes, ", 2^40]"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Validate(const Config& c) {
  if (c.engines.empty()) return absl::InvalidArgumentError("no engine to run");
  if (c.async_inflight < 1 || c.async_inflight > (1 << 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--async-inflight ", c.async_inflight, " not in [1, 1048576]"));
  }
  if (c.threads < 1 || c.threads > 4096) {
    return absl::InvalidArgumentError(absl::StrCat("--threads ", c.threads, " not in [1, 4096]"));
  }
  if (!(c.seconds > 0) || c.seconds > 86400) {
    return absl::InvalidArgumentError(absl::StrCat("--seconds ", c.seconds, " not in (0, 86400]"));
  }
  if (c.reps < 1 || c.reps > 1000) {
    return absl::InvalidArgumentError(absl::StrCat("--reps ", c.reps, " not in [1, 1000]"));
  }
  if (!(c.warmup_s >= 0) || c.warmup_s > 3600) {
    return absl::InvalidArgumentError(absl::StrCat("--warmup ", c.warmup_s, " not in [0, 3600]"));
  }
  if (c.make_bench && c.long_bench) {
    return absl::InvalidArgumentError("--make-bench and --long-bench are two different matrices");
  }
  if (absl::Status s = ValidateReplicas(c); !s.ok()) return s;
  if (c.shards < 1 || c.shards > 1024) {
    return absl::InvalidArgumentError(absl::StrCat("--shards ", c.shards, " not in [1, 1024]"));
  }
  if (c.shards_per_txn < 1 || c.shards_per_txn > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("--shards_per_txn ", c.shards_per_txn, " not in [1, 64]"));
  }
  if (c.cross_pct < 0 || c.cross_pct > 100) {
    return absl::InvalidArgumentError(
        absl::StrCat("--cross_pct ", c.cross_pct, " not in [0, 100]"));
  }
  if (c.key_size < 8 || c.key_size > 1024) {
    return absl::InvalidArgumentError(absl::StrCat("--key_size ", c.key_size, " not in [8, 1024]"));
  }
  if (c.value_size < 1 || c.value_size > (1u << 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--value_size ", c.value_size, " not in [1, 1048576]"));
  }
  if (c.keys < 2 || c.keys > 1000000000ull) {
    return absl::InvalidArgumentError(absl::StrCat("--keys ", c.keys, " not in [2, 1e9]"));
  }
  // "k" + decimal index, zero-padded to key_size.
  const std::string widest = absl::StrCat(c.keys - 1);
  if (widest.size() + 1 > c.key_size) {
    return absl::InvalidArgumentError(absl::StrCat("--key_size ", c.key_size, " too small for ",
                                                   c.keys, " keys (needs ", widest.size() + 1,
                                                   ")"));
  }
  if (c.zipf < 0 || c.zipf >= 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--zipf ", c.zipf, " not in [0, 1) (0 = uniform; YCSB uses 0.99)"));
  }
  for (const RunSpec& r : PlanRuns(c)) {
    const uint32_t shards = ShardsOf(c, r);
    const bool multi = r.workload == Workload::kCross || r.workload == Workload::kMixed;
    if (multi && shards < r.shards_per_txn) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--workload=", WorkloadName(r.workload), " with --shards_per_txn ", r.shards_per_txn,
          " needs --shards >= ", r.shards_per_txn, " (have ", shards, ")"));
    }
    if (multi && r.shards_per_txn < 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("--workload=", WorkloadName(r.workload), " needs --shards_per_txn >= 2"));
    }
    // Each shard must hold enough keys to pick shards_per_txn distinct ones.
    if (c.keys < static_cast<uint64_t>(shards) * r.shards_per_txn * 4) {
      return absl::InvalidArgumentError(
          absl::StrCat("--keys ", c.keys, " too few for ", shards, " shards and ", r.shards_per_txn,
                       " keys per transaction (need >= ", shards * r.shards_per_txn * 4, ")"));
    }
  }
  if (c.dir.empty()) return absl::InvalidArgumentError("--dir is empty");
  return absl::OkStatus();
}

std::vector<RunSpec> PlanRuns(const Config& c) {
  std::vector<RunSpec> runs;
  const bool fsync =
      std::find(c.engines.begin(), c.engines.end(), EngineKind::kFsync) != c.engines.end();
  if (fsync || c.make_bench || c.long_bench || c.replicas > 0) {
    runs.push_back({EngineKind::kFsync, Workload::kFsync, 1, 1});
  }
  // A replicated commit is durable once written to a majority's Raft logs, each an O_DSYNC write
  // (libraft's raft_uv): its like-for-like floor.
  // Measured here, N replicas' writes at once on one disk are faster each than one write alone
  // (a lone writer waits longer for each), so the floor of N at once, a majority waited for, is
  // the like-for-like one; the lone write is printed beside it.
  if (c.replicas > 0) {
    runs.insert(runs.end(), {RunSpec(EngineKind::kFsync, Workload::kDsync, 1, 1),
                             RunSpec(EngineKind::kFsync, Workload::kDsync, c.replicas, 1)});
  }
  auto add = [&](Workload w, int threads, uint32_t k, auto wanted) {
    for (EngineKind e : c.engines) {
      if (e != EngineKind::kFsync && wanted(e)) runs.push_back({e, w, threads, k});
    }
  };
  auto every = [](EngineKind) { return true; };
  // RocksDB's two 2PC protocols: the careful one waits for fewer fsyncs, but under load its
  // extra decision write can cost more than the serial one's waits; the cross-shard target
  // compares shardtx with the better of the two in each repetition.
  auto add_serial_2pc = [&] {
    const bool rocksdb =
        std::find(c.engines.begin(), c.engines.end(), EngineKind::kRocksdb) != c.engines.end();
    const bool serial = std::find(c.engines.begin(), c.engines.end(),
                                  EngineKind::kRocksdbSerial2pc) != c.engines.end();
    if (rocksdb && !serial)
      runs.push_back({EngineKind::kRocksdbSerial2pc, Workload::kCross, 64, 2});
  };
  if (c.make_bench) {
    const bool shardtx =
        std::find(c.engines.begin(), c.engines.end(), EngineKind::kShardtx) != c.engines.end();
    const bool rocksdb =
        std::find(c.engines.begin(), c.engines.end(), EngineKind::kRocksdb) != c.engines.end();
    // Issue 19 part 3: the shared log, beside the per-shard rows it is compared with.
    auto add_shared = [&](RunSpec spec, uint32_t shards = 0) {
      if (shardtx) runs.push_back(spec.With(shards, LogLayout::kShared));
    };
    // The floor of a cross-shard commit whose two prepares are synced at once on two logs.
    runs.push_back({EngineKind::kFsync, Workload::kFsync, 2, 1});
    add(Workload::kSingle, 1, 2, [](EngineKind e) { return e == EngineKind::kShardtx; });
    add(Workload::kCross, 1, 2, [](EngineKind e) { return e == EngineKind::kShardtx; });
    // With one log, the two prepares share one sync: the one-file floor applies.
    add_shared({EngineKind::kShardtx, Workload::kCross, 1, 2});
    add(Workload::kSingle, 64, 2, [](EngineKind e) { return e != EngineKind::kRocksdbSerial2pc; });
    // Single-shard commits of 4 shards sharing one disk's log, against the same over 1 shard
    // (one log either way; the per-shard layout, as a one-shard host runs it).
    add_shared({EngineKind::kShardtx, Workload::kSingle, 64, 2}, 4);
    if (shardtx) {
      runs.push_back(
          RunSpec(EngineKind::kShardtx, Workload::kSingle, 64, 2).With(1, LogLayout::kPerShard));
    }
    add(Workload::kCross, 64, 2,
        [](EngineKind e) { return e == EngineKind::kShardtx || IsRocksdb(e); });
    add_serial_2pc();
    add_shared({EngineKind::kShardtx, Workload::kCross, 64, 2});
    // Asynchronous commit (issue 19): 2 submitting threads with 256 in flight, against
    // shardtx's own no-sync commits at 64 threads and RocksDB with as many transactions in
    // flight as blocking threads (it has no asynchronous commit).
    if (shardtx) {
      runs.push_back({EngineKind::kShardtxAsync, Workload::kSingle, 2, 2, std::nullopt, 256});
      add_shared({EngineKind::kShardtxAsync, Workload::kSingle, 2, 2, std::nullopt, 256});
      runs.push_back({EngineKind::kShardtx, Workload::kSingle, 64, 2, DurabilityMode::kNone});
    }
    if (rocksdb) runs.push_back({EngineKind::kRocksdb, Workload::kSingle, 256, 2});
    // Every other shardtx row is per-shard, whatever --log_layout says: the plan holds both.
    for (RunSpec& r : runs) {
      if (IsShardtx(r.engine) && !r.log_layout.has_value()) r.log_layout = LogLayout::kPerShard;
    }
  } else if (c.replicas > 0 && c.workload == Workload::kReadonly) {
    // Issue 17 step 9: the same readers on the leader alone and spread over every node.
    runs.clear();  // no floors: nothing here is a commit
    for (ReadPlacement p : {ReadPlacement::kLeaderLinearizable, ReadPlacement::kLeaderFollowerRead,
                            ReadPlacement::kAllFollowerRead}) {
      RunSpec r(EngineKind::kShardtxReplicated, Workload::kReadonly, c.threads, c.shards_per_txn);
      r.reads = p;
      runs.push_back(r);
    }
  } else if (c.replicas > 0) {
    // Issue 16: a replicated commit at 1 thread against the floor, and at 64 threads against
    // the same engine unreplicated (same workload, shards and log layout).
    for (int threads : {1, 64}) {
      runs.push_back({EngineKind::kShardtx, c.workload, threads, c.shards_per_txn});
      runs.push_back({EngineKind::kShardtxReplicated, c.workload, threads, c.shards_per_txn});
    }
  } else if (c.long_bench) {
    add(Workload::kSingle, 1, 2, every);
    add(Workload::kSingle, 64, 2, every);
    add(Workload::kCross, 64, 2, every);
    add_serial_2pc();
    add(Workload::kYcsbB, 2, 2, every);
  } else {
    add(c.workload, c.threads, c.shards_per_txn, every);
  }
  for (RunSpec& r : runs) {
    if (r.engine == EngineKind::kShardtxAsync && r.inflight == 0) r.inflight = c.async_inflight;
  }
  return runs;
}

std::string DefaultDir() {
#ifdef TXBENCH_DEFAULT_DIR
  return TXBENCH_DEFAULT_DIR;
#else
  return "txbench.tmp";
#endif
}

std::vector<std::string> NormalizeFlagNames(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  out.reserve(args.size());
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    if (i > 0 && !flags_done) {
      if (a == "--") {
        flags_done = true;
      } else if (a.size() > 2 && a[0] == '-') {
        const size_t start = a[1] == '-' ? 2 : 1;
        const size_t end = std::min(a.find('='), a.size());
        for (size_t j = start; j < end; ++j) {
          if (a[j] == '-') a[j] = '_';
        }
      }
    }
    out.push_back(std::move(a));
  }
  return out;
}

absl::StatusOr<Config> ConfigFromFlags() {
  Config c;
  auto engines = ParseEngines(absl::GetFlag(FLAGS_engines));
  if (!engines.ok()) return engines.status();
  c.engines = *engines;
  auto workload = ParseWorkload(absl::GetFlag(FLAGS_workload));
  if (!workload.ok()) return workload.status();
  c.workload = *workload;
  auto durability = ParseDurability(absl::GetFlag(FLAGS_durability));
  if (!durability.ok()) return durability.status();
  c.durability = *durability;
  auto layout = ParseRocksdbLayout(absl::GetFlag(FLAGS_rocksdb_layout));
  if (!layout.ok()) return layout.status();
  c.rocksdb_layout = *layout;
  auto log_layout = ParseLogLayout(absl::GetFlag(FLAGS_log_layout));
  if (!log_layout.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--log_layout: ", log_layout.status().message()));
  }
  c.log_layout = *log_layout;
  c.make_bench = absl::GetFlag(FLAGS_make_bench);
  c.replicas = absl::GetFlag(FLAGS_replicas);
  const int64_t catchup = absl::GetFlag(FLAGS_catchup_bytes);
  if (catchup < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--catchup-bytes ", catchup, ": -1 (the default), 0 or a byte count"));
  }
  // The catch-up phase is issue 16's; the readonly plan runs it only when asked.
  c.catchup_bytes =
      catchup == -1
          ? (c.replicas > 0 && c.workload != Workload::kReadonly ? kDefaultCatchupBytes : 0)
          : static_cast<uint64_t>(catchup);
  c.readonly_writers = absl::GetFlag(FLAGS_readonly_writers);
  c.follower_max_staleness_ms = absl::GetFlag(FLAGS_follower_max_staleness_ms);
  c.long_bench = absl::GetFlag(FLAGS_long_bench);
  c.threads = absl::GetFlag(FLAGS_threads);
  c.async_inflight = absl::GetFlag(FLAGS_async_inflight);
  c.seconds = absl::GetFlag(FLAGS_seconds);
  if (c.seconds == 0) c.seconds = c.make_bench || c.replicas > 0 ? 3 : c.long_bench ? 30 : 5;
  c.reps = absl::GetFlag(FLAGS_reps);
  if (c.reps == 0) c.reps = c.make_bench || c.long_bench || c.replicas > 0 ? 5 : 1;
  c.warmup_s = absl::GetFlag(FLAGS_warmup);
  if (c.warmup_s == -1) c.warmup_s = c.long_bench ? 5 : 1;
  c.shards = absl::GetFlag(FLAGS_shards);
  c.shards_per_txn = absl::GetFlag(FLAGS_shards_per_txn);
  c.cross_pct = absl::GetFlag(FLAGS_cross_pct);
  c.keys = absl::GetFlag(FLAGS_keys);
  c.key_size = absl::GetFlag(FLAGS_key_size);
  c.value_size = absl::GetFlag(FLAGS_value_size);
  c.zipf = absl::GetFlag(FLAGS_zipf);
  c.dir = absl::GetFlag(FLAGS_dir);
  if (c.dir.empty()) c.dir = DefaultDir();
  c.json_path = absl::GetFlag(FLAGS_json);
  c.csv_path = absl::GetFlag(FLAGS_csv);
  c.chart_path = absl::GetFlag(FLAGS_chart);
  c.keep_data = absl::GetFlag(FLAGS_keep_data);
  c.seed = absl::GetFlag(FLAGS_seed);
  c.progress = absl::GetFlag(FLAGS_progress);
  if (absl::Status s = Validate(c); !s.ok()) return s;
  return c;
}

}  // namespace txbench
