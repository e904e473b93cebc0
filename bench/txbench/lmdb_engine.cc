// The LMDB engine: one environment, one database; every read-write benchmark transaction is one
// LMDB write transaction (LMDB has a single writer: the others wait for its lock), read-only
// ones are read transactions kept per session and renewed (mdb_txn_reset/renew, as lmdb.h
// recommends). Durability sync: default flags (a commit syncs the data pages, then writes the
// meta page synchronously: two syncs); async and none: MDB_NOSYNC.
#include <atomic>

#include "absl/strings/str_cat.h"
#include "bench/txbench/engine.h"
#include "lmdb.h"

namespace txbench {
namespace {

absl::Status LmdbError(int rc, absl::string_view what) {
  return absl::InternalError(absl::StrCat("lmdb ", what, ": ", mdb_strerror(rc)));
}

class LmdbEngine;

class LmdbSession final : public Session {
 public:
  explicit LmdbSession(LmdbEngine* engine) : engine_(engine) {}
  ~LmdbSession() override {
    if (txn_ != nullptr && txn_ != read_txn_) mdb_txn_abort(txn_);
    if (read_txn_ != nullptr) mdb_txn_abort(read_txn_);
  }
  void Begin(TxnShape shape) override;
  absl::StatusOr<std::string> Get(const std::string& key) override;
  absl::StatusOr<std::string> GetForUpdate(const std::string& key) override { return Get(key); }
  absl::Status Put(const std::string& key, absl::string_view value) override;
  absl::Status Commit() override;
  void Rollback() override;

 private:
  LmdbEngine* const engine_;
  MDB_txn* read_txn_ = nullptr;  // kept reset between read-only transactions
  MDB_txn* txn_ = nullptr;       // the current transaction (read_txn_ when read-only)
  absl::Status begin_status_;
};

class LmdbEngine final : public Engine {
 public:
  explicit LmdbEngine(const EngineSetup& setup) : setup_(setup) {}
  ~LmdbEngine() override {
    if (env_ != nullptr) mdb_env_close(env_);
  }

  absl::Status Open() {
    int rc = mdb_env_create(&env_);
    if (rc != 0) return LmdbError(rc, "mdb_env_create");
    rc = mdb_env_set_maxreaders(env_, static_cast<unsigned>(setup_.threads + 16));
    if (rc != 0) return LmdbError(rc, "mdb_env_set_maxreaders");
    // Address space, not disk: the file grows with the data.
    rc = mdb_env_set_mapsize(env_, size_t{16} << 30);
    if (rc != 0) return LmdbError(rc, "mdb_env_set_mapsize");
    unsigned flags = MDB_NOTLS;
    if (setup_.durability != DurabilityMode::kSync) flags |= MDB_NOSYNC;
    rc = mdb_env_open(env_, setup_.dir.c_str(), flags, 0644);
    if (rc != 0) return LmdbError(rc, absl::StrCat("mdb_env_open ", setup_.dir));
    MDB_txn* txn;
    rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    if (rc != 0) return LmdbError(rc, "mdb_txn_begin");
    rc = mdb_dbi_open(txn, nullptr, 0, &dbi_);
    if (rc != 0) {
      mdb_txn_abort(txn);
      return LmdbError(rc, "mdb_dbi_open");
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0) return LmdbError(rc, "mdb_txn_commit");
    return absl::OkStatus();
  }

  std::unique_ptr<Session> NewSession() override { return std::make_unique<LmdbSession>(this); }

  absl::Status SetBulkLoad(bool on) override {
    if (setup_.durability == DurabilityMode::kSync) {
      int rc = mdb_env_set_flags(env_, MDB_NOSYNC, on ? 1 : 0);
      if (rc != 0) return LmdbError(rc, "mdb_env_set_flags");
    }
    bulk_ = on;
    if (!on) {
      int rc = mdb_env_sync(env_, 1);
      if (rc != 0) return LmdbError(rc, "mdb_env_sync");
      explicit_syncs_.fetch_add(1, std::memory_order_relaxed);
    }
    return absl::OkStatus();
  }

  // A synced commit has written and synced its B-tree pages: nothing is deferred. Under
  // MDB_NOSYNC (async, none) the deferred work is the sync of those pages.
  absl::Status SetRunDurability(DurabilityMode durability) override {
    if (durability == setup_.durability) return absl::OkStatus();
    return absl::UnimplementedError("txbench: this engine runs at its setup's durability only");
  }
  absl::Status SettleDeferredWork() override {
    if (setup_.durability == DurabilityMode::kSync) return absl::OkStatus();
    int rc = mdb_env_sync(env_, 1);
    if (rc != 0) return LmdbError(rc, "mdb_env_sync");
    explicit_syncs_.fetch_add(1, std::memory_order_relaxed);
    return absl::OkStatus();
  }

