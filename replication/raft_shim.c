/* libraft 0.15 behind the C API of raft_shim.h: the entry tags, the release gate, the term-start
 * entry, the fixture backend and the raft_uv backend. The only file of shardtx that includes
 * raft.h. */
#define _GNU_SOURCE
#include "replication/raft_shim.h"

#include <pthread.h>
#include <raft.h>
#include <raft/fixture.h>
#include <raft/uv.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "replication/sim_io.h"
#include "replication/uv_link_filter.h"

/* ---- Entry format ----
 * Every entry the shim proposes: a 24-byte header, the payload, then 0-7 zero bytes.
 *   magic u32 | kind u8 | pad u8 | zero u16 | tag term u64 | tag index u64 | payload | pad zeros
 * little-endian; the tag is the proposer's current term and the index it expected the entry to
 * get (raft_last_index + 1 right before raft_apply). The padding makes every entry a multiple of
 * 8 bytes: raft_uv 0.15's TCP decoder steps over each entry of an AppendEntries message as if it
 * were padded to 8 bytes while its sender sends it unpadded, so a message carrying several
 * unaligned entries is decoded at wrong offsets, past the end of its buffer (a catching-up
 * follower then applied garbage; ASan: heap-buffer-overflow in libraft's receive path).
 * A snapshot is a 24-byte header, then the state machine's bytes:
 *   magic u32 | zero u32 | released term u64 | released index u64 | the state machine's bytes */
enum { kEntryMagic = 0x31455352u /* "RSE1" */, kSnapshotMagic = 0x31535352u /* "RSS1" */ };
enum { kKindCommand = 1, kKindNoop = 2 };
enum { kHeaderSize = 24 };

struct header {
  uint32_t magic;
  uint32_t kind; /* entries: kind | pad << 8 on the wire, split by decode_header */
  uint32_t pad;
  uint64_t term;
  uint64_t index;
};

static void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}
static uint64_t get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}
static void encode_header(unsigned char *p, const struct header *h) {
  put32(p, h->magic);
  put32(p + 4, h->kind | h->pad << 8);
  put64(p + 8, h->term);
  put64(p + 16, h->index);
}
static int decode_header(const void *base, size_t len, uint32_t magic, struct header *h) {
  const unsigned char *p = base;
  if (len < kHeaderSize) return 0;
  h->magic = get32(p);
  uint32_t kind = get32(p + 4);
  h->kind = kind & 0xffu;
  h->pad = (kind >> 8) & 0xffu;
  if ((kind >> 16) != 0 || h->pad > 7) return 0;
  h->term = get64(p + 8);
  h->index = get64(p + 16);
  return h->magic == magic;
}

/* ---- Groups ---- */

/* An accepted proposal or barrier, until libraft calls back. */
struct rs_req {
  struct raft_apply apply;     /* a command or term-start entry */
  struct raft_barrier barrier; /* a barrier (rs_group_barrier) */
  rs_group *g;
  uint64_t cookie;
  /* A command entry's proposals: cookies[0..ncookies) (a packed entry carries several; see
   * rs_uv_options.pack), in the request's own allocation; &cookie for one. */
  uint64_t *cookies;
  unsigned ncookies;
  uint64_t index; /* the tag index: where the entry lands if it commits */
  uint64_t term;  /* a barrier: the term it was appended in */
  int noop;
  int is_barrier;
  /* A membership change (rs_group_change): its libraft request, what it asks for, and the step
   * libraft is working on (raft_add, then raft_assign; or raft_remove). */
  struct raft_change change;
  int is_change;
  int change_op;
  int change_step;
  uint64_t change_id;
  char change_address[RS_ADDRESS_MAX];
  struct rs_req *prev, *next;
};

/* An entry applied by libraft and held by the gate. */
struct held_entry {
  uint64_t term, index;
  int noop;
  size_t len;
  unsigned char *data;
};

/* The match-index fix's forwarding raft_io (see "The match-index fix" below). */
struct match_request {
  int active;        /* a request is being answered */
  raft_id leader;    /* who sent it */
  raft_term term;    /* its term */
  raft_index proven; /* prev_log_index + n_entries (InstallSnapshot: its last index) */
};

struct match_io {
  struct raft_io outer;  /* what libraft calls */
  struct raft_io *inner; /* the backend's: the fixture's or raft_uv's */
  raft_io_recv_cb recv;  /* libraft's receive callback */
  struct match_request answering;
};

struct rs_group {
  struct raft *raft;
  struct raft_fsm fsm;
  struct rs_callbacks cb;
  rs_sim *sim; /* the fixture backend's cluster (NULL for another backend) */
  unsigned sim_index;
  struct rs_uv *uv; /* the raft_uv backend's server (NULL for another backend) */
  int guard;
  int closing; /* proposals are refused */
  int mute;    /* done callbacks are no longer made */
  int last_role;
  raft_index stored_seen; /* libraft's last_stored at the previous tick (log_writes) */
  raft_term campaign_term, won_term; /* the last term counted in elections_started / _won */
  int started;                       /* raft_start returned: a restore now is an install */
  struct held_entry *held;
  size_t nheld, capheld;
  uint64_t released_index, released_term, noop_term;
  struct rs_req reqs; /* sentinel of the pending proposals */
  struct rs_info counters;
  struct match_io match; /* in use if the fix is on (rs_config.match_index_fix) */
  /* When each server was last heard from (the match-index fix's io sees every message; io->time
   * in ms), for rs_progress.live. */
  struct {
    uint64_t id, at;
  } heard[RS_MAX_SERVERS];
  /* A leadership transfer (rs_group_transfer, or gathering): libraft's request, in use while
   * transfer_target is non-zero (until its callback). */
  struct raft_transfer transfer;
  uint64_t transfer_target;
  /* The target of a transfer whose callback came: its outcome is decided after the event
   * (group_tick), once a leader is known. */
  uint64_t transfer_verdict;
};

void *rs_buffer_alloc(size_t len) { return raft_malloc(len > 0 ? len : 1); }
void rs_buffer_free(void *buf) { raft_free(buf); }

void rs_config_default(struct rs_config *config) {
  memset(config, 0, sizeof *config);
  config->election_timeout_ms = 1000;
  config->heartbeat_ms = 100;
  config->snapshot_threshold = 64;
  config->snapshot_trailing = 16;
  config->pre_vote = 1;
  config->redraw_election_timeouts = 1;
  config->figure8_guard = 1;
  config->match_index_fix = 1;
}

static int group_alive(rs_group *g);

static void release_one(rs_group *g, uint64_t term, uint64_t index, int noop, const void *data,
                        size_t len) {
  g->released_index = index;
  g->released_term = term;
  g->counters.released++;
  if (!noop) g->cb.release(g->cb.ctx, term, index, data, len);
}

static void drop_held(rs_group *g) {
  for (size_t k = 0; k < g->nheld; k++) free(g->held[k].data);
  g->nheld = 0;
}

static int hold(rs_group *g, uint64_t term, uint64_t index, int noop, const void *data,
                size_t len) {
  if (g->nheld == g->capheld) {
    size_t cap = g->capheld ? 2 * g->capheld : 16;
    struct held_entry *p = realloc(g->held, cap * sizeof *p);
    if (p == NULL) return RAFT_NOMEM;
    g->held = p;
    g->capheld = cap;
  }
  struct held_entry *e = &g->held[g->nheld];
  e->data = malloc(len > 0 ? len : 1);
  if (e->data == NULL) return RAFT_NOMEM;
  memcpy(e->data, data, len);
  e->term = term;
  e->index = index;
  e->noop = noop;
  e->len = len;
  g->nheld++;
  return 0;
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result) {
  rs_group *g = fsm->data;
  struct raft *r = g->raft;
  uint64_t index = raft_last_applied(r) + 1;
  struct header h;
  *result = NULL;
  if (!decode_header(buf->base, buf->len, kEntryMagic, &h) ||
      (h.kind != kKindCommand && h.kind != kKindNoop)) {
    g->counters.malformed++;
    return 0;
  }
  if (h.index != index) g->counters.tag_mismatches++;
  const unsigned char *payload = (const unsigned char *)buf->base + kHeaderSize;
  size_t pad = h.pad;
  if (pad > buf->len - kHeaderSize) {
    g->counters.malformed++;
    return 0;
  }
  size_t len = buf->len - kHeaderSize - pad;
  int noop = h.kind == kKindNoop;
  if (!g->guard) {
    release_one(g, h.term, index, noop, payload, len);
    return 0;
  }
  if (h.term != r->current_term) {
    /* libraft 0.15 may have committed it by counting replicas of an older term's entry (Raft
     * Figure 8): hold it until an entry of this server's current term is applied. */
    return hold(g, h.term, index, noop, payload, len);
  }
  for (size_t k = 0; k < g->nheld; k++) {
    struct held_entry *e = &g->held[k];
    release_one(g, e->term, e->index, e->noop, e->data, e->len);
  }
  drop_held(g);
  release_one(g, h.term, index, noop, payload, len);
  return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs) {
  rs_group *g = fsm->data;
  if (g->nheld > 0) {
    g->counters.snapshots_refused++;
    return RAFT_BUSY;
  }
  void *data = NULL;
  size_t len = 0;
  if (g->cb.snapshot(g->cb.ctx, &data, &len) != 0) return RAFT_IOERR;
  struct raft_buffer *b = raft_malloc(sizeof *b);
  unsigned char *base = raft_malloc(kHeaderSize + len);
  if (b == NULL || base == NULL) {
    raft_free(b);
    raft_free(base);
    raft_free(data);
    return RAFT_NOMEM;
  }
  struct header h = {kSnapshotMagic, 0, 0, g->released_term, g->released_index};
  encode_header(base, &h);
  if (len > 0) memcpy(base + kHeaderSize, data, len);
  raft_free(data);
  b[0].base = base;
  b[0].len = kHeaderSize + len;
  *bufs = b;
  *n_bufs = 1;
  g->counters.snapshots_taken++;
  return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf) {
  rs_group *g = fsm->data;
  struct header h;
  if (!decode_header(buf->base, buf->len, kSnapshotMagic, &h)) return RAFT_MALFORMED;
  if (g->cb.restore(g->cb.ctx, (const unsigned char *)buf->base + kHeaderSize,
                    buf->len - kHeaderSize) != 0) {
    return RAFT_IOERR;
  }
  /* Everything held is at or below the snapshot's index, which covers it. */
  drop_held(g);
  g->released_index = h.index;
  g->released_term = h.term;
  g->counters.restores++;
  if (g->started) g->counters.snapshots_installed++;
  raft_free(buf->base);
  return 0;
}

static void unlink_req(struct rs_req *req) {
  req->prev->next = req->next;
  req->next->prev = req->prev;
}

/* A request libraft will never answer (closing): its owner hears RS_UNKNOWN. */
static void abandon_req(rs_group *g, struct rs_req *req) {
  if (g->mute || req->noop) return;
  if (req->is_change) {
    if (g->cb.change_done != NULL) g->cb.change_done(g->cb.ctx, req->cookie, RS_UNKNOWN, "");
  } else if (req->is_barrier) {
    g->cb.barrier_done(g->cb.ctx, req->cookie, RS_UNKNOWN, 0);
  } else {
    for (unsigned k = 0; k < req->ncookies; k++) g->cb.done(g->cb.ctx, req->cookies[k], RS_UNKNOWN);
  }
}

