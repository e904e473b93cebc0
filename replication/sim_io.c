/* The crash simulator's raft_io: see sim_io.h for the model. */
#include "replication/sim_io.h"

#include <raft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Durable state ---- */

struct sio_entry {
  raft_term term;
  unsigned short type;
  size_t len;
  unsigned char *data; /* malloc */
};

struct sio_snap {
  int present;
  raft_index index;
  raft_term term;
  struct raft_configuration conf;
  raft_index conf_index;
  size_t len;
  unsigned char *data; /* malloc */
};

/* What survives a crash of one server. */
struct sio_disk {
  raft_term term;
  raft_id vote;
  raft_index start; /* index of entries[0]; with no entries, where the next one goes */
  struct sio_entry *entries;
  size_t n, cap;
  struct sio_snap snap;
};

/* ---- Events ---- */

enum { OP_TICK = 1, OP_APPEND, OP_TRUNCATE, OP_PUT, OP_GET, OP_SEND, OP_DELIVER };

struct sio_node;

struct sio_op {
  int kind;
  uint64_t time, seq;
  unsigned server;
  int cancelled; /* its incarnation ended: skipped when it fires */
  int fail;      /* a write that fails (sio_fail_write) */
  struct sio_node *node;
  struct sio_op *prev, *next; /* the incarnation's requests in flight (not ticks, deliveries) */
  /* OP_APPEND */
  struct raft_io_append *append;
  raft_index first;
  struct sio_entry *entries;
  unsigned n;
  /* OP_TRUNCATE */
  raft_index index;
  /* OP_PUT */
  struct raft_io_snapshot_put *put;
  unsigned trailing;
  struct sio_snap snap;
  /* OP_GET */
  struct raft_io_snapshot_get *get;
  /* OP_SEND */
  struct raft_io_send *send;
  int status;
  /* OP_DELIVER */
  struct raft_message msg;
  unsigned from;
  uint64_t to_incarnation;
};

/* One server's volatile part: the current incarnation's io. */
struct sio_node {
  struct raft_io io; /* first: libraft passes &io back */
  sio_world *w;
  unsigned i;
  int open, closed;
  uint64_t incarnation;
  unsigned tick_ms;
  raft_io_tick_cb tick;
  raft_io_recv_cb recv;
  struct sio_op *tick_op;
  raft_index next_index;   /* where the next append lands, after every request queued */
  unsigned fail_countdown; /* 0: no fault armed */
  int broken;              /* a write failed: every later one fails */
  uint64_t disk_free_at;   /* completion time of the last disk request queued */
  int appended;            /* an append completed in this incarnation */
  struct sio_op pending;   /* sentinel */
};

struct sio_world {
  unsigned n;
  uint64_t now, seq, rng;
  struct sio_op **heap;
  size_t nheap, capheap;
  struct sio_disk disks[SIO_MAX_SERVERS];
  struct sio_node nodes[SIO_MAX_SERVERS];
  char addresses[SIO_MAX_SERVERS][8];
  int link_down[SIO_MAX_SERVERS][SIO_MAX_SERVERS];
  unsigned drop[SIO_MAX_SERVERS][SIO_MAX_SERVERS];
  uint64_t link_free_at[SIO_MAX_SERVERS][SIO_MAX_SERVERS];
  unsigned net_ms[SIO_MAX_SERVERS], disk_ms[SIO_MAX_SERVERS];
  uint64_t incarnations;
  int mutation;
  struct sio_stats stats;
};

