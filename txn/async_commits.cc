#include "txn/async_commits.h"

#include <algorithm>
#include <utility>

#include "txn/database_impl.h"
#include "util/histogram.h"
#include "util/kill_point.h"

namespace shardtx::txn {

namespace {

constexpr size_t kPoolThreads = 4;
// A finished commit whose key buffers grew past this is freed, not kept; so are commits
// beyond kMaxRecycled (more than that in flight).
constexpr size_t kMaxRecycledKeyBytes = 64 << 10;
constexpr size_t kMaxRecycled = 4096;
thread_local bool on_callback_thread = false;

void UninstallKeys(engine::Shard* s, const AsyncCommit& c) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  // REQUIRES: s's commit lock (the callers assert it).
  c.keys.ForEach([&](absl::string_view key) { s->UninstallKeyLocked(key, c.ts); });
}

}  // namespace

void CommitKeys::Assign(const std::vector<engine::Write>& writes) {
  bytes_.clear();
  ends_.clear();
  for (const engine::Write& w : writes) {
    bytes_.append(w.key);
    ends_.push_back(static_cast<uint32_t>(bytes_.size()));
  }
}

AsyncCommits::AsyncCommits(DatabaseImpl* db, uint32_t max_in_flight)
    : db_(db), max_in_flight_(max_in_flight) {
  free_.reserve(std::min<size_t>(max_in_flight, kMaxRecycled));
}

AsyncCommits::~AsyncCommits() {
  {
    MutexLock l(&mu_);
    stop_ = true;
    cv_.SignalAll();
    pool_cv_.SignalAll();
  }
  if (completion_.joinable()) completion_.join();
  for (std::thread& t : pool_) t.join();
}

bool AsyncCommits::OnCallbackThread() { return on_callback_thread; }

AsyncCommits::CallbackScope::CallbackScope() : previous_(on_callback_thread) {
  on_callback_thread = true;
}

AsyncCommits::CallbackScope::~CallbackScope() { on_callback_thread = previous_; }

bool AsyncCommits::TryTakeSlot() {
  uint64_t n = in_flight_.load(std::memory_order_seq_cst);
  while (n < max_in_flight_) {
    if (in_flight_.compare_exchange_weak(n, n + 1, std::memory_order_seq_cst)) return true;
  }
  return false;
}

void AsyncCommits::StartCompletionThread() {
  // Before any slot is taken: a throw here leaks nothing (and the next Admit tries again).
  std::call_once(completion_once_, [this] {
    completion_ = std::thread([this] {
      on_callback_thread = true;
      CompletionLoop();
    });
  });
  completion_started_.store(true, std::memory_order_release);
}

bool AsyncCommits::Admit() {
  if (closed_.load(std::memory_order_seq_cst)) return false;
  if (!completion_started_.load(std::memory_order_acquire)) StartCompletionThread();
  if (on_callback_thread) {
    in_flight_.fetch_add(1, std::memory_order_seq_cst);  // never waits for itself
  } else if (!TryTakeSlot()) {
    db_->counters().async_backpressure_waits++;
    MutexLock l(&slot_mu_);
    slot_waiters_.fetch_add(1, std::memory_order_seq_cst);
    // A Release decrements, then looks for waiters: either it sees this one (and signals
    // under slot_mu_, which this thread holds until it waits) or this one sees its slot.
    bool taken = false;
    while (!closed_.load(std::memory_order_seq_cst) && !(taken = TryTakeSlot())) slot_cv_.Wait();
    slot_waiters_.fetch_sub(1, std::memory_order_seq_cst);
    if (!taken) return false;  // closed
  }
  // Counted before looking at closed_ again, so that a Drain that missed this slot has not
  // begun (the OpGate order).
  if (closed_.load(std::memory_order_seq_cst)) {
    Release();
    return false;
  }
  return true;
}

void AsyncCommits::Release(uint32_t n) {
  in_flight_.fetch_sub(n, std::memory_order_seq_cst);
  if (slot_waiters_.load(std::memory_order_seq_cst) > 0) {
    MutexLock l(&slot_mu_);
    slot_cv_.SignalAll();
  }
}

std::unique_ptr<AsyncCommit> AsyncCommits::NewCommit() {
  {
    MutexLock l(&free_mu_);
    if (!free_.empty()) {
      std::unique_ptr<AsyncCommit> c = std::move(free_.back());
      free_.pop_back();
      return c;
    }
  }
  return std::make_unique<AsyncCommit>();
}

void AsyncCommits::Recycle(AsyncBatch commits) {
  for (auto& c : commits) {
    if (c->keys.Capacity() > kMaxRecycledKeyBytes) c.reset();
  }
  MutexLock l(&free_mu_);
  for (auto& c : commits) {
    if (c != nullptr && free_.size() < free_.capacity()) free_.push_back(std::move(c));
  }
  // What is left (a commit beyond max_in_flight_ or with a large buffer) is freed here.
}

