// Named two-phase commit for a host's own coordinator: Prepare(name), ListPrepared,
// CommitPrepared, RollbackPrepared, across crashes.
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/test_db.h"
#include "tests/support/fault_injection_env.h"
#include "tests/txn/fault_db_test.h"

namespace shardtx {
namespace {

using testing::GetOne;

class NamedPrepareTest : public testing::FaultDbTest {
 protected:
  absl::Status Prepare(const std::string& name,
                       std::vector<std::pair<std::string, std::string>> writes) {
    auto t = db_->Begin();
    for (auto& [k, v] : writes) {
      absl::Status s = t->Put(k, v);
      if (!s.ok()) return s;
    }
    return t->Prepare(name);
  }
};

TEST_F(NamedPrepareTest, SurvivesCrashWithLocksThenCommitOneRollBackAnother) {
  Open();
  ASSERT_TRUE(Prepare("A", {{"apple", "A"}, {"zebra", "A"}}).ok());  // both shards
  ASSERT_TRUE(Prepare("B", {{"banana", "B"}}).ok());
  EXPECT_EQ(db_->GetStats().in_doubt, 2u);
  CrashAndReopen();
  EXPECT_EQ(List(), (std::vector<std::string>{"A", "B"}));
  EXPECT_EQ(db_->GetStats().in_doubt, 2u);
  // Not visible, and locked: a conflicting writer gets a status naming the holder.
  EXPECT_TRUE(absl::IsNotFound(GetOne(db_.get(), "apple").status()));
  {
    auto t = db_->Begin();
    ASSERT_TRUE(t->Put("zebra", "other").ok());
    absl::Status s = t->Commit();
    ASSERT_TRUE(absl::IsAborted(s)) << s;
    EXPECT_NE(s.message().find("locked by prepared transaction"), std::string::npos) << s;
    EXPECT_NE(s.message().find("'A'"), std::string::npos) << s;
  }
  ASSERT_TRUE(db_->CommitPrepared("A").ok());
  ASSERT_TRUE(db_->RollbackPrepared("B").ok());
  EXPECT_TRUE(List().empty());
  EXPECT_EQ(*GetOne(db_.get(), "apple"), "A");
  EXPECT_EQ(*GetOne(db_.get(), "zebra"), "A");
  EXPECT_TRUE(absl::IsNotFound(GetOne(db_.get(), "banana").status()));
  EXPECT_TRUE(testing::PutOne(db_.get(), "banana", "free").ok());  // lock released
  EXPECT_TRUE(absl::IsNotFound(db_->CommitPrepared("B")));
  // The decisions are durable.
  CrashAndReopen();
  EXPECT_TRUE(List().empty());
  EXPECT_EQ(*GetOne(db_.get(), "zebra"), "A");
  EXPECT_EQ(*GetOne(db_.get(), "banana"), "free");
}

TEST_F(NamedPrepareTest, PrepareCrashCommitCrashStaysCommitted) {
  Open();
  ASSERT_TRUE(Prepare("T", {{"apple", "1"}, {"zebra", "1"}}).ok());
  CrashAndReopen();
  ASSERT_TRUE(db_->CommitPrepared("T").ok());
  CrashAndReopen();
  EXPECT_TRUE(List().empty());
  EXPECT_EQ(*GetOne(db_.get(), "apple"), "1");
  EXPECT_EQ(*GetOne(db_.get(), "zebra"), "1");
  CrashAndReopen();  // and recovering once more changes nothing
  EXPECT_EQ(*GetOne(db_.get(), "zebra"), "1");
}

TEST_F(NamedPrepareTest, DuplicateNamesAreRefused) {
  Open();
  ASSERT_TRUE(Prepare("dup", {{"apple", "1"}}).ok());
  absl::Status s = Prepare("dup", {{"banana", "2"}});
  EXPECT_TRUE(absl::IsAlreadyExists(s)) << s;
  EXPECT_TRUE(absl::IsNotFound(GetOne(db_.get(), "banana").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(Prepare("", {{"x", "1"}})));
}

TEST_F(NamedPrepareTest, NameReusedAfterItsTransactionEndedIsANewTransaction) {
  Open();
  ASSERT_TRUE(Prepare("X", {{"apple", "old"}}).ok());
  ASSERT_TRUE(db_->CommitPrepared("X").ok());
  CrashAndReopen();
  ASSERT_TRUE(Prepare("X", {{"apple", "new"}, {"zebra", "new"}}).ok());
  CrashAndReopen();
  EXPECT_EQ(List(), std::vector<std::string>{"X"});
  EXPECT_EQ(*GetOne(db_.get(), "apple"), "old");  // the old X committed; the new one waits
  ASSERT_TRUE(db_->RollbackPrepared("X").ok());
  CrashAndReopen();
  EXPECT_TRUE(List().empty());
  EXPECT_EQ(*GetOne(db_.get(), "apple"), "old");
  EXPECT_TRUE(absl::IsNotFound(GetOne(db_.get(), "zebra").status()));
}

TEST_F(NamedPrepareTest, LongPreparedTransactionDoesNotPinTheWal) {
  UsePerShardLogs();
  Open();
  ASSERT_TRUE(Prepare("slow", {{"apple", "waiting"}}).ok());
  const std::string wal = dir_ + "/shard-000/wal";
  auto segments = [&] {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(wal)) {
      n += e.path().extension() == ".wal";
    }
    return n;
  };
  // Fill many segments on shard 0 with checkpoints in between.
  for (int i = 0; i < 400; ++i) {
    ASSERT_TRUE(testing::PutOne(db_.get(), absl::StrCat("b", i), std::string(1000, 'x')).ok());
    if (i % 50 == 49) {
      ASSERT_TRUE(db_->Checkpoint().ok());
    }
  }
  ASSERT_TRUE(db_->Checkpoint().ok());
  EXPECT_LE(segments(), 4) << "the prepared transaction pinned the WAL";
  CrashAndReopen();
  EXPECT_EQ(List(), std::vector<std::string>{"slow"});
  ASSERT_TRUE(db_->CommitPrepared("slow").ok());
  EXPECT_EQ(*GetOne(db_.get(), "apple"), "waiting");
  EXPECT_EQ(GetOne(db_.get(), "b399")->size(), 1000u);
}

TEST_F(NamedPrepareTest, OutcomeByIdSurvivesARestart) {
  Open();
  auto t = db_->Begin();
  ASSERT_TRUE(t->Put("apple", "1").ok());
  ASSERT_TRUE(t->Put("zebra", "1").ok());
  ASSERT_TRUE(t->Commit().ok());
  const uint64_t id = t->id();
  auto u = db_->Begin();
  ASSERT_TRUE(u->Put("kiwi", "1").ok());
  ASSERT_TRUE(u->Prepare("u").ok());
  CrashAndReopen();
  EXPECT_EQ(db_->GetOutcome(id), Database::Outcome::kCommitted);
  EXPECT_EQ(db_->GetOutcome(u->id()), Database::Outcome::kPrepared);
  EXPECT_EQ(db_->GetOutcome(12345), Database::Outcome::kUnknown);
}

}  // namespace
}  // namespace shardtx
