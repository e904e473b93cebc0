// Issue 16's partitions over real sockets: three replicated Databases in one process on
// 127.0.0.1 (one shard each, its Raft group on port P+1), cut apart by the raft_uv link filter
// (replication/link_filter.h, testing library only). An isolated leader, and a leader that can
// send but not receive: the other two elect a new leader and keep committing, the old leader
// acknowledges nothing (its commit ends kUnknown or kUnavailable, never OK, and the entry it
// proposed is nowhere after healing), and once healed it follows the new leader and every
// replica's contents are identical. Each fails if the filter does nothing (no new leader; the
// old leader's commit succeeds). Waits poll Leadership() or reads against a deadline.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
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

namespace shardtx {
namespace {

using replication::kElectionMs;
using replication::kHeartbeatMs;
using replication::WaitFor;
constexpr int kNodes = 3;

using replication::BlockSend;
using replication::PutOne;
using replication::ReadOne;

// Three single-shard replicated Databases, ids 1..3; the link filter is cleared before and after.
class Trio {
 public:
  explicit Trio(const std::string& name) {
    replication::UnblockAllLinks();
    std::error_code ec;
    const std::string base =
        std::filesystem::is_directory("/dev/shm", ec) ? "/dev/shm" : ::testing::TempDir();
    root_ = absl::StrCat(base, "/shardtx_repl_partition_p", ::getpid(), "_", name);
    std::filesystem::remove_all(root_, ec);
    std::filesystem::create_directories(root_, ec);
    std::vector<int> used;
    for (uint64_t id = 1; id <= kNodes; ++id) {
      const int p = replication::FreePortRange(2, used);
      used.insert(used.end(), {p, p + 1});
      members_.push_back({id, absl::StrCat("127.0.0.1:", p)});
    }
    for (int i = 0; i < kNodes; ++i) {
      Options o;
      o.path = absl::StrCat(root_, "/node", i + 1);
      o.num_shards = 1;
      o.wal_segment_size = 256 << 10;
      o.max_txn_bytes = 64 << 10;
      o.lmdb_map_size = 32ull << 20;
      o.replication.node_id = members_[i].id;
      o.replication.cluster_id = "partition";
      o.replication.members = members_;
      o.replication.election_timeout = absl::Milliseconds(kElectionMs);
      o.replication.heartbeat = absl::Milliseconds(kHeartbeatMs);
      o.replication.gather_leaders = false;  // leaders stay where elected (gather_test.cc)
      auto db = Database::Open(o);
      EXPECT_TRUE(db.ok()) << db.status();
      if (db.ok()) dbs_.push_back(std::move(*db));
    }
  }
  ~Trio() {
    replication::UnblockAllLinks();
    dbs_.clear();
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  bool open() const { return dbs_.size() == kNodes; }
  Database& db(int i) { return *dbs_[i]; }
  uint64_t id(int i) const { return members_[i].id; }

  Database::ShardLeadership Of(int i) { return dbs_[i]->Leadership().at(0); }
  // The ready leader among `among` once each of them names it; nullopt at the deadline.
  std::optional<int> Leader(const std::vector<int>& among = {0, 1, 2}) {
    std::optional<int> leader;
    const bool agreed = WaitFor([&] {
      leader.reset();
      for (int i : among) {
        if (Of(i).ready) leader = i;
      }
      if (!leader.has_value()) return false;
      for (int i : among) {
        if (Of(i).leader_id != id(*leader)) return false;
      }
      return true;
    });
    return agreed ? leader : std::nullopt;
  }

  // Once all three have applied the same Raft index twice in a row: each one's digest of its
  // shard at that index (equal indexes, same committed prefix: the digests must be equal).
  std::vector<replication::ShardDigest> DigestsWhenSettled() {
    std::vector<std::pair<uint64_t, replication::ShardDigest>> last;
    std::vector<replication::ShardDigest> out;
    WaitFor([&] {
      std::vector<std::pair<uint64_t, replication::ShardDigest>> now;
      for (int i = 0; i < kNodes; ++i) {
        engine::Shard* shard = static_cast<txn::DatabaseImpl&>(db(i)).shard(0);
        auto applied = [shard] {
          MutexLock l(shard->commit_mu());
          return shard->raft_applied_locked().index;
        };
        const uint64_t before = applied();
        absl::StatusOr<replication::ShardDigest> d = replication::DigestOf(*shard);
        if (!d.ok() || applied() != before || (i > 0 && before != now[0].first)) return false;
        now.emplace_back(before, *d);
      }
      const bool settled = now == last;
      last = std::move(now);
      return settled;
    });
    for (const auto& [index, digest] : last) out.push_back(digest);
    return out;
  }

 private:
  std::string root_;
  std::vector<ReplicationMember> members_;
  std::vector<std::unique_ptr<Database>> dbs_;
};

// The other two nodes.
std::vector<int> Others(int i) {
  std::vector<int> out;
  for (int j = 0; j < kNodes; ++j) {
    if (j != i) out.push_back(j);
  }
  return out;
}

// Cuts the leader off as `cut` says, commits on it at once (that commit must not succeed), waits
// for a new leader among the others in a later term that commits, heals, and checks that the
// old leader follows, holds what the new one committed, and that the three digests agree. The
// old leader's cut-off entry is nowhere if it `can_send` nothing; if its followers could receive
// it, the new leader may have committed it (then the commit had answered kUnknown, and every
// replica holds it); a commit refused kUnavailable had no effect either way.
void PartitionLeaderAndHeal(
    Trio& t, bool can_send,
    const std::function<void(uint64_t leader, uint64_t other, bool blocked)>& cut) {
  ASSERT_TRUE(t.open());
  std::optional<int> leader = t.Leader();
  ASSERT_TRUE(leader.has_value());
  const int old = *leader;
  ASSERT_TRUE(PutOne(t.db(old), "before", "1").ok());
  const uint64_t old_term = t.Of(old).term;
  const replication::LinkFilterCounters counters_before = replication::GetLinkFilterCounters();
  absl::Cleanup heal = [&] {
    for (int other : Others(old)) cut(t.id(old), t.id(other), false);
  };
  for (int other : Others(old)) cut(t.id(old), t.id(other), true);

  // Proposed after the cut: its AppendEntries cannot reach a follower, so it can never commit.
  const absl::Status stuck = PutOne(t.db(old), "isolated", "x");
  EXPECT_TRUE(absl::IsUnknown(stuck) || absl::IsUnavailable(stuck)) << stuck;

  std::optional<int> next = t.Leader(Others(old));
  ASSERT_TRUE(next.has_value()) << "the other two elected no leader";
  EXPECT_GT(t.Of(*next).term, old_term);
  ASSERT_TRUE(PutOne(t.db(*next), "after", "2").ok());
  // Deposed, still cut off: refused (it knows it does not lead) or unknown, never OK.
  const absl::Status late = PutOne(t.db(old), "late", "y");
  EXPECT_TRUE(absl::IsUnknown(late) || absl::IsUnavailable(late)) << late;
  const replication::LinkFilterCounters counters = replication::GetLinkFilterCounters();
  EXPECT_GT(counters.cut_streams, counters_before.cut_streams);
  EXPECT_GT(counters.refused_connects + counters.refused_accepts,
            counters_before.refused_connects + counters_before.refused_accepts);

  std::move(heal).Invoke();
  std::optional<int> healed = t.Leader();
  ASSERT_TRUE(healed.has_value());
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(WaitFor([&] { return ReadOne(t.db(i), "after") == "2"; })) << "node " << i;
    EXPECT_EQ(ReadOne(t.db(i), "before"), "1") << "node " << i;
  }
  ASSERT_TRUE(PutOne(t.db(*healed), "healed", "3").ok());
  std::vector<replication::ShardDigest> d = t.DigestsWhenSettled();
  ASSERT_EQ(d.size(), 3u) << "the replicas did not settle on one applied index";
  EXPECT_EQ(d[1], d[0]);
  EXPECT_EQ(d[2], d[0]);
  const std::optional<std::string> isolated = ReadOne(t.db(*healed), "isolated");
  if (!can_send || absl::IsUnavailable(stuck)) {
    EXPECT_EQ(isolated, std::nullopt);
  }
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_EQ(ReadOne(t.db(i), "isolated"), isolated) << "node " << i;
    if (absl::IsUnavailable(late) || !can_send) {
      EXPECT_EQ(ReadOne(t.db(i), "late"), std::nullopt) << "node " << i;
    }
    EXPECT_EQ(ReadOne(t.db(i), "healed"), "3") << "node " << i;
  }
}

TEST(Partition, IsolatedLeaderAcknowledgesNothingAndRejoins) {
  Trio t("isolated");
  PartitionLeaderAndHeal(t, /*can_send=*/false, [](uint64_t leader, uint64_t other, bool blocked) {
    ASSERT_TRUE(BlockSend(leader, other, blocked).ok());
    ASSERT_TRUE(BlockSend(other, leader, blocked).ok());
  });
}

// One way: the leader's messages reach the followers (they keep hearing its heartbeats), their
// answers never reach it. It steps down when it has not heard from a majority for an election
// timeout (libraft's leader check), and then the followers elect one of themselves. Its entry
// proposed after the cut reached them: the new leader may commit it (its commit said kUnknown).
TEST(Partition, LeaderThatCannotHearStepsDownAndRejoins) {
  Trio t("one_way");
  PartitionLeaderAndHeal(t, /*can_send=*/true, [](uint64_t leader, uint64_t other, bool blocked) {
    ASSERT_TRUE(BlockSend(other, leader, blocked).ok());
  });
}

// The table holds 64 (server, peer) pairs; one more is refused with a clear error, nothing
// changed; unblocking a pair's last direction frees its slot, and UnblockAllLinks frees all.
TEST(Partition, LinkTableIsBoundedAndFreedByUnblocking) {
  replication::UnblockAllLinks();
  using replication::LinkDirection;
  absl::Status s;
  for (uint64_t peer = 100; peer < 164 && s.ok(); ++peer) {
    s = replication::SetLinkBlocked(7, peer, LinkDirection::kOut, true);
  }
  EXPECT_TRUE(s.ok()) << s;
  s = replication::SetLinkBlocked(7, 999, LinkDirection::kIn, true);
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_TRUE(replication::SetLinkBlocked(7, 100, LinkDirection::kIn, true).ok());  // its pair
  EXPECT_TRUE(replication::SetLinkBlocked(7, 100, LinkDirection::kOut, false).ok());
  EXPECT_FALSE(replication::SetLinkBlocked(7, 999, LinkDirection::kIn, true).ok());  // 100 still in
  EXPECT_TRUE(replication::SetLinkBlocked(7, 100, LinkDirection::kIn, false).ok());
  EXPECT_TRUE(replication::SetLinkBlocked(7, 999, LinkDirection::kIn, true).ok());
  replication::UnblockAllLinks();
  for (uint64_t peer = 200; peer < 264; ++peer) {
    ASSERT_TRUE(replication::SetLinkBlocked(8, peer, LinkDirection::kOut, true).ok()) << peer;
  }
  replication::UnblockAllLinks();
}

}  // namespace
}  // namespace shardtx
