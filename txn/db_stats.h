// The database's statistics: the counters transactions keep, and their mapping, with each
// shard's figures, onto the public shardtx::Stats (include/shardtx/stats.h).
#pragma once

#include <atomic>
#include <cstdint>

#include "engine/shard.h"
#include "shardtx/stats.h"
#include "util/histogram.h"

namespace shardtx::txn {

// Counters shared by all transactions of a database.
struct TxnCounters {
  std::atomic<uint64_t> commits{0}, read_only_commits{0}, cross_shard_commits{0}, rollbacks{0};
  std::atomic<uint64_t> aborts_write_conflict{0}, aborts_read_validation{0};
  std::atomic<uint64_t> aborts_snapshot_too_old{0}, aborts_locked{0}, aborts_too_large{0};
  std::atomic<uint64_t> aborts_io_error{0};
  std::atomic<uint64_t> recovered_commits{0}, recovered_aborts{0};
  std::atomic<uint64_t> follower_reads{0}, follower_reads_too_stale{0};
  Histogram commit_latency_us;
  // Transaction::CommitAsync: accepted, their completions delivered in batches (one batch:
  // what the completion thread took at once), and the callers that waited for a slot.
  std::atomic<uint64_t> async_commits{0}, async_batches{0}, async_completions{0};
  std::atomic<uint64_t> async_backpressure_waits{0};
  Histogram async_batch_size;
  // Two-phase commit phases, microseconds.
  Histogram prepare_us, decision_us, phase2_us;
};

// The counters, the number of in-doubt transactions, and every shard's own stats (in shard
// order), as the public Stats; the totals summed over the shards, except the log's when the
// shards share one (`shared_log`: each shard's log figures are that log's, counted once).
Stats MakeStats(const TxnCounters& counters, uint64_t in_doubt,
                const std::vector<std::pair<uint32_t, engine::ShardStats>>& shards,
                bool shared_log);

}  // namespace shardtx::txn
