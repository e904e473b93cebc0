#include "wal/reader.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "util/coding.h"
#include "util/status_macros.h"
#include "wal/segment.h"

namespace shardtx::wal {

namespace {

// LSN 2^64-1 is never valid: the LSN after it would wrap to 0.
constexpr Lsn kLsnLimit = ~Lsn{0};

}  // namespace

// Bounded reads of one segment file. The window holds the bytes read last; asking for bytes
// outside it reads from there, 4 KiB the first time and twice as much each time after, up to
// 1 MiB (more only for a record that needs it). So a segment costs in proportion to how far
// into it the reader looks, not to its preallocated size. The file size is capped at
// kMaxSegmentSize.
class SegmentWindow {
 public:
  static constexpr uint64_t kFirstRead = 4 << 10;
  static constexpr uint64_t kMaxRead = 1 << 20;

  // Counts what it reads in *bytes_read.
  static absl::StatusOr<std::unique_ptr<SegmentWindow>> Open(Env* env, const std::string& path,
                                                             uint64_t* bytes_read) {
    ASSIGN_OR_RETURN(std::unique_ptr<File> f, env->OpenFile(path, Env::OpenMode::kRead));
    ASSIGN_OR_RETURN(uint64_t size, f->Size());
    return std::make_unique<SegmentWindow>(std::move(f), size, bytes_read);
  }
  SegmentWindow(std::unique_ptr<File> file, uint64_t file_size, uint64_t* bytes_read)
      : file_(std::move(file)),
        file_size_(file_size),
        size_(std::min(file_size, kMaxSegmentSize)),
        bytes_read_(bytes_read) {}

  uint64_t file_size() const { return file_size_; }
  uint64_t size() const { return size_; }  // what it reads of the file

  // The bytes [offset, offset + n): fewer at the end of the file, none past it. Valid until the
  // next call.
  absl::StatusOr<absl::string_view> Get(uint64_t offset, uint64_t n) {
    if (offset >= size_) return absl::string_view();
    n = std::min(n, size_ - offset);
    if (offset >= buf_offset_ && offset - buf_offset_ + n <= buf_.size()) {
      return absl::string_view(buf_.data() + (offset - buf_offset_), n);
    }
    const uint64_t len = std::min(std::max(n, next_read_), size_ - offset);
    next_read_ = std::min(next_read_ * 2, kMaxRead);
    buf_.clear();
    buf_.resize(len);
    buf_offset_ = offset;
    absl::StatusOr<size_t> got = file_->Read(offset, len, buf_.data());
    if (!got.ok()) {
      buf_.clear();
      return got.status();
    }
    buf_.resize(*got);
    *bytes_read_ += *got;
    return absl::string_view(buf_.data(), std::min<uint64_t>(n, *got));
  }

  // The record at `offset` (nullopt wherever ParseRecord would find none).
  absl::StatusOr<std::optional<ParsedRecord>> Record(uint64_t offset, uint64_t seed) {
    ASSIGN_OR_RETURN(absl::string_view head, Get(offset, kRecordHeaderSize));
    if (head.size() < kRecordHeaderSize) return std::nullopt;
    const uint64_t len = DecodeFixed32(head.data() + 8);
    if (len > size_ - offset - kRecordHeaderSize) return std::nullopt;
    ASSIGN_OR_RETURN(absl::string_view bytes, Get(offset, kRecordHeaderSize + len));
    return ParseRecord(bytes, 0, seed, kMaxSegmentSize);
  }

