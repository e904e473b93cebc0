#include "bench/txbench/report.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bench/txbench/engine.h"

namespace txbench {
namespace {

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.3f", v);
}

// Groups: same workload, threads and keys per transaction; fsync is its own group.
using GroupKey = std::tuple<int, int, uint32_t>;
GroupKey KeyOf(const RunSpec& s) {
  return {static_cast<int>(s.workload), s.threads, s.shards_per_txn};
}

std::string Num(double v) {
  if (v >= 1e6) return absl::StrFormat("%.2fM", v / 1e6);
  if (v >= 1e4) return absl::StrFormat("%.1fk", v / 1e3);
  if (v >= 100) return absl::StrFormat("%.0f", v);
  return absl::StrFormat("%.1f", v);
}

std::string Ratio(double a, double b) {
  if (b <= 0) return "-";
  const double r = a / b;
  return r >= 10 ? absl::StrFormat("%.0fx", r) : absl::StrFormat("%.2fx", r);
}

const RunResult* Find(const std::vector<RunResult>& runs, EngineKind e, Workload w, int threads,
                      uint32_t k) {
  for (const RunResult& r : runs) {
    if (r.status.ok() && r.spec.engine == e && r.spec.workload == w && r.spec.threads == threads &&
        (w == Workload::kFsync || r.spec.shards_per_txn == k) &&
        r.durability == DurabilityMode::kSync) {
      return &r;
    }
  }
  return nullptr;
}

}  // namespace

std::string HeaderText(const Config& c, const MachineInfo& m) {
  std::vector<std::string> engines;
  for (EngineKind e : c.engines) engines.push_back(EngineName(e));
  std::string out = absl::StrCat(
      "txbench: ", absl::StrJoin(engines, ", "), " side by side, same run, same disk\n",
      absl::StrFormat("  machine: %s, %s x %d CPUs, %.1f GB, %s, %s\n", m.host, m.cpu_model, m.cpus,
                      m.mem_gb, m.kernel, m.os),
      absl::StrFormat("  dir: %s (%s)\n", m.dir, m.filesystem),
      absl::StrFormat("  versions: rocksdb %s, lmdb %s\n", RocksdbVersion(), LmdbVersion()),
      absl::StrFormat(
          "  fair: every engine gets the same %d preloaded keys (%d B keys, %d B values, the "
          "same bytes),\n"
          "        the same transactions from the same seeded generator (seed %d), the same "
          "durability\n"
          "        (%s), and the same number of client threads; the key -> shard map is "
          "shardtx's\n"
          "        partitioner (%d shards) for every engine; aborted attempts are retried until "
          "they\n"
          "        commit and counted; each engine's preload is made durable and settled in "
          "its\n"
          "        store (shardtx checkpoint, RocksDB flush, LMDB sync) before the clock "
          "starts.\n",
          c.keys, c.key_size, c.value_size, c.seed, DurabilityName(c.durability), c.shards),
      "  durability ", DurabilityName(c.durability), ": ",
      c.durability == DurabilityMode::kSync
          ? "shardtx kSync, rocksdb WriteOptions.sync=true, lmdb default flags (synced commit)"
          : "shardtx k" + std::string(c.durability == DurabilityMode::kAsync ? "Async" : "None") +
                ", rocksdb sync=false (WAL on), lmdb MDB_NOSYNC",
      "\n",
      absl::StrFormat("  %.0f s per run%s; latency is per committed transaction, first attempt "
                      "to commit,\n  in microseconds; fsync/s: shardtx WAL fdatasyncs (+2 per "
                      "checkpoint), rocksdb WAL syncs\n  (statistics), lmdb 2 per synced "
                      "write commit (fdatasync of the data pages, O_DSYNC write of the\n  meta "
                      "page); txn/fs: transactions per fsync; cpu: cores this process used; "
                      "other: cores\n  the rest of the machine used meanwhile (above ~0.1: a "
                      "noisy neighbour, distrust the run)\n",
                      c.seconds, c.make_bench ? " (fsync floor: 3 s)" : ""));
  return out;
}

