#include "bench/txbench/report.h"

#include <algorithm>
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

std::string Num(double v) {
  if (v >= 1e6) return absl::StrFormat("%.2fM", v / 1e6);
  if (v >= 1e4) return absl::StrFormat("%.1fk", v / 1e3);
  if (v >= 100) return absl::StrFormat("%.0f", v);
  return absl::StrFormat("%.1f", v);
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// What makes windows comparable: the same row of the plan: engine, workload, threads, keys
// per transaction (the fsync floor ignores them), durability, the run's own shard count (0:
// the invocation's) and log layout.
using RowKey = std::tuple<int, int, int, uint32_t, int, uint32_t, int, int>;
RowKey RowOf(const RunResult& r) {
  return {static_cast<int>(r.spec.engine),
          static_cast<int>(r.spec.workload),
          r.spec.threads,
          IsFloor(r.spec.workload) ? 0 : r.spec.shards_per_txn,
          static_cast<int>(r.durability),
          r.spec.shards,
          static_cast<int>(r.log_layout),
          static_cast<int>(r.spec.reads)};
}

// Groups of the ratio matrices: same workload, threads, keys per transaction, durability and
// shard count (the log layouts of one shard count side by side).
using GroupKey = std::tuple<int, int, uint32_t, int, uint32_t>;
GroupKey GroupOf(const RunResult& r) {
  return {static_cast<int>(r.spec.workload), r.spec.threads, r.spec.shards_per_txn,
          static_cast<int>(r.durability), r.shards};
}

// Picks the windows of one row of the plan (ycsb-b, readonly: any keys per transaction).
struct Pick {
  EngineKind engine;
  Workload workload;
  int threads;
  uint32_t shards_per_txn;  // 0: any
  DurabilityMode durability = DurabilityMode::kSync;
  uint32_t shards = 0;  // the run's own shard count (RunSpec::shards; 0: the invocation's)
  LogLayout log_layout = LogLayout::kPerShard;
  ReadPlacement reads = ReadPlacement::kNone;
  bool Matches(const RunResult& r) const {
    return r.status.ok() && r.spec.engine == engine && r.spec.workload == workload &&
           r.spec.threads == threads &&
           (shards_per_txn == 0 || r.spec.shards_per_txn == shards_per_txn) &&
           r.durability == durability && r.spec.shards == shards && r.log_layout == log_layout &&
           r.spec.reads == reads;
  }
};

// metric(a) / metric(b) for each repetition that has both a and a b, in repetition order;
// with several picks for b, the highest metric among them in that repetition (the best
// peer).
std::vector<double> PairRatios(const std::vector<RunResult>& runs, const Pick& a,
                               const std::vector<Pick>& b, double (*metric)(const RunResult&)) {
  std::map<int, const RunResult*> as;
  std::map<int, double> best;
  for (const RunResult& r : runs) {
    if (a.Matches(r)) as[r.rep] = &r;
    for (const Pick& p : b) {
      if (!p.Matches(r)) continue;
      auto [it, fresh] = best.try_emplace(r.rep, metric(r));
      if (!fresh) it->second = std::max(it->second, metric(r));
    }
  }
  std::vector<double> out;
  for (const auto& [rep, ra] : as) {
    auto it = best.find(rep);
    if (it != best.end() && it->second > 0) out.push_back(metric(*ra) / it->second);
  }
  return out;
}
std::vector<double> PairRatios(const std::vector<RunResult>& runs, const Pick& a, const Pick& b,
                               double (*metric)(const RunResult&)) {
  return PairRatios(runs, a, std::vector<Pick>{b}, metric);
}

double TxnPerS(const RunResult& r) { return r.txn_per_s; }
double P50(const RunResult& r) { return r.p50_us; }
// Transactions per CPU-second of this process: the cost of each, whatever the rest of the machine
// took meanwhile (0 when the CPU use is not known).
double TxnPerCpu(const RunResult& r) { return r.cpu_cores > 0 ? r.txn_per_s / r.cpu_cores : 0; }

std::string RatioSpread(const std::vector<double>& ratios) {
  if (ratios.empty()) return "-";
  const auto [lo, hi] = std::minmax_element(ratios.begin(), ratios.end());
  auto fmt = [](double r) {
    return r >= 10 ? absl::StrFormat("%.0fx", r) : absl::StrFormat("%.2fx", r);
  };
  return absl::StrFormat("%s (%s-%s, %d)", fmt(Median(ratios)), fmt(*lo), fmt(*hi), ratios.size());
}

// The catch-up phase's figures as a JSON object ({"error": ...} when it failed).
std::string CatchUpJson(const absl::StatusOr<CatchUpResult>& c) {
  if (!c.ok()) return absl::StrCat("{\"error\": ", JsonString(c.status().ToString()), "}");
  const CatchUpResult& r = *c;
  return absl::StrCat(
      "{\"bytes\": ", r.bytes_committed, ", \"shards\": ", r.shards,
      ", \"new_node\": ", r.new_node_id, ", \"seconds\": ", JsonNumber(r.seconds),
      ", \"mb_per_s\": ", JsonNumber(r.mb_per_s),
      ", \"snapshots_installed\": ", r.snapshots_installed,
      ", \"install_failures\": ", r.install_failures,
      ", \"leader_snapshots_sent\": ", r.leader_snapshots_sent,
      ", \"new_node_disk_bytes\": ", r.new_node_disk_bytes,
      ", \"add_member_s\": ", JsonNumber(r.add_member_s),
      ", \"add_member\": ", JsonString(r.add_member_status),
      ", \"add_member_calls\": ", r.add_member_calls, ", \"peak_rss_growth_bytes\": ",
      r.peak_rss_growth_bytes.has_value() ? absl::StrCat(*r.peak_rss_growth_bytes) : "null",
      ", \"peak_anon_growth_bytes\": ", r.peak_anon_growth_bytes, ", \"fill_txns\": ", r.fill_txns,
      ", \"fill_s\": ", JsonNumber(r.fill_s), ", \"truncate_commits\": ", r.truncate_commits,
      ", \"truncate_s\": ", JsonNumber(r.truncate_s),
      ", \"leadership_retries\": ", r.leadership_retries, "}");
}

}  // namespace

std::string RowName(const RunResult& r) {
  const std::string engine = r.spec.engine == EngineKind::kShardtxReplicated && r.replicas > 0
                                 ? absl::StrCat("shardtx-", r.replicas, "replicas")
                                 : std::string(EngineName(r.spec.engine));
  return absl::StrCat(engine, VariantSuffix(r), r.spec.reads == ReadPlacement::kNone ? "" : "@",
                      ReadPlacementName(r.spec.reads));
}

