#include "tools/crashtest/driver.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "shardtx/database.h"
#include "tools/crashtest/child_process.h"
#include "tools/crashtest/coverage.h"
#include "tools/crashtest/layout.h"
#include "tools/crashtest/model.h"
#include "util/kill_point.h"

namespace shardtx::crashtest {
namespace {

using Clock = std::chrono::steady_clock;

constexpr double kOpenTimeoutMs = 30000;    // a child that cannot open in time: a violation
constexpr double kWhiteboxWindowMs = 2000;  // an armed point not reached by then: killed
constexpr double kPowerLossWindowMs = 4000;
const char* const kTearNames[] = {"none", "prefix", "zeros", "garbage"};

// How one round's child dies.
struct Plan {
  std::string mode;   // blackbox | whitebox | powerloss
  std::string point;  // whitebox, powerloss at a point
  int skip = 0;
  std::string trigger;  // powerloss: timer | ops | point
  int delay_ms = 0;     // blackbox: SIGKILL after; powerloss timer
  uint64_t ops = 0;     // powerloss ops
  int tear = 0;
  bool two_stage = false;  // recovery points: a first child crashes, the second dies in Open
  bool async_commit = false;  // the children commit with CommitAsync
  int stage1_delay_ms = 0;

  std::string Describe() const {
    if (mode == "blackbox") {
      return absl::StrCat("SIGKILL after ", delay_ms, " ms", async_commit ? ", async" : "");
    }
    std::string d;
    if (mode == "whitebox" || trigger == "point") {
      d = absl::StrCat("kill point ", point, "/", skip);
    } else if (trigger == "timer") {
      d = absl::StrCat("power loss after ", delay_ms, " ms");
    } else {
      d = absl::StrCat("power loss at Env op ", ops);
    }
    if (mode == "powerloss") absl::StrAppend(&d, ", tear ", kTearNames[tear]);
    if (async_commit) absl::StrAppend(&d, ", async");
    return d;
  }
};

struct PointStats {
  uint64_t fired = 0;
  uint64_t not_reached = 0;
  // Skips are drawn log-uniformly from [0, skip_bound], so crashes come both early and late in
  // a run; the bound grows while the point fires and shrinks below a skip that was not reached.
  int skip_bound = 64;
};

class Driver {
 public:
  explicit Driver(const DriverOptions& o) : o_(o), rng_(o.seed), model_(o.shards, o.threads) {}
  int Run();

 private:
  Plan MakePlan();
  std::string PickPoint();
  std::vector<std::string> ChildArgs(const Plan& plan, bool stage1, int round);
  // Runs one child; false with `error` if it could not be run.
  bool RunStage(const Plan& plan, bool stage1, int round, ChildExit* exit, std::string* error);
  // What the child's death says on its own (a crash by another signal, an Open that hung).
  void CheckExit(const Plan& plan, bool stage1, const ChildExit& e, std::vector<Violation>* out);
  int Fail(int round, const Plan& plan, const std::vector<Violation>& v);
  void PrintSummary(int64_t rounds, uint64_t lost, uint64_t violations);
  RunCoverage Coverage(int64_t rounds) const;