 private:
  const std::unique_ptr<File> file_;
  const uint64_t file_size_;
  const uint64_t size_;
  uint64_t* const bytes_read_;
  std::string buf_;
  uint64_t buf_offset_ = 0;
  uint64_t next_read_ = kFirstRead;
};

namespace {

// What lies after a bad record in the rest of its segment.
struct LaterRecords {
  bool any = false;             // a valid record of this activation with a higher LSN
  bool proves_durable = false;  // one written after the bad record's LSN was durable
  Lsn max_lsn = 0;              // the highest LSN among them
};

// Scans the segment from `from` for records sealed with `seed` whose LSN lies above `after`,
// up to the end of the file or to the activation's close mark, after which its writer wrote
// nothing. Reads each byte about once, a chunk at a time.
absl::StatusOr<LaterRecords> ScanLaterRecords(SegmentWindow* w, uint64_t from, uint64_t seed,
                                              Lsn after) {
  LaterRecords out;
  const uint64_t size = w->size();
  const uint64_t span = size / kRecordHeaderSize + 1;
  const Lsn max_plausible = after > kLsnLimit - span ? kLsnLimit : after + span;
  uint64_t off = (from + kRecordAlign - 1) & ~uint64_t{kRecordAlign - 1};
  uint64_t base = off;      // where `chunk` starts
  absl::string_view chunk;  // bytes of the segment from `base`
  while (off <= size && size - off >= kRecordHeaderSize) {
    if (off - base + kRecordHeaderSize > chunk.size()) {
      ASSIGN_OR_RETURN(chunk, w->Get(off, SegmentWindow::kMaxRead));
      base = off;
      if (chunk.size() < kRecordHeaderSize) break;
    }
    const uint64_t at = off - base;
    const char* p = chunk.data() + at;
    Lsn unused;
    if (p[12] == 0 && static_cast<uint8_t>(p[13]) == kCloseMark &&
        IsCloseMark(chunk.substr(at, kRecordHeaderSize), seed, &unused)) {
      break;
    }
    const Lsn lsn = DecodeFixed64(p + 16);
    const Lsn sync = DecodeFixed64(p + 24);
    if (lsn > after && lsn <= max_plausible && sync <= lsn) {
      std::optional<ParsedRecord> r;
      if (DecodeFixed32(p + 8) <= chunk.size() - at - kRecordHeaderSize) {
        r = ParseRecord(chunk, at, seed, kMaxSegmentSize);
      } else {  // longer than the chunk holds: the window moves, the chunk is read again
        ASSIGN_OR_RETURN(r, w->Record(off, seed));
        chunk = absl::string_view();
      }
      if (r.has_value()) {
        out.any = true;
        out.proves_durable = out.proves_durable || sync > after;
        out.max_lsn = std::max(out.max_lsn, lsn);
        off += r->aligned_size;
        continue;
      }
    }
    off += kRecordAlign;
  }
  return out;
}

// The last LSN of the consecutive records from offset kSegmentHeaderSize of the segment that
// start at `first_lsn` (first_lsn - 1 if there is none). Sets *durable if one of them was
// written after the first was durable.
absl::StatusOr<Lsn> LastConsecutiveLsn(SegmentWindow* w, uint64_t seed, Lsn first_lsn,
                                       bool* durable) {
  Lsn expected = first_lsn;
  uint64_t off = kSegmentHeaderSize;
  while (expected != kLsnLimit) {
    ASSIGN_OR_RETURN(std::optional<ParsedRecord> r, w->Record(off, seed));
    if (!r.has_value() || r->lsn != expected || r->sync_lsn > r->lsn) break;
    if (r->sync_lsn > first_lsn) *durable = true;
    off += r->aligned_size;
    ++expected;
  }
  return expected - 1;
}

// The same for the segment file at `path`.
absl::StatusOr<Lsn> LastConsecutiveLsn(Env* env, const std::string& path, uint64_t seed,
                                       Lsn first_lsn, uint64_t* bytes_read) {
  ASSIGN_OR_RETURN(std::unique_ptr<SegmentWindow> w, SegmentWindow::Open(env, path, bytes_read));
  bool unused = false;
  return LastConsecutiveLsn(w.get(), seed, first_lsn, &unused);
}

// A segment whose header does not decode is a spare (preallocated, recycled, or torn while
// being activated) unless records sealed under the salt its header still carries show that the
// header was durable once: a record written after the segment's first record was durable (the
// header is synced with, or before, the first record). Then the header was damaged later, and
// the records [first, last] in the segment are lost. Reads past the first record only then.
absl::StatusOr<std::optional<std::pair<Lsn, Lsn>>> SyncedRecordsUnderBadHeader(
    Env* env, const std::string& path, uint64_t number, uint64_t* bytes_read) {
  ASSIGN_OR_RETURN(std::unique_ptr<SegmentWindow> w, SegmentWindow::Open(env, path, bytes_read));
  if (w->file_size() > kMaxSegmentSize) return std::nullopt;
  ASSIGN_OR_RETURN(absl::string_view head, w->Get(0, kSegmentHeaderSize));
  if (head.size() < kSegmentHeaderSize) return std::nullopt;
  const uint64_t seed = RecordSeed(number, DecodeFixed64(head.data() + 32));
  ASSIGN_OR_RETURN(std::optional<ParsedRecord> first, w->Record(kSegmentHeaderSize, seed));
  if (!first.has_value() || first->lsn == 0) return std::nullopt;
  bool durable = false;
  ASSIGN_OR_RETURN(const Lsn last, LastConsecutiveLsn(w.get(), seed, first->lsn, &durable));
  if (!durable) return std::nullopt;
  return std::make_pair(first->lsn, last);
}

}  // namespace

WalReader::WalReader(Env* env, std::string dir, ReaderOptions options)
    : env_(env), dir_(std::move(dir)), options_(options) {}

WalReader::~WalReader() = default;

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

