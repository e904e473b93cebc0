// The shardtx engine: one Database with num_shards = the run's shards and its log layout; one
// Transaction per benchmark transaction at the run's durability. With EngineSetup::replicas,
// that many replicated Databases in this process (loopback_cluster.h), sessions on node 1.
#include <algorithm>
#include <atomic>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bench/txbench/engine.h"
#include "shardtx/database.h"

namespace txbench {
namespace {

shardtx::Durability ToShardtx(DurabilityMode d) {
  switch (d) {
    case DurabilityMode::kSync:
      return shardtx::Durability::kSync;
    case DurabilityMode::kAsync:
      return shardtx::Durability::kAsync;
    case DurabilityMode::kNone:
      return shardtx::Durability::kNone;
  }
  return shardtx::Durability::kSync;
}

class ShardtxEngine;

class ShardtxSession final : public Session {
 public:
  // On node 1 with the engine's options; or (follower reads, NewSessionOn) on `db` with its own.
  explicit ShardtxSession(ShardtxEngine* engine) : engine_(engine) {}
  ShardtxSession(ShardtxEngine* engine, shardtx::Database* db, const shardtx::TxnOptions& options)
      : engine_(engine), db_(db), options_(options) {}
  void Begin(TxnShape shape) override;
  absl::StatusOr<std::string> Get(const std::string& key) override {
    absl::StatusOr<std::string> v = txn_->Get(key);
    if (!v.ok()) return TooStaleIsAborted(v.status());
    return v;
  }
  absl::StatusOr<std::string> GetForUpdate(const std::string& key) override { return Get(key); }
  absl::Status Put(const std::string& key, absl::string_view value) override {
    return txn_->Put(key, value);
  }
  absl::Status Commit() override;
  absl::Status CommitAsync(std::function<void(absl::Status)> done) override {
    absl::Status s = txn_->CommitAsync(std::move(done));
    txn_.reset();  // the transaction is over; the callback does not need it
    return s;
  }
  void Rollback() override {
    if (txn_ != nullptr) txn_->Rollback().IgnoreError();  // may already be over
    txn_.reset();
  }

 private:
  // A follower read refused because the node could not promise max_staleness: retryable.
  absl::Status TooStaleIsAborted(absl::Status s) const {
    if (!options_.has_value() || !options_->follower_read || !absl::IsUnavailable(s)) return s;
    return absl::AbortedError(absl::StrCat("follower read too stale: ", s.message()));
  }

  ShardtxEngine* const engine_;
  shardtx::Database* const db_ = nullptr;  // nullptr: the engine's node 1
  const std::optional<shardtx::TxnOptions> options_;
  std::unique_ptr<shardtx::Transaction> txn_;
};

class ShardtxEngine final : public Engine {
 public:
  // cluster.dbs[0] serves the sessions; the others (replicated: nodes 2..N) are only settled,
  // counted and closed. Unreplicated: one db, no members.
  ShardtxEngine(LoopbackCluster cluster, const EngineSetup& setup)
      : cluster_(std::move(cluster)),
        dbs_(cluster_.dbs),
        db_(dbs_.front().get()),
        members_(cluster_.members),
        setup_(setup) {
    run_options_.durability = ToShardtx(setup.durability);
    run_durability_ = setup.durability;
    bulk_options_.durability = shardtx::Durability::kNone;
  }
  ~ShardtxEngine() override { Close().IgnoreError(); }

