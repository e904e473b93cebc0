// `stat DIR`: what a database holds, read without taking its lock, so that it works while a
// host has the database open (then it says so: the figures are a snapshot). LMDB is opened
// read-only (engine::ShardStore, read_only), the WAL through wal::WalReader. In the shared log
// layout the one log is read and its segments counted once; each shard's figures are those of
// its stream in it.
#include <sys/stat.h>

#include <cstdio>
#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "engine/lmdb_store.h"
#include "engine/log_record.h"
#include "engine/shard.h"
#include "engine/types.h"
#include "tools/shardtx/cli.h"
#include "tools/shardtx/commands.h"
#include "tools/shardtx/shard_wal.h"
#include "txn/node_manifest.h"
#include "txn/txn_records.h"
#include "util/coding.h"
#include "wal/segment.h"

namespace shardtx::cli {
namespace {

// A prepared transaction not yet decided, as one shard's table and log show it.
struct Prepared {
  std::string name;  // empty: an internal cross-shard prepare in flight (or in doubt)
  std::set<uint32_t> shards;
};

struct ShardFigures {
  uint64_t wal_segments = 0;  // per-shard logs only (the shared log's are counted once)
  uint64_t wal_bytes = 0;
  // In a shared log, this shard's records (its stream): how many, and above applied_lsn.
  uint64_t stream_records = 0;
  uint64_t records_to_redo = 0;
  uint64_t lmdb_bytes = 0;
  int64_t lmdb_mtime = 0;  // seconds since the epoch; 0: no data.mdb
  std::string lmdb_error;  // why LMDB could not be read (empty: read)
  engine::StoreMeta meta;
  WalVerdict wal;
  // A replicated database's shard: the Raft position its store's last checkpoint holds
  // (engine::kRaftTable), the highest one of a kRaftEntry record in its log (the last entry it
  // applied, if above), how many such records the log holds, and its Raft directory's files.
  engine::RaftPosition raft_checkpointed;
  engine::RaftPosition raft_logged;
  uint64_t raft_entries = 0;
  uint64_t raft_files = 0;
  uint64_t raft_bytes = 0;
};

// Sizes and counts of the segment files (*.wal) of a WAL directory.
void CountSegments(const std::string& wal_dir, ShardFigures* f) {
  auto names = Env::Default()->ListDir(wal_dir);
  if (!names.ok()) return;
  for (const std::string& n : *names) {
    struct stat st;
    if (!wal::ParseSegmentFileName(n).has_value()) continue;
    if (::stat((wal_dir + "/" + n).c_str(), &st) != 0) continue;
    ++f->wal_segments;
    f->wal_bytes += static_cast<uint64_t>(st.st_size);
  }
}

// The regular files of a shard's Raft directory (libraft's segments, snapshots, metadata), their
// count and bytes; none if there is no such directory (an unreplicated database).
void CountRaftFiles(const std::string& raft_dir, ShardFigures* f) {
  auto names = Env::Default()->ListDir(raft_dir);
  if (!names.ok()) return;
  for (const std::string& n : *names) {
    struct stat st;
    if (::stat((raft_dir + "/" + n).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    ++f->raft_files;
    f->raft_bytes += static_cast<uint64_t>(st.st_size);
  }
}

// The last Raft entry the shard applied: the higher of its checkpointed and logged positions.
engine::RaftPosition RaftApplied(const ShardFigures& f) {
  return f.raft_logged.index > f.raft_checkpointed.index ? f.raft_logged : f.raft_checkpointed;
}

// Reads the shard's LMDB read-only: its meta and its prepared-transactions table.
void ReadStore(const std::string& lmdb_dir, uint32_t shard, ShardFigures* f,
               std::map<uint64_t, Prepared>* prepared) {
  struct stat st;
  if (::stat((lmdb_dir + "/data.mdb").c_str(), &st) == 0) {
    f->lmdb_bytes = static_cast<uint64_t>(st.st_size);
    f->lmdb_mtime = st.st_mtime;
  }
  engine::StoreOptions options;
  options.read_only = true;
  options.initial_map_size = 0;  // as large as the environment says
  options.max_readers = 8;
  auto store = engine::ShardStore::Open(lmdb_dir, options);
  if (!store.ok()) {
    f->lmdb_error = std::string(store.status().message());
    return;
  }
  f->meta = (*store)->meta();
  auto raft = (*store)->ReadTable(engine::kRaftTable);
  if (!raft.ok()) {
    f->lmdb_error = std::string(raft.status().message());
    return;
  }
  for (const auto& [key, value] : *raft) {
    absl::string_view rest;
    engine::ClosedTs closed;  // follower reads' closed timestamp: checked, not shown
    if (key == engine::kRaftClosedKey
            ? !engine::DecodeClosedTs(value, &closed)
            : key != engine::kRaftAppliedKey ||
                  !engine::DecodeRaftEntry(value, &f->raft_checkpointed, &rest)) {
      f->lmdb_error = absl::StrCat("a malformed row in the store's table ", engine::kRaftTable);
      return;
    }
  }
  auto rows = (*store)->ReadTable(txn::kPreparedTable);
  if (!rows.ok()) {
    f->lmdb_error = std::string(rows.status().message());
    return;
  }
  for (const auto& [key, payload] : *rows) {
    txn::PrepareRecord p;
    if (!txn::DecodePrepare(payload, &p)) continue;
    Prepared& entry = (*prepared)[p.txn_id];
    entry.name = p.name;
    entry.shards.insert(shard);
  }
}

// Applies one record of `shard` to the prepared transactions: a prepare adds to `prepared`,
// a resolution removes. A replica's kRaftEntry record raises f's Raft position, and the records
// it carries count as if logged alone (a replica redoes them so).
void ScanRecord(uint8_t type, absl::string_view payload, uint32_t shard, ShardFigures* f,
                std::set<uint64_t>* resolved, std::map<uint64_t, Prepared>* prepared) {
  if (type == engine::kRaftEntry) {
    engine::RaftPosition at;
    absl::string_view entry;
    std::vector<engine::EntryRecord> records;
    // A malformed one is wal verify's and check's to report; stat counts what decodes.
    if (!engine::DecodeRaftEntry(payload, &at, &entry) ||
        !engine::DecodeEntryRecords(entry, &records)) {
      return;
    }
    ++f->raft_entries;
    if (at.index > f->raft_logged.index) f->raft_logged = at;
    for (const engine::EntryRecord& r : records) {
      ScanRecord(r.type, r.payload, shard, f, resolved, prepared);
    }
  } else if (type == engine::kPrepare) {
    txn::PrepareRecord p;
    if (txn::DecodePrepare(payload, &p) && !resolved->count(p.txn_id)) {
      Prepared& entry = (*prepared)[p.txn_id];
      entry.name = p.name;
      entry.shards.insert(shard);
    }
  } else if (type == engine::kCommitPrepared || type == engine::kAbortPrepared) {
    absl::string_view in = payload;
    uint64_t id;
    if (GetFixed64(&in, &id)) {
      resolved->insert(id);
      auto it = prepared->find(id);
      if (it != prepared->end()) {
        it->second.shards.erase(shard);
        if (it->second.shards.empty()) prepared->erase(it);
      }
    }
  }
}

// Scans the shard's whole log: prepares add to `prepared`, resolutions remove.
absl::Status ScanLog(const std::string& wal_dir, uint32_t shard, ShardFigures* f,
                     std::map<uint64_t, Prepared>* prepared) {
  std::set<uint64_t> resolved;
  auto v = ReadShardWal(wal_dir, 0, [&](const wal::WalRecord& rec) {
    ScanRecord(rec.type, rec.payload, shard, f, &resolved, prepared);
    return true;
  });
  if (!v.ok()) return v.status();
  f->wal = std::move(*v);
  return absl::OkStatus();
}

// Scans the shared log once: each record is its stream's shard's. Every shard's `wal` is the
// log's verdict with the LSNs of its own first and last record; a record of no shard is
// counted in *foreign.
absl::Status ScanSharedLog(const std::string& log_dir, std::vector<ShardFigures>* shards,
                           std::map<uint64_t, Prepared>* prepared, uint64_t* foreign,
                           WalVerdict* log) {
  std::vector<std::set<uint64_t>> resolved(shards->size());
  std::vector<WalVerdict> streams(shards->size());
  auto v = ReadShardWal(log_dir, 0, [&](const wal::WalRecord& rec) {
    if (rec.stream >= shards->size()) {
      ++*foreign;
      return true;
    }
    ShardFigures& f = (*shards)[rec.stream];
    WalVerdict& s = streams[rec.stream];
    ++s.records;
    if (s.first_lsn == 0) s.first_lsn = rec.lsn;
    s.end_lsn = rec.lsn;
    ++f.stream_records;
    if (rec.lsn > f.meta.applied_lsn) ++f.records_to_redo;
    ScanRecord(rec.type, rec.payload, rec.stream, &f, &resolved[rec.stream], prepared);
    return true;
  });
  if (!v.ok()) return v.status();
  *log = *v;
  for (size_t i = 0; i < shards->size(); ++i) {
    WalVerdict& w = (*shards)[i].wal;
    w = *v;
    w.records = streams[i].records;
    w.first_lsn = streams[i].first_lsn;
    w.end_lsn = streams[i].end_lsn;
  }
  return absl::OkStatus();
}

std::string Size(uint64_t bytes) {
  if (bytes < (1 << 20)) return absl::StrFormat("%.1f KiB", static_cast<double>(bytes) / 1024);
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1 << 20));
}

}  // namespace

int RunStat(const Args& args) {
  auto info = ParseDirCommand(args, {"json"}, "stat DIR [--json]");
  if (!info.ok()) return Fail(info.status());
  const bool json = absl::GetFlag(FLAGS_json);
  const std::optional<std::string> holder = LockHolder(info->path);
  const int64_t now = static_cast<int64_t>(std::time(nullptr));

  // A replicated database's node manifest (PATH/NODE); none: not replicated.
  auto manifest = txn::ReadNodeManifest(Env::Default(), info->path);
  if (!manifest.ok()) return Fail(manifest.status());
  const std::optional<txn::NodeManifest>& node = *manifest;
  std::vector<ShardFigures> shards(info->shards);
  std::map<uint64_t, Prepared> prepared;  // by transaction id
  bool problem = false;
  ShardFigures log;      // the shared log's segments and verdict (shared layout)
  uint64_t foreign = 0;  // shared log records of no shard
  for (uint32_t i = 0; i < info->shards; ++i) {
    ShardFigures& f = shards[i];
    ReadStore(info->LmdbDir(i), i, &f, &prepared);
    CountRaftFiles(info->RaftDir(i), &f);
    if (info->shared_log) continue;
    CountSegments(info->WalDir(i), &f);
    if (absl::Status s = ScanLog(info->WalDir(i), i, &f, &prepared); !s.ok()) {
      return Fail(absl::StrCat("shard ", i, ": ", s.message()));
    }
  }
  if (info->shared_log) {
    CountSegments(info->LogDir(), &log);
    if (absl::Status s = ScanSharedLog(info->LogDir(), &shards, &prepared, &foreign, &log.wal);
        !s.ok()) {
      return Fail(absl::StrCat("shared log: ", s.message()));
    }
    problem = log.wal.corrupt || foreign != 0;
  }
  for (const ShardFigures& f : shards) {
    problem = problem || !f.lmdb_error.empty() || f.wal.corrupt;
  }

  if (json) {
    std::vector<std::string> out;
    for (uint32_t i = 0; i < info->shards; ++i) {
      const ShardFigures& f = shards[i];
      // In the shared layout the segments are the log's (below), and a shard's LSNs are those
      // of its own records in it.
      std::string s = info->shared_log
                          ? absl::StrCat("{\"shard\":", i, ",\"wal_records\":", f.stream_records,
                                         ",\"records_to_redo\":", f.records_to_redo)
                          : absl::StrCat("{\"shard\":", i, ",\"wal_segments\":", f.wal_segments,
                                         ",\"wal_bytes\":", f.wal_bytes);
      absl::StrAppend(&s, ",\"wal_end_lsn\":", f.wal.end_lsn,
                      ",\"wal_first_lsn\":", f.wal.first_lsn, ",\"wal_verdict\":",
                      JsonString(f.wal.corrupt ? "corrupt"
                                 : f.wal.torn  ? "torn"
                                               : "clean"),
                      ",\"lmdb_bytes\":", f.lmdb_bytes, ",\"applied_lsn\":", f.meta.applied_lsn,
                      ",\"max_ts\":", f.meta.max_ts);
      if (f.lmdb_mtime != 0) absl::StrAppend(&s, ",\"checkpoint_age_s\":", now - f.lmdb_mtime);
      if (node) {
        const engine::RaftPosition applied = RaftApplied(f);
        absl::StrAppend(&s, ",\"raft\":{\"applied_index\":", applied.index,
                        ",\"applied_term\":", applied.term,
                        ",\"checkpointed_index\":", f.raft_checkpointed.index,
                        ",\"entries_in_wal\":", f.raft_entries, ",\"files\":", f.raft_files,
                        ",\"bytes\":", f.raft_bytes, "}");
      }
      if (!f.lmdb_error.empty()) {
        absl::StrAppend(&s, ",\"lmdb_error\":", JsonString(Printable(f.lmdb_error)));
      }
      out.push_back(s + "}");
    }
    std::vector<std::string> prep;
    for (const auto& [id, p] : prepared) {
      prep.push_back(absl::StrCat("{\"txn\":", id, ",\"name\":", JsonString(Printable(p.name)),
                                  ",\"shards\":[", absl::StrJoin(p.shards, ","), "]}"));
    }
    const std::string shared =
        info->shared_log
            ? absl::StrCat(
                  ",\"log\":{\"wal_segments\":", log.wal_segments, ",\"wal_bytes\":", log.wal_bytes,
                  ",\"wal_first_lsn\":", log.wal.first_lsn, ",\"wal_end_lsn\":", log.wal.end_lsn,
                  ",\"wal_records\":", log.wal.records, ",\"foreign_records\":", foreign,
                  ",\"wal_verdict\":",
                  JsonString(log.wal.corrupt ? "corrupt"
                             : log.wal.torn  ? "torn"
                                             : "clean"),
                  "}")
            : "";
    std::string node_json = "null";
    if (node) {
      std::vector<std::string> members;
      for (const ReplicationMember& m : node->members) {
        members.push_back(absl::StrCat("{\"id\":", m.id, ",\"address\":",
                                       JsonString(Printable(m.address)), "}"));
      }
      node_json = absl::StrCat("{\"node_id\":", node->node_id, ",\"cluster_id\":",
                               JsonString(Printable(node->cluster_id)), ",\"incarnation\":",
                               node->incarnation, ",\"joined\":", node->join ? "true" : "false",
                               ",\"members\":[", absl::StrJoin(members, ","), "]}");
    }
    std::printf(
        "{\"path\":%s,\"format\":%u,\"shards\":%u,\"partitioning\":%s,\"log_layout\":%s%s,"
        "\"replication\":%s,\"open_by_pid\":%s,\"shard\":[%s],\"prepared\":[%s]}\n",
        JsonString(Printable(info->path)).c_str(), info->format, info->shards,
        JsonString(Printable(info->partitioning)).c_str(),
        JsonString(info->shared_log ? "shared" : "per-shard").c_str(), shared.c_str(),
        node_json.c_str(), holder ? JsonString(*holder).c_str() : "null", absl::StrJoin(out, ",").c_str(),
        absl::StrJoin(prep, ",").c_str());
    return problem ? kExitProblem : kExitOk;
  }

  std::printf("database %s: format %u, %u shards, partitioning %s%s\n", info->path.c_str(),
              info->format, info->shards, info->partitioning.c_str(),
              info->shared_log ? ", one log shared by all shards" : "");
  if (node) {
    std::printf("replicated: node %llu of cluster %s (incarnation %llu%s), members %s\n",
                static_cast<unsigned long long>(node->node_id),
                Printable(node->cluster_id).c_str(),
                static_cast<unsigned long long>(node->incarnation),
                node->join ? ", joined an existing cluster" : "",
                Printable(txn::MembersToString(node->members)).c_str());
  }
  if (holder) {
    std::printf("open by pid %s: figures are a snapshot (read without taking the lock)\n",
                holder->c_str());
  } else {
    std::printf("not open by any process\n");
  }
  if (info->shared_log) {
    std::printf("shared log: %llu segment files, %s, %llu records, LSN %llu..%llu (%s)",
                static_cast<unsigned long long>(log.wal_segments), Size(log.wal_bytes).c_str(),
                static_cast<unsigned long long>(log.wal.records),
                static_cast<unsigned long long>(log.wal.first_lsn),
                static_cast<unsigned long long>(log.wal.end_lsn), log.wal.Text().c_str());
    if (foreign != 0) {
      std::printf("; %llu records of no shard (DAMAGE)", static_cast<unsigned long long>(foreign));
    }
    std::printf("\n");
  }
  for (uint32_t i = 0; i < info->shards; ++i) {
    const ShardFigures& f = shards[i];
    if (info->shared_log) {
      std::printf("shard %u: %llu records in the shared log", i,
                  static_cast<unsigned long long>(f.stream_records));
      if (f.stream_records != 0) {
        std::printf(", LSN %llu..%llu", static_cast<unsigned long long>(f.wal.first_lsn),
                    static_cast<unsigned long long>(f.wal.end_lsn));
      }
      std::printf("; LMDB %s, applied LSN %llu", Size(f.lmdb_bytes).c_str(),
                  static_cast<unsigned long long>(f.meta.applied_lsn));
      if (f.records_to_redo != 0) {
        std::printf(" (%llu records to redo)", static_cast<unsigned long long>(f.records_to_redo));
      }
    } else {
      std::printf(
          "shard %u: WAL %llu segment files, %s, LSN %llu..%llu (%s); LMDB %s, applied LSN %llu", i,
          static_cast<unsigned long long>(f.wal_segments), Size(f.wal_bytes).c_str(),
          static_cast<unsigned long long>(f.wal.first_lsn),
          static_cast<unsigned long long>(f.wal.end_lsn), f.wal.Text().c_str(),
          Size(f.lmdb_bytes).c_str(), static_cast<unsigned long long>(f.meta.applied_lsn));
      if (f.wal.end_lsn > f.meta.applied_lsn) {
        std::printf(" (%llu records to redo)",
                    static_cast<unsigned long long>(f.wal.end_lsn - f.meta.applied_lsn));
      }
    }
    if (f.lmdb_mtime != 0) {
      std::printf(", last checkpoint %llds ago", static_cast<long long>(now - f.lmdb_mtime));
    }
    if (!f.lmdb_error.empty()) std::printf("; LMDB unreadable: %s", f.lmdb_error.c_str());
    if (node) {
      const engine::RaftPosition applied = RaftApplied(f);
      std::printf("; Raft: applied entry %llu (term %llu), checkpointed %llu, %llu entries in "
                  "the WAL, %llu files %s",
                  static_cast<unsigned long long>(applied.index),
                  static_cast<unsigned long long>(applied.term),
                  static_cast<unsigned long long>(f.raft_checkpointed.index),
                  static_cast<unsigned long long>(f.raft_entries),
                  static_cast<unsigned long long>(f.raft_files), Size(f.raft_bytes).c_str());
    }
    std::printf("\n");
  }
  std::printf("(checkpoint age: from data.mdb's modification time; only checkpoints write LMDB)\n");
  if (prepared.empty()) std::printf("prepared transactions: none\n");
  for (const auto& [id, p] : prepared) {
    std::printf("prepared: %s txn %llu on shards %s\n",
                p.name.empty() ? "(internal, in flight or in doubt)"
                               : absl::StrCat("\"", Printable(p.name), "\"").c_str(),
                static_cast<unsigned long long>(id), absl::StrJoin(p.shards, ",").c_str());
  }
  return problem ? kExitProblem : kExitOk;
}

}  // namespace shardtx::cli
