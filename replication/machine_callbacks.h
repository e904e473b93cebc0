// The shim's per-server callbacks (raft_shim.h: release, snapshot, restore) on a StateMachine
// (simulated_group.h). Both faces of the shim, SimulatedGroup (the fixture) and RaftNode
// (raft_uv), forward to these; only their completion callbacks differ. Internal to replication/.
#pragma once

#include <cstddef>
#include <cstdint>

#include "replication/simulated_group.h"

namespace shardtx::replication {

// Hands the released entry (term, index, the `len` bytes at `data`) to `machine`.
void ReleaseTo(StateMachine* machine, uint64_t term, uint64_t index, const void* data, size_t len);

// The machine's snapshot in a buffer of the shim's (rs_buffer_alloc), which takes it over:
// 0, or 1 when the machine or the allocation failed (nothing allocated then).
int SnapshotOf(StateMachine* machine, void** data, size_t* len);

// Restores `machine` from the `len` bytes at `data`: 0, or 1 when it failed.
int RestoreInto(StateMachine* machine, const void* data, size_t len);

}  // namespace shardtx::replication
