// Deterministic seeded runs of a simulated group over RecordingMachines (the schedule:
// seeded_schedule.h): partitions, one-way links, dropped messages, kills and revives, latency and
// proposals, then heal. After each seed:
//  - every server's released sequence is a prefix of the longest (no divergence), no payload
//    twice, indexes increasing, restores extend what was released (RecordingMachine);
//  - every acknowledged proposal is in the final sequence, and every live server converges to it
//    (so whatever any server released, even on a minority, is final);
//  - one leader per term; every tag matched its index.
// SHARDTX_SEED=N replays seed N alone; SHARDTX_REPLICATION_SEEDS=K runs K seeds (default 1,000;
// a sanitizer build a tenth). Test-only switches: SHARDTX_REPLICATION_NO_GUARD=1 runs without the
// Figure-8 guard (expect failures), SHARDTX_REPLICATION_IO_FAULTS=1 adds I/O faults (DriveSeed).
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "replication/simulated_group.h"
#include "tests/replication/recording_machine.h"
#include "tests/replication/seeded_schedule.h"

#ifndef SHARDTX_REPLICATION_SEED_DIVISOR
#define SHARDTX_REPLICATION_SEED_DIVISOR 1
#endif

namespace shardtx::replication {
namespace {

// Runs one seed; returns "" or what failed.
std::string RunSeed(uint64_t seed, bool guard, bool io_faults, SeedTotals* totals) {
  std::vector<RecordingMachine*> m;
  SeededMachines machines;
  machines.open = [&m](unsigned) -> absl::StatusOr<std::unique_ptr<StateMachine>> {
    auto machine = std::make_unique<RecordingMachine>();
    m.push_back(machine.get());
    return machine;
  };
  machines.payload = [](const std::string& label) { return label; };
  machines.released = [&m](unsigned server, const std::string& label) {
    return !m[server]->sequence().empty() && m[server]->sequence().back() == label;
  };
  machines.describe = [&m](unsigned server) {
    return absl::StrCat("sequence ", m[server]->sequence().size(), " last '",
                        m[server]->sequence().empty() ? "" : m[server]->sequence().back(), "'");
  };
  SeededRun run;
  if (std::string failure = DriveSeed(seed, guard, io_faults, machines, &run, totals);
      !failure.empty()) {
    return failure;
  }
  SimulatedGroup& group = *run.group;
  const unsigned n = group.size();

  // The machines' invariants.
  const std::vector<std::string>* longest = &m[0]->sequence();
  for (unsigned i = 1; i < n; i++) {
    if (m[i]->sequence().size() > longest->size()) longest = &m[i]->sequence();
  }
  for (unsigned i = 0; i < n; i++) {
    if (!PrefixRelated(m[i]->sequence(), *longest)) {
      return absl::StrCat("server ", i, " diverged from the longest sequence");
    }
    if (m[i]->violations() != 0) {
      return absl::StrCat("server ", i, ": ", m[i]->violations(),
                          " release/restore order violations");
    }
    if (group.Info(i).role != Role::kUnavailable && m[i]->sequence() != *longest) {
      return absl::StrCat("server ", i, " did not converge");
    }
  }
  absl::flat_hash_set<std::string> final_set;
  for (const std::string& p : *longest) {
    if (!final_set.insert(p).second) return absl::StrCat("'", p, "' released twice");
  }
  for (const auto& [payload, outcome] : run.proposals) {
    if (outcome == Outcome::kAcked && !final_set.contains(payload)) {
      return absl::StrCat("acknowledged '", payload, "' lost");
    }
  }
  return "";
}

TEST(SeededRun, ThousandSeedsKeepEveryInvariant) {
  const SeedRange range = SeedRangeFromEnv(1000 / SHARDTX_REPLICATION_SEED_DIVISOR);
  // TEST ONLY: measures what the guard prevents (expect failures).
  const bool guard = std::getenv("SHARDTX_REPLICATION_NO_GUARD") == nullptr;
  const bool io_faults = std::getenv("SHARDTX_REPLICATION_IO_FAULTS") != nullptr;
  SeedTotals totals;
  uint64_t failures = 0;
  auto start = std::chrono::steady_clock::now();
  for (uint64_t seed = range.first; seed < range.first + range.count; seed++) {
    std::string failure = RunSeed(seed, guard, io_faults, &totals);
    if (!failure.empty()) {
      failures++;
      ADD_FAILURE() << "seed " << seed << ": " << failure << " (replay: SHARDTX_SEED=" << seed
                    << ")";
    }
  }
  PrintTotals(range, guard ? "" : " WITHOUT the guard", failures, start, totals);
}

}  // namespace
}  // namespace shardtx::replication
