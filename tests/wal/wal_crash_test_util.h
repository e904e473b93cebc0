// Helpers of the WAL crash and fault-injection tests: scratch directories the WAL creates
// through the env, a model of what a log must hold after a crash (LogModel), and threads that
// append with mixed durability and report what they were told (RunWorkers).
//
// Randomised tests print their seed; set SHARDTX_SEED to replay one.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/fault_injection_env.h"
#include "util/status_macros.h"
#include "wal/reader.h"
#include "wal/writer.h"

namespace shardtx::wal::crashtest {

namespace fs = std::filesystem;
using shardtx::testing::FaultInjectionEnv;
using Tear = FaultInjectionEnv::Tear;

inline constexpr uint64_t kSegmentSize = 64 << 10;

inline uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* s = std::getenv(name);
  uint64_t v;
  return s != nullptr && absl::SimpleAtoi(s, &v) ? v : fallback;
}

// The seed of a randomised test: SHARDTX_SEED, or a fresh one. Printed either way.
inline uint64_t TestSeed() {
  const uint64_t seed =
      EnvNumber("SHARDTX_SEED", (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}());
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::fprintf(stderr, "%s.%s: SHARDTX_SEED=%llu\n", info->test_suite_name(), info->name(),
               static_cast<unsigned long long>(seed));
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  return seed;
}

