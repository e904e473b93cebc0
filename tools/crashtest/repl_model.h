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
//
// A cross-shard transfer (accounts on two shards, issue 17) writes a marker on each shard, and
// each shard's scan settles its part. Both parts must settle alike (atomicity). A part whose
// marker is missing while the shard's leader answers that the transaction is prepared there and
// not decided (GetOutcomeOfKey: kUnavailable "being resolved"), or decided committed while the
// part's own commit entry did not commit (GetOutcomeOfKey: kCommitted), is in doubt: not settled,
// asked again after the next round, counted by InDoubt() (the resolver of issue 17 step 4 decides
// such parts; until it does, the run reports them rather than failing on them).
//
// A named transfer (issue 17) is prepared under a name (Transaction::Prepare) by a node's
// workload and decided later by the host's coordinator (a thread of whichever node leads its
// shards), always the same way for one transfer (ReplNamedCommits). A CommitPrepared that
// returned OK acknowledges it: its markers must be present, as an acknowledged commit's. A
// RollbackPrepared that returned OK means they must never appear, as a refused commit's. A
// prepare or decision of unknown outcome is settled by the scans like any other. A transfer
// the leader still lists as prepared (ListPrepared) is in doubt until decided.
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
  enum class Said { kNothing, kCommitted, kAborted, kInDoubt };

  explicit ReplModel(int shards)
      : shards_(shards), balances_(shards), scanned_totals_(shards, 0), scanned_cycle_(shards) {}

  // Reports (repl_protocol.h). `node` is the reporting node's id.
  // `to_shard` < 0: `shard` (a transfer inside one shard).
  void Intent(uint64_t node, uint64_t txn, int shard, int from, int to, int64_t amount,
              int to_shard = -1);
  void Acked(uint64_t node, uint64_t txn, uint64_t term_before, uint64_t term_after);
  void NoEffect(uint64_t txn);
  void Unknown(uint64_t txn);
  // A named transfer: its intent (as Intent), its Prepare returned OK, and its decisions: about
  // to be made (`commit` or a rollback), made (OK), or of unknown outcome. A decision that
  // decided nothing (refused) changes nothing.
  void NamedIntent(uint64_t node, uint64_t txn, int shard, int from, int to, int64_t amount,
                   int to_shard);
  void Prepared(uint64_t txn);
  void Deciding(uint64_t txn, bool commit);
  void Decided(uint64_t txn, uint64_t node = 0);  // `node`: the deciding node's id (0: not said)
  void DecisionUnknown(uint64_t txn);
  // The seed of the coordinator's decisions (ReplNamedCommits): a marker of a named transfer it
  // would roll back is a violation. Without it, the decisions are not checked.
  void SetNamedSeed(uint64_t seed) { named_seed_ = seed; }
  // A follower reader of node `node` saw a broken invariant (`what`): a finding.
  void ReaderViolation(uint64_t node, const std::string& what);
  // What GetOutcomeOfKey said on the leader of `shard` about the transfer's marker there
  // (checked against the scan by Verify). Without a shard: the transfer's first shard.
  void NoteSaid(uint64_t txn, Said said);
  void NoteSaid(uint64_t txn, int shard, Said said);

  // The transfers with a part on `shard` not settled yet, with their marker keys there: ask
  // about them. Cross-shard ones also when acknowledged (a part may be in doubt).
  std::vector<std::pair<uint64_t, std::string>> Unsettled(int shard) const;

  // Checks a confirmed scan of `shard` on its ready leader (every key of the shard) and settles
  // every transfer of it. Appends findings, each "[lost] ..." (an acknowledged transfer missing)
  // or "[violation] ..." (any other broken rule) to `findings`.
  void Verify(int shard, const std::map<std::string, std::string>& scan,
              std::vector<std::string>* findings);
  // After Verify of every shard: the bank total over all shards' last scans is 0 once each
  // in-doubt part whose other part committed is counted as if it committed too, and the cycle's
  // nodes (repl_protocol.h) make one cycle.
  void VerifyTotal(std::vector<std::string>* findings);

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
  uint64_t cross_committed() const { return cross_committed_; }
  uint64_t named_prepared() const { return named_prepared_; }
  uint64_t named_committed() const { return named_committed_; }      // CommitPrepared OK
  uint64_t named_rolled_back() const { return named_rolled_back_; }  // RollbackPrepared OK
  // ... of those, decided by a node other than the one that prepared them (after a failover,
  // the new leader's coordinator lists them).
  uint64_t named_decided_elsewhere() const { return named_decided_elsewhere_; }
  uint64_t reader_violations() const { return reader_violations_; }
  // Parts now in doubt (see above), and the transfers they belong to as text ("txn on shard g,
  // ...", at most `limit` named).
  uint64_t InDoubt() const;
  std::string InDoubtText(size_t limit) const;

 private:
  // kPrepared: a named transfer's Prepare returned OK, no decision returned yet; kRolledBack: its
  // RollbackPrepared returned OK (no effect, final).
  enum class State { kIntent, kAcked, kNoEffect, kUnknown, kPrepared, kRolledBack };
  // The transfer's writes on one shard, settled by that shard's scan.
  struct Part {
    int shard = 0;
    enum Said said = Said::kNothing;
    std::optional<bool> committed;  // settled
    bool in_doubt = false;          // marker missing, the leader holds it prepared
  };
  struct Op {
    uint64_t node = 0;
    int shard = 0, to_shard = 0;  // equal: inside one shard
    int from = 0, to = 0;
    int64_t amount = 0;
    State state = State::kIntent;
    std::vector<Part> parts;  // shard's, then to_shard's if another
    bool counted = false;     // every part settled, counted in the totals
    bool named = false;       // prepared under a name, decided by the coordinator
    int decisions = 0;        // decisions the coordinator began (Deciding)
    bool decide_commit = false;  // the last one's kind
    bool cross() const { return shard != to_shard; }
    Part* PartOn(int g) {
      for (Part& p : parts) {
        if (p.shard == g) return &p;
      }
      return nullptr;
    }
    const Part* PartOn(int g) const {
      for (const Part& p : parts) {
        if (p.shard == g) return &p;
      }
      return nullptr;
    }
  };
  // Counts `op` once every part is settled; a violation if they settled differently.
  void CountSettled(uint64_t txn, Op& op, std::vector<std::string>* findings);

  const int shards_;
  std::map<uint64_t, Op> ops_;
  std::vector<std::map<int, int64_t>> balances_;                // per shard: of the committed parts
  std::vector<int64_t> scanned_totals_;                         // per shard: the last scan's sum
  std::vector<std::map<int, int>> scanned_cycle_;  // per shard: its cycle nodes' successors
  std::map<std::pair<int, uint64_t>, uint64_t> acked_in_term_;  // (shard, term) -> node
  std::vector<std::string> report_findings_;
  std::optional<uint64_t> named_seed_;
  uint64_t named_prepared_ = 0, named_committed_ = 0, named_rolled_back_ = 0,
           named_decided_elsewhere_ = 0, reader_violations_ = 0;
  uint64_t acked_ = 0, acked_verified_ = 0, unknown_ = 0, unknown_resolved_ = 0,
           unanswered_resolved_ = 0, no_effect_ = 0, committed_ = 0, cross_committed_ = 0;
};

}  // namespace shardtx::crashtest
