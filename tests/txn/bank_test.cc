// Invariant workloads over 4 shards: a bank whose total never changes, and a FoundationDB-style
// cycle that any partial transaction would break. Snapshot readers check the invariant while
// 16 threads (mostly cross-shard) write and checkpoints run.
#include <atomic>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/test_db.h"

namespace shardtx {
namespace {

using testing::FreshDir;
using testing::OpenOrDie;

constexpr int kAccounts = 1000;
constexpr int64_t kInitial = 100;

Options FourShards(const std::string& dir) {
  Options o;
  o.path = dir;
  o.num_shards = 4;
  o.checkpoint_interval = absl::ZeroDuration();
  o.checkpoint_overlay_bytes = 512 << 10;
  return o;
}

std::string Account(int i) { return absl::StrCat("acct/", 1000 + i); }

TEST(Bank, SnapshotReadersAlwaysSeeTheExactTotal) {
  const std::string dir = FreshDir();
  auto db = OpenOrDie(FourShards(dir));
  {
    auto t = db->Begin();
    for (int i = 0; i < kAccounts; ++i) ASSERT_TRUE(t->Put(Account(i), std::to_string(kInitial)).ok());
    ASSERT_TRUE(t->Commit().ok());
  }
  std::atomic<bool> done{false};
  std::atomic<int> transfers{0}, aborts{0}, sums{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 16; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937_64 rng(w);
      for (int n = 0; n < 60; ++n) {
        const int a = static_cast<int>(rng() % kAccounts);
        int b = static_cast<int>(rng() % kAccounts);
        if (a == b) b = (b + 1) % kAccounts;
        auto t = db->Begin();
        auto va = t->Get(Account(a));
        auto vb = t->Get(Account(b));
        if (!va.ok() || !vb.ok()) {
          aborts++;
          continue;
        }
        const int64_t amount = static_cast<int64_t>(rng() % 10);
        t->Put(Account(a), std::to_string(std::stoll(*va) - amount)).IgnoreError();
        t->Put(Account(b), std::to_string(std::stoll(*vb) + amount)).IgnoreError();
        absl::Status s = t->Commit();
        if (s.ok()) {
          transfers++;
        } else {
          ASSERT_TRUE(absl::IsAborted(s)) << s;
          aborts++;
        }
      }
    });
  }
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&] {
      while (!done.load()) {
        auto t = db->Begin();
        auto it = t->NewIterator(IteratorOptions{"acct/", "acct0", false});
        int64_t total = 0;
        int n = 0;
        for (it->SeekToFirst(); it->Valid(); it->Next(), ++n) total += std::stoll(std::string(it->value()));
        if (!it->status().ok()) {
          ASSERT_TRUE(absl::IsAborted(it->status())) << it->status();
          continue;
        }
        ASSERT_EQ(n, kAccounts);
        ASSERT_EQ(total, kAccounts * kInitial) << "a reader saw money created or destroyed";
        sums++;
      }
    });
  }
  std::thread checkpointer([&] {
    while (!done.load()) ASSERT_TRUE(db->Checkpoint().ok());
  });
  for (int w = 0; w < 16; ++w) threads[w].join();
  done = true;
  for (size_t i = 16; i < threads.size(); ++i) threads[i].join();
  checkpointer.join();
  Stats st = db->GetStats();
  std::printf("bank: %d transfers (%llu cross-shard), %d aborts, %d consistent sums\n",
              transfers.load(), static_cast<unsigned long long>(st.cross_shard_commits),
              aborts.load(), sums.load());
  EXPECT_GT(transfers.load(), 500);
  EXPECT_GT(st.cross_shard_commits, static_cast<uint64_t>(transfers.load() / 2));
  EXPECT_GT(sums.load(), 0);
  db.reset();
  // And after reopening: the same total.
  auto again = OpenOrDie(FourShards(dir));
  auto t = again->Begin();
  int64_t total = 0;
  for (int i = 0; i < kAccounts; ++i) total += std::stoll(*t->Get(Account(i)));
  EXPECT_EQ(total, kAccounts * kInitial);
}

// The cycle: node i's value names its successor; every transaction rewires three nodes so that
// the ring stays one cycle of all nodes. A partial transaction breaks it.
constexpr int kNodes = 64;
std::string Node(int i) { return absl::StrCat("node/", i); }

// Returns false when the snapshot could not be served (retryable), after checking what it saw.
bool CheckCycle(Transaction* t) {
  std::vector<bool> seen(kNodes, false);
  int cur = 0;
  for (int step = 0; step < kNodes; ++step) {
    auto v = t->Get(Node(cur));
    if (absl::IsAborted(v.status())) return false;  // snapshot too old
    EXPECT_TRUE(v.ok()) << v.status();
    if (!v.ok()) return false;
    EXPECT_FALSE(seen[cur]) << "cycle shorter than " << kNodes;
    if (seen[cur]) return false;
    seen[cur] = true;
    cur = std::stoi(*v);
  }
  EXPECT_EQ(cur, 0) << "the ring does not close";
  return true;
}

TEST(Cycle, RewiringKeepsOneRingAcrossShards) {
  auto db = OpenOrDie(FourShards(FreshDir()));
  {
    auto t = db->Begin();
    for (int i = 0; i < kNodes; ++i) ASSERT_TRUE(t->Put(Node(i), std::to_string((i + 1) % kNodes)).ok());
    ASSERT_TRUE(t->Commit().ok());
  }
  std::atomic<bool> done{false};
  std::atomic<int> rewired{0}, checks{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 8; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937_64 rng(100 + w);
      for (int n = 0; n < 80; ++n) {
        auto t = db->Begin();
        const int a = static_cast<int>(rng() % kNodes);
        auto b = t->Get(Node(a));
        if (!b.ok()) continue;
        auto c = t->Get(Node(std::stoi(*b)));
        if (!c.ok()) continue;
        auto d = t->Get(Node(std::stoi(*c)));
        if (!d.ok()) continue;
        // a -> b -> c -> d  becomes  a -> c -> b -> d
        t->Put(Node(a), *c).IgnoreError();
        t->Put(Node(std::stoi(*c)), *b).IgnoreError();
        t->Put(Node(std::stoi(*b)), *d).IgnoreError();
        if (t->Commit().ok()) rewired++;
      }
    });
  }
  std::thread reader([&] {
    while (!done.load()) {
      auto t = db->Begin();
      if (CheckCycle(t.get())) checks++;
    }
  });
  for (auto& th : threads) th.join();
  done = true;
  reader.join();
  auto t = db->Begin();
  EXPECT_TRUE(CheckCycle(t.get()));
  EXPECT_GT(rewired.load(), 100);
  EXPECT_GT(checks.load(), 0);
}

}  // namespace
}  // namespace shardtx
