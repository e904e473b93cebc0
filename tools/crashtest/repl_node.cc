#include "tools/crashtest/repl_node.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <thread>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "engine/types.h"
#include "replication/link_filter.h"
#include "replication/shard_machine.h"
#include "shardtx/database.h"
#include "tools/crashtest/layout.h"
#include "tools/crashtest/protocol.h"
#include "tools/crashtest/repl_protocol.h"
#include "txn/coordinator.h"
#include "txn/database_impl.h"
#include "util/mutex.h"

ABSL_DECLARE_FLAG(int32_t, shards);
ABSL_DECLARE_FLAG(int32_t, threads);

ABSL_FLAG(bool, repl_node, false, "internal: run as a node of --mode=replicated");
ABSL_FLAG(uint64_t, repl_node_id, 0, "internal: the node's id");
ABSL_FLAG(std::string, repl_dir, "", "internal: the node's database directory");
ABSL_FLAG(std::string, repl_cluster, "", "internal: the cluster id");
ABSL_FLAG(std::string, repl_members, "", "internal: id=IPv4:P,... of every member");
ABSL_FLAG(int32_t, repl_election_ms, 300, "internal: Raft election timeout");
ABSL_FLAG(uint64_t, repl_seed, 0, "internal: the node's seed");
ABSL_FLAG(int32_t, repl_pause_ms, 0, "internal: pause after each transfer");
ABSL_FLAG(std::string, repl_broken, "", "internal: a deliberately lying node (ack_refused)");
ABSL_FLAG(bool, repl_join, false, "internal: the node joins the cluster (a new member)");
ABSL_FLAG(int32_t, repl_cross_pct, 0, "internal: percentage of cross-shard transfers");
ABSL_FLAG(int32_t, repl_named_pct, 0, "internal: percentage of named (prepared) transfers");
ABSL_FLAG(uint64_t, repl_named_seed, 0, "internal: the seed of the coordinator's decisions");
ABSL_FLAG(int32_t, repl_readers, 0, "internal: follower reader threads");
ABSL_FLAG(std::string, repl_workload, "bank", "internal: bank or cycle");

namespace shardtx::crashtest {

std::string FormatMembers(const std::vector<ReplicationMember>& members) {
  std::string out;
  for (const ReplicationMember& m : members) {
    absl::StrAppend(&out, out.empty() ? "" : ",", m.id, "=", m.address);
  }
  return out;
}

bool ParseMembers(const std::string& text, std::vector<ReplicationMember>* members) {
  members->clear();
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(part, absl::MaxSplits('=', 1));
    ReplicationMember m;
    if (!absl::SimpleAtoi(kv.first, &m.id) || kv.second.empty()) return false;
    m.address = kv.second;
    members->push_back(std::move(m));
  }
  return !members->empty();
}

Options ReplNodeOptions(const ReplNodeConfig& c) {
  Options o = MakeOptions(c.dir, c.shards);
  o.lmdb_map_size = 64 << 20;
  o.replication.node_id = c.node_id;
  o.replication.cluster_id = c.cluster;
  o.replication.members = c.members;
  o.replication.election_timeout = absl::Milliseconds(c.election_ms);
  o.replication.heartbeat = absl::Milliseconds(std::max(1, c.election_ms / 6));
  o.replication.join = c.join;
  if (c.readers > 0) o.replication.closed_ts_refresh = 2 * o.replication.heartbeat;
  return o;
}

