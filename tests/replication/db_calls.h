// One-key transactions on a Database, for the replication tests that drive Databases over Raft.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "shardtx/database.h"

namespace shardtx::replication {

// Puts key = value in a transaction of its own and commits it.
inline absl::Status PutOne(Database& db, const std::string& key, const std::string& value) {
  std::unique_ptr<Transaction> txn = db.Begin();
  if (absl::Status s = txn->Put(key, value); !s.ok()) return s;
  return txn->Commit();
}

// The key's value as a new transaction reads it; nullopt if absent (or the read failed).
inline std::optional<std::string> ReadOne(Database& db, const std::string& key) {
  std::unique_ptr<Transaction> txn = db.Begin();
  auto v = txn->Get(key);
  if (!v.ok()) return std::nullopt;
  return *v;
}

}  // namespace shardtx::replication
