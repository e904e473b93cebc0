// Seeded runs of the crash simulator (plan step 9: RestartableGroup over replication/sim_io.h)
// with a real shard on every server (ShardMachine, its directory in /dev/shm under a
// FaultInjectionEnv of its own). From a seed: 3 or 5 servers, partitions, one-way links, dropped
// messages, latency, bursts of proposals, crashes and restarts (any server, the leader with
// entries in flight, a majority), I/O faults on any server's Raft disk (a server whose write
// failed is restarted later, as a host would once libraft gives up on it). A crash loses the
// Raft writes in flight and the shard's unsynced WAL tail (power loss under the Env), and a
// restart reopens the shard (recovery) and a raft instance over the durable Raft state. Then:
// heal, restart every server, and a closing entry acknowledged and released everywhere.
//
// Checked after each seed:
//  - every acknowledged entry's keys on every replica;
//  - equal digests (DigestOf) at equal applied index, every replica at the closing entry;
//  - at most one leader per term (checked after every event);
//  - no entry applied twice: each shard's WAL holds each Raft index at most once, in order;
//  - every server that released an index released the same entry there (term and payload),
//    across crashes (checked at every release);
//  - no machine failure (nothing is injected into the shards' own I/O), no tag mismatch, no
//    malformed entry, no impossible request order seen by the simulated disk.
// SHARDTX_SEED=N replays seed N; SHARDTX_REPLICATION_SEEDS=K runs K (default 1,000; sanitizer
// builds a tenth). SHARDTX_SIM_MUTATION=keep_volatile|drop_completed runs a mutation of the
// crash model (replication/sim_io.h): the first must pass, the second must fail seeds.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "replication/restartable_group.h"
#include "replication/shard_machine.h"
#include "replication/sim_io.h"
#include "tests/replication/seeded_schedule.h"
#include "tests/replication/shard_seed_support.h"
#include "tests/support/fault_injection_env.h"

#ifndef SHARDTX_REPLICATION_SEED_DIVISOR
#define SHARDTX_REPLICATION_SEED_DIVISOR 1
#endif

namespace shardtx::replication {
namespace {

using ::shardtx::testing::FaultInjectionEnv;

int MutationFromEnv() {
  const char* m = std::getenv("SHARDTX_SIM_MUTATION");
  if (m == nullptr) return SIO_MUTATE_NONE;
  if (std::strcmp(m, "keep_volatile") == 0) return SIO_MUTATE_KEEP_VOLATILE;
  if (std::strcmp(m, "drop_completed") == 0) return SIO_MUTATE_DROP_COMPLETED;
  return SIO_MUTATE_NONE;
}

// What every replica released at each index, over every incarnation: the first release of an
// index fixes it, and any other must agree.
struct ReleaseLedger {
  absl::flat_hash_map<uint64_t, std::pair<uint64_t, size_t>> at;  // index -> (term, hash)
  std::string first_conflict;
};

// A ShardMachine that reports each release to the ledger first.
class LedgerMachine final : public StateMachine {
 public:
  LedgerMachine(std::unique_ptr<ShardMachine> shard, unsigned server, ReleaseLedger* ledger)
      : shard_(std::move(shard)), server_(server), ledger_(ledger) {}
  void Release(const ReleasedEntry& entry) override {
    const std::pair<uint64_t, size_t> mine{entry.term, absl::HashOf(entry.payload)};
    auto [it, inserted] = ledger_->at.emplace(entry.index, mine);
    if (!inserted && it->second != mine && ledger_->first_conflict.empty()) {
      ledger_->first_conflict =
          absl::StrCat("server ", server_, " released index ", entry.index, " of term ", entry.term,
                       ", another server a different entry (term ", it->second.first, ") there");
    }
    shard_->Release(entry);
  }
  absl::StatusOr<std::string> Snapshot() override { return shard_->Snapshot(); }
  absl::Status Restore(std::string_view snapshot) override { return shard_->Restore(snapshot); }
  ShardMachine& shard() { return *shard_; }

