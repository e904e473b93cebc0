// Model::Verify: the checks after each crash (see model.h).
#include <algorithm>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tools/crashtest/layout.h"
#include "tools/crashtest/model.h"

namespace shardtx::crashtest {
namespace {

constexpr size_t kMaxViolations = 40;

std::string Show(const std::optional<std::string>& v) { return v.has_value() ? *v : "(absent)"; }

std::optional<std::string> Lookup(const std::map<std::string, std::string>& m,
                                  const std::string& k) {
  auto it = m.find(k);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

const char* KindName(OpKind k) {
  switch (k) {
    case OpKind::kTransfer:
      return "a transfer";
    case OpKind::kWrite:
      return "a write batch";
    case OpKind::kAsync:
      return "an async commit";
    case OpKind::kPrepare:
      return "a named prepare";
    case OpKind::kCommitPrepared:
      return "CommitPrepared";
    case OpKind::kRollbackPrepared:
      return "RollbackPrepared";
  }
  return "?";
}

const char* OutcomeName(Database::Outcome o) {
  switch (o) {
    case Database::Outcome::kUnknown:
      return "unknown";
    case Database::Outcome::kCommitted:
      return "committed";
    case Database::Outcome::kAborted:
      return "aborted";
    case Database::Outcome::kPrepared:
      return "prepared";
  }
  return "?";
}

}  // namespace

void Model::Verify(Database* db, std::vector<Violation>* out) {
  verified_round_ = 0;
  if (!VerifyState(db, out)) return;
  // Every acknowledged durable operation of the round is in the state just checked (its writes,
  // its balance change, its prepared name, its decision). Async commits are not counted: their
  // loss is allowed, so finding them proves nothing on its own.
  for (const Op& op : ops_) {
    if (op.state == OpState::kAcked && op.intent.kind != OpKind::kAsync) ++verified_round_;
  }
  verified_total_ += verified_round_;
}

bool Model::VerifyState(Database* db, std::vector<Violation>* out) {
  for (const Violation& v : reported_) out->push_back(v);
  ResolvePrepares(db, out);
  Snapshot snap;
  {
    auto txn = db->Begin();
    auto it = txn->NewIterator();
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      snap.emplace(std::string(it->key()), std::string(it->value()));
    }
    if (!it->status().ok()) {
      out->push_back({false, "-", "scanning the database failed: " + it->status().ToString()});
      return false;
    }
  }
  ResolveOthers(snap, out);
  CheckAsyncPrefix(snap, out);
  CheckContents(snap, out);
  if (out->size() < kMaxViolations) CheckLocks(db, out);
  for (const Op& op : ops_) {
    const OpKind k = op.intent.kind;
    if (k != OpKind::kTransfer && k != OpKind::kWrite && k != OpKind::kAsync) continue;
    std::optional<bool> applied = op.applied;
    if (op.state == OpState::kAcked && k != OpKind::kAsync) applied = true;
    if (op.state == OpState::kAborted) applied = false;
    if (applied.has_value()) {
      CheckOutcome(db, op.intent.txn_id, *applied,
                   absl::StrCat("operation ", op.thread, ".", op.seq), out);
    }
  }
  for (const auto& [name, p] : pending_) {
    const Database::Outcome o = db->GetOutcome(p.txn_id);
    if (o != Database::Outcome::kPrepared) {
      out->push_back({false, name,
                      absl::StrCat("GetOutcome of prepared transaction '", name, "' is ",
                                   OutcomeName(o), ", not prepared")});
    }
  }
  return true;
}

void Model::VerifyReopened(Database* db, std::vector<Violation>* out) {
  ops_.clear();
  op_index_.clear();
  reported_.clear();
  VerifyState(db, out);
}

bool Model::HasRivalInFlight(const Op& op) const {
  const OpKind other = op.intent.kind == OpKind::kCommitPrepared ? OpKind::kRollbackPrepared
                                                                 : OpKind::kCommitPrepared;
  for (const Op& o : ops_) {
    if (o.intent.kind == other && o.intent.name == op.intent.name &&
        (o.state == OpState::kInFlight || o.state == OpState::kUnknown)) {
      return true;
    }
  }
  return false;
}

bool Model::PreparedWritesVisible(Database* db, const Prepared& p) const {
  auto txn = db->Begin();
  for (const auto& [k, v] : p.writes) {
    auto got = txn->Get(k);
    if (v.has_value() ? (got.ok() && *got == *v) : absl::IsNotFound(got.status())) return true;
  }
  return false;  // no write of its own is visible (or it wrote nothing: either outcome fits)
}

void Model::ResolvePrepares(Database* db, std::vector<Violation>* out) {
  auto listed_or = db->ListPrepared();
  if (!listed_or.ok()) {
    out->push_back({false, "-", "ListPrepared failed: " + listed_or.status().ToString()});
    return;
  }
  const std::set<std::string> listed(listed_or->begin(), listed_or->end());
  for (Op& op : ops_) {
    if (op.state != OpState::kInFlight && op.state != OpState::kUnknown) continue;
    const std::string& name = op.intent.name;
    const bool in = listed.count(name) > 0;
    switch (op.intent.kind) {
      case OpKind::kPrepare:
        if (in) {
          const Intent& i = op.intent;
          pending_[name] = Prepared{i.txn_id, i.from, i.to, i.amount, i.writes};
          pending_order_.push_back(name);
        }
        op.applied = in;
        break;
      case OpKind::kCommitPrepared:
      case OpKind::kRollbackPrepared: {
        const bool commit = op.intent.kind == OpKind::kCommitPrepared;
        if (in || !pending_.count(name)) {  // undecided, or decided by an earlier operation
          op.applied = false;
          break;
        }
        // Decided at the crash. By this operation, unless a rival resolution of the same name
        // with the other decision was in flight too (the child races them): then one of the
        // two won, and the prepared writes tell which.
        bool committed = commit;
        if (HasRivalInFlight(op)) committed = PreparedWritesVisible(db, pending_[name]);
        if (committed) {
          CommitPending(name);
        } else {
          pending_.erase(name);
          pending_order_.erase(std::find(pending_order_.begin(), pending_order_.end(), name));
        }
        op.applied = committed == commit;
        break;
      }
      default:
        break;
    }
  }
  for (const std::string& name : listed) {
    if (!pending_.count(name)) {
      out->push_back({false, name,
                      absl::StrCat("ListPrepared lists '", name,
                                   "', which was never acknowledged nor in flight "
                                   "(or was decided)")});
    }
  }
  for (const std::string& name : std::vector<std::string>(pending_order_)) {
    if (listed.count(name)) continue;
    out->push_back({true, name,
                    absl::StrCat("acknowledged prepared transaction '", name,
                                 "' is missing from ListPrepared")});
    pending_.erase(name);
    pending_order_.erase(std::find(pending_order_.begin(), pending_order_.end(), name));
  }
}

std::optional<bool> Model::Resolve(const Op& op, const Snapshot& snap,
                                   std::vector<Violation>* out) {
  int applied = 0, not_applied = 0;
  std::string applied_key, missing_key;
  for (const auto& [k, v] : op.intent.writes) {
    const std::optional<std::string> actual = Lookup(snap, k);
    const std::optional<std::string> before = Lookup(kv_, k);
    const bool is_new = actual == v;
    const bool is_old = actual == before;
    if (is_new && is_old) continue;
    if (is_new) {
      ++applied;
      if (applied_key.empty()) applied_key = k;
    } else if (is_old) {
      ++not_applied;
      if (missing_key.empty()) missing_key = k;
    } else {
      out->push_back({before.has_value(), k,
                      absl::StrCat("holds ", Show(actual), ": neither its acknowledged value ",
                                   Show(before), " nor ", Show(v), " of operation ", op.thread, ".",
                                   op.seq, " in flight at the crash")});
      return std::nullopt;
    }
  }
  if (applied > 0 && not_applied > 0) {
    out->push_back({false, missing_key,
                    absl::StrCat("operation ", op.thread, ".", op.seq, " (",
                                 FormatIntent(op.intent).substr(0, 200), ") partly applied: ",
                                 applied_key, " has its write, ", missing_key, " does not")});
    return std::nullopt;
  }
  return applied > 0;
}

void Model::ResolveOthers(const Snapshot& snap, std::vector<Violation>* out) {
  for (Op& op : ops_) {
    if (op.state != OpState::kInFlight && op.state != OpState::kUnknown) continue;
    const OpKind k = op.intent.kind;
    if (k != OpKind::kTransfer && k != OpKind::kWrite && k != OpKind::kAsync) continue;
    op.applied = Resolve(op, snap, out);
    if (op.applied.value_or(false)) {
      if (k == OpKind::kTransfer) ApplyDelta(op.intent.from, op.intent.to, op.intent.amount);
      ApplyWrites(op.intent.writes);
    }
  }
}

void Model::CheckAsyncPrefix(const Snapshot& snap, std::vector<Violation>* out) {
  // An acknowledged sync record on a shard makes every earlier record of that shard's WAL
  // durable. Two ways to know that an async commit's record came earlier, each sound alone:
  //  - timestamps: an acknowledged single-shard sync commit on the shard with a larger commit
  //    timestamp (both took their timestamp and appended under the shard's commit lock);
  //  - report order: an operation acknowledged with a record synced on the shard (SyncedShards:
  //    a cross-shard commit's prepares, a named prepare, a decision) whose intent line came
  //    after the async commit's acknowledgement, from the same child. The acknowledgement was
  //    written after the async record was appended, the intent before the other operation began,
  //    and the pipe orders the two writes. A cross-shard commit's timestamp proves nothing
  //    here: it is taken after its prepares, and its commit records are not synced.
  std::vector<uint64_t> bound(shards_, 0);
  // Per shard and child: the latest intent line of an acknowledged operation with a record
  // synced on the shard, and that operation.
  std::vector<std::map<int, const Op*>> line_bound(shards_);
  std::vector<std::vector<Op*>> by_shard(shards_);
  for (Op& op : ops_) {
    if (op.state != OpState::kAcked) continue;
    if (op.intent.kind == OpKind::kAsync) {
      if (op.shard >= 0 && op.shard < shards_) by_shard[op.shard].push_back(&op);
      continue;
    }
    if (op.shard >= 0 && op.shard < shards_ &&
        (op.intent.kind == OpKind::kTransfer || op.intent.kind == OpKind::kWrite)) {
      bound[op.shard] = std::max(bound[op.shard], op.ts);
    }
    for (int s : op.synced_shards) {
      if (s < 0 || s >= shards_) continue;
      const Op*& b = line_bound[s][op.child];
      if (b == nullptr || b->intent_line < op.intent_line) b = &op;
    }
  }
  for (int s = 0; s < shards_; ++s) {
    auto& v = by_shard[s];
    std::sort(v.begin(), v.end(), [](const Op* a, const Op* b) { return a->ts < b->ts; });
    const Op* first_lost = nullptr;
    for (Op* op : v) {
      size_t present = 0;
      for (const auto& [k, val] : op->intent.writes) present += Lookup(snap, k) == val;
      if (present != 0 && present != op->intent.writes.size()) {
        out->push_back(
            {false, op->intent.writes[0].first,
             absl::StrCat("async commit ", op->thread, ".", op->seq, " partly survived (", present,
                          " of ", op->intent.writes.size(), " keys)")});
        continue;
      }
      op->applied = present != 0;
      if (present != 0) {
        if (first_lost != nullptr) {
          out->push_back({false, first_lost->intent.writes[0].first,
                          absl::StrCat("shard ", s, ": async commit at ts ", first_lost->ts,
                                       " was lost but the later one at ts ", op->ts,
                                       " survived: not a prefix of the shard's commit order")});
        }
        ApplyWrites(op->intent.writes);
      } else {
        auto later = line_bound[s].find(op->child);
        if (op->ts < bound[s]) {
          out->push_back({true, op->intent.writes[0].first,
                          absl::StrCat("shard ", s, ": async commit at ts ", op->ts,
                                       " was lost although a sync commit at ts ", bound[s],
                                       " on the same shard was acknowledged")});
        } else if (later != line_bound[s].end() && op->result_line < later->second->intent_line) {
          const Op& o = *later->second;
          out->push_back(
              {true, op->intent.writes[0].first,
               absl::StrCat("shard ", s, ": async commit ", op->thread, ".", op->seq, " at ts ",
                            op->ts, " was lost although operation ", o.thread, ".", o.seq, " (",
                            KindName(o.intent.kind),
                            "), begun after it was acknowledged, synced a record on the shard "
                            "and was acknowledged")});
        }
        if (first_lost == nullptr) first_lost = op;
      }
    }
  }
}

void Model::CheckContents(const Snapshot& snap, std::vector<Violation>* out) {
  std::set<std::string> prepared_keys;
  for (const auto& [name, p] : pending_) {
    for (const auto& [k, v] : p.writes) prepared_keys.insert(k);
  }
  for (const auto& [k, v] : kv_) {
    if (out->size() >= kMaxViolations) return;
    const std::optional<std::string> actual = Lookup(snap, k);
    if (actual != v) {
      out->push_back(
          {true, k, absl::StrCat("holds ", Show(actual), ", but its acknowledged value is ", v)});
    }
  }
  int64_t total = 0;
  for (const auto& [k, v] : snap) {
    if (out->size() >= kMaxViolations) return;
    if (IsAccountKey(k)) {
      auto b = balances_.find(k);
      int64_t got = 0;
      if (b == balances_.end() || !absl::SimpleAtoi(v, &got)) {
        out->push_back({false, k, "unexpected account " + v});
        continue;
      }
      total += got;
      if (got != b->second) {
        out->push_back({false, k,
                        absl::StrCat("balance ", got, ", expected ", b->second,
                                     " from the acknowledged transfers")});
      }
      continue;
    }
    if (kv_.count(k)) continue;
    if (prepared_keys.count(k)) {
      out->push_back({false, k, "a write of an undecided prepared transaction is visible: " + v});
    } else if (deleted_.count(k)) {
      out->push_back({true, k, "an acknowledged delete was undone: the key holds " + v});
    } else {
      out->push_back({false, k, "unexpected key (never acknowledged nor in flight) = " + v});
    }
  }
  for (const auto& [k, b] : balances_) {
    if (!snap.count(k)) out->push_back({true, k, "account missing"});
  }
  const int64_t want = int64_t{shards_} * kAccountsPerShard * kInitialBalance;
  if (total != want) {
    out->push_back({false, "-", absl::StrCat("bank total ", total, ", expected ", want)});
  }
}

void Model::CheckLocks(Database* db, std::vector<Violation>* out) {
  for (const auto& [name, p] : pending_) {
    // Every key it wrote, on every participant shard, and both accounts of a transfer.
    std::set<std::string> probes;
    for (const auto& [k, v] : p.writes) probes.insert(k);
    for (const std::string& account : {p.from, p.to}) {
      if (!account.empty()) probes.insert(account);
    }
    for (const std::string& key : probes) {
      auto txn = db->Begin();
      (void)txn->Put(key, "probe");
      absl::Status s = txn->Commit();
      if (s.ok()) {
        out->push_back({false, key,
                        absl::StrCat("prepared transaction '", name,
                                     "' does not lock its key: a conflicting write "
                                     "committed")});
      } else if (!absl::IsAborted(s)) {
        out->push_back({false, key,
                        absl::StrCat("a write conflicting with prepared '", name, "' failed with ",
                                     s.ToString(), ", not kAborted")});
      }
    }
  }
}

void Model::CheckOutcome(Database* db, uint64_t txn_id, bool applied, const std::string& what,
                         std::vector<Violation>* out) {
  const Database::Outcome o = db->GetOutcome(txn_id);
  const bool bad =
      o == Database::Outcome::kPrepared ||
      (applied ? o == Database::Outcome::kAborted : o == Database::Outcome::kCommitted);
  if (bad) {
    out->push_back({false, "-",
                    absl::StrCat("GetOutcome(", txn_id, ") of ", what, " is ", OutcomeName(o),
                                 " but it was ", applied ? "applied" : "not applied")});
  }
}

}  // namespace shardtx::crashtest
