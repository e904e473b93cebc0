// The parent's model of `crashtest --mode=replicated` (repl_driver.h) and its checks, kept apart
// from the processes so that tests/tools/ can feed it fabricated states.
//
// Every transfer a node attempts is reported before Commit (intent) and after it (acknowledged,
// no effect, or outcome unknown); a node killed mid-commit leaves an intent alone. The model
// keeps each transfer as "maybe" until a verification settles it: a transfer committed iff its
// marker (repl_protocol.h) is on the shard's ready leader, read by a confirmed scan once the
// workload stopped. Why a marker's absence there is final: that leader's term began with an
// entry of its own, committed, and an entry of an earlier term not committed by then never is
// (Raft); every node's workload has returned, so nothing of the transfer is still proposed.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace shardtx::crashtest {

class ReplModel {
 public:
  enum class Said { kNothing, kCommitted, kAborted };

  explicit ReplModel(int shards) : shards_(shards), balances_(shards) {}

  // Reports (repl_protocol.h). `node` is the reporting node's id.
  void Intent(uint64_t node, uint64_t txn, int shard, int from, int to, int64_t amount);
  void Acked(uint64_t node, uint64_t txn, uint64_t term_before, uint64_t term_after);
  void NoEffect(uint64_t txn);
  void Unknown(uint64_t txn);
  // What GetOutcomeOfKey said on the shard's leader (checked against the scan by Verify).
  void NoteSaid(uint64_t txn, Said said);

  // The transfers of `shard` not settled yet, with their marker keys: ask about them.
  std::vector<std::pair<uint64_t, std::string>> Unsettled(int shard) const;

  // Checks a confirmed scan of `shard` on its ready leader (every key of the shard) and settles
  // every transfer of it. Appends findings, each "[lost] ..." (an acknowledged transfer missing)
  // or "[violation] ..." (any other broken rule) to `findings`.
  void Verify(int shard, const std::map<std::string, std::string>& scan,
              std::vector<std::string>* findings);

  // Findings of the reports themselves (two leaders acknowledged in one term), drained.
  std::vector<std::string> TakeReportFindings();

  // Counters for the summary.
  uint64_t acked() const { return acked_; }
  uint64_t acked_verified() const { return acked_verified_; }
  uint64_t unknown() const { return unknown_; }
  uint64_t unknown_resolved() const { return unknown_resolved_; }
  uint64_t unanswered_resolved() const { return unanswered_resolved_; }
  uint64_t no_effect() const { return no_effect_; }
  uint64_t committed() const { return committed_; }

 private:
  enum class State { kIntent, kAcked, kNoEffect, kUnknown };
  struct Op {
    uint64_t node = 0;
    int shard = 0;
    int from = 0, to = 0;
    int64_t amount = 0;
    State state = State::kIntent;
    enum Said said = Said::kNothing;
    std::optional<bool> committed;  // settled
  };

  const int shards_;
  std::map<uint64_t, Op> ops_;
  std::vector<std::map<int, int64_t>> balances_;  // per shard: of the committed transfers
  std::map<std::pair<int, uint64_t>, uint64_t> acked_in_term_;  // (shard, term) -> node
  std::vector<std::string> report_findings_;
  uint64_t acked_ = 0, acked_verified_ = 0, unknown_ = 0, unknown_resolved_ = 0,
           unanswered_resolved_ = 0, no_effect_ = 0, committed_ = 0;
};

}  // namespace shardtx::crashtest
