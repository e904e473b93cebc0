// The active segment is written ahead of its write position (SegmentFiles::kZeroChunk at a
// time) so that a group commit's fdatasync does not also persist the extent change of blocks
// that fallocate left unwritten; recycled files, written in their earlier use, are not.
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/forwarding_env.h"
#include "tests/wal/wal_test_util.h"
#include "wal/segment_files.h"
#include "wal/writer.h"

namespace shardtx::wal {
namespace {

using testutil::ScratchDir;

// Per file: which byte ranges were ever written, and the end of the last write that was not
// all zeros (a header or records). At every Sync of a file with records it checks that the
// written ranges cover the file from 0 to the kZeroChunk boundary after that end (or the
// segment's end).
class WrittenRangesEnv : public testing::ForwardingEnv {
 public:
  explicit WrittenRangesEnv(uint64_t segment_size) : segment_size_(segment_size) {}

  absl::StatusOr<std::unique_ptr<File>> OpenFile(const std::string& path, OpenMode mode) override {
    auto f = base()->OpenFile(path, mode);
    if (!f.ok()) return f.status();
    return std::unique_ptr<File>(new TrackedFile(std::move(*f), this, path));
  }

  // Syncs checked (of files with records), and those that found an unwritten block before
  // the boundary, with the first such case described.
  int syncs_checked() const {
    std::lock_guard<std::mutex> l(mu_);
    return syncs_checked_;
  }
  int short_syncs() const {
    std::lock_guard<std::mutex> l(mu_);
    return short_syncs_;
  }
  std::string first_short() const {
    std::lock_guard<std::mutex> l(mu_);
    return first_short_;
  }

 private:
  struct FileState {
    std::map<uint64_t, uint64_t> ranges;  // start -> end, disjoint and not touching
    uint64_t data_end = 0;
  };

  class TrackedFile final : public testing::ForwardingFile {
   public:
    TrackedFile(std::unique_ptr<File> base, WrittenRangesEnv* env, std::string path)
        : ForwardingFile(std::move(base)), env_(env), path_(std::move(path)) {}
    absl::Status Write(uint64_t offset, absl::string_view data) override {
      absl::Status s = base()->Write(offset, data);
      if (s.ok()) env_->Wrote(path_, offset, data);
      return s;
    }
    absl::Status Sync() override {
      absl::Status s = base()->Sync();
      if (s.ok()) env_->Synced(path_);
      return s;
    }

   private:
    WrittenRangesEnv* const env_;
    const std::string path_;
  };

  void Wrote(const std::string& path, uint64_t offset, absl::string_view data) {
    std::lock_guard<std::mutex> l(mu_);
    FileState& f = files_[path];
    uint64_t start = offset, end = offset + data.size();
    auto it = f.ranges.upper_bound(start);
    if (it != f.ranges.begin() && std::prev(it)->second >= start) --it;
    while (it != f.ranges.end() && it->first <= end) {
      start = std::min(start, it->first);
      end = std::max(end, it->second);
      it = f.ranges.erase(it);
    }
    f.ranges[start] = end;
    if (std::any_of(data.begin(), data.end(), [](char c) { return c != 0; })) {
      f.data_end = std::max(f.data_end, offset + data.size());
    }
  }

  void Synced(const std::string& path) {
    std::lock_guard<std::mutex> l(mu_);
    FileState& f = files_[path];
    // A new or spare file, or a segment with only its header: no record written yet.
    if (f.data_end <= kSegmentHeaderSize) return;
    const uint64_t chunk = SegmentFiles::kZeroChunk;
    const uint64_t boundary = std::min(segment_size_, (f.data_end / chunk + 1) * chunk);
    const uint64_t covered =
        (!f.ranges.empty() && f.ranges.begin()->first == 0) ? f.ranges.begin()->second : 0;
    ++syncs_checked_;
    if (covered < boundary) {
      if (short_syncs_++ == 0) {
        first_short_ = absl::StrCat(path, ": records up to ", f.data_end, ", written through ",
                                    covered, ", expected through ", boundary);
      }
    }
  }

