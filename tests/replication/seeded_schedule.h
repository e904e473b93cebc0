// The schedule of a deterministic seeded run of a simulated group, shared by the runs over
// RecordingMachines (seeded_run_test.cc) and over real shards (shard_seeded_run_test.cc): from a
// seed, a group of 3 or 5 servers, partitions, one-way links, dropped messages, kills and
// revives, latency and bursts of proposals; then heal, and a closing entry acknowledged and
// released on every server. The machines and what they must show afterwards are the caller's.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "replication/simulated_group.h"

namespace shardtx::replication {

struct SeedTotals {
  uint64_t proposed = 0, acked = 0, unknown = 0, refused = 0;
  uint64_t restores = 0, snapshots_refused = 0, unavailable = 0, sim_ms = 0;
  uint64_t results_lowered = 0, results_unmatched = 0;  // the match-index fix (raft_shim.c)
};

class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  unsigned In(unsigned lo, unsigned hi) {
    return lo + static_cast<unsigned>(gen_() % (hi - lo + 1));
  }
  bool Chance(unsigned percent) { return In(1, 100) <= percent; }

 private:
  std::mt19937_64 gen_;
};

// What a seeded run needs of its machines.
struct SeededMachines {
  // Opens server `server`'s machine, for servers 0..n-1 in order, before the group opens.
  std::function<absl::StatusOr<std::unique_ptr<StateMachine>>(unsigned server)> open;
  // The payload of the proposal labelled `label` ("p<N>", or "final<K>" for the closing ones),
  // called once per label, in the order of proposing.
  std::function<std::string(const std::string& label)> payload;
  // True once `server` has released the entry labelled `label`.
  std::function<bool(unsigned server, const std::string& label)> released;
  // One line about `server`'s machine for a failure's dump.
  std::function<std::string(unsigned server)> describe;
};

enum class Outcome { kPending, kAcked, kUnknown };

// What a seeded run leaves for the caller's checks.
struct SeededRun {
  std::unique_ptr<SimulatedGroup> group;
  absl::flat_hash_map<std::string, Outcome> proposals;  // by label
  std::string final_label;                              // acknowledged, released everywhere
};

inline std::string DumpGroup(SimulatedGroup& group, const SeededMachines& machines) {
  std::string out;
  for (unsigned i = 0; i < group.size(); i++) {
    ServerInfo info = group.Info(i);
    absl::StrAppend(&out, "\n  server ", i, info.alive ? "" : " (dead)", ": role ",
                    static_cast<int>(info.role), info.ready ? " ready" : "", " term ", info.term,
                    " commit ", info.commit_index, " applied ", info.last_applied, " released ",
                    info.released_index, " held ", info.held, " leader ",
                    info.believed_leader ? static_cast<int>(*info.believed_leader) : -1, " ",
                    machines.describe(i));
  }
  return out;
}