namespace {

// A replicated readonly row's figures (a window's, or the summary's over its windows).
std::string ReadonlyLines(const RunResult& r, const std::string& indent) {
  const ReadonlyFigures& f = *r.readonly;
  std::vector<std::string> served;
  for (const ReplicaFigures& n : r.replica_figures) {
    served.push_back(absl::StrCat("node ", n.node_id, " ", n.reads_served));
  }
  std::string out = absl::StrFormat(
      "%sreads served (Stats::read_only_commits): %s; by followers %.1f%%; refused as too stale "
      "(Stats::follower_reads_too_stale, retried) %d\n",
      indent, absl::StrJoin(served, ", "), 100 * f.follower_share, f.reads_too_stale);
  absl::StrAppendFormat(&out,
                        "%sgroup sums checked %d, wrong %d%s; background transfers on node 1: "
                        "%d (%s/s), %d aborts\n",
                        indent, f.sums_checked, f.violations,
                        f.first_violation.empty() ? "" : " (first: " + f.first_violation + ")",
                        f.writes, Num(f.writes_per_s), f.write_aborts);
  absl::StrAppendFormat(
      &out,
      "%sfollower staleness (Stats follower_staleness_ms, nodes 2.., every 100 ms): %s, %d of %d "
      "samples not known\n",
      indent,
      f.staleness_max_ms < 0 ? std::string("no known sample")
                             : absl::StrFormat("median %.0f ms, max %.0f ms", f.staleness_median_ms,
                                               f.staleness_max_ms),
      f.staleness_unknown, f.staleness_samples);
  return out;
}

// Each replica's figures of a window (or of the medians), one line each; then, replicated, the
// commits retried because node 1 did not lead every shard, after `lost_indent`.
std::string ReplicaLines(const RunResult& r, const std::string& indent,
                         const std::string& lost_indent) {
  std::string out;
  for (const ReplicaFigures& f : r.replica_figures) {
    absl::StrAppendFormat(
        &out,
        "%sreplica %d%s: raft log %s writes/s, %.1f entries/write; WAL %s fsyncs/s, %s "
        "records/fsync; LMDB %s syncs/s\n",
        indent, f.node_id, f.node_id == 1 ? " (leader)" : "", Num(f.raft_log_writes_per_s),
        f.raft_entries_per_write, Num(f.wal_fsyncs_per_s),
        f.wal_records_per_fsync > 0 ? absl::StrFormat("%.1f", f.wal_records_per_fsync) : "-",
        Num(f.lmdb_syncs_per_s));
  }
  if (r.spec.engine == EngineKind::kShardtxReplicated) {
    absl::StrAppendFormat(&out,
                          "%snode 1 not leading every shard: %d commits kUnavailable (no effect), "
                          "%d kUnknown (maybe committed), each retried\n",
                          lost_indent, r.leadership_unavailable, r.leadership_unknown);
  }
  if (r.readonly.has_value()) out += ReadonlyLines(r, lost_indent);
  return out;
}

}  // namespace

std::string VariantSuffix(const RunResult& r) {
  std::string out;
  if (r.spec.shards != 0) absl::StrAppend(&out, "/", r.shards, "sh");
  if (r.log_layout == LogLayout::kShared) absl::StrAppend(&out, "/shared");
  return out;
}

namespace {

// --replicas --workload=readonly: what the rows do.
std::string ReadonlyHeader(const Config& c) {
  return absl::StrFormat(
      "  follower reads (issue 17 step 9): %d replicated Databases in this process, members on "
      "127.0.0.1, node 1\n"
      "        the leader of every shard; %d readers, each read transaction one group of %d bank "
      "accounts on\n"
      "        %d distinct shards, its sum checked (a wrong one fails the window); meanwhile %d "
      "threads on\n"
      "        node 1 transfer between the accounts of a group (cross-shard commits); rows: "
      "@leader every reader\n"
      "        on node 1, linearizable reads (a Raft barrier per commit), @leader-fr every "
      "reader on node 1\n"
      "        with TxnOptions::follower_read, @all-fr reader i on node i %% %d + 1 with "
      "follower_read;\n"
      "        max_staleness %s, closed_ts_refresh %s; a read refused as too stale is retried "
      "(counted);\n"
      "        the replicas share these CPUs, so the figure shows the cost of the follower "
      "read path, not scaling\n",
      c.replicas, c.threads, c.shards_per_txn, c.shards_per_txn, c.readonly_writers, c.replicas,
      c.follower_max_staleness_ms < 0 ? "infinite"
                                      : absl::StrCat(c.follower_max_staleness_ms, " ms"),
      absl::FormatDuration(kClosedTsRefresh));
}

}  // namespace

