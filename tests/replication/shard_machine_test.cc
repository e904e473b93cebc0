// ShardMachine on its own (no group): a replica's apply path over a real engine::Shard ends where
// the unreplicated commit path ends, survives a crash with its applied Raft index, never applies
// an entry twice, and restores from another replica's copy.
#include "replication/shard_machine.h"

#include <memory>
#include <string>
#include <vector>

#include "engine/log_record.h"
#include "gtest/gtest.h"
#include "replication/snapshot_install.h"
#include "tests/support/fault_injection_env.h"
#include "tests/support/test_db.h"
#include "util/mutex.h"

namespace shardtx::replication {
namespace {

using engine::Write;
using engine::WriteOp;
using ::shardtx::testing::FaultInjectionEnv;
using ::shardtx::testing::FreshDir;

// An unreplicated shard's hooks: no transaction layer, kCommit records only (those replication
// opens a shard with).
using CommitOnlyHooks = ReplicaShardHooks;

engine::ShardOptions SmallShard(const std::string& dir, Env* env) {
  engine::ShardOptions o;
  o.dir = dir;
  o.env = env;
  o.wal_segment_size = 1 << 20;
  o.max_record_size = 256 << 10;
  o.lmdb_map_size = 64ull << 20;
  o.max_readers = 16;
  o.checkpoint_interval = absl::ZeroDuration();
  o.checkpoint_wal_bytes = 0;
  o.checkpoint_overlay_bytes = 0;
  return o;
}

ShardMachineOptions MachineOptions(const std::string& dir, Env* env, uint32_t server = 0,
                                   uint64_t checkpoint_every = 0,
                                   SnapshotSources* sources = nullptr) {
  ShardMachineOptions o;
  o.shard = SmallShard(dir, env);
  o.server = server;
  o.checkpoint_every = checkpoint_every;
  o.sources = sources;
  return o;
}

// One commit: its timestamp and writes.
struct Commit {
  engine::Timestamp ts;
  std::vector<Write> writes;
};

// A workload with overwrites and deletes, some of keys a checkpoint has put in LMDB already.
std::vector<Commit> Workload() {
  std::vector<Commit> out;
  engine::Timestamp ts = 100;
  for (int i = 0; i < 40; ++i) {
    Commit c{++ts, {}};
    c.writes.push_back({WriteOp::kPut, "k" + std::to_string(i % 13), "v" + std::to_string(i)});
    if (i % 3 == 0) c.writes.push_back({WriteOp::kPut, "u" + std::to_string(i), "once"});
    if (i % 5 == 4) c.writes.push_back({WriteOp::kDelete, "k" + std::to_string((i + 7) % 13), ""});
    out.push_back(std::move(c));
  }
  return out;
}

// Entry i (raft index i + 1, term 1 + i / 7) carries one to three commits of the workload.
std::vector<std::string> EntriesOf(const std::vector<Commit>& commits) {
  std::vector<std::string> entries;
  for (size_t i = 0; i < commits.size();) {
    std::string entry;
    for (size_t k = 0; k < 1 + entries.size() % 3 && i < commits.size(); ++k, ++i) {
      // The commit's timestamp serves as its txn id (the released-transaction tables).
      engine::AppendEntryRecord(
          &entry, engine::kCommit,
          engine::EncodeCommit(commits[i].ts, commits[i].ts, commits[i].writes));
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

ReleasedEntry EntryAt(const std::vector<std::string>& entries, uint64_t index) {
  return ReleasedEntry{1 + (index - 1) / 7, index, entries[index - 1]};
}

// Applies entries [from, to] (raft indexes), expecting success.
void ApplyRange(ShardMachine& m, const std::vector<std::string>& entries, uint64_t from,
                uint64_t to) {
  for (uint64_t i = from; i <= to; ++i) {
    absl::Status s = m.Apply(EntryAt(entries, i));
    ASSERT_TRUE(s.ok()) << "entry " << i << ": " << s;
  }
}

// The released-transaction table's answer for each commit of Workload() (txn id = timestamp).
std::vector<engine::ReleasedTxns::State> ReleasedStates(ShardMachine& m) {
  std::vector<engine::ReleasedTxns::State> out;
  MutexLock l(m.shard().commit_mu());
  for (const Commit& c : Workload()) out.push_back(m.shard().ReleasedTxnLocked(c.ts));
  return out;
}

engine::Lsn LastLsn(ShardMachine& m) {
  MutexLock l(m.shard().commit_mu());
  return m.shard().last_lsn_locked();
}

// What an unreplicated shard holds after committing `commits` through the normal path (append,
// install), with a checkpoint halfway.
ShardDigest UnreplicatedDigest(const std::string& dir, const std::vector<Commit>& commits) {
  CommitOnlyHooks hooks;
  auto shard = engine::Shard::Open(0, SmallShard(dir, Env::Default()), &hooks);
  EXPECT_TRUE(shard.ok()) << shard.status();
  for (size_t i = 0; i < commits.size(); ++i) {
    std::vector<Write> writes = commits[i].writes;
    {
      MutexLock l((*shard)->commit_mu());
      auto lsn =
          (*shard)->AppendLocked(engine::kCommit, engine::EncodeCommit(commits[i].ts, 7, writes),
                                 engine::Durability::kAsync);
      EXPECT_TRUE(lsn.ok()) << lsn.status();
      (*shard)->InstallLocked(&writes, commits[i].ts);
    }
    if (i == commits.size() / 2) {
      EXPECT_TRUE((*shard)->Checkpoint().ok());
    }
  }
  auto digest = DigestOf(**shard);
  EXPECT_TRUE(digest.ok()) << digest.status();
  EXPECT_TRUE((*shard)->Close(false).ok());
  return *digest;
}

TEST(ShardMachine, SameRecordsEndWithTheDigestOfTheUnreplicatedCommitPath) {
  const std::vector<Commit> commits = Workload();
  const std::vector<std::string> entries = EntriesOf(commits);
  const ShardDigest want = UnreplicatedDigest(FreshDir("_plain"), commits);
  EXPECT_GT(want.keys, 10u);

  auto m = ShardMachine::Open(MachineOptions(FreshDir("_replica"), Env::Default(), 0,
                                             /*checkpoint_every=*/4));
  ASSERT_TRUE(m.ok()) << m.status();
  ApplyRange(**m, entries, 1, entries.size());
  EXPECT_EQ((*m)->applied().index, entries.size());
  EXPECT_EQ((*m)->applied().term, 1 + (entries.size() - 1) / 7);
  EXPECT_GT((*m)->shard().applied_lsn(), 0u);  // some of it went through checkpoints to LMDB
  auto got = (*m)->Digest();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, want);
  // And after crash recovery from its own directory.
  ASSERT_TRUE((*m)->CloseShard().ok());
  ASSERT_TRUE((*m)->ReopenShard().ok());
  got = (*m)->Digest();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, want);
  EXPECT_EQ((*m)->applied().index, entries.size());
}

TEST(ShardMachine, AfterACrashEntriesAtOrBelowTheAppliedIndexAreSkippedAndTheRestApplied) {
  const std::vector<std::string> entries = EntriesOf(Workload());
  ASSERT_GE(entries.size(), 12u);
  FaultInjectionEnv env;
  auto m = ShardMachine::Open(MachineOptions(FreshDir(), &env, 0, /*checkpoint_every=*/5));
  ASSERT_TRUE(m.ok()) << m.status();
  ApplyRange(**m, entries, 1, 6);    // a checkpoint after 5: LMDB holds raft index 5
  auto snapshot = (*m)->Snapshot();  // syncs the WAL: 6 is durable
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  ApplyRange(**m, entries, 7, 9);         // written without a sync
  ASSERT_TRUE(env.SimulateCrash().ok());  // the unsynced records of 7..9 are lost
  (*m)->CloseShard().IgnoreError();
  env.Reset();
  ASSERT_TRUE((*m)->ReopenShard().ok());
  EXPECT_EQ((*m)->applied().index, 6u);  // from LMDB (5) and the WAL's redo (6)
  EXPECT_EQ(LastLsn(**m), 6u);           // one WAL record per entry

  // libraft re-applies everything above its snapshot (here: from the start).
  const uint64_t applied_before = (*m)->entries_applied();
  ApplyRange(**m, entries, 1, 12);
  EXPECT_EQ((*m)->entries_skipped(), 6u);
  EXPECT_EQ((*m)->entries_applied() - applied_before, 6u);
  EXPECT_EQ((*m)->applied().index, 12u);
  EXPECT_EQ(LastLsn(**m), 12u);  // 1..6 were not appended a second time

  // The same state as a replica that applied 1..12 once.
  auto once = ShardMachine::Open(MachineOptions(FreshDir("_once"), Env::Default()));
  ASSERT_TRUE(once.ok()) << once.status();
  ApplyRange(**once, entries, 1, 12);
  auto a = (*m)->Digest(), b = (*once)->Digest();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(LastLsn(**once), 12u);
}

TEST(ShardMachine, ACleanReopenSkipsWhatItApplied) {
  const std::vector<std::string> entries = EntriesOf(Workload());
  auto m = ShardMachine::Open(MachineOptions(FreshDir(), Env::Default()));
  ASSERT_TRUE(m.ok()) << m.status();
  ApplyRange(**m, entries, 1, 4);
  ASSERT_TRUE((*m)->CloseShard().ok());  // no checkpoint: the position comes from the WAL alone
  ASSERT_TRUE((*m)->ReopenShard().ok());
  EXPECT_EQ((*m)->applied().index, 4u);
  ApplyRange(**m, entries, 3, 5);
  EXPECT_EQ((*m)->entries_skipped(), 2u);
  EXPECT_EQ(LastLsn(**m), 5u);
}

TEST(ShardMachine, AnEntryItCannotApplyStopsItUntilReopened) {
  const std::vector<std::string> entries = EntriesOf(Workload());
  auto m = ShardMachine::Open(MachineOptions(FreshDir(), Env::Default()));
  ASSERT_TRUE(m.ok()) << m.status();
  ApplyRange(**m, entries, 1, 2);
  std::string prepare;  // a record the shard's hooks cannot redo yet
  engine::AppendEntryRecord(&prepare, engine::kPrepare, "opaque");
  const std::string bad[] = {std::string(),
                             std::string("\x01\x05"
                                         "abc",
                                         5),  // length past the end
                             [] {             // a kRaftEntry may not nest
                               std::string e;
                               engine::AppendEntryRecord(&e, engine::kRaftEntry,
                                                         "0123456789abcdef");
                               return e;
                             }(),
                             prepare};
  for (size_t i = 0; i < std::size(bad); ++i) {
    SCOPED_TRACE(i);
    (*m)->Release(ReleasedEntry{1, 3, bad[i]});
    EXPECT_EQ((*m)->failures(), 1u);
    EXPECT_TRUE((*m)->stopped());
    const absl::Status first = (*m)->first_error();
    EXPECT_TRUE(i < 3 ? absl::IsInvalidArgument(first) : absl::IsUnimplemented(first)) << first;
    // Nothing after it is applied, not even a good entry.
    EXPECT_EQ((*m)->Apply(EntryAt(entries, 4)), first);
    EXPECT_EQ((*m)->failures(), 2u);
    EXPECT_EQ((*m)->applied().index, 2u);
    EXPECT_EQ(LastLsn(**m), 2u);  // nothing of it reached the WAL
    // Reopened, it is where it was, and goes on.
    ASSERT_TRUE((*m)->CloseShard().ok());
    ASSERT_TRUE((*m)->ReopenShard().ok());
    EXPECT_FALSE((*m)->stopped());
    EXPECT_EQ((*m)->applied().index, 2u);
    *m = nullptr;
    m = ShardMachine::Open(MachineOptions(FreshDir(std::to_string(i)), Env::Default()));
    ASSERT_TRUE(m.ok()) << m.status();
    ApplyRange(**m, entries, 1, 2);
  }
}

TEST(ShardMachine, RestoreCopiesTheProducersShardAndContinuesAboveIt) {
  const std::vector<std::string> entries = EntriesOf(Workload());
  SnapshotSources sources;
  auto a = ShardMachine::Open(MachineOptions(FreshDir("_a"), Env::Default(), 0, 3, &sources));
  auto b = ShardMachine::Open(MachineOptions(FreshDir("_b"), Env::Default(), 1, 3, &sources));
  ASSERT_TRUE(a.ok() && b.ok());
  ApplyRange(**a, entries, 1, 8);
  ApplyRange(**b, entries, 1, 2);
  auto snapshot = (*a)->Snapshot();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  ApplyRange(**a, entries, 9, 10);  // the producer moved on before the copy: it copies that too
  ASSERT_TRUE((*b)->Restore(*snapshot).ok());
  EXPECT_EQ((*b)->restores(), 1u);
  EXPECT_EQ((*b)->applied().index, 10u);
  // libraft goes on above the snapshot's index: what the copy holds is skipped.
  ApplyRange(**a, entries, 11, 12);
  ApplyRange(**b, entries, 9, 12);
  EXPECT_EQ((*b)->entries_skipped(), 2u);
  auto da = (*a)->Digest(), db = (*b)->Digest();
  ASSERT_TRUE(da.ok() && db.ok());
  EXPECT_EQ(*da, *db);
  // The copy brought the producer's released transactions (its store's table and WAL tail).
  const std::vector<engine::ReleasedTxns::State> released = ReleasedStates(**a);
  EXPECT_EQ(released.front(), engine::ReleasedTxns::State::kReleased);
  EXPECT_EQ(released.back(), engine::ReleasedTxns::State::kNotReleased);
  EXPECT_EQ(ReleasedStates(**b), released);
  // A snapshot it has applied already keeps its own state; a foreign one is refused.
  ASSERT_TRUE((*b)->Restore(*snapshot).ok());
  EXPECT_EQ((*b)->restores_kept(), 1u);
  EXPECT_TRUE(absl::IsInvalidArgument((*b)->Restore("not a snapshot")));
  // Reopened, the restored replica keeps the copy and its position.
  ASSERT_TRUE((*b)->CloseShard().ok());
  ASSERT_TRUE((*b)->ReopenShard().ok());
  EXPECT_EQ((*b)->applied().index, 12u);
  db = (*b)->Digest();
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(*da, *db);
  EXPECT_EQ(ReleasedStates(**b), released);
}

TEST(RaftEntryRecord, RoundTripsAndRefusesEveryTruncation) {
  std::string entry;
  engine::AppendEntryRecord(&entry, engine::kCommit,
                            engine::EncodeCommit(5, 9, {{WriteOp::kPut, "k", "v"}}));
  engine::AppendEntryRecord(&entry, engine::kDecision, std::string("\0x", 2));
  const std::string record = engine::EncodeRaftEntry({42, 3}, entry);
  engine::RaftPosition at;
  absl::string_view got;
  ASSERT_TRUE(engine::DecodeRaftEntry(record, &at, &got));
  EXPECT_EQ(at.index, 42u);
  EXPECT_EQ(at.term, 3u);
  EXPECT_EQ(got, entry);
  std::vector<engine::EntryRecord> records;
  ASSERT_TRUE(engine::DecodeEntryRecords(got, &records));
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].type, engine::kCommit);
  EXPECT_EQ(records[1].type, engine::kDecision);
  EXPECT_EQ(records[1].payload, absl::string_view("\0x", 2));
  // Every cut inside a record fails; a cut between records is a shorter, valid list.
  const size_t first_end = entry.size() - 4;  // the second record: type, length 2, 2 bytes
  for (size_t n = 0; n < entry.size(); ++n) {
    const bool valid = n == first_end;
    EXPECT_EQ(engine::DecodeEntryRecords(absl::string_view(entry).substr(0, n), &records), valid)
        << n;
  }
  for (size_t n = 0; n < 16; ++n) {
    EXPECT_FALSE(engine::DecodeRaftEntry(absl::string_view(record).substr(0, n), &at, &got)) << n;
  }
}

TEST(RaftEntryRecord, AMalformedOneInTheWalFailsOpenWithDataLoss) {
  const std::string dir = FreshDir();
  {
    CommitOnlyHooks hooks;
    auto shard = engine::Shard::Open(0, SmallShard(dir, Env::Default()), &hooks);
    ASSERT_TRUE(shard.ok()) << shard.status();
    MutexLock l((*shard)->commit_mu());
    // A position, then a record whose length runs past the end.
    const std::string bad = engine::EncodeRaftEntry({1, 1}, std::string("\x01\x09", 2) + "ab");
    ASSERT_TRUE((*shard)->AppendLocked(engine::kRaftEntry, bad, engine::Durability::kAsync).ok());
  }
  CommitOnlyHooks hooks;
  auto shard = engine::Shard::Open(0, SmallShard(dir, Env::Default()), &hooks);
  ASSERT_TRUE(absl::IsDataLoss(shard.status())) << shard.status();
  EXPECT_NE(shard.status().message().find("malformed raft entry record at LSN 1"),
            std::string::npos)
      << shard.status();
}

}  // namespace
}  // namespace shardtx::replication
