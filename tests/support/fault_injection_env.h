// FaultInjectionEnv: an Env for tests that can lose unsynced data the way a power cut does, tear
// the last write of a file, and fail chosen file operations with I/O errors or a full disk.
//
// The model of durability it enforces:
//   - A write to a file is durable once a later Sync() of that file succeeds. A Sync() that
//     fails loses the file's unsynced writes at once: they are reverted on disk, as when Linux
//     drops the dirty pages of a failed fsync (and reports success on the next one, which then
//     covers only what was written after the failure).
//   - Creating, renaming or removing a file, and creating a directory, is durable once SyncDir()
//     of its directory (both directories, for a rename) succeeds. A directory whose creation is
//     not durable vanishes in a crash with everything in it.
// SimulateCrash() puts the disk into the state the model says survives, then fails every
// operation until Reset(), as if the process had died with the machine.
//
// Thread safety: every method may be called from any thread. All file operations, including the
// base Env's I/O, run under one mutex, so a crash never interleaves with a write in flight
// (tests only: simplicity beats speed). The env must outlive every File it opened.
//
// The base Env must be backed by the real file system (the default POSIX Env): shrinking a file
// and removing a directory tree during a crash use std::filesystem.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "shardtx/env.h"
#include "util/mutex.h"

namespace shardtx::testing {

class FaultInjectionEnv : public Env {
 public:
  // The file operations that are counted (ops()) and can be failed, as bits. An operation
  // failed by a fault is not performed (a failed Write writes nothing). Reads (Read, Size,
  // ListDir, FileExists) and LockFile are never counted or failed, except after a crash.
  enum Op : uint32_t {
    kWrite = 1u << 0,
    kSync = 1u << 1,
    kOpen = 1u << 2,  // OpenFile, any mode
    kAllocate = 1u << 3,
    kRename = 1u << 4,
    kRemove = 1u << 5,
    kSyncDir = 1u << 6,
    kCreateDir = 1u << 7,
    kAllOps = (1u << 8) - 1,
  };

  struct Options {
    // Pass Sync and SyncDir on to the base Env. A test that only simulates crashes can turn this
    // off: durability is then purely the env's model, and the test runs at memory speed.
    bool sync_base = true;
  };

  // What happens to the last unsynced write of each file in a crash (every earlier unsynced
  // write is dropped).
  enum class Tear {
    kNone,     // dropped like the others
    kPrefix,   // a random prefix survives, cut at a 512-byte boundary of the file (possibly
               // none or all of it)
    kZeros,    // its range reads as zeros (the size grew, the data never came)
    kGarbage,  // its range holds random bytes
  };
  struct CrashOptions {
    Tear tear = Tear::kNone;
    uint64_t seed = 0;  // for kPrefix and kGarbage
  };

  // An injected failure. Operations not in `ops` are neither counted nor failed by it.
  struct Fault {
    uint64_t after = 1;       // the after-th matching operation from now fails (1: the next)
    bool persistent = false;  // and so does every matching operation after it
    uint32_t ops = kAllOps;
    // kInternal ("injected I/O error") or kResourceExhausted ("injected disk full (ENOSPC)").
    absl::StatusCode code = absl::StatusCode::kInternal;
  };

  explicit FaultInjectionEnv(Env* base = Env::Default());
  FaultInjectionEnv(Env* base, Options options);
  ~FaultInjectionEnv() override;

  // Crash now: revert every unsynced change on disk (see the model above), then fail every
  // operation with kInternal "simulated crash" until Reset(). Returns an error only if the
  // base Env could not restore a file (the disk under the test is broken).
  absl::Status SimulateCrash(const CrashOptions& options);
  absl::Status SimulateCrash();  // Tear::kNone
  // Crashes instead of running the n-th counted operation from now (n >= 1); that operation
  // fails with "simulated crash". Replaces an earlier CrashAfter.
  void CrashAfter(uint64_t n, const CrashOptions& options);
  void CrashAfter(uint64_t n);  // Tear::kNone
  bool crashed() const;
  // The status of the last crash (SimulateCrash's result, or that of a CrashAfter crash).
  absl::Status crash_status() const;

  // Healthy again: ends a crash, clears faults, the crash trigger and DisableAllocate, and
  // takes what is on disk now as durable (tracking starts afresh).
  void Reset();