// Runs seed `seed`'s schedule; returns "" or what failed. On "", run->final_label was
// acknowledged and every live server that libraft did not leave unavailable released it; each
// server's tags matched, none was left unavailable without I/O faults, one leader per term; the
// totals count the run. The machines' own invariants are the caller's to check (run->group).
// I/O faults: libraft gives up on a failed write (RAFT_UNAVAILABLE) and the fixture cannot
// restart a server, so only one server of a seed (`faulty`, a minority) would get them. They are
// off by default: under ASan, libraft 0.15's own code double-frees after an injected fault (25
// of seeds 401-3,000 with them on, the first 425; allocation and both frees inside libraft.so,
// under raft_fixture_step). The simulator of plan step 9 injects I/O faults in its own raft_io.
inline std::string DriveSeed(uint64_t seed, bool guard, bool io_faults,
                             const SeededMachines& machines, SeededRun* run, SeedTotals* totals) {
  Rng rng(seed);
  SimulatedGroupOptions options;
  options.servers = rng.Chance(25) ? 5 : 3;
  options.seed = seed;
  options.snapshot_threshold = rng.In(4, 64);
  options.snapshot_trailing = rng.In(1, 16);
  options.pre_vote = rng.Chance(75);
  options.figure8_guard = guard;
  // TEST ONLY: SHARDTX_REPLICATION_NO_MATCH_FIX=1 runs stock libraft 0.15's match index.
  options.match_index_fix = std::getenv("SHARDTX_REPLICATION_NO_MATCH_FIX") == nullptr;
  std::vector<std::unique_ptr<StateMachine>> owned;
  for (unsigned i = 0; i < options.servers; i++) {
    absl::StatusOr<std::unique_ptr<StateMachine>> m = machines.open(i);
    if (!m.ok()) return absl::StrCat("open machine ", i, ": ", m.status().ToString());
    owned.push_back(std::move(*m));
  }
  absl::StatusOr<std::unique_ptr<SimulatedGroup>> opened =
      SimulatedGroup::Open(options, std::move(owned));
  if (!opened.ok()) return "open failed: " + opened.status().ToString();
  run->group = std::move(*opened);
  SimulatedGroup* group = run->group.get();
  const unsigned n = group->size();
  for (unsigned i = 0; i < n; i++) {
    group->SetNetworkLatency(i, rng.In(2, 60));
    group->SetDiskLatency(i, rng.In(1, 30));
  }

  auto& proposals = run->proposals;
  uint64_t next = 0;
  auto propose = [&](unsigned server) {
    std::string label = absl::StrCat("p", next++);
    absl::Status s =
        group->Propose(server, machines.payload(label), [&proposals, label](absl::Status st) {
          proposals[label] = st.ok() ? Outcome::kAcked : Outcome::kUnknown;
        });
    if (s.ok()) {
      proposals[label] = Outcome::kPending;
      totals->proposed++;
    } else if (absl::IsUnavailable(s)) {
      totals->refused++;
    } else {
      proposals[label] = Outcome::kUnknown;  // synchronous I/O error: may still commit
    }
  };

  const unsigned faulty = rng.In(0, n - 1);
  const unsigned rounds = rng.In(6, 14);
  for (unsigned round = 0; round < rounds; round++) {
    unsigned a = rng.In(0, n - 1), b = rng.In(0, n - 1);
    switch (rng.In(0, 11)) {
      case 0:
      case 1:
      case 2:
      case 3: {  // a burst of proposals, mostly to the leader
        std::optional<unsigned> leader = group->Leader();
        unsigned target = leader && rng.Chance(85) ? *leader : a;
        for (unsigned k = rng.In(1, 8); k > 0; k--) propose(target);
        break;
      }
      case 4:
        group->Isolate(a);
        break;
      case 5:
        if (a != b) group->Disconnect(a, b);
        break;
      case 6:
        if (a != b) group->Saturate(a, b);
        break;
      case 7:
        for (unsigned i = 0; i < n; i++) group->Rejoin(i);
        break;
      case 8:
        group->Kill(a);
        break;
      case 9:
        group->Revive(a);
        break;
      case 10:
        group->SetNetworkLatency(a, rng.In(2, 150));
        group->SetDiskLatency(a, rng.In(1, 60));
        break;
      case 11: {  // only with I/O faults on (see above)
        int delay = static_cast<int>(rng.In(0, 6)), repeat = static_cast<int>(rng.In(1, 3));
        if (io_faults) group->InjectIoFault(faulty, delay, repeat);
        break;
      }
    }
    group->StepFor(rng.In(10, 1500));
  }

  // Heal; the group must then accept and release one more entry everywhere.
  group->HealAll();
  for (unsigned i = 0; i < n; i++) {
    group->SetNetworkLatency(i, 15);
    group->SetDiskLatency(i, 10);
  }
  // As a client would: propose a closing entry to the leader until one is acknowledged (an
  // unknown outcome may or may not commit; a new entry settles it).
  bool final_acked = false;
  for (int attempt = 0; !final_acked && attempt < 10; attempt++) {
    std::string label = absl::StrCat("final", attempt);
    std::string payload = machines.payload(label);
    bool called = false;
    bool proposed = group->StepUntil(
        [&] {
          std::optional<unsigned> leader = group->Leader();
          return leader && group
                               ->Propose(*leader, payload,
                                         [&](absl::Status s) {
                                           called = true;
                                           final_acked = s.ok();
                                         })
                               .ok();
        },
        60'000);
    if (!proposed) {
      return "wedged: no ready leader within 60 s of healing" + DumpGroup(*group, machines);
    }
    if (!group->StepUntil([&] { return called; }, 60'000)) {
      return absl::StrCat("no outcome for '", label, "' in 60 s") + DumpGroup(*group, machines);
    }
    run->final_label = label;
  }
  if (!final_acked) {
    return "10 closing entries in a row had an unknown outcome" + DumpGroup(*group, machines);
  }
  auto converged = [&] {
    for (unsigned i = 0; i < n; i++) {
      if (group->Info(i).role == Role::kUnavailable) continue;  // cannot restart in the fixture
      if (!machines.released(i, run->final_label)) return false;
    }
    return true;
  };
  if (!group->StepUntil(converged, 60'000)) {
    return absl::StrCat("wedged: '", run->final_label, "' not released everywhere") +
           DumpGroup(*group, machines);
  }

  for (unsigned i = 0; i < n; i++) {
    ServerInfo info = group->Info(i);
    if (info.tag_mismatches != 0 || info.malformed != 0) {
      return absl::StrCat("server ", i, ": ", info.tag_mismatches, " tag mismatches, ",
                          info.malformed, " malformed entries");
    }
    // Without I/O faults nothing should make libraft give up (Figure 8's wedge did).
    if (info.role == Role::kUnavailable && !io_faults) {
      return absl::StrCat("server ", i, " left RAFT_UNAVAILABLE") + DumpGroup(*group, machines);
    }
    totals->restores += info.restores;
    totals->snapshots_refused += info.snapshots_refused;
    totals->unavailable += info.role == Role::kUnavailable ? 1 : 0;
    totals->results_lowered += info.results_lowered;
    totals->results_unmatched += info.results_unmatched;
  }
  for (const auto& [label, outcome] : proposals) {
    if (outcome == Outcome::kAcked) totals->acked++;
    if (outcome == Outcome::kUnknown) totals->unknown++;
  }
  if (group->LeaderConflicts() != 0) return "two leaders in one term";
  totals->sim_ms += group->NowMs();
  return "";
}

// The seeds a test runs: `default_count` from 1 (a sanitizer build's count is the caller's),
// SHARDTX_REPLICATION_SEEDS=K runs K, SHARDTX_SEED=N replays seed N alone.
struct SeedRange {
  uint64_t first = 1;
  uint64_t count = 0;
};
inline SeedRange SeedRangeFromEnv(uint64_t default_count) {
  SeedRange r;
  r.count = default_count;
  if (const char* s = std::getenv("SHARDTX_REPLICATION_SEEDS")) {
    r.count = std::strtoull(s, nullptr, 10);
  }
  if (const char* s = std::getenv("SHARDTX_SEED")) {
    r.first = std::strtoull(s, nullptr, 10);
    r.count = 1;
  }
  return r;
}

inline void PrintTotals(const SeedRange& range, const char* what, uint64_t failures,
                        std::chrono::steady_clock::time_point start, const SeedTotals& totals) {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "%llu seeds from %llu%s: %llu failed, %.2f s; proposals %llu accepted (%llu acknowledged, "
      "%llu unknown), %llu refused; restores %llu, snapshots refused %llu, servers left "
      "unavailable %llu; %.0f s simulated; AppendEntries successes lowered %llu, unmatched %llu\n",
      static_cast<unsigned long long>(range.count), static_cast<unsigned long long>(range.first),
      what, static_cast<unsigned long long>(failures), secs,
      static_cast<unsigned long long>(totals.proposed),
      static_cast<unsigned long long>(totals.acked),
      static_cast<unsigned long long>(totals.unknown),
      static_cast<unsigned long long>(totals.refused),
      static_cast<unsigned long long>(totals.restores),
      static_cast<unsigned long long>(totals.snapshots_refused),
      static_cast<unsigned long long>(totals.unavailable), totals.sim_ms / 1000.0,
      static_cast<unsigned long long>(totals.results_lowered),
      static_cast<unsigned long long>(totals.results_unmatched));
}

}  // namespace shardtx::replication
