// shardtx/options.h: how a Database is opened and how each transaction behaves.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace shardtx {

class Env;

// Durability of one transaction's commit.
enum class Durability {
  // Commit returns after the commit record is fsynced (group commit shares the fsync).
  // A crash of the process or the machine never loses it. The default.
  kSync,
  // Commit returns once the record is queued; the log writer fsyncs it promptly (usually
  // within one fsync time, see Stats::wal_unsynced_bytes). A machine crash may lose the last
  // few such commits, always a suffix of each shard's commit order; a process crash may too.
  kAsync,
  // Like kAsync but nothing forces the fsync: the record becomes durable with the next synced
  // commit, checkpoint or Close.
  kNone,
};

enum class Isolation {
  // Reads see the snapshot taken at Begin; write-write conflicts abort the later committer.
  // Write skew is possible.
  kSnapshot,
  // Snapshot isolation plus validation at commit that nothing this transaction read (keys and
  // scanned ranges) was changed by a transaction that committed after its snapshot.
  kSerializable,
};

// One voting member of a replicated database's cluster.
struct ReplicationMember {
  uint64_t id = 0;      // > 0, unique in the cluster
  std::string address;  // "IPv4:P": the member's one configured address (see ReplicationOptions)
};

// Replication (off by default): every shard of the database is one Raft group (libraft) whose
// replicas are the members' databases, all with the same shard count and partitioning.
//
// Addresses and ports. Each member has one address "IPv4:P". Shard g's Raft group listens on
// port P+1+g of that host (so a member uses ports P+1 .. P+num_shards, which must be free);
// port P serves the node's snapshot stream (gRPC), from which a replica that falls behind the
// leader's log catches up (see snapshot_threshold below).
//
// Identity. The first Open of a database with replication set requires pristine Raft state
// (none of the shards has any, and no data) and node_id among members, and records cluster_id,
// node_id, members and join in PATH/NODE (written and synced atomically). Without join it
// bootstraps a new cluster: every shard's group starts with `members` as its voters. With join
// it bootstraps nothing: the node starts with no configuration and waits for the leader of each
// shard to add it (Database::AddMember, called there); `members` is then the cluster as it will
// be, this node included. Every later Open checks the options and refuses, never obeys, a
// difference: another cluster_id or node_id, or replication not set, is kFailedPrecondition; so
// is Raft state that does not fit the manifest (present without one, missing with one).
//
// Members after the first Open. Membership changes go through Raft (Database::AddMember,
// RemoveMember), never through these options: the replicated configuration is the truth, and
// each Open compares `members` with it, shard by shard (every server of the group's latest
// configuration entry, voter or not; ids and addresses; a joining node's shard with no
// configuration yet is not compared). A difference is kFailedPrecondition naming both lists.
// So after a change, every node reopens with the new list (the stale one is refused), and the
// node manifest records the list each successful Open was given. If a change was done on some
// shards and not on others (see AddMember), the shards' configurations differ: `members` must
// then equal one of them (the Open succeeds; Stats shows each shard's members; finish the change
// by calling it again on the leader).
//
// Behaviour. A transaction commits on a node that leads its shard's group (the leader's term
// started: Database::Leadership says ready); Commit then returns OK once a majority of the
// members hold the entry durably, kUnknown if leadership was lost while it was in flight (it
// may or may not commit), and kUnavailable, with no effect, on any other node (the message
// names the leader's id and address when known: "leader is server ID at ADDRESS"). Cross-shard
// commits and named prepares (Transaction::Prepare, Database::CommitPrepared, RollbackPrepared)
// run on a node that leads every shard they write (see Transaction::Commit and Prepare); a
// transaction a failover left in doubt is resolved by the node that then leads all its shards.
// CommitAsync with writes returns kUnimplemented on a replicated database. Reads are fenced on
// the leader (Transaction::Commit); a follower serves read-only transactions only when asked to
// (TxnOptions::follower_read), at a timestamp it has fully applied.
//
// SIGPIPE: Open sets it to SIG_IGN for the whole process if it is still SIG_DFL (a peer that
// dies mid-write would otherwise kill the process). A host that installs its own handler keeps
// it; one that wants the default back must not use replication.
struct ReplicationOptions {
  // This node's id in members; 0 (the default) means: not replicated.
  uint64_t node_id = 0;
  // The cluster's id: any non-empty string of [A-Za-z0-9_-] of at most 64 bytes, the same on
  // every member and never reused for another cluster (draw it at random once, when the cluster
  // is created, e.g. 16 hex digits from /dev/urandom). It keeps a node of another cluster, or a
  // directory from one, out of this one.
  std::string cluster_id;
  // Every voting member, this node included. At most 9.
  std::vector<ReplicationMember> members;
  // Raft timing. A follower that hears no leader for election_timeout (drawn afresh in
  // [election_timeout, 2 * election_timeout)) stands for election; a leader sends heartbeats
  // every heartbeat. heartbeat < election_timeout; both in [1 ms, 10 min].
  absl::Duration election_timeout = absl::Seconds(1);
  absl::Duration heartbeat = absl::Milliseconds(100);
  // This node joins an existing cluster instead of bootstrapping one (see "Identity" above).
  // Read by the first Open only (recorded in the node manifest): a node that joined never
  // bootstraps, whatever later Opens say. Until the leaders add it, it leads nothing, knows no
  // leader and refuses commits (kUnavailable, "leader unknown").
  bool join = false;
  // Raft log compaction, per shard: after every snapshot_threshold entries a replica takes a
  // snapshot (cheap: a sync of the shard's log; the snapshot names the state, it does not copy
  // it) and drops its Raft log but the last snapshot_trailing entries. A follower that falls
  // further behind its leader than what the leader's log still holds catches up by snapshot: it
  // fetches a copy of the leader's shard (its LMDB store and log tail) over the leader's port P,
  // checks it, and swaps it in for its own (memory bounded independently of the shard's size;
  // a copy that fails its checks changes nothing). Larger values keep more entries in memory
  // and on disk; smaller ones make catch-up by snapshot more frequent. threshold in 1..2^24,
  // trailing in 0..2^24.
  uint32_t snapshot_threshold = 1024;
  uint32_t snapshot_trailing = 1024;
  // Leadership gathering. A transaction that spans shards needs one node leading all of them,
  // so every node keeps moving leaderships towards one node, the anchor: preferred_leader if it
  // is a live voter (heard from within an election timeout) at most 64 Raft entries behind the
  // shard's leader, else the node that leads shard 0. About every election timeout, a node that
  // leads a shard and is not its anchor hands that shard's leadership to the anchor (libraft's
  // leadership transfer) if the anchor is such a voter of the shard's group; while a transfer is
  // in flight (an election timeout at most) the shard refuses commits on that node with
  // kUnavailable, no effect. Give every member the same value. 0 (the default): no preferred
  // node; else a member's id (checked at Open: kInvalidArgument otherwise).
  //
  // Bound: once the surviving members can elect leaders (a majority is up and connected), every
  // shard's leader is on one live node within 10 election timeouts of a failover (one election,
  // then a transfer per shard, all shards at once; measured on 127.0.0.1 in
  // docs/replicated-2pc-plan.md section 9). Stats::gathering reports the gatherings this node
  // saw; Database::Leadership who leads each shard now.
  uint64_t preferred_leader = 0;
  // false: this node never hands a leadership to another (preferred_leader is then ignored by
  // it); leaders stay where elections put them, so a cross-shard transaction may find no node
  // leading all its shards. For tests and hosts that place leaders themselves.
  bool gather_leaders = true;
  // Follower reads (TxnOptions::follower_read). A shard's leader tells its followers, about every
  // heartbeat in which the shard released no entry, up to which timestamp the shard is closed
  // (nothing more commits at or below it), when that moves; with the leader's clock, from which
  // a follower's staleness is counted. Busy or idle, it also tells them at least every
  // closed_ts_refresh (a few bytes through the shard's Raft log), so that a follower's
  // staleness stays within about that plus the replication delay. absl::InfiniteDuration() (the
  // default): only when an idle shard's timestamp moved; a follower's data is then current but
  // its staleness is not known or grows, so a finite max_staleness is mostly refused. Otherwise
  // at least heartbeat (kInvalidArgument at Open).
  absl::Duration closed_ts_refresh = absl::InfiniteDuration();

