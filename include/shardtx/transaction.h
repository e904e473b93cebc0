// shardtx/transaction.h: one ACID transaction. Created by Database::Begin.
//
// Reads see the snapshot taken at Begin plus this transaction's own writes. Writes are
// buffered in memory until Commit. A Transaction is used by one thread at a time (it may move
// between threads). Destroying it without Commit rolls it back.
//
// Errors common to all calls: kFailedPrecondition after Commit/Rollback; kAborted (retryable:
// roll back and run the transaction again) when its snapshot can no longer be served
// ("snapshot too old"), with the shard named.
//
// Keys are 1 to kMaxKeySize bytes (LMDB's limit: the checkpointed store is LMDB). Get, Put and
// Delete refuse any other key with kInvalidArgument. Iterator bounds and Seek targets may be
// any string.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "shardtx/iterator.h"

namespace shardtx {

inline constexpr size_t kMaxKeySize = 511;

class Transaction {
 public:
  virtual ~Transaction() = default;

  // The value of `key`, or kNotFound. kDataLoss (naming the shard's store and the key) if the
  // stored value fails its checksum: the wrong bytes are never returned. On replicated shards,
  // kUnavailable (no effect; retry the transaction) while the key's shard holds, still
  // prepared, a part of a cross-shard transaction whose other parts committed at or below this
  // transaction's snapshot (in doubt after a failover, until the in-doubt resolver commits it):
  // reading it would show half of that transaction. Iterators over such a shard fail likewise.
  virtual absl::StatusOr<std::string> Get(absl::string_view key) = 0;
  // Buffers a write; visible to this transaction's reads at once, to others after Commit.
  virtual absl::Status Put(absl::string_view key, absl::string_view value) = 0;
  virtual absl::Status Delete(absl::string_view key) = 0;
  // An iterator over [lower_bound, upper_bound). Its reads count as reads for serializable
  // validation (the whole bounded range).
  virtual std::unique_ptr<Iterator> NewIterator(const IteratorOptions& options = {}) = 0;

