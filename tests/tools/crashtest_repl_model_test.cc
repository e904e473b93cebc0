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

}  // namespace
}  // namespace shardtx::crashtest
