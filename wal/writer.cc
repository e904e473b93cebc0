#include "wal/writer.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "util/coding.h"
#include "util/kill_point.h"
#include "util/status_macros.h"
#include "wal/segment.h"

namespace shardtx::wal {

SHARDTX_DEFINE_KILL_POINT(after_write, "wal.after_write");
SHARDTX_DEFINE_KILL_POINT(after_sync, "wal.after_sync");
SHARDTX_DEFINE_KILL_POINT(segment_roll, "wal.segment_roll");
SHARDTX_DEFINE_KILL_POINT(truncate, "wal.truncate");

namespace {

constexpr char kFreeSuffix[] = ".free";  // a segment file freed by Truncate, kept for reuse

uint64_t NewSalt() {
  static std::atomic<uint64_t> counter{0};
  std::random_device rd;
  uint64_t r = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return r ^ (counter.fetch_add(1) * 0xD6E8FEB86659FD93ull) ^
         static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
}

}  // namespace

WalWriter::WalWriter(Env* env, std::string dir, const WalOptions& options)
    : env_(env), dir_(std::move(dir)), options_(options), flusher_cv_(&mu_), space_cv_(&mu_) {}

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
  if (options.max_record_size == 0 ||
      AlignedRecordSize(options.max_record_size) > options.segment_size - kSegmentHeaderSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("WalOptions.max_record_size ", options.max_record_size,
                     " must be positive and fit one segment of ", options.segment_size));
  }
  // The directory may be new (or made by a run that crashed before this point): its entry must
  // be durable before any record in it is acknowledged, or a crash loses the whole log.
  RETURN_IF_ERROR(CreateDirDurably(env, dir));
  std::unique_ptr<WalWriter> w(new WalWriter(env, dir, options));

  // Segments after the tail are spares (removed) or records a point-in-time recovery skipped
  // (kept aside as *.lost for forensics). Files freed by an earlier Truncate are reused.
  ASSIGN_OR_RETURN(std::vector<std::string> names, env->ListDir(dir));
  std::sort(names.begin(), names.end());
  bool dir_changed = false;
  for (const std::string& name : names) {
    const std::string path = dir + "/" + name;
    if (absl::EndsWith(name, kFreeSuffix)) {
      MutexLock l(&w->mu_);
      w->recyclable_.push_back(path);
      continue;
    }
    std::optional<uint64_t> n = ParseSegmentFileName(name);
    if (!n.has_value() || *n <= tail.last_segment) continue;
    bool live = std::any_of(tail.segments.begin(), tail.segments.end(),
                            [&](const auto& s) { return s.first == *n; });
    if (live || tail.lost) {
      RETURN_IF_ERROR(env->RenameFile(path, path + ".lost"));
    } else {
      RETURN_IF_ERROR(env->RemoveFile(path));
    }
    dir_changed = true;
  }
  if (dir_changed) RETURN_IF_ERROR(env->SyncDir(dir));

  {
    MutexLock l(&w->mu_);
    for (const auto& s : tail.segments) {
      if (s.first <= tail.last_segment) w->sealed_.push_back(s);
    }
    w->next_lsn_ = tail.next_lsn;
    w->taken_lsn_ = tail.next_lsn - 1;
    w->written_lsn_ = tail.next_lsn - 1;
  }
  // What the reader found may have come from the page cache after a process crash: make it
  // durable before any new record claims (through its sync LSN) that it is.
  if (tail.last_segment != 0) {
    ASSIGN_OR_RETURN(std::unique_ptr<File> last,
                     env->OpenFile(SegmentPath(dir, tail.last_segment), Env::OpenMode::kReadWrite));
    RETURN_IF_ERROR(last->Sync());
  }
  w->durable_lsn_.store(tail.next_lsn - 1);
  w->acked_lsn_.store(tail.next_lsn - 1);
  w->active_.number = tail.last_segment;
  // A fresh segment for every open: bytes after the tail are never overwritten.
  RETURN_IF_ERROR(w->ActivateNextSegment(tail.next_lsn));
  RETURN_IF_ERROR(w->active_.file->Sync());
  w->active_.unsynced = false;
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
    {
      MutexLock l(&mu_);
      ok = error_.ok();
    }
    if (ok) {
      absl::Status s = WriteCloseMark();
      MutexLock l(&mu_);
      if (!s.ok()) error_ = s;
    }
  }
  MutexLock l(&mu_);
  return error_;
}