static void link_req(rs_group *g, struct rs_req *req) {
  req->next = g->reqs.next;
  req->prev = &g->reqs;
  g->reqs.next->prev = req;
  g->reqs.next = req;
}

/* libraft 0.15 calls a barrier back with 0 when it applies the barrier entry as leader, and
 * with RAFT_LEADERSHIPLOST when it stops leading first. OK is reported only if this server still
 * leads the term the barrier was appended in. */
static void barrier_applied(struct raft_barrier *b, int status) {
  struct rs_req *req = b->data;
  rs_group *g = req->g;
  struct raft *r = g->raft;
  unlink_req(req);
  if (!g->mute) {
    int ok = status == 0 && raft_state(r) == RAFT_LEADER && r->current_term == req->term;
    g->cb.barrier_done(g->cb.ctx, req->cookie, ok ? RS_OK : RS_UNKNOWN, ok ? req->term : 0);
  }
  free(req);
}

static void apply_done(struct raft_apply *a, int status, void *result) {
  struct rs_req *req = a->data;
  rs_group *g = req->g;
  (void)result;
  unlink_req(req);
  if (!req->noop && !g->mute) {
    /* 0 = applied here by libraft; with the gate it counts only once released. */
    int outcome = status == 0 && g->released_index >= req->index ? RS_OK : RS_UNKNOWN;
    for (unsigned k = 0; k < req->ncookies; k++) g->cb.done(g->cb.ctx, req->cookies[k], outcome);
  }
  free(req);
}

/* One piece of an entry's payload, and the proposal it belongs to (propose_entry). */
struct part {
  const void *data;
  size_t len;
  uint64_t cookie;
};

/* Proposes one entry whose payload is parts[0..n) concatenated (none for a term-start entry);
 * its outcome goes to each part's cookie. */
static int propose_entry(rs_group *g, uint32_t kind, const struct part *parts, unsigned n) {
  struct raft *r = g->raft;
  size_t len = 0;
  for (unsigned k = 0; k < n; k++) len += parts[k].len;
  struct rs_req *req = calloc(1, sizeof *req + (n > 1 ? n * sizeof(uint64_t) : 0));
  struct raft_buffer buf;
  size_t pad = (8 - (kHeaderSize + len) % 8) % 8;
  buf.len = kHeaderSize + len + pad;
  buf.base = raft_malloc(buf.len);
  if (req == NULL || buf.base == NULL) {
    free(req);
    raft_free(buf.base);
    return RS_NOMEM;
  }
  struct header h = {kEntryMagic, kind, (uint32_t)pad, r->current_term, raft_last_index(r) + 1};
  encode_header(buf.base, &h);
  unsigned char *at = (unsigned char *)buf.base + kHeaderSize;
  req->cookies = n > 1 ? (uint64_t *)(req + 1) : &req->cookie;
  req->ncookies = n;
  for (unsigned k = 0; k < n; k++) {
    if (parts[k].len > 0) memcpy(at, parts[k].data, parts[k].len);
    at += parts[k].len;
    req->cookies[k] = parts[k].cookie;
  }
  memset(at, 0, pad);
  req->apply.data = req;
  req->g = g;
  req->index = h.index;
  req->noop = kind == kKindNoop;
  link_req(g, req);
  int rv = raft_apply(r, &req->apply, &buf, 1, apply_done);
  if (rv != 0) {
    raft_free(buf.base);
    unlink_req(req);
    free(req);
    if (rv == RAFT_NOTLEADER) return RS_NOT_LEADER;
    if (rv == RAFT_NOMEM) return RS_NOMEM;
    /* An I/O error after libraft took the entry into its log: treat as unknown (memo 6). */
    return RS_UNKNOWN;
  }
  return RS_OK;
}

/* What a queued request asks for (uv_enqueue's kind). */
enum { kQueuedPropose = 0, kQueuedBarrier = 1, kQueuedChange = 2, kQueuedTransfer = 3 };
static int uv_enqueue(rs_group *g, const void *data, size_t len, uint64_t cookie, uint64_t term,
                      int kind, int op, uint64_t id);

/* RS_OK if g is a ready leader now; on the thread that runs g's libraft. */
static int group_check_ready(rs_group *g) {
  if (g->closing || !group_alive(g)) return RS_DOWN;
  struct raft *r = g->raft;
  if (raft_state(r) != RAFT_LEADER) return RS_NOT_LEADER;
  if (g->guard && g->released_term != r->current_term) return RS_NOT_READY;
  return RS_OK;
}

/* Proposes parts[0..n) as one entry on the thread that runs g's libraft (the rs_sim driver or
 * the rs_uv loop): the term checked here is the one the entry is appended in. */
static int group_propose_parts(rs_group *g, const struct part *parts, unsigned n, uint64_t term) {
  int rv = group_check_ready(g);
  if (rv != RS_OK) return rv;
  if (term != 0 && g->raft->current_term != term) return RS_TERM_CHANGED;
  return propose_entry(g, kKindCommand, parts, n);
}

static int group_propose_now(rs_group *g, const void *data, size_t len, uint64_t cookie,
                             uint64_t term) {
  const struct part one = {data, len, cookie};
  return group_propose_parts(g, &one, 1, term);
}

static int group_barrier_now(rs_group *g, uint64_t cookie) {
  int rv = group_check_ready(g);
  if (rv != RS_OK) return rv;
  struct raft *r = g->raft;
  struct rs_req *req = calloc(1, sizeof *req);
  if (req == NULL) return RS_NOMEM;
  req->barrier.data = req;
  req->g = g;
  req->cookie = cookie;
  req->term = r->current_term;
  req->is_barrier = 1;
  link_req(g, req);
  rv = raft_barrier(r, &req->barrier, barrier_applied);
  if (rv != 0) {
    unlink_req(req);
    free(req);
    return rv == RAFT_NOTLEADER ? RS_NOT_LEADER : rv == RAFT_NOMEM ? RS_NOMEM : RS_IOERR;
  }
  return RS_OK;
}

int rs_group_propose(rs_group *g, const void *data, size_t len, uint64_t cookie, uint64_t term) {
  if (g->uv != NULL) return uv_enqueue(g, data, len, cookie, term, kQueuedPropose, 0, 0);
  return group_propose_now(g, data, len, cookie, term);
}

int rs_group_barrier(rs_group *g, uint64_t cookie) {
  if (g->uv != NULL) return uv_enqueue(g, NULL, 0, cookie, 0, kQueuedBarrier, 0, 0);
  return group_barrier_now(g, cookie);
}

/* ---- Membership changes ----
 *
 * One request (an rs_req with is_change) walks through libraft's one-change-at-a-time calls on
 * the loop thread: ADD_VOTER = raft_add (the server joins as a spare: no votes, no log) and, once
 * that configuration is committed, raft_assign(VOTER), for which libraft 0.15 first replicates
 * the log to the server in catch-up rounds and appends the promoting configuration only once a
 * round ends with the server up to date; REMOVE = raft_remove. Each step first looks at the
 * configuration, so that a request repeated after an unknown outcome does only what is left. */

enum { kStepAdd = 1, kStepAssign = 2, kStepRemove = 3 };

static const struct raft_server *conf_server(const struct raft *r, uint64_t id) {
  for (unsigned k = 0; k < r->configuration.n; k++) {
    if (r->configuration.servers[k].id == id) return &r->configuration.servers[k];
  }
  return NULL;
}

static const struct raft_server *conf_server_at(const struct raft *r, const char *address) {
  for (unsigned k = 0; k < r->configuration.n; k++) {
    const char *a = r->configuration.servers[k].address;
    if (a != NULL && strcmp(a, address) == 0) return &r->configuration.servers[k];
  }
  return NULL;
}

static void change_step_done(struct raft_change *change, int status);

/* change_next's result once a libraft call was made (its callback continues). */
enum { kChangeInProgress = -1 };

/* Starts the next step of req, or finishes it: RS_OK when nothing is left, a refusal, or
 * kChangeInProgress once a libraft call was made (its callback continues). */
static int change_next(rs_group *g, struct rs_req *req, const char **detail) {
  struct raft *r = g->raft;
  int rv = group_check_ready(g);
  if (rv != RS_OK) return rv;
  if (r->leader_state.change != NULL) return RS_BUSY;
  const struct raft_server *sv = conf_server(r, req->change_id);
  if (req->change_op == RS_CHANGE_REMOVE) {
    if (sv == NULL) return RS_OK;
    if (req->change_id == r->id) return RS_INVALID;
    req->change_step = kStepRemove;
    rv = raft_remove(r, &req->change, req->change_id, change_step_done);
  } else {
    const struct raft_server *at = conf_server_at(r, req->change_address);
    if ((sv != NULL && (sv->address == NULL || strcmp(sv->address, req->change_address) != 0)) ||
        (at != NULL && at->id != req->change_id)) {
      return RS_CONFLICT;
    }
    if (sv != NULL && sv->role == RAFT_VOTER) return RS_OK;
    if (sv == NULL) {
      req->change_step = kStepAdd;
      rv = raft_add(r, &req->change, req->change_id, req->change_address, change_step_done);
    } else {
      req->change_step = kStepAssign;
      rv = raft_assign(r, &req->change, req->change_id, RAFT_VOTER, change_step_done);
    }
  }
  if (rv == 0) return kChangeInProgress;
  *detail = raft_strerror(rv);
  return rv == RAFT_NOTLEADER    ? RS_NOT_LEADER
         : rv == RAFT_NOMEM      ? RS_NOMEM
         : rv == RAFT_CANTCHANGE ? RS_BUSY
                                 : RS_IOERR;
}

/* Runs steps until one is in libraft's hands or req is finished (then answered and freed). */
static void change_run(rs_group *g, struct rs_req *req) {
  const char *detail = "";
  int rv = change_next(g, req, &detail);
  if (rv == kChangeInProgress) return;
  unlink_req(req);
  if (!g->mute && g->cb.change_done != NULL) g->cb.change_done(g->cb.ctx, req->cookie, rv, detail);
  free(req);
}

static void change_step_done(struct raft_change *change, int status) {
  struct rs_req *req = change->data;
  rs_group *g = req->g;
  if (status == 0 && !g->closing) {
    change_run(g, req); /* the next step, or RS_OK once the configuration is as asked */
    return;
  }
  unlink_req(req);
  if (!g->mute && g->cb.change_done != NULL) {
    const int lost = status == 0 || status == RAFT_LEADERSHIPLOST || status == RAFT_SHUTDOWN;
    g->cb.change_done(g->cb.ctx, req->cookie, lost ? RS_UNKNOWN : RS_IOERR,
                      lost ? "" : raft_strerror(status));
  }
  free(req);
}

/* Accepts a change on the thread that runs g's libraft; RS_OK = change_done will answer. */
static int group_change_now(rs_group *g, int op, uint64_t id, const char *address,
                            uint64_t cookie) {
  if (g->sim != NULL) return RS_INVALID;
  struct rs_req *req = calloc(1, sizeof *req);
  if (req == NULL) return RS_NOMEM;
  req->change.data = req;
  req->g = g;
  req->cookie = cookie;
  req->is_change = 1;
  req->change_op = op;
  req->change_id = id;
  snprintf(req->change_address, sizeof req->change_address, "%s", address);
  link_req(g, req);
  change_run(g, req);
  return RS_OK;
}

