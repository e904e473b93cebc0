// The in-doubt resolver over replicated shards (issue 17 step 4): InDoubtResolver's queue and
// thread, and Coordinator::ResolveReplicated, the rule applied to one transaction
// (docs/replicated-2pc-plan.md sections 1 and 4; contracts in replicated_resolver.h and
// coordinator.h). The entries are proposed by the leader's own commit path
// (CommitReplicatedParts, AbortReplicatedParts, txn/replicated_commit.cc).
#include "txn/replicated_resolver.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "engine/replicated_log.h"
#include "txn/coordinator.h"
#include "txn/database_impl.h"

namespace shardtx::txn {

Coordinator::Resolution Coordinator::ResolveReplicated(uint64_t txn_id) {
  auto busy = [this, txn_id] {
    MutexLock l(&committing_mu_);
    return committing_.contains(txn_id);
  };
  if (busy()) return Resolution::kBusy;
  std::optional<TwoPhaseState::PreparedInfo> info = state_.Prepared(txn_id);
  if (!info.has_value()) return Resolution::kGone;
  const std::vector<uint32_t>& participants = info->participants;
  // The terms first: the evidence read after them is the applied state of those terms (a ready
  // leader has applied every committed entry), and entries proposed in them are refused if
  // leadership moved meanwhile.
  std::vector<uint64_t> terms(db_->num_shards(), 0);
  for (uint32_t p : participants) {
    engine::ReplicatedLog* log = db_->replicated_log(p);
    if (log == nullptr || !log->CheckLeader().ok()) return Resolution::kNotLeader;
    terms[p] = log->StampRead().term;
    if (terms[p] == 0) return Resolution::kNotLeader;
  }
  bool commit = false;
  engine::Timestamp commit_ts = 0;
  std::vector<uint32_t> present;
  {
    ShardLocks locks(db_, participants);
    // Checked again under the locks: a commit begun since has added its parts under them.
    if (busy()) return Resolution::kBusy;
    info = state_.Prepared(txn_id);
    if (!info.has_value()) return Resolution::kGone;
    present = info->shards;
    const Database::Outcome window = state_.WindowOutcome(txn_id);
    // The transaction's commit timestamp, if a record of it told this node (a part prepared
    // again after it keeps it; the outcome window too).
    commit_ts = info->commit_ts != 0 ? info->commit_ts : state_.WindowCommitTs(txn_id);
    bool commit_seen =
        info->commit_begun || window == Database::Outcome::kCommitted || commit_ts != 0;
    const bool abort_seen = info->abort_begun || window == Database::Outcome::kAborted;
    std::vector<PartEvidence> parts(participants.size());
    for (size_t i = 0; i < participants.size(); ++i) {
      const uint32_t p = participants[i];
      parts[i].prepare = std::binary_search(present.begin(), present.end(), p);
      // A commit record of a part no longer prepared here is a commit, also one a snapshot
      // install carried (the shard's released table is in its copy; the phase is not).
      db_->shard(p)->commit_mu()->AssertHeld();
      if (!parts[i].prepare &&
          db_->shard(p)->ReleasedTxnLocked(txn_id) == engine::ReleasedTxns::State::kReleased) {
        commit_seen = true;
      }
    }
    if (!parts.empty()) parts[0].abort = abort_seen;
    if (info->name.empty()) {
      commit = DecideInDoubt(commit_seen, parts) == InDoubtVerdict::kCommit;
    } else if (commit_seen) {
      commit = true;
    } else if (!abort_seen && std::all_of(parts.begin(), parts.end(),
                                          [](const PartEvidence& e) { return e.prepare; })) {
      return Resolution::kLeftForHost;
    }
  }
  if (commit) {
    // A named transaction's decision is on record (it is committing); ours gets one now if its
    // coordinator's part is still prepared.
    const std::vector<uint32_t> decision =
        info->name.empty() ? participants : std::vector<uint32_t>{};
    // At the timestamp the transaction took, if a record here or this node's own commit tells
    // it: every replica then has the whole transaction at one timestamp.
    CommitReplicatedParts(txn_id, present, terms, decision, commit_ts);
    return Resolution::kCommitted;
  }
  AbortReplicatedParts(txn_id, present, terms);
  state_.SetOutcome(txn_id, Database::Outcome::kAborted);
  return Resolution::kAborted;
}

void Coordinator::NoteInDoubt(uint64_t txn_id) {
  if (InDoubtResolver* r = resolver_.load(); r != nullptr) r->Queue(txn_id);
}

InDoubtResolver::InDoubtResolver(DatabaseImpl* db, uint32_t num_shards)
    : db_(db), ready_term_(num_shards, 0), ready_at_(num_shards) {
  thread_ = std::thread([this] { Run(); });
}

InDoubtResolver::~InDoubtResolver() { Stop(); }

void InDoubtResolver::Stop() {
  {
    MutexLock l(&mu_);
    stop_ = true;
    cv_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

void InDoubtResolver::ShardReady(uint32_t shard, bool ready_leader, uint64_t term) {
  MutexLock l(&mu_);
  if (stop_ || shard >= ready_term_.size()) return;
  if (!ready_leader) {
    ready_term_[shard] = 0;
    return;
  }
  if (ready_term_[shard] == term) return;
  ready_term_[shard] = term;
  ready_at_[shard] = Clock::now();
  scan_.push_back(shard);
  work_ = true;
  cv_.Signal();
}

void InDoubtResolver::Queue(uint64_t txn_id) {
  MutexLock l(&mu_);
  if (stop_) return;
  queue_.try_emplace(txn_id, Clock::now());
  work_ = true;
  cv_.Signal();
}

InDoubtResolverStats InDoubtResolver::Stats() {
  MutexLock l(&mu_);
  return stats_;
}

void InDoubtResolver::Run() {
  MutexLock l(&mu_);
  while (!stop_) {
    if (!work_) {
      cv_.Wait();
      continue;
    }
    work_ = false;
    std::vector<uint32_t> scan = std::move(scan_);
    scan_.clear();
    auto queued = std::move(queue_);
    queue_.clear();
    mu_.Unlock();
    Pass(std::move(scan), std::move(queued));
    mu_.Lock();
    // Paces the retries of a transaction put back again at once (an entry refused as it is
    // proposed), so a pass is not repeated in a tight loop; a new ready shard waits no longer.
    if (work_ && scan_.empty() && !stop_) cv_.WaitFor(std::chrono::milliseconds(10));
  }
}

void InDoubtResolver::Pass(std::vector<uint32_t> scan,
                           absl::flat_hash_map<uint64_t, Clock::time_point> queued) {
  TwoPhaseState& state = db_->coordinator().state();
  for (uint32_t shard : scan) {
    Clock::time_point at;
    {
      MutexLock l(&mu_);
      at = ready_at_[shard];
    }
    for (const TwoPhaseState::PreparedInfo& p : state.AllPrepared()) {
      if (std::binary_search(p.shards.begin(), p.shards.end(), shard)) {
        queued.try_emplace(p.txn_id, at);
      }
    }
  }
  absl::flat_hash_map<uint64_t, Clock::time_point> waiting;
  for (const auto& [id, found_at] : queued) {
    const Coordinator::Resolution r = db_->coordinator().ResolveReplicated(id);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - found_at).count();
    MutexLock l(&mu_);
    // Found in doubt: counted once, when first seen prepared and not this node's own commit
    // still running, until it leaves the resolver.
    if (r != Coordinator::Resolution::kGone && r != Coordinator::Resolution::kBusy &&
        known_.insert(id).second) {
      stats_.found++;
    }
    if (r != Coordinator::Resolution::kNotLeader && r != Coordinator::Resolution::kBusy) {
      known_.erase(id);
    }
    switch (r) {
      case Coordinator::Resolution::kGone:
        break;
      case Coordinator::Resolution::kNotLeader:
        waiting.emplace(id, found_at);  // tried again when another shard becomes ready-led here
        break;
      case Coordinator::Resolution::kBusy:
        // Tried again at the next pass, which comes soon (paced): the commit may put a part
        // back (and queue it) before it returns.
        waiting.emplace(id, found_at);
        work_ = true;
        break;
      case Coordinator::Resolution::kLeftForHost:
        stats_.left_for_host++;
        break;
      case Coordinator::Resolution::kCommitted:
      case Coordinator::Resolution::kAborted:
        (r == Coordinator::Resolution::kCommitted ? stats_.resolved_committed
                                                  : stats_.resolved_aborted)++;
        stats_.last_resolve_ms = ms;
        stats_.max_resolve_ms = std::max(stats_.max_resolve_ms, ms);
        break;
    }
  }
  MutexLock l(&mu_);
  for (auto& [id, at] : waiting) queue_.try_emplace(id, at);
}

}  // namespace shardtx::txn