absl::Status WalWriter::WriteCloseMark() {
  if (active_.file == nullptr || active_.offset + kRecordHeaderSize > options_.segment_size) {
    return absl::OkStatus();  // no room: the reader has less than a record header to look at
  }
  Lsn next;
  {
    MutexLock l(&mu_);
    next = next_lsn_;
  }
  char mark[kRecordHeaderSize];
  EncodeCloseMark(next, active_.seed, mark);
  RETURN_IF_ERROR(active_.file->Write(active_.offset, absl::string_view(mark, sizeof(mark))));
  return active_.file->Sync();
}

absl::StatusOr<Lsn> WalWriter::Append(uint8_t type, absl::string_view payload,
                                      Durability durability) {
  if (type == 0) return absl::InvalidArgumentError("WAL record type 0 is reserved");
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
  if (closing_) return absl::FailedPreconditionError("WAL " + dir_ + " is closed");
  const Lsn lsn = next_lsn_++;
  const size_t old = buffer_.size();
  buffer_.resize(old + size);
  EncodeRecord(buffer_.data() + old, type, lsn, payload);
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
      if (flusher_done_) return absl::FailedPreconditionError("WAL " + dir_ + " is closed");
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
      // Poisoned: every waiter, of this batch and the next, wakes to see error_.
      MutexLock l(&mu_);
      in_flight_ = false;
      error_ = s;
      BumpAllLocked();
      flusher_cv_.Signal();  // the flusher exits
    }
    WakeAllWaiters();
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
    if (spare_ == 0) spare_wanted_ = true;
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
      PrepareSpare().IgnoreError();
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
  uint64_t chunk = 0;
  auto write_chunk = [&](uint64_t end) -> absl::Status {
    if (end == chunk) return absl::OkStatus();
    RETURN_IF_ERROR(
        active_.file->Write(active_.offset, absl::string_view(data + chunk, end - chunk)));
    writes_.fetch_add(1, std::memory_order_relaxed);
    SHARDTX_KILL_POINT("wal.after_write");
    active_.offset += end - chunk;
    active_.unsynced = true;
    chunk = end;
    return absl::OkStatus();
  };
  while (pos < n) {
    char* rec = data + pos;
    const uint64_t size = AlignedRecordSize(DecodeFixed32(rec + 8));
    if (active_.offset + (pos - chunk) + size > options_.segment_size) {
      RETURN_IF_ERROR(write_chunk(pos));
      // The sealed segment is synced before the next one is used: a valid later segment then
      // proves the earlier one complete.
      if (active_.unsynced) {
        RETURN_IF_ERROR(active_.file->Sync());
        fsyncs_.fetch_add(1, std::memory_order_relaxed);
        active_.unsynced = false;
      }
      SHARDTX_KILL_POINT("wal.segment_roll");
      RETURN_IF_ERROR(ActivateNextSegment(DecodeFixed64(rec + 16)));
    }
    SealRecord(rec, sync_lsn, active_.seed);
    pos += size;
  }
  RETURN_IF_ERROR(write_chunk(n));
  if (sync && active_.unsynced) {
    const auto start = std::chrono::steady_clock::now();
    RETURN_IF_ERROR(active_.file->Sync());
    fsync_us_.Add(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                            std::chrono::steady_clock::now() - start)
                                            .count()));
    fsyncs_.fetch_add(1, std::memory_order_relaxed);
    active_.unsynced = false;
    SHARDTX_KILL_POINT("wal.after_sync");
  }
  return absl::OkStatus();
}

absl::Status WalWriter::CreateSegmentFile(uint64_t number) {
  const std::string path = SegmentPath(dir_, number);
  std::string reuse;
  if (options_.recycle_segments) {
    MutexLock l(&mu_);
    if (!recyclable_.empty()) {
      reuse = recyclable_.front();
      recyclable_.pop_front();
    }
  }
  if (!reuse.empty()) {
    RETURN_IF_ERROR(env_->RenameFile(reuse, path));
    recycled_.fetch_add(1, std::memory_order_relaxed);
  } else {
    ASSIGN_OR_RETURN(std::unique_ptr<File> f, env_->OpenFile(path, Env::OpenMode::kCreate));
    absl::Status a = f->Allocate(0, options_.segment_size);
    if (absl::IsUnimplemented(a)) {
      // The file system refuses fallocate: write zeros once so that later syncs of this
      // segment do not also have to persist its growth.
      fallbacks_.fetch_add(1, std::memory_order_relaxed);
      const std::string zeros(1 << 20, '\0');
      for (uint64_t off = 0; off < options_.segment_size; off += zeros.size()) {
        const uint64_t len = std::min<uint64_t>(zeros.size(), options_.segment_size - off);
        RETURN_IF_ERROR(f->Write(off, absl::string_view(zeros.data(), len)));
      }
    } else if (!a.ok()) {
      return a;
    }
    RETURN_IF_ERROR(f->Sync());
    created_.fetch_add(1, std::memory_order_relaxed);
  }
  return env_->SyncDir(dir_);
}

