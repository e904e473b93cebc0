// Crash and fault-injection tests of the WAL (design brief decisions 5-7): simulated power cuts
// with torn writes while many threads append, failed fsyncs and writes, a full disk, file systems
// without fallocate, and an I/O-error sweep over every file operation of a small workload.
//
// Randomised tests print their seed; set SHARDTX_SEED to replay one. SHARDTX_CRASH_ROUNDS
// overrides the number of rounds of the random crash test (default 200).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/fault_injection_env.h"
#include "util/kill_point.h"
#include "util/status_macros.h"
#include "wal/reader.h"
#include "wal/segment.h"
#include "wal/writer.h"

namespace shardtx::wal {
namespace {

namespace fs = std::filesystem;
using shardtx::testing::FaultInjectionEnv;
using Tear = FaultInjectionEnv::Tear;

constexpr uint64_t kSegmentSize = 64 << 10;

uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* s = std::getenv(name);
  uint64_t v;
  return s != nullptr && absl::SimpleAtoi(s, &v) ? v : fallback;
}

// The seed of a randomised test: SHARDTX_SEED, or a fresh one. Printed either way.
uint64_t TestSeed() {
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

WalOptions SmallSegments(bool recycle = true) {
  WalOptions o;
  o.segment_size = kSegmentSize;
  o.max_record_size = 16 << 10;
  o.buffer_limit = 256 << 10;
  o.recycle_segments = recycle;
  return o;
}

FaultInjectionEnv::Options NoRealSync() {
  FaultInjectionEnv::Options o;
  o.sync_base = false;  // durability is the env's model; the disk's fsync adds only time
  return o;
}

bool IsInjected(const absl::Status& s) {
  return s.code() == absl::StatusCode::kInternal &&
         absl::StrContains(s.message(), "injected I/O error");
}
bool IsCrash(const absl::Status& s) {
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

absl::StatusOr<LogImage> ReadLog(Env* env, const std::string& dir) {
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
std::string MakePayload(std::mt19937_64& rng, size_t size, const std::string& tag) {
  std::string p = tag.substr(0, size);
  while (p.size() < size) p.push_back(static_cast<char>('a' + rng() % 26));
  return p;
}

size_t PickSize(std::mt19937_64& rng) {
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

void RunWorker(WalWriter* w, const WorkerConfig& cfg, WorkerResult* out) {
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
std::vector<WorkerResult> RunWorkers(WalWriter* w, std::vector<WorkerConfig> configs,
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
std::string Describe(const std::string& dir, const LogImage& img) {
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

std::vector<Lsn> Lsns(const LogImage& img) {
  std::vector<Lsn> v;
  for (const auto& [lsn, rec] : img.records) v.push_back(lsn);
  return v;
}

// ---------------------------------------------------------------------------------------------

// The main crash test: 8 threads append with mixed durability (and one truncates, one calls
// Sync) while the env crashes at a random file operation, with a random tear mode; some rounds
// also crash during recovery. After every crash: each record reported durable is present with
// its content, LSNs are contiguous and never restart, no record appears that nobody wrote,
// appends continue at the recovered tail, and reopening twice reads the same log.
TEST(WalCrash, RandomCrashesWhileManyThreadsAppend) {
  const uint64_t seed = TestSeed();
  const uint64_t rounds = EnvNumber("SHARDTX_CRASH_ROUNDS", 200);
  constexpr int kThreads = 8;
  constexpr uint64_t kCrashWindow = 300;  // a little more than one round's file operations
  std::mt19937_64 rng(seed);
  const TestDir test_dir("");
  const std::string& dir = test_dir.path();
  FaultInjectionEnv env(Env::Default(), NoRealSync());
  LogModel model;
  uint64_t crashes_in_workload = 0, crashes_in_recovery = 0, acked = 0, torn = 0;
  uint64_t max_ops = 0;

  for (uint64_t round = 0; round < rounds; ++round) {
    SCOPED_TRACE(absl::StrCat("SHARDTX_SEED=", seed, " round ", round));
    const WalOptions options = SmallSegments(/*recycle=*/rng() % 4 != 0);
    const FaultInjectionEnv::CrashOptions crash{static_cast<Tear>(rng() % 4), rng()};

    // Sometimes crash during recovery (scan, removal of spares, first segment).
    if (round > 0 && rng() % 4 == 0) {
      env.CrashAfter(1 + rng() % 12, {static_cast<Tear>(rng() % 4), rng()});
      {
        auto w = WalWriter::OpenAfterScan(&env, dir, options);
        if (!w.ok()) {
          EXPECT_TRUE(IsCrash(w.status())) << w.status();
        }
      }
      if (env.crashed()) ++crashes_in_recovery;
      if (!env.crashed()) {
        ASSERT_TRUE(env.SimulateCrash().ok());
      }
      ASSERT_TRUE(env.crash_status().ok()) << env.crash_status();
      env.Reset();
      absl::StatusOr<LogImage> img = ReadLog(&env, dir);
      ASSERT_TRUE(img.ok()) << img.status();
      ASSERT_TRUE(model.Check(*img)) << Describe(dir, *img);
      model.Adopt(*img);
    }

    auto w = WalWriter::OpenAfterScan(&env, dir, options);
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_EQ((*w)->Stats().next_lsn, model.start());
    const uint64_t ops_before = env.ops();
    env.CrashAfter(1 + rng() % kCrashWindow, crash);

    std::vector<WorkerConfig> configs(kThreads);
    for (int t = 0; t < kThreads; ++t) {
      configs[t].thread = t;
      configs[t].seed = rng();
      configs[t].tag = absl::StrCat("r", round);
      configs[t].truncates = t == 0;
      configs[t].syncs = t == 1;
    }
    std::vector<WorkerResult> results = RunWorkers(w->get(), configs, &model);
    if (env.crashed()) {
      ++crashes_in_workload;
    } else {
      max_ops = std::max(max_ops, env.ops() - ops_before);
      ASSERT_TRUE(env.SimulateCrash(crash).ok());  // a crash at rest loses the unsynced tail
    }
    ASSERT_TRUE(env.crash_status().ok()) << env.crash_status();
    for (const WorkerResult& r : results) {
      if (!r.first_error.ok()) {
        EXPECT_TRUE(IsCrash(r.first_error)) << r.first_error;
      }
      EXPECT_FALSE(r.poisoned_call_ok);
    }
    w->reset();  // the process is gone: closing only fails
    acked += model.acked();

    env.Reset();
    absl::StatusOr<LogImage> img = ReadLog(&env, dir);
    ASSERT_TRUE(img.ok()) << img.status();
    ASSERT_TRUE(model.Check(*img)) << Describe(dir, *img);
    torn += img->tail.torn;
    model.Adopt(*img);

    // Reopening (and closing without appending) twice reads back the same log.
    if (round % 4 == 0) {
      for (int k = 0; k < 2; ++k) {
        {
          auto again = WalWriter::OpenAfterScan(&env, dir, options);
          ASSERT_TRUE(again.ok()) << again.status();
          ASSERT_TRUE((*again)->Close().ok());
        }
        absl::StatusOr<LogImage> img2 = ReadLog(&env, dir);
        ASSERT_TRUE(img2.ok()) << img2.status();
        EXPECT_EQ(Lsns(*img2), Lsns(*img));
        EXPECT_EQ(img2->tail.next_lsn, img->tail.next_lsn);
        ASSERT_TRUE(model.Check(*img2)) << Describe(dir, *img2);
      }
    }
  }
  std::fprintf(
      stderr,
      "%llu rounds: %llu crashes while appending, %llu in recovery, %llu records "
      "acknowledged, %llu torn tails, at most %llu file ops in an uncrashed round\n",
      static_cast<unsigned long long>(rounds), static_cast<unsigned long long>(crashes_in_workload),
      static_cast<unsigned long long>(crashes_in_recovery), static_cast<unsigned long long>(acked),
      static_cast<unsigned long long>(torn), static_cast<unsigned long long>(max_ops));
  EXPECT_GT(crashes_in_workload, rounds / 4);
  EXPECT_GT(acked, rounds * 10);
}

// Regression: Truncate(durable_lsn() + 1) right after a segment roll whose new header was not
// yet synced used to free every older segment; a crash then left no valid segment and the log
// restarted at LSN 1.
TEST(WalCrash, TruncateNeverLeavesOnlyAnUnsyncedSegment) {
#ifndef SHARDTX_KILL_POINTS
  GTEST_SKIP() << "needs kill points";
#else
  const TestDir test_dir("");
  const std::string& dir = test_dir.path();
  FaultInjectionEnv env(Env::Default(), NoRealSync());
  LogModel model;
  auto w = WalWriter::OpenAfterScan(&env, dir, SmallSegments());
  ASSERT_TRUE(w.ok()) << w.status();
  // 15 records of 4096 bytes fill segment 1 but for 4032 bytes; the 16th does not fit.
  const std::string payload(4096 - kRecordHeaderSize, 'p');
  for (int i = 0; i < 15; ++i) {
    auto lsn = (*w)->Append(1, payload, Durability::kSync);
    ASSERT_TRUE(lsn.ok());
    ASSERT_TRUE((*w)->WaitDurable(*lsn).ok());
    model.Appended(*lsn, Rec{1, payload});
    model.Acked(*lsn);
  }
  // The 16th record rolls to segment 2 and is written without a sync. Right after that write,
  // the checkpointer truncates below the first LSN not yet durable, and the power fails.
  WalWriter* writer = w->get();
  KillPoints::Arm("wal.after_write", 0, [&] {
    const Lsn to = writer->durable_lsn() + 1;
    model.Truncating(to);
    EXPECT_TRUE(writer->Truncate(to).ok());
    EXPECT_TRUE(env.SimulateCrash().ok());
  });
  auto lsn = (*w)->Append(1, payload, Durability::kNone);
  ASSERT_TRUE(lsn.ok());
  model.Appended(*lsn, Rec{1, payload});
  EXPECT_FALSE((*w)->Sync().ok());  // the crash came first
  KillPoints::DisarmAll();
  ASSERT_TRUE(env.crashed());
  w->reset();
  env.Reset();
  absl::StatusOr<LogImage> img = ReadLog(&env, dir);
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_TRUE(model.Check(*img)) << Describe(dir, *img);
  EXPECT_GE(img->tail.next_lsn, 16u);
#endif
}

// With the faults cleared the log holds every acknowledged record, and again after a crash
// drops whatever was not synced; the model then adopts what survived (`*survived` records).
void ExpectModelHoldsAcrossACrash(FaultInjectionEnv* env, const std::string& dir,
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

// Runs 8 threads of durable appends until the injected fault stops the log, then checks what
// every caller was told and what a healthy reopen finds, with and without a crash.
void CheckFailureStopsTheLog(FaultInjectionEnv::Fault fault, uint64_t seed, int trials) {
  std::mt19937_64 rng(seed);
  int failed_trials = 0;
  for (int trial = 0; trial < trials; ++trial) {
    SCOPED_TRACE(absl::StrCat("SHARDTX_SEED=", seed, " trial ", trial));
    const TestDir test_dir(absl::StrCat("_", trial));
    const std::string& dir = test_dir.path();
    FaultInjectionEnv env(Env::Default(), NoRealSync());
    LogModel model;
    auto w = WalWriter::OpenAfterScan(&env, dir, SmallSegments());
    ASSERT_TRUE(w.ok()) << w.status();
    fault.after = 1 + rng() % 40;
    fault.persistent = trial % 2 == 1;
    env.InjectFault(fault);
    std::vector<WorkerConfig> configs(8);
    for (int t = 0; t < 8; ++t) {
      configs[t].thread = t;
      configs[t].seed = rng();
      configs[t].tag = absl::StrCat("x", trial);
      configs[t].max_appends = 400;
      configs[t].all_sync = true;
    }
    std::vector<WorkerResult> results = RunWorkers(w->get(), configs, &model);
    ASSERT_GE(env.faults_injected(), 1u);
    const bool log_failed = std::any_of(results.begin(), results.end(),
                                        [](const WorkerResult& r) { return !r.first_error.ok(); });
    // Only a one-shot sync fault can miss the log: when it hits the sync of a spare segment
    // being prepared, the writer prepares it again (no record was in it). Whether the log then
    // kept its promises is checked below, after a crash, like every other case.
    if (fault.persistent || fault.ops != FaultInjectionEnv::kSync) {
      EXPECT_TRUE(log_failed);
    }
    if (log_failed) {
      ++failed_trials;
      for (const WorkerResult& r : results) {
        // Every thread was stopped by the error (400 appends take far more operations).
        EXPECT_FALSE(r.first_error.ok());
        EXPECT_EQ(r.first_error.code(), fault.code) << r.first_error;
        EXPECT_TRUE(absl::StrContains(r.first_error.message(), "injected")) << r.first_error;
        EXPECT_FALSE(r.poisoned_call_ok);
      }
      // Nothing later succeeds.
      absl::StatusOr<Lsn> later = (*w)->Append(1, "later", Durability::kSync);
      EXPECT_EQ(later.status().code(), fault.code);
      EXPECT_EQ((*w)->Sync().code(), fault.code);
      EXPECT_EQ((*w)->Truncate(~Lsn{0}).code(), fault.code);
      EXPECT_EQ((*w)->Close().code(), fault.code);
    } else {
      EXPECT_TRUE((*w)->Close().ok());
      model.AckedThrough((*w)->durable_lsn());
    }
    w->reset();

    // A healthy reopen, first without a crash (unsynced data may still be there), then after
    // one: every acknowledged record was really synced.
    const size_t acked = model.acked();
    size_t survived = 0;
    ExpectModelHoldsAcrossACrash(&env, dir, &model, {}, &survived);
    EXPECT_GE(survived, acked);
    // And the log goes on.
    {
      auto w2 = WalWriter::OpenAfterScan(&env, dir, SmallSegments());
      ASSERT_TRUE(w2.ok()) << w2.status();
      auto lsn = (*w2)->Append(7, "after reopen", Durability::kSync);
      ASSERT_TRUE(lsn.ok());
      EXPECT_EQ(*lsn, model.start());
      ASSERT_TRUE((*w2)->WaitDurable(*lsn).ok());
    }
  }
  EXPECT_GE(failed_trials, trials / 2 + 1);
}

TEST(WalCrash, FailedFsyncFailsEveryWaiterAndLaterAppend) {
  CheckFailureStopsTheLog({1, false, FaultInjectionEnv::kSync, absl::StatusCode::kInternal},
                          TestSeed(), 8);
}

TEST(WalCrash, FailedWriteFailsEveryWaiterAndLaterAppend) {
  CheckFailureStopsTheLog({1, false, FaultInjectionEnv::kWrite, absl::StatusCode::kInternal},
                          TestSeed(), 8);
}

TEST(WalCrash, DiskFullOnWriteFailsEveryWaiterAndLaterAppend) {
  CheckFailureStopsTheLog(
      {1, false, FaultInjectionEnv::kWrite, absl::StatusCode::kResourceExhausted}, TestSeed(), 4);
}

// The sequence of one failed sync, single-threaded: the waiter, then every later call.
TEST(WalCrash, FailedFsyncIsFinal) {
  const TestDir test_dir("");
  const std::string& dir = test_dir.path();
  FaultInjectionEnv env(Env::Default(), NoRealSync());
  auto w = WalWriter::OpenAfterScan(&env, dir, SmallSegments());
  ASSERT_TRUE(w.ok()) << w.status();
  for (int i = 1; i <= 10; ++i) {
    auto lsn = (*w)->Append(1, absl::StrCat("durable ", i), Durability::kSync);
    ASSERT_TRUE(lsn.ok());
    ASSERT_TRUE((*w)->WaitDurable(*lsn).ok());
  }
  env.FailSyncAfter(1, /*persistent=*/false);  // later syncs would succeed: must not be tried
  auto lsn = (*w)->Append(1, "not durable", Durability::kSync);
  ASSERT_TRUE(lsn.ok());
  absl::Status s = (*w)->WaitDurable(*lsn);
  EXPECT_TRUE(IsInjected(s)) << s;
  EXPECT_EQ((*w)->durable_lsn(), 10u);
  EXPECT_TRUE(IsInjected((*w)->Append(1, "x", Durability::kNone).status()));
  EXPECT_TRUE(IsInjected((*w)->WaitDurable(*lsn)));
  EXPECT_TRUE(IsInjected((*w)->Sync()));
  EXPECT_TRUE(IsInjected((*w)->Close()));
  w->reset();
  ASSERT_TRUE(env.SimulateCrash().ok());
  env.Reset();
  absl::StatusOr<LogImage> img = ReadLog(&env, dir);
  ASSERT_TRUE(img.ok()) << img.status();
  ASSERT_EQ(img->records.size(), 10u);
  EXPECT_EQ(img->records.back().second.payload, "durable 10");
}

// Disk full while creating a segment: a clear kResourceExhausted naming the file, no crash,
// and a healthy reopen finds every acknowledged record.
TEST(WalCrash, DiskFullAtSegmentCreation) {
  const TestDir test_dir("");
  const std::string& dir = test_dir.path();
  FaultInjectionEnv env(Env::Default(), NoRealSync());
  const FaultInjectionEnv::Fault disk_full{1, true, FaultInjectionEnv::kAllocate,
                                           absl::StatusCode::kResourceExhausted};
  // The first segment.
  env.InjectFault(disk_full);
  auto w = WalWriter::OpenAfterScan(&env, dir, SmallSegments());
  ASSERT_EQ(w.status().code(), absl::StatusCode::kResourceExhausted) << w.status();
  EXPECT_TRUE(absl::StrContains(w.status().message(), SegmentFileName(1))) << w.status();
  EXPECT_TRUE(absl::StrContains(w.status().message(), "No space left")) << w.status();
  env.ClearFaults();

  // A later segment, while appending: the spare cannot be made, then the roll fails.
  LogModel model;
  w = WalWriter::OpenAfterScan(&env, dir, SmallSegments());
  ASSERT_TRUE(w.ok()) << w.status();
  env.InjectFault(disk_full);
  absl::Status error;
  for (int i = 0; i < 200 && error.ok(); ++i) {
    const std::string payload(3000, static_cast<char>('a' + i % 26));
    absl::StatusOr<Lsn> lsn = (*w)->Append(2, payload, Durability::kSync);
    if (!lsn.ok()) {
      error = lsn.status();
      break;
    }
    model.Appended(*lsn, Rec{2, payload});
    error = (*w)->WaitDurable(*lsn);
    if (error.ok()) model.Acked(*lsn);
  }
  EXPECT_EQ(error.code(), absl::StatusCode::kResourceExhausted) << error;
  EXPECT_TRUE(absl::StrContains(error.message(), ".wal")) << error;
  EXPECT_GE(model.acked(), 15u);  // the first segment was fine
  EXPECT_EQ((*w)->Append(2, "x", Durability::kNone).status().code(),
            absl::StatusCode::kResourceExhausted);
  w->reset();
  ExpectModelHoldsAcrossACrash(&env, dir, &model);
  w = WalWriter::OpenAfterScan(&env, dir, SmallSegments());
  ASSERT_TRUE(w.ok()) << w.status();
  auto lsn = (*w)->Append(3, "space again", Durability::kSync);
  ASSERT_TRUE(lsn.ok());
  EXPECT_EQ(*lsn, model.start());
  EXPECT_TRUE((*w)->WaitDurable(*lsn).ok());
}

// A file system without fallocate: segments are zero-filled once, counted in stats, and the
// log works (and survives a crash) as usual.
TEST(WalCrash, AllocateUnsupportedFallsBackToZeroFill) {
  const TestDir test_dir("");
  const std::string& dir = test_dir.path();
  FaultInjectionEnv env(Env::Default(), NoRealSync());
  env.DisableAllocate();
  LogModel model;
  auto w = WalWriter::OpenAfterScan(&env, dir, SmallSegments(/*recycle=*/false));
  ASSERT_TRUE(w.ok()) << w.status();
  for (int i = 0; i < 100; ++i) {
    const std::string payload(2000, static_cast<char>('A' + i % 26));
    auto lsn = (*w)->Append(4, payload, Durability::kSync);
    ASSERT_TRUE(lsn.ok());
    ASSERT_TRUE((*w)->WaitDurable(*lsn).ok());
    model.Appended(*lsn, Rec{4, payload});
    model.Acked(*lsn);
  }
  // Close first: the flusher may still be preparing the spare segment.
  ASSERT_TRUE((*w)->Close().ok());
  const WalStats stats = (*w)->Stats();
  EXPECT_GE(stats.segments_created, 4u);  // 200 KB in 64 KiB segments, plus a spare
  EXPECT_EQ(stats.fallocate_fallbacks, stats.segments_created);
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (ParseSegmentFileName(entry.path().filename().string()).has_value()) {
      EXPECT_EQ(fs::file_size(entry.path()), kSegmentSize) << entry.path();
    }
  }
  ASSERT_TRUE(env.SimulateCrash().ok());
  w->reset();
  env.Reset();
  absl::StatusOr<LogImage> img = ReadLog(&env, dir);
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_TRUE(model.Check(*img)) << Describe(dir, *img);
  EXPECT_EQ(img->records.size(), 100u);
}

// The small workload of the sweeps: open, 50 appends of 2.5 KB (three segments) with mostly
// durable ones, a truncation, close. Returns every status it saw, in order; fills `model`.
std::vector<absl::Status> SweepWorkload(Env* env, const std::string& dir, LogModel* model) {
  std::vector<absl::Status> statuses;
  auto w = WalWriter::OpenAfterScan(env, dir, SmallSegments());
  statuses.push_back(w.status());
  if (!w.ok()) return statuses;
  for (int i = 0; i < 50; ++i) {
    const std::string payload(2500, static_cast<char>('a' + i % 26));
    const Durability d = i % 5 == 4 ? Durability::kNone : Durability::kSync;
    absl::StatusOr<Lsn> lsn = (*w)->Append(5, payload, d);
    statuses.push_back(lsn.status());
    if (!lsn.ok()) continue;
    model->Appended(*lsn, Rec{5, payload});
    if (d == Durability::kSync) {
      absl::Status s = (*w)->WaitDurable(*lsn);
      statuses.push_back(s);
      if (s.ok()) model->Acked(*lsn);
    }
    if (i == 35) {
      const Lsn to = (*w)->durable_lsn() + 1;
      model->Truncating(to);
      statuses.push_back((*w)->Truncate(to));
    }
  }
  absl::Status s = (*w)->Close();
  statuses.push_back(s);
  if (s.ok()) model->AckedThrough((*w)->durable_lsn());
  return statuses;
}

// After the sweep's workload: the log reopens with a healthy env (before and after a crash)
// with every acknowledged record, takes appends, and reads back the same again.
void CheckReopens(FaultInjectionEnv* env, const std::string& dir, LogModel* model, Tear tear,
                  uint64_t seed) {
  ExpectModelHoldsAcrossACrash(env, dir, model, {tear, seed});
  {
    auto w = WalWriter::OpenAfterScan(env, dir, SmallSegments());
    ASSERT_TRUE(w.ok()) << w.status();
    for (int i = 0; i < 3; ++i) {
      const std::string payload = absl::StrCat("after ", i);
      auto lsn = (*w)->Append(6, payload, Durability::kSync);
      ASSERT_TRUE(lsn.ok()) << lsn.status();
      EXPECT_EQ(*lsn, model->start() + i);
      ASSERT_TRUE((*w)->WaitDurable(*lsn).ok());
      model->Appended(*lsn, Rec{6, payload});
      model->Acked(*lsn);
    }
  }
  absl::StatusOr<LogImage> img = ReadLog(env, dir);
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_TRUE(model->Check(*img)) << Describe(dir, *img);
}

// Fails the N-th file operation of the workload, for N = 1, 2, ... until the workload runs
// clean; once, and from then on. Each run either reports the injected error or stays correct
// (once a durable append failed, every later one fails), and the log reopens correctly.
TEST(WalCrash, IoErrorSweep) {
  for (bool persistent : {false, true}) {
    uint64_t n = 1;
    for (;; ++n) {
      SCOPED_TRACE(absl::StrCat(persistent ? "persistent" : "once", " fault at op ", n));
      const TestDir test_dir("");
      const std::string& dir = test_dir.path();
      FaultInjectionEnv env(Env::Default(), NoRealSync());
      env.FailAfter(n, persistent);
      LogModel model;
      const std::vector<absl::Status> statuses = SweepWorkload(&env, dir, &model);
      const bool fired = env.faults_injected() > 0;
      bool failed = false;
      for (const absl::Status& s : statuses) {
        if (!s.ok()) {
          EXPECT_TRUE(IsInjected(s)) << s;
        }
        if (!fired) {
          EXPECT_TRUE(s.ok()) << s;
        }
        failed |= !s.ok();
      }
      if (fired && !persistent) {
        EXPECT_EQ(env.faults_injected(), 1u);
      }
      CheckReopens(&env, dir, &model, static_cast<Tear>(n % 4), n);
      if (::testing::Test::HasFatalFailure()) return;
      if (!fired) {
        EXPECT_FALSE(failed);
        break;
      }
    }
    std::fprintf(stderr, "%s faults: the workload has %llu file operations\n",
                 persistent ? "persistent" : "one-shot", static_cast<unsigned long long>(n - 1));
    EXPECT_GT(n, 100u);
  }
}

// Crashes at the N-th file operation of the same workload, for every N, cycling the tear
// modes: every acknowledged record survives, and the log reopens and goes on.
TEST(WalCrash, CrashSweep) {
  uint64_t n = 1;
  for (;; ++n) {
    SCOPED_TRACE(absl::StrCat("crash at op ", n));
    const TestDir test_dir("");
    const std::string& dir = test_dir.path();
    FaultInjectionEnv env(Env::Default(), NoRealSync());
    const Tear tear = static_cast<Tear>(n % 4);
    env.CrashAfter(n, {tear, n});
    LogModel model;
    const std::vector<absl::Status> statuses = SweepWorkload(&env, dir, &model);
    const bool crashed = env.crashed();
    ASSERT_TRUE(env.crash_status().ok()) << env.crash_status();
    for (const absl::Status& s : statuses) {
      if (!s.ok()) {
        EXPECT_TRUE(IsCrash(s)) << s;
      }
    }
    if (!crashed) {
      ASSERT_TRUE(env.SimulateCrash({tear, n}).ok());
    }
    env.Reset();
    CheckReopens(&env, dir, &model, Tear::kNone, n);
    if (::testing::Test::HasFatalFailure()) return;
    if (!crashed) break;
  }
  EXPECT_GT(n, 100u);
}

}  // namespace
}  // namespace shardtx::wal
