#include "tools/crashtest/child.h"

#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "shardtx/database.h"
#include "tests/support/fault_injection_env.h"
#include "tools/crashtest/layout.h"
#include "tools/crashtest/protocol.h"
#include "util/kill_point.h"

namespace shardtx::crashtest {
namespace {

using testing::FaultInjectionEnv;

constexpr int kExitKillPoint = 42;
constexpr int kExitPowerLoss = 43;
// Async commits (ChildConfig::async_commit): the most a thread keeps in flight.
constexpr int kMaxInFlight = 8;

// What one worker thread knows: its random stream and the keys it may delete or decide.
struct ThreadState {
  int t = 0;
  std::mt19937_64 rng;
  uint64_t seq = 0;
  // With async commits the callbacks (on a shardtx thread) update `inserted` and count the
  // commits in flight; `mu` guards those, and `stop` (an outcome unknown: the thread stops).
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;
  bool stop = false;
  // Keys written by this thread's commits in flight. The model resolves an operation whose
  // outcome is unknown from its own keys, so two of them must never chain on one key: a
  // write of a busy key waits (markers) or picks another (overwrites).
  std::multiset<std::string> busy;
  std::vector<std::vector<std::string>> inserted;  // per shard: its acknowledged inserts
  std::vector<std::string> decidable;              // named prepares it may commit/roll back

  uint64_t Uniform(uint64_t n) { return n == 0 ? 0 : rng() % n; }
  bool OneIn(uint64_t n) { return Uniform(n) == 0; }
};

class Child {
 public:
  explicit Child(const ChildConfig& c) : c_(c) {}
  [[noreturn]] void Run();

 private:
  void Line(const std::string& line) { WriteLine(c_.fd, line); }
  FaultInjectionEnv::CrashOptions CrashOptions() const {
    FaultInjectionEnv::CrashOptions o;
    o.tear = static_cast<FaultInjectionEnv::Tear>(c_.tear % 4);
    o.seed = c_.seed ^ 0x9e3779b97f4a7c15ull;
    return o;
  }
  void StartMonitor();
  void Worker(int t);
  void Checkpointer();

  // Each operation returns false when the thread must stop (an error of unknown outcome).
  bool Transfer(ThreadState& ts);
  bool WriteBatch(ThreadState& ts);
  bool AsyncInsert(ThreadState& ts);
  bool NamedPrepare(ThreadState& ts);
  bool Decide(ThreadState& ts);
  bool CheckBankTotal(ThreadState& ts);
  size_t InsertedCount(ThreadState& ts, int shard);
  bool IsBusy(ThreadState& ts, const std::string& key);

  // Reports the intent, commits, reports the result (with async commits: from the callback,
  // after running `after(committed)`; at once if CommitAsync refused). `after` runs under
  // ts.mu.
  bool CommitAndReport(ThreadState& ts, uint64_t seq, std::unique_ptr<Transaction> txn,
                       const Intent& intent, int single_shard,
                       std::function<void(bool committed)> after = nullptr);
  bool ReportResult(ThreadState& ts, uint64_t seq, const absl::Status& s, uint64_t commit_ts,
                    int shard);
  // A read failed: kAborted (snapshot too old) skips the operation; anything else is reported.
  bool ReadFailed(const absl::Status& s, const std::string& key);
  bool Crashed() const { return env_ != nullptr && env_->crashed(); }