std::string TableText(const std::vector<RunResult>& runs) {
  std::string out =
      absl::StrFormat("%-8s %-8s %4s %4s %3s %-5s %9s %9s %6s %8s %8s %8s %8s %8s %7s %5s %5s\n",
                      "engine", "workload", "thr", "shrd", "k", "dur", "txn/s", "ops/s", "abort%",
                      "p50us", "p95us", "p99us", "p99.9us", "fsync/s", "txn/fs", "cpu", "other");
  for (const RunResult& r : runs) {
    if (!r.status.ok()) {
      out +=
          absl::StrFormat("%-8s %-8s %4d %4d %3d %-5s FAILED: %s\n", EngineName(r.spec.engine),
                          WorkloadName(r.spec.workload), r.spec.threads, r.shards,
                          r.spec.shards_per_txn, DurabilityName(r.durability), r.status.ToString());
      continue;
    }
    std::string fs = "n/a", per = "n/a";
    if (r.fsyncs_per_s.has_value()) {
      fs = Num(*r.fsyncs_per_s);
      per = *r.fsyncs_per_s > 0 ? absl::StrFormat("%.1f", r.txn_per_s / *r.fsyncs_per_s) : "-";
    }
    out += absl::StrFormat(
        "%-8s %-8s %4d %4d %3d %-5s %9s %9s %6.2f %8.1f %8.1f %8.1f %8.1f %8s %7s %5.2f %5.2f\n",
        EngineName(r.spec.engine), WorkloadName(r.spec.workload), r.spec.threads, r.shards,
        r.spec.shards_per_txn, DurabilityName(r.durability), Num(r.txn_per_s), Num(r.ops_per_s),
        r.abort_pct, r.p50_us, r.p95_us, r.p99_us, r.p999_us, fs, per, r.cpu_cores, r.other_cores);
  }
  // Ratio matrices per group.
  std::map<GroupKey, std::vector<const RunResult*>> groups;
  for (const RunResult& r : runs) {
    if (r.status.ok() && r.spec.engine != EngineKind::kFsync) groups[KeyOf(r.spec)].push_back(&r);
  }
  const RunResult* floor = nullptr;
  for (const RunResult& r : runs) {
    if (r.status.ok() && r.spec.engine == EngineKind::kFsync) floor = &r;
  }
  for (const auto& [key, members] : groups) {
    if (members.size() < 2 && floor == nullptr) continue;
    const RunResult& first = *members[0];
    out +=
        absl::StrFormat("  ratios, %s at %d threads: txn/s of the row's engine over the column's\n",
                        WorkloadName(first.spec.workload), first.spec.threads);
    out += absl::StrFormat("    %-8s", "");
    for (const RunResult* col : members) {
      out += absl::StrFormat(" %9s", EngineName(col->spec.engine));
    }
    if (floor != nullptr) out += "  p50/fsync-floor-p50";
    out += "\n";
    for (const RunResult* row : members) {
      out += absl::StrFormat("    %-8s", EngineName(row->spec.engine));
      for (const RunResult* col : members) {
        out += absl::StrFormat(" %9s", row == col ? "-" : Ratio(row->txn_per_s, col->txn_per_s));
      }
      if (floor != nullptr) out += absl::StrFormat("  %19s", Ratio(row->p50_us, floor->p50_us));
      out += "\n";
    }
  }
  return out;
}

std::string TargetsText(const std::vector<RunResult>& runs) {
  std::string out;
  auto line = [&](const std::string& what, const RunResult* a, const RunResult* b,
                  const std::string& figures, bool holds) {
    if (a == nullptr || b == nullptr) {
      out += absl::StrFormat("  %-62s not measured in this run\n", what);
    } else {
      out += absl::StrFormat("  %-62s %-28s %s\n", what, figures, holds ? "holds" : "MISSED");
    }
  };
  {
    const RunResult* s = Find(runs, EngineKind::kShardtx, Workload::kSingle, 64, 2);
    const RunResult* r = Find(runs, EngineKind::kRocksdb, Workload::kSingle, 64, 2);
    const RunResult* l = Find(runs, EngineKind::kLmdb, Workload::kSingle, 64, 2);
    line("single, 64 threads, sync: shardtx >= 5x RocksDB TransactionDB", s, r,
         s && r ? absl::StrCat("shardtx/rocksdb = ", Ratio(s->txn_per_s, r->txn_per_s)) : "",
         s && r && s->txn_per_s >= 5 * r->txn_per_s);
    line("single, 64 threads, sync: shardtx >= 50x LMDB", s, l,
         s && l ? absl::StrCat("shardtx/lmdb = ", Ratio(s->txn_per_s, l->txn_per_s)) : "",
         s && l && s->txn_per_s >= 50 * l->txn_per_s);
  }
  {
    const RunResult* s = Find(runs, EngineKind::kShardtx, Workload::kCross, 64, 2);
    const RunResult* r = Find(runs, EngineKind::kRocksdb, Workload::kCross, 64, 2);
    line("cross (2 shards/txn), 64 threads, sync: shardtx >= 5x RocksDB 2PC", s, r,
         s && r ? absl::StrCat("shardtx/rocksdb = ", Ratio(s->txn_per_s, r->txn_per_s)) : "",
         s && r && s->txn_per_s >= 5 * r->txn_per_s);
  }
  {
    const RunResult* s = Find(runs, EngineKind::kShardtx, Workload::kSingle, 1, 2);
    const RunResult* f = Find(runs, EngineKind::kFsync, Workload::kFsync, 1, 1);
    line("single, 1 thread, sync: shardtx p50 <= 1.2x the fsync floor", s, f,
         s && f ? absl::StrFormat("%.0f us / %.0f us = %s", s->p50_us, f->p50_us,
                                  Ratio(s->p50_us, f->p50_us))
                : "",
         s && f && s->p50_us <= 1.2 * f->p50_us);
  }
  {
    const RunResult* s = Find(runs, EngineKind::kShardtx, Workload::kYcsbB, 2, 0);
    const RunResult* l = Find(runs, EngineKind::kLmdb, Workload::kYcsbB, 2, 0);
    // ycsb-b ignores shards_per_txn: match any.
    for (const RunResult& r : runs) {
      if (!r.status.ok() || r.spec.workload != Workload::kYcsbB || r.spec.threads != 2) continue;
      if (r.spec.engine == EngineKind::kShardtx) s = &r;
      if (r.spec.engine == EngineKind::kLmdb) l = &r;
    }
    line("ycsb-b, 2 threads: shardtx >= 0.8x LMDB", s, l,
         s && l ? absl::StrCat("shardtx/lmdb = ", Ratio(s->txn_per_s, l->txn_per_s)) : "",
         s && l && s->txn_per_s >= 0.8 * l->txn_per_s);
  }
  return out;
}

