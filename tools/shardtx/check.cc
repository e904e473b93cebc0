// `check DIR`: everything `wal verify` checks, plus, per shard, the store (VerifyStore: value
// checksums, lookups, the store digest) and that the WAL covers LMDB's applied LSN without
// a gap (what recovery needs). In the shared log layout the one log is verified once, and it
// must cover the largest applied LSN of the shards' stores (recovery's rule). Reads only;
// refuses a database another process has open, since a checkpoint running meanwhile could move
// LMDB and truncate the WAL between the two reads.
#include <algorithm>
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tools/shardtx/cli.h"
#include "tools/shardtx/commands.h"
#include "tools/shardtx/shard_wal.h"
#include "tools/shardtx/store_check.h"

namespace shardtx::cli {
namespace {

struct ShardCheck {
  ShardWalReport wal;
  StoreReport store;
  std::vector<std::string> problems;  // all of them, each naming what and where
};

// Recovery needs every LSN above applied_lsn: the log must reach it and start at or below the
// one after it. For the shared log, applied is the largest applied LSN of the shards (each
// shard's records above its own are kept by that shard's floor; LSNs below the largest may be
// other shards' records, freed legitimately).
void CheckCoverage(uint64_t applied, const WalVerdict& v, std::vector<std::string>* problems) {
  if (v.end_lsn < applied) {
    problems->push_back(absl::StrCat("WAL ends at LSN ", v.end_lsn, ", below LMDB's applied LSN ",
                                     applied, ": the log cannot continue the store"));
  } else if (v.records != 0 && v.first_lsn > applied + 1) {
    problems->push_back(absl::StrCat("gap: LMDB's applied LSN is ", applied,
                                     " but the WAL starts at LSN ", v.first_lsn, " (LSN ",
                                     applied + 1, " to ", v.first_lsn - 1, " missing)"));
  }
}

}  // namespace

int RunCheck(const Args& args) {
  auto info = ParseDirCommand(args, {"json"}, "check DIR [--json]");
  if (!info.ok()) return Fail(info.status());
  if (info->format < kChecksummedFormat) {
    return Fail(absl::StrCat(info->path, " has format ", info->format,
                             " (values without checksums): open it once with this build to "
                             "upgrade it (for example `shardtx checkpoint ",
                             info->path, "`), then check it"));
  }
  if (auto pid = LockHolder(info->path)) {
    return Fail(absl::StrCat(info->path, " is open by pid ", *pid,
                             ": check needs it closed (stat and wal verify work on an open "
                             "database)"));
  }
  const bool json = absl::GetFlag(FLAGS_json);
  std::vector<ShardCheck> checks(info->shards);
  size_t problems = 0;
  ShardWalReport log;                     // the shared log (shared layout)
  std::vector<std::string> log_problems;  // its problems, reported once
  {
    Progress progress("check", 0);
    if (info->shared_log) {
      progress.SetLabel("check: the shared log, records");
      auto wal = VerifyShardWal(info->LogDir(), &progress, info->shards);
      if (!wal.ok()) return Fail(absl::StrCat("shared log: ", wal.status().message()));
      log = std::move(*wal);
      if (log.verdict.corrupt) log_problems.push_back("WAL " + log.verdict.Text());
      for (const std::string& m : log.malformed) log_problems.push_back("WAL malformed: " + m);
    }
    uint64_t max_applied = 0;
    bool all_opened = true;
    for (uint32_t i = 0; i < info->shards; ++i) {
      ShardCheck& c = checks[i];
      if (!info->shared_log) {
        progress.SetLabel(absl::StrCat("check: shard ", i, "/", info->shards, " WAL records"));
        auto wal = VerifyShardWal(info->WalDir(i), &progress);
        if (!wal.ok()) return Fail(absl::StrCat("shard ", i, ": ", wal.status().message()));
        c.wal = std::move(*wal);
        if (c.wal.verdict.corrupt) c.problems.push_back("WAL " + c.wal.verdict.Text());
        for (const std::string& m : c.wal.malformed) c.problems.push_back("WAL malformed: " + m);
      }
      progress.SetLabel(absl::StrCat("check: shard ", i, "/", info->shards, " store"));
      progress.Set(0);
      c.store = VerifyStoreIsolated(info->LmdbDir(i));
      for (const std::string& p : c.store.problems) c.problems.push_back("store: " + p);
      if (c.store.opened && !info->shared_log) {
        CheckCoverage(c.store.applied_lsn, c.wal.verdict, &c.problems);
      }
      all_opened = all_opened && c.store.opened;
      max_applied = std::max(max_applied, c.store.applied_lsn);
      problems += c.problems.size();
    }
    if (info->shared_log && all_opened) CheckCoverage(max_applied, log.verdict, &log_problems);
    problems += log_problems.size();
  }

  if (json) {
    std::vector<std::string> shards;
    for (uint32_t i = 0; i < info->shards; ++i) {
      const ShardCheck& c = checks[i];
      std::vector<std::string> p;
      for (const std::string& s : c.problems) p.push_back(JsonString(Printable(s)));
      // In the shared layout, a shard's part of the log is its stream's record count (the
      // log's verdict is given once, below).
      const std::string wal = info->shared_log
                                  ? absl::StrCat("\"wal_records\":", log.streams[i].records)
                                  : absl::StrCat("\"wal\":", c.wal.Json(i));
      shards.push_back(absl::StrCat("{\"shard\":", i, ",", wal, ",\"entries\":", c.store.entries,
                                    ",\"applied_lsn\":", c.store.applied_lsn, ",\"problems\":[",
                                    absl::StrJoin(p, ","), "]}"));
    }
    std::string shared;
    if (info->shared_log) {
      std::vector<std::string> p;
      for (const std::string& s : log_problems) p.push_back(JsonString(Printable(s)));
      shared = absl::StrCat(",\"log_layout\":\"shared\",\"log\":", log.SharedJson(),
                            ",\"log_problems\":[", absl::StrJoin(p, ","), "]");
    }
    std::printf("{\"path\":%s%s,\"shards\":[%s],\"problems\":%zu,\"verdict\":%s}\n",
                JsonString(Printable(info->path)).c_str(), shared.c_str(),
                absl::StrJoin(shards, ",").c_str(), problems,
                JsonString(problems == 0 ? "clean" : "damaged").c_str());
  } else {
    if (info->shared_log) {
      std::printf("%s\n", log.SharedText().c_str());
      for (const std::string& p : log_problems) std::printf("  shared log: %s\n", p.c_str());
    }
    for (uint32_t i = 0; i < info->shards; ++i) {
      const ShardCheck& c = checks[i];
      const std::string wal = info->shared_log
                                  ? absl::StrCat("shard ", i, ": ", log.streams[i].records,
                                                 " records in the shared log")
                                  : c.wal.Text(i);
      std::printf("%s; LMDB %llu entries, applied LSN %llu\n", wal.c_str(),
                  static_cast<unsigned long long>(c.store.entries),
                  static_cast<unsigned long long>(c.store.applied_lsn));
      for (const std::string& p : c.problems) std::printf("  shard %u: %s\n", i, p.c_str());
    }
    if (problems == 0) {
      std::printf("verdict: clean\n");
    } else {
      std::printf("verdict: DAMAGED (%zu problems)\n", problems);
    }
  }
  return problems == 0 ? kExitOk : kExitProblem;
}

}  // namespace shardtx::cli