  const ChildConfig c_;
  std::unique_ptr<FaultInjectionEnv> env_;
  std::unique_ptr<Database> db_;
  std::atomic<bool> ready_{false};
  std::chrono::steady_clock::time_point ready_at_;
};

void Child::StartMonitor() {
  // Power loss: watch for the Env's crash (CrashAfter) or fire the timer; then exit at once,
  // so that nothing but the surviving bytes is left.
  std::thread([this] {
    while (true) {
      std::this_thread::sleep_for(std::chrono::microseconds(500));
      if (env_->crashed()) {
        Line("P ops");
        _exit(kExitPowerLoss);
      }
      if (c_.trigger == "timer" && ready_.load() &&
          std::chrono::steady_clock::now() - ready_at_ >= std::chrono::milliseconds(c_.delay_ms)) {
        env_->SimulateCrash(CrashOptions()).IgnoreError();
        Line("P timer");
        _exit(kExitPowerLoss);
      }
    }
  }).detach();
}

void Child::Run() {
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the parent
  Options options = MakeOptions(c_.db_path, c_.shards, c_.log_layout);
  if (c_.powerloss) {
    env_ = std::make_unique<FaultInjectionEnv>(Env::Default(),
                                               FaultInjectionEnv::Options{.sync_base = true});
    options.env = env_.get();
    if (c_.trigger == "ops") env_->CrashAfter(c_.ops, CrashOptions());
    StartMonitor();
  }
  if (!c_.arm_point.empty()) {
    KillPoints::Arm(c_.arm_point, c_.skip, [this] {
      if (env_ != nullptr) env_->SimulateCrash(CrashOptions()).IgnoreError();
      Line("K " + c_.arm_point);
      _exit(kExitKillPoint);
    });
  }
  auto db = Database::Open(options);
  if (!db.ok()) {
    if (Crashed()) {
      Line("P ops");
      _exit(kExitPowerLoss);
    }
    Line("E Open failed: " + db.status().ToString());
    _exit(2);
  }
  db_ = std::move(*db);
  ready_at_ = std::chrono::steady_clock::now();
  ready_.store(true);
  Line("R");
  if (!c_.workload) {
    Line("N");
    _exit(0);
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < c_.threads; ++t) threads.emplace_back([this, t] { Worker(t); });
  std::thread([this] { Checkpointer(); }).detach();
  for (auto& th : threads) th.join();
  // Every worker stopped (errors were reported); wait for the parent's SIGKILL.
  while (true) pause();
}

void Child::Checkpointer() {
  std::mt19937_64 rng(c_.seed ^ 0xc0ffee);
  while (true) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10 + rng() % 240));
    absl::Status s = db_->Checkpoint();
    if (!s.ok() && !Crashed()) Line("V Database::Checkpoint failed: " + s.ToString());
  }
}

void Child::Worker(int t) {
  ThreadState ts;
  ts.t = t;
  ts.rng.seed(c_.seed + 1000003ull * static_cast<uint64_t>(t + 1));
  ts.inserted.resize(c_.shards);
  for (size_t i = 0; i < c_.pending.size(); ++i) {
    if (static_cast<int>(i % c_.threads) == t) ts.decidable.push_back(c_.pending[i]);
  }
  while (true) {
    {
      std::lock_guard<std::mutex> l(ts.mu);
      if (ts.stop) break;  // a callback saw an outcome it cannot know
    }
    const uint64_t r = ts.Uniform(100);
    bool go;
    if (r < 34) {
      go = Transfer(ts);
    } else if (r < 62) {
      go = WriteBatch(ts);
    } else if (r < 78) {
      go = AsyncInsert(ts);
    } else if (r < 86) {
      go = NamedPrepare(ts);
    } else if (r < 95) {
      go = ts.decidable.empty() ? WriteBatch(ts) : Decide(ts);
    } else {
      go = CheckBankTotal(ts);
    }
    if (!go) break;
  }
  // Callbacks still to come use `ts`.
  std::unique_lock<std::mutex> l(ts.mu);
  ts.cv.wait(l, [&] { return ts.in_flight == 0; });
}

bool Child::IsBusy(ThreadState& ts, const std::string& key) {
  std::lock_guard<std::mutex> l(ts.mu);
  return ts.busy.count(key) > 0;
}

size_t Child::InsertedCount(ThreadState& ts, int shard) {
  std::lock_guard<std::mutex> l(ts.mu);
  return ts.inserted[shard].size();
}

