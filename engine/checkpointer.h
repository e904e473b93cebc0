// Checkpointer: when a shard checkpoints, and how fast. What a checkpoint does is the shard's
// (Shard::Checkpoint); this class decides the moments around it:
//  - a background thread runs a checkpoint when one is due: the log grew by `wal_bytes` since
//    the last one, `interval` passed, or Request (the active overlay reached its trigger, or
//    back-pressure);
//  - back-pressure: WaitForSpace blocks a committer while the overlays hold more than
//    `overlay_limit_bytes`, until a checkpoint frees them;
//  - pacing: between two LMDB chunks a checkpoint pauses `pace` times as long as the chunk
//    took, if the log synced meanwhile (commits are waiting on the disk), unless memory is
//    short or the shard is closing.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "util/mutex.h"

namespace shardtx::engine {

class Checkpointer {
 public:
  struct Triggers {
    uint64_t wal_bytes = 0;            // 0: never by log size
    absl::Duration interval;           // zero: never by time
    uint64_t overlay_limit_bytes = 0;  // back-pressure above it; 0: none
    double pace = 1.0;                 // pause per chunk, as a multiple of its time; 0: none
  };
  // What the checkpointer observes of its shard, and how it runs a checkpoint. Each may be
  // called from the checkpointer's thread and from committers.
  struct ShardProbes {
    std::function<absl::Status()> checkpoint;
    std::function<uint64_t()> wal_bytes;      // appended to the log so far
    std::function<uint64_t()> wal_fsyncs;     // the log's fsyncs so far
    std::function<uint64_t()> overlay_bytes;  // active and frozen overlays
  };
  Checkpointer(const Triggers& triggers, ShardProbes probes);
  ~Checkpointer();  // Stop

  // Starts the background thread.
  void Start();
  // Close began: a pause under way ends, and no checkpoint pauses again.
  void BeginClose();
  // Stops and joins the background thread; wakes back-pressure waiters for good.
  void Stop();

  // A checkpoint is wanted soon.
  void Request();
  // Back-pressure: returns once the overlays are within their limit (or on Stop).
  void WaitForSpace();
  // Called between two LMDB chunks of a checkpoint, with the time the chunk took.
  // `wal_syncs_seen`: the log's fsync count when the chunk began; updated.
  void Pace(std::chrono::steady_clock::duration chunk_time, uint64_t* wal_syncs_seen);
  // A checkpoint committed: the size and time triggers start over; back-pressure waiters wake.
  void Checkpointed();

  uint64_t backpressure_waits() const { return backpressure_waits_.load(); }
  uint64_t pauses() const { return pauses_.load(); }
  uint64_t paused_ms() const { return paused_us_.load() / 1000; }

 private:
  void Loop();
  bool DueLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Triggers triggers_;
  const ShardProbes probes_;
  Mutex mu_;
  CondVar work_cv_{&mu_};   // the thread: work or stop
  CondVar space_cv_{&mu_};  // back-pressure waiters
  CondVar pace_cv_{&mu_};   // a pausing checkpoint: Close or back-pressure
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool requested_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_ ABSL_GUARDED_BY(mu_);
  uint64_t wal_bytes_at_last_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<uint64_t> backpressure_waits_{0}, pauses_{0}, paused_us_{0};
  std::thread thread_;
};

}  // namespace shardtx::engine
