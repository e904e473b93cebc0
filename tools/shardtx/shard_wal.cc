#include "tools/shardtx/shard_wal.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tools/shardtx/wal_records.h"

namespace shardtx::cli {
namespace {

// The reader's own words for the damage, with file and offset: a second, strict read (the
// first one, point in time, tells only the LSNs lost).
std::string DescribeDamage(const std::string& wal_dir) {
  wal::ReaderOptions strict;
  auto reader = wal::WalReader::Open(Env::Default(), wal_dir, strict);
  if (!reader.ok()) return std::string(reader.status().message());
  wal::WalRecord rec;
  for (;;) {
    absl::StatusOr<bool> more = (*reader)->Next(&rec);
    if (!more.ok()) return std::string(more.status().message());
    if (!*more) return "damaged (the strict read found no error)";
  }
}

}  // namespace

std::string WalVerdict::Text() const {
  if (corrupt) {
    std::string out = absl::StrCat("CORRUPT: ", detail);
    if (lost_from != 0) absl::StrAppend(&out, "; LSN ", lost_from, " to ", lost_to, " lost");
    return out;
  }
  if (torn) return absl::StrCat("torn tail: ", torn_file, " offset ", torn_offset);
  return "clean";
}

std::string WalVerdict::Json() const {
  std::string out = absl::StrCat("\"verdict\":",
                                 JsonString(corrupt ? "corrupt"
                                            : torn  ? "torn"
                                                    : "clean"),
                                 ",\"records\":", records, ",\"first_lsn\":", first_lsn,
                                 ",\"end_lsn\":", end_lsn, ",\"bytes_read\":", bytes_read);
  if (torn) {
    absl::StrAppend(&out, ",\"torn_file\":", JsonString(Printable(torn_file)),
                    ",\"torn_offset\":", torn_offset);
  }
  if (corrupt) {
    absl::StrAppend(&out, ",\"detail\":", JsonString(Printable(detail)),
                    ",\"lost_from\":", lost_from, ",\"lost_to\":", lost_to);
  }
  return out;
}

absl::StatusOr<WalVerdict> ReadShardWal(const std::string& wal_dir, wal::Lsn from_lsn,
                                        const RecordFn& each, Progress* progress) {
  WalVerdict v;
  struct stat st;
  if (::stat(wal_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    v.corrupt = true;
    v.detail = absl::StrCat(wal_dir, ": missing");
    return v;
  }
  wal::ReaderOptions options;
  options.from_lsn = from_lsn;
  options.point_in_time = true;  // read up to the damage, and say what lies beyond it
  auto reader = wal::WalReader::Open(Env::Default(), wal_dir, options);
  if (!reader.ok()) {
    if (!absl::IsDataLoss(reader.status())) return reader.status();
    v.corrupt = true;
    v.detail = std::string(reader.status().message());
    return v;
  }
  wal::WalRecord rec;
  for (;;) {
    absl::StatusOr<bool> more = (*reader)->Next(&rec);
    if (!more.ok()) {
      if (!absl::IsDataLoss(more.status())) return more.status();
      v.corrupt = true;
      v.detail = std::string(more.status().message());
      break;
    }
    if (!*more) break;
    ++v.records;
    if (v.first_lsn == 0) v.first_lsn = rec.lsn;
    v.end_lsn = rec.lsn;
    if (progress != nullptr && v.records % 4096 == 0) progress->Set(v.records);
    if (!each(rec)) return v;
  }
  const wal::WalTail& tail = (*reader)->tail();
  v.bytes_read = tail.bytes_read;
  if (tail.next_lsn > 1) v.end_lsn = std::max(v.end_lsn, tail.next_lsn - 1);
  v.torn = tail.torn;
  v.torn_file = tail.torn_file;
  v.torn_offset = tail.torn_offset;
  if (tail.lost) {
    v.corrupt = true;
    v.lost_from = tail.lost_from;
    v.lost_to = tail.lost_to;
  }
  if (v.corrupt && v.detail.empty()) v.detail = DescribeDamage(wal_dir);
  return v;
}

namespace {

std::string ReportText(const ShardWalReport& r, absl::string_view name) {
  const WalVerdict& verdict = r.verdict;
  std::string out = absl::StrCat(name, ": ", verdict.records, " records");
  if (verdict.records != 0)
    absl::StrAppend(&out, ", LSN ", verdict.first_lsn, "..", verdict.end_lsn);
  absl::StrAppend(&out, ", ", verdict.Text());
  if (!r.streams.empty()) {
    std::vector<std::string> by_shard;
    for (size_t s = 0; s < r.streams.size(); ++s) {
      by_shard.push_back(absl::StrCat(s, ":", r.streams[s].records));
    }
    absl::StrAppend(&out, "; records by shard: ", absl::StrJoin(by_shard, " "));
  }
  for (const std::string& m : r.malformed) absl::StrAppend(&out, "; MALFORMED: ", m);
  return out;
}

}  // namespace

std::string ShardWalReport::SharedText() const {
  return ReportText(*this, absl::StrCat("shared log (all ", streams.size(), " shards)"));
}

std::string ShardWalReport::SharedJson() const {
  std::vector<std::string> m, by_shard;
  for (const std::string& s : malformed) m.push_back(JsonString(Printable(s)));
  for (size_t s = 0; s < streams.size(); ++s) {
    by_shard.push_back(absl::StrCat("{\"shard\":", s, ",\"records\":", streams[s].records,
                                    ",\"first_lsn\":", streams[s].first_lsn,
                                    ",\"end_lsn\":", streams[s].end_lsn, "}"));
  }
  return absl::StrCat("{\"shared_by\":", streams.size(), ",", verdict.Json(), ",\"malformed\":[",
                      absl::StrJoin(m, ","), "],\"streams\":[", absl::StrJoin(by_shard, ","), "]}");
}

std::string ShardWalReport::Text(uint32_t shard) const {
  return ReportText(*this, absl::StrCat("shard ", shard));
}

std::string ShardWalReport::Json(uint32_t shard) const {
  std::vector<std::string> m;
  for (const std::string& s : malformed) m.push_back(JsonString(Printable(s)));
  return absl::StrCat("{\"shard\":", shard, ",", verdict.Json(), ",\"malformed\":[",
                      absl::StrJoin(m, ","), "]}");
}

absl::StatusOr<ShardWalReport> VerifyShardWal(const std::string& wal_dir, Progress* progress,
                                              uint32_t shared_streams) {
  ShardWalReport report;
  report.streams.resize(shared_streams);
  constexpr size_t kMaxListed = 100;
  size_t malformed = 0;
  absl::StatusOr<WalVerdict> v = ReadShardWal(
      wal_dir, 0,
      [&](const wal::WalRecord& rec) {
        absl::Status s = CheckRecord(rec);
        if (s.ok() && shared_streams != 0) {
          if (rec.stream >= shared_streams) {
            s = absl::DataLossError(absl::StrCat("LSN ", rec.lsn, ": stream ", rec.stream,
                                                 ", but the database has ", shared_streams,
                                                 " shards"));
          } else {
            StreamFigures& f = report.streams[rec.stream];
            ++f.records;
            if (f.first_lsn == 0) f.first_lsn = rec.lsn;
            f.end_lsn = rec.lsn;
          }
        }
        if (!s.ok() && ++malformed <= kMaxListed) report.malformed.emplace_back(s.message());
        return true;
      },
      progress);
  if (!v.ok()) return v.status();
  report.verdict = std::move(*v);
  if (malformed > kMaxListed) {
    report.malformed.push_back(absl::StrCat("... ", malformed - kMaxListed, " more"));
  }
  return report;
}

}  // namespace shardtx::cli