bool Child::ReadFailed(const absl::Status& s, const std::string& key) {
  if (absl::IsAborted(s)) return true;  // snapshot too old: retry with another transaction
  if (Crashed()) return false;
  Line(absl::StrCat("V read of ", key, " failed: ", s.ToString()));
  return false;
}

bool Child::ReportResult(ThreadState& ts, uint64_t seq, const absl::Status& s, uint64_t commit_ts,
                         int shard) {
  if (s.ok()) {
    Line(absl::StrCat("A ", ts.t, " ", seq, " ", commit_ts, " ", shard));
    return true;
  }
  if (absl::IsAborted(s)) {
    Line(absl::StrCat("F ", ts.t, " ", seq));
    return true;
  }
  std::string msg = s.ToString();
  for (char& ch : msg) {
    if (ch == '\n') ch = ' ';
  }
  Line(absl::StrCat("U ", ts.t, " ", seq, " ", msg.substr(0, 300)));
  return false;
}

bool Child::CommitAndReport(ThreadState& ts, uint64_t seq, std::unique_ptr<Transaction> txn,
                            const Intent& intent, int single_shard,
                            std::function<void(bool committed)> after) {
  Line(absl::StrCat("I ", ts.t, " ", seq, " ", FormatIntent(intent)));
  if (!c_.async_commit) {
    absl::Status s = txn->Commit();
    if (after) {
      std::lock_guard<std::mutex> l(ts.mu);
      after(s.ok());
    }
    return ReportResult(ts, seq, s, single_shard >= 0 ? txn->commit_timestamp() : 0, single_shard);
  }
  {
    std::unique_lock<std::mutex> l(ts.mu);
    ts.cv.wait(l, [&] { return ts.in_flight < kMaxInFlight || ts.stop; });
    if (ts.stop) return false;
    ++ts.in_flight;
    for (const auto& [k, v] : intent.writes) ts.busy.insert(k);
  }
  auto unbusy = [&ts, keys = intent.writes] {  // REQUIRES: ts.mu
    for (const auto& [k, v] : keys) ts.busy.erase(ts.busy.find(k));
  };
  // The callback owns the transaction too: it reads the commit timestamp there. The
  // acknowledgement goes to the parent only from the callback: durable and visible.
  std::shared_ptr<Transaction> owned(std::move(txn));
  absl::Status s =
      owned->CommitAsync([this, &ts, seq, single_shard, owned, after, unbusy](absl::Status st) {
        {
          std::lock_guard<std::mutex> l(ts.mu);
          if (after) after(st.ok());
        }
        const bool go = ReportResult(ts, seq, st, single_shard >= 0 ? owned->commit_timestamp() : 0,
                                     single_shard);
        std::lock_guard<std::mutex> l(ts.mu);
        --ts.in_flight;
        unbusy();
        if (!go) ts.stop = true;
        ts.cv.notify_all();
      });
  if (s.ok()) return true;
  {
    std::lock_guard<std::mutex> l(ts.mu);
    --ts.in_flight;
    unbusy();
    if (after) after(false);
    ts.cv.notify_all();
  }
  return ReportResult(ts, seq, s, 0, single_shard);
}

