#include "wal/writer.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "util/coding.h"
#include "util/kill_point.h"
#include "util/status_macros.h"
#include "wal/segment.h"

namespace shardtx::wal {

SHARDTX_DEFINE_KILL_POINT(after_write, "wal.after_write");
SHARDTX_DEFINE_KILL_POINT(after_sync, "wal.after_sync");

WalWriter::WalWriter(Env* env, std::string dir, const WalOptions& options)
    : options_(options),
      flusher_cv_(&mu_),
      space_cv_(&mu_),
      segments_(env, std::move(dir), {options.segment_size, options.recycle_segments}) {}

absl::StatusOr<std::unique_ptr<WalWriter>> WalWriter::OpenAfterScan(Env* env,
                                                                    const std::string& dir,
                                                                    const WalOptions& options) {
  RETURN_IF_ERROR(env->CreateDir(dir));
  ASSIGN_OR_RETURN(std::unique_ptr<WalReader> reader, WalReader::Open(env, dir, ReaderOptions{}));
  WalRecord rec;
  while (true) {
    ASSIGN_OR_RETURN(bool more, reader->Next(&rec));
    if (!more) break;
  }
  return Open(env, dir, options, reader->tail());
}

absl::StatusOr<std::unique_ptr<WalWriter>> WalWriter::Open(Env* env, const std::string& dir,
                                                           const WalOptions& options,
                                                           const WalTail& tail) {
  if (options.segment_size < (64u << 10) || options.segment_size % kRecordAlign != 0 ||
      options.segment_size > kMaxSegmentSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("WalOptions.segment_size must be a multiple of 8 in [64 KiB, 1 GiB], not ",
                     options.segment_size));
  }
  if (options.streams == 0 || options.streams > 65536) {
    return absl::InvalidArgumentError(
        absl::StrCat("WalOptions.streams must be in [1, 65536], not ", options.streams));
  }
  if (tail.stream_last_lsn.size() > options.streams &&
      std::any_of(tail.stream_last_lsn.begin() + options.streams, tail.stream_last_lsn.end(),
                  [](Lsn l) { return l != 0; })) {
    return absl::InvalidArgumentError(
        absl::StrCat("the log in ", dir, " holds records of stream ",
                     tail.stream_last_lsn.size() - 1, " but WalOptions.streams is ",
                     options.streams));
  }
  if (options.max_record_size == 0 ||
      AlignedRecordSize(options.max_record_size) > options.segment_size - kSegmentHeaderSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("WalOptions.max_record_size ", options.max_record_size,
                     " must be positive and fit one segment of ", options.segment_size));
  }
  std::unique_ptr<WalWriter> w(new WalWriter(env, dir, options));
  // Everything up to the tail is durable, and the next record goes to a fresh segment.
  RETURN_IF_ERROR(w->segments_.Open(tail));
  {
    MutexLock l(&w->mu_);
    w->next_lsn_ = tail.next_lsn;
    w->taken_lsn_ = tail.next_lsn - 1;
    w->written_lsn_ = tail.next_lsn - 1;
    // Until a stream states its floor, it needs every record of its still in the log.
    w->streams_.resize(options.streams);
    for (size_t s = 0; s < tail.stream_last_lsn.size() && s < options.streams; ++s) {
      if (tail.stream_last_lsn[s] == 0) continue;
      w->streams_[s].last = tail.stream_last_lsn[s];
      w->streams_[s].need = 1;
    }
  }
  w->durable_lsn_.store(tail.next_lsn - 1);
  w->acked_lsn_.store(tail.next_lsn - 1);
  w->flusher_ = std::thread([p = w.get()] { p->FlusherLoop(); });
  return w;
}

WalWriter::~WalWriter() { Close().IgnoreError(); }

absl::Status WalWriter::Close() {
  {
    MutexLock l(&mu_);
    closing_ = true;
    flusher_cv_.Signal();
  }
  if (flusher_.joinable()) {
    flusher_.join();
    // Everything is written and synced, and nothing will be written after this: say so where
    // the next record would go, so that a reader need not scan the rest of the segment.
    bool ok;
    Lsn next;
    {
      MutexLock l(&mu_);
      ok = error_.ok();
      next = next_lsn_;
    }
    if (ok) {
      absl::Status s = segments_.WriteCloseMark(next);
      MutexLock l(&mu_);
      if (!s.ok()) error_ = s;
    }
  }
  MutexLock l(&mu_);
  return error_;
}

