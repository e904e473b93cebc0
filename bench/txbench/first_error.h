// The first hard error of a run of several threads (txbench's throughput windows and its
// catch-up phase).
#pragma once

#include <atomic>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "util/mutex.h"

namespace txbench {

// Keeps the first error set; later ones are dropped. Setting one also raises stopped(), for
// threads that should give up once any of them failed.
class FirstError {
 public:
  void Set(absl::Status s) {
    shardtx::MutexLock l(&mu_);
    if (status_.ok()) status_ = std::move(s);
    stop_.store(true, std::memory_order_relaxed);
  }
  absl::Status Get() {
    shardtx::MutexLock l(&mu_);
    return status_;
  }
  bool stopped() const { return stop_.load(std::memory_order_relaxed); }

 private:
  shardtx::Mutex mu_;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> stop_{false};
};

}  // namespace txbench
