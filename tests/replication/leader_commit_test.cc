// Plan step 5, the leader commit path: three Databases (one shard each, real WAL and LMDB in a
// temporary directory) whose shard is replicated through a SimulatedGroup of three servers, one
// ShardReplica per Database (DatabaseImpl::AttachReplicatedLog). Transactions commit through
// the ordinary Transaction::Commit on a committer thread; the test thread drives the group (step,
// then Pump every replica) and decides every fault, so outcomes depend on the schedule only.
// The test thread starts a commit and waits until it is queued on its replica (or refused)
// before it steps again: no sleeps.
//
// SHARDTX_SEED=N replays seed N of the seeded run; SHARDTX_LEADER_SEEDS=K runs K seeds (default
// 200, a sanitizer build a tenth).
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/log_record.h"
#include "gtest/gtest.h"
#include "replication/shard_machine.h"
#include "replication/shard_replica.h"
#include "replication/simulated_group.h"
#include "shardtx/database.h"
#include "tests/replication/seeded_schedule.h"
#include "txn/database_impl.h"
#include "txn/txn_ids.h"
#include "util/mutex.h"
#include "wal/reader.h"

#ifndef SHARDTX_REPLICATION_SEED_DIVISOR
#define SHARDTX_REPLICATION_SEED_DIVISOR 1
#endif

namespace shardtx::replication {
namespace {

std::string Root(const std::string& name) {
  std::error_code ec;
  const std::string base =
      std::filesystem::is_directory("/dev/shm", ec) ? "/dev/shm" : ::testing::TempDir();
  return absl::StrCat(base, "/shardtx_leader_p", ::getpid(), "/", name);
}

// Removes this process's directory under /dev/shm once every test passed (each test removes
// its own below it; a failed seed keeps its files).
class RemoveProcessRoot : public ::testing::Environment {
 public:
  void TearDown() override {
    if (!::testing::UnitTest::GetInstance()->Passed()) return;
    std::error_code ec;
    std::filesystem::remove_all(std::filesystem::path(Root("x")).parent_path(), ec);
  }
};
[[maybe_unused]] ::testing::Environment* const kRemoveProcessRoot =
    ::testing::AddGlobalTestEnvironment(new RemoveProcessRoot);

std::string AddressOf(unsigned server) { return absl::StrCat("10.0.0.", server + 1, ":7000"); }

Options DbOptions(const std::string& path, uint32_t shards = 1) {
  Options o;
  o.path = path;
  o.num_shards = shards;
  o.log_layout = Options::LogLayout::kPerShard;
  o.wal_segment_size = 256 << 10;
  o.max_txn_bytes = 64 << 10;
  o.lmdb_map_size = 32ull << 20;
  o.checkpoint_on_close = false;  // keep the WAL for the index check
  return o;
}

txn::DatabaseImpl* Impl(Database* db) { return static_cast<txn::DatabaseImpl*>(db); }

// One commit running Transaction::Commit on its own thread (or, an outcome job, one
// Database::GetOutcome(ask) call).
struct CommitJob {
  std::string label;
  unsigned server = 0;
  std::vector<std::pair<std::string, std::optional<std::string>>> writes;
  std::thread thread;
  bool done = false;  // under Cluster::mu_
  absl::Status status;
  uint64_t id = 0;              // the transaction's id (a commit job), under Cluster::mu_
  std::optional<uint64_t> ask;  // an outcome job: the id asked about
  Database::Outcome outcome = Database::Outcome::kUnknown;
};

class Cluster {
 public:
  // Opens n databases under `root` (removed first) and their group; no leader yet.
  // With `shards`, only shard 0 of each database is replicated.
  Cluster(const std::string& root, unsigned n, uint64_t seed, uint32_t shards = 1)
      : root_(root), shards_(shards) {
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
    std::filesystem::create_directories(root, ec);
    std::vector<std::unique_ptr<StateMachine>> machines;
    std::vector<std::string> addresses;
    for (unsigned i = 0; i < n; ++i) addresses.push_back(AddressOf(i));
    for (unsigned i = 0; i < n; ++i) {
      auto db = Database::Open(DbOptions(absl::StrCat(root, "/server", i), shards_));
      if (!db.ok()) {
        error_ = db.status().ToString();
        return;
      }
      dbs_.push_back(std::move(*db));
      incarnations_.push_back(1);
      UseIds(i);
      ShardReplicaOptions ro;
      ro.server = i;
      ro.addresses = addresses;
      ro.on_queued = [this] {
        MutexLock l(&mu_);
        ++queued_;
        cv_.SignalAll();
      };
      auto replica = std::make_unique<ShardReplica>(ro, Impl(dbs_.back().get())->shard(0));
      Impl(dbs_.back().get())->AttachReplicatedLog(0, replica.get());
      replicas_.push_back(replica.get());
      machines.push_back(std::move(replica));
    }
    SimulatedGroupOptions go;
    go.servers = n;
    go.seed = seed;
    // No libraft snapshots: a ShardReplica cannot install one yet (plan step 10).
    go.snapshot_threshold = 1'000'000;
    go.snapshot_trailing = 1'000'000;
    auto group = SimulatedGroup::Open(go, std::move(machines));
    if (!group.ok()) {
      error_ = group.status().ToString();
      return;
    }
    group_ = std::move(*group);
    Pump();
  }

  ~Cluster() {
    CloseGroup();
    JoinAll();
    dbs_.clear();
    std::error_code ec;
    if (remove_) std::filesystem::remove_all(root_, ec);
  }

  const std::string& error() const { return error_; }
  SimulatedGroup& group() { return *group_; }
  ShardReplica& replica(unsigned i) { return *replicas_[i]; }
  Database& db(unsigned i) { return *dbs_[i]; }
  unsigned size() const { return static_cast<unsigned>(dbs_.size()); }
  void KeepFiles() { remove_ = false; }