absl::Status WalWriter::PrepareSpare() {
  if (spare_ != 0) return absl::OkStatus();
  const uint64_t number = active_.number + 1;
  RETURN_IF_ERROR(CreateSegmentFile(number));
  spare_ = number;
  return absl::OkStatus();
}

absl::Status WalWriter::ActivateNextSegment(Lsn first_lsn) {
  const uint64_t number = active_.number + 1;
  if (spare_ != number) RETURN_IF_ERROR(CreateSegmentFile(number));
  spare_ = 0;
  ASSIGN_OR_RETURN(std::unique_ptr<File> f,
                   env_->OpenFile(SegmentPath(dir_, number), Env::OpenMode::kReadWrite));
  SegmentHeader h{number, first_lsn, NewSalt()};
  char buf[kSegmentHeaderSize];
  EncodeSegmentHeader(h, buf);
  RETURN_IF_ERROR(f->Write(0, absl::string_view(buf, sizeof(buf))));
  active_.file = std::move(f);
  active_.number = number;
  active_.seed = h.seed();
  active_.offset = kSegmentHeaderSize;
  active_.unsynced = true;
  MutexLock l(&mu_);
  sealed_.emplace_back(number, first_lsn);
  return absl::OkStatus();
}

absl::Status WalWriter::Truncate(Lsn lsn) {
  std::vector<uint64_t> freed;
  {
    MutexLock l(&mu_);
    if (!error_.ok()) return error_;
    // Segment i is wholly below lsn when segment i+1 starts at or below it. The last entry is
    // the active segment and is never freed, nor is the one before it until a record of the
    // active segment is durable: only then is the active segment's header known to be on disk,
    // and without it a crash would leave no valid segment (the log would restart at LSN 1).
    const Lsn durable = durable_lsn_.load(std::memory_order_acquire);
    while (sealed_.size() > 1 && sealed_[1].second <= lsn &&
           (sealed_.size() > 2 || sealed_[1].second <= durable)) {
      freed.push_back(sealed_.front().first);
      sealed_.pop_front();
    }
  }
  if (freed.empty()) return absl::OkStatus();
  SHARDTX_KILL_POINT("wal.truncate");
  for (uint64_t number : freed) {  // oldest first, so a crash leaves a suffix
    const std::string path = SegmentPath(dir_, number);
    bool keep = false;
    if (options_.recycle_segments) {
      MutexLock l(&mu_);
      keep = recyclable_.size() < 2;
    }
    if (keep) {
      const std::string free_path = path + kFreeSuffix;
      RETURN_IF_ERROR(env_->RenameFile(path, free_path));
      MutexLock l(&mu_);
      recyclable_.push_back(free_path);
    } else {
      RETURN_IF_ERROR(env_->RemoveFile(path));
      removed_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  return env_->SyncDir(dir_);
}

Lsn WalWriter::oldest_lsn() const {
  MutexLock l(&mu_);
  return sealed_.empty() ? next_lsn_ : sealed_.front().second;
}

WalStats WalWriter::Stats() const {
  WalStats s;
  s.appends = appends_.load();
  s.bytes = bytes_.load();
  s.writes = writes_.load();
  s.fsyncs = fsyncs_.load();
  s.max_records_per_fsync = max_batch_.load();
  s.inline_syncs = inline_syncs_.load();
  s.records_per_fsync =
      s.fsyncs == 0 ? 0.0 : static_cast<double>(synced_records_.load()) / s.fsyncs;
  s.segments_created = created_.load();
  s.segments_recycled = recycled_.load();
  s.segments_removed = removed_.load();
  s.fallocate_fallbacks = fallbacks_.load();
  s.fsync_latency_us = fsync_us_.Summary();
  s.durable_lsn = durable_lsn_.load();
  MutexLock l(&mu_);
  s.written_lsn = written_lsn_;
  s.next_lsn = next_lsn_;
  s.unsynced_bytes = buffer_.size() + (in_flight_ ? flushing_size_ : 0);
  return s;
}

}  // namespace shardtx::wal
