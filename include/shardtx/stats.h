// shardtx/stats.h: counters a Database reports (Database::GetStats). A snapshot; not updated
// after it is returned.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shardtx {

// One shard's Raft group as this node sees it (a replicated database; ShardStatsView).
struct ShardReplicationStats {
  enum class Role { kFollower, kCandidate, kLeader, kUnavailable };
  Role role = Role::kFollower;  // this node's role in the group
  bool ready = false;           // leads, and its term has started (it accepts commits)
  uint64_t term = 0;
  uint64_t leader_id = 0;     // who this node believes leads: 0 when none is known
  uint64_t last_index = 0;    // the last entry in this node's Raft log (durable or not)
  uint64_t commit_index = 0;  // libraft's commit index as this node knows it
  // The last entry applied to this node's shard (released: committed, and past the Figure-8
  // guard; barrier and configuration entries, which hold nothing for the shard, count once
  // reached); commit_index - applied_index is what this node still has to apply.
  uint64_t applied_index = 0;
  // The group's configuration (its latest entry, committed or not), one entry per member.
  struct Member {
    enum class Kind { kVoter, kStandby, kSpare };  // kSpare/kStandby: a member being added
    uint64_t id = 0;
    Kind kind = Kind::kVoter;
    // On the leader only (0 elsewhere): the last index the leader knows the member holds, and
    // its lag, last_index - match_index (0 for the leader itself). A member that caught up shows
    // lag 0 once the leader's last entry reached it.
    uint64_t match_index = 0;
    uint64_t lag = 0;
  };
  std::vector<Member> members;
  bool membership_change_pending = false;  // on the leader: a change is in progress
  // Counters since Open: snapshots this node sent as leader (InstallSnapshot messages) and
  // installed from a leader; elections it stood in (a new term as candidate) and won.
  uint64_t snapshots_sent = 0;
  uint64_t snapshots_installed = 0;
  uint64_t elections_started = 0;
  uint64_t elections_won = 0;
  // Leadership gathering (ReplicationOptions::preferred_leader), counters since Open: times the
  // leader this node knows for the group changed to another server; leadership transfers this
  // node asked for as the group's leader, those after which the target led, and those that
  // failed (libraft refused, or they ended without the target leading: the target did not catch
  // up or win within an election timeout, or the leadership went elsewhere).
  uint64_t leader_moves = 0;
  uint64_t transfers_asked = 0;
  uint64_t transfers_done = 0;
  uint64_t transfers_failed = 0;
  // Follower reads (TxnOptions::follower_read), at the time of GetStats: the shard's own safe
  // bound here (held below any transaction prepared on it and not decided here) and how stale
  // that is, in milliseconds by this node's clock against its leader's (-1: not known, e.g.
  // held by a prepared transaction, or no closed timestamp applied since Open).
  uint64_t safe_ts = 0;
  int64_t follower_staleness_ms = -1;
};

// Leadership gathering on a replicated database (ReplicationOptions::preferred_leader), as this
// node sees the shards' leaders (Stats::gathering).
struct LeadershipGatherStats {
  // Every shard's leader, as this node knows it, is one node (leader_id).
  bool gathered = false;
  uint64_t leader_id = 0;
  // Times the leaders stopped being on one node (a leader change, or Open), and times they came
  // together again; how long the last and the longest such gathering took, in milliseconds,
  // from the change that scattered them (or from Open) until this node saw them on one node.
  uint64_t scatters = 0;
  uint64_t gathers = 0;
  double last_gather_ms = 0;
  double max_gather_ms = 0;
};

// Replicated database only: the in-doubt resolver of this node (issue 17 step 4,
// docs/replicated-2pc-plan.md section 4). A prepared transaction is found when a shard it has a
// part on becomes ready-led here, or when a commit or abort entry of it proposed here is refused
// or unknown (counted again if found again).
struct InDoubtResolverStats {
  uint64_t found = 0;
  uint64_t resolved_committed = 0;
  uint64_t resolved_aborted = 0;
  uint64_t left_for_host = 0;  // named, every prepare committed, no decision: the host decides
  // From the moment it was found (the shard became ready-led here) until its resolving entries
  // were proposed, in milliseconds: the last resolution's and the longest.
  double last_resolve_ms = 0;
  double max_resolve_ms = 0;
};