  // Pumps every replica, then waits until every commit whose outcome its replica decided has
  // returned: what a test sees next depends on the schedule only, not on thread timing.
  void Pump() {
    for (unsigned i = 0; i < replicas_.size(); ++i) {
      if (!frozen_.contains(i)) replicas_[i]->Pump(*group_);
    }
    Settle();
  }
  // A frozen replica is not pumped: it proposes nothing of its queue and keeps the leadership
  // it last published, as a RaftNode's replica does until its loop thread tells it otherwise.
  void Freeze(unsigned server, bool frozen) {
    if (frozen) {
      frozen_.insert(server);
    } else {
      frozen_.erase(server);
    }
  }
  void Settle() {
    uint64_t decided = 0;
    for (ShardReplica* r : replicas_) decided += r->committed() + r->unknown() + r->refused();
    MutexLock l(&mu_);
    while (finished_ < decided + returned_unqueued_) cv_.Wait();
  }
  void Step() {
    group_->Step();
    Pump();
  }
  void StepFor(uint64_t ms) {
    const uint64_t end = group_->NowMs() + ms;
    while (group_->NowMs() < end) Step();
  }
  bool StepUntil(const std::function<bool()>& done, uint64_t timeout_ms) {
    const uint64_t end = group_->NowMs() + timeout_ms;
    while (!done()) {
      if (group_->NowMs() >= end) return false;
      Step();
    }
    return true;
  }
  absl::Status Elect(unsigned server) {
    absl::Status s = group_->Elect(server);
    Pump();
    return s;
  }

