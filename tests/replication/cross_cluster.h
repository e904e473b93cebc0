// The three-node cluster of two replicated shards that the issue 17 tests drive (cross-shard
// commits, named prepares): three Databases in one process on 127.0.0.1, "a..." on shard 0 and
// anything else on shard 1; node index 0 (id 1) has the shortest election timeout, so it leads
// both shards. Nodes can be closed and reopened. Waits poll against a deadline (WaitFor).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "replication/link_filter.h"
#include "replication/shard_machine.h"
#include "shardtx/database.h"
#include "tests/replication/free_ports.h"
#include "tests/replication/loopback_timing.h"
#include "txn/database_impl.h"
#include "util/mutex.h"

namespace shardtx::replication::cross {

constexpr uint32_t kShards = 2;
constexpr int kNodes = 3;

inline txn::DatabaseImpl& Impl(Database& db) { return static_cast<txn::DatabaseImpl&>(db); }

// Three nodes of two replicated shards; node index 0 (id 1) elects itself first.
class Cluster {
 public:
  // `gather`: ReplicationOptions::gather_leaders (off: a leadership moved by hand stays).
  // `kind`: the cluster id, and the test root's directory (repl_<kind>).
  explicit Cluster(const std::string& name, bool gather = true, const std::string& kind = "cross") {
    UnblockAllLinks();
    root_ = FreshTestRoot(absl::StrCat("repl_", kind), name);
    members_ = LoopbackMembers(kNodes, kShards);
    dbs_.resize(kNodes);
    for (int i = 0; i < kNodes; ++i) {
      Options o = LoopbackNodeOptions(absl::StrCat(root_, "/node", i + 1), kShards, members_[i].id,
                                      kind, members_);
      // Node 1 times out first: it leads both shards (the others wait four times as long).
      o.replication.election_timeout = absl::Milliseconds(i == 0 ? kElectionMs : 4 * kElectionMs);
      o.replication.gather_leaders = gather;
      options_.push_back(o);
      Reopen(i);
    }
  }
  ~Cluster() {
    UnblockAllLinks();
    dbs_.clear();
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  bool open() const {
    for (const auto& db : dbs_) {
      if (db == nullptr) return false;
    }
    return true;
  }
  // Closes node i (its Database is destroyed; a closed node is down for the others).
  void Close(int i) { dbs_[i].reset(); }
  // Opens node i (closed, or not yet opened) again with its options; false if that failed.
  bool Reopen(int i) {
    auto db = Database::Open(options_[i]);
    EXPECT_TRUE(db.ok()) << db.status();
    if (db.ok()) dbs_[i] = std::move(*db);
    return db.ok();
  }
  Database& db(int i) { return *dbs_[i]; }
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
  std::vector<std::vector<ShardDigest>> DigestsWhenSettled() {
    using Seen = std::vector<std::pair<uint64_t, ShardDigest>>;
    std::vector<Seen> last;
    const bool settled = WaitFor([&] {
      std::vector<Seen> now(kNodes);
      for (int i = 0; i < kNodes; ++i) {
        for (uint32_t g = 0; g < kShards; ++g) {
          const uint64_t before = Applied(i, g);
          auto d = DigestOf(*Impl(db(i)).shard(g));
          if (!d.ok() || Applied(i, g) != before) return false;
          if (i > 0 && before != now[0][g].first) return false;
          now[i].emplace_back(before, *d);
        }
      }
      const bool same = now == last;
      last = std::move(now);
      return same;
    });
    std::vector<std::vector<ShardDigest>> out;
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
        for (uint32_t g = 0; g < kShards; ++g) {
          if (Applied(i, g) < target[g]) return false;
        }
      }
      return true;
    });
  }
  // No transaction is prepared on node i (every part resolved).
  bool NothingPrepared(int i) { return Impl(db(i)).coordinator().state().AllPrepared().empty(); }

 private:
  std::string root_;
  std::vector<ReplicationMember> members_;
  std::vector<Options> options_;
  std::vector<std::unique_ptr<Database>> dbs_;  // null: closed
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

// Once the replicas settled: every node's digests of every shard are equal.
inline void ExpectSameDigests(Cluster& c) {
  auto d = c.DigestsWhenSettled();
  ASSERT_EQ(d.size(), static_cast<size_t>(kNodes)) << "the replicas did not settle";
  EXPECT_EQ(d[1], d[0]);
  EXPECT_EQ(d[2], d[0]);
}

// The node indexes other than i.
inline std::vector<int> Others(int i) {
  std::vector<int> out;
  for (int j = 0; j < kNodes; ++j) {
    if (j != i) out.push_back(j);
  }
  return out;
}

}  // namespace shardtx::replication::cross