 private:
  std::unique_ptr<ShardMachine> shard_;
  const unsigned server_;
  ReleaseLedger* const ledger_;
};

struct CrashTotals {
  uint64_t proposed = 0, acked = 0, unknown = 0, refused = 0;
  uint64_t crashes = 0, restarts = 0, restart_refusals = 0, leader_crashes = 0;
  uint64_t majority_crashes = 0, writes_failed = 0, unavailable_restarts = 0;
  uint64_t restores = 0, skipped = 0, sim_ms = 0;
};

// One seed: the servers' envs and machines, the group, the schedule and the checks.
class CrashSeed {
 public:
  CrashSeed(uint64_t seed, std::string root, CrashTotals* totals)
      : seed_(seed), root_(std::move(root)), totals_(totals), rng_(seed), workload_(seed) {}

  std::string Run();

 private:
  absl::StatusOr<std::unique_ptr<StateMachine>> OpenMachine(unsigned server);
  void CrashMachine(unsigned server, std::unique_ptr<StateMachine> machine);
  ShardMachine* Shard(unsigned server) {
    auto* m = static_cast<LedgerMachine*>(group_->machine(server));
    return m == nullptr ? nullptr : &m->shard();
  }
  void Propose(unsigned server);
  void CrashServer(unsigned server);
  void RestartServer(unsigned server);
  std::string Dump();
  std::string Check();

