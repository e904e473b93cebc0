// The cluster of the leader commit tests (leader_commit_test.cc, read_fence_test.cc): three
// Databases (one shard each, real WAL and LMDB under /dev/shm) whose shard 0 is replicated through
// a SimulatedGroup of three servers, one ShardReplica per Database
// (DatabaseImpl::AttachReplicatedLog). Transactions commit through the ordinary
// Transaction::Commit on a committer thread each; the test thread drives the group (step, then
// Pump every replica) and decides every fault, so outcomes depend on the schedule only. The test
// thread starts a commit and waits until it is queued on its replica (an entry, or a read-only
// commit waiting for a barrier, or a GetOutcome's fence entry) or has returned, before it steps
// again: no sleeps. Transaction ids are replicated ids (node server + 1, incarnation 1, one more
// at each reopen).
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "engine/log_record.h"
#include "engine/released_txns.h"
#include "gtest/gtest.h"
#include "replication/shard_machine.h"
#include "replication/shard_replica.h"
#include "replication/simulated_group.h"
#include "shardtx/database.h"
#include "txn/database_impl.h"
#include "util/mutex.h"
#include "wal/reader.h"

namespace shardtx::replication {

inline std::string Root(const std::string& name) {
  std::error_code ec;
  const std::string base =
      std::filesystem::is_directory("/dev/shm", ec) ? "/dev/shm" : ::testing::TempDir();
  return absl::StrCat(base, "/shardtx_leader_p", ::getpid(), "/", name);
}

inline std::string AddressOf(unsigned server) {
  return absl::StrCat("10.0.0.", server + 1, ":7000");
}

inline Options DbOptions(const std::string& path, uint32_t shards = 1) {
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

inline txn::DatabaseImpl* Impl(Database* db) { return static_cast<txn::DatabaseImpl*>(db); }

// One commit running Transaction::Commit on its own thread: of `writes`, or of a transaction
// the test began (StartCommitOf: a read-only one); or, an outcome job, one
// Database::GetOutcome(ask) call.
struct CommitJob {
  std::string label;
  unsigned server = 0;
  std::vector<std::pair<std::string, std::optional<std::string>>> writes;
  std::unique_ptr<Transaction> txn;
  bool read_only = false;
  std::string note;  // the test's (what a read-only transaction's snapshot missed)
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
  // With `shards`, only shard 0 of each database is replicated. With `pack`, each replica's
  // Pump packs the commits queued together into one entry (ShardReplicaOptions::pack).
  Cluster(const std::string& root, unsigned n, uint64_t seed, uint32_t shards = 1,
          bool pack = false)
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
      ro.pack = pack;
      ro.on_queued = [this] {
        MutexLock l(&mu_);
        ++queued_;
        cv_.SignalAll();
      };
      ro.on_read_queued = ro.on_queued;
      auto replica = std::make_unique<ShardReplica>(ro, Impl(dbs_.back().get())->shard(0));
      Impl(dbs_.back().get())->AttachReplicatedLog(0, replica.get());
      replicas_.push_back(replica.get());
      machines.push_back(std::move(replica));
    }
    SimulatedGroupOptions go;
    go.servers = n;
    go.seed = seed;
    // No libraft snapshots: these replicas have no snapshot stream to install one from.
    go.snapshot_threshold = 1'000'000;
    go.snapshot_trailing = 1'000'000;
    // TEST ONLY: SHARDTX_REPLICATION_NO_MATCH_FIX=1 runs stock libraft 0.15's match index.
    go.match_index_fix = std::getenv("SHARDTX_REPLICATION_NO_MATCH_FIX") == nullptr;
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
    for (ShardReplica* r : replicas_) {
      decided +=
          r->committed() + r->unknown() + r->refused() + r->reads_confirmed() + r->reads_failed();
    }
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
  // With `ask`, an outcome job instead: GetOutcome(*ask) on `server` (see OutcomeOn).
  CommitJob* StartCommit(unsigned server, const std::string& label,
                         std::vector<std::pair<std::string, std::optional<std::string>>> writes,
                         std::optional<uint64_t> ask = std::nullopt) {
    auto job = std::make_unique<CommitJob>();
    job->label = label;
    job->server = server;
    job->writes = std::move(writes);
    job->ask = ask;
    return Start(std::move(job));
  }
  // The same for `txn`, begun (and used) by the caller on `server`'s database; `read_only`
  // (with the test's `note`) if it wrote nothing: it returns once its commit waits for a barrier,
  // or has returned.
  CommitJob* StartCommitOf(unsigned server, const std::string& label,
                           std::unique_ptr<Transaction> txn, bool read_only = false,
                           std::string note = "") {
    auto job = std::make_unique<CommitJob>();
    job->label = label;
    job->server = server;
    job->txn = std::move(txn);
    job->read_only = read_only;
    job->note = std::move(note);
    return Start(std::move(job));
  }
  CommitJob* StartReadOnlyCommit(unsigned server, const std::string& label,
                                 std::unique_ptr<Transaction> txn, std::string note = "") {
    return StartCommitOf(server, label, std::move(txn), /*read_only=*/true, std::move(note));
  }
  CommitJob* Start(std::unique_ptr<CommitJob> job) {
    CommitJob* j = job.get();
    const unsigned server = j->server;
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
      std::unique_ptr<Transaction> txn = j->txn != nullptr ? std::move(j->txn) : db->Begin();
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
inline std::vector<ShardDigest> ExpectSameDigests(Cluster& c) {
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

}  // namespace shardtx::replication
