// The engine's vocabulary: what the layers above hand a shard and get back from it. The
// transaction layer speaks to the engine in these terms only, never in the WAL's or LMDB's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace shardtx::engine {

// Commit timestamps: every committed version carries one; snapshots read at one.
using Timestamp = uint64_t;
// Position of a record in a shard's log: dense, increasing, starting at 1.
using Lsn = uint64_t;

// Keys are 1 to kMaxKeySize bytes: LMDB's limit with its default page size (the checkpointed
// store is LMDB). The public API's shardtx::kMaxKeySize is the same number.
inline constexpr size_t kMaxKeySize = 511;

// Types of the records a shard's log holds. The engine interprets kCommit itself (see
// log_record.h); the others belong to the transaction layer (their payloads are described in
// txn/txn_records.h), and the engine hands them to ShardHooks::Redo during recovery.
enum RecordType : uint8_t {
  kCommit = 1,
  kPrepare = 2,
  kCommitPrepared = 3,
  kAbortPrepared = 4,
  kDecision = 5,
  kEnd = 6,
  // Written only by a replica (replication/shard_machine.h): one applied Raft entry, its
  // position (index, term) and the records it carried, in one WAL record so that a crash keeps
  // all of them or none. Redone by the engine (each record inside as if logged alone), never
  // handed to ShardHooks::Redo whole; an unreplicated shard never writes one.
  kRaftEntry = 7,
  // Only inside a kRaftEntry (a replicated shard's leader proposes it: follower reads, issue 17
  // step 6): "no entry after this one on this shard commits at or below closed_ts". Redone by
  // the engine (it raises the shard's safe bound, Shard::SafeBoundLocked), never handed to
  // ShardHooks; an unreplicated shard never writes one. Layout: log_record.h.
  kClosedTs = 8,
};

// A position in a shard's Raft log: the entry's index and the term that proposed it. {0, 0}:
// none (a shard that never applied a replicated entry).
struct RaftPosition {
  uint64_t index = 0;
  uint64_t term = 0;
};

enum class WriteOp : uint8_t { kPut = 1, kDelete = 2 };

// One write of a transaction on one shard.
struct Write {
  WriteOp op = WriteOp::kPut;
  std::string key;
  std::string value;
};

// How an append to a shard's log waits for durability.
enum class Durability {
  kSync,      // the caller will wait (Shard::WaitDurable) until the record is synced
  kAsync,     // synced promptly by the shard's log; the caller does not wait
  kNone,      // written promptly; made durable only by a later sync
  kDeferred,  // no wake-up at all: goes with whatever batch comes next, for a record whose
              // durability a later synced record (or nothing) depends on
};

// A row of a table the layer above keeps in the shard's store with each checkpoint (see
// ShardHooks::CheckpointTables).
struct TableWrite {
  std::string table;
  std::string key;
  std::optional<std::string> value;  // nullopt: delete
};

}  // namespace shardtx::engine
