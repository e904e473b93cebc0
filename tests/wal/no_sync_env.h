// NoSyncEnv: the POSIX Env with Sync and SyncDir turned into no-ops.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "shardtx/env.h"

namespace shardtx::wal::testutil {

// The POSIX Env with Sync and SyncDir turned into no-ops: for tests of what the reader makes of
// bytes on disk, which need no durability, and must not take their time from the disk's fsync
// latency (other suites share the disk). The concurrency test uses the real Env.
class NoSyncEnv final : public Env {
 public:
  static Env* Get() {
    static Env* env = new NoSyncEnv;
    return env;
  }
  absl::StatusOr<std::unique_ptr<File>> OpenFile(const std::string& path, OpenMode mode) override {
    auto f = base_->OpenFile(path, mode);
    if (!f.ok()) return f.status();
    return std::unique_ptr<File>(new NoSyncFile(std::move(*f)));
  }
  absl::Status RemoveFile(const std::string& path) override { return base_->RemoveFile(path); }
  absl::Status RenameFile(const std::string& from, const std::string& to) override {
    return base_->RenameFile(from, to);
  }
  absl::Status CreateDir(const std::string& path) override { return base_->CreateDir(path); }
  absl::Status SyncDir(const std::string&) override { return absl::OkStatus(); }
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) override {
    return base_->ListDir(path);
  }
  absl::Status FileExists(const std::string& path) override { return base_->FileExists(path); }
  absl::StatusOr<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    return base_->LockFile(path);
  }

 private:
  class NoSyncFile final : public File {
   public:
    explicit NoSyncFile(std::unique_ptr<File> f) : f_(std::move(f)) {}
    absl::Status Write(uint64_t offset, absl::string_view data) override {
      return f_->Write(offset, data);
    }
    absl::StatusOr<size_t> Read(uint64_t offset, size_t n, char* scratch) override {
      return f_->Read(offset, n, scratch);
    }
    absl::Status Sync() override { return absl::OkStatus(); }
    absl::Status Allocate(uint64_t offset, uint64_t len) override {
      return f_->Allocate(offset, len);
    }
    absl::StatusOr<uint64_t> Size() override { return f_->Size(); }

   private:
    std::unique_ptr<File> f_;
  };
  Env* const base_ = Env::Default();
};

}  // namespace shardtx::wal::testutil
