// RecordingEnv: an Env over Env::Default() that counts the bytes read through it and logs the
// directory operations (CreateDir, SyncDir), for tests of what Open costs and what it syncs.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "shardtx/env.h"
#include "tests/support/forwarding_env.h"

namespace shardtx::testing {

class RecordingEnv : public ForwardingEnv {
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
    auto f = base()->OpenFile(path, mode);
    if (!f.ok()) return f.status();
    return std::unique_ptr<File>(new CountingFile(std::move(*f), &bytes_read_));
  }
  absl::Status CreateDir(const std::string& path) override {
    Log("CreateDir " + path);
    return base()->CreateDir(path);
  }
  absl::Status SyncDir(const std::string& path) override {
    Log("SyncDir " + path);
    return base()->SyncDir(path);
  }

 private:
  class CountingFile final : public ForwardingFile {
   public:
    CountingFile(std::unique_ptr<File> base, std::atomic<uint64_t>* bytes_read)
        : ForwardingFile(std::move(base)), bytes_read_(bytes_read) {}
    absl::StatusOr<size_t> Read(uint64_t offset, size_t n, char* scratch) override {
      absl::StatusOr<size_t> got = base()->Read(offset, n, scratch);
      if (got.ok()) bytes_read_->fetch_add(*got);
      return got;
    }

   private:
    std::atomic<uint64_t>* bytes_read_;
  };

  void Log(std::string op) {
    std::lock_guard<std::mutex> l(mu_);
    dir_ops_.push_back(std::move(op));
  }

  std::atomic<uint64_t> bytes_read_{0};
  mutable std::mutex mu_;
  std::vector<std::string> dir_ops_;
};

}  // namespace shardtx::testing