std::string ToJson(const Config& c, const MachineInfo& m, const std::vector<RunResult>& runs) {
  double other_max = 0;
  for (const RunResult& r : runs) other_max = std::max(other_max, r.other_cores);
  std::string out = "{\n  \"machine\": {";
  std::vector<std::string> fields = {
      absl::StrCat("\"host\": ", JsonString(m.host)),
      absl::StrCat("\"cpu_model\": ", JsonString(m.cpu_model)),
      absl::StrCat("\"cpus\": ", m.cpus),
      absl::StrCat("\"mem_gb\": ", JsonNumber(m.mem_gb)),
      absl::StrCat("\"kernel\": ", JsonString(m.kernel)),
      absl::StrCat("\"os\": ", JsonString(m.os)),
      absl::StrCat("\"dir\": ", JsonString(m.dir)),
      absl::StrCat("\"filesystem\": ", JsonString(m.filesystem)),
      absl::StrCat("\"date_utc\": ", JsonString(m.date_utc)),
      absl::StrCat("\"rocksdb_version\": ", JsonString(RocksdbVersion())),
      absl::StrCat("\"lmdb_version\": ", JsonString(LmdbVersion())),
      absl::StrCat("\"seconds_per_run\": ", JsonNumber(c.seconds)),
      absl::StrCat("\"keys\": ", c.keys),
      absl::StrCat("\"key_size\": ", c.key_size),
      absl::StrCat("\"value_size\": ", c.value_size),
      absl::StrCat("\"zipf\": ", JsonNumber(c.zipf)),
      absl::StrCat("\"seed\": ", c.seed),
      absl::StrCat("\"other_cores_max\": ", JsonNumber(other_max)),
  };
  out += "\n    " + absl::StrJoin(fields, ",\n    ") + "\n  },\n  \"results\": [";
  bool first = true;
  for (const RunResult& r : runs) {
    if (!r.status.ok()) continue;
    out += first ? "\n" : ",\n";
    first = false;
    out += absl::StrCat(
        "    {\"engine\": ", JsonString(EngineName(r.spec.engine)),
        ", \"workload\": ", JsonString(WorkloadName(r.spec.workload)),
        ", \"threads\": ", r.spec.threads, ", \"shards\": ", r.shards,
        ", \"shards_per_txn\": ", r.spec.shards_per_txn,
        ", \"durability\": ", JsonString(DurabilityName(r.durability)),
        ", \"txn_per_s\": ", JsonNumber(r.txn_per_s), ", \"ops_per_s\": ", JsonNumber(r.ops_per_s),
        ", \"abort_pct\": ", JsonNumber(r.abort_pct), ", \"p50_us\": ", JsonNumber(r.p50_us),
        ", \"p95_us\": ", JsonNumber(r.p95_us), ", \"p99_us\": ", JsonNumber(r.p99_us),
        ", \"p999_us\": ", JsonNumber(r.p999_us),
        ", \"fsyncs_per_s\": ", r.fsyncs_per_s.has_value() ? JsonNumber(*r.fsyncs_per_s) : "null",
        "}");
  }
  out += first ? "]\n}\n" : "\n  ]\n}\n";
  return out;
}

std::string ToCsv(const std::vector<RunResult>& runs) {
  std::string out =
      "engine,workload,threads,shards,shards_per_txn,durability,txn_per_s,ops_per_s,abort_pct,"
      "p50_us,p95_us,p99_us,p999_us,fsyncs_per_s\n";
  for (const RunResult& r : runs) {
    if (!r.status.ok()) continue;
    out +=
        absl::StrFormat("%s,%s,%d,%d,%d,%s,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%s\n",
                        EngineName(r.spec.engine), WorkloadName(r.spec.workload), r.spec.threads,
                        r.shards, r.spec.shards_per_txn, DurabilityName(r.durability), r.txn_per_s,
                        r.ops_per_s, r.abort_pct, r.p50_us, r.p95_us, r.p99_us, r.p999_us,
                        r.fsyncs_per_s.has_value() ? absl::StrFormat("%.3f", *r.fsyncs_per_s) : "");
  }
  return out;
}

absl::Status WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return absl::InternalError(absl::StrCat("cannot open ", path, " for writing"));
  f << contents;
  f.close();
  if (!f) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace txbench
