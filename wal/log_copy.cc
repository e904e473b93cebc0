#include "wal/log_copy.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "util/coding.h"
#include "util/kill_point.h"
#include "util/status_macros.h"
#include "wal/segment.h"

namespace shardtx::wal {

SHARDTX_DEFINE_KILL_POINT(backup_wal_segment, "backup.wal_segment_copied");

namespace {

constexpr uint64_t kChunk = 1 << 20;

// Streams one segment file into its copy as a walk over its records passes the bytes: the source
// is read a chunk at a time, and what the walk has passed is written out, after the copy's
// header, before the next read; records the walk skips are not written.
class SegmentStream {
 public:
  SegmentStream(File* src, uint64_t src_size, File* dst)
      : src_(src), src_size_(src_size), dst_(dst) {}

  // The source bytes [off, off + n), fewer at the end of the file; valid until the next call.
  // REQUIRES: off at or after the end of the last Flush or Skip.
  absl::StatusOr<absl::string_view> Get(uint64_t off, uint64_t n) {
    if (off >= buf_off_ && off - buf_off_ + n <= buf_.size()) {
      return absl::string_view(buf_.data() + (off - buf_off_), n);
    }
    RETURN_IF_ERROR(Flush(off));
    const uint64_t len = off >= src_size_ ? 0 : std::min(std::max(n, kChunk), src_size_ - off);
    buf_.resize(len);
    buf_off_ = off;
    ASSIGN_OR_RETURN(size_t got, src_->Read(off, len, buf_.data()));
    buf_.resize(got);
    return absl::string_view(buf_.data(), std::min<uint64_t>(n, got));
  }

  // The source bytes before `off` are not to be copied.
  void Skip(uint64_t off) { read_ = off; }

  // Appends the source bytes from the end of the last Flush or Skip up to `end` to the copy.
  // REQUIRES: they were all returned by Get since.
  absl::Status Flush(uint64_t end) {
    if (end <= read_) return absl::OkStatus();
    RETURN_IF_ERROR(
        dst_->Write(written_, absl::string_view(buf_.data() + (read_ - buf_off_), end - read_)));
    written_ += end - read_;
    read_ = end;
    return absl::OkStatus();
  }

  // Appends `bytes` of the copy's own to it.
  absl::Status Append(absl::string_view bytes) {
    RETURN_IF_ERROR(dst_->Write(written_, bytes));
    written_ += bytes.size();
    return absl::OkStatus();
  }

