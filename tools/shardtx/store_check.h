// `check`'s per-shard store step: the shard's LMDB opens (read-only) and ShardStore::Check
// passes: every value of every table against its checksum, every key found by a lookup, and
// the store digest against the one the last checkpoint recorded.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shardtx::cli {

struct StoreReport {
  bool opened = false;
  uint64_t entries = 0;               // read and decoded
  uint64_t applied_lsn = 0;           // LMDB's meta (valid when opened)
  std::vector<std::string> problems;  // each names the shard's store and the key where known
};

// Verifies the store in lmdb_dir. Never writes, not even LMDB's reader table: REQUIRES no
// process has the store open.
StoreReport VerifyStore(const std::string& lmdb_dir);

// VerifyStore in a child process, so that damage to LMDB's own structure that crashes the
// reader (LMDB trusts its page pointers) becomes a problem in the report, not a crash of the
// tool. REQUIRES: the calling process has no other threads.
StoreReport VerifyStoreIsolated(const std::string& lmdb_dir);

}  // namespace shardtx::cli
