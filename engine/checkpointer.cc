#include "engine/checkpointer.h"

#include <utility>

namespace shardtx::engine {

Checkpointer::Checkpointer(const Triggers& triggers, ShardProbes probes)
    : triggers_(triggers), probes_(std::move(probes)) {}

Checkpointer::~Checkpointer() { Stop(); }

void Checkpointer::Start() {
  {
    MutexLock l(&mu_);
    last_ = absl::Now();
  }
  thread_ = std::thread([this] { Loop(); });
}

void Checkpointer::BeginClose() {
  MutexLock l(&mu_);
  closing_ = true;
  pace_cv_.SignalAll();
}

void Checkpointer::Stop() {
  {
    MutexLock l(&mu_);
    stop_ = true;
    work_cv_.SignalAll();
    space_cv_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

void Checkpointer::Request() {
  MutexLock l(&mu_);
  if (!requested_) {
    requested_ = true;
    work_cv_.Signal();
  }
}

void Checkpointer::WaitForSpace() {
  const uint64_t limit = triggers_.overlay_limit_bytes;
  if (limit == 0 || probes_.overlay_bytes() < limit) return;
  backpressure_waits_.fetch_add(1, std::memory_order_relaxed);
  MutexLock l(&mu_);
  while (!stop_ && probes_.overlay_bytes() >= limit) {
    requested_ = true;
    work_cv_.Signal();
    pace_cv_.Signal();  // a checkpoint pausing between chunks goes on
    space_cv_.WaitFor(std::chrono::milliseconds(100));
  }
}

void Checkpointer::Pace(std::chrono::steady_clock::duration chunk_time, uint64_t* wal_syncs_seen) {
  const uint64_t syncs = std::exchange(*wal_syncs_seen, probes_.wal_fsyncs());
  // The log did not sync while the chunk was written: no commit waits on the disk (none came,
  // or only commits that do not sync). Nobody to give the disk to.
  if (triggers_.pace <= 0 || syncs == *wal_syncs_seen) return;
  const auto pause =
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(chunk_time * triggers_.pace);
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + pause;
  {
    MutexLock l(&mu_);
    // Memory is short (back-pressure is near, or on), or the shard is closing (which precedes
    // stop_): finish as fast as possible. Both wake a pause under way (pace_cv_).
    auto hurry = [&] {
      mu_.AssertHeld();
      return closing_ || (triggers_.overlay_limit_bytes != 0 &&
                          probes_.overlay_bytes() >= triggers_.overlay_limit_bytes / 2);
    };
    if (hurry()) return;
    while (!hurry() && std::chrono::steady_clock::now() < deadline) {
      pace_cv_.WaitFor(deadline - std::chrono::steady_clock::now());
    }
  }
  pauses_.fetch_add(1, std::memory_order_relaxed);
  paused_us_.fetch_add(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                 std::chrono::steady_clock::now() - start)
                                                 .count()));
  *wal_syncs_seen = probes_.wal_fsyncs();  // syncs during the pause do not count for the next
}

void Checkpointer::Checkpointed() {
  const uint64_t wal_bytes = probes_.wal_bytes();
  MutexLock l(&mu_);
  space_cv_.SignalAll();
  last_ = absl::Now();
  wal_bytes_at_last_ = wal_bytes;
}

bool Checkpointer::DueLocked() {
  if (requested_) return true;
  if (triggers_.interval > absl::ZeroDuration() && absl::Now() - last_ >= triggers_.interval) {
    return true;
  }
  return triggers_.wal_bytes != 0 &&
         probes_.wal_bytes() - wal_bytes_at_last_ >= triggers_.wal_bytes;
}

void Checkpointer::Loop() {
  MutexLock l(&mu_);
  while (!stop_) {
    if (!DueLocked()) {
      work_cv_.WaitFor(std::chrono::milliseconds(50));
      continue;
    }
    requested_ = false;
    mu_.Unlock();
    absl::Status s = probes_.checkpoint();
    mu_.Lock();
    if (!s.ok()) {
      // Back off until the next interval, or until the log has grown by another trigger's
      // worth: not at once, as the WAL bytes that triggered this attempt would (a failed log
      // fails every checkpoint until the database is reopened).
      last_ = absl::Now();
      wal_bytes_at_last_ = probes_.wal_bytes();
    }
  }
}

}  // namespace shardtx::engine