  bool enabled() const { return node_id != 0; }
};

struct Options {
  // Directory of the database. Created if missing when create_if_missing; without it, a
  // directory that holds no database (no SHARDTX manifest; an empty one too) is kNotFound.
  std::string path;
  bool create_if_missing = true;
  // File-system seam for the write-ahead log; nullptr means Env::Default(). Not owned; must
  // outlive the Database.
  Env* env = nullptr;

  // Number of shards, fixed when the directory is created (recorded there). Reopening with a
  // different non-zero value fails with kInvalidArgument; 0 means "whatever the directory has"
  // (1 for a new directory).
  uint32_t num_shards = 0;

  // How keys map to shards; recorded in the directory with the shard count (reopening with a
  // different scheme or split points fails with kInvalidArgument).
  enum class Partitioning {
    kHash,      // jump consistent hash of XXH3(key): even spread, no locality
    kRange,     // shard i holds [range_split_points[i-1], range_split_points[i])
    kExplicit,  // explicit_shard(key) decides; the host places data itself
  };
  Partitioning partitioning = Partitioning::kHash;
  // kRange: num_shards - 1 strictly ascending keys.
  std::vector<std::string> range_split_points;
  // kExplicit: must return a shard < num_shards for every key, the same one forever.
  std::function<uint32_t(absl::string_view key)> explicit_shard;

