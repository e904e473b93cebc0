// The snapshot stream: how a follower that must install a Raft snapshot of a shard fetches the
// shard's state from the snapshot's producer, over gRPC, in memory bounded independently of the
// shard's size (docs/replication-plan.md §6 "Catch-up, bounded memory", step 10).
//
// The libraft snapshot itself is metadata only (ShardMachine::Snapshot: shard, producer, Raft
// index L and term). The state moves here: the producer's SnapshotServer (one per node, on the
// node's port P) answers Fetch(cluster, shard, min Raft index) with one server-streaming call
// (replication/snapshot.proto): a header (L, term, the WAL LSN the tail starts from, producer),
// a consistent compacted LMDB copy (mdb_env_copyfd2(MDB_CP_COMPACT) written into a pipe by a
// thread of the stream, read in pieces of chunk_bytes), then the WAL tail from the copy's
// applied LSN through a cut taken after the LMDB copy (wal::CopyLog into a scratch directory on
// the producer's disk, then streamed from there), then a trailer. Every message carries an
// XXH3-64 of its own fields; the trailer carries a running XXH3-64 of every path and data byte.
// FetchSnapshot writes what it receives into a staging directory, checks everything, and syncs
// it; InstallSnapshotDir swaps it into place atomically.
//
// MEMORY BOUND, per stream, independent of the shard's size (C = chunk_bytes, 1 MiB by default;
// W = kStreamWindowBytes, 1 MiB; R = kTcpReadBytes, 256 KiB):
//   producer: the pipe read buffer (C) + the message being sent, serialized (C + 4 KiB) + the
//     HTTP/2 bytes the transport holds for the socket, at most the peer's flow-control window
//     (W) + LMDB's two copy buffers (2 x 1 MiB, MDB_WBUF in mdb.c, a constant of LMDB; the WAL
//     copy's 1 MiB read buffer comes after them, never with them)
//     <= 2C + W + 2 MiB + 4 KiB = 5 MiB + 4 KiB.
//   follower: the receive window (W) + the TCP read buffer (R) + the message being assembled
//     (C + 4 KiB) + the parsed Chunk (C) <= 2C + W + R + 4 KiB = 3.25 MiB + 4 KiB.
//   Both ends in one process (as in the tests): StreamBoundBytes(C) = 8.25 MiB + 8 KiB, plus
//   gRPC's fixed cost (threads, the connection), which does not grow with the shard. The pipe
//   (64 KiB by default) is kernel memory, not the process's. The window is fixed: the BDP probe
//   that would grow it is off; the largest message is C + 64 KiB on both ends; gRPC's TCP reads
//   are capped at R (its default grows to 4 MiB). The disk, not memory, holds the WAL tail on
//   the producer (what the shard's checkpoint triggers leave, staged) and the copy on the
//   follower.
//   Measured (snapshot_stream_test, Release, both ends in one process, 1 MiB chunks, shards of
//   5-215 MiB, sampled every millisecond during ShardMachine::Restore): the bytes malloc has
//   live grow by 6.9-9.1 MiB at the peak, flat in the shard's size (a 0.3 MiB shard: 3.1-3.3
//   MiB, LMDB's copy buffers, one chunk, gRPC's and two shard opens' fixed costs); RssAnon by
//   9-19 MiB, the rest being what glibc's per-thread arenas keep of freed 1 MiB buffers (with
//   MALLOC_ARENA_MAX=1: 8.5 MiB). A node serving several followers at once pays the producer's
//   share per stream (SnapshotServerOptions::max_streams).
//
// Back-pressure: a slow follower slows the sender (flow control), which stops reading the pipe,
// which blocks LMDB's copy thread. Meanwhile the producer holds one LMDB read transaction (a
// map growth waits for it: a checkpoint that must grow the map fails after 30 s and is retried,
// engine/lmdb_store.h) and a WAL pin from the copy's start LSN.
//
// SIGPIPE: SnapshotServer::Start sets it to SIG_IGN if it is still SIG_DFL (as raft_shim.h
// does), since a cancelled stream closes the pipe under LMDB's copy thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/shard.h"
#include "engine/types.h"
#include "shardtx/env.h"