  // Starts a commit of `writes` on `server`'s database and returns once it is queued on its
  // replica for the group (then proposes it: in flight) or has returned (refused, aborted).
  CommitJob* StartCommit(unsigned server, const std::string& label,
                         std::vector<std::pair<std::string, std::optional<std::string>>> writes,
                         std::optional<uint64_t> ask = std::nullopt) {
    auto job = std::make_unique<CommitJob>();
    CommitJob* j = job.get();
    j->label = label;
    j->server = server;
    j->writes = std::move(writes);
    j->ask = ask;
    uint64_t before;
    {
      MutexLock l(&mu_);
      before = queued_;
      jobs_.push_back(std::move(job));
    }
    Database* db = dbs_[server].get();
    j->thread = std::thread([this, j, db] {
      if (j->ask.has_value()) {
        const Database::Outcome o = db->GetOutcome(*j->ask);
        MutexLock l(&mu_);
        j->outcome = o;
        j->done = true;
        ++finished_;
        cv_.SignalAll();
        return;
      }
      std::unique_ptr<Transaction> txn = db->Begin();
      {
        MutexLock l(&mu_);
        j->id = txn->id();
      }
      absl::Status s;
      for (const auto& [key, value] : j->writes) {
        s = value.has_value() ? txn->Put(key, *value) : txn->Delete(key);
        if (!s.ok()) break;
      }
      if (s.ok()) s = txn->Commit();
      txn.reset();
      MutexLock l(&mu_);
      j->status = s;
      j->done = true;
      ++finished_;
      cv_.SignalAll();
    });
    {
      MutexLock l(&mu_);
      while (!j->done && queued_ == before) cv_.Wait();
      if (queued_ == before) ++returned_unqueued_;  // refused or aborted before proposing
    }
    Pump();  // proposes it now
    return j;
  }
  bool Done(CommitJob* j) {
    MutexLock l(&mu_);
    return j->done;
  }
  uint64_t IdOf(CommitJob* j) {
    MutexLock l(&mu_);
    return j->id;
  }
  // Database::GetOutcome(id) on `server`, on a thread of its own (a leader proposes a fence
  // entry and waits for it): steps the group until it returns.
  absl::StatusOr<Database::Outcome> OutcomeOn(unsigned server, uint64_t id) {
    CommitJob* j = StartCommit(server, absl::StrCat("outcome of ", id), {}, id);
    if (!StepUntil([&] { return Done(j); }, 30'000)) {
      return absl::DeadlineExceededError("GetOutcome did not return");
    }
    MutexLock l(&mu_);
    return j->outcome;
  }
  // Shard 0's released-transaction table on `server` (also with no group attached, e.g. after
  // CloseCheckReopen).
  engine::ReleasedTxns::State Released(unsigned server, uint64_t id) {
    engine::Shard* s = Impl(dbs_[server].get())->shard(0);
    MutexLock l(s->commit_mu());
    return s->ReleasedTxnLocked(id);
  }
  // Replicated transaction ids on `server`: node server + 1, its incarnation (one more at each
  // reopen, as the node manifest's would be).
  void UseIds(unsigned server) {
    Impl(dbs_[server].get())->UseReplicatedTxnIds(server + 1, incarnations_[server], nullptr);
  }
  absl::Status StatusOf(CommitJob* j) {
    MutexLock l(&mu_);
    return j->status;
  }
  bool AllDone() {
    MutexLock l(&mu_);
    for (const auto& j : jobs_) {
      if (!j->done) return false;
    }
    return true;
  }
  std::vector<CommitJob*> Jobs() {
    MutexLock l(&mu_);
    std::vector<CommitJob*> out;
    for (const auto& j : jobs_) out.push_back(j.get());
    return out;
  }

  // Destroys the group, then the replicas (answering whatever is still waited for).
  void CloseGroup() { group_.reset(); }
  void JoinAll() {
    for (CommitJob* j : Jobs()) {
      if (j->thread.joinable()) j->thread.join();
    }
  }

  // What a new transaction on `server` reads for `key` (nullopt: not found).
  absl::StatusOr<std::optional<std::string>> Read(unsigned server, const std::string& key) {
    std::unique_ptr<Transaction> txn = dbs_[server]->Begin();
    absl::StatusOr<std::string> v = txn->Get(key);
    if (absl::IsNotFound(v.status())) return std::optional<std::string>();
    if (!v.ok()) return v.status();
    return std::optional<std::string>(*v);
  }
  absl::StatusOr<ShardDigest> Digest(unsigned server) {
    return DigestOf(*Impl(dbs_[server].get())->shard(0));
  }
  engine::Lsn LastLsn(unsigned server) {
    engine::Shard* s = Impl(dbs_[server].get())->shard(0);
    MutexLock l(s->commit_mu());
    return s->last_lsn_locked();
  }
  std::string ShardDir(unsigned server) {
    return Impl(dbs_[server].get())->directory().ShardDir(0);
  }

  // Every live server has released as far as the leader `leader`.
  bool CaughtUp(unsigned leader) {
    const uint64_t want = group_->Info(leader).released_index;
    for (unsigned i = 0; i < size(); ++i) {
      if (group_->Info(i).released_index < want) return false;
    }
    return true;
  }

  // Closes the group and every database, checks each shard's WAL (every Raft index at most
  // once, increasing), reopens each database (crash recovery's redo of its kRaftEntry records)
  // and compares its digest with `before`. Returns "" or what failed.
  std::string CloseCheckReopen(const std::vector<ShardDigest>& before) {
    CloseGroup();
    JoinAll();
    std::vector<std::string> dirs;
    for (unsigned i = 0; i < size(); ++i) dirs.push_back(ShardDir(i));
    for (auto& db : dbs_) {
      if (absl::Status s = db->Close(); !s.ok()) return "close: " + s.ToString();
    }
    dbs_.clear();
    for (unsigned i = 0; i < dirs.size(); ++i) {
      auto reader = wal::WalReader::Open(Env::Default(), dirs[i] + "/wal", wal::ReaderOptions{});
      if (!reader.ok()) return reader.status().ToString();
      uint64_t last = 0;
      wal::WalRecord rec;
      while (true) {
        absl::StatusOr<bool> more = (*reader)->Next(&rec);
        if (!more.ok()) return more.status().ToString();
        if (!*more) break;
        if (rec.type != engine::kRaftEntry) {
          return absl::StrCat("server ", i, ": record type ", rec.type, " in a replicated WAL");
        }
        engine::RaftPosition at;
        absl::string_view entry;
        if (!engine::DecodeRaftEntry(rec.payload, &at, &entry)) return "malformed kRaftEntry";
        if (at.index <= last) {
          return absl::StrCat("server ", i, ": raft index ", at.index, " at LSN ", rec.lsn,
                              " after index ", last, " (applied twice)");
        }
        last = at.index;
      }
    }
    for (unsigned i = 0; i < dirs.size(); ++i) {
      auto db = Database::Open(DbOptions(absl::StrCat(root_, "/server", i), shards_));
      if (!db.ok()) return absl::StrCat("reopen server ", i, ": ", db.status().ToString());
      absl::StatusOr<ShardDigest> d = DigestOf(*Impl(db->get())->shard(0));
      if (!d.ok()) return d.status().ToString();
      if (*d != before[i]) {
        return absl::StrCat("server ", i, ": digest after reopening (", d->keys,
                            " keys) differs from before (", before[i].keys, " keys)");
      }
      dbs_.push_back(std::move(*db));
      ++incarnations_[i];
      UseIds(i);
    }
    return "";
  }

 private:
  const std::string root_;
  const uint32_t shards_;
  std::string error_;
  bool remove_ = true;
  std::vector<std::unique_ptr<Database>> dbs_;
  std::vector<uint64_t> incarnations_;
  absl::flat_hash_set<unsigned> frozen_;
  std::vector<ShardReplica*> replicas_;  // owned by group_
  std::unique_ptr<SimulatedGroup> group_;
  Mutex mu_;
  CondVar cv_{&mu_};
  uint64_t queued_ = 0;
  uint64_t finished_ = 0;           // commits returned
  uint64_t returned_unqueued_ = 0;  // of which returned without being queued
  std::vector<std::unique_ptr<CommitJob>> jobs_;
};

using Writes = std::vector<std::pair<std::string, std::optional<std::string>>>;

// Equal digests on every server (and returns them).
std::vector<ShardDigest> ExpectSameDigests(Cluster& c) {
  std::vector<ShardDigest> out;
  for (unsigned i = 0; i < c.size(); ++i) {
    absl::StatusOr<ShardDigest> d = c.Digest(i);
    EXPECT_TRUE(d.ok()) << d.status();
    out.push_back(d.ok() ? *d : ShardDigest{});
    EXPECT_EQ(out[i], out[0]) << "server " << i << " has " << out[i].keys << " keys, server 0 "
                              << out[0].keys;
  }
  return out;
}

// Steps until `job` answered (20 s simulated at most), calling `check` before every step.
void StepUntilDone(Cluster& c, CommitJob* job, const std::function<void()>& check) {
  EXPECT_TRUE(c.StepUntil(
      [&] {
        check();
        return c.Done(job);
      },
      20'000));
}

// Server 0 (the leader) commits `writes`; followers 1 and 2 store the entry but their answers
// never reach it, and then it is cut off. Returns the job once it answered (kUnknown), calling
// `check` before every step meanwhile.
CommitJob* CommitOnlyTheFollowersHold(Cluster& c, const std::string& label, Writes writes,
                                      const std::function<void()>& check) {
  c.group().Saturate(1, 0);
  c.group().Saturate(2, 0);
  CommitJob* job = c.StartCommit(0, label, std::move(writes));
  const uint64_t index = c.group().Info(0).last_index;
  EXPECT_TRUE(c.StepUntil(
      [&] {
        return c.group().Info(1).last_index >= index && c.group().Info(2).last_index >= index;
      },
      5'000));
  c.group().Isolate(0);
  StepUntilDone(c, job, check);
  return job;
}

// Server 0 (the leader) is cut off, then commits `writes`: the entry never leaves it. Returns
// the job once it answered (kUnknown), calling `check` before every step meanwhile.
CommitJob* CommitOnAnIsolatedLeader(Cluster& c, const std::string& label, Writes writes,
                                    const std::function<void()>& check) {
  c.group().Isolate(0);
  CommitJob* job = c.StartCommit(0, label, std::move(writes));
  StepUntilDone(c, job, check);
  return job;
}

TEST(LeaderCommit, AcknowledgedOnlyOnceAMajorityHoldsIt) {
  Cluster c(Root("majority"), 3, 1);
  ASSERT_EQ(c.error(), "");
  ASSERT_TRUE(c.Elect(0).ok());
  // Both followers cut off the leader, in both directions.
  for (unsigned f : {1u, 2u}) {
    c.group().Disconnect(0, f);
    c.group().Disconnect(f, 0);
  }
  CommitJob* job = c.StartCommit(0, "a", {{"a", "1"}, {"b", "2"}});
  // Less than an election timeout: the leader keeps leading, alone.
  for (int i = 0; i < 400 && c.group().NowMs() < 600; ++i) {
    c.Step();
    ASSERT_FALSE(c.Done(job)) << "acknowledged without a majority: " << c.StatusOf(job);
    auto v = c.Read(0, "a");
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_FALSE(v->has_value()) << "visible on the leader before a majority holds it";
  }
  EXPECT_FALSE(c.Done(job));
  EXPECT_EQ(c.replica(0).committed(), 0u);
  for (unsigned f : {1u, 2u}) {
    c.group().Reconnect(0, f);
    c.group().Reconnect(f, 0);
  }
  ASSERT_TRUE(c.StepUntil([&] { return c.Done(job); }, 5'000));
  EXPECT_TRUE(c.StatusOf(job).ok()) << c.StatusOf(job);
  ASSERT_TRUE(c.StepUntil([&] { return c.CaughtUp(0); }, 5'000));
  for (unsigned i = 0; i < 3; ++i) {
    auto v = c.Read(i, "b");
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(*v, std::optional<std::string>("2")) << "server " << i;
  }
  EXPECT_EQ(c.replica(0).committed(), 1u);
  EXPECT_EQ(c.replica(0).redone(), 0u);  // the leader installed it at commit, never redid it
  EXPECT_EQ(c.replica(1).redone(), 1u);
  EXPECT_EQ(c.replica(2).redone(), 1u);
  std::vector<ShardDigest> digests = ExpectSameDigests(c);
  EXPECT_EQ(digests[0].keys, 2u);
  EXPECT_EQ(c.CloseCheckReopen(digests), "");
}

// The entry never left the isolated leader: kUnknown, never visible there, and after the heal
// nobody has it.
TEST(LeaderCommit, IsolatedLeaderAnswersUnknownAndItsWritesStayInvisible) {
  Cluster c(Root("isolated"), 3, 2);
  ASSERT_EQ(c.error(), "");
  ASSERT_TRUE(c.Elect(0).ok());
  CommitJob* base = c.StartCommit(0, "base", {{"k", "base"}});
  ASSERT_TRUE(c.StepUntil([&] { return c.Done(base); }, 5'000));
  ASSERT_TRUE(c.StatusOf(base).ok()) << c.StatusOf(base);
  CommitJob* job = CommitOnAnIsolatedLeader(c, "x", {{"k", "lost"}, {"x", "lost"}}, [&] {
    auto v = c.Read(0, "k");
    EXPECT_TRUE(v.ok() && *v == std::optional<std::string>("base"))
        << "the unknown commit's write is visible on the old leader";
  });
  ASSERT_TRUE(c.Done(job));
  const absl::Status s = c.StatusOf(job);
  EXPECT_TRUE(absl::IsUnknown(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "term ")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "index ")) << s;
  auto x = c.Read(0, "x");
  ASSERT_TRUE(x.ok());
  EXPECT_FALSE(x->has_value());
  // A new leader among the others commits on.
  ASSERT_TRUE(c.StepUntil([&] { return c.group().Leader().has_value(); }, 20'000));
  const unsigned leader = *c.group().Leader();
  ASSERT_NE(leader, 0u);
  CommitJob* next = c.StartCommit(leader, "y", {{"y", "new"}});
  ASSERT_TRUE(c.StepUntil([&] { return c.Done(next); }, 5'000));
  EXPECT_TRUE(c.StatusOf(next).ok()) << c.StatusOf(next);
  c.group().Rejoin(0);
  ASSERT_TRUE(c.StepUntil([&] { return c.CaughtUp(leader); }, 10'000));
  c.StepFor(500);
  for (unsigned i = 0; i < 3; ++i) {
    auto v = c.Read(i, "k");
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(*v, std::optional<std::string>("base")) << "server " << i;
    auto y = c.Read(i, "y");
    ASSERT_TRUE(y.ok());
    EXPECT_EQ(*y, std::optional<std::string>("new")) << "server " << i;
  }
  EXPECT_EQ(c.replica(0).unknown(), 1u);
  EXPECT_EQ(c.replica(0).failures(), 0u) << c.replica(0).first_error();
  EXPECT_EQ(c.CloseCheckReopen(ExpectSameDigests(c)), "");
}

// The followers stored the entry but the leader never heard so: kUnknown on the old leader, the
// new leader commits it, and the old leader applies it by redo once it rejoins, exactly once.
TEST(LeaderCommit, UnknownEntryThatCommitsLaterIsRedoneOnTheOldLeader) {
  Cluster c(Root("later"), 3, 3);
  ASSERT_EQ(c.error(), "");
  ASSERT_TRUE(c.Elect(0).ok());
  CommitJob* job = CommitOnlyTheFollowersHold(c, "x", {{"x", "maybe"}}, [&] {
    auto v = c.Read(0, "x");
    EXPECT_TRUE(v.ok() && !v->has_value()) << "visible on the old leader while unknown";
  });
  ASSERT_TRUE(c.Done(job));
  EXPECT_TRUE(absl::IsUnknown(c.StatusOf(job))) << c.StatusOf(job);
  ASSERT_TRUE(c.StepUntil([&] { return c.group().Leader().has_value(); }, 20'000));
  const unsigned leader = *c.group().Leader();
  ASSERT_NE(leader, 0u);
  // The new leader's term-start entry committed the old entry.
  auto on_leader = c.Read(leader, "x");
  ASSERT_TRUE(on_leader.ok());
  EXPECT_EQ(*on_leader, std::optional<std::string>("maybe"));
  c.group().Rejoin(0);
  ASSERT_TRUE(c.StepUntil([&] { return c.CaughtUp(leader); }, 10'000));
  c.StepFor(500);
  for (unsigned i = 0; i < 3; ++i) {
    auto v = c.Read(i, "x");
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(*v, std::optional<std::string>("maybe")) << "server " << i;
  }
  EXPECT_EQ(c.replica(0).committed(), 0u);
  EXPECT_EQ(c.replica(0).redone(), 1u);  // its own entry, as a follower
  EXPECT_EQ(c.replica(0).failures(), 0u) << c.replica(0).first_error();
  // A commit on the new leader goes on above the old entry's timestamp.
  CommitJob* next = c.StartCommit(leader, "z", {{"x", "after"}});
  ASSERT_TRUE(c.StepUntil([&] { return c.Done(next); }, 5'000));
  EXPECT_TRUE(c.StatusOf(next).ok()) << c.StatusOf(next);
  ASSERT_TRUE(c.StepUntil([&] { return c.CaughtUp(leader); }, 10'000));
  for (unsigned i = 0; i < 3; ++i) {
    auto v = c.Read(i, "x");
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(*v, std::optional<std::string>("after")) << "server " << i;
  }
  EXPECT_EQ(c.CloseCheckReopen(ExpectSameDigests(c)), "");
}

// A disk fault on the leader as it appends the entry: kUnknown (libraft may hold it), the writes
// never visible there while unknown, and all replicas agree after the heal.
TEST(LeaderCommit, LeaderDiskFaultAnswersUnknown) {
  Cluster c(Root("iofault"), 3, 7);
  ASSERT_EQ(c.error(), "");
  ASSERT_TRUE(c.Elect(0).ok());
  c.group().InjectIoFault(0, 0, 1);
  CommitJob* job = c.StartCommit(0, "x", {{"x", "faulted"}});
  ASSERT_TRUE(c.StepUntil(
      [&] {
        auto v = c.Read(0, "x");
        EXPECT_TRUE(v.ok() && !v->has_value()) << "visible on the leader while unknown";
        return c.Done(job);
      },
      20'000));
  EXPECT_TRUE(absl::IsUnknown(c.StatusOf(job))) << c.StatusOf(job);
  EXPECT_TRUE(absl::StrContains(c.StatusOf(job).message(), "index ")) << c.StatusOf(job);
  ASSERT_TRUE(c.StepUntil([&] { return c.group().Leader().has_value(); }, 20'000));
  const unsigned leader = *c.group().Leader();
  CommitJob* next = c.StartCommit(leader, "y", {{"y", "after"}});
  ASSERT_TRUE(c.StepUntil([&] { return c.Done(next); }, 10'000));
  EXPECT_TRUE(c.StatusOf(next).ok()) << c.StatusOf(next);
  ASSERT_TRUE(c.StepUntil([&] { return c.CaughtUp(leader); }, 10'000));
  for (unsigned i = 0; i < 3; ++i) {
    EXPECT_EQ(c.replica(i).failures(), 0u) << c.replica(i).first_error();
  }
  EXPECT_EQ(c.CloseCheckReopen(ExpectSameDigests(c)), "");
}

TEST(LeaderCommit, FollowerRefusesNamingTheLeaderWithNoEffect) {
  Cluster c(Root("follower"), 3, 4);
  ASSERT_EQ(c.error(), "");
  ASSERT_TRUE(c.Elect(0).ok());
  CommitJob* base = c.StartCommit(0, "base", {{"k", "base"}});
  ASSERT_TRUE(c.StepUntil([&] { return c.Done(base) && c.CaughtUp(0); }, 5'000));
  ASSERT_TRUE(c.StatusOf(base).ok());
  absl::StatusOr<ShardDigest> before = c.Digest(1);
  ASSERT_TRUE(before.ok());
  const engine::Lsn lsn = c.LastLsn(1);
  const uint64_t last_index = c.group().Info(0).last_index;
  const uint64_t visible = Impl(&c.db(1))->oracle().visible();
  // On this thread: the refusal is synchronous.
  std::unique_ptr<Transaction> txn = c.db(1).Begin();
  ASSERT_TRUE(txn->Put("k", "follower").ok());
  const absl::Status s = txn->Commit();
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "leader is server 0 at " + AddressOf(0))) << s;
  c.StepFor(300);
  absl::StatusOr<ShardDigest> after = c.Digest(1);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, *before);
  EXPECT_EQ(c.LastLsn(1), lsn);
  EXPECT_EQ(c.group().Info(0).last_index, last_index);
  EXPECT_EQ(Impl(&c.db(1))->oracle().visible(), visible);
  EXPECT_EQ(c.replica(1).refused() + c.replica(1).unknown(), 0u);
  for (unsigned i = 0; i < 3; ++i) {
    auto v = c.Read(i, "k");
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(*v, std::optional<std::string>("base"));
  }
}

TEST(LeaderCommit, LeaderNotReadyRefusesWithNoEffect) {
  Cluster c(Root("notready"), 3, 5);
  ASSERT_EQ(c.error(), "");
  ASSERT_TRUE(c.Elect(0).ok());
  c.group().Isolate(0);
  // A new leader among 1 and 2, cut off from the other the moment it leads: its term-start
  // entry cannot commit.
  std::optional<unsigned> fresh;
  ASSERT_TRUE(c.StepUntil(
      [&] {
        for (unsigned i : {1u, 2u}) {
          if (c.group().Info(i).role == Role::kLeader) fresh = i;
        }
        return fresh.has_value();
      },
      20'000));
  c.group().Isolate(*fresh);
  c.Pump();
  ASSERT_FALSE(c.group().Info(*fresh).ready);
  const engine::Lsn lsn = c.LastLsn(*fresh);
  const uint64_t last_index = c.group().Info(*fresh).last_index;
  std::unique_ptr<Transaction> txn = c.db(*fresh).Begin();
  ASSERT_TRUE(txn->Put("k", "v").ok());
  const absl::Status s = txn->Commit();
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "not ready")) << s;
  EXPECT_TRUE(absl::StrContains(
      s.message(), absl::StrCat("leader is server ", *fresh, " at ", AddressOf(*fresh))))
      << s;
  EXPECT_EQ(c.LastLsn(*fresh), lsn);
  EXPECT_EQ(c.group().Info(*fresh).last_index, last_index);
}

// Cross-shard commits, named prepares and CommitAsync on a database with a replicated shard are
// not built yet (issue 17); its unreplicated shard commits as before.
TEST(LeaderCommit, WhatIsNotBuiltYetSaysSo) {
  Cluster c(Root("unimplemented"), 3, 6, /*shards=*/2);
  ASSERT_EQ(c.error(), "");
  ASSERT_TRUE(c.Elect(0).ok());
  Database& db = c.db(0);
  // Keys of each shard.
  std::string on0, on1;
  for (int i = 0; on0.empty() || on1.empty(); ++i) {
    std::string k = absl::StrCat("key", i);
    (Impl(&db)->partitioner().ShardOf(k) == 0 ? on0 : on1) = k;
  }
  auto txn = db.Begin();
  ASSERT_TRUE(txn->Put(on0, "a").ok());
  ASSERT_TRUE(txn->Put(on1, "b").ok());
  EXPECT_TRUE(absl::IsUnimplemented(txn->Commit()));
  txn = db.Begin();
  ASSERT_TRUE(txn->Put(on0, "a").ok());
  EXPECT_TRUE(absl::IsUnimplemented(txn->Prepare("p")));
  txn = db.Begin();
  ASSERT_TRUE(txn->Put(on0, "a").ok());
  EXPECT_TRUE(absl::IsUnimplemented(txn->CommitAsync([](absl::Status) {})));
  // The unreplicated shard commits as before, on any server.
  txn = c.db(1).Begin();
  ASSERT_TRUE(txn->Put(on1, "unreplicated").ok());
  EXPECT_TRUE(txn->Commit().ok());
  txn = c.db(1).Begin();
  auto v = txn->Get(on1);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, "unreplicated");
  txn.reset();
  EXPECT_EQ(c.group().Info(0).last_index, c.group().Info(1).last_index);
  auto on0_value = c.Read(0, on0);
  ASSERT_TRUE(on0_value.ok());
  EXPECT_FALSE(on0_value->has_value());
}

// ---- Step 6: transaction ids and outcomes after a kUnknown ----

using Outcome = Database::Outcome;
using Released = engine::ReleasedTxns::State;

// GetOutcome(id) on `server` (stepping the group meanwhile) is `want`.
void ExpectOutcome(Cluster& c, unsigned server, uint64_t id, Outcome want) {
  absl::StatusOr<Outcome> o = c.OutcomeOn(server, id);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(*o, want) << "GetOutcome(" << id << ") on server " << server;
}

// The followers stored the entry, the leader never heard so: kUnknown; the new leader answers
// kCommitted (its term-start entry committed it), the follower and, once it rejoins, the old
// leader too (their tables hold it); cut off, the old leader never says more than kUnknown.
// After every database is reopened (one of them checkpointed first, so its table comes from the
// store, the others' from the WAL's redo) every replica's table still holds it.
TEST(LeaderOutcome, CommittedOnTheNewLeaderWhenTheFollowersHeldTheEntry) {
  Cluster c(Root("outcome_committed"), 3, 3);
  ASSERT_EQ(c.error(), "");
  ASSERT_TRUE(c.Elect(0).ok());
  CommitJob* job = CommitOnlyTheFollowersHold(c, "x", {{"x", "maybe"}}, [] {});
  ASSERT_TRUE(c.Done(job));
  ASSERT_TRUE(absl::IsUnknown(c.StatusOf(job))) << c.StatusOf(job);
  const uint64_t id = c.IdOf(job);
  EXPECT_EQ(txn::TxnIds::NodeOf(id), 1u);
  EXPECT_EQ(txn::TxnIds::IncarnationOf(id), 1u);
  ExpectOutcome(c, 0, id, Outcome::kUnknown);
  ASSERT_TRUE(c.StepUntil([&] { return c.group().Leader().has_value(); }, 20'000));
  const unsigned leader = *c.group().Leader();
  ASSERT_NE(leader, 0u);
  ExpectOutcome(c, leader, id, Outcome::kCommitted);
  const unsigned follower = leader == 1 ? 2 : 1;
  ASSERT_TRUE(c.StepUntil([&] { return c.Released(follower, id) == Released::kReleased; }, 5'000));
  ExpectOutcome(c, follower, id, Outcome::kCommitted);
  c.group().Rejoin(0);
  ASSERT_TRUE(c.StepUntil([&] { return c.CaughtUp(leader); }, 10'000));
  EXPECT_EQ(c.Released(0, id), Released::kReleased);  // its own entry, redone as a follower
  ExpectOutcome(c, 0, id, Outcome::kCommitted);
  ASSERT_TRUE(c.db(leader).Checkpoint().ok());
  EXPECT_EQ(c.CloseCheckReopen(ExpectSameDigests(c)), "");
  for (unsigned i = 0; i < 3; ++i) {
    EXPECT_EQ(c.Released(i, id), Released::kReleased) << "server " << i << " after reopening";
  }
}

// The entry never left the isolated leader: kUnknown; the new leader answers kAborted (final:
// nobody ever has the key), a follower kUnknown (GetOutcomeOfKey: kUnavailable naming the
// leader). Commits after it, one before a checkpoint and one after, and a reopen of every
// database: the tables agree (the aborted id in none, the others in all).
TEST(LeaderOutcome, AbortedOnTheNewLeaderWhenTheFollowersDidNotHoldTheEntry) {
  Cluster c(Root("outcome_aborted"), 3, 2);
  ASSERT_EQ(c.error(), "");
  ASSERT_TRUE(c.Elect(0).ok());
  CommitJob* base = c.StartCommit(0, "base", {{"k", "base"}});
  ASSERT_TRUE(c.StepUntil([&] { return c.Done(base); }, 5'000));
  ASSERT_TRUE(c.StatusOf(base).ok()) << c.StatusOf(base);
  CommitJob* job = CommitOnAnIsolatedLeader(c, "x", {{"x", "lost"}}, [] {});
  ASSERT_TRUE(c.Done(job));
  ASSERT_TRUE(absl::IsUnknown(c.StatusOf(job))) << c.StatusOf(job);
  const uint64_t id = c.IdOf(job);
  EXPECT_NE(id, c.IdOf(base));
  ASSERT_TRUE(c.StepUntil([&] { return c.group().Leader().has_value(); }, 20'000));
  const unsigned leader = *c.group().Leader();
  ASSERT_NE(leader, 0u);
  ExpectOutcome(c, leader, id, Outcome::kAborted);
  const unsigned follower = leader == 1 ? 2 : 1;
  ExpectOutcome(c, follower, id, Outcome::kUnknown);
  absl::StatusOr<Outcome> of_key = c.db(follower).GetOutcomeOfKey(id, "x");
  EXPECT_TRUE(absl::IsUnavailable(of_key.status())) << of_key.status();
  EXPECT_TRUE(absl::StrContains(of_key.status().message(), absl::StrCat("leader is server ", leader,
                                                                        " at ", AddressOf(leader))))
      << of_key.status();
  c.group().Rejoin(0);
  ASSERT_TRUE(c.StepUntil([&] { return c.CaughtUp(leader); }, 10'000));
  c.StepFor(500);
  for (unsigned i = 0; i < 3; ++i) {
    auto v = c.Read(i, "x");
    ASSERT_TRUE(v.ok());
    EXPECT_FALSE(v->has_value()) << "server " << i;
  }
  ExpectOutcome(c, leader, id, Outcome::kAborted);
  CommitJob* before_checkpoint = c.StartCommit(leader, "y", {{"y", "1"}});
  ASSERT_TRUE(c.StepUntil([&] { return c.Done(before_checkpoint) && c.CaughtUp(leader); }, 5'000));
  ASSERT_TRUE(c.StatusOf(before_checkpoint).ok()) << c.StatusOf(before_checkpoint);
  for (unsigned i = 0; i < 3; ++i) ASSERT_TRUE(c.db(i).Checkpoint().ok());
  CommitJob* after_checkpoint = c.StartCommit(leader, "z", {{"z", "1"}});
  ASSERT_TRUE(c.StepUntil([&] { return c.Done(after_checkpoint) && c.CaughtUp(leader); }, 5'000));
  ASSERT_TRUE(c.StatusOf(after_checkpoint).ok()) << c.StatusOf(after_checkpoint);
  EXPECT_EQ(txn::TxnIds::NodeOf(c.IdOf(after_checkpoint)), leader + 1);
  for (unsigned i = 0; i < 3; ++i) {  // proposers completed them, the others redid them
    EXPECT_EQ(c.Released(i, c.IdOf(base)), Released::kReleased) << "server " << i;
    EXPECT_EQ(c.Released(i, c.IdOf(after_checkpoint)), Released::kReleased) << "server " << i;
  }
  EXPECT_EQ(c.CloseCheckReopen(ExpectSameDigests(c)), "");
  for (unsigned i = 0; i < 3; ++i) {
    EXPECT_EQ(c.Released(i, id), Released::kNotReleased) << "server " << i;
    EXPECT_EQ(c.Released(i, c.IdOf(base)), Released::kReleased) << "server " << i;
    EXPECT_EQ(c.Released(i, c.IdOf(before_checkpoint)), Released::kReleased) << "server " << i;
    EXPECT_EQ(c.Released(i, c.IdOf(after_checkpoint)), Released::kReleased) << "server " << i;
  }
}

// A deposed leader that still believes it leads (its replica has not yet heard that its term
// ended) does not hold a transaction the new leader committed: it must not answer kAborted. Its
// fence entry cannot commit, so it answers kUnknown.
TEST(LeaderOutcome, DeposedLeaderThatStillBelievesItLeadsNeverSaysAborted) {
  Cluster c(Root("outcome_deposed"), 3, 11);
  ASSERT_EQ(c.error(), "");
  ASSERT_TRUE(c.Elect(0).ok());
  c.Freeze(0, true);
  c.group().Isolate(0);
  unsigned fresh = 0;
  ASSERT_TRUE(c.StepUntil(
      [&] {
        for (unsigned i : {1u, 2u}) {
          if (c.group().Info(i).role == Role::kLeader && c.group().Info(i).ready) fresh = i;
        }
        return fresh != 0;
      },
      20'000));
  ASSERT_TRUE(c.replica(0).CheckLeader().ok()) << "server 0 should still believe it leads";
  CommitJob* job = c.StartCommit(fresh, "x", {{"x", "new"}});
  ASSERT_TRUE(c.StepUntil([&] { return c.Done(job); }, 5'000));
  ASSERT_TRUE(c.StatusOf(job).ok()) << c.StatusOf(job);
  c.Freeze(0, false);  // pumped again once the question is queued
  ExpectOutcome(c, 0, c.IdOf(job), Outcome::kUnknown);
  ExpectOutcome(c, fresh, c.IdOf(job), Outcome::kCommitted);
}

// ---- The seeded run ----

struct SeedTotals {
  uint64_t commits = 0, acked = 0, unknown = 0, unavailable = 0, aborted = 0, other = 0;
  uint64_t redone = 0;
  uint64_t unknown_committed = 0;  // answered kUnknown, committed after all
  uint64_t checkpoints = 0;
  // GetOutcome on the healed cluster's leader for each kUnknown commit.
  uint64_t outcome_committed = 0, outcome_aborted = 0, outcome_own = 0;
};

std::string DescribeCluster(Cluster& c) {
  std::string out;
  for (unsigned i = 0; i < c.size(); ++i) {
    ServerInfo info = c.group().Info(i);
    ShardReplica& r = c.replica(i);
    absl::StrAppend(&out, "\n  server ", i, info.alive ? "" : " (dead)", " role ",
                    static_cast<int>(info.role), info.ready ? " ready" : "", " term ", info.term,
                    " released ", info.released_index, " committed ", r.committed(), " unknown ",
                    r.unknown(), " refused ", r.refused(), " redone ", r.redone(), " failures ",
                    r.failures(), " ", r.first_error().ToString());
  }
  return out;
}

// Runs one seed; returns "" or what failed.
std::string RunSeed(uint64_t seed, SeedTotals* totals) {
  Rng rng(seed * 6364136223846793005ull + 1442695040888963407ull);
  const std::string root = Root(absl::StrCat("seed", seed));
  Cluster c(root, 3, seed);
  if (!c.error().empty()) return c.error();
  if (absl::Status s = c.Elect(rng.In(0, 2)); !s.ok()) return s.ToString();
  const unsigned actions = rng.In(10, 40);
  unsigned n = 0;
  auto commit = [&](unsigned server) {
    const std::string label = absl::StrCat("c", n++);
    Writes w = {{"key/" + label, "value of " + label}};
    if (rng.Chance(30)) w.push_back({"hot", label});
    const std::string shared = absl::StrCat("shared", rng.In(0, 3));
    if (rng.Chance(25)) {
      w.push_back({shared, std::nullopt});
    } else {
      w.push_back({shared, label});
    }
    c.StartCommit(server, label, std::move(w));
  };
  for (unsigned a = 0; a < actions; ++a) {
    const unsigned what = rng.In(1, 100);
    if (what <= 55) {
      std::optional<unsigned> leader = c.group().Leader();
      const unsigned server = leader.has_value() && rng.Chance(80) ? *leader : rng.In(0, 2);
      commit(server);
    } else if (what <= 75) {
      c.StepFor(rng.In(1, 400));
    } else if (what <= 83) {
      c.group().Isolate(rng.In(0, 2));
    } else if (what <= 88) {
      const unsigned from = rng.In(0, 2), to = (from + rng.In(1, 2)) % 3;
      c.group().Saturate(from, to);
    } else if (what <= 93) {
      c.group().Kill(rng.In(0, 2));
    } else if (what <= 96) {
      // A checkpoint (LMDB, the applied Raft position, WAL truncation) on a server with no
      // commit of its own waiting: the checkpoint waits for what it froze to be visible, and
      // only this thread can step the group.
      const unsigned server = rng.In(0, 2);
      if (c.replica(server).waiting() == 0) {
        if (absl::Status s = c.db(server).Checkpoint(); !s.ok()) return s.ToString();
        totals->checkpoints++;
      }
    } else {
      c.group().HealAll();
    }
    c.StepFor(rng.In(0, 60));
  }
  // Heal; a closing commit acknowledged by a leader and released everywhere.
  c.group().HealAll();
  bool closed = false;
  for (int attempt = 0; attempt < 5 && !closed; ++attempt) {
    if (!c.StepUntil([&] { return c.group().Leader().has_value(); }, 30'000)) {
      return "no leader after healing" + DescribeCluster(c);
    }
    const unsigned leader = *c.group().Leader();
    CommitJob* final_job = c.StartCommit(leader, "final", {{"final", absl::StrCat(attempt)}});
    if (!c.StepUntil([&] { return c.Done(final_job); }, 30'000)) {
      return "the closing commit did not complete" + DescribeCluster(c);
    }
    if (!c.StatusOf(final_job).ok()) continue;
    if (!c.StepUntil([&] { return c.CaughtUp(leader); }, 30'000)) {
      return "servers did not catch up with the leader" + DescribeCluster(c);
    }
    closed = true;
  }
  if (!closed) return "no closing commit in 5 attempts" + DescribeCluster(c);
  if (!c.StepUntil([&] { return c.AllDone(); }, 30'000)) {
    return "commits still waiting after the heal" + DescribeCluster(c);
  }
  // Every replica: no failure; the same digest; every acknowledged commit's key there; none of
  // a commit refused or aborted (no effect).
  for (unsigned i = 0; i < 3; ++i) {
    if (c.replica(i).failures() != 0) {
      return absl::StrCat("server ", i, " failed") + DescribeCluster(c);
    }
  }
  std::vector<ShardDigest> digests;
  for (unsigned i = 0; i < 3; ++i) {
    absl::StatusOr<ShardDigest> d = c.Digest(i);
    if (!d.ok()) return d.status().ToString();
    digests.push_back(*d);
    if (*d != digests[0]) {
      return absl::StrCat("server ", i, "'s digest (", d->keys, " keys) differs from server 0's (",
                          digests[0].keys, " keys)") +
             DescribeCluster(c);
    }
  }
  struct Asked {
    CommitJob* job;
    bool present;
  };
  std::vector<Asked> asked;
  absl::flat_hash_set<uint64_t> ids;
  for (CommitJob* j : c.Jobs()) {
    if (j->label == "final" || j->ask.has_value()) continue;
    if (!ids.insert(c.IdOf(j)).second) {
      return absl::StrCat("commit ", j->label, " has the id of an earlier one: ", c.IdOf(j));
    }
    const absl::Status s = c.StatusOf(j);
    totals->commits++;
    bool must = false, must_not = false;
    if (s.ok()) {
      totals->acked++;
      must = true;
    } else if (absl::IsUnknown(s)) {
      totals->unknown++;
    } else if (absl::IsUnavailable(s)) {
      totals->unavailable++;
      must_not = true;
    } else if (absl::IsAborted(s)) {
      totals->aborted++;
      must_not = true;
    } else {
      totals->other++;
      return absl::StrCat("commit ", j->label, " on server ", j->server, ": ", s.ToString());
    }
    for (unsigned i = 0; i < 3; ++i) {
      auto v = c.Read(i, "key/" + j->label);
      if (!v.ok()) return v.status().ToString();
      if (i == 0 && absl::IsUnknown(s) && v->has_value()) totals->unknown_committed++;
      if (i == 0) asked.push_back({j, v->has_value()});
      if (must && *v != std::optional<std::string>("value of " + j->label)) {
        return absl::StrCat("acknowledged commit ", j->label, " (on server ", j->server,
                            ") missing on server ", i) +
               DescribeCluster(c);
      }
      if (must_not && v->has_value()) {
        return absl::StrCat("commit ", j->label, " on server ", j->server, " failed with ",
                            s.ToString(), " but is present on server ", i) +
               DescribeCluster(c);
      }
    }
  }
  for (unsigned i = 0; i < 3; ++i) totals->redone += c.replica(i).redone();
  // Every kUnknown commit: GetOutcome on the leader agrees with whether its key is present
  // (kUnknown only for the leader's own ids: it may still propose them).
  for (const Asked& a : asked) {
    if (!absl::IsUnknown(c.StatusOf(a.job))) continue;
    std::optional<unsigned> leader = c.group().Leader();
    if (!leader.has_value()) return "no leader to ask" + DescribeCluster(c);
    absl::StatusOr<Database::Outcome> o = c.OutcomeOn(*leader, c.IdOf(a.job));
    if (!o.ok()) return o.status().ToString();
    const bool own = *leader == a.job->server;
    if (*o == Database::Outcome::kCommitted && a.present) {
      totals->outcome_committed++;
    } else if (*o == Database::Outcome::kAborted && !a.present && !own) {
      totals->outcome_aborted++;
    } else if (*o == Database::Outcome::kUnknown && !a.present && own) {
      totals->outcome_own++;
    } else {
      return absl::StrCat("commit ", a.job->label, " on server ", a.job->server,
                          " (kUnknown; its key ", a.present ? "present" : "absent",
                          "): GetOutcome on leader ", *leader, " says ", static_cast<int>(*o)) +
             DescribeCluster(c);
    }
  }
  std::string failure = c.CloseCheckReopen(digests);
  // Reopened (the tables rebuilt from each store and WAL): every commit's id is released on
  // every replica exactly when its key is present.
  for (const Asked& a : asked) {
    if (!failure.empty()) break;
    for (unsigned i = 0; i < 3; ++i) {
      const bool released = c.Released(i, c.IdOf(a.job)) == engine::ReleasedTxns::State::kReleased;
      if (released != a.present) {
        failure = absl::StrCat("server ", i, " after reopening: commit ", a.job->label, "'s id ",
                               released ? "released" : "not released", " but its key ",
                               a.present ? "present" : "absent");
        break;
      }
    }
  }
  if (!failure.empty()) c.KeepFiles();
  return failure;
}

TEST(LeaderCommit, SeededRunsKeepEveryAcknowledgedCommitOnEveryReplica) {
  uint64_t first = 1, count = 200 / SHARDTX_REPLICATION_SEED_DIVISOR;
  if (const char* s = std::getenv("SHARDTX_SEED"); s != nullptr && *s != '\0') {
    first = std::strtoull(s, nullptr, 10);
    count = 1;
  } else if (const char* k = std::getenv("SHARDTX_LEADER_SEEDS"); k != nullptr && *k != '\0') {
    count = std::strtoull(k, nullptr, 10);
  }
  SeedTotals totals;
  uint64_t failures = 0;
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t seed = first; seed < first + count; ++seed) {
    std::string failure = RunSeed(seed, &totals);
    if (!failure.empty()) {
      ++failures;
      ADD_FAILURE() << "seed " << seed << ": " << failure << " (replay: SHARDTX_SEED=" << seed
                    << ")";
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "seeds %llu-%llu: %llu failures, %.2f s; commits %llu: acked %llu, unknown %llu, "
      "unavailable %llu, aborted %llu; entries redone %llu; unknown then committed %llu; "
      "checkpoints %llu; GetOutcome of unknown: committed %llu, aborted %llu, own %llu\n",
      static_cast<unsigned long long>(first), static_cast<unsigned long long>(first + count - 1),
      static_cast<unsigned long long>(failures), secs,
      static_cast<unsigned long long>(totals.commits),
      static_cast<unsigned long long>(totals.acked),
      static_cast<unsigned long long>(totals.unknown),
      static_cast<unsigned long long>(totals.unavailable),
      static_cast<unsigned long long>(totals.aborted),
      static_cast<unsigned long long>(totals.redone),
      static_cast<unsigned long long>(totals.unknown_committed),
      static_cast<unsigned long long>(totals.checkpoints),
      static_cast<unsigned long long>(totals.outcome_committed),
      static_cast<unsigned long long>(totals.outcome_aborted),
      static_cast<unsigned long long>(totals.outcome_own));
  EXPECT_GT(totals.acked, 0u);
  EXPECT_GT(totals.unknown + totals.unavailable, 0u);
}

}  // namespace
}  // namespace shardtx::replication
