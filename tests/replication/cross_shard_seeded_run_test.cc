// Seeded runs of cross-shard 2PC over replicated shards in the crash simulator (issue 17 step 7,
// docs/replicated-2pc-plan.md section 8): two Raft groups, one per shard, each of 3 servers, the
// groups' servers i forming simulated node i. Each group is a RestartableGroup (its own rs_world,
// seeded from the run's seed), and the groups are stepped in lock-step on one clock: the next
// event fired is always the earliest of all the worlds' (RestartableGroup::NextEventMs), and
// every world's clock is moved to the end of each step (AdvanceTo), so a crash, a partition or a
// proposal happens at one instant on every group. A node is a Database of two shards whose shards
// are ShardReplicas (as replica_2pc_test.cc's nodes), the machine of its server in each group: a
// released entry is redone by the engine's redo step with the transaction layer's hooks
// (Coordinator::Redo), so each node keeps its TwoPhaseState as a real replica does. A node's
// crash stops its server in both groups and loses its databases' unsynced WAL tails (a
// FaultInjectionEnv of its own); its restart recovers the Database and starts both servers over
// their durable Raft state. Partitions, drops and latency are per node too (all its groups).
//
// On top, this test is the coordinator and the in-doubt resolver, with the real record encoders:
//  - cross-shard transactions (unnamed: parallel commit, docs/replicated-2pc-plan.md section 1):
//    one kPrepare entry per participant on its group's ready leader; once every prepare entry is
//    committed the transaction is acknowledged (the commit point), and phase two follows: the
//    decision with kCommitPrepared on the coordinator shard (parts[0]), kCommitPrepared on the
//    other; a prepare refused (no effect) aborts it (kAbortPrepared on the parts that prepared);
//    an unknown outcome, or the crash of the node coordinating it, leaves it to the resolver;
//  - named prepares (30 %): once every prepare entry committed, the host decides on the node that
//    led them: commit (the decision entry alone on the coordinator shard, acknowledged once
//    committed, the commit point; then the commit entries) or roll back (abort entries only);
//  - single-shard kCommit entries beside them;
//  - the resolver decides a transaction left in doubt on the evidence the groups' ready leaders
//    have applied (their TwoPhaseState: parts present, a decision or commit or abort redone, the
//    outcome window), by DecideInDoubt, and only once every participant's ready leader is in a
//    term above that of any entry of the transaction whose outcome it did not see committed
//    (a ready leader has released an entry of its own term: every entry of an earlier term is
//    then applied there or never will be). A named one: committed if a commit is on record,
//    aborted if an abort is or a part is missing, else left for its host, who decides it then
//    (by the seed: its decision entry, or abort entries).
// The schedule kills nodes at chosen points of a transaction (after some prepares committed,
// after all, after phase two was proposed, after some commit entries), and at random; crashes a
// majority; partitions nodes; fails Raft log writes; checkpoints nodes' databases.
//
// After each seed, healed (every node restarted, the resolver drained, a closing entry released
// on every replica of both shards):
//  - no replica failed to apply anything; replicas of a shard applied the same last entry and
//    have the same digest; no node keeps any transaction prepared;
//  - a transaction with a commit entry (decision or commit record) committed anywhere has its
//    writes there, one with an abort entry committed has not;
//  - every transaction's writes are on every replica of every shard it touched, or on none
//    (atomicity); an acknowledged one's are there, and so are those of one whose every prepare
//    entry was seen committed (the commit point); an aborted one's are not;
//  - at most one leader per term in each group; no disk request in an impossible order.
// SHARDTX_SEED=N replays seed N; SHARDTX_REPLICATION_SEEDS=K runs K (default 1,000; sanitizer
// builds a tenth). SHARDTX_CROSS_MUTATION=<name> breaks the protocol on purpose (see Mutation):
// each must fail seeds. SHARDTX_CROSS_TRACE (below) prints a seed's events.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/log_record.h"
#include "gtest/gtest.h"
#include "replication/restartable_group.h"
#include "replication/shard_machine.h"
#include "replication/shard_replica.h"
#include "shardtx/database.h"
#include "tests/replication/leader_cluster.h"
#include "tests/replication/seeded_schedule.h"
#include "tests/replication/shard_seed_support.h"
#include "tests/support/fault_injection_env.h"
#include "txn/coordinator.h"
#include "txn/database_impl.h"
#include "txn/txn_records.h"
#include "util/coding.h"
#include "util/mutex.h"

#ifndef SHARDTX_REPLICATION_SEED_DIVISOR
#define SHARDTX_REPLICATION_SEED_DIVISOR 1
#endif

