// Process crash: a child process commits under load and reports every acknowledged commit
// through a pipe; the parent kills it with SIGKILL at a random moment, reopens the database and
// checks that every acknowledged commit is there and no unacknowledged one is partly there.
//
// SHARDTX_SEED replays a run; SHARDTX_KILL_ROUNDS changes the round count (default 20).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "shardtx/database.h"
#include "tests/support/test_db.h"
#include "util/mutex.h"

namespace shardtx {
namespace {

constexpr int kThreads = 6;
constexpr int kKeys = 10;

Options Opts(const std::string& dir) {
  Options o;
  o.path = dir;
  o.wal_segment_size = 256 << 10;
  o.max_txn_bytes = 64 << 10;
  o.checkpoint_wal_bytes = 128 << 10;
  o.checkpoint_interval = absl::Milliseconds(20);
  o.checkpoint_on_close = false;
  return o;
}

// The child: commit forever, reporting "I <thread> <key>=<value|-> ..." before each commit and
// "A <thread>" after it is acknowledged. Each line goes out in one write(2).
[[noreturn]] void RunChild(const std::string& dir, int out, uint64_t seed, int round) {
  auto db = Database::Open(Opts(dir));
  if (!db.ok()) {
    std::string line = absl::StrCat("E ", db.status().ToString(), "\n");
    (void)!write(out, line.data(), line.size());
    _exit(2);
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(seed + t);
      for (int i = 0;; ++i) {
        auto txn = (*db)->Begin();
        std::string line = absl::StrCat("I ", t);
        const int n = 1 + static_cast<int>(rng() % 3);
        std::map<std::string, std::string> writes;
        for (int j = 0; j < n; ++j) {
          std::string key = absl::StrCat("p", t, "/", rng() % kKeys);
          writes[key] = rng() % 6 == 0 ? "-" : absl::StrCat(round, ".", i);
        }
        for (auto& [k, v] : writes) {
          absl::StrAppend(&line, " ", k, "=", v);
          if (v == "-") {
            txn->Delete(k).IgnoreError();
          } else {
            txn->Put(k, v).IgnoreError();
          }
        }
        line += "\n";
        (void)!write(out, line.data(), line.size());
        if (!txn->Commit().ok()) _exit(3);
        std::string ack = absl::StrCat("A ", t, "\n");
        (void)!write(out, ack.data(), ack.size());
      }
    });
  }
  for (auto& th : threads) th.join();
  _exit(0);
}

TEST(ProcessKill, AcknowledgedCommitsSurviveSigkill) {
  uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("SHARDTX_SEED")) seed = std::strtoull(s, nullptr, 10);
  int rounds = 20;
  if (const char* s = std::getenv("SHARDTX_KILL_ROUNDS")) rounds = std::atoi(s);
  std::printf("ProcessKill seed=%llu rounds=%d\n", static_cast<unsigned long long>(seed), rounds);
  std::mt19937_64 rng(seed);
  const std::string dir = testing::FreshDir();
  // Per thread: key -> acknowledged value (nullopt: absent).
  std::vector<std::map<std::string, std::optional<std::string>>> acked(kThreads);
  uint64_t total_acked = 0;
  for (int round = 0; round < rounds; ++round) {
    SCOPED_TRACE(absl::StrCat("seed ", seed, " round ", round));
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(fds[0]);
      RunChild(dir, fds[1], rng(), round);
    }
    close(fds[1]);
    // Let it run 30..300 ms of commits, then kill it mid-flight.
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(30 + rng() % 270);
    std::string data;
    char buf[65536];
    bool killed = false;
    while (true) {
      if (!killed && std::chrono::steady_clock::now() >= deadline) {
        kill(child, SIGKILL);
        killed = true;
      }
      ssize_t n = read(fds[0], buf, sizeof(buf));
      if (n <= 0) break;  // EOF once the child is dead
      data.append(buf, static_cast<size_t>(n));
    }
    close(fds[0]);
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited by itself: " << data.substr(0, 300);

    std::vector<std::map<std::string, std::optional<std::string>>> in_flight(kThreads);
    for (absl::string_view line : absl::StrSplit(data, '\n', absl::SkipEmpty())) {
      if (line.back() == '\r') continue;
      std::vector<std::string> parts = absl::StrSplit(line, ' ');
      if (parts[0] == "I" && parts.size() >= 3) {
        const int t = std::stoi(parts[1]);
        in_flight[t].clear();
        for (size_t i = 2; i < parts.size(); ++i) {
          std::vector<std::string> kv = absl::StrSplit(parts[i], '=');
          if (kv.size() != 2) continue;
          in_flight[t][kv[0]] = kv[1] == "-" ? std::nullopt : std::optional<std::string>(kv[1]);
        }
      } else if (parts[0] == "A" && parts.size() == 2) {
        const int t = std::stoi(parts[1]);
        for (auto& [k, v] : in_flight[t]) acked[t][k] = v;
        in_flight[t].clear();
        ++total_acked;
      }
    }

    auto db = Database::Open(Opts(dir));
    ASSERT_TRUE(db.ok()) << db.status();
    auto txn = (*db)->Begin();
    for (int t = 0; t < kThreads; ++t) {
      bool applied = false, absent = false;
      for (int k = 0; k < kKeys; ++k) {
        const std::string key = absl::StrCat("p", t, "/", k);
        auto got = txn->Get(key);
        ASSERT_TRUE(got.ok() || absl::IsNotFound(got.status())) << got.status();
        std::optional<std::string> v = got.ok() ? std::optional<std::string>(*got) : std::nullopt;
        const std::optional<std::string> want = acked[t].count(key) ? acked[t][key] : std::nullopt;
        auto f = in_flight[t].find(key);
        if (f != in_flight[t].end() && v == f->second && v != want) {
          applied = true;
          continue;
        }
        ASSERT_EQ(v, want) << "key " << key << " lost its acknowledged value";
        if (f != in_flight[t].end() && f->second != want) absent = true;
      }
      ASSERT_FALSE(applied && absent) << "thread " << t << ": unacknowledged commit partly visible";
      if (applied) {
        for (auto& [k, v] : in_flight[t]) acked[t][k] = v;
      }
    }
  }
  std::printf("ProcessKill: %d rounds, %llu acknowledged commits verified\n", rounds,
              static_cast<unsigned long long>(total_acked));
  EXPECT_GT(total_acked, static_cast<uint64_t>(rounds));
}

}  // namespace
}  // namespace shardtx