int rs_group_change(rs_group *g, int op, uint64_t id, const char *address, uint64_t cookie) {
  if ((op != RS_CHANGE_ADD_VOTER && op != RS_CHANGE_REMOVE) || id == 0 ||
      (op == RS_CHANGE_ADD_VOTER &&
       (address == NULL || address[0] == '\0' || strlen(address) >= RS_ADDRESS_MAX)) ||
      g->uv == NULL || g->cb.change_done == NULL) {
    return RS_INVALID;
  }
  if (address == NULL) address = "";
  return uv_enqueue(g, address, strlen(address) + 1, cookie, 0, kQueuedChange, op, id);
}

/* ---- Leadership transfers ----
 *
 * libraft 0.15's raft_transfer(id): a leader with no transfer in flight records the request and
 * sends TimeoutNow to the target once the target's match index is the leader's last index (at
 * once if it is; otherwise when an AppendEntries result shows it). The target then stands for
 * election at once (no pre-vote), and wins if its log is as up to date as a majority's. While
 * the request is recorded, the leader refuses raft_apply, raft_barrier and membership changes
 * with RAFT_NOTLEADER (so a proposal gets RS_NOT_LEADER: no effect). The callback runs when this
 * server sees the target lead, when it loses its leadership otherwise, or when an election
 * timeout has passed since the request (the leader then stays leader and accepts entries again).
 * One in flight per group: the request lives in rs_group. */

/* A transfer's outcome, decided after the event whose handling ended it (libraft may call back
 * from inside its step-down, while it still reports itself as leader): done if the target then
 * leads; failed if this server still leads (timed out) or another does; undecided while no leader
 * is known. On g's libraft thread (group_tick). */
static void transfer_verdict(rs_group *g) {
  raft_id leader = 0;
  const char *address = NULL;
  raft_leader(g->raft, &leader, &address);
  if (leader == 0 && raft_state(g->raft) != RAFT_LEADER) return;
  if (leader == g->transfer_verdict) {
    g->counters.transfers_done++;
  } else {
    g->counters.transfers_failed++;
  }
  g->transfer_verdict = 0;
}

static void transfer_done(struct raft_transfer *req) {
  rs_group *g = req->data;
  if (g->transfer_verdict != 0) g->counters.transfers_failed++; /* an older one, undecided */
  g->transfer_verdict = g->transfer_target;
  g->transfer_target = 0;
}

/* Asks libraft to hand g's leadership to server id (see above). On g's libraft thread. */
static int group_transfer_now(rs_group *g, uint64_t id) {
  int rv = group_check_ready(g);
  if (rv != RS_OK) return rv;
  struct raft *r = g->raft;
  if (r->transfer != NULL) return RS_BUSY;
  if (g->transfer_target != 0) { /* libraft dropped the request without its callback */
    g->transfer_target = 0;
    g->counters.transfers_failed++;
  }
  memset(&g->transfer, 0, sizeof g->transfer);
  g->transfer.data = g;
  g->transfer_target = id;
  g->counters.transfers_asked++;
  rv = raft_transfer(r, &g->transfer, id, transfer_done);
  if (rv != 0) {
    g->transfer_target = 0;
    g->counters.transfers_failed++;
    return rv == RAFT_BADID ? RS_INVALID : rv == RAFT_NOTLEADER ? RS_NOT_LEADER : RS_IOERR;
  }
  return RS_OK;
}

int rs_group_transfer(rs_group *g, uint64_t id) {
  if (id == 0) return RS_INVALID;
  if (g->uv != NULL) return uv_enqueue(g, NULL, 0, 0, 0, kQueuedTransfer, 0, id);
  return group_transfer_now(g, id);
}

int rs_transfer_eligible(const struct rs_info *info, uint64_t id, uint64_t max_lag) {
  if (info->role != RS_ROLE_LEADER || id == 0 || id == info->id) return 0;
  for (unsigned k = 0; k < info->n_servers && k < RS_MAX_SERVERS; k++) {
    const struct rs_progress *p = &info->servers[k];
    if (p->id != id) continue;
    return p->role == RS_SERVER_VOTER && p->live && p->match_index + max_lag >= info->last_index;
  }
  return 0;
}

/* Runs after every event (the fixture's hook; a uv_check handle in the raft_uv backend). */
static void group_tick(rs_group *g) {
  struct raft *r = g->raft;
  int role = raft_state(r);
  if (role == RAFT_UNAVAILABLE && g->last_role != RAFT_UNAVAILABLE) g->counters.unavailable++;
  g->last_role = role;
  if (r->last_stored > g->stored_seen) {
    g->counters.log_writes++;
    g->counters.entries_stored += r->last_stored - g->stored_seen;
  }
  g->stored_seen = r->last_stored;
  if (role == RAFT_CANDIDATE && !r->candidate_state.in_pre_vote &&
      g->campaign_term != r->current_term) {
    g->counters.elections_started++;
    g->campaign_term = r->current_term;
  }
  if (role == RAFT_LEADER && g->won_term != r->current_term) {
    if (g->campaign_term != r->current_term) g->counters.elections_started++;
    g->campaign_term = g->won_term = r->current_term;
    g->counters.elections_won++;
  }
  if (g->transfer_verdict != 0) transfer_verdict(g);
  if (g->guard && !g->closing && role == RAFT_LEADER && g->noop_term != r->current_term) {
    if (propose_entry(g, kKindNoop, NULL, 0) == RS_OK) {
      g->noop_term = r->current_term;
      g->counters.noops_proposed++;
    }
  }
}

static int uv_published_info(rs_group *g, struct rs_info *info);

/* On a leader: whether the k-th server of the configuration was heard from (libraft's
 * recent_recv, or a message seen by the match-index fix's io) within an election timeout. */
static int server_live(rs_group *g, unsigned k) {
  struct raft *r = g->raft;
  const struct raft_server *sv = &r->configuration.servers[k];
  if (sv->id == r->id) return 1;
  if (r->leader_state.progress != NULL && r->leader_state.progress[k].recent_recv) return 1;
  const uint64_t now = r->io->time(r->io);
  for (unsigned j = 0; j < RS_MAX_SERVERS; j++) {
    if (g->heard[j].id == sv->id) return now - g->heard[j].at < r->election_timeout;
  }
  return 0;
}

/* The live state; on the thread that runs g's libraft only. */
static void group_info_now(rs_group *g, struct rs_info *info) {
  struct raft *r = g->raft;
  *info = g->counters;
  info->id = r->id;
  info->role = raft_state(r);
  info->term = r->current_term;
  raft_id leader_id = 0;
  const char *address = NULL;
  raft_leader(r, &leader_id, &address);
  info->leader_id = leader_id;
  memset(info->leader_address, 0, sizeof info->leader_address);
  if (leader_id != 0 && address != NULL) {
    strncpy(info->leader_address, address, sizeof info->leader_address - 1);
  }
  info->last_index = raft_last_index(r);
  info->commit_index = r->commit_index;
  info->last_applied = raft_last_applied(r);
  info->released_index = g->released_index;
  info->held = g->nheld;
  info->ready = info->role == RAFT_LEADER && (!g->guard || g->released_term == r->current_term);
  info->configuration_index = r->configuration_uncommitted_index != 0
                                  ? r->configuration_uncommitted_index
                                  : r->configuration_index;
  const int leads = info->role == RAFT_LEADER;
  info->change_pending = leads && r->leader_state.change != NULL;
  info->n_servers = 0;
  for (unsigned k = 0; k < r->configuration.n && k < RS_MAX_SERVERS; k++) {
    const struct raft_server *sv = &r->configuration.servers[k];
    struct rs_progress *p = &info->servers[info->n_servers++];
    p->id = sv->id;
    p->role = sv->role;
    p->match_index = !leads                             ? 0
                     : sv->id == r->id                  ? raft_last_index(r)
                     : r->leader_state.progress != NULL ? r->leader_state.progress[k].match_index
                                                        : 0;
    p->live = leads && server_live(g, k);
  }
  info->transfer_target = g->transfer_target;
}

/* Copies r's configuration (at most max servers); returns how many were copied. */
static unsigned conf_copy(const struct raft *r, struct rs_server *out, unsigned max) {
  unsigned n = 0;
  for (unsigned k = 0; k < r->configuration.n && n < max; k++) {
    const struct raft_server *sv = &r->configuration.servers[k];
    out[n].id = sv->id;
    out[n].role = sv->role;
    snprintf(out[n].address, sizeof out[n].address, "%s", sv->address != NULL ? sv->address : "");
    n++;
  }
  return n;
}

void rs_group_info(rs_group *g, struct rs_info *info) {
  if (g->uv != NULL && uv_published_info(g, info)) return;
  group_info_now(g, info);
}

static void group_init(rs_group *g, const struct rs_callbacks *cb, int guard) {
  memset(g, 0, sizeof *g);
  g->cb = *cb;
  g->guard = guard;
  g->reqs.next = g->reqs.prev = &g->reqs;
  g->fsm.version = 1;
  g->fsm.data = g;
  g->fsm.apply = fsm_apply;
  g->fsm.snapshot = fsm_snapshot;
  g->fsm.restore = fsm_restore;
}

/* Frees what the group holds; libraft is closed already (no callback follows). */
static void group_release_memory(rs_group *g) {
  while (g->reqs.next != &g->reqs) {
    struct rs_req *req = g->reqs.next;
    unlink_req(req);
    free(req);
  }
  drop_held(g);
  free(g->held);
  g->held = NULL;
}

/* ---- The match-index fix ----
 *
 * libraft 0.15's follower answers a successful AppendEntries with its own last index (or last
 * stored index), and its leader takes that as the follower's match index, capped at its own last
 * index. A follower whose log runs past the point the leader checked, with entries an older leader
 * appended alone, is then counted as holding the leader's different entries at those indexes: the
 * leader can commit, and shardtx release and acknowledge, an entry only it holds, or commit a
 * barrier on a reply sent before the barrier existed (docs/replication-plan.md section 9).
 * libraft >= 0.17 answers with prev_log_index + n_entries of the request.
 *
 * The fix, on the follower: a raft_io forwarding every call to the backend's (the fixture's or
 * raft_uv's) that knows which request each APPEND_ENTRIES_RESULT answers and lowers a success's
 * last index to min(last index sent, prev_log_index + n_entries of that request, last_stored).
 * How libraft 0.15 orders its replies (recvAppendEntries, replicationAppend, appendFollowerCb,
 * installSnapshotCb), and so how the request is known:
 *  - A rejection, or a success that appends nothing (a heartbeat, or entries all present), is
 *    sent from inside the receive callback of the request: `answering` is set around it.
 *  - A success that appends is sent from the io->append callback, and that append was submitted
 *    from inside the receive callback of the request: the append is wrapped, keeps a copy of
 *    `answering`, and restores it around its callback. InstallSnapshot likewise, through
 *    io->snapshot_put (its `proven` is the snapshot's last index).
 * Rejections pass unchanged (the leader only lowers its next index for them).
 *
 * Why the value sent is never more than the follower holds of the leader's log: a success means
 * the follower's entry at prev_log_index has the leader's term there, so by Raft's log matching
 * the prefix up to it is the leader's, and each of the n entries after it was present with the
 * leader's term or written from the request. Within one term the leader's log only grows, so no
 * later request of the same leader truncates those entries; a request of a newer leader may, but
 * then this server's term has moved on. So the request's bound applies only to a result that goes
 * to the server whose request it answers, in that request's term. Any other success is sent with
 * last index 0, which no leader counts (libraft only ever raises a match index): an append
 * callback answering an older leader's request after a newer leader appeared (libraft addresses
 * it to the newer one, in the newer term), and a refusal of a stale leader's request whose
 * prev_log_index is 0 (libraft's `rejected` is that index, so it reads as a success; its higher
 * term is what deposes the stale leader, so it must still go). The cap at last_stored keeps
 * entries that are in memory but not yet durable out of the count. A value too small only slows
 * replication: the leader's next requests and their answers raise it. */

