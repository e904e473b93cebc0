// Online backup (Database::Backup): a consistent copy of a live database in a new directory.
// The protocol, in order, and why (docs/architecture.md, "Online backup"):
//   1. pin each shard's WAL from min(applied LSN + 1, the oldest LSN 2PC needs) on;
//   2. copy each shard's LMDB store (one snapshot each), noting each copy's own applied LSN;
//   3. the cut: under every shard's commit lock at once, each shard's last appended LSN;
//   4. make every shard's log durable through its cut, and copy it from the pin to the cut
//      (a log shared by the shards: copied once, from the oldest record a shard needs through
//      the last cut);
//   5. all of it into a sibling `dest.partial-<pid>-<n>` (with a BACKUP note), renamed
//      to dest, and only then the manifest: until it exists no crash leaves a directory that
//      opens as a database, under either name.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/types.h"
#include "util/mutex.h"

namespace shardtx::txn {

class DatabaseImpl;

// The WAL pins of the running backup, one per shard, which the database folds into what it
// answers ShardHooks::PinnedLsn: no checkpoint truncates a shard's log from its pin on. At most
// one backup of a database at a time. Thread-safe.
class BackupPins {
 public:
  // Starts a backup of `shards` shards with every shard's whole log pinned (no truncation at
  // all). False if a backup is running already.
  bool Begin(uint32_t shards);
  // Pins shard `shard`'s log from `lsn` on instead.
  void Set(uint32_t shard, engine::Lsn lsn);
  // Ends the backup: no pins.
  void End();
  // The smaller of `pinned` and the backup's pin of `shard` (0 stands for none, in both).
  engine::Lsn Fold(uint32_t shard, engine::Lsn pinned);

 private:
  Mutex mu_;
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<engine::Lsn> pins_ ABSL_GUARDED_BY(mu_);
};

// Database::Backup of `db` into `dest` (its contract: include/shardtx/database.h), taking and
// releasing db->backup_pins(). REQUIRES: admitted through db->gate() (Close waits for it).
absl::Status RunBackup(DatabaseImpl* db, const std::string& dest);

}  // namespace shardtx::txn
