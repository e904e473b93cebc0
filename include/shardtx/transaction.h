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
  // stored value fails its checksum: the wrong bytes are never returned.
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
  virtual absl::Status Commit() = 0;
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
  virtual absl::Status Prepare(absl::string_view name) = 0;

  // The transaction's id: unique per database (random 64-bit base per Open plus a counter),
  // written in its WAL records. Database::GetOutcome(id) tells what became of it.
  virtual uint64_t id() const = 0;

  // The commit timestamp (0 before a successful Commit).
  virtual uint64_t commit_timestamp() const = 0;
  // The snapshot timestamp reads are served at.
  virtual uint64_t snapshot_timestamp() const = 0;
};

}  // namespace shardtx