  // Where the shards' write-ahead logs live. Chosen when the directory is created and
  // recorded in its manifest: an existing directory keeps the layout it was created with,
  // whatever this says (Stats::shared_log reports it). The default, kShared, suits shards that
  // share a disk; kPerShard suits a disk per shard. A replicated database (replication.node_id
  // set) is always created kPerShard, whatever this says (its commits wait for the Raft log,
  // not this one, and a replica that catches up by snapshot replaces its shard's log); opening
  // a kShared directory replicated is refused (kFailedPrecondition).
  enum class LogLayout {
    // One log per shard (PATH/shard-NNN/wal/): each shard syncs its own files. For hosts that
    // give each shard a disk of its own.
    kPerShard,
    // One log for all shards (PATH/log/): one fsync makes the records of every shard durable,
    // so the durable commit rate of a disk does not fall as shards are added, and the prepares
    // of a cross-shard commit share one fsync. Each shard keeps its own stream of records in
    // it: its LSNs increase but are not consecutive (the other shards' records lie between).
    // A segment is freed once no shard needs it; a shard with nothing to redo pins nothing.
    kShared,
  };
  LogLayout log_layout = LogLayout::kShared;

  // WAL segment size (preallocated). Multiple of 8, in [64 KiB, 1 GiB].
  uint64_t wal_segment_size = 64ull << 20;
  // Largest single commit record. Larger transactions fail Commit with kResourceExhausted.
  uint64_t max_txn_bytes = 16ull << 20;

