// shardtx/database.h: an open shardtx database.
//
//   shardtx::Options options;
//   options.path = "/var/lib/myhost/shardtx";
//   auto db = shardtx::Database::Open(options);          // creates, or recovers by redo
//   if (!db.ok()) return db.status();
//   auto txn = (*db)->Begin();
//   txn->Put("k", "v");
//   absl::Status s = txn->Commit();                      // durable once OK (kSync)
//
// Layout of the directory: SHARDTX (format version, shard count, log layout), LOCK (pid of the
// process that has it open), shard-NNN/{wal,lmdb}/ per shard; or, in the shared log layout
// (Options::log_layout), shard-NNN/lmdb/ per shard and log/ for all of them.
//
// Thread safety: a Database is used from many threads at once. Each Transaction is used by
// one thread at a time.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "shardtx/options.h"
#include "shardtx/stats.h"
#include "shardtx/transaction.h"

namespace shardtx {

class Database {
 public:
  // Opens the database at options.path, creating it if missing (create_if_missing), and
  // recovers it: each shard's WAL (or its records in the shared log) is redone above the LMDB
  // checkpoint. Errors:
  //   kInvalidArgument  bad options (a new database's directory is then not created), or
  //                     num_shards differs from the directory's;
  //   kNotFound         path missing, or holding no database, and !create_if_missing;
  //   kFailedPrecondition  path is not a directory (or runs through a file), holds something
  //                     other than a shardtx database, is of a newer format version, or is
  //                     already open (by this or another process: "already open by pid N");
  //   kPermissionDenied the path cannot be written;
  //   kDataLoss         the WAL or LMDB is corrupt (the message names the file and offset), or
  //                     the manifest is (a shared-layout format without its "log shared"
  //                     line; a shared log record of a shard the manifest does not have).
  // With Options::replication set (see ReplicationOptions), also:
  //   kInvalidArgument  bad replication options (ids, addresses, cluster id, timeouts);
  //   kFailedPrecondition  the node manifest (PATH/NODE) or a shard's Raft state disagrees with
  //                     the options (another cluster, node or member list: both are named), or
  //                     Raft state is there without a manifest (or missing with one);
  //   kUnavailable      a shard's Raft port (P+1+g) cannot be bound, or its Raft directory
  //                     cannot be used.
  // A failed Open leaves nothing running and the directory closed (a later Open may succeed).
  static absl::StatusOr<std::unique_ptr<Database>> Open(const Options& options);

  // Closes (see Close) if still open.
  virtual ~Database() = default;

  // Starts a transaction. Never fails: errors surface from its calls.
  virtual std::unique_ptr<Transaction> Begin(const TxnOptions& options = {}) = 0;

  // Checkpoints every shard now: its committed writes move into LMDB and the WAL behind them
  // is recycled. Commits continue meanwhile.
  virtual absl::Status Checkpoint() = 0;

  virtual Stats GetStats() = 0;

  // Who leads each shard's Raft group, as this node knows it (a replicated database; see
  // ReplicationOptions). One entry per shard, in shard order; empty when the database is not
  // replicated or is closed. Thread-safe, never blocks on the network.
  struct ShardLeadership {
    enum class Role { kFollower, kCandidate, kLeader, kUnavailable };
    uint32_t shard = 0;
    Role role = Role::kFollower;  // this node's role in the group
    // This node leads and its term has started: it accepts commits on the shard.
    bool ready = false;
    uint64_t term = 0;            // this node's current Raft term
    uint64_t leader_id = 0;       // who this node believes leads: 0 when none is known
    std::string leader_address;   // that leader's member address ("IPv4:P"), "" when none
  };
  virtual std::vector<ShardLeadership> Leadership() = 0;

