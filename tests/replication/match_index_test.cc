// libraft 0.15 answers AppendEntries with the follower's own last index, and the leader takes it as
// the follower's match index: entries an old leader appended alone then count as replicas of the
// new leader's entries at the same indexes (docs/replication-plan.md section 9, "libraft
// match-index fix"). Two hand-made schedules over the fixture, one per way a follower's answer
// overstates what it holds (a leftover suffix answering a heartbeat; an older leader's append
// completing after a newer leader appeared): without the shim's fix the new leader acknowledges an
// entry only it (and a minority) holds, and a later leader overwrites it; with it, nothing
// acknowledged is lost.
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

struct LeftoverOutcome {
  bool lone_acknowledged = false;  // the entry only its leader held was acknowledged (OK)
  bool diverged = false;     // two servers released sequences neither of which extends the other
  bool acked_lost = false;   // an acknowledged entry is missing from a server's release
  uint64_t unavailable = 0;  // servers left in RAFT_UNAVAILABLE
  uint64_t fix_acted = 0;    // the fix's counter on the server it corrects
  std::vector<std::vector<std::string>> sequences;
};

std::string Describe(const LeftoverOutcome& o) {
  std::string s;
  for (size_t i = 0; i < o.sequences.size(); i++) {
    s += " S" + std::to_string(i) + "=\"";
    for (const std::string& e : o.sequences[i]) s += e + ",";
    s += "\"";
  }
  return s + " acked=" + std::to_string(o.lone_acknowledged) +
         " unavailable=" + std::to_string(o.unavailable) +
         " fix acted=" + std::to_string(o.fix_acted);
}

// The schedules' groups: fixed election timeouts (1000 + 100*i ms), pre-vote on, no snapshot
// (every log keeps every entry).
SimulatedGroupOptions ScheduleOptions(unsigned servers, bool guard, bool fix) {
  SimulatedGroupOptions options;
  options.servers = servers;
  options.redraw_election_timeouts = false;
  options.pre_vote = true;
  options.figure8_guard = guard;
  options.snapshot_threshold = 1024;
  options.snapshot_trailing = 1024;
  options.match_index_fix = fix;
  return options;
}

