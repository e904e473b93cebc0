// The checks of `crashtest --mode=replicated` (tools/crashtest/repl_model.h) fed fabricated
// reports and scans: each rule a test that a broken cluster fails.
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tools/crashtest/layout.h"
#include "tools/crashtest/repl_model.h"
#include "tools/crashtest/repl_protocol.h"

namespace shardtx::crashtest {
namespace {

using Scan = std::map<std::string, std::string>;

// The scan of shard 0 holding `txn`'s transfer of `amount` from account 0 to 1 (and any others
// given in `more`).
Scan WithTransfer(uint64_t txn, int64_t amount, Scan more = {}) {
  more[AccountKey(0, 0)] = absl::StrCat(-amount);
  more[AccountKey(0, 1)] = absl::StrCat(amount);
  more[ReplMarkerKey(0, txn)] = ReplMarkerValue(0, 1, amount);
  return more;
}

bool Has(const std::vector<std::string>& findings, const std::string& what) {
  for (const std::string& f : findings) {
    if (absl::StrContains(f, what)) return true;
  }
  return false;
}

TEST(ReplModel, AcknowledgedAndPresentIsClean) {
  ReplModel m(1);
  m.Intent(1, 7, 0, 0, 1, 5);
  m.Acked(1, 7, 3, 3);
  std::vector<std::string> findings;
  m.Verify(0, WithTransfer(7, 5), &findings);
  EXPECT_TRUE(findings.empty()) << findings[0];
  EXPECT_EQ(m.acked_verified(), 1u);
  // A second verification of the same state finds nothing either, and counts nothing again.
  m.Verify(0, WithTransfer(7, 5), &findings);
  EXPECT_TRUE(findings.empty());
  EXPECT_EQ(m.acked_verified(), 1u);
}

TEST(ReplModel, AcknowledgedButMissingIsLost) {
  ReplModel m(1);
  m.Intent(1, 7, 0, 0, 1, 5);
  m.Acked(1, 7, 3, 3);
  std::vector<std::string> findings;
  m.Verify(0, {}, &findings);
  EXPECT_TRUE(Has(findings, "[lost] transfer 7")) << findings.size();
}

TEST(ReplModel, RefusedButPresentIsAViolation) {
  ReplModel m(1);
  m.Intent(2, 9, 0, 0, 1, 4);
  m.NoEffect(9);
  std::vector<std::string> findings;
  m.Verify(0, WithTransfer(9, 4), &findings);
  EXPECT_TRUE(Has(findings, "was refused (no effect)"));
}

TEST(ReplModel, UnknownSettlesEitherWayButMustAgreeWithGetOutcome) {
  ReplModel m(1);
  m.Intent(1, 7, 0, 0, 1, 5);
  m.Unknown(7);
  m.Intent(1, 8, 0, 0, 1, 2);  // unanswered (its node was killed)
  m.NoteSaid(8, ReplModel::Said::kCommitted);
  std::vector<std::string> findings;
  m.Verify(0, WithTransfer(7, 5), &findings);  // 7 committed; 8 said committed but missing
  EXPECT_TRUE(Has(findings, "said committed for transfer 8"));
  EXPECT_EQ(m.unknown_resolved(), 1u);
  EXPECT_EQ(m.unanswered_resolved(), 1u);

  ReplModel aborted(1);
  aborted.Intent(1, 7, 0, 0, 1, 5);
  aborted.Unknown(7);
  aborted.NoteSaid(7, ReplModel::Said::kAborted);
  findings.clear();
  aborted.Verify(0, WithTransfer(7, 5), &findings);
  EXPECT_TRUE(Has(findings, "said aborted for transfer 7"));
}

TEST(ReplModel, SettledNotCommittedMustNeverAppear) {
  ReplModel m(1);
  m.Intent(1, 7, 0, 0, 1, 5);
  m.Unknown(7);
  std::vector<std::string> findings;
  m.Verify(0, {}, &findings);
  EXPECT_TRUE(findings.empty());
  m.Verify(0, WithTransfer(7, 5), &findings);
  EXPECT_TRUE(Has(findings, "appeared later"));
}

TEST(ReplModel, BalancesMustMatchTheMarkers) {
  ReplModel m(1);
  m.Intent(1, 7, 0, 0, 1, 5);
  m.Acked(1, 7, 3, 3);
  Scan scan = WithTransfer(7, 5);
  scan[AccountKey(0, 1)] = "4";  // half applied / wrong value
  std::vector<std::string> findings;
  m.Verify(0, scan, &findings);
  EXPECT_TRUE(Has(findings, AccountKey(0, 1) + " is 4"));
  EXPECT_TRUE(Has(findings, "bank total is -1"));
}

TEST(ReplModel, StrangersAreViolations) {
  ReplModel m(1);
  std::vector<std::string> findings;
  m.Verify(0, {{ReplMarkerKey(0, 5), "0:1:1"}, {"s000/other", "x"}}, &findings);
  EXPECT_TRUE(Has(findings, "marker of transfer 5 that no node"));
  EXPECT_TRUE(Has(findings, "unexpected key s000/other"));
}

// Issue 17: transfer `txn` of `amount` from account 0 of shard 0 to account 1 of shard 1; the
// scans of shard 0 and shard 1 once it committed there.
constexpr uint64_t kCross = 21;
Scan CrossFrom(int64_t amount) {
  return {{AccountKey(0, 0), absl::StrCat(-amount)},
          {ReplMarkerKey(0, kCross), ReplMarkerValue(0, 0, 1, 1, amount)}};
}
Scan CrossTo(int64_t amount) {
  return {{AccountKey(1, 1), absl::StrCat(amount)},
          {ReplMarkerKey(1, kCross), ReplMarkerValue(0, 0, 1, 1, amount)}};
}

// A model of two shards in which node 1 acknowledged kCross (5 from 0/0 to 1/1).
ReplModel AckedCross() {
  ReplModel m(2);
  m.Intent(1, kCross, 0, 0, 1, 5, 1);
  m.Acked(1, kCross, 3, 3);
  return m;
}

TEST(ReplModel, CrossShardTransferOnBothShardsIsClean) {
  ReplModel m = AckedCross();
  // Its marker on each shard is asked about (a part may be left in doubt), and only there.
  ASSERT_EQ(m.Unsettled(0).size(), 1u);
  EXPECT_EQ(m.Unsettled(0)[0].second, ReplMarkerKey(0, kCross));
  ASSERT_EQ(m.Unsettled(1).size(), 1u);
  EXPECT_EQ(m.Unsettled(1)[0].second, ReplMarkerKey(1, kCross));
  std::vector<std::string> findings;
  m.Verify(0, CrossFrom(5), &findings);
  EXPECT_EQ(m.acked_verified(), 0u);  // half settled
  m.Verify(1, CrossTo(5), &findings);
  m.VerifyTotal(&findings);
  EXPECT_TRUE(findings.empty()) << findings.front();
  EXPECT_EQ(m.acked_verified(), 1u);
  EXPECT_EQ(m.committed(), 1u);
  EXPECT_EQ(m.cross_committed(), 1u);
  EXPECT_EQ(m.InDoubt(), 0u);
  EXPECT_TRUE(m.Unsettled(0).empty());
  EXPECT_TRUE(m.Unsettled(1).empty());
}

TEST(ReplModel, CrossShardTransferOnOneShardOnlyIsAViolation) {
  ReplModel m(2);
  m.Intent(1, kCross, 0, 0, 1, 5, 1);
  m.Unknown(kCross);
  std::vector<std::string> findings;
  m.Verify(0, CrossFrom(5), &findings);
  m.Verify(1, {}, &findings);  // not there, and not in doubt: settled as not committed
  m.VerifyTotal(&findings);
  EXPECT_TRUE(Has(findings, "committed on shard 0 but not on shard 1 (atomicity)"));
  EXPECT_TRUE(Has(findings, "the bank total over all shards is -5, not 0"));
}

TEST(ReplModel, CrossShardPartInDoubtIsCountedThenSettled) {
  ReplModel m = AckedCross();
  m.NoteSaid(kCross, 1, ReplModel::Said::kInDoubt);
  std::vector<std::string> findings;
  m.Verify(0, CrossFrom(5), &findings);
  m.Verify(1, {}, &findings);
  m.VerifyTotal(&findings);  // -5 on the shards, 0 counting the half in doubt
  EXPECT_TRUE(findings.empty()) << findings.front();
  EXPECT_EQ(m.InDoubt(), 1u);
  EXPECT_TRUE(absl::StrContains(m.InDoubtText(5), "transfer 21 on shard 1 (acknowledged)"));
  EXPECT_EQ(m.acked_verified(), 0u);
  ASSERT_EQ(m.Unsettled(1).size(), 1u);  // asked again after the next round
  // Decided later (a resolver): its marker appears.
  m.NoteSaid(kCross, 1, ReplModel::Said::kCommitted);
  m.Verify(1, CrossTo(5), &findings);
  m.VerifyTotal(&findings);
  EXPECT_TRUE(findings.empty()) << findings.front();
  EXPECT_EQ(m.InDoubt(), 0u);
  EXPECT_EQ(m.acked_verified(), 1u);
}

// The decision committed but shard 1's commit entry did not: the leader answers kCommitted for
// a part still prepared there (no marker yet). In doubt, not lost; committed once it appears.
TEST(ReplModel, CrossShardPartDecidedCommittedButNotAppliedIsInDoubt) {
  ReplModel m = AckedCross();
  m.NoteSaid(kCross, 1, ReplModel::Said::kCommitted);
  std::vector<std::string> findings;
  m.Verify(0, CrossFrom(5), &findings);
  m.Verify(1, {}, &findings);
  m.VerifyTotal(&findings);
  EXPECT_TRUE(findings.empty()) << findings.front();
  EXPECT_EQ(m.InDoubt(), 1u);
  EXPECT_TRUE(absl::StrContains(m.InDoubtText(5), "(decided committed)"));
  // Inside one shard there is no such state: said committed and missing is a violation.
  ReplModel single(1);
  single.Intent(1, 8, 0, 0, 1, 5);
  single.Unknown(8);
  single.NoteSaid(8, ReplModel::Said::kCommitted);
  single.Verify(0, {}, &findings);
  EXPECT_TRUE(Has(findings, "said committed for transfer 8"));
  EXPECT_EQ(single.InDoubt(), 0u);
}

TEST(ReplModel, CrossShardAcknowledgedPartMissingAndNotInDoubtIsLost) {
  ReplModel m = AckedCross();
  std::vector<std::string> findings;
  m.Verify(0, CrossFrom(5), &findings);
  m.Verify(1, {}, &findings);
  EXPECT_TRUE(Has(findings, "[lost] transfer 21 of node 1 on shard 1 was acknowledged"));
  EXPECT_EQ(m.InDoubt(), 0u);
}

TEST(ReplModel, CrossShardMarkerMustNameBothShards) {
  ReplModel m = AckedCross();
  Scan from = CrossFrom(5);
  from[ReplMarkerKey(0, kCross)] = ReplMarkerValue(0, 1, 5);  // the single-shard form
  std::vector<std::string> findings;
  m.Verify(0, from, &findings);
  EXPECT_TRUE(Has(findings, "marker 0:1:5, attempted 0.0:1.1:5"));
}

TEST(ReplModel, TwoLeadersAcknowledgingInOneTerm) {
  ReplModel m(2);
  m.Intent(1, 7, 0, 0, 1, 5);
  m.Intent(2, 8, 0, 0, 1, 5);
  m.Intent(2, 9, 1, 0, 1, 5);
  m.Acked(1, 7, 4, 4);
  m.Acked(2, 9, 4, 4);  // another shard: its own terms
  EXPECT_TRUE(m.TakeReportFindings().empty());
  m.Acked(2, 8, 4, 4);
  EXPECT_TRUE(Has(m.TakeReportFindings(), "two leaders acknowledged in term 4 of shard 0"));
  // Terms that changed during Commit (or 0: not the ready leader) name no term.
  m.Intent(3, 10, 0, 0, 1, 5);
  m.Acked(3, 10, 4, 5);
  EXPECT_TRUE(m.TakeReportFindings().empty());
}

// --- Named transfers (issue 17): prepared by a node, decided by the host's coordinator. ---

// A seed under which the coordinator commits (or, !commit, rolls back) transfer `txn`.
uint64_t SeedDeciding(uint64_t txn, bool commit) {
  uint64_t seed = 1;
  while (ReplNamedCommits(seed, txn) != commit) ++seed;
  return seed;
}

// Named transfer 7 (shard 0, account 0 to 1, 5) prepared by node 1, under `seed`.
ReplModel PreparedNamed(uint64_t seed) {
  ReplModel m(1);
  m.SetNamedSeed(seed);
  m.NamedIntent(1, 7, 0, 0, 1, 5, 0);
  m.Prepared(7);
  return m;
}

TEST(ReplModel, NamedCommittedAndPresentIsClean) {
  ReplModel m = PreparedNamed(SeedDeciding(7, true));
  m.Deciding(7, true);
  m.Decided(7, 2);  // node 2's coordinator (node 1 prepared it)
  EXPECT_TRUE(m.TakeReportFindings().empty());
  EXPECT_EQ(m.named_decided_elsewhere(), 1u);
  std::vector<std::string> findings;
  m.Verify(0, WithTransfer(7, 5), &findings);
  EXPECT_TRUE(findings.empty()) << findings.front();
  EXPECT_EQ(m.acked_verified(), 1u);
  EXPECT_EQ(m.named_committed(), 1u);
}

TEST(ReplModel, NamedCommitAcknowledgedButMissingIsLost) {
  ReplModel m = PreparedNamed(SeedDeciding(7, true));
  m.Deciding(7, true);
  m.Decided(7);
  std::vector<std::string> findings;
  m.Verify(0, {}, &findings);
  EXPECT_TRUE(Has(findings, "[lost] transfer 7")) << findings.size();
}

TEST(ReplModel, NamedRolledBackButPresentIsAViolation) {
  ReplModel m = PreparedNamed(SeedDeciding(7, false));
  m.Deciding(7, false);
  m.Decided(7);
  EXPECT_EQ(m.named_rolled_back(), 1u);
  std::vector<std::string> findings;
  m.Verify(0, WithTransfer(7, 5), &findings);
  EXPECT_TRUE(Has(findings, "was rolled back (RollbackPrepared OK) but its marker"));
}

// Its rollback's outcome unknown (or never reported): settled by the scan, but a marker of a
// transfer the coordinator only ever rolls back is a violation.
TEST(ReplModel, NamedMarkerOfATransferTheCoordinatorRollsBackIsAViolation) {
  ReplModel m = PreparedNamed(SeedDeciding(7, false));
  m.Deciding(7, false);
  m.DecisionUnknown(7);
  std::vector<std::string> findings;
  m.Verify(0, WithTransfer(7, 5), &findings);
  EXPECT_TRUE(Has(findings, "the coordinator only ever rolls it back"));
  // And a decision against the seed's is one when reported.
  ReplModel other = PreparedNamed(SeedDeciding(7, false));
  other.Deciding(7, true);
  EXPECT_TRUE(Has(other.TakeReportFindings(), "against its seeded decision"));
}

// Listed as prepared on the leader (said in doubt): neither lost nor settled, counted in doubt;
// committed once decided.
TEST(ReplModel, NamedPreparedAndListedIsInDoubtUntilDecided) {
  ReplModel m = PreparedNamed(SeedDeciding(7, true));
  ASSERT_EQ(m.Unsettled(0).size(), 1u);
  m.NoteSaid(7, 0, ReplModel::Said::kInDoubt);
  std::vector<std::string> findings;
  m.Verify(0, {}, &findings);
  EXPECT_TRUE(findings.empty()) << findings.front();
  EXPECT_EQ(m.InDoubt(), 1u);
  m.Deciding(7, true);
  m.Decided(7);
  m.Verify(0, WithTransfer(7, 5), &findings);
  EXPECT_TRUE(findings.empty()) << findings.front();
  EXPECT_EQ(m.InDoubt(), 0u);
  EXPECT_EQ(m.acked_verified(), 1u);
  // Not listed and missing: settled as never committed, so a marker later is a violation.
  ReplModel n = PreparedNamed(SeedDeciding(7, true));
  n.Verify(0, {}, &findings);
  EXPECT_EQ(n.InDoubt(), 0u);
  n.Verify(0, WithTransfer(7, 5), &findings);
  EXPECT_TRUE(Has(findings, "settled as not committed and its marker appeared later"));
}

TEST(ReplModel, NamedReportsOfUnknownTransfersAreViolations) {
  ReplModel m(1);
  m.Intent(1, 7, 0, 0, 1, 5);
  m.Prepared(7);        // not named
  m.Deciding(8, true);  // never reported
  const std::vector<std::string> f = m.TakeReportFindings();
  EXPECT_TRUE(Has(f, "reported prepared but not reported as named"));
  EXPECT_TRUE(Has(f, "which no node reported as a named transfer"));
}

TEST(ReplModel, OneCycleThroughEveryNode) {
  std::string broken;
  EXPECT_TRUE(ReplOneCycle({}, 8, &broken));                        // the default ring
  EXPECT_TRUE(ReplOneCycle({{0, 2}, {2, 1}, {1, 3}}, 8, &broken));  // a swap of 1 and 2
  EXPECT_FALSE(ReplOneCycle({{0, 2}}, 8, &broken));  // node 1 left out: 0 -> 2 ... -> 0
  EXPECT_TRUE(absl::StrContains(broken, "ends at node 0") ||
              absl::StrContains(broken, "reached again"))
      << broken;
  EXPECT_FALSE(ReplOneCycle({{3, 9}}, 8, &broken));
  EXPECT_TRUE(absl::StrContains(broken, "node 3 points to 9")) << broken;
  EXPECT_FALSE(ReplOneCycle({{0, 0}}, 8, &broken));
}

// A swap's writes seen on one shard only: the leaders' cycle is broken. Two shards, nodes 0-3
// on shard 0 and 4-7 on shard 1; swapping 3 and 4 (a = 2, d = 5) writes 2 -> 4 and 3 -> 5 on
// shard 0 and 4 -> 3 on shard 1.
TEST(ReplModel, BrokenCycleOnTheLeadersIsAViolation) {
  ReplModel m(2);
  std::vector<std::string> findings;
  m.Verify(0, {{ReplCycleKey(2), "4"}, {ReplCycleKey(3), "5"}}, &findings);
  m.Verify(1, {{ReplCycleKey(4), "3"}}, &findings);
  m.VerifyTotal(&findings);
  EXPECT_TRUE(findings.empty()) << findings.front();  // 2 -> 4 -> 3 -> 5: whole
  m.Verify(1, {}, &findings);  // shard 1's write missing: 2 -> 4 -> 5, node 3 left out
  m.VerifyTotal(&findings);
  EXPECT_TRUE(Has(findings, "[violation] the cycle is broken on the leaders"));
}

TEST(ReplModel, FollowerReaderViolationIsAFinding) {
  ReplModel m(2);
  m.ReaderViolation(3, "the bank total is 5 (per shard -5 10), not 0");
  EXPECT_TRUE(Has(m.TakeReportFindings(), "a follower reader of node 3 saw: the bank total is 5"));
  EXPECT_EQ(m.reader_violations(), 1u);
}

}  // namespace
}  // namespace shardtx::crashtest