 private:
  File* const src_;
  const uint64_t src_size_;
  File* const dst_;
  std::string buf_;
  uint64_t buf_off_ = 0;                // where buf_ starts in the source
  uint64_t read_ = kSegmentHeaderSize;  // the source up to here is copied or skipped
  uint64_t written_ = 0;                // the copy's size
};

// Copies segment file `src_path` (header `h`) to `dst_path`: records `first` through `last`,
// each checked (those before `first` too), under a header saying the segment starts at `first`
// (same number and salt, so the records' checksums hold); then, if `close`, a close mark.
absl::Status CopySegment(Env* env, const std::string& src_path, const std::string& dst_path,
                         const SegmentHeader& h, Lsn first, Lsn last, bool close) {
  ASSIGN_OR_RETURN(std::unique_ptr<File> src, env->OpenFile(src_path, Env::OpenMode::kRead));
  ASSIGN_OR_RETURN(uint64_t size, src->Size());
  ASSIGN_OR_RETURN(std::unique_ptr<File> dst,
                   env->OpenFile(dst_path, Env::OpenMode::kCreateExclusive));
  SegmentStream stream(src.get(), size, dst.get());
  char header[kSegmentHeaderSize];
  EncodeSegmentHeader(SegmentHeader{h.segment, first, h.salt}, header);
  RETURN_IF_ERROR(stream.Append(absl::string_view(header, sizeof(header))));
  uint64_t off = kSegmentHeaderSize;
  for (Lsn lsn = h.first_lsn; lsn <= last; ++lsn) {
    if (lsn <= first) stream.Skip(off);
    std::optional<ParsedRecord> r;
    ASSIGN_OR_RETURN(absl::string_view head, stream.Get(off, kRecordHeaderSize));
    if (head.size() == kRecordHeaderSize) {
      const uint64_t aligned = AlignedRecordSize(DecodeFixed32(head.data() + 8));
      if (aligned <= size - off) {
        ASSIGN_OR_RETURN(absl::string_view bytes, stream.Get(off, aligned));
        r = ParseRecord(bytes, 0, h.seed(), kMaxSegmentSize);
      }
    }
    if (!r.has_value() || r->lsn != lsn || r->sync_lsn > r->lsn) {
      return absl::DataLossError(absl::StrCat("copying WAL segment ", src_path, ": offset ", off,
                                              " holds no valid record with LSN ", lsn));
    }
    off += r->aligned_size;
  }
  if (last < first) stream.Skip(off);
  RETURN_IF_ERROR(stream.Flush(off));
  if (close) {
    char mark[kRecordHeaderSize];
    EncodeCloseMark(std::max(last, first - 1) + 1, h.seed(), mark);
    RETURN_IF_ERROR(stream.Append(absl::string_view(mark, sizeof(mark))));
  }
  return dst->Sync();
}

}  // namespace

absl::Status CopyLog(Env* env, const std::string& from_dir, const std::string& to_dir, Lsn from_lsn,
                     Lsn to_lsn) {
  // The copy runs from the segment holding `first` to the one holding `end`. With nothing to
  // copy, `first` is the next LSN, to_lsn + 1, and its segment is the one it would be written to
  // (the segment holding to_lsn may be gone: nothing needs it).
  const Lsn first = from_lsn > to_lsn ? to_lsn + 1 : std::max<Lsn>(from_lsn, 1);
  const Lsn end = std::max(to_lsn, first);
  ASSIGN_OR_RETURN(std::vector<std::string> names, env->ListDir(from_dir));
  std::vector<uint64_t> numbers;
  for (const std::string& name : names) {
    if (auto n = ParseSegmentFileName(name)) numbers.push_back(*n);
  }
  std::sort(numbers.begin(), numbers.end());
  // Live segments that start at or below `end`. Spares (no valid header yet) and segments
  // begun after it are left out; so is a segment freed since the listing (below the pin).
  std::vector<SegmentHeader> segments;
  for (uint64_t n : numbers) {
    auto f = env->OpenFile(SegmentPath(from_dir, n), Env::OpenMode::kRead);
    if (absl::IsNotFound(f.status())) continue;
    RETURN_IF_ERROR(f.status());
    char buf[kSegmentHeaderSize];
    ASSIGN_OR_RETURN(size_t got, (*f)->Read(0, sizeof(buf), buf));
    std::optional<SegmentHeader> h = DecodeSegmentHeader(absl::string_view(buf, got), n);
    if (h.has_value() && h->first_lsn <= end) segments.push_back(*h);
  }
  size_t start = segments.size();
  for (size_t i = 0; i < segments.size(); ++i) {
    if (segments[i].first_lsn <= first) start = i;
  }
  if (start == segments.size()) {
    return absl::DataLossError(
        absl::StrCat("copying WAL ", from_dir, ": LSN ", first, " is no longer in the log (",
                     segments.empty() ? absl::StrCat("no segment starts at or below LSN ", end)
                                      : absl::StrCat("its oldest segment, ", segments[0].segment,
                                                     ", starts at LSN ", segments[0].first_lsn),
                     ")"));
  }
  for (size_t i = start + 1; i < segments.size(); ++i) {
    const SegmentHeader& prev = segments[i - 1];
    if (segments[i].segment != prev.segment + 1 || segments[i].first_lsn < prev.first_lsn) {
      return absl::DataLossError(absl::StrCat("copying WAL ", from_dir, ": segment ",
                                              segments[i].segment, " does not follow segment ",
                                              prev.segment));
    }
  }
  RETURN_IF_ERROR(env->CreateDir(to_dir));
  for (size_t i = start; i < segments.size(); ++i) {
    const bool last = i + 1 == segments.size();
    const SegmentHeader& h = segments[i];
    RETURN_IF_ERROR(CopySegment(env, SegmentPath(from_dir, h.segment),
                                SegmentPath(to_dir, h.segment), h,
                                i == start ? std::max(first, h.first_lsn) : h.first_lsn,
                                last ? to_lsn : segments[i + 1].first_lsn - 1, last));
    SHARDTX_KILL_POINT("backup.wal_segment_copied");
  }
  return env->SyncDir(to_dir);
}

}  // namespace shardtx::wal
