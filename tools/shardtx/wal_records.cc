#include "tools/shardtx/wal_records.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/log_record.h"
#include "engine/types.h"
#include "tools/shardtx/cli.h"
#include "txn/txn_records.h"

namespace shardtx::cli {
namespace {

constexpr size_t kKeyBytesShown = 64;

// A record's fields, rendered as "name=value" words or as JSON members in one pass.
class Line {
 public:
  explicit Line(bool json) : json_(json) {}

  void Num(absl::string_view name, uint64_t v) {
    Sep();
    absl::StrAppend(&out_, json_ ? JsonString(name) : name, json_ ? ":" : "=", v);
  }
  void Str(absl::string_view name, absl::string_view bytes, size_t max_bytes) {
    Sep();
    const std::string p = Printable(bytes, max_bytes);
    if (json_) {
      absl::StrAppend(&out_, JsonString(name), ":", JsonString(p));
    } else {
      absl::StrAppend(&out_, name, "=\"", p, "\"");
    }
  }
  void Word(absl::string_view name, absl::string_view word) {
    Sep();
    if (json_) {
      absl::StrAppend(&out_, JsonString(name), ":", JsonString(word));
    } else {
      absl::StrAppend(&out_, name, "=", word);
    }
  }
  void Shards(absl::string_view name, const std::vector<uint32_t>& shards) {
    Sep();
    if (json_) {
      absl::StrAppend(&out_, JsonString(name), ":[", absl::StrJoin(shards, ","), "]");
    } else {
      absl::StrAppend(&out_, name, "=", absl::StrJoin(shards, ","));
    }
  }
  // "writes=N" then each shown write: text ` put "key" (5 B)`, JSON a list of objects.
  void Writes(const std::vector<engine::Write>& writes, size_t max_keys) {
    Num("writes", writes.size());
    const size_t shown = max_keys == 0 ? writes.size() : std::min(max_keys, writes.size());
    if (json_) absl::StrAppend(&out_, ",\"keys\":[");
    for (size_t i = 0; i < shown; ++i) {
      const engine::Write& w = writes[i];
      const bool put = w.op == engine::WriteOp::kPut;
      const std::string key = Printable(w.key, kKeyBytesShown);
      if (json_) {
        absl::StrAppend(&out_, i == 0 ? "" : ",", "{\"op\":", put ? "\"put\"" : "\"delete\"",
                        ",\"key\":", JsonString(key));
        if (put) absl::StrAppend(&out_, ",\"value_bytes\":", w.value.size());
        out_.push_back('}');
      } else {
        absl::StrAppend(&out_, i == 0 ? " " : ", ", put ? "put" : "delete", " \"", key, "\"");
        if (put) absl::StrAppend(&out_, " (", w.value.size(), " B)");
      }
    }
    if (json_) {
      out_.push_back(']');
    } else if (shown < writes.size()) {
      absl::StrAppend(&out_, ", ... ", writes.size() - shown, " more");
    }
  }
  std::string Take() { return json_ ? absl::StrCat("{", out_, "}") : std::move(out_); }