absl::StatusOr<Lsn> WalWriter::Append(uint8_t type, absl::string_view payload,
                                      Durability durability, uint16_t stream) {
  if (type == 0) return absl::InvalidArgumentError("WAL record type 0 is reserved");
  if (stream >= options_.streams) {
    return absl::InvalidArgumentError(
        absl::StrCat("WAL stream ", stream, " is not below WalOptions.streams ", options_.streams));
  }
  if (payload.size() > options_.max_record_size) {
    return absl::InvalidArgumentError(absl::StrCat("WAL record of ", payload.size(),
                                                   " bytes exceeds max_record_size ",
                                                   options_.max_record_size));
  }
  const uint64_t size = AlignedRecordSize(payload.size());
  MutexLock l(&mu_);
  while (error_.ok() && !closing_ && !buffer_.empty() &&
         buffer_.size() + size > options_.buffer_limit) {
    flush_wanted_ = true;  // kSync and kDeferred appends wake nobody: drain now
    flusher_cv_.Signal();
    space_cv_.Wait();
  }
  if (!error_.ok()) return error_;
  if (closing_) return absl::FailedPreconditionError("WAL " + segments_.dir() + " is closed");
  const Lsn lsn = next_lsn_++;
  StreamFloor& floor = streams_[stream];
  if (floor.need == 0) floor.need = lsn;
  floor.last = lsn;
  const size_t old = buffer_.size();
  buffer_.resize(old + size);
  EncodeRecord(buffer_.data() + old, type, lsn, payload, stream);
  if (durability == Durability::kSync || durability == Durability::kAsync) sync_wanted_ = true;
  // A kSync caller goes on to WaitDurable, which writes the batch itself when nobody else is
  // (no hand-off to the flusher), or wakes the flusher; kAsync and kNone need the flusher now.
  if (durability == Durability::kAsync || durability == Durability::kNone) {
    flush_wanted_ = true;
    flusher_cv_.Signal();
  }
  appends_.fetch_add(1, std::memory_order_relaxed);
  bytes_.fetch_add(size, std::memory_order_relaxed);
  return lsn;
}

absl::Status WalWriter::status() const {
  MutexLock l(&mu_);
  return error_;
}

absl::Status WalWriter::WaitDurable(Lsn lsn) {
  while (acked_lsn_.load(std::memory_order_acquire) < lsn) {
    WaitWord* word = nullptr;
    uint32_t seen = 0;
    Batch batch;
    {
      MutexLock l(&mu_);
      if (lsn >= next_lsn_) {
        return absl::InvalidArgumentError(absl::StrCat("WaitDurable(", lsn, "): not appended yet"));
      }
      if (acked_lsn_.load(std::memory_order_acquire) >= lsn) break;
      if (!error_.ok()) return error_;
      if (flusher_done_) {
        return absl::FailedPreconditionError("WAL " + segments_.dir() + " is closed");
      }
      if (!in_flight_ && !closing_ && !spare_wanted_ && !last_sync_shared_ &&
          filling_waiters_ == 0) {
        // Nobody is writing, no spare segment is due (the flusher prepares it, then takes
        // this batch), and commits are not overlapping (the last sync had one waiter):
        // write and sync everything buffered (lsn included) on this thread, saving the
        // two thread switches of a hand-off to the flusher and back. Under concurrency the
        // flusher does it: it goes from one batch to the next without waiting to be woken.
        batch = TakeBatchLocked(/*sync=*/true);
        batch.by_committer = true;
      } else if (in_flight_ && lsn <= taken_lsn_ && in_flight_sync_) {
        // Join the batch that will make `lsn` durable: the one being written if it covers lsn
        // and syncs, otherwise (below) the next one, which syncs since sync_wanted_ is set.
        word = &batch_words_[batch_seq_ % 2];
        ++in_flight_waiters_;
      } else {
        word = &batch_words_[(batch_seq_ + 1) % 2];
        ++filling_waiters_;
        sync_wanted_ = true;
        flusher_cv_.Signal();
      }
      if (word != nullptr) seen = word->Load();
    }
    if (batch.taken) {
      RunBatch(batch);
    } else {
      // The word was read under mu_, which its bump also takes: no wake-up is missed. Woken
      // with the batch: durable now, unless the log was poisoned or closed; the loop rechecks.
      word->Wait(seen);
    }
  }
  return absl::OkStatus();
}

absl::Status WalWriter::Sync() {
  Lsn last;
  {
    MutexLock l(&mu_);
    if (!error_.ok()) return error_;
    last = next_lsn_ - 1;
  }
  if (last == 0 || acked_lsn_.load(std::memory_order_acquire) >= last) {
    MutexLock l(&mu_);
    return error_;
  }
  return WaitDurable(last);
}

bool WalWriter::HasWorkLocked() const {
  const bool unsynced = written_lsn_ > durable_lsn_.load(std::memory_order_relaxed);
  // A buffer holding only kDeferred records waits for someone to ask.
  return (!buffer_.empty() && (sync_wanted_ || flush_wanted_ || closing_)) ||
         (unsynced && (sync_wanted_ || closing_)) || spare_wanted_;
}

