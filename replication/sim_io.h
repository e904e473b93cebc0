/* An in-memory, deterministic raft_io for libraft 0.15 (plan step 9's simulator), behind the
 * shim's third backend (raft_shim.h, "The crash simulator backend"). C, because raft.h clashes
 * with C++; only raft_shim.c uses it.
 *
 * A world is one simulation: a clock in milliseconds, one event queue (ticks, disk completions,
 * send completions, message deliveries) shared by its servers, a network and a seeded random
 * generator. Nothing reads the wall clock and nothing runs on another thread, so a seed replays a
 * run exactly.
 *
 * Each server has
 *  - a DURABLE part that outlives its raft instances: term, vote, the log entries whose append
 *    completed, the last snapshot whose put completed;
 *  - a VOLATILE part, one per incarnation (sio_io_open .. its close): the disk requests in flight,
 *    the tick timer, the disk's failure state.
 * Disk requests of one server complete in the order submitted (append, truncate, snapshot put and
 * get share one queue), each at least the server's disk latency after its submission. libraft's
 * io->truncate returns at once and takes effect on the durable log in queue order (a crash before
 * it leaves the entries, as after a crash before raft_uv's truncation).
 *
 * A crash is libraft's close of the incarnation's io: the requests in flight are called back (an
 * append with status 0, see sim_io.c) and never reach the durable part (an append whose callback
 * had not run is lost).
 *
 * I/O faults: sio_fail_write makes the nth write from now of a server fail (append, set_term,
 * set_vote, snapshot_put): set_term and set_vote return RAFT_IOERR, an append or put completes with
 * RAFT_IOERR and writes nothing. The disk then stays failed until the incarnation ends (every
 * later write fails too), so the durable log never has a hole; a restart recovers it. Failed
 * appends queued back to back are reported last first: libraft 0.15 truncates its log from a
 * failed append's index and crashes when appends beyond it are still in flight (sim_io.c).
 * From the failing write on, the server's sends fail too (RAFT_NOCONNECTION, as over a cut link)
 * until the incarnation ends: a failed disk fences its server. Otherwise libraft 0.15's leader,
 * which stays leader after truncating its in-memory log from the failed append's index, sends a
 * different entry at an index it already sent in the same term, and followers that stored the
 * first one keep it (same index and term): replicas commit different entries at one index
 * (FailedAppend in failed_append_test.cc; docs/replication-plan.md, section 9). A RaftNode over
 * raft_uv has no such fence yet (an open defect there).
 *
 * Network: messages between two servers travel in order (as on one TCP connection), each after
 * the sender's network latency; a link can be cut (sends fail with RAFT_NOCONNECTION) or drop a
 * percentage of its messages silently, one direction at a time. A message addressed to an
 * incarnation that ended is dropped; one sent by an incarnation that ended is still delivered. */
#ifndef SHARDTX_REPLICATION_SIM_IO_H_
#define SHARDTX_REPLICATION_SIM_IO_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct raft_io;
typedef struct sio_world sio_world;

enum { SIO_MAX_SERVERS = 8 };

/* TEST ONLY mutations of the crash model, to show the checks can fail. */
enum {
  SIO_MUTATE_NONE = 0,
  /* A crash lets every append in flight complete first: as if the disk finished the writes just
   * before the power went. Legal: nothing may break. */
  SIO_MUTATE_KEEP_VOLATILE = 1,
  /* A crash also forgets the last entry a completed append wrote in that incarnation: a disk that
   * lies about durability. Raft's safety then does not hold. */
  SIO_MUTATE_DROP_COMPLETED = 2
};

/* Opens a world of n servers (1..SIO_MAX_SERVERS), ids 1..n, addresses "sim1".."simN", all links
 * up, latencies 15 ms (network) and 10 ms (disk), no durable state. NULL if out of memory or n
 * is out of range. */
sio_world *sio_world_open(unsigned n, uint64_t seed);
/* Frees the world. REQUIRES: every io it opened was closed (libraft's raft_close) and freed. */
void sio_world_close(sio_world *w);

uint64_t sio_now(sio_world *w);
/* The world's seeded generator (also what io->random draws from). */
uint64_t sio_random(sio_world *w);
/* Fires the earliest event and advances the clock to it. Returns the index of the server the
 * event concerned, or -1 if the queue was empty (the clock does not move then). */
int sio_step(sio_world *w);
/* The time of the earliest event still to fire (cancelled ones are dropped first): 1 and *t set,
 * or 0 if the queue is empty. */
int sio_next_time(sio_world *w, uint64_t *t);
/* Moves the clock forward to t (nothing if t is not later). REQUIRES: no event earlier than t is
 * queued (sio_next_time), so that worlds stepped in lock-step share one clock. */
void sio_advance(sio_world *w, uint64_t t);

/* The raft_io of a new incarnation of server i, over its durable part: pass it (possibly
 * wrapped) to raft_init. REQUIRES: the previous incarnation's io was freed. NULL if out of
 * memory. */
struct raft_io *sio_io_open(sio_world *w, unsigned i);
/* Frees server i's io once libraft has closed it (raft_close's callback ran). */
void sio_io_free(sio_world *w, unsigned i);

/* Network and disk. */
void sio_link(sio_world *w, unsigned from, unsigned to, int up);
void sio_drop(sio_world *w, unsigned from, unsigned to, unsigned percent);
void sio_latency(sio_world *w, unsigned i, unsigned network_ms, unsigned disk_ms);
/* The nth write (n >= 1) of server i's current incarnation from now fails, and every later one
 * until the incarnation ends (see above). */
void sio_fail_write(sio_world *w, unsigned i, unsigned n);
void sio_set_mutation(sio_world *w, int mutation);

struct sio_stats {
  uint64_t messages_sent, messages_dropped, messages_lost; /* lost: to an ended incarnation */
  uint64_t appends_completed, appends_cancelled, writes_failed;
  uint64_t snapshots_put, crashes;
  /* Requests that found the durable log in a state libraft's order of calls cannot produce (an
   * append not at the log's end, a truncation below its start). Expect 0. */
  uint64_t model_errors;
};
void sio_stats(sio_world *w, struct sio_stats *out);

/* Server i's durable log: the index of its last entry (0 if none) and its term. */
uint64_t sio_durable_last_index(sio_world *w, unsigned i);
uint64_t sio_durable_term(sio_world *w, unsigned i);

#ifdef __cplusplus
}
#endif

#endif /* SHARDTX_REPLICATION_SIM_IO_H_ */
