// `check DIR`: everything `wal verify` checks, plus, per shard, the store (VerifyStore: value
// checksums, lookups, the store digest) and that the WAL covers LMDB's applied LSN without
// a gap (what recovery needs). Reads only; refuses a database another process has open, since
// a checkpoint running meanwhile could move LMDB and truncate the WAL between the two reads.
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
// one after it.
void CheckCoverage(const ShardCheck& c, std::vector<std::string>* problems) {
  const uint64_t applied = c.store.applied_lsn;
  const WalVerdict& v = c.wal.verdict;
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
  if (info->format < kManifestFormat) {
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
  {
    Progress progress("check", 0);
    for (uint32_t i = 0; i < info->shards; ++i) {
      ShardCheck& c = checks[i];
      progress.SetLabel(absl::StrCat("check: shard ", i, "/", info->shards, " WAL records"));
      auto wal = VerifyShardWal(info->WalDir(i), &progress);
      if (!wal.ok()) return Fail(absl::StrCat("shard ", i, ": ", wal.status().message()));
      c.wal = std::move(*wal);
      if (c.wal.verdict.corrupt) c.problems.push_back("WAL " + c.wal.verdict.Text());
      for (const std::string& m : c.wal.malformed) c.problems.push_back("WAL malformed: " + m);
      progress.SetLabel(absl::StrCat("check: shard ", i, "/", info->shards, " store"));
      progress.Set(0);
      c.store = VerifyStoreIsolated(info->LmdbDir(i));
      for (const std::string& p : c.store.problems) c.problems.push_back("store: " + p);
      if (c.store.opened) CheckCoverage(c, &c.problems);
      problems += c.problems.size();
    }
  }

  if (json) {
    std::vector<std::string> shards;
    for (uint32_t i = 0; i < info->shards; ++i) {
      const ShardCheck& c = checks[i];
      std::vector<std::string> p;
      for (const std::string& s : c.problems) p.push_back(JsonString(Printable(s)));
      shards.push_back(absl::StrCat("{\"shard\":", i, ",\"wal\":", c.wal.Json(i), ",\"entries\":",
                                    c.store.entries, ",\"applied_lsn\":", c.store.applied_lsn,
                                    ",\"problems\":[", absl::StrJoin(p, ","), "]}"));
    }
    std::printf("{\"path\":%s,\"shards\":[%s],\"problems\":%zu,\"verdict\":%s}\n",
                JsonString(Printable(info->path)).c_str(), absl::StrJoin(shards, ",").c_str(),
                problems, JsonString(problems == 0 ? "clean" : "damaged").c_str());
  } else {
    for (uint32_t i = 0; i < info->shards; ++i) {
      const ShardCheck& c = checks[i];
      std::printf("%s; LMDB %llu entries, applied LSN %llu\n", c.wal.Text(i).c_str(),
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
