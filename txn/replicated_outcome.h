// The outcome of a transaction on a replicated shard (plan §6 "kUnknown / GetOutcome", step 6),
// as Database::GetOutcome and GetOutcomeOfKey answer it, from the shard's released-transaction
// table (engine/released_txns.h: every replica holds the same, rebuilt at recovery).
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "shardtx/database.h"

namespace shardtx::txn {

class DatabaseImpl;

// What became of transaction `id` on replicated shard `shard`:
//  - kCommitted: an entry committing it was released on this replica (any replica: final).
//  - Otherwise, on a replica that is not the shard's ready leader: kUnavailable naming the
//    leader (ask it), no effect.
//  - On the ready leader: kUnknown when `id` is this process's own (node and incarnation: it may
//    still propose it) or lies at or below its (node, incarnation)'s horizon (evicted from the
//    window, maybe committed); else a fence entry (an empty commit) is proposed, and once it is
//    released in this leader's term, kCommitted if the id was released before it, else
//    kAborted. kAborted is final: see the .cc. The fence not committed: kUnavailable.
//  - A cross-shard transaction (issue 17) with a part prepared on the leader, not resolved,
//    before or after the fence: kUnavailable ("being resolved"), never a guess. Its commit
//    records count as released (engine/released_txns.h), so once its part here is committed the
//    answer is kCommitted; a part aborted, or no prepare here at all, is kAborted (final: a
//    transaction with a participant whose prepare is in no committed entry never commits).
// Blocks for one Raft round trip on the leader. REQUIRES: the database is open (the caller holds
// the gate) and `shard` is replicated.
absl::StatusOr<Database::Outcome> ReplicatedOutcomeOnShard(DatabaseImpl* db, uint32_t shard,
                                                           uint64_t id);

}  // namespace shardtx::txn
