// `wal dump` and `wal verify`: a shard's log record by record (like pg_waldump), and the
// checksum verdict of every shard's log; in the shared log layout, the one log of all shards
// (each record's stream is its shard), read once. Both only read (wal::WalReader opens segment
// files read-only and never truncates) and take no lock.
#include <chrono>
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "tools/shardtx/cli.h"
#include "tools/shardtx/commands.h"
#include "tools/shardtx/shard_wal.h"
#include "tools/shardtx/wal_records.h"

namespace shardtx::cli {
namespace {

// Where a database is in use, tell the reader that the figures may move under them.
void NoteIfOpen(const DbInfo& info) {
  if (auto pid = LockHolder(info.path)) {
    std::fprintf(stderr, "shardtx: %s is open by pid %s: figures are a snapshot\n",
                 info.path.c_str(), pid->c_str());
  }
}

}  // namespace

int RunWalDump(const Args& args) {
  auto info = ParseDirCommand(args, {"shard", "from", "limit", "max_keys", "json"},
                              "wal dump DIR [--shard N] [--from LSN] [--limit N] ...");
  if (!info.ok()) return Fail(info.status());
  const int32_t only = absl::GetFlag(FLAGS_shard);
  if (only < -1 || only >= static_cast<int32_t>(info->shards)) {
    return Fail(
        absl::StrCat("--shard ", only, ": the database has shards 0 to ", info->shards - 1));
  }
  wal::Lsn from = 0;
  const std::string from_text = absl::GetFlag(FLAGS_from);
  if (!from_text.empty() && !absl::SimpleAtoi(from_text, &from)) {
    return Fail(absl::StrCat("--from ", from_text, ": not an LSN"));
  }
  const uint64_t limit = absl::GetFlag(FLAGS_limit);
  const size_t max_keys = absl::GetFlag(FLAGS_max_keys);
  const bool json = absl::GetFlag(FLAGS_json);
  NoteIfOpen(*info);

  StdoutBuffer out;
  bool damaged = false;
  uint64_t printed = 0, payload_bytes = 0, read_bytes = 0;
  const auto start = std::chrono::steady_clock::now();
  // Per-shard logs: each shard's in turn. The shared log: once, in LSN order, every record
  // of the shard its stream names (those of --shard only, if given).
  const uint32_t logs = info->shared_log ? 1 : info->shards;
  for (uint32_t log = 0; log < logs; ++log) {
    if (!info->shared_log && only >= 0 && log != static_cast<uint32_t>(only)) continue;
    if (limit != 0 && printed >= limit) break;
    const std::string dir = info->shared_log ? info->LogDir() : info->WalDir(log);
    const std::string name = info->shared_log ? "shared log" : absl::StrCat("shard ", log);
    auto verdict = ReadShardWal(dir, from, [&](const wal::WalRecord& rec) {
      const uint32_t shard = info->shared_log ? rec.stream : log;
      if (info->shared_log && only >= 0 && shard != static_cast<uint32_t>(only)) return true;
      absl::StatusOr<std::string> line =
          shard < info->shards
              ? DescribeRecord(shard, rec, max_keys, json)
              : absl::DataLossError(absl::StrCat("stream ", shard, ", but the database has ",
                                                 info->shards, " shards"));
      if (line.ok()) {
        out.Line(*line);
      } else {
        damaged = true;
        out.Line(json ? absl::StrCat("{\"shard\":", shard, ",\"lsn\":", rec.lsn,
                                     ",\"malformed\":", JsonString(line.status().message()), "}")
                      : absl::StrCat("shard=", shard, " lsn=", rec.lsn,
                                     " MALFORMED: ", line.status().message()));
      }
      payload_bytes += rec.payload.size();
      ++printed;
      return limit == 0 || printed < limit;
    });
    if (!verdict.ok()) {
      out.Flush();
      return Fail(absl::StrCat(name, ": ", verdict.status().message()));
    }
    read_bytes += verdict->bytes_read;
    if (limit != 0 && printed >= limit) break;  // the verdict of a partial read says nothing
    if (verdict->corrupt || verdict->torn) {
      damaged = damaged || verdict->corrupt;
      out.Line(json ? absl::StrCat(
                          "{",
                          info->shared_log ? "\"log\":\"shared\"" : absl::StrCat("\"shard\":", log),
                          ",", verdict->Json(), "}")
                    : absl::StrCat("# ", name, ": ", verdict->Text()));
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double rate = secs > 0 ? static_cast<double>(printed) / secs : 0;
  out.Line(json ? absl::StrFormat("{\"summary\":{\"records\":%d,\"payload_bytes\":%d,"
                                  "\"bytes_read\":%d,\"seconds\":%.3f,\"records_per_s\":%.0f}}",
                                  printed, payload_bytes, read_bytes, secs, rate)
                : absl::StrFormat("# %d records, %d payload bytes, %d bytes read, %.3f s, "
                                  "%.0f records/s",
                                  printed, payload_bytes, read_bytes, secs, rate));
  return damaged ? kExitProblem : kExitOk;
}

int RunWalVerify(const Args& args) {
  auto info = ParseDirCommand(args, {"json"}, "wal verify DIR [--json]");
  if (!info.ok()) return Fail(info.status());
  const bool json = absl::GetFlag(FLAGS_json);
  NoteIfOpen(*info);
  Progress progress("wal verify", 0);
  std::vector<std::string> shards;
  bool damaged = false, torn = false;
  if (info->shared_log) {
    // One log for all shards: verified once, and said so.
    progress.SetLabel("wal verify: the shared log, records");
    auto report = VerifyShardWal(info->LogDir(), &progress, info->shards);
    progress.Done();
    if (!report.ok()) return Fail(absl::StrCat("shared log: ", report.status().message()));
    damaged = report->damaged();
    torn = report->verdict.torn;
    const char* verdict = damaged ? "damaged" : torn ? "torn tail (not damage)" : "clean";
    if (json) {
      std::printf("{\"path\":%s,\"log_layout\":\"shared\",\"log\":%s,\"verdict\":%s}\n",
                  JsonString(Printable(info->path)).c_str(), report->SharedJson().c_str(),
                  JsonString(damaged ? "damaged"
                             : torn  ? "torn"
                                     : "clean")
                      .c_str());
    } else {
      std::printf("%s\nverdict: %s\n", report->SharedText().c_str(), verdict);
    }
    return damaged ? kExitProblem : kExitOk;
  }
  for (uint32_t shard = 0; shard < info->shards; ++shard) {
    progress.SetLabel(absl::StrCat("wal verify: shard ", shard, "/", info->shards, ", records"));
    auto report = VerifyShardWal(info->WalDir(shard), &progress);
    if (!report.ok()) {
      progress.Done();
      return Fail(absl::StrCat("shard ", shard, ": ", report.status().message()));
    }
    damaged = damaged || report->damaged();
    torn = torn || report->verdict.torn;
    shards.push_back(json ? report->Json(shard) : report->Text(shard));
  }
  progress.Done();
  const char* verdict = damaged ? "damaged" : torn ? "torn tail (not damage)" : "clean";
  if (json) {
    std::printf("{\"path\":%s,\"shards\":[%s],\"verdict\":%s}\n",
                JsonString(Printable(info->path)).c_str(), absl::StrJoin(shards, ",").c_str(),
                JsonString(damaged ? "damaged"
                           : torn  ? "torn"
                                   : "clean")
                    .c_str());
  } else {
    for (const std::string& s : shards) std::printf("%s\n", s.c_str());
    std::printf("verdict: %s\n", verdict);
  }
  return damaged ? kExitProblem : kExitOk;
}

}  // namespace shardtx::cli