static rs_group *group_of_io(struct raft_io *io) {
  struct raft *r = io->data;
  return r->fsm->data;
}

static int match_fail(struct match_io *m, int rv) {
  if (rv != 0) memcpy(m->outer.errmsg, m->inner->errmsg, sizeof m->outer.errmsg);
  return rv;
}

static void note_heard(rs_group *g, uint64_t id, uint64_t now) {
  unsigned free_slot = RS_MAX_SERVERS, oldest = 0;
  for (unsigned k = 0; k < RS_MAX_SERVERS; k++) {
    if (g->heard[k].id == id) {
      g->heard[k].at = now;
      return;
    }
    if (g->heard[k].id == 0 && free_slot == RS_MAX_SERVERS) free_slot = k;
    if (g->heard[k].at < g->heard[oldest].at) oldest = k;
  }
  const unsigned k = free_slot < RS_MAX_SERVERS ? free_slot : oldest;
  g->heard[k].id = id;
  g->heard[k].at = now;
}

static void match_recv(struct raft_io *inner, struct raft_message *message) {
  rs_group *heard_by = group_of_io(inner);
  note_heard(heard_by, message->server_id, inner->time(inner));
  struct match_io *m = &heard_by->match;
  struct match_request saved = m->answering;
  struct match_request now = {0, 0, 0, 0};
  if (message->type == RAFT_IO_APPEND_ENTRIES) {
    const struct raft_append_entries *a = &message->append_entries;
    now = (struct match_request){1, message->server_id, a->term, a->prev_log_index + a->n_entries};
  } else if (message->type == RAFT_IO_INSTALL_SNAPSHOT) {
    const struct raft_install_snapshot *a = &message->install_snapshot;
    now = (struct match_request){1, message->server_id, a->term, a->last_index};
  }
  m->answering = now;
  m->recv(&m->outer, message);
  m->answering = saved;
}

static int match_send(struct raft_io *io, struct raft_io_send *req,
                      const struct raft_message *message, raft_io_send_cb cb) {
  struct match_io *m = io->impl;
  if (message->server_address == NULL) {
    /* libraft 0.15 answers a follower's append that completes while its leader is unknown (its
     * term moved on meanwhile) to a NULL address, which raft_uv would strlen (SIGSEGV seen once in
     * RaftNode.CloseWithAppendsQueuedBehindAWriteInFlight): not sent, as if unreachable. */
    snprintf(m->outer.errmsg, sizeof m->outer.errmsg, "no address for server %llu",
             (unsigned long long)message->server_id);
    return RAFT_NOCONNECTION;
  }
  if (message->type == RAFT_IO_INSTALL_SNAPSHOT) group_of_io(io)->counters.snapshots_sent++;
  if (message->type != RAFT_IO_APPEND_ENTRIES_RESULT ||
      message->append_entries_result.rejected != 0) {
    return match_fail(m, m->inner->send(m->inner, req, message, cb));
  }
  rs_group *g = group_of_io(io);
  const struct match_request *a = &m->answering;
  raft_index proven = 0;
  if (a->active && a->leader == message->server_id &&
      a->term == message->append_entries_result.term) {
    proven = a->proven;
  } else {
    g->counters.results_unmatched++;
  }
  struct raft_message copy = *message;
  raft_index last = copy.append_entries_result.last_log_index;
  if (last > proven) last = proven;
  if (last > g->raft->last_stored) last = g->raft->last_stored;
  if (last < copy.append_entries_result.last_log_index) g->counters.results_lowered++;
  copy.append_entries_result.last_log_index = last;
  return match_fail(m, m->inner->send(m->inner, req, &copy, cb));
}

/* An append or snapshot put submitted while answering a request: its callback answers it too. */
struct match_deferred {
  union {
    struct raft_io_append append;
    struct raft_io_snapshot_put put;
  } req; /* first: the backend calls back with its address */
  struct match_io *m;
  struct match_request answering;
  void *outer_req;
  raft_io_append_cb append_cb;
  raft_io_snapshot_put_cb put_cb;
};

static struct match_deferred *match_defer(struct match_io *m, void *outer_req) {
  struct match_deferred *d = calloc(1, sizeof *d);
  if (d == NULL) return NULL;
  d->m = m;
  d->answering = m->answering;
  d->outer_req = outer_req;
  return d;
}

/* Runs the deferred request's callback as the answer to the request it was submitted for. */
static void match_resume(struct match_deferred *d, int status) {
  struct match_request saved = d->m->answering;
  d->m->answering = d->answering;
  if (d->append_cb != NULL) d->append_cb(d->outer_req, status);
  if (d->put_cb != NULL) d->put_cb(d->outer_req, status);
  d->m->answering = saved;
  free(d);
}

static void match_append_done(struct raft_io_append *req, int status) {
  match_resume((struct match_deferred *)req, status);
}

static void match_put_done(struct raft_io_snapshot_put *req, int status) {
  match_resume((struct match_deferred *)req, status);
}

static int match_append(struct raft_io *io, struct raft_io_append *req,
                        const struct raft_entry entries[], unsigned n, raft_io_append_cb cb) {
  struct match_io *m = io->impl;
  req->cb = cb;
  if (!m->answering.active) return match_fail(m, m->inner->append(m->inner, req, entries, n, cb));
  struct match_deferred *d = match_defer(m, req);
  if (d == NULL) return RAFT_NOMEM;
  d->append_cb = cb;
  int rv = m->inner->append(m->inner, &d->req.append, entries, n, match_append_done);
  if (rv != 0) free(d);
  return match_fail(m, rv);
}

static int match_snapshot_put(struct raft_io *io, unsigned trailing,
                              struct raft_io_snapshot_put *req,
                              const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb) {
  struct match_io *m = io->impl;
  req->cb = cb;
  if (!m->answering.active) {
    return match_fail(m, m->inner->snapshot_put(m->inner, trailing, req, snapshot, cb));
  }
  struct match_deferred *d = match_defer(m, req);
  if (d == NULL) return RAFT_NOMEM;
  d->put_cb = cb;
  int rv = m->inner->snapshot_put(m->inner, trailing, &d->req.put, snapshot, match_put_done);
  if (rv != 0) free(d);
  return match_fail(m, rv);
}

/* The other calls only forward. */
static int match_init(struct raft_io *io, raft_id id, const char *address) {
  struct match_io *m = io->impl;
  m->inner->data = io->data;
  return match_fail(m, m->inner->init(m->inner, id, address));
}
static void match_close(struct raft_io *io, raft_io_close_cb cb) {
  struct match_io *m = io->impl;
  m->inner->close(m->inner, cb); /* cb gets the inner io, whose data is the raft instance too */
}
static int match_load(struct raft_io *io, raft_term *term, raft_id *voted_for,
                      struct raft_snapshot **snapshot, raft_index *start_index,
                      struct raft_entry *entries[], size_t *n_entries) {
  struct match_io *m = io->impl;
  return match_fail(
      m, m->inner->load(m->inner, term, voted_for, snapshot, start_index, entries, n_entries));
}
static int match_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                       raft_io_recv_cb recv) {
  struct match_io *m = io->impl;
  m->recv = recv;
  m->inner->data = io->data;
  return match_fail(m, m->inner->start(m->inner, msecs, tick, match_recv));
}
static int match_bootstrap(struct raft_io *io, const struct raft_configuration *conf) {
  struct match_io *m = io->impl;
  return match_fail(m, m->inner->bootstrap(m->inner, conf));
}
static int match_recover(struct raft_io *io, const struct raft_configuration *conf) {
  struct match_io *m = io->impl;
  return match_fail(m, m->inner->recover(m->inner, conf));
}
static int match_set_term(struct raft_io *io, raft_term term) {
  struct match_io *m = io->impl;
  return match_fail(m, m->inner->set_term(m->inner, term));
}
static int match_set_vote(struct raft_io *io, raft_id server_id) {
  struct match_io *m = io->impl;
  return match_fail(m, m->inner->set_vote(m->inner, server_id));
}
static int match_truncate(struct raft_io *io, raft_index index) {
  struct match_io *m = io->impl;
  return match_fail(m, m->inner->truncate(m->inner, index));
}
static int match_snapshot_get(struct raft_io *io, struct raft_io_snapshot_get *req,
                              raft_io_snapshot_get_cb cb) {
  struct match_io *m = io->impl;
  return match_fail(m, m->inner->snapshot_get(m->inner, req, cb));
}
static raft_time match_time(struct raft_io *io) {
  struct match_io *m = io->impl;
  return m->inner->time(m->inner);
}
static int match_random(struct raft_io *io, int min, int max) {
  struct match_io *m = io->impl;
  return m->inner->random(m->inner, min, max);
}
static int match_async_work(struct raft_io *io, struct raft_io_async_work *req,
                            raft_io_async_work_cb cb) {
  struct match_io *m = io->impl;
  return match_fail(m, m->inner->async_work(m->inner, req, cb));
}

/* Returns the raft_io libraft is to use for g: `inner` wrapped by g's match_io. The raft
 * instance's fsm must be g's (libraft's callbacks find g through it). */
static struct raft_io *match_wrap(rs_group *g, struct raft_io *inner) {
  struct match_io *m = &g->match;
  memset(m, 0, sizeof *m);
  m->inner = inner;
  struct raft_io *io = &m->outer;
  io->version = inner->version;
  io->data = inner->data;
  io->impl = m;
  io->init = match_init;
  io->close = match_close;
  io->load = match_load;
  io->start = match_start;
  io->bootstrap = match_bootstrap;
  io->recover = match_recover;
  io->set_term = match_set_term;
  io->set_vote = match_set_vote;
  io->send = match_send;
  io->append = match_append;
  io->truncate = match_truncate;
  io->snapshot_put = match_snapshot_put;
  io->snapshot_get = match_snapshot_get;
  io->time = match_time;
  io->random = match_random;
  if (inner->version >= 2) io->async_work = inner->async_work != NULL ? match_async_work : NULL;
  return io;
}

/* ---- The fixture backend ---- */

struct rs_sim {
  struct raft_fixture f; /* first: the hook gets &f */
  unsigned n;
  struct rs_config config;
  uint64_t rng;
  int electing;
  rs_group groups[RAFT_FIXTURE_MAX_SERVERS];
  uint64_t *leader_of_term; /* raft id per term; UINT64_MAX once a conflict was counted */
  size_t nterms;
  uint64_t leader_conflicts;
};