// A fresh, not yet existing log directory, removed with this object: the WAL creates it
// through the env, so that losing the directory entry in a crash is part of what is tested.
class TestDir {
 public:
  explicit TestDir(const std::string& tag) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = absl::StrCat(::testing::TempDir(), "/wal_crash_", info->name(), tag, "_", ::getpid());
    fs::remove_all(path_);
  }
  ~TestDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TestDir(const TestDir&) = delete;
  TestDir& operator=(const TestDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline WalOptions SmallSegments(bool recycle = true) {
  WalOptions o;
  o.segment_size = kSegmentSize;
  o.max_record_size = 16 << 10;
  o.buffer_limit = 256 << 10;
  o.recycle_segments = recycle;
  return o;
}

inline FaultInjectionEnv::Options NoRealSync() {
  FaultInjectionEnv::Options o;
  o.sync_base = false;  // durability is the env's model; the disk's fsync adds only time
  return o;
}

inline bool IsInjected(const absl::Status& s) {
  return s.code() == absl::StatusCode::kInternal &&
         absl::StrContains(s.message(), "injected I/O error");
}
inline bool IsCrash(const absl::Status& s) {
  return s.code() == absl::StatusCode::kInternal &&
         absl::StrContains(s.message(), "simulated crash");
}

struct Rec {
  uint8_t type = 0;
  std::string payload;
  bool operator==(const Rec& o) const { return type == o.type && payload == o.payload; }
};

// Everything a reader finds in a log directory.
struct LogImage {
  std::vector<std::pair<Lsn, Rec>> records;
  WalTail tail;
  Lsn oldest() const { return records.empty() ? tail.next_lsn : records.front().first; }
};

inline absl::StatusOr<LogImage> ReadLog(Env* env, const std::string& dir) {
  LogImage img;
  if (absl::IsNotFound(env->FileExists(dir))) return img;  // never created, or lost: empty
  ASSIGN_OR_RETURN(std::unique_ptr<WalReader> reader, WalReader::Open(env, dir, ReaderOptions{}));
  WalRecord rec;
  while (true) {
    ASSIGN_OR_RETURN(bool more, reader->Next(&rec));
    if (!more) break;
    img.records.emplace_back(rec.lsn, Rec{rec.type, std::string(rec.payload)});
  }
  img.tail = reader->tail();
  return img;
}

// What the log must contain: the records recovered last time (durable by now), and what the
// writer opened since then appended and acknowledged.
class LogModel {
 public:
  void Appended(Lsn lsn, Rec rec) { appended_[lsn] = std::move(rec); }
  void Acked(Lsn lsn) { acked_.insert(lsn); }
  // Every record up to `lsn` was reported durable (durable_lsn(), a successful Sync).
  void AckedThrough(Lsn lsn) {
    for (Lsn l = start_; l <= lsn; ++l) acked_.insert(l);
  }
  void Truncating(Lsn lsn) { truncated_to_ = std::max(truncated_to_, lsn); }
  Lsn start() const { return start_; }
  size_t acked() const { return acked_.size(); }

  // Checks a recovered image against the model.
  ::testing::AssertionResult Check(const LogImage& img) const {
    const Lsn next = img.tail.next_lsn;
    // The appended LSNs of one writer are contiguous from where recovery left the log.
    Lsn expect_lsn = start_;
    for (const auto& [lsn, rec] : appended_) {
      if (lsn != expect_lsn++) return Fail("appends did not continue contiguously", lsn);
    }
    // The log's LSNs never go back: not below what was recovered, acknowledged or truncated.
    if (next < start_) return Fail("log lost records recovered earlier; next_lsn", next);
    if (next < truncated_to_) {
      return Fail(
          absl::StrCat("log restarts below the truncation point ", truncated_to_, "; next_lsn"),
          next);
    }
    if (img.oldest() > std::max<Lsn>(truncated_to_, 1)) {
      return Fail(absl::StrCat("records missing at the front (truncated only below ", truncated_to_,
                               "); oldest"),
                  img.oldest());
    }
    Lsn prev = 0;
    for (const auto& [lsn, rec] : img.records) {
      if (prev != 0 && lsn != prev + 1) return Fail("LSN gap after", prev);
      prev = lsn;
      const std::map<Lsn, Rec>& source = lsn < start_ ? known_ : appended_;
      auto it = source.find(lsn);
      if (it == source.end()) return Fail("record nobody wrote at LSN", lsn);
      if (!(it->second == rec)) return Fail("wrong content at LSN", lsn);
    }
    if (prev != 0 && prev + 1 != next) return Fail("tail disagrees with last record", prev);
    for (Lsn lsn : acked_) {
      if (lsn >= next) return Fail("acknowledged record lost at LSN", lsn);
      if (lsn < img.oldest() && lsn >= truncated_to_) {
        return Fail("acknowledged record missing (not truncated) at LSN", lsn);
      }
    }
    return ::testing::AssertionSuccess();
  }

  // The image becomes what is known durable; the next writer continues after it.
  void Adopt(const LogImage& img) {
    known_.clear();
    for (const auto& [lsn, rec] : img.records) known_[lsn] = rec;
    start_ = img.tail.next_lsn;
    appended_.clear();
    acked_.clear();
  }

 private:
  static ::testing::AssertionResult Fail(const std::string& what, uint64_t n) {
    return ::testing::AssertionFailure() << what << " " << n;
  }

  std::map<Lsn, Rec> known_;
  Lsn start_ = 1;
  std::map<Lsn, Rec> appended_;
  std::set<Lsn> acked_;
  Lsn truncated_to_ = 0;
};

// Payload of `size` bytes that names its writer (so a misplaced record cannot match).
inline std::string MakePayload(std::mt19937_64& rng, size_t size, const std::string& tag) {
  std::string p = tag.substr(0, size);
  while (p.size() < size) p.push_back(static_cast<char>('a' + rng() % 26));
  return p;
}

inline size_t PickSize(std::mt19937_64& rng) {
  const uint64_t r = rng() % 100;
  if (r < 70) return rng() % 200;
  if (r < 95) return 200 + rng() % 2800;
  return 3000 + rng() % 13000;
}

// One appending thread's view.
struct WorkerResult {
  std::vector<std::pair<Lsn, Rec>> appended;
  std::vector<Lsn> acked;
  Lsn synced_through = 0;  // a Sync() returned OK after this thread appended it
  std::vector<Lsn> truncations;
  absl::Status first_error;
  bool poisoned_call_ok = false;  // an Append or WaitDurable succeeded after the log failed
};

struct WorkerConfig {
  int thread = 0;
  uint64_t seed = 0;
  std::string tag;
  int max_appends = 40;
  bool truncates = false;  // calls Truncate every 8 appends
  bool syncs = false;      // calls Sync every 16 appends
  bool all_sync = false;   // every record kSync (else mixed durability)
};

inline void RunWorker(WalWriter* w, const WorkerConfig& cfg, WorkerResult* out) {
  std::mt19937_64 rng(cfg.seed);
  for (int i = 0; i < cfg.max_appends; ++i) {
    const uint64_t d = rng() % 4;
    const Durability durability = cfg.all_sync || d < 2 ? Durability::kSync
                                  : d == 2              ? Durability::kAsync
                                                        : Durability::kNone;
    Rec rec{static_cast<uint8_t>(1 + rng() % 255),
            MakePayload(rng, PickSize(rng), absl::StrCat(cfg.tag, "t", cfg.thread, "i", i, "|"))};
    absl::StatusOr<Lsn> lsn = w->Append(rec.type, rec.payload, durability);
    if (!lsn.ok()) {
      out->first_error = lsn.status();
      break;
    }
    out->appended.emplace_back(*lsn, std::move(rec));
    // Callers may also wait for a record they did not append as kSync (a 2PC participant
    // that logged without waiting, say).
    if (durability == Durability::kSync || rng() % 4 == 0) {
      absl::Status s = w->WaitDurable(*lsn);
      if (!s.ok()) {
        out->first_error = s;
        // The log is poisoned: a later append must fail too, and the record stays unacked.
        out->poisoned_call_ok =
            w->Append(1, "after", Durability::kNone).ok() || w->WaitDurable(*lsn).ok();
        break;
      }
      out->acked.push_back(*lsn);
    }
    if (cfg.syncs && i % 16 == 15) {
      absl::Status s = w->Sync();
      if (!s.ok()) {
        out->first_error = s;
        break;
      }
      out->synced_through = *lsn;
    }
    if (cfg.truncates && i % 8 == 7) {
      const Lsn durable = w->durable_lsn();
      const Lsn to = std::max<Lsn>(1, durable + 1 - std::min<Lsn>(durable, rng() % 3));
      out->truncations.push_back(to);
      absl::Status s = w->Truncate(to);
      if (!s.ok()) {
        out->first_error = s;
        break;
      }
    }
  }
}

// Runs `threads` workers on `w` and records their outcome in `model`.
inline std::vector<WorkerResult> RunWorkers(WalWriter* w, std::vector<WorkerConfig> configs,
                                            LogModel* model) {
  std::vector<WorkerResult> results(configs.size());
  std::vector<std::thread> threads;
  for (size_t t = 0; t < configs.size(); ++t) {
    threads.emplace_back([&, t] { RunWorker(w, configs[t], &results[t]); });
  }
  for (auto& th : threads) th.join();
  for (WorkerResult& r : results) {
    for (auto& [lsn, rec] : r.appended) model->Appended(lsn, rec);
    for (Lsn lsn : r.acked) model->Acked(lsn);
    if (r.synced_through != 0) model->AckedThrough(r.synced_through);
    for (Lsn t : r.truncations) model->Truncating(t);
  }
  // Whatever the writer reported durable must be.
  model->AckedThrough(w->durable_lsn());
  return results;
}

// The files of a log directory and what the reader made of them, for failure messages.
inline std::string Describe(const std::string& dir, const LogImage& img) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    files.push_back(absl::StrCat(entry.path().filename().string(), ":", entry.file_size(ec)));
  }
  std::sort(files.begin(), files.end());
  std::string out = absl::StrCat("\n  files:");
  for (const std::string& f : files) absl::StrAppend(&out, " ", f);
  absl::StrAppend(&out, "\n  read: ", img.records.size(), " records from LSN ", img.oldest(),
                  ", next_lsn ", img.tail.next_lsn, ", last_segment ", img.tail.last_segment,
                  ", torn ", img.tail.torn, " ", img.tail.torn_file, "@", img.tail.torn_offset,
                  ", segments");
  for (const auto& [number, first] : img.tail.segments) {
    absl::StrAppend(&out, " ", number, "@", first);
  }
  return out;
}

inline std::vector<Lsn> Lsns(const LogImage& img) {
  std::vector<Lsn> v;
  for (const auto& [lsn, rec] : img.records) v.push_back(lsn);
  return v;
}

// With the faults cleared the log holds every acknowledged record, and again after a crash
// drops whatever was not synced; the model then adopts what survived (`*survived` records).
inline void ExpectModelHoldsAcrossACrash(FaultInjectionEnv* env, const std::string& dir,
                                         LogModel* model,
                                         const FaultInjectionEnv::CrashOptions& crash = {},
                                         size_t* survived = nullptr) {
  env->ClearFaults();
  absl::StatusOr<LogImage> img = ReadLog(env, dir);
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_TRUE(model->Check(*img)) << Describe(dir, *img);
  ASSERT_TRUE(env->SimulateCrash(crash).ok());
  env->Reset();
  img = ReadLog(env, dir);
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_TRUE(model->Check(*img)) << Describe(dir, *img);
  if (survived != nullptr) *survived = img->records.size();
  model->Adopt(*img);
}

}  // namespace shardtx::wal::crashtest
