// Fuzz harness for WalReader: the input describes a directory of segment files, which are written
// to a scratch directory and read to the end. Whatever the bytes, the reader must not crash, hang
// or allocate without bound, must fail only with kDataLoss or kNotFound, and every record it
// returns must be one the harness sealed with that segment's seed, at consecutive LSNs. With
// flag bit 7 a WalWriter is then opened after the tail, appends, and the log must read back as
// before plus the new record.
//
// Input format (a field past the end of the input reads as zeros):
//   u8 flags   bits 0-1: segments - 1; bit 2: point_in_time; bits 3-4: from_lsn (0: 0, 1: 1,
//              2: the first segment's first LSN + u8, 3: u8); bit 5: skip a segment number
//              before segment u8 % count (a missing segment); bit 6: a trailing spare (zeros,
//              or a copy of the first segment: a recycled file); bit 7: reopen a writer
//   u8 base    the first segment's number is 1 + base
//   per segment:
//     u8 mode      0: raw bytes; 1: a valid header + raw bytes; 2: a valid header + records;
//                  3: a header with one damaged byte (never the salt) + records
//     u8 step      first_lsn = the previous segment's first_lsn + step (the first: 1 + step)
//     u8 salt
//     u16 size     raw bytes, or the byte budget of the records (at most 16 KiB)
//     raw: `size` bytes. records, until the budget is spent:
//       u8 type, u8 ctrl, u8 len (u16 if ctrl bit 7), then
//         ctrl bits 0-1, LSN: 0 the next, 1 the next + 1 + u8, 2 the next - 1, 3 a u64
//         bits 2-3, sync_lsn: 0 the LSN (all before it durable), 1 the segment's first LSN,
//                             2 LSN + 1 (never valid), 3 one
//         bit 4: flip bit (u16 % its bits) of the sealed record; bit 5: seal with a foreign
//         seed; bit 6: write only the first u8 % (32 + len) bytes and end the segment there
//       then `len` payload bytes.
#include "tests/wal/wal_reader_fuzzer.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/wal/no_sync_env.h"
#include "util/coding.h"
#include "wal/reader.h"
#include "wal/segment.h"
#include "wal/writer.h"