void AsyncCommits::Drain() {
  closed_.store(true, std::memory_order_seq_cst);
  MutexLock l(&slot_mu_);
  slot_waiters_.fetch_add(1, std::memory_order_seq_cst);
  slot_cv_.SignalAll();  // admitters waiting for a slot give up
  while (in_flight_.load(std::memory_order_seq_cst) != 0) slot_cv_.Wait();
  slot_waiters_.fetch_sub(1, std::memory_order_seq_cst);
}

void AsyncCommits::Deliver(AsyncBatch batch) {
  if (batch.empty()) return;
  MutexLock l(&mu_);
  queue_.emplace_back(std::move(batch), absl::OkStatus());
  cv_.Signal();
}

void AsyncCommits::TakeBack(uint32_t shard, AsyncBatch commits, const absl::Status& error) {
  if (commits.empty()) return;
  {
    engine::Shard* s = db_->shard(shard);
    MutexLock l(s->commit_mu());
    for (const auto& c : commits) UninstallKeys(s, *c);
  }
  FinishTakenBack(std::move(commits), error);
}

void AsyncCommits::TakeBackLocked(uint32_t shard, AsyncBatch commits, const absl::Status& error) {
  if (commits.empty()) return;
  engine::Shard* s = db_->shard(shard);
  s->commit_mu()->AssertHeld();
  for (const auto& c : commits) UninstallKeys(s, *c);
  FinishTakenBack(std::move(commits), error);
}

void AsyncCommits::FinishTakenBack(AsyncBatch commits, const absl::Status& error) {
  // Nobody has seen these versions (visible_ts is below their timestamps, and they are gone
  // from the overlay now): visible_ts may pass them.
  std::vector<engine::Timestamp> ts;
  ts.reserve(commits.size());
  for (const auto& c : commits) ts.push_back(c->ts);
  db_->oracle().FinishMany(ts);
  db_->counters().aborts_io_error += commits.size();
  MutexLock l(&mu_);
  queue_.emplace_back(std::move(commits), error);
  cv_.Signal();
}

void AsyncCommits::RunOnPool(std::function<void()> task) {
  // Outside mu_; a throw here leaves the pool as it was (or partly started: completed later).
  std::call_once(pool_once_, [this] {
    while (pool_.size() < kPoolThreads) {
      pool_.emplace_back([this] {
        on_callback_thread = true;
        PoolLoop();
      });
    }
  });
  MutexLock l(&mu_);
  pool_tasks_.push_back(std::move(task));
  pool_cv_.Signal();
}

void AsyncCommits::PoolLoop() {
  mu_.Lock();
  while (true) {
    while (pool_tasks_.empty() && !stop_) pool_cv_.Wait();
    if (pool_tasks_.empty()) break;
    std::function<void()> task = std::move(pool_tasks_.front());
    pool_tasks_.pop_front();
    mu_.Unlock();
    task();
    task = nullptr;  // its captures go here, outside mu_
    mu_.Lock();
  }
  mu_.Unlock();
}

void AsyncCommits::CompletionLoop() {
  mu_.Lock();
  while (true) {
    while (queue_.empty() && !stop_) cv_.Wait();
    if (queue_.empty()) break;  // stopping with nothing left
    // Everything queued (the batches of several fsyncs when callbacks fell behind), in the
    // order it came: one shard's failures after its earlier successes.
    std::deque<std::pair<AsyncBatch, absl::Status>> work;
    work.swap(queue_);
    mu_.Unlock();
    AsyncBatch delivered;
    for (auto& [commits, status] : work) {
      if (status.ok()) {
        for (auto& c : commits) delivered.push_back(std::move(c));
        continue;
      }
      if (!delivered.empty()) RunDelivered(std::exchange(delivered, {}));
      RunFailed(std::move(commits), status);
    }
    if (!delivered.empty()) RunDelivered(std::move(delivered));
    work.clear();
    mu_.Lock();
  }
  mu_.Unlock();
}

void AsyncCommits::RunDelivered(AsyncBatch commits) {
  engine::Timestamp max_ts = 0;
  for (const auto& c : commits) max_ts = std::max(max_ts, c->ts);
  // Visible once every earlier timestamp is finished, which never waits for this thread: a
  // commit of a failed log is taken back by the thread that failed it.
  db_->oracle().WaitVisible(max_ts);
  SHARDTX_KILL_POINT("commit.after_durable");
  TxnCounters& counters = db_->counters();
  counters.async_batches++;
  counters.async_completions += commits.size();
  counters.async_batch_size.Add(commits.size());
  for (auto& c : commits) {
    db_->two_phase().SetOutcome(c->txn_id, Database::Outcome::kCommitted);
    counters.commits++;
    counters.commit_latency_us.Add(MicrosSince(c->start));
    c->done(absl::OkStatus());
    c->done = nullptr;  // the callback's captures go before the slot (and Close) is released
  }
  const auto n = static_cast<uint32_t>(commits.size());
  Recycle(std::move(commits));
  Release(n);
}

void AsyncCommits::RunFailed(AsyncBatch commits, const absl::Status& error) {
  // Taken back already (TakeBack): only the callbacks are left.
  for (auto& c : commits) {
    c->done(error);
    c->done = nullptr;
  }
  const auto n = static_cast<uint32_t>(commits.size());
  Recycle(std::move(commits));
  Release(n);
}

}  // namespace shardtx::txn