 private:
  void Sep() {
    if (!out_.empty()) out_.push_back(json_ ? ',' : ' ');
  }
  const bool json_;
  std::string out_;
};

absl::Status Malformed(const wal::WalRecord& rec) {
  return absl::DataLossError(
      absl::StrCat("malformed ", RecordTypeName(rec.type), " record at LSN ", rec.lsn));
}

// Decodes rec into `line` (which may be null: checking only).
absl::Status Decode(const wal::WalRecord& rec, size_t max_keys, Line* line) {
  switch (rec.type) {
    case engine::kCommit: {
      uint64_t ts, txn;
      std::vector<engine::Write> writes;
      if (!engine::DecodeCommit(rec.payload, &ts, &txn, &writes)) return Malformed(rec);
      if (line == nullptr) return absl::OkStatus();
      line->Num("txn", txn);
      line->Num("commit_ts", ts);
      line->Writes(writes, max_keys);
      return absl::OkStatus();
    }
    case engine::kPrepare: {
      txn::PrepareRecord p;
      if (!txn::DecodePrepare(rec.payload, &p)) return Malformed(rec);
      if (line == nullptr) return absl::OkStatus();
      line->Num("txn", p.txn_id);
      if (!p.name.empty()) line->Str("name", p.name, 0);
      line->Num("snapshot_ts", p.snapshot_ts);
      line->Shards("participants", p.participants);
      if (!p.read_keys.empty() || !p.read_ranges.empty()) {
        line->Num("read_keys", p.read_keys.size());
        line->Num("read_ranges", p.read_ranges.size());
      }
      line->Writes(p.writes, max_keys);
      return absl::OkStatus();
    }
    case engine::kCommitPrepared: {
      uint64_t txn, ts;
      if (!txn::DecodeTxnTs(rec.payload, &txn, &ts)) return Malformed(rec);
      if (line == nullptr) return absl::OkStatus();
      line->Num("txn", txn);
      line->Num("commit_ts", ts);
      return absl::OkStatus();
    }
    case engine::kAbortPrepared:
    case engine::kEnd: {
      uint64_t txn;
      if (!txn::DecodeTxn(rec.payload, &txn)) return Malformed(rec);
      if (line != nullptr) line->Num("txn", txn);
      return absl::OkStatus();
    }
    case engine::kDecision: {
      txn::DecisionRecord d;
      if (!txn::DecodeDecision(rec.payload, &d)) return Malformed(rec);
      if (line == nullptr) return absl::OkStatus();
      line->Num("txn", d.txn_id);
      line->Word("decision", d.commit ? "commit" : "abort");
      line->Num("commit_ts", d.commit_ts);
      line->Shards("shards", d.shards);
      return absl::OkStatus();
    }
    case engine::kClosedTs: {
      engine::ClosedTs c;
      if (!engine::DecodeClosedTs(rec.payload, &c)) return Malformed(rec);
      if (line == nullptr) return absl::OkStatus();
      line->Num("closed_ts", c.ts);
      line->Num("leader_time_us", static_cast<uint64_t>(c.leader_time_us));
      return absl::OkStatus();
    }
    case engine::kRaftEntry: {
      // A replica's applied Raft entry: its position, and the records it carried, each of which
      // must decode as if it had been logged alone.
      engine::RaftPosition pos;
      absl::string_view entry;
      std::vector<engine::EntryRecord> carried;
      if (!engine::DecodeRaftEntry(rec.payload, &pos, &entry) ||
          !engine::DecodeEntryRecords(entry, &carried)) {
        return Malformed(rec);
      }
      for (const engine::EntryRecord& c : carried) {
        wal::WalRecord inner = rec;
        inner.type = c.type;
        inner.payload = c.payload;
        if (absl::Status s = Decode(inner, max_keys, nullptr); !s.ok()) {
          return absl::DataLossError(absl::StrCat("Raft entry at LSN ", rec.lsn, " carries a ",
                                                  s.message()));
        }
      }
      if (line == nullptr) return absl::OkStatus();
      line->Num("raft_index", pos.index);
      line->Num("raft_term", pos.term);
      line->Num("records", carried.size());
      if (carried.size() == 1) {  // the usual case: show what the one record says
        wal::WalRecord inner = rec;
        inner.type = carried[0].type;
        inner.payload = carried[0].payload;
        line->Word("carries", RecordTypeName(inner.type));
        return Decode(inner, max_keys, line);
      }
      return absl::OkStatus();
    }
    default:
      return absl::DataLossError(absl::StrCat("unknown WAL record type ",
                                              static_cast<int>(rec.type), " at LSN ", rec.lsn));
  }
}

}  // namespace

std::string RecordTypeName(uint8_t type) {
  switch (type) {
    case engine::kCommit:
      return "commit";
    case engine::kPrepare:
      return "prepare";
    case engine::kCommitPrepared:
      return "commit_prepared";
    case engine::kAbortPrepared:
      return "abort_prepared";
    case engine::kDecision:
      return "decision";
    case engine::kEnd:
      return "end";
    case engine::kRaftEntry:
      return "raft_entry";
    case engine::kClosedTs:
      return "closed_ts";
    default:
      return absl::StrCat("type_", static_cast<int>(type));
  }
}

absl::StatusOr<std::string> DescribeRecord(uint32_t shard, const wal::WalRecord& rec,
                                           size_t max_keys, bool json) {
  Line line(json);
  line.Num("shard", shard);
  line.Num("lsn", rec.lsn);
  line.Word("type", RecordTypeName(rec.type));
  line.Num("len", rec.payload.size());
  absl::Status s = Decode(rec, max_keys, &line);
  if (!s.ok()) return s;
  return line.Take();
}

absl::Status CheckRecord(const wal::WalRecord& rec) { return Decode(rec, 0, nullptr); }

}  // namespace shardtx::cli
