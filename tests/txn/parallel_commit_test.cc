// Parallel commit of our own cross-shard transactions: committed once every participant's
// prepare is durable. The in-doubt rule (txn/coordinator.h DecideInDoubt) for every
// combination of what recovery can find; a power cut at each step of the commit, with chosen
// prepares or the decision kept off the disk, and what recovery makes of it; and the evidence
// pin: a participant resolved and checkpointed while the decision is not durable still lets
// recovery find the transaction committed.
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tests/support/forwarding_env.h"
#include "tests/support/test_db.h"
#include "tests/txn/fault_db_test.h"
#include "txn/coordinator.h"
#include "txn/database_impl.h"
#include "util/kill_point.h"
#include "util/mutex.h"

namespace shardtx {
namespace {

using testing::GetOne;
using testing::PutOne;
using txn::DecideInDoubt;
using txn::InDoubtVerdict;
using txn::PartEvidence;

// --- The in-doubt rule, exhaustively. ---

// What the rule must answer, stated independently of its implementation: a commit decision or
// any commit record commits; otherwise any abort record aborts; otherwise commit iff every
// prepare is durable.
InDoubtVerdict Expected(bool decision, const std::vector<PartEvidence>& parts) {
  bool commit = decision, abort = false, all = true;
  for (const PartEvidence& p : parts) {
    commit |= p.commit;
    abort |= p.abort;
    all &= p.prepare;
  }
  if (commit) return InDoubtVerdict::kCommit;
  if (abort) return InDoubtVerdict::kAbort;
  return all ? InDoubtVerdict::kCommit : InDoubtVerdict::kAbort;
}

// Each participant: 3 bits (prepare, commit, abort); plus the decision bit.
void CheckEveryCombination(int participants) {
  const int bits = 3 * participants + 1;
  int commits = 0;
  for (int m = 0; m < (1 << bits); ++m) {
    const bool decision = m & 1;
    std::vector<PartEvidence> parts(participants);
    for (int i = 0; i < participants; ++i) {
      parts[i].prepare = (m >> (1 + 3 * i)) & 1;
      parts[i].commit = (m >> (2 + 3 * i)) & 1;
      parts[i].abort = (m >> (3 + 3 * i)) & 1;
    }
    const InDoubtVerdict got = DecideInDoubt(decision, parts);
    ASSERT_EQ(got, Expected(decision, parts)) << participants << " participants, case " << m;
    commits += got == InDoubtVerdict::kCommit;
  }
  EXPECT_GT(commits, 0);
  EXPECT_LT(commits, 1 << bits);
}

TEST(InDoubtRule, EveryCombinationOfTwoParticipants) { CheckEveryCombination(2); }
TEST(InDoubtRule, EveryCombinationOfThreeParticipants) { CheckEveryCombination(3); }

// The cases the protocol produces, spelled out.
TEST(InDoubtRule, EveryPrepareDurableCommitsWithoutADecision) {
  std::vector<PartEvidence> parts(3, PartEvidence{.prepare = true});
  EXPECT_EQ(DecideInDoubt(false, parts), InDoubtVerdict::kCommit);
  for (int missing = 0; missing < 3; ++missing) {
    std::vector<PartEvidence> some = parts;
    some[missing].prepare = false;
    EXPECT_EQ(DecideInDoubt(false, some), InDoubtVerdict::kAbort) << "missing " << missing;
    // A participant checkpointed its part away after committing it: its commit record is the
    // evidence (the evidence pin keeps it until the decision is durable).
    some[missing].commit = true;
    EXPECT_EQ(DecideInDoubt(false, some), InDoubtVerdict::kCommit) << "missing " << missing;
  }
}

TEST(InDoubtRule, AnAbortRecordWinsOverDurablePreparesButNotOverACommit) {
  std::vector<PartEvidence> parts(2, PartEvidence{.prepare = true});
  parts[1].abort = true;
  EXPECT_EQ(DecideInDoubt(false, parts), InDoubtVerdict::kAbort);
  EXPECT_EQ(DecideInDoubt(true, parts), InDoubtVerdict::kCommit);
}

TEST(InDoubtRule, NoParticipantsIsNoCommit) {
  EXPECT_EQ(DecideInDoubt(false, {}), InDoubtVerdict::kAbort);
}

// --- Power cuts at each step, with chosen syncs kept off the disk. ---

// Fails the fsyncs of the files of the shards in `held` (without passing them on: their
// unsynced bytes stay unsynced, and the fault-injecting Env under it drops them in a crash).
class HoldSyncEnv : public testing::ForwardingEnv {
 public:
  explicit HoldSyncEnv(Env* base) : ForwardingEnv(base) {}
  void Hold(uint32_t shard) {
    MutexLock l(&mu_);
    held_.push_back(absl::StrFormat("/shard-%03d/", shard));
  }
  void ReleaseAll() {
    MutexLock l(&mu_);
    held_.clear();
  }
  absl::StatusOr<std::unique_ptr<File>> OpenFile(const std::string& path, OpenMode mode) override {
    auto f = base()->OpenFile(path, mode);
    if (!f.ok()) return f;
    return std::unique_ptr<File>(new HeldFile(this, path, std::move(*f)));
  }