  // Point in time: the highest LSN known to exist past where the readable log stops (records in
  // segments after a gap or a corrupt header), and, should nothing before the damage be
  // readable, the lowest LSN that may be lost (0: none).
  Lsn beyond = 0;
  Lsn floor = 0;
  auto lower_floor = [&floor](Lsn lsn) {
    if (lsn != 0 && (floor == 0 || lsn < floor)) floor = lsn;
  };
  for (size_t j = live; j < numbers.size(); ++j) {
    const std::string path = SegmentPath(dir_, numbers[j]);
    ASSIGN_OR_RETURN(auto synced,
                     SyncedRecordsUnderBadHeader(env_, path, numbers[j], &tail_.bytes_read));
    if (!synced.has_value()) continue;
    if (!options_.point_in_time) {
      return absl::DataLossError(absl::StrCat(
          "WAL segment ", path, " offset 0: header corrupt, but the segment holds records (LSN ",
          synced->first, " to ", synced->second, ") written after it was durable"));
    }
    lower_floor(synced->first);
    beyond = std::max(beyond, synced->second);
  }

  // The first LSN that must be readable: from the segment holding it on, the segments must be
  // contiguous. Those wholly below it need not be (a crash during truncation may leave any
  // subset of them).
  Lsn anchor = options_.from_lsn;
  if (options_.needed_lsn != 0 && (anchor == 0 || options_.needed_lsn < anchor)) {
    anchor = options_.needed_lsn;
  }
  size_t start = 0;
  for (size_t i = 0; i < live; ++i) {
    if (headers[i].has_value() && headers[i]->first_lsn <= anchor) start = i;
  }
  // A log that starts above needed_lsn lost its oldest records (or the segments holding them).
  bool unreadable = false;
  if (options_.needed_lsn != 0) {
    size_t oldest = live;
    for (size_t i = live; i > 0; --i) {
      if (headers[i - 1].has_value()) oldest = i - 1;
    }
    if (oldest < live && headers[oldest]->first_lsn > options_.needed_lsn) {
      const Lsn first = headers[oldest]->first_lsn;
      if (!options_.point_in_time) {
        return absl::DataLossError(absl::StrCat("WAL ", dir_, ": LSN ", options_.needed_lsn, " to ",
                                                first - 1, " missing: the oldest segment, ",
                                                SegmentPath(dir_, numbers[oldest]),
                                                ", starts at LSN ", first));
      }
      // Nothing is readable: the loss starts at needed_lsn and runs to the end of the log.
      unreadable = true;
      lower_floor(options_.needed_lsn);
      const SegmentHeader& last = *headers[live - 1];
      ASSIGN_OR_RETURN(const Lsn end,
                       LastConsecutiveLsn(env_, SegmentPath(dir_, numbers[live - 1]), last.seed(),
                                          last.first_lsn, &tail_.bytes_read));
      beyond = std::max(beyond, end);
    }
  }
  // Where the run of segments that reaches the end of the log without a break begins (an index
  // into segments_): below `start`, breaks are tolerated and end the run before them.
  size_t run = 0;
  for (size_t i = 0; i < live && !unreadable; ++i) {
    const std::string path = SegmentPath(dir_, numbers[i]);
    absl::Status bad;
    const bool follows = !segments_.empty() && headers[i].has_value() &&
                         numbers[i] == segments_.back().number + 1 &&
                         headers[i]->first_lsn >= segments_.back().first_lsn;
    if (!headers[i].has_value()) {
      if (i < start) {
        run = segments_.size();
        continue;
      }
      bad = absl::DataLossError(absl::StrCat(
          "WAL segment ", path, " offset 0: header corrupt, and later segments exist"));
    } else if (!segments_.empty() && i > start) {
      const Segment& prev = segments_.back();
      if (!follows) {
        std::string missing;
        if (!options_.point_in_time && numbers[i] > prev.number + 1 &&
            headers[i]->first_lsn > prev.first_lsn) {
          // Name the LSNs that went with the missing segments.
          ASSIGN_OR_RETURN(const Lsn last,
                           LastConsecutiveLsn(env_, SegmentPath(dir_, prev.number), prev.seed,
                                              prev.first_lsn, &tail_.bytes_read));
          if (last + 1 < headers[i]->first_lsn) {
            missing =
                absl::StrCat(": segments ", prev.number + 1, " to ", numbers[i] - 1,
                             " missing, with LSN ", last + 1, " to ", headers[i]->first_lsn - 1);
          }
        }
        bad = absl::DataLossError(absl::StrCat("WAL segment ", path, ": does not follow segment ",
                                               prev.number, " (first LSN ", headers[i]->first_lsn,
                                               " after ", prev.first_lsn, ")", missing));
      }
    } else if (!follows) {
      run = segments_.size();
    }
    if (!bad.ok()) {
      if (!options_.point_in_time) return bad;
      // The log stops before segment i; the records of the live segments after it are lost.
      const SegmentHeader& last = *headers[live - 1];
      ASSIGN_OR_RETURN(const Lsn end,
                       LastConsecutiveLsn(env_, SegmentPath(dir_, numbers[live - 1]), last.seed(),
                                          last.first_lsn, &tail_.bytes_read));
      beyond = std::max(beyond, end);
      if (segments_.empty()) {
        // Nothing is readable: the loss starts at segment i's first LSN, as far as its damaged
        // header still tells, and at the latest where the next valid segment starts.
        ASSIGN_OR_RETURN(std::unique_ptr<File> f, env_->OpenFile(path, Env::OpenMode::kRead));
        char buf[kSegmentHeaderSize];
        ASSIGN_OR_RETURN(size_t got, f->Read(0, sizeof(buf), buf));
        if (got == sizeof(buf)) lower_floor(DecodeFixed64(buf + 24));
        for (size_t j = i + 1; j < live; ++j) {
          if (headers[j].has_value()) {
            lower_floor(headers[j]->first_lsn);
            break;
          }
        }
      }
      break;
    }
    segments_.push_back({numbers[i], headers[i]->first_lsn, headers[i]->seed()});
    tail_.segments.emplace_back(numbers[i], headers[i]->first_lsn);
  }