  const uint64_t seed_;
  const std::string root_;
  CrashTotals* const totals_;
  Rng rng_;
  Workload workload_;
  uint64_t checkpoint_every_ = 0;
  SnapshotSources sources_;
  ReleaseLedger ledger_;
  std::vector<std::unique_ptr<FaultInjectionEnv>> envs_;
  std::vector<uint64_t> restores_seen_;
  std::string machine_failure_;
  std::unique_ptr<RestartableGroup> group_;
  absl::flat_hash_map<std::string, Outcome> proposals_;
  uint64_t next_label_ = 0;
  std::string final_label_;
};

absl::StatusOr<std::unique_ptr<StateMachine>> CrashSeed::OpenMachine(unsigned server) {
  ShardMachineOptions o;
  o.shard.dir = absl::StrCat(root_, "/server", server);
  o.shard.env = envs_[server].get();
  o.shard.wal_segment_size = 256 << 10;
  o.shard.max_record_size = 64 << 10;
  o.shard.lmdb_map_size = 16ull << 20;
  o.shard.max_readers = 16;
  o.server = server;
  o.checkpoint_every = checkpoint_every_;
  o.sources = &sources_;
  absl::StatusOr<std::unique_ptr<ShardMachine>> m = ShardMachine::Open(o);
  if (!m.ok()) return m.status();
  restores_seen_[server] = 0;
  return std::unique_ptr<StateMachine>(
      std::make_unique<LedgerMachine>(std::move(*m), server, &ledger_));
}

// Power loss under the shard: its unsynced WAL tail is gone when it reopens.
void CrashMachine(FaultInjectionEnv* env, std::unique_ptr<StateMachine> machine) {
  env->SimulateCrash().IgnoreError();
  machine.reset();  // closing fails quietly on the crashed env
  env->Reset();
}

void CrashSeed::CrashMachine(unsigned server, std::unique_ptr<StateMachine> machine) {
  auto* m = static_cast<LedgerMachine*>(machine.get());
  ShardMachine& s = m->shard();
  totals_->restores += s.restores();
  totals_->skipped += s.entries_skipped();
  if (s.failures() != 0 && machine_failure_.empty()) {
    machine_failure_ = absl::StrCat("server ", server, ": ", s.failures(),
                                    " machine failures, the first ", s.first_error().ToString());
  }
  ::shardtx::replication::CrashMachine(envs_[server].get(), std::move(machine));
}

void CrashSeed::Propose(unsigned server) {
  std::string label = absl::StrCat("p", next_label_++);
  absl::Status s =
      group_->Propose(server, workload_.Payload(label), [this, label](absl::Status st) {
        proposals_[label] = st.ok() ? Outcome::kAcked : Outcome::kUnknown;
      });
  if (s.ok()) {
    proposals_[label] = Outcome::kPending;
    totals_->proposed++;
  } else if (absl::IsUnavailable(s)) {
    totals_->refused++;
  } else {
    proposals_[label] = Outcome::kUnknown;
  }
}

void CrashSeed::CrashServer(unsigned server) {
  if (!group_->Up(server)) return;
  group_->Crash(server);
  totals_->crashes++;
}

void CrashSeed::RestartServer(unsigned server) {
  if (group_->Up(server)) return;
  if (group_->Restart(server).ok()) {
    totals_->restarts++;
  } else {
    totals_->restart_refusals++;  // its snapshot's producer is down: retried later
  }
}

std::string CrashSeed::Dump() {
  std::string out;
  for (unsigned i = 0; i < group_->size(); i++) {
    ServerInfo info = group_->Info(i);
    absl::StrAppend(&out, "\n  server ", i, info.alive ? "" : " (down)", ": role ",
                    static_cast<int>(info.role), info.ready ? " ready" : "", " term ", info.term,
                    " commit ", info.commit_index, " applied ", info.last_applied, " released ",
                    info.released_index, " held ", info.held, " durable log to ",
                    group_->DurableLastIndex(i));
    if (ShardMachine* s = Shard(i)) {
      absl::StrAppend(&out, " shard applied ", s->applied().index, "/", s->applied().term, " (",
                      s->entries_applied(), " applied, ", s->entries_skipped(), " skipped, ",
                      s->restores(), " restores)");
    }
  }
  return out;
}

std::string CrashSeed::Run() {
  RestartableGroupOptions options;
  options.servers = rng_.Chance(25) ? 5 : 3;
  options.seed = seed_;
  options.snapshot_threshold = rng_.In(4, 64);
  options.snapshot_trailing = rng_.In(1, 16);
  options.pre_vote = rng_.Chance(75);
  options.mutation = MutationFromEnv();
  checkpoint_every_ = rng_.In(0, 12);
  const unsigned n = options.servers;
  for (unsigned i = 0; i < n; i++) {
    envs_.push_back(std::make_unique<FaultInjectionEnv>(
        Env::Default(), FaultInjectionEnv::Options{/*sync_base=*/false}));
  }
  restores_seen_.assign(n, 0);
  absl::StatusOr<std::unique_ptr<RestartableGroup>> opened = RestartableGroup::Open(
      options, [this](unsigned i) { return OpenMachine(i); },
      [this](unsigned i, std::unique_ptr<StateMachine> m) { CrashMachine(i, std::move(m)); },
      [this](unsigned i) {
        // A copied shard replaced the directory behind the env's back (InstallSnapshotDir): take
        // the disk as it is now as durable (the reopened shard synced everything).
        ShardMachine* s = Shard(i);
        if (s != nullptr && s->restores() != restores_seen_[i]) {
          restores_seen_[i] = s->restores();
          envs_[i]->Reset();
        }
      });
  if (!opened.ok()) return "open: " + opened.status().ToString();
  group_ = std::move(*opened);
  for (unsigned i = 0; i < n; i++) group_->SetLatency(i, rng_.In(2, 60), rng_.In(1, 30));

  const unsigned rounds = rng_.In(8, 16);
  for (unsigned round = 0; round < rounds; round++) {
    const unsigned a = rng_.In(0, n - 1), b = rng_.In(0, n - 1);
    switch (rng_.In(0, 13)) {
      case 0:
      case 1:
      case 2:
      case 3: {  // a burst of proposals, mostly to the leader
        std::optional<unsigned> leader = group_->Leader();
        unsigned target = leader && rng_.Chance(85) ? *leader : a;
        for (unsigned k = rng_.In(1, 8); k > 0; k--) Propose(target);
        break;
      }
      case 4:
        group_->Isolate(a);
        break;
      case 5:
        if (a != b) group_->SetLink(a, b, false);
        break;
      case 6:
        if (a != b) group_->SetDrop(a, b, rng_.In(10, 100));
        break;
      case 7:
        group_->HealNetwork();
        break;
      case 8:
        CrashServer(a);
        break;
      case 9:  // restart a server that is down, or one libraft gave up on
        if (group_->Up(a) && group_->Info(a).role == Role::kUnavailable) {
          CrashServer(a);
          totals_->unavailable_restarts++;
        }
        RestartServer(a);
        break;
      case 10:
        group_->SetLatency(a, rng_.In(2, 150), rng_.In(1, 60));
        break;
      case 11:
        group_->FailWrite(a, rng_.In(1, 6));
        break;
      case 12: {  // the leader crashes with entries in flight
        std::optional<unsigned> leader = group_->Leader();
        if (!leader) break;
        for (unsigned k = rng_.In(1, 6); k > 0; k--) Propose(*leader);
        group_->StepFor(rng_.In(0, 40));
        if (group_->Up(*leader)) totals_->leader_crashes++;
        CrashServer(*leader);
        break;
      }
      case 13: {  // a majority crashes at once, and comes back after a while
        std::vector<unsigned> down;
        for (unsigned k = 0; k < n / 2 + 1; k++) down.push_back((a + k) % n);
        for (unsigned s : down) CrashServer(s);
        totals_->majority_crashes++;
        group_->StepFor(rng_.In(0, 2000));
        for (unsigned s : down) RestartServer(s);
        break;
      }
    }
    group_->StepFor(rng_.In(10, 1500));
  }

  // Heal, restart every server (a restart whose snapshot's producer is still down is retried).
  group_->HealNetwork();
  for (unsigned i = 0; i < n; i++) group_->SetLatency(i, 15, 10);
  for (unsigned i = 0; i < n; i++) CrashServer(i);
  for (int attempt = 0; attempt < 20; attempt++) {
    bool all_up = true;
    for (unsigned i = 0; i < n; i++) {
      RestartServer(i);
      all_up = all_up && group_->Up(i);
    }
    if (all_up) break;
    group_->StepFor(500);
  }
  for (unsigned i = 0; i < n; i++) {
    if (!group_->Up(i)) return absl::StrCat("server ", i, " could not restart") + Dump();
  }

  // As a client would: a closing entry on the leader until one is acknowledged.
  bool final_acked = false;
  for (int attempt = 0; !final_acked && attempt < 10; attempt++) {
    std::string label = absl::StrCat("final", attempt);
    std::string payload = workload_.Payload(label);
    bool called = false;
    bool proposed = group_->StepUntil(
        [&] {
          std::optional<unsigned> leader = group_->Leader();
          return leader && group_
                               ->Propose(*leader, payload,
                                         [&](absl::Status s) {
                                           called = true;
                                           final_acked = s.ok();
                                           if (s.ok()) proposals_[label] = Outcome::kAcked;
                                         })
                               .ok();
        },
        60'000);
    if (!proposed) return "wedged: no ready leader within 60 s of healing" + Dump();
    if (!group_->StepUntil([&] { return called; }, 60'000)) {
      return absl::StrCat("no outcome for '", label, "' in 60 s") + Dump();
    }
    final_label_ = label;
  }
  if (!final_acked) return "10 closing entries in a row had an unknown outcome" + Dump();
  auto converged = [&] {
    for (unsigned i = 0; i < n; i++) {
      ShardMachine* s = Shard(i);
      if (s == nullptr) return false;
      absl::StatusOr<std::optional<std::string>> v = s->Get(Workload::KeyOf(final_label_, 0));
      if (!v.ok() || !v->has_value()) return false;
    }
    return true;
  };
  if (!group_->StepUntil(converged, 60'000)) {
    return absl::StrCat("wedged: '", final_label_, "' not released everywhere") + Dump();
  }
  return Check();
}

std::string CrashSeed::Check() {
  const unsigned n = group_->size();
  if (!ledger_.first_conflict.empty()) return ledger_.first_conflict + Dump();
  if (!machine_failure_.empty()) return machine_failure_;
  if (group_->LeaderConflicts() != 0) return "two leaders in one term" + Dump();
  SimulatorStats stats = group_->Stats();
  if (stats.model_errors != 0) {
    return absl::StrCat(stats.model_errors, " disk requests in an impossible order") + Dump();
  }
  totals_->writes_failed += stats.writes_failed;
  std::optional<ShardDigest> want;
  engine::RaftPosition want_at;
  for (unsigned i = 0; i < n; i++) {
    ServerInfo info = group_->Info(i);
    if (info.tag_mismatches != 0 || info.malformed != 0) {
      return absl::StrCat("server ", i, ": ", info.tag_mismatches, " tag mismatches, ",
                          info.malformed, " malformed entries");
    }
    ShardMachine& s = *Shard(i);
    if (s.failures() != 0) {
      return absl::StrCat("server ", i, ": ", s.failures(), " failures, the first ",
                          s.first_error().ToString()) +
             Dump();
    }
    if (std::string bad = CheckWalIndexes(s, absl::StrCat(root_, "/server", i)); !bad.empty()) {
      return absl::StrCat("server ", i, "'s WAL: ", bad) + Dump();
    }
    absl::StatusOr<ShardDigest> digest = s.Digest();
    if (!digest.ok()) return absl::StrCat("server ", i, ": digest: ", digest.status().ToString());
    const engine::RaftPosition at = s.applied();
    if (!want.has_value()) {
      want = *digest;
      want_at = at;
    } else if (at.index != want_at.index || at.term != want_at.term) {
      return absl::StrCat("servers 0 and ", i, " applied different last entries") + Dump();
    } else if (*digest != *want) {
      return absl::StrCat("server ", i, "'s shard (", digest->keys,
                          " keys) differs from server 0's (", want->keys, " keys) at index ",
                          at.index) +
             Dump();
    }
    for (const auto& [label, outcome] : proposals_) {
      if (outcome != Outcome::kAcked) continue;
      for (unsigned j = 0; j < workload_.RecordsOf(label); ++j) {
        absl::StatusOr<std::optional<std::string>> v = s.Get(Workload::KeyOf(label, j));
        if (!v.ok() || *v != Workload::ValueOf(label, j)) {
          return absl::StrCat("server ", i, ": acknowledged ", label, "'s key ",
                              Workload::KeyOf(label, j), " missing") +
                 Dump();
        }
      }
    }
    totals_->restores += s.restores();
    totals_->skipped += s.entries_skipped();
  }
  for (const auto& [label, outcome] : proposals_) {
    if (outcome == Outcome::kAcked) totals_->acked++;
    if (outcome == Outcome::kUnknown) totals_->unknown++;
  }
  totals_->sim_ms += group_->NowMs();
  return "";
}

TEST(CrashSeededRun, RestartedReplicasOfARealShardKeepEveryAcknowledgedEntry) {
  const SeedRange range = SeedRangeFromEnv(1000 / SHARDTX_REPLICATION_SEED_DIVISOR);
  CrashTotals totals;
  auto start = std::chrono::steady_clock::now();
  const uint64_t failures =
      RunSeedsInDirs("shardtx_crash_seeds", range, [&](uint64_t seed, const std::string& dir) {
        CrashSeed run(seed, dir, &totals);
        return run.Run();
      });
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "%llu seeds from %llu over the crash simulator: %llu failed, %.2f s (%.1f ms/seed); "
      "proposals %llu accepted, %llu refused; outcomes %llu acknowledged (closing entries "
      "included), "
      "%llu unknown; crashes %llu "
      "(leader with entries in flight %llu, majorities %llu, unavailable servers restarted "
      "%llu), restarts %llu (%llu refused, retried), injected write failures %llu; shard copies "
      "restored %llu, entries skipped at or below the applied index %llu; %.0f s simulated\n",
      static_cast<unsigned long long>(range.count), static_cast<unsigned long long>(range.first),
      static_cast<unsigned long long>(failures), secs, 1000.0 * secs / range.count,
      static_cast<unsigned long long>(totals.proposed),
      static_cast<unsigned long long>(totals.refused),
      static_cast<unsigned long long>(totals.acked),
      static_cast<unsigned long long>(totals.unknown),
      static_cast<unsigned long long>(totals.crashes),
      static_cast<unsigned long long>(totals.leader_crashes),
      static_cast<unsigned long long>(totals.majority_crashes),
      static_cast<unsigned long long>(totals.unavailable_restarts),
      static_cast<unsigned long long>(totals.restarts),
      static_cast<unsigned long long>(totals.restart_refusals),
      static_cast<unsigned long long>(totals.writes_failed),
      static_cast<unsigned long long>(totals.restores),
      static_cast<unsigned long long>(totals.skipped), totals.sim_ms / 1000.0);
}

}  // namespace
}  // namespace shardtx::replication
