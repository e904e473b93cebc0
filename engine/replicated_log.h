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
//
// Reads (plan step 7, "Fencing"): a transaction stamps every replicated shard just before it takes
// its snapshot and just after (StampRead). A read-only commit then asks ConfirmReads: the reads
// are confirmed when a Raft barrier proposed after the snapshot commits in the term this replica
// led, ready, when the snapshot was taken (so no newer leader can have acknowledged a write
// before the snapshot: its majority would have refused the barrier). A read-write commit gives
// its stamp's term to ProposeLocked instead: its own entry, proposed after the snapshot and
// released in that term, confirms its reads the same way.
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

  // Where a transaction's reads stand in this replica's leadership: `term` from a StampRead taken
  // before the snapshot, `barriers` from one taken after it.
  struct ReadStamp {
    uint64_t term = 0;      // the term this replica led and was ready in, as last seen; 0: none
    uint64_t barriers = 0;  // barriers this replica had proposed
  };

  // A read-only commit waiting for ConfirmReads' answer: Done is called once, with no lock of the
  // shard held, on the thread that drives the group (or inside ConfirmReads, when a barrier is
  // refused at once; so possibly before ConfirmReads returns): OK, or kUnavailable naming what is
  // known of the leader (no effect: nothing to undo). It must not call back into the log.
  class ReadCheck {
   public:
    virtual ~ReadCheck() = default;
    virtual void Done(const absl::Status& status) = 0;
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
  // `term` is the transaction's ReadStamp term: kUnavailable (no effect) if this replica does
  // not lead that term now, so that the entry, released in `term`, also confirms the reads.
  virtual absl::Status ProposeLocked(absl::string_view records, uint64_t term,
                                     Proposal* proposal) = 0;

  // This replica's leadership as last seen, and the barriers it proposed so far. Thread-safe.
  virtual ReadStamp StampRead() = 0;

  // Confirms reads stamped `begun`: OK means `check` will hear, once, OK when a barrier proposed
  // after `begun.barriers` commits in `begun.term` while this replica leads it, or kUnavailable
  // when that can no longer happen (leadership lost, the replica closing). At most one barrier
  // is in flight per replica; every read stamped before it was proposed shares it, and reads
  // stamped later wait for the next. kUnavailable at once, no callback, if this replica was not
  // a ready leader at `begun` or does not lead `begun.term` now (naming the leader it knows).
  // Thread-safe; it does not wait for the barrier. REQUIRES: no lock of the shard held.
  virtual absl::Status ConfirmReads(const ReadStamp& begun, ReadCheck* check) = 0;
};

}  // namespace shardtx::engine
