// The crashtest parent's checks, fed fabricated states: what a child reported (the report lines
// of protocol.h) and a database made to hold what a broken engine could have left. Each test
// that expects a violation is one the checks of issue 20 missed before; each that expects none
// guards against a check too strict to be sound. Also the rule for a run that counts.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "shardtx/database.h"
#include "tests/support/test_db.h"
#include "tools/crashtest/coverage.h"
#include "tools/crashtest/layout.h"
#include "tools/crashtest/model.h"
#include "tools/crashtest/protocol.h"

namespace shardtx::crashtest {
namespace {

constexpr int kShards = 4;
constexpr int kRound = 1;

class CrashtestVerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options o = MakeOptions(shardtx::testing::FreshDir(), kShards);
    o.checkpoint_interval = absl::ZeroDuration();  // nothing in the background
    auto db = Database::Open(o);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    ASSERT_TRUE(model_.Initialize(db_.get()).ok());
    model_.StartRound(kRound, /*powerloss=*/false);
    model_.StartChild();
  }
  void TearDown() override {
    if (db_ != nullptr) {
      EXPECT_TRUE(db_->Close().ok());
    }
  }

  // The child's report lines, as thread 0 writes them.
  void ReportIntent(uint64_t seq, const Intent& in) {
    model_.OnLine(absl::StrCat("I 0 ", seq, " ", FormatIntent(in)));
  }
  void ReportAcked(uint64_t seq, uint64_t ts = 0, int shard = -1) {
    model_.OnLine(absl::StrCat("A 0 ", seq, " ", ts, " ", shard));
  }

  // An async insert of one key on `shard` (reported; the database is not touched).
  Intent AsyncInsert(int shard, uint64_t seq) {
    Intent in;
    in.kind = OpKind::kAsync;
    in.txn_id = 900000 + seq;  // never used by the database: GetOutcome says unknown
    in.writes.emplace_back(AsyncKey(shard, kRound, 0, seq, 0), UniqueValue(kRound, 0, seq, 0));
    return in;
  }

  // A transfer of 10 from account 0 of `from_shard` to account 0 of `to_shard`, with its
  // markers, committed in the database.
  Intent Transfer(int from_shard, int to_shard, uint64_t seq) {
    auto txn = db_->Begin();
    Intent in;
    in.kind = OpKind::kTransfer;
    in.txn_id = txn->id();
    in.from = AccountKey(from_shard, 0);
    in.to = AccountKey(to_shard, 0);
    in.amount = 10;
    in.writes.emplace_back(MarkerKey(from_shard, 0), UniqueValue(kRound, 0, seq, 0));
    in.writes.emplace_back(MarkerKey(to_shard, 0), UniqueValue(kRound, 0, seq, 0));
    EXPECT_TRUE(txn->Put(in.from, absl::StrCat(kInitialBalance - 10)).ok());
    EXPECT_TRUE(txn->Put(in.to, absl::StrCat(kInitialBalance + 10)).ok());
    for (const auto& [k, v] : in.writes) EXPECT_TRUE(txn->Put(k, *v).ok());
    EXPECT_TRUE(txn->Commit().ok());
    return in;
  }

  // A named prepare writing one key on each of `shards`; the database prepares the writes on
  // `prepared_shards` only (all of them unless given).
  Intent NamedPrepare(const std::string& name, const std::vector<int>& shards, uint64_t seq,
                      std::vector<int> prepared_shards = {}) {
    if (prepared_shards.empty()) prepared_shards = shards;
    auto txn = db_->Begin();
    Intent in;
    in.kind = OpKind::kPrepare;
    in.txn_id = txn->id();
    in.name = name;
    for (size_t j = 0; j < shards.size(); ++j) {
      const std::string key = PreparedKey(shards[j], name, absl::StrCat(j));
      const std::string value = UniqueValue(kRound, 0, seq, static_cast<int>(j));
      in.writes.emplace_back(key, value);
      for (int p : prepared_shards) {
        if (p == shards[j]) {
          EXPECT_TRUE(txn->Put(key, value).ok());
        }
      }
    }
    EXPECT_TRUE(txn->Prepare(name).ok());
    return in;
  }

  std::vector<Violation> Verify() {
    std::vector<Violation> out;
    model_.Verify(db_.get(), &out);
    return out;
  }

  static std::string Show(const std::vector<Violation>& v) {
    std::string s;
    for (const Violation& x : v) {
      absl::StrAppend(&s, "\n  ", x.lost ? "[lost] " : "[violation] ", x.key, ": ", x.what);
    }
    return s.empty() ? " (none)" : s;
  }

  Model model_{kShards, /*threads=*/1};
  std::unique_ptr<Database> db_;
};

