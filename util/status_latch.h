// StatusLatch: one status, set once by one thread and waited for by another. A waiter blocks
// until Set has run, then gets what was set.
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "util/mutex.h"

namespace shardtx {

class StatusLatch {
 public:
  // Sets the status and wakes the waiter. Called once.
  void Set(absl::Status status) {
    MutexLock l(&mu_);
    status_ = std::move(status);
    done_ = true;
    cv_.Signal();
  }
  // Blocks until Set has run; returns its status.
  absl::Status Wait() {
    MutexLock l(&mu_);
    while (!done_) cv_.Wait();
    return status_;
  }

 private:
  Mutex mu_;
  CondVar cv_{&mu_};
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace shardtx