 private:
  class HeldFile : public testing::ForwardingFile {
   public:
    HeldFile(HoldSyncEnv* env, std::string path, std::unique_ptr<File> base)
        : ForwardingFile(std::move(base)), env_(env), path_(std::move(path)) {}
    absl::Status Sync() override {
      if (env_->IsHeld(path_)) return absl::InternalError("held sync of " + path_);
      return ForwardingFile::Sync();
    }

   private:
    HoldSyncEnv* const env_;
    const std::string path_;
  };
  bool IsHeld(const std::string& path) {
    MutexLock l(&mu_);
    for (const std::string& h : held_) {
      if (absl::StrContains(path, h)) return true;
    }
    return false;
  }
  Mutex mu_;
  std::vector<std::string> held_ ABSL_GUARDED_BY(mu_);
};

class ParallelCommitTest : public testing::FaultDbTest {
 protected:
  // `shards` shards split at "b", "c", ... (shard 0: "a...", shard 1: "b...", shard 2: "c...").
  void OpenHeld(uint32_t shards) {
    Options o = Opts(shards);
    o.env = &held_;
    o.range_split_points.clear();
    for (uint32_t i = 1; i < shards; ++i) o.range_split_points.push_back(std::string(1, 'a' + i));
    Open(o);
  }
  // After a crash: the disk is what the model says survived; nothing held any more.
  void Reopen() {
    held_.ReleaseAll();
    KillPoints::DisarmAll();
    CrashAndReopen();
  }
  // A cross-shard transaction writing `value` under "<prefix>/t" on each shard of `shards`.
  std::unique_ptr<Transaction> Txn(const std::vector<char>& shards, const std::string& value) {
    auto t = db_->Begin();
    for (char p : shards) EXPECT_TRUE(t->Put(absl::StrCat(std::string(1, p), "/t"), value).ok());
    return t;
  }
  // The transaction's writes after recovery: all present (true) or all absent (false).
  bool Committed(const std::vector<char>& shards, const std::string& value) {
    int present = 0;
    for (char p : shards) {
      auto v = GetOne(db_.get(), absl::StrCat(std::string(1, p), "/t"));
      if (v.ok()) {
        EXPECT_EQ(*v, value);
        ++present;
      } else {
        EXPECT_TRUE(absl::IsNotFound(v.status())) << v.status();
      }
    }
    EXPECT_TRUE(present == 0 || present == static_cast<int>(shards.size()))
        << "partly applied: " << present << " of " << shards.size();
    return present == static_cast<int>(shards.size());
  }
  // WAL segments of `shard` in use (not removed, nor kept as spares: "*.wal.free").
  int LiveSegments(uint32_t shard) {
    int n = 0;
    const std::string wal = absl::StrFormat("%s/shard-%03d/wal", dir_, shard);
    for (const auto& e : std::filesystem::directory_iterator(wal)) {
      n += absl::EndsWith(e.path().filename().string(), ".wal");
    }
    return n;
  }
  // Fills shard 1's log past a few segments (64 KiB each), so that a checkpoint could recycle
  // the ones before; returns the segments in use.
  int FillShardB() {
    for (int i = 0; i < 40; ++i) {
      EXPECT_TRUE(PutOne(db_.get(), absl::StrCat("b/fill/", i), std::string(4000, 'f')).ok());
    }
    return LiveSegments(1);
  }
  // Arms `point` (its skip+1-th hit) to cut the power there.
  void CrashAt(const std::string& point, int skip = 0) {
    KillPoints::Arm(point, skip, [this] { env_.SimulateCrash().IgnoreError(); });
  }

  // The database's threads use held_: close it before held_ goes (members of this class are
  // destroyed before FaultDbTest's db_).
  ~ParallelCommitTest() override { db_.reset(); }

