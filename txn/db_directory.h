// DbDirectory: the layout of a database directory, and the claim on it.
//
//   PATH/SHARDTX      the manifest: "format N", "shards N", "partitioning P" and, in the
//                     shared log layout only, "log shared" (one per line), written once,
//                     atomically (temp file, fsync, rename, fsync of PATH)
//   PATH/LOCK         held (flock) while a Database has the directory open
//   PATH/shard-NNN/   one per shard (see engine::Shard)
//   PATH/raft-NNN/    a replicated database only: shard NNN's Raft log and snapshots (libraft's
//                     raft_uv), beside the shard's directory, not in it (an install of a snapshot
//                     replaces the shard's directory whole: ShardReplica::Restore)
//   PATH/log/         the log all shards share (Options::LogLayout::kShared only)
//
// A directory with no manifest must hold nothing else (a LOCK, a manifest's temp file).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "shardtx/env.h"
#include "shardtx/options.h"

namespace shardtx::txn {

// A small file's contents (at most 4 KiB: larger is kDataLoss).
absl::StatusOr<std::string> ReadSmallFile(Env* env, const std::string& path);
// Writes a small file atomically: temp file (dir/name.tmp), fsync, rename, fsync of the directory.
absl::Status WriteFileAtomically(Env* env, const std::string& dir, const std::string& name,
                                 const std::string& data);

class DbDirectory {
 public:
  // The manifest's format. 2: LMDB values carry checksums (engine/stored_value.h). A format-1
  // directory is upgraded: each shard's store when it opens, then the manifest
  // (RecordCurrentFormat).
  static constexpr uint32_t kFormatVersion = 2;
  // The format of a database in the shared log layout: format 2 plus the line "log shared",
  // which it requires (builds that know only format 2 refuse it as newer).
  static constexpr uint32_t kSharedLogFormatVersion = 3;
  // The most shards a database may have.
  static constexpr uint32_t kMaxShards = 1024;

  // Opens options.path (created, durably, when missing and options.create_if_missing), takes
  // its lock, and reads its manifest, or writes one for a new database. Errors: kNotFound (no
  // database, not to be created), kFailedPrecondition (something else is there; a newer
  // format), kPermissionDenied (not writable), kInvalidArgument (the options disagree with
  // the manifest: shard count, partitioning), kDataLoss (a corrupt manifest), the lock's
  // errors when another process holds it.
  static absl::StatusOr<std::unique_ptr<DbDirectory>> Open(Env* env, const Options& options);

  // The number of shards on record (or chosen, for a new database).
  uint32_t num_shards() const { return num_shards_; }
  // The directory of shard `i`.
  std::string ShardDir(uint32_t i) const;
  // The Raft directory of shard `i` (a replicated database).
  std::string RaftDir(uint32_t i) const;
  // Whether the shards share one log (Options::LogLayout::kShared), as the manifest says.
  bool shared_log() const { return shared_log_; }
  // The shared log's directory (meaningful when shared_log()).
  std::string LogDir() const { return path_ + "/log"; }
  // Records this build's format in the manifest if it holds an older one: called once every
  // shard has opened (and so upgraded its store).
  absl::Status RecordCurrentFormat();
  // Gives up the lock.
  void Unlock() { lock_.reset(); }
  // Writes a copy of the manifest into directory `dir` the way Open writes one (atomically,
  // synced), for a backup. Errors: the Env's; kDataLoss if the manifest is corrupt.
  absl::Status CopyManifestTo(Env* env, const std::string& dir) const;

 private:
  DbDirectory(Env* env, std::string path, uint32_t num_shards, uint32_t format,
              std::string partitioning, bool shared_log, std::unique_ptr<FileLock> lock)
      : env_(env),
        path_(std::move(path)),
        num_shards_(num_shards),
        format_(format),
        partitioning_(std::move(partitioning)),
        shared_log_(shared_log),
        lock_(std::move(lock)) {}

  Env* const env_;
  const std::string path_;
  const uint32_t num_shards_;
  uint32_t format_;  // as the manifest records it
  const std::string partitioning_;
  const bool shared_log_;
  std::unique_ptr<FileLock> lock_;
};

}  // namespace shardtx::txn