// Issue 20: CheckLocks probed only the first write and the source account, so a prepared
// transaction whose second participant held no lock passed.
TEST_F(CrashtestVerifyTest, PreparedTransactionUnlockedOnItsSecondParticipantIsReported) {
  const std::string name = "np.1.0.1";
  // The child prepared writes on shards 1 and 2; the database holds shard 1's part only, so
  // nothing locks the key on shard 2.
  const Intent in = NamedPrepare(name, {1, 2}, 1, /*prepared_shards=*/{1});
  ReportIntent(1, in);
  ReportAcked(1);
  const std::vector<Violation> v = Verify();
  const std::string unlocked = PreparedKey(2, name, "1");
  ASSERT_FALSE(v.empty()) << "the unlocked key " << unlocked << " on shard 2 went unseen";
  EXPECT_EQ(v.front().key, unlocked) << Show(v);
  EXPECT_TRUE(absl::StrContains(v.front().what, "does not lock its key")) << Show(v);
}

TEST_F(CrashtestVerifyTest, PreparedTransactionLockedOnEveryParticipantPasses) {
  const Intent in = NamedPrepare("np.1.0.1", {1, 2}, 1);
  ReportIntent(1, in);
  ReportAcked(1);
  const std::vector<Violation> v = Verify();
  EXPECT_TRUE(v.empty()) << Show(v);
  EXPECT_EQ(model_.verified_this_round(), 1u);
}

// Issue 20: the async bound used only acknowledged single-shard commits. A cross-shard commit
// syncs a prepare record on every participant, so an async commit acknowledged before it began
// must survive on each of them.
TEST_F(CrashtestVerifyTest, AsyncCommitLostBeforeACrossShardCommitIsReported) {
  const Intent async = AsyncInsert(2, 1);  // lost: never committed in the database
  ReportIntent(1, async);
  ReportAcked(1, /*ts=*/5, /*shard=*/2);
  const Intent transfer = Transfer(1, 2, 2);
  ReportIntent(2, transfer);
  ReportAcked(2);
  const std::vector<Violation> v = Verify();
  ASSERT_EQ(v.size(), 1u) << Show(v);
  EXPECT_TRUE(v[0].lost);
  EXPECT_EQ(v[0].key, async.writes[0].first);
  EXPECT_TRUE(absl::StrContains(v[0].what, "operation 0.2 (a transfer)")) << Show(v);
}

// The same with a named prepare: every participant's prepare record is synced.
TEST_F(CrashtestVerifyTest, AsyncCommitLostBeforeANamedPrepareIsReported) {
  const Intent async = AsyncInsert(3, 1);
  ReportIntent(1, async);
  ReportAcked(1, 5, 3);
  const Intent prepare = NamedPrepare("np.1.0.2", {0, 3}, 2);
  ReportIntent(2, prepare);
  ReportAcked(2);
  const std::vector<Violation> v = Verify();
  ASSERT_EQ(v.size(), 1u) << Show(v);
  EXPECT_EQ(v[0].key, async.writes[0].first);
  EXPECT_TRUE(absl::StrContains(v[0].what, "(a named prepare)")) << Show(v);
}

// CommitPrepared syncs its decision on the first participant only: an async commit lost there
// is reported, one lost on the second participant is allowed (its commit record rides a later
// batch, unsynced).
TEST_F(CrashtestVerifyTest, AsyncCommitLostBeforeCommitPreparedIsReportedOnTheDecisionShard) {
  const std::string name = "np.1.0.1";
  const Intent prepare = NamedPrepare(name, {1, 2}, 1);
  ReportIntent(1, prepare);
  ReportAcked(1);
  const Intent lost_on_1 = AsyncInsert(1, 2);
  ReportIntent(2, lost_on_1);
  ReportAcked(2, 5, 1);
  const Intent lost_on_2 = AsyncInsert(2, 3);
  ReportIntent(3, lost_on_2);
  ReportAcked(3, 6, 2);
  Intent decide;
  decide.kind = OpKind::kCommitPrepared;
  decide.name = name;
  ReportIntent(4, decide);
  ASSERT_TRUE(db_->CommitPrepared(name).ok());
  ReportAcked(4);
  const std::vector<Violation> v = Verify();
  ASSERT_EQ(v.size(), 1u) << Show(v);
  EXPECT_EQ(v[0].key, lost_on_1.writes[0].first);
  EXPECT_TRUE(absl::StrContains(v[0].what, "(CommitPrepared)")) << Show(v);
}

