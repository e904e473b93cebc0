// The RocksDB engine: pessimistic TransactionDB (Debian's librocksdb-dev), WriteOptions.sync
// matching the durability (sync: true; async and none: false, the WAL kept). With one shard
// layout everything is in one TransactionDB; with the per-shard layout (cross-shard workloads)
// there is one TransactionDB per shard (keys routed by the same partitioner as shardtx). A
// transaction that writes on one of them commits in one phase there, as shardtx does; one that
// writes on several commits with two-phase commit built on RocksDB's own prepare
// (`allow_2pc`), by the protocol a careful user would run (Rocksdb2pc::kCareful):
//   1. SetName on every participant; Prepare on the coordinator (the lowest shard, as in
//      shardtx) without waiting for its sync, and on every other participant synced, in
//      parallel (one thread per participant beyond the first);
//   2. the decision: a synced write of the key "\xff2pc-decision/NAME" in the coordinator's
//      DB. Its sync also makes the coordinator's prepare durable, since both are in the same
//      WAL. This is the commit point;
//   3. Commit on every participant without waiting for its sync.
// Recovery would commit each prepared transaction whose decision key exists and roll back the
// others (presumed abort). The benchmark never crashes, so that code is not here. The decision
// keys are left in place: a deployment would delete them once every participant's commit is
// durable, and the benchmark leaves that write out.
// Rocksdb2pc::kSerial is the baseline of earlier sessions: prepare on each participant, then
// commit on each, one after the other, every step synced.
#include "bench/txbench/engine.h"

#ifdef TXBENCH_HAVE_ROCKSDB

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "rocksdb/statistics.h"
#include "rocksdb/utilities/transaction.h"
#include "rocksdb/utilities/transaction_db.h"
#include "rocksdb/version.h"

namespace txbench {
namespace {

// kAborted for the retryable statuses of a pessimistic transaction (lock timeout, deadlock,
// busy, try again), kNotFound, else kInternal with the text.
absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  if (s.IsNotFound()) return absl::NotFoundError(what);
  const std::string text = absl::StrCat("rocksdb ", what, ": ", s.ToString());
  if (s.IsBusy() || s.IsTimedOut() || s.IsTryAgain() || s.IsDeadlock() || s.IsExpired()) {
    return absl::AbortedError(text);
  }
  return absl::InternalError(text);
}

// Threads that each run one call on request, so that a session's synced prepares on several
// participants wait for their fsyncs at the same time. Created when first needed (a
// transaction writing on three or more shards), one per participant beyond the second.
class PrepareCrew {
 public:
  PrepareCrew() = default;
  PrepareCrew(const PrepareCrew&) = delete;
  PrepareCrew& operator=(const PrepareCrew&) = delete;
  ~PrepareCrew() {
    for (auto& w : workers_) {
      {
        std::lock_guard<std::mutex> l(w->mu);
        w->quit = true;
      }
      w->cv.notify_one();
      w->thread.join();
    }
  }

  // Runs calls[0] on the calling thread and each other on a crew thread; returns when every
  // call has returned.
  void RunAll(const std::vector<std::function<void()>>& calls) {
    while (workers_.size() + 1 < calls.size()) workers_.push_back(std::make_unique<Worker>());
    for (size_t i = 1; i < calls.size(); ++i) {
      Worker& w = *workers_[i - 1];
      {
        std::lock_guard<std::mutex> l(w.mu);
        w.call = &calls[i];
        w.done = false;
      }
      w.cv.notify_one();
    }
    if (!calls.empty()) calls[0]();
    for (size_t i = 1; i < calls.size(); ++i) {
      Worker& w = *workers_[i - 1];
      std::unique_lock<std::mutex> l(w.mu);
      w.cv.wait(l, [&] { return w.done; });
    }
  }

