/* The C seam between shardtx and libraft 0.15: raft_shim.c is the only file that includes raft.h
 * (which has no extern "C" and clashes with C++ on struct raft_apply). Everything above it sees
 * the opaque handles and plain types of this header.
 *
 * An rs_group is one server's Raft instance of one replication group, whatever its backend. Two
 * backends return it:
 *  - rs_sim: N groups of one simulated cluster over libraft's raft_fixture (deterministic,
 *    single-threaded, driven by rs_sim_step);
 *  - rs_uv: one real server over raft_uv (disk) and TCP, with its own uv loop thread
 *    (rs_uv_open, rs_group_close; see "The raft_uv backend" below).
 *
 * The Figure-8 guard (docs/replication-plan.md section 3) lives here, because it needs the Raft
 * instance's current term inside fsm->apply:
 *  - every entry carries its proposer's (term, index) tag;
 *  - entries applied by libraft are held in a queue and released to the state machine only when
 *    an entry whose tag term is the server's current term is applied (the release gate);
 *  - a server that finds itself leader of a new term proposes a term-start no-op entry at once;
 *  - until that entry (or any entry of its term) is released, the leader is "not ready" and
 *    refuses proposals (RS_NOT_READY);
 *  - fsm->snapshot returns RAFT_BUSY while the queue holds entries.
 *
 * Threading: rs_sim is not thread-safe. Every call on an rs_sim and its groups, and every
 * callback, runs on the one thread that drives the simulation. rs_uv: see its section. */
#ifndef SHARDTX_REPLICATION_RAFT_SHIM_H_
#define SHARDTX_REPLICATION_RAFT_SHIM_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Results of rs_group_propose and of the proposal callback. */
enum {
  RS_OK = 0,
  RS_NOT_LEADER = 1, /* this server does not lead: no effect */
  RS_NOT_READY = 2,  /* it leads, but no entry of its term is released yet: no effect */
  RS_DOWN = 3,       /* the server is down (killed) or closing: no effect */
  RS_UNKNOWN = 4,    /* callback only: the outcome is unknown (leadership lost in flight) */
  RS_NOMEM = 5,      /* out of memory: no effect */
  RS_INVALID = 6,    /* bad argument or configuration */
  RS_IOERR = 7,      /* rs_uv_open: the directory or the address could not be used;
                        rs_group_barrier: libraft failed the barrier synchronously;
                        rs_group_change: libraft failed the change (see its detail) */
  RS_TERM_CHANGED = 8, /* it leads, but not the term the proposal asked for: no effect */
  RS_BUSY = 9,       /* rs_group_change: another membership change is in progress: no effect */
  RS_CONFLICT = 10   /* rs_group_change: the id (or the address) is in the configuration with
                        another address (id): no effect */
};

/* The longest leader address rs_info reports (longer ones are cut). */
enum { RS_ADDRESS_MAX = 128 };

/* Roles, as libraft's states. RS_ROLE_UNAVAILABLE after start means the instance gave up (for
 * example a follower asked to truncate below its commit index): it must be closed and reopened
 * from its durable state, which the fixture backend cannot do (rs_group_info counts it). */
enum { RS_ROLE_UNAVAILABLE = 0, RS_ROLE_FOLLOWER, RS_ROLE_CANDIDATE, RS_ROLE_LEADER };

typedef struct rs_group rs_group;
typedef struct rs_sim rs_sim;

/* What a group calls back into its owner. ctx is passed back unchanged. All five are required.
 * A callback may call rs_group_info and rs_buffer_alloc only (it runs inside libraft). */
