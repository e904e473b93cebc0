/* libraft 0.15 behind the C API of raft_shim.h: the entry tags, the release gate, the term-start
 * entry and the fixture backend. The only file of shardtx that includes raft.h. */
#include "replication/raft_shim.h"

#include <raft.h>
#include <raft/fixture.h>
#include <stdlib.h>
#include <string.h>

/* ---- Entry format ----
 * Every entry the shim proposes: a 24-byte header, then the payload.
 *   magic u32 | kind u32 | tag term u64 | tag index u64 | payload
 * little-endian; the tag is the proposer's current term and the index it expected the entry to
 * get (raft_last_index + 1 right before raft_apply). A snapshot is a 24-byte header
 *   magic u32 | zero u32 | released term u64 | released index u64 | the state machine's bytes. */
enum { kEntryMagic = 0x31455352u /* "RSE1" */, kSnapshotMagic = 0x31535352u /* "RSS1" */ };
enum { kKindCommand = 1, kKindNoop = 2 };
enum { kHeaderSize = 24 };

struct header {
  uint32_t magic;
  uint32_t kind;
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
  put32(p + 4, h->kind);
  put64(p + 8, h->term);
  put64(p + 16, h->index);
}
static int decode_header(const void *base, size_t len, uint32_t magic, struct header *h) {
  const unsigned char *p = base;
  if (len < kHeaderSize) return 0;
  h->magic = get32(p);
  h->kind = get32(p + 4);
  h->term = get64(p + 8);
  h->index = get64(p + 16);
  return h->magic == magic;
}

/* ---- Groups ---- */

/* An accepted proposal, until libraft calls back. */
struct rs_req {
  struct raft_apply apply;
  rs_group *g;
  uint64_t cookie;
  uint64_t index; /* the tag index: where the entry lands if it commits */
  int noop;
  struct rs_req *prev, *next;
};

/* An entry applied by libraft and held by the gate. */
struct held_entry {
  uint64_t term, index;
  int noop;
  size_t len;
  unsigned char *data;
};

struct rs_group {
  struct raft *raft;
  struct raft_fsm fsm;
  struct rs_callbacks cb;
  rs_sim *sim; /* the fixture backend's cluster (NULL for another backend) */
  unsigned sim_index;
  int guard;
  int closing;
  int last_role;
  struct held_entry *held;
  size_t nheld, capheld;
  uint64_t released_index, released_term, noop_term;
  struct rs_req reqs; /* sentinel of the pending proposals */
  struct rs_info counters;
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
  size_t len = buf->len - kHeaderSize;
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
  struct header h = {kSnapshotMagic, 0, g->released_term, g->released_index};
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
  raft_free(buf->base);
  return 0;
}

static void unlink_req(struct rs_req *req) {
  req->prev->next = req->next;
  req->next->prev = req->prev;
}

static void apply_done(struct raft_apply *a, int status, void *result) {
  struct rs_req *req = a->data;
  rs_group *g = req->g;
  (void)result;
  unlink_req(req);
  if (!req->noop && !g->closing) {
    /* 0 = applied here by libraft; with the gate it counts only once released. */
    int outcome = status == 0 && g->released_index >= req->index ? RS_OK : RS_UNKNOWN;
    g->cb.done(g->cb.ctx, req->cookie, outcome);
  }
  free(req);
}

static int propose_entry(rs_group *g, uint32_t kind, const void *data, size_t len,
                         uint64_t cookie) {
  struct raft *r = g->raft;
  struct rs_req *req = calloc(1, sizeof *req);
  struct raft_buffer buf;
  buf.len = kHeaderSize + len;
  buf.base = raft_malloc(buf.len);
  if (req == NULL || buf.base == NULL) {
    free(req);
    raft_free(buf.base);
    return RS_NOMEM;
  }
  struct header h = {kEntryMagic, kind, r->current_term, raft_last_index(r) + 1};
  encode_header(buf.base, &h);
  if (len > 0) memcpy((unsigned char *)buf.base + kHeaderSize, data, len);
  req->apply.data = req;
  req->g = g;
  req->cookie = cookie;
  req->index = h.index;
  req->noop = kind == kKindNoop;
  req->next = g->reqs.next;
  req->prev = &g->reqs;
  g->reqs.next->prev = req;
  g->reqs.next = req;
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

int rs_group_propose(rs_group *g, const void *data, size_t len, uint64_t cookie) {
  if (g->closing || !group_alive(g)) return RS_DOWN;
  struct raft *r = g->raft;
  if (raft_state(r) != RAFT_LEADER) return RS_NOT_LEADER;
  if (g->guard && g->released_term != r->current_term) return RS_NOT_READY;
  return propose_entry(g, kKindCommand, data, len, cookie);
}

/* Runs after every event (the fixture's hook; a uv_check handle in the raft_uv backend). */
static void group_tick(rs_group *g) {
  struct raft *r = g->raft;
  int role = raft_state(r);
  if (role == RAFT_UNAVAILABLE && g->last_role != RAFT_UNAVAILABLE) g->counters.unavailable++;
  g->last_role = role;
  if (g->guard && role == RAFT_LEADER && g->noop_term != r->current_term) {
    if (propose_entry(g, kKindNoop, NULL, 0, 0) == RS_OK) {
      g->noop_term = r->current_term;
      g->counters.noops_proposed++;
    }
  }
}

void rs_group_info(rs_group *g, struct rs_info *info) {
  struct raft *r = g->raft;
  *info = g->counters;
  info->id = r->id;
  info->role = raft_state(r);
  info->term = r->current_term;
  raft_id leader_id = 0;
  const char *address = NULL;
  raft_leader(r, &leader_id, &address);
  info->leader_id = leader_id;
  info->last_index = raft_last_index(r);
  info->commit_index = r->commit_index;
  info->last_applied = raft_last_applied(r);
  info->released_index = g->released_index;
  info->held = g->nheld;
  info->ready = info->role == RAFT_LEADER && (!g->guard || g->released_term == r->current_term);
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
    if (!cb->release || !cb->snapshot || !cb->restore || !cb->done) return RS_INVALID;
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
  for (unsigned i = 0; i < n; i++) s->groups[i].last_role = raft_state(s->groups[i].raft);
  *out = s;
  return RS_OK;
}

void rs_sim_close(rs_sim *s) {
  for (unsigned i = 0; i < s->n; i++) s->groups[i].closing = 1;
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
