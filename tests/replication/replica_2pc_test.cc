// A replica's redo of the transaction layer's 2PC records (docs/replicated-2pc-plan.md, step 1):
// Databases of two shards whose shards are ShardReplicas fed released entries by the test (no
// group, no leader: StateMachine::Release, as a group would call it). Applying gives the state
// crash recovery gives from the same records; the replica reopened (recovery of its own WAL)
// keeps it and resolves nothing itself; a snapshot install replaces the prepared state of the
// installed shard with the copy's; malformed 2PC records are refused before the WAL.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/log_record.h"
#include "gtest/gtest.h"
#include "replication/shard_machine.h"
#include "replication/shard_replica.h"
#include "replication/snapshot_stream.h"
#include "shardtx/database.h"
#include "tests/replication/leader_cluster.h"
#include "tests/support/test_db.h"
#include "txn/database_impl.h"
#include "txn/txn_records.h"
#include "util/coding.h"
#include "util/mutex.h"

namespace shardtx::replication {
namespace {

using engine::Timestamp;
using engine::Write;
using engine::WriteOp;
using ::shardtx::testing::FreshDir;
using Outcome = Database::Outcome;

// The entries' proposer (no replica here), as a ShardReplica's origin: server id 0x5eed (16 bits)
// above a 32-bit nonce. The entries are in the payload format of before packing (no mark, no
// length), which a ShardReplica still decodes.
constexpr uint64_t kLeaderOrigin = 0x00005eed00000001;
constexpr char kCluster[] = "replica-2pc";
constexpr uint32_t kShards = 2;

// The leader commit tests' databases (leader_cluster.h), with checkpoints only when asked.
Options NodeOptions(const std::string& path) {
  Options o = DbOptions(path, kShards);
  o.checkpoint_wal_bytes = 0;
  o.checkpoint_overlay_bytes = 0;
  o.checkpoint_interval = absl::ZeroDuration();
  return o;
}

// One engine record of an entry.
struct Rec {
  uint8_t type = 0;
  std::string payload;
};

Rec Prepare(uint64_t id, const std::string& name, std::vector<uint32_t> participants,
            std::vector<Write> writes, std::vector<std::string> read_keys = {}) {
  txn::PrepareRecord r{
      id, name, 1, std::move(participants), std::move(writes), std::move(read_keys), {}};
  return {engine::kPrepare, txn::EncodePrepare(r)};
}
Rec CommitPrepared(uint64_t id, Timestamp ts) {
  return {engine::kCommitPrepared, txn::EncodeTxnTs(id, ts)};
}
Rec AbortPrepared(uint64_t id) { return {engine::kAbortPrepared, txn::EncodeTxn(id)}; }
Rec Decision(uint64_t id, Timestamp ts, std::vector<uint32_t> shards) {
  return {engine::kDecision, txn::EncodeDecision({id, true, ts, std::move(shards)})};
}
Rec Commit(uint64_t id, Timestamp ts, const std::vector<Write>& writes) {
  return {engine::kCommit, engine::EncodeCommit(ts, id, writes)};
}
Write Put(const std::string& key, const std::string& value) { return {WriteOp::kPut, key, value}; }

// The leader's logs, one per shard: entry i of shard s is at raft index i + 1, term 1.
class Logs {
 public:
  // Appends an entry of `records` to shard `shard`'s log; returns its index.
  uint64_t Append(uint32_t shard, const std::vector<Rec>& records) {
    std::string entry;
    PutFixed64(&entry, kLeaderOrigin);
    PutFixed64(&entry, logs_[shard].size() + 1);
    for (const Rec& r : records) engine::AppendEntryRecord(&entry, r.type, r.payload);
    logs_[shard].push_back(std::move(entry));
    return logs_[shard].size();
  }
  ReleasedEntry At(uint32_t shard, uint64_t index) const {
    return ReleasedEntry{1, index, logs_[shard][index - 1]};
  }
  uint64_t size(uint32_t shard) const { return logs_[shard].size(); }

 private:
  std::vector<std::string> logs_[kShards];
};

// A replica node: a Database whose shards are each a ShardReplica (attached as its replicated
// log, so that redone commits raise its oracle), fed entries by Apply.
class Node {
 public:
  explicit Node(std::string dir, uint64_t server = 2,
                std::function<std::string(uint64_t)> snapshot_address = {})
      : dir_(std::move(dir)), server_(server), snapshot_address_(std::move(snapshot_address)) {}
  ~Node() { Close(); }

