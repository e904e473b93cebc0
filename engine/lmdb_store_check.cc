// ShardStore's whole-store passes: the check of every value and of the digest, and the upgrade
// of a format-1 store. The everyday paths (open, read, checkpoint) are in lmdb_store.cc.
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "engine/lmdb_store.h"
#include "engine/lmdb_util.h"
#include "engine/stored_value.h"
#include "util/coding.h"
#include "util/status_macros.h"

namespace shardtx::engine {

namespace {

std::string Printable(absl::string_view s) {
  constexpr size_t kMax = 64;
  std::string out = absl::CHexEscape(s.substr(0, kMax));
  if (s.size() > kMax) absl::StrAppend(&out, "...(", s.size(), " bytes)");
  return out;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ShardStore::TableNames(MDB_txn* txn) {
  MDB_dbi main;
  int rc = mdb_dbi_open(txn, nullptr, 0, &main);
  if (rc != 0) return LmdbError(rc, "dbi_open (main)", dir_);
  ScopedCursor c;
  if ((rc = c.Open(txn, main)) != 0) return LmdbError(rc, "cursor_open (main)", dir_);
  std::vector<std::string> names;
  MDB_val k, v;
  for (rc = mdb_cursor_get(c.get(), &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(c.get(), &k, &v, MDB_NEXT)) {
    std::string name(View(k));
    if (name != kDataTable && name != kMetaTable) names.push_back(std::move(name));
  }
  if (rc != MDB_NOTFOUND) return LmdbError(rc, "cursor_get (main)", dir_);
  return names;
}

absl::Status ShardStore::UpgradeFromFormat1(MDB_txn* txn) {
  // Format 1: data values u64 ts | value, table and meta values bare, no digest.
  std::string buf, key;
  ScopedCursor c;
  int rc = c.Open(txn, data_dbi_);
  if (rc != 0) return LmdbError(rc, "cursor_open", dir_);
  MDB_val k, v;
  for (rc = mdb_cursor_get(c.get(), &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(c.get(), &k, &v, MDB_NEXT)) {
    absl::string_view old = View(v);
    if (old.size() < 8) {
      return absl::DataLossError(absl::StrCat("LMDB ", dir_, ": upgrading from format 1: key '",
                                              Printable(View(k)), "' has a malformed value"));
    }
    digest_.Add(EncodeData(&buf, View(k), DecodeFixed64(old.data()), old.substr(8)));
    // The key LMDB returned points into the page the put rewrites: pass a copy.
    key.assign(static_cast<const char*>(k.mv_data), k.mv_size);
    MDB_val kc = Val(key), nv = Val(buf);
    if ((rc = mdb_cursor_put(c.get(), &kc, &nv, MDB_CURRENT)) != 0) break;
  }
  if (rc != MDB_NOTFOUND) return LmdbError(rc, "upgrade data", dir_);
  ASSIGN_OR_RETURN(std::vector<std::string> tables, TableNames(txn));
  for (const std::string& table : tables) {
    MDB_dbi dbi;
    if ((rc = mdb_dbi_open(txn, table.c_str(), 0, &dbi)) != 0) {
      return LmdbError(rc, "dbi_open " + table, dir_);
    }
    if ((rc = c.Open(txn, dbi)) != 0) return LmdbError(rc, "cursor_open " + table, dir_);
    for (rc = mdb_cursor_get(c.get(), &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c.get(), &k, &v, MDB_NEXT)) {
      digest_.Add(EncodeTableValue(&buf, table, View(k), View(v)));
      key.assign(static_cast<const char*>(k.mv_data), k.mv_size);
      MDB_val kc = Val(key), nv = Val(buf);
      if ((rc = mdb_cursor_put(c.get(), &kc, &nv, MDB_CURRENT)) != 0) break;
    }
    if (rc != MDB_NOTFOUND) return LmdbError(rc, "upgrade table " + table, dir_);
  }
  c.Reset();
  constexpr const char* kLsnKeys[] = {kAppliedLsnKey, kMaxTsKey};
  uint64_t* fields[] = {&meta_.applied_lsn, &meta_.max_ts};
  for (int i = 0; i < 2; ++i) {
    MDB_val mk = Val(kLsnKeys[i]), mv;
    rc = mdb_get(txn, meta_dbi_, &mk, &mv);
    if (rc == MDB_NOTFOUND) continue;
    if (rc != 0) return LmdbError(rc, "get meta", dir_);
    absl::string_view in = View(mv);
    if (!GetFixed64(&in, fields[i]) || !in.empty()) {
      return absl::DataLossError(absl::StrCat(
          "LMDB ", dir_, ": upgrading from format 1: corrupt meta field ", kLsnKeys[i]));
    }
  }
  return PutMetaFields(txn, &meta_, digest_);
}

absl::StatusOr<StoreCheck> ShardStore::Check(const std::function<void(uint64_t)>& progress) {
  ASSIGN_OR_RETURN(std::unique_ptr<ReadView> view, Pin());
  MDB_txn* txn = view->txn_;
  StoreCheck out;
  auto problem = [&](absl::string_view table, absl::string_view key, uint64_t index,
                     absl::string_view what) {
    out.problems.push_back(
        absl::StrCat("table ", table, ", entry ", index, ", key '", Printable(key), "': ", what));
  };
  // Meta: every value sealed; the digest as recorded.
  ScopedCursor c;
  int rc = c.Open(txn, meta_dbi_);
  if (rc != 0) return LmdbError(rc, "cursor_open meta", dir_);
  MDB_val k, v;
  uint64_t index = 0;
  bool have_digest = false;
  for (rc = mdb_cursor_get(c.get(), &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(c.get(), &k, &v, MDB_NEXT), ++index) {
    absl::string_view value;
    const StoredState st = DecodeMeta(View(k), View(v), &value);
    if (st != StoredState::kOk) {
      ++out.bad_values;
      problem(kMetaTable, View(k), index, StoredStateName(st));
    } else if (View(k) == kDigestKey) {
      have_digest = GetFixed64(&value, &out.recorded.entries) &&
                    GetFixed64(&value, &out.recorded.sum) && value.empty();
    }
  }
  if (rc != MDB_NOTFOUND) return LmdbError(rc, "cursor_get meta", dir_);
  if (!have_digest) out.problems.push_back("table meta: the digest is missing or corrupt");

  // Data and the other tables: each value against its check, all of them against the digest.
  ASSIGN_OR_RETURN(std::vector<std::string> tables, TableNames(txn));
  tables.insert(tables.begin(), kDataTable);
  for (const std::string& table : tables) {
    MDB_dbi dbi = data_dbi_;
    if (table != kDataTable && (rc = mdb_dbi_open(txn, table.c_str(), 0, &dbi)) != 0) {
      return LmdbError(rc, "dbi_open " + table, dir_);
    }
    if ((rc = c.Open(txn, dbi)) != 0) return LmdbError(rc, "cursor_open " + table, dir_);
    index = 0;
    for (rc = mdb_cursor_get(c.get(), &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c.get(), &k, &v, MDB_NEXT), ++index) {
      absl::string_view value;
      StoredState st;
      if (table == kDataTable) {
        Timestamp ts;
        st = DecodeData(View(k), View(v), &ts, &value);
        out.computed.Add(StoredDataCheck(View(v)));
      } else {
        st = DecodeTableValue(table, View(k), View(v), &value);
        out.computed.Add(StoredTableCheck(View(v)));
      }
      if (st != StoredState::kOk) {
        ++out.bad_values;
        problem(table, View(k), index, StoredStateName(st));
      }
      if (++out.entries % (64 << 10) == 0 && progress) progress(out.entries);
    }
    if (rc != MDB_NOTFOUND) {
      // Damage to LMDB's own structure ends the walk of this table; report it, go on.
      out.problems.push_back(absl::StrCat("table ", table, ": unreadable after entry ", index, ": ",
                                          mdb_strerror(rc)));
    }
  }
  if (have_digest && out.recorded != out.computed) {
    out.problems.push_back(absl::StrCat(
        "digest mismatch: the last checkpoint recorded ", out.recorded.entries, " entries (sum ",
        absl::Hex(out.recorded.sum), "), the store holds ", out.computed.entries, " (sum ",
        absl::Hex(out.computed.sum), "): entries were lost, added or altered"));
  }
  return out;
}

}  // namespace shardtx::engine
