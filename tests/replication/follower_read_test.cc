// Issue 17 step 6: follower reads (TxnOptions::follower_read; docs/replicated-2pc-plan.md
// section 6). Three replicated Databases in one process on 127.0.0.1, two shards each ("a..." on
// shard 0, "b..." on shard 1); node 1 has the shortest election timeout, so it leads both. A
// read-only transaction with follower_read runs on any node at the node's safe timestamp: the
// bank's total is exact there while cross-shard transfers commit on the leader; the safe
// timestamp advances while idle (closed-timestamp entries); a node cut off answers kUnavailable
// for a tight max_staleness and reads for an infinite one; writes are refused; a transaction
// prepared and not decided holds the safe timestamp below it; closed timestamps survive a
// reopen and a snapshot install. Waits poll against a deadline.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "replication/link_filter.h"
#include "shardtx/database.h"
#include "tests/replication/db_calls.h"
#include "tests/replication/free_ports.h"
#include "tests/replication/loopback_timing.h"
#include "txn/database_impl.h"
#include "util/mutex.h"

namespace shardtx {
namespace {

using replication::kElectionMs;
using replication::kHeartbeatMs;
using replication::PutOne;
using replication::ReadOne;
using replication::WaitFor;
constexpr uint32_t kShards = 2;
constexpr int kNodes = 3;

txn::DatabaseImpl& Impl(Database& db) { return static_cast<txn::DatabaseImpl&>(db); }

// Three nodes of two replicated shards; node index 0 (id 1) elects itself first. Closed
// timestamps are refreshed at least every four heartbeats (closed_ts_refresh).
class Nodes {
 public:
  explicit Nodes(const std::string& name, std::function<void(Options&)> tweak = {})
      : tweak_(std::move(tweak)) {
    replication::UnblockAllLinks();
    root_ = replication::FreshTestRoot("repl_follower", name);
    members_ = replication::LoopbackMembers(kNodes, kShards);
    dbs_.resize(kNodes);
    for (int i = 0; i < kNodes; ++i) Reopen(i);
  }
  ~Nodes() {
    replication::UnblockAllLinks();
    dbs_.clear();
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  Options OptionsOf(int i) const {
    Options o = replication::LoopbackNodeOptions(absl::StrCat(root_, "/node", i + 1), kShards,
                                                 members_[i].id, "follower", members_);
    o.replication.election_timeout = absl::Milliseconds(i == 0 ? kElectionMs : 4 * kElectionMs);
    o.replication.closed_ts_refresh = absl::Milliseconds(4 * kHeartbeatMs);
    if (tweak_) tweak_(o);
    return o;
  }
  bool Reopen(int i) { return Reopen(i, OptionsOf(i)); }
  bool Reopen(int i, const Options& o) {
    auto db = Database::Open(o);
    EXPECT_TRUE(db.ok()) << db.status();
    if (!db.ok()) return false;
    dbs_[i] = std::move(*db);
    return true;
  }
  void Close(int i) { dbs_[i].reset(); }
  bool open() const {
    for (const auto& db : dbs_) {
      if (db == nullptr) return false;
    }
    return true;
  }
  Database& db(int i) { return *dbs_[i]; }
  uint64_t id(int i) const { return members_[i].id; }

  // Node 0 is the ready leader of both shards, as every node knows.
  bool NodeZeroLeadsAll() {
    return WaitFor([&] {
      for (uint32_t g = 0; g < kShards; ++g) {
        if (!dbs_[0]->Leadership().at(g).ready) return false;
        for (int i = 0; i < kNodes; ++i) {
          if (dbs_[i]->Leadership().at(g).leader_id != id(0)) return false;
        }
      }
      return true;
    });
  }
  uint64_t Applied(int i, uint32_t shard) {
    engine::Shard* s = Impl(db(i)).shard(shard);
    MutexLock l(s->commit_mu());
    return s->raft_applied_locked().index;
  }
  // Every node has applied, on every shard, what node `of` had applied when called.
  bool CaughtUpWith(int of) {
    std::vector<uint64_t> target;
    for (uint32_t g = 0; g < kShards; ++g) target.push_back(Applied(of, g));
    return WaitFor([&] {
      for (int i = 0; i < kNodes; ++i) {
        if (dbs_[i] == nullptr) continue;
        for (uint32_t g = 0; g < kShards; ++g) {
          if (Applied(i, g) < target[g]) return false;
        }
      }
      return true;
    });
  }

 private:
  std::function<void(Options&)> tweak_;
  std::string root_;
  std::vector<ReplicationMember> members_;
  std::vector<std::unique_ptr<Database>> dbs_;
};

engine::Shard::SafeBound BoundOf(Database& db, uint32_t shard) {
  engine::Shard* s = Impl(db).shard(shard);
  MutexLock l(s->commit_mu());
  return s->SafeBoundLocked();
}

// Reads every key in one follower-read transaction on `db` and commits it: key -> value, or
// the first error. *snapshot, if given, gets the transaction's snapshot timestamp.
absl::StatusOr<std::map<std::string, std::string>> FollowerRead(
    Database& db, const std::vector<std::string>& keys,
    absl::Duration max_staleness = absl::InfiniteDuration(), uint64_t* snapshot = nullptr) {
  TxnOptions o;
  o.follower_read = true;
  o.max_staleness = max_staleness;
  std::unique_ptr<Transaction> txn = db.Begin(o);
  if (snapshot != nullptr) *snapshot = txn->snapshot_timestamp();
  std::map<std::string, std::string> out;
  for (const std::string& k : keys) {
    absl::StatusOr<std::string> v = txn->Get(k);
    if (absl::IsNotFound(v.status())) continue;
    if (!v.ok()) return v.status();
    out[k] = *v;
  }
  if (absl::Status s = txn->Commit(); !s.ok()) return s;
  return out;
}

// The keys' values as an ordinary transaction on `db` reads them.
std::map<std::string, std::string> Latest(Database& db, const std::vector<std::string>& keys) {
  std::map<std::string, std::string> out;
  for (const std::string& k : keys) {
    if (std::optional<std::string> v = ReadOne(db, k)) out[k] = *v;
  }
  return out;
}

int64_t Sum(const std::map<std::string, std::string>& values) {
  int64_t total = 0;
  for (const auto& [k, v] : values) {
    int64_t n = 0;
    if (absl::SimpleAtoi(v, &n)) total += n;
  }
  return total;
}

absl::Status Write(Database& db, const std::vector<std::pair<std::string, std::string>>& kv) {
  std::unique_ptr<Transaction> txn = db.Begin();
  for (const auto& [k, v] : kv) {
    if (absl::Status s = txn->Put(k, v); !s.ok()) return s;
  }
  return txn->Commit();
}

// Moves `amount` from account `from` to `to` on `db`; OK if committed.
absl::Status Transfer(Database& db, const std::string& from, const std::string& to, int amount) {
  std::unique_ptr<Transaction> txn = db.Begin();
  absl::StatusOr<std::string> f = txn->Get(from), t = txn->Get(to);
  if (!f.ok()) return f.status();
  if (!t.ok()) return t.status();
  int64_t a = 0, b = 0;
  if (!absl::SimpleAtoi(*f, &a) || !absl::SimpleAtoi(*t, &b)) {
    return absl::InternalError("not a number");
  }
  if (absl::Status s = txn->Put(from, absl::StrCat(a - amount)); !s.ok()) return s;
  if (absl::Status s = txn->Put(to, absl::StrCat(b + amount)); !s.ok()) return s;
  return txn->Commit();
}

// (1) Transfers, cross-shard and single-shard, on the leader; readers on both followers (and a
// follower read on the leader) always see the exact total; once the writers stop, every reader
// sees the last commit (a single-shard one on shard 0: shard 1's bound reaches it only by a
// closed-timestamp entry).
TEST(FollowerRead, BankTotalIsExactOnFollowersAndTheyCatchUpWhileIdle) {
  Nodes c("bank");
  ASSERT_TRUE(c.open());
  ASSERT_TRUE(c.NodeZeroLeadsAll());
  std::vector<std::string> accounts;
  std::vector<std::pair<std::string, std::string>> initial;
  for (const char* prefix : {"a", "b"}) {
    for (int i = 0; i < 4; ++i) {
      accounts.push_back(absl::StrCat(prefix, "acct", i));
      initial.emplace_back(accounts.back(), "100");
    }
  }
  const int64_t kTotal = 100 * static_cast<int64_t>(accounts.size());
  ASSERT_TRUE(Write(c.db(0), initial).ok());
  ASSERT_TRUE(c.CaughtUpWith(0));
  // Every node's safe timestamp reaches the accounts' creation (its commit entries are applied
  // after Commit returned, and a node's reads before that see no account at all).
  for (int n = 0; n < kNodes; ++n) {
    ASSERT_TRUE(WaitFor([&] {
      auto v = FollowerRead(c.db(n), accounts);
      return v.ok() && v->size() == accounts.size();
    })) << n;
  }

  std::atomic<bool> stop{false};
  std::atomic<int> committed{0}, cross{0}, wrong{0};
  std::vector<std::atomic<int>> reads(kNodes);
  std::vector<std::thread> readers;
  Mutex bad_mu;
  std::string bad;
  for (int n = 0; n < kNodes; ++n) {
    readers.emplace_back([&, n] {
      while (!stop.load()) {
        uint64_t snapshot = 0;
        auto values = FollowerRead(c.db(n), accounts, absl::InfiniteDuration(), &snapshot);
        if (absl::IsAborted(values.status())) continue;  // snapshot too old: retry
        if (!values.ok() || values->size() != accounts.size() || Sum(*values) != kTotal) {
          wrong++;
          MutexLock l(&bad_mu);
          bad = absl::StrCat("node ", n, " at ", snapshot, ": ",
                             values.ok() ? absl::StrCat("total ", Sum(*values), " over ",
                                                        values->size(), " accounts")
                                         : values.status().ToString());
          continue;
        }
        reads[n]++;
        std::this_thread::yield();
      }
    });
  }
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      std::mt19937 rng(17 + w);
      for (int t = 0; t < 60; ++t) {
        const size_t i = rng() % accounts.size();
        size_t j = rng() % accounts.size();
        if (j == i) j = (i + 1) % accounts.size();
        if (Transfer(c.db(0), accounts[i], accounts[j], 1 + static_cast<int>(rng() % 9)).ok()) {
          committed++;
          if (accounts[i][0] != accounts[j][0]) cross++;
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  // Readers keep reading while the last commits reach the followers.
  const bool caught_up = c.CaughtUpWith(0);
  stop = true;
  for (auto& t : readers) t.join();
  ASSERT_TRUE(caught_up) << c.db(0).GetStats().ToString() << "\n" << c.db(1).GetStats().ToString();
  EXPECT_EQ(wrong.load(), 0) << bad;
  EXPECT_GT(cross.load(), 0);
  for (int n = 0; n < kNodes; ++n) EXPECT_GT(reads[n].load(), 0) << "node " << n;

  // The last commit writes shard 0 only.
  ASSERT_TRUE(WaitFor([&] { return Transfer(c.db(0), "aacct0", "aacct1", 1).ok(); }));
  const std::map<std::string, std::string> last = Latest(c.db(0), accounts);
  ASSERT_EQ(Sum(last), kTotal);
  for (int n = 0; n < kNodes; ++n) {
    std::map<std::string, std::string> seen;
    EXPECT_TRUE(WaitFor([&] {
      auto v = FollowerRead(c.db(n), accounts);
      if (v.ok()) seen = *v;
      return v.ok() && *v == last;
    })) << "node "
        << n << " reads total " << Sum(seen) << "\n"
        << c.db(n).GetStats().ToString();
  }
  const Stats stats = c.db(1).GetStats();
  EXPECT_GE(stats.follower_reads, static_cast<uint64_t>(reads[1].load()));
  EXPECT_EQ(stats.follower_reads_too_stale, 0u);
  // Idle, refreshed: the staleness is known on each shard (and below the 30 s deadline).
  for (const ShardStatsView& s : stats.shards) {
    EXPECT_TRUE(WaitFor([&] {
      const ShardReplicationStats r = c.db(1).GetStats().shards.at(s.shard).replication;
      return r.follower_staleness_ms >= 0 && r.follower_staleness_ms < 30'000 && r.safe_ts > 0;
    })) << "shard "
        << s.shard;
  }
}

// (2) A follower cut off from both others: once its safe timestamp is older than a tight
// max_staleness, a follower read there is kUnavailable (counted), while an infinite one reads
// what it has; the leader commits on without it.
TEST(FollowerRead, MaxStalenessRefusesACutOffFollowerOnceItIsStale) {
  Nodes c("stale");
  ASSERT_TRUE(c.open());
  ASSERT_TRUE(c.NodeZeroLeadsAll());
  const std::vector<std::string> keys = {"ak", "bk"};
  ASSERT_TRUE(Write(c.db(0), {{"ak", "1"}, {"bk", "1"}}).ok());
  const absl::Duration tight = absl::Milliseconds(20 * kHeartbeatMs);
  // Fresh enough while connected (idle: closed timestamps refreshed every four heartbeats).
  ASSERT_TRUE(WaitFor([&] {
    auto v = FollowerRead(c.db(2), keys, tight);
    return v.ok() && v->size() == 2;
  }));
  absl::Cleanup heal = [&] { replication::UnblockAllLinks(); };
  for (int other : {0, 1}) {
    ASSERT_TRUE(replication::BlockSend(c.id(2), c.id(other), true).ok());
    ASSERT_TRUE(replication::BlockSend(c.id(other), c.id(2), true).ok());
  }
  ASSERT_TRUE(WaitFor([&] { return PutOne(c.db(0), "ak", "2").ok(); }));
  absl::Status refused;
  ASSERT_TRUE(WaitFor([&] {
    refused = FollowerRead(c.db(2), keys, tight).status();
    return absl::IsUnavailable(refused);
  })) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "max_staleness")) << refused;
  auto any = FollowerRead(c.db(2), keys);
  ASSERT_TRUE(any.ok()) << any.status();
  EXPECT_EQ(any->at("ak"), "1");  // what it had: the leader's later commit never reached it
  const Stats stats = c.db(2).GetStats();
  EXPECT_GE(stats.follower_reads_too_stale, 1u);
  for (const ShardStatsView& s : stats.shards) {
    EXPECT_GE(s.replication.follower_staleness_ms, absl::ToInt64Milliseconds(tight) / 2)
        << "shard " << s.shard;
  }
  // The connected follower is fresh.
  EXPECT_TRUE(WaitFor([&] {
    auto v = FollowerRead(c.db(1), keys, tight);
    return v.ok() && v->at("ak") == "2";
  }));
}

// (3) A follower-read transaction is read-only: Put, Delete and Prepare are refused with no
// effect, on a follower, on the leader, and on an unreplicated database; its reads and Commit
// work.
TEST(FollowerRead, WritesAreRefusedWithNoEffect) {
  Nodes c("writes");
  ASSERT_TRUE(c.open());
  ASSERT_TRUE(c.NodeZeroLeadsAll());
  ASSERT_TRUE(Write(c.db(0), {{"ax", "old"}, {"bx", "old"}}).ok());
  for (int n = 0; n < kNodes; ++n) {
    ASSERT_TRUE(WaitFor([&] {
      return ReadOne(c.db(n), "ax") == "old" && ReadOne(c.db(n), "bx") == "old";
    })) << n;
  }
  TxnOptions o;
  o.follower_read = true;
  auto check = [&](Database& db, const std::string& where) {
    std::unique_ptr<Transaction> txn = db.Begin(o);
    EXPECT_TRUE(absl::IsFailedPrecondition(txn->Put("ax", "new"))) << where;
    EXPECT_TRUE(absl::IsFailedPrecondition(txn->Put("ay", "new"))) << where;
    EXPECT_TRUE(absl::IsFailedPrecondition(txn->Delete("bx"))) << where;
    EXPECT_TRUE(absl::IsFailedPrecondition(txn->Prepare("named"))) << where;
    EXPECT_EQ(txn->Get("ay").status().code(), absl::StatusCode::kNotFound) << where;
    EXPECT_TRUE(txn->Commit().ok()) << where;
    EXPECT_EQ(txn->commit_timestamp(), 0u) << where;
  };
  for (int n : {1, 0}) check(c.db(n), absl::StrCat("node ", n));
  for (int n = 0; n < kNodes; ++n) {
    EXPECT_EQ(ReadOne(c.db(n), "ax"), "old") << n;
    EXPECT_EQ(ReadOne(c.db(n), "bx"), "old") << n;
    EXPECT_EQ(ReadOne(c.db(n), "ay"), std::nullopt) << n;
  }
  EXPECT_TRUE(Impl(c.db(0)).two_phase().Names().empty());

  const std::string path = replication::FreshTestRoot("repl_follower", "unreplicated");
  absl::Cleanup rm = [&] {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  };
  Options plain;
  plain.path = path + "/db";
  plain.num_shards = 2;
  plain.lmdb_map_size = 32ull << 20;
  auto db = Database::Open(plain);
  ASSERT_TRUE(db.ok()) << db.status();
  ASSERT_TRUE(Write(**db, {{"ax", "old"}, {"bx", "old"}}).ok());
  check(**db, "unreplicated");
  EXPECT_EQ(ReadOne(**db, "ax"), "old");
  EXPECT_EQ(ReadOne(**db, "ay"), std::nullopt);
}

// (4) A cross-shard transfer whose commit entry on shard 1 is refused past the commit point
// (cross_shard_commit_test's shape): shard 0's part commits everywhere, shard 1's stays prepared
// on every replica. Follower reads never see half of it: the safe timestamp stays below its
// snapshot while later commits and closed timestamps go on on both shards, and its staleness is
// unknown (a finite max_staleness is refused, naming the prepared transaction).
TEST(FollowerRead, APreparedUndecidedTransactionHoldsTheSafeTimestampBelowIt) {
  Nodes c("prepared");
  ASSERT_TRUE(c.open());
  ASSERT_TRUE(c.NodeZeroLeadsAll());
  const std::vector<std::string> pair = {"ap", "bp"};
  ASSERT_TRUE(Write(c.db(0), {{"ap", "100"}, {"bp", "100"}}).ok());
  ASSERT_TRUE(c.CaughtUpWith(0));
  // Every node reads the pair at its safe timestamp before.
  for (int n = 0; n < kNodes; ++n) {
    ASSERT_TRUE(WaitFor([&] {
      auto v = FollowerRead(c.db(n), pair);
      return v.ok() && v->size() == 2;
    })) << n;
  }
  const auto prepared_at = std::chrono::steady_clock::now();
  // Refused for the rest of the test: the leader's in-doubt resolver proposes the same commit
  // entry again through this hook, so the part stays prepared. Set once: the resolver's thread
  // calls the hook, which must not be replaced meanwhile.
  Impl(c.db(0)).coordinator().SetReplicatedProposeHookForTesting(
      [](uint32_t shard, uint8_t record) {
        return shard == 1 && record == engine::kCommitPrepared
                   ? absl::UnavailableError("test: refused")
                   : absl::OkStatus();
      });
  absl::Status s = Write(c.db(0), {{"ap", "50"}, {"bp", "150"}});
  ASSERT_TRUE(s.ok()) << s;
  // Shard 0's part is applied everywhere (an ordinary read there sees it).
  for (int n = 0; n < kNodes; ++n) {
    ASSERT_TRUE(WaitFor([&] { return ReadOne(c.db(n), "ap") == "50"; })) << n;
  }
  // Later commits on both shards, and closed timestamps forced on both.
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(WaitFor([&] { return Write(c.db(0), {{"aq", absl::StrCat(i)}}).ok(); }));
    ASSERT_TRUE(WaitFor([&] { return Write(c.db(0), {{"bq", absl::StrCat(i)}}).ok(); }));
  }
  for (uint32_t g = 0; g < kShards; ++g) {
    ASSERT_TRUE(WaitFor([&] { return Impl(c.db(0)).follower_reads()->CloseShard(g, true).ok(); }));
  }
  ASSERT_TRUE(c.CaughtUpWith(0));
  for (int n = 0; n < kNodes; ++n) {
    for (int round = 0; round < 20; ++round) {
      auto v = FollowerRead(c.db(n), pair);
      ASSERT_TRUE(v.ok()) << v.status();
      ASSERT_EQ(v->size(), 2u);
      EXPECT_EQ(v->at("ap"), "100") << "node " << n << " saw half of the transfer";
      EXPECT_EQ(v->at("bp"), "100") << "node " << n;
    }
    auto q = FollowerRead(c.db(n), {"bq"});
    ASSERT_TRUE(q.ok());
    EXPECT_NE(q->count("bq") ? q->at("bq") : "-", "3") << "node " << n << ": held below";
    // Its staleness counts from a closed timestamp before the transfer's prepare: at least the
    // time since; a bound of half that is refused, naming the prepared transaction.
    const absl::Duration since = absl::FromChrono(std::chrono::steady_clock::now() - prepared_at);
    const ShardReplicationStats r = c.db(n).GetStats().shards.at(1).replication;
    EXPECT_TRUE(r.follower_staleness_ms == -1 ||
                r.follower_staleness_ms >= absl::ToInt64Milliseconds(since))
        << "node " << n << ": " << r.follower_staleness_ms;
    absl::Status refused = FollowerRead(c.db(n), pair, since / 2).status();
    EXPECT_TRUE(absl::IsUnavailable(refused)) << "node " << n << ": " << refused;
    EXPECT_TRUE(absl::StrContains(refused.message(), "prepared")) << refused;
  }
  // Not asserted here: once the resolver commits the part, it does so at a new commit timestamp
  // (docs/replicated-2pc-plan.md, step 4's "Commit timestamp" gap), so a read between the two
  // timestamps can see shard 0's part without shard 1's.
}

// (5) A closed timestamp survives a follower's reopen (redone from its WAL, and from the store's
// row after a checkpoint) and a snapshot install (the leader's row in the copy).
TEST(FollowerRead, ClosedTimestampsSurviveReopenAndSnapshotInstall) {
  Nodes c("survive", [](Options& o) {
    o.replication.snapshot_threshold = 8;
    o.replication.snapshot_trailing = 0;
  });
  ASSERT_TRUE(c.open());
  ASSERT_TRUE(c.NodeZeroLeadsAll());
  txn::FollowerReads* closer = Impl(c.db(0)).follower_reads();
  // A commit on shard 0, then a closed timestamp on shard 1 above it.
  ASSERT_TRUE(Write(c.db(0), {{"a0", "x"}}).ok());
  ASSERT_TRUE(WaitFor([&] { return closer->CloseShard(1, true).ok(); }));
  ASSERT_TRUE(WaitFor([&] { return BoundOf(c.db(0), 1).closed_ts > 0; }));
  ASSERT_TRUE(c.CaughtUpWith(0));
  for (bool checkpoint : {false, true}) {
    // Opened so that its Close checkpoints or not: the bound then comes from the WAL's redo, or
    // from the store's row.
    Options o = c.OptionsOf(2);
    o.checkpoint_on_close = checkpoint;
    c.Close(2);
    ASSERT_TRUE(c.Reopen(2, o));
    ASSERT_TRUE(c.CaughtUpWith(0));
    const engine::Shard::SafeBound before = BoundOf(c.db(2), 1);
    ASSERT_GT(before.closed_ts, 0u);
    c.Close(2);
    ASSERT_TRUE(c.Reopen(2, o));
    const engine::Shard::SafeBound after = BoundOf(c.db(2), 1);
    EXPECT_GE(after.closed_ts, before.closed_ts) << "checkpoint " << checkpoint;
    EXPECT_GE(after.ts, before.closed_ts) << "checkpoint " << checkpoint;
    EXPECT_GE(after.closed_time_us, before.closed_time_us) << "checkpoint " << checkpoint;
    ASSERT_TRUE(c.NodeZeroLeadsAll());
  }
  // Node 3 is closed while the leader closes shard 1 and then compacts its log past that entry
  // (commits on shard 1 past the snapshot threshold): it catches up by a snapshot install.
  c.Close(2);
  ASSERT_TRUE(Write(c.db(0), {{"a1", "y"}}).ok());
  ASSERT_TRUE(WaitFor([&] { return closer->CloseShard(1, true).ok(); }));
  const uint64_t earlier = BoundOf(c.db(0), 1).closed_ts;
  uint64_t leader_closed = 0;
  ASSERT_TRUE(WaitFor([&] {
    leader_closed = BoundOf(c.db(0), 1).closed_ts;
    return leader_closed > earlier;
  }));
  for (int i = 0; i < 24; ++i) {
    ASSERT_TRUE(WaitFor([&] { return PutOne(c.db(0), "b" + std::to_string(i), "z").ok(); }));
  }
  ASSERT_TRUE(Impl(c.db(0)).Checkpoint().ok());
  ASSERT_TRUE(c.Reopen(2));
  ASSERT_TRUE(c.CaughtUpWith(0));
  EXPECT_TRUE(WaitFor([&] {
    return c.db(2).GetStats().shards.at(1).replication.snapshots_installed >= 1;
  })) << c.db(2).GetStats().ToString();
  EXPECT_GE(BoundOf(c.db(2), 1).closed_ts, leader_closed);
}

}  // namespace
}  // namespace shardtx