struct rs_callbacks {
  void *ctx;
  /* An entry released to this server's state machine: committed, in index order, each index
   * once (after a restore, indexes continue above the snapshot). data is valid only during the
   * call. Term-start no-op entries are not reported. */
  void (*release)(void *ctx, uint64_t term, uint64_t index, const void *data, size_t len);
  /* The state machine's state as of the last released entry. On success returns 0 and sets
   * *data to a buffer from rs_buffer_alloc (ownership passes to the shim) and *len. */
  int (*snapshot)(void *ctx, void **data, size_t *len);
  /* Replaces the state with a snapshot's (data valid only during the call). Returns 0 on
   * success. */
  int (*restore)(void *ctx, const void *data, size_t len);
  /* The outcome of an accepted proposal, exactly once per cookie: RS_OK = released on the
   * proposing server (so committed); RS_UNKNOWN = it may or may not commit later. rs_sim never
   * calls it after rs_sim_close. rs_uv may also report a proposal its loop thread refused (no
   * effect): RS_NOT_LEADER, RS_NOT_READY, RS_TERM_CHANGED (leadership changed after
   * rs_group_propose accepted it), RS_DOWN (closed before it was proposed), RS_NOMEM; and rs_group_close reports every
   * proposal still in flight as RS_UNKNOWN before it returns. */
  void (*done)(void *ctx, uint64_t cookie, int status);
  /* The outcome of an accepted barrier (rs_group_barrier), exactly once per cookie, like done:
   * RS_OK = the barrier entry, appended in `term`, was committed and applied on this server while
   * it still led `term` (so a majority accepted this leader's entries of `term` after the barrier
   * was proposed); RS_UNKNOWN = leadership was lost first, or the group closed (rs_sim: never
   * after rs_sim_close); rs_uv may also report the refusals of done. `term` is 0 unless RS_OK. */
  void (*barrier_done)(void *ctx, uint64_t cookie, int status, uint64_t term);
  /* Optional (required only for rs_group_change): the outcome of an accepted membership change,
   * exactly once per cookie, like done: RS_OK = the configuration the change asked for is
   * committed (it may have been so already); RS_UNKNOWN = leadership was lost (or the group
   * closed) first: the change may or may not take effect; RS_IOERR = libraft failed it (detail
   * names libraft's error; for a promotion, for example, a new server that did not catch up):
   * the configuration may hold part of an add (the server as a spare). rs_uv may also report
   * the refusals of rs_group_change. detail is "" unless RS_IOERR, and static. */
  void (*change_done)(void *ctx, uint64_t cookie, int status, const char *detail);
};

/* Raft settings of every group of a simulation. */
struct rs_config {
  unsigned election_timeout_ms; /* base; each draw is in [base, 2*base) */
  unsigned heartbeat_ms;
  unsigned snapshot_threshold; /* entries applied since the last snapshot before the next */
  unsigned snapshot_trailing;  /* entries kept after a snapshot */
  int pre_vote;                /* non-zero: Raft pre-vote on */
  /* Non-zero: draw each server's election timeout again from the seed after each of its events.
   * Zero keeps the fixture's fixed timeouts (1000 + 100*i ms), as the docs' probes do. */
  int redraw_election_timeouts;
  /* TEST ONLY. Zero switches the Figure-8 guard off (no gate, no term-start entry, a leader is
   * ready at once): stock libraft 0.15, which can diverge or wedge. */
  int figure8_guard;
  /* TEST ONLY. Zero switches the match-index fix off: this server's successful AppendEntries
   * results then carry its own last index, as stock libraft 0.15 sends them (see raft_shim.c,
   * "The match-index fix"). */
  int match_index_fix;
};

/* Fills *config with the defaults: election 1000 ms, heartbeat 100 ms, threshold 64, trailing
 * 16 (small: the fixture's step cost grows with the log), pre-vote on, redraw on, guard on,
 * match-index fix on. */
void rs_config_default(struct rs_config *config);

/* A buffer the shim (and libraft) may take ownership of; NULL if out of memory. */
void *rs_buffer_alloc(size_t len);
void rs_buffer_free(void *buf);

/* Roles of a server in a Raft configuration, as libraft's (RAFT_STANDBY, RAFT_VOTER, RAFT_SPARE).
 */
enum { RS_SERVER_STANDBY = 0, RS_SERVER_VOTER = 1, RS_SERVER_SPARE = 2 };

/* The most servers a configuration reports (rs_info, rs_group_configuration). */
enum { RS_MAX_SERVERS = 16 };

/* One server of the group's configuration as rs_info reports it. */
struct rs_progress {
  uint64_t id;
  int role;             /* RS_SERVER_* */
  uint64_t match_index; /* on a leader: the highest index it knows the server holds (its own
                           last index for itself); 0 elsewhere */
  int live;             /* on a leader: heard from within an election timeout (1 for itself);
                           0 elsewhere */
};

