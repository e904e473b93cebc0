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
  return PutMetaFields(txn, meta_, digest_);
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
  // Calls fn(key, stored value, index) for every entry of a table, in order. The walk goes
  // leaf by leaf while reads search from the root: damage to a branch page can hide a key
  // from the search that the walk still finds, so each key is also looked up, and the keys
  // must ascend. Damage that stops the walk is reported; the check goes on with other tables.
  auto walk = [&](absl::string_view table, MDB_dbi dbi,
                  const std::function<void(absl::string_view, absl::string_view, uint64_t)>& fn)
      -> absl::Status {
    ScopedCursor c;
    int rc = c.Open(txn, dbi);
    if (rc != 0) return LmdbError(rc, absl::StrCat("cursor_open ", table), dir_);
    MDB_val k, v;
    uint64_t index = 0;
    std::string prev;
    for (rc = mdb_cursor_get(c.get(), &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c.get(), &k, &v, MDB_NEXT), ++index) {
      MDB_val found_k = k, found_v;
      if ((index > 0 && View(k) <= prev) || mdb_get(txn, dbi, &found_k, &found_v) != 0 ||
          View(found_v) != View(v)) {
        problem(table, View(k), index, "out of order, or not found by a lookup (damaged tree)");
      }
      prev.assign(static_cast<const char*>(k.mv_data), k.mv_size);
      fn(View(k), View(v), index);
    }
    if (rc != MDB_NOTFOUND) {
      out.problems.push_back(absl::StrCat("table ", table, ": unreadable after entry ", index, ": ",
                                          mdb_strerror(rc)));
    }
    return absl::OkStatus();
  };

  // Meta: every value sealed, every field present; the digest as recorded.
  bool have_digest = false;
  int fields = 0;
  RETURN_IF_ERROR(walk(kMetaTable, meta_dbi_,
                       [&](absl::string_view key, absl::string_view stored, uint64_t index) {
                         absl::string_view value;
                         const StoredState st = DecodeMeta(key, stored, &value);
                         if (st != StoredState::kOk) {
                           ++out.bad_values;
                           problem(kMetaTable, key, index, StoredStateName(st));
                           return;
                         }
                         fields += key == kFormatKey || key == kAppliedLsnKey || key == kMaxTsKey;
                         if (key == kDigestKey) {
                           have_digest = GetFixed64(&value, &out.recorded.entries) &&
                                         GetFixed64(&value, &out.recorded.sum) && value.empty();
                         }
                       }));
  if (!have_digest) out.problems.push_back("table meta: the digest is missing or corrupt");
  if (fields != 3) out.problems.push_back("table meta: a field is missing");

  // Data and the other tables: each value against its check, all of them against the digest.
  ASSIGN_OR_RETURN(std::vector<std::string> tables, TableNames(txn));
  tables.insert(tables.begin(), kDataTable);
  for (const std::string& table : tables) {
    MDB_dbi dbi = data_dbi_;
    if (table != kDataTable) {
      if (int rc = mdb_dbi_open(txn, table.c_str(), 0, &dbi); rc != 0) {
        return LmdbError(rc, "dbi_open " + table, dir_);
      }
    }
    const bool data = table == kDataTable;
    RETURN_IF_ERROR(
        walk(table, dbi, [&](absl::string_view key, absl::string_view stored, uint64_t index) {
          absl::string_view value;
          Timestamp ts;
          const StoredState st = data ? DecodeData(key, stored, &ts, &value)
                                      : DecodeTableValue(table, key, stored, &value);
          out.computed.Add(data ? StoredDataCheck(stored) : StoredTableCheck(stored));
          if (st != StoredState::kOk) {
            ++out.bad_values;
            problem(table, key, index, StoredStateName(st));
          }
          if (++out.entries % (64 << 10) == 0 && progress) progress(out.entries);
        }));
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