namespace {

const char* RoleName(Database::ShardLeadership::Role r) {
  switch (r) {
    case Database::ShardLeadership::Role::kLeader:
      return "leader";
    case Database::ShardLeadership::Role::kCandidate:
      return "candidate";
    case Database::ShardLeadership::Role::kFollower:
      return "follower";
    case Database::ShardLeadership::Role::kUnavailable:
      break;
  }
  return "unavailable";
}

// The leader id a kUnavailable message names ("leader is server N at ..."); 0 if none.
uint64_t LeaderHint(absl::string_view message) {
  const size_t at = message.find("leader is server ");
  if (at == absl::string_view::npos) return 0;
  absl::string_view rest = message.substr(at + 17);
  const size_t end = rest.find(' ');
  uint64_t id = 0;
  if (!absl::SimpleAtoi(rest.substr(0, end), &id)) return 0;
  return id;
}

// Where the committing thread's transaction is in two-phase commit, counted by the propose hook
// (Node::OnPropose); reset before each transaction or decision the thread runs.
struct TwoPcCounts {
  int prepares = 0, resolutions = 0;
};
thread_local TwoPcCounts t_2pc;

class Node {
 public:
  explicit Node(const ReplNodeConfig& c) : c_(c) {}
  [[noreturn]] void Run();

 private:
  void Line(const std::string& line) { WriteLine(c_.fd, line); }
  // This node's term of `shard` if it is the ready leader now, else 0.
  uint64_t ReadyTerm(int shard) {
    std::vector<Database::ShardLeadership> l = db_->Leadership();
    if (static_cast<size_t>(shard) >= l.size() || !l[shard].ready) return 0;
    return l[shard].term;
  }
  // This node is the ready leader of every shard (all) or of none (!all).
  bool LeadsAll(bool all) {
    for (const Database::ShardLeadership& l : db_->Leadership()) {
      if (l.ready != all) return false;
    }
    return true;
  }
  void Worker(int t);
  // A transfer, committed, or prepared under a name (`named`) for the decider.
  void Transfer(std::mt19937_64& rng, int shard, int to_shard, bool named);
  // Reports the transaction (intent), commits or prepares it, reports the result.
  void Submit(Transaction* txn, int shard, int from, int to, int64_t amount, int to_shard,
              bool named);
  // The cycle workload (repl_protocol.h): one swap, if this node leads its shards (one time in
  // twenty otherwise, to be refused); false if nothing was proposed.
  bool CycleSwap(std::mt19937_64& rng, bool named);
  bool CycleNext(Transaction* txn, int node, int* next);
  // The host's coordinator: decides the named transfers ListPrepared lists here, each once it
  // was listed on an earlier look (so it stays prepared a while), on a node leading every shard.
  void Decider();
  // CommitPrepared or RollbackPrepared (ReplNamedCommits) of named transfer `txn`, reported;
  // true if OK.
  bool Decide(uint64_t txn);
  // "N": decide every named transfer listed here (ReplNodeConfig's decider, drained).
  void Drain();
  // The named transfers listed here; nullopt if ListPrepared failed.
  std::optional<std::vector<uint64_t>> Listed();
  void Reader(int r);
  void StartWorkload();
  void StopWorkload();
  void Scan(int shard);
  void Digests();
  void Outcome(uint64_t txn, const std::string& key);
  void Link(const std::vector<std::string>& w);
  void ChangeMembers(const std::vector<std::string>& w);
  void RaftStats();
  // The coordinator's propose hook (TEST ONLY, set before any commit): exits the process at the
  // armed 2PC point of a cross-shard commit (repl_protocol.h, "K").
  void OnPropose(uint8_t record);