namespace shardtx::wal::fuzz {

void (*failure_hook)() = nullptr;

namespace {

Counters g_counters;

[[noreturn]] void Fail(const char* cond, int line, const std::string& what) {
  std::fprintf(stderr, "wal_reader_fuzzer.cc:%d: property violated: %s\n  %s\n", line, cond,
               what.c_str());
  if (failure_hook != nullptr) failure_hook();
  std::abort();
}

#define FUZZ_CHECK(cond, ...)                                      \
  do {                                                             \
    if (!(cond)) Fail(#cond, __LINE__, absl::StrCat(__VA_ARGS__)); \
  } while (0)

constexpr uint64_t kMaxBody = 16 << 10;

class Input {
 public:
  Input(const uint8_t* data, size_t size) : p_(data), n_(size) {}
  uint8_t U8() {
    if (n_ == 0) return 0;
    --n_;
    return *p_++;
  }
  uint16_t U16() { return static_cast<uint16_t>(U8() | (U8() << 8)); }
  uint64_t U64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t{U8()} << (8 * i);
    return v;
  }
  // `n` bytes; zeros past the end of the input.
  std::string Bytes(size_t n) {
    std::string s(n, '\0');
    const size_t take = std::min(n, n_);
    if (take > 0) std::memcpy(s.data(), p_, take);
    p_ += take;
    n_ -= take;
    return s;
  }

 private:
  const uint8_t* p_;
  size_t n_;
};

using Sealed = std::tuple<Lsn, uint8_t, std::string>;

struct Built {
  std::vector<std::pair<uint64_t, std::string>> files;  // segment number, bytes
  ReaderOptions options;
  bool reopen = false;
  std::set<Sealed> valid;  // records a reader may return
  uint64_t total_bytes = 0;
};

std::string Header(uint64_t number, Lsn first_lsn, uint64_t salt) {
  std::string h(kSegmentHeaderSize, '\0');
  EncodeSegmentHeader({number, first_lsn, salt}, h.data());
  return h;
}

// Appends records to `seg` as the input says.
void BuildRecords(Input* in, uint64_t budget, uint64_t seed, Lsn first_lsn, bool header_valid,
                  std::string* seg, std::set<Sealed>* valid) {
  Lsn next = first_lsn;
  uint64_t used = 0;
  while (used < budget) {
    const uint8_t type = in->U8();
    const uint8_t ctrl = in->U8();
    const uint64_t len = (ctrl & 0x80) ? in->U16() : in->U8();
    Lsn lsn = next;
    switch (ctrl & 3) {
      case 1:
        lsn = next + 1 + in->U8();
        break;
      case 2:
        lsn = next - 1;
        break;
      case 3:
        lsn = in->U64();
        break;
    }
    Lsn sync = lsn;
    switch ((ctrl >> 2) & 3) {
      case 1:
        sync = first_lsn;
        break;
      case 2:
        sync = lsn + 1;
        break;
      case 3:
        sync = 1;
        break;
    }
    const uint16_t flip = (ctrl & 0x10) ? in->U16() : 0;
    const uint8_t cut = (ctrl & 0x40) ? in->U8() : 0;
    const std::string payload = in->Bytes(len);
    std::string rec(AlignedRecordSize(len), '\0');
    EncodeRecord(rec.data(), type, lsn, payload);
    const bool foreign = ctrl & 0x20;
    SealRecord(rec.data(), sync, foreign ? ~seed : seed);
    if (ctrl & 0x10) {
      const uint64_t bit = flip % ((kRecordHeaderSize + len) * 8);
      rec[bit / 8] = static_cast<char>(rec[bit / 8] ^ (1 << (bit % 8)));
    }
    if (ctrl & 0x40) {
      seg->append(rec.substr(0, cut % (kRecordHeaderSize + len)));
      return;
    }
    if (header_valid && !foreign && !(ctrl & 0x10)) valid->insert({lsn, type, payload});
    seg->append(rec);
    used += rec.size();
    next = lsn + 1;
  }
}

Built Build(const uint8_t* data, size_t size) {
  Input in(data, size);
  Built b;
  const uint8_t flags = in.U8();
  const int count = 1 + (flags & 3);
  b.options.point_in_time = flags & 4;
  b.reopen = flags & 0x80;
  uint64_t number = 1 + in.U8();
  const int gap_before = (flags & 0x20) ? in.U8() % count : -1;
  Lsn first_lsn = 1;
  for (int i = 0; i < count; ++i) {
    if (i == gap_before) ++number;
    const uint8_t mode = in.U8() & 3;
    first_lsn += in.U8();
    const uint64_t salt = in.U8();
    const uint64_t body = std::min<uint64_t>(in.U16(), kMaxBody);
    std::string seg;
    if (mode == 0) {
      seg = in.Bytes(body);
    } else if (mode == 1) {
      seg = Header(number, first_lsn, salt) + in.Bytes(body);
    } else {
      seg = Header(number, first_lsn, salt);
      if (mode == 3) {
        const uint8_t at = in.U8() % (kSegmentHeaderSize - 8);
        const size_t byte = at < 32 ? at : at + 8;  // skip the salt, bytes [32, 40)
        seg[byte] = static_cast<char>(seg[byte] ^ (1 | in.U8()));
      }
      BuildRecords(&in, body, RecordSeed(number, salt), first_lsn, mode == 2, &seg, &b.valid);
    }
    b.files.emplace_back(number, std::move(seg));
    ++number;
  }
  if (flags & 0x40) {
    b.files.emplace_back(number,
                         (in.U8() & 1) ? b.files.front().second : std::string(in.U8() * 64, '\0'));
  }
  switch ((flags >> 3) & 3) {
    case 1:
      b.options.from_lsn = 1;
      break;
    case 2: {
      const std::string& h = b.files.front().second;
      b.options.from_lsn = (h.size() >= 32 ? DecodeFixed64(h.data() + 24) : 0) + in.U8();
      break;
    }
    case 3:
      b.options.from_lsn = in.U8();
      break;
  }
  for (const auto& f : b.files) b.total_bytes += f.second.size();
  return b;
}

// A scratch directory per process, emptied before each input and removed at exit.
std::string MakeScratchDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string t =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/shardtx_wal_fuzz_XXXXXX";
  if (::mkdtemp(t.data()) == nullptr) std::abort();
  return t;
}

const std::string& Dir() {
  static const std::string dir = MakeScratchDir();
  static const bool cleanup = [] {
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(Dir(), ec);
    });
    return true;
  }();
  (void)cleanup;
  return dir;
}

void WriteFiles(const std::string& dir, const Built& b) {
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::filesystem::remove(entry.path());
  }
  for (const auto& [number, bytes] : b.files) {
    const std::string path = SegmentPath(dir, number);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    FUZZ_CHECK(fd >= 0, "open ", path);
    FUZZ_CHECK(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()),
               "write ", path);
    ::close(fd);
  }
}

struct Outcome {
  absl::Status status;
  bool opened = false;
  std::vector<Sealed> records;
  WalTail tail;
};