/* A snapshot of one group's state and counters. */
struct rs_info {
  uint64_t id; /* Raft id (the fixture: server index + 1) */
  int role;    /* RS_ROLE_* */
  int ready;   /* leads and has released an entry of its current term */
  uint64_t term;
  uint64_t leader_id;         /* who this server believes leads (0: unknown) */
  char leader_address[RS_ADDRESS_MAX]; /* its address as configured ("" if unknown) */
  uint64_t last_index;        /* the last index in its log (stored or not) */
  uint64_t commit_index;      /* libraft's (may count an older term's entry: see the gate) */
  uint64_t last_applied;      /* libraft's: applied to the gate, released or held */
  uint64_t released_index;    /* the last index released to the state machine */
  uint64_t held;              /* entries held by the gate */
  uint64_t released;          /* entries released (no-ops included) */
  uint64_t noops_proposed;    /* term-start entries proposed */
  uint64_t snapshots_refused; /* fsm->snapshot answered RAFT_BUSY */
  uint64_t snapshots_taken;
  uint64_t restores;
  uint64_t tag_mismatches; /* entries whose tag index was not the index applied (expect 0) */
  uint64_t malformed;      /* entries that did not decode (expect 0) */
  uint64_t unavailable;    /* times this server was seen in RS_ROLE_UNAVAILABLE */
  uint64_t nodelay_streams; /* rs_uv: TCP streams (made or accepted) set to TCP_NODELAY */
  /* The match-index fix (raft_shim.c): successful AppendEntries results whose last index was
   * lowered (to what the request they answer proved), and successes that answer no request of
   * their addressee in their term (sent with last index 0, so that only their term counts). */
  uint64_t results_lowered;
  uint64_t results_unmatched;
  /* Durable writes of this server's Raft log: events (rs_uv: loop iterations) after which
   * libraft's stored index had advanced, and the entries they stored. raft_uv keeps one write
   * in flight per open segment, so under load each counted event is one O_DSYNC write (two
   * writes completing in one iteration count once). A truncated or snapshot-replaced log
   * restarts the count from its new stored index. */
  uint64_t log_writes;
  uint64_t entries_stored;
  /* Elections this server stood in (a new term as candidate, past pre-vote) and won (a new term
   * as leader). Counted after each event (rs_uv: loop iteration), so a candidacy and its win seen
   * in one event count as both. */
  uint64_t elections_started;
  uint64_t elections_won;
  /* InstallSnapshot messages this server handed to its transport as leader (counted by the
   * match-index fix's io, so 0 when rs_config.match_index_fix is off), and snapshots it installed
   * from a leader (restores after start; a snapshot loaded from its own directory at open is not
   * one). */
  uint64_t snapshots_sent;
  uint64_t snapshots_installed;
  /* The configuration (the last configuration entry in the log, committed or not): its servers
   * (the first RS_MAX_SERVERS), their roles and, on a leader, their match indexes; the index of
   * that entry; and whether a membership change is pending on this leader. */
  uint64_t configuration_index;
  int change_pending;
  unsigned n_servers;
  struct rs_progress servers[RS_MAX_SERVERS];
  /* Leadership transfers this server asked libraft for as leader (rs_group_transfer, or
   * gathering), and their outcomes: done = the target was then seen leading; failed = libraft
   * refused the request, or it ended (timed out, or the leadership went elsewhere) without the
   * target leading. asked - done - failed are in flight (at most one); transfer_target is its
   * target (0: none). */
  uint64_t transfers_asked;
  uint64_t transfers_done;
  uint64_t transfers_failed;
  uint64_t transfer_target;
};

/* Fills *info. rs_uv: from any thread; off the loop thread it is the state published at the end
 * of the loop's last iteration (at most one iteration old). */
void rs_group_info(rs_group *g, struct rs_info *info);

/* Proposes one command entry (data copied; rs_uv with pack: possibly packed with others) on this
 * server. With term non-zero, only while this
 * server leads exactly that term when the entry is appended (not merely when the call is made):
 * an entry whose term was lost, even if the server leads again in a later one, is refused with
 * RS_TERM_CHANGED. Returns RS_OK if accepted: the done callback then reports its outcome with
 * cookie. Any other result has had no effect and no callback follows: RS_NOT_LEADER,
 * RS_NOT_READY, RS_TERM_CHANGED, RS_DOWN, RS_NOMEM. rs_uv: from any thread (callbacks included);
 * the refusal is decided on the published state, and the loop thread proposes the entry later
 * (the done callback may then still report a refusal, RS_TERM_CHANGED included). */