  // Checkpoint triggers, per shard: WAL bytes written since the last checkpoint, bytes in the
  // in-memory overlay, time since the last checkpoint. 0 disables a trigger.
  uint64_t checkpoint_wal_bytes = 64ull << 20;
  uint64_t checkpoint_overlay_bytes = 64ull << 20;
  absl::Duration checkpoint_interval = absl::Seconds(30);
  // Commits wait (back-pressure) while a shard's overlay holds this many bytes and a checkpoint
  // is draining it. Must be >= checkpoint_overlay_bytes.
  uint64_t overlay_limit_bytes = 256ull << 20;
  // Per shard: memory for remembering the keys checkpoints deleted, so that a transaction
  // whose snapshot predates a checkpoint still sees those deletes as conflicts. Beyond it the
  // oldest are forgotten, and such a transaction aborts (retryably) when it writes, or
  // serializably reads, a key absent from the store. 0: remember none.
  uint64_t checkpointed_deletes_bytes = 8ull << 20;
  // Checkpoint every shard on Close, so the next Open has nothing to redo.
  bool checkpoint_on_close = true;
  // A checkpoint writes LMDB in transactions of about this many bytes (0: one transaction);
  // the last one records how far the WAL is applied and is durable. Small ones keep commit
  // latency steady while a checkpoint runs, since the disk never has much of it to write back
  // when a WAL fsync arrives; large ones finish it sooner and write fewer B-tree pages twice.
  uint64_t checkpoint_txn_bytes = 64ull << 10;
  // After each of those transactions, a checkpoint pauses for this multiple of the time the
  // transaction took, if the shard's WAL synced meanwhile (sync or async commits are using the
  // disk), so that their fsyncs find the disk free part of the time. 1 roughly halves the
  // checkpoint's disk bandwidth while they run. No pause when no commit syncs (none at all, or
  // only kNone ones), nor while the shard's overlay holds half of overlay_limit_bytes or more
  // (memory first). 0: never pause. In [0, 100].
  double checkpoint_pace = 1.0;

  // Largest number of Transaction::CommitAsync calls in flight (accepted, their callback not
  // yet returned); CommitAsync blocks at the limit (back-pressure) until one completes, except
  // on a shardtx callback thread. In [1, 2^20].
  uint32_t max_async_commits = 4096;

  // Largest number of transactions open at once (sizes LMDB's reader table).
  uint32_t max_open_transactions = 1024;
  // Initial LMDB map size per shard (address space, not disk); grown automatically when full.
  uint64_t lmdb_map_size = 16ull << 30;

  // Off by default (node_id 0): see ReplicationOptions. An unreplicated database's format and
  // behaviour are the same whether or not this library can replicate.
  ReplicationOptions replication;
};

// The names a log layout has outside the code (the tools' --log-layout, a host's configuration):
// "shared" (kShared) and "per-shard" (kPerShard).
const char* LogLayoutName(Options::LogLayout layout);
// The layout a name above stands for, ignoring case and surrounding blanks. Any other name:
// kInvalidArgument, naming the choices.
absl::StatusOr<Options::LogLayout> ParseLogLayout(absl::string_view name);

struct TxnOptions {
  Isolation isolation = Isolation::kSnapshot;
  Durability durability = Durability::kSync;
  // EXPERIMENTAL (replicated databases, issue 17): a read-only transaction that any replica may
  // serve, follower or leader alike, at that node's safe timestamp: the largest timestamp at or
  // below which this node has applied every commit that can ever be made, on every shard at
  // once (so a cross-shard transaction is seen whole or not at all). It reads a consistent
  // snapshot, possibly older than the newest commits (how much older: max_staleness), and its
  // Commit asks the leader nothing. Put and Delete are refused (kFailedPrecondition, no effect;
  // the transaction stays usable for reads). On a database that is not replicated it is an
  // ordinary read-only transaction (writes refused likewise).
  bool follower_read = false;
  // With follower_read: the oldest data the host accepts. How stale a node's safe timestamp is:
  // this node's clock against the clock of the shard's leader when it closed a timestamp at or
  // below it (ReplicationOptions::closed_ts_refresh), the largest over the shards. If the
  // node cannot promise max_staleness (older, or not known: e.g. a shard holds a transaction
  // prepared and not yet decided here, which holds the safe timestamp below its snapshot), Get,
  // iterators and Commit fail with kUnavailable, naming the staleness and the bound.
  // absl::InfiniteDuration() (the default): any.
  absl::Duration max_staleness = absl::InfiniteDuration();
};

}  // namespace shardtx