  const ReplNodeConfig c_;
  std::atomic<int> armed_2pc_{0};  // 0: none; else 1 + the index in kRepl2pcPoints
  std::unique_ptr<Database> db_;
  std::atomic<bool> run_{false};
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> reads_served_{0}, reads_as_follower_{0}, reads_refused_{0};
  std::atomic<int> reader_reports_{0};  // "V" lines sent (at most 5 per process)
};

void Node::Transfer(std::mt19937_64& rng, int shard, int to_shard, bool named) {
  t_2pc = {};
  std::unique_ptr<Transaction> txn = db_->Begin();
  const uint64_t id = txn->id();
  const int from = static_cast<int>(rng() % kReplAccounts);
  int to = static_cast<int>(rng() % (kReplAccounts - 1));
  if (to >= from) ++to;
  const int64_t amount = 1 + static_cast<int64_t>(rng() % 50);
  int64_t balance[2] = {0, 0};
  const std::string account[2] = {AccountKey(shard, from), AccountKey(to_shard, to)};
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<std::string> v = txn->Get(account[i]);
    if (v.ok()) {
      if (!absl::SimpleAtoi(*v, &balance[i])) {
        Line(absl::StrCat("E account ", account[i], " holds '", *v, "'"));
        _exit(1);
      }
    } else if (!absl::IsNotFound(v.status())) {
      return;  // nothing proposed: not reported
    }
  }
  // A marker on each shard written (one alone inside a shard).
  const std::string marker = ReplMarkerValue(shard, from, to_shard, to, amount);
  if (!txn->Put(account[0], absl::StrCat(balance[0] - amount)).ok() ||
      !txn->Put(account[1], absl::StrCat(balance[1] + amount)).ok() ||
      !txn->Put(ReplMarkerKey(shard, id), marker).ok() ||
      (to_shard != shard && !txn->Put(ReplMarkerKey(to_shard, id), marker).ok())) {
    return;
  }
  Submit(txn.get(), shard, from, to, amount, to_shard, named);
}

void Node::Submit(Transaction* txn, int shard, int from, int to, int64_t amount, int to_shard,
                  bool named) {
  const uint64_t id = txn->id();
  if (named) {
    Line(absl::StrCat("N ", id, " ", shard, " ", from, " ", to, " ", amount, " ", to_shard));
  } else {
    Line(absl::StrCat("I ", id, " ", shard, " ", from, " ", to, " ", amount,
                      to_shard != shard ? absl::StrCat(" ", to_shard) : ""));
  }
  const uint64_t before = ReadyTerm(shard);
  const absl::Status s = named ? txn->Prepare(ReplNamedName(id)) : txn->Commit();
  const uint64_t after = ReadyTerm(shard);
  if (s.ok() && named) {
    Line(absl::StrCat("PA ", id));
  } else if (s.ok()) {
    Line(absl::StrCat("A ", id, " ", before, " ", after));
  } else if (absl::IsUnavailable(s) && c_.broken == "ack_refused") {
    Line(absl::StrCat("A ", id, " ", before, " ", after));  // the lie (ReplNodeConfig::broken)
  } else if (absl::IsAborted(s) || absl::IsUnavailable(s)) {
    Line(absl::StrCat("F ", id, " ", absl::StatusCodeToString(s.code()), " ",
                      LeaderHint(s.message())));
  } else {
    Line(absl::StrCat("U ", id, " ", absl::StatusCodeToString(s.code())));
  }
}

bool Node::CycleNext(Transaction* txn, int node, int* next) {
  absl::StatusOr<std::string> v = txn->Get(ReplCycleKey(node));
  if (absl::IsNotFound(v.status())) {
    *next = (node + 1) % (kReplCycleNodes * c_.shards);
    return true;
  }
  if (!v.ok()) return false;
  if (!absl::SimpleAtoi(*v, next)) {
    Line(absl::StrCat("E cycle node ", ReplCycleKey(node), " holds '", *v, "'"));
    _exit(1);
  }
  return true;
}

