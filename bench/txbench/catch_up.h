// txbench --replicas' catch-up phase (issue 16: "the time for a new replica to catch up 1 GB"):
// fill the loopback cluster with committed data through its leader, let every shard's Raft group
// snapshot and truncate its log past that data, then add a new empty replica and time until it
// has installed a snapshot of every shard and applied up to the leader's commit index.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "bench/txbench/loopback_cluster.h"

namespace txbench {

struct CatchUpSpec {
  uint64_t bytes = 1ull << 30;  // committed key and value bytes to fill the shards with
  // A fill transaction: keys_per_txn values of one shard (1 MiB). Values of 16 KiB, not larger:
  // a checkpoint writes LMDB in transactions of Options::checkpoint_txn_bytes (64 KiB), each with
  // its own fdatasync, so larger values cost a sync each.
  uint32_t value_bytes = 16u << 10;
  uint32_t keys_per_txn = 64;
  int fill_threads_per_shard = 2;  // committers per shard during the fill
  // The new replica must have caught up within this time of its Open, else kDeadlineExceeded.
  absl::Duration deadline = absl::Minutes(10);
};

// The catch-up deadline MeasureCatchUp is given for `bytes`: a minute, plus a second for every
// 4 MB (1 GiB: about 5.5 minutes).
absl::Duration CatchUpDeadline(uint64_t bytes);

struct CatchUpResult {
  uint32_t shards = 0;
  uint64_t new_node_id = 0;
  // The fill: key and value bytes committed, in how many transactions, how long it took.
  uint64_t bytes_committed = 0;
  uint64_t fill_txns = 0;
  double fill_s = 0;
  // Then: one-key commits on every shard until its group had snapshotted and truncated its Raft
  // log past the fill (ReplicationOptions::snapshot_threshold + snapshot_trailing entries), and a
  // checkpoint of every replica.
  uint64_t truncate_commits = 0;
  double truncate_s = 0;
  // Commits of the fill and truncation retried because node 1 had lost leadership meanwhile (it
  // steps down when no majority answers within its election timeout; see CommitPuts).
  uint64_t leadership_retries = 0;
  // From the new node's Open until every shard of it had installed a snapshot and applied up to
  // the leader's commit index of that shard.
  double seconds = 0;
  double mb_per_s = 0;  // bytes_committed / seconds, in 10^6 bytes per second
  // Database::AddMember on the leader: when it last returned (seconds from the same start), its
  // result and how many calls it took (a call fails, kInternal, when libraft's catch-up round
  // outlasts its limit; it is repeated: the member is then promoted to voter).
  double add_member_s = 0;
  std::string add_member_status;
  int add_member_calls = 0;
  // The new node's counters when it was found caught up: snapshots installed and failed
  // installs (ShardStatsView), summed over its shards, and the fewest installs on one shard
  // (every shard needs one); its applied indexes and the leader's commit indexes, summed.
  uint64_t snapshots_installed = 0;
  uint64_t min_shard_installs = 0;
  uint64_t install_failures = 0;
  uint64_t applied_index = 0;
  uint64_t leader_commit_index = 0;
  uint64_t leader_snapshots_sent = 0;  // InstallSnapshot messages node 1 sent meanwhile
  uint64_t new_node_disk_bytes = 0;    // allocated bytes under the new node's directory
  // This process (every replica of the cluster and the new one): VmHWM after the catch-up minus
  // VmRSS before it (VmHWM reset through /proc/self/clear_refs; nullopt when that failed), and
  // the largest RssAnon (heap, not mapped files) sampled while it ran, minus RssAnon before.
  std::optional<int64_t> peak_rss_growth_bytes;
  int64_t peak_anon_growth_bytes = 0;
};

// Runs the phase on `cluster` (its dbs open, node 1 the ready leader of every shard): fills it
// with spec.bytes, truncates, opens node N+1 in cluster.dir/node<N+1> with
// ReplicationOptions::join, adds it on node 1, and measures (polling Database::GetStats every
// 20 ms). The new node is closed before returning; its directory is left for the caller to
// remove. `shard_of` maps a key to its shard (the databases' partitioning); `progress` gets
// transient and step lines. Errors: a failed commit or Open as it is; kDeadlineExceeded naming
// each shard's state when the new node did not catch up within spec.deadline;
// kFailedPrecondition when it caught up but some shard installed no snapshot (then the figure
// would time log replication, not snapshot catch-up).
absl::StatusOr<CatchUpResult> MeasureCatchUp(
    LoopbackCluster& cluster, const std::function<uint32_t(absl::string_view)>& shard_of,
    const CatchUpSpec& spec, const std::function<void(const std::string&, bool)>& progress);

// "1.07 GB" (from 10^8 bytes) or "2.1 MB".
std::string DataSize(uint64_t bytes);

// One line: "1.07 GB caught up in 23.4 s (45.9 MB/s) by new node 4: ...".
std::string CatchUpText(const CatchUpResult& r);

}  // namespace txbench