Outcome Read(const std::string& dir, const ReaderOptions& options, uint64_t max_steps) {
  Outcome out;
  auto reader = WalReader::Open(testutil::NoSyncEnv::Get(), dir, options);
  if (!reader.ok()) {
    out.status = reader.status();
    FUZZ_CHECK(absl::IsDataLoss(out.status) || absl::IsNotFound(out.status),
               "Open failed with an unexpected code: ", out.status.ToString());
    return out;
  }
  out.opened = true;
  WalRecord rec;
  Lsn prev = 0;
  for (uint64_t step = 0;; ++step) {
    FUZZ_CHECK(step <= max_steps, "Next() returned more records than the files can hold");
    absl::StatusOr<bool> more = (*reader)->Next(&rec);
    if (!more.ok()) {
      out.status = more.status();
      FUZZ_CHECK(absl::IsDataLoss(out.status),
                 "Next failed with an unexpected code: ", out.status.ToString());
      FUZZ_CHECK(absl::StrContains(out.status.message(), dir),
                 "the error names no file: ", out.status.ToString());
      return out;
    }
    if (!*more) break;
    FUZZ_CHECK(rec.lsn >= options.from_lsn, "LSN ", rec.lsn, " below from_lsn ", options.from_lsn);
    FUZZ_CHECK(prev == 0 || rec.lsn == prev + 1, "LSN ", rec.lsn, " after ", prev);
    prev = rec.lsn;
    out.records.emplace_back(rec.lsn, rec.type, std::string(rec.payload));
  }
  FUZZ_CHECK(!*(*reader)->Next(&rec), "Next() returned a record after the end");
  out.tail = (*reader)->tail();
  const WalTail& t = out.tail;
  FUZZ_CHECK(t.records_read == out.records.size(), "records_read ", t.records_read);
  FUZZ_CHECK(t.next_lsn >= 1, "next_lsn 0");
  if (!out.records.empty()) {
    FUZZ_CHECK(t.next_lsn == std::get<0>(out.records.back()) + 1, "next_lsn ", t.next_lsn,
               " after LSN ", std::get<0>(out.records.back()));
  }
  if (t.lost) {
    FUZZ_CHECK(options.point_in_time, "lost without point_in_time");
    FUZZ_CHECK(t.lost_from == t.next_lsn && t.lost_from <= t.lost_to, "lost [", t.lost_from, ", ",
               t.lost_to, "] with next_lsn ", t.next_lsn);
  }
  for (size_t i = 1; i < t.segments.size(); ++i) {
    FUZZ_CHECK(t.segments[i - 1].first < t.segments[i].first, "segments out of order");
  }
  return out;
}

}  // namespace

const Counters& counters() { return g_counters; }

void RunOne(const uint8_t* data, size_t size) {
  ++g_counters.inputs;
  const Built b = Build(data, size);
  const std::string& dir = Dir();
  WriteFiles(dir, b);
  static const bool debug = std::getenv("WAL_FUZZ_DEBUG") != nullptr;
  if (debug) {
    std::fprintf(stderr, "from_lsn %llu point_in_time %d reopen %d, %zu valid records\n",
                 static_cast<unsigned long long>(b.options.from_lsn), b.options.point_in_time,
                 b.reopen, b.valid.size());
    for (const auto& [number, bytes] : b.files) {
      auto h = DecodeSegmentHeader(bytes, number);
      std::fprintf(stderr, "  segment %llu: %zu bytes, header %s first_lsn %llu\n",
                   static_cast<unsigned long long>(number), bytes.size(), h ? "valid" : "bad",
                   static_cast<unsigned long long>(h ? h->first_lsn : 0));
    }
  }
  const uint64_t max_steps = b.total_bytes / kRecordHeaderSize + 1;
  const Outcome first = Read(dir, b.options, max_steps);
  for (const Sealed& r : first.records) {
    FUZZ_CHECK(b.valid.count(r) == 1, "returned a record never written: LSN ", std::get<0>(r),
               " type ", int{std::get<1>(r)}, " size ", std::get<2>(r).size());
  }
  g_counters.records += first.records.size();
  if (!first.opened) {
    ++g_counters.open_failed;
    return;
  }
  if (!first.status.ok()) {
    ++g_counters.data_loss;
    return;
  }
  ++g_counters.clean_end;
  if (debug) {
    const WalTail& t = first.tail;
    std::fprintf(
        stderr,
        "  read %zu records; next_lsn %llu last_segment %llu torn %d lost %d [%llu, %llu]\n",
        first.records.size(), static_cast<unsigned long long>(t.next_lsn),
        static_cast<unsigned long long>(t.last_segment), t.torn, t.lost,
        static_cast<unsigned long long>(t.lost_from), static_cast<unsigned long long>(t.lost_to));
  }
  g_counters.torn += first.tail.torn;
  g_counters.lost += first.tail.lost;
  if (!b.reopen) return;

  // A writer resumes after the tail; the log then reads as before plus the new record, without
  // point_in_time (the writer set aside what a point-in-time stop skipped).
  ++g_counters.reopened;
  WalOptions wo;
  wo.segment_size = 64 << 10;
  wo.max_record_size = 1024;
  auto w = WalWriter::Open(testutil::NoSyncEnv::Get(), dir, wo, first.tail);
  FUZZ_CHECK(w.ok(), "WalWriter::Open after a clean read: ", w.status().ToString());
  absl::StatusOr<Lsn> lsn = (*w)->Append(7, "after the tail", Durability::kSync);
  FUZZ_CHECK(lsn.ok() && *lsn == first.tail.next_lsn, "Append after the tail");
  FUZZ_CHECK((*w)->WaitDurable(*lsn).ok(), "WaitDurable");
  FUZZ_CHECK((*w)->Close().ok(), "Close");
  w->reset();
  ReaderOptions again = b.options;
  again.point_in_time = false;
  const Outcome second = Read(dir, again, max_steps + 8);
  FUZZ_CHECK(second.status.ok(), "reading after the writer resumed: ", second.status.ToString());
  std::vector<Sealed> expected = first.records;
  if (*lsn >= again.from_lsn) expected.emplace_back(*lsn, 7, "after the tail");
  FUZZ_CHECK(second.records == expected, "after the writer resumed: ", second.records.size(),
             " records, expected ", expected.size());
  FUZZ_CHECK(!second.tail.lost && !second.tail.torn, "the resumed log has a bad tail");
}

