#include "bench/txbench/catch_up.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bench/txbench/first_error.h"
#include "bench/txbench/keyspace.h"
#include "shardtx/database.h"
#include "shardtx/transaction.h"

namespace txbench {
namespace {

using Clock = std::chrono::steady_clock;
using Progress = std::function<void(const std::string&, bool)>;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// This process's memory figures from /proc/self/status, in bytes (-1 when absent).
struct ProcMemory {
  int64_t rss = -1, hwm = -1, anon = -1;
};
ProcMemory ReadProcMemory() {
  ProcMemory m;
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    auto field = [&](const char* name, int64_t* out) {
      if (line.rfind(name, 0) != 0) return;
      std::string v = line.substr(std::string(name).size());
      v.erase(std::remove_if(v.begin(), v.end(), [](char c) { return c < '0' || c > '9'; }),
              v.end());
      int64_t kb = 0;
      if (absl::SimpleAtoi(v, &kb)) *out = kb * 1024;
    };
    field("VmRSS:", &m.rss);
    field("VmHWM:", &m.hwm);
    field("RssAnon:", &m.anon);
  }
  return m;
}

// Resets VmHWM to the current RSS (Linux >= 4.0: "5" > /proc/PID/clear_refs).
bool ResetPeakRss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

uint64_t AllocatedBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st;
    if (lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      total += static_cast<uint64_t>(st.st_blocks) * 512;
    }
  }
  return total;
}