WalWriter::Batch WalWriter::TakeBatchLocked(bool sync) {
  Batch b;
  b.taken = true;
  b.sync = sync || sync_wanted_ || closing_;
  sync_wanted_ = false;
  flush_wanted_ = false;
  flushing_.swap(buffer_);
  buffer_.clear();
  b.first = taken_lsn_ + 1;
  b.last = next_lsn_ - 1;
  taken_lsn_ = b.last;
  b.sync_lsn = durable_lsn_.load(std::memory_order_relaxed) + 1;
  in_flight_ = true;
  in_flight_sync_ = b.sync;
  b.seq = ++batch_seq_;
  in_flight_waiters_ = std::exchange(filling_waiters_, 0);
  flushing_size_ = flushing_.size();
  space_cv_.SignalAll();
  return b;
}

void WalWriter::RunBatch(const Batch& b) {
  absl::Status s = WriteBatch(&flushing_, b.sync_lsn, b.sync);
  const uint64_t records = b.last + 1 - b.first;
  if (s.ok() && b.sync) {
    synced_records_.fetch_add(records, std::memory_order_relaxed);
    if (b.by_committer) inline_syncs_.fetch_add(1, std::memory_order_relaxed);
    uint64_t m = max_batch_.load(std::memory_order_relaxed);
    while (records > m && !max_batch_.compare_exchange_weak(m, records)) {
    }
  }
  flushing_.clear();
  if (!s.ok()) {
    {
      // Poisoned: every waiter, of this batch and the next, wakes to see error_; so does an
      // Append waiting for buffer space, which may hold a lock of its caller's that
      // on_poisoned takes below.
      MutexLock l(&mu_);
      in_flight_ = false;
      error_ = s;
      BumpAllLocked();
      space_cv_.SignalAll();
      flusher_cv_.Signal();  // the flusher exits
    }
    WakeAllWaiters();
    // Without mu_: on_poisoned may take locks that appenders hold while they take mu_.
    if (options_.on_poisoned) options_.on_poisoned(s);
    return;
  }
  {
    MutexLock l(&mu_);
    written_lsn_ = b.last;
    if (b.sync) durable_lsn_.store(b.last, std::memory_order_release);
  }
  // Still holding the token: callbacks come one at a time, in LSN order, and the records
  // count as acknowledged (acked_lsn_, what WaitDurable waits for) only after theirs.
  if (b.sync && options_.on_durable) options_.on_durable(b.last);
  int done;
  {
    MutexLock l(&mu_);
    in_flight_ = false;
    done = std::exchange(in_flight_waiters_, 0);
    if (done > 0) batch_words_[b.seq % 2].Bump();
    if (b.sync) {
      acked_lsn_.store(b.last, std::memory_order_release);
      // More than one thread waited for this sync (the writer itself counts when a committer).
      last_sync_shared_ = b.by_committer ? done > 0 : done > 1;
    }
    // Preallocating ahead keeps the next roll off the commit path; the flusher does it.
    if (!segments_.has_spare()) spare_wanted_ = true;
    // The flusher may be waiting for the token: for more work, or to finish closing.
    if (HasWorkLocked() || closing_) flusher_cv_.Signal();
  }
  // One system call wakes the whole batch, without the lock, so the woken do not queue on it.
  if (done > 0) batch_words_[b.seq % 2].WakeAll();
}

void WalWriter::BumpAllLocked() {
  in_flight_waiters_ = 0;
  filling_waiters_ = 0;
  for (WaitWord& w : batch_words_) w.Bump();
}

void WalWriter::WakeAllWaiters() {
  for (WaitWord& w : batch_words_) w.WakeAll();
}

void WalWriter::FlusherLoop() {
  mu_.Lock();
  while (true) {
    // A committer may be writing a batch itself (in_flight_): wait for it, even when closing.
    while (error_.ok() && (in_flight_ || (!closing_ && !HasWorkLocked()))) flusher_cv_.Wait();
    if (!error_.ok()) break;
    if (spare_wanted_ && closing_) spare_wanted_ = false;  // nobody will use it
    if (spare_wanted_) {
      spare_wanted_ = false;
      in_flight_ = true;  // the token: the segment state is this thread's while it prepares
      in_flight_sync_ = false;
      mu_.Unlock();
      // A failure here (a full disk, say) is not yet final: the roll that needs the segment
      // retries and fails then.
      segments_.PrepareSpare().IgnoreError();
      mu_.Lock();
      in_flight_ = false;
      continue;
    }
    if (!HasWorkLocked()) break;  // closing with nothing left
    Batch b = TakeBatchLocked(/*sync=*/false);
    mu_.Unlock();
    RunBatch(b);
    mu_.Lock();
  }
  // Poisoned or closed: wake everyone; they see error_ or flusher_done_.
  flusher_done_ = true;
  BumpAllLocked();
  space_cv_.SignalAll();
  mu_.Unlock();
  WakeAllWaiters();
}