  absl::Status Open() {
    auto db = Database::Open(NodeOptions(dir_));
    if (!db.ok()) return db.status();
    db_ = std::move(*db);
    for (uint32_t s = 0; s < kShards; ++s) {
      ShardReplicaOptions o;
      o.server = server_;
      o.shard_id = s;
      o.cluster = kCluster;
      o.snapshot_address = snapshot_address_;
      replicas_.push_back(std::make_unique<ShardReplica>(o, impl()->shard(s)));
      impl()->AttachReplicatedLog(s, replicas_.back().get());
    }
    return absl::OkStatus();
  }
  // The replicas go first (they lock their shards as they close), then the database.
  void Close() {
    replicas_.clear();
    db_.reset();
  }

  // Applies shard `shard`'s entries up to `index` that it has not applied yet.
  absl::Status ApplyUpTo(const Logs& logs, uint32_t shard, uint64_t index) {
    for (uint64_t i = Applied(shard) + 1; i <= index; ++i) {
      replicas_[shard]->Release(logs.At(shard, i));
      if (replicas_[shard]->failures() != 0) return replicas_[shard]->first_error();
    }
    return absl::OkStatus();
  }
  absl::Status ApplyAll(const Logs& logs) {
    for (uint32_t s = 0; s < kShards; ++s) {
      if (absl::Status st = ApplyUpTo(logs, s, logs.size(s)); !st.ok()) return st;
    }
    return absl::OkStatus();
  }

  uint64_t Applied(uint32_t shard) {
    engine::Shard* s = impl()->shard(shard);
    MutexLock l(s->commit_mu());
    return s->raft_applied_locked().index;
  }
  engine::Lsn LastLsn(uint32_t shard) {
    engine::Shard* s = impl()->shard(shard);
    MutexLock l(s->commit_mu());
    return s->last_lsn_locked();
  }

  Database& db() { return *db_; }
  txn::DatabaseImpl* impl() { return Impl(db_.get()); }
  ShardReplica& replica(uint32_t shard) { return *replicas_[shard]; }