  // --- Membership of a replicated database (Options::replication). ---
  // Every shard is its own Raft group, so a change is made on each shard's group separately, by
  // that shard's leader. Call it on a node that leads every shard; for each shard it does not
  // lead (or leads but is not ready), that shard's result is kUnavailable naming the leader's id
  // and address ("leader is server ID at ADDRESS", or "leader unknown"), with no effect on that
  // shard: call again there. Both calls are idempotent and may be repeated until they return
  // OK: each shard does only what is left (a shard where the change is done reports OK at once).
  //
  // Results. OK when the change is committed on every shard's group. Otherwise the status of the
  // first shard that failed, its message naming every shard not done with its error and the
  // shards done ("not done on shard 1 (...); done on shards 0"): a change done on some shards
  // and not others is reported, never silent. `per_shard`, if not null, receives one status per
  // shard, in shard order. A shard's status:
  //   OK                   the configuration asked for is committed in that shard's group;
  //   kUnavailable         this node does not lead the shard (see above), or closed meanwhile;
  //   kUnknown             leadership was lost while the change was in flight: it may or may
  //                        not take effect (call again, on the new leader);
  //   kAborted             another membership change of that group is in progress (one at a
  //                        time): no effect, retry;
  //   kAlreadyExists       AddMember: the id is in the group with another address, or the
  //                        address belongs to another id: no effect;
  //   kInternal            libraft failed the change, e.g. a new member that did not catch up
  //                        in time (unreachable, or too slow); it may be left in the group as a
  //                        non-voter (no vote, counted for nothing): call again, or remove it.
  // Errors of the call itself (nothing changed): kFailedPrecondition when the database is not
  // replicated or is closed, or (RemoveMember) the id is this node's; kInvalidArgument for a bad
  // id or address.
  //
  // AddMember: adds `member` (id, and its configured address "IPv4:P"; shard g's group reaches
  // it at P+1+g) to every shard's group. It joins as a non-voter, the leader brings it up to date
  // (libraft's catch-up rounds: each round sends what was appended during the previous one), and
  // once it is up to date it is promoted to voter. An empty member first installs a snapshot of
  // the shard (ReplicationOptions::snapshot_threshold: libraft 0.15 sends one to a server that
  // needs the log's first entry as soon as the group has taken a snapshot, every 1,024 entries
  // by default) fetched from the leader's port P, then receives the log after it. The new member
  // must have been opened with ReplicationOptions::join (an empty database; its options' members
  // being the cluster as it will be) and be reachable; the call returns when every shard is done
  // or failed (a member that cannot be reached, or does not catch up, fails after libraft's
  // catch-up limit, about 5 s: kInternal, the member left a non-voter; call again, or
  // remove it).
  //
  // RemoveMember: removes member `id` from every shard's group (a shard where it is not a member
  // reports OK). The removed node's shards stop receiving entries and cannot be elected or vote
  // in the remaining group. A node cannot remove itself (kFailedPrecondition): ask another
  // node once it leads. Replace a dead member by AddMember of the new one (the dead one still
  // counts in the majority meanwhile), then RemoveMember of the dead one.
  //
  // Blocks until every shard's change is decided. Other nodes follow the new configuration through
  // Raft; each node's next Open must be given the new member list (ReplicationOptions, "Members
  // after the first Open").
  virtual absl::Status AddMember(const ReplicationMember& member,
                                 std::vector<absl::Status>* per_shard = nullptr) = 0;
  virtual absl::Status RemoveMember(uint64_t id,
                                    std::vector<absl::Status>* per_shard = nullptr) = 0;

  // --- Named two-phase commit (see Transaction::Prepare). ---
  // Names of the transactions prepared and not yet decided, sorted.
  virtual absl::StatusOr<std::vector<std::string>> ListPrepared() = 0;
  // A name is listed, and can be resolved, from the moment its Prepare is durable on every
  // participant (before Prepare returns OK). Exactly one resolution of a prepared transaction
  // wins: a CommitPrepared or RollbackPrepared of a name another caller is resolving gets
  // kFailedPrecondition ("being committed" / "being rolled back"), and kNotFound once that
  // resolution is done.
  //
  // Commits the prepared transaction `name`: durable and visible when OK. kNotFound if no
  // prepared transaction has this name; an I/O status if the log failed: nothing of it is
  // visible, it keeps its locks and name, later resolutions get kFailedPrecondition ("in
  // doubt"), and the outcome is known only after reopening (ListPrepared or GetOutcome).
  virtual absl::Status CommitPrepared(const std::string& name) = 0;
  // Rolls back the prepared transaction `name`, releasing its locks. Errors as above.
  //
  // Replicated database (issue 17): every replica lists a transaction once it applied all its
  // prepares (a follower's list may lag its leader's), but CommitPrepared and RollbackPrepared
  // run only on a node that is the ready leader of every shard the transaction wrote; elsewhere
  // kUnavailable naming each shard's leader as this node knows it, nothing decided (still
  // listed). CommitPrepared: OK once the decision is committed in the first shard's Raft group
  // (the commit point), the writes then visible on this node at once and on the others as they
  // apply its commit entries; kUnavailable if the decision was refused (nothing decided, still
  // prepared: decide again on the leader); kUnknown if leadership was lost while it was in
  // flight (committed if it commits: GetOutcome on the next leader of every shard answers
  // kPrepared, listed again, if it did not). RollbackPrepared: OK once an abort entry is
  // committed on any shard (the transaction can then only abort); kUnavailable if every abort
  // entry was refused (still prepared); kUnknown otherwise. GetOutcome answers kPrepared for a
  // listed transaction, kCommitted or kAborted once this node decided it.
  virtual absl::Status RollbackPrepared(const std::string& name) = 0;