  // Makes the writes durable (per TxnOptions::durability) and visible, atomically across
  // shards. Returns:
  //   OK; kAborted (retryable) on a write-write conflict ("first committer wins"), a failed
  //   serializable validation, or a key locked by a prepared transaction, the message naming
  //   the key, the shard and the phase; kResourceExhausted when the transaction exceeds
  //   Options::max_txn_bytes; kFailedPrecondition once the Database is closing or closed; an
  //   I/O status when the log failed: the database must then be reopened, and whether the
  //   transaction committed is known only then (Database::GetOutcome; a write, or an fsync
  //   that failed, may still have reached the disk). After any error the transaction is over.
  //
  // A commit over several shards is durable, and committed, once every participant shard's
  // prepare record is durable (parallel commit: one fsync round); its decision record is
  // written after, without waiting. Once that point is passed Commit returns OK even if a
  // later record cannot be logged (the failed log then fails the next calls that need it).
  //
  // Serializable and prepared transactions: a serializable Commit aborts (retryably, "prepare
  // conflict") if a key it read, or a key in a range it read, is written by a transaction that
  // is prepared and not yet decided; and any Commit aborts if it writes a key, or into a range,
  // that a serializable prepared transaction read (see Prepare). So no cycle forms with a
  // prepared transaction: commit-timestamp order is a serial order.
  //
  // Replicated shards (EXPERIMENTAL, docs/replication-plan.md): what Get and iterators return
  // is not confirmed until Commit returns OK, and a transaction that read a replicated shard
  // must be committed for its reads to count. Commit then returns OK only if this node was the
  // ready leader of each replicated shard the transaction read (with one shard: of that shard)
  // when the transaction began, and a majority of the shard's replicas accepted that same
  // leadership term after that. So every commit that any node acknowledged before Begin is in
  // what the transaction read, and no newer leader acknowledged anything before that point
  // (the reads are linearizable; there is no staleness bound to state). Otherwise Commit returns
  // kUnavailable, naming the leader's id and address when this node knows them, with no effect:
  // retry the whole transaction on the leader. This holds for a node paused or partitioned past
  // the election timeout that still takes itself for the leader.
  //   - Read-only: a follower refuses at once. On the leader, Commit waits for one Raft barrier
  //     (a round trip to a majority), shared by every read-only commit whose transaction began
  //     before that barrier was sent; later ones wait for the next.
  //   - Follower reads (TxnOptions::follower_read, on any node): the reads are not
  //     linearizable but a consistent snapshot at the node's safe timestamp (every shard at
  //     once, a cross-shard commit whole or not at all), at most TxnOptions::max_staleness old;
  //     Commit returns OK at once (asking no leader), or kUnavailable when the node could not
  //     promise max_staleness at Begin (the reads got it too). Put, Delete and Prepare return
  //     kFailedPrecondition with no effect; the transaction stays usable for reads.
  //   - Read-write (one replicated shard written): no extra round trip. The commit's own entry,
  //     acknowledged only once it is released in the term the transaction began in, confirms
  //     its reads of that shard. A transaction begun while this node did not lead the shard, or
  //     in an earlier term, gets kUnavailable with no effect, even if this node leads now.
  //     Reads of other replicated shards are confirmed by a barrier each, before the commit.
  //   - Read-write, several replicated shards written (issue 17; docs/replicated-2pc-plan.md):
  //     only on a node that was the ready leader of every shard written when the transaction
  //     began and still is; otherwise kUnavailable naming each shard's leader as this node
  //     knows it, with no effect. One prepare entry per shard (each confirms that shard's
  //     reads); OK once all are committed, the writes visible here at once. kUnavailable if a
  //     prepare was refused (aborted, no effect). kUnknown, naming the transaction id, if
  //     leadership was lost while prepares were in flight: it committed if every prepare
  //     commits. No resolver decides such a transaction yet (issue 17 step 4): it stays
  //     prepared, its keys locked, and GetOutcomeOfKey on a shard's leader answers kUnavailable
  //     ("being resolved") while that shard holds it prepared, kAborted if it holds no prepare.
  virtual absl::Status Commit() = 0;
  // How CommitAsync reports an outcome. A callback, not a future: a future costs an
  // allocation and a wake-up of a waiting thread per commit, where a callback lets shardtx hand
  // every commit one fsync covered to one thread at once and run them there in a row.
  using CommitCallback = std::function<void(absl::Status)>;

