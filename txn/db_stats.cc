#include "txn/db_stats.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace shardtx {
namespace txn {

Stats MakeStats(const TxnCounters& counters, uint64_t in_doubt,
                const std::vector<std::pair<uint32_t, engine::ShardStats>>& shards,
                bool shared_log) {
  Stats s;
  s.shared_log = shared_log;
  s.commits = counters.commits.load();
  s.read_only_commits = counters.read_only_commits.load();
  s.cross_shard_commits = counters.cross_shard_commits.load();
  s.follower_reads = counters.follower_reads.load();
  s.follower_reads_too_stale = counters.follower_reads_too_stale.load();
  s.rollbacks = counters.rollbacks.load();
  s.aborts_write_conflict = counters.aborts_write_conflict.load();
  s.aborts_read_validation = counters.aborts_read_validation.load();
  s.aborts_snapshot_too_old = counters.aborts_snapshot_too_old.load();
  s.aborts_locked = counters.aborts_locked.load();
  s.aborts_too_large = counters.aborts_too_large.load();
  s.aborts_io_error = counters.aborts_io_error.load();
  s.commit_latency_us = counters.commit_latency_us.Summary();
  s.in_doubt = in_doubt;
  s.recovered_commits = counters.recovered_commits.load();
  s.recovered_aborts = counters.recovered_aborts.load();
  s.async_commits = counters.async_commits.load();
  s.async_batches = counters.async_batches.load();
  s.async_completions_per_batch =
      s.async_batches == 0
          ? 0.0
          : static_cast<double>(counters.async_completions.load()) / s.async_batches;
  s.async_batch_size = counters.async_batch_size.Summary();
  s.async_backpressure_waits = counters.async_backpressure_waits.load();
  s.prepare_us = counters.prepare_us.Summary();
  s.decision_us = counters.decision_us.Summary();
  s.phase2_us = counters.phase2_us.Summary();
  uint64_t synced_records = 0;
  for (const auto& [id, st] : shards) {
    ShardStatsView v;
    v.shard = id;
    v.wal_appends = st.wal.appends;
    v.wal_bytes = st.wal.bytes;
    v.wal_fsyncs = st.wal.fsyncs;
    v.wal_records_per_fsync = st.wal.records_per_fsync;
    v.wal_max_records_per_fsync = st.wal.max_records_per_fsync;
    v.wal_inline_syncs = st.wal.inline_syncs;
    v.wal_unsynced_bytes = st.wal.unsynced_bytes;
    v.wal_fsync_latency_us = st.wal.fsync_latency_us;
    v.wal_segments_created = st.wal.segments_created;
    v.wal_segments_recycled = st.wal.segments_recycled;
    v.checkpoints = st.checkpoints;
    v.checkpoint_failures = st.checkpoint_failures;
    v.checkpoint_bytes = st.checkpoint_bytes;
    v.checkpoint_txns = st.checkpoint_txns;
    v.checkpoint_ms = st.checkpoint_ms;
    v.overlay_bytes = st.overlay_bytes;
    v.backpressure_waits = st.backpressure_waits;
    v.checkpoint_pauses = st.checkpoint_pauses;
    v.checkpoint_paused_ms = st.checkpoint_paused_ms;
    v.validation_lmdb_reads = st.validation_lmdb_reads;
    v.applied_lsn = st.applied_lsn;
    v.durable_lsn = st.wal.durable_lsn;
    v.lmdb_map_size = st.lmdb_map_size;
    v.lmdb_map_growths = st.lmdb_map_growths;
    v.recovery_records = st.recovery.records;
    v.recovery_bytes = st.recovery.bytes;
    v.recovery_ms = st.recovery.millis;
    v.recovery_torn_tail = st.recovery.torn_tail;
    // One shared log: every shard reports it; count it once (the first shard's report).
    const bool count_log = !shared_log || s.shards.empty();
    if (count_log) {
      s.fsyncs += v.wal_fsyncs;
      synced_records += static_cast<uint64_t>(v.wal_records_per_fsync * v.wal_fsyncs);
      s.wal_bytes += v.wal_bytes;
    }
    s.checkpoints += v.checkpoints;
    s.checkpoint_bytes += v.checkpoint_bytes;
    s.overlay_bytes += v.overlay_bytes;
    s.recovery_records += v.recovery_records;
    s.recovery_bytes += v.recovery_bytes;
    s.recovery_ms = std::max(s.recovery_ms, v.recovery_ms);
    s.shards.push_back(std::move(v));
  }
  s.records_per_fsync = s.fsyncs == 0 ? 0 : static_cast<double>(synced_records) / s.fsyncs;
  return s;
}

}  // namespace txn