uint64_t sio_random(sio_world *w) { /* splitmix64 */
  uint64_t z = (w->rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static int op_before(const struct sio_op *a, const struct sio_op *b) {
  return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

static int push(sio_world *w, struct sio_op *op, uint64_t time) {
  if (w->nheap == w->capheap) {
    size_t cap = w->capheap ? 2 * w->capheap : 64;
    struct sio_op **p = realloc(w->heap, cap * sizeof *p);
    if (p == NULL) return RAFT_NOMEM;
    w->heap = p;
    w->capheap = cap;
  }
  op->time = time;
  op->seq = w->seq++;
  size_t k = w->nheap++;
  while (k > 0 && op_before(op, w->heap[(k - 1) / 2])) {
    w->heap[k] = w->heap[(k - 1) / 2];
    k = (k - 1) / 2;
  }
  w->heap[k] = op;
  return 0;
}

static struct sio_op *pop(sio_world *w) {
  if (w->nheap == 0) return NULL;
  struct sio_op *top = w->heap[0];
  struct sio_op *last = w->heap[--w->nheap];
  size_t k = 0;
  for (;;) {
    size_t c = 2 * k + 1;
    if (c >= w->nheap) break;
    if (c + 1 < w->nheap && op_before(w->heap[c + 1], w->heap[c])) c++;
    if (!op_before(w->heap[c], last)) break;
    w->heap[k] = w->heap[c];
    k = c;
  }
  if (w->nheap > 0) w->heap[k] = last;
  return top;
}

/* ---- Copies ---- */

static void free_entries(struct sio_entry *e, size_t n) {
  for (size_t k = 0; k < n; k++) free(e[k].data);
}

static void snap_clear(struct sio_snap *s) {
  if (s->present) raft_configuration_close(&s->conf);
  free(s->data);
  memset(s, 0, sizeof *s);
}

static int conf_copy(const struct raft_configuration *from, struct raft_configuration *to) {
  raft_configuration_init(to);
  for (unsigned k = 0; k < from->n; k++) {
    const struct raft_server *s = &from->servers[k];
    int rv = raft_configuration_add(to, s->id, s->address, s->role);
    if (rv != 0) {
      raft_configuration_close(to);
      return rv;
    }
  }
  return 0;
}

/* libraft's snapshot into ours (its buffers concatenated). */
static int snap_from_raft(const struct raft_snapshot *from, struct sio_snap *to) {
  memset(to, 0, sizeof *to);
  size_t len = 0;
  for (unsigned k = 0; k < from->n_bufs; k++) len += from->bufs[k].len;
  to->data = malloc(len > 0 ? len : 1);
  if (to->data == NULL) return RAFT_NOMEM;
  size_t at = 0;
  for (unsigned k = 0; k < from->n_bufs; k++) {
    if (from->bufs[k].len > 0) memcpy(to->data + at, from->bufs[k].base, from->bufs[k].len);
    at += from->bufs[k].len;
  }
  int rv = conf_copy(&from->configuration, &to->conf);
  if (rv != 0) {
    free(to->data);
    to->data = NULL;
    return rv;
  }
  to->present = 1;
  to->len = len;
  to->index = from->index;
  to->term = from->term;
  to->conf_index = from->configuration_index;
  return 0;
}

/* Ours into a libraft snapshot that libraft owns (one buffer, all from raft_malloc). */
static struct raft_snapshot *snap_to_raft(const struct sio_snap *from) {
  struct raft_snapshot *s = raft_calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  s->bufs = raft_malloc(sizeof *s->bufs);
  void *base = raft_malloc(from->len > 0 ? from->len : 1);
  if (s->bufs == NULL || base == NULL || conf_copy(&from->conf, &s->configuration) != 0) {
    raft_free(base);
    raft_free(s->bufs);
    raft_free(s);
    return NULL;
  }
  if (from->len > 0) memcpy(base, from->data, from->len);
  s->bufs[0].base = base;
  s->bufs[0].len = from->len;
  s->n_bufs = 1;
  s->index = from->index;
  s->term = from->term;
  s->configuration_index = from->conf_index;
  return s;
}

/* n entries into one raft_malloc batch and array, as libraft's receive and load paths take. */
static int entries_to_raft(const struct raft_entry *src_raft, const struct sio_entry *src_sio,
                           size_t n, struct raft_entry **out) {
  *out = NULL;
  if (n == 0) return 0;
  size_t total = 0;
  for (size_t k = 0; k < n; k++) total += src_raft ? src_raft[k].buf.len : src_sio[k].len;
  struct raft_entry *e = raft_calloc(n, sizeof *e);
  unsigned char *batch = raft_malloc(total > 0 ? total : 1);
  if (e == NULL || batch == NULL) {
    raft_free(e);
    raft_free(batch);
    return RAFT_NOMEM;
  }
  size_t at = 0;
  for (size_t k = 0; k < n; k++) {
    size_t len = src_raft ? src_raft[k].buf.len : src_sio[k].len;
    const void *data = src_raft ? src_raft[k].buf.base : src_sio[k].data;
    if (len > 0) memcpy(batch + at, data, len);
    e[k].term = src_raft ? src_raft[k].term : src_sio[k].term;
    e[k].type = src_raft ? src_raft[k].type : src_sio[k].type;
    e[k].buf.base = batch + at;
    e[k].buf.len = len;
    e[k].batch = batch;
    at += len;
  }
  *out = e;
  return 0;
}

static void free_message(struct raft_message *m) {
  if (m->type == RAFT_IO_APPEND_ENTRIES && m->append_entries.entries != NULL) {
    raft_free(m->append_entries.entries[0].batch);
    raft_free(m->append_entries.entries);
  } else if (m->type == RAFT_IO_INSTALL_SNAPSHOT) {
    raft_configuration_close(&m->install_snapshot.conf);
    raft_free(m->install_snapshot.data.base);
  }
}

static int copy_message(const struct raft_message *from, struct raft_message *to) {
  *to = *from;
  if (from->type == RAFT_IO_APPEND_ENTRIES) {
    return entries_to_raft(from->append_entries.entries, NULL, from->append_entries.n_entries,
                           &to->append_entries.entries);
  }
  if (from->type == RAFT_IO_INSTALL_SNAPSHOT) {
    const struct raft_install_snapshot *s = &from->install_snapshot;
    size_t len = s->data.len;
    to->install_snapshot.data.base = raft_malloc(len > 0 ? len : 1);
    if (to->install_snapshot.data.base == NULL) return RAFT_NOMEM;
    if (len > 0) memcpy(to->install_snapshot.data.base, s->data.base, len);
    int rv = conf_copy(&s->conf, &to->install_snapshot.conf);
    if (rv != 0) raft_free(to->install_snapshot.data.base);
    return rv;
  }
  return 0;
}

static void free_op(struct sio_op *op) {
  if (op->kind == OP_APPEND && op->entries != NULL) {
    free_entries(op->entries, op->n);
    free(op->entries);
  }
  if (op->kind == OP_PUT) snap_clear(&op->snap);
  if (op->kind == OP_DELIVER) free_message(&op->msg);
  free(op);
}

/* ---- The durable log ---- */

static raft_index disk_last(const struct sio_disk *d) { return d->start + d->n - 1; }

/* Drops the entries at and above index (all of them if index <= start). */
static void disk_cut(struct sio_disk *d, raft_index index) {
  if (index <= d->start) {
    free_entries(d->entries, d->n);
    d->n = 0;
    return;
  }
  if (index > disk_last(d)) return;
  size_t keep = (size_t)(index - d->start);
  free_entries(d->entries + keep, d->n - keep);
  d->n = keep;
}

/* Drops the entries below index. */
static void disk_compact(struct sio_disk *d, raft_index index) {
  if (index <= d->start) return;
  if (index > disk_last(d)) {
    free_entries(d->entries, d->n);
    d->n = 0;
    d->start = index;
    return;
  }
  size_t drop = (size_t)(index - d->start);
  free_entries(d->entries, drop);
  memmove(d->entries, d->entries + drop, (d->n - drop) * sizeof *d->entries);
  d->n -= drop;
  d->start = index;
}

static int disk_append(sio_world *w, struct sio_disk *d, raft_index first,
                       struct sio_entry *entries, unsigned n) {
  if (d->n == 0) {
    if (first != d->start) w->stats.model_errors++;
    d->start = first;
  } else if (first != disk_last(d) + 1) {
    w->stats.model_errors++;
    if (first < d->start || first > disk_last(d) + 1) {
      disk_cut(d, d->start);
      d->start = first;
    } else {
      disk_cut(d, first);
    }
  }
  if (d->n + n > d->cap) {
    size_t cap = d->cap ? d->cap : 64;
    while (cap < d->n + n) cap *= 2;
    struct sio_entry *p = realloc(d->entries, cap * sizeof *p);
    if (p == NULL) return RAFT_NOMEM;
    d->entries = p;
    d->cap = cap;
  }
  memcpy(d->entries + d->n, entries, n * sizeof *entries);
  d->n += n;
  return 0;
}

static void disk_put(struct sio_disk *d, struct sio_snap *snap, unsigned trailing) {
  snap_clear(&d->snap);
  d->snap = *snap;
  memset(snap, 0, sizeof *snap);
  if (trailing == 0) {
    disk_cut(d, d->start);
    d->start = d->snap.index + 1;
  } else if (d->snap.index > trailing) {
    raft_index keep_from = d->snap.index - trailing + 1;
    if (keep_from > disk_last(d) && d->snap.index + 1 > keep_from) keep_from = d->snap.index + 1;
    disk_compact(d, keep_from);
  }
}

/* ---- The io ---- */

static struct sio_node *node_of(struct raft_io *io) { return io->impl; }

static void link_pending(struct sio_node *node, struct sio_op *op) {
  op->next = &node->pending;
  op->prev = node->pending.prev;
  node->pending.prev->next = op;
  node->pending.prev = op;
}

static void unlink_pending(struct sio_op *op) {
  if (op->next == NULL) return;
  op->prev->next = op->next;
  op->next->prev = op->prev;
  op->next = op->prev = NULL;
}

static struct sio_op *new_op(struct sio_node *node, int kind) {
  struct sio_op *op = calloc(1, sizeof *op);
  if (op == NULL) return NULL;
  op->kind = kind;
  op->node = node;
  op->server = node->i;
  return op;
}

/* A write: 1 if it fails (the armed fault fires now, or the disk failed earlier). */
static int write_fails(struct sio_node *node) {
  if (node->broken) return 1;
  if (node->fail_countdown == 0) return 0;
  if (--node->fail_countdown > 0) return 0;
  node->broken = 1;
  return 1;
}

/* Queues a disk request behind the ones in flight. */
static int queue_disk(struct sio_node *node, struct sio_op *op) {
  sio_world *w = node->w;
  uint64_t at = w->now + w->disk_ms[node->i];
  if (at < node->disk_free_at) at = node->disk_free_at;
  node->disk_free_at = at;
  int rv = push(w, op, at);
  if (rv != 0) return rv;
  link_pending(node, op);
  return 0;
}

static int io_init(struct raft_io *io, raft_id id, const char *address) {
  struct sio_node *node = node_of(io);
  (void)address;
  if (id != node->i + 1) {
    snprintf(io->errmsg, sizeof io->errmsg, "sim server %u must have id %u", node->i, node->i + 1);
    return RAFT_INVALID;
  }
  return 0;
}

static void cancel_op(struct sio_op *op) {
  unlink_pending(op);
  op->cancelled = 1;
  switch (op->kind) {
    case OP_APPEND:
      op->node->w->stats.appends_cancelled++;
      /* Status 0, not RAFT_CANCELED: libraft 0.15's failure path of an append callback truncates
       * its log while later appends are in flight and crashes (see fail_appends). The instance is
       * closing (RAFT_UNAVAILABLE), so a success changes nothing but its memory, and the entries
       * never reach the durable part. */
      op->append->cb(op->append, 0);
      break;
    case OP_PUT:
      op->put->cb(op->put, RAFT_CANCELED);
      break;
    case OP_GET:
      op->get->cb(op->get, NULL, RAFT_CANCELED);
      break;
    case OP_SEND:
      op->send->cb(op->send, RAFT_CANCELED);
      break;
    default:
      break;
  }
}

/* The end of an incarnation: libraft's raft_close, which is how the simulator crashes a server.
 * Requests in flight are called back (cancel_op) and reach no durable state (but see the
 * mutations). */
static void io_close(struct raft_io *io, raft_io_close_cb cb) {
  struct sio_node *node = node_of(io);
  sio_world *w = node->w;
  struct sio_disk *d = &w->disks[node->i];
  node->closed = 1;
  if (node->tick_op != NULL) node->tick_op->cancelled = 1;
  node->tick_op = NULL;
  w->stats.crashes++;
  if (w->mutation == SIO_MUTATE_KEEP_VOLATILE) {
    /* The disk finishes every write in flight just before the crash. */
    for (struct sio_op *op = node->pending.next; op != &node->pending; op = op->next) {
      if (op->fail) continue;
      if (op->kind == OP_APPEND) {
        if (disk_append(w, d, op->first, op->entries, op->n) == 0) {
          free(op->entries);
          op->entries = NULL;
          op->n = 0;
        }
      } else if (op->kind == OP_TRUNCATE) {
        disk_cut(d, op->index);
      } else if (op->kind == OP_PUT) {
        disk_put(d, &op->snap, op->trailing);
      }
    }
  }
  if (w->mutation == SIO_MUTATE_DROP_COMPLETED && node->appended && d->n > 0) {
    disk_cut(d, disk_last(d)); /* the disk "loses" a write it had reported done */
  }
  while (node->pending.next != &node->pending) cancel_op(node->pending.next);
  if (cb != NULL) cb(io);
}

static int io_load(struct raft_io *io, raft_term *term, raft_id *voted_for,
                   struct raft_snapshot **snapshot, raft_index *start_index,
                   struct raft_entry *entries[], size_t *n_entries) {
  struct sio_node *node = node_of(io);
  struct sio_disk *d = &node->w->disks[node->i];
  *snapshot = NULL;
  *entries = NULL;
  *n_entries = 0;
  if (d->snap.present) {
    *snapshot = snap_to_raft(&d->snap);
    if (*snapshot == NULL) return RAFT_NOMEM;
  }
  int rv = entries_to_raft(NULL, d->entries, d->n, entries);
  if (rv != 0) {
    if (*snapshot != NULL) {
      raft_configuration_close(&(*snapshot)->configuration);
      raft_free((*snapshot)->bufs[0].base);
      raft_free((*snapshot)->bufs);
      raft_free(*snapshot);
      *snapshot = NULL;
    }
    return rv;
  }
  *term = d->term;
  *voted_for = d->vote;
  *start_index = d->start;
  *n_entries = d->n;
  node->next_index = d->start + d->n;
  return 0;
}

static int schedule_tick(struct sio_node *node) {
  struct sio_op *op = new_op(node, OP_TICK);
  if (op == NULL) return RAFT_NOMEM;
  int rv = push(node->w, op, node->w->now + node->tick_ms);
  if (rv != 0) {
    free(op);
    return rv;
  }
  node->tick_op = op;
  return 0;
}

static int io_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                    raft_io_recv_cb recv) {
  struct sio_node *node = node_of(io);
  node->tick_ms = msecs > 0 ? msecs : 1;
  node->tick = tick;
  node->recv = recv;
  return schedule_tick(node);
}

static int io_bootstrap(struct raft_io *io, const struct raft_configuration *conf) {
  struct sio_node *node = node_of(io);
  struct sio_disk *d = &node->w->disks[node->i];
  if (d->term != 0 || d->n > 0 || d->snap.present) return RAFT_CANTBOOTSTRAP;
  struct raft_buffer buf;
  int rv = raft_configuration_encode(conf, &buf);
  if (rv != 0) return rv;
  struct sio_entry e = {1, RAFT_CHANGE, buf.len, malloc(buf.len > 0 ? buf.len : 1)};
  if (e.data == NULL) {
    raft_free(buf.base);
    return RAFT_NOMEM;
  }
  memcpy(e.data, buf.base, buf.len);
  raft_free(buf.base);
  d->start = 1;
  rv = disk_append(node->w, d, 1, &e, 1);
  if (rv != 0) {
    free(e.data);
    return rv;
  }
  d->term = 1;
  d->vote = 0;
  node->next_index = 2;
  return 0;
}

static int io_recover(struct raft_io *io, const struct raft_configuration *conf) {
  (void)conf;
  snprintf(io->errmsg, sizeof io->errmsg, "the simulator does not recover configurations");
  return RAFT_IOERR;
}

static int io_set_term(struct raft_io *io, raft_term term) {
  struct sio_node *node = node_of(io);
  if (write_fails(node)) {
    node->w->stats.writes_failed++;
    snprintf(io->errmsg, sizeof io->errmsg, "injected I/O error (set_term)");
    return RAFT_IOERR;
  }
  node->w->disks[node->i].term = term;
  node->w->disks[node->i].vote = 0;
  return 0;
}

static int io_set_vote(struct raft_io *io, raft_id server_id) {
  struct sio_node *node = node_of(io);
  if (write_fails(node)) {
    node->w->stats.writes_failed++;
    snprintf(io->errmsg, sizeof io->errmsg, "injected I/O error (set_vote)");
    return RAFT_IOERR;
  }
  node->w->disks[node->i].vote = server_id;
  return 0;
}

static int io_send(struct raft_io *io, struct raft_io_send *req, const struct raft_message *message,
                   raft_io_send_cb cb) {
  struct sio_node *node = node_of(io);
  sio_world *w = node->w;
  req->cb = cb;
  struct sio_op *op = new_op(node, OP_SEND);
  if (op == NULL) return RAFT_NOMEM;
  op->send = req;
  unsigned to = (unsigned)(message->server_id - 1);
  /* A server whose disk failed is fenced off the network until it restarts (sim_io.h). */
  if (node->broken || message->server_id == 0 || to >= w->n || w->link_down[node->i][to] ||
      !w->nodes[to].open || w->nodes[to].closed) {
    op->status = RAFT_NOCONNECTION;
  } else if (w->drop[node->i][to] > 0 && sio_random(w) % 100 < w->drop[node->i][to]) {
    w->stats.messages_dropped++; /* sent, and lost on the way */
  } else {
    struct sio_op *d = new_op(node, OP_DELIVER);
    if (d == NULL || copy_message(message, &d->msg) != 0) {
      free(d);
      free(op);
      return RAFT_NOMEM;
    }
    d->from = node->i;
    d->server = to;
    d->to_incarnation = w->nodes[to].incarnation;
    d->node = NULL;
    uint64_t at = w->now + w->net_ms[node->i];
    if (at < w->link_free_at[node->i][to]) at = w->link_free_at[node->i][to];
    w->link_free_at[node->i][to] = at;
    if (push(w, d, at) != 0) {
      free_op(d);
      free(op);
      return RAFT_NOMEM;
    }
    w->stats.messages_sent++;
  }
  if (push(w, op, w->now) != 0) {
    free(op);
    return RAFT_NOMEM;
  }
  link_pending(node, op);
  return 0;
}

static int io_append(struct raft_io *io, struct raft_io_append *req,
                     const struct raft_entry entries[], unsigned n, raft_io_append_cb cb) {
  struct sio_node *node = node_of(io);
  req->cb = cb;
  struct sio_op *op = new_op(node, OP_APPEND);
  struct sio_entry *copy = calloc(n > 0 ? n : 1, sizeof *copy);
  if (op == NULL || copy == NULL) {
    free(op);
    free(copy);
    return RAFT_NOMEM;
  }
  for (unsigned k = 0; k < n; k++) {
    copy[k].term = entries[k].term;
    copy[k].type = entries[k].type;
    copy[k].len = entries[k].buf.len;
    copy[k].data = malloc(copy[k].len > 0 ? copy[k].len : 1);
    if (copy[k].data == NULL) {
      free_entries(copy, k);
      free(copy);
      free(op);
      return RAFT_NOMEM;
    }
    if (copy[k].len > 0) memcpy(copy[k].data, entries[k].buf.base, copy[k].len);
  }
  op->append = req;
  op->entries = copy;
  op->n = n;
  op->first = node->next_index;
  op->fail = write_fails(node);
  int rv = queue_disk(node, op);
  if (rv != 0) {
    free_op(op);
    return rv;
  }
  node->next_index += n;
  return 0;
}

static int io_truncate(struct raft_io *io, raft_index index) {
  struct sio_node *node = node_of(io);
  struct sio_op *op = new_op(node, OP_TRUNCATE);
  if (op == NULL) return RAFT_NOMEM;
  op->index = index;
  int rv = queue_disk(node, op);
  if (rv != 0) {
    free(op);
    return rv;
  }
  node->next_index = index;
  return 0;
}

static int io_snapshot_put(struct raft_io *io, unsigned trailing, struct raft_io_snapshot_put *req,
                           const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb) {
  struct sio_node *node = node_of(io);
  req->cb = cb;
  struct sio_op *op = new_op(node, OP_PUT);
  if (op == NULL) return RAFT_NOMEM;
  op->kind = 0; /* nothing to free until the copy exists */
  int rv = snap_from_raft(snapshot, &op->snap);
  if (rv != 0) {
    free(op);
    return rv;
  }
  op->kind = OP_PUT;
  op->put = req;
  op->trailing = trailing;
  op->fail = write_fails(node);
  rv = queue_disk(node, op);
  if (rv != 0) {
    free_op(op);
    return rv;
  }
  if (trailing == 0) node->next_index = snapshot->index + 1;
  return 0;
}

static int io_snapshot_get(struct raft_io *io, struct raft_io_snapshot_get *req,
                           raft_io_snapshot_get_cb cb) {
  struct sio_node *node = node_of(io);
  req->cb = cb;
  struct sio_op *op = new_op(node, OP_GET);
  if (op == NULL) return RAFT_NOMEM;
  op->get = req;
  int rv = queue_disk(node, op);
  if (rv != 0) free(op);
  return rv;
}

static raft_time io_time(struct raft_io *io) { return node_of(io)->w->now; }

static int io_random(struct raft_io *io, int min, int max) {
  if (max <= min) return min;
  return min + (int)(sio_random(node_of(io)->w) % (uint64_t)(max - min));
}

/* A failed append, and the failing appends queued right behind it (a failed disk fails them
 * all), are reported last first. libraft 0.15's leader truncates its in-memory log from a failed
 * append's index while the appends behind it are still in flight, and then crashes releasing
 * them (NULL dereference in its log's reference counts; the fixture's ASan double free is of the
 * same path): reported last first, no append lies beyond the one being failed. */
static void fail_appends(sio_world *w, struct sio_op *op) {
  size_t n = 0;
  for (struct sio_op *o = op; o != &op->node->pending && o->kind == OP_APPEND && o->fail;
       o = o->next) {
    n++;
  }
  struct sio_op **run = malloc(n * sizeof *run);
  if (run == NULL) abort(); /* out of memory in a test */
  struct sio_op *o = op;
  for (size_t k = 0; k < n; k++, o = o->next) run[k] = o;
  for (size_t k = 0; k < n; k++) {
    unlink_pending(run[k]);
    if (run[k] != op) run[k]->cancelled = 1; /* its own event is skipped when it fires */
  }
  for (size_t k = n; k-- > 0;) {
    w->stats.writes_failed++;
    run[k]->append->cb(run[k]->append, RAFT_IOERR);
  }
  free(run);
}

/* ---- Firing events ---- */

static void fire(sio_world *w, struct sio_op *op) {
  struct sio_node *node = op->node;
  struct sio_disk *d = &w->disks[op->server];
  if (op->kind == OP_APPEND && op->fail) {
    fail_appends(w, op);
    return;
  }
  if (op->kind != OP_DELIVER && op->kind != OP_TICK) unlink_pending(op);
  switch (op->kind) {
    case OP_TICK:
      node->tick_op = NULL;
      if (schedule_tick(node) != 0) abort(); /* out of memory in a test */
      node->tick(&node->io);
      break;
    case OP_APPEND:
      if (disk_append(w, d, op->first, op->entries, op->n) != 0) abort();
      free(op->entries);
      op->entries = NULL;
      op->n = 0;
      node->appended = 1;
      w->stats.appends_completed++;
      op->append->cb(op->append, 0);
      break;
    case OP_TRUNCATE:
      if (op->index < d->start && d->n > 0) w->stats.model_errors++;
      disk_cut(d, op->index);
      break;
    case OP_PUT:
      if (op->fail) {
        w->stats.writes_failed++;
        op->put->cb(op->put, RAFT_IOERR);
        break;
      }
      disk_put(d, &op->snap, op->trailing);
      w->stats.snapshots_put++;
      op->put->cb(op->put, 0);
      break;
    case OP_GET: {
      struct raft_snapshot *s = d->snap.present ? snap_to_raft(&d->snap) : NULL;
      op->get->cb(op->get, s, s != NULL ? 0 : RAFT_NOTFOUND);
      break;
    }
    case OP_SEND:
      op->send->cb(op->send, op->status);
      break;
    case OP_DELIVER: {
      struct sio_node *to = &w->nodes[op->server];
      if (!to->open || to->closed || to->recv == NULL || to->incarnation != op->to_incarnation) {
        w->stats.messages_lost++;
        break;
      }
      op->msg.server_id = op->from + 1;
      op->msg.server_address = w->addresses[op->from];
      to->recv(&to->io, &op->msg);
      op->kind = 0; /* the receiver owns the message's memory now */
      break;
    }
  }
}

int sio_step(sio_world *w) {
  for (;;) {
    struct sio_op *op = pop(w);
    if (op == NULL) return -1;
    if (op->cancelled) {
      free_op(op);
      continue;
    }
    if (op->time > w->now) w->now = op->time;
    int server = (int)op->server;
    fire(w, op);
    free_op(op);
    return server;
  }
}

int sio_next_time(sio_world *w, uint64_t *t) {
  while (w->nheap > 0 && w->heap[0]->cancelled) free_op(pop(w));
  if (w->nheap == 0) return 0;
  *t = w->heap[0]->time;
  return 1;
}

void sio_advance(sio_world *w, uint64_t t) {
  if (t > w->now) w->now = t;
}

/* ---- The world ---- */

sio_world *sio_world_open(unsigned n, uint64_t seed) {
  if (n == 0 || n > SIO_MAX_SERVERS) return NULL;
  sio_world *w = calloc(1, sizeof *w);
  if (w == NULL) return NULL;
  w->n = n;
  w->rng = seed * 0x9E3779B97F4A7C15ull + 0x5851F42D4C957F2Dull;
  for (unsigned i = 0; i < n; i++) {
    snprintf(w->addresses[i], sizeof w->addresses[i], "sim%u", i + 1);
    w->disks[i].start = 1;
    w->net_ms[i] = 15;
    w->disk_ms[i] = 10;
  }
  return w;
}

void sio_world_close(sio_world *w) {
  struct sio_op *op;
  while ((op = pop(w)) != NULL) free_op(op);
  free(w->heap);
  for (unsigned i = 0; i < w->n; i++) {
    struct sio_disk *d = &w->disks[i];
    free_entries(d->entries, d->n);
    free(d->entries);
    snap_clear(&d->snap);
  }
  free(w);
}

uint64_t sio_now(sio_world *w) { return w->now; }

struct raft_io *sio_io_open(sio_world *w, unsigned i) {
  if (i >= w->n || w->nodes[i].open) return NULL;
  struct sio_node *node = &w->nodes[i];
  memset(node, 0, sizeof *node);
  node->w = w;
  node->i = i;
  node->open = 1;
  node->incarnation = ++w->incarnations;
  node->pending.next = node->pending.prev = &node->pending;
  node->next_index = w->disks[i].start + w->disks[i].n;
  struct raft_io *io = &node->io;
  io->version = 1;
  io->impl = node;
  io->init = io_init;
  io->close = io_close;
  io->load = io_load;
  io->start = io_start;
  io->bootstrap = io_bootstrap;
  io->recover = io_recover;
  io->set_term = io_set_term;
  io->set_vote = io_set_vote;
  io->send = io_send;
  io->append = io_append;
  io->truncate = io_truncate;
  io->snapshot_put = io_snapshot_put;
  io->snapshot_get = io_snapshot_get;
  io->time = io_time;
  io->random = io_random;
  return io;
}

void sio_io_free(sio_world *w, unsigned i) {
  if (i < w->n) w->nodes[i].open = 0;
}

void sio_link(sio_world *w, unsigned from, unsigned to, int up) {
  if (from < w->n && to < w->n) w->link_down[from][to] = !up;
}
void sio_drop(sio_world *w, unsigned from, unsigned to, unsigned percent) {
  if (from < w->n && to < w->n) w->drop[from][to] = percent > 100 ? 100 : percent;
}
void sio_latency(sio_world *w, unsigned i, unsigned network_ms, unsigned disk_ms) {
  if (i >= w->n) return;
  w->net_ms[i] = network_ms;
  w->disk_ms[i] = disk_ms;
}
void sio_fail_write(sio_world *w, unsigned i, unsigned n) {
  if (i < w->n && w->nodes[i].open && n > 0) w->nodes[i].fail_countdown = n;
}
void sio_set_mutation(sio_world *w, int mutation) { w->mutation = mutation; }
void sio_stats(sio_world *w, struct sio_stats *out) { *out = w->stats; }

uint64_t sio_durable_last_index(sio_world *w, unsigned i) {
  return i < w->n ? disk_last(&w->disks[i]) : 0;
}
uint64_t sio_durable_term(sio_world *w, unsigned i) { return i < w->n ? w->disks[i].term : 0; }