int rs_group_propose(rs_group *g, const void *data, size_t len, uint64_t cookie, uint64_t term);

/* Proposes a Raft barrier (libraft's RAFT_BARRIER entry: no payload, never released to the state
 * machine) on this server, as a read's proof of leadership (docs/replication-plan.md section 6,
 * "Fencing"). Only a ready leader accepts one. Returns RS_OK if accepted: barrier_done then
 * reports its outcome with cookie. Otherwise no effect and no callback: RS_NOT_LEADER,
 * RS_NOT_READY, RS_DOWN, RS_NOMEM, RS_IOERR (libraft failed it synchronously; nothing stays in its
 * log). rs_uv: from any thread, decided like rs_group_propose. */
int rs_group_barrier(rs_group *g, uint64_t cookie);

/* Membership changes (rs_uv only; rs_sim answers RS_INVALID). */
enum { RS_CHANGE_ADD_VOTER = 1, RS_CHANGE_REMOVE = 2 };

/* Asks this server, a ready leader, to change the group's configuration, one step at a time on
 * its loop thread:
 *  - RS_CHANGE_ADD_VOTER: a server not in the configuration is added as a spare (raft_add), then
 *    promoted to voter (raft_assign: libraft first replicates its log to it in catch-up rounds);
 *    one there as a spare or standby is promoted; one there as a voter is left alone (RS_OK).
 *    `address` is where its Raft instance of this group listens.
 *  - RS_CHANGE_REMOVE: a server in the configuration is removed (raft_remove); one not there is
 *    left alone (RS_OK). `address` is ignored. This server itself cannot be removed (RS_INVALID).
 * Returns RS_OK if accepted: change_done then reports the outcome with cookie. Otherwise no
 * effect and no callback: RS_NOT_LEADER, RS_NOT_READY, RS_DOWN, RS_NOMEM, RS_INVALID. Refusals
 * decided on the loop thread (change_done): those, RS_BUSY (a change is pending) and RS_CONFLICT
 * (the id is there with another address, or the address is another server's). Any thread. */
int rs_group_change(rs_group *g, int op, uint64_t id, const char *address, uint64_t cookie);

/* Asks this server, a ready leader, to hand the group's leadership to server id (libraft's
 * raft_transfer; raft_shim.c, "Leadership transfers", says how libraft 0.15 runs it). While the
 * transfer is in flight (an election timeout at most) this server refuses proposals, barriers
 * and changes (RS_NOT_LEADER: no effect), so no entry of its term can be acknowledged after the
 * target takes over. Returns RS_OK if accepted (its outcome is counted in rs_info's transfers_*;
 * no callback), else no effect: RS_NOT_LEADER, RS_NOT_READY, RS_DOWN, RS_NOMEM, RS_INVALID (id 0;
 * rs_sim: id not a voter of the configuration, or this server), RS_BUSY (rs_sim: a transfer is in
 * flight). rs_uv: any thread; refusals found on the loop thread (a target that is not a voter, a
 * transfer in flight) are only counted as failed (not RS_BUSY: that one is not counted). */
int rs_group_transfer(rs_group *g, uint64_t id);

/* Gathering's test of a transfer target: info is a leader's, and server id is a voter of its
 * configuration, live (rs_progress.live), other than the leader, whose match index is within
 * max_lag entries of the leader's last index. */
int rs_transfer_eligible(const struct rs_info *info, uint64_t id, uint64_t max_lag);

/* gather_max_lag's default (rs_uv_options): a target at most this many entries behind. */
enum { RS_GATHER_MAX_LAG = 64 };

/* One server of the configuration, with its address (rs_group_configuration). */
struct rs_server {
  uint64_t id;
  int role; /* RS_SERVER_* */
  char address[RS_ADDRESS_MAX];
};

/* The group's configuration as rs_info's (the last configuration entry in the log): up to max
 * servers are copied into out; returns how many there are. rs_uv: any thread (as published at
 * the end of the loop's last iteration); rs_sim: on its thread. */
unsigned rs_group_configuration(rs_group *g, struct rs_server *out, unsigned max);

/* ---- The fixture backend ---- */

/* Opens a simulated cluster of n servers (1..8), all voters, bootstrapped and started; no
 * leader yet. callbacks[i] serves server i. seed drives every random choice (the fixture has
 * none of its own), so a seed replays a run exactly. Returns RS_OK or RS_INVALID / RS_NOMEM. */