bool Node::CycleSwap(std::mt19937_64& rng, bool named) {
  t_2pc = {};
  std::unique_ptr<Transaction> txn = db_->Begin();
  const int count = kReplCycleNodes * c_.shards;
  const int a = static_cast<int>(rng() % static_cast<uint64_t>(count));
  int b = 0, c = 0, d = 0;
  if (!CycleNext(txn.get(), a, &b) || !CycleNext(txn.get(), b, &c) ||
      !CycleNext(txn.get(), c, &d)) {
    return false;  // nothing proposed: not reported
  }
  // The shards written (a's, b's, c's): at most two, a transfer's shape.
  const int shard = a / kReplCycleNodes;
  int to_shard = shard;
  for (int n : {b, c}) {
    const int g = n / kReplCycleNodes;
    if (g == shard || g == to_shard) continue;
    if (to_shard != shard) return false;  // a third shard
    to_shard = g;
  }
  // As a transfer: run where this node leads both shards, one time in twenty elsewhere.
  if ((ReadyTerm(shard) == 0 || ReadyTerm(to_shard) == 0) && rng() % 20 != 0) return false;
  const std::string marker = ReplMarkerValue(shard, 0, to_shard, 1, 0);
  if (!txn->Put(ReplCycleKey(a), absl::StrCat(c)).ok() ||
      !txn->Put(ReplCycleKey(c), absl::StrCat(b)).ok() ||
      !txn->Put(ReplCycleKey(b), absl::StrCat(d)).ok() ||
      !txn->Put(ReplMarkerKey(shard, txn->id()), marker).ok() ||
      (to_shard != shard && !txn->Put(ReplMarkerKey(to_shard, txn->id()), marker).ok())) {
    return false;
  }
  Submit(txn.get(), shard, 0, 1, 0, to_shard, named);
  return true;
}

