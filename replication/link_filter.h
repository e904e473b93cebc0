// TEST ONLY: partitions between the Raft servers of this process (each RaftNode, and so each
// shard group of a replicated Database, over raft_uv), by Raft id: the C++ face of raft_shim.h's
// link filter, which says exactly what a blocked link does. Compiled into the testing library
// (SHARDTX_KILL_POINTS) that the tests and crashtest link; in the shipped library every call
// fails with kFailedPrecondition and nothing is filtered. Zero cost while no link is blocked.
#pragma once

#include <cstdint>

#include "absl/status/status.h"

namespace shardtx::replication {

// A server's link with a peer has two directions: kOut, the server's own connection to the
// peer (everything it sends the peer), and kIn, the peer's connection to it (everything it
// receives from the peer). "A cannot send to B" is (A, B, kOut) and (B, A, kIn) blocked: in one
// process call both (BlockSend does); across processes each process blocks its own side.
enum class LinkDirection { kOut, kIn };

// Blocks or unblocks one direction of server `self`'s link with `peer` (the other direction is
// left as it is). Blocking cuts the connections open on it. Any thread.
absl::Status SetLinkBlocked(uint64_t self, uint64_t peer, LinkDirection direction, bool blocked);

// In one process: `from` can (not) send to `to`, both sides set.
absl::Status BlockSend(uint64_t from, uint64_t to, bool blocked);

// Unblocks every link of the process.
void UnblockAllLinks();

// Process-wide, since the start.
struct LinkFilterCounters {
  uint64_t refused_connects = 0;  // connections made to a blocked peer, closed
  uint64_t refused_accepts = 0;   // connections from a blocked peer, closed unread
  uint64_t cut_streams = 0;       // open connections shut down when their link became blocked
};
LinkFilterCounters GetLinkFilterCounters();

}  // namespace shardtx::replication
