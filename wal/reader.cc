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

// What lies after a bad record in the rest of its segment.
struct LaterRecords {
  bool any = false;             // a valid record of this activation with a higher LSN
  bool proves_durable = false;  // one written after the bad record's LSN was durable
  Lsn max_lsn = 0;              // the highest LSN among them
};

// Scans `data` from `from` for records sealed with `seed` whose LSN lies above `after`.
LaterRecords ScanLaterRecords(absl::string_view data, uint64_t from, uint64_t seed, Lsn after) {
  LaterRecords out;
  const uint64_t span = data.size() / kRecordHeaderSize + 1;
  const Lsn max_plausible = after > kLsnLimit - span ? kLsnLimit : after + span;
  uint64_t off = (from + kRecordAlign - 1) & ~uint64_t{kRecordAlign - 1};
  while (off <= data.size() && data.size() - off >= kRecordHeaderSize) {
    const char* p = data.data() + off;
    const Lsn lsn = DecodeFixed64(p + 16);
    const Lsn sync = DecodeFixed64(p + 24);
    if (lsn > after && lsn <= max_plausible && sync <= lsn) {
      if (auto r = ParseRecord(data, off, seed, kMaxSegmentSize)) {
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

// The last LSN of the consecutive records from offset kSegmentHeaderSize of `data` that start
// at `first_lsn` (first_lsn - 1 if there is none). Sets *durable if one of them was written
// after the first was durable.
Lsn LastConsecutiveLsn(absl::string_view data, uint64_t seed, Lsn first_lsn, bool* durable) {
  Lsn expected = first_lsn;
  uint64_t off = kSegmentHeaderSize;
  while (expected != kLsnLimit) {
    std::optional<ParsedRecord> r = ParseRecord(data, off, seed, kMaxSegmentSize);
    if (!r.has_value() || r->lsn != expected || r->sync_lsn > r->lsn) break;
    if (r->sync_lsn > first_lsn) *durable = true;
    off += r->aligned_size;
    ++expected;
  }
  return expected - 1;
}

absl::StatusOr<std::string> ReadWholeFile(Env* env, const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<File> f, env->OpenFile(path, Env::OpenMode::kRead));
  ASSIGN_OR_RETURN(uint64_t size, f->Size());
  std::string data(std::min(size, kMaxSegmentSize), '\0');
  ASSIGN_OR_RETURN(size_t got, f->Read(0, data.size(), data.data()));
  data.resize(got);
  return data;
}

// A segment whose header does not decode is a spare (preallocated, recycled, or torn while
// being activated) unless records sealed under the salt its header still carries show that the
// header was durable once: a record written after the segment's first record was durable (the
// header is synced with, or before, the first record). Then the header was damaged later, and
// the records [first, last] in the segment are lost. Reads the whole file only in that case.
absl::StatusOr<std::optional<std::pair<Lsn, Lsn>>> SyncedRecordsUnderBadHeader(
    Env* env, const std::string& path, uint64_t number) {
  ASSIGN_OR_RETURN(std::unique_ptr<File> f, env->OpenFile(path, Env::OpenMode::kRead));
  ASSIGN_OR_RETURN(uint64_t size, f->Size());
  if (size > kMaxSegmentSize) return std::nullopt;
  std::string head(kSegmentHeaderSize + kRecordHeaderSize, '\0');
  ASSIGN_OR_RETURN(size_t got, f->Read(0, head.size(), head.data()));
  if (got < head.size()) return std::nullopt;
  const uint64_t seed = RecordSeed(number, DecodeFixed64(head.data() + 32));
  const uint64_t len = DecodeFixed32(head.data() + kSegmentHeaderSize + 8);
  if (len > size - head.size()) return std::nullopt;
  // Read the first record and check it before loading the rest of the file.
  head.resize(head.size() + len);
  ASSIGN_OR_RETURN(got, f->Read(0, head.size(), head.data()));
  std::optional<ParsedRecord> first =
      ParseRecord(absl::string_view(head.data(), got), kSegmentHeaderSize, seed, kMaxSegmentSize);
  if (!first.has_value() || first->lsn == 0) return std::nullopt;
  ASSIGN_OR_RETURN(std::string data, ReadWholeFile(env, path));
  bool durable = false;
  const Lsn last = LastConsecutiveLsn(data, seed, first->lsn, &durable);
  if (!durable) return std::nullopt;
  return std::make_pair(first->lsn, last);
}

}  // namespace

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
    ASSIGN_OR_RETURN(auto synced, SyncedRecordsUnderBadHeader(env_, path, numbers[j]));
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
      ASSIGN_OR_RETURN(std::string data, ReadWholeFile(env_, SegmentPath(dir_, numbers[live - 1])));
      bool unused = false;
      beyond = std::max(beyond, LastConsecutiveLsn(data, last.seed(), last.first_lsn, &unused));
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
          ASSIGN_OR_RETURN(std::string data, ReadWholeFile(env_, SegmentPath(dir_, prev.number)));
          bool unused = false;
          const Lsn last = LastConsecutiveLsn(data, prev.seed, prev.first_lsn, &unused);
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
      ASSIGN_OR_RETURN(std::string data, ReadWholeFile(env_, SegmentPath(dir_, numbers[live - 1])));
      bool unused = false;
      beyond = std::max(beyond, LastConsecutiveLsn(data, last.seed(), last.first_lsn, &unused));
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
    if (current_ + 1 < segments_.size() && expected_ >= segments_[current_ + 1].first_lsn) {
      // The rest of this segment was cut off when the next began.
      ++current_;
      loaded_ = false;
      continue;
    }
    std::optional<ParsedRecord> r = ParseRecord(data_, offset_, seg.seed, kMaxSegmentSize);
    if (!r.has_value() || r->lsn != expected_ || r->sync_lsn > r->lsn || r->lsn == kLsnLimit) {
      return HandleBadRecord();
    }
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
  // it (a segment is synced before the next one starts); so may a later record in this one.
  LaterRecords later;
  std::optional<Lsn> lost_to;
  if (has_next) {
    const Segment& last = segments_.back();
    lost_to = last.first_lsn;  // a lower bound on what the later segments hold
    if (options_.point_in_time) {
      ASSIGN_OR_RETURN(std::string data, ReadWholeFile(env_, SegmentPath(dir_, last.number)));
      bool unused = false;
      lost_to = std::max(*lost_to, LastConsecutiveLsn(data, last.seed, last.first_lsn, &unused));
    }
  } else {
    later = ScanLaterRecords(data_, offset_ + kRecordAlign, seg.seed, expected_);
    if (later.proves_durable) lost_to = later.max_lsn;
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

  // A torn tail: report it when the bytes there are an attempt at the next record: its LSN, or
  // the prefix of a header cut short by the end of the file, or records of this activation
  // beyond it. Not zeros, and not stale bytes of an earlier use of a recycled file.
  const uint64_t avail = offset_ < data_.size() ? data_.size() - offset_ : 0;
  const char* p = data_.data() + offset_;
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