// --- Structured generation (the driver's corpus, and libFuzzer's seed corpus) ---

std::string GenerateInput(std::mt19937_64& rng) {
  auto pick = [&](uint64_t n) { return rng() % n; };
  std::string out;
  auto u8 = [&](uint64_t v) { out.push_back(static_cast<char>(v)); };
  auto u16 = [&](uint64_t v) {
    u8(v & 0xff);
    u8(v >> 8);
  };
  const int count = 1 + static_cast<int>(pick(4));
  uint8_t flags = static_cast<uint8_t>(count - 1);
  if (pick(3) == 0) flags |= 4;             // point in time
  if (pick(3) == 0) flags |= pick(4) << 3;  // from_lsn mode
  if (pick(8) == 0) flags |= 0x20;          // a missing segment
  if (pick(3) == 0) flags |= 0x40;          // a trailing spare
  if (pick(3) == 0) flags |= 0x80;          // reopen a writer
  u8(flags);
  u8(pick(4) == 0 ? pick(256) : 0);  // base
  if (flags & 0x20) u8(pick(count));
  for (int i = 0; i < count; ++i) {
    const uint64_t r = pick(16);
    const uint8_t mode = r < 12 ? 2 : r < 13 ? 3 : r < 15 ? 1 : 0;
    u8(mode);
    // Mostly: the segment starts where the previous one's records ended.
    const uint64_t step = i == 0 ? pick(3) : pick(8) == 0 ? pick(256) : 0;
    u8(step);
    u8(pick(256));  // salt
    const uint64_t body = 64 + pick(pick(4) == 0 ? 16384 : 1024);
    u16(body);
    if (mode < 2) {
      for (uint64_t k = 0; k < body; ++k) u8(pick(4) == 0 ? pick(256) : 0);
      continue;
    }
    if (mode == 3) {
      u8(pick(256));
      u8(pick(256));
    }
    uint64_t used = 0;
    while (used < body) {
      u8(1 + pick(255));  // type
      uint8_t ctrl = 0;
      if (pick(30) == 0) ctrl |= 1 + pick(3);        // an LSN out of sequence
      if (pick(3) == 0) ctrl |= (1 + pick(3)) << 2;  // an unusual sync_lsn
      if (pick(40) == 0) ctrl |= 0x10;               // a flipped bit
      if (pick(60) == 0) ctrl |= 0x20;               // a foreign seed
      if (pick(50) == 0) ctrl |= 0x40;               // torn
      const uint64_t len = pick(8) == 0 ? pick(3000) : pick(64);
      if (len > 255) ctrl |= 0x80;
      u8(ctrl);
      if (ctrl & 0x80) {
        u16(len);
      } else {
        u8(len);
      }
      if ((ctrl & 3) == 1) u8(pick(4));
      if ((ctrl & 3) == 3) {
        for (int k = 0; k < 8; ++k) u8(pick(256));
      }
      if (ctrl & 0x10) u16(pick(65536));
      if (ctrl & 0x40) u8(pick(256));
      for (uint64_t k = 0; k < len; ++k) u8(pick(256));
      used += AlignedRecordSize(len);
      if (ctrl & 0x40) break;
    }
  }
  if (flags & 0x40) u8(pick(2));
  u8(pick(256));  // from_lsn operand, spare size
  u8(pick(256));
  return out;
}

}  // namespace shardtx::wal::fuzz

#ifdef SHARDTX_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  shardtx::wal::fuzz::RunOne(data, size);
  return 0;
}
#endif
