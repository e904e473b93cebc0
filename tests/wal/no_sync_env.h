// NoSyncEnv: the POSIX Env with Sync and SyncDir turned into no-ops.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "shardtx/env.h"
#include "tests/support/forwarding_env.h"

namespace shardtx::wal::testutil {

// The POSIX Env with Sync and SyncDir turned into no-ops: for tests of what the reader makes of
// bytes on disk, which need no durability, and must not take their time from the disk's fsync
// latency (other suites share the disk). The concurrency test uses the real Env.
class NoSyncEnv final : public shardtx::testing::ForwardingEnv {
 public:
  static Env* Get() {
    static Env* env = new NoSyncEnv;
    return env;
  }
  absl::StatusOr<std::unique_ptr<File>> OpenFile(const std::string& path, OpenMode mode) override {
    auto f = base()->OpenFile(path, mode);
    if (!f.ok()) return f.status();
    return std::unique_ptr<File>(new NoSyncFile(std::move(*f)));
  }
  absl::Status SyncDir(const std::string&) override { return absl::OkStatus(); }

 private:
  class NoSyncFile final : public shardtx::testing::ForwardingFile {
   public:
    using ForwardingFile::ForwardingFile;
    absl::Status Sync() override { return absl::OkStatus(); }
  };
};

}  // namespace shardtx::wal::testutil
