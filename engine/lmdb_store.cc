#include "engine/lmdb_store.h"

#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <optional>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "engine/lmdb_util.h"
#include "engine/stored_value.h"
#include "util/coding.h"
#include "util/kill_point.h"
#include "util/status_macros.h"

namespace shardtx::engine {

SHARDTX_DEFINE_KILL_POINT(before_lmdb_commit, "checkpoint.before_lmdb_commit");
SHARDTX_DEFINE_KILL_POINT(between_lmdb_chunks, "checkpoint.between_lmdb_chunks");

namespace {

// LMDB's MDB_MAP_FULL as LmdbError reports it: the map must grow, and the work start over.
bool IsMapFull(const absl::Status& s) {
  return absl::IsResourceExhausted(s) && s.message().find("MDB_MAP_FULL") != std::string::npos;
}

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

  // Upgrading a format-1 store rewrites every value in this one transaction: a map too small for
  // the result grows, and the transaction starts over.
  for (int attempt = 0;; ++attempt) {
    bool creating = false;
    absl::Status s = InitTxn(&creating);
    if (s.ok()) return creating ? SyncMetaPage() : absl::OkStatus();
    if (!IsMapFull(s) || attempt >= 20) {
      return s;
    }
    map_size_ *= 2;
    if ((rc = mdb_env_set_mapsize(env_, map_size_)) != 0) return LmdbError(rc, "set_mapsize", dir_);
    ++growths_;
  }
}

absl::Status ShardStore::InitTxn(bool* creating) {
  MDB_txn* t;
  int rc = mdb_txn_begin(env_, nullptr, options_.read_only ? MDB_RDONLY : 0, &t);
  if (rc != 0) return LmdbError(rc, "txn_begin", dir_);
  ScopedWriteTxn txn(t);  // committed even when read-only: that keeps the table handles
  // Only a store never written gets its tables created: in one that was, a missing table is
  // damage (say, to the page naming the tables), never a reason to start afresh.
  MDB_envinfo info;
  if ((rc = mdb_env_info(env_, &info)) != 0) return LmdbError(rc, "env_info", dir_);
  const bool fresh = info.me_last_txnid == 0;
  const unsigned create = fresh && !options_.read_only ? MDB_CREATE : 0;
  for (auto [name, dbi] : {std::pair{kDataTable, &data_dbi_}, std::pair{kMetaTable, &meta_dbi_}}) {
    rc = mdb_dbi_open(txn.get(), name, create, dbi);
    if (rc == MDB_NOTFOUND && fresh) {
      return absl::NotFoundError(absl::StrCat("LMDB ", dir_, ": no store here"));
    }
    if (rc == MDB_NOTFOUND) {
      return absl::DataLossError(absl::StrCat("LMDB ", dir_, ": table '", name,
                                              "' is missing from a store that has been written"));
    }
    if (rc != 0) return LmdbError(rc, absl::StrCat("dbi_open ", name), dir_);
  }
  meta_ = StoreMeta{};
  digest_ = StoreDigest{};
  ASSIGN_OR_RETURN(const uint32_t found, ReadFormat(txn.get()));
  *creating = found == 0;
  if (*creating && !fresh) {  // as with a missing table: never start a damaged store afresh
    return absl::DataLossError(absl::StrCat(
        "LMDB ", dir_, ": format_version is missing from a store that has been written"));
  }
  if (found > kFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "LMDB ", dir_, ": format version ", found, " is newer than this build's ", kFormatVersion));
  }
  if (options_.read_only && found < 2) {
    return found == 0 ? absl::NotFoundError(absl::StrCat("LMDB ", dir_, ": no format_version"))
                      : absl::FailedPreconditionError(absl::StrCat(
                            "LMDB ", dir_, ": format version 1; open the database once (not "
                            "read-only) with this build to upgrade it"));
  }
  if (*creating) {
    RETURN_IF_ERROR(PutMetaFields(txn.get(), meta_, digest_));
  } else if (found == 1) {
    RETURN_IF_ERROR(UpgradeFromFormat1(txn.get()));
  } else {
    for (auto [key, field] :
         {std::pair{kAppliedLsnKey, &meta_.applied_lsn}, std::pair{kMaxTsKey, &meta_.max_ts}}) {
      ASSIGN_OR_RETURN(std::optional<std::string> v, GetMeta(txn.get(), key));
      absl::string_view in = v.has_value() ? absl::string_view(*v) : absl::string_view();
      if (!v.has_value() || !GetFixed64(&in, field) || !in.empty()) {
        return absl::DataLossError(
            absl::StrCat("LMDB ", dir_, ": missing or corrupt meta field ", key));
      }
    }
    ASSIGN_OR_RETURN(std::optional<std::string> d, GetMeta(txn.get(), kDigestKey));
    // (Not d.value_or(""): that is a temporary, gone before `in` is read.)
    absl::string_view in = d.has_value() ? absl::string_view(*d) : absl::string_view();
    if (!d.has_value() || !GetFixed64(&in, &digest_.entries) || !GetFixed64(&in, &digest_.sum) ||
        !in.empty()) {
      return absl::DataLossError(absl::StrCat("LMDB ", dir_, ": missing or corrupt digest"));
    }
  }
  meta_.format_version = kFormatVersion;
  if ((rc = txn.Commit()) != 0) return LmdbError(rc, "txn_commit", dir_);
  // An existing store's transaction here only read: nothing to sync, no fsync added to Open.
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> ShardStore::ReadFormat(MDB_txn* txn) {
  MDB_val k = Val(kFormatKey), v;
  int rc = mdb_get(txn, meta_dbi_, &k, &v);
  if (rc == MDB_NOTFOUND) return 0;
  if (rc != 0) return LmdbError(rc, "get format_version", dir_);
  // Format 1 stored the bare u32; later formats seal it like every meta value.
  absl::string_view in = View(v);
  if (in.size() == 4 && DecodeFixed32(in.data()) == 1) return 1;
  absl::string_view value;
  uint32_t fv;
  if (DecodeMeta(kFormatKey, in, &value) != StoredState::kOk || !GetFixed32(&value, &fv) ||
      !value.empty() || fv < 2) {
    return absl::DataLossError(absl::StrCat("LMDB ", dir_, ": corrupt format_version"));
  }
  return fv;
}