// Steps until a ready leader other than `excluded` (killed or cut off) is named, and has it
// acknowledge "y".
void CommitYOnANewLeader(SimulatedGroup& group, unsigned excluded) {
  std::optional<unsigned> leader;
  EXPECT_TRUE(group.StepUntil(
      [&] {
        leader = group.Leader();
        return leader.has_value() && *leader != excluded;
      },
      30'000));
  bool y_acked = false;
  if (leader) {
    EXPECT_TRUE(group.Propose(*leader, "y", [&](absl::Status s) { y_acked = s.ok(); }).ok());
    EXPECT_TRUE(group.StepUntil([&] { return y_acked; }, 5'000));
  }
}

// Heals everything, lets the group settle, and fills the rest of *out: whether the entry
// labelled `lone` (the one only its leader held) was acknowledged but is missing somewhere.
void HealAndCompare(SimulatedGroup& group, const std::vector<RecordingMachine*>& m,
                    const std::string& lone, LeftoverOutcome* out) {
  group.HealAll();
  group.StepFor(5'000);
  for (unsigned i = 0; i < group.size(); i++) {
    out->unavailable += group.Info(i).role == Role::kUnavailable ? 1 : 0;
    out->sequences.push_back(m[i]->sequence());
  }
  for (unsigned i = 0; i < group.size(); i++) {
    for (unsigned j = i + 1; j < group.size(); j++) {
      if (!PrefixRelated(out->sequences[i], out->sequences[j])) out->diverged = true;
    }
    const std::vector<std::string>& seq = out->sequences[i];
    if (out->lone_acknowledged && std::find(seq.begin(), seq.end(), lone) == seq.end()) {
      out->acked_lost = true;
    }
  }
}

// The schedule (3 servers, fixed election timeouts 1000 + 100*i ms, pre-vote on):
//  1. S1 leads term T; "x" is released everywhere.
//  2. S1 is cut off and appends B1..B6 alone (term T): its log now runs past everyone's.
//  3. S0 and S2 elect S0 in term T+1 (S1 refuses its vote: its log is longer). S1 hears S0 from
//     the start (0->1 open), and its replies are slow (400 ms). S0's first heartbeat, sent before
//     it has appended anything of T+1, names the last index both share; S1 matches it and, stock
//     libraft, answers with its own last index (the end of B1..B6).
//  4. S0's term-start entry commits with S2; S0 is ready. S0 is then cut off from both, and
//     proposes "C", which only S0 ever holds.
//  5. S1's slow answer arrives: stock libraft counts S1 as holding C (match index = its last
//     index, capped at S0's), so C commits, is released on S0 and acknowledged.
//  6. S0 is killed; S1 and S2 elect a leader, whose term-start entry lands at C's index; "y".
//  7. Everything heals.
LeftoverOutcome RunLeftoverSuffix(bool fix) {
  std::vector<RecordingMachine*> m;
  auto group = OpenRecordingGroup(ScheduleOptions(3, /*guard=*/true, fix), &m);
  LeftoverOutcome out;
  EXPECT_NE(group, nullptr);
  if (group == nullptr) return out;
  auto ignore = [](absl::Status) {};

  // 1.
  EXPECT_TRUE(group->Elect(1).ok());
  EXPECT_TRUE(group->Propose(1, "x", ignore).ok());
  EXPECT_TRUE(group->StepUntil(
      [&] {
        for (RecordingMachine* r : m) {
          if (r->sequence().empty()) return false;
        }
        return true;
      },
      5'000));
  const uint64_t shared = group->Info(0).last_index;
  EXPECT_EQ(group->Info(2).last_index, shared);

  // 2.
  group->Isolate(1);
  for (int k = 1; k <= 6; k++) EXPECT_TRUE(group->Propose(1, "B" + std::to_string(k), ignore).ok());
  group->StepFor(50);
  EXPECT_EQ(group->Info(1).last_index, shared + 6);

  // 3.
  const uint64_t old_term = group->Info(1).term;
  group->SetNetworkLatency(1, 400);
  group->Reconnect(0, 1);
  EXPECT_TRUE(group->StepUntil(
      [&] {
        ServerInfo info = group->Info(0);
        return info.role == Role::kLeader && info.term > old_term;
      },
      10'000));
  group->Reconnect(1, 0);

  // 4.
  EXPECT_TRUE(group->StepUntil([&] { return group->Info(0).ready; }, 5'000));
  EXPECT_EQ(group->Info(1).term, group->Info(0).term);
  group->Disconnect(0, 1);
  group->Disconnect(0, 2);
  group->Disconnect(2, 0);
  std::optional<absl::Status> c_status;
  EXPECT_TRUE(group->Propose(0, "C", [&](absl::Status s) { c_status = s; }).ok());

  // 5.
  group->StepFor(1'000);
  out.lone_acknowledged = c_status.has_value() && c_status->ok();
  out.fix_acted = group->Info(1).results_lowered;

  // 6.
  group->Kill(0);
  group->Reconnect(1, 2);
  group->Reconnect(2, 1);
  group->SetNetworkLatency(1, 15);
  CommitYOnANewLeader(*group, 0);

  // 7.
  HealAndCompare(*group, m, "C", &out);
  return out;
}

// The second way: a follower's append callback answers an older leader's request after a newer
// leader appeared, and libraft 0.15 addresses that success to the newer leader, in its term, with
// the follower's last stored index (5 servers, fixed timeouts 1000 + 100*i ms, pre-vote on; the
// Figure-8 guard off, so that the new leader appends nothing before "B" and its first heartbeat
// is all S2 hears of it; a term-start entry would truncate S2's entries before its write ends):
//  1. S0 leads term T; "x" everywhere. S0, cut off from all but S2, appends A1..A3, which S2
//     takes into its log; S2's disk is slow (5 s), so the write is in flight.
//  2. S0 is cut off from S2 too. S1 is elected in a newer term by S3 and S4; S2 follows S1 (its
//     heartbeats carry nothing: S1's log ends where S2's write begins).
//  3. S2's write of A1..A3 completes: stock libraft sends S1 a success of S1's term with last
//     index k+3. S1 has just appended "B" at k+1 and is cut off from S2 and S3 (S4 holds B); it
//     counts S2 as holding B: B commits on two servers of five and is acknowledged.
//  4. S1 and S4 are killed; S0, S2 and S3 elect a leader whose log has A1..A3, which overwrite B.
LeftoverOutcome RunStaleAppendCallback(bool fix) {
  std::vector<RecordingMachine*> m;
  auto group = OpenRecordingGroup(ScheduleOptions(5, /*guard=*/false, fix), &m);
  LeftoverOutcome out;
  EXPECT_NE(group, nullptr);
  if (group == nullptr) return out;
  auto ignore = [](absl::Status) {};
  auto everywhere = [&](const std::string& label) {
    for (RecordingMachine* r : m) {
      if (r->sequence().empty() || r->sequence().back() != label) return false;
    }
    return true;
  };

  // 1.
  EXPECT_TRUE(group->Elect(0).ok());
  EXPECT_TRUE(group->Propose(0, "x", ignore).ok());
  EXPECT_TRUE(group->StepUntil([&] { return everywhere("x"); }, 5'000));
  const uint64_t k = group->Info(0).last_index;
  const uint64_t old_term = group->Info(0).term;
  for (unsigned j : {1u, 3u, 4u}) {
    group->Disconnect(0, j);
    group->Disconnect(j, 0);
  }
  group->SetDiskLatency(2, 5'000);
  group->SetNetworkLatency(2, 300);
  for (int a = 1; a <= 3; a++) EXPECT_TRUE(group->Propose(0, "A" + std::to_string(a), ignore).ok());
  EXPECT_TRUE(group->StepUntil([&] { return group->Info(2).last_index == k + 3; }, 1'000));
  const uint64_t written = group->NowMs() + 5'000;  // when S2's write of A1..A3 completes

  // 2.
  group->Isolate(0);
  EXPECT_TRUE(group->StepUntil(
      [&] {
        ServerInfo info = group->Info(1);
        return info.role == Role::kLeader && info.term > old_term;
      },
      5'000));
  EXPECT_TRUE(group->StepUntil([&] { return group->Info(2).believed_leader == 1u; }, 1'000));
  EXPECT_LT(group->NowMs(), written) << "S1 was elected after S2's write completed";

  // 3.
  group->StepUntil([&] { return group->NowMs() > written; }, 5'000);
  EXPECT_EQ(group->Info(2).believed_leader, 1u);
  group->Disconnect(1, 2);
  group->Disconnect(1, 3);
  std::optional<absl::Status> b_status;
  EXPECT_TRUE(group->Propose(1, "B", [&](absl::Status s) { b_status = s; }).ok());
  group->StepFor(600);
  out.lone_acknowledged = b_status.has_value() && b_status->ok();
  out.fix_acted = group->Info(2).results_unmatched;

  // 4.
  group->Kill(1);
  group->Kill(4);
  group->SetDiskLatency(2, 10);
  group->SetNetworkLatency(2, 15);
  for (unsigned a : {0u, 2u, 3u}) {
    for (unsigned b : {0u, 2u, 3u}) {
      if (a != b) group->Reconnect(a, b);
    }
  }
  CommitYOnANewLeader(*group, 1);  // S1 and S4 are dead: never named
  HealAndCompare(*group, m, "B", &out);
  return out;
}

TEST(MatchIndex, AnOlderLeadersAppendCallbackNeverCountsForTheNewLeader) {
  LeftoverOutcome o = RunStaleAppendCallback(/*fix=*/true);
  std::printf("with the fix:%s\n", Describe(o).c_str());
  EXPECT_FALSE(o.lone_acknowledged) << Describe(o);  // only S1 and S4 ever held B
  EXPECT_FALSE(o.acked_lost) << Describe(o);
  EXPECT_FALSE(o.diverged) << Describe(o);
  EXPECT_EQ(o.unavailable, 0u) << Describe(o);
  EXPECT_GT(o.fix_acted, 0u) << Describe(o);  // S2's late success went out with last index 0
}

TEST(MatchIndex, WithoutTheFixAnOlderLeadersAppendCallbackCommitsForTheNewLeader) {
  LeftoverOutcome o = RunStaleAppendCallback(/*fix=*/false);
  std::printf("without the fix:%s\n", Describe(o).c_str());
  EXPECT_TRUE(o.lone_acknowledged) << Describe(o);
  EXPECT_TRUE(o.acked_lost || o.diverged || o.unavailable > 0) << Describe(o);
}

TEST(MatchIndex, AnOldTermSuffixNeverCountsAsAReplicaOfTheNewLeadersEntries) {
  LeftoverOutcome o = RunLeftoverSuffix(/*fix=*/true);
  std::printf("with the fix:%s\n", Describe(o).c_str());
  EXPECT_FALSE(o.lone_acknowledged) << Describe(o);  // only S0 ever held it
  EXPECT_FALSE(o.acked_lost) << Describe(o);
  EXPECT_FALSE(o.diverged) << Describe(o);
  EXPECT_EQ(o.unavailable, 0u) << Describe(o);
  EXPECT_GT(o.fix_acted, 0u) << Describe(o);  // S1's answer to the first heartbeat was lowered
  // The schedule really ran: y was released by the later leader on S1 and S2.
  ASSERT_EQ(o.sequences.size(), 3u);
  EXPECT_EQ(o.sequences[1].back(), "y") << Describe(o);
  EXPECT_EQ(o.sequences[1], o.sequences[2]) << Describe(o);
}

TEST(MatchIndex, WithoutTheFixTheNewLeaderAcknowledgesAnEntryOnlyItHolds) {
  LeftoverOutcome o = RunLeftoverSuffix(/*fix=*/false);
  std::printf("without the fix:%s\n", Describe(o).c_str());
  EXPECT_TRUE(o.lone_acknowledged) << Describe(o);
  EXPECT_TRUE(o.acked_lost || o.diverged || o.unavailable > 0) << Describe(o);
}

}  // namespace
}  // namespace shardtx::replication