  // Commit without blocking the calling thread for the disk: the same durability (per
  // TxnOptions::durability), isolation and errors as Commit(), the outcome reported to `done`.
  //
  // A transaction that writes one shard:
  //   - An error known before anything is logged (kAborted for a conflict, kResourceExhausted,
  //     kFailedPrecondition once the Database is closing, an I/O status when the log is already
  //     failed, kInvalidArgument for an empty `done`) is returned at once, and `done` is never
  //     called.
  //   - OK means `done` will be called exactly once: with OK once the commit is durable AND
  //     visible (a transaction begun after `done` starts sees it), or with the I/O error that
  //     failed the log before the record was durable (the commit is then not in memory: nobody
  //     ever saw it; whether the record reached the disk is unknown until the database is
  //     reopened, as for Commit).
  // A transaction that writes several shards commits with the blocking two-phase commit on a
  // thread of the Database's own (one thread switch each way): CommitAsync returns OK (or
  // kFailedPrecondition when closing) and every outcome, conflicts included, goes to `done`.
  // A read-only transaction: `done(OK)` is called on the calling thread before CommitAsync
  // returns OK. On a database with a replicated shard it first confirms its reads as Commit
  // does, blocking the calling thread for the barrier, and returns kUnavailable (`done` never
  // called) where Commit would; CommitAsync with writes returns kUnimplemented there.
  //
  // The Transaction is over when CommitAsync returns (whatever it returns) and may be
  // destroyed at once; commit_timestamp() is valid once it returned OK (one shard; 0 for
  // several, whose timestamp is taken on the commit thread). It stays set (nonzero) when `done`
  // later gets an I/O error: the timestamp was taken, and the commit then taken back.
  //
  // Back-pressure: while Options::max_async_commits commits are in flight (accepted, `done`
  // not yet returned), CommitAsync blocks until one completes, except when called from a
  // callback (it never blocks there: the thread it would wait for is its own).
  //
  // Callbacks (`done`) run on shardtx threads, never on a thread that writes the log:
  //   - Single-shard commits: on the Database's completion thread, one at a time (the next
  //     waits for the one running), with OK once its commit is visible. Of one shard's commits
  //     with the same durability, the OK callbacks run in commit order (all the completions
  //     one fsync covered in a row). Across shards, between kSync and kAsync/kNone commits of
  //     one shard, and for errors, the order is not promised: a commit at a later timestamp
  //     may be reported first (though not before the earlier one is visible or failed).
  //   - Several shards: on a small pool of the Database's threads, concurrently with each
  //     other and with the completion thread, in no particular order.
  //   - Read-only: on the calling thread, as said above.
  // A callback must be quick: the completions behind it wait. It may call any shardtx API
  // (Begin, Get, Put, CommitAsync, GetStats...); blocking calls (Commit, Checkpoint, Backup)
  // work but stall every completion queued behind them. It must not call Database::Close nor
  // destroy the Database: they wait for every accepted CommitAsync's callback to return, its
  // own included. Close (and destruction) returns only after every accepted CommitAsync's
  // `done` has returned and been destroyed (its captures with it). `done` must not throw.
  virtual absl::Status CommitAsync(CommitCallback done) = 0;
  // Discards the writes. Always OK unless already over.
  virtual absl::Status Rollback() = 0;

  // Phase one of two-phase commit for a host that runs its own coordinator (XA-style). Makes
  // the writes durable as prepared under `name`, with their keys locked (other writers of them
  // get kAborted naming this transaction) until Database::CommitPrepared(name) or
  // RollbackPrepared(name). A prepared transaction survives crashes and restarts, locks
  // included. Under Isolation::kSerializable it also keeps what it read locked (keys and
  // iterator ranges): writers of them get kAborted naming it until it is decided, also across
  // restarts (the read set counts against Options::max_txn_bytes with the writes:
  // kResourceExhausted past it). After an OK Prepare the Transaction object is over (Commit
  // fails); the decision is made through the Database by name. Errors: kInvalidArgument (empty
  // name); kAlreadyExists (a prepared transaction has this name); the errors of Commit.
  //
  // Replicated database (issue 17; docs/replicated-2pc-plan.md): as a cross-shard Commit, only
  // on a node that was the ready leader of every shard written (shard 0 if none) when the
  // transaction began and still is; otherwise kUnavailable naming each shard's leader as this
  // node knows it, no effect. OK once every shard's prepare entry is committed in its Raft
  // group: the transaction is then listed by ListPrepared on this node and, once they applied
  // the entries, on the other replicas, and it survives the loss of this node (the next leader
  // of every part lists it and can decide it). kUnavailable if a prepare entry was refused (no
  // effect); kUnknown, naming the transaction id, if leadership was lost while prepares were in
  // flight (it is prepared if every prepare commits: ask ListPrepared on the next leader).
  virtual absl::Status Prepare(absl::string_view name) = 0;

  // The transaction's id: unique per database (random 64-bit base per Open plus a counter),
  // written in its WAL records. Database::GetOutcome(id) tells what became of it.
  virtual uint64_t id() const = 0;

  // The commit timestamp (0 before a successful Commit, or a CommitAsync that returned OK).
  virtual uint64_t commit_timestamp() const = 0;
  // The snapshot timestamp reads are served at.
  virtual uint64_t snapshot_timestamp() const = 0;
};

}  // namespace shardtx