absl::StatusOr<std::optional<std::string>> ShardStore::GetMeta(MDB_txn* txn, absl::string_view key) {
  MDB_val k = Val(key), v;
  int rc = mdb_get(txn, meta_dbi_, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string>();
  if (rc != 0) return LmdbError(rc, "get meta", dir_);
  absl::string_view value;
  if (StoredState st = DecodeMeta(key, View(v), &value); st != StoredState::kOk) {
    return absl::DataLossError(
        absl::StrCat("LMDB ", dir_, ": meta field ", key, ": ", StoredStateName(st)));
  }
  return std::optional<std::string>(std::string(value));
}

absl::Status ShardStore::PutMeta(MDB_txn* txn, absl::string_view key, absl::string_view value) {
  std::string sealed;
  EncodeMeta(&sealed, key, value);
  MDB_val k = Val(key), v = Val(sealed);
  const int rc = mdb_put(txn, meta_dbi_, &k, &v, 0);
  return rc == 0 ? absl::OkStatus() : LmdbError(rc, absl::StrCat("put meta ", key), dir_);
}

absl::Status ShardStore::PutDigest(MDB_txn* txn, const StoreDigest& d) {
  std::string buf;
  PutFixed64(&buf, d.entries);
  PutFixed64(&buf, d.sum);
  return PutMeta(txn, kDigestKey, buf);
}

absl::Status ShardStore::PutMetaFields(MDB_txn* txn, const StoreMeta& meta,
                                       const StoreDigest& digest) {
  std::string buf;
  PutFixed32(&buf, kFormatVersion);
  RETURN_IF_ERROR(PutMeta(txn, kFormatKey, buf));
  for (auto [key, value] :
       {std::pair{kAppliedLsnKey, meta.applied_lsn}, std::pair{kMaxTsKey, meta.max_ts}}) {
    buf.clear();
    PutFixed64(&buf, value);
    RETURN_IF_ERROR(PutMeta(txn, key, buf));
  }
  return PutDigest(txn, digest);
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

absl::Status ShardStore::Decode(absl::string_view key, absl::string_view stored, Timestamp* ts,
                               absl::string_view* value) const {
  const StoredState st = DecodeData(key, stored, ts, value);
  if (st == StoredState::kOk) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat("LMDB ", dir_, ": ", StoredStateName(st),
                                          " in the value of key '", absl::CHexEscape(key), "'"));
}

ReadView::~ReadView() { store_->Release(txn_); }

absl::StatusOr<std::optional<Found>> ReadView::Get(absl::string_view key) {
  MDB_val k = Val(key), v;
  int rc = mdb_get(txn_, store_->data_dbi_, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<Found>();
  if (rc != 0) return LmdbError(rc, "get", store_->dir_);
  Found f;
  absl::string_view value;
  RETURN_IF_ERROR(store_->Decode(key, View(v), &f.ts, &value));
  f.value.assign(value.data(), value.size());
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
    if (absl::Status s = store_->Decode(View(k), View(v), &ts, &value); !s.ok()) {
      mdb_cursor_close(c);
      return s;
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
    if (absl::Status s = store_->Decode(View(k), View(v), &stored_ts, &value); !s.ok()) {
      mdb_cursor_close(c);
      return s;
    }
    if (stored_ts > ts) {
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
    if (!IsMapFull(s) || attempt >= 20) {
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
  ScopedCursor cursor;
  if ((rc = cursor.Open(t, data_dbi_)) != 0) return LmdbError(rc, "cursor_open", dir_);
  // The digest changes with every entry and is written in every transaction, so that each
  // committed chunk leaves LMDB with a digest that matches its entries. digest_ follows the
  // commits; `digest` runs ahead of them.
  StoreDigest digest = digest_;
  // The data goes in chunks of about chunk_bytes, each its own transaction, so that the disk
  // never has a whole checkpoint to write back at once: a WAL fsync issued meanwhile waits for
  // one chunk, not for all of it. Only the last transaction records applied_lsn (and syncs its
  // meta page), so a crash between chunks, or one that undoes the last chunk's unsynced meta
  // page, leaves LMDB with some newer versions and the old applied_lsn: redo then installs the
  // same or newer versions above them, which reads see first.
  uint64_t chunk = 0;
  auto chunk_start = std::chrono::steady_clock::now();
  auto next_chunk = [&]() -> absl::Status {
    RETURN_IF_ERROR(PutDigest(t, digest));
    cursor.Reset();
    if (int r = txn->Commit(); r != 0) return LmdbError(r, "txn_commit (chunk)", dir_);
    digest_ = digest;
    chunks_.fetch_add(1, std::memory_order_relaxed);
    SHARDTX_KILL_POINT("checkpoint.between_lmdb_chunks");
    if (between_chunks) between_chunks(std::chrono::steady_clock::now() - chunk_start);
    chunk_start = std::chrono::steady_clock::now();
    if (int r = mdb_txn_begin(env_, nullptr, 0, &t); r != 0) return LmdbError(r, "txn_begin", dir_);
    txn.emplace(t);
    if (int r = cursor.Open(t, data_dbi_); r != 0) return LmdbError(r, "cursor_open", dir_);
    chunk = 0;
    return absl::OkStatus();
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
            // Positioned on the old entry, if any: its check leaves the digest, and the put
            // replaces it in place instead of searching the tree again.
            MDB_val k = Val(key), old;
            rc = mdb_cursor_get(cursor.get(), &k, &old, MDB_SET);
            const bool had = rc == 0;
            if (rc != 0 && rc != MDB_NOTFOUND) return false;
            rc = 0;
            if (had) digest.Remove(StoredDataCheck(View(old)));
            if (v.tombstone) {
              if (had) rc = mdb_cursor_del(cursor.get(), 0);
            } else {
              digest.Add(EncodeData(&buf, key, v.ts, v.value));
              MDB_val val = Val(buf);
              rc = mdb_cursor_put(cursor.get(), &k, &val, had ? MDB_CURRENT : 0);
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
      if (full) RETURN_IF_ERROR(next_chunk());
    }
  }
  cursor.Reset();
  for (const TableWrite& w : table_writes) {
    MDB_dbi dbi;
    if ((rc = mdb_dbi_open(t, w.table.c_str(), MDB_CREATE, &dbi)) != 0) {
      return LmdbError(rc, "dbi_open " + w.table, dir_);
    }
    MDB_val k = Val(w.key), old;
    rc = mdb_get(t, dbi, &k, &old);
    if (rc == 0) {
      digest.Remove(StoredTableCheck(View(old)));
    } else if (rc != MDB_NOTFOUND) {
      return LmdbError(rc, "table read " + w.table, dir_);
    }
    const bool had = rc == 0;
    if (w.value.has_value()) {
      digest.Add(EncodeTableValue(&buf, w.table, w.key, *w.value));
      MDB_val v = Val(buf);
      rc = mdb_put(t, dbi, &k, &v, 0);
    } else {
      rc = had ? mdb_del(t, dbi, &k, nullptr) : 0;
    }
    if (rc != 0) return LmdbError(rc, "table write " + w.table, dir_);
  }
  StoreMeta next = meta_;
  next.applied_lsn = std::max(meta_.applied_lsn, applied_lsn);
  next.max_ts = std::max(meta_.max_ts, max_ts);
  RETURN_IF_ERROR(PutMetaFields(t, next, digest));
  SHARDTX_KILL_POINT("checkpoint.before_lmdb_commit");
  if ((rc = txn->Commit()) != 0) return LmdbError(rc, "txn_commit", dir_);
  meta_ = next;  // what LMDB holds now, durable or not
  digest_ = digest;
  chunks_.fetch_add(1, std::memory_order_relaxed);
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
    absl::string_view value;
    if (StoredState st = DecodeTableValue(table, View(k), View(v), &value); st != StoredState::kOk) {
      mdb_cursor_close(c);
      mdb_txn_abort(t);
      return absl::DataLossError(absl::StrCat("LMDB ", dir_, ": ", StoredStateName(st),
                                              " in table ", table, ", key '",
                                              absl::CHexEscape(View(k)), "'"));
    }
    out.emplace_back(std::string(View(k)), std::string(value));
  }
  mdb_cursor_close(c);
  mdb_txn_abort(t);
  if (rc != MDB_NOTFOUND) return LmdbError(rc, "cursor_get " + table, dir_);
  return out;
}

}  // namespace shardtx::engine