namespace shardtx::replication {
namespace {

using engine::Write;
using engine::WriteOp;
using ::shardtx::testing::FaultInjectionEnv;

constexpr uint32_t kShards = 2;
constexpr unsigned kNodes = 3;
constexpr char kCluster[] = "cross-seeded";
// The proposer named in every entry's tag (the payload format of before packing): no replica's
// own origin, so every replica redoes every entry.
constexpr uint64_t kOrigin = 0x00005eed00000001;
constexpr size_t kTagBytes = 16;  // the entry's tag: u64 origin, u64 sequence; then its records

// The records of an entry of this test's format (false if it has none well-formed).
bool RecordsOf(absl::string_view entry, std::vector<engine::EntryRecord>* records) {
  return entry.size() > kTagBytes && engine::DecodeEntryRecords(entry.substr(kTagBytes), records) &&
         !records->empty();
}

// TEST ONLY: breaks the protocol, to show that the checks catch it.
enum class Mutation {
  kNone,
  kAckAtPropose,       // acknowledge once the prepares are proposed, not committed
  kPresumedCommit,     // the resolver commits whatever it finds (parts missing or not)
  kPresumedAbort,      // the resolver aborts unless a commit is on record (ignores the prepares)
  kNoTermWait,         // the resolver reads any leader's state at once (no ready leader of a
                       // later term than the transaction's unsettled entries)
  kOneShardCommit,     // phase two (the coordinator's and the resolver's) commits parts[0] only
  kAckBeforeDecision,  // a named CommitPrepared is acknowledged once its decision is proposed
};
Mutation MutationFromEnv() {
  const char* m = std::getenv("SHARDTX_CROSS_MUTATION");
  if (m == nullptr) return Mutation::kNone;
  if (std::strcmp(m, "ack_at_propose") == 0) return Mutation::kAckAtPropose;
  if (std::strcmp(m, "presumed_commit") == 0) return Mutation::kPresumedCommit;
  if (std::strcmp(m, "presumed_abort") == 0) return Mutation::kPresumedAbort;
  if (std::strcmp(m, "no_term_wait") == 0) return Mutation::kNoTermWait;
  if (std::strcmp(m, "one_shard_commit") == 0) return Mutation::kOneShardCommit;
  if (std::strcmp(m, "ack_before_decision") == 0) return Mutation::kAckBeforeDecision;
  return Mutation::kNone;
}

struct CrossTotals {
  uint64_t named = 0, named_committed = 0, host_decisions = 0;
  uint64_t cross = 0, cross_acked = 0, cross_aborted = 0, single = 0, single_acked = 0;
  uint64_t resolved_commit = 0, resolved_abort = 0, in_doubt = 0;
  uint64_t crashes = 0, restarts = 0, restart_refusals = 0, protocol_kills = 0;
  uint64_t checkpoints = 0, writes_failed = 0, sim_ms = 0;
  double open_s = 0, close_s = 0;  // wall time opening and crashing nodes' databases
};

// SHARDTX_CROSS_TRACE=1: what happens to the nodes and transactions, on stderr (to study a seed);
// SHARDTX_CROSS_TRACE_TXN=<id> also: every entry each replica releases, and each change of
// transaction <id>'s prepared state on each node.
bool Tracing() {
  static const bool on = std::getenv("SHARDTX_CROSS_TRACE") != nullptr;
  return on;
}
std::optional<uint64_t> TracedTxn() {
  static const char* id = std::getenv("SHARDTX_CROSS_TRACE_TXN");
  if (id == nullptr) return std::nullopt;
  return std::strtoull(id, nullptr, 10);
}

// Forwards a group's releases to a node's ShardReplica (owned by the node).
class Forward final : public StateMachine {
 public:
  Forward(ShardReplica* replica, unsigned node, uint32_t shard)
      : replica_(replica), node_(node), shard_(shard) {}
  void Release(const ReleasedEntry& entry) override {
    if (TracedTxn().has_value()) {
      std::vector<engine::EntryRecord> recs;
      std::string types;
      if (RecordsOf(absl::string_view(entry.payload.data(), entry.payload.size()), &recs)) {
        for (const auto& r : recs) {
          absl::StrAppend(&types, static_cast<int>(r.type), ":", r.payload.size(), " ");
        }
      }
      std::fprintf(stderr, "release node %u shard %u index %llu term %llu: %s\n", node_, shard_,
                   static_cast<unsigned long long>(entry.index),
                   static_cast<unsigned long long>(entry.term), types.c_str());
    }
    replica_->Release(entry);
  }
  absl::StatusOr<std::string> Snapshot() override { return replica_->Snapshot(); }
  absl::Status Restore(std::string_view snapshot) override { return replica_->Restore(snapshot); }

 private:
  ShardReplica* const replica_;
  const unsigned node_;
  const uint32_t shard_;
};

// A simulated node: one Database, its shards ShardReplicas.
struct Node {
  std::unique_ptr<FaultInjectionEnv> env;
  std::unique_ptr<Database> db;
  std::vector<std::unique_ptr<ShardReplica>> replicas;

  txn::DatabaseImpl* impl() { return Impl(db.get()); }
  bool up() const { return db != nullptr; }
};

// One entry a transaction proposed on one shard, and what became of it.
struct Sent {
  enum State { kPending, kOk, kUnknown } state = kPending;
  unsigned server = 0;
  uint64_t term = 0;   // the proposer's term when proposed
  uint8_t record = 0;  // the type of the entry's last record (kPrepare ... kDecision)
};

struct Txn {
  uint64_t id = 0;
  std::vector<uint32_t> parts;             // ascending; parts[0] coordinates
  std::vector<std::vector<Write>> writes;  // by part, in parts' order
  std::string name;  // a named prepare's (its host decides it); empty: our own transaction
  enum Phase { kPreparing, kDeciding, kFinishing, kDone, kInDoubt, kResolved } phase = kPreparing;
  unsigned coordinator = 0;  // the node coordinating it: parts[0]'s leader at the start
  // Every entry proposed for it on each shard (stable addresses for the callbacks).
  std::deque<Sent> sent[kShards];
  Sent* prepare[kShards] = {};  // null: refused with no effect (or not proposed)
  Sent* finish[kShards] = {};
  bool finish_tried[kShards] = {};
  Sent* decision = nullptr;  // a named one's: its host's CommitPrepared
  int host = 0;              // a named one left for its host: 1 it commits, 2 it rolls back
  bool acked = false;        // the coordinator told its host: committed
  bool aborted = false;      // the coordinator aborted it (a prepare refused), never acknowledged
  int verdict = 0;           // the resolver's: 1 commit, 2 abort
};

struct Single {
  uint32_t shard = 0;
  std::vector<Write> writes;
  bool acked = false;
};

// Where the schedule kills a node in the middle of a transaction's protocol.
enum class KillPoint { kNone, kSomePrepares, kAllPrepares, kPhaseTwoProposed, kSomeCommits };

// The visible value of `key` on `shard`, or nullopt.
std::optional<std::string> ValueOn(engine::Shard* shard, const std::string& key) {
  auto view = shard->Pin(std::numeric_limits<engine::Timestamp>::max());
  if (!view.ok()) return "pin failed: " + view.status().ToString();
  auto found = engine::Shard::Get(view->get(), key);
  if (!found.ok()) return "get failed: " + found.status().ToString();
  if (!found->has_value() || (*found)->tombstone) return std::nullopt;
  return std::string((*found)->value);
}

class CrossSeed {
 public:
  CrossSeed(uint64_t seed, std::string root, Mutation mutation, CrossTotals* totals)
      : seed_(seed),
        root_(std::move(root)),
        mutation_(mutation),
        totals_(totals),
        rng_(seed * 6151 + 11) {}
  ~CrossSeed() {
    groups_.clear();  // the groups first: they call into the replicas
    for (Node& n : nodes_) {
      n.replicas.clear();
      n.db.reset();
    }
  }

  std::string Run();

 private:
  // --- The world. ---
  absl::Status OpenNode(unsigned i);
  void CrashNode(unsigned i);
  void RestartNode(unsigned i);
  void StepFor(uint64_t ms);
  void Trace(const std::string& what);
  bool StepUntil(const std::function<bool()>& done, uint64_t timeout_ms);
  std::string Dump();

