// Small LMDB helpers shared by the store's source files (engine/lmdb_store*.cc). Internal.
#pragma once

#include "absl/strings/string_view.h"
#include "lmdb.h"

namespace shardtx::engine {

// The store's tables and meta keys (engine/stored_value.h has the value formats).
inline constexpr char kDataTable[] = "data";
inline constexpr char kMetaTable[] = "meta";
inline constexpr char kAppliedLsnKey[] = "applied_lsn";
inline constexpr char kMaxTsKey[] = "max_ts";
inline constexpr char kFormatKey[] = "format_version";
inline constexpr char kDigestKey[] = "digest";

inline MDB_val Val(absl::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
inline absl::string_view View(const MDB_val& v) {
  return absl::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

// RAII for a write transaction: aborted unless committed.
class ScopedWriteTxn {
 public:
  explicit ScopedWriteTxn(MDB_txn* t) : txn_(t) {}
  ~ScopedWriteTxn() {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
  }
  ScopedWriteTxn(const ScopedWriteTxn&) = delete;
  ScopedWriteTxn& operator=(const ScopedWriteTxn&) = delete;
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

// RAII for a cursor (of a read or write transaction, closed before the transaction ends).
class ScopedCursor {
 public:
  ScopedCursor() = default;
  ~ScopedCursor() { Reset(); }
  ScopedCursor(const ScopedCursor&) = delete;
  ScopedCursor& operator=(const ScopedCursor&) = delete;
  int Open(MDB_txn* txn, MDB_dbi dbi) {
    Reset();
    return mdb_cursor_open(txn, dbi, &c_);
  }
  void Reset() {
    if (c_ != nullptr) mdb_cursor_close(c_);
    c_ = nullptr;
  }
  MDB_cursor* get() { return c_; }

 private:
  MDB_cursor* c_ = nullptr;
};

}  // namespace shardtx::engine
