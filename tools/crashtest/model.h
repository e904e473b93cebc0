// Model: what the crashtest parent knows the database must hold, built only from what its
// children reported (protocol.h) and from its own writes. After each crash it checks the
// recovered database against itself, deciding the operations whose outcome is unknown (in
// flight at the crash, or failed with an I/O error) from what the database shows, under the
// rule that an operation is applied entirely or not at all.
//
// Checks: every acknowledged write present with its latest acknowledged value (else "lost");
// acknowledged deletes stay deleted; async commits survive as a prefix of each shard's commit
// order (by commit timestamp), and none is lost that an acknowledged operation with a synced
// record on its shard made durable (see CheckAsyncPrefix); no operation partly applied
// (transfer markers on each participant shard); every account balance and the bank total exact;
// no key that was never written; named prepared transactions listed, invisible and still
// locking every key they wrote, on every participant; Database::GetOutcome consistent.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "shardtx/database.h"
#include "tools/crashtest/protocol.h"

namespace shardtx::crashtest {

struct Violation {
  bool lost = false;  // an acknowledged write is missing (else: another broken invariant)
  std::string key;    // the first offending key ("-" if none)
  std::string what;
};

class Model {
 public:
  Model(int shards, int threads);

  // Writes the initial state into a new database: the accounts and the markers.
  absl::Status Initialize(Database* db);

  // Starts a round: the lines that follow come from its child (or children).
  void StartRound(int round, bool powerloss);
  // The lines that follow come from the round's next child (a round may run two: see the
  // driver's recovery points). Report order says what happened before what only within one.
  void StartChild();
  void OnLine(absl::string_view line);

  // Verifies the recovered database (after a crash) and brings the model up to date. Sets
  // verified_this_round() to the number of this round's acknowledged durable operations it
  // checked (0 unless the verification ran to its end).
  void Verify(Database* db, std::vector<Violation>* out);

  // Verifies again after the parent's own steps, a clean Close and a reopen (nothing in
  // flight): a clean restart, and recovering a recovered database, must change nothing.
  void VerifyReopened(Database* db, std::vector<Violation>* out);

  // The parent's own steps between rounds: commits or rolls back some of the named prepared
  // transactions (always the oldest when too many are pending), and deletes old inserted keys
  // so the database stays small enough to scan every round.
  void DecidePending(Database* db, std::mt19937_64& rng, std::vector<Violation>* out);
  void Cleanup(Database* db, std::mt19937_64& rng, std::vector<Violation>* out);

  std::vector<std::string> PendingNames() const;
  uint64_t acked_this_round() const { return acked_round_; }
  // Acknowledged operations of this round whose durability the last Verify checked: sync
  // commits, named prepares and their decisions (async commits promise nothing on their own).
  uint64_t verified_this_round() const { return verified_round_; }
  uint64_t verified_total() const { return verified_total_; }
  uint64_t acked_total() const { return acked_total_; }
  size_t keys() const { return kv_.size(); }

 private:
  using Writes = std::vector<std::pair<std::string, std::optional<std::string>>>;
  enum class OpState { kInFlight, kAcked, kAborted, kUnknown };
  struct Op {
    int thread = 0;
    uint64_t seq = 0;
    Intent intent;
    OpState state = OpState::kInFlight;
    uint64_t ts = 0;  // commit timestamp of an acknowledged single-shard commit
    int shard = -1;
    int child = 0;             // which of the round's children reported it
    uint64_t intent_line = 0;  // positions of its intent and result lines in the round's
    uint64_t result_line = 0;  // reports (one pipe: a total order of the child's write(2)s)
    // Shards on which the operation, once acknowledged, has had a record synced that it
    // appended after its intent line (see SyncedShards).
    std::vector<int> synced_shards;
    std::string error;
    std::optional<bool> applied;  // decided at verification
  };
  struct Prepared {
    uint64_t txn_id = 0;
    std::string from, to;
    int64_t amount = 0;
    Writes writes;
  };
  using Snapshot = std::map<std::string, std::string>;

  void ApplyAcked(Op& op, std::vector<Violation>* out);
  // The shards on which operation `in`, if acknowledged, synced a record of its own.
  std::vector<int> SyncedShards(const Intent& in) const;
  // The participant shards of a named prepare (shard 0 for one that wrote nothing).
  static std::vector<int> ParticipantShards(const std::string& from, const std::string& to,
                                            const Writes& writes, bool named_prepare);
  // The checks of Verify; false if they could not all run (the scan failed).
  bool VerifyState(Database* db, std::vector<Violation>* out);
  void ApplyWrites(const Writes& w);
  void ApplyDelta(const std::string& from, const std::string& to, int64_t amount);
  void CommitPending(const std::string& name);

  // Applied (true), not applied (false) or partly (a violation, nullopt) judging by `db`.
  std::optional<bool> Resolve(const Op& op, const Snapshot& db, std::vector<Violation>* out);
  void ResolvePrepares(Database* db, std::vector<Violation>* out);
  // Another resolution of op's name, with the other decision, whose outcome is not known.
  bool HasRivalInFlight(const Op& op) const;
  // Some write of prepared transaction `p` is visible in `db` (it was committed).
  bool PreparedWritesVisible(Database* db, const Prepared& p) const;
  void ResolveOthers(const Snapshot& snap, std::vector<Violation>* out);
  void CheckAsyncPrefix(const Snapshot& snap, std::vector<Violation>* out);
  void CheckContents(const Snapshot& snap, std::vector<Violation>* out);
  void CheckLocks(Database* db, std::vector<Violation>* out);
  void CheckOutcome(Database* db, uint64_t txn_id, bool applied, const std::string& what,
                    std::vector<Violation>* out);

  const int shards_;
  const int threads_;
  int round_ = 0;
  bool powerloss_ = false;
  uint64_t acked_round_ = 0;
  uint64_t acked_total_ = 0;
  uint64_t verified_round_ = 0;
  uint64_t verified_total_ = 0;
  int child_ = 0;
  uint64_t line_ = 0;  // lines received this round

  std::map<std::string, std::string> kv_;    // every key but the accounts
  std::set<std::string> deleted_;            // acknowledged deletes
  std::map<std::string, int64_t> balances_;  // account -> balance
  std::map<std::string, Prepared> pending_;  // undecided named prepares
  std::vector<std::string> pending_order_;   // oldest first

  std::vector<Op> ops_;  // this round's, in intent order
  std::map<std::pair<int, uint64_t>, size_t> op_index_;
  std::vector<Violation> reported_;  // V/E lines, unexpected errors
};

}  // namespace shardtx::crashtest