namespace shardtx::replication {

inline constexpr uint32_t kDefaultChunkBytes = 1u << 20;
inline constexpr uint32_t kStreamWindowBytes = 1u << 20;
inline constexpr uint32_t kTcpReadBytes = 256u << 10;
// The bound stated above for one stream with both ends in one process.
constexpr uint64_t StreamBoundBytes(uint64_t chunk_bytes) {
  return 4 * chunk_bytes + 2 * uint64_t{kStreamWindowBytes} + kTcpReadBytes + (2ull << 20) +
         (8ull << 10);
}

// What a SnapshotServer streams from: one shard of this node. Implemented by ShardMachine.
class SnapshotSource {
 public:
  virtual ~SnapshotSource() = default;
  // The shard. The server uses it only between AddShard and the return of RemoveShard, from its
  // own threads (Shard's thread-safe calls: Pin/CopyStoreToFd, commit_mu, SyncWal, CopyWalTo).
  virtual engine::Shard& snapshot_shard() = 0;
  // The shard's directory (ShardOptions::dir): the default scratch space sits next to it.
  virtual std::string snapshot_shard_dir() = 0;
  // Keeps the shard's WAL from `lsn` on (0: no pin) until called again: what
  // ShardHooks::PinnedLsn must report meanwhile. Called from the server's threads.
  virtual void PinWal(engine::Lsn lsn) = 0;
};

struct SnapshotServerOptions {
  // "host:port" to listen on; port 0 picks one (SnapshotServer::port()).
  std::string address = "127.0.0.1:0";
  // This node's cluster id: a Fetch naming another is refused (kInvalidArgument).
  std::string cluster;
  // This node's server id, sent as the copy's producer.
  uint32_t producer = 0;
  // The largest Data piece (C above). 4 KiB .. 16 MiB.
  uint32_t chunk_bytes = kDefaultChunkBytes;
  // Streams served at once (each costs the producer's share of the bound above); a Fetch
  // beyond them gets kResourceExhausted and may retry later. At least 1.
  uint32_t max_streams = 4;
  // The file system seam for the WAL copy (wal::CopyLog) and the scratch directory. Not owned.
  Env* env = nullptr;
  // Where the WAL tail is staged while it streams (a directory per stream below it, removed
  // after). Empty: next to the shard directory, as "<shard dir>.stream-<n>".
  std::string scratch_dir;
  // TEST ONLY: called with each message's sequence number and, for Data, its bytes (else null)
  // after the message's check was computed (flip a byte to corrupt the stream). Returning true
  // ends the stream there, unsent, with an OK status (a truncated stream).
  std::function<bool(uint64_t seq, std::string* bytes)> tamper;
  // TEST ONLY: called by RemoveShard and Stop right after they cancelled the streams in flight,
  // before they wait for them (so a stream a test holds in `tamper` can be let go then). Must
  // not call the server.
  std::function<void()> after_cancel;
};

// One per node. Thread-safe.
class SnapshotServer {
 public:
  // Listens and serves. Errors: kInvalidArgument for bad options, kUnavailable if the address
  // cannot be bound.
  static absl::StatusOr<std::unique_ptr<SnapshotServer>> Start(const SnapshotServerOptions& options);
  // Stop().
  ~SnapshotServer();
  SnapshotServer(const SnapshotServer&) = delete;
  SnapshotServer& operator=(const SnapshotServer&) = delete;

  // The port listened on.
  int port() const;
  std::string address() const;

  // Serves `source` as shard `shard`. kAlreadyExists if the shard is served already.
  absl::Status AddShard(uint32_t shard, SnapshotSource* source);
  // Stops serving the shard: cancels its streams in flight (their followers get an error and
  // apply nothing) and returns once none uses `source` any more. No-op if not served.
  void RemoveShard(uint32_t shard);
  // Cancels every stream and stops listening; returns when no stream runs. Idempotent.
  void Stop();

  // Streams begun, finished with their trailer sent, and failed or cancelled.
  uint64_t streams_started() const;
  uint64_t streams_completed() const;
  uint64_t streams_failed() const;

 private:
  class Impl;
  explicit SnapshotServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct FetchOptions {
  std::string address;  // the producer's SnapshotServer, "host:port"
  std::string cluster;
  uint32_t shard = 0;
  uint64_t min_raft_index = 0;
  // How long the whole fetch may take (then kDeadlineExceeded).
  absl::Duration timeout = absl::Minutes(30);
  // The largest Data piece accepted (must be at least the producer's chunk_bytes).
  uint32_t max_chunk_bytes = kDefaultChunkBytes;
  Env* env = nullptr;  // for the directory operations; not owned
  // TEST ONLY: called after each message is received and checked, with its sequence number.
  std::function<void(uint64_t seq)> on_message;
};

struct FetchResult {
  uint32_t producer = 0;
  engine::RaftPosition raft;  // L: opening the copy gives at least this position
  engine::Lsn wal_from_lsn = 0;
  engine::Lsn wal_cut_lsn = 0;
  uint64_t data_bytes = 0;
  uint64_t messages = 0;
  uint64_t files = 0;
};

// Fetches a copy of the shard into `staging_dir`, which must not exist (it is created): on
// success it holds lmdb/data.mdb and wal/, every file and directory synced (and the parent),
// verified: every message's check, the order of the stream, each file's size, the trailer's
// digest and counts, the header's cluster and shard. Opening it as a shard gives at least the
// Raft position result.raft. On any failure `staging_dir` is removed and nothing else is
// touched. Errors: kDataLoss (a check failed; the stream was truncated or out of order),
// kInvalidArgument (the producer names another cluster or shard, or refused ours),
// kFailedPrecondition (the producer has not applied min_raft_index), kNotFound (the producer
// does not serve the shard), kUnavailable (no connection; the stream broke, as when the
// producer stops), kResourceExhausted (the producer runs max_streams already), kDeadlineExceeded,
// kAlreadyExists (`staging_dir` exists: then it is left alone), the file system's.
absl::StatusOr<FetchResult> FetchSnapshot(const FetchOptions& options,
                                          const std::string& staging_dir);

// Puts a fetched copy in place of the shard directory `dir` (which must exist and must not be
// open): exchanges the two directories atomically (renameat2 RENAME_EXCHANGE) and syncs their
// parent, then removes `staging_dir`, which now holds the old state. A crash before the parent's
// sync leaves either the old or the new directory at `dir`, whole. On a file system that cannot
// exchange directories (EINVAL): `dir` is renamed to "<dir>.old", the copy to `dir`, and the old
// one removed; a crash between the two renames leaves no `dir` but "<dir>.old" (whole). Errors:
// the file system's; when the exchange fails, nothing changed.
absl::Status InstallSnapshotDir(const std::string& staging_dir, const std::string& dir);

}  // namespace shardtx::replication