  // Injects `fault`, replacing any earlier one.
  void InjectFault(const Fault& fault);
  // The n-th counted operation from now fails with kInternal "injected I/O error".
  void FailAfter(uint64_t n, bool persistent);
  // The same, counting and failing only Sync() (resp. Write()).
  void FailSyncAfter(uint64_t n, bool persistent);
  void FailWriteAfter(uint64_t n, bool persistent);
  // The n-th Write or Allocate from now fails with kResourceExhausted, as with ENOSPC.
  void DiskFullAfter(uint64_t n, bool persistent);
  // Removes the injected fault (not DisableAllocate).
  void ClearFaults();
  // Number of operations failed by injected faults so far.
  uint64_t faults_injected() const;

  // Allocate() returns kUnimplemented, as on file systems without fallocate (EOPNOTSUPP).
  void DisableAllocate(bool disabled = true);

  // Flips bit `bit` (0..7) of the byte at `offset` of `path` in place, bypassing tracking and
  // faults: a durable corruption.
  absl::Status FlipBit(const std::string& path, uint64_t offset, int bit);

  // Counted operations (see Op) attempted since construction, failed ones included.
  uint64_t ops() const;
  // Bytes written and not yet durable, over all files.
  uint64_t unsynced_bytes() const;

  // Env.
  absl::StatusOr<std::unique_ptr<File>> OpenFile(const std::string& path, OpenMode mode) override;
  absl::Status RemoveFile(const std::string& path) override;
  absl::Status RenameFile(const std::string& from, const std::string& to) override;
  absl::Status CreateDir(const std::string& path) override;
  absl::Status SyncDir(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) override;
  absl::Status FileExists(const std::string& path) override;
  absl::StatusOr<std::unique_ptr<FileLock>> LockFile(const std::string& path) override;

 private:
  class TrackedFile;
  struct FileState;
  struct DirOp;

  // Counts the operation and applies crash trigger and faults; an error means "do not run it".
  absl::Status BeginOp(Op op, const std::string& what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckAlive(const std::string& what) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CrashLocked(const CrashOptions& options) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::shared_ptr<FileState> StateFor(const std::string& path) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The durable image of `path`: its content with the unsynced writes reverted; nullopt if the
  // file does not exist.
  absl::StatusOr<std::optional<std::string>> DurableContent(const std::string& path)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reverts the unsynced changes of `state`'s file on disk, tearing its last write.
  absl::Status RevertFile(FileState* state, Tear tear, uint64_t seed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sets files_[path] (erasing it if null) and the state's idea of its path.
  void SetState(const std::string& path, std::shared_ptr<FileState> state)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status UndoDirOp(const DirOp& op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::string> ReadWholeFile(const std::string& path)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteWholeFile(const std::string& path, const std::string& content)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // File operations of TrackedFile.
  absl::Status FileWrite(TrackedFile* f, uint64_t offset, absl::string_view data);
  absl::StatusOr<size_t> FileRead(TrackedFile* f, uint64_t offset, size_t n, char* scratch);
  absl::Status FileSync(TrackedFile* f);
  absl::Status FileAllocate(TrackedFile* f, uint64_t offset, uint64_t len);
  absl::StatusOr<uint64_t> FileSize(TrackedFile* f);

  Env* const base_;
  const Options options_;

  mutable Mutex mu_;
  bool crashed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status crash_status_ ABSL_GUARDED_BY(mu_);
  uint64_t ops_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t crash_countdown_ ABSL_GUARDED_BY(mu_) = 0;  // 0: no crash armed
  CrashOptions crash_options_ ABSL_GUARDED_BY(mu_);
  std::optional<Fault> fault_ ABSL_GUARDED_BY(mu_);
  uint64_t fault_countdown_ ABSL_GUARDED_BY(mu_) = 0;
  bool fault_failing_ ABSL_GUARDED_BY(mu_) = false;  // a persistent fault has fired
  uint64_t faults_injected_ ABSL_GUARDED_BY(mu_) = 0;
  bool allocate_disabled_ ABSL_GUARDED_BY(mu_) = false;
  // Files by normalised path. Ordered, so that a crash visits them in a reproducible order.
  std::map<std::string, std::shared_ptr<FileState>> files_ ABSL_GUARDED_BY(mu_);
  // Directory changes not yet made durable by SyncDir, oldest first.
  std::vector<DirOp> dir_ops_ ABSL_GUARDED_BY(mu_);
};

}  // namespace shardtx::testing