bool Child::Transfer(ThreadState& ts) {
  const uint64_t seq = ++ts.seq;
  const int s1 = static_cast<int>(ts.Uniform(c_.shards));
  int s2 = s1;
  if (c_.shards > 1 && !ts.OneIn(5)) {
    s2 = (s1 + 1 + static_cast<int>(ts.Uniform(c_.shards - 1))) % c_.shards;
  }
  const int a = static_cast<int>(ts.Uniform(kAccountsPerShard));
  int b = static_cast<int>(ts.Uniform(kAccountsPerShard));
  if (s1 == s2 && a == b) b = (a + 1) % kAccountsPerShard;
  if (c_.async_commit) {
    // Its markers are this thread's: wait until no commit of it in flight writes them.
    std::unique_lock<std::mutex> l(ts.mu);
    ts.cv.wait(l, [&] {
      return ts.stop ||
             (!ts.busy.count(MarkerKey(s1, ts.t)) && !ts.busy.count(MarkerKey(s2, ts.t)));
    });
    if (ts.stop) return false;
  }
  Intent in;
  in.kind = OpKind::kTransfer;
  in.from = AccountKey(s1, a);
  in.to = AccountKey(s2, b);
  in.amount = 1 + static_cast<int64_t>(ts.Uniform(50));
  auto txn = db_->Begin();
  in.txn_id = txn->id();
  auto vf = txn->Get(in.from);
  if (!vf.ok()) return ReadFailed(vf.status(), in.from);
  auto vt = txn->Get(in.to);
  if (!vt.ok()) return ReadFailed(vt.status(), in.to);
  int64_t bf = 0, bt = 0;
  if (!absl::SimpleAtoi(*vf, &bf) || !absl::SimpleAtoi(*vt, &bt)) {
    Line(
        absl::StrCat("V account value is not a number: ", in.from, "=", *vf, " ", in.to, "=", *vt));
    return false;
  }
  (void)txn->Put(in.from, absl::StrCat(bf - in.amount));
  (void)txn->Put(in.to, absl::StrCat(bt + in.amount));
  const std::string mark = UniqueValue(c_.round, ts.t, seq, 0);
  in.writes.emplace_back(MarkerKey(s1, ts.t), mark);
  if (s2 != s1) in.writes.emplace_back(MarkerKey(s2, ts.t), mark);
  for (const auto& [k, v] : in.writes) (void)txn->Put(k, *v);
  return CommitAndReport(ts, seq, std::move(txn), in, s1 == s2 ? s1 : -1);
}

bool Child::WriteBatch(ThreadState& ts) {
  const uint64_t seq = ++ts.seq;
  std::vector<int> shards = {static_cast<int>(ts.Uniform(c_.shards))};
  if (c_.shards > 1 && ts.OneIn(4)) {
    shards.push_back((shards[0] + 1 + static_cast<int>(ts.Uniform(c_.shards - 1))) % c_.shards);
  }
  auto txn = db_->Begin();
  Intent in;
  in.kind = OpKind::kWrite;
  in.txn_id = txn->id();
  std::map<std::string, std::optional<std::string>> writes;
  std::vector<std::pair<int, std::string>> deleted_inserts;
  int j = 0;
  for (int s : shards) {
    const int n = 1 + static_cast<int>(ts.Uniform(3));
    for (int w = 0; w < n; ++w, ++j) {
      const std::string value = UniqueValue(c_.round, ts.t, seq, j);
      const uint64_t choice = ts.Uniform(10);
      if (choice < 5) {
        const std::string key = OverwriteKey(s, ts.t, static_cast<int>(ts.Uniform(kOverwriteKeys)));
        if (writes.count(key) || IsBusy(ts, key)) continue;
        // (With async commits an earlier write of this key may be in flight: then this
        // transaction conflicts with it, or sees it.)
        auto cur = txn->Get(key);
        if (!cur.ok() && !absl::IsNotFound(cur.status())) return ReadFailed(cur.status(), key);
        // Delete only what is there, so that every write of the batch changes its key.
        writes[key] = cur.ok() && ts.OneIn(3) ? std::nullopt : std::optional<std::string>(value);
      } else if (choice < 7 && InsertedCount(ts, s) > 0) {
        std::string key;
        {
          std::lock_guard<std::mutex> l(ts.mu);
          const size_t i = ts.Uniform(ts.inserted[s].size());
          key = ts.inserted[s][i];
          ts.inserted[s].erase(ts.inserted[s].begin() + static_cast<long>(i));
        }
        deleted_inserts.emplace_back(s, key);
        writes[key] = std::nullopt;
      } else {
        writes[InsertKey(s, c_.round, ts.t, seq, j)] = value;
      }
    }
  }
  for (const auto& [k, v] : writes) {
    in.writes.emplace_back(k, v);
    if (v.has_value()) {
      (void)txn->Put(k, *v);
    } else {
      (void)txn->Delete(k);
    }
  }
  const int single = shards.size() == 1 ? shards[0] : -1;
  // Acknowledged inserts become deletable; a failed batch's deletes give their keys back.
  auto after = [&ts, writes = std::move(writes),
                deleted_inserts = std::move(deleted_inserts)](bool committed) {
    if (committed) {
      for (const auto& [k, v] : writes) {
        if (v.has_value() && k.find("/ins/") != std::string::npos) {
          ts.inserted[ShardOfKey(k)].push_back(k);
        }
      }
    } else {
      for (auto& [sh, k] : deleted_inserts) ts.inserted[sh].push_back(k);
    }
  };
  return CommitAndReport(ts, seq, std::move(txn), in, single, std::move(after));
}

