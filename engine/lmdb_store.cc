#include "engine/lmdb_store.h"

#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <optional>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "util/coding.h"
#include "util/kill_point.h"
#include "util/status_macros.h"

namespace shardtx::engine {

SHARDTX_DEFINE_KILL_POINT(before_lmdb_commit, "checkpoint.before_lmdb_commit");
SHARDTX_DEFINE_KILL_POINT(between_lmdb_chunks, "checkpoint.between_lmdb_chunks");

namespace {

constexpr char kAppliedLsnKey[] = "applied_lsn";
constexpr char kMaxTsKey[] = "max_ts";
constexpr char kFormatKey[] = "format_version";

MDB_val Val(absl::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
absl::string_view View(const MDB_val& v) {
  return absl::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

// Stored value: u64 commit timestamp, then the value bytes. *value points into `v`.
bool DecodeStored(const MDB_val& v, Timestamp* ts, absl::string_view* value) {
  absl::string_view in = View(v);
  uint64_t t;
  if (!GetFixed64(&in, &t)) return false;
  *ts = t;
  *value = in;
  return true;
}

bool DecodeStored(const MDB_val& v, Found* out) {
  absl::string_view value;
  if (!DecodeStored(v, &out->ts, &value)) return false;
  out->tombstone = false;
  out->value.assign(value.data(), value.size());
  return true;
}

// RAII for a write transaction: aborted unless committed.
class ScopedWriteTxn {
 public:
  explicit ScopedWriteTxn(MDB_txn* t) : txn_(t) {}
  ~ScopedWriteTxn() {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
  }
  MDB_txn* get() { return txn_; }
  // The environment runs with MDB_NOMETASYNC: this syncs the data pages, not the meta page, so
  // a system crash may undo the commit, never corrupt the environment. Enough for a
  // checkpoint chunk, which the WAL still covers.
  int Commit() {
    int rc = mdb_txn_commit(txn_);
    txn_ = nullptr;
    return rc;
  }

 private:
  MDB_txn* txn_;
};

}  // namespace

absl::Status LmdbError(int rc, absl::string_view op, const std::string& dir) {
  std::string msg = absl::StrCat("LMDB ", op, " in ", dir, ": ", mdb_strerror(rc));
  switch (rc) {
    case MDB_INVALID:
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_VERSION_MISMATCH:
      return absl::DataLossError(msg);
    case MDB_READERS_FULL:
    case MDB_MAP_FULL:
    case ENOSPC:
      return absl::ResourceExhaustedError(msg);
    case EACCES:
    case EROFS:
      return absl::PermissionDeniedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::StatusOr<std::unique_ptr<ShardStore>> ShardStore::Open(const std::string& dir,
                                                             const StoreOptions& options) {
  std::unique_ptr<ShardStore> s(new ShardStore(dir, options));
  RETURN_IF_ERROR(s->Init());
  return s;
}

absl::Status ShardStore::Init() {
  int rc = mdb_env_create(&env_);
  if (rc != 0) return LmdbError(rc, "env_create", dir_);
  map_size_ = options_.initial_map_size;
  if ((rc = mdb_env_set_mapsize(env_, map_size_)) != 0) return LmdbError(rc, "set_mapsize", dir_);
  if ((rc = mdb_env_set_maxreaders(env_, options_.max_readers + 2)) != 0) {
    return LmdbError(rc, "set_maxreaders", dir_);
  }
  if ((rc = mdb_env_set_maxdbs(env_, 8)) != 0) return LmdbError(rc, "set_maxdbs", dir_);
  // MDB_NOMETASYNC halves the syncs of a chunked checkpoint: each chunk syncs its data pages
  // only. The transaction that records applied_lsn, which the WAL is truncated behind, syncs
  // its meta page as well (SyncMetaPage). Never MDB_NOSYNC: see docs/architecture.md.
  unsigned flags = MDB_NOTLS | MDB_NORDAHEAD | MDB_NOMETASYNC;
  if (options_.read_only) {
    struct stat st;
    if (::stat((dir_ + "/data.mdb").c_str(), &st) != 0) {
      return absl::NotFoundError(absl::StrCat("LMDB ", dir_, ": no data.mdb"));
    }
    // Every opener creates lock.mdb: without one nobody has the store open, and a read-only
    // open must not create it.
    flags |= MDB_RDONLY;
    if (options_.no_reader_lock || ::stat((dir_ + "/lock.mdb").c_str(), &st) != 0) {
      flags |= MDB_NOLOCK;
    }
  }
  rc = mdb_env_open(env_, dir_.c_str(), flags, 0644);
  if (rc != 0) return LmdbError(rc, "env_open", dir_);
  if (const int max_key = mdb_env_get_maxkeysize(env_); max_key < static_cast<int>(kMaxKeySize)) {
    return absl::FailedPreconditionError(
        absl::StrCat("LMDB ", dir_, ": this liblmdb takes keys of ", max_key,
                     " bytes at most; shardtx needs ", kMaxKeySize));
  }

  MDB_txn* t;
  const unsigned txn_flags = options_.read_only ? MDB_RDONLY : 0;
  if ((rc = mdb_txn_begin(env_, nullptr, txn_flags, &t)) != 0) {
    return LmdbError(rc, "txn_begin", dir_);
  }
  ScopedWriteTxn txn(t);  // committed even when read-only: that keeps the table handles
  const unsigned create = options_.read_only ? 0 : MDB_CREATE;
  for (auto [name, dbi] : {std::pair{"data", &data_dbi_}, std::pair{"meta", &meta_dbi_}}) {
    if ((rc = mdb_dbi_open(txn.get(), name, create, dbi)) == MDB_NOTFOUND) {
      return absl::NotFoundError(absl::StrCat("LMDB ", dir_, ": no '", name, "' table"));
    }
    if (rc != 0) return LmdbError(rc, absl::StrCat("dbi_open ", name), dir_);
  }
  MDB_val k = Val(kFormatKey), v;
  rc = mdb_get(txn.get(), meta_dbi_, &k, &v);
  const bool creating = rc == MDB_NOTFOUND && !options_.read_only;
  if (rc == MDB_NOTFOUND && options_.read_only) {
    return absl::NotFoundError(absl::StrCat("LMDB ", dir_, ": no format_version"));
  }
  if (creating) {
    std::string fv;
    PutFixed32(&fv, kFormatVersion);
    MDB_val nv = Val(fv);
    if ((rc = mdb_put(txn.get(), meta_dbi_, &k, &nv, 0)) != 0) return LmdbError(rc, "put", dir_);
    meta_.format_version = kFormatVersion;
  } else if (rc != 0) {
    return LmdbError(rc, "get format_version", dir_);
  } else {
    absl::string_view in = View(v);
    uint32_t fv;
    if (!GetFixed32(&in, &fv)) {
      return absl::DataLossError(absl::StrCat("LMDB ", dir_, ": corrupt format_version"));
    }
    if (fv > kFormatVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          "LMDB ", dir_, ": format version ", fv, " is newer than this build's ", kFormatVersion));
    }
    meta_.format_version = fv;
  }
  for (auto [key, field] :
       {std::pair{kAppliedLsnKey, &meta_.applied_lsn}, std::pair{kMaxTsKey, &meta_.max_ts}}) {
    MDB_val mk = Val(key), mv;
    rc = mdb_get(txn.get(), meta_dbi_, &mk, &mv);
    if (rc == MDB_NOTFOUND) continue;
    if (rc != 0) return LmdbError(rc, "get meta", dir_);
    absl::string_view in = View(mv);
    if (!GetFixed64(&in, field) || !in.empty()) {
      return absl::DataLossError(absl::StrCat("LMDB ", dir_, ": corrupt meta field ", key));
    }
  }
  if ((rc = txn.Commit()) != 0) return LmdbError(rc, "txn_commit", dir_);
  // An existing store's transaction here only read: nothing to sync, no fsync added to Open.
  return creating ? SyncMetaPage() : absl::OkStatus();
}

absl::Status ShardStore::SyncMetaPage() {
  const int rc = mdb_env_sync(env_, 1);
  return rc == 0 ? absl::OkStatus() : LmdbError(rc, "env_sync (the meta page)", dir_);
}

ShardStore::~ShardStore() {
  {
    MutexLock l(&pool_mu_);
    for (MDB_txn* t : pool_) mdb_txn_abort(t);
    pool_.clear();
  }
  if (env_ != nullptr) mdb_env_close(env_);
}

absl::StatusOr<std::unique_ptr<ReadView>> ShardStore::Pin() {
  MDB_txn* txn = nullptr;
  {
    MutexLock l(&pool_mu_);
    while (growing_) pool_cv_.Wait();
    ++active_views_;
    if (!pool_.empty()) {
      txn = pool_.back();
      pool_.pop_back();
    }
  }
  int rc = txn != nullptr ? mdb_txn_renew(txn) : mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc != 0) {
    if (txn != nullptr) mdb_txn_abort(txn);
    MutexLock l(&pool_mu_);
    --active_views_;
    pool_cv_.SignalAll();
    return LmdbError(rc, "read txn", dir_);
  }
  return std::unique_ptr<ReadView>(new ReadView(this, txn));
}

void ShardStore::Release(MDB_txn* txn) {
  mdb_txn_reset(txn);
  MutexLock l(&pool_mu_);
  pool_.push_back(txn);
  --active_views_;
  if (active_views_ == 0) pool_cv_.SignalAll();
}

ReadView::~ReadView() { store_->Release(txn_); }

absl::StatusOr<std::optional<Found>> ReadView::Get(absl::string_view key) {
  MDB_val k = Val(key), v;
  int rc = mdb_get(txn_, store_->data_dbi_, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<Found>();
  if (rc != 0) return LmdbError(rc, "get", store_->dir_);
  Found f;
  if (!DecodeStored(v, &f)) {
    return absl::DataLossError(
        absl::StrCat("LMDB ", store_->dir_, ": corrupt value of key ", absl::CHexEscape(key)));
  }
  return std::optional<Found>(std::move(f));
}

absl::Status ReadView::Scan(absl::string_view from, bool inclusive, bool reverse, size_t limit,
                            std::vector<ScanEntry>* out) {
  MDB_cursor* c;
  int rc = mdb_cursor_open(txn_, store_->data_dbi_, &c);
  if (rc != 0) return LmdbError(rc, "cursor_open", store_->dir_);
  MDB_val k = Val(from), v;
  if (!reverse) {
    rc = from.empty() ? mdb_cursor_get(c, &k, &v, MDB_FIRST)
                      : mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && !inclusive && View(k) == from) rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
  } else if (from.empty()) {
    rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
  } else {
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND) {
      rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    } else if (rc == 0 && (View(k) > from || (!inclusive && View(k) == from))) {
      rc = mdb_cursor_get(c, &k, &v, MDB_PREV);
    }
  }
  for (size_t n = 0; rc == 0 && n < limit; ++n) {
    Timestamp ts;
    absl::string_view value;
    if (!DecodeStored(v, &ts, &value)) {
      mdb_cursor_close(c);
      return absl::DataLossError(absl::StrCat("LMDB ", store_->dir_, ": corrupt value"));
    }
    out->push_back(ScanEntry{View(k), value, false});
    rc = mdb_cursor_get(c, &k, &v, reverse ? MDB_PREV : MDB_NEXT);
  }
  mdb_cursor_close(c);
  if (rc != 0 && rc != MDB_NOTFOUND) return LmdbError(rc, "cursor_get", store_->dir_);
  return absl::OkStatus();
}

absl::StatusOr<bool> ReadView::AnyNewerInRange(absl::string_view lower, absl::string_view upper,
                                               Timestamp ts) {
  MDB_cursor* c;
  int rc = mdb_cursor_open(txn_, store_->data_dbi_, &c);
  if (rc != 0) return LmdbError(rc, "cursor_open", store_->dir_);
  MDB_val k = Val(lower), v;
  rc = lower.empty() ? mdb_cursor_get(c, &k, &v, MDB_FIRST)
                     : mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
  bool newer = false;
  while (rc == 0 && (upper.empty() || View(k) < upper)) {
    Timestamp stored_ts;
    absl::string_view value;
    if (DecodeStored(v, &stored_ts, &value) && stored_ts > ts) {
      newer = true;
      break;
    }
    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(c);
  if (rc != 0 && rc != MDB_NOTFOUND) return LmdbError(rc, "cursor_get", store_->dir_);
  return newer;
}

absl::Status ShardStore::Apply(const std::vector<const Overlay*>& frozen, uint64_t applied_lsn,
                               Timestamp max_ts, const std::vector<TableWrite>& table_writes,
                               const BetweenChunks& between_chunks) {
  for (int attempt = 0;; ++attempt) {
    absl::Status s = WriteCheckpoint(frozen, applied_lsn, max_ts, table_writes, between_chunks);
    if (!absl::IsResourceExhausted(s) || s.message().find("MDB_MAP_FULL") == std::string::npos ||
        attempt >= 20) {
      return s;
    }
    RETURN_IF_ERROR(Grow());
  }
}

absl::Status ShardStore::WriteCheckpoint(const std::vector<const Overlay*>& frozen,
                                         uint64_t applied_lsn, Timestamp max_ts,
                                         const std::vector<TableWrite>& table_writes,
                                         const BetweenChunks& between_chunks) {
  MDB_txn* t;
  int rc = mdb_txn_begin(env_, nullptr, 0, &t);
  if (rc != 0) return LmdbError(rc, "txn_begin", dir_);
  std::optional<ScopedWriteTxn> txn(std::in_place, t);
  // The data goes in chunks of about chunk_bytes, each its own transaction, so that the disk
  // never has a whole checkpoint to write back at once: a WAL fsync issued meanwhile waits for
  // one chunk, not for all of it. Only the last transaction records applied_lsn (and syncs its
  // meta page), so a crash between chunks, or one that undoes the last chunk's unsynced meta
  // page, leaves LMDB with some newer versions and the old applied_lsn: redo then installs the
  // same or newer versions above them, which reads see first.
  uint64_t chunk = 0;
  auto chunk_start = std::chrono::steady_clock::now();
  auto next_chunk = [&]() -> int {
    int r = txn->Commit();
    if (r != 0) return r;
    chunks_.fetch_add(1, std::memory_order_relaxed);
    SHARDTX_KILL_POINT("checkpoint.between_lmdb_chunks");
    if (between_chunks) between_chunks(std::chrono::steady_clock::now() - chunk_start);
    chunk_start = std::chrono::steady_clock::now();
    if ((r = mdb_txn_begin(env_, nullptr, 0, &t)) != 0) return r;
    txn.emplace(t);
    chunk = 0;
    return 0;
  };
  std::string buf;
  for (const Overlay* layer : frozen) {
    // One chunk per call: the overlay's lock is not held across LMDB's commit and begin (which
    // take LMDB's writer lock; the other order is the norm).
    std::string resume;
    for (bool started = false, done = false; !done; started = true) {
      bool full = false;
      done = layer->ForEachNewestAfter(
          started ? &resume : nullptr, [&](absl::string_view key, const Version& v) {
            MDB_val k = Val(key);
            if (v.tombstone) {
              rc = mdb_del(t, data_dbi_, &k, nullptr);
              if (rc == MDB_NOTFOUND) rc = 0;
            } else {
              buf.clear();
              PutFixed64(&buf, v.ts);
              buf.append(v.value.data(), v.value.size());
              MDB_val val = Val(buf);
              rc = mdb_put(t, data_dbi_, &k, &val, 0);
            }
            if (rc != 0) return false;
            chunk += key.size() + v.value.size();
            if (options_.checkpoint_chunk_bytes != 0 && chunk >= options_.checkpoint_chunk_bytes) {
              resume.assign(key.data(), key.size());
              full = true;
              return false;
            }
            return true;
          });
      if (rc != 0) return LmdbError(rc, "put", dir_);
      if (full && (rc = next_chunk()) != 0) return LmdbError(rc, "txn_commit (chunk)", dir_);
    }
  }
  for (const TableWrite& w : table_writes) {
    MDB_dbi dbi;
    if ((rc = mdb_dbi_open(t, w.table.c_str(), MDB_CREATE, &dbi)) != 0) {
      return LmdbError(rc, "dbi_open " + w.table, dir_);
    }
    MDB_val k = Val(w.key);
    if (w.value.has_value()) {
      MDB_val v = Val(*w.value);
      rc = mdb_put(t, dbi, &k, &v, 0);
    } else {
      rc = mdb_del(t, dbi, &k, nullptr);
      if (rc == MDB_NOTFOUND) rc = 0;
    }
    if (rc != 0) return LmdbError(rc, "table write " + w.table, dir_);
  }
  StoreMeta next = meta_;
  next.applied_lsn = std::max(meta_.applied_lsn, applied_lsn);
  next.max_ts = std::max(meta_.max_ts, max_ts);
  for (auto [key, value] :
       {std::pair{kAppliedLsnKey, next.applied_lsn}, std::pair{kMaxTsKey, next.max_ts}}) {
    buf.clear();
    PutFixed64(&buf, value);
    MDB_val k = Val(key), v = Val(buf);
    if ((rc = mdb_put(t, meta_dbi_, &k, &v, 0)) != 0) return LmdbError(rc, "put meta", dir_);
  }
  SHARDTX_KILL_POINT("checkpoint.before_lmdb_commit");
  if ((rc = txn->Commit()) != 0) return LmdbError(rc, "txn_commit", dir_);
  chunks_.fetch_add(1, std::memory_order_relaxed);
  meta_ = next;  // what LMDB holds now, durable or not
  return SyncMetaPage();
}

absl::Status ShardStore::Grow() {
  MutexLock l(&pool_mu_);
  growing_ = true;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (active_views_ > 0) {
    if (std::chrono::steady_clock::now() >= deadline ||
        !pool_cv_.WaitFor(deadline - std::chrono::steady_clock::now())) {
      if (active_views_ == 0) break;
      growing_ = false;
      pool_cv_.SignalAll();
      return absl::UnavailableError(absl::StrCat(
          "LMDB ", dir_, ": map full and snapshots stayed open for 30 s; checkpoint retried"));
    }
  }
  const uint64_t next = map_size_ * 2;
  int rc = mdb_env_set_mapsize(env_, next);
  if (rc == 0) {
    map_size_ = next;
    ++growths_;
  }
  growing_ = false;
  pool_cv_.SignalAll();
  return rc == 0 ? absl::OkStatus() : LmdbError(rc, "set_mapsize", dir_);
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ShardStore::ReadTable(
    const std::string& table) {
  std::vector<std::pair<std::string, std::string>> out;
  MDB_txn* t;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &t);
  if (rc != 0) return LmdbError(rc, "txn_begin", dir_);
  MDB_dbi dbi;
  rc = mdb_dbi_open(t, table.c_str(), 0, &dbi);
  if (rc == MDB_NOTFOUND) {
    mdb_txn_abort(t);
    return out;
  }
  if (rc != 0) {
    mdb_txn_abort(t);
    return LmdbError(rc, "dbi_open " + table, dir_);
  }
  MDB_cursor* c;
  rc = mdb_cursor_open(t, dbi, &c);
  MDB_val k, v;
  for (rc = rc == 0 ? mdb_cursor_get(c, &k, &v, MDB_FIRST) : rc; rc == 0;
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    out.emplace_back(std::string(View(k)), std::string(View(v)));
  }
  mdb_cursor_close(c);
  mdb_txn_abort(t);
  if (rc != MDB_NOTFOUND) return LmdbError(rc, "cursor_get " + table, dir_);
  return out;
}

}  // namespace shardtx::engine