int rs_sim_open(unsigned n, const struct rs_config *config, uint64_t seed,
                const struct rs_callbacks *callbacks, rs_sim **out);

/* Closes the cluster and every group; pending proposals get no callback. */
void rs_sim_close(rs_sim *s);

unsigned rs_sim_size(rs_sim *s);
rs_group *rs_sim_group(rs_sim *s, unsigned i);
uint64_t rs_sim_time(rs_sim *s); /* simulated milliseconds */

/* Fires the earliest event (a tick, a disk write or a message) and advances the clock to it. */
void rs_sim_step(rs_sim *s);

/* Makes server i leader (libraft's fixture: there must be no leader or candidate, and i must
 * reach a majority). */
void rs_sim_elect(rs_sim *s, unsigned i);

/* Network: messages from i to j fail (disconnect) or vanish (saturate), one direction only. */
void rs_sim_disconnect(rs_sim *s, unsigned from, unsigned to);
void rs_sim_reconnect(rs_sim *s, unsigned from, unsigned to);
void rs_sim_saturate(rs_sim *s, unsigned from, unsigned to);
void rs_sim_desaturate(rs_sim *s, unsigned from, unsigned to);
/* Kill freezes server i (no ticks, no messages, its memory intact); revive resumes it. There is
 * no crash and restart in the fixture. */
void rs_sim_kill(rs_sim *s, unsigned i);
void rs_sim_revive(rs_sim *s, unsigned i);
int rs_sim_alive(rs_sim *s, unsigned i);
void rs_sim_set_network_latency(rs_sim *s, unsigned i, unsigned ms);
void rs_sim_set_disk_latency(rs_sim *s, unsigned i, unsigned ms);
/* The (delay+1)-th I/O request of server i from now on fails, and the next repeat-1 too. */
void rs_sim_io_fault(rs_sim *s, unsigned i, int delay, int repeat);

/* Number of terms in which two different servers were seen leading (checked after every
 * step; expect 0). */
uint64_t rs_sim_leader_conflicts(rs_sim *s);

/* ---- The raft_uv backend ----
 *
 * One server of one group: libraft over raft_uv, which keeps the log, the term and vote and the
 * snapshots in `dir` (O_DSYNC segment writes), and talks to the other members over TCP. Every
 * connection it makes or accepts gets TCP_NODELAY (raft_uv 0.15 sets none, and Nagle plus
 * delayed ACK stall multi-KB messages by about 40 ms: docs/replication-plan.md section 4).
 *
 * SIGPIPE: raft_uv writes to sockets whose peer may have died, which raises SIGPIPE and, by
 * default, kills the process. rs_uv_open therefore sets SIGPIPE to SIG_IGN for the whole process
 * if its disposition is still SIG_DFL (a handler or ignore already installed is left alone).
 *
 * Threads: each open group runs its own uv loop thread, started by rs_uv_open and stopped by
 * rs_group_close. libraft, the Figure-8 guard and every callback run on that thread (the restore
 * of a snapshot found on disk may also run inside rs_uv_open, on the calling thread, before the
 * loop thread starts). rs_group_propose and rs_group_info may be called from any thread. */

/* One voting member of a group. */
struct rs_member {
  uint64_t id;         /* Raft id, > 0, unique in the group */
  const char *address; /* "IPv4:port" it listens on */
};

