// ShardReplica: one replica of a replicated shard (plan step 5, the leader commit path), over a
// SimulatedGroup (deterministic tests) or a RaftNode (raft_uv, real sockets). It is both sides of
// the replica:
//  - the engine::ReplicatedLog the shard's commit path proposes through (a Database attaches it
//    with DatabaseImpl::AttachReplicatedLog);
//  - the StateMachine the group releases entries to: an entry this replica proposed and still
//    waits for completes its commit (kRaftEntry record appended, not redone: the writes were
//    installed at commit); any other entry is redone, as ShardMachine does on a follower.
//
// Threads. A SimulatedGroup is driven by one thread (it is not thread-safe), which calls Pump()
// after every step; committers run on other threads: ProposeLocked only queues the entry (under
// the shard's commit_mu), and the next Pump() proposes the queue in order. With a RaftNode
// (AttachNode), ProposeLocked proposes at once (RaftNode::Propose is thread-safe), and releases,
// outcomes and OnNodeChange() run on the node's loop thread. Either way CheckLeader and
// ProposeLocked answer from the leadership last published (Pump, OnNodeChange), and a new term's
// leadership is published ready only after the listener heard the largest applied timestamp.
//
// Reads (plan step 7): ConfirmReads queues the read-only commit; one Raft barrier at a time is
// proposed for the queue (by Pump on the group's thread, or at once and then from each barrier's
// completion on a RaftNode), and a barrier's outcome answers every read stamped before it was
// proposed: OK if it committed in the term the read began in, kUnavailable otherwise.
//
// Entry payload: u64 origin (this replica's server id and a random nonce), u64 sequence, then
// the engine records. The kRaftEntry record in the shard's WAL carries only the records, so
// the WALs of all replicas hold the same bytes for an entry.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/replicated_log.h"
#include "engine/shard.h"
#include "replication/raft_node.h"
#include "replication/simulated_group.h"
#include "util/mutex.h"

namespace shardtx::replication {

struct ShardReplicaOptions {
  uint64_t server = 0;    // this replica's server in the group (a RaftNode's id)
  uint32_t shard_id = 0;  // for messages
  // SimulatedGroup: each server's address, by server id, as kUnavailable names the leader (a
  // RaftNode knows its leader's address).
  std::vector<std::string> addresses;
  // RaftNode: the address kUnavailable names for leader `id` (e.g. the member's address, where
  // the Raft group listens on a port derived from it); unset or "": the leader's Raft address.
  std::function<std::string(uint64_t id)> address_of;
  // TEST ONLY: called (with the shard's commit_mu held) after ProposeLocked queued an entry
  // (SimulatedGroup), and after each entry this replica applied or completed.
  std::function<void()> on_queued;
  std::function<void()> on_applied;
  // TEST ONLY: called (with no lock of the shard held) after ConfirmReads queued a read-only
  // commit.
  std::function<void()> on_read_queued;
};

class ShardReplica final : public StateMachine, public engine::ReplicatedLog {
 public:
  // `shard` (not owned) outlives this replica.
  ShardReplica(const ShardReplicaOptions& options, engine::Shard* shard);
  ShardReplica(const ShardReplica&) = delete;
  ShardReplica& operator=(const ShardReplica&) = delete;
  // Answers every proposal still queued (Refused) or in flight (Unknown): destroy the group
  // first (it then calls nothing), then the replica, then the shard's database.
  ~ShardReplica() override;

  // --- engine::ReplicatedLog ---
  void SetListener(Listener* listener) override;
  absl::Status CheckLeader() override;
  absl::Status ProposeLocked(absl::string_view records, uint64_t term, Proposal* proposal) override;
  ReadStamp StampRead() override;
  absl::Status ConfirmReads(const ReadStamp& begun, ReadCheck* check) override;

  // --- StateMachine ---
  // A failure (malformed entry, a WAL or redo error) stops the replica: it applies nothing
  // after (failures(), first_error()).
  void Release(const ReleasedEntry& entry) override;
  // Syncs the shard's WAL; the snapshot is the applied position (16 bytes).
  absl::StatusOr<std::string> Snapshot() override;
  // A snapshot at or below the shard's applied position (its own, restored by raft_start at
  // every Open): OK, nothing to install. Any other (catch-up from a leader's snapshot): not yet
  // (plan step 10), kUnimplemented, and the replica stops.
  absl::Status Restore(std::string_view snapshot) override;

  // SimulatedGroup: on the group's thread, after every step (and once before the first commit):
  // proposes the queued entries in order, publishes this server's leadership, then proposes a
  // barrier if reads wait and none is in flight.
  void Pump(SimulatedGroup& group);

  // RaftNode: open the node with this replica as its machine and with on_change calling
  // OnNodeChange(), then attach it (not owned; it outlives its use here: close the node before
  // destroying it). OnNodeChange publishes the node's leadership (it does nothing before
  // AttachNode, which calls it once).
  void AttachNode(RaftNode* node);
  void OnNodeChange();

