/* The link filter of the rs_uv backend (raft_shim.h, "link filter"; uv_link_filter.h): a
 * process-wide table of blocked (server, peer, direction) links, and the cut of the connections
 * on a link that becomes blocked. TEST ONLY: empty without SHARDTX_KILL_POINTS. */
#include "replication/uv_link_filter.h"

#include "replication/raft_shim.h"

#ifdef SHARDTX_KILL_POINTS

#include <pthread.h>
#include <string.h>
#include <sys/socket.h>

enum { LF_MAX_LINKS = 64 };

struct lf_link {
  uint64_t self, peer;
  int blocked; /* RS_LINK_* bits */
};

static pthread_mutex_t lf_mu = PTHREAD_MUTEX_INITIALIZER;
/* Guarded by lf_mu. */
static struct lf_link lf_links[LF_MAX_LINKS];
static unsigned lf_n_links;
static struct lf_group *lf_groups;
/* lf_n_links, readable without the lock: 0 means nothing is blocked. */
static atomic_uint lf_active;
static atomic_ullong lf_refused_connects, lf_refused_accepts, lf_cut_streams;

int lf_blocked(uint64_t self, uint64_t peer, int dir) {
  if (atomic_load_explicit(&lf_active, memory_order_relaxed) == 0) return 0;
  int blocked = 0;
  pthread_mutex_lock(&lf_mu);
  for (unsigned i = 0; i < lf_n_links; i++) {
    if (lf_links[i].self == self && lf_links[i].peer == peer) {
      blocked = (lf_links[i].blocked & dir) != 0;
      break;
    }
  }
  pthread_mutex_unlock(&lf_mu);
  return blocked;
}

void lf_count_refused(int dir) {
  atomic_fetch_add(dir == RS_LINK_OUT ? &lf_refused_connects : &lf_refused_accepts, 1);
}

/* The descriptor's 4-tuple into s's fields; 0 on success. */
static int tuple_of(int fd, struct lf_stream *s) {
  memset(&s->local, 0, sizeof s->local);
  memset(&s->remote, 0, sizeof s->remote);
  s->local_len = sizeof s->local;
  s->remote_len = sizeof s->remote;
  if (getsockname(fd, (struct sockaddr *)&s->local, &s->local_len) != 0) return -1;
  if (getpeername(fd, (struct sockaddr *)&s->remote, &s->remote_len) != 0) return -1;
  return 0;
}

/* Non-zero if the recorded descriptor is still the connection recorded. */
static int still_ours(const struct lf_stream *s) {
  struct lf_stream now;
  if (tuple_of(s->fd, &now) != 0) return 0;
  return now.local_len == s->local_len && now.remote_len == s->remote_len &&
         memcmp(&now.local, &s->local, s->local_len) == 0 &&
         memcmp(&now.remote, &s->remote, s->remote_len) == 0;
}

/* Keeps the records for which keep() says so, in order. */
static void prune(struct lf_group *g, int (*keep)(struct lf_group *, struct lf_stream *)) {
  unsigned out = 0;
  for (unsigned i = 0; i < g->n_streams; i++) {
    if (keep(g, &g->streams[i])) g->streams[out++] = g->streams[i];
  }
  g->n_streams = out;
}

static int keep_if_ours(struct lf_group *g, struct lf_stream *s) {
  (void)g;
  return still_ours(s);
}

/* Shuts down a live connection on a blocked link (and forgets it); keeps the other live ones. */
static int keep_unless_cut(struct lf_group *g, struct lf_stream *s) {
  if (!still_ours(s)) return 0;
  if (!lf_blocked(g->self, s->peer, s->dir)) return 1;
  /* raft_uv owns the stream: never closed here, only shut down; its next read sees the end and
   * its next write fails, and it closes the stream and (outbound) reconnects later. */
  if (shutdown(s->fd, SHUT_RDWR) == 0) atomic_fetch_add(&lf_cut_streams, 1);
  return 0;
}

void lf_note(struct lf_group *g, uint64_t peer, int dir, int fd) {
  struct lf_stream s;
  if (fd < 0 || tuple_of(fd, &s) != 0) return;
  s.peer = peer;
  s.dir = dir;
  s.fd = fd;
  prune(g, keep_if_ours);
  if (g->n_streams == LF_MAX_STREAMS) { /* cannot happen with <= 16 peers: drop the oldest */
    memmove(&g->streams[0], &g->streams[1], (LF_MAX_STREAMS - 1) * sizeof s);
    g->n_streams--;
  }
  g->streams[g->n_streams++] = s;
}

void lf_cut_if_pending(struct lf_group *g) {
  if (atomic_exchange(&g->cut_pending, 0) == 0) return;
  prune(g, keep_unless_cut);
}

void lf_register(struct lf_group *g) {
  pthread_mutex_lock(&lf_mu);
  g->next = lf_groups;
  lf_groups = g;
  pthread_mutex_unlock(&lf_mu);
}

void lf_unregister(struct lf_group *g) {
  pthread_mutex_lock(&lf_mu);
  for (struct lf_group **p = &lf_groups; *p != NULL; p = &(*p)->next) {
    if (*p == g) {
      *p = g->next;
      break;
    }
  }
  pthread_mutex_unlock(&lf_mu);
}

int rs_link_block(uint64_t self, uint64_t peer, int dirs, int blocked) {
  dirs &= RS_LINK_OUT | RS_LINK_IN;
  int rv = RS_OK;
  pthread_mutex_lock(&lf_mu);
  unsigned i = 0;
  while (i < lf_n_links && !(lf_links[i].self == self && lf_links[i].peer == peer)) i++;
  if (i == lf_n_links && blocked && dirs != 0) {
    if (lf_n_links < LF_MAX_LINKS) {
      lf_links[lf_n_links++] = (struct lf_link){self, peer, 0};
    } else {
      rv = RS_NOMEM;
    }
  }
  if (i < lf_n_links) {
    lf_links[i].blocked = blocked ? (lf_links[i].blocked | dirs) : (lf_links[i].blocked & ~dirs);
    if (lf_links[i].blocked == 0) lf_links[i] = lf_links[--lf_n_links];
  }
  atomic_store(&lf_active, lf_n_links);
  /* Every group of self cuts what is now blocked, on its loop thread. */
  if (blocked && dirs != 0 && rv == RS_OK) {
    for (struct lf_group *g = lf_groups; g != NULL; g = g->next) {
      if (g->self != self) continue;
      atomic_store(&g->cut_pending, 1);
      g->wake(g->wake_ctx);
    }
  }
  pthread_mutex_unlock(&lf_mu);
  return rv;
}

void rs_link_clear(void) {
  pthread_mutex_lock(&lf_mu);
  lf_n_links = 0;
  atomic_store(&lf_active, 0);
  pthread_mutex_unlock(&lf_mu);
}

void rs_link_counters(struct rs_link_counters *out) {
  out->refused_connects = atomic_load(&lf_refused_connects);
  out->refused_accepts = atomic_load(&lf_refused_accepts);
  out->cut_streams = atomic_load(&lf_cut_streams);
}

#else /* the shipped library: no filter */

int rs_link_block(uint64_t self, uint64_t peer, int dirs, int blocked) {
  (void)self;
  (void)peer;
  (void)dirs;
  (void)blocked;
  return RS_INVALID;
}
void rs_link_clear(void) {}
void rs_link_counters(struct rs_link_counters *out) {
  out->refused_connects = out->refused_accepts = out->cut_streams = 0;
}

#endif /* SHARDTX_KILL_POINTS */