static uint64_t sim_random(rs_sim *s) { /* splitmix64 */
  uint64_t z = (s->rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static void sim_redraw(rs_sim *s, unsigned i) {
  unsigned base = s->config.election_timeout_ms;
  raft_fixture_set_randomized_election_timeout(&s->f, i, base + (unsigned)(sim_random(s) % base));
}

static int group_alive(rs_group *g) {
  return g->sim == NULL || raft_fixture_alive(&g->sim->f, g->sim_index);
}

static void sim_note_leader(rs_sim *s, uint64_t term, uint64_t id) {
  if (term >= s->nterms) {
    size_t n = s->nterms ? s->nterms : 64;
    while (n <= term) n *= 2;
    uint64_t *p = realloc(s->leader_of_term, n * sizeof *p);
    if (p == NULL) return; /* the check is lost, not the run */
    memset(p + s->nterms, 0, (n - s->nterms) * sizeof *p);
    s->leader_of_term = p;
    s->nterms = n;
  }
  uint64_t *slot = &s->leader_of_term[term];
  if (*slot == 0) {
    *slot = id;
  } else if (*slot != id && *slot != UINT64_MAX) {
    *slot = UINT64_MAX;
    s->leader_conflicts++;
  }
}

static void sim_hook(struct raft_fixture *f, struct raft_fixture_event *event) {
  rs_sim *s = (rs_sim *)f;
  if (s->config.redraw_election_timeouts && !s->electing) sim_redraw(s, event->server_index);
  for (unsigned i = 0; i < s->n; i++) {
    if (!raft_fixture_alive(f, i)) continue;
    rs_group *g = &s->groups[i];
    group_tick(g);
    if (raft_state(g->raft) == RAFT_LEADER) sim_note_leader(s, g->raft->current_term, g->raft->id);
  }
}

int rs_sim_open(unsigned n, const struct rs_config *config, uint64_t seed,
                const struct rs_callbacks *callbacks, rs_sim **out) {
  *out = NULL;
  if (n == 0 || n > RAFT_FIXTURE_MAX_SERVERS || config->election_timeout_ms == 0 ||
      config->heartbeat_ms == 0 || config->snapshot_threshold == 0) {
    return RS_INVALID;
  }
  for (unsigned i = 0; i < n; i++) {
    const struct rs_callbacks *cb = &callbacks[i];
    if (!cb->release || !cb->snapshot || !cb->restore || !cb->done || !cb->barrier_done) {
      return RS_INVALID;
    }
  }
  rs_sim *s = calloc(1, sizeof *s); /* zeroed: raft_fixture_initialize leaves fields unset */
  if (s == NULL) return RS_NOMEM;
  s->n = n;
  s->config = *config;
  s->rng = seed * 0x2545F4914F6CDD1Dull + 1;
  if (raft_fixture_initialize(&s->f) != 0) {
    free(s);
    return RS_NOMEM;
  }
  int rv = 0;
  for (unsigned i = 0; i < n && rv == 0; i++) {
    rs_group *g = &s->groups[i];
    group_init(g, &callbacks[i], config->figure8_guard);
    g->sim = s;
    g->sim_index = i;
    rv = raft_fixture_grow(&s->f, &g->fsm);
    if (rv == 0) g->raft = raft_fixture_get(&s->f, i);
    /* After raft_init (inside grow), before bootstrap and start: from here on libraft reaches the
     * fixture's io through the match-index fix. */
    if (rv == 0 && config->match_index_fix) g->raft->io = match_wrap(g, g->raft->io);
  }
  struct raft_configuration conf;
  raft_configuration_init(&conf);
  if (rv == 0) rv = raft_fixture_configuration(&s->f, n, &conf);
  if (rv == 0) rv = raft_fixture_bootstrap(&s->f, &conf);
  raft_configuration_close(&conf);
  if (rv == 0) {
    for (unsigned i = 0; i < n; i++) {
      struct raft *r = s->groups[i].raft;
      raft_set_election_timeout(r, config->election_timeout_ms);
      raft_set_heartbeat_timeout(r, config->heartbeat_ms);
      raft_set_snapshot_threshold(r, config->snapshot_threshold);
      raft_set_snapshot_trailing(r, config->snapshot_trailing);
      raft_set_pre_vote(r, config->pre_vote != 0);
      if (config->redraw_election_timeouts) sim_redraw(s, i);
    }
    raft_fixture_hook(&s->f, sim_hook);
    rv = raft_fixture_start(&s->f);
  }
  if (rv != 0) {
    rs_sim_close(s);
    return rv == RAFT_NOMEM ? RS_NOMEM : RS_INVALID;
  }
  for (unsigned i = 0; i < n; i++) {
    s->groups[i].started = 1;
    s->groups[i].last_role = raft_state(s->groups[i].raft);
    s->groups[i].stored_seen = s->groups[i].raft->last_stored;
  }
  *out = s;
  return RS_OK;
}

void rs_sim_close(rs_sim *s) {
  for (unsigned i = 0; i < s->n; i++) s->groups[i].closing = s->groups[i].mute = 1;
  raft_fixture_close(&s->f);
  for (unsigned i = 0; i < s->n; i++) group_release_memory(&s->groups[i]);
  free(s->leader_of_term);
  free(s);
}

unsigned rs_sim_size(rs_sim *s) { return s->n; }
rs_group *rs_sim_group(rs_sim *s, unsigned i) { return i < s->n ? &s->groups[i] : NULL; }
uint64_t rs_sim_time(rs_sim *s) { return raft_fixture_time(&s->f); }
void rs_sim_step(rs_sim *s) { raft_fixture_step(&s->f); }

void rs_sim_elect(rs_sim *s, unsigned i) {
  s->electing = 1;
  raft_fixture_elect(&s->f, i);
  s->electing = 0;
}

void rs_sim_disconnect(rs_sim *s, unsigned from, unsigned to) {
  raft_fixture_disconnect(&s->f, from, to);
}
void rs_sim_reconnect(rs_sim *s, unsigned from, unsigned to) {
  raft_fixture_reconnect(&s->f, from, to);
}
void rs_sim_saturate(rs_sim *s, unsigned from, unsigned to) {
  raft_fixture_saturate(&s->f, from, to);
}
void rs_sim_desaturate(rs_sim *s, unsigned from, unsigned to) {
  raft_fixture_desaturate(&s->f, from, to);
}
void rs_sim_kill(rs_sim *s, unsigned i) { raft_fixture_kill(&s->f, i); }
void rs_sim_revive(rs_sim *s, unsigned i) { raft_fixture_revive(&s->f, i); }
int rs_sim_alive(rs_sim *s, unsigned i) { return raft_fixture_alive(&s->f, i); }
void rs_sim_set_network_latency(rs_sim *s, unsigned i, unsigned ms) {
  raft_fixture_set_network_latency(&s->f, i, ms);
}
void rs_sim_set_disk_latency(rs_sim *s, unsigned i, unsigned ms) {
  raft_fixture_set_disk_latency(&s->f, i, ms);
}
void rs_sim_io_fault(rs_sim *s, unsigned i, int delay, int repeat) {
  raft_fixture_io_fault(&s->f, i, delay, repeat);
}
uint64_t rs_sim_leader_conflicts(rs_sim *s) { return s->leader_conflicts; }

/* ---- The raft_uv backend ---- */

/* A proposal accepted by rs_group_propose (or a barrier by rs_group_barrier), waiting for the
 * loop thread. */
struct queued {
  struct queued *next;
  uint64_t cookie;
  uint64_t term; /* a proposal's: the term it must be appended in (0: any) */
  int kind;      /* kQueued*: data is a proposal's payload, or a change's address */
  int op;        /* a change's RS_CHANGE_* and server id */
  uint64_t id;
  size_t len;
  unsigned char data[];
};

struct rs_uv {
  rs_group g;
  struct raft raft;
  struct raft_io io;
  struct raft_uv_transport tcp;     /* raft_uv_tcp */
  struct raft_uv_transport nodelay; /* what raft_uv uses: tcp with TCP_NODELAY on every stream */
  raft_uv_accept_cb accept_cb;
  raft_uv_transport_close_cb transport_close_cb;
  uv_loop_t loop;
  uv_async_t async;
  uv_check_t check;
  int handles; /* async and check are initialised */
  pthread_t thread;
  void (*changed)(void *ctx);
  void *changed_ctx;
  int raft_closing; /* loop thread: raft_close was called */
  /* Loop thread: a close was requested and raft_close waits for the log's writes, until
   * close_deadline (uv_now) at most (uv_close_when_stored). */
  int close_waiting;
  uint64_t close_deadline;
  int pack;         /* rs_uv_options.pack */
  /* Loop thread, with pack: proposals taken from the queue and held while this server's last
   * append is not stored yet (uv_flush_held). */
  struct queued *held_head, *held_tail;
  pthread_mutex_t mu;
  /* Guarded by mu. */
  struct queued *head, *tail;
  int close_requested;
  struct rs_info published;
  /* The configuration with addresses (rs_group_configuration), published when it changed. */
  struct rs_server conf[RS_MAX_SERVERS];
  unsigned n_conf;
  raft_index conf_seen, conf_uncommitted_seen; /* loop thread: what conf was taken from */
  int conf_published;                          /* loop thread */
  /* The configuration libraft loaded (or bootstrapped) at open; written before the loop thread
   * starts, then only read. */
  struct rs_voter opened_voters[RS_MAX_VOTERS];
  unsigned n_opened_voters;
  struct lf_group lf; /* the link filter's part (TEST ONLY; empty in the shipped library) */
  /* Leadership gathering (rs_uv_options.gather_anchor); loop thread. */
  uint64_t (*gather_anchor)(void *ctx, const struct rs_info *info);
  void *gather_ctx;
  uint64_t gather_max_lag;
  uint64_t gather_term; /* the term of the last look's leadership */
  uint64_t gather_next; /* uv_now of the next look */
};

/* The rs_uv whose libraft runs on this thread, if any. */
static _Thread_local struct rs_uv *tls_loop_owner;

static void set_error(char *buf, size_t len, const char *fmt, ...) {
  if (buf == NULL || len == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, len, fmt, ap);
  va_end(ap);
}

/* The transport wrapper: raft_uv_tcp, with TCP_NODELAY on each stream it hands to raft_uv.
 *
 * raft_uv_tcp 0.15 splits "host:port" with strtok, whose position is one static for the whole
 * process: two loop threads connecting at once race on it (TSan, 3 groups in one process), and one
 * may parse the other's address. The wrapper serialises every raft_uv_tcp call that parses an
 * address (init, listen, connect) under one process-wide mutex. Host code calling strtok on other
 * threads at the same time can still collide with libraft; nothing here can prevent that. */
static pthread_mutex_t tcp_parse_mu = PTHREAD_MUTEX_INITIALIZER;

struct nd_connect {
  struct raft_uv_connect req; /* first: the inner transport calls back with &req */
  struct rs_uv *u;
  raft_id peer;
  struct raft_uv_connect *outer;
  raft_uv_connect_cb cb;
};

static int nd_init(struct raft_uv_transport *t, raft_id id, const char *address) {
  struct rs_uv *u = t->impl;
  pthread_mutex_lock(&tcp_parse_mu);
  int rv = u->tcp.init(&u->tcp, id, address);
  pthread_mutex_unlock(&tcp_parse_mu);
  if (rv != 0) memcpy(t->errmsg, u->tcp.errmsg, sizeof t->errmsg);
  return rv;
}

/* A stream the link filter refused: ours to close (raft_uv_tcp allocated it with raft_malloc). */
static void nd_free_refused(uv_handle_t *handle) { raft_free(handle); }

/* uv_fileno of a stream, -1 if it has none. */
static int nd_fd(struct uv_stream_s *stream) {
  uv_os_fd_t fd = -1;
  return uv_fileno((uv_handle_t *)stream, &fd) == 0 ? (int)fd : -1;
}

static void nd_accepted(struct raft_uv_transport *inner, raft_id id, const char *address,
                        struct uv_stream_s *stream) {
  struct rs_uv *u = inner->data;
  if (lf_blocked(u->lf.self, id, RS_LINK_IN)) { /* TEST ONLY: the link filter */
    lf_count_refused(RS_LINK_IN);
    uv_close((uv_handle_t *)stream, nd_free_refused);
    return;
  }
  lf_note(&u->lf, id, RS_LINK_IN, nd_fd(stream));
  if (uv_tcp_nodelay((uv_tcp_t *)stream, 1) == 0) u->g.counters.nodelay_streams++;
  u->accept_cb(&u->nodelay, id, address, stream);
}

static int nd_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb) {
  struct rs_uv *u = t->impl;
  u->accept_cb = cb;
  pthread_mutex_lock(&tcp_parse_mu);
  int rv = u->tcp.listen(&u->tcp, nd_accepted);
  pthread_mutex_unlock(&tcp_parse_mu);
  if (rv != 0) memcpy(t->errmsg, u->tcp.errmsg, sizeof t->errmsg);
  return rv;
}

static void nd_connected(struct raft_uv_connect *req, struct uv_stream_s *stream, int status) {
  struct nd_connect *c = (struct nd_connect *)req;
  struct rs_uv *u = c->u;
  struct raft_uv_connect *outer = c->outer;
  raft_uv_connect_cb cb = c->cb;
  const raft_id peer = c->peer;
  free(c);
  if (status == 0 && lf_blocked(u->lf.self, peer, RS_LINK_OUT)) { /* TEST ONLY: link filter */
    /* As raft_uv_tcp reports a peer that refused: raft_uv retries after its connect delay. */
    lf_count_refused(RS_LINK_OUT);
    uv_close((uv_handle_t *)stream, nd_free_refused);
    cb(outer, NULL, RAFT_NOCONNECTION);
    return;
  }
  if (status == 0) lf_note(&u->lf, peer, RS_LINK_OUT, nd_fd(stream));
  if (status == 0 && uv_tcp_nodelay((uv_tcp_t *)stream, 1) == 0) u->g.counters.nodelay_streams++;
  cb(outer, stream, status);
}

static int nd_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                      const char *address, raft_uv_connect_cb cb) {
  struct rs_uv *u = t->impl;
  struct nd_connect *c = calloc(1, sizeof *c);
  if (c == NULL) return RAFT_NOMEM;
  c->u = u;
  c->peer = id;
  c->outer = req;
  c->cb = cb;
  req->cb = cb;
  pthread_mutex_lock(&tcp_parse_mu);
  int rv = u->tcp.connect(&u->tcp, &c->req, id, address, nd_connected);
  pthread_mutex_unlock(&tcp_parse_mu);
  if (rv != 0) {
    memcpy(t->errmsg, u->tcp.errmsg, sizeof t->errmsg);
    free(c);
  }
  return rv;
}