void Node::Worker(int t) {
  std::mt19937_64 rng(c_.seed * 1000003 + static_cast<uint64_t>(t));
  while (run_.load()) {
    if (c_.workload == "cycle") {
      if (CycleSwap(rng, static_cast<int>(rng() % 100) < c_.named_pct)) {
        if (c_.pause_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(c_.pause_ms));
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      continue;
    }
    const int shard = static_cast<int>(rng() % static_cast<uint64_t>(c_.shards));
    // Cross-shard (cross_pct): from an account of `shard` to one of another shard.
    int to_shard = shard;
    if (c_.shards > 1 && static_cast<int>(rng() % 100) < c_.cross_pct) {
      to_shard = static_cast<int>(rng() % static_cast<uint64_t>(c_.shards - 1));
      if (to_shard >= shard) ++to_shard;
    }
    // Transactions go to the shard's leader (a cross-shard one to the leader of both): this
    // node runs those of the shards it leads, and now and then one of another shard, which must
    // be refused (kUnavailable, no effect).
    const bool named = static_cast<int>(rng() % 100) < c_.named_pct;
    if ((ReadyTerm(shard) != 0 && ReadyTerm(to_shard) != 0) || rng() % 20 == 0) {
      Transfer(rng, shard, to_shard, named);
      if (c_.pause_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(c_.pause_ms));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
}

std::optional<std::vector<uint64_t>> Node::Listed() {
  absl::StatusOr<std::vector<std::string>> names = db_->ListPrepared();
  if (!names.ok()) return std::nullopt;
  std::vector<uint64_t> out;
  for (const std::string& name : *names) {
    uint64_t txn = 0;
    if (ReplNamedTxn(name, &txn)) out.push_back(txn);
  }
  return out;
}

bool Node::Decide(uint64_t txn) {
  const bool commit = ReplNamedCommits(c_.named_seed, txn);
  Line(absl::StrCat(commit ? "DC " : "DR ", txn));
  t_2pc = {};
  const absl::Status s =
      commit ? db_->CommitPrepared(ReplNamedName(txn)) : db_->RollbackPrepared(ReplNamedName(txn));
  if (s.ok()) {
    Line(absl::StrCat("DA ", txn));
  } else if (absl::IsUnavailable(s) || absl::IsFailedPrecondition(s) || absl::IsNotFound(s)) {
    Line(absl::StrCat("DF ", txn, " ", absl::StatusCodeToString(s.code())));
  } else {
    Line(absl::StrCat("DU ", txn, " ", absl::StatusCodeToString(s.code())));
  }
  return s.ok();
}

void Node::Decider() {
  std::mt19937_64 rng(c_.seed * 1000003 + 999);
  std::vector<uint64_t> seen;  // listed on the last look
  while (run_.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10 + rng() % 50));
    if (!LeadsAll(true)) continue;
    std::optional<std::vector<uint64_t>> listed = Listed();
    if (!listed.has_value()) continue;
    for (uint64_t txn : *listed) {
      if (run_.load() && std::find(seen.begin(), seen.end(), txn) != seen.end()) Decide(txn);
    }
    seen = std::move(*listed);
  }
}

void Node::Drain() {
  int decided = 0, left = -1;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < end && LeadsAll(true)) {
    std::optional<std::vector<uint64_t>> listed = Listed();
    if (listed.has_value()) {
      left = static_cast<int>(listed->size());
      if (left == 0) break;
      for (uint64_t txn : *listed) decided += Decide(txn) ? 1 : 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Line(absl::StrCat("= N ", decided, " ", left));
}

void Node::Reader(int r) {
  TxnOptions o;
  o.follower_read = true;
  while (run_.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2 + r));
    const bool as_follower = LeadsAll(false);
    std::unique_ptr<Transaction> txn = db_->Begin(o);
    int64_t total = 0;
    std::string per_shard;
    absl::Status s;
    for (int g = 0; g < c_.shards && s.ok(); ++g) {
      // The deliberately broken reader (ReplNodeConfig::broken): a second snapshot after shard 0.
      if (g == 1 && c_.broken == "torn_read") {
        s = txn->Commit();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));  // let commits land between
        txn = db_->Begin(o);
      }
      int64_t sum = 0;
      for (int a = 0; a < kReplAccounts && s.ok(); ++a) {
        absl::StatusOr<std::string> v = txn->Get(AccountKey(g, a));
        int64_t balance = 0;
        if (v.ok() && absl::SimpleAtoi(*v, &balance)) {
          sum += balance;
        } else if (v.ok()) {
          s = absl::DataLossError(absl::StrCat(AccountKey(g, a), " holds '", *v, "'"));
        } else if (!absl::IsNotFound(v.status())) {
          s = v.status();
        }
      }
      total += sum;
      absl::StrAppend(&per_shard, g == 0 ? "" : " ", sum);
    }
    // The cycle: every node's successor read in the same snapshot must make one cycle.
    std::map<int, int> next;
    std::string broken;
    for (int n = 0; n < kReplCycleNodes * c_.shards && s.ok(); ++n) {
      absl::StatusOr<std::string> v = txn->Get(ReplCycleKey(n));
      int to = 0;
      if (v.ok() && absl::SimpleAtoi(*v, &to)) {
        next[n] = to;
      } else if (v.ok()) {
        s = absl::DataLossError(absl::StrCat(ReplCycleKey(n), " holds '", *v, "'"));
      } else if (!absl::IsNotFound(v.status())) {
        s = v.status();
      }
    }
    if (s.ok() && !ReplOneCycle(next, kReplCycleNodes * c_.shards, &broken)) {
      s = absl::DataLossError(absl::StrCat("the cycle is broken: ", broken));
    }
    if (s.ok()) s = txn->Commit();
    if (absl::IsDataLoss(s) || (s.ok() && total != 0)) {
      if (reader_reports_.fetch_add(1) < 5) {
        Line(absl::StrCat("V ",
                          s.ok() ? absl::StrCat("the bank total is ", total, " (per shard ",
                                                per_shard, "), not 0")
                                 : std::string(s.message()),
                          as_follower ? " (leading no shard)" : ""));
      }
      continue;
    }
    if (!s.ok()) {
      if (reads_refused_.fetch_add(1) < 3) {  // the first few, in the node's log
        std::fprintf(stderr, "crashtest node %llu: follower read refused: %s\n",
                     static_cast<unsigned long long>(c_.node_id), s.ToString().c_str());
      }
      continue;
    }
    ++reads_served_;
    if (as_follower && LeadsAll(false)) ++reads_as_follower_;
  }
}

void Node::StartWorkload() {
  if (run_.exchange(true)) return;
  for (int t = 0; t < c_.threads; ++t) workers_.emplace_back([this, t] { Worker(t); });
  if (c_.named_pct > 0) workers_.emplace_back([this] { Decider(); });
  for (int r = 0; r < c_.readers; ++r) workers_.emplace_back([this, r] { Reader(r); });
}

