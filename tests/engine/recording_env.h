// RecordingEnv: an Env over Env::Default() that counts the bytes read through it and logs the
// directory operations (CreateDir, SyncDir), for tests of what Open costs and what it syncs.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "shardtx/env.h"

namespace shardtx::testing {

class RecordingEnv : public Env {
 public:
  // Bytes returned by File::Read since the last Reset().
  uint64_t bytes_read() const { return bytes_read_.load(); }
  // "CreateDir <path>" and "SyncDir <path>", in call order, since the last Reset().
  std::vector<std::string> dir_ops() const {
    std::lock_guard<std::mutex> l(mu_);
    return dir_ops_;
  }
  void Reset() {
    bytes_read_.store(0);
    std::lock_guard<std::mutex> l(mu_);
    dir_ops_.clear();
  }

  absl::StatusOr<std::unique_ptr<File>> OpenFile(const std::string& path, OpenMode mode) override {
    auto f = base_->OpenFile(path, mode);
    if (!f.ok()) return f.status();
    return std::unique_ptr<File>(new CountingFile(std::move(*f), &bytes_read_));
  }
  absl::Status RemoveFile(const std::string& path) override { return base_->RemoveFile(path); }
  absl::Status RenameFile(const std::string& from, const std::string& to) override {
    return base_->RenameFile(from, to);
  }
  absl::Status CreateDir(const std::string& path) override {
    Log("CreateDir " + path);
    return base_->CreateDir(path);
  }
  absl::Status SyncDir(const std::string& path) override {
    Log("SyncDir " + path);
    return base_->SyncDir(path);
  }
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) override {
    return base_->ListDir(path);
  }
  absl::Status FileExists(const std::string& path) override { return base_->FileExists(path); }
  absl::StatusOr<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    return base_->LockFile(path);
  }

 private:
  class CountingFile final : public File {
   public:
    CountingFile(std::unique_ptr<File> base, std::atomic<uint64_t>* bytes_read)
        : base_(std::move(base)), bytes_read_(bytes_read) {}
    absl::Status Write(uint64_t offset, absl::string_view data) override {
      return base_->Write(offset, data);
    }
    absl::StatusOr<size_t> Read(uint64_t offset, size_t n, char* scratch) override {
      absl::StatusOr<size_t> got = base_->Read(offset, n, scratch);
      if (got.ok()) bytes_read_->fetch_add(*got);
      return got;
    }
    absl::Status Sync() override { return base_->Sync(); }
    absl::Status Allocate(uint64_t offset, uint64_t len) override {
      return base_->Allocate(offset, len);
    }
    absl::StatusOr<uint64_t> Size() override { return base_->Size(); }

   private:
    std::unique_ptr<File> base_;
    std::atomic<uint64_t>* bytes_read_;
  };

  void Log(std::string op) {
    std::lock_guard<std::mutex> l(mu_);
    dir_ops_.push_back(std::move(op));
  }

  Env* const base_ = Env::Default();
  std::atomic<uint64_t> bytes_read_{0};
  mutable std::mutex mu_;
  std::vector<std::string> dir_ops_;
};

}  // namespace shardtx::testing