struct ShardStatsView {
  uint32_t shard = 0;
  uint64_t wal_appends = 0;
  uint64_t wal_bytes = 0;
  uint64_t wal_fsyncs = 0;
  double wal_records_per_fsync = 0;
  uint64_t wal_max_records_per_fsync = 0;
  uint64_t wal_inline_syncs = 0;  // fsyncs a lone committer did on its own thread
  uint64_t wal_unsynced_bytes = 0;  // the async loss window right now
  std::string wal_fsync_latency_us;
  uint64_t wal_segments_created = 0;
  uint64_t wal_segments_recycled = 0;
  uint64_t checkpoints = 0;
  // Checkpoints that failed (an I/O error; after the log failed, every one until reopened).
  uint64_t checkpoint_failures = 0;
  uint64_t checkpoint_bytes = 0;
  uint64_t checkpoint_txns = 0;  // LMDB write transactions (a checkpoint writes in chunks)
  std::string checkpoint_ms;
  uint64_t overlay_bytes = 0;
  uint64_t backpressure_waits = 0;
  // Pauses a checkpoint took between its LMDB transactions to let commits use the disk
  // (Options::checkpoint_pace), and their total length.
  uint64_t checkpoint_pauses = 0;
  uint64_t checkpoint_paused_ms = 0;
  // Commit-time conflict checks that had to look the key up in LMDB: only a transaction whose
  // snapshot is older than the last checkpoint's newest commit needs to.
  uint64_t validation_lmdb_reads = 0;
  uint64_t applied_lsn = 0;
  uint64_t durable_lsn = 0;
  uint64_t lmdb_map_size = 0;
  uint64_t lmdb_map_growths = 0;
  // Recovery at the last Open.
  uint64_t recovery_records = 0;
  uint64_t recovery_bytes = 0;
  double recovery_ms = 0;
  bool recovery_torn_tail = false;
  // Replicated database only (Options::replication; 0 otherwise). A replicated commit is
  // durable once written to the shard's Raft log (libraft's raft_uv, O_DSYNC writes, in
  // PATH/raft-NNN/); the WAL above is then this replica's log of applied records, written
  // without fsync and synced at Raft snapshots and checkpoints. These count this node's Raft log
  // writes since Open (several entries, each packing the commits that queued meanwhile, go in
  // one write; two writes that complete in the same loop iteration count as one) and the
  // entries they stored.
  uint64_t raft_log_writes = 0;
  uint64_t raft_entries_stored = 0;
  // Replicated database only (else replicated is false): the shard's Raft group.
  bool replicated = false;
  ShardReplicationStats replication;
  // Replicated: snapshots of another replica this one installed (catch-up) since Open, and
  // installs that failed (a stream that failed its checks, an unreachable producer: the shard
  // was left as it was; the follower applies nothing more until an install succeeds).
  uint64_t snapshots_installed = 0;
  uint64_t snapshot_install_failures = 0;
};

struct Stats {
  uint64_t commits = 0;              // committed read-write transactions
  uint64_t read_only_commits = 0;
  uint64_t cross_shard_commits = 0;
  uint64_t rollbacks = 0;            // explicit Rollback or destruction without Commit
  // Aborts by cause.
  uint64_t aborts_write_conflict = 0;
  uint64_t aborts_read_validation = 0;  // serializable
  uint64_t aborts_snapshot_too_old = 0;
  uint64_t aborts_locked = 0;           // key held by a prepared transaction
  uint64_t aborts_too_large = 0;
  uint64_t aborts_io_error = 0;
  uint64_t in_doubt = 0;                // prepared transactions awaiting a decision
  uint64_t recovered_commits = 0;       // in-doubt transactions recovery committed
  uint64_t recovered_aborts = 0;        // ... and aborted
  // Follower-read transactions (TxnOptions::follower_read) begun, and those of them refused as
  // staler than their max_staleness (kUnavailable).
  uint64_t follower_reads = 0;
  uint64_t follower_reads_too_stale = 0;
  std::string commit_latency_us;        // Histogram summary of Commit() calls
  // Transaction::CommitAsync: commits accepted; completion batches delivered (the callbacks
  // the completion thread ran in one go: those of one fsync, or of several when callbacks fell
  // behind), their mean and distribution of sizes; calls that waited for a slot
  // (Options::max_async_commits).
  uint64_t async_commits = 0;
  uint64_t async_batches = 0;
  double async_completions_per_batch = 0;
  std::string async_batch_size;
  uint64_t async_backpressure_waits = 0;
  // Two-phase commit phases (microseconds): prepare (log + sync on every participant),
  // decision (log + sync on the coordinator: named transactions' CommitPrepared only, since a
  // cross-shard Commit is committed once its prepares are durable and does not wait for its
  // decision record), phase 2 (commit records, install, publish).
  std::string prepare_us, decision_us, phase2_us;
  // The shards share one log (Options::LogLayout::kShared, as the database was created): every
  // shard's wal_* figures (ShardStatsView) are that log's, and the sums below count it once.
  bool shared_log = false;
  // Sums over shards (over their logs: one, when shared_log).
  uint64_t fsyncs = 0;
  double records_per_fsync = 0;
  uint64_t checkpoints = 0;
  uint64_t checkpoint_bytes = 0;
  uint64_t overlay_bytes = 0;
  uint64_t wal_bytes = 0;
  uint64_t recovery_records = 0;
  uint64_t recovery_bytes = 0;
  double recovery_ms = 0;
  std::vector<ShardStatsView> shards;
  // Replicated database only (else all zero): leadership gathering across its shards.
  LeadershipGatherStats gathering;
  InDoubtResolverStats resolver;

  // A human-readable multi-line dump.
  std::string ToString() const;
};

}  // namespace shardtx