bool Child::AsyncInsert(ThreadState& ts) {
  const uint64_t seq = ++ts.seq;
  const int s = static_cast<int>(ts.Uniform(c_.shards));
  TxnOptions o;
  o.durability = ts.OneIn(3) ? Durability::kNone : Durability::kAsync;
  auto txn = db_->Begin(o);
  Intent in;
  in.kind = OpKind::kAsync;
  in.txn_id = txn->id();
  const int n = 1 + static_cast<int>(ts.Uniform(3));
  for (int j = 0; j < n; ++j) {
    in.writes.emplace_back(AsyncKey(s, c_.round, ts.t, seq, j),
                           UniqueValue(c_.round, ts.t, seq, j));
    (void)txn->Put(in.writes.back().first, *in.writes.back().second);
  }
  return CommitAndReport(ts, seq, std::move(txn), in, s);
}

bool Child::NamedPrepare(ThreadState& ts) {
  const uint64_t seq = ++ts.seq;
  auto txn = db_->Begin();
  Intent in;
  in.kind = OpKind::kPrepare;
  in.txn_id = txn->id();
  in.name = absl::StrCat("np.", c_.round, ".", ts.t, ".", seq);
  const uint64_t flavor = ts.Uniform(20);
  if (flavor < 10) {  // writes of its own keys, on one or two shards
    const int s1 = static_cast<int>(ts.Uniform(c_.shards));
    const int s2 = c_.shards > 1 && ts.OneIn(2) ? (s1 + 1) % c_.shards : s1;
    in.writes.emplace_back(PreparedKey(s1, in.name, "0"), UniqueValue(c_.round, ts.t, seq, 0));
    in.writes.emplace_back(PreparedKey(s2, in.name, "1"), UniqueValue(c_.round, ts.t, seq, 1));
  } else if (flavor < 17) {  // a prepared transfer: its accounts stay locked until decided
    const int s1 = static_cast<int>(ts.Uniform(c_.shards));
    const int s2 =
        c_.shards > 1 ? (s1 + 1 + static_cast<int>(ts.Uniform(c_.shards - 1))) % c_.shards : s1;
    const int a = static_cast<int>(ts.Uniform(kAccountsPerShard));
    int b = static_cast<int>(ts.Uniform(kAccountsPerShard));
    if (s1 == s2 && a == b) b = (a + 1) % kAccountsPerShard;
    in.from = AccountKey(s1, a);
    in.to = AccountKey(s2, b);
    in.amount = 1 + static_cast<int64_t>(ts.Uniform(50));
    auto vf = txn->Get(in.from);
    if (!vf.ok()) return ReadFailed(vf.status(), in.from);
    auto vt = txn->Get(in.to);
    if (!vt.ok()) return ReadFailed(vt.status(), in.to);
    int64_t bf = 0, bt = 0;
    if (!absl::SimpleAtoi(*vf, &bf) || !absl::SimpleAtoi(*vt, &bt)) return true;
    (void)txn->Put(in.from, absl::StrCat(bf - in.amount));
    (void)txn->Put(in.to, absl::StrCat(bt + in.amount));
    in.writes.emplace_back(PreparedKey(s1, in.name, "m"), UniqueValue(c_.round, ts.t, seq, 0));
    if (s2 != s1) {
      in.writes.emplace_back(PreparedKey(s2, in.name, "m"), UniqueValue(c_.round, ts.t, seq, 1));
    }
  }  // else: nothing written; the prepare only keeps the name
  for (const auto& [k, v] : in.writes) (void)txn->Put(k, *v);
  Line(absl::StrCat("I ", ts.t, " ", seq, " ", FormatIntent(in)));
  absl::Status s = txn->Prepare(in.name);
  if (s.ok()) ts.decidable.push_back(in.name);
  return ReportResult(ts, seq, s, 0, -1);
}