 private:
  struct Worker {
    std::mutex mu;
    std::condition_variable cv;
    const std::function<void()>* call = nullptr;  // guarded by mu
    bool done = true, quit = false;               // guarded by mu
    std::thread thread{[this] { Loop(); }};
    void Loop() {
      std::unique_lock<std::mutex> l(mu);
      for (;;) {
        cv.wait(l, [&] { return quit || call != nullptr; });
        if (call == nullptr) return;
        const std::function<void()>* c = call;
        l.unlock();
        (*c)();
        l.lock();
        call = nullptr;
        done = true;
        cv.notify_all();
      }
    }
  };
  std::vector<std::unique_ptr<Worker>> workers_;
};

class RocksdbEngine;

class RocksdbSession final : public Session {
 public:
  RocksdbSession(RocksdbEngine* engine, uint64_t id);
  ~RocksdbSession() override;
  void Begin(TxnShape shape) override;
  absl::StatusOr<std::string> Get(const std::string& key) override;
  absl::StatusOr<std::string> GetForUpdate(const std::string& key) override;
  absl::Status Put(const std::string& key, absl::string_view value) override;
  absl::Status Commit() override;
  void Rollback() override;

 private:
  uint32_t DbOf(const std::string& key) const;
  rocksdb::Transaction* TxnOn(uint32_t db);
  void EndAll(bool rollback);
  absl::Status CommitCareful(const std::vector<uint32_t>& writers);
  absl::Status CommitSerial(const std::vector<uint32_t>& writers);

  RocksdbEngine* const engine_;
  const uint64_t id_;
  uint64_t seq_ = 0;
  TxnShape shape_ = TxnShape::kReadWrite;
  std::vector<rocksdb::Transaction*> txns_;  // per DB; reused when not named
  std::vector<bool> active_, written_;
  std::vector<const rocksdb::Snapshot*> snapshots_;  // read-only transactions
  PrepareCrew crew_;
};

class RocksdbEngine final : public Engine {
 public:
  explicit RocksdbEngine(const EngineSetup& setup) : setup_(setup) {}
  ~RocksdbEngine() override { CloseDbs().IgnoreError(); }

  absl::Status Open() {
    const uint32_t n = setup_.per_shard ? setup_.shards : 1;
    statistics_ = rocksdb::CreateDBStatistics();
    statistics_->set_stats_level(rocksdb::StatsLevel::kExceptHistogramOrTimers);
    for (uint32_t i = 0; i < n; ++i) {
      rocksdb::Options options;
      options.create_if_missing = true;
      options.allow_2pc = setup_.per_shard;
      options.statistics = statistics_;
      rocksdb::TransactionDBOptions txn_db_options;
      rocksdb::TransactionDB* db = nullptr;
      const std::string path = absl::StrCat(setup_.dir, "/db-", i);
      rocksdb::Status s = rocksdb::TransactionDB::Open(options, txn_db_options, path, &db);
      if (!s.ok()) return FromRocks(s, absl::StrCat("TransactionDB::Open ", path));
      dbs_.push_back(db);
    }
    run_write_options_.sync = setup_.durability == DurabilityMode::kSync;
    run_write_options_.disableWAL = false;
    bulk_write_options_.sync = false;
    return absl::OkStatus();
  }

  std::unique_ptr<Session> NewSession() override {
    return std::make_unique<RocksdbSession>(this, next_session_id_.fetch_add(1));
  }

  absl::Status SetBulkLoad(bool on) override {
    bulk_ = on;
    if (on) return absl::OkStatus();
    for (rocksdb::TransactionDB* db : dbs_) {
      rocksdb::Status s = db->FlushWAL(/*sync=*/true);
      if (!s.ok()) return FromRocks(s, "FlushWAL");
    }
    return SettleDeferredWork();
  }

