// AsyncCommits: the completion side of Transaction::CommitAsync. Durable single-shard commits
// reach it in batches (one per fsync, from DurableCommits); its completion thread waits until
// a batch is visible and runs the batch's callbacks in commit order. It takes back the commits
// of a shard whose log failed (on the failing thread, never on a thread that runs callbacks)
// and reports their errors, bounds the commits in flight (back-pressure), lets Close wait for
// all of them, and runs cross-shard commits on a small pool of threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "engine/types.h"
#include "shardtx/transaction.h"
#include "util/mutex.h"

namespace shardtx::txn {

class DatabaseImpl;

// The keys a commit wrote, to take it back if its log fails before its record is durable. One
// buffer, whose capacity stays when the commit is recycled.
class CommitKeys {
 public:
  void Assign(const std::vector<engine::Write>& writes);
  // Calls fn(key) for each key; allocates nothing (a take-back must not throw).
  template <class Fn>
  void ForEach(Fn fn) const {
    uint32_t begin = 0;
    for (uint32_t end : ends_) {
      fn(absl::string_view(bytes_).substr(begin, end - begin));
      begin = end;
    }
  }
  size_t Capacity() const { return bytes_.capacity() + ends_.capacity() * sizeof(uint32_t); }

 private:
  std::string bytes_;
  std::vector<uint32_t> ends_;
};

// One accepted single-shard CommitAsync, from its append until its callback. Recycled
// (AsyncCommits::NewCommit): created on a client thread, finished on the completion thread.
struct AsyncCommit {
  Transaction::CommitCallback done;
  uint32_t shard = 0;
  engine::Timestamp ts = 0;
  uint64_t txn_id = 0;
  CommitKeys keys;  // installed: what to uninstall if the log fails
  std::chrono::steady_clock::time_point start;
};
using AsyncBatch = std::vector<std::unique_ptr<AsyncCommit>>;

class AsyncCommits {
 public:
  // `db` outlives this. Threads start when first needed, on a thread calling Admit or
  // RunOnPool (never on a log's flusher, nor under a lock).
  AsyncCommits(DatabaseImpl* db, uint32_t max_in_flight);
  // REQUIRES: Drain returned (nothing in flight). Stops the threads.
  ~AsyncCommits();

  // Admits one CommitAsync: starts the completion thread if it has not started, then takes a
  // slot, waiting while max_in_flight are taken (unless the caller is a shardtx callback
  // thread). False once Drain has begun. Every admitted commit ends with exactly one Release
  // (after its callback, if it has one, and after the callback's captures are destroyed).
  // A throw (the thread could not start) takes no slot.
  bool Admit();
  void Release(uint32_t n = 1);
  // An empty AsyncCommit: a finished one when there is one (its buffers kept), else a new one.
  // Finished commits are kept for reuse rather than freed on the completion thread: memory a
  // client thread allocated and another thread frees costs the client's malloc arena lock.
  std::unique_ptr<AsyncCommit> NewCommit();
  // Refuses later Admits and waits until every admitted commit is released.
  void Drain();

  // An admitted commit's slot, released when this goes unless handed over first to a path
  // that releases it (a queued callback): whatever throws in between, the slot is not lost.
  class Slot {
   public:
    explicit Slot(AsyncCommits* async) : async_(async) {}
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() {
      if (async_ != nullptr) async_->Release();
    }
    void HandOver() { async_ = nullptr; }

   private:
    AsyncCommits* async_;
  };

  // While it lives, the calling thread counts as a callback thread (OnCallbackThread): for a
  // callback run on a caller's own thread.
  class CallbackScope {
   public:
    CallbackScope();
    ~CallbackScope();
    CallbackScope(const CallbackScope&) = delete;
    CallbackScope& operator=(const CallbackScope&) = delete;

   private:
    const bool previous_;
  };

  // Commits durable, and their timestamps finished: their callbacks run (OK) on the
  // completion thread once they are visible. Any thread; takes no shard lock.
  void Deliver(AsyncBatch batch);
  // Commits of `shard` whose log failed before their records were durable (installed,
  // timestamps not finished). Takes them back on the calling thread (uninstalls each, then
  // finishes its timestamp, so that visible_ts passes it without waiting for any callback),
  // and queues their callbacks, with `error`, for the completion thread.
  // TakeBack: REQUIRES: the caller holds no commit lock and no WAL lock (it takes the shard's
  // commit lock). TakeBackLocked: REQUIRES: the caller holds the shard's commit lock.
  void TakeBack(uint32_t shard, AsyncBatch commits, const absl::Status& error);
  void TakeBackLocked(uint32_t shard, AsyncBatch commits, const absl::Status& error);
  // Runs `task` on the pool (cross-shard commits), starting the pool if needed. `task` is
  // destroyed on the pool thread, outside every lock of this class.
  void RunOnPool(std::function<void()> task);

  // True on a thread of this class (any Database's), or in a CallbackScope: CommitAsync never
  // blocks there.
  static bool OnCallbackThread();

 private:
  bool TryTakeSlot();
  void StartCompletionThread();
  // Finishes the timestamps of taken-back commits and queues their callbacks.
  void FinishTakenBack(AsyncBatch commits, const absl::Status& error);
  void CompletionLoop();
  void PoolLoop();
  void RunFailed(AsyncBatch commits, const absl::Status& error);
  void RunDelivered(AsyncBatch commits);
  // Keeps finished commits (their callbacks destroyed) for NewCommit.
  void Recycle(AsyncBatch commits);

  DatabaseImpl* const db_;
  const uint32_t max_in_flight_;

  // Slots and draining.
  std::atomic<uint64_t> in_flight_{0};
  std::atomic<bool> closed_{false};
  std::atomic<int> slot_waiters_{0};
  Mutex slot_mu_;
  CondVar slot_cv_{&slot_mu_};

  // Thread start: once each, outside mu_ (the flusher takes mu_ in Deliver).
  std::atomic<bool> completion_started_{false};
  std::once_flag completion_once_;
  std::once_flag pool_once_;
  std::thread completion_;
  std::vector<std::thread> pool_;

  Mutex mu_;
  CondVar cv_{&mu_};       // work for the completion thread
  CondVar pool_cv_{&mu_};  // work for the pool
  // For the completion thread: delivered batches (OK) and failed ones (their error).
  std::deque<std::pair<AsyncBatch, absl::Status>> queue_ ABSL_GUARDED_BY(mu_);
  std::deque<std::function<void()>> pool_tasks_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;

  Mutex free_mu_;
  // Reserved at construction, never grown: Recycle cannot throw.
  AsyncBatch free_ ABSL_GUARDED_BY(free_mu_);
};

}  // namespace shardtx::txn