// Soundness: an async commit acknowledged after the cross-shard commit began may have been
// appended after its prepares; its loss proves nothing.
TEST_F(CrashtestVerifyTest, AsyncCommitAcknowledgedAfterACrossShardCommitBeganMayBeLost) {
  const Intent transfer = Transfer(1, 2, 1);
  ReportIntent(1, transfer);
  const Intent async = AsyncInsert(2, 2);
  ReportIntent(2, async);
  ReportAcked(2, 5, 2);
  ReportAcked(1);
  const std::vector<Violation> v = Verify();
  EXPECT_TRUE(v.empty()) << Show(v);
}

// The bound holds within one child: a later child began after a crash that may have lost it.
TEST_F(CrashtestVerifyTest, AsyncCommitOfAnEarlierChildIsNotBoundByALaterOne) {
  const Intent async = AsyncInsert(2, 1);
  ReportIntent(1, async);
  ReportAcked(1, 5, 2);
  model_.StartChild();
  const Intent transfer = Transfer(1, 2, 2);
  ReportIntent(2, transfer);
  ReportAcked(2);
  const std::vector<Violation> v = Verify();
  EXPECT_TRUE(v.empty()) << Show(v);
}

// Issue 20: a round in which nothing durable was acknowledged counted as a pass. It now
// verifies nothing, and the run's coverage says so.
TEST_F(CrashtestVerifyTest, RoundWithOnlyAsyncAndUnfinishedOperationsVerifiesNothing) {
  ReportIntent(1, AsyncInsert(1, 1));
  ReportAcked(1, 5, 1);
  const Intent transfer = Transfer(1, 2, 2);
  ReportIntent(2, transfer);  // in flight at the crash: applied, as the database shows
  model_.OnLine("K wal.after_sync");
  std::vector<Violation> v = Verify();
  // The async commit may be lost: no acknowledged operation synced anything after it.
  EXPECT_TRUE(v.empty()) << Show(v);
  EXPECT_EQ(model_.verified_this_round(), 0u);
}

TEST_F(CrashtestVerifyTest, RoundWithAnAcknowledgedCommitVerifiesIt) {
  const Intent transfer = Transfer(1, 2, 1);
  ReportIntent(1, transfer);
  ReportAcked(1);
  const std::vector<Violation> v = Verify();
  EXPECT_TRUE(v.empty()) << Show(v);
  EXPECT_EQ(model_.verified_this_round(), 1u);
}

RunCoverage Coverage(int64_t rounds, int64_t verifying, int64_t armed, int points, int fired) {
  RunCoverage c;
  c.rounds = rounds;
  c.verifying_rounds = verifying;
  c.armed_rounds = armed;
  for (int i = 0; i < points; ++i) c.fired[absl::StrCat("point.", i)] = i < fired ? 3 : 0;
  return c;
}

TEST(CrashtestCoverage, ARunThatVerifiedNothingDoesNotCount) {
  const std::vector<std::string> s = Coverage(40, 0, 0, 19, 0).Shortfalls();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_TRUE(absl::StrContains(s[0], "only 0 of 40 rounds verified")) << s[0];
}

TEST(CrashtestCoverage, ARunWhereNoKillPointFiredDoesNotCount) {
  const std::vector<std::string> s = Coverage(40, 40, 20, 19, 0).Shortfalls();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_TRUE(absl::StrContains(s[0], "only 0 distinct kill points fired in 20 rounds")) << s[0];
}

TEST(CrashtestCoverage, HalfTheRoundsMustVerify) {
  EXPECT_TRUE(Coverage(65, 32, 36, 19, 17).Shortfalls().empty());
  EXPECT_EQ(Coverage(65, 31, 36, 19, 17).Shortfalls().size(), 1u);
  EXPECT_TRUE(Coverage(1, 1, 0, 19, 0).Shortfalls().empty());
  EXPECT_EQ(Coverage(1, 0, 0, 19, 0).Shortfalls().size(), 1u) << "one round, nothing verified";
}

TEST(CrashtestCoverage, DistinctPointsScaleWithArmedRoundsUpToTwoThirds) {
  EXPECT_EQ(Coverage(6, 6, 3, 19, 0).required_distinct_fired(), 0);
  EXPECT_EQ(Coverage(10, 10, 4, 19, 0).required_distinct_fired(), 1);
  EXPECT_EQ(Coverage(65, 60, 36, 19, 17).required_distinct_fired(), 9);
  EXPECT_EQ(Coverage(1000, 950, 520, 19, 17).required_distinct_fired(), 12);
  EXPECT_TRUE(Coverage(1000, 950, 520, 19, 12).Shortfalls().empty());
  EXPECT_EQ(Coverage(1000, 950, 520, 19, 11).Shortfalls().size(), 1u);
}

}  // namespace
}  // namespace shardtx::crashtest