static void nd_closed(struct raft_uv_transport *inner) {
  struct rs_uv *u = inner->data;
  if (u->transport_close_cb != NULL) u->transport_close_cb(&u->nodelay);
}

static void nd_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb) {
  struct rs_uv *u = t->impl;
  u->transport_close_cb = cb;
  u->tcp.close(&u->tcp, nd_closed);
}

static void ignore_sigpipe_if_default(void) {
  static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
  pthread_mutex_lock(&once);
  struct sigaction old;
  if (sigaction(SIGPIPE, NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) &&
      old.sa_handler == SIG_DFL) {
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, NULL);
  }
  pthread_mutex_unlock(&once);
}

static struct rs_uv *uv_of_raft(struct raft *r) {
  return (struct rs_uv *)((char *)r - offsetof(struct rs_uv, raft));
}

/* Loop thread: publishes the state other threads read, and says when it changed. */
static void uv_publish(struct rs_uv *u) {
  struct rs_info info;
  group_info_now(&u->g, &info);
  struct raft *r = &u->raft;
  const int conf_changed = !u->conf_published || r->configuration_index != u->conf_seen ||
                           r->configuration_uncommitted_index != u->conf_uncommitted_seen;
  struct rs_server conf[RS_MAX_SERVERS];
  unsigned n_conf = 0;
  if (conf_changed) n_conf = conf_copy(r, conf, RS_MAX_SERVERS);
  u->conf_published = 1;
  u->conf_seen = r->configuration_index;
  u->conf_uncommitted_seen = r->configuration_uncommitted_index;
  pthread_mutex_lock(&u->mu);
  struct rs_info old = u->published;
  u->published = info;
  if (conf_changed) {
    memcpy(u->conf, conf, sizeof conf);
    u->n_conf = n_conf;
  }
  pthread_mutex_unlock(&u->mu);
  if (u->changed != NULL && (old.role != info.role || old.term != info.term ||
                             old.leader_id != info.leader_id || old.ready != info.ready)) {
    u->changed(u->changed_ctx);
  }
}

static int uv_published_info(rs_group *g, struct rs_info *info) {
  struct rs_uv *u = g->uv;
  if (tls_loop_owner == u && !u->raft_closing) return 0; /* the live state */
  pthread_mutex_lock(&u->mu);
  *info = u->published;
  pthread_mutex_unlock(&u->mu);
  return 1;
}

static int uv_enqueue(rs_group *g, const void *data, size_t len, uint64_t cookie, uint64_t term,
                      int kind, int op, uint64_t id) {
  struct rs_uv *u = g->uv;
  struct queued *q = malloc(sizeof *q + (len > 0 ? len : 1));
  if (q == NULL) return RS_NOMEM;
  q->next = NULL;
  q->cookie = cookie;
  q->term = term;
  q->kind = kind;
  q->op = op;
  q->id = id;
  q->len = len;
  if (len > 0) memcpy(q->data, data, len);
  pthread_mutex_lock(&u->mu);
  int rv = RS_OK;
  if (u->close_requested) {
    rv = RS_DOWN;
  } else if (u->published.role != RAFT_LEADER) {
    rv = RS_NOT_LEADER;
  } else if (!u->published.ready) {
    rv = RS_NOT_READY;
  } else {
    if (u->tail != NULL) {
      u->tail->next = q;
    } else {
      u->head = q;
    }
    u->tail = q;
  }
  pthread_mutex_unlock(&u->mu);
  if (rv != RS_OK) {
    free(q);
    return rv;
  }
  uv_async_send(&u->async);
  return RS_OK;
}

/* libraft has made its last callback: answer what it left, and let the loop end. */
static void uv_raft_closed(struct raft *r) {
  struct rs_uv *u = uv_of_raft(r);
  rs_group *g = &u->g;
  while (g->reqs.next != &g->reqs) {
    struct rs_req *req = g->reqs.next;
    unlink_req(req);
    abandon_req(g, req);
    free(req);
  }
  if (u->handles) {
    uv_close((uv_handle_t *)&u->async, NULL);
    uv_close((uv_handle_t *)&u->check, NULL);
  }
}

static void uv_start_close(struct rs_uv *u) {
  if (u->raft_closing) return;
  u->raft_closing = 1;
  u->g.closing = 1;
  raft_close(&u->raft, uv_raft_closed);
}

/* How long a close waits for the log's writes before it closes libraft regardless. */
enum { kCloseWaitMs = 5000 };

/* raft_uv 0.15 writes one append at a time and, when it closes, cancels the appends queued behind
 * the write in flight; libraft's leader then truncates its log from each cancelled append's first
 * index, and the second such truncation, of entries the first already removed, runs past the
 * log's end (SIGSEGV in removeSuffix; RaftNode.CloseWithAppendsQueuedBehindAWriteInFlight). So a
 * close first refuses new work (g.closing: no proposal, barrier, term-start entry or change step)
 * and calls raft_close once the log's last index is stored, when no append is queued or in flight,
 * or after kCloseWaitMs regardless. Loop thread: at the close request, then after each iteration.
 */
static void uv_close_when_stored(struct rs_uv *u) {
  if (u->raft_closing) return;
  struct raft *r = &u->raft;
  if (!u->close_waiting) {
    u->close_waiting = 1;
    u->g.closing = 1;
    u->close_deadline = uv_now(&u->loop) + kCloseWaitMs;
  }
  if (r->last_stored >= raft_last_index(r) || uv_now(&u->loop) >= u->close_deadline) {
    uv_start_close(u);
  }
}

/* The most proposals, and bytes of their payloads, one packed entry takes (a larger single
 * proposal still gets an entry of its own). */
enum { kPackMaxParts = 256, kPackMaxBytes = 1 << 20 };

/* Proposes the run of proposals of one term that starts at q as one entry (rs_uv_options.pack)
 * and answers the refused ones; returns the first queued request after the run. */
static struct queued *uv_propose_pack(struct rs_uv *u, struct queued *q) {
  struct part parts[kPackMaxParts];
  unsigned n = 0;
  size_t bytes = 0;
  struct queued *end = q;
  while (end != NULL && end->kind == kQueuedPropose && end->term == q->term && n < kPackMaxParts &&
         (n == 0 || bytes + end->len <= kPackMaxBytes)) {
    parts[n].data = end->data;
    parts[n].len = end->len;
    parts[n].cookie = end->cookie;
    bytes += end->len;
    n++;
    end = end->next;
  }
  const int rv = group_propose_parts(&u->g, parts, n, q->term);
  while (q != end) {
    struct queued *next = q->next;
    if (rv != RS_OK) u->g.cb.done(u->g.cb.ctx, q->cookie, rv);
    free(q);
    q = next;
  }
  return end;
}

/* With pack, proposals wait (held) while a leader's last append is still being written, and go
 * as packed entries once it is stored: raft_uv would hold their append behind that write anyway
 * (one write in flight per segment), so waiting costs no durable write, and each write then
 * carries one entry, one message per follower, instead of one per loop wake-up. A server that
 * does not lead proposes (refuses) at once. Loop thread, after each wake-up and iteration. */
static void uv_flush_held(struct rs_uv *u) {
  struct raft *r = &u->raft;
  if (u->held_head == NULL) return;
  if (raft_state(r) == RAFT_LEADER && r->last_stored < raft_last_index(r)) return;
  struct queued *q = u->held_head;
  u->held_head = u->held_tail = NULL;
  while (q != NULL) q = uv_propose_pack(u, q);
}

static void uv_hold(struct rs_uv *u, struct queued *q) {
  q->next = NULL;
  if (u->held_tail != NULL) {
    u->held_tail->next = q;
  } else {
    u->held_head = q;
  }
  u->held_tail = q;
}

