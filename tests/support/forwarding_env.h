// ForwardingEnv and ForwardingFile: an Env and a File that pass every call to another, for
// test Envs that change only a few calls (override those; the rest forward).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "shardtx/env.h"

namespace shardtx::testing {

class ForwardingFile : public File {
 public:
  explicit ForwardingFile(std::unique_ptr<File> base) : base_(std::move(base)) {}
  absl::Status Write(uint64_t offset, absl::string_view data) override {
    return base_->Write(offset, data);
  }
  absl::StatusOr<size_t> Read(uint64_t offset, size_t n, char* scratch) override {
    return base_->Read(offset, n, scratch);
  }
  absl::Status Sync() override { return base_->Sync(); }
  absl::Status Allocate(uint64_t offset, uint64_t len) override {
    return base_->Allocate(offset, len);
  }
  absl::StatusOr<uint64_t> Size() override { return base_->Size(); }

 protected:
  File* base() { return base_.get(); }

 private:
  std::unique_ptr<File> base_;
};

class ForwardingEnv : public Env {
 public:
  // `base` outlives this; Env::Default() when null.
  explicit ForwardingEnv(Env* base = nullptr) : base_(base != nullptr ? base : Env::Default()) {}
  absl::StatusOr<std::unique_ptr<File>> OpenFile(const std::string& path, OpenMode mode) override {
    return base_->OpenFile(path, mode);
  }
  absl::Status RemoveFile(const std::string& path) override { return base_->RemoveFile(path); }
  absl::Status RenameFile(const std::string& from, const std::string& to) override {
    return base_->RenameFile(from, to);
  }
  absl::Status CreateDir(const std::string& path) override { return base_->CreateDir(path); }
  absl::Status SyncDir(const std::string& path) override { return base_->SyncDir(path); }
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) override {
    return base_->ListDir(path);
  }
  absl::Status FileExists(const std::string& path) override { return base_->FileExists(path); }
  absl::StatusOr<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    return base_->LockFile(path);
  }

 protected:
  Env* base() const { return base_; }

 private:
  Env* const base_;
};

}  // namespace shardtx::testing
