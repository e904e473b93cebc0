// The seeded runs of seeded_run_test.cc (the schedule: seeded_schedule.h) with a real shard on
// every server: each server's ShardMachine applies released entries through the engine's redo
// step, checkpoints every few entries, and restores snapshots by copying the producer's shard.
// Shard directories live under a per-seed directory in /dev/shm (else the test temp dir). After
// each seed, once healed:
//  - no machine failed to apply or restore anything;
//  - every server libraft did not leave unavailable has applied the same last entry and has the
//    same digest of its shard's contents;
//  - every acknowledged entry's keys are there with their values on each of them;
//  - each shard's WAL holds each Raft index at most once, in increasing order.
// SHARDTX_SEED=N replays seed N alone; SHARDTX_REPLICATION_SEEDS=K runs K seeds (default 1,000,
// a sanitizer build a tenth).
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "engine/log_record.h"
#include "gtest/gtest.h"
#include "replication/shard_machine.h"
#include "tests/replication/seeded_schedule.h"
#include "tests/replication/shard_seed_support.h"
#include "wal/reader.h"

#ifndef SHARDTX_REPLICATION_SEED_DIVISOR
#define SHARDTX_REPLICATION_SEED_DIVISOR 1
#endif

namespace shardtx::replication {
namespace {

// Runs one seed in `root`; returns "" or what failed.
std::string RunSeed(uint64_t seed, const std::string& root, SeedTotals* totals, uint64_t* restores,
                    uint64_t* skipped) {
  Rng rng(seed * 104729 + 3);
  const uint64_t checkpoint_every = rng.In(0, 12);
  SnapshotSources sources;
  std::vector<ShardMachine*> m;
  Workload workload(seed);
  SeededMachines machines;
  machines.open = [&](unsigned server) -> absl::StatusOr<std::unique_ptr<StateMachine>> {
    ShardMachineOptions o;
    o.shard.dir = absl::StrCat(root, "/server", server);
    o.shard.env = Env::Default();
    o.shard.wal_segment_size = 256 << 10;
    o.shard.max_record_size = 64 << 10;
    o.shard.lmdb_map_size = 16ull << 20;
    o.shard.max_readers = 16;
    o.server = server;
    o.checkpoint_every = checkpoint_every;
    o.sources = &sources;
    absl::StatusOr<std::unique_ptr<ShardMachine>> machine = ShardMachine::Open(o);
    if (!machine.ok()) return machine.status();
    m.push_back(machine->get());
    return std::unique_ptr<StateMachine>(std::move(*machine));
  };
  machines.payload = [&](const std::string& label) { return workload.Payload(label); };
  machines.released = [&](unsigned server, const std::string& label) {
    absl::StatusOr<std::optional<std::string>> v = m[server]->Get(Workload::KeyOf(label, 0));
    return v.ok() && v->has_value();
  };
  machines.describe = [&](unsigned server) {
    ShardMachine& s = *m[server];
    return absl::StrCat("shard applied ", s.applied().index, "/", s.applied().term, " (",
                        s.entries_applied(), " applied, ", s.entries_skipped(), " skipped, ",
                        s.restores(), " restores, ", s.failures(),
                        " failures: ", s.first_error().ToString(), ")");
  };
  SeededRun run;
  if (std::string failure =
          DriveSeed(seed, /*guard=*/true, /*io_faults=*/false, machines, &run, totals);
      !failure.empty()) {
    return failure;
  }
  SimulatedGroup& group = *run.group;
  const unsigned n = group.size();
  std::optional<unsigned> reference;
  absl::StatusOr<ShardDigest> want;
  for (unsigned i = 0; i < n; ++i) {
    ShardMachine& s = *m[i];
    *restores += s.restores();
    *skipped += s.entries_skipped();
    if (s.failures() != 0) {
      return absl::StrCat("server ", i, ": ", s.failures(), " failures, the first ",
                          s.first_error().ToString()) +
             DumpGroup(group, machines);
    }
    if (group.Info(i).role == Role::kUnavailable) continue;
    if (std::string bad = CheckWalIndexes(s, absl::StrCat(root, "/server", i)); !bad.empty()) {
      return absl::StrCat("server ", i, "'s WAL: ", bad);
    }
    absl::StatusOr<ShardDigest> digest = s.Digest();
    if (!digest.ok()) return absl::StrCat("server ", i, ": digest: ", digest.status().ToString());
    if (!reference.has_value()) {
      reference = i;
      want = digest;
    } else {
      ShardMachine& r = *m[*reference];
      if (s.applied().index != r.applied().index || s.applied().term != r.applied().term) {
        return absl::StrCat("servers ", *reference, " and ", i, " applied different last entries") +
               DumpGroup(group, machines);
      }
      if (*digest != *want) {
        return absl::StrCat("server ", i, "'s shard (", digest->keys, " keys) differs from server ",
                            *reference, "'s (", want->keys, " keys)") +
               DumpGroup(group, machines);
      }
    }
    for (const auto& [label, outcome] : run.proposals) {
      if (outcome != Outcome::kAcked) continue;
      for (unsigned j = 0; j < workload.RecordsOf(label); ++j) {
        absl::StatusOr<std::optional<std::string>> v = s.Get(Workload::KeyOf(label, j));
        if (!v.ok() || *v != Workload::ValueOf(label, j)) {
          return absl::StrCat("server ", i, ": acknowledged ", label, "'s key ",
                              Workload::KeyOf(label, j), " missing");
        }
      }
    }
  }
  if (!reference.has_value()) return "no server left to compare";
  return "";
}

TEST(ShardSeededRun, ReplicasOfARealShardConvergeAndKeepEveryAcknowledgedEntry) {
  const SeedRange range = SeedRangeFromEnv(1000 / SHARDTX_REPLICATION_SEED_DIVISOR);
  SeedTotals totals;
  uint64_t restores = 0, skipped = 0;
  auto start = std::chrono::steady_clock::now();
  const uint64_t failures =
      RunSeedsInDirs("shardtx_shard_seeds", range, [&](uint64_t seed, const std::string& dir) {
        return RunSeed(seed, dir, &totals, &restores, &skipped);
      });
  PrintTotals(range, " over real shards", failures, start, totals);
  std::printf("shard copies restored %llu, entries skipped at or below the applied index %llu\n",
              static_cast<unsigned long long>(restores), static_cast<unsigned long long>(skipped));
}

}  // namespace
}  // namespace shardtx::replication