  const DriverOptions o_;
  std::mt19937_64 rng_;
  Model model_;
  std::string db_path_, log_path_;
  std::map<std::string, PointStats> points_;
  std::map<std::string, uint64_t> modes_;
  std::vector<double> recovery_ms_;
  uint64_t not_reached_ = 0;
  int64_t verifying_rounds_ = 0;
  int64_t armed_rounds_ = 0;
};

std::string Driver::PickPoint() {
  // Half the time the point that fired least so far, so that every point gets its share.
  std::vector<std::string> all;
  for (const auto& [name, s] : points_) all.push_back(name);
  if (rng_() % 2 == 0) return all[rng_() % all.size()];
  uint64_t least = UINT64_MAX;
  std::vector<std::string> candidates;
  for (const auto& [name, s] : points_) {
    if (s.fired < least) {
      least = s.fired;
      candidates.clear();
    }
    if (s.fired == least) candidates.push_back(name);
  }
  return candidates[rng_() % candidates.size()];
}

Plan Driver::MakePlan() {
  Plan p;
  p.mode = o_.mode;
  if (p.mode == "mixed") {
    const uint64_t r = rng_() % 100;
    p.mode = r < 25 ? "blackbox" : r < 65 ? "whitebox" : "powerloss";
  }
  p.async_commit = o_.commit == "async" || (o_.commit == "mixed" && rng_() % 3 == 0);
  p.delay_ms = 10 + static_cast<int>(rng_() % 1500);
  p.tear = static_cast<int>(rng_() % 4);
  p.stage1_delay_ms = 20 + static_cast<int>(rng_() % 800);
  if (p.mode == "powerloss") {
    const uint64_t r = rng_() % 3;
    p.trigger = r == 0 ? "timer" : r == 1 ? "ops" : "point";
    p.ops = 1 + rng_() % 6000;
  }
  if (p.mode == "whitebox" || p.trigger == "point") {
    p.point = PickPoint();
    const double u = std::uniform_real_distribution<double>(0, 1)(rng_);
    p.skip = static_cast<int>(std::exp(u * std::log(points_[p.point].skip_bound + 1.0))) - 1;
    p.two_stage = p.point.rfind("recovery.", 0) == 0;
  }
  return p;
}

std::vector<std::string> Driver::ChildArgs(const Plan& plan, bool stage1, int round) {
  std::vector<std::string> a = {"--child",
                                "--child_fd=3",
                                "--child_db=" + db_path_,
                                absl::StrCat("--shards=", o_.shards),
                                absl::StrCat("--log_layout=", LogLayoutName(o_.log_layout)),
                                absl::StrCat("--threads=", o_.threads),
                                absl::StrCat("--child_round=", round),
                                absl::StrCat("--child_seed=", rng_())};
  const bool powerloss = plan.mode == "powerloss";
  if (powerloss) {
    a.push_back("--child_powerloss");
    a.push_back(absl::StrCat("--child_tear=", plan.tear));
  }
  if (stage1) {
    // The first of two stages: a plain crash under load, leaving work for recovery.
    if (powerloss) {
      a.push_back("--child_trigger=timer");
      a.push_back(absl::StrCat("--child_delay_ms=", plan.stage1_delay_ms));
    }
  } else {
    if (!plan.point.empty() && o_.self_test_broken != "never_arm") {
      a.push_back("--child_arm=" + plan.point);
      a.push_back(absl::StrCat("--child_skip=", plan.skip));
    }
    if (powerloss) {
      a.push_back("--child_trigger=" + plan.trigger);
      a.push_back(absl::StrCat("--child_delay_ms=", plan.delay_ms));
      a.push_back(absl::StrCat("--child_ops=", plan.ops));
    }
    if (plan.two_stage) a.push_back("--child_workload=false");
  }
  if (plan.async_commit) {
    a.push_back("--child_async_commit");
  }
  const std::vector<std::string> pending = model_.PendingNames();
  if (!pending.empty()) a.push_back("--child_pending=" + absl::StrJoin(pending, ","));
  return a;
}

bool Driver::RunStage(const Plan& plan, bool stage1, int round, ChildExit* exit,
                      std::string* error) {
  const bool blackbox = plan.mode == "blackbox" || (stage1 && plan.mode == "whitebox");
  const double kill_after = stage1 ? plan.stage1_delay_ms : plan.delay_ms;
  const bool open_only = plan.two_stage && !stage1;
  auto deadline = [&](bool ready, double since_spawn, double since_ready) {
    if (!ready || open_only) return since_spawn > kOpenTimeoutMs;
    if (blackbox) return since_ready >= kill_after;
    if (plan.mode == "whitebox") return since_ready >= kWhiteboxWindowMs;
    return since_ready >= kPowerLossWindowMs;
  };
  return RunChildProcess(o_.self, ChildArgs(plan, stage1, round), log_path_, deadline, exit, error);
}

void Driver::CheckExit(const Plan& plan, bool stage1, const ChildExit& e,
                       std::vector<Violation>* out) {
  if (e.signal != 0 && !(e.signal == SIGKILL && e.killed)) {
    out->push_back({false, "-",
                    absl::StrCat("the child died of signal ", e.signal, " (", strsignal(e.signal),
                                 "): a crash in the library? "
                                 "See its log")});
  }
  if (!e.ready && e.killed) {
    out->push_back({false, "-", "the child did not finish Open (recovery) within 30 s"});
  }
  if (e.exited && e.exit_code != 0 && e.exit_code != 42 && e.exit_code != 43 && e.exit_code != 2) {
    out->push_back({false, "-", absl::StrCat("the child exited with code ", e.exit_code)});
  }
  if (e.exited && e.exit_code == 0 && !e.not_reached) {
    out->push_back({false, "-", "the child exited by itself"});
  }
  (void)plan;
  (void)stage1;
}

int Driver::Run() {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(o_.dir, ec);
  db_path_ = o_.dir + "/db";
  log_path_ = o_.dir + "/child.log";
  if (fs::exists(db_path_)) {
    std::fprintf(stderr, "crashtest: %s exists; remove it or choose another --dir\n",
                 db_path_.c_str());
    return 2;
  }
  for (const std::string& name : KillPoints::All()) points_[name];
  if (points_.empty() && (o_.mode == "whitebox")) {
    std::fprintf(stderr, "crashtest: this build has no kill points (SHARDTX_KILL_POINTS off)\n");
    return 2;
  }
  std::printf("crashtest: seed %llu, mode %s, %d shards, log layout %s, %d threads, directory %s\n",
              static_cast<unsigned long long>(o_.seed), o_.mode.c_str(), o_.shards,
              LogLayoutName(o_.log_layout), o_.threads, o_.dir.c_str());
  std::fflush(stdout);
  {
    auto db = Database::Open(MakeOptions(db_path_, o_.shards, o_.log_layout));
    absl::Status s = db.ok() ? model_.Initialize(db->get()) : db.status();
    if (s.ok()) s = (*db)->Close();
    if (!s.ok()) {
      std::fprintf(stderr, "crashtest: cannot create %s: %s\n", db_path_.c_str(),
                   s.ToString().c_str());
      return 2;
    }
  }
  const auto start = Clock::now();
  int64_t round = 0;
  for (; o_.rounds == 0 || round < o_.rounds; ++round) {
    if (o_.seconds > 0 && Clock::now() - start >= std::chrono::seconds(o_.seconds)) break;
    Plan plan = MakePlan();
    if (plan.mode != "blackbox" && points_.empty()) plan.mode = "blackbox";
    ++modes_[plan.mode];
    model_.StartRound(static_cast<int>(round), plan.mode == "powerloss");
    std::ofstream(log_path_, std::ios::trunc).close();
    std::vector<Violation> violations;
    std::string error;
    for (bool stage1 : {true, false}) {
      if (stage1 && !plan.two_stage) continue;
      ChildExit e;
      if (!RunStage(plan, stage1, static_cast<int>(round), &e, &error)) {
        std::fprintf(stderr, "crashtest: %s\n", error.c_str());
        return 2;
      }
      model_.StartChild();
      for (const std::string& line : e.lines) model_.OnLine(line);
      CheckExit(plan, stage1, e, &violations);
      if (!stage1 && !plan.point.empty()) {
        ++armed_rounds_;
        PointStats& ps = points_[plan.point];
        if (e.fired == plan.point) {
          ++ps.fired;
          ps.skip_bound = std::min(ps.skip_bound + ps.skip_bound / 2 + 4, 1000000);
        } else {
          ++ps.not_reached;
          ++not_reached_;
          ps.skip_bound = std::max(std::min(ps.skip_bound, plan.skip * 3 / 4), 4);
          plan.point += " (not reached)";
        }
      }
    }
    // Recovery: the parent reopens the directory the child crashed in.
    Options options = MakeOptions(db_path_, o_.shards, o_.log_layout);
    options.checkpoint_on_close = rng_() % 2 == 0;
    const auto t0 = Clock::now();
    auto db = Database::Open(options);
    const double recovery_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (!db.ok()) {
      violations.push_back(
          {false, "-", "recovery (Database::Open) failed: " + db.status().ToString()});
      return Fail(static_cast<int>(round), plan, violations);
    }
    recovery_ms_.push_back(recovery_ms);
    // The database keeps the layout it was created with, the one asked for.
    if ((*db)->GetStats().shared_log != (o_.log_layout == Options::LogLayout::kShared)) {
      violations.push_back({false, "-",
                            absl::StrCat("the recovered database's log layout is not ",
                                         LogLayoutName(o_.log_layout), " (Stats::shared_log)")});
    }
    const bool verify = o_.self_test_broken != "skip_verify";
    if (verify) {
      model_.Verify(db->get(), &violations);
      if (model_.verified_this_round() > 0) ++verifying_rounds_;
      if (violations.empty()) model_.DecidePending(db->get(), rng_, &violations);
      if (violations.empty()) model_.Cleanup(db->get(), rng_, &violations);
    }
    absl::Status closed = (*db)->Close();
    if (!closed.ok()) violations.push_back({false, "-", "Close failed: " + closed.ToString()});
    db->reset();
    if (violations.empty() && verify) {
      // A clean restart after the parent's own commits must change nothing either.
      options.checkpoint_on_close = rng_() % 2 == 0;
      auto again = Database::Open(options);
      if (!again.ok()) {
        violations.push_back(
            {false, "-", "reopening after a clean Close failed: " + again.status().ToString()});
      } else {
        model_.VerifyReopened(again->get(), &violations);
        closed = (*again)->Close();
        if (!closed.ok()) {
          violations.push_back({false, "-", "Close failed: " + closed.ToString()});
        }
      }
      for (Violation& v : violations) v.what = "after a clean reopen: " + v.what;
    }
    std::printf("round %4lld  %-9s  %-56s  acked %6llu  verified %6llu  recovery %7.1f ms\n",
                static_cast<long long>(round), plan.mode.c_str(), plan.Describe().c_str(),
                static_cast<unsigned long long>(model_.acked_this_round()),
                static_cast<unsigned long long>(model_.verified_this_round()), recovery_ms);
    std::fflush(stdout);
    if (!violations.empty()) return Fail(static_cast<int>(round), plan, violations);
  }
  PrintSummary(round, 0, 0);
  const std::vector<std::string> shortfalls = Coverage(round).Shortfalls();
  if (!shortfalls.empty()) {
    // Nothing wrong was found, but too little was looked at for that to mean much.
    for (const std::string& s : shortfalls) {
      std::printf("crashtest: TOO LITTLE VERIFIED: %s\n", s.c_str());
    }
    std::printf(
        "crashtest: the run does not count (exit 3); seed %llu; directory kept: %s "
        "(see tools/crashtest/README.md, \"When a run counts\")\n",
        static_cast<unsigned long long>(o_.seed), o_.dir.c_str());
    std::fflush(stdout);
    return 3;
  }
  if (!o_.keep) {
    std::filesystem::remove_all(db_path_, ec);
    std::filesystem::remove(log_path_, ec);
    std::filesystem::remove(o_.dir, ec);  // only if empty: never someone else's files
  }
  return 0;
}

int Driver::Fail(int round, const Plan& plan, const std::vector<Violation>& v) {
  uint64_t lost = 0;
  for (const Violation& x : v) lost += x.lost;
  const std::string point = plan.point.empty() ? "none" : plan.point;
  std::printf("crashtest: VIOLATION in round %d (%s, %s): first offending key %s\n", round,
              plan.mode.c_str(), plan.Describe().c_str(), v.front().key.c_str());
  for (size_t i = 0; i < v.size() && i < 20; ++i) {
    std::printf("  %s %s: %s\n", v[i].lost ? "[lost]" : "[violation]", v[i].key.c_str(),
                v[i].what.c_str());
  }
  std::printf(
      "crashtest: seed %llu, round %d, kill point %s, first offending key %s; %d shards, log "
      "layout %s; directory kept: %s (child log: %s)\n",
      static_cast<unsigned long long>(o_.seed), round, point.c_str(), v.front().key.c_str(),
      o_.shards, LogLayoutName(o_.log_layout), o_.dir.c_str(), log_path_.c_str());
  PrintSummary(round + 1, lost, v.size() - lost);
  return 1;
}

RunCoverage Driver::Coverage(int64_t rounds) const {
  RunCoverage c;
  c.rounds = rounds;
  c.verifying_rounds = verifying_rounds_;
  c.armed_rounds = armed_rounds_;
  for (const auto& [name, s] : points_) c.fired[name] = s.fired;
  return c;
}

void Driver::PrintSummary(int64_t rounds, uint64_t lost, uint64_t violations) {
  const RunCoverage c = Coverage(rounds);
  std::printf("modes:");
  for (const auto& [m, n] : modes_)
    std::printf(" %s %llu", m.c_str(), static_cast<unsigned long long>(n));
  std::printf(
      "\nverifying rounds: %lld of %lld checked at least one acknowledged durable commit after "
      "the crash (required: %lld)\n",
      static_cast<long long>(c.verifying_rounds), static_cast<long long>(rounds),
      static_cast<long long>(c.required_verifying_rounds()));
  std::printf(
      "kill points fired: %lld distinct of %zu, in %lld rounds that armed one (required: %lld "
      "distinct)\n",
      static_cast<long long>(c.distinct_fired()), c.fired.size(),
      static_cast<long long>(c.armed_rounds), static_cast<long long>(c.required_distinct_fired()));
  std::printf("kill points (rounds fired; not reached in brackets):\n");
  for (const auto& [name, s] : points_) {
    std::printf("  %-32s %5llu  (%llu)\n", name.c_str(), static_cast<unsigned long long>(s.fired),
                static_cast<unsigned long long>(s.not_reached));
  }
  std::vector<double> r = recovery_ms_;
  std::sort(r.begin(), r.end());
  auto pct = [&](double p) {
    if (r.empty()) return 0.0;
    return r[std::min(r.size() - 1, static_cast<size_t>(p / 100.0 * r.size()))];
  };
  std::printf("recovery ms: p50 %.1f  p99 %.1f  max %.1f  (%zu recoveries)\n", pct(50), pct(99),
              r.empty() ? 0.0 : r.back(), r.size());
  std::printf(
      "crashtest: %lld rounds, %llu acknowledged commits verified, %llu lost, "
      "%llu violations (%d shards, log layout %s)\n",
      static_cast<long long>(rounds), static_cast<unsigned long long>(model_.verified_total()),
      static_cast<unsigned long long>(lost), static_cast<unsigned long long>(violations), o_.shards,
      LogLayoutName(o_.log_layout));
  std::fflush(stdout);
}

}  // namespace

int RunDriver(const DriverOptions& options) {
  Driver d(options);
  return d.Run();
}

}  // namespace shardtx::crashtest