  const uint64_t segment_size_;
  mutable std::mutex mu_;
  std::map<std::string, FileState> files_;
  int syncs_checked_ = 0;
  int short_syncs_ = 0;
  std::string first_short_;
};

WalOptions Options(uint64_t segment_size, bool recycle) {
  WalOptions o;
  o.segment_size = segment_size;
  o.max_record_size = segment_size - 96;
  o.buffer_limit = 1 << 20;
  o.recycle_segments = recycle;
  return o;
}

// Every sync of a fresh segment finds the blocks up to the next chunk boundary written: the
// records' own and zeros ahead of them. Records of 1000 bytes cross several boundaries of a
// 1 MiB segment and roll into a second one.
TEST(WalZeroAhead, FreshSegmentIsWrittenThroughTheNextChunkAtEverySync) {
  const uint64_t kSegment = 1 << 20;
  static_assert((1 << 20) % SegmentFiles::kZeroChunk == 0);
  ScratchDir dir;
  WrittenRangesEnv env(kSegment);
  auto w = testutil::OpenWriter(dir.path(), Options(kSegment, /*recycle=*/false), &env);
  ASSERT_NE(w, nullptr);
  const std::string payload(1000, 'r');
  for (int i = 0; i < 1500; ++i) {
    absl::StatusOr<Lsn> lsn = w->Append(1, payload, Durability::kSync);
    ASSERT_TRUE(lsn.ok()) << lsn.status();
    ASSERT_TRUE(w->WaitDurable(*lsn).ok());
  }
  const WalStats stats = w->Stats();
  ASSERT_TRUE(w->Close().ok());
  EXPECT_GE(stats.segments_created, 2u);
  EXPECT_GE(env.syncs_checked(), 1500);
  EXPECT_EQ(env.short_syncs(), 0) << env.first_short();
  // Zeros cover what the records did not, and no more than the two segments written.
  EXPECT_GT(stats.zeroed_ahead_bytes, 0u);
  EXPECT_LT(stats.zeroed_ahead_bytes, 2 * kSegment);

  // The log reads back whole: the zeros after the last record are the end of the log.
  testutil::ReadResult img = testutil::ReadLog(dir.path());
  ASSERT_TRUE(img.status.ok()) << img.status;
  EXPECT_EQ(img.records.size(), 1500u);
  EXPECT_FALSE(img.tail.torn);
}

// A recycled file was written in its earlier use: activating it writes no zeros. With 64 KiB
// segments (smaller than a chunk) each fresh segment is zeroed to its end at its first record,
// so zeros beyond one segment's worth per file created would mean recycled files were zeroed
// again.
TEST(WalZeroAhead, RecycledSegmentsAreNotZeroedAgain) {
  const uint64_t kSegment = 64 << 10;
  ScratchDir dir;
  auto w = testutil::OpenWriter(dir.path(), Options(kSegment, /*recycle=*/true));
  ASSERT_NE(w, nullptr);
  const std::string payload(2000, 'r');
  for (int i = 0; i < 1000; ++i) {  // about 31 segments' worth
    absl::StatusOr<Lsn> lsn = w->Append(1, payload, Durability::kSync);
    ASSERT_TRUE(lsn.ok()) << lsn.status();
    ASSERT_TRUE(w->WaitDurable(*lsn).ok());
    ASSERT_TRUE(w->Truncate(*lsn).ok());  // frees every segment before the active one
  }
  const WalStats stats = w->Stats();
  ASSERT_TRUE(w->Close().ok());
  ASSERT_GT(stats.segments_recycled, 10u);
  EXPECT_GT(stats.zeroed_ahead_bytes, 0u);
  EXPECT_LE(stats.zeroed_ahead_bytes, stats.segments_created * kSegment)
      << stats.segments_created << " files created, " << stats.segments_recycled << " recycled";
}

}  // namespace
}  // namespace shardtx::wal