  std::unique_ptr<Session> NewSession() override { return std::make_unique<ShardtxSession>(this); }
  std::unique_ptr<Session> NewSessionOn(int node, bool follower_read,
                                        absl::Duration max_staleness) override {
    if (setup_.replicas == 0 || node < 1 || static_cast<size_t>(node) > dbs_.size()) return nullptr;
    if (!follower_read && node == 1) return NewSession();
    if (!follower_read) return nullptr;  // only node 1 commits and serves linearizable reads
    shardtx::TxnOptions options = run_options_;
    options.follower_read = true;
    options.max_staleness = max_staleness;
    return std::make_unique<ShardtxSession>(this, dbs_[node - 1].get(), options);
  }
  absl::Status SetBulkLoad(bool on) override {
    bulk_ = on;
    if (on) return absl::OkStatus();
    return SettleDeferredWork();  // durable, and the run starts with the data in LMDB
  }
  // Every replica checkpoints: they share the disk, and each one's LMDB writes are its own.
  absl::Status SettleDeferredWork() override {
    absl::Status result;
    for (auto& db : dbs_) {
      absl::Status s = db->Checkpoint();
      if (result.ok()) result = s;
    }
    return result;
  }
  absl::Status SetRunDurability(DurabilityMode durability) override {
    run_durability_ = durability;
    run_options_.durability = ToShardtx(durability);
    return absl::OkStatus();
  }
  std::optional<uint64_t> Fsyncs() override {
    // WAL fdatasyncs, plus LMDB's: one per LMDB transaction of a checkpoint (its data pages;
    // a checkpoint writes in chunks) and one more for the checkpoint's meta page. Stats::fsyncs
    // counts a log shared by the shards once. Replicated: node 1's, plus its Raft log writes
    // (each an O_DSYNC write); the other replicas' are in Replicas().
    const ReplicaCounters c = CountersOf(1, db_->GetStats());
    return c.wal_fsyncs + c.lmdb_syncs + c.raft_log_writes;
  }
  LeadershipLosses LostLeadership() override {
    return {lost_unavailable_.load(), lost_unknown_.load()};
  }
  std::vector<ReplicaCounters> Replicas() override {
    std::vector<ReplicaCounters> out;
    if (setup_.replicas == 0) return out;
    for (size_t i = 0; i < dbs_.size(); ++i) out.push_back(CountersOf(i + 1, dbs_[i]->GetStats()));
    return out;
  }
  std::string Notes() override {
    shardtx::Stats s = db_->GetStats();
    return absl::StrFormat(
               "since open (preload included): commits=%d cross_shard=%d read_only=%d aborts: "
               "write_conflict=%d locked=%d "
               "snapshot_too_old=%d read_validation=%d; WAL records/fsync=%.1f; checkpoints=%d; "
               "commit latency (us): %s",
               s.commits, s.cross_shard_commits, s.read_only_commits, s.aborts_write_conflict,
               s.aborts_locked, s.aborts_snapshot_too_old, s.aborts_read_validation,
               s.records_per_fsync, s.checkpoints, s.commit_latency_us) +
           (s.shards.empty()
                ? ""
                : absl::StrCat("; shard 0 fdatasync (us): ", s.shards[0].wal_fsync_latency_us)) +
           ReplicaNotes();
  }
  std::string Describe() const override {
    std::string replicated;
    if (setup_.replicas > 0) {
      std::vector<std::string> addresses;
      for (const shardtx::ReplicationMember& m : members_) {
        addresses.push_back(absl::StrCat(m.id, "@", m.address));
      }
      replicated = absl::StrCat(
          setup_.replicas, " replicated Databases in this process, members ",
          absl::StrJoin(addresses, " "),
          " (shard g's Raft group on port P+1+g); node 1 leads "
          "every shard (election timeout ",
          absl::FormatDuration(kLeaderElectionTimeout), ", the others ",
          absl::FormatDuration(kFollowerElectionTimeout),
          "), every session on node 1; a commit returns once a majority holds it in its Raft log "
          "(O_DSYNC writes); all replicas share this disk and these CPUs; ");
    }
    return absl::StrCat("shardtx",
                        setup_.replicas > 0 ? absl::StrCat("-", setup_.replicas, "replicas") : "",
                        ": ", replicated, "Database, num_shards=", setup_.shards, ", log_layout=k",
                        setup_.shared_log ? "Shared" : "PerShard", ", TxnOptions.durability=k",
                        run_durability_ == DurabilityMode::kSync    ? "Sync"
                        : run_durability_ == DurabilityMode::kAsync ? "Async"
                                                                    : "None",
                        ", snapshot isolation (first committer wins; aborts retried)",
                        setup_.replicas > 0 && setup_.closed_ts_refresh != absl::InfiniteDuration()
                            ? absl::StrCat("; ReplicationOptions::closed_ts_refresh=",
                                           absl::FormatDuration(setup_.closed_ts_refresh))
                            : "");
  }
  // Node N first, node 1 (the leader) last. Idempotent.
  absl::Status Close() override {
    absl::Status result;
    for (auto it = dbs_.rbegin(); it != dbs_.rend(); ++it) {
      if (*it == nullptr) continue;
      absl::Status s = (*it)->Close();
      if (result.ok()) result = s;
    }
    dbs_.clear();
    db_ = nullptr;
    return result;
  }