std::string HeaderText(const Config& c, const MachineInfo& m) {
  std::vector<std::string> engines;
  for (EngineKind e : c.engines) engines.push_back(EngineName(e));
  if (c.replicas > 0) {
    engines = {"fsync floor",
               "O_DSYNC write floors (1 and " + std::to_string(c.replicas) + " at once)", "shardtx",
               absl::StrCat("shardtx-", c.replicas, "replicas")};
  }
  const bool readonly = c.replicas > 0 && c.workload == Workload::kReadonly;
  if (readonly) {
    engines = {absl::StrCat("shardtx-", c.replicas, "replicas readonly: readers on node 1 ",
                            "(@leader linearizable, @leader-fr follower reads) and spread over ",
                            "every node (@all-fr follower reads)")};
  }
  std::string out = absl::StrCat(
      "txbench: ", absl::StrJoin(engines, ", "), " side by side, same run, same disk\n",
      readonly ? ReadonlyHeader(c)
      : c.replicas == 0
          ? ""
          : absl::StrFormat(
                "  replicas (issue 16): %d replicated Databases in this process, members on "
                "127.0.0.1, node 1 made\n"
                "        the leader of every shard and every session on it; a commit returns "
                "once a majority holds\n"
                "        it in its Raft log (O_DSYNC writes); the replicas share this disk "
                "and these CPUs, so for\n"
                "        separate machines read each replica's raft log writes/s and "
                "entries/write under its row;\n"
                "        the single-client verdict compares with the O_DSYNC write floor of %d "
                "writes at once, a\n"
                "        majority waited for (4 KiB blocks written to files opened O_DSYNC | "
                "O_DIRECT, as raft_uv\n"
                "        writes its log); the lone O_DSYNC write's and the fsync floor's ratios "
                "are printed for\n"
                "        reference%s\n",
                c.replicas, c.replicas,
                c.catchup_bytes == 0
                    ? ""
                    : absl::StrCat(";\n        catch-up phase after the repetitions: ",
                                   DataSize(c.catchup_bytes),
                                   " committed, then a new replica joins and is timed")),
      absl::StrFormat("  machine: %s, %s x %d CPUs, %.1f GB, %s, %s\n", m.host, m.cpu_model, m.cpus,
                      m.mem_gb, m.kernel, m.os),
      absl::StrFormat("  dir: %s (%s)\n", m.dir, m.filesystem),
      absl::StrFormat("  versions: rocksdb %s, lmdb %s\n", RocksdbVersion(), LmdbVersion()),
      absl::StrFormat(
          "  fair: every engine gets the same %d preloaded keys (%d B keys, %d B values, the "
          "same bytes),\n"
          "        the same transactions from the same seeded generator (seed %d, varied by "
          "repetition), the\n"
          "        same durability (%s), and the same number of client threads; the key -> "
          "shard map is\n"
          "        shardtx's partitioner (%d shards unless a row says /Nsh) for every engine; "
          "aborted attempts are\n"
          "        retried until they commit and counted; each engine's preload is made durable "
          "and settled in its\n"
          "        store before the first window.\n"
          "  shardtx's logs: one per shard, except in rows marked /shared: one log for all the "
          "shards\n"
          "        (Options::log_layout kShared, one fsync for every shard's commits)\n",
          c.keys, c.key_size, c.value_size, c.seed, DurabilityName(c.durability), c.shards),
      "  durability ", DurabilityName(c.durability), ": ",
      c.durability == DurabilityMode::kSync
          ? "shardtx kSync, rocksdb WriteOptions.sync=true, lmdb default flags (synced commit)"
          : "shardtx k" + std::string(c.durability == DurabilityMode::kAsync ? "Async" : "None") +
                ", rocksdb sync=false (WAL on), lmdb MDB_NOSYNC",
      "\n",
      absl::StrFormat(
          "  windows: %.0f s of client threads, then each engine's deferred work inside the "
          "same window\n"
          "  (shardtx: a checkpoint into LMDB; rocksdb: memtable flush and the compactions it "
          "starts;\n"
          "  lmdb: none when synced, its commits write the B-tree; settle: seconds of it); "
          "%d repetition%s\n"
          "  of the plan, interleaved (odd repetitions in reverse order), after a %.0f s "
          "warm-up window\n"
          "  per run; the fsync floor runs in every repetition (at most 3 s)\n",
          c.seconds, c.reps, c.reps == 1 ? "" : "s", c.warmup_s),
      "  latency is per committed transaction, first attempt to commit, in microseconds; "
      "fsync/s: shardtx\n"
      "  WAL fdatasyncs plus LMDB's (one per checkpoint chunk, one per checkpoint), rocksdb WAL "
      "syncs\n"
      "  (statistics), lmdb 2 per synced write commit (fdatasync of the data pages, O_DSYNC "
      "write of the\n"
      "  meta page); txn/fs: transactions per fsync; cpu: cores this process used; other: "
      "cores the rest\n"
      "  of the machine used meanwhile (above ~0.1: a noisy neighbour, distrust the window)\n",
      "  verdicts: from the per-repetition ratios of the two engines (or engine and floor) of "
      "a target:\n"
      "  median (min-max, pairs); 'holds' when even the worst pair meets the target, 'MISSED' "
      "when even\n"
      "  the best pair does not, else 'undecided'; fewer than 5 pairs give no verdict\n");
  return out;
}

