// Raft Figure 8 (docs/replication-plan.md section 3; docs/replication-probes/fig8.c) over the
// shim: with the guard no server diverges and the group does not wedge; without it (the test-only
// switch), the same schedule diverges or wedges, so the guard test can fail.
#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "replication/simulated_group.h"
#include "tests/replication/recording_machine.h"

namespace shardtx::replication {
namespace {

struct Figure8Outcome {
  bool diverged = false;     // two servers released sequences neither of which extends the other
  bool wedged = false;       // after healing, a new entry was not released on every server
  uint64_t unavailable = 0;  // servers that gave up (RAFT_UNAVAILABLE)
  std::vector<std::vector<std::string>> sequences;
  uint64_t snapshots_refused = 0;
  uint64_t leader_conflicts = 0;
  uint64_t violations = 0;
};

// Steps until `server` leads in a term above every server's term at the call (a revived server
// may still be in leader state from an old term).
bool BecomesLeader(SimulatedGroup& group, unsigned server, uint64_t timeout_ms) {
  uint64_t above = 0;
  for (unsigned j = 0; j < group.size(); j++) above = std::max(above, group.Info(j).term);
  return group.StepUntil(
      [&] {
        ServerInfo info = group.Info(server);
        return info.role == Role::kLeader && info.term > above;
      },
      timeout_ms);
}

// Cuts what `server` sends (not what it receives), as fig8.c's isolate().
void MuteOutgoing(SimulatedGroup& group, unsigned server) {
  for (unsigned j = 0; j < group.size(); j++) {
    if (j != server) group.Disconnect(server, j);
  }
}

// fig8.c's schedule. A step whose proposal is refused (a guarded leader that is not ready yet)
// goes on: its term-start entry then plays the role of the lone entry.
// With `slow_disk`, S0 proposes four entries in step 2 and writes slowly once back (step 4): the
// other survivor then acknowledges S0's old-term entries before S0 has stored its own term-start
// entry, so libraft commits the old entries alone and the gate must hold them.
Figure8Outcome RunFigure8(uint64_t wait_ms, bool guard, bool slow_disk = false) {
  SimulatedGroupOptions options;
  options.servers = 3;
  options.redraw_election_timeouts = false;  // fig8.c's fixed timeouts
  options.pre_vote = false;
  options.snapshot_threshold = 2;  // the gate refuses snapshots while it holds entries
  options.snapshot_trailing = 2;
  options.figure8_guard = guard;
  std::vector<RecordingMachine*> m;
  auto group = OpenRecordingGroup(options, &m);
  EXPECT_NE(group, nullptr);
  Figure8Outcome out;
  if (group == nullptr) return out;
  auto ignore = [](absl::Status) {};

  // 1. S0 leads; 'x' released everywhere.
  EXPECT_TRUE(group->Elect(0).ok());
  EXPECT_TRUE(group->Propose(0, "x", ignore).ok());
  EXPECT_TRUE(group->StepUntil(
      [&] {
        return m[0]->sequence().size() == 1 && m[1]->sequence().size() == 1 &&
               m[2]->sequence().size() == 1;
      },
      5'000));
  // 2. S0 appends 'A' alone and dies.
  MuteOutgoing(*group, 0);
  EXPECT_TRUE(group->Propose(0, "A", ignore).ok());
  for (int k = 1; slow_disk && k < 4; k++) {
    EXPECT_TRUE(group->Propose(0, "a" + std::to_string(k), ignore).ok());
  }
  group->StepFor(50);
  group->Kill(0);
  // 3. A new leader appends 'B' alone and dies.
  unsigned l = 3;
  group->StepUntil(
      [&] {
        for (unsigned j = 1; j < 3; j++) {
          if (group->Info(j).role == Role::kLeader) l = j;
        }
        return l != 3;
      },
      100'000);
  EXPECT_NE(l, 3u);
  if (l == 3) return out;
  unsigned other = l == 1 ? 2 : 1;
  MuteOutgoing(*group, l);
  (void)group->Propose(l, "B", ignore);
  group->StepFor(50);
  group->Kill(l);
  // 4. S0 comes back and is re-elected with the other survivor; wait.
  group->Revive(0);
  group->Reconnect(0, other);
  if (slow_disk) group->SetDiskLatency(0, 300);
  BecomesLeader(*group, 0, 30'000);
  group->StepFor(wait_ms);
  // 5. S0 dies again; B's server comes back and is elected.
  MuteOutgoing(*group, 0);
  group->Kill(0);
  group->Revive(l);
  group->Reconnect(l, other);
  BecomesLeader(*group, l, 30'000);
  group->StepFor(500);
  // 6. Everyone back.
  group->Revive(0);
  for (unsigned j = 1; j < 3; j++) group->Reconnect(0, j);
  group->StepFor(3'000);

  // Heal completely, then ask the group for one more entry.
  group->HealAll();
  bool acked = false;
  bool proposed = group->StepUntil(
      [&] {
        std::optional<unsigned> leader = group->Leader();
        return leader && group->Propose(*leader, "y", [&](absl::Status s) { acked = s.ok(); }).ok();
      },
      30'000);
  out.wedged = !proposed || !group->StepUntil(
                                [&] {
                                  for (RecordingMachine* r : m) {
                                    if (r->sequence().empty() || r->sequence().back() != "y")
                                      return false;
                                  }
                                  return true;
                                },
                                30'000);
  for (unsigned i = 0; i < 3; i++) {
    ServerInfo info = group->Info(i);
    out.unavailable += info.role == Role::kUnavailable ? 1 : 0;
    out.snapshots_refused += info.snapshots_refused;
    out.sequences.push_back(m[i]->sequence());
    out.violations += m[i]->violations() + info.tag_mismatches + info.malformed;
  }
  for (unsigned i = 0; i < 3; i++) {
    for (unsigned j = i + 1; j < 3; j++) {
      if (!PrefixRelated(out.sequences[i], out.sequences[j])) out.diverged = true;
    }
  }
  out.leader_conflicts = group->LeaderConflicts();
  return out;
}

std::string Describe(const Figure8Outcome& o) {
  std::string s;
  for (size_t i = 0; i < o.sequences.size(); i++) {
    s += " S" + std::to_string(i) + "=\"";
    for (const std::string& e : o.sequences[i]) s += e;
    s += "\"";
  }
  return s + " unavailable=" + std::to_string(o.unavailable);
}

class Figure8 : public ::testing::TestWithParam<uint64_t> {};

TEST_P(Figure8, GuardKeepsReplicasIdenticalAndTheGroupLive) {
  Figure8Outcome o = RunFigure8(GetParam(), /*guard=*/true);
  EXPECT_FALSE(o.diverged) << Describe(o);
  EXPECT_FALSE(o.wedged) << Describe(o);
  EXPECT_EQ(o.unavailable, 0u) << Describe(o);
  EXPECT_EQ(o.violations, 0u) << Describe(o);
  EXPECT_EQ(o.leader_conflicts, 0u);
  // Every server holds the same sequence: x first, y last.
  ASSERT_EQ(o.sequences.size(), 3u);
  EXPECT_EQ(o.sequences[0], o.sequences[1]) << Describe(o);
  EXPECT_EQ(o.sequences[1], o.sequences[2]) << Describe(o);
  EXPECT_EQ(o.sequences[0].front(), "x");
  EXPECT_EQ(o.sequences[0].back(), "y");
  std::printf("with the guard, wait %llu ms:%s snapshots refused while holding %llu\n",
              static_cast<unsigned long long>(GetParam()), Describe(o).c_str(),
              static_cast<unsigned long long>(o.snapshots_refused));
}

TEST_P(Figure8, WithoutTheGuardTheScheduleDivergesOrWedges) {
  Figure8Outcome o = RunFigure8(GetParam(), /*guard=*/false);
  EXPECT_TRUE(o.diverged || o.wedged || o.unavailable > 0) << Describe(o);
  std::printf("without the guard, wait %llu ms:%s diverged=%d wedged=%d\n",
              static_cast<unsigned long long>(GetParam()), Describe(o).c_str(), o.diverged,
              o.wedged);
}

TEST(Figure8Gate, HoldsOldTermEntriesAndRefusesSnapshotsMeanwhile) {
  Figure8Outcome o = RunFigure8(200, /*guard=*/true, /*slow_disk=*/true);
  std::printf("slow disk:%s snapshots refused %llu\n", Describe(o).c_str(),
              static_cast<unsigned long long>(o.snapshots_refused));
  EXPECT_FALSE(o.diverged) << Describe(o);
  EXPECT_FALSE(o.wedged) << Describe(o);
  EXPECT_EQ(o.violations, 0u);
  EXPECT_GT(o.snapshots_refused, 0u);
}

INSTANTIATE_TEST_SUITE_P(Wait, Figure8, ::testing::Values(200, 1000));

}  // namespace
}  // namespace shardtx::replication