  shardtx::Database* db() { return db_; }
  bool replicated() const { return setup_.replicas > 0; }
  // A commit on node 1 failed because it lost a shard's leadership (kUnavailable: no effect;
  // kUnknown: maybe committed, and running the transaction again writes the same kind of
  // values): counted, and once node 1 leads every shard again (AwaitLeadership) the runner
  // retries it as an abort, the window's clock running meanwhile. `s` if it does not lead again.
  absl::Status LeadershipLost(absl::Status s) {
    (absl::IsUnknown(s) ? lost_unknown_ : lost_unavailable_)
        .fetch_add(1, std::memory_order_relaxed);
    if (!AwaitLeadership(*db_)) return s;
    return absl::AbortedError(absl::StrCat("node 1 lost a shard's leadership: ", s.message()));
  }
  const shardtx::TxnOptions& txn_options() const { return bulk_ ? bulk_options_ : run_options_; }

  absl::StatusOr<CatchUpResult> CatchUp(
      const CatchUpSpec& spec,
      const std::function<void(const std::string&, bool)>& progress) override {
    if (setup_.replicas == 0 || db_ == nullptr) return Engine::CatchUp(spec, progress);
    const KeySpace* keys = setup_.keys;
    if (keys == nullptr) return absl::FailedPreconditionError("catch-up: no key space");
    return MeasureCatchUp(
        cluster_, [keys](absl::string_view key) { return keys->ShardOfKey(key); }, spec, progress);
  }

 private:
  // Each replica's Raft log writes and entries since open, for Notes.
  std::string ReplicaNotes() {
    std::string out;
    if (setup_.replicas > 0) {
      absl::StrAppendFormat(&out,
                            "; commits retried after node 1 lost a shard's leadership: "
                            "kUnavailable=%d kUnknown=%d",
                            lost_unavailable_.load(), lost_unknown_.load());
    }
    for (const ReplicaCounters& c : Replicas()) {
      absl::StrAppendFormat(&out, "; replica %d: raft log writes=%d entries=%d wal fsyncs=%d",
                            c.node_id, c.raft_log_writes, c.raft_entries_stored, c.wal_fsyncs);
    }
    return out;
  }

  LoopbackCluster cluster_;
  std::vector<std::unique_ptr<shardtx::Database>>& dbs_;    // cluster_.dbs
  shardtx::Database* db_;                                   // dbs_[0]
  const std::vector<shardtx::ReplicationMember>& members_;  // cluster_.members
  EngineSetup setup_;
  shardtx::TxnOptions run_options_, bulk_options_;
  bool bulk_ = false;  // set between runs, never while sessions run
  DurabilityMode run_durability_;
  std::atomic<uint64_t> lost_unavailable_{0}, lost_unknown_{0};
};

absl::Status ShardtxSession::Commit() {
  absl::Status s = txn_->Commit();
  txn_.reset();
  if (options_.has_value() && options_->follower_read) return TooStaleIsAborted(std::move(s));
  if (engine_->replicated() && (absl::IsUnavailable(s) || absl::IsUnknown(s))) {
    return engine_->LeadershipLost(std::move(s));
  }
  return s;
}

void ShardtxSession::Begin(TxnShape /*shape*/) {
  txn_ = db_ != nullptr ? db_->Begin(*options_) : engine_->db()->Begin(engine_->txn_options());
}

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> OpenShardtx(const EngineSetup& setup) {
  shardtx::Options options;
  options.path = setup.dir;
  options.num_shards = setup.shards;
  options.log_layout = setup.shared_log ? shardtx::Options::LogLayout::kShared
                                        : shardtx::Options::LogLayout::kPerShard;
  options.max_open_transactions =
      std::max<uint32_t>(options.max_open_transactions, static_cast<uint32_t>(setup.threads + 64));
  LoopbackCluster cluster;
  if (setup.replicas > 0) {
    if (setup.raft_snapshot_threshold > 0) {
      options.replication.snapshot_threshold = setup.raft_snapshot_threshold;
    }
    if (setup.raft_snapshot_trailing > 0) {
      options.replication.snapshot_trailing = setup.raft_snapshot_trailing;
    }
    options.replication.closed_ts_refresh = setup.closed_ts_refresh;
    auto opened = OpenLoopbackCluster(options, setup.dir, setup.replicas);
    if (!opened.ok()) return opened.status();
    cluster = std::move(*opened);
  } else {
    auto db = shardtx::Database::Open(options);
    if (!db.ok()) return db.status();
    cluster.base = options;
    cluster.dir = setup.dir;
    cluster.dbs.push_back(std::move(*db));
  }
  return std::unique_ptr<Engine>(new ShardtxEngine(std::move(cluster), setup));
}

}  // namespace txbench
