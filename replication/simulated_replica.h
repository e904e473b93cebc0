// SimulatedReplica: one replica of a replicated shard whose Raft group is a SimulatedGroup
// (plan step 5, the leader commit path). It is both sides of the replica:
//  - the engine::ReplicatedLog the shard's commit path proposes through (a Database attaches it
//    with DatabaseImpl::AttachReplicatedLog);
//  - the StateMachine the group releases entries to: an entry this replica proposed and still
//    waits for completes its commit (kRaftEntry record appended, not redone: the writes were
//    installed at commit); any other entry is redone, as ShardMachine does on a follower.
//
// Threads. The group is driven by one thread (SimulatedGroup is not thread-safe), which calls
// Pump() after every step. Committers run on other threads: ProposeLocked only queues the entry
// (under the shard's commit_mu), and the next Pump() proposes the queue in order. CheckLeader
// and ProposeLocked answer from the leadership Pump() last published.
//
// Entry payload: u64 origin (this replica's server id and a random nonce), u64 sequence, then
// the engine records. The kRaftEntry record in the shard's WAL carries only the records, so
// the WALs of all replicas hold the same bytes for an entry.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/replicated_log.h"
#include "engine/shard.h"
#include "replication/simulated_group.h"
#include "util/mutex.h"

namespace shardtx::replication {

struct SimulatedReplicaOptions {
  unsigned server = 0;    // this replica's server in the group
  uint32_t shard_id = 0;  // for messages
  // Each server's address, by server id, as kUnavailable names the leader.
  std::vector<std::string> addresses;
  // TEST ONLY: called (with the shard's commit_mu held) after ProposeLocked queued an entry.
  std::function<void()> on_queued;
};

class SimulatedReplica final : public StateMachine, public engine::ReplicatedLog {
 public:
  // `shard` (not owned) outlives this replica.
  SimulatedReplica(const SimulatedReplicaOptions& options, engine::Shard* shard);
  SimulatedReplica(const SimulatedReplica&) = delete;
  SimulatedReplica& operator=(const SimulatedReplica&) = delete;
  // Answers every proposal still queued (Refused) or in flight (Unknown): destroy the group
  // first (it then calls nothing), then the replica, then the shard's database.
  ~SimulatedReplica() override;

  // --- engine::ReplicatedLog ---
  void SetListener(Listener* listener) override;
  absl::Status CheckLeader() override;
  absl::Status ProposeLocked(absl::string_view records, Proposal* proposal) override;

  // --- StateMachine ---
  // A failure (malformed entry, a WAL or redo error) stops the replica: it applies nothing
  // after (failures(), first_error()).
  void Release(const ReleasedEntry& entry) override;
  // Syncs the shard's WAL; the snapshot is the applied position (16 bytes).
  absl::StatusOr<std::string> Snapshot() override;
  // Not yet (plan step 10): kUnimplemented, and the replica stops. Keep the group's snapshot
  // threshold above the entries a run proposes.
  absl::Status Restore(std::string_view snapshot) override;

  // On the group's thread, after every step (and once before the first commit): proposes the
  // queued entries in order, then publishes this server's leadership. On the first Pump that
  // sees it a ready leader of a new term, tells the listener the largest timestamp applied.
  void Pump(SimulatedGroup& group);

  // Counters (read on the group's thread, or once it is idle).
  uint64_t committed() const { return committed_; }  // own entries released: acknowledged
  uint64_t unknown() const { return unknown_; }      // own entries answered kUnknown
  uint64_t refused() const { return refused_; }      // queued, then refused (no effect)
  uint64_t redone() const { return redone_; }        // other proposers' entries (or own, late)
  uint64_t skipped() const { return skipped_; }      // at or below the applied index
  uint64_t failures() const { return failures_; }
  absl::Status first_error() const { return first_error_; }

 private:
  struct Queued {
    uint64_t seq = 0;
    std::string entry;
    Proposal* proposal = nullptr;
  };
  struct InFlight {
    Proposal* proposal = nullptr;
    engine::RaftPosition at;  // as proposed: the leader's term and the index the entry got
  };

  void OnDone(uint64_t seq, const absl::Status& status);
  // Every proposal in flight can no longer be answered OK here: Unknown; every queued one:
  // Refused. REQUIRES: commit_mu.
  void AbandonLocked(const std::string& why);
  absl::Status ApplyLocked(const ReleasedEntry& entry);
  std::string EntryName(uint64_t seq, engine::RaftPosition at) const;

  const SimulatedReplicaOptions options_;
  engine::Shard* const shard_;
  const uint64_t origin_;
  Listener* listener_ = nullptr;

  // Under the shard's commit_mu.
  uint64_t next_seq_ = 1;
  std::deque<Queued> queue_;
  absl::flat_hash_map<uint64_t, InFlight> in_flight_;
  absl::Status stop_;

  // Published by Pump.
  Mutex state_mu_;
  bool ready_ ABSL_GUARDED_BY(state_mu_) = false;
  std::string not_ready_ ABSL_GUARDED_BY(state_mu_);  // kUnavailable's message when !ready_

  // The group's thread only.
  uint64_t ready_term_ = 0;
  uint64_t committed_ = 0, unknown_ = 0, refused_ = 0, redone_ = 0, skipped_ = 0, failures_ = 0;
  absl::Status first_error_;
};

}  // namespace shardtx::replication