bool Child::Decide(ThreadState& ts) {
  const size_t i = ts.Uniform(ts.decidable.size());
  const std::string name = ts.decidable[i];
  ts.decidable.erase(ts.decidable.begin() + static_cast<long>(i));
  const bool commit = !ts.OneIn(3);
  auto resolve = [&](bool c) {
    return c ? db_->CommitPrepared(name) : db_->RollbackPrepared(name);
  };
  auto intent = [&](bool c) {
    Intent in;
    in.name = name;
    in.kind = c ? OpKind::kCommitPrepared : OpKind::kRollbackPrepared;
    return in;
  };
  const uint64_t seq = ++ts.seq;
  Line(absl::StrCat("I ", ts.t, " ", seq, " ", FormatIntent(intent(commit))));
  if (!ts.OneIn(4)) return ReportResult(ts, seq, resolve(commit), 0, -1);
  // A race: a second resolver of the same name, with the other decision, at the same time.
  // One wins; the other must be refused (kFailedPrecondition "being committed", or kNotFound
  // once the winner is done) and change nothing. Both acknowledged is a violation the model
  // reports (a decision for a name that is no longer pending).
  const uint64_t rival_seq = ++ts.seq;
  Line(absl::StrCat("I ", ts.t, " ", rival_seq, " ", FormatIntent(intent(!commit))));
  absl::Status rival;
  std::thread other([&] { rival = resolve(!commit); });
  const absl::Status mine = resolve(commit);
  other.join();
  auto report = [&](uint64_t q, const absl::Status& st) {
    if (!Crashed() && (absl::IsFailedPrecondition(st) || absl::IsNotFound(st))) {
      Line(absl::StrCat("F ", ts.t, " ", q));  // refused: no effect
      return true;
    }
    return ReportResult(ts, q, st, 0, -1);
  };
  const bool go = report(seq, mine);
  return report(rival_seq, rival) && go;
}

bool Child::CheckBankTotal(ThreadState& ts) {
  (void)ts;
  auto txn = db_->Begin();
  int64_t total = 0;
  for (int s = 0; s < c_.shards; ++s) {
    for (int a = 0; a < kAccountsPerShard; ++a) {
      const std::string key = AccountKey(s, a);
      auto v = txn->Get(key);
      if (!v.ok()) return ReadFailed(v.status(), key);
      int64_t b = 0;
      if (!absl::SimpleAtoi(*v, &b)) {
        Line(absl::StrCat("V account value is not a number: ", key, "=", *v));
        return false;
      }
      total += b;
    }
  }
  const int64_t want = int64_t{c_.shards} * kAccountsPerShard * kInitialBalance;
  if (total != want) {
    Line(absl::StrCat("V bank total ", total, " (want ", want, ") at snapshot ",
                      txn->snapshot_timestamp(), ": a transaction is partly visible"));
    return false;
  }
  return true;
}

}  // namespace

void RunChild(const ChildConfig& config) {
  Child child(config);
  child.Run();
}

}  // namespace shardtx::crashtest
