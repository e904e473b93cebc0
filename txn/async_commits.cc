#include "txn/async_commits.h"

#include <algorithm>
#include <utility>

#include "txn/database_impl.h"
#include "util/histogram.h"
#include "util/kill_point.h"

namespace shardtx::txn {

namespace {

constexpr int kPoolThreads = 4;
thread_local bool on_callback_thread = false;

}  // namespace

AsyncCommits::AsyncCommits(DatabaseImpl* db, uint32_t max_in_flight)
    : db_(db), max_in_flight_(max_in_flight) {}

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

bool AsyncCommits::TryTakeSlot() {
  uint64_t n = in_flight_.load(std::memory_order_seq_cst);
  while (n < max_in_flight_) {
    if (in_flight_.compare_exchange_weak(n, n + 1, std::memory_order_seq_cst)) return true;
  }
  return false;
}

bool AsyncCommits::Admit() {
  if (closed_.load(std::memory_order_seq_cst)) return false;
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

void AsyncCommits::Drain() {
  closed_.store(true, std::memory_order_seq_cst);
  MutexLock l(&slot_mu_);
  slot_waiters_.fetch_add(1, std::memory_order_seq_cst);
  slot_cv_.SignalAll();  // admitters waiting for a slot give up
  while (in_flight_.load(std::memory_order_seq_cst) != 0) slot_cv_.Wait();
  slot_waiters_.fetch_sub(1, std::memory_order_seq_cst);
}

void AsyncCommits::StartLocked() {
  if (started_) return;
  started_ = true;
  completion_ = std::thread([this] {
    on_callback_thread = true;
    CompletionLoop();
  });
}

void AsyncCommits::Deliver(AsyncBatch batch) {
  if (batch.empty()) return;
  MutexLock l(&mu_);
  StartLocked();
  ready_.push_back(std::move(batch));
  cv_.Signal();
}

void AsyncCommits::Fail(AsyncBatch commits, const absl::Status& error) {
  if (commits.empty()) return;
  {
    MutexLock l(&mu_);
    StartLocked();
    failed_.emplace_back(std::move(commits), error);
    failed_pending_.store(true, std::memory_order_seq_cst);
    cv_.Signal();
  }
  // The completion thread may be waiting for a timestamp of these commits to become visible.
  db_->oracle().Wake();
}

void AsyncCommits::RunOnPool(std::function<void()> task) {
  MutexLock l(&mu_);
  if (!pool_started_) {
    pool_started_ = true;
    for (int i = 0; i < kPoolThreads; ++i) {
      pool_.emplace_back([this] {
        on_callback_thread = true;
        PoolLoop();
      });
    }
  }
  pool_tasks_.push_back(std::move(task));
  pool_cv_.Signal();
}

void AsyncCommits::PoolLoop() {
  MutexLock l(&mu_);
  while (true) {
    while (pool_tasks_.empty() && !stop_) pool_cv_.Wait();
    if (pool_tasks_.empty()) return;
    std::function<void()> task = std::move(pool_tasks_.front());
    pool_tasks_.pop_front();
    mu_.Unlock();
    task();
    mu_.Lock();
  }
}

void AsyncCommits::RunFailures() {
  std::deque<std::pair<AsyncBatch, absl::Status>> failed;
  {
    MutexLock l(&mu_);
    failed.swap(failed_);
    failed_pending_.store(false, std::memory_order_seq_cst);
  }
  for (auto& [commits, error] : failed) RunFailed(std::move(commits), error);
}

void AsyncCommits::CompletionLoop() {
  mu_.Lock();
  while (true) {
    while (ready_.empty() && failed_.empty() && !stop_) cv_.Wait();
    if (!failed_.empty()) {
      mu_.Unlock();
      RunFailures();
      mu_.Lock();
      continue;
    }
    if (ready_.empty()) break;  // stopping with nothing left
    // Everything queued: the batches of several fsyncs when callbacks fell behind.
    AsyncBatch commits = std::move(ready_.front());
    ready_.pop_front();
    while (!ready_.empty()) {
      for (auto& c : ready_.front()) commits.push_back(std::move(c));
      ready_.pop_front();
    }
    mu_.Unlock();
    RunDelivered(std::move(commits));
    mu_.Lock();
  }
  mu_.Unlock();
}

void AsyncCommits::RunDelivered(AsyncBatch commits) {
  engine::Timestamp max_ts = 0;
  for (const auto& c : commits) max_ts = std::max(max_ts, c->ts);
  // Visible once every earlier timestamp is finished. One of those may belong to a commit
  // of a failed log, which only this thread finishes (after uninstalling it): do that first.
  while (!db_->oracle().WaitVisibleUnless(
      max_ts, [this] { return failed_pending_.load(std::memory_order_seq_cst); })) {
    RunFailures();
  }
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
    c.reset();  // the callback's captures go before the slot (and Close) is released
  }
  Release(static_cast<uint32_t>(commits.size()));
}

void AsyncCommits::RunFailed(AsyncBatch commits, const absl::Status& error) {
  // Nobody has seen these versions (visible_ts is below their timestamps): take them back,
  // then let visible_ts pass their timestamps. Each shard's commits are in LSN order.
  for (auto& c : commits) {
    engine::Shard* s = db_->shard(c->shard);
    MutexLock l(s->commit_mu());
    s->UninstallLocked(c->writes, c->ts);
  }
  std::vector<engine::Timestamp> ts;
  for (const auto& c : commits) ts.push_back(c->ts);
  db_->oracle().FinishMany(ts);
  db_->counters().aborts_io_error += commits.size();
  for (auto& c : commits) {
    c->done(error);
    c.reset();
  }
  Release(static_cast<uint32_t>(commits.size()));
}

}  // namespace shardtx::txn
