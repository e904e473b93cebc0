// ShardReplica: one replica of a replicated shard (plan step 5, the leader commit path), over a
// SimulatedGroup (deterministic tests) or a RaftNode (raft_uv, real sockets). It is both sides of
// the replica:
//  - the engine::ReplicatedLog the shard's commit path proposes through (a Database attaches it
//    with DatabaseImpl::AttachReplicatedLog);
//  - the StateMachine the group releases entries to: an entry this replica proposed and still
//    waits for completes its commit (kRaftEntry record appended, not redone: the writes were
//    installed at commit); any other entry is redone, as ShardMachine does on a follower,
//    with the shard's hooks: in a Database, the transaction layer's 2PC records too (prepares,
//    decisions, commit and abort records: Coordinator::Redo, the step crash recovery runs).
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
// Entry payload: one or more parts, one per commit, each u64 marked origin (a 16-bit mark, then
// this replica's server id and a random nonce), u64 sequence, u32 length, then the commit's engine
// records. An entry written before packing (u64 origin without the mark, u64 sequence, then the
// records to the end) still decodes, as one commit. A RaftNode opened with pack_proposals packs
// the commits its loop thread finds queued into one entry (one Raft append, message and durable
// write for all of them); a SimulatedGroup's entries carry one. The kRaftEntry record in the
// shard's WAL carries only the records (every part's, in order), so the WALs of all replicas hold
// the same bytes for an entry. An entry all of whose parts this replica still waits for completes
// them all; any other entry is redone whole.
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
#include "absl/time/time.h"
#include "engine/replicated_log.h"
#include "engine/shard.h"
#include "replication/raft_node.h"
#include "replication/simulated_group.h"
#include "replication/snapshot_stream.h"
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
  // SimulatedGroup: Pump proposes the commits queued one after another for the same term as one
  // entry (up to kMaxPackedCommits), as a RaftNode opened with pack_proposals packs what its loop
  // thread finds queued. Off: one entry per commit.
  bool pack = false;
  // TEST ONLY: called (with the shard's commit_mu held) after ProposeLocked queued an entry
  // (SimulatedGroup), and after each entry this replica applied or completed.
  std::function<void()> on_queued;
  std::function<void()> on_applied;
  // TEST ONLY: called (with no lock of the shard held) after ConfirmReads queued a read-only
  // commit.
  std::function<void()> on_read_queued;

  // Catch-up by snapshot (Restore) over the snapshot stream (replication/snapshot_stream.h), and
  // serving this shard's snapshots to others (SnapshotSource). snapshot_address(id): the
  // SnapshotServer "host:port" of member `id` ("" if unknown). Unset: Restore of a snapshot
  // this replica has not applied fails (kFailedPrecondition).
  std::function<std::string(uint64_t id)> snapshot_address;
  std::string cluster;  // the cluster id both ends of a stream check
  absl::Duration fetch_timeout = absl::Minutes(30);
  // This node's SnapshotServer, serving the shard through this replica (not owned; outlives
  // the replica; may be null): Restore takes the shard off it while it replaces the state.
  SnapshotServer* snapshot_server = nullptr;
  // Receives the WAL pin of the streams copying the shard (SnapshotSource::PinWal): the
  // shard's ShardHooks::PinnedLsn must report it.
  std::function<void(engine::Lsn)> pin_wal;
  // RaftNode: called with the node's state after OnNodeChange took it (on the node's loop thread,
  // or AttachNode's caller), e.g. LeaderGather::Observe. It must not call into the replica.
  std::function<void(const NodeInfo&)> on_node_change;
};

class ShardReplica final : public StateMachine,
                           public engine::ReplicatedLog,
                           public SnapshotSource {
 public:
  // The most commits Pump packs into one entry (ShardReplicaOptions::pack).
  static constexpr size_t kMaxPackedCommits = 256;

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
  // A failure (an entry CheckEntryPayload refuses, before anything of it reaches the WAL; a
  // WAL or redo error) stops the replica: it applies nothing after (failures(), first_error()).
  void Release(const ReleasedEntry& entry) override;
  // Syncs the shard's WAL; the snapshot is its metadata (SnapshotMeta: shard, this replica as
  // producer, the applied position), not its state.
  absl::StatusOr<std::string> Snapshot() override;
  // Takes the snapshot's state, on the group's thread (libraft calls it on a follower that must
  // install its leader's snapshot, and at start for the last snapshot stored). If the shard has
  // applied the snapshot's index already, its own state covers it and is kept (a restart: no
  // copy). Otherwise the producer's shard is fetched from its SnapshotServer
  // (options.snapshot_address), checked (the stream's checks, then the copy opened and its
  // Raft index compared) beside the shard's directory, exchanged with it, and swapped in under
  // the live shard (Shard::ReplaceState); the oracle is raised to the new state's largest
  // timestamp before readers can see it. Proposals of this replica still waiting are answered
  // (kUnknown: the snapshot decides them). After a success the replica applies from the
  // snapshot's index on (a stop is cleared: the state is the producer's). The shard's hooks
  // rebuild their state of it from the copy (ShardHooks::ForgetShardState, then LoadTable and
  // Redo): in a Database, its prepared transactions' parts become the copy's.
  //
  // Reads during the swap (the rule): a view pinned before reads the old state to its end (the
  // old store stays open for it); one pinned after reads the new state. GetOutcome, commits and
  // release wait for the swap (it holds the shard's commit_mu); a follower's commits fail with
  // kUnavailable anyway.
  //
  // Failure (the stream's checks, a wrong cluster or shard, a copy short of the index, no
  // address): the shard's state and directory are unchanged, nothing is applied, the error is
  // returned (libraft 0.15 offers an install again once its leader has a newer snapshot) and
  // counted (snapshot_failures,
  // last_snapshot_error), and Release applies nothing until a Restore succeeds (entries above
  // the snapshot on a state below it would diverge).
  absl::Status Restore(std::string_view snapshot) override;

  // --- SnapshotSource (options.snapshot_server's threads) ---
  engine::Shard& snapshot_shard() override { return *shard_; }
  std::string snapshot_shard_dir() override { return shard_->options().dir; }
  void PinWal(engine::Lsn lsn) override;

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
  // The node AttachNode attached (null before, and with a SimulatedGroup).
  RaftNode* node() const { return node_.load(); }

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
  // Snapshots: installed from a producer, kept (own state covered it), failed to install.
  uint64_t snapshots_installed() const { return snapshots_installed_.load(); }
  uint64_t snapshots_kept() const { return snapshots_kept_.load(); }
  uint64_t snapshot_failures() const { return snapshot_failures_.load(); }
  absl::Status last_snapshot_error() const;
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
  absl::Status RestoreOnce(std::string_view snapshot);
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
  // The sequence of the last own entry completed at its release (written under commit_mu; OnDone
  // reads it without).
  std::atomic<uint64_t> released_seq_{0};

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
  std::atomic<uint64_t> snapshots_installed_{0}, snapshots_kept_{0}, snapshot_failures_{0};
  absl::Status last_snapshot_error_;  // under the shard's commit_mu
};

}  // namespace shardtx::replication
