// EXPERIMENTAL (docs/replication-plan.md §6 and §8 step 5): the Raft group of one replicated
// shard as the transaction layer's commit path sees it. Defined here, below both users, so that
// txn/ never sees Raft and replication/ never sees transactions: replication/ implements
// ReplicatedLog (over its simulated group today), txn/ implements Proposal and Listener.
//
// A leader's commit: under the shard's commit_mu, the transaction layer validates, assigns the
// commit timestamp, installs the writes invisibly (Shard::InstallLocked) and calls ProposeLocked
// with one entry carrying the commit's records. The replication layer then calls exactly one of
// the proposal's methods, with the shard's commit_mu held:
//   Committed: the entry was released on this replica (so a majority holds it) and its
//              kRaftEntry record is in the shard's WAL; it was not redone (already installed).
//   Unknown:   leadership was lost while it was in flight: it may still commit, and if it does
//              this replica applies it by redo, as a follower, like any other entry.
//   Refused:   it never reached the Raft log (the replica stopped leading before proposing it).
// Entries this replica did not propose are redone (Shard::RedoLocked) and reported to the
// Listener.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "engine/types.h"

namespace shardtx::engine {

class ReplicatedLog {
 public:
  // The committer's side of one proposed entry. One method is called, once, on the thread that
  // drives the group, with the shard's commit_mu held; it must not call back into the log.
  class Proposal {
   public:
    virtual ~Proposal() = default;
    virtual void Committed(RaftPosition at) = 0;
    // `status` is kUnknown and names the entry (term, index, tag).
    virtual void Unknown(const absl::Status& status) = 0;
    // `status` is kUnavailable: no effect (the entry is in no Raft log).
    virtual void Refused(const absl::Status& status) = 0;
  };

  // What the layer above hears of entries applied by redo and of leadership.
  class Listener {
   public:
    virtual ~Listener() = default;
    // Versions up to commit timestamp `max_ts` are installed on this replica by redo (entries
    // of other proposers), or this replica became a ready leader with every earlier entry
    // applied: timestamps must continue above `max_ts`, which is visible. Called with the
    // shard's commit_mu held, on the thread that drives the group.
    virtual void Applied(Timestamp max_ts) = 0;
  };

  virtual ~ReplicatedLog() = default;

  // Set once, before the first commit; `listener` outlives the log's use of it.
  virtual void SetListener(Listener* listener) = 0;

  // OK if this replica leads its group and is ready (its term-start entry released), as last
  // seen; otherwise kUnavailable naming the leader's id and address (or saying none is known,
  // or that this leader is not ready yet). No effect. Thread-safe.
  virtual absl::Status CheckLeader() = 0;

  // Proposes one entry carrying `records` (a list of engine records: AppendEntryRecord).
  // OK: `proposal` (not owned; it must live until one of its methods returns) hears the
  // outcome later, never inside this call. kUnavailable: not a ready leader, no effect, never
  // called. REQUIRES: the shard's commit_mu held.
  virtual absl::Status ProposeLocked(absl::string_view records, Proposal* proposal) = 0;
};

}  // namespace shardtx::engine