  std::optional<uint64_t> Fsyncs() override {
    return explicit_syncs_.load(std::memory_order_relaxed) +
           synced_commits_.load(std::memory_order_relaxed) * 2;
  }

  std::string Describe() const override {
    return absl::StrCat(
        "lmdb ", LmdbVersion(), ": one environment, MDB_NOTLS",
        setup_.durability == DurabilityMode::kSync ? ", default (durable) flags" : ", MDB_NOSYNC",
        "; one write transaction per transaction (single writer)");
  }

  absl::Status Close() override {
    mdb_env_close(env_);
    env_ = nullptr;
    return absl::OkStatus();
  }

  MDB_env* env() { return env_; }
  MDB_dbi dbi() const { return dbi_; }
  void CountCommit() {
    if (setup_.durability == DurabilityMode::kSync && !bulk_) {
      synced_commits_.fetch_add(1, std::memory_order_relaxed);
    }
  }

 private:
  EngineSetup setup_;
  MDB_env* env_ = nullptr;
  MDB_dbi dbi_ = 0;
  bool bulk_ = false;
  std::atomic<uint64_t> synced_commits_{0}, explicit_syncs_{0};
};

void LmdbSession::Begin(TxnShape shape) {
  begin_status_ = absl::OkStatus();
  int rc;
  if (shape != TxnShape::kReadWrite) {
    if (read_txn_ != nullptr) {
      rc = mdb_txn_renew(read_txn_);
    } else {
      rc = mdb_txn_begin(engine_->env(), nullptr, MDB_RDONLY, &read_txn_);
    }
    if (rc != 0) {
      if (read_txn_ != nullptr) mdb_txn_abort(read_txn_);
      read_txn_ = nullptr;
      begin_status_ = LmdbError(rc, "read mdb_txn_begin");
      txn_ = nullptr;
      return;
    }
    txn_ = read_txn_;
    return;
  }
  rc = mdb_txn_begin(engine_->env(), nullptr, 0, &txn_);
  if (rc != 0) {
    txn_ = nullptr;
    begin_status_ = LmdbError(rc, "mdb_txn_begin");
  }
}

absl::StatusOr<std::string> LmdbSession::Get(const std::string& key) {
  if (txn_ == nullptr) return begin_status_;
  MDB_val k{key.size(), const_cast<char*>(key.data())}, v;
  int rc = mdb_get(txn_, engine_->dbi(), &k, &v);
  if (rc == MDB_NOTFOUND) return absl::NotFoundError(key);
  if (rc != 0) return LmdbError(rc, "mdb_get");
  return std::string(static_cast<const char*>(v.mv_data), v.mv_size);
}

absl::Status LmdbSession::Put(const std::string& key, absl::string_view value) {
  if (txn_ == nullptr) return begin_status_;
  if (txn_ == read_txn_) return absl::InternalError("lmdb: Put in a read-only transaction");
  MDB_val k{key.size(), const_cast<char*>(key.data())};
  MDB_val v{value.size(), const_cast<char*>(value.data())};
  int rc = mdb_put(txn_, engine_->dbi(), &k, &v, 0);
  if (rc != 0) return LmdbError(rc, "mdb_put");
  return absl::OkStatus();
}

absl::Status LmdbSession::Commit() {
  if (txn_ == nullptr) return begin_status_;
  if (txn_ == read_txn_) {
    mdb_txn_reset(read_txn_);
    txn_ = nullptr;
    return absl::OkStatus();
  }
  int rc = mdb_txn_commit(txn_);  // frees the handle, even on failure
  txn_ = nullptr;
  if (rc != 0) return LmdbError(rc, "mdb_txn_commit");
  engine_->CountCommit();
  return absl::OkStatus();
}

void LmdbSession::Rollback() {
  if (txn_ == nullptr) return;
  if (txn_ == read_txn_) {
    mdb_txn_reset(read_txn_);
  } else {
    mdb_txn_abort(txn_);
  }
  txn_ = nullptr;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> OpenLmdb(const EngineSetup& setup) {
  auto engine = std::make_unique<LmdbEngine>(setup);
  if (absl::Status s = engine->Open(); !s.ok()) return s;
  return std::unique_ptr<Engine>(std::move(engine));
}

std::string LmdbVersion() {
  int major, minor, patch;
  mdb_version(&major, &minor, &patch);
  return absl::StrCat(major, ".", minor, ".", patch);
}

}  // namespace txbench
