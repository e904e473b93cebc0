// The cluster of the issue 17 replication tests (cross_shard_commit_test.cc, step 2;
// named_prepare_test.cc, step 3; resolver_test.cc, step 4): three replicated Databases in one
// process on 127.0.0.1, two shards each ("a..." on shard 0, anything else on shard 1); node 1 has
// the shortest election timeout, so it leads both shards. Nodes can be closed and reopened. With
// one-call writes, digests and waits that poll against a deadline.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "replication/link_filter.h"
#include "replication/shard_machine.h"
#include "shardtx/database.h"
#include "tests/replication/db_calls.h"
#include "tests/replication/free_ports.h"
#include "tests/replication/loopback_timing.h"
#include "txn/database_impl.h"
#include "util/mutex.h"

namespace shardtx::replication::cross {

inline constexpr uint32_t kShards = 2;
inline constexpr int kNodes = 3;

inline txn::DatabaseImpl& Impl(Database& db) { return static_cast<txn::DatabaseImpl&>(db); }

// Three nodes of two replicated shards; node index 0 (id 1) elects itself first.
class Cluster {
 public:
  // `gather`: ReplicationOptions::gather_leaders (off: a leadership moved by hand stays).
  // `kind`: the cluster id, and the test root's directory (repl_<kind>).
  explicit Cluster(const std::string& name, bool gather = true, const std::string& kind = "cross") {
    replication::UnblockAllLinks();
    root_ = replication::FreshTestRoot(absl::StrCat("repl_", kind), name);
    members_ = replication::LoopbackMembers(kNodes, kShards);
    dbs_.resize(kNodes);
    for (int i = 0; i < kNodes; ++i) {
      Options o = replication::LoopbackNodeOptions(absl::StrCat(root_, "/node", i + 1), kShards,
                                                   members_[i].id, kind, members_);
      // Node 1 times out first: it leads both shards (the others wait four times as long).
      o.replication.election_timeout = absl::Milliseconds(i == 0 ? kElectionMs : 4 * kElectionMs);
      o.replication.gather_leaders = gather;
      options_.push_back(o);
      Reopen(i);
    }
  }
  ~Cluster() {
    replication::UnblockAllLinks();
    dbs_.clear();
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  // Every node is open (they all opened, and none is closed).
  bool open() const {
    for (const auto& db : dbs_) {
      if (db == nullptr) return false;
    }
    return true;
  }
  // Opens node i (closed, or not yet opened) again with its options; false if that failed.
  bool Reopen(int i) {
    auto db = Database::Open(options_[i]);
    EXPECT_TRUE(db.ok()) << db.status();
    if (!db.ok()) return false;
    // Installed before any commit: the coordinator calls it from committers and from its
    // in-doubt resolver's thread, so a test changes what it does through SetProposeHook.
    Impl(**db).coordinator().SetReplicatedProposeHookForTesting(
        [this, i](uint32_t shard, uint8_t record) {
          MutexLock l(&hook_mu_);
          return hooks_[i] ? hooks_[i](shard, record) : absl::OkStatus();
        });
    dbs_[i] = std::move(*db);
    return true;
  }
  // Node i's Coordinator::SetReplicatedProposeHookForTesting from now on (null: none). `hook`
  // runs under shard commit locks and must not call this.
  void SetProposeHook(int i, std::function<absl::Status(uint32_t shard, uint8_t record)> hook) {
    MutexLock l(&hook_mu_);
    hooks_[i] = std::move(hook);
  }
  Database& db(int i) { return *dbs_[i]; }
  // Closes node i (as a crash that loses nothing durable); it is skipped by the digest and
  // catch-up waits until it is reopened.
  void Close(int i) { dbs_[i].reset(); }
  bool up(int i) const { return dbs_[i] != nullptr; }
  uint64_t id(int i) const { return members_[i].id; }
  const std::string& address(int i) const { return members_[i].address; }

  // The ready leader of `shard` among `among` once each of them names it; nullopt at the
  // deadline.
  std::optional<int> Leader(uint32_t shard, const std::vector<int>& among = {0, 1, 2}) {
    std::optional<int> leader;
    const bool agreed = WaitFor([&] {
      leader.reset();
      for (int i : among) {
        if (dbs_[i]->Leadership().at(shard).ready) leader = i;
      }
      if (!leader.has_value()) return false;
      for (int i : among) {
        if (dbs_[i]->Leadership().at(shard).leader_id != id(*leader)) return false;
      }
      return true;
    });
    return agreed ? leader : std::nullopt;
  }
  // Node 0 leads both shards, as every node knows.
  bool NodeZeroLeadsAll() { return Leader(0) == 0 && Leader(1) == 0; }

  uint64_t Applied(int i, uint32_t shard) {
    engine::Shard* s = Impl(db(i)).shard(shard);
    MutexLock l(s->commit_mu());
    return s->raft_applied_locked().index;
  }
  // Once all three have applied the same Raft index of every shard twice in a row: each node's
  // digests, by shard. Empty if they did not settle.
  std::vector<std::vector<replication::ShardDigest>> DigestsWhenSettled() {
    using Seen = std::vector<std::pair<uint64_t, replication::ShardDigest>>;
    std::vector<Seen> last;
    const bool settled = WaitFor([&] {
      std::vector<Seen> now(kNodes);
      int first = -1;  // the first node up: the others must have applied what it has
      for (int i = 0; i < kNodes; ++i) {
        if (!up(i)) continue;
        for (uint32_t g = 0; g < kShards; ++g) {
          const uint64_t before = Applied(i, g);
          auto d = replication::DigestOf(*Impl(db(i)).shard(g));
          if (!d.ok() || Applied(i, g) != before) return false;
          if (first >= 0 && before != now[first][g].first) return false;
          now[i].emplace_back(before, *d);
        }
        if (first < 0) first = i;
      }
      const bool same = now == last;
      last = std::move(now);
      return same;
    });
    std::vector<std::vector<replication::ShardDigest>> out;
    if (!settled) return out;
    for (const Seen& node : last) {
      out.emplace_back();
      for (const auto& [index, digest] : node) out.back().push_back(digest);
    }
    return out;
  }
  // Every node has applied, on every shard, what node `of` had applied when called.
  bool CaughtUpWith(int of) {
    std::vector<uint64_t> target;
    for (uint32_t g = 0; g < kShards; ++g) target.push_back(Applied(of, g));
    return WaitFor([&] {
      for (int i = 0; i < kNodes; ++i) {
        for (uint32_t g = 0; g < kShards && up(i); ++g) {
          if (Applied(i, g) < target[g]) return false;
        }
      }
      return true;
    });
  }
  // No transaction is prepared on node i (every part resolved).
  bool NothingPrepared(int i) { return Impl(db(i)).coordinator().state().AllPrepared().empty(); }
  // Every node up reads `key` = `value` and holds nothing prepared (a commit's entries applied
  // everywhere), before the deadline.
  bool SettledEverywhere(const std::string& key, const std::string& value) {
    return WaitFor([&] {
      for (int i = 0; i < kNodes; ++i) {
        if (up(i) && (ReadOne(db(i), key) != value || !NothingPrepared(i))) return false;
      }
      return true;
    });
  }

 private:
  std::string root_;
  std::vector<ReplicationMember> members_;
  Mutex hook_mu_;
  std::function<absl::Status(uint32_t, uint8_t)> hooks_[kNodes] ABSL_GUARDED_BY(hook_mu_);
  std::vector<Options> options_;
  std::vector<std::unique_ptr<Database>> dbs_;  // null: closed; last: closed before the hooks go
};

// Writes every key = value in one transaction on `db`; its id in *id.
inline absl::Status Write(Database& db, const std::vector<std::pair<std::string, std::string>>& kv,
                          uint64_t* id = nullptr) {
  std::unique_ptr<Transaction> txn = db.Begin();
  if (id != nullptr) *id = txn->id();
  for (const auto& [k, v] : kv) {
    if (absl::Status s = txn->Put(k, v); !s.ok()) return s;
  }
  return txn->Commit();
}

// Write on node `node`, with shard 1's entry holding `record` refused by the coordinator's test
// hook (as when leadership of shard 1 moves just before it is proposed), also when the in-doubt
// resolver proposes it, until Write returns.
inline absl::Status WriteRefusing(Cluster& c, int node, uint8_t record,
                                  const std::vector<std::pair<std::string, std::string>>& kv,
                                  uint64_t* id) {
  c.SetProposeHook(node, [record](uint32_t shard, uint8_t r) {
    return shard == 1 && r == record ? absl::UnavailableError("test: shard 1 is led elsewhere now")
                                     : absl::OkStatus();
  });
  absl::Status s = Write(c.db(node), kv, id);
  c.SetProposeHook(node, nullptr);
  return s;
}

inline void ExpectSameDigests(Cluster& c) {
  auto d = c.DigestsWhenSettled();
  ASSERT_EQ(d.size(), static_cast<size_t>(kNodes)) << "the replicas did not settle";
  int first = -1;
  for (int i = 0; i < kNodes; ++i) {
    if (!c.up(i)) continue;
    if (first < 0) first = i;
    EXPECT_EQ(d[i], d[first]) << "node " << i;
  }
}

// Once every shard has a ready leader again, commits a key on shard 0's; every node reads it.
inline void CommitOnceHealed(Cluster& c) {
  for (uint32_t g = 0; g < kShards; ++g) ASSERT_TRUE(c.Leader(g).has_value()) << g;
  std::optional<int> l0 = c.Leader(0);
  ASSERT_TRUE(l0.has_value());
  ASSERT_TRUE(replication::PutOne(c.db(*l0), "a9", "healed").ok());
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(WaitFor([&] { return ReadOne(c.db(i), "a9") == "healed"; })) << "node " << i;
  }
}

inline std::vector<int> Others(int i) {
  std::vector<int> out;
  for (int j = 0; j < kNodes; ++j) {
    if (j != i) out.push_back(j);
  }
  return out;
}

}  // namespace shardtx::replication::cross
