// Model: its state, the reports that change it, and the parent's own writes between rounds.
// The checks after a crash are in verify.cc.
#include "tools/crashtest/model.h"

#include <algorithm>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tools/crashtest/layout.h"

namespace shardtx::crashtest {

Model::Model(int shards, int threads) : shards_(shards), threads_(threads) {}

absl::Status Model::Initialize(Database* db) {
  auto txn = db->Begin();
  for (int s = 0; s < shards_; ++s) {
    for (int a = 0; a < kAccountsPerShard; ++a) {
      balances_[AccountKey(s, a)] = kInitialBalance;
      absl::Status st = txn->Put(AccountKey(s, a), absl::StrCat(kInitialBalance));
      if (!st.ok()) return st;
    }
    for (int t = 0; t < threads_; ++t) {
      kv_[MarkerKey(s, t)] = "init";
      absl::Status st = txn->Put(MarkerKey(s, t), "init");
      if (!st.ok()) return st;
    }
  }
  return txn->Commit();
}

void Model::StartRound(int round, bool powerloss) {
  round_ = round;
  powerloss_ = powerloss;
  acked_round_ = 0;
  verified_round_ = 0;
  child_ = 0;
  line_ = 0;
  ops_.clear();
  op_index_.clear();
  reported_.clear();
}

void Model::StartChild() { ++child_; }

void Model::OnLine(absl::string_view line) {
  if (line.empty()) return;
  ++line_;
  const char type = line[0];
  absl::string_view rest = line.size() > 2 ? line.substr(2) : absl::string_view();
  if (type == 'V' || type == 'E') {
    reported_.push_back({false, "-", absl::StrCat("child reported: ", rest)});
    return;
  }
  if (type != 'I' && type != 'A' && type != 'F' && type != 'U') return;
  std::vector<absl::string_view> f = absl::StrSplit(rest, absl::MaxSplits(' ', 2));
  int t = 0;
  uint64_t seq = 0;
  if (f.size() < 2 || !absl::SimpleAtoi(f[0], &t) || !absl::SimpleAtoi(f[1], &seq)) {
    reported_.push_back({false, "-", absl::StrCat("malformed line from child: ", line)});
    return;
  }
  if (type == 'I') {
    Op op;
    op.thread = t;
    op.seq = seq;
    op.child = child_;
    op.intent_line = line_;
    if (f.size() < 3 || !ParseIntent(f[2], &op.intent)) {
      reported_.push_back({false, "-", absl::StrCat("malformed intent from child: ", line)});
      return;
    }
    op.synced_shards = SyncedShards(op.intent);
    op_index_[{t, seq}] = ops_.size();
    ops_.push_back(std::move(op));
    return;
  }
  auto it = op_index_.find({t, seq});
  if (it == op_index_.end()) {
    reported_.push_back({false, "-", absl::StrCat("result without intent: ", line)});
    return;
  }
  Op& op = ops_[it->second];
  op.result_line = line_;
  if (type == 'A') {
    op.state = OpState::kAcked;
    std::vector<absl::string_view> a =
        f.size() > 2 ? std::vector<absl::string_view>(absl::StrSplit(f[2], ' '))
                     : std::vector<absl::string_view>();
    if (a.size() >= 2) {
      (void)absl::SimpleAtoi(a[0], &op.ts);
      (void)absl::SimpleAtoi(a[1], &op.shard);
    }
    ++acked_round_;
    ++acked_total_;
    ApplyAcked(op, &reported_);
  } else if (type == 'F') {
    op.state = OpState::kAborted;
  } else {
    op.state = OpState::kUnknown;
    op.error = f.size() > 2 ? std::string(f[2]) : "";
    // Outside a power loss nothing may fail but by a conflict (kAborted).
    if (!powerloss_) {
      reported_.push_back(
          {false, "-",
           absl::StrCat("operation ", t, ".", seq, " failed unexpectedly: ", op.error)});
    }
  }
}

std::vector<int> Model::ParticipantShards(const std::string& from, const std::string& to,
                                          const Writes& writes, bool named_prepare) {
  std::set<int> shards;
  for (const auto& [k, v] : writes) shards.insert(ShardOfKey(k));
  for (const std::string& account : {from, to}) {
    if (!account.empty()) shards.insert(ShardOfKey(account));
  }
  shards.erase(-1);
  // Transaction::Prepare keeps the name of a prepare that wrote nothing on shard 0.
  if (shards.empty() && named_prepare) shards.insert(0);
  return std::vector<int>(shards.begin(), shards.end());
}

std::vector<int> Model::SyncedShards(const Intent& in) const {
  switch (in.kind) {
    case OpKind::kAsync:
      return {};
    case OpKind::kTransfer:
    case OpKind::kWrite:
      // One shard: its commit record is synced before Commit returns. Several: so is every
      // participant's prepare (all of them durable is the commit point of parallel commit; the
      // decision after them is not waited for).
      return ParticipantShards(in.from, in.to, in.writes, false);
    case OpKind::kPrepare:
      return ParticipantShards(in.from, in.to, in.writes, true);  // every prepare synced
    case OpKind::kCommitPrepared:
    case OpKind::kRollbackPrepared: {
      auto it = pending_.find(in.name);
      if (it == pending_.end()) return {};  // not known to be prepared: claim nothing
      const Prepared& p = it->second;
      std::vector<int> parts = ParticipantShards(p.from, p.to, p.writes, true);
      // CommitPrepared syncs its decision on the first participant (with one participant, the
      // commit record itself); the other commit records ride later batches. RollbackPrepared
      // syncs an abort record on every participant.
      if (in.kind == OpKind::kCommitPrepared) parts.resize(1);
      return parts;
    }
  }
  return {};
}

void Model::ApplyWrites(const Writes& writes) {
  for (const auto& [k, v] : writes) {
    if (v.has_value()) {
      kv_[k] = *v;
      deleted_.erase(k);
    } else {
      kv_.erase(k);
      deleted_.insert(k);
    }
  }
}

void Model::ApplyDelta(const std::string& from, const std::string& to, int64_t amount) {
  if (from.empty()) return;
  balances_[from] -= amount;
  balances_[to] += amount;
}

void Model::CommitPending(const std::string& name) {
  auto it = pending_.find(name);
  if (it == pending_.end()) return;
  ApplyWrites(it->second.writes);
  ApplyDelta(it->second.from, it->second.to, it->second.amount);
  pending_.erase(it);
  pending_order_.erase(std::find(pending_order_.begin(), pending_order_.end(), name));
}

void Model::ApplyAcked(Op& op, std::vector<Violation>* out) {
  const Intent& in = op.intent;
  switch (in.kind) {
    case OpKind::kTransfer:
      ApplyDelta(in.from, in.to, in.amount);
      ApplyWrites(in.writes);
      break;
    case OpKind::kWrite:
      ApplyWrites(in.writes);
      break;
    case OpKind::kAsync:
      break;  // applied at verification, if it survived (see CheckAsyncPrefix)
    case OpKind::kPrepare:
      pending_[in.name] = Prepared{in.txn_id, in.from, in.to, in.amount, in.writes};
      pending_order_.push_back(in.name);
      break;
    case OpKind::kCommitPrepared:
    case OpKind::kRollbackPrepared:
      if (!pending_.count(in.name)) {
        out->push_back({false, "-",
                        absl::StrCat("acknowledged decision for '", in.name,
                                     "', which is not a pending prepare")});
      } else if (in.kind == OpKind::kCommitPrepared) {
        CommitPending(in.name);
      } else {
        pending_.erase(in.name);
        pending_order_.erase(std::find(pending_order_.begin(), pending_order_.end(), in.name));
      }
      break;
  }
}

std::vector<std::string> Model::PendingNames() const { return pending_order_; }

void Model::DecidePending(Database* db, std::mt19937_64& rng, std::vector<Violation>* out) {
  constexpr size_t kMaxPending = 12;
  std::vector<std::string> names = pending_order_;
  size_t excess = names.size() > kMaxPending ? names.size() - kMaxPending / 2 : 0;
  for (const std::string& name : names) {
    const uint64_t r = rng() % 100;
    const bool force = excess > 0;
    if (excess > 0) --excess;
    if (!force && r >= 40) continue;  // stays prepared into the next round
    const bool commit = r % 5 < 3;
    const Prepared p = pending_[name];
    absl::Status s = commit ? db->CommitPrepared(name) : db->RollbackPrepared(name);
    if (!s.ok()) {
      out->push_back({false, name,
                      absl::StrCat(commit ? "CommitPrepared" : "RollbackPrepared", "('", name,
                                   "') failed: ", s.ToString())});
      return;
    }
    if (commit) {
      CommitPending(name);
    } else {
      pending_.erase(name);
      pending_order_.erase(std::find(pending_order_.begin(), pending_order_.end(), name));
    }
    // The decision shows at once: the writes (committed) or nothing (rolled back).
    auto txn = db->Begin();
    for (const auto& [k, v] : p.writes) {
      auto got = txn->Get(k);
      const bool ok = commit ? got.ok() && *got == *v : absl::IsNotFound(got.status());
      if (!ok) {
        out->push_back(
            {commit, k,
             absl::StrCat("after ", commit ? "CommitPrepared" : "RollbackPrepared", "('", name,
                          "') the key reads ", got.ok() ? *got : got.status().ToString())});
        return;
      }
    }
    for (const std::string& acct : {p.from, p.to}) {
      if (acct.empty()) continue;
      auto got = txn->Get(acct);
      int64_t b = 0;
      if (!got.ok() || !absl::SimpleAtoi(*got, &b) || b != balances_[acct]) {
        out->push_back({false, acct,
                        absl::StrCat("after deciding '", name, "' the balance is ",
                                     got.ok() ? *got : got.status().ToString(), ", expected ",
                                     balances_[acct])});
        return;
      }
    }
  }
}

void Model::Cleanup(Database* db, std::mt19937_64& rng, std::vector<Violation>* out) {
  constexpr size_t kHigh = 1500, kLow = 800, kBatch = 64;
  std::vector<std::string> candidates;
  for (const auto& [k, v] : kv_) {
    if (k.find("/ins/") != std::string::npos || k.find("/async/") != std::string::npos ||
        k.find("/np/") != std::string::npos) {
      candidates.push_back(k);
    }
  }
  // deleted_ only tells a lost delete from a stray key; keep it bounded.
  if (deleted_.size() > 200000) deleted_.clear();
  if (candidates.size() <= kHigh) return;
  std::shuffle(candidates.begin(), candidates.end(), rng);
  candidates.resize(candidates.size() - kLow);
  for (size_t i = 0; i < candidates.size(); i += kBatch) {
    auto txn = db->Begin();
    const size_t end = std::min(candidates.size(), i + kBatch);
    for (size_t j = i; j < end; ++j) (void)txn->Delete(candidates[j]);
    absl::Status s = txn->Commit();
    if (!s.ok()) {
      out->push_back({false, candidates[i], "the parent's cleanup commit failed: " + s.ToString()});
      return;
    }
    for (size_t j = i; j < end; ++j) {
      kv_.erase(candidates[j]);
      deleted_.insert(candidates[j]);
    }
  }
}

}  // namespace shardtx::crashtest