namespace {

const char* RoleName(ShardReplicationStats::Role role) {
  switch (role) {
    case ShardReplicationStats::Role::kLeader:
      return "leader";
    case ShardReplicationStats::Role::kCandidate:
      return "candidate";
    case ShardReplicationStats::Role::kFollower:
      return "follower";
    default:
      return "unavailable";
  }
}

const char* KindName(ShardReplicationStats::Member::Kind kind) {
  switch (kind) {
    case ShardReplicationStats::Member::Kind::kVoter:
      return "voter";
    case ShardReplicationStats::Member::Kind::kStandby:
      return "standby";
    default:
      return "spare";
  }
}

// "shard 0 raft: leader (ready) term 3 ..." : one line per replicated shard.
void AppendReplication(uint32_t shard, const ShardReplicationStats& r, std::string* out) {
  absl::StrAppendFormat(out,
                        "shard %d raft: %s%s term %d leader %d; index last %d commit %d "
                        "applied %d; members",
                        shard, RoleName(r.role), r.ready ? " (ready)" : "", r.term, r.leader_id,
                        r.last_index, r.commit_index, r.applied_index);
  for (const ShardReplicationStats::Member& m : r.members) {
    absl::StrAppendFormat(out, " %d %s", m.id, KindName(m.kind));
    if (r.role == ShardReplicationStats::Role::kLeader) {
      absl::StrAppendFormat(out, " (match %d lag %d)", m.match_index, m.lag);
    }
  }
  absl::StrAppendFormat(out,
                        "%s; snapshots sent %d installed %d; elections started %d won %d; leader "
                        "moves %d; transfers asked %d done %d failed %d; safe ts %d staleness "
                        "%s\n",
                        r.membership_change_pending ? "; membership change pending" : "",
                        r.snapshots_sent, r.snapshots_installed, r.elections_started,
                        r.elections_won, r.leader_moves, r.transfers_asked, r.transfers_done,
                        r.transfers_failed, r.safe_ts,
                        r.follower_staleness_ms < 0 ? std::string("unknown")
                                                    : absl::StrCat(r.follower_staleness_ms, " ms"));
}

}  // namespace

std::string Stats::ToString() const {
  std::string out = absl::StrFormat(
      "commits: %d (read-only %d, cross-shard %d), rollbacks %d\n"
      "aborts: write-conflict %d, read-validation %d, snapshot-too-old %d, locked %d, "
      "too-large %d, io-error %d\n"
      "in-doubt: %d (recovery committed %d, aborted %d)\ncommit latency us: %s\n"
      "follower reads: %d (%d refused as too stale)\n"
      "async commits: %d, %d batches (%.1f per batch, sizes %s), %d back-pressure waits\n"
      "2pc us: prepare %s | decision %s | phase 2 %s\n"
      "wal: %d bytes, %d fsyncs, %.1f records/fsync%s\n"
      "checkpoints: %d, %d bytes; overlay %d bytes\n"
      "recovery: %d records, %d bytes, %.1f ms\n",
      commits, read_only_commits, cross_shard_commits, rollbacks, aborts_write_conflict,
      aborts_read_validation, aborts_snapshot_too_old, aborts_locked, aborts_too_large,
      aborts_io_error, in_doubt, recovered_commits, recovered_aborts, commit_latency_us,
      follower_reads, follower_reads_too_stale, async_commits, async_batches,
      async_completions_per_batch, async_batch_size, async_backpressure_waits, prepare_us,
      decision_us, phase2_us, wal_bytes, fsyncs, records_per_fsync,
      shared_log ? " (one log shared by all shards)" : "", checkpoints, checkpoint_bytes,
      overlay_bytes, recovery_records, recovery_bytes, recovery_ms);
  for (const ShardStatsView& s : shards) {
    absl::StrAppendFormat(
        &out,
        "shard %d: wal appends %d bytes %d fsyncs %d (%.1f rec/fsync, max %d, inline %d) "
        "unsynced %d segments created %d recycled %d; fsync us %s; "
        "checkpoints %d (%d failed; %d bytes, %d LMDB txns, ms %s, paused %d times %d ms); "
        "overlay %d bytes; "
        "backpressure waits %d; validation LMDB reads %d; applied LSN %d durable LSN %d; "
        "lmdb map %d (grown %d); recovery %d records %d bytes %.1f ms%s%s\n",
        s.shard, s.wal_appends, s.wal_bytes, s.wal_fsyncs, s.wal_records_per_fsync,
        s.wal_max_records_per_fsync, s.wal_inline_syncs, s.wal_unsynced_bytes,
        s.wal_segments_created, s.wal_segments_recycled, s.wal_fsync_latency_us, s.checkpoints,
        s.checkpoint_failures, s.checkpoint_bytes, s.checkpoint_txns, s.checkpoint_ms,
        s.checkpoint_pauses, s.checkpoint_paused_ms, s.overlay_bytes, s.backpressure_waits,
        s.validation_lmdb_reads, s.applied_lsn, s.durable_lsn, s.lmdb_map_size, s.lmdb_map_growths,
        s.recovery_records, s.recovery_bytes, s.recovery_ms,
        s.recovery_torn_tail ? " (torn tail cut)" : "",
        s.raft_log_writes == 0 && s.raft_entries_stored == 0
            ? ""
            : absl::StrFormat("; raft log writes %d (%d entries)", s.raft_log_writes,
                              s.raft_entries_stored));
    if (s.replicated) AppendReplication(s.shard, s.replication, &out);
  }
  const LeadershipGatherStats& g = gathering;
  if (g.scatters != 0) {
    absl::StrAppendFormat(&out,
                          "leadership: %s; scattered %d gathered %d; last gathering %.1f ms, "
                          "longest %.1f ms\n",
                          g.gathered ? absl::StrFormat("on node %d", g.leader_id) : "not gathered",
                          g.scatters, g.gathers, g.last_gather_ms, g.max_gather_ms);
  }
  const InDoubtResolverStats& r = resolver;
  if (r.found != 0) {
    absl::StrAppendFormat(&out,
                          "in doubt after failover: found %d, resolved committed %d aborted %d, "
                          "left for the host %d; time to resolve last %.1f ms, longest %.1f ms\n",
                          r.found, r.resolved_committed, r.resolved_aborted, r.left_for_host,
                          r.last_resolve_ms, r.max_resolve_ms);
  }
  return out;
}

}  // namespace shardtx
