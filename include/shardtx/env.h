// shardtx/env.h: the file-system seam.
//
// Every file operation of the write-ahead log and of the tools that read log files goes through
// an Env, so that tests can crash, tear or fail them (see FaultInjectionEnv in tests/). LMDB does
// its own I/O and is not routed through the Env.
//
// Thread safety: an Env and its File objects may be used from many threads at once; a single
// File must not be written at overlapping offsets concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace shardtx {

// An open file, positioned I/O only. Closed by the destructor.
class File {
 public:
  virtual ~File() = default;

  // Writes all of `data` at `offset`, extending the file if needed.
  // Errors: kInternal/kResourceExhausted (ENOSPC) with the path and errno text.
  virtual absl::Status Write(uint64_t offset, absl::string_view data) = 0;

  // Reads up to `n` bytes at `offset` into `scratch`; returns the bytes read (fewer only at end
  // of file).
  virtual absl::StatusOr<size_t> Read(uint64_t offset, size_t n, char* scratch) = 0;

  // Makes every completed Write durable (fdatasync). After a failed Sync the file's durable
  // contents are unknown: callers must treat the failure as final.
  virtual absl::Status Sync() = 0;

  // Reserves [offset, offset+len) on disk (fallocate), extending the size to cover it. Returns
  // kUnimplemented when the file system does not support it; the caller then writes zeros.
  virtual absl::Status Allocate(uint64_t offset, uint64_t len) = 0;

  virtual absl::StatusOr<uint64_t> Size() = 0;
};

// Held while a directory is in use by one process; released by the destructor.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

class Env {
 public:
  virtual ~Env() = default;

  // The process-wide POSIX Env. Never deleted.
  static Env* Default();

  enum class OpenMode {
    kRead,            // existing file, read only
    kReadWrite,       // existing file
    kCreate,          // create if missing, read-write
    kCreateExclusive  // fail with kAlreadyExists if present
  };
  virtual absl::StatusOr<std::unique_ptr<File>> OpenFile(const std::string& path,
                                                         OpenMode mode) = 0;
  virtual absl::Status RemoveFile(const std::string& path) = 0;
  // Atomically replaces `to`. Durable only after SyncDir of the directory.
  virtual absl::Status RenameFile(const std::string& from, const std::string& to) = 0;
  // Creates the directory if missing (not its parents). OK if it exists.
  virtual absl::Status CreateDir(const std::string& path) = 0;
  // fsync of a directory: makes file creation, removal and renames in it durable.
  virtual absl::Status SyncDir(const std::string& path) = 0;
  // Names (not paths) of the entries of a directory, without "." and "..".
  virtual absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) = 0;
  // OK if it exists, kNotFound if not.
  virtual absl::Status FileExists(const std::string& path) = 0;
  // Takes an exclusive advisory lock on `path` (created if missing) and writes this process's
  // pid into it. kFailedPrecondition "already open by pid N" if another process holds it.
  virtual absl::StatusOr<std::unique_ptr<FileLock>> LockFile(const std::string& path) = 0;
};

// Creates the directory `path` if missing (not its parents) and makes its entry durable by
// fsyncing the directory that holds it (SyncDir), also when it already existed: a run that
// crashed after creating it may not have synced it. Trailing slashes do not change which
// directory that is: for "a/db", "a/db/" and "a/db//" it is "a"; for "db" it is "."; for "/x"
// it is "/". Errors: kInvalidArgument for an empty path; otherwise those of CreateDir (the
// directory could not be created, or a non-directory is in the way) and of SyncDir.
absl::Status CreateDirDurably(Env* env, const std::string& path);

}  // namespace shardtx
