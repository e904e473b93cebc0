// AsyncCommits: the completion side of Transaction::CommitAsync. Durable single-shard commits
// reach it in batches (one per fsync, from DurableCommits); its completion thread waits until
// a batch is visible and runs the batch's callbacks in commit order. It also fails the commits
// of a shard whose log failed (uninstalling them first), bounds the commits in flight
// (back-pressure), lets Close wait for all of them, and runs cross-shard commits on a small
// pool of threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "engine/types.h"
#include "shardtx/transaction.h"
#include "util/mutex.h"

namespace shardtx::txn {

class DatabaseImpl;

// One accepted single-shard CommitAsync, from its append until its callback.
struct AsyncCommit {
  Transaction::CommitCallback done;
  uint32_t shard = 0;
  engine::Timestamp ts = 0;
  uint64_t txn_id = 0;
  // Installed (the values moved into the overlay; the keys stay): what to uninstall if the
  // log fails before the record is durable.
  std::vector<engine::Write> writes;
  std::chrono::steady_clock::time_point start;
};
using AsyncBatch = std::vector<std::unique_ptr<AsyncCommit>>;

class AsyncCommits {
 public:
  // `db` outlives this. Threads start when first needed.
  AsyncCommits(DatabaseImpl* db, uint32_t max_in_flight);
  // REQUIRES: Drain returned (nothing in flight). Stops the threads.
  ~AsyncCommits();

  // Admits one CommitAsync: takes a slot, waiting while max_in_flight are taken (unless the
  // caller is a shardtx callback thread). False once Drain has begun. Every admitted commit
  // ends with exactly one Release (after its callback, if it has one).
  bool Admit();
  void Release(uint32_t n = 1);
  // Refuses later Admits and waits until every admitted commit is released.
  void Drain();

  // Commits durable, and their timestamps finished: their callbacks run (OK) on the
  // completion thread once they are visible. Any thread; takes no shard lock.
  void Deliver(AsyncBatch batch);
  // Commits whose log failed before their record was durable (installed, timestamps not
  // finished): on the completion thread, each is uninstalled, its timestamp finished, and its
  // callback run with `error`. Any thread; takes no shard lock.
  void Fail(AsyncBatch commits, const absl::Status& error);
  // Runs `task` on the pool (cross-shard commits).
  void RunOnPool(std::function<void()> task);

  // True on a thread of this class (any Database's): CommitAsync never blocks there.
  static bool OnCallbackThread();

 private:
  bool TryTakeSlot();
  void StartLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CompletionLoop();
  void PoolLoop();
  void RunFailed(AsyncBatch commits, const absl::Status& error);
  void RunDelivered(AsyncBatch commits);
  // Takes and runs the queued failures, if any. Completion thread only.
  void RunFailures() ABSL_LOCKS_EXCLUDED(mu_);

  DatabaseImpl* const db_;
  const uint32_t max_in_flight_;

  // Slots and draining.
  std::atomic<uint64_t> in_flight_{0};
  std::atomic<bool> closed_{false};
  std::atomic<int> slot_waiters_{0};
  Mutex slot_mu_;
  CondVar slot_cv_{&slot_mu_};

  Mutex mu_;
  CondVar cv_{&mu_};       // work for the completion thread
  CondVar pool_cv_{&mu_};  // work for the pool
  std::deque<AsyncBatch> ready_ ABSL_GUARDED_BY(mu_);
  std::deque<std::pair<AsyncBatch, absl::Status>> failed_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> failed_pending_{false};  // failed_ is not empty
  std::deque<std::function<void()>> pool_tasks_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool pool_started_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread completion_;
  std::vector<std::thread> pool_;
};

}  // namespace shardtx::txn