absl::Status WalWriter::WriteBatch(std::string* batch, Lsn sync_lsn, bool sync) {
  char* data = batch->data();
  const uint64_t n = batch->size();
  uint64_t pos = 0;
  uint64_t chunk = 0;  // start of the records not yet written
  auto write_chunk = [&](uint64_t end) -> absl::Status {
    if (end == chunk) return absl::OkStatus();
    RETURN_IF_ERROR(segments_.Write(absl::string_view(data + chunk, end - chunk)));
    SHARDTX_KILL_POINT("wal.after_write");
    chunk = end;
    return absl::OkStatus();
  };
  // A record never spans segments: what fits goes out in one write, then the next segment.
  while (pos < n) {
    char* rec = data + pos;
    const uint64_t size = AlignedRecordSize(DecodeFixed32(rec + 8));
    if (!segments_.Fits(pos - chunk + size)) {
      RETURN_IF_ERROR(write_chunk(pos));
      RETURN_IF_ERROR(segments_.Roll(/*first_lsn=*/DecodeFixed64(rec + 16)));
    }
    SealRecord(rec, sync_lsn, segments_.seed());
    pos += size;
  }
  RETURN_IF_ERROR(write_chunk(n));
  if (sync && segments_.unsynced()) {
    const auto start = std::chrono::steady_clock::now();
    RETURN_IF_ERROR(segments_.Sync());
    fsync_us_.Add(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                            std::chrono::steady_clock::now() - start)
                                            .count()));
    SHARDTX_KILL_POINT("wal.after_sync");
  }
  return absl::OkStatus();
}

absl::Status WalWriter::Truncate(Lsn lsn, uint16_t stream) {
  Lsn floor, durable;
  {
    MutexLock l(&mu_);
    if (!error_.ok()) return error_;
    if (stream >= options_.streams) {
      return absl::InvalidArgumentError(absl::StrCat("WAL stream ", stream,
                                                     " is not below WalOptions.streams ",
                                                     options_.streams));
    }
    StreamFloor& f = streams_[stream];
    f.need = f.last >= lsn ? lsn : 0;
    floor = FloorLocked();
    // Read with the floors: a record appended after this is above it, so no segment holding
    // it can be freed below (a stream that needed nothing needs its new record).
    durable = durable_lsn_.load(std::memory_order_acquire);
  }
  return segments_.Truncate(std::min(floor, durable + 1), durable);
}

Lsn WalWriter::FloorLocked() const {
  Lsn floor = retained_.empty() ? kNoFloor : *retained_.begin();
  for (const StreamFloor& f : streams_) {
    if (f.need != 0) floor = std::min(floor, f.need);
  }
  return floor;
}

Lsn WalWriter::Retain(Lsn at_most) {
  MutexLock l(&mu_);
  // No segment holding a record at or above the floor, or the last durable one, is ever freed
  // (a truncation in progress computed a floor no higher than this one), and segments are
  // contiguous from the oldest on: everything from max(oldest, floor) is in the log.
  Lsn floor = std::min(FloorLocked(), durable_lsn_.load(std::memory_order_acquire) + 1);
  const Lsn lsn = std::min(std::max(floor, segments_.oldest_lsn()), at_most);
  retained_.insert(lsn);
  return lsn;
}

void WalWriter::Release(Lsn retained) {
  MutexLock l(&mu_);
  auto it = retained_.find(retained);
  if (it != retained_.end()) retained_.erase(it);
}

Lsn WalWriter::oldest_lsn() const { return segments_.oldest_lsn(); }

WalStats WalWriter::Stats() const {
  WalStats s;
  const SegmentFiles::Stats files = segments_.stats();
  s.appends = appends_.load();
  s.bytes = bytes_.load();
  s.writes = files.writes;
  s.fsyncs = files.syncs;
  s.max_records_per_fsync = max_batch_.load();
  s.inline_syncs = inline_syncs_.load();
  s.records_per_fsync =
      s.fsyncs == 0 ? 0.0 : static_cast<double>(synced_records_.load()) / s.fsyncs;
  s.segments_created = files.created;
  s.segments_recycled = files.recycled;
  s.segments_removed = files.removed;
  s.fallocate_fallbacks = files.fallocate_fallbacks;
  s.zeroed_ahead_bytes = files.zeroed_ahead;
  s.fsync_latency_us = fsync_us_.Summary();
  s.durable_lsn = durable_lsn_.load();
  MutexLock l(&mu_);
  s.written_lsn = written_lsn_;
  s.next_lsn = next_lsn_;
  s.unsynced_bytes = buffer_.size() + (in_flight_ ? flushing_size_ : 0);
  return s;
}

}  // namespace shardtx::wal
