// Helpers shared by the WAL unit tests: scratch directories, deterministic payloads, reading a
// whole log, and byte-level surgery on segment files (the faults a disk or a crash leaves).
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/wal/no_sync_env.h"
#include "wal/reader.h"
#include "wal/segment.h"
#include "wal/writer.h"

namespace shardtx::wal::testutil {

// A fresh directory under the test temp dir, removed (with its contents) on destruction.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = ::testing::TempDir() + "/shardtx_wal_XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  // A subdirectory path (not created).
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The seed of a randomised test: SHARDTX_SEED if set, otherwise `fallback`. Printed so that a
// failing run can be replayed.
inline uint64_t TestSeed(uint64_t fallback) {
  uint64_t seed = fallback;
  if (const char* s = std::getenv("SHARDTX_SEED")) {
    if (!absl::SimpleAtoi(s, &seed)) ADD_FAILURE() << "SHARDTX_SEED is not a number: " << s;
  }
  std::fprintf(stderr, "[ seed     ] %s: SHARDTX_SEED=%llu\n",
               ::testing::UnitTest::GetInstance()->current_test_info()->name(),
               static_cast<unsigned long long>(seed));
  return seed;
}

// splitmix64: a tiny deterministic generator for payload bytes.
inline uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// `size` bytes determined by `key`, so that a record's content can be recomputed when checking.
inline std::string Payload(uint64_t key, size_t size) {
  std::string s(size, '\0');
  uint64_t state = Mix(key);
  for (size_t i = 0; i < size; ++i) {
    if (i % 8 == 0) state = Mix(state);
    s[i] = static_cast<char>(state >> (8 * (i % 8)));
  }
  return s;
}

struct Record {
  Lsn lsn = 0;
  uint8_t type = 0;
  std::string payload;
  bool operator==(const Record& o) const {
    return lsn == o.lsn && type == o.type && payload == o.payload;
  }
};

inline std::ostream& operator<<(std::ostream& os, const Record& r) {
  return os << "Record{lsn=" << r.lsn << " type=" << int{r.type} << " size=" << r.payload.size()
            << "}";
}

// The outcome of reading a log to its end (or to the first error).
struct ReadResult {
  absl::Status status;  // Open's or Next's error, OK if the log was read to its end
  bool opened = false;  // Open succeeded
  std::vector<Record> records;
  WalTail tail;
};

inline ReadResult ReadLog(const std::string& dir, const ReaderOptions& options = {}) {
  ReadResult out;
  auto reader = WalReader::Open(Env::Default(), dir, options);
  if (!reader.ok()) {
    out.status = reader.status();
    return out;
  }
  out.opened = true;
  WalRecord rec;
  while (true) {
    absl::StatusOr<bool> more = (*reader)->Next(&rec);
    if (!more.ok()) {
      out.status = more.status();
      break;
    }
    if (!*more) break;
    out.records.push_back({rec.lsn, rec.type, std::string(rec.payload)});
  }
  out.tail = (*reader)->tail();
  return out;
}

inline WalOptions SmallSegments() {
  WalOptions o;
  o.segment_size = 64 << 10;
  o.max_record_size = (64 << 10) - 96;
  o.buffer_limit = 1 << 20;
  return o;
}

// Appends `records` (their lsn fields are checked against the LSNs assigned) and waits until
// all are durable.
inline void AppendAll(WalWriter* w, const std::vector<Record>& records,
                      Durability durability = Durability::kSync) {
  for (const Record& r : records) {
    absl::StatusOr<Lsn> lsn = w->Append(r.type, r.payload, durability);
    ASSERT_TRUE(lsn.ok()) << lsn.status();
    ASSERT_EQ(*lsn, r.lsn);
    if (durability == Durability::kSync) {
      ASSERT_TRUE(w->WaitDurable(*lsn).ok());
    }
  }
  ASSERT_TRUE(w->Sync().ok());
}

// Opens a writer after the end of the log in `dir` (created if missing).
inline std::unique_ptr<WalWriter> OpenWriter(const std::string& dir,
                                             const WalOptions& options = SmallSegments(),
                                             Env* env = NoSyncEnv::Get()) {
  absl::StatusOr<std::unique_ptr<WalWriter>> w = WalWriter::OpenAfterScan(env, dir, options);
  EXPECT_TRUE(w.ok()) << w.status();
  return w.ok() ? std::move(*w) : nullptr;
}

// Records first_lsn, first_lsn+1, ... with sizes from `sizes` and content from `key`.
inline std::vector<Record> MakeRecords(Lsn first_lsn, const std::vector<size_t>& sizes,
                                       uint64_t key = 0) {
  std::vector<Record> out;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const Lsn lsn = first_lsn + i;
    out.push_back(
        {lsn, static_cast<uint8_t>(1 + (lsn + key) % 255), Payload(lsn ^ (key << 40), sizes[i])});
  }
  return out;
}

// --- files ---

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// Overwrites bytes in place (the file keeps its size unless the write extends it).
inline void PatchFile(const std::string& path, uint64_t offset, const std::string& bytes) {
  int fd = ::open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)),
            static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

inline void TruncateFile(const std::string& path, uint64_t size) {
  std::filesystem::resize_file(path, size);
}

// Segment numbers present in `dir`, ascending (live, spare or not).
inline std::vector<uint64_t> SegmentNumbers(const std::string& dir) {
  std::vector<uint64_t> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (auto n = ParseSegmentFileName(e.path().filename().string())) out.push_back(*n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Names in `dir` ending in `suffix`.
inline std::vector<std::string> FilesWithSuffix(const std::string& dir, const std::string& suffix) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      out.push_back(name);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Where each record of a segment starts, by walking the records with the segment's own seed.
struct RecordExtent {
  Lsn lsn;
  Lsn sync_lsn;
  uint64_t offset;  // of the record header in the file
  uint64_t size;    // header + payload, without padding
  uint64_t aligned_size;
};
inline std::vector<RecordExtent> RecordExtents(const std::string& path, uint64_t segment) {
  std::vector<RecordExtent> out;
  const std::string bytes = ReadFile(path);
  std::optional<SegmentHeader> h = DecodeSegmentHeader(bytes, segment);
  if (!h.has_value()) return out;
  uint64_t off = kSegmentHeaderSize;
  Lsn expected = h->first_lsn;
  while (auto r = ParseRecord(bytes, off, h->seed(), kMaxSegmentSize)) {
    if (r->lsn != expected) break;
    out.push_back(
        {r->lsn, r->sync_lsn, off, kRecordHeaderSize + r->payload.size(), r->aligned_size});
    off += r->aligned_size;
    ++expected;
  }
  return out;
}

// Copies every regular file of `from` into `to` (created), replacing what `to` held.
inline void CopyDir(const std::string& from, const std::string& to) {
  std::error_code ec;
  std::filesystem::remove_all(to, ec);
  std::filesystem::create_directories(to);
  for (const auto& e : std::filesystem::directory_iterator(from)) {
    std::filesystem::copy_file(e.path(), to + "/" + e.path().filename().string());
  }
}

}  // namespace shardtx::wal::testutil