  // --- The coordinator and the resolver. ---
  std::string Entry(const std::vector<std::pair<uint8_t, std::string>>& records);
  // Proposes `entry` on `server` of `shard`'s group, if it leads in `term` (0: any term); null
  // if refused, with no effect.
  Sent* Send(Txn& t, uint32_t shard, unsigned server, uint64_t term, const std::string& entry);
  // A cross-shard transaction, named with probability `named_percent`.
  void StartCross(unsigned named_percent = 30);
  void StartSingle();
  void Drive();  // the coordinator: advances every transaction it still drives
  void DriveOne(Txn& t);
  void Finish(Txn& t, bool commit);
  void ToResolver(Txn& t);
  void KillFor(Txn& t);
  void Resolve();  // the resolver: one pass over the transactions in doubt
  void ResolveOne(Txn& t);
  std::string Key(uint64_t id, uint32_t shard, unsigned j) const;

  // --- The checks. ---
  std::string Check();

  const uint64_t seed_;
  const std::string root_;
  const Mutation mutation_;
  CrossTotals* const totals_;
  Rng rng_;
  std::vector<Node> nodes_ = std::vector<Node>(kNodes);
  std::vector<std::unique_ptr<RestartableGroup>> groups_;
  uint64_t now_ = 0;
  uint64_t next_id_ = 1, next_seq_ = 1, ts_ = 10;
  std::vector<std::unique_ptr<Txn>> txns_;
  std::vector<std::unique_ptr<Single>> singles_;
  uint64_t kill_txn_ = 0;  // the transaction the schedule kills a node for, at kill_at_
  KillPoint kill_at_ = KillPoint::kNone;
  bool kill_coordinator_ = true;  // else the leader of its other part
  bool killing_ = false;
  std::string failure_;  // the first failure seen while running
  std::string watched_[kNodes];
};

absl::Status CrossSeed::OpenNode(unsigned i) {
  const auto start = std::chrono::steady_clock::now();
  struct Timer {
    std::chrono::steady_clock::time_point start;
    double* into;
    ~Timer() {
      *into += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
  } timer{start, &totals_->open_s};
  Node& n = nodes_[i];
  Options o = DbOptions(absl::StrCat(root_, "/node", i), kShards);
  o.env = n.env.get();
  o.checkpoint_wal_bytes = 0;  // only the schedule's checkpoints: deterministic
  o.checkpoint_overlay_bytes = 0;
  o.checkpoint_interval = absl::ZeroDuration();
  absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(o);
  if (!db.ok()) return db.status();
  n.db = std::move(*db);
  for (uint32_t s = 0; s < kShards; ++s) {
    ShardReplicaOptions ro;
    ro.server = i;
    ro.shard_id = s;
    ro.cluster = kCluster;
    n.replicas.push_back(std::make_unique<ShardReplica>(ro, n.impl()->shard(s)));
    n.impl()->AttachReplicatedLog(s, n.replicas.back().get());
  }
  return absl::OkStatus();
}

void CrossSeed::Trace(const std::string& what) {
  if (!Tracing()) return;
  std::string line = absl::StrCat("t=", now_, " ", what);
  for (unsigned i = 0; i < kNodes; ++i) {
    if (!nodes_[i].up()) continue;
    absl::StrAppend(&line, " | node ", i, " applied");
    for (uint32_t s = 0; s < kShards; ++s) {
      engine::Shard* shard = nodes_[i].impl()->shard(s);
      MutexLock l(shard->commit_mu());
      absl::StrAppend(&line, " ", shard->raft_applied_locked().index);
    }
  }
  std::fprintf(stderr, "%s\n", line.c_str());
}

void CrossSeed::CrashNode(unsigned i) {
  Node& n = nodes_[i];
  if (!n.up()) return;
  Trace(absl::StrCat("crash node ", i));
  for (auto& g : groups_) g->Crash(i);  // its proposals in flight: kUnknown
  // The coordinator on it dies too: what it drove is left to the resolver.
  for (auto& t : txns_) {
    if (t->coordinator == i) ToResolver(*t);
  }
  for (uint32_t s = 0; s < kShards; ++s) {
    const ShardReplica& r = *n.replicas[s];
    if (r.failures() != 0 && failure_.empty()) {
      failure_ = absl::StrCat("node ", i, " shard ", s, ": ", r.failures(), " failures, the first ",
                              r.first_error().ToString());
    }
  }
  const auto start = std::chrono::steady_clock::now();
  n.env->SimulateCrash().IgnoreError();  // power loss: the unsynced WAL tails are gone
  n.replicas.clear();
  n.db.reset();  // closing fails quietly on the crashed env
  n.env->Reset();
  totals_->close_s +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  totals_->crashes++;
}

void CrossSeed::RestartNode(unsigned i) {
  Node& n = nodes_[i];
  if (n.up()) return;
  if (absl::Status s = OpenNode(i); !s.ok()) {
    if (failure_.empty()) failure_ = absl::StrCat("node ", i, " reopen: ", s.ToString());
    n.replicas.clear();
    n.db.reset();
    return;
  }
  for (uint32_t s = 0; s < kShards; ++s) {
    if (!groups_[s]->Restart(i).ok()) {
      // libraft refused to start: the node goes down whole again (retried later).
      for (uint32_t r = 0; r < s; ++r) groups_[r]->Crash(i);
      n.replicas.clear();
      n.db.reset();
      totals_->restart_refusals++;
      return;
    }
  }
  totals_->restarts++;
  Trace(absl::StrCat("restarted node ", i));
}

// One clock: fire the earliest event of all the worlds, each at its time; then every world's
// clock is at the end.
void CrossSeed::StepFor(uint64_t ms) {
  const uint64_t end = now_ + ms;
  while (true) {
    std::optional<uint64_t> best;
    size_t which = 0;
    for (size_t s = 0; s < groups_.size(); ++s) {
      std::optional<uint64_t> t = groups_[s]->NextEventMs();
      if (t && (!best || *t < *best)) {
        best = t;
        which = s;
      }
    }
    if (!best || *best > end) break;
    now_ = std::max(now_, *best);
    for (auto& g : groups_) g->AdvanceTo(now_);
    groups_[which]->Step();
    if (std::optional<uint64_t> traced = TracedTxn()) {
      const uint64_t id = *traced;
      for (unsigned i = 0; i < kNodes; ++i) {
        std::string now = "down";
        if (nodes_[i].up()) {
          auto info = nodes_[i].impl()->two_phase().Prepared(id);
          now = info ? absl::StrCat("parts ", info->shards.size() > 0 ? info->shards[0] : 9,
                                    info->shards.size() > 1 ? info->shards[1] : 9, " begun ",
                                    info->commit_begun, info->abort_begun)
                     : "none";
        }
        if (watched_[i] != now) {
          watched_[i] = now;
          Trace(absl::StrCat("watch node ", i, " shard-step ", which, ": ", now));
        }
      }
    }
    Drive();
  }
  now_ = end;
  for (auto& g : groups_) g->AdvanceTo(now_);
}

bool CrossSeed::StepUntil(const std::function<bool()>& done, uint64_t timeout_ms) {
  const uint64_t end = now_ + timeout_ms;
  while (!done()) {
    if (now_ >= end) return done();
    StepFor(std::min<uint64_t>(20, end - now_));
    Resolve();
  }
  return true;
}

std::string CrossSeed::Key(uint64_t id, uint32_t shard, unsigned j) const {
  // A key the partitioner puts on `shard` (as a real node's commit path would).
  const Node* any = nullptr;
  for (const Node& n : nodes_) {
    if (n.db != nullptr) any = &n;
  }
  for (int k = 0;; ++k) {
    std::string key = absl::StrCat("t", id, "_", shard, "_", j, "_", k);
    if (any == nullptr || Impl(any->db.get())->partitioner().ShardOf(key) == shard) return key;
  }
}

std::string CrossSeed::Entry(const std::vector<std::pair<uint8_t, std::string>>& records) {
  std::string entry;
  PutFixed64(&entry, kOrigin);
  PutFixed64(&entry, next_seq_++);
  for (const auto& [type, payload] : records) engine::AppendEntryRecord(&entry, type, payload);
  return entry;
}

Sent* CrossSeed::Send(Txn& t, uint32_t shard, unsigned server, uint64_t term,
                      const std::string& entry) {
  ServerInfo info = groups_[shard]->Info(server);
  if (!info.alive || (term != 0 && info.term != term)) return nullptr;
  Sent* sent = &t.sent[shard].emplace_back();
  sent->server = server;
  sent->term = info.term;
  std::vector<engine::EntryRecord> records;
  if (RecordsOf(entry, &records)) sent->record = records.back().type;
  Trace(absl::StrCat("txn ", t.id, " shard ", shard, " server ", server, " term ", info.term,
                     " last applied ", info.last_applied, ": ", entry.size(), " bytes, record ",
                     sent->record));
  absl::Status s = groups_[shard]->Propose(server, entry, [sent](absl::Status st) {
    sent->state = st.ok() ? Sent::kOk : Sent::kUnknown;
  });
  if (!s.ok()) {
    t.sent[shard].pop_back();  // refused: it can never commit
    return nullptr;
  }
  return sent;
}

void CrossSeed::StartCross(unsigned named_percent) {
  std::optional<unsigned> coordinator = groups_[0]->Leader();
  if (!coordinator) return;
  auto t = std::make_unique<Txn>();
  t->id = next_id_++;
  t->parts = {0, 1};
  t->coordinator = *coordinator;
  if (rng_.Chance(named_percent)) {
    t->name = absl::StrCat("n", t->id);
    totals_->named++;
  }
  for (uint32_t p : t->parts) {
    std::vector<Write> w;
    for (unsigned j = rng_.In(1, 3); j > 0; --j) {
      w.push_back({WriteOp::kPut, Key(t->id, p, j), absl::StrCat("v", t->id, "_", p, "_", j)});
    }
    t->writes.push_back(std::move(w));
  }
  for (size_t k = 0; k < t->parts.size(); ++k) {
    const uint32_t p = t->parts[k];
    std::optional<unsigned> leader = groups_[p]->Leader();
    if (!leader) continue;  // refused: nobody to take it
    txn::PrepareRecord r{t->id, t->name, ts_, t->parts, t->writes[k], {}, {}};
    t->prepare[p] = Send(*t, p, *leader, 0, Entry({{engine::kPrepare, txn::EncodePrepare(r)}}));
  }
  totals_->cross++;
  if (mutation_ == Mutation::kAckAtPropose && t->name.empty()) t->acked = true;
  txns_.push_back(std::move(t));
}

void CrossSeed::StartSingle() {
  auto s = std::make_unique<Single>();
  s->shard = rng_.In(0, kShards - 1);
  const uint64_t id = next_id_++;
  std::optional<unsigned> leader = groups_[s->shard]->Leader();
  if (!leader) return;
  s->writes.push_back({WriteOp::kPut, Key(id, s->shard, 0), absl::StrCat("s", id)});
  const std::string entry = Entry({{engine::kCommit, engine::EncodeCommit(++ts_, id, s->writes)}});
  Single* raw = s.get();
  if (groups_[s->shard]
          ->Propose(*leader, entry, [raw](absl::Status st) { raw->acked = st.ok(); })
          .ok()) {
    totals_->single++;
    singles_.push_back(std::move(s));
  }
}

void CrossSeed::ToResolver(Txn& t) {
  if (t.phase != Txn::kPreparing && t.phase != Txn::kDeciding && t.phase != Txn::kFinishing) {
    return;
  }
  t.phase = Txn::kInDoubt;
  totals_->in_doubt++;
}

void CrossSeed::Drive() {
  for (auto& t : txns_) {
    if (t->phase == Txn::kPreparing || t->phase == Txn::kDeciding || t->phase == Txn::kFinishing) {
      DriveOne(*t);
    }
  }
}

// The schedule's kill in the middle of `t`'s protocol: its coordinator's node, or the leader of
// its other part.
void CrossSeed::KillFor(Txn& t) {
  if (killing_) return;
  killing_ = true;
  kill_at_ = KillPoint::kNone;
  unsigned victim = t.coordinator;
  if (!kill_coordinator_) {
    if (std::optional<unsigned> l = groups_[t.parts.back()]->Leader()) victim = *l;
  }
  totals_->protocol_kills++;
  CrashNode(victim);
  killing_ = false;
}

void CrossSeed::DriveOne(Txn& t) {
  const bool targeted = kill_at_ != KillPoint::kNone && kill_txn_ == t.id;
  if (t.phase == Txn::kPreparing) {
    unsigned ok = 0, pending = 0, unknown = 0, refused = 0;
    for (uint32_t p : t.parts) {
      const Sent* s = t.prepare[p];
      if (s == nullptr) {
        refused++;
      } else if (s->state == Sent::kOk) {
        ok++;
      } else if (s->state == Sent::kPending) {
        pending++;
      } else {
        unknown++;
      }
    }
    if (targeted && kill_at_ == KillPoint::kSomePrepares && ok > 0 && pending > 0) {
      return KillFor(t);
    }
    if (pending > 0) return;
    if (ok == t.parts.size()) {
      if (targeted && kill_at_ == KillPoint::kAllPrepares) return KillFor(t);
      if (!t.name.empty()) {
        // Prepared: its host decides now, on the node that led the prepares. Commit: the decision
        // entry alone on the coordinator shard, in the prepare's term (committed, the commit
        // point); rollback: abort entries (presumed abort, no decision).
        if (rng_.Chance(75)) {
          const Sent* p0 = t.prepare[t.parts[0]];
          if (targeted && kill_at_ == KillPoint::kPhaseTwoProposed) {
            // Its messages never leave: the decision dies with the node about to be killed.
            for (auto& g : groups_) g->Isolate(p0->server);
            kill_coordinator_ = true;
          }
          t.phase = Txn::kDeciding;
          t.decision =
              Send(t, t.parts[0], p0->server, p0->term,
                   Entry({{engine::kDecision, txn::EncodeDecision({t.id, true, ++ts_, t.parts})}}));
          if (t.decision == nullptr) return ToResolver(t);  // refused: nothing decided
          if (mutation_ == Mutation::kAckBeforeDecision) t.acked = true;
          if (targeted && kill_at_ == KillPoint::kPhaseTwoProposed) return KillFor(t);
        } else {
          Finish(t, /*commit=*/false);
        }
        return;
      }
      t.acked = true;  // the commit point: every prepare entry committed
      Finish(t, /*commit=*/true);
      if (targeted && kill_at_ == KillPoint::kPhaseTwoProposed) return KillFor(t);
    } else if (refused > 0) {
      // A refused prepare can never commit: aborted, no effect (rule d on any later leader too).
      t.aborted = !t.acked;
      Finish(t, /*commit=*/false);
    } else {
      ToResolver(t);  // unknown: the host hears kUnknown; the resolver decides
    }
    return;
  }
  if (t.phase == Txn::kDeciding) {
    if (t.decision->state == Sent::kPending) return;
    if (t.decision->state == Sent::kUnknown) return ToResolver(t);  // the host hears kUnknown
    t.acked = true;  // the decision committed: a named transaction's commit point
    totals_->named_committed++;
    Finish(t, /*commit=*/true);
    return;
  }
  // Phase two.
  unsigned ok = 0, pending = 0;
  bool in_doubt = false;
  for (uint32_t p : t.parts) {
    if (!t.finish_tried[p]) {
      // Its prepare did not commit as far as we know: one of unknown outcome may still have.
      const Sent* prepared = t.prepare[p];
      in_doubt = in_doubt || (prepared != nullptr && prepared->state != Sent::kOk);
      continue;
    }
    const Sent* s = t.finish[p];
    if (s == nullptr || s->state == Sent::kUnknown) {
      in_doubt = true;  // refused (leadership moved) or unknown: the resolver finishes it
    } else if (s->state == Sent::kPending) {
      pending++;
    } else {
      ok++;
    }
  }
  if (targeted && kill_at_ == KillPoint::kSomeCommits && ok > 0) return KillFor(t);
  if (pending > 0) return;
  if (in_doubt) {
    ToResolver(t);
  } else {
    t.phase = Txn::kDone;
  }
}

// Phase two by the coordinator, on the servers that took the prepares, in their terms: commit
// (the decision with parts[0]'s commit record) or abort (on the parts whose prepare committed).
void CrossSeed::Finish(Txn& t, bool commit) {
  t.phase = Txn::kFinishing;
  const uint64_t ts = ++ts_;
  for (uint32_t p : t.parts) {
    Sent* prepared = t.prepare[p];
    if (prepared == nullptr || prepared->state != Sent::kOk) continue;
    std::vector<std::pair<uint8_t, std::string>> records;
    if (commit) {
      if (mutation_ == Mutation::kOneShardCommit && p != t.parts[0]) continue;
      if (p == t.parts[0] && t.name.empty()) {  // a named one's decision is on record already
        records.emplace_back(engine::kDecision, txn::EncodeDecision({t.id, true, ts, t.parts}));
      }
      records.emplace_back(engine::kCommitPrepared, txn::EncodeTxnTs(t.id, ts));
    } else {
      records.emplace_back(engine::kAbortPrepared, txn::EncodeTxn(t.id));
    }
    t.finish_tried[p] = true;
    t.finish[p] = Send(t, p, prepared->server, prepared->term, Entry(records));
  }
  if (commit) {
    totals_->cross_acked++;
  } else {
    totals_->cross_aborted++;
  }
}

void CrossSeed::Resolve() {
  for (auto& t : txns_) {
    if (t->phase == Txn::kInDoubt) ResolveOne(*t);
  }
}

// The in-doubt rule on the evidence of every participant's ready leader.
void CrossSeed::ResolveOne(Txn& t) {
  std::vector<unsigned> leaders;
  for (uint32_t p : t.parts) {
    std::optional<unsigned> leader;
    if (mutation_ == Mutation::kNoTermWait) {
      for (unsigned i = 0; i < kNodes; ++i) {
        if (groups_[p]->Info(i).role == Role::kLeader) leader = i;
      }
    } else {
      leader = groups_[p]->Leader();
    }
    if (!leader || !nodes_[*leader].up()) return;
    const uint64_t term = groups_[p]->Info(*leader).term;
    // Every entry of the transaction not seen committed must be settled for good: the ready
    // leader's term is above its term.
    for (const Sent& s : t.sent[p]) {
      if (s.state != Sent::kOk && s.term >= term && mutation_ != Mutation::kNoTermWait) return;
    }
    leaders.push_back(*leader);
  }
  bool commit_seen = false, abort_seen = false, any_present = false;
  std::vector<txn::PartEvidence> evidence(t.parts.size());
  for (size_t k = 0; k < t.parts.size(); ++k) {
    txn::TwoPhaseState& state = nodes_[leaders[k]].impl()->two_phase();
    std::optional<txn::TwoPhaseState::PreparedInfo> info = state.Prepared(t.id);
    const Database::Outcome window = state.WindowOutcome(t.id);
    commit_seen = commit_seen || window == Database::Outcome::kCommitted ||
                  (info.has_value() && info->commit_begun);
    abort_seen = abort_seen || window == Database::Outcome::kAborted ||
                 (info.has_value() && info->abort_begun);
    evidence[k].prepare = info.has_value() && std::find(info->shards.begin(), info->shards.end(),
                                                        t.parts[k]) != info->shards.end();
    any_present = any_present || evidence[k].prepare;
  }
  if (!any_present) {
    t.phase = Txn::kResolved;  // nothing left prepared on any participant
    return;
  }
  evidence[0].abort = abort_seen;
  bool commit = txn::DecideInDoubt(commit_seen, evidence) == txn::InDoubtVerdict::kCommit;
  if (!t.name.empty()) {
    // Named: committed if a commit is on record, aborted if an abort is or a part is missing,
    // else left for its host, who decides it once (its decision entry alone, as CommitPrepared;
    // or abort entries, as RollbackPrepared) and then leaves it to this rule again.
    const bool complete = std::all_of(evidence.begin(), evidence.end(),
                                      [](const txn::PartEvidence& e) { return e.prepare; });
    if (!commit_seen && !abort_seen && complete) {
      if (t.host == 0) {
        t.host = rng_.Chance(50) ? 1 : 2;
        totals_->host_decisions++;
      }
      if (t.host == 1) {
        Send(t, t.parts[0], leaders[0], 0,
             Entry({{engine::kDecision, txn::EncodeDecision({t.id, true, ++ts_, t.parts})}}));
        return;
      }
    }
    commit = commit_seen;
  }
  if (mutation_ == Mutation::kPresumedCommit) commit = true;
  if (mutation_ == Mutation::kPresumedAbort) commit = commit_seen;
  if (t.verdict == 0) {
    t.verdict = commit ? 1 : 2;
    if (commit) {
      totals_->resolved_commit++;
    } else {
      totals_->resolved_abort++;
    }
  }
  const uint64_t ts = ++ts_;
  for (size_t k = 0; k < t.parts.size(); ++k) {
    if (!evidence[k].prepare) continue;
    const uint32_t p = t.parts[k];
    std::vector<std::pair<uint8_t, std::string>> records;
    if (commit) {
      if (mutation_ == Mutation::kOneShardCommit && k != 0) continue;
      if (k == 0 && t.name.empty()) {  // a named one's decision is on record
        records.emplace_back(engine::kDecision, txn::EncodeDecision({t.id, true, ts, t.parts}));
      }
      records.emplace_back(engine::kCommitPrepared, txn::EncodeTxnTs(t.id, ts));
    } else {
      records.emplace_back(engine::kAbortPrepared, txn::EncodeTxn(t.id));
    }
    Send(t, p, leaders[k], 0, Entry(records));
  }
}

std::string CrossSeed::Dump() {
  std::string out;
  for (uint32_t s = 0; s < kShards; ++s) {
    for (unsigned i = 0; i < kNodes; ++i) {
      ServerInfo info = groups_[s]->Info(i);
      absl::StrAppend(&out, "\n  shard ", s, " server ", i, info.alive ? "" : " (down)", ": role ",
                      static_cast<int>(info.role), info.ready ? " ready" : "", " term ", info.term,
                      " commit ", info.commit_index, " applied ", info.last_applied,
                      " durable log to ", groups_[s]->DurableLastIndex(i));
      if (nodes_[i].up()) {
        const ShardReplica& r = *nodes_[i].replicas[s];
        absl::StrAppend(&out, " replica redone ", r.redone(), " skipped ", r.skipped(),
                        " failures ", r.failures());
        if (r.failures() != 0) absl::StrAppend(&out, " (", r.first_error().ToString(), ")");
      }
    }
  }
  for (const auto& t : txns_) {
    if (t->phase == Txn::kDone || t->phase == Txn::kResolved) continue;
    absl::StrAppend(&out, "\n  txn ", t->id, " phase ", static_cast<int>(t->phase),
                    t->acked ? " acked" : "", t->aborted ? " aborted" : "");
  }
  return out;
}

std::string CrossSeed::Run() {
  RestartableGroupOptions options;
  options.servers = kNodes;
  options.pre_vote = rng_.Chance(75);
  // No Raft snapshots: a Database's replica installs one only over the snapshot stream (gRPC),
  // which this single-threaded simulation does not run; restarts replay the durable Raft log.
  options.snapshot_threshold = 1u << 30;
  options.snapshot_trailing = 1u << 30;
  for (unsigned i = 0; i < kNodes; ++i) {
    nodes_[i].env = std::make_unique<FaultInjectionEnv>(
        Env::Default(), FaultInjectionEnv::Options{/*sync_base=*/false});
    if (absl::Status s = OpenNode(i); !s.ok())
      return absl::StrCat("open node ", i, ": ", s.ToString());
  }
  for (uint32_t s = 0; s < kShards; ++s) {
    options.seed = seed_ * 2 + s;  // each world's own stream, both from the run's seed
    absl::StatusOr<std::unique_ptr<RestartableGroup>> g = RestartableGroup::Open(
        options,
        [this, s](unsigned i) -> absl::StatusOr<std::unique_ptr<StateMachine>> {
          if (!nodes_[i].up()) return absl::UnavailableError("node down");
          return std::unique_ptr<StateMachine>(
              std::make_unique<Forward>(nodes_[i].replicas[s].get(), i, s));
        },
        [](unsigned, std::unique_ptr<StateMachine>) {});  // the node's crash is CrashNode's
    if (!g.ok()) return "open group: " + g.status().ToString();
    groups_.push_back(std::move(*g));
  }
  auto latency = [&](unsigned i, unsigned net, unsigned disk) {
    for (auto& g : groups_) g->SetLatency(i, net, disk);
  };
  for (unsigned i = 0; i < kNodes; ++i) latency(i, rng_.In(2, 60), rng_.In(1, 30));

  const unsigned rounds = rng_.In(8, 16);
  for (unsigned round = 0; round < rounds && failure_.empty(); ++round) {
    const unsigned a = rng_.In(0, kNodes - 1), b = rng_.In(0, kNodes - 1);
    const unsigned action = rng_.In(0, 14);
    Trace(absl::StrCat("round ", round, " action ", action, " a ", a, " b ", b));
    switch (action) {
      case 0:
      case 1:
      case 2:
      case 3:  // a burst of transactions, most of them cross-shard
        for (unsigned k = rng_.In(1, 6); k > 0; --k) {
          if (rng_.Chance(70)) {
            StartCross();
          } else {
            StartSingle();
          }
        }
        break;
      case 4:
        for (auto& g : groups_) g->Isolate(a);
        break;
      case 5:
        if (a != b) {
          for (auto& g : groups_) g->SetLink(a, b, false);
        }
        break;
      case 6:
        if (a != b) {
          const unsigned percent = rng_.In(10, 100);
          for (auto& g : groups_) g->SetDrop(a, b, percent);
        }
        break;
      case 7:
        for (auto& g : groups_) g->HealNetwork();
        break;
      case 8:
        CrashNode(a);
        break;
      case 9: {  // restart a node that is down, or one libraft gave up on in some group
        bool unavailable = false;
        for (auto& g : groups_) {
          unavailable = unavailable || (g->Up(a) && g->Info(a).role == Role::kUnavailable);
        }
        if (unavailable) CrashNode(a);
        RestartNode(a);
        break;
      }
      case 10:
        latency(a, rng_.In(2, 150), rng_.In(1, 60));
        break;
      case 11:
        groups_[rng_.In(0, kShards - 1)]->FailWrite(a, rng_.In(1, 6));
        break;
      case 12: {  // a kill at a chosen point of a new transaction's protocol
        const size_t before = txns_.size();
        StartCross(/*named_percent=*/50);
        if (txns_.size() == before) break;
        kill_txn_ = txns_.back()->id;
        kill_at_ = static_cast<KillPoint>(rng_.In(1, 4));
        kill_coordinator_ = rng_.Chance(70);
        StepUntil([&] { return kill_at_ == KillPoint::kNone; }, rng_.In(50, 3000));
        kill_at_ = KillPoint::kNone;
        break;
      }
      case 13: {  // a majority crashes at once, and comes back after a while
        for (unsigned k = 0; k < kNodes / 2 + 1; ++k) CrashNode((a + k) % kNodes);
        StepFor(rng_.In(0, 2000));
        for (unsigned k = 0; k < kNodes / 2 + 1; ++k) RestartNode((a + k) % kNodes);
        break;
      }
      case 14:
        if (nodes_[a].up()) {
          if (absl::Status s = nodes_[a].db->Checkpoint(); !s.ok() && failure_.empty()) {
            failure_ = absl::StrCat("node ", a, " checkpoint: ", s.ToString());
          }
          totals_->checkpoints++;
          Trace(absl::StrCat("checkpointed node ", a));
        }
        break;
    }
    Resolve();
    StepFor(rng_.In(10, 1500));
    Resolve();
  }
  if (!failure_.empty()) return failure_ + Dump();

  // Heal: the network, then every node restarted (a whole-cluster crash).
  for (auto& g : groups_) g->HealNetwork();
  for (unsigned i = 0; i < kNodes; ++i) latency(i, 15, 10);
  for (unsigned i = 0; i < kNodes; ++i) CrashNode(i);
  for (int attempt = 0; attempt < 20; ++attempt) {
    bool all_up = true;
    for (unsigned i = 0; i < kNodes; ++i) {
      RestartNode(i);
      all_up = all_up && nodes_[i].up();
    }
    if (all_up) break;
    StepFor(500);
  }
  for (unsigned i = 0; i < kNodes; ++i) {
    if (!nodes_[i].up()) return absl::StrCat("node ", i, " could not restart") + Dump();
  }
  // The resolver finishes every transaction in doubt.
  auto drained = [&] {
    for (const auto& t : txns_) {
      if (t->phase != Txn::kDone && t->phase != Txn::kResolved) return false;
    }
    return true;
  };
  if (!StepUntil(drained, 120'000)) return "in-doubt transactions left after healing" + Dump();

  // A closing entry on each shard, acknowledged, then released on every replica.
  for (uint32_t s = 0; s < kShards; ++s) {
    bool acked = false;
    std::string key;
    for (int attempt = 0; !acked && attempt < 10; ++attempt) {
      const uint64_t id = next_id_++;
      key = Key(id, s, 0);
      const std::string entry = Entry(
          {{engine::kCommit, engine::EncodeCommit(++ts_, id, {{WriteOp::kPut, key, "final"}})}});
      bool called = false;
      if (!StepUntil(
              [&] {
                std::optional<unsigned> l = groups_[s]->Leader();
                return l && groups_[s]
                                ->Propose(*l, entry,
                                          [&](absl::Status st) {
                                            called = true;
                                            acked = st.ok();
                                          })
                                .ok();
              },
              60'000)) {
        return absl::StrCat("shard ", s, ": no ready leader within 60 s of healing") + Dump();
      }
      if (!StepUntil([&] { return called; }, 60'000)) {
        return absl::StrCat("shard ", s, ": no outcome for the closing entry") + Dump();
      }
    }
    if (!acked) return absl::StrCat("shard ", s, ": 10 closing entries unknown") + Dump();
    auto released = [&] {
      for (Node& n : nodes_) {
        if (ValueOn(n.impl()->shard(s), key) != "final") return false;
      }
      return true;
    };
    if (!StepUntil(released, 60'000)) {
      return absl::StrCat("shard ", s, ": closing entry not released everywhere") + Dump();
    }
  }
  return Check();
}

std::string CrossSeed::Check() {
  if (!failure_.empty()) return failure_ + Dump();
  for (uint32_t s = 0; s < kShards; ++s) {
    RestartableGroup& g = *groups_[s];
    if (g.LeaderConflicts() != 0) return absl::StrCat("shard ", s, ": two leaders in one term");
    SimulatorStats stats = g.Stats();
    if (stats.model_errors != 0) {
      return absl::StrCat("shard ", s, ": ", stats.model_errors,
                          " disk requests in an impossible order");
    }
    totals_->writes_failed += stats.writes_failed;
    std::optional<ShardDigest> want;
    engine::RaftPosition want_at;
    for (unsigned i = 0; i < kNodes; ++i) {
      ServerInfo info = g.Info(i);
      if (info.tag_mismatches != 0 || info.malformed != 0) {
        return absl::StrCat("shard ", s, " server ", i, ": ", info.tag_mismatches,
                            " tag mismatches, ", info.malformed, " malformed entries");
      }
      const ShardReplica& r = *nodes_[i].replicas[s];
      if (r.failures() != 0) {
        return absl::StrCat("node ", i, " shard ", s, ": ", r.failures(), " failures, the first ",
                            r.first_error().ToString()) +
               Dump();
      }
      engine::Shard* shard = nodes_[i].impl()->shard(s);
      engine::RaftPosition at;
      {
        MutexLock l(shard->commit_mu());
        at = shard->raft_applied_locked();
      }
      absl::StatusOr<ShardDigest> digest = DigestOf(*shard);
      if (!digest.ok()) return absl::StrCat("digest: ", digest.status().ToString());
      if (!want.has_value()) {
        want = *digest;
        want_at = at;
      } else if (at.index != want_at.index || at.term != want_at.term) {
        return absl::StrCat("shard ", s, ": nodes 0 and ", i, " applied different last entries") +
               Dump();
      } else if (*digest != *want) {
        return absl::StrCat("shard ", s, ": node ", i, "'s replica (", digest->keys,
                            " keys) differs from node 0's (", want->keys, " keys)") +
               Dump();
      }
    }
  }
  for (unsigned i = 0; i < kNodes; ++i) {
    std::vector<txn::TwoPhaseState::PreparedInfo> left =
        nodes_[i].impl()->two_phase().AllPrepared();
    if (!left.empty()) {
      return absl::StrCat("node ", i, ": ", left.size(), " transactions left prepared, the first ",
                          left[0].txn_id) +
             Dump();
    }
  }
  for (const auto& t : txns_) {
    // On every replica of every part: all of its writes, or none of them.
    unsigned present = 0, absent = 0;
    std::string where;
    for (unsigned i = 0; i < kNodes; ++i) {
      for (size_t k = 0; k < t->parts.size(); ++k) {
        engine::Shard* shard = nodes_[i].impl()->shard(t->parts[k]);
        for (const Write& w : t->writes[k]) {
          std::optional<std::string> v = ValueOn(shard, w.key);
          if (v == w.value) {
            present++;
          } else if (!v.has_value()) {
            absent++;
            if (where.empty()) where = absl::StrCat("node ", i, " shard ", t->parts[k]);
          } else {
            return absl::StrCat("transaction ", t->id, "'s key ", w.key, ": ", *v);
          }
        }
      }
    }
    if (present != 0 && absent != 0) {
      return absl::StrCat("transaction ", t->id, " is half there: ", present, " writes present, ",
                          absent, " missing (first on ", where, ")",
                          t->acked ? ", acknowledged" : "",
                          t->verdict == 1 ? ", resolved commit" : "",
                          t->verdict == 2 ? ", resolved abort" : "") +
             Dump();
    }
    if (t->acked && present == 0) {
      return absl::StrCat("acknowledged transaction ", t->id, " is missing everywhere",
                          t->verdict == 2 ? " (the resolver aborted it)" : "");
    }
    // Our own transaction's commit point is every prepare entry committed, whether or not the
    // coordinator lived to acknowledge it (a host may learn it from GetOutcome).
    bool all_prepares_committed = t->name.empty();  // a named one's is its decision
    for (uint32_t p : t->parts) {
      all_prepares_committed =
          all_prepares_committed && t->prepare[p] != nullptr && t->prepare[p]->state == Sent::kOk;
    }
    if (all_prepares_committed && present == 0) {
      return absl::StrCat("transaction ", t->id,
                          " is missing everywhere although every prepare entry committed",
                          t->verdict == 2 ? " (the resolver aborted it)" : "");
    }
    for (uint32_t p : t->parts) {
      for (const Sent& e : t->sent[p]) {
        if (e.state != Sent::kOk) continue;
        if (e.record == engine::kAbortPrepared && present != 0) {
          return absl::StrCat("transaction ", t->id, " has an abort entry committed on shard ", p,
                              ", and its writes are there");
        }
        if ((e.record == engine::kCommitPrepared || e.record == engine::kDecision) &&
            present == 0) {
          return absl::StrCat("transaction ", t->id, " has a commit entry committed on shard ", p,
                              ", and its writes are missing everywhere");
        }
      }
    }
    if (t->aborted && present != 0) {
      return absl::StrCat("aborted transaction ", t->id, "'s writes are there");
    }
  }
  for (const auto& s : singles_) {
    if (!s->acked) continue;
    for (unsigned i = 0; i < kNodes; ++i) {
      if (ValueOn(nodes_[i].impl()->shard(s->shard), s->writes[0].key) != s->writes[0].value) {
        return absl::StrCat("node ", i, ": acknowledged single-shard commit ", s->writes[0].key,
                            " missing");
      }
    }
    totals_->single_acked++;
  }
  totals_->sim_ms += now_;
  return "";
}

TEST(CrossShardSeededRun, TwoPhaseCommitOverReplicatedShardsSurvivesCrashesAtEveryPoint) {
  const SeedRange range = SeedRangeFromEnv(1000 / SHARDTX_REPLICATION_SEED_DIVISOR);
  const Mutation mutation = MutationFromEnv();
  CrossTotals totals;
  const auto start = std::chrono::steady_clock::now();
  const uint64_t failures =
      RunSeedsInDirs("shardtx_cross_seeds", range, [&](uint64_t seed, const std::string& dir) {
        CrossSeed run(seed, dir, mutation, &totals);
        return run.Run();
      });
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "%llu seeds from %llu, cross-shard 2PC over the crash simulator: %llu failed, %.2f s "
      "(%.1f ms/seed); cross-shard %llu (named %llu: %llu committed by their host's decision, "
      "%llu left in doubt decided by their host later; committed by their coordinator %llu, "
      "aborted %llu, "
      "left in doubt %llu: resolved commit %llu, abort %llu), single-shard %llu (%llu "
      "acknowledged); node crashes %llu (at a protocol point %llu), restarts %llu (%llu "
      "refused), checkpoints %llu, injected write failures %llu; %.0f s simulated; databases "
      "opened in %.1f s, crashed in %.1f s\n",
      static_cast<unsigned long long>(range.count), static_cast<unsigned long long>(range.first),
      static_cast<unsigned long long>(failures), secs, 1000.0 * secs / range.count,
      static_cast<unsigned long long>(totals.cross), static_cast<unsigned long long>(totals.named),
      static_cast<unsigned long long>(totals.named_committed),
      static_cast<unsigned long long>(totals.host_decisions),
      static_cast<unsigned long long>(totals.cross_acked),
      static_cast<unsigned long long>(totals.cross_aborted),
      static_cast<unsigned long long>(totals.in_doubt),
      static_cast<unsigned long long>(totals.resolved_commit),
      static_cast<unsigned long long>(totals.resolved_abort),
      static_cast<unsigned long long>(totals.single),
      static_cast<unsigned long long>(totals.single_acked),
      static_cast<unsigned long long>(totals.crashes),
      static_cast<unsigned long long>(totals.protocol_kills),
      static_cast<unsigned long long>(totals.restarts),
      static_cast<unsigned long long>(totals.restart_refusals),
      static_cast<unsigned long long>(totals.checkpoints),
      static_cast<unsigned long long>(totals.writes_failed), totals.sim_ms / 1000.0, totals.open_s,
      totals.close_s);
}

}  // namespace
}  // namespace shardtx::replication