  absl::Status SetRunDurability(DurabilityMode durability) override {
    if (durability == setup_.durability) return absl::OkStatus();
    return absl::UnimplementedError("txbench: this engine runs at its setup's durability only");
  }
  absl::Status SettleDeferredWork() override {
    for (rocksdb::TransactionDB* db : dbs_) {
      rocksdb::Status s = db->Flush(rocksdb::FlushOptions());
      if (!s.ok()) return FromRocks(s, "Flush");
    }
    // The flushes may have triggered compactions: wait for them too (RocksDB 7.8 has no
    // WaitForCompact; its properties say whether one is pending or running).
    for (rocksdb::TransactionDB* db : dbs_) {
      for (;;) {
        uint64_t pending = 0, running = 0;
        if (!db->GetIntProperty("rocksdb.compaction-pending", &pending) ||
            !db->GetIntProperty("rocksdb.num-running-compactions", &running)) {
          return absl::InternalError("rocksdb: compaction properties unavailable");
        }
        if (pending == 0 && running == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
    return absl::OkStatus();
  }

  std::optional<uint64_t> Fsyncs() override {
    return statistics_->getTickerCount(rocksdb::WAL_FILE_SYNCED);
  }

  std::string Describe() const override {
    std::string layout = " x1 (all shards' keys in one DB)";
    if (setup_.per_shard) {
      layout = absl::StrCat(
          " x", setup_.shards, " (one per shard, allow_2pc; multi-shard commits: ",
          setup_.rocksdb_2pc == Rocksdb2pc::kCareful
              ? "prepares in parallel (the coordinator's unsynced), a synced decision in the "
                "coordinator's DB, commits not waiting for their sync: 2 fsync rounds"
              : "SetName, Prepare on each participant, then Commit on each, in turn, every "
                "step synced: 2 fsync rounds per participant",
          ")");
    }
    return absl::StrCat(
        "rocksdb", setup_.rocksdb_2pc == Rocksdb2pc::kSerial ? "-serial2pc " : " ",
        RocksdbVersion(), ": pessimistic TransactionDB", layout,
        ", WriteOptions.sync=", run_write_options_.sync ? "true" : "false",
        ", default options; WAL syncs counted by statistics (WAL_FILE_SYNCED; flushes' and "
        "compactions' SST and MANIFEST syncs not counted)");
  }

  absl::Status Close() override { return CloseDbs(); }

  uint32_t num_dbs() const { return static_cast<uint32_t>(dbs_.size()); }
  rocksdb::TransactionDB* db(uint32_t i) { return dbs_[i]; }
  const rocksdb::WriteOptions& write_options() const {
    return bulk_ ? bulk_write_options_ : run_write_options_;
  }
  // The run's options without the wait for the sync (2PC steps that need no sync of their own).
  const rocksdb::WriteOptions& unsynced_write_options() const { return bulk_write_options_; }
  const EngineSetup& setup() const { return setup_; }

 private:
  absl::Status CloseDbs() {
    absl::Status first;
    for (rocksdb::TransactionDB* db : dbs_) {
      rocksdb::Status s = db->Close();
      if (!s.ok() && first.ok()) first = FromRocks(s, "Close");
      delete db;
    }
    dbs_.clear();
    return first;
  }

  EngineSetup setup_;
  std::vector<rocksdb::TransactionDB*> dbs_;
  std::shared_ptr<rocksdb::Statistics> statistics_;
  rocksdb::WriteOptions run_write_options_, bulk_write_options_;
  bool bulk_ = false;  // set between runs, never while sessions run
  std::atomic<uint64_t> next_session_id_{0};
};

RocksdbSession::RocksdbSession(RocksdbEngine* engine, uint64_t id)
    : engine_(engine),
      id_(id),
      txns_(engine->num_dbs(), nullptr),
      active_(engine->num_dbs(), false),
      written_(engine->num_dbs(), false),
      snapshots_(engine->num_dbs(), nullptr) {}

RocksdbSession::~RocksdbSession() {
  EndAll(/*rollback=*/true);
  for (rocksdb::Transaction* t : txns_) delete t;
}

uint32_t RocksdbSession::DbOf(const std::string& key) const {
  if (engine_->num_dbs() == 1) return 0;
  return engine_->setup().keys->ShardOfKey(key);
}

void RocksdbSession::Begin(TxnShape shape) {
  shape_ = shape;
  ++seq_;
}

rocksdb::Transaction* RocksdbSession::TxnOn(uint32_t db) {
  if (!active_[db]) {
    if (txns_[db] != nullptr && !txns_[db]->GetName().empty()) {
      delete txns_[db];  // named transactions are not reused
      txns_[db] = nullptr;
    }
    txns_[db] = engine_->db(db)->BeginTransaction(engine_->write_options(),
                                                  rocksdb::TransactionOptions(), txns_[db]);
    active_[db] = true;
    written_[db] = false;
  }
  return txns_[db];
}

absl::StatusOr<std::string> RocksdbSession::Get(const std::string& key) {
  const uint32_t d = DbOf(key);
  std::string value;
  rocksdb::Status s;
  if (shape_ == TxnShape::kSingleRead) {
    s = engine_->db(d)->Get(rocksdb::ReadOptions(), key, &value);
  } else if (shape_ == TxnShape::kReadOnly) {
    if (snapshots_[d] == nullptr) snapshots_[d] = engine_->db(d)->GetSnapshot();
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshots_[d];
    s = engine_->db(d)->Get(ro, key, &value);
  } else {
    s = TxnOn(d)->Get(rocksdb::ReadOptions(), key, &value);
  }
  if (!s.ok()) return FromRocks(s, key);
  return value;
}

absl::StatusOr<std::string> RocksdbSession::GetForUpdate(const std::string& key) {
  if (shape_ != TxnShape::kReadWrite) return Get(key);
  std::string value;
  rocksdb::Status s = TxnOn(DbOf(key))->GetForUpdate(rocksdb::ReadOptions(), key, &value);
  if (!s.ok()) return FromRocks(s, key);
  return value;
}

absl::Status RocksdbSession::Put(const std::string& key, absl::string_view value) {
  const uint32_t d = DbOf(key);
  rocksdb::Status s = TxnOn(d)->Put(key, rocksdb::Slice(value.data(), value.size()));
  if (!s.ok()) return FromRocks(s, absl::StrCat("Put ", key));
  written_[d] = true;
  return absl::OkStatus();
}

void RocksdbSession::EndAll(bool rollback) {
  for (uint32_t d = 0; d < txns_.size(); ++d) {
    if (active_[d]) {
      if (rollback) txns_[d]->Rollback().PermitUncheckedError();
      active_[d] = false;
    }
    if (snapshots_[d] != nullptr) {
      engine_->db(d)->ReleaseSnapshot(snapshots_[d]);
      snapshots_[d] = nullptr;
    }
  }
}

absl::Status RocksdbSession::Commit() {
  std::vector<uint32_t> writers, readers;
  for (uint32_t d = 0; d < txns_.size(); ++d) {
    if (active_[d]) (written_[d] ? writers : readers).push_back(d);
  }
  // Read-only participants: nothing to log; release their locks.
  for (uint32_t d : readers) {
    txns_[d]->Rollback().PermitUncheckedError();
    active_[d] = false;
  }
  absl::Status result;
  if (writers.size() == 1) {
    result = FromRocks(txns_[writers[0]]->Commit(), "Commit");
  } else if (writers.size() > 1) {
    result = engine_->setup().rocksdb_2pc == Rocksdb2pc::kCareful ? CommitCareful(writers)
                                                                  : CommitSerial(writers);
  }
  for (uint32_t d : writers) {
    if (!result.ok()) txns_[d]->Rollback().PermitUncheckedError();
    active_[d] = false;
  }
  EndAll(/*rollback=*/true);
  return result;
}

absl::Status RocksdbSession::CommitCareful(const std::vector<uint32_t>& writers) {
  const std::string name = absl::StrCat("txb-", id_, "-", seq_);
  const uint32_t coordinator = writers[0];  // the lowest shard, as in shardtx
  for (uint32_t d : writers) {
    rocksdb::Status s = txns_[d]->SetName(name);
    if (!s.ok()) return FromRocks(s, absl::StrCat("2PC SetName on shard ", d));
  }
  // Phase one. The coordinator's prepare waits for no sync: the decision, later in the same
  // WAL, is synced before anything depends on it.
  txns_[coordinator]->SetWriteOptions(engine_->unsynced_write_options());
  // The coordinator's (cheap) prepare on this thread, then the synced ones in parallel.
  std::vector<rocksdb::Status> prepared(writers.size());
  prepared[0] = txns_[coordinator]->Prepare();
  std::vector<std::function<void()>> synced;
  for (size_t i = 1; i < writers.size(); ++i) {
    synced.emplace_back([&, i] { prepared[i] = txns_[writers[i]]->Prepare(); });
  }
  crew_.RunAll(synced);
  for (size_t i = 0; i < writers.size(); ++i) {
    if (!prepared[i].ok()) {
      return FromRocks(prepared[i], absl::StrCat("2PC Prepare on shard ", writers[i]));
    }
  }
  // The decision: synced (when the run is), in the coordinator's DB, outside any lock.
  rocksdb::WriteBatch decision;
  constexpr char kDecisionPrefix[] =
      "\xff"
      "2pc-decision/";
  rocksdb::Status s = decision.Put(absl::StrCat(kDecisionPrefix, name), "C");
  if (s.ok()) {
    rocksdb::TransactionDBWriteOptimizations unlocked;
    unlocked.skip_concurrency_control = true;  // a fresh key no transaction touches
    s = engine_->db(coordinator)->Write(engine_->write_options(), unlocked, &decision);
  }
  if (!s.ok()) return FromRocks(s, "2PC decision");
  // Phase two: commits that do not wait for their sync (recovery would find the decision).
  for (uint32_t d : writers) {
    txns_[d]->SetWriteOptions(engine_->unsynced_write_options());
    s = txns_[d]->Commit();
    if (!s.ok()) {
      // After the decision the outcome is "commit" whatever happens here. Not retryable.
      return absl::InternalError(
          absl::StrCat("rocksdb 2PC Commit on shard ", d, " after the decision: ", s.ToString()));
    }
  }
  return absl::OkStatus();
}

absl::Status RocksdbSession::CommitSerial(const std::vector<uint32_t>& writers) {
  for (uint32_t d : writers) {
    rocksdb::Status s = txns_[d]->SetName(absl::StrCat("txb-", id_, "-", seq_));
    if (s.ok()) s = txns_[d]->Prepare();
    if (!s.ok()) return FromRocks(s, absl::StrCat("2PC Prepare on shard ", d));
  }
  for (uint32_t d : writers) {
    rocksdb::Status s = txns_[d]->Commit();
    if (!s.ok()) {
      // A participant failed after every one prepared: the outcome is mixed. Not retryable.
      return absl::InternalError(
          absl::StrCat("rocksdb 2PC Commit on shard ", d, " after all prepared: ", s.ToString()));
    }
  }
  return absl::OkStatus();
}

void RocksdbSession::Rollback() { EndAll(/*rollback=*/true); }

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> OpenRocksdb(const EngineSetup& setup) {
  auto engine = std::make_unique<RocksdbEngine>(setup);
  if (absl::Status s = engine->Open(); !s.ok()) return s;
  return std::unique_ptr<Engine>(std::move(engine));
}

bool HaveRocksdb() { return true; }

std::string RocksdbVersion() {
  return absl::StrCat(ROCKSDB_MAJOR, ".", ROCKSDB_MINOR, ".", ROCKSDB_PATCH);
}

}  // namespace txbench

#else  // !TXBENCH_HAVE_ROCKSDB

namespace txbench {

absl::StatusOr<std::unique_ptr<Engine>> OpenRocksdb(const EngineSetup&) {
  return absl::UnimplementedError(
      "txbench was built without RocksDB (install librocksdb-dev and reconfigure with "
      "-DSHARDTX_WITH_ROCKSDB=ON)");
}
bool HaveRocksdb() { return false; }
std::string RocksdbVersion() { return "absent"; }

}  // namespace txbench

#endif  // TXBENCH_HAVE_ROCKSDB