void Node::StopWorkload() {
  run_.store(false);
  for (std::thread& w : workers_) w.join();
  workers_.clear();
}

void Node::Scan(int shard) {
  // An iterator reads every shard (it merges them all), so its read-only Commit would ask this
  // node to lead every shard. The scan is confirmed by another transaction instead: `fence`
  // reads only this shard and begins before the scan; its Commit after the scan succeeds only if
  // this node was the shard's ready leader in one term from its Begin to then (a read-only
  // commit's barrier), so the whole scan read that leader's state.
  std::unique_ptr<Transaction> fence = db_->Begin();
  absl::Status s = fence->Get(AccountKey(shard, 0)).status();
  if (absl::IsNotFound(s)) s = absl::OkStatus();
  std::unique_ptr<Transaction> txn = db_->Begin();
  IteratorOptions io;
  io.lower_bound = ReplShardPrefix(shard) + "/";
  io.upper_bound = ReplShardPrefix(shard) + "0";  // '0' follows '/'
  std::unique_ptr<Iterator> it = txn->NewIterator(io);
  for (it->SeekToFirst(); s.ok() && it->Valid(); it->Next()) {
    Line(absl::StrCat("= K ", it->key(), " ", it->value()));
  }
  if (s.ok()) s = it->status();
  it.reset();
  txn.reset();
  if (s.ok()) s = fence->Commit();
  Line(absl::StrCat("= C ", s.ok() ? "ok" : absl::StrReplaceAll(s.ToString(), {{"\n", " "}})));
}

void Node::Digests() {
  auto* impl = static_cast<txn::DatabaseImpl*>(db_.get());
  for (int g = 0; g < c_.shards; ++g) {
    engine::Shard* shard = impl->shard(static_cast<uint32_t>(g));
    auto applied = [shard] {
      MutexLock l(shard->commit_mu());
      return shard->raft_applied_locked().index;
    };
    const uint64_t before = applied();
    absl::StatusOr<replication::ShardDigest> d = replication::DigestOf(*shard);
    const uint64_t after = applied();
    if (!d.ok() || before != after) {
      Line(absl::StrCat("= H ", g, " busy"));
    } else {
      Line(absl::StrCat("= H ", g, " ", after, " ", d->keys, " ", d->hash));
    }
  }
}

void Node::Outcome(uint64_t txn, const std::string& key) {
  absl::StatusOr<Database::Outcome> o = db_->GetOutcomeOfKey(txn, key);
  if (!o.ok()) {
    // The leader holds a part prepared and undecided (txn/replicated_outcome.cc's answer).
    const bool in_doubt = absl::IsUnavailable(o.status()) &&
                          absl::StrContains(o.status().message(), "being resolved");
    Line(absl::StrCat("= O ", in_doubt ? "indoubt " : "unavailable ",
                      LeaderHint(o.status().message())));
    return;
  }
  const char* name = "unknown";
  switch (*o) {
    case Database::Outcome::kCommitted:
      name = "committed";
      break;
    case Database::Outcome::kAborted:
      name = "aborted";
      break;
    case Database::Outcome::kPrepared:
      name = "prepared";
      break;
    case Database::Outcome::kUnknown:
      break;
  }
  Line(absl::StrCat("= O ", name, " 0"));
}

// "P clear" or "P <peer> <out|in> <1|0>": this node's side of a partition (the link filter of
// the testing library, replication/link_filter.h).
void Node::Link(const std::vector<std::string>& w) {
  absl::Status s;
  uint64_t peer = 0;
  if (w.size() == 2 && w[1] == "clear") {
    replication::UnblockAllLinks();
  } else if (w.size() == 4 && absl::SimpleAtoi(w[1], &peer) && (w[2] == "out" || w[2] == "in") &&
             (w[3] == "1" || w[3] == "0")) {
    s = replication::SetLinkBlocked(
        c_.node_id, peer,
        w[2] == "out" ? replication::LinkDirection::kOut : replication::LinkDirection::kIn,
        w[3] == "1");
  } else {
    s = absl::InvalidArgumentError("P takes clear, or <peer> <out|in> <1|0>");
  }
  Line(absl::StrCat("= P ", s.ok() ? "ok" : absl::StrReplaceAll(s.ToString(), {{"\n", " "}})));
}

