// The shardtx engine: one Database with num_shards = the run's shards and its log layout; one
// Transaction per benchmark transaction at the run's durability.
#include <algorithm>
#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
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
  explicit ShardtxSession(ShardtxEngine* engine) : engine_(engine) {}
  void Begin(TxnShape shape) override;
  absl::StatusOr<std::string> Get(const std::string& key) override { return txn_->Get(key); }
  absl::StatusOr<std::string> GetForUpdate(const std::string& key) override { return Get(key); }
  absl::Status Put(const std::string& key, absl::string_view value) override {
    return txn_->Put(key, value);
  }
  absl::Status Commit() override {
    absl::Status s = txn_->Commit();
    txn_.reset();
    return s;
  }
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
  ShardtxEngine* const engine_;
  std::unique_ptr<shardtx::Transaction> txn_;
};

class ShardtxEngine final : public Engine {
 public:
  ShardtxEngine(std::unique_ptr<shardtx::Database> db, const EngineSetup& setup)
      : db_(std::move(db)), setup_(setup) {
    run_options_.durability = ToShardtx(setup.durability);
    run_durability_ = setup.durability;
    bulk_options_.durability = shardtx::Durability::kNone;
  }
  ~ShardtxEngine() override {
    if (db_ != nullptr) db_->Close().IgnoreError();
  }

  std::unique_ptr<Session> NewSession() override { return std::make_unique<ShardtxSession>(this); }
  absl::Status SetBulkLoad(bool on) override {
    bulk_ = on;
    if (on) return absl::OkStatus();
    return SettleDeferredWork();  // durable, and the run starts with the data in LMDB
  }
  absl::Status SettleDeferredWork() override { return db_->Checkpoint(); }
  absl::Status SetRunDurability(DurabilityMode durability) override {
    run_durability_ = durability;
    run_options_.durability = ToShardtx(durability);
    return absl::OkStatus();
  }
  std::optional<uint64_t> Fsyncs() override {
    shardtx::Stats s = db_->GetStats();
    // WAL fdatasyncs, plus LMDB's: one per LMDB transaction of a checkpoint (its data pages;
    // a checkpoint writes in chunks) and one more for the checkpoint's meta page. Stats::fsyncs
    // counts a log shared by the shards once.
    uint64_t n = s.fsyncs;
    for (const shardtx::ShardStatsView& shard : s.shards) {
      n += shard.checkpoint_txns + shard.checkpoints;
    }
    return n;
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
                : absl::StrCat("; shard 0 fdatasync (us): ", s.shards[0].wal_fsync_latency_us));
  }
  std::string Describe() const override {
    return absl::StrCat("shardtx: Database, num_shards=", setup_.shards, ", log_layout=k",
                        setup_.shared_log ? "Shared" : "PerShard", ", TxnOptions.durability=k",
                        run_durability_ == DurabilityMode::kSync    ? "Sync"
                        : run_durability_ == DurabilityMode::kAsync ? "Async"
                                                                    : "None",
                        ", snapshot isolation (first committer wins; aborts retried)");
  }
  absl::Status Close() override {
    absl::Status s = db_->Close();
    db_.reset();
    return s;
  }

  shardtx::Database* db() { return db_.get(); }
  const shardtx::TxnOptions& txn_options() const { return bulk_ ? bulk_options_ : run_options_; }

 private:
  std::unique_ptr<shardtx::Database> db_;
  EngineSetup setup_;
  shardtx::TxnOptions run_options_, bulk_options_;
  bool bulk_ = false;  // set between runs, never while sessions run
  DurabilityMode run_durability_;
};

void ShardtxSession::Begin(TxnShape /*shape*/) {
  txn_ = engine_->db()->Begin(engine_->txn_options());
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
  auto db = shardtx::Database::Open(options);
  if (!db.ok()) return db.status();
  return std::unique_ptr<Engine>(new ShardtxEngine(std::move(*db), setup));
}

}  // namespace txbench
