// Copies of one shard for a backup: its LMDB store (ShardStore::CopyTo) and a stretch of its log
// (wal::CopyLog). See Database::Backup and docs/architecture.md for the protocol around them.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/lmdb_store.h"
#include "engine/shard.h"
#include "util/status_macros.h"
#include "wal/log_copy.h"

namespace shardtx::engine {

namespace {

absl::Status FileError(absl::string_view op, const std::string& path, int err) {
  const std::string msg = absl::StrCat(op, " ", path, ": ", std::strerror(err));
  if (err == EEXIST) return absl::AlreadyExistsError(msg);
  if (err == EACCES || err == EPERM || err == EROFS) return absl::PermissionDeniedError(msg);
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(msg);
  return absl::InternalError(msg);
}

// A file descriptor, closed when it goes out of scope (errors then ignored: call Close).
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  int get() const { return fd_; }
  absl::Status Close(const std::string& path) {
    const int fd = fd_;
    fd_ = -1;
    return ::close(fd) == 0 ? absl::OkStatus() : FileError("close", path, errno);
  }

 private:
  int fd_;
};

}  // namespace

absl::Status ShardStore::CopyToFd(int fd, const std::string& what) {
  // A pinned view for as long as the copy runs: Grow waits for it, since LMDB forbids resizing
  // the map while any transaction (here, the copy's own read transaction) is active.
  ASSIGN_OR_RETURN(std::unique_ptr<ReadView> hold, Pin());
  // Compacted: free pages are left out and the pages renumbered, so the copy is no larger
  // than the live data. LMDB streams it through two buffers and a writer thread, writing
  // sequentially (a pipe will do).
  if (int rc = mdb_env_copyfd2(env_, fd, MDB_CP_COMPACT); rc != 0) {
    return LmdbError(rc, "copy to " + what, dir_);
  }
  return absl::OkStatus();
}

absl::Status ShardStore::CopyTo(const std::string& dir) {
  const std::string path = dir + "/data.mdb";
  ScopedFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (fd.get() < 0) return FileError("create", path, errno);
  RETURN_IF_ERROR(CopyToFd(fd.get(), path));
  if (::fsync(fd.get()) != 0) return FileError("fsync", path, errno);
  return fd.Close(path);
}

absl::Status Shard::CopyStoreToFd(int fd) { return StoreRef()->CopyToFd(fd, "a stream"); }

absl::StatusOr<Lsn> Shard::CopyStoreTo(const std::string& shard_dir) {
  Env* env = options_.env;
  const std::string dir = shard_dir + "/lmdb";
  RETURN_IF_ERROR(env->CreateDir(dir));
  RETURN_IF_ERROR(StoreRef()->CopyTo(dir));
  // The copy's applied LSN, read from the copy itself: the snapshot it holds may be newer than
  // any applied LSN this shard has reported.
  Lsn applied;
  {
    ASSIGN_OR_RETURN(std::unique_ptr<ShardStore> copy, ShardStore::Open(dir, StoreOptions{}));
    applied = copy->meta().applied_lsn;
  }
  // Opening it made a lock file; the copy's first real open makes its own.
  RETURN_IF_ERROR(env->RemoveFile(dir + "/lock.mdb"));
  RETURN_IF_ERROR(env->SyncDir(dir));
  return applied;
}

absl::Status Shard::CopyWalTo(const std::string& shard_dir, Lsn from, Lsn to) {
  return wal::CopyLog(options_.env, options_.dir + "/wal", shard_dir + "/wal", from, to);
}

}  // namespace shardtx::engine
