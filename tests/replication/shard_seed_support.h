// What the seeded runs over real shards share (shard_seeded_run_test.cc over libraft's fixture,
// crash_seeded_run_test.cc and cross_shard_seeded_run_test.cc over the crash simulator): the loop
// over seeds in directories of their own, the workload of a proposal, and the check that a
// shard's WAL holds each Raft index at most once.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>
#include <system_error>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "engine/log_record.h"
#include "gtest/gtest.h"
#include "replication/shard_machine.h"
#include "shardtx/env.h"
#include "tests/replication/seeded_schedule.h"
#include "wal/reader.h"

namespace shardtx::replication {

// The directory of seed `seed` of the run called `name`: under /dev/shm (else the test temp
// directory), in a directory of this process.
inline std::string SeedDir(const std::string& name, uint64_t seed) {
  std::error_code ec;
  const std::string base =
      std::filesystem::is_directory("/dev/shm", ec) ? "/dev/shm" : ::testing::TempDir();
  return absl::StrCat(base, "/", name, "_p", ::getpid(), "/seed", seed);
}

// Runs each seed of `range` in a fresh SeedDir(name, seed): `run(seed, dir)` returns "" or what
// failed, which is reported as a test failure naming the seed, the directory (kept) and how to
// replay it. A passing seed's directory is removed, and their parent if every seed passed.
// Returns how many seeds failed.
inline uint64_t RunSeedsInDirs(
    const std::string& name, const SeedRange& range,
    const std::function<std::string(uint64_t seed, const std::string& dir)>& run) {
  uint64_t failures = 0;
  for (uint64_t seed = range.first; seed < range.first + range.count; seed++) {
    const std::string dir = SeedDir(name, seed);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      ADD_FAILURE() << dir << ": " << ec.message();
      return failures + 1;
    }
    const std::string failure = run(seed, dir);
    if (!failure.empty()) {
      failures++;
      ADD_FAILURE() << "seed " << seed << ": " << failure << " (kept in " << dir
                    << "; replay: SHARDTX_SEED=" << seed << ")";
    } else {
      std::filesystem::remove_all(dir, ec);
    }
  }
  if (failures == 0) {
    std::error_code ec;
    std::filesystem::remove_all(std::filesystem::path(SeedDir(name, 0)).parent_path(), ec);
  }
  return failures;
}

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