struct rs_uv_options {
  uint64_t id;         /* this server's Raft id: must be one of members */
  const char *address; /* this server's address, as in members */
  const char *dir;     /* an existing directory that only this server uses */
  /* The configuration bootstrapped into a pristine dir. A dir that already holds Raft state is
   * reused as it is (a restarted server rejoins), and members is not checked against it. */
  const struct rs_member *members;
  unsigned n_members;
  unsigned connect_retry_ms; /* delay between connection attempts; 0 = libraft's 1000 ms */
  /* Optional: called on the loop thread, with ctx, after an iteration that changed this
   * server's role, term, believed leader or readiness (and once inside rs_uv_open, on the calling
   * thread, for the initial state). It may call rs_group_info only. */
  void (*changed)(void *ctx);
  void *changed_ctx;
  /* Non-zero: a pristine dir is not bootstrapped; the server starts with no configuration and
   * waits for a leader of the group to add it (rs_group_change), as a server joining an existing
   * group does. members is then not used (it must still name this server). */
  int join;
  /* Non-zero: the loop thread packs the proposals (rs_group_propose) it finds queued one after
   * another for the same term into one entry, up to 256 proposals or 1 MiB of payload (a larger
   * proposal gets an entry of its own): the entry's payload, as release reports it, is their
   * payloads concatenated in proposal order, so the owner's payloads must delimit themselves.
   * Every proposal of the entry hears the entry's outcome (done), each with its own cookie. A
   * leader whose last append is still being written holds new proposals until it is stored
   * (raft_uv would queue their append behind that write anyway), so that each durable write
   * carries one entry, sent to each follower in one message. */
  int pack;
  /* Optional: leadership gathering. Called on the loop thread while this server is a ready
   * leader, two heartbeats after its term became ready and then about every election timeout
   * (not while a transfer is in flight), with the group's current state; returns the server that
   * should lead the group (0, or this server: stay). If that server is eligible
   * (rs_transfer_eligible with gather_max_lag, 0 = RS_GATHER_MAX_LAG) the loop asks libraft to
   * transfer the leadership to it (as rs_group_transfer). It may call rs_group_info only, and
   * must not block. */
  uint64_t (*gather_anchor)(void *ctx, const struct rs_info *info);
  void *gather_ctx;
  uint64_t gather_max_lag;
};

/* Opens dir (bootstrapping it if pristine), starts the server and its loop thread. config's
 * election, heartbeat, snapshot and guard settings apply (redraw_election_timeouts does not:
 * raft_uv draws its own). On failure returns RS_INVALID, RS_NOMEM or RS_IOERR (for example the
 * address is in use or the dir is not usable), with a message in errmsg (errmsg_len bytes, may be
 * 0), and *out = NULL. */
int rs_uv_open(const struct rs_uv_options *options, const struct rs_config *config,
               const struct rs_callbacks *callbacks, rs_group **out, char *errmsg,
               size_t errmsg_len);

/* The voters of the configuration the server loaded from its directory (or bootstrapped) when
 * rs_uv_open opened it: up to max are copied into out; returns how many there are. Any thread.
 * 0 for the fixture backend. */
enum { RS_MAX_VOTERS = 16 };
struct rs_voter {
  uint64_t id;
  char address[RS_ADDRESS_MAX];
};
unsigned rs_group_opened_voters(rs_group *g, struct rs_voter *out, unsigned max);

/* Closes an rs_uv group: refuses further proposals (RS_DOWN), reports queued proposals RS_DOWN,
 * waits (5 s at most) until the log's appended entries are stored, meanwhile reporting RS_OK for
 * what commits, then reports proposals still in flight RS_UNKNOWN, closes libraft and its sockets,
 * stops the loop thread and frees everything. The state in dir stays for a later rs_uv_open.
 * REQUIRES: not on the group's loop thread (not from a callback); no concurrent call on g. */
void rs_group_close(rs_group *g);

/* ---- The rs_uv backend's link filter (TEST ONLY) ----
 *
 * Partitions between rs_uv servers, by Raft id, for the tests and crashtest's node processes:
 * compiled into the testing library only (SHARDTX_KILL_POINTS); in the shipped library
 * rs_link_block does nothing and returns RS_INVALID, and the transport checks nothing.
 *
 * raft_uv sends to a peer only on its own outbound connection to it and receives the peer's
 * messages only on the peer's connection to it (inbound). So "server A cannot send to B" is
 * RS_LINK_OUT blocked for (A, B) and RS_LINK_IN for (B, A); in one process both are set by the
 * caller, across processes each process sets its own side. While a link is blocked: a
 * connection made to the peer is closed and reported to raft_uv as refused (it retries after its
 * connect delay), an inbound one from the peer is closed before raft_uv sees it, and the
 * connections on it that were open when it became blocked are shut down (shutdown(2) on the
 * socket, on each group's loop thread; raft_uv then sees the end of the stream or a failed
 * write and closes it itself). Messages already written may still arrive. Unblocking lets the
 * next connection attempt through. Process-wide; any thread. */
enum { RS_LINK_OUT = 1, RS_LINK_IN = 2 };
/* Blocks (blocked non-zero) or unblocks the directions dirs (RS_LINK_* bits) of server self's
 * link with peer; the other direction keeps its state. RS_NOMEM if the table (64 pairs) is
 * full; RS_INVALID in the shipped library. */