// "MA <id> <address>" (AddMember) or "MR <id>" (RemoveMember): "= M <shard> <code>" per shard.
void Node::ChangeMembers(const std::vector<std::string>& w) {
  uint64_t id = 0;
  if (!absl::SimpleAtoi(w[1], &id)) return;
  std::vector<absl::Status> per_shard;
  const absl::Status s = w[0] == "MA" ? db_->AddMember({id, w.size() > 2 ? w[2] : ""}, &per_shard)
                                      : db_->RemoveMember(id, &per_shard);
  if (per_shard.empty()) {  // refused as a whole
    Line(absl::StrCat("= M all ", absl::StatusCodeToString(s.code())));
    return;
  }
  for (size_t g = 0; g < per_shard.size(); ++g) {
    Line(absl::StrCat("= M ", g, " ", absl::StatusCodeToString(per_shard[g].code())));
  }
}

// "G": "= G <shard> <commit index> <applied index> <snapshots installed> <voters>" per shard.
void Node::RaftStats() {
  const Stats stats = db_->GetStats();
  for (const ShardStatsView& v : stats.shards) {
    size_t voters = 0;
    for (const auto& m : v.replication.members) {
      if (m.kind == ShardReplicationStats::Member::Kind::kVoter) ++voters;
    }
    Line(absl::StrCat("= G ", v.shard, " ", v.replication.commit_index, " ",
                      v.replication.applied_index, " ", v.replication.snapshots_installed, " ",
                      voters));
  }
}

void Node::OnPropose(uint8_t record) {
  // CommitReplicated runs on the committing thread: each prepare's hook in phase one, then one
  // per participant in phase two (the first entry carries the decision), so the thread's own
  // counts say where its transaction is.
  // A decision of the decider thread (CommitPrepared) counts from its first entry (t_2pc reset
  // before each): after-prepares exits before its decision entry, after-decision after it.
  if (record == engine::kPrepare) {
    ++t_2pc.prepares;
  } else {
    ++t_2pc.resolutions;
  }
  const int prepares = t_2pc.prepares, resolutions = t_2pc.resolutions;
  const int armed = armed_2pc_.load(std::memory_order_relaxed);
  const bool commit = record == engine::kCommitPrepared;
  if ((armed == 1 && record == engine::kPrepare && prepares == 2) ||  // one prepare proposed
      (armed == 2 && commit && resolutions == 1) ||  // every prepare committed, no decision
      (armed == 3 && commit && resolutions == 2)) {  // the decision proposed
    _exit(9);
  }
}