  if (segments_.empty()) {
    done_ = true;
    if (floor != 0) {
      // Point in time, and nothing before the damage is readable: the loss starts at or before
      // from_lsn (the caller wanted records from there on). last_segment stays 0, so a writer
      // sets every segment file aside.
      lower_floor(options_.from_lsn);
      tail_.next_lsn = floor;
      tail_.lost = true;
      tail_.lost_from = floor;
      tail_.lost_to = std::max(beyond, floor);
      return absl::OkStatus();
    }
    tail_.next_lsn = 1;
    if (options_.from_lsn > 1) {
      return absl::NotFoundError(
          absl::StrCat("WAL ", dir_, " is empty; asked to read from LSN ", options_.from_lsn));
    }
    return absl::OkStatus();
  }
  // Until the end of the log is reached, tail_.lost_to carries `beyond` to HandleBadRecord.
  tail_.lost_to = beyond;
  if (options_.from_lsn != 0 && options_.from_lsn < segments_.front().first_lsn) {
    return absl::NotFoundError(absl::StrCat("WAL ", dir_, " was truncated past LSN ",
                                            options_.from_lsn, "; oldest is ",
                                            segments_.front().first_lsn));
  }
  // Start at the last segment whose first LSN is at or below from_lsn; from the oldest, without
  // one, of the run that reaches needed_lsn.
  current_ = options_.from_lsn == 0 ? run : 0;
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
  window_ = std::make_unique<SegmentWindow>(std::move(f), size, &tail_.bytes_read);
  offset_ = kSegmentHeaderSize;
  expected_ = seg.first_lsn;
  loaded_ = true;
  return absl::OkStatus();
}