  HoldSyncEnv held_{&env_};
};

// The first participant's prepare is durable, the second's never reaches the disk: not
// committed (and the commit was never acknowledged).
TEST_F(ParallelCommitTest, CrashAfterSomePreparesWithOneMissingAborts) {
  UsePerShardLogs();
  OpenHeld(2);
  held_.Hold(1);
  const uint64_t hits = KillPoints::Hits("2pc.after_some_prepares");
  CrashAt("2pc.after_some_prepares");
  auto t = Txn({'a', 'b'}, "1");
  EXPECT_FALSE(t->Commit().ok());
  EXPECT_EQ(KillPoints::Hits("2pc.after_some_prepares"), hits + 1);
  Reopen();
  EXPECT_FALSE(Committed({'a', 'b'}, "1"));
  EXPECT_EQ(db_->GetStats().recovered_aborts, 1u);
}

// Three participants: a crash between the second and the third prepare, the third held off
// the disk; and one between the first and the second, the second held (the third may be
// durable or not: either way a prepare is missing).
TEST_F(ParallelCommitTest, CrashBetweenPreparesWithALaterOneMissingAborts) {
  UsePerShardLogs();
  for (int held : {1, 2}) {
    SCOPED_TRACE(absl::StrCat("held shard ", held));
    dir_ = testing::FreshDir(absl::StrCat("_", held));
    OpenHeld(3);
    held_.Hold(held);
    CrashAt("2pc.between_prepares", /*skip=*/held - 1);
    auto t = Txn({'a', 'b', 'c'}, "1");
    EXPECT_FALSE(t->Commit().ok());
    Reopen();
    EXPECT_FALSE(Committed({'a', 'b', 'c'}, "1"));
    db_.reset();
    env_.Reset();
  }
}

// Every prepare durable, nothing else: committed (the commit point of parallel commit).
TEST_F(ParallelCommitTest, CrashAfterAllPreparesCommits) {
  OpenHeld(3);
  CrashAt("2pc.after_all_prepares");
  auto t = Txn({'a', 'b', 'c'}, "1");
  // Committed at the crash: the rest (decision, commit records) fails unseen.
  EXPECT_TRUE(t->Commit().ok());
  Reopen();
  EXPECT_TRUE(Committed({'a', 'b', 'c'}, "1"));
  EXPECT_EQ(db_->GetStats().recovered_commits, 1u);
  EXPECT_EQ(db_->GetOutcome(t->id()), Database::Outcome::kCommitted);
}

// The decision appended but kept off the disk (the coordinator's fsyncs fail from the moment
// every prepare is durable), then a power cut: no decision, no commit record, every prepare
// durable: committed.
TEST_F(ParallelCommitTest, CrashAfterADecisionThatNeverReachedTheDiskCommits) {
  OpenHeld(2);
  auto t = Txn({'a', 'b'}, "1");
  KillPoints::Arm("2pc.after_all_prepares", 0, [this] {
    held_.Hold(0);
    CrashAt("2pc.after_decision");
  });
  EXPECT_TRUE(t->Commit().ok());
  Reopen();
  EXPECT_TRUE(Committed({'a', 'b'}, "1"));
}

// Between the participants' commit records (deferred: not durable), the decision durable or
// not: committed either way.
TEST_F(ParallelCommitTest, CrashAfterSomeCommitsCommits) {
  for (bool hold_decision : {false, true}) {
    SCOPED_TRACE(hold_decision ? "decision held off the disk" : "decision free to sync");
    dir_ = testing::FreshDir(hold_decision ? "_held" : "_free");
    OpenHeld(2);
    auto t = Txn({'a', 'b'}, "1");
    if (hold_decision) {
      // Armed from the committing thread once the first kill point has fired.
      KillPoints::Arm("2pc.after_all_prepares", 0, [this] {
        held_.Hold(0);
        CrashAt("2pc.after_some_commits");
      });
    } else {
      CrashAt("2pc.after_some_commits");
    }
    EXPECT_TRUE(t->Commit().ok());
    Reopen();
    EXPECT_TRUE(Committed({'a', 'b'}, "1"));
    db_.reset();
    env_.Reset();
  }
}

// An acknowledged commit survives a power cut whatever happens to its decision afterwards.
TEST_F(ParallelCommitTest, AcknowledgedCommitWhoseDecisionIsLostSurvives) {
  OpenHeld(2);
  KillPoints::Arm("2pc.after_all_prepares", 0, [this] { held_.Hold(0); });
  auto t = Txn({'a', 'b'}, "1");
  ASSERT_TRUE(t->Commit().ok());
  EXPECT_EQ(*GetOne(db_.get(), "a/t"), "1");
  Reopen();
  EXPECT_TRUE(Committed({'a', 'b'}, "1"));
}

// --- The evidence pin. ---

// Participant B (shard 1) resolves its part and is checkpointed (its prepare, and with
// `rows` its prepared-table row, dropped) while the decision on A (shard 0) cannot become
// durable; then a power cut. Without the pin, recovery found A's prepare, no decision and
// nothing of the transaction on B, and aborted a committed, acknowledged transaction (half of
// it, B's writes, already in B's LMDB).
class EvidencePinTest : public ParallelCommitTest, public ::testing::WithParamInterface<bool> {};

TEST_P(EvidencePinTest, ResolvedAndCheckpointedParticipantKeepsTheCommitProvable) {
  UsePerShardLogs();
  const bool rows = GetParam();
  OpenHeld(2);
  KillPoints::Arm("2pc.after_all_prepares", 0, [&] {
    // Both parts prepared: a checkpoint now writes them into the shards' prepared tables.
    if (rows) {
      ASSERT_TRUE(db_->Checkpoint().ok());
    }
    held_.Hold(0);  // the decision never becomes durable
  });
  auto t = Txn({'a', 'b'}, "1");
  ASSERT_TRUE(t->Commit().ok());
  // Fill B's log past a segment (64 KiB), so that a checkpoint could recycle the one holding
  // the transaction's records.
  const int segments = FillShardB();
  ASSERT_GE(segments, 3);
  EXPECT_FALSE(db_->Checkpoint().ok());  // A's log failed; B's checkpoint runs
  ASSERT_GE(db_->GetStats().shards[1].checkpoints, rows ? 2u : 1u);
  // The segment with B's commit record stays while the decision is not durable.
  EXPECT_EQ(LiveSegments(1), segments);
  Reopen();
  EXPECT_TRUE(Committed({'a', 'b'}, "1"));
  EXPECT_EQ(db_->GetOutcome(t->id()), Database::Outcome::kCommitted);
}

INSTANTIATE_TEST_SUITE_P(PreparedRows, EvidencePinTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Rows" : "WalOnly"; });

// The pin lasts only until the decision is durable: then B's checkpoint recycles the segment.
TEST_F(ParallelCommitTest, EvidencePinEndsOnceTheDecisionIsDurable) {
  UsePerShardLogs();
  OpenHeld(2);
  auto t = Txn({'a', 'b'}, "1");
  ASSERT_TRUE(t->Commit().ok());
  const int segments = FillShardB();
  ASSERT_GE(segments, 3);
  ASSERT_TRUE(db_->Checkpoint().ok());  // shard 0 first: its checkpoint syncs the decision
  EXPECT_LT(LiveSegments(1), segments);
  Reopen();
  EXPECT_TRUE(Committed({'a', 'b'}, "1"));
}

// The decision is appended without a sync of its own: with the coordinator idle afterwards it
// stays in its buffer, pinning the participant's commit record. A checkpoint of the
// participant (DatabaseImpl::PinnedLsn) syncs the coordinator's log and is then free of the pin.
TEST_F(ParallelCommitTest, ParticipantCheckpointSyncsTheCoordinatorInsteadOfKeepingThePin) {
  UsePerShardLogs();
  OpenHeld(2);
  auto t = Txn({'a', 'b'}, "1");
  ASSERT_TRUE(t->Commit().ok());
  for (int i = 0; i < 4; ++i) {  // B's commit record is durable; A stays idle
    ASSERT_TRUE(PutOne(db_.get(), absl::StrCat("b/fill/", i), "f").ok());
  }
  auto* impl = static_cast<txn::DatabaseImpl*>(db_.get());
  const engine::Lsn a_durable = impl->shard(0)->durable_lsn();
  EXPECT_NE(impl->TwoPhasePinnedLsn(1), 0u) << "the decision should not be durable yet";
  EXPECT_EQ(impl->shard(0)->durable_lsn(), a_durable);
  EXPECT_EQ(impl->PinnedLsn(1), 0u);  // syncs shard 0's log, then nothing is pinned
  EXPECT_GT(impl->shard(0)->durable_lsn(), a_durable);
  EXPECT_EQ(impl->TwoPhasePinnedLsn(1), 0u);
}

}  // namespace
}  // namespace shardtx
