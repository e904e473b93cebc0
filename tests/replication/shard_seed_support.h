// What the seeded runs over real shards share (shard_seeded_run_test.cc over libraft's fixture,
// crash_seeded_run_test.cc over the crash simulator): the workload of a proposal, and the check
// that a shard's WAL holds each Raft index at most once.
#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "engine/log_record.h"
#include "replication/shard_machine.h"
#include "shardtx/env.h"
#include "tests/replication/seeded_schedule.h"
#include "wal/reader.h"

namespace shardtx::replication {

// The records of a proposal: 1-3 commits, each putting "<label>/<j>", the first also the shared
// key "hot"; some put or delete a key of a small shared set.
class Workload {
 public:
  explicit Workload(uint64_t seed) : rng_(seed * 7919 + 17) {}

  std::string Payload(const std::string& label) {
    std::string entry;
    const unsigned n = rng_.In(1, 3);
    records_[label] = n;
    for (unsigned j = 0; j < n; ++j) {
      std::vector<engine::Write> writes;
      writes.push_back({engine::WriteOp::kPut, KeyOf(label, j), ValueOf(label, j)});
      if (j == 0) writes.push_back({engine::WriteOp::kPut, "hot", label});
      const std::string shared = absl::StrCat("shared", rng_.In(0, 4));
      if (rng_.Chance(30)) {
        writes.push_back({engine::WriteOp::kDelete, shared, ""});
      } else {
        writes.push_back({engine::WriteOp::kPut, shared, label});
      }
      engine::AppendEntryRecord(&entry, engine::kCommit, engine::EncodeCommit(++ts_, 1, writes));
    }
    return entry;
  }

  unsigned RecordsOf(const std::string& label) const { return records_.at(label); }
  static std::string KeyOf(const std::string& label, unsigned j) {
    return absl::StrCat(label, "/", j);
  }
  static std::string ValueOf(const std::string& label, unsigned j) {
    return absl::StrCat("value of ", label, "/", j);
  }

 private:
  Rng rng_;
  engine::Timestamp ts_ = 0;
  absl::flat_hash_map<std::string, unsigned> records_;
};

// Reads the shard's own WAL (synced first) and returns "" if the Raft indexes of its kRaftEntry
// records increase strictly: no entry was appended twice (what the WAL still holds of it: a
// checkpoint may have truncated older records).
inline std::string CheckWalIndexes(ShardMachine& machine, const std::string& dir) {
  if (absl::StatusOr<std::string> s = machine.Snapshot(); !s.ok()) return s.status().ToString();
  auto reader = wal::WalReader::Open(Env::Default(), dir + "/wal", wal::ReaderOptions{});
  if (!reader.ok()) return reader.status().ToString();
  uint64_t last = 0;
  wal::WalRecord rec;
  while (true) {
    absl::StatusOr<bool> more = (*reader)->Next(&rec);
    if (!more.ok()) return more.status().ToString();
    if (!*more) return "";
    if (rec.type != engine::kRaftEntry) continue;
    engine::RaftPosition at;
    absl::string_view entry;
    if (!engine::DecodeRaftEntry(rec.payload, &at, &entry)) return "malformed kRaftEntry";
    if (at.index <= last) {
      return absl::StrCat("raft index ", at.index, " at LSN ", rec.lsn, " after index ", last);
    }
    last = at.index;
  }
}

}  // namespace shardtx::replication