absl::StatusOr<bool> WalReader::Next(WalRecord* rec) {
  while (!done_) {
    if (!loaded_) RETURN_IF_ERROR(LoadSegment(current_));
    const Segment& seg = segments_[current_];
    if (current_ + 1 < segments_.size() && expected_ >= segments_[current_ + 1].first_lsn) {
      // The rest of this segment was cut off when the next began.
      ++current_;
      loaded_ = false;
      continue;
    }
    ASSIGN_OR_RETURN(std::optional<ParsedRecord> r, window_->Record(offset_, seg.seed));
    if (!r.has_value() || r->lsn != expected_ || r->sync_lsn > r->lsn || r->lsn == kLsnLimit) {
      return HandleBadRecord();
    }
    offset_ += r->aligned_size;
    ++expected_;
    if (r->stream >= tail_.stream_last_lsn.size()) tail_.stream_last_lsn.resize(r->stream + 1);
    tail_.stream_last_lsn[r->stream] = r->lsn;
    if (r->lsn < options_.from_lsn) continue;
    rec->lsn = r->lsn;
    rec->type = r->type;
    rec->stream = r->stream;
    rec->payload = r->payload;
    ++tail_.records_read;
    return true;
  }
  return false;
}

absl::StatusOr<bool> WalReader::HandleBadRecord() {
  const Segment& seg = segments_[current_];
  const std::string path = SegmentPath(dir_, seg.number);
  const bool has_next = current_ + 1 < segments_.size();
  const Lsn beyond = tail_.lost_to;  // set by Init
  tail_.lost_to = 0;
  done_ = true;
  tail_.next_lsn = expected_;
  tail_.last_segment = seg.number;

  // Corruption: a record written after the bad one was durable exists. A later segment proves
  // it (a segment is synced before the next one starts); so may a later record in this one,
  // unless the writer closed the log right here (its close mark), and wrote nothing after.
  LaterRecords later;
  std::optional<Lsn> lost_to;
  bool closed = false;
  if (has_next) {
    const Segment& last = segments_.back();
    lost_to = last.first_lsn;  // a lower bound on what the later segments hold
    if (options_.point_in_time) {
      ASSIGN_OR_RETURN(const Lsn end,
                       LastConsecutiveLsn(env_, SegmentPath(dir_, last.number), last.seed,
                                          last.first_lsn, &tail_.bytes_read));
      lost_to = std::max(*lost_to, end);
    }
  } else {
    ASSIGN_OR_RETURN(absl::string_view at, window_->Get(offset_, kRecordHeaderSize));
    Lsn next = 0;
    closed = IsCloseMark(at, seg.seed, &next) && next == expected_;
    if (!closed) {
      ASSIGN_OR_RETURN(
          later, ScanLaterRecords(window_.get(), offset_ + kRecordAlign, seg.seed, expected_));
      if (later.proves_durable) lost_to = later.max_lsn;
    }
  }
  if (beyond >= expected_ && beyond != 0) lost_to = std::max(lost_to.value_or(0), beyond);
  if (lost_to.has_value()) {
    if (!options_.point_in_time) {
      return absl::DataLossError(absl::StrCat("WAL corrupt: ", path, " offset ", offset_,
                                              ": bad record at LSN ", expected_, ", but LSN ",
                                              *lost_to, " was written after it was durable"));
    }
    tail_.lost = true;
    tail_.lost_from = expected_;
    tail_.lost_to = std::max(*lost_to, expected_);
    return false;
  }
  if (closed) return false;  // the end of the log, as the writer left it

  // A torn tail: report it when the bytes there are an attempt at the next record: its LSN, or
  // the prefix of a header cut short by the end of the file, or records of this activation
  // beyond it. Not zeros, and not stale bytes of an earlier use of a recycled file.
  ASSIGN_OR_RETURN(absl::string_view at, window_->Get(offset_, kRecordHeaderSize));
  const uint64_t avail = at.size();
  const char* p = at.data();
  bool attempted = later.any;
  if (avail >= kRecordHeaderSize) {
    attempted = attempted || DecodeFixed64(p + 16) == expected_;
  } else if (avail > 0) {
    const bool zero = std::all_of(p, p + avail, [](char c) { return c == 0; });
    char lsn[8];
    EncodeFixed64(lsn, expected_);
    attempted = attempted ||
                (!zero &&
                 (avail <= 16 || std::memcmp(p + 16, lsn, std::min<uint64_t>(avail - 16, 8)) == 0));
  }
  if (attempted) {
    tail_.torn = true;
    tail_.torn_file = path;
    tail_.torn_offset = offset_;
  }
  return false;
}

}  // namespace shardtx::wal