  // Counters (any thread).
  uint64_t committed() const { return committed_.load(); }  // own entries released: acked
  uint64_t unknown() const { return unknown_.load(); }      // own entries answered kUnknown
  uint64_t refused() const { return refused_.load(); }      // accepted, then refused: no effect
  uint64_t redone() const { return redone_.load(); }    // other proposers' entries (or own, late)
  uint64_t skipped() const { return skipped_.load(); }  // at or below the applied index
  uint64_t failures() const { return failures_.load(); }
  absl::Status first_error() const;
  // Reads: barriers proposed and committed (in the term they were proposed in), read-only
  // commits confirmed, and those answered kUnavailable after waiting (queued, then refused) or
  // at once (not leading).
  uint64_t barriers_proposed() const { return barriers_proposed_.load(); }
  uint64_t barriers_committed() const { return barriers_committed_.load(); }
  uint64_t reads_confirmed() const { return reads_confirmed_.load(); }
  uint64_t reads_failed() const { return reads_failed_.load(); }
  uint64_t reads_refused() const { return reads_refused_.load(); }
  // Commits this replica proposed (or queued) and has not answered yet.
  size_t waiting() const;

 private:
  struct Queued {
    uint64_t seq = 0;
    std::string entry;
    Proposal* proposal = nullptr;
    uint64_t term = 0;  // the term its reads were taken in: proposed in that term or not at all
  };
  struct InFlight {
    Proposal* proposal = nullptr;
    engine::RaftPosition at;  // as proposed: the leader's term and the index the entry got
  };

  // What Pump or OnNodeChange saw of this server.
  struct Seen {
    bool alive = true;
    Role role = Role::kFollower;
    bool ready = false;
    uint64_t term = 0;
    std::optional<uint64_t> leader;
    std::string leader_address;
  };
  void Publish(const Seen& seen);
  void OnDone(uint64_t seq, const absl::Status& status);
  // Every proposal in flight can no longer be answered OK here: Unknown; every queued one:
  // Refused. REQUIRES: commit_mu.
  void AbandonLocked(const std::string& why);
  absl::Status ApplyLocked(const ReleasedEntry& entry);
  std::string EntryName(uint64_t seq, engine::RaftPosition at) const;
  // kUnavailable unless this replica is a ready leader of `term` now, naming the leader.
  absl::Status CheckLeads(uint64_t term, absl::string_view what);
  // Proposes the next barrier (through `group`, or the attached node when `group` is null).
  void ProposeBarrierLocked(SimulatedGroup* group) ABSL_EXCLUSIVE_LOCKS_REQUIRED(read_mu_);
  void OnBarrierDone(uint64_t seq, const absl::StatusOr<uint64_t>& term);
  // Answers every read waiting for barrier `seq` (stamped before it was proposed): OK if it
  // committed in the read's term.
  void DecideReadsLocked(uint64_t seq, const absl::StatusOr<uint64_t>& term)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(read_mu_);

  const ShardReplicaOptions options_;
  engine::Shard* const shard_;
  const uint64_t origin_;
  Listener* listener_ = nullptr;

  // Under the shard's commit_mu.
  uint64_t next_seq_ = 1;
  std::deque<Queued> queue_;
  absl::flat_hash_map<uint64_t, InFlight> in_flight_;
  absl::Status stop_;
  absl::Status first_error_;
  uint64_t ready_term_ = 0;  // the last term published ready (the listener heard of it)

  std::atomic<RaftNode*> node_{nullptr};
  // One OnNodeChange at a time (the loop thread's and AttachNode's), so that a stale view of
  // the node never overwrites a newer one.
  Mutex node_change_mu_ ABSL_ACQUIRED_BEFORE(state_mu_);

  // Reads waiting for a barrier (ConfirmReads), before state_mu_ when both are taken.
  struct ReadWaiter {
    ReadStamp begun;
    ReadCheck* check = nullptr;
  };
  Mutex read_mu_ ABSL_ACQUIRED_BEFORE(state_mu_);
  std::vector<ReadWaiter> read_waiters_ ABSL_GUARDED_BY(read_mu_);
  bool barrier_in_flight_ ABSL_GUARDED_BY(read_mu_) = false;
  // Raised under read_mu_ before each barrier is proposed (StampRead reads it without).
  std::atomic<uint64_t> barriers_proposed_{0};

  // Published by Pump or OnNodeChange (after commit_mu, when both are taken).
  mutable Mutex state_mu_;
  bool ready_ ABSL_GUARDED_BY(state_mu_) = false;
  uint64_t term_ ABSL_GUARDED_BY(state_mu_) = 0;
  std::string not_ready_ ABSL_GUARDED_BY(state_mu_);  // kUnavailable's message when !ready_
  std::string address_ ABSL_GUARDED_BY(state_mu_);    // this server's, when ready_ (may be "")

  std::atomic<uint64_t> committed_{0}, unknown_{0}, refused_{0}, redone_{0}, skipped_{0},
      failures_{0};
  std::atomic<uint64_t> barriers_committed_{0}, reads_confirmed_{0}, reads_failed_{0},
      reads_refused_{0};
};

}  // namespace shardtx::replication
