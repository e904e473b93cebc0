#include "tools/crashtest/repl_model.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tools/crashtest/layout.h"
#include "tools/crashtest/repl_protocol.h"

namespace shardtx::crashtest {

namespace {

const char* SaidName(ReplModel::Said said) {
  switch (said) {
    case ReplModel::Said::kCommitted:
      return "committed";
    case ReplModel::Said::kAborted:
      return "aborted";
    case ReplModel::Said::kInDoubt:
      return "in doubt";
    case ReplModel::Said::kNothing:
      break;
  }
  return "nothing final";
}

}  // namespace

void ReplModel::Intent(uint64_t node, uint64_t txn, int shard, int from, int to, int64_t amount,
                       int to_shard) {
  Op& op = ops_[txn];
  op.node = node;
  op.shard = shard;
  op.to_shard = to_shard < 0 ? shard : to_shard;
  op.from = from;
  op.to = to;
  op.amount = amount;
  op.parts.clear();
  Part part;
  part.shard = shard;
  op.parts.push_back(part);
  part.shard = op.to_shard;
  if (op.cross()) op.parts.push_back(part);
}

void ReplModel::Acked(uint64_t node, uint64_t txn, uint64_t term_before, uint64_t term_after) {
  auto it = ops_.find(txn);
  if (it == ops_.end()) {
    report_findings_.push_back(absl::StrCat("[violation] node ", node, " acknowledged transfer ",
                                            txn, " without reporting it first"));
    return;
  }
  it->second.state = State::kAcked;
  ++acked_;
  // Leadership() said this node was the ready leader of the shard in the same term just before
  // and just after Commit: the entry was proposed, and acknowledged, in that term. Raft elects
  // at most one leader per term, so a second node acknowledging in it means a deposed leader
  // acknowledged (or an election went wrong).
  if (term_before != 0 && term_before == term_after) {
    const auto key = std::make_pair(it->second.shard, term_before);
    auto [at, inserted] = acked_in_term_.emplace(key, node);
    if (!inserted && at->second != node) {
      report_findings_.push_back(absl::StrCat(
          "[violation] two leaders acknowledged in term ", term_before, " of shard ",
          it->second.shard, ": nodes ", at->second, " and ", node, " (transfer ", txn, ")"));
    }
  }
}

void ReplModel::NoEffect(uint64_t txn) {
  auto it = ops_.find(txn);
  if (it == ops_.end()) return;
  it->second.state = State::kNoEffect;
  ++no_effect_;
}

void ReplModel::Unknown(uint64_t txn) {
  auto it = ops_.find(txn);
  if (it == ops_.end()) return;
  it->second.state = State::kUnknown;
  ++unknown_;
}

void ReplModel::NamedIntent(uint64_t node, uint64_t txn, int shard, int from, int to,
                            int64_t amount, int to_shard) {
  Intent(node, txn, shard, from, to, amount, to_shard);
  ops_[txn].named = true;
}

void ReplModel::Prepared(uint64_t txn) {
  auto it = ops_.find(txn);
  if (it == ops_.end() || !it->second.named) {
    report_findings_.push_back(
        absl::StrCat("[violation] transfer ", txn, " reported prepared but not reported as named"));
    return;
  }
  if (it->second.state == State::kIntent) it->second.state = State::kPrepared;
  ++named_prepared_;
}

void ReplModel::Deciding(uint64_t txn, bool commit) {
  auto it = ops_.find(txn);
  if (it == ops_.end() || !it->second.named) {
    report_findings_.push_back(absl::StrCat("[violation] the coordinator decides transaction ", txn,
                                            ", which no node reported as a named transfer"));
    return;
  }
  ++it->second.decisions;
  it->second.decide_commit = commit;
  if (named_seed_.has_value() && commit != ReplNamedCommits(*named_seed_, txn)) {
    report_findings_.push_back(absl::StrCat("[violation] the coordinator ",
                                            commit ? "commits" : "rolls back", " named transfer ",
                                            txn, " against its seeded decision"));
  }
}

void ReplModel::Decided(uint64_t txn, uint64_t node) {
  auto it = ops_.find(txn);
  if (it == ops_.end() || !it->second.named) return;
  Op& op = it->second;
  if (op.decisions == 0) {
    report_findings_.push_back(
        absl::StrCat("[violation] named transfer ", txn, " decided without a decision reported"));
    return;
  }
  if (node != 0 && node != op.node) ++named_decided_elsewhere_;
  if (op.decide_commit) {
    if (op.state != State::kAcked) ++acked_;
    op.state = State::kAcked;
    ++named_committed_;
  } else {
    op.state = State::kRolledBack;
    ++named_rolled_back_;
  }
}

void ReplModel::DecisionUnknown(uint64_t txn) {
  auto it = ops_.find(txn);
  if (it == ops_.end()) return;
  if (it->second.state == State::kPrepared || it->second.state == State::kIntent) {
    it->second.state = State::kUnknown;
    ++unknown_;
  }
}

void ReplModel::ReaderViolation(uint64_t node, const std::string& what) {
  ++reader_violations_;
  report_findings_.push_back(
      absl::StrCat("[violation] a follower reader of node ", node, " saw: ", what));
}

void ReplModel::NoteSaid(uint64_t txn, enum Said said) {
  auto it = ops_.find(txn);
  if (it != ops_.end()) NoteSaid(txn, it->second.shard, said);
}

void ReplModel::NoteSaid(uint64_t txn, int shard, enum Said said) {
  auto it = ops_.find(txn);
  if (it == ops_.end()) return;
  if (Part* part = it->second.PartOn(shard)) part->said = said;
}

std::vector<std::pair<uint64_t, std::string>> ReplModel::Unsettled(int shard) const {
  std::vector<std::pair<uint64_t, std::string>> out;
  for (const auto& [txn, op] : ops_) {
    const Part* part = op.PartOn(shard);
    if (part != nullptr && !part->committed.has_value() && op.state != State::kNoEffect &&
        op.state != State::kRolledBack && (op.state != State::kAcked || op.cross())) {
      out.emplace_back(txn, ReplMarkerKey(shard, txn));
    }
  }
  return out;
}

uint64_t ReplModel::InDoubt() const {
  uint64_t n = 0;
  for (const auto& [txn, op] : ops_) {
    for (const Part& p : op.parts) n += p.in_doubt && !p.committed.has_value() ? 1 : 0;
  }
  return n;
}

std::string ReplModel::InDoubtText(size_t limit) const {
  std::string out;
  size_t n = 0;
  for (const auto& [txn, op] : ops_) {
    for (const Part& p : op.parts) {
      if (!p.in_doubt || p.committed.has_value()) continue;
      if (n++ < limit) {
        absl::StrAppend(&out, out.empty() ? "" : ", ", "transfer ", txn, " on shard ", p.shard,
                        op.state == State::kAcked ? " (acknowledged)" : "",
                        p.said == Said::kCommitted ? " (decided committed)" : "");
      }
    }
  }
  if (n > limit) absl::StrAppend(&out, ", ...");
  return out;
}

void ReplModel::CountSettled(uint64_t txn, Op& op, std::vector<std::string>* findings) {
  if (op.counted) return;
  bool all = true, any = false;
  for (const Part& p : op.parts) {
    if (!p.committed.has_value()) return;
    all = all && *p.committed;
    any = any || *p.committed;
  }
  op.counted = true;
  if (all != any) {
    findings->push_back(absl::StrCat(
        "[violation] cross-shard transfer ", txn, " of node ", op.node, " committed on shard ",
        *op.parts[0].committed ? op.shard : op.to_shard, " but not on shard ",
        *op.parts[0].committed ? op.to_shard : op.shard, " (atomicity)"));
  }
  if (any) {
    ++committed_;
    if (op.cross()) ++cross_committed_;
    if (op.state == State::kAcked) ++acked_verified_;
  }
  if (op.state == State::kUnknown) ++unknown_resolved_;
  if (op.state == State::kIntent) ++unanswered_resolved_;
}

std::vector<std::string> ReplModel::TakeReportFindings() {
  std::vector<std::string> out;
  out.swap(report_findings_);
  return out;
}

void ReplModel::Verify(int shard, const std::map<std::string, std::string>& scan,
                       std::vector<std::string>* findings) {
  const std::string marker_prefix = ReplShardPrefix(shard) + "/x/";
  std::map<uint64_t, std::string> markers;
  std::map<int, int64_t> accounts;
  std::map<int, int> cycle;
  for (const auto& [key, value] : scan) {
    uint64_t txn = 0;
    int account = -1;
    int64_t balance = 0;
    if (absl::StartsWith(key, marker_prefix) &&
        absl::SimpleHexAtoi(key.substr(marker_prefix.size()), &txn)) {
      markers[txn] = value;
      continue;
    }
    int node = -1, next = -1;
    if (ReplCycleNode(key, &node) && key == ReplCycleKey(node) && absl::SimpleAtoi(value, &next)) {
      cycle[node] = next;
      continue;
    }
    for (int i = 0; i < kReplAccounts; ++i) {
      if (key == AccountKey(shard, i)) account = i;
    }
    if (account >= 0 && absl::SimpleAtoi(value, &balance)) {
      accounts[account] = balance;
      continue;
    }
    findings->push_back(
        absl::StrCat("[violation] shard ", shard, ": unexpected key ", key, "=", value));
  }
  for (const auto& [txn, value] : markers) {
    auto it = ops_.find(txn);
    Part* part = it == ops_.end() ? nullptr : it->second.PartOn(shard);
    if (part == nullptr) {
      findings->push_back(absl::StrCat("[violation] shard ", shard, ": marker of transfer ", txn,
                                       " that no node of this shard attempted"));
      continue;
    }
    Op& op = it->second;
    const std::string attempted = ReplMarkerValue(op.shard, op.from, op.to_shard, op.to, op.amount);
    if (value != attempted) {
      findings->push_back(absl::StrCat("[violation] transfer ", txn, ": marker ", value,
                                       ", attempted ", attempted));
    }
    if (op.state == State::kNoEffect) {
      findings->push_back(absl::StrCat("[violation] transfer ", txn, " of node ", op.node,
                                       " was refused (no effect) but its marker is on shard ",
                                       shard));
    }
    if (op.state == State::kRolledBack) {
      findings->push_back(absl::StrCat("[violation] named transfer ", txn, " of node ", op.node,
                                       " was rolled back (RollbackPrepared OK) but its marker is "
                                       "on shard ",
                                       shard));
    } else if (op.named && named_seed_.has_value() && !ReplNamedCommits(*named_seed_, txn)) {
      findings->push_back(absl::StrCat("[violation] named transfer ", txn, " of node ", op.node,
                                       " committed, but the coordinator only ever rolls it back "
                                       "(marker on shard ",
                                       shard, ")"));
    }
    if (part->said == Said::kAborted) {
      findings->push_back(absl::StrCat("[violation] GetOutcomeOfKey said aborted for transfer ",
                                       txn, ", but its marker is on shard ", shard));
    }
    if (part->committed.has_value()) {
      if (!*part->committed) {
        findings->push_back(absl::StrCat("[violation] transfer ", txn,
                                         " was settled as not committed and its marker appeared "
                                         "later on shard ",
                                         shard));
      }
      continue;
    }
    part->committed = true;
    part->in_doubt = false;
    if (shard == op.shard) balances_[shard][op.from] -= op.amount;
    if (shard == op.to_shard) balances_[shard][op.to] += op.amount;
    CountSettled(txn, op, findings);
  }
  for (auto& [txn, op] : ops_) {
    Part* part = op.PartOn(shard);
    if (part == nullptr || markers.contains(txn)) continue;
    if (part->committed.has_value()) {
      if (*part->committed) {
        findings->push_back(absl::StrCat("[lost] transfer ", txn, " of node ", op.node,
                                         " on shard ", shard, " was seen committed but its marker ",
                                         ReplMarkerKey(shard, txn), " is missing on the leader"));
        part->committed = false;  // reported once
      }
      continue;
    }
    // Prepared on the leader and undecided: settled by neither outcome yet (asked again later).
    // So is a cross-shard part the leader says committed while its writes are not there: the
    // decision committed, this part's commit entry did not (it stays prepared, keys locked,
    // until the resolver applies it; docs/replicated-2pc-plan.md, step 2, test 4).
    part->in_doubt = part->said == Said::kInDoubt || (op.cross() && part->said == Said::kCommitted);
    if (part->in_doubt) continue;
    if (op.state == State::kAcked) {
      findings->push_back(absl::StrCat(
          "[lost] transfer ", txn, " of node ", op.node, " on shard ", shard,
          " was acknowledged but its marker ", ReplMarkerKey(shard, txn),
          " is missing on the leader",
          op.cross() ? absl::StrCat(" (cross-shard, from shard ", op.shard, " to ", op.to_shard,
                                    "; GetOutcomeOfKey there said ", SaidName(part->said), ")")
                     : ""));
      part->committed = false;  // reported once
      continue;
    }
    if (part->said == Said::kCommitted) {
      findings->push_back(absl::StrCat("[violation] GetOutcomeOfKey said committed for transfer ",
                                       txn, ", but its marker is missing on shard ", shard));
    }
    part->committed = false;
    CountSettled(txn, op, findings);
  }
  int64_t total = 0, want_total = 0;
  for (int i = 0; i < kReplAccounts; ++i) {
    const int64_t have = accounts.contains(i) ? accounts[i] : 0;
    const int64_t want = balances_[shard].contains(i) ? balances_[shard][i] : 0;
    total += have;
    want_total += want;
    if (have != want) {
      findings->push_back(absl::StrCat("[violation] ", AccountKey(shard, i), " is ", have,
                                       ", the committed transfers (markers present) make it ",
                                       want));
    }
  }
  scanned_totals_[shard] = total;
  scanned_cycle_[shard] = std::move(cycle);
  if (total != want_total) {
    findings->push_back(absl::StrCat("[violation] shard ", shard, ": the bank total is ", total,
                                     ", not ", want_total));
  }
}

void ReplModel::VerifyTotal(std::vector<std::string>* findings) {
  // The cycle's nodes, from every shard's last scan (absent: the default successor).
  std::map<int, int> next;
  for (const std::map<int, int>& c : scanned_cycle_) next.insert(c.begin(), c.end());
  std::string broken;
  if (!ReplOneCycle(next, kReplCycleNodes * shards_, &broken)) {
    findings->push_back(absl::StrCat("[violation] the cycle is broken on the leaders: ", broken));
  }
  int64_t total = 0, in_doubt = 0;
  for (int64_t t : scanned_totals_) total += t;
  for (const auto& [txn, op] : ops_) {
    if (!op.cross()) continue;
    for (size_t i = 0; i < 2; ++i) {
      const Part& p = op.parts[i];
      const Part& other = op.parts[1 - i];
      if (p.in_doubt && !p.committed.has_value() && other.committed.value_or(false)) {
        in_doubt += i == 0 ? -op.amount : op.amount;
      }
    }
  }
  if (total + in_doubt != 0) {
    findings->push_back(absl::StrCat(
        "[violation] the bank total over all shards is ", total,
        in_doubt != 0 ? absl::StrCat(" (", total + in_doubt, " counting the in-doubt halves)") : "",
        ", not 0"));
  }
}

}  // namespace shardtx::crashtest