static void uv_on_async(uv_async_t *handle) {
  struct rs_uv *u = handle->data;
  pthread_mutex_lock(&u->mu);
  struct queued *q = u->head;
  u->head = u->tail = NULL;
  int closing = u->close_requested;
  pthread_mutex_unlock(&u->mu);
  lf_cut_if_pending(&u->lf);
  if (closing && u->held_head != NULL) {
    /* Held proposals first (queued before the rest): refused, as the queue is. */
    u->held_tail->next = q;
    q = u->held_head;
    u->held_head = u->held_tail = NULL;
  }
  while (q != NULL) {
    struct queued *next = q->next;
    if (u->pack && !closing && q->kind == kQueuedPropose) {
      uv_hold(u, q);
      q = next;
      continue;
    }
    if (q->kind == kQueuedTransfer) { /* no callback: its outcome is counted (rs_info) */
      if (!closing) (void)group_transfer_now(&u->g, q->id);
      free(q);
      q = next;
      continue;
    }
    int rv = closing                     ? RS_DOWN
             : q->kind == kQueuedBarrier ? group_barrier_now(&u->g, q->cookie)
             : q->kind == kQueuedChange
                 ? group_change_now(&u->g, q->op, q->id, (const char *)q->data, q->cookie)
                 : group_propose_now(&u->g, q->data, q->len, q->cookie, q->term);
    if (rv != RS_OK && q->kind == kQueuedBarrier) {
      u->g.cb.barrier_done(u->g.cb.ctx, q->cookie, rv, 0);
    } else if (rv != RS_OK && q->kind == kQueuedChange) {
      u->g.cb.change_done(u->g.cb.ctx, q->cookie, rv, "");
    } else if (rv != RS_OK) {
      u->g.cb.done(u->g.cb.ctx, q->cookie, rv);
    }
    free(q);
    q = next;
  }
  if (closing) {
    uv_close_when_stored(u);
  } else {
    uv_flush_held(u);
  }
}

/* Leadership gathering: on a ready leader, two heartbeats after its term became ready (its
 * followers have answered by then) and then every election timeout, asks the owner where the
 * group's leadership belongs, and transfers it there if that server is a live voter within
 * gather_max_lag entries of this leader's log. Loop thread, after each iteration. */
static void uv_gather(struct rs_uv *u) {
  rs_group *g = &u->g;
  struct raft *r = &u->raft;
  if (u->gather_anchor == NULL || g->closing || group_check_ready(g) != RS_OK) return;
  const uint64_t now = uv_now(&u->loop);
  if (u->gather_term != r->current_term) {
    u->gather_term = r->current_term;
    u->gather_next = now + 2 * (uint64_t)r->heartbeat_timeout;
  }
  if (now < u->gather_next) return;
  u->gather_next = now + r->election_timeout;
  if (g->transfer_target != 0 || r->transfer != NULL) return;
  struct rs_info info;
  group_info_now(g, &info);
  const uint64_t target = u->gather_anchor(u->gather_ctx, &info);
  if (!rs_transfer_eligible(&info, target, u->gather_max_lag)) return;
  (void)group_transfer_now(g, target);
}

/* After each loop iteration's I/O: the guard's per-event hook, gathering, then publish. */
static void uv_on_check(uv_check_t *handle) {
  struct rs_uv *u = handle->data;
  if (u->raft_closing) return;
  group_tick(&u->g);
  if (u->close_waiting) {
    uv_close_when_stored(u);
    if (u->raft_closing) return;
  } else {
    uv_flush_held(u);
    uv_gather(u);
  }
  uv_publish(u);
}

#ifdef SHARDTX_KILL_POINTS
/* The link filter asks the loop thread to cut a link's connections (uv_on_async does). */
static void uv_wake_for_link_filter(void *ctx) {
  struct rs_uv *u = ctx;
  uv_async_send(&u->async);
}
#endif

static void *uv_thread_main(void *arg) {
  struct rs_uv *u = arg;
  tls_loop_owner = u;
  uv_run(&u->loop, UV_RUN_DEFAULT);
  tls_loop_owner = NULL;
  return NULL;
}

/* Frees a group whose loop has ended (or never ran a thread). */
static void uv_free(struct rs_uv *u) {
  raft_uv_close(&u->io);
  raft_uv_tcp_close(&u->tcp);
  for (int k = 0; k < 100 && uv_loop_close(&u->loop) == UV_EBUSY; k++) {
    uv_run(&u->loop, UV_RUN_NOWAIT);
  }
  group_release_memory(&u->g);
  while (u->head != NULL) {
    struct queued *next = u->head->next;
    free(u->head);
    u->head = next;
  }
  while (u->held_head != NULL) { /* none after a close (refused then) */
    struct queued *next = u->held_head->next;
    free(u->held_head);
    u->held_head = next;
  }
  pthread_mutex_destroy(&u->mu);
  free(u);
}

/* Open failed after raft_init: close libraft on this thread, then free. */
static void uv_abort_open(struct rs_uv *u) {
  u->g.mute = 1;
  tls_loop_owner = u;
  uv_start_close(u);
  uv_run(&u->loop, UV_RUN_DEFAULT);
  tls_loop_owner = NULL;
  uv_free(u);
}

static int raft_to_rs(int rv) {
  return rv == RAFT_NOMEM ? RS_NOMEM : rv == RAFT_INVALID ? RS_INVALID : RS_IOERR;
}

int rs_uv_open(const struct rs_uv_options *options, const struct rs_config *config,
               const struct rs_callbacks *cb, rs_group **out, char *errmsg, size_t errmsg_len) {
  *out = NULL;
  set_error(errmsg, errmsg_len, "%s", "");
  if (options->id == 0 || options->address == NULL || options->dir == NULL ||
      options->members == NULL || options->n_members == 0) {
    set_error(errmsg, errmsg_len, "id, address, dir and members are required");
    return RS_INVALID;
  }
  if (config->election_timeout_ms == 0 || config->heartbeat_ms == 0 ||
      config->snapshot_threshold == 0) {
    set_error(errmsg, errmsg_len, "timeouts and the snapshot threshold must be > 0");
    return RS_INVALID;
  }
  if (!cb->release || !cb->snapshot || !cb->restore || !cb->done || !cb->barrier_done) {
    set_error(errmsg, errmsg_len, "every callback is required");
    return RS_INVALID;
  }
  int self_found = 0;
  for (unsigned i = 0; i < options->n_members; i++) {
    const struct rs_member *m = &options->members[i];
    if (m->id == 0 || m->address == NULL) {
      set_error(errmsg, errmsg_len, "member %u: id must be > 0 and the address given", i);
      return RS_INVALID;
    }
    if (m->id == options->id) self_found = 1;
  }
  if (!self_found) {
    set_error(errmsg, errmsg_len, "server %llu is not among the members",
              (unsigned long long)options->id);
    return RS_INVALID;
  }
  ignore_sigpipe_if_default();

  struct rs_uv *u = calloc(1, sizeof *u);
  if (u == NULL) return RS_NOMEM;
  group_init(&u->g, cb, config->figure8_guard);
  u->g.uv = u;
  u->g.raft = &u->raft;
  u->changed = options->changed;
  u->changed_ctx = options->changed_ctx;
  u->pack = options->pack != 0;
  u->gather_anchor = options->gather_anchor;
  u->gather_ctx = options->gather_ctx;
  u->gather_max_lag = options->gather_max_lag != 0 ? options->gather_max_lag : RS_GATHER_MAX_LAG;
  u->lf.self = options->id;
#ifdef SHARDTX_KILL_POINTS
  u->lf.wake = uv_wake_for_link_filter;
  u->lf.wake_ctx = u;
#endif
  pthread_mutex_init(&u->mu, NULL);
  int rv = uv_loop_init(&u->loop);
  if (rv != 0) {
    set_error(errmsg, errmsg_len, "uv_loop_init: %s", uv_strerror(rv));
    pthread_mutex_destroy(&u->mu);
    free(u);
    return RS_IOERR;
  }
  rv = raft_uv_tcp_init(&u->tcp, &u->loop);
  if (rv != 0) {
    set_error(errmsg, errmsg_len, "raft_uv_tcp_init: %s", raft_strerror(rv));
    uv_loop_close(&u->loop);
    pthread_mutex_destroy(&u->mu);
    free(u);
    return raft_to_rs(rv);
  }
  u->tcp.data = u;
  u->nodelay.impl = u;
  u->nodelay.init = nd_init;
  u->nodelay.listen = nd_listen;
  u->nodelay.connect = nd_connect;
  u->nodelay.close = nd_close;
  rv = raft_uv_init(&u->io, &u->loop, options->dir, &u->nodelay);
  if (rv != 0) {
    set_error(errmsg, errmsg_len, "raft_uv_init(%s): %s", options->dir,
              u->io.errmsg[0] ? u->io.errmsg : raft_strerror(rv));
    raft_uv_tcp_close(&u->tcp);
    uv_loop_close(&u->loop);
    pthread_mutex_destroy(&u->mu);
    free(u);
    return raft_to_rs(rv);
  }
  if (options->connect_retry_ms > 0) {
    raft_uv_set_connect_retry_delay(&u->io, options->connect_retry_ms);
  }
  struct raft_io *io = config->match_index_fix ? match_wrap(&u->g, &u->io) : &u->io;
  rv = raft_init(&u->raft, io, &u->g.fsm, options->id, options->address);
  const int join = options->join;
  if (rv != 0) {
    set_error(errmsg, errmsg_len, "raft_init: %s", raft_errmsg(&u->raft));
    raft_uv_close(&u->io);
    raft_uv_tcp_close(&u->tcp);
    uv_loop_close(&u->loop);
    pthread_mutex_destroy(&u->mu);
    free(u);
    return raft_to_rs(rv);
  }
  struct raft_configuration conf;
  raft_configuration_init(&conf);
  for (unsigned i = 0; i < options->n_members && rv == 0; i++) {
    rv = raft_configuration_add(&conf, options->members[i].id, options->members[i].address,
                                RAFT_VOTER);
  }
  if (rv != 0) {
    set_error(errmsg, errmsg_len, "members: %s (duplicate id or address?)", raft_strerror(rv));
  } else if (!join) {
    rv = raft_bootstrap(&u->raft, &conf);
    if (rv == RAFT_CANTBOOTSTRAP) {
      rv = 0; /* the directory holds state already: reuse it */
    } else if (rv != 0) {
      set_error(errmsg, errmsg_len, "raft_bootstrap(%s): %s", options->dir, raft_errmsg(&u->raft));
    }
  }
  raft_configuration_close(&conf);
  if (rv != 0) {
    uv_abort_open(u);
    return raft_to_rs(rv);
  }
  raft_set_election_timeout(&u->raft, config->election_timeout_ms);
  raft_set_heartbeat_timeout(&u->raft, config->heartbeat_ms);
  raft_set_snapshot_threshold(&u->raft, config->snapshot_threshold);
  raft_set_snapshot_trailing(&u->raft, config->snapshot_trailing);
  /* libraft 0.15's follower drops an InstallSnapshot that arrives while it takes a snapshot of
   * its own (no answer), and its leader sends nothing more to it until this timeout (default 30
   * s) has passed: a follower that had just come back and caught a few entries waited that long.
   * Resending costs one small message (the snapshot is shardtx's metadata, not the state); a
   * follower still installing the first one answers the repeat as already held. */
  raft_set_install_snapshot_timeout(&u->raft, 2 * config->election_timeout_ms);
  raft_set_pre_vote(&u->raft, config->pre_vote != 0);
  uv_async_init(&u->loop, &u->async, uv_on_async);
  u->async.data = u;
  uv_check_init(&u->loop, &u->check);
  u->check.data = u;
  uv_check_start(&u->check, uv_on_check);
  u->handles = 1;

  tls_loop_owner = u;
  rv = raft_start(&u->raft);
  if (rv != 0) {
    /* raft_uv 0.15 reports a taken address as RAFT_IOERR with an empty message. */
    set_error(
        errmsg, errmsg_len, "raft_start(%s, %s): %s", options->address, options->dir,
        raft_errmsg(&u->raft)[0] ? raft_errmsg(&u->raft) : "I/O error (is the address in use?)");
    tls_loop_owner = NULL;
    uv_abort_open(u);
    return raft_to_rs(rv);
  }
  u->g.started = 1;
  u->g.last_role = raft_state(&u->raft);
  u->g.stored_seen = u->raft.last_stored; /* what the log held at start is not a write */
  for (unsigned i = 0; i < u->raft.configuration.n && u->n_opened_voters < RS_MAX_VOTERS; i++) {
    const struct raft_server *sv = &u->raft.configuration.servers[i];
    if (sv->role != RAFT_VOTER) continue;
    struct rs_voter *v = &u->opened_voters[u->n_opened_voters++];
    v->id = sv->id;
    snprintf(v->address, sizeof v->address, "%s", sv->address != NULL ? sv->address : "");
  }
  uv_publish(u);
  tls_loop_owner = NULL;

  rv = pthread_create(&u->thread, NULL, uv_thread_main, u);
  if (rv != 0) {
    set_error(errmsg, errmsg_len, "pthread_create: %s", strerror(rv));
    uv_abort_open(u);
    return RS_NOMEM;
  }
  lf_register(&u->lf);
  *out = &u->g;
  return RS_OK;
}

