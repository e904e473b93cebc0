#include "wal/segment_files.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <random>
#include <vector>

#include "absl/strings/match.h"
#include "util/kill_point.h"
#include "util/status_macros.h"
#include "wal/segment.h"

namespace shardtx::wal {

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

SegmentFiles::SegmentFiles(Env* env, std::string dir, const Options& options)
    : env_(env), dir_(std::move(dir)), options_(options) {}

absl::Status SegmentFiles::Open(const WalTail& tail) {
  // The directory may be new (or made by a run that crashed before this point): its entry must
  // be durable before any record in it is acknowledged, or a crash loses the whole log.
  RETURN_IF_ERROR(CreateDirDurably(env_, dir_));

  // Segments after the tail are spares (removed) or records a point-in-time recovery skipped
  // (kept aside as *.lost for forensics). Files freed by an earlier Truncate are reused.
  ASSIGN_OR_RETURN(std::vector<std::string> names, env_->ListDir(dir_));
  std::sort(names.begin(), names.end());
  bool dir_changed = false;
  for (const std::string& name : names) {
    const std::string path = dir_ + "/" + name;
    if (absl::EndsWith(name, kFreeSuffix)) {
      MutexLock l(&mu_);
      free_.push_back(path);
      continue;
    }
    std::optional<uint64_t> n = ParseSegmentFileName(name);
    if (!n.has_value() || *n <= tail.last_segment) continue;
    bool live = std::any_of(tail.segments.begin(), tail.segments.end(),
                            [&](const auto& s) { return s.first == *n; });
    if (live || tail.lost) {
      RETURN_IF_ERROR(env_->RenameFile(path, path + ".lost"));
    } else {
      RETURN_IF_ERROR(env_->RemoveFile(path));
    }
    dir_changed = true;
  }
  if (dir_changed) RETURN_IF_ERROR(env_->SyncDir(dir_));

  {
    MutexLock l(&mu_);
    for (const auto& s : tail.segments) {
      if (s.first <= tail.last_segment) live_.push_back(s);
    }
  }
  // What the reader found may have come from the page cache after a process crash: make it
  // durable before any new record claims (through its sync LSN) that it is.
  if (tail.last_segment != 0) {
    ASSIGN_OR_RETURN(
        std::unique_ptr<File> last,
        env_->OpenFile(SegmentPath(dir_, tail.last_segment), Env::OpenMode::kReadWrite));
    RETURN_IF_ERROR(last->Sync());
  }
  // A fresh segment for every open: bytes after the tail are never overwritten.
  active_.number = tail.last_segment;
  RETURN_IF_ERROR(ActivateNext(tail.next_lsn));
  RETURN_IF_ERROR(active_.file->Sync());
  active_.unsynced = false;
  return absl::OkStatus();
}

absl::Status SegmentFiles::Roll(Lsn first_lsn) {
  RETURN_IF_ERROR(Sync());
  SHARDTX_KILL_POINT("wal.segment_roll");
  return ActivateNext(first_lsn);
}

absl::Status SegmentFiles::PrepareSpare() {
  if (spare_ != 0) return absl::OkStatus();
  const uint64_t number = active_.number + 1;
  ASSIGN_OR_RETURN(spare_written_, CreateFile(number));
  spare_ = number;
  return absl::OkStatus();
}

absl::Status SegmentFiles::ActivateNext(Lsn first_lsn) {
  const uint64_t number = active_.number + 1;
  bool written = spare_written_;
  if (spare_ != number) {
    ASSIGN_OR_RETURN(written, CreateFile(number));
  }
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
  active_.zeroed = written ? options_.segment_size : kSegmentHeaderSize;
  active_.unsynced = true;
  MutexLock l(&mu_);
  live_.emplace_back(number, first_lsn);
  return absl::OkStatus();
}

absl::Status SegmentFiles::ZeroAhead() {
  // Zero-initialised, never written: it lives in .bss and costs the binary nothing.
  alignas(4096) static char zeros[kZeroChunk];
  const uint64_t end =
      std::min(options_.segment_size, (active_.offset / kZeroChunk + 1) * kZeroChunk);
  if (end > active_.offset) {
    const uint64_t n = end - active_.offset;
    RETURN_IF_ERROR(active_.file->Write(active_.offset, absl::string_view(zeros, n)));
    zeroed_ahead_.fetch_add(n, std::memory_order_relaxed);
  }
  active_.zeroed = end;
  return absl::OkStatus();
}

absl::StatusOr<bool> SegmentFiles::CreateFile(uint64_t number) {
  const std::string path = SegmentPath(dir_, number);
  std::string reuse;
  if (options_.recycle) {
    MutexLock l(&mu_);
    if (!free_.empty()) {
      reuse = free_.front();
      free_.pop_front();
    }
  }
  bool written = true;
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
    } else {
      written = false;
    }
    RETURN_IF_ERROR(f->Sync());
    created_.fetch_add(1, std::memory_order_relaxed);
  }
  RETURN_IF_ERROR(env_->SyncDir(dir_));
  return written;
}

absl::Status SegmentFiles::WriteCloseMark(Lsn next_lsn) {
  if (active_.file == nullptr || active_.offset + kRecordHeaderSize > options_.segment_size) {
    return absl::OkStatus();  // no room: the reader has less than a record header to look at
  }
  char mark[kRecordHeaderSize];
  EncodeCloseMark(next_lsn, active_.seed, mark);
  RETURN_IF_ERROR(active_.file->Write(active_.offset, absl::string_view(mark, sizeof(mark))));
  return active_.file->Sync();
}

absl::Status SegmentFiles::Truncate(Lsn lsn, Lsn durable_lsn) {
  std::vector<uint64_t> freed;
  {
    MutexLock l(&mu_);
    // Segment i is wholly below lsn when segment i+1 starts at or below it.
    while (live_.size() > 1 && live_[1].second <= lsn &&
           (live_.size() > 2 || live_[1].second <= durable_lsn)) {
      freed.push_back(live_.front().first);
      live_.pop_front();
    }
  }
  if (freed.empty()) return absl::OkStatus();
  SHARDTX_KILL_POINT("wal.truncate");
  for (uint64_t number : freed) {  // oldest first, so a crash leaves a suffix
    const std::string path = SegmentPath(dir_, number);
    bool keep = false;
    if (options_.recycle) {
      MutexLock l(&mu_);
      keep = free_.size() < 2;
    }
    if (keep) {
      const std::string free_path = path + kFreeSuffix;
      RETURN_IF_ERROR(env_->RenameFile(path, free_path));
      MutexLock l(&mu_);
      free_.push_back(free_path);
    } else {
      RETURN_IF_ERROR(env_->RemoveFile(path));
      removed_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  return env_->SyncDir(dir_);
}

Lsn SegmentFiles::oldest_lsn() const {
  MutexLock l(&mu_);
  return live_.front().second;
}

SegmentFiles::Stats SegmentFiles::stats() const {
  Stats s;
  s.writes = writes_.load();
  s.syncs = syncs_.load();
  s.created = created_.load();
  s.recycled = recycled_.load();
  s.removed = removed_.load();
  s.fallocate_fallbacks = fallbacks_.load();
  s.zeroed_ahead = zeroed_ahead_.load();
  return s;
}

}  // namespace shardtx::wal
