#include "wal/reader.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "util/coding.h"
#include "util/status_macros.h"
#include "wal/segment.h"

namespace shardtx::wal {

absl::StatusOr<std::unique_ptr<WalReader>> WalReader::Open(Env* env, const std::string& dir,
                                                           const ReaderOptions& options) {
  std::unique_ptr<WalReader> r(new WalReader(env, dir, options));
  RETURN_IF_ERROR(r->Init());
  return r;
}

absl::Status WalReader::Init() {
  ASSIGN_OR_RETURN(std::vector<std::string> names, env_->ListDir(dir_));
  std::vector<uint64_t> numbers;
  for (const std::string& name : names) {
    if (auto n = ParseSegmentFileName(name)) numbers.push_back(*n);
  }
  std::sort(numbers.begin(), numbers.end());

  // Read every header. Trailing segments whose header is not valid are spares (preallocated or
  // recycled, never activated, or torn while being activated): they hold no live record.
  std::vector<std::optional<SegmentHeader>> headers;
  for (uint64_t n : numbers) {
    const std::string path = SegmentPath(dir_, n);
    ASSIGN_OR_RETURN(std::unique_ptr<File> f, env_->OpenFile(path, Env::OpenMode::kRead));
    char buf[kSegmentHeaderSize];
    ASSIGN_OR_RETURN(size_t got, f->Read(0, sizeof(buf), buf));
    headers.push_back(DecodeSegmentHeader(absl::string_view(buf, got), n));
  }
  size_t live = headers.size();
  while (live > 0 && !headers[live - 1].has_value()) --live;

  // Segments wholly below from_lsn need not be contiguous (a crash during truncation may leave
  // any subset of them); from the one holding from_lsn on, they must be.
  size_t start = 0;
  for (size_t i = 0; i < live; ++i) {
    if (headers[i].has_value() && headers[i]->first_lsn <= options_.from_lsn) start = i;
  }
  for (size_t i = 0; i < live; ++i) {
    const std::string path = SegmentPath(dir_, numbers[i]);
    if (!headers[i].has_value()) {
      if (i < start) continue;
      if (options_.point_in_time) {
        live = i;
        break;
      }
      return absl::DataLossError(absl::StrCat("WAL segment ", path,
                                              ": header corrupt, and later segments exist"));
    }
    if (!segments_.empty() && i > start) {
      const Segment& prev = segments_.back();
      if (numbers[i] != prev.number + 1 || headers[i]->first_lsn < prev.first_lsn) {
        return absl::DataLossError(absl::StrCat(
            "WAL segment ", path, ": does not follow segment ", prev.number, " (first LSN ",
            headers[i]->first_lsn, " after ", prev.first_lsn, ")"));
      }
    }
    segments_.push_back({numbers[i], headers[i]->first_lsn, headers[i]->seed()});
    tail_.segments.emplace_back(numbers[i], headers[i]->first_lsn);
  }

  if (segments_.empty()) {
    tail_.next_lsn = 1;
    done_ = true;
    if (options_.from_lsn > 1) {
      return absl::NotFoundError(absl::StrCat("WAL ", dir_, " is empty; asked to read from LSN ",
                                              options_.from_lsn));
    }
    return absl::OkStatus();
  }
  if (options_.from_lsn != 0 && options_.from_lsn < segments_.front().first_lsn) {
    return absl::NotFoundError(absl::StrCat("WAL ", dir_, " was truncated past LSN ",
                                            options_.from_lsn, "; oldest is ",
                                            segments_.front().first_lsn));
  }
  // Start at the last segment whose first LSN is at or below from_lsn.
  current_ = 0;
  while (current_ + 1 < segments_.size() &&
         segments_[current_ + 1].first_lsn <= options_.from_lsn) {
    ++current_;
  }
  return absl::OkStatus();
}

absl::Status WalReader::LoadSegment(size_t index) {
  const Segment& seg = segments_[index];
  const std::string path = SegmentPath(dir_, seg.number);
  ASSIGN_OR_RETURN(std::unique_ptr<File> f, env_->OpenFile(path, Env::OpenMode::kRead));
  ASSIGN_OR_RETURN(uint64_t size, f->Size());
  if (size > kMaxSegmentSize) {
    return absl::DataLossError(
        absl::StrCat("WAL segment ", path, ": size ", size, " exceeds ", kMaxSegmentSize));
  }
  data_.resize(size);
  ASSIGN_OR_RETURN(size_t got, f->Read(0, size, data_.data()));
  data_.resize(got);
  tail_.bytes_read += got;
  offset_ = kSegmentHeaderSize;
  expected_ = seg.first_lsn;
  loaded_ = true;
  return absl::OkStatus();
}

absl::StatusOr<bool> WalReader::Next(WalRecord* rec) {
  while (!done_) {
    if (!loaded_) RETURN_IF_ERROR(LoadSegment(current_));
    const Segment& seg = segments_[current_];
    const Lsn bound =
        current_ + 1 < segments_.size() ? segments_[current_ + 1].first_lsn : ~Lsn{0};
    if (expected_ >= bound) {  // the rest of this segment was cut off when the next began
      ++current_;
      loaded_ = false;
      continue;
    }
    std::optional<ParsedRecord> r = ParseRecord(data_, offset_, seg.seed, kMaxSegmentSize);
    if (!r.has_value() || r->lsn != expected_ || r->sync_lsn > r->lsn) return HandleBadRecord();
    offset_ += r->aligned_size;
    ++expected_;
    if (r->lsn < options_.from_lsn) continue;
    rec->lsn = r->lsn;
    rec->type = r->type;
    rec->payload = r->payload;
    ++tail_.records_read;
    return true;
  }
  return false;
}

std::optional<Lsn> WalReader::FindLaterRecord(absl::string_view data, uint64_t from,
                                              Lsn after) const {
  const uint64_t seed = segments_[current_].seed;
  const Lsn max_plausible = after + data.size() / kRecordHeaderSize + 1;
  for (uint64_t off = (from + kRecordAlign - 1) & ~uint64_t{kRecordAlign - 1};
       off + kRecordHeaderSize <= data.size(); off += kRecordAlign) {
    const char* p = data.data() + off;
    Lsn lsn = DecodeFixed64(p + 16);
    Lsn sync = DecodeFixed64(p + 24);
    if (lsn <= after || lsn > max_plausible || sync <= after || sync > lsn) continue;
    if (auto r = ParseRecord(data, off, seed, kMaxSegmentSize)) return r->lsn;
  }
  return std::nullopt;
}

absl::StatusOr<bool> WalReader::HandleBadRecord() {
  const Segment& seg = segments_[current_];
  const std::string path = SegmentPath(dir_, seg.number);
  const bool has_next = current_ + 1 < segments_.size();
  std::optional<Lsn> later;
  if (has_next) {
    later = segments_.back().first_lsn;  // a lower bound on what the later segments hold
  } else {
    later = FindLaterRecord(data_, offset_ + kRecordAlign, expected_);
  }
  done_ = true;
  tail_.next_lsn = expected_;
  tail_.last_segment = seg.number;
  if (later.has_value()) {
    if (!options_.point_in_time) {
      return absl::DataLossError(absl::StrCat(
          "WAL corrupt: ", path, " offset ", offset_, ": bad record at LSN ", expected_,
          ", but LSN ", *later, " was written after it was durable"));
    }
    tail_.lost = true;
    tail_.lost_from = expected_;
    tail_.lost_to = std::max(*later, expected_);
    return false;
  }
  // A torn tail: report it when the bytes there look like an attempt at the next record (not
  // zeros, not a stale record of an earlier use of the file).
  if (offset_ + kRecordHeaderSize <= data_.size()) {
    const char* p = data_.data() + offset_;
    bool zero = std::all_of(p, p + kRecordHeaderSize, [](char c) { return c == 0; });
    if (!zero && DecodeFixed64(p + 16) >= expected_) {
      tail_.torn = true;
      tail_.torn_file = path;
      tail_.torn_offset = offset_;
    }
  } else if (offset_ < data_.size()) {
    tail_.torn = true;
    tail_.torn_file = path;
    tail_.torn_offset = offset_;
  }
  return false;
}

}  // namespace shardtx::wal