 private:
  const std::string dir_;
  const uint64_t server_;
  const std::function<std::string(uint64_t)> snapshot_address_;
  std::unique_ptr<Database> db_;
  std::vector<std::unique_ptr<ShardReplica>> replicas_;
};

// A key of `shard` (the partitioner's), made from `stem`.
std::string KeyOn(Database& db, uint32_t shard, const std::string& stem) {
  for (int i = 0;; ++i) {
    std::string k = absl::StrCat(stem, i);
    if (Impl(&db)->partitioner().ShardOf(k) == shard) return k;
  }
}

// The value of `key` at snapshot `ts` on its shard, "-" if absent.
std::string ValueAt(Database& db, const std::string& key, Timestamp ts) {
  engine::Shard* s = Impl(&db)->shard(Impl(&db)->partitioner().ShardOf(key));
  auto view = s->Pin(ts);
  if (!view.ok()) return "pin: " + view.status().ToString();
  auto found = engine::Shard::Get(view->get(), key);
  if (!found.ok()) return "get: " + found.status().ToString();
  if (!found->has_value() || (*found)->tombstone) return "-";
  return std::string((*found)->value);
}

// What a reader of the database sees now: the visible value, "-" if absent.
std::string Visible(Database& db, const std::string& key) {
  auto v = ::shardtx::testing::GetOne(&db, key);
  if (absl::IsNotFound(v.status())) return "-";
  return v.ok() ? *v : v.status().ToString();
}

// Everything the prepared state holds, and the outcomes of `ids`.
std::string StateOf(Database& db, const std::vector<uint64_t>& ids) {
  std::string out = Impl(&db)->two_phase().DescribeForTesting();
  auto names = db.ListPrepared();
  absl::StrAppend(&out, "listed:", names.ok() ? absl::StrJoin(*names, ",") : "error", "\n");
  for (uint64_t id : ids) {
    absl::StrAppend(&out, "outcome ", id, ": ", static_cast<int>(db.GetOutcome(id)), "\n");
  }
  return out;
}

// The transactions of the scenario below.
constexpr uint64_t kBase0 = 100, kBase1 = 101, kLate = 102;
constexpr uint64_t kT1 = 201;  // unnamed, both shards, decided and committed at ts 20
constexpr uint64_t kT2 = 202;  // unnamed, both shards, aborted
constexpr uint64_t kT3 = 203;  // named "n3" (with a read lock), both shards, left prepared
const std::vector<uint64_t> kIds = {kBase0, kBase1, kLate, kT1, kT2, kT3};

struct Keys {
  std::string a0, a1, a2, a3, a4;  // shard 0
  std::string b0, b1, b2, b3;      // shard 1
  explicit Keys(Database& db)
      : a0(KeyOn(db, 0, "a0_")),
        a1(KeyOn(db, 0, "a1_")),
        a2(KeyOn(db, 0, "a2_")),
        a3(KeyOn(db, 0, "a3_")),
        a4(KeyOn(db, 0, "a4_")),
        b0(KeyOn(db, 1, "b0_")),
        b1(KeyOn(db, 1, "b1_")),
        b2(KeyOn(db, 1, "b2_")),
        b3(KeyOn(db, 1, "b3_")) {}
};

// The scenario's entries, interleaved across the shards as two groups may release them; the
// index in `steps` after which T1 is committed on shard 0 but not yet on shard 1.
struct Scenario {
  std::vector<std::pair<uint32_t, std::vector<Rec>>> steps;
  size_t t1_half_committed = 0;
};
Scenario MakeScenario(const Keys& k) {
  Scenario s;
  auto add = [&](uint32_t shard, std::vector<Rec> records) {
    s.steps.emplace_back(shard, std::move(records));
  };
  add(0, {Commit(kBase0, 10, {Put(k.a0, "old")})});
  add(1, {Commit(kBase1, 11, {Put(k.b0, "old")})});
  add(1, {Prepare(kT1, "", {0, 1}, {Put(k.b0, "t1")})});
  add(0, {Prepare(kT1, "", {0, 1}, {Put(k.a0, "t1"), Put(k.a1, "t1")})});
  add(0, {Prepare(kT2, "", {0, 1}, {Put(k.a2, "t2")})});
  add(0, {Decision(kT1, 20, {0, 1})});
  add(0, {CommitPrepared(kT1, 20)});
  s.t1_half_committed = s.steps.size();
  add(1, {Prepare(kT2, "", {0, 1}, {Put(k.b1, "t2")})});
  add(1, {CommitPrepared(kT1, 20)});
  add(1, {AbortPrepared(kT2)});
  add(0, {Prepare(kT3, "n3", {0, 1}, {Put(k.a3, "t3")}, {k.b3})});
  add(0, {AbortPrepared(kT2)});
  add(1, {Prepare(kT3, "n3", {0, 1}, {Put(k.b2, "t3")})});
  add(0, {Commit(kLate, 25, {Put(k.a4, "late")})});
  return s;
}

// The values the scenario leaves, and (`history`: no checkpoint replaced the versions in LMDB
// since) at the timestamps around T1's commit.
void ExpectScenarioValues(Database& db, const Keys& k, bool history = true) {
  if (history) {
    EXPECT_EQ(ValueAt(db, k.a0, 19), "old");
    EXPECT_EQ(ValueAt(db, k.b0, 19), "old");
    EXPECT_EQ(ValueAt(db, k.a0, 20), "t1");
    EXPECT_EQ(ValueAt(db, k.a1, 20), "t1");
    EXPECT_EQ(ValueAt(db, k.b0, 20), "t1");
  }
  EXPECT_EQ(Visible(db, k.a0), "t1");
  EXPECT_EQ(Visible(db, k.b0), "t1");
  EXPECT_EQ(Visible(db, k.a4), "late");
  for (const std::string& absent : {k.a2, k.b1, k.a3, k.b2}) {  // aborted, or still prepared
    EXPECT_EQ(Visible(db, absent), "-") << absent;
  }
}

// The same records as plain WAL records of an unreplicated database, then crash recovery.
std::unique_ptr<Database> RecoveredFrom(const std::string& dir, const Scenario& scenario) {
  {
    auto db = Database::Open(NodeOptions(dir));
    EXPECT_TRUE(db.ok()) << db.status();
    if (!db.ok()) return nullptr;
    for (const auto& [shard, records] : scenario.steps) {
      engine::Shard* s = Impl(db->get())->shard(shard);
      MutexLock l(s->commit_mu());
      for (const Rec& r : records) {
        EXPECT_TRUE(s->AppendLocked(static_cast<engine::RecordType>(r.type), r.payload,
                                    engine::Durability::kSync)
                        .ok());
      }
    }
  }  // closed without a checkpoint: the next Open redoes every record
  auto db = Database::Open(NodeOptions(dir));
  EXPECT_TRUE(db.ok()) << db.status();
  return db.ok() ? std::move(*db) : nullptr;
}

TEST(Replica2pc, ApplyingGivesTheStateRecoveryGives) {
  Node replica(FreshDir("_replica"));
  ASSERT_EQ(replica.Open(), absl::OkStatus());
  const Keys k(replica.db());
  const Scenario scenario = MakeScenario(k);
  Logs logs;
  for (size_t i = 0; i < scenario.steps.size(); ++i) {
    const auto& [shard, records] = scenario.steps[i];
    const uint64_t index = logs.Append(shard, records);
    absl::Status s = replica.ApplyUpTo(logs, shard, index);
    ASSERT_TRUE(s.ok()) << "step " << i << ": " << s;
    if (i + 1 == scenario.t1_half_committed) {
      // Each participant's part becomes visible when its own shard applies its commit entry
      // (a redone commit raises the oracle, as a redone kCommit does). Shard 1, which holds
      // T1's part still prepared while T1's commit timestamp is known here (the decision),
      // refuses a snapshot at or above it rather than show half of T1.
      EXPECT_EQ(Visible(replica.db(), k.a0), "t1");
      EXPECT_TRUE(absl::StartsWith(Visible(replica.db(), k.b0), "UNAVAILABLE: shard 1 holds"))
          << Visible(replica.db(), k.b0);
      // T1's prepared part on shard 1 still holds its key's lock, and is not listed.
      EXPECT_TRUE(replica.impl()->two_phase().LockHolder(1, k.b0).has_value());
      // Its commit record on shard 0 counts as released there (issue 17 step 2): committed.
      EXPECT_EQ(replica.db().GetOutcome(kT1), Outcome::kCommitted);
    }
  }
  const std::string applied = StateOf(replica.db(), kIds);
  // The expected state, spelled out: T3 prepared and listed, its write and read locks held.
  EXPECT_EQ(applied,
            absl::StrCat("txn ", kT3, " 'n3' listed participants 0,1\n  part 0: +", k.a3,
                         "\n  part 1: +", k.b2, "\n  read 1:", k.b3, "\nlock 0:", k.a3, " by ", kT3,
                         "\nlock 1:", k.b2, " by ", kT3,
                         "\nlocked keys 2, read locks 1\nlisted:n3\noutcome 100: 1\noutcome "
                         "101: 1\noutcome 102: 1\noutcome 201: 1\noutcome 202: 2\noutcome 203: "
                         "3\n"));
  ExpectScenarioValues(replica.db(), k);
  EXPECT_TRUE(replica.impl()->two_phase().ReadLockHolder(1, k.b3).has_value());
  // Online, nothing recovery-only is kept.
  EXPECT_EQ(replica.impl()->coordinator().RecoveryEvidenceSize(), 0u);

  // Crash recovery of the same records (unreplicated, each shard's WAL in turn) agrees.
  std::unique_ptr<Database> recovered = RecoveredFrom(FreshDir("_recovered"), scenario);
  ASSERT_NE(recovered, nullptr);
  EXPECT_EQ(StateOf(*recovered, kIds), applied);
  ExpectScenarioValues(*recovered, k);
  for (uint32_t s = 0; s < kShards; ++s) {
    auto a = DigestOf(*replica.impl()->shard(s));
    auto r = DigestOf(*Impl(recovered.get())->shard(s));
    ASSERT_TRUE(a.ok() && r.ok());
    EXPECT_EQ(*a, *r) << "shard " << s;
  }
}

// The keys of the rows of `node`'s prepared table on `shard`, in order.
std::vector<std::string> TableKeys(Node& node, uint32_t shard) {
  auto rows = node.impl()->shard(shard)->ReadTable(txn::kPreparedTable);
  EXPECT_TRUE(rows.ok()) << rows.status();
  std::vector<std::string> keys;
  if (rows.ok()) {
    for (const auto& [key, value] : *rows) keys.push_back(key);
  }
  return keys;
}

// A replica reopened recovers its own WAL (kRaftEntry records) and table to the same state,
// resolving nothing itself: T5, prepared everywhere with no decision, would be committed by an
// unreplicated recovery (parallel commit), and stays prepared here (its groups' leader decides).
TEST(Replica2pc, AReopenedReplicaKeepsItsStateAndResolvesNothing) {
  const std::string dir = FreshDir("_replica");
  auto replica = std::make_unique<Node>(dir);
  ASSERT_EQ(replica->Open(), absl::OkStatus());
  const Keys k(replica->db());
  const Scenario scenario = MakeScenario(k);
  constexpr uint64_t kT5 = 205;
  Logs logs;
  for (size_t i = 0; i < scenario.steps.size(); ++i) {
    logs.Append(scenario.steps[i].first, scenario.steps[i].second);
    if (i + 1 == scenario.t1_half_committed) {
      // A checkpoint while T1, T2 and T3 are prepared or half way: rows in the table.
      ASSERT_TRUE(replica->ApplyAll(logs).ok());
      ASSERT_TRUE(replica->db().Checkpoint().ok());
    }
  }
  const std::string t5_a = KeyOn(replica->db(), 0, "t5_"), t5_b = KeyOn(replica->db(), 1, "t5_");
  logs.Append(0, {Prepare(kT5, "", {0, 1}, {Put(t5_a, "t5")})});
  logs.Append(1, {Prepare(kT5, "", {0, 1}, {Put(t5_b, "t5")})});
  ASSERT_TRUE(replica->ApplyAll(logs).ok());
  // The checkpoint on the replica wrote the prepared table as an unreplicated shard's does:
  // the parts prepared then (T1 on shard 1, whose commit was not applied yet; T2 on shard 0),
  // and the next one the parts prepared now, the resolved ones' rows deleted.
  EXPECT_EQ(TableKeys(*replica, 0), std::vector<std::string>{txn::PreparedTableKey(kT2)});
  EXPECT_EQ(TableKeys(*replica, 1), std::vector<std::string>{txn::PreparedTableKey(kT1)});
  ASSERT_TRUE(replica->db().Checkpoint().ok());
  for (uint32_t s = 0; s < kShards; ++s) {
    EXPECT_EQ(TableKeys(*replica, s),
              (std::vector<std::string>{txn::PreparedTableKey(kT3), txn::PreparedTableKey(kT5)}));
  }

  std::vector<uint64_t> ids = kIds;
  ids.push_back(kT5);
  const std::string before = StateOf(replica->db(), ids);
  EXPECT_NE(before.find(absl::StrCat("txn ", kT5, " '' participants 0,1")), std::string::npos)
      << before;
  const engine::Lsn lsn0 = replica->LastLsn(0), lsn1 = replica->LastLsn(1);
  const uint64_t applied0 = replica->Applied(0), applied1 = replica->Applied(1);
  std::vector<ShardDigest> digests;
  for (uint32_t s = 0; s < kShards; ++s) digests.push_back(*DigestOf(*replica->impl()->shard(s)));

  replica = std::make_unique<Node>(dir);  // closes the old one first (no checkpoint)
  ASSERT_EQ(replica->Open(), absl::OkStatus());
  EXPECT_EQ(StateOf(replica->db(), ids), before);
  // Unnamed and prepared here: may be decided in entries not applied here, so GetOutcome asks
  // the shards (issue 17 step 2), and a replica that leads none says kUnknown.
  EXPECT_EQ(replica->db().GetOutcome(kT5), Outcome::kUnknown);
  EXPECT_EQ(Visible(replica->db(), t5_a), "-");
  ExpectScenarioValues(replica->db(), k, /*history=*/false);
  // Nothing was appended by the reopen (no decision or commit record outside the Raft log).
  EXPECT_EQ(replica->LastLsn(0), lsn0);
  EXPECT_EQ(replica->LastLsn(1), lsn1);
  EXPECT_EQ(replica->Applied(0), applied0);
  EXPECT_EQ(replica->Applied(1), applied1);
  for (uint32_t s = 0; s < kShards; ++s) {
    EXPECT_EQ(*DigestOf(*replica->impl()->shard(s)), digests[s]);
  }
  EXPECT_EQ(replica->impl()->coordinator().RecoveryEvidenceSize(), 0u);

  // It goes on applying above its position: T5's leader decides it.
  logs.Append(0, {Decision(kT5, 30, {0, 1})});
  logs.Append(0, {CommitPrepared(kT5, 30)});
  logs.Append(1, {CommitPrepared(kT5, 30)});
  ASSERT_TRUE(replica->ApplyAll(logs).ok());
  EXPECT_EQ(replica->db().GetOutcome(kT5), Outcome::kCommitted);
  EXPECT_EQ(Visible(replica->db(), t5_a), "t5");
  EXPECT_EQ(Visible(replica->db(), t5_b), "t5");
  EXPECT_FALSE(replica->impl()->two_phase().LockHolder(1, t5_b).has_value());
}

// A follower whose shard 1 holds a prepared part its leader has since aborted installs the
// leader's snapshot of shard 1 (a checkpointed copy: the abort is below its WAL tail, the later
// prepares in its table and its tail): afterwards its prepared state is exactly the producer's.
TEST(Replica2pc, ASnapshotInstallReplacesTheShardsPreparedState) {
  SnapshotServerOptions so;
  so.cluster = kCluster;
  so.producer = 1;
  so.env = Env::Default();
  auto server = SnapshotServer::Start(so);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = (*server)->address();
  Node producer(FreshDir("_producer"), 1);
  Node follower(FreshDir("_follower"), 2,
                [address](uint64_t id) { return id == 1 ? address : std::string(); });
  ASSERT_EQ(producer.Open(), absl::OkStatus());
  ASSERT_EQ(follower.Open(), absl::OkStatus());
  ASSERT_TRUE((*server)->AddShard(1, &producer.replica(1)).ok());
  const Keys k(producer.db());
  constexpr uint64_t kT6 = 206, kT7 = 207, kT8 = 208;
  Logs logs;
  logs.Append(0, {Prepare(kT6, "", {0, 1}, {Put(k.a0, "t6")})});
  logs.Append(1, {Prepare(kT6, "", {0, 1}, {Put(k.b0, "t6")})});
  ASSERT_TRUE(producer.ApplyAll(logs).ok());
  ASSERT_TRUE(follower.ApplyAll(logs).ok());
  // The follower falls behind on shard 1; the producer goes on, and checkpoints.
  logs.Append(0, {AbortPrepared(kT6)});
  logs.Append(1, {AbortPrepared(kT6)});
  logs.Append(0, {Prepare(kT7, "n7", {0, 1}, {Put(k.a1, "t7")})});
  logs.Append(1, {Prepare(kT7, "n7", {0, 1}, {Put(k.b1, "t7")})});
  logs.Append(1, {Commit(kBase1, 12, {Put(k.b3, "one")})});
  ASSERT_TRUE(producer.ApplyAll(logs).ok());
  ASSERT_TRUE(producer.db().Checkpoint().ok());
  logs.Append(0, {Prepare(kT8, "", {0, 1}, {Put(k.a2, "t8")})});
  logs.Append(1, {Prepare(kT8, "", {0, 1}, {Put(k.b2, "t8")})});
  ASSERT_TRUE(producer.ApplyAll(logs).ok());
  ASSERT_TRUE(follower.ApplyUpTo(logs, 0, logs.size(0)).ok());
  // Stale: T6's part on shard 1, which the producer aborted.
  ASSERT_TRUE(follower.impl()->two_phase().LockHolder(1, k.b0).has_value());
  // Unnamed, part of it prepared here, and its abort record on shard 0 applied here: aborted.
  EXPECT_EQ(follower.db().GetOutcome(kT6), Outcome::kAborted);

  auto snapshot = producer.replica(1).Snapshot();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  absl::Status restored = follower.replica(1).Restore(*snapshot);
  ASSERT_TRUE(restored.ok()) << restored;
  EXPECT_EQ(follower.replica(1).snapshots_installed(), 1u);
  const std::vector<uint64_t> ids = {kBase1, kT6, kT7, kT8};
  const std::string expected = StateOf(producer.db(), ids);
  EXPECT_EQ(StateOf(follower.db(), ids), expected);
  EXPECT_FALSE(follower.impl()->two_phase().LockHolder(1, k.b0).has_value());
  EXPECT_TRUE(follower.impl()->two_phase().LockHolder(1, k.b1).has_value());  // from the table
  EXPECT_TRUE(follower.impl()->two_phase().LockHolder(1, k.b2).has_value());  // from the tail
  EXPECT_EQ(follower.db().ListPrepared().value_or(std::vector<std::string>{}),
            std::vector<std::string>{"n7"});
  EXPECT_EQ(Visible(follower.db(), k.b3), "one");
  for (uint32_t s = 0; s < kShards; ++s) {
    EXPECT_EQ(*DigestOf(*follower.impl()->shard(s)), *DigestOf(*producer.impl()->shard(s)));
  }

  // Both go on above the snapshot; a checkpoint of the follower writes the copy's table as its
  // own; reopened, the follower has the producer's state.
  logs.Append(1, {AbortPrepared(kT8)});
  logs.Append(0, {AbortPrepared(kT8)});
  ASSERT_TRUE(producer.ApplyAll(logs).ok());
  ASSERT_TRUE(follower.ApplyAll(logs).ok());
  ASSERT_TRUE(follower.db().Checkpoint().ok());
  (*server)->RemoveShard(1);
  follower.Close();
  ASSERT_EQ(follower.Open(), absl::OkStatus());
  EXPECT_EQ(StateOf(follower.db(), ids), StateOf(producer.db(), ids));
  EXPECT_EQ(TableKeys(follower, 1), std::vector<std::string>{txn::PreparedTableKey(kT7)});
}

// A follower applies each group's entries on its own: a named transaction one of whose parts
// is committed or rolled back there while the other is still prepared is being resolved (its
// host decided it on the leader): not listed, in the online redo and after a reopen alike.
TEST(Replica2pc, AHalfResolvedNamedTransactionIsNotListed) {
  const std::string dir = FreshDir();
  auto node = std::make_unique<Node>(dir);
  ASSERT_EQ(node->Open(), absl::OkStatus());
  const Keys k(node->db());
  constexpr uint64_t kT4 = 204, kT5 = 205;
  Logs logs;
  logs.Append(0, {Prepare(kT4, "n4", {0, 1}, {Put(k.a0, "t4")})});
  logs.Append(1, {Prepare(kT4, "n4", {0, 1}, {Put(k.b0, "t4")})});
  logs.Append(0, {Prepare(kT5, "n5", {0, 1}, {Put(k.a1, "t5")})});
  logs.Append(1, {Prepare(kT5, "n5", {0, 1}, {Put(k.b1, "t5")})});
  ASSERT_TRUE(node->ApplyAll(logs).ok());
  EXPECT_EQ(node->db().ListPrepared().value_or(std::vector<std::string>{}),
            (std::vector<std::string>{"n4", "n5"}));
  // T4's commit record on shard 1 arrives before its decision on shard 0; T5's rollback
  // reaches shard 0 first.
  logs.Append(1, {CommitPrepared(kT4, 30)});
  logs.Append(0, {AbortPrepared(kT5)});
  ASSERT_TRUE(node->ApplyAll(logs).ok());
  EXPECT_EQ(node->db().ListPrepared().value_or(std::vector<std::string>{"error"}),
            std::vector<std::string>{});
  EXPECT_EQ(node->db().GetOutcome(kT4), Outcome::kPrepared);  // part 0 still is
  EXPECT_EQ(Visible(node->db(), k.b0), "t4");
  // Shard 0 holds T4's part prepared, committed at 30 elsewhere: refused, not "-".
  EXPECT_TRUE(absl::StartsWith(Visible(node->db(), k.a0), "UNAVAILABLE: shard 0 holds"))
      << Visible(node->db(), k.a0);
  const std::string before = StateOf(node->db(), {kT4, kT5});
  node = std::make_unique<Node>(dir);
  ASSERT_EQ(node->Open(), absl::OkStatus());
  EXPECT_EQ(StateOf(node->db(), {kT4, kT5}), before);
}

// A follower whose shard-1 group lags applies T6's commit on shard 0 (with the decision) before
// T6's prepare on shard 1: the part prepared late takes the commit timestamp the outcome holds,
// so a read at or above it is refused on shard 1 until the part commits, there and after a
// reopen (the prepared row then comes before the commit record is redone: shard order), and the
// part commits at it. (Without the timestamp the read showed half of T6, and the resolver took a
// new one.)
TEST(Replica2pc, APartPreparedAfterItsTransactionCommittedTakesItsTimestamp) {
  const std::string dir = FreshDir();
  auto node = std::make_unique<Node>(dir);
  ASSERT_EQ(node->Open(), absl::OkStatus());
  const Keys k(node->db());
  constexpr uint64_t kT6 = 206;
  Logs logs;
  logs.Append(0, {Prepare(kT6, "", {0, 1}, {Put(k.a0, "t6")})});
  logs.Append(0, {Decision(kT6, 50, {0, 1}), CommitPrepared(kT6, 50)});
  ASSERT_TRUE(node->ApplyAll(logs).ok());
  EXPECT_EQ(Visible(node->db(), k.a0), "t6");
  logs.Append(1, {Prepare(kT6, "", {0, 1}, {Put(k.b0, "t6")})});
  ASSERT_TRUE(node->ApplyAll(logs).ok());
  auto commit_ts = [&] {
    std::optional<txn::TwoPhaseState::PreparedInfo> p = node->impl()->two_phase().Prepared(kT6);
    return p.has_value() ? p->commit_ts : 0;
  };
  EXPECT_EQ(commit_ts(), 50u);
  EXPECT_TRUE(absl::StartsWith(Visible(node->db(), k.b0), "UNAVAILABLE: shard 1 holds"))
      << Visible(node->db(), k.b0);
  node = std::make_unique<Node>(dir);
  ASSERT_EQ(node->Open(), absl::OkStatus());
  EXPECT_EQ(commit_ts(), 50u);
  logs.Append(1, {CommitPrepared(kT6, 50)});
  ASSERT_TRUE(node->ApplyAll(logs).ok());
  EXPECT_EQ(Visible(node->db(), k.b0), "t6");
  EXPECT_EQ(commit_ts(), 0u);  // resolved: no longer prepared
}

// Each malformed (or unfitting) 2PC record is refused with its reason before anything of its
// entry reaches the WAL: the replica stops, its shard and prepared state as they were.
// A leader's RaftNode packs proposals queued together into one entry, so a closed-timestamp
// record (follower reads) can share an entry with a commit or a 2PC record: the replica applies
// such entries. (Before, it refused them, "a closed-timestamp record shares its entry", and
// stopped for good: crashtest_replicated_short's node 1 applied nothing more.)
TEST(Replica2pc, AClosedTimestampPackedWithOtherRecordsIsApplied) {
  Node node(FreshDir());
  ASSERT_EQ(node.Open(), absl::OkStatus());
  const Keys k(node.db());
  const Rec closed{engine::kClosedTs, engine::EncodeClosedTs({/*ts=*/30, /*leader_time_us=*/1})};
  Logs logs;
  logs.Append(0, {Commit(401, 30, {Put(k.a0, "c")}), closed});
  logs.Append(0, {closed, Prepare(402, "", {0, 1}, {Put(k.a1, "p")})});
  logs.Append(1, {Prepare(402, "", {0, 1}, {Put(k.b1, "p")}), closed});
  ASSERT_EQ(node.ApplyAll(logs), absl::OkStatus());
  EXPECT_EQ(node.Applied(0), 2u);
  EXPECT_EQ(node.Applied(1), 1u);
  EXPECT_EQ(node.replica(0).failures(), 0u);
  EXPECT_EQ(node.replica(1).failures(), 0u);
  const std::vector<txn::TwoPhaseState::PreparedInfo> prepared =
      node.impl()->coordinator().state().AllPrepared();
  ASSERT_EQ(prepared.size(), 1u);
  EXPECT_EQ(prepared[0].txn_id, 402u);
  EXPECT_EQ(prepared[0].shards, (std::vector<uint32_t>{0, 1}));
}

TEST(Replica2pc, AMalformedRecordIsRefusedAndNothingApplied) {
  Node node(FreshDir());
  ASSERT_EQ(node.Open(), absl::OkStatus());
  const Keys k(node.db());
  Logs logs;
  logs.Append(0, {Prepare(kT3, "n3", {0, 1}, {Put(k.a3, "t3")})});
  logs.Append(1, {Prepare(kT3, "n3", {0, 1}, {Put(k.b2, "t3")})});
  ASSERT_TRUE(node.ApplyAll(logs).ok());
  const std::string state = StateOf(node.db(), {kT3, 999});
  struct Bad {
    std::vector<Rec> records;
    absl::StatusCode code;
    std::string message;
  };
  const std::vector<Bad> bad = {
      {{{engine::kPrepare, "xyz"}},
       absl::StatusCode::kInvalidArgument,
       "malformed prepare record (record 1 of 1)"},
      {{Prepare(300, "", {0}, {Put(k.b0, "x")})},
       absl::StatusCode::kInvalidArgument,
       "participants not ascending, out of range or without this shard"},
      {{Prepare(300, "", {1, 5}, {Put(k.b0, "x")})},
       absl::StatusCode::kInvalidArgument,
       "participants not ascending, out of range or without this shard"},
      {{Prepare(300, "", {1, 0}, {Put(k.b0, "x")})},
       absl::StatusCode::kInvalidArgument,
       "participants not ascending, out of range or without this shard"},
      {{CommitPrepared(999, 40)},
       absl::StatusCode::kFailedPrecondition,
       "of transaction 999, which has no part prepared on shard 1"},
      {{{engine::kAbortPrepared, "abc"}},
       absl::StatusCode::kInvalidArgument,
       "malformed abort-prepared record"},
      {{Decision(kT3, 40, {0, 1})},
       absl::StatusCode::kInvalidArgument,
       "not led by this shard, the coordinator"},
      {{{engine::kEnd, txn::EncodeTxn(kT3)}},
       absl::StatusCode::kUnimplemented,
       "record type 6 (record 1 of 1) is not redone on a replica"},
      // A good record before a bad one: neither is applied.
      {{Commit(301, 40, {Put(k.b0, "x")}), AbortPrepared(kT3), {engine::kDecision, "d"}},
       absl::StatusCode::kInvalidArgument,
       "malformed decision record (record 3 of 3)"},
  };
  const uint64_t index = node.Applied(1) + 1;
  const engine::Lsn lsn = node.LastLsn(1);
  for (size_t i = 0; i < bad.size(); ++i) {
    SCOPED_TRACE(i);
    // A replica of its own (a stopped one applies nothing more), over the same shard.
    ShardReplicaOptions o;
    o.server = 2;
    o.shard_id = 1;
    ShardReplica fresh(o, node.impl()->shard(1));
    Logs one;
    for (uint64_t j = 1; j < index; ++j) one.Append(1, {});
    one.Append(1, bad[i].records);
    fresh.Release(one.At(1, index));
    EXPECT_EQ(fresh.failures(), 1u);
    const absl::Status error = fresh.first_error();
    EXPECT_EQ(error.code(), bad[i].code) << error;
    EXPECT_NE(
        error.message().find(absl::StrCat("shard 1: entry at raft index ", index, " refused: ")),
        std::string::npos)
        << error;
    EXPECT_NE(error.message().find(bad[i].message), std::string::npos) << error;
    EXPECT_EQ(node.LastLsn(1), lsn);
    EXPECT_EQ(node.Applied(1), index - 1);
    EXPECT_EQ(StateOf(node.db(), {kT3, 999}), state);
    EXPECT_EQ(Visible(node.db(), k.b0), "-");
  }
  // A commit record after its prepare in the same entry is taken.
  const std::string c = KeyOn(node.db(), 1, "c_");
  logs.Append(1, {Prepare(302, "", {1}, {Put(c, "t302")}), CommitPrepared(302, 41)});
  ASSERT_TRUE(node.ApplyAll(logs).ok());
  EXPECT_EQ(Visible(node.db(), c), "t302");
  EXPECT_EQ(node.db().GetOutcome(302), Outcome::kCommitted);
}

}  // namespace
}  // namespace shardtx::replication
