/* The rs_uv backend's side of the link filter (raft_shim.h, "link filter"): what raft_shim.c's
 * transport wrapper asks and records. C only; included by raft_shim.c and uv_link_filter.c.
 * Without SHARDTX_KILL_POINTS (the shipped library) every function here is an empty inline and
 * struct lf_group holds only the server id. */
#ifndef SHARDTX_REPLICATION_UV_LINK_FILTER_H_
#define SHARDTX_REPLICATION_UV_LINK_FILTER_H_

#include <stdint.h>

#ifdef SHARDTX_KILL_POINTS
#include <stdatomic.h>
#include <sys/socket.h>

/* A connection raft_uv holds: its peer, direction (RS_LINK_*), file descriptor and 4-tuple. The
 * descriptor is raft_uv's, which may close it (and the number be reused) at any time: a record
 * is trusted only while the descriptor still has the same 4-tuple. */
struct lf_stream {
  uint64_t peer;
  int dir;
  int fd;
  struct sockaddr_storage local, remote;
  socklen_t local_len, remote_len;
};
enum { LF_MAX_STREAMS = 32 };

/* One rs_uv group's part: embedded in it. */
struct lf_group {
  uint64_t self;                /* the group's server id */
  void (*wake)(void *wake_ctx); /* asks the loop thread to run lf_cut_if_pending; any thread */
  void *wake_ctx;
  struct lf_group *next; /* the registry, under the filter's lock */
  atomic_int cut_pending;
  /* Loop thread only. */
  struct lf_stream streams[LF_MAX_STREAMS];
  unsigned n_streams;
};

/* Non-zero if self's link with peer is blocked in direction dir (RS_LINK_OUT or RS_LINK_IN).
 * One relaxed atomic load while nothing is blocked. Any thread. */
int lf_blocked(uint64_t self, uint64_t peer, int dir);
/* Counts a connection refused (dir RS_LINK_OUT: made; RS_LINK_IN: accepted). */
void lf_count_refused(int dir);
/* Loop thread: records a connection handed to raft_uv (fd: its descriptor). */
void lf_note(struct lf_group *g, uint64_t peer, int dir, int fd);
/* Loop thread: if a link of this group became blocked, shuts down its recorded connections. */
void lf_cut_if_pending(struct lf_group *g);
/* Adds the group to (removes it from) the groups told when a link becomes blocked. After
 * lf_unregister returns, g->wake is not called again. */
void lf_register(struct lf_group *g);
void lf_unregister(struct lf_group *g);

#else

struct lf_group {
  uint64_t self;
};
static inline int lf_blocked(uint64_t self, uint64_t peer, int dir) {
  (void)self;
  (void)peer;
  (void)dir;
  return 0;
}
static inline void lf_count_refused(int dir) { (void)dir; }
static inline void lf_note(struct lf_group *g, uint64_t peer, int dir, int fd) {
  (void)g;
  (void)peer;
  (void)dir;
  (void)fd;
}
static inline void lf_cut_if_pending(struct lf_group *g) { (void)g; }
static inline void lf_register(struct lf_group *g) { (void)g; }
static inline void lf_unregister(struct lf_group *g) { (void)g; }

#endif /* SHARDTX_KILL_POINTS */

#endif /* SHARDTX_REPLICATION_UV_LINK_FILTER_H_ */
