#include "tools/crashtest/repl_model.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tools/crashtest/layout.h"
#include "tools/crashtest/repl_protocol.h"

namespace shardtx::crashtest {

void ReplModel::Intent(uint64_t node, uint64_t txn, int shard, int from, int to, int64_t amount) {
  Op& op = ops_[txn];
  op.node = node;
  op.shard = shard;
  op.from = from;
  op.to = to;
  op.amount = amount;
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

void ReplModel::NoteSaid(uint64_t txn, enum Said said) {
  auto it = ops_.find(txn);
  if (it != ops_.end()) it->second.said = said;
}

std::vector<std::pair<uint64_t, std::string>> ReplModel::Unsettled(int shard) const {
  std::vector<std::pair<uint64_t, std::string>> out;
  for (const auto& [txn, op] : ops_) {
    if (op.shard == shard && !op.committed.has_value() && op.state != State::kNoEffect &&
        op.state != State::kAcked) {
      out.emplace_back(txn, ReplMarkerKey(shard, txn));
    }
  }
  return out;
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
  for (const auto& [key, value] : scan) {
    uint64_t txn = 0;
    int account = -1;
    int64_t balance = 0;
    if (absl::StartsWith(key, marker_prefix) &&
        absl::SimpleHexAtoi(key.substr(marker_prefix.size()), &txn)) {
      markers[txn] = value;
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
    if (it == ops_.end() || it->second.shard != shard) {
      findings->push_back(absl::StrCat("[violation] shard ", shard, ": marker of transfer ", txn,
                                       " that no node of this shard attempted"));
      continue;
    }
    Op& op = it->second;
    if (value != ReplMarkerValue(op.from, op.to, op.amount)) {
      findings->push_back(absl::StrCat("[violation] transfer ", txn, ": marker ", value,
                                       ", attempted ", ReplMarkerValue(op.from, op.to, op.amount)));
    }
    if (op.state == State::kNoEffect) {
      findings->push_back(absl::StrCat("[violation] transfer ", txn, " of node ", op.node,
                                       " was refused (no effect) but its marker is on shard ",
                                       shard));
    }
    if (op.said == Said::kAborted) {
      findings->push_back(absl::StrCat("[violation] GetOutcomeOfKey said aborted for transfer ",
                                       txn, ", but its marker is on shard ", shard));
    }
    if (op.committed.has_value()) {
      if (!*op.committed) {
        findings->push_back(absl::StrCat("[violation] transfer ", txn,
                                         " was settled as not committed and its marker appeared "
                                         "later on shard ",
                                         shard));
      }
      continue;
    }
    op.committed = true;
    ++committed_;
    balances_[shard][op.from] -= op.amount;
    balances_[shard][op.to] += op.amount;
    if (op.state == State::kAcked) ++acked_verified_;
    if (op.state == State::kUnknown) ++unknown_resolved_;
    if (op.state == State::kIntent) ++unanswered_resolved_;
  }
  for (auto& [txn, op] : ops_) {
    if (op.shard != shard || markers.contains(txn)) continue;
    if (op.committed.value_or(false) || op.state == State::kAcked) {
      findings->push_back(
          absl::StrCat("[lost] transfer ", txn, " of node ", op.node, " on shard ", shard,
                       op.state == State::kAcked ? " was acknowledged" : " was seen committed",
                       " but its marker ", ReplMarkerKey(shard, txn), " is missing on the leader"));
      op.committed = false;  // reported once
      continue;
    }
    if (op.committed.has_value()) continue;
    if (op.said == Said::kCommitted) {
      findings->push_back(absl::StrCat("[violation] GetOutcomeOfKey said committed for transfer ",
                                       txn, ", but its marker is missing on shard ", shard));
    }
    op.committed = false;
    if (op.state == State::kUnknown) ++unknown_resolved_;
    if (op.state == State::kIntent) ++unanswered_resolved_;
  }
  int64_t total = 0;
  for (int i = 0; i < kReplAccounts; ++i) {
    const int64_t have = accounts.contains(i) ? accounts[i] : 0;
    const int64_t want = balances_[shard].contains(i) ? balances_[shard][i] : 0;
    total += have;
    if (have != want) {
      findings->push_back(absl::StrCat("[violation] ", AccountKey(shard, i), " is ", have,
                                       ", the committed transfers (markers present) make it ",
                                       want));
    }
  }
  if (total != 0) {
    findings->push_back(
        absl::StrCat("[violation] shard ", shard, ": the bank total is ", total, ", not 0"));
  }
}

}  // namespace shardtx::crashtest