void Node::Run() {
  absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(ReplNodeOptions(c_));
  if (!db.ok()) {
    Line(absl::StrCat("E open: ", db.status().ToString()));
    _exit(1);
  }
  db_ = std::move(*db);
  static_cast<txn::DatabaseImpl*>(db_.get())->coordinator().SetReplicatedProposeHookForTesting(
      [this](uint32_t, uint8_t record) {
        OnPropose(record);
        return absl::OkStatus();
      });
  Line(absl::StrCat("R ", static_cast<txn::DatabaseImpl*>(db_.get())->incarnation()));
  std::string cmd;
  char buf[4096];
  std::string pending;
  while (true) {
    const ssize_t n = read(0, buf, sizeof buf);
    if (n <= 0) _exit(0);  // the parent is gone
    pending.append(buf, static_cast<size_t>(n));
    size_t pos;
    while ((pos = pending.find('\n')) != std::string::npos) {
      cmd = pending.substr(0, pos);
      pending.erase(0, pos + 1);
      std::vector<std::string> w = absl::StrSplit(cmd, ' ', absl::SkipEmpty());
      if (w.empty()) continue;
      if (w[0] == "W" && w.size() == 2) {
        if (w[1] == "1") {
          StartWorkload();
        } else {
          StopWorkload();
        }
      } else if (w[0] == "L") {
        for (const Database::ShardLeadership& l : db_->Leadership()) {
          Line(absl::StrCat("= L ", l.shard, " ", RoleName(l.role), " ", l.ready ? 1 : 0, " ",
                            l.term, " ", l.leader_id));
        }
      } else if (w[0] == "O" && w.size() == 3) {
        uint64_t id = 0;
        if (absl::SimpleAtoi(w[1], &id)) Outcome(id, w[2]);
      } else if (w[0] == "S" && w.size() == 2) {
        int shard = 0;
        if (absl::SimpleAtoi(w[1], &shard) && shard >= 0 && shard < c_.shards) Scan(shard);
      } else if (w[0] == "H") {
        Digests();
      } else if (w[0] == "P") {
        Link(w);
      } else if ((w[0] == "MA" && w.size() == 3) || (w[0] == "MR" && w.size() == 2)) {
        ChangeMembers(w);
      } else if (w[0] == "G") {
        RaftStats();
      } else if (w[0] == "K" && w.size() == 2) {
        for (int i = 0; i < kRepl2pcPoints; ++i) {
          if (w[1] == kRepl2pcPointNames[i]) armed_2pc_.store(i + 1);
        }
      } else if (w[0] == "N") {
        Drain();
      } else if (w[0] == "LP") {
        if (std::optional<std::vector<uint64_t>> listed = Listed()) {
          for (uint64_t txn : *listed) Line(absl::StrCat("= LP ", txn));
        }
      } else if (w[0] == "RC") {
        Line(absl::StrCat("= RC ", reads_served_.exchange(0), " ", reads_as_follower_.exchange(0),
                          " ", reads_refused_.exchange(0)));
      } else if (w[0] == "Q") {
        StopWorkload();
        const absl::Status s = db_->Close();
        db_.reset();
        Line(s.ok() ? "= ." : absl::StrCat("E close: ", s.ToString()));
        _exit(s.ok() ? 0 : 1);
      }
      Line("= .");
    }
  }
}

}  // namespace

int ReplNodeMain() {
  if (!absl::GetFlag(FLAGS_repl_node)) return -1;
  ReplNodeConfig c;
  c.node_id = absl::GetFlag(FLAGS_repl_node_id);
  c.dir = absl::GetFlag(FLAGS_repl_dir);
  c.cluster = absl::GetFlag(FLAGS_repl_cluster);
  c.shards = absl::GetFlag(FLAGS_shards);
  c.threads = absl::GetFlag(FLAGS_threads);
  c.election_ms = absl::GetFlag(FLAGS_repl_election_ms);
  c.seed = absl::GetFlag(FLAGS_repl_seed);
  c.pause_ms = absl::GetFlag(FLAGS_repl_pause_ms);
  c.broken = absl::GetFlag(FLAGS_repl_broken);
  c.join = absl::GetFlag(FLAGS_repl_join);
  c.cross_pct = absl::GetFlag(FLAGS_repl_cross_pct);
  c.named_pct = absl::GetFlag(FLAGS_repl_named_pct);
  c.named_seed = absl::GetFlag(FLAGS_repl_named_seed);
  c.readers = absl::GetFlag(FLAGS_repl_readers);
  c.workload = absl::GetFlag(FLAGS_repl_workload);
  if (!ParseMembers(absl::GetFlag(FLAGS_repl_members), &c.members)) {
    std::fprintf(stderr, "crashtest node: bad --repl_members\n");
    _exit(2);
  }
  Node node(c);
  node.Run();
}

}  // namespace shardtx::crashtest
