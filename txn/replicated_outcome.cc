#include "txn/replicated_outcome.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "engine/log_record.h"
#include "txn/database_impl.h"
#include "util/mutex.h"
#include "util/status_latch.h"
#include "util/status_macros.h"

namespace shardtx::txn {

// Why "not released before the fence" is final (kAborted) for an id that is not this process's:
// its entry, if any, was proposed before the caller asked, by another process (another node, or
// an earlier incarnation of this one), so in a term other than the fence's, whose leader was
// this process. If that term is older: the entry was either in this leader's log when it was
// elected, below its term-start entry, hence released here before the fence; or it was not, and
// then it is never committed (every later leader holds the committed term-start entry, and a log
// never has an older term after a newer one, so no later leader's log holds it). If that term
// were newer, its leader was elected before the fence was proposed, by a majority that had seen
// the newer term, and the fence of the older term could not have been committed. The fence also
// makes a deposed leader that still believes it leads answer kUnavailable, not kAborted.

namespace {

// An empty commit (txn id 0, no writes) proposed through the shard's log, waited for.
class Fence final : public engine::ReplicatedLog::Proposal {
 public:
  void Committed(engine::RaftPosition) override { done_.Set(absl::OkStatus()); }
  // A status of its own, sharing no representation with the caller's, which the replication
  // thread destroys while the waiter may still read this one (TSan reported the shared one).
  void Unknown(const absl::Status& status) override {
    done_.Set(absl::Status(status.code(), status.message()));
  }
  void Refused(const absl::Status& status) override {
    done_.Set(absl::Status(status.code(), status.message()));
  }
  absl::Status Wait() { return done_.Wait(); }

 private:
  StatusLatch done_;
};

}  // namespace

absl::StatusOr<Database::Outcome> ReplicatedOutcomeOnShard(DatabaseImpl* db, uint32_t shard,
                                                           uint64_t id) {
  using Outcome = Database::Outcome;
  using State = engine::ReleasedTxns::State;
  engine::Shard* s = db->shard(shard);
  engine::ReplicatedLog* log = db->replicated_log(shard);
  auto state = [s, id] {
    MutexLock l(s->commit_mu());
    return s->ReleasedTxnLocked(id);
  };
  if (state() == State::kReleased) return Outcome::kCommitted;
  if (log == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("shard ", shard, " is not replicated"));
  }
  RETURN_IF_ERROR(log->CheckLeader());
  if (db->txn_ids().Own(id)) return Outcome::kUnknown;
  // A cross-shard transaction with a part prepared here, not resolved: in doubt, not a guess.
  auto in_doubt = [&] {
    return absl::UnavailableError(absl::StrCat(
        "shard ", shard, ": cross-shard transaction ", id,
        " is prepared here and not decided yet: being resolved (the in-doubt resolver decides it "
        "once this node leads every participant); ask again later"));
  };
  if (db->coordinator().state().HasPart(id, shard)) return in_doubt();
  if (state() == State::kMaybeEvicted) return Outcome::kUnknown;
  std::string entry;
  engine::AppendEntryRecord(&entry, engine::kCommit, engine::EncodeCommit(0, 0, {}));
  Fence fence;
  {
    MutexLock l(s->commit_mu());
    // The fence must be proposed and released in the term this replica leads, ready, now (the
    // proof above rests on a fence committed in this leader's own term, proposed after the
    // question; it needs no term from before the question). So the term given is the current
    // one, read here: if leadership moved since CheckLeader, it is 0 or no longer led, and
    // ProposeLocked refuses (kUnavailable, no effect), as it does a fence that would otherwise
    // be released in another term.
    RETURN_IF_ERROR(log->ProposeLocked(entry, log->StampRead().term, &fence));
  }
  if (absl::Status f = fence.Wait(); !f.ok()) {
    return absl::UnavailableError(absl::StrCat("shard ", shard,
                                               ": could not confirm this leader's term to answer "
                                               "for transaction ",
                                               id, " (", f.message(), "); ask the leader again"));
  }
  switch (state()) {
    case State::kReleased:
      return Outcome::kCommitted;
    case State::kMaybeEvicted:
      return Outcome::kUnknown;
    case State::kNotReleased:
      break;
  }
  // Every entry committed before the fence is applied here: a prepare of it among them that is
  // still unresolved keeps it in doubt; none (never prepared here, or aborted) is final.
  if (db->coordinator().state().HasPart(id, shard)) return in_doubt();
  return Outcome::kAborted;
}

}  // namespace shardtx::txn