int rs_link_block(uint64_t self, uint64_t peer, int dirs, int blocked);
/* Unblocks every link. */
void rs_link_clear(void);
struct rs_link_counters {
  uint64_t refused_connects; /* outbound connections closed: the link was blocked */
  uint64_t refused_accepts;  /* inbound connections closed before raft_uv saw them */
  uint64_t cut_streams;      /* open connections shut down when their link became blocked */
};
void rs_link_counters(struct rs_link_counters *out);

/* ---- The crash simulator backend ----
 *
 * N servers of one simulated group over replication/sim_io.h's in-memory raft_io: a seeded,
 * deterministic, single-threaded simulation (like rs_sim), but each server keeps a durable part
 * (term, vote, completed appends, the last completed snapshot put) that outlives a crash, so a
 * server can crash and restart, and its writes can fail (sim_io.h has the model). The group code
 * is the other backends' (the Figure-8 guard, the match-index fix wrapping the io). Everything,
 * callbacks included, runs on the thread that calls rs_world_step. */
typedef struct rs_world rs_world;
struct sio_stats;

/* Opens a group of n servers (1..8), ids 1..n, all voters, bootstrapped and started; no leader
 * yet. callbacks[i] serves server i's first incarnation. config's settings apply (not
 * redraw_election_timeouts: io->random draws every election timeout from the seed). Returns
 * RS_OK, RS_INVALID or RS_NOMEM. */
int rs_world_open(unsigned n, const struct rs_config *config, uint64_t seed,
                  const struct rs_callbacks *callbacks, rs_world **out);
/* Closes every server (no callback follows) and frees the world. */
void rs_world_close(rs_world *w);
unsigned rs_world_size(rs_world *w);
/* Server i's group while it is up (between a start and a crash); NULL while it is down. */
rs_group *rs_world_group(rs_world *w, unsigned i);
int rs_world_up(rs_world *w, unsigned i);
uint64_t rs_world_time(rs_world *w); /* simulated milliseconds */
/* Lock-step with other worlds: the time of the earliest event still to fire (1, *t set; 0 if
 * none), and moving the clock to t when nothing is due before it (sio_next_time, sio_advance). */
int rs_world_next_time(rs_world *w, uint64_t *t);
void rs_world_advance(rs_world *w, uint64_t t);
/* Fires the earliest event (tick, disk completion, send completion, delivery), then runs the
 * guard's per-event hook on every server that is up and checks election safety. 0 if nothing
 * was left to fire. */
int rs_world_step(rs_world *w);
/* Crashes server i (nothing if down): its raft instance is closed, what its disk had not
 * completed is lost, proposals and barriers in flight on it are reported RS_UNKNOWN (done and
 * barrier_done, before this returns). The state machine is the caller's to crash. */
void rs_world_crash(rs_world *w, unsigned i);
/* Starts a new raft instance of server i (down) over its durable part, with new callbacks:
 * raft_start loads term, vote, snapshot (restore callback) and log, and libraft releases the
 * committed entries again as it learns them. RS_OK, or (i stays down, no callback was made
 * except possibly restore) RS_INVALID, RS_NOMEM, RS_IOERR (libraft refused to start, for
 * example the restore failed). */
int rs_world_restart(rs_world *w, unsigned i, const struct rs_callbacks *callbacks);
/* The network (one direction) and the disks; sim_io.h describes each. */
void rs_world_link(rs_world *w, unsigned from, unsigned to, int up);
void rs_world_drop(rs_world *w, unsigned from, unsigned to, unsigned percent);
void rs_world_latency(rs_world *w, unsigned i, unsigned network_ms, unsigned disk_ms);
/* The nth write of server i from now fails (and every later one until it restarts). */
void rs_world_fail_write(rs_world *w, unsigned i, unsigned n);
/* TEST ONLY: SIO_MUTATE_* (sim_io.h). */
void rs_world_set_mutation(rs_world *w, int mutation);
/* Terms in which two different servers were seen leading (checked after every step). */
uint64_t rs_world_leader_conflicts(rs_world *w);
void rs_world_stats(rs_world *w, struct sio_stats *out);
uint64_t rs_world_durable_last_index(rs_world *w, unsigned i);

#ifdef __cplusplus
}
#endif

#endif /* SHARDTX_REPLICATION_RAFT_SHIM_H_ */