std::string TableText(const std::vector<RunResult>& runs) {
  std::string out = absl::StrFormat(
      "%3s %-24s %-8s %4s %4s %3s %-5s %9s %9s %6s %8s %8s %8s %8s %8s %7s %6s %5s %5s\n", "rep",
      "engine", "workload", "thr", "shrd", "k", "dur", "txn/s", "ops/s", "abort%", "p50us", "p95us",
      "p99us", "p99.9us", "fsync/s", "txn/fs", "settle", "cpu", "other");
  for (const RunResult& r : runs) {
    if (!r.status.ok()) {
      out +=
          absl::StrFormat("%3d %-24s %-8s %4d %4d %3d %-5s FAILED: %s\n", r.rep + 1, RowName(r),
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
        "%3d %-24s %-8s %4d %4d %3d %-5s %9s %9s %6.2f %8.1f %8.1f %8.1f %8.1f %8s %7s %6.2f %5.2f "
        "%5.2f\n",
        r.rep + 1, RowName(r), WorkloadName(r.spec.workload), r.spec.threads, r.shards,
        r.spec.shards_per_txn, DurabilityName(r.durability), Num(r.txn_per_s), Num(r.ops_per_s),
        r.abort_pct, r.p50_us, r.p95_us, r.p99_us, r.p999_us, fs, per, r.settle_s, r.cpu_cores,
        r.other_cores);
    out += ReplicaLines(r, "      ", "      ");
  }
  return out;
}

namespace {

// The readonly figures of a row over its windows: counts summed, the followers' share of the
// reads summed per node, the staleness's median of the windows' medians and largest sample.
ReadonlyFigures SummarizeReadonly(const std::vector<const RunResult*>& w,
                                  const std::vector<ReplicaFigures>& summed) {
  ReadonlyFigures out;
  std::vector<double> writes_per_s, staleness;
  for (const RunResult* r : w) {
    if (!r->readonly.has_value()) continue;
    const ReadonlyFigures& f = *r->readonly;
    out.reads_too_stale += f.reads_too_stale;
    out.writes += f.writes;
    out.write_aborts += f.write_aborts;
    out.sums_checked += f.sums_checked;
    out.violations += f.violations;
    if (out.first_violation.empty()) out.first_violation = f.first_violation;
    out.staleness_samples += f.staleness_samples;
    out.staleness_unknown += f.staleness_unknown;
    out.staleness_max_ms = std::max(out.staleness_max_ms, f.staleness_max_ms);
    writes_per_s.push_back(f.writes_per_s);
    if (f.staleness_median_ms >= 0) staleness.push_back(f.staleness_median_ms);
  }
  out.writes_per_s = Median(writes_per_s);
  if (!staleness.empty()) out.staleness_median_ms = Median(staleness);
  uint64_t all = 0, followers = 0;
  for (const ReplicaFigures& f : summed) {
    all += f.reads_served;
    if (f.node_id != 1) followers += f.reads_served;
  }
  out.follower_share = all > 0 ? static_cast<double>(followers) / static_cast<double>(all) : 0;
  return out;
}

}  // namespace

std::vector<Summary> Summarize(const std::vector<RunResult>& runs) {
  std::map<RowKey, std::vector<const RunResult*>> rows;
  std::vector<RowKey> order;
  for (const RunResult& r : runs) {
    if (!r.status.ok()) continue;
    auto [it, fresh] = rows.try_emplace(RowOf(r));
    if (fresh) order.push_back(RowOf(r));
    it->second.push_back(&r);
  }
  std::vector<Summary> out;
  for (const RowKey& key : order) {
    const std::vector<const RunResult*>& w = rows[key];
    Summary s;
    s.windows = static_cast<int>(w.size());
    RunResult& m = s.median;
    m.spec = w[0]->spec;
    m.shards = w[0]->shards;
    m.log_layout = w[0]->log_layout;
    m.durability = w[0]->durability;
    m.engine_description = w[0]->engine_description;
    auto median = [&](double RunResult::*field) {
      std::vector<double> v;
      for (const RunResult* r : w) v.push_back(r->*field);
      return Median(v);
    };
    m.txn_per_s = median(&RunResult::txn_per_s);
    m.ops_per_s = median(&RunResult::ops_per_s);
    m.abort_pct = median(&RunResult::abort_pct);
    m.p50_us = median(&RunResult::p50_us);
    m.p95_us = median(&RunResult::p95_us);
    m.p99_us = median(&RunResult::p99_us);
    m.p999_us = median(&RunResult::p999_us);
    m.settle_s = median(&RunResult::settle_s);
    m.cpu_cores = median(&RunResult::cpu_cores);
    std::vector<double> fs;
    for (const RunResult* r : w) {
      m.other_cores = std::max(m.other_cores, r->other_cores);
      m.committed += r->committed;
      m.aborts += r->aborts;
      m.ops += r->ops;
      m.elapsed_s += r->elapsed_s;
      m.leadership_unavailable += r->leadership_unavailable;  // the summary's: totals
      m.leadership_unknown += r->leadership_unknown;
      if (r->fsyncs_per_s.has_value()) fs.push_back(*r->fsyncs_per_s);
    }
    if (fs.size() == w.size()) m.fsyncs_per_s = Median(fs);
    m.replicas = w[0]->replicas;
    // Each replica's figures: the median over the windows that have them all.
    const size_t replicas = w[0]->replica_figures.size();
    for (size_t i = 0; i < replicas; ++i) {
      auto replica_median = [&](double ReplicaFigures::*field) {
        std::vector<double> v;
        for (const RunResult* r : w) {
          if (r->replica_figures.size() == replicas) v.push_back(r->replica_figures[i].*field);
        }
        return Median(v);
      };
      ReplicaFigures f;
      f.node_id = w[0]->replica_figures[i].node_id;
      f.raft_log_writes_per_s = replica_median(&ReplicaFigures::raft_log_writes_per_s);
      f.raft_entries_per_write = replica_median(&ReplicaFigures::raft_entries_per_write);
      f.wal_fsyncs_per_s = replica_median(&ReplicaFigures::wal_fsyncs_per_s);
      f.wal_records_per_fsync = replica_median(&ReplicaFigures::wal_records_per_fsync);
      f.lmdb_syncs_per_s = replica_median(&ReplicaFigures::lmdb_syncs_per_s);
      for (const RunResult* r : w) {  // the reads: totals over the windows
        if (r->replica_figures.size() != replicas) continue;
        f.reads_served += r->replica_figures[i].reads_served;
        f.reads_too_stale += r->replica_figures[i].reads_too_stale;
      }
      m.replica_figures.push_back(f);
    }
    if (w[0]->readonly.has_value()) m.readonly = SummarizeReadonly(w, m.replica_figures);
    s.txn_min = s.txn_max = w[0]->txn_per_s;
    for (const RunResult* r : w) {
      s.txn_min = std::min(s.txn_min, r->txn_per_s);
      s.txn_max = std::max(s.txn_max, r->txn_per_s);
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string SummaryText(const std::vector<RunResult>& runs) {
  const std::vector<Summary> rows = Summarize(runs);
  std::string out = absl::StrFormat(
      "%-24s %-8s %4s %4s %3s %-5s %4s %9s %17s %6s %8s %8s %8s %8s %7s %6s %5s %5s\n", "engine",
      "workload", "thr", "shrd", "k", "dur", "n", "txn/s", "txn/s min-max", "abort%", "p50us",
      "p99us", "p99.9us", "fsync/s", "txn/fs", "settle", "cpu", "other");
  for (const Summary& s : rows) {
    const RunResult& m = s.median;
    std::string fs = "n/a", per = "n/a";
    if (m.fsyncs_per_s.has_value()) {
      fs = Num(*m.fsyncs_per_s);
      per = *m.fsyncs_per_s > 0 ? absl::StrFormat("%.1f", m.txn_per_s / *m.fsyncs_per_s) : "-";
    }
    out += absl::StrFormat(
        "%-24s %-8s %4d %4d %3d %-5s %4d %9s %17s %6.2f %8.1f %8.1f %8.1f %8s %7s %6.2f %5.2f "
        "%5.2f\n",
        RowName(m), WorkloadName(m.spec.workload), m.spec.threads, m.shards, m.spec.shards_per_txn,
        DurabilityName(m.durability), s.windows, Num(m.txn_per_s),
        absl::StrCat(Num(s.txn_min), "-", Num(s.txn_max)), m.abort_pct, m.p50_us, m.p99_us,
        m.p999_us, fs, per, m.settle_s, m.cpu_cores, m.other_cores);
    out += ReplicaLines(m, "    median ", "    all windows: ");
  }
  // Ratios within each group, pair by pair (the same repetition), and each engine's p50 over
  // the fsync floor's p50 of the same repetition.
  std::map<GroupKey, std::vector<const RunResult*>> groups;
  std::vector<GroupKey> order;
  for (const Summary& s : rows) {
    if (s.median.spec.engine == EngineKind::kFsync) continue;
    auto [it, fresh] = groups.try_emplace(GroupOf(s.median));
    if (fresh) order.push_back(GroupOf(s.median));
    it->second.push_back(&s.median);
  }
  bool floor = false;
  std::vector<int> dsync_floors;  // the O_DSYNC floors' writer counts (--replicas)
  for (const RunResult& r : runs) {
    floor = floor || (r.status.ok() && r.spec.engine == EngineKind::kFsync &&
                      r.spec.workload == Workload::kFsync);
    if (r.status.ok() && r.spec.workload == Workload::kDsync &&
        std::find(dsync_floors.begin(), dsync_floors.end(), r.spec.threads) == dsync_floors.end()) {
      dsync_floors.push_back(r.spec.threads);
    }
  }
  const bool dsync_floor = !dsync_floors.empty();
  for (const GroupKey& key : order) {
    const std::vector<const RunResult*>& members = groups[key];
    if (members.size() < 2 && !floor && !dsync_floor) continue;
    const RunSpec& first = members[0]->spec;
    const DurabilityMode durability = members[0]->durability;
    out += absl::StrFormat(
        "  ratios, %s at %d threads, %d shard%s, %s: median of the per-repetition ratios "
        "(min-max, pairs)\n",
        WorkloadName(first.workload), first.threads, members[0]->shards,
        members[0]->shards == 1 ? "" : "s", DurabilityName(durability));
    auto pick = [](const RunResult* m) {
      Pick p{m->spec.engine, m->spec.workload, m->spec.threads, m->spec.shards_per_txn,
             m->durability,  m->spec.shards,   m->log_layout};
      p.reads = m->spec.reads;
      return p;
    };
    // Each pair once, the engine that runs first in the plan (shardtx) over the other.
    for (size_t i = 0; i < members.size(); ++i) {
      const RunResult* row = members[i];
      for (size_t j = i + 1; j < members.size(); ++j) {
        const RunResult* col = members[j];
        out += absl::StrFormat("    txn/s %s / %s: %s\n", RowName(*row), RowName(*col),
                               RatioSpread(PairRatios(runs, pick(row), pick(col), TxnPerS)));
      }
      if (floor && durability == DurabilityMode::kSync) {
        out += absl::StrFormat(
            "    p50 %s / fsync floor p50: %s\n", RowName(*row),
            RatioSpread(PairRatios(runs, pick(row),
                                   Pick{EngineKind::kFsync, Workload::kFsync, 1, 0}, P50)));
      }
      for (int writers : dsync_floors) {
        if (durability != DurabilityMode::kSync) break;
        out += absl::StrFormat(
            "    p50 %s / O_DSYNC write floor%s p50: %s\n", RowName(*row),
            writers == 1 ? "" : absl::StrFormat(" (%d at once)", writers),
            RatioSpread(PairRatios(runs, pick(row),
                                   Pick{EngineKind::kFsync, Workload::kDsync, writers, 0}, P50)));
      }
    }
  }
  return out;
}

Verdict Judge(const std::string& target, const std::vector<double>& ratios, double bound,
              bool at_least) {
  Verdict v;
  v.target = target;
  v.pairs = static_cast<int>(ratios.size());
  v.bound = bound;
  v.at_least = at_least;
  if (ratios.empty()) {
    v.outcome = "not measured";
    return v;
  }
  v.median = Median(ratios);
  v.min = *std::min_element(ratios.begin(), ratios.end());
  v.max = *std::max_element(ratios.begin(), ratios.end());
  if (v.pairs < kMinPairs) {
    v.outcome = absl::StrCat("no verdict (", v.pairs, " pair", v.pairs == 1 ? "" : "s", " < ",
                             kMinPairs, ")");
  } else if (at_least ? v.min >= bound : v.max <= bound) {
    v.outcome = "holds";
  } else if (at_least ? v.max < bound : v.min > bound) {
    v.outcome = "MISSED";
  } else {
    v.outcome = "undecided";
  }
  return v;
}

std::vector<Verdict> JudgeTargets(const std::vector<RunResult>& runs) {
  constexpr DurabilityMode kSync = DurabilityMode::kSync;
  constexpr LogLayout kShared = LogLayout::kShared;
  const Pick s64{EngineKind::kShardtx, Workload::kSingle, 64, 2};
  const Pick x64{EngineKind::kShardtx, Workload::kCross, 64, 2};
  const Pick rocksdb_s64{EngineKind::kRocksdb, Workload::kSingle, 64, 2};
  const std::vector<Pick> rocksdb_x64 = {{EngineKind::kRocksdb, Workload::kCross, 64, 2},
                                         {EngineKind::kRocksdbSerial2pc, Workload::kCross, 64, 2}};
  const Pick nosync{EngineKind::kShardtx, Workload::kSingle, 64, 2, DurabilityMode::kNone};
  const Pick rocksdb_256{EngineKind::kRocksdb, Workload::kSingle, 256, 2};
  const Pick floor1{EngineKind::kFsync, Workload::kFsync, 1, 0};
  std::vector<Verdict> out;
  // Issue 5's targets and issue 19's first parts, on per-shard logs (shardtx's default).
  out.push_back(
      Judge("single, 64 threads, sync: shardtx (per-shard logs) >= 5x RocksDB "
            "TransactionDB",
            PairRatios(runs, s64, rocksdb_s64, TxnPerS), 5, true));
  out.push_back(Judge("single, 64 threads, sync: shardtx (per-shard logs) >= 50x LMDB",
                      PairRatios(runs, s64, {EngineKind::kLmdb, Workload::kSingle, 64, 2}, TxnPerS),
                      50, true));
  out.push_back(
      Judge("cross (2 shards/txn), 64 threads, sync: shardtx (per-shard logs) >= 5x "
            "RocksDB 2PC (the better protocol)",
            PairRatios(runs, x64, rocksdb_x64, TxnPerS), 5, true));
  // Issue 19: asynchronous commit, 2 submitting threads keeping 256 transactions in flight.
  const Pick async{EngineKind::kShardtxAsync, Workload::kSingle, 2, 2};
  out.push_back(
      Judge("async, 2 submitters x 256 in flight: shardtx (per-shard logs) >= 0.6x "
            "shardtx no-sync at 64 threads",
            PairRatios(runs, async, nosync, TxnPerS), 0.6, true));
  out.push_back(
      Judge("async, 2 submitters x 256 in flight: shardtx (per-shard logs) >= 5x "
            "RocksDB TransactionDB durable at 256 threads",
            PairRatios(runs, async, rocksdb_256, TxnPerS), 5, true));
  out.push_back(Judge(
      "single, 1 thread, sync: shardtx (per-shard logs) p50 <= 1.2x the fsync "
      "floor",
      PairRatios(runs, {EngineKind::kShardtx, Workload::kSingle, 1, 2}, floor1, P50), 1.2, false));
  // Parallel commit: one fsync round per cross-shard commit. On per-shard logs its two prepares
  // go to two logs, so the floor is two fdatasyncs at once on two files of the same disk; the
  // one-file floor applies when the prepares share one sync (the shared log, below).
  const Pick x1{EngineKind::kShardtx, Workload::kCross, 1, 2};
  out.push_back(
      Judge("cross (2 of 4), 1 thread, sync: shardtx (per-shard logs) p50 <= 1.3x two "
            "concurrent fsyncs",
            PairRatios(runs, x1, {EngineKind::kFsync, Workload::kFsync, 2, 0}, P50), 1.3, false));
  out.push_back(
      Judge("cross (2 of 4), 1 thread, sync: shardtx (per-shard logs) p50 <= 1.3x one "
            "fsync",
            PairRatios(runs, x1, floor1, P50), 1.3, false));
  out.push_back(
      Judge("cross (2 shards/txn), 64 threads, sync: shardtx (per-shard logs) >= 3x "
            "RocksDB careful 2PC",
            PairRatios(runs, x64, rocksdb_x64[0], TxnPerS), 3, true));
  out.push_back(Judge("ycsb-b, 2 threads, sync: shardtx (per-shard logs) >= 0.8x LMDB",
                      PairRatios(runs, {EngineKind::kShardtx, Workload::kYcsbB, 2, 0},
                                 {EngineKind::kLmdb, Workload::kYcsbB, 2, 0}, TxnPerS),
                      0.8, true));
  // Issue 19 part 3: one log shared by the shards of a disk. Single-shard commits over 4
  // shards must keep what 1 shard gets from the disk, and one fsync covers both prepares of a
  // cross-shard commit.
  const Pick shared_s64{EngineKind::kShardtx, Workload::kSingle, 64, 2, kSync, 4, kShared};
  out.push_back(
      Judge("single-shard workload, 64 threads, sync: 4 shards on one disk (shared "
            "log) >= 0.9x the same over 1 shard",
            PairRatios(runs, shared_s64,
                       Pick{EngineKind::kShardtx, Workload::kSingle, 64, 2, kSync, 1}, TxnPerS),
            0.9, true));
  out.push_back(
      Judge("single-shard workload, 64 threads, sync: 4 shards on one disk (shared "
            "log) >= 3x RocksDB TransactionDB",
            PairRatios(runs, shared_s64, rocksdb_s64, TxnPerS), 3, true));
  out.push_back(
      Judge("cross (2 of 4), 1 thread, sync: shardtx (shared log: the two prepares "
            "share one sync) p50 <= 1.3x one fsync",
            PairRatios(runs, {EngineKind::kShardtx, Workload::kCross, 1, 2, kSync, 0, kShared},
                       floor1, P50),
            1.3, false));
  const Pick shared_x64{EngineKind::kShardtx, Workload::kCross, 64, 2, kSync, 0, kShared};
  out.push_back(
      Judge("cross (2 shards/txn), 64 threads, sync: shardtx (shared log) >= 5x "
            "RocksDB 2PC (the better protocol)",
            PairRatios(runs, shared_x64, rocksdb_x64, TxnPerS), 5, true));
  out.push_back(
      Judge("cross (2 shards/txn), 64 threads, sync: shardtx (shared log) >= 3x RocksDB "
            "careful 2PC",
            PairRatios(runs, shared_x64, rocksdb_x64[0], TxnPerS), 3, true));
  const Pick shared_async{EngineKind::kShardtxAsync, Workload::kSingle, 2, 2, kSync, 0, kShared};
  out.push_back(
      Judge("async, 2 submitters x 256 in flight: shardtx (shared log) >= 0.6x "
            "shardtx no-sync at 64 threads",
            PairRatios(runs, shared_async, nosync, TxnPerS), 0.6, true));
  out.push_back(
      Judge("async, 2 submitters x 256 in flight: shardtx (shared log) >= 5x RocksDB "
            "TransactionDB durable at 256 threads",
            PairRatios(runs, shared_async, rocksdb_256, TxnPerS), 5, true));
  return out;
}

namespace {

// Issue 17 step 9's target for the replicated readonly rows like `first`: follower reads over all
// the nodes against leader-only reads, with the ratios to each leader row for reference; then,
// as figures (no verdict), the followers' share of the reads, their staleness and the checked
// group sums, over the follower-read windows.
void JudgeReadonly(const std::vector<RunResult>& runs, const RunResult& first,
                   std::vector<Verdict>* out) {
  auto pick = [&](ReadPlacement p) {
    Pick k{EngineKind::kShardtxReplicated,
           Workload::kReadonly,
           first.spec.threads,
           first.spec.shards_per_txn,
           DurabilityMode::kSync,
           first.spec.shards,
           first.log_layout};
    k.reads = p;
    return k;
  };
  const Pick all = pick(ReadPlacement::kAllFollowerRead);
  const Pick linearizable = pick(ReadPlacement::kLeaderLinearizable);
  const Pick leader_fr = pick(ReadPlacement::kLeaderFollowerRead);
  const std::string what = absl::StrFormat(
      "readonly (%d shards/read), %d readers, %d replicas:", first.spec.shards_per_txn,
      first.spec.threads, first.replicas);
  out->push_back(Judge(absl::StrCat(what,
                                    " follower reads over every node, reads/s >= 0.9x leader-only "
                                    "(the better of node 1's two rows in each repetition)"),
                       PairRatios(runs, all, {linearizable, leader_fr}, TxnPerS), 0.9, true));
  for (const auto& [leader, name] :
       {std::pair{linearizable, "node 1 linearizable reads (a Raft barrier per commit)"},
        std::pair{leader_fr, "node 1 follower reads (its safe timestamp)"}}) {
    Verdict reference = Judge(absl::StrCat(what, " follower reads over every node / ", name),
                              PairRatios(runs, all, leader, TxnPerS), 0.9, true);
    if (reference.pairs > 0) {
      reference.outcome = absl::StrCat("for reference (>= 0.9x: ", reference.outcome,
                                       "); the verdict is the line above");
    }
    out->push_back(reference);
  }
  // The same pairs per CPU-second of this process: what a read costs here, whatever the rest of
  // the machine (other helpers' builds) took from the window.
  Verdict per_cpu = Judge(absl::StrCat(what,
                                       " follower reads over every node / node 1 follower reads, "
                                       "reads per CPU-second of this process"),
                          PairRatios(runs, all, leader_fr, TxnPerCpu), 0.9, true);
  if (per_cpu.pairs > 0) {
    per_cpu.outcome = absl::StrCat("for reference (>= 0.9x: ", per_cpu.outcome,
                                   "); the cost per read, load aside");
  }
  out->push_back(per_cpu);
  // The figures of the follower-read rows, over their windows.
  std::vector<const RunResult*> spread, checked;
  for (const RunResult& r : runs) {
    if (!r.readonly.has_value()) continue;  // failed windows' figures too: their wrong sums
    checked.push_back(&r);
    if (all.Matches(r)) spread.push_back(&r);
  }
  Verdict share;
  share.target = absl::StrCat(what, " share of the reads the followers served (all-fr rows)");
  Verdict staleness;
  staleness.target = absl::StrCat(what, " follower staleness (Stats, all-fr rows)");
  if (spread.empty()) {
    share.outcome = staleness.outcome = "not measured";
  } else {
    std::vector<ReplicaFigures> summed = spread[0]->replica_figures;
    for (ReplicaFigures& f : summed) f.reads_served = f.reads_too_stale = 0;
    for (const RunResult* r : spread) {
      for (size_t i = 0; i < summed.size() && i < r->replica_figures.size(); ++i) {
        summed[i].reads_served += r->replica_figures[i].reads_served;
      }
    }
    const ReadonlyFigures f = SummarizeReadonly(spread, summed);
    std::vector<std::string> served;
    for (const ReplicaFigures& n : summed) {
      served.push_back(absl::StrCat("node ", n.node_id, " ", n.reads_served));
    }
    share.outcome =
        absl::StrFormat("%.1f%% (Stats::read_only_commits over %d windows: %s)",
                        100 * f.follower_share, spread.size(), absl::StrJoin(served, ", "));
    staleness.outcome =
        f.staleness_max_ms < 0
            ? absl::StrFormat("not known (%d samples)", f.staleness_samples)
            : absl::StrFormat(
                  "median %.0f ms, max %.0f ms (%d of %d samples not known); %d reads refused as "
                  "too stale",
                  f.staleness_median_ms, f.staleness_max_ms, f.staleness_unknown,
                  f.staleness_samples, f.reads_too_stale);
  }
  Verdict sums;
  sums.target = absl::StrCat(what, " group sums checked (every readonly row)");
  {
    uint64_t n = 0, wrong = 0;
    for (const RunResult* r : checked) {
      n += r->readonly->sums_checked;
      wrong += r->readonly->violations;
    }
    uint64_t failed = 0;
    for (const RunResult& r : runs) {
      if (r.spec.reads != ReadPlacement::kNone && !r.status.ok()) ++failed;
    }
    sums.outcome = absl::StrFormat("%d checked, %d wrong in the windows above%s", n, wrong,
                                   failed == 0 ? ""
                                               : absl::StrFormat("; %d windows FAILED (see their "
                                                                 "rows)",
                                                                 failed));
  }
  out->push_back(share);
  out->push_back(staleness);
  out->push_back(sums);
}

}  // namespace

std::vector<Verdict> JudgeReplicationTargets(const std::vector<RunResult>& runs,
                                             const absl::StatusOr<CatchUpResult>* catch_up) {
  std::vector<Verdict> out;
  // The replicated rows' workloads and layouts, in the order they first ran.
  std::vector<const RunResult*> firsts;
  for (const RunResult& r : runs) {
    if (!r.status.ok() || r.spec.engine != EngineKind::kShardtxReplicated) continue;
    bool seen = false;
    for (const RunResult* f : firsts) {
      seen = seen || (f->spec.workload == r.spec.workload && f->log_layout == r.log_layout &&
                      f->spec.shards_per_txn == r.spec.shards_per_txn);
    }
    if (!seen) firsts.push_back(&r);
  }
  if (firsts.empty()) {
    for (const RunResult& r : runs) {
      if (r.spec.engine == EngineKind::kShardtxReplicated) firsts.push_back(&r);
      if (!firsts.empty()) break;
    }
  }
  const Pick floor1{EngineKind::kFsync, Workload::kFsync, 1, 0};
  const Pick dsync1{EngineKind::kFsync, Workload::kDsync, 1, 0};
  bool readonly_only = !firsts.empty();
  for (const RunResult* f : firsts) {
    if (f->spec.workload == Workload::kReadonly) {
      JudgeReadonly(runs, *f, &out);
      continue;
    }
    readonly_only = false;
    const std::string name = RowName(*f);
    auto pick = [&](EngineKind e, int threads) {
      return Pick{e,
                  f->spec.workload,
                  threads,
                  f->spec.shards_per_txn,
                  DurabilityMode::kSync,
                  f->spec.shards,
                  f->log_layout};
    };
    // A replicated commit is durable once a majority's Raft logs hold it, each log write one
    // O_DSYNC write (raft_uv), the N replicas writing at once on this disk: the O_DSYNC floor of N
    // writes at once, a majority waited for, is the like-for-like one and gets the verdict. The
    // lone O_DSYNC write's and the fdatasync floor's ratios are printed beside it, for reference.
    const Pick replicated1 = pick(EngineKind::kShardtxReplicated, 1);
    const Pick dsync_n{EngineKind::kFsync, Workload::kDsync, f->replicas, 0};
    out.push_back(
        Judge(absl::StrCat(WorkloadName(f->spec.workload), ", 1 thread, sync: ", name,
                           " commit p50 <= 3x the O_DSYNC write floor, ", f->replicas,
                           " at once, majority (like for like: its replicas' Raft log writes)"),
              PairRatios(runs, replicated1, dsync_n, P50), 3, false));
    for (const auto& [floor, what] : {std::pair{dsync1, "one O_DSYNC write alone"},
                                      std::pair{floor1, "the fsync (pwrite+fdatasync) floor"}}) {
      Verdict reference = Judge(absl::StrCat(WorkloadName(f->spec.workload),
                                             ", 1 thread, sync: ", name, " commit p50 / ", what),
                                PairRatios(runs, replicated1, floor, P50), 3, false);
      if (reference.pairs > 0) {
        reference.outcome = absl::StrCat("for reference (<= 3x: ", reference.outcome,
                                         "); the verdict is the line above");
      }
      out.push_back(reference);
    }
    out.push_back(Judge(
        absl::StrCat(WorkloadName(f->spec.workload), ", 64 threads, sync: ", name,
                     " durable commits/s >= 0.4x shardtx unreplicated (replicas on one disk)"),
        PairRatios(runs, pick(EngineKind::kShardtxReplicated, 64), pick(EngineKind::kShardtx, 64),
                   TxnPerS),
        0.4, true));
  }
  if (!firsts.empty() && !(readonly_only && catch_up == nullptr)) {
    Verdict v;
    v.target = "time for a new replica to catch up 1 GB";
    if (catch_up == nullptr) {
      v.outcome = "not measured (--catchup-bytes=0)";
    } else if (!catch_up->ok()) {
      v.outcome = absl::StrCat("FAILED: ", catch_up->status().ToString());
    } else {
      const CatchUpResult& c = **catch_up;
      v.target = absl::StrCat("time for a new replica to catch up ", DataSize(c.bytes_committed),
                              " (issue 16: 1 GB)");
      v.outcome = absl::StrFormat(
          "%.1f s, %.1f MB/s (%d snapshot installs over %d shards; no bound set, reported)",
          c.seconds, c.mb_per_s, c.snapshots_installed, c.shards);
    }
    out.push_back(v);
  }
  return out;
}

std::string ReplicationTargetsText(const std::vector<RunResult>& runs,
                                   const absl::StatusOr<CatchUpResult>* catch_up) {
  std::string out;
  for (const Verdict& v : JudgeReplicationTargets(runs, catch_up)) {
    if (v.pairs == 0) {
      out += absl::StrFormat("  %-100s %s\n", v.target,
                             v.outcome == "not measured" ? "not measured in this run" : v.outcome);
      continue;
    }
    out += absl::StrFormat("  %-100s %.2fx (%.2f-%.2f, %d pairs)  %s\n", v.target, v.median, v.min,
                           v.max, v.pairs, v.outcome);
  }
  return out;
}

std::string TargetsText(const std::vector<RunResult>& runs) {
  std::string out;
  for (const Verdict& v : JudgeTargets(runs)) {
    if (v.pairs == 0) {
      out += absl::StrFormat("  %-100s not measured in this run\n", v.target);
      continue;
    }
    out += absl::StrFormat("  %-100s %.2fx (%.2f-%.2f, %d pairs)  %s\n", v.target, v.median, v.min,
                           v.max, v.pairs, v.outcome);
  }
  return out;
}

std::string ToJson(const Config& c, const MachineInfo& m, const std::vector<RunResult>& runs,
                   const absl::StatusOr<CatchUpResult>* catch_up) {
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
      absl::StrCat("\"reps\": ", c.reps),
      absl::StrCat("\"warmup_s\": ", JsonNumber(c.warmup_s)),
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
        ", \"log_layout\": ", JsonString(LogLayoutName(r.log_layout)),
        ", \"shards_per_txn\": ", r.spec.shards_per_txn,
        ", \"durability\": ", JsonString(DurabilityName(r.durability)), ", \"rep\": ", r.rep,
        ", \"txn_per_s\": ", JsonNumber(r.txn_per_s), ", \"ops_per_s\": ", JsonNumber(r.ops_per_s),
        ", \"abort_pct\": ", JsonNumber(r.abort_pct), ", \"p50_us\": ", JsonNumber(r.p50_us),
        ", \"p95_us\": ", JsonNumber(r.p95_us), ", \"p99_us\": ", JsonNumber(r.p99_us),
        ", \"p999_us\": ", JsonNumber(r.p999_us),
        ", \"fsyncs_per_s\": ", r.fsyncs_per_s.has_value() ? JsonNumber(*r.fsyncs_per_s) : "null",
        ", \"settle_s\": ", JsonNumber(r.settle_s));
    if (r.spec.engine == EngineKind::kShardtxReplicated) {
      std::vector<std::string> figures;
      for (const ReplicaFigures& f : r.replica_figures) {
        figures.push_back(absl::StrCat(
            "{\"node\": ", f.node_id,
            ", \"raft_log_writes_per_s\": ", JsonNumber(f.raft_log_writes_per_s),
            ", \"raft_entries_per_write\": ", JsonNumber(f.raft_entries_per_write),
            ", \"wal_fsyncs_per_s\": ", JsonNumber(f.wal_fsyncs_per_s),
            ", \"wal_records_per_fsync\": ", JsonNumber(f.wal_records_per_fsync),
            ", \"lmdb_syncs_per_s\": ", JsonNumber(f.lmdb_syncs_per_s),
            r.readonly.has_value() ? absl::StrCat(", \"reads_served\": ", f.reads_served,
                                                  ", \"reads_too_stale\": ", f.reads_too_stale)
                                   : "",
            "}"));
      }
      absl::StrAppend(&out, ", \"replicas\": ", r.replicas, ", \"replica_figures\": [",
                      absl::StrJoin(figures, ", "),
                      "], \"leadership_unavailable\": ", r.leadership_unavailable,
                      ", \"leadership_unknown\": ", r.leadership_unknown);
    }
    if (r.readonly.has_value()) {
      const ReadonlyFigures& f = *r.readonly;
      absl::StrAppend(&out, ", \"reads\": ", JsonString(ReadPlacementName(r.spec.reads)),
                      ", \"follower_share\": ", JsonNumber(f.follower_share),
                      ", \"reads_too_stale\": ", f.reads_too_stale,
                      ", \"background_writes\": ", f.writes,
                      ", \"background_writes_per_s\": ", JsonNumber(f.writes_per_s),
                      ", \"sums_checked\": ", f.sums_checked, ", \"sums_wrong\": ", f.violations,
                      ", \"staleness_median_ms\": ",
                      f.staleness_median_ms < 0 ? "null" : JsonNumber(f.staleness_median_ms),
                      ", \"staleness_max_ms\": ",
                      f.staleness_max_ms < 0 ? "null" : JsonNumber(f.staleness_max_ms),
                      ", \"staleness_samples\": ", f.staleness_samples,
                      ", \"staleness_unknown\": ", f.staleness_unknown);
    }
    out += "}";
  }
  out += first ? "],\n" : "\n  ],\n";
  out += "  \"targets\": [";
  first = true;
  std::vector<Verdict> verdicts = JudgeTargets(runs);
  for (Verdict& v : JudgeReplicationTargets(runs, catch_up)) verdicts.push_back(std::move(v));
  for (const Verdict& v : verdicts) {
    out += first ? "\n" : ",\n";
    first = false;
    out += absl::StrCat("    {\"target\": ", JsonString(v.target), ", \"pairs\": ", v.pairs,
                        ", \"median\": ", v.pairs ? JsonNumber(v.median) : "null",
                        ", \"min\": ", v.pairs ? JsonNumber(v.min) : "null",
                        ", \"max\": ", v.pairs ? JsonNumber(v.max) : "null",
                        ", \"verdict\": ", JsonString(v.outcome), "}");
  }
  out += first ? "]" : "\n  ]";
  if (catch_up != nullptr) out += ",\n  \"catch_up\": " + CatchUpJson(*catch_up);
  out += "\n}\n";
  return out;
}

std::string ToCsv(const std::vector<RunResult>& runs) {
  std::string out =
      "engine,workload,threads,shards,log_layout,shards_per_txn,durability,rep,txn_per_s,ops_per_s,"
      "abort_pct,p50_us,p95_us,p99_us,p999_us,fsyncs_per_s,settle_s\n";
  for (const RunResult& r : runs) {
    if (!r.status.ok()) continue;
    out += absl::StrFormat(
        "%s,%s,%d,%d,%s,%d,%s,%d,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%s,%.3f\n",
        EngineName(r.spec.engine), WorkloadName(r.spec.workload), r.spec.threads, r.shards,
        LogLayoutName(r.log_layout), r.spec.shards_per_txn, DurabilityName(r.durability), r.rep,
        r.txn_per_s, r.ops_per_s, r.abort_pct, r.p50_us, r.p95_us, r.p99_us, r.p999_us,
        r.fsyncs_per_s.has_value() ? absl::StrFormat("%.3f", *r.fsyncs_per_s) : "", r.settle_s);
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