unsigned rs_group_configuration(rs_group *g, struct rs_server *out, unsigned max) {
  struct rs_uv *u = g->uv;
  if (u == NULL || (tls_loop_owner == u && !u->raft_closing)) {
    struct rs_server all[RS_MAX_SERVERS];
    unsigned n = conf_copy(g->raft, all, RS_MAX_SERVERS);
    memcpy(out, all, (n < max ? n : max) * sizeof *out);
    return n;
  }
  pthread_mutex_lock(&u->mu);
  unsigned n = u->n_conf;
  memcpy(out, u->conf, (n < max ? n : max) * sizeof *out);
  pthread_mutex_unlock(&u->mu);
  return n;
}

unsigned rs_group_opened_voters(rs_group *g, struct rs_voter *out, unsigned max) {
  struct rs_uv *u = g->uv;
  if (u == NULL) return 0;
  unsigned n = u->n_opened_voters < max ? u->n_opened_voters : max;
  memcpy(out, u->opened_voters, n * sizeof *out);
  return u->n_opened_voters;
}

void rs_group_close(rs_group *g) {
  struct rs_uv *u = g->uv;
  if (u == NULL) return;
  lf_unregister(&u->lf); /* no wake-up from the link filter after this */
  pthread_mutex_lock(&u->mu);
  u->close_requested = 1;
  pthread_mutex_unlock(&u->mu);
  uv_async_send(&u->async);
  pthread_join(u->thread, NULL);
  uv_free(u);
}

/* ---- The crash simulator backend ----
 *
 * N servers of one group over sim_io.c's in-memory raft_io (plan step 9): each server is a real
 * raft instance (raft_init, raft_bootstrap once, raft_start) behind the same group code as the
 * other backends (the release gate, the term-start entry, the match-index fix wrapping the io).
 * A crash is raft_close: the io's requests in flight are cancelled and never reach the server's
 * durable part; a restart is a new raft instance over that durable part (raft_start loads it). */

struct rs_wnode {
  rs_group g;
  struct raft raft;
  int up;     /* a raft instance exists (it may be RAFT_UNAVAILABLE) */
  int closed; /* raft_close's callback ran */
};

struct rs_world {
  sio_world *sio;
  unsigned n;
  struct rs_config config;
  struct rs_wnode nodes[SIO_MAX_SERVERS];
  uint64_t *term_leaders; /* raft id per term; UINT64_MAX once a conflict was counted */
  size_t nterm_leaders;
  uint64_t conflicts;
};

static void world_note_leader(rs_world *w, uint64_t term, uint64_t id) {
  if (term >= w->nterm_leaders) {
    size_t n = w->nterm_leaders ? 2 * w->nterm_leaders : 64;
    while (n <= term) n *= 2;
    uint64_t *p = realloc(w->term_leaders, n * sizeof *p);
    if (p == NULL) return;
    memset(p + w->nterm_leaders, 0, (n - w->nterm_leaders) * sizeof *p);
    w->term_leaders = p;
    w->nterm_leaders = n;
  }
  if (w->term_leaders[term] == 0) {
    w->term_leaders[term] = id;
  } else if (w->term_leaders[term] != id && w->term_leaders[term] != UINT64_MAX) {
    w->term_leaders[term] = UINT64_MAX;
    w->conflicts++;
  }
}

static void world_closed(struct raft *r) {
  struct rs_wnode *nd = (struct rs_wnode *)((char *)r - offsetof(struct rs_wnode, raft));
  nd->closed = 1;
}

/* Ends server i's raft instance: what libraft leaves unanswered is RS_UNKNOWN. */
static void world_stop(rs_world *w, unsigned i) {
  struct rs_wnode *nd = &w->nodes[i];
  nd->g.closing = 1;
  nd->closed = 0;
  raft_close(&nd->raft, world_closed);
  if (!nd->closed) abort(); /* sim_io closes synchronously */
  while (nd->g.reqs.next != &nd->g.reqs) {
    struct rs_req *req = nd->g.reqs.next;
    unlink_req(req);
    abandon_req(&nd->g, req);
    free(req);
  }
  group_release_memory(&nd->g);
  sio_io_free(w->sio, i);
  nd->up = 0;
}

static int world_start(rs_world *w, unsigned i, const struct rs_callbacks *cb, int bootstrap) {
  struct rs_wnode *nd = &w->nodes[i];
  const struct rs_config *c = &w->config;
  memset(&nd->raft, 0, sizeof nd->raft);
  group_init(&nd->g, cb, c->figure8_guard);
  nd->g.raft = &nd->raft;
  struct raft_io *io = sio_io_open(w->sio, i);
  if (io == NULL) return RS_NOMEM;
  struct raft_io *use = c->match_index_fix ? match_wrap(&nd->g, io) : io;
  char address[16];
  snprintf(address, sizeof address, "sim%u", i + 1);
  int rv = raft_init(&nd->raft, use, &nd->g.fsm, i + 1, address);
  if (rv != 0) {
    sio_io_free(w->sio, i);
    return raft_to_rs(rv);
  }
  if (bootstrap) {
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    for (unsigned k = 0; k < w->n && rv == 0; k++) {
      snprintf(address, sizeof address, "sim%u", k + 1);
      rv = raft_configuration_add(&conf, k + 1, address, RAFT_VOTER);
    }
    if (rv == 0) rv = raft_bootstrap(&nd->raft, &conf);
    raft_configuration_close(&conf);
  }
  raft_set_election_timeout(&nd->raft, c->election_timeout_ms);
  raft_set_heartbeat_timeout(&nd->raft, c->heartbeat_ms);
  raft_set_snapshot_threshold(&nd->raft, c->snapshot_threshold);
  raft_set_snapshot_trailing(&nd->raft, c->snapshot_trailing);
  raft_set_pre_vote(&nd->raft, c->pre_vote != 0);
  /* A failed install (its producer crashed) is retried after this, not libraft's 30 s. */
  raft_set_install_snapshot_timeout(&nd->raft, 4 * c->election_timeout_ms);
  if (rv == 0) rv = raft_start(&nd->raft);
  nd->up = 1;
  if (rv != 0) {
    nd->g.mute = 1;
    world_stop(w, i);
    return raft_to_rs(rv);
  }
  nd->g.started = 1;
  nd->g.last_role = raft_state(&nd->raft);
  nd->g.stored_seen = nd->raft.last_stored;
  return RS_OK;
}

int rs_world_open(unsigned n, const struct rs_config *config, uint64_t seed,
                  const struct rs_callbacks *callbacks, rs_world **out) {
  *out = NULL;
  if (n == 0 || n > SIO_MAX_SERVERS || config->election_timeout_ms == 0 ||
      config->heartbeat_ms == 0 || config->snapshot_threshold == 0) {
    return RS_INVALID;
  }
  for (unsigned i = 0; i < n; i++) {
    const struct rs_callbacks *cb = &callbacks[i];
    if (!cb->release || !cb->snapshot || !cb->restore || !cb->done || !cb->barrier_done) {
      return RS_INVALID;
    }
  }
  rs_world *w = calloc(1, sizeof *w);
  if (w == NULL) return RS_NOMEM;
  w->n = n;
  w->config = *config;
  w->sio = sio_world_open(n, seed);
  if (w->sio == NULL) {
    free(w);
    return RS_NOMEM;
  }
  for (unsigned i = 0; i < n; i++) {
    int rv = world_start(w, i, &callbacks[i], 1);
    if (rv != RS_OK) {
      rs_world_close(w);
      return rv;
    }
  }
  *out = w;
  return RS_OK;
}

void rs_world_close(rs_world *w) {
  for (unsigned i = 0; i < w->n; i++) {
    if (!w->nodes[i].up) continue;
    w->nodes[i].g.mute = 1;
    world_stop(w, i);
  }
  sio_world_close(w->sio);
  free(w->term_leaders);
  free(w);
}

unsigned rs_world_size(rs_world *w) { return w->n; }
rs_group *rs_world_group(rs_world *w, unsigned i) {
  return i < w->n && w->nodes[i].up ? &w->nodes[i].g : NULL;
}
int rs_world_up(rs_world *w, unsigned i) { return i < w->n && w->nodes[i].up; }
uint64_t rs_world_time(rs_world *w) { return sio_now(w->sio); }
int rs_world_next_time(rs_world *w, uint64_t *t) { return sio_next_time(w->sio, t); }
void rs_world_advance(rs_world *w, uint64_t t) { sio_advance(w->sio, t); }

int rs_world_step(rs_world *w) {
  if (sio_step(w->sio) < 0) return 0;
  for (unsigned i = 0; i < w->n; i++) {
    struct rs_wnode *nd = &w->nodes[i];
    if (!nd->up) continue;
    group_tick(&nd->g);
    if (raft_state(&nd->raft) == RAFT_LEADER) {
      world_note_leader(w, nd->raft.current_term, nd->raft.id);
    }
  }
  return 1;
}

void rs_world_crash(rs_world *w, unsigned i) {
  if (rs_world_up(w, i)) world_stop(w, i);
}

int rs_world_restart(rs_world *w, unsigned i, const struct rs_callbacks *callbacks) {
  if (i >= w->n || w->nodes[i].up) return RS_INVALID;
  return world_start(w, i, callbacks, 0);
}

void rs_world_link(rs_world *w, unsigned from, unsigned to, int up) {
  sio_link(w->sio, from, to, up);
}
void rs_world_drop(rs_world *w, unsigned from, unsigned to, unsigned percent) {
  sio_drop(w->sio, from, to, percent);
}
void rs_world_latency(rs_world *w, unsigned i, unsigned network_ms, unsigned disk_ms) {
  sio_latency(w->sio, i, network_ms, disk_ms);
}
void rs_world_fail_write(rs_world *w, unsigned i, unsigned n) { sio_fail_write(w->sio, i, n); }
void rs_world_set_mutation(rs_world *w, int mutation) { sio_set_mutation(w->sio, mutation); }
uint64_t rs_world_leader_conflicts(rs_world *w) { return w->conflicts; }
void rs_world_stats(rs_world *w, struct sio_stats *out) { sio_stats(w->sio, out); }
uint64_t rs_world_durable_last_index(rs_world *w, unsigned i) {
  return sio_durable_last_index(w->sio, i);
}