  // What became of transaction `id` (Transaction::id()), for a caller that lost track of a
  // Commit, also after a restart. Known for the most recent 100,000 outcomes of this process
  // and, after a restart, for every transaction whose records are still in the WAL (since the
  // last checkpoint of its shards); kUnknown otherwise.
  //
  // Replicated database (Options::replication): ask before retrying a commit that returned
  // kUnknown. Each shard's replicas keep the ids of the transactions their released entries
  // committed (the last 100,000 per shard, through restarts and snapshots, plus per node and
  // incarnation the largest counter dropped from that window). kCommitted if any replica of
  // this node holds it (final, on a follower too). kAborted, final, only on a node that is the
  // ready leader of every shard (its term-start entry released): it first commits an empty
  // entry in its term, then answers kAborted if the id was not released before it, since such a
  // transaction can never commit (its entry, if any, was not committed before this leader's
  // term began, and an entry of an older term not committed by then never is). kUnknown
  // otherwise: on a follower or a leader not ready, for ids this process gave (it may still
  // propose them), for ids older than the window, or when leadership changed meanwhile. A host
  // is never told kAborted for a transaction that may still commit. Blocks for one Raft round
  // trip on the leader. With several shards led by different nodes, use GetOutcomeOfKey.
  enum class Outcome { kUnknown, kCommitted, kAborted, kPrepared };
  virtual Outcome GetOutcome(uint64_t id) = 0;
  // Replicated database: GetOutcome(id) for a transaction that wrote `key` (so on key's shard
  // alone), asking the node it is called on. kCommitted or kAborted (final) or kUnknown as
  // above, but on a node that does not lead key's shard (or leads it but is not ready), when no
  // replica of this node holds the id: kUnavailable naming the leader's id and address, as a
  // commit does: ask there. kUnavailable too when leadership changed while the leader confirmed
  // its term (ask again). An unreplicated database answers GetOutcome(id).
  // A cross-shard transaction (issue 17): ask with a key it wrote; a shard's commit record of
  // it counts as released. On the ready leader, while the key's shard holds it prepared and
  // undecided (in doubt after a failover, until the node that is the ready leader of every
  // participant has decided it and proposed its commit or abort), the answer is kUnavailable
  // ("being resolved"), never a guess; then kCommitted or kAborted. A transaction of our own
  // prepared on a follower is never answered kPrepared (the leader may have decided it).
  virtual absl::StatusOr<Outcome> GetOutcomeOfKey(uint64_t id, const std::string& key) = 0;

  // Online backup: writes a consistent copy of this database, while it stays open and commits
  // go on, into the new directory `dest` (its parent must exist). The copy is an ordinary
  // database: Open it (with the same partitioning options), and it recovers by redo and then
  // commits like any other. It holds exactly the transactions whose commit records lie before one
  // cut, the same instant on every shard: every commit acknowledged before Backup was called is
  // in it, no cross-shard transaction is in it in part, and one that was between its phases at
  // the cut comes back as after a crash there (committed if its decision, or for a Commit its
  // prepares, were logged before the cut; a host's named prepare without a decision stays
  // prepared under its name).
  //
  // Costs: commits wait only for the cut (one instant, every shard's commit lock at once);
  // checkpoints go on, but the WAL is not truncated below what the copy needs until Backup
  // returns, and an LMDB map growth waits for a store copy (30 s at most, then that checkpoint
  // is retried). Files are streamed; memory stays bounded. Close waits for a running Backup.
  //
  // Crash safety: the copy is written into `dest.partial-<pid>-<n>` next to dest, every file
  // and directory synced, renamed to dest and the parent synced, and only then given its
  // manifest. A Backup that fails leaves neither directory. One killed at any point leaves no
  // directory that opens as a database: a partial directory, or a dest without a manifest
  // (holding the BACKUP note every backup has), which Open refuses. The next
  // Backup to the same dest removes both kinds (partial directories only of processes that no
  // longer exist).
  //
  // Errors (nothing is written for the first five):
  //   kAlreadyExists       dest exists;
  //   kNotFound            dest's parent directory does not exist;
  //   kInvalidArgument     dest is empty, or lies inside this database's directory;
  //   kFailedPrecondition  the database is closed, or another Backup of it is running;
  //   kPermissionDenied    dest cannot be created;
  //   an I/O status (kInternal, kResourceExhausted for a full disk) if a write or sync failed,
  //   and kDataLoss if a WAL record to copy is unreadable: then no dest exists.
  virtual absl::Status Backup(const std::string& dest) = 0;

  // Refuses every later call that would write (Commit, Prepare, CommitPrepared,
  // RollbackPrepared, Checkpoint, and reads of transactions still open: kFailedPrecondition
  // "closed"), waits for such calls already in flight to return, makes every commit durable,
  // checkpoints (unless Options::checkpoint_on_close is false) and releases the directory.
  // Transactions still open must be finished or destroyed before the Database; until then the
  // directory stays locked. (A finished Transaction may outlive the Database: only id() and
  // the timestamps may be called on it then.) Safe to call more than once and concurrently with other calls. Returns the
  // first error met.
  virtual absl::Status Close() = 0;
};

}  // namespace shardtx