// Commits `puts` in one synced transaction on `db`. Retries aborts (none expected: every key is
// written by one committer) and, after waiting (AwaitLeadership) until `db` leads every shard
// again, commits that failed because it lost leadership meanwhile: kUnavailable (no effect) or
// kUnknown (maybe committed; writing the same values again is harmless). Each such retry is
// counted in `leadership_retries`.
absl::Status CommitPuts(shardtx::Database& db,
                        const std::vector<std::pair<std::string, absl::string_view>>& puts,
                        std::atomic<uint64_t>* leadership_retries) {
  for (int aborts = 0;;) {
    std::unique_ptr<shardtx::Transaction> txn = db.Begin();
    absl::Status s;
    for (const auto& [key, value] : puts) {
      s = txn->Put(key, value);
      if (!s.ok()) break;
    }
    if (s.ok()) s = txn->Commit();
    if (!s.ok()) txn->Rollback().IgnoreError();
    if (s.ok()) return s;
    if (absl::IsUnavailable(s) || absl::IsUnknown(s)) {
      leadership_retries->fetch_add(1);
      if (!AwaitLeadership(db)) return s;
      continue;
    }
    if (!absl::IsAborted(s) || ++aborts > 100) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

const shardtx::ShardStatsView* ShardOf(const shardtx::Stats& s, uint32_t g) {
  return g < s.shards.size() ? &s.shards[g] : nullptr;
}
// A pointer into a temporary Stats would dangle (ASan found one such call).
const shardtx::ShardStatsView* ShardOf(const shardtx::Stats&& s, uint32_t g) = delete;

// Keys of every shard: `per_shard` names "<prefix><n>" on each, drawn in order of n.
std::vector<std::vector<std::string>> KeysByShard(
    const std::function<uint32_t(absl::string_view)>& shard_of, uint32_t shards, uint64_t per_shard,
    const std::string& prefix) {
  std::vector<std::vector<std::string>> keys(shards);
  uint32_t full = 0;
  for (uint64_t n = 0; full < shards; ++n) {
    std::string key = absl::StrFormat("%s%010d", prefix, n);
    const uint32_t g = shard_of(key);
    if (g >= shards || keys[g].size() >= per_shard) continue;
    keys[g].push_back(std::move(key));
    if (keys[g].size() == per_shard) ++full;
  }
  return keys;
}

// The fill: every shard gets its share of spec.bytes in transactions of keys_per_txn values.
absl::Status Fill(shardtx::Database& leader,
                  const std::function<uint32_t(absl::string_view)>& shard_of, uint32_t shards,
                  const CatchUpSpec& spec, const Progress& progress, CatchUpResult* r) {
  const uint64_t per_shard_bytes = (spec.bytes + shards - 1) / shards;
  const uint64_t per_shard_keys =
      std::max<uint64_t>(1, (per_shard_bytes + spec.value_bytes - 1) / spec.value_bytes);
  const std::vector<std::vector<std::string>> keys =
      KeysByShard(shard_of, shards, per_shard_keys, "catchup-fill-");
  // Random bytes; each value is a window of them at its own offset.
  std::string pool(spec.value_bytes + 4096, '\0');
  Rng rng(0x5eed);
  for (char& c : pool) c = static_cast<char>(rng.Next());

  std::vector<std::unique_ptr<std::atomic<uint64_t>>> next(shards);
  for (auto& n : next) n = std::make_unique<std::atomic<uint64_t>>(0);
  std::atomic<uint64_t> bytes{0}, txns{0}, retries{0};
  FirstError error;
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (uint32_t g = 0; g < shards; ++g) {
    for (int t = 0; t < spec.fill_threads_per_shard; ++t) {
      threads.emplace_back([&, g] {
        std::vector<std::pair<std::string, absl::string_view>> puts;
        while (!error.stopped()) {
          const uint64_t first = next[g]->fetch_add(spec.keys_per_txn);
          if (first >= keys[g].size()) return;
          const uint64_t last = std::min<uint64_t>(first + spec.keys_per_txn, keys[g].size());
          puts.clear();
          uint64_t txn_bytes = 0;
          for (uint64_t i = first; i < last; ++i) {
            const absl::string_view value(pool.data() + (i * 61) % 4096, spec.value_bytes);
            puts.emplace_back(keys[g][i], value);
            txn_bytes += keys[g][i].size() + value.size();
          }
          absl::Status s = CommitPuts(leader, puts, &retries);
          if (!s.ok()) {
            error.Set(absl::Status(s.code(),
                                   absl::StrCat("catch-up fill, shard ", g, ": ", s.message())));
            return;
          }
          bytes.fetch_add(txn_bytes);
          txns.fetch_add(1);
        }
      });
    }
  }
  const double total_mb = static_cast<double>(per_shard_keys * shards * spec.value_bytes) / 1e6;
  for (;;) {
    bool all_taken = true;  // then the last transactions are committing: join
    for (uint32_t g = 0; g < shards; ++g) all_taken = all_taken && *next[g] >= keys[g].size();
    if (all_taken || error.stopped()) break;
    if (progress) {
      progress(absl::StrFormat("catch-up: filling %.0f/%.0f MB, %.1f s",
                               static_cast<double>(bytes.load()) / 1e6, total_mb, Since(t0)),
               true);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  for (std::thread& t : threads) t.join();
  r->fill_s = Since(t0);
  r->bytes_committed = bytes.load();
  r->fill_txns = txns.load();
  r->leadership_retries += retries.load();
  return error.Get();
}

// One-key commits on every shard until the leader applied, past its index after the fill,
// snapshot_trailing + 2 x snapshot_threshold more entries: by then its group took a snapshot at
// an index at least snapshot_trailing past the fill (libraft snapshots every threshold applied
// entries), so the log it keeps no longer holds any of the fill, and a new member needs a
// snapshot. One committer per shard, so that every commit is an entry of its own.
absl::Status Truncate(shardtx::Database& leader,
                      const std::function<uint32_t(absl::string_view)>& shard_of, uint32_t shards,
                      uint64_t threshold, uint64_t trailing, const Progress& progress,
                      CatchUpResult* r) {
  const shardtx::Stats after_fill = leader.GetStats();
  std::vector<uint64_t> target(shards);
  for (uint32_t g = 0; g < shards; ++g) {
    const shardtx::ShardStatsView* s = ShardOf(after_fill, g);
    if (s == nullptr) return absl::InternalError("catch-up: the leader reports no stats");
    target[g] = s->replication.commit_index + trailing + 2 * threshold;
  }
  const std::vector<std::vector<std::string>> keys =
      KeysByShard(shard_of, shards, 1, "catchup-truncate-");
  std::atomic<uint64_t> commits{0}, retries{0};
  FirstError error;
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (uint32_t g = 0; g < shards; ++g) {
    threads.emplace_back([&, g] {
      const std::vector<std::pair<std::string, absl::string_view>> puts = {{keys[g][0], "t"}};
      for (uint64_t n = 0; !error.stopped(); ++n) {
        if (n % 32 == 0) {
          const shardtx::Stats stats = leader.GetStats();  // outlives `s`, which points into it
          const shardtx::ShardStatsView* s = ShardOf(stats, g);
          if (s != nullptr && s->replication.applied_index >= target[g]) return;
        }
        absl::Status st = CommitPuts(leader, puts, &retries);
        if (!st.ok()) {
          error.Set(absl::Status(st.code(), absl::StrCat("catch-up truncation commits, shard ", g,
                                                         ": ", st.message())));
          return;
        }
        commits.fetch_add(1);
      }
    });
  }
  std::atomic<bool> done{false};
  std::thread reporter([&] {
    while (!done.load() && !error.stopped()) {
      if (progress) {
        progress(absl::StrFormat("catch-up: %d one-key commits so the groups snapshot past the "
                                 "fill, %.1f s",
                                 commits.load(), Since(t0)),
                 true);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  });
  for (std::thread& t : threads) t.join();
  done = true;
  reporter.join();
  r->truncate_commits = commits.load();
  r->truncate_s = Since(t0);
  r->leadership_retries += retries.load();
  return error.Get();
}

std::string ShardStates(shardtx::Database& leader, shardtx::Database& fresh, uint32_t shards) {
  const shardtx::Stats l = leader.GetStats();
  const shardtx::Stats n = fresh.GetStats();
  std::vector<std::string> out;
  for (uint32_t g = 0; g < shards; ++g) {
    const shardtx::ShardStatsView* ls = ShardOf(l, g);
    const shardtx::ShardStatsView* ns = ShardOf(n, g);
    if (ls == nullptr || ns == nullptr) {
      out.push_back(absl::StrCat("shard ", g, ": no stats"));
      continue;
    }
    out.push_back(absl::StrCat("shard ", g, ": applied ", ns->replication.applied_index,
                               " of the leader's commit index ", ls->replication.commit_index,
                               ", snapshots installed ", ns->snapshots_installed, ", failed ",
                               ns->snapshot_install_failures));
  }
  return absl::StrJoin(out, "; ");
}

}  // namespace

absl::Duration CatchUpDeadline(uint64_t bytes) {
  return absl::Seconds(60) + absl::Seconds(static_cast<double>(bytes) / 4e6);
}

absl::StatusOr<CatchUpResult> MeasureCatchUp(
    LoopbackCluster& cluster, const std::function<uint32_t(absl::string_view)>& shard_of,
    const CatchUpSpec& spec, const Progress& progress) {
  if (cluster.dbs.empty() || cluster.dbs[0] == nullptr) {
    return absl::FailedPreconditionError("catch-up: the cluster is not open");
  }
  if (spec.value_bytes == 0 || spec.keys_per_txn == 0 || spec.fill_threads_per_shard < 1) {
    return absl::InvalidArgumentError("catch-up: empty values, transactions or no committer");
  }
  shardtx::Database& leader = *cluster.dbs[0];
  CatchUpResult r;
  r.shards = std::max<uint32_t>(cluster.base.num_shards, 1);
  if (progress) {
    progress(absl::StrFormat("catch-up: filling the cluster with %.0f MB", spec.bytes / 1e6),
             false);
  }
  if (absl::Status s = Fill(leader, shard_of, r.shards, spec, progress, &r); !s.ok()) return s;
  const shardtx::ReplicationOptions& ro = cluster.base.replication;
  if (absl::Status s = Truncate(leader, shard_of, r.shards, ro.snapshot_threshold,
                                ro.snapshot_trailing, progress, &r);
      !s.ok()) {
    return s;
  }
  // Every replica's data in its LMDB store and its WAL recycled, as a steady state would leave
  // it: the snapshot copy is then mostly the store.
  for (auto& db : cluster.dbs) {
    if (absl::Status s = db->Checkpoint(); !s.ok()) return s;
  }

  auto member = NewLoopbackMember(cluster);
  if (!member.ok()) return member.status();
  r.new_node_id = member->id;
  LoopbackCluster grown;  // the cluster as it will be: its member list names the new node
  grown.base = cluster.base;
  grown.dir = cluster.dir;
  grown.members = cluster.members;
  grown.members.push_back(*member);
  shardtx::Options o = NodeOptions(grown, member->id);
  o.replication.join = true;
  std::error_code ec;
  std::filesystem::remove_all(o.path, ec);

  uint64_t sent_before = 0;
  for (const shardtx::ShardStatsView& s : leader.GetStats().shards) {
    sent_before += s.replication.snapshots_sent;
  }
  if (progress) {
    progress(
        absl::StrFormat("catch-up: node %d joins (%s) and catches up", member->id, member->address),
        false);
  }
  const ProcMemory before = ReadProcMemory();
  const bool hwm_reset = ResetPeakRss();
  int64_t anon_peak = before.anon;
  const auto deadline =
      Clock::now() + std::chrono::milliseconds(absl::ToInt64Milliseconds(spec.deadline));
  const auto t0 = Clock::now();
  auto opened = shardtx::Database::Open(o);
  if (!opened.ok()) {
    return absl::Status(opened.status().code(),
                        absl::StrCat("catch-up: opening the new node ", member->id, " (", o.path,
                                     "): ", opened.status().message()));
  }
  std::unique_ptr<shardtx::Database> fresh = std::move(*opened);

  // AddMember, repeated while it fails in a way a repeat may mend: libraft gives up a promotion
  // whose catch-up round outlasts its limit (kInternal; the member stays a non-voter, and the
  // next call promotes it once it has caught up), or another change or leadership got in the way.
  std::mutex add_mu;
  absl::Status add_status = absl::UnknownError("not called");
  double add_s = 0;
  int add_calls = 0;
  std::atomic<bool> add_stop{false};
  std::thread adder([&] {
    for (;;) {
      absl::Status s = leader.AddMember(*member);
      const double at = Since(t0);
      bool again;
      {
        std::lock_guard<std::mutex> l(add_mu);
        add_status = s;
        add_s = at;
        ++add_calls;
        again = !s.ok() && (absl::IsInternal(s) || absl::IsAborted(s) || absl::IsUnknown(s) ||
                            absl::IsUnavailable(s));
      }
      if (!again || add_stop.load() || Clock::now() >= deadline) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });

  bool caught_up = false;
  while (!caught_up && Clock::now() < deadline) {
    const shardtx::Stats l = leader.GetStats();
    const shardtx::Stats n = fresh->GetStats();
    caught_up = n.shards.size() == r.shards && l.shards.size() == r.shards;
    for (uint32_t g = 0; caught_up && g < r.shards; ++g) {
      caught_up = n.shards[g].snapshots_installed >= 1 &&
                  n.shards[g].replication.applied_index >= l.shards[g].replication.commit_index;
    }
    if (caught_up) {
      r.seconds = Since(t0);
      // What the new node had at that moment (not later: AddMember may still be running).
      r.min_shard_installs = UINT64_MAX;
      for (uint32_t g = 0; g < r.shards; ++g) {
        r.snapshots_installed += n.shards[g].snapshots_installed;
        r.min_shard_installs = std::min(r.min_shard_installs, n.shards[g].snapshots_installed);
        r.install_failures += n.shards[g].snapshot_install_failures;
        r.applied_index += n.shards[g].replication.applied_index;
        r.leader_commit_index += l.shards[g].replication.commit_index;
      }
      break;
    }
    anon_peak = std::max(anon_peak, ReadProcMemory().anon);
    if (progress) {
      uint64_t installed = 0;
      for (const shardtx::ShardStatsView& s : n.shards) installed += s.snapshots_installed > 0;
      progress(absl::StrFormat("catch-up: node %d, %.1f s, %d of %d shards installed", member->id,
                               Since(t0), installed, r.shards),
               true);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const ProcMemory after = ReadProcMemory();
  anon_peak = std::max(anon_peak, after.anon);
  if (!caught_up) {
    add_stop = true;
    adder.join();
    const std::string states = ShardStates(leader, *fresh, r.shards);
    fresh.reset();
    std::lock_guard<std::mutex> l(add_mu);
    return absl::DeadlineExceededError(absl::StrCat(
        "catch-up: new node ", member->id, " did not catch up within ",
        absl::FormatDuration(spec.deadline), " (", states, "; AddMember: ", add_status.ToString(),
        " after ", add_calls, " call", add_calls == 1 ? "" : "s", ")"));
  }
  // The promotion goes on after the data arrived (its last catch-up round); not timed above.
  add_stop = true;
  adder.join();
  {
    std::lock_guard<std::mutex> l(add_mu);
    r.add_member_s = add_s;
    r.add_member_status = add_status.ok() ? "OK" : add_status.ToString();
    r.add_member_calls = add_calls;
  }
  r.mb_per_s = r.seconds > 0 ? static_cast<double>(r.bytes_committed) / 1e6 / r.seconds : 0;
  if (hwm_reset && after.hwm >= 0 && before.rss >= 0) {
    r.peak_rss_growth_bytes = after.hwm - before.rss;
  }
  if (before.anon >= 0) r.peak_anon_growth_bytes = anon_peak - before.anon;
  uint64_t sent_after = 0;
  for (const shardtx::ShardStatsView& s : leader.GetStats().shards) {
    sent_after += s.replication.snapshots_sent;
  }
  r.leader_snapshots_sent = sent_after - sent_before;
  absl::Status closed = fresh->Close();
  fresh.reset();
  r.new_node_disk_bytes = AllocatedBytes(o.path);
  if (!closed.ok()) return closed;
  if (r.min_shard_installs == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("catch-up: node ", member->id, " caught up without installing a snapshot ",
                     "on every shard (", r.snapshots_installed, " installs over ", r.shards,
                     " shards): the figure would time log replication"));
  }
  return r;
}

std::string DataSize(uint64_t bytes) {
  const double b = static_cast<double>(bytes);
  return b >= 1e8 ? absl::StrFormat("%.2f GB", b / 1e9) : absl::StrFormat("%.1f MB", b / 1e6);
}

std::string CatchUpText(const CatchUpResult& r) {
  std::string rss = "n/a (VmHWM could not be reset)";
  if (r.peak_rss_growth_bytes.has_value()) {
    rss = absl::StrFormat("%.0f MiB", static_cast<double>(*r.peak_rss_growth_bytes) / (1 << 20));
  }
  return absl::StrFormat(
      "%s caught up in %.1f s (%.1f MB/s) by new node %d: %d snapshot installs over %d "
      "shards (%d failed), node 1 sent %d InstallSnapshot messages; its directory %s; "
      "AddMember %s after %.1f s (%d call%s); this process's peak RSS growth %s, anonymous "
      "(sampled) %.0f MiB. Fill: %d transactions in %.1f s, then %d one-key commits in %.1f s "
      "until every group snapshotted past it (%d commits retried after node 1 lost leadership)",
      DataSize(r.bytes_committed), r.seconds, r.mb_per_s, r.new_node_id, r.snapshots_installed,
      r.shards, r.install_failures, r.leader_snapshots_sent, DataSize(r.new_node_disk_bytes),
      r.add_member_status, r.add_member_s, r.add_member_calls, r.add_member_calls == 1 ? "" : "s",
      rss, static_cast<double>(r.peak_anon_growth_bytes) / (1 << 20), r.fill_txns, r.fill_s,
      r.truncate_commits, r.truncate_s, r.leadership_retries);
}

}  // namespace txbench
