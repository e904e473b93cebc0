// SimulatedGroup over libraft's fixture: election, proposals, release on every server, refusals.
#include "replication/simulated_group.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/replication/recording_machine.h"

namespace shardtx::replication {
namespace {

TEST(SimulatedGroup, ThreeServersReleaseTheSameThousandEntries) {
  SimulatedGroupOptions options;
  options.servers = 3;
  options.seed = 7;
  std::vector<RecordingMachine*> machines;
  auto group = OpenRecordingGroup(options, &machines);
  ASSERT_NE(group, nullptr);
  ASSERT_TRUE(group->Elect(0).ok());
  ASSERT_EQ(group->Leader(), 0u);

  constexpr int kEntries = 1000;
  constexpr int kInFlight = 32;
  int proposed = 0, acked = 0, failed = 0;
  std::vector<std::string> expected;
  while (acked + failed < kEntries) {
    while (proposed < kEntries && proposed - acked - failed < kInFlight) {
      std::string payload = absl::StrCat("entry-", proposed);
      ASSERT_TRUE(
          group->Propose(0, payload, [&](absl::Status s) { s.ok() ? acked++ : failed++; }).ok());
      expected.push_back(payload);
      proposed++;
    }
    group->Step();
    ASSERT_LT(group->NowMs(), 600'000u) << "acked " << acked;
  }
  EXPECT_EQ(failed, 0);
  ASSERT_TRUE(group->StepUntil(
      [&] {
        for (RecordingMachine* m : machines) {
          if (m->sequence().size() < expected.size()) return false;
        }
        return true;
      },
      10'000));
  for (unsigned i = 0; i < 3; i++) {
    SCOPED_TRACE(i);
    EXPECT_EQ(machines[i]->sequence(), expected);
    EXPECT_EQ(machines[i]->violations(), 0u);
    ServerInfo info = group->Info(i);
    EXPECT_EQ(info.tag_mismatches, 0u);
    EXPECT_EQ(info.malformed, 0u);
    EXPECT_EQ(info.held, 0u);
    // The threshold (64) is far below 1,000: the snapshot path ran on every server.
    EXPECT_GT(info.snapshots_taken, 0u);
  }
  EXPECT_EQ(group->Info(0).noops_proposed, 1u);
  EXPECT_EQ(group->LeaderConflicts(), 0u);
}

// Step 11's counters: elections stood in and won, snapshots sent by the leader to a server that
// fell behind its log (threshold 64, 16 trailing) and installed there.
TEST(SimulatedGroup, CountsElectionsAndSnapshotsSentAndInstalled) {
  SimulatedGroupOptions options;
  options.seed = 11;
  std::vector<RecordingMachine*> machines;
  auto group = OpenRecordingGroup(options, &machines);
  ASSERT_NE(group, nullptr);
  ASSERT_TRUE(group->Elect(0).ok());
  EXPECT_EQ(group->Info(0).elections_won, 1u);
  EXPECT_EQ(group->Info(0).elections_started, 1u);
  EXPECT_EQ(group->Info(1).elections_won, 0u);
  group->Kill(2);
  int acked = 0;
  for (int k = 0; k < 200; k++) {
    ASSERT_TRUE(
        group->Propose(0, absl::StrCat("e", k), [&](absl::Status s) { acked += s.ok(); }).ok());
    if (k % 16 == 15) group->StepFor(50);
  }
  ASSERT_TRUE(group->StepUntil([&] { return acked == 200; }, 60'000));
  EXPECT_EQ(group->Info(0).snapshots_sent, 0u);
  group->Revive(2);
  ASSERT_TRUE(group->StepUntil([&] { return machines[2]->sequence().size() >= 200; }, 60'000));
  EXPECT_GE(group->Info(0).snapshots_sent, 1u);
  EXPECT_GE(group->Info(2).snapshots_installed, 1u);
  EXPECT_EQ(group->Info(2).snapshots_installed, group->Info(2).restores);
  EXPECT_EQ(group->Info(1).snapshots_installed, 0u);
  // Failover: the leader frozen, another server stands and wins.
  group->Kill(0);
  ASSERT_TRUE(group->StepUntil([&] { return group->Leader().has_value(); }, 60'000));
  const ServerInfo next = group->Info(*group->Leader());
  EXPECT_GE(next.elections_won, 1u);
  EXPECT_GE(next.elections_started, next.elections_won);
}

TEST(SimulatedGroup, NotReadyLeaderRefusesNamingItself) {
  SimulatedGroupOptions options;
  options.seed = 3;
  std::vector<RecordingMachine*> machines;
  auto group = OpenRecordingGroup(options, &machines);
  ASSERT_NE(group, nullptr);
  // Step to the first moment a server leads: its term-start entry is not released yet (it needs
  // a disk write and a round trip).
  unsigned leader = 99;
  ASSERT_TRUE(group->StepUntil(
      [&] {
        for (unsigned i = 0; i < 3; i++) {
          if (group->Info(i).role == Role::kLeader) leader = i;
        }
        return leader != 99;
      },
      30'000));
  // Nothing it sends arrives any more: its term-start entry cannot commit.
  for (unsigned j = 0; j < 3; j++) {
    if (j != leader) group->Saturate(leader, j);
  }
  ServerInfo info = group->Info(leader);
  EXPECT_FALSE(info.ready);
  EXPECT_EQ(info.noops_proposed, 1u);
  int callbacks = 0;
  absl::Status s = group->Propose(leader, "early", [&](absl::Status) { callbacks++; });
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_NE(s.message().find(absl::StrCat("leader is server ", leader)), std::string::npos) << s;
  EXPECT_NE(s.message().find("not ready"), std::string::npos) << s;
  group->StepFor(300);
  if (group->Info(leader).role == Role::kLeader) {
    EXPECT_FALSE(group->Info(leader).ready);
    EXPECT_TRUE(absl::IsUnavailable(group->Propose(leader, "still early", [](absl::Status) {})));
  }
  EXPECT_EQ(callbacks, 0);
  EXPECT_EQ(group->Leader(), std::nullopt);

  // Heal: some server becomes a ready leader; a follower refuses naming it; nothing of the
  // refused proposals was ever released.
  for (unsigned j = 0; j < 3; j++) group->Desaturate(leader, j);
  ASSERT_TRUE(group->StepUntil([&] { return group->Leader().has_value(); }, 30'000));
  unsigned ready = *group->Leader();
  unsigned follower = (ready + 1) % 3;
  ASSERT_TRUE(
      group->StepUntil([&] { return group->Info(follower).believed_leader == ready; }, 5'000));
  s = group->Propose(follower, "to a follower", [&](absl::Status) { callbacks++; });
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_NE(s.message().find(absl::StrCat("leader is server ", ready)), std::string::npos) << s;
  bool released = false;
  ASSERT_TRUE(group
                  ->Propose(ready, "accepted",
                            [&](absl::Status st) {
                              EXPECT_TRUE(st.ok()) << st;
                              released = true;
                            })
                  .ok());
  ASSERT_TRUE(group->StepUntil([&] { return released; }, 5'000));
  group->StepFor(500);
  for (RecordingMachine* m : machines) {
    EXPECT_EQ(m->sequence(), std::vector<std::string>{"accepted"});
  }
  EXPECT_EQ(callbacks, 0);
}

TEST(SimulatedGroup, KilledServerRefusesAndFrozenLeaderIsNotNamed) {
  SimulatedGroupOptions options;
  options.seed = 11;
  std::vector<RecordingMachine*> machines;
  auto group = OpenRecordingGroup(options, &machines);
  ASSERT_NE(group, nullptr);
  ASSERT_TRUE(group->Elect(1).ok());
  group->Kill(1);
  EXPECT_EQ(group->Info(1).role, Role::kLeader);  // frozen in its state
  EXPECT_EQ(group->Leader(), std::nullopt);
  absl::Status s = group->Propose(1, "x", [](absl::Status) {});
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_NE(s.message().find("down"), std::string::npos) << s;
  ASSERT_TRUE(group->StepUntil([&] { return group->Leader().has_value(); }, 30'000));
  EXPECT_NE(*group->Leader(), 1u);
  group->Revive(1);
  ASSERT_TRUE(group->StepUntil([&] { return group->Info(1).role == Role::kFollower; }, 5'000));
  EXPECT_EQ(group->LeaderConflicts(), 0u);
}

TEST(SimulatedGroup, LeadershipLostInFlightIsUnknownAndTheEntryIsNeverReleased) {
  SimulatedGroupOptions options;
  options.seed = 5;
  std::vector<RecordingMachine*> machines;
  auto group = OpenRecordingGroup(options, &machines);
  ASSERT_NE(group, nullptr);
  ASSERT_TRUE(group->Elect(0).ok());
  group->Isolate(0);
  std::optional<absl::Status> outcome;
  ASSERT_TRUE(group->Propose(0, "cut off", [&](absl::Status s) { outcome = s; }).ok());
  // Server 0 steps down once it misses a majority for an election timeout; 1 or 2 takes over.
  ASSERT_TRUE(group->StepUntil([&] { return outcome.has_value(); }, 30'000));
  EXPECT_TRUE(absl::IsUnknown(*outcome)) << *outcome;
  ASSERT_TRUE(group->StepUntil([&] { return group->Leader().has_value() && *group->Leader() != 0; },
                               30'000));
  unsigned leader = *group->Leader();
  bool acked = false;
  ASSERT_TRUE(group->Propose(leader, "after", [&](absl::Status s) { acked = s.ok(); }).ok());
  ASSERT_TRUE(group->StepUntil([&] { return acked; }, 10'000));
  group->Rejoin(0);
  ASSERT_TRUE(group->StepUntil([&] { return machines[0]->sequence().size() == 1; }, 10'000));
  for (RecordingMachine* m : machines) {
    EXPECT_EQ(m->sequence(), std::vector<std::string>{"after"});
  }
}

TEST(SimulatedGroup, OpenRejectsBadOptions) {
  SimulatedGroupOptions options;
  options.servers = 2;
  std::vector<std::unique_ptr<StateMachine>> one;
  one.push_back(std::make_unique<RecordingMachine>());
  EXPECT_TRUE(absl::IsInvalidArgument(SimulatedGroup::Open(options, std::move(one)).status()));
  options.servers = 9;
  EXPECT_TRUE(absl::IsInvalidArgument(SimulatedGroup::Open(options, {}).status()));
}

}  // namespace
}  // namespace shardtx::replication
