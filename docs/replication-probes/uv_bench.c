#define _GNU_SOURCE
/* Three libraft 0.15 nodes (raft_uv + TCP on 127.0.0.1), one process each.
 * The node that wins the election commits a barrier, then runs the workload:
 *   uv_bench lat  <n> <size>          one client: raft_apply, wait, repeat; each apply is
 *                                     paired with one pwrite+fdatasync "floor" sample
 *   uv_bench tput <n> <size> <conc>   <conc> applies always in flight
 *   uv_bench kill <n> <size>          leader applies n, then the parent SIGKILLs it; the
 *                                     survivors report the failover (SIGPIPE not ignored
 *                                     unless IGNPIPE=1 is set)
 * Data in /tmp/raft/data/nodeI (fresh every run), ports 127.0.0.1:9001..9003. */
#include <raft.h>
#include <raft/uv.h>
#include <uv.h>
#include <assert.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double nowUs(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
static int cmpd(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }

static const char *mode;
static unsigned n_total, size, conc;
static unsigned id;
static uv_loop_t loop;
static struct raft raft;
static struct raft_io io;
static struct raft_uv_transport transport;
static struct raft_fsm fsm;
static uint64_t applied;
static uv_timer_t timer;
static int running;         /* workload started */
static unsigned submitted, completed, failed;
static double *lat, *floor_us, t_start;
static int floor_fd = -1;
static uint64_t floor_off;
static double t_lost_leader;  /* kill mode: when the survivors noticed */
static raft_id first_leader;

/* A raft_io that forwards to raft_uv and counts: the seam for stats and test faults. */
static struct raft_io outer;
static unsigned long long n_append_calls, n_append_entries, n_send_calls, n_dropped;
static int drop_to;  /* test fault: drop every message to this server id */
#define INNER(io) ((struct raft_io *)(io)->impl)
static int wInit(struct raft_io *io, raft_id id, const char *a) { INNER(io)->data = io->data; return INNER(io)->init(INNER(io), id, a); }
static void wClose(struct raft_io *io, raft_io_close_cb cb) { INNER(io)->close(INNER(io), cb); }
static int wLoad(struct raft_io *io, raft_term *t, raft_id *v, struct raft_snapshot **s, raft_index *si, struct raft_entry *e[], size_t *n) {
  return INNER(io)->load(INNER(io), t, v, s, si, e, n); }
static int wStart(struct raft_io *io, unsigned ms, raft_io_tick_cb tick, raft_io_recv_cb recv) {
  INNER(io)->data = io->data;  /* libraft's callbacks find their raft through io->data */
  return INNER(io)->start(INNER(io), ms, tick, recv); }
static int wBootstrap(struct raft_io *io, const struct raft_configuration *c) { return INNER(io)->bootstrap(INNER(io), c); }
static int wRecover(struct raft_io *io, const struct raft_configuration *c) { return INNER(io)->recover(INNER(io), c); }
static int wSetTerm(struct raft_io *io, raft_term t) { return INNER(io)->set_term(INNER(io), t); }
static int wSetVote(struct raft_io *io, raft_id v) { return INNER(io)->set_vote(INNER(io), v); }
static int wSend(struct raft_io *io, struct raft_io_send *req, const struct raft_message *m, raft_io_send_cb cb) {
  n_send_calls++;
  if (drop_to && m->server_id == (raft_id)drop_to) { n_dropped++; return RAFT_NOCONNECTION; }
  return INNER(io)->send(INNER(io), req, m, cb); }
static int wAppend(struct raft_io *io, struct raft_io_append *req, const struct raft_entry e[], unsigned n, raft_io_append_cb cb) {
  n_append_calls++; n_append_entries += n; return INNER(io)->append(INNER(io), req, e, n, cb); }
static int wTruncate(struct raft_io *io, raft_index i) { return INNER(io)->truncate(INNER(io), i); }
static int wSnapPut(struct raft_io *io, unsigned tr, struct raft_io_snapshot_put *req, const struct raft_snapshot *s, raft_io_snapshot_put_cb cb) {
  return INNER(io)->snapshot_put(INNER(io), tr, req, s, cb); }
static int wSnapGet(struct raft_io *io, struct raft_io_snapshot_get *req, raft_io_snapshot_get_cb cb) { return INNER(io)->snapshot_get(INNER(io), req, cb); }
static raft_time wTime(struct raft_io *io) { return INNER(io)->time(INNER(io)); }
static int wRandom(struct raft_io *io, int a, int b) { return INNER(io)->random(INNER(io), a, b); }
static void wrap(struct raft_io *o, struct raft_io *inner) {
  memset(o, 0, sizeof *o);
  o->version = 1; o->impl = inner;
  o->init = wInit; o->close = wClose; o->load = wLoad; o->start = wStart; o->bootstrap = wBootstrap;
  o->recover = wRecover; o->set_term = wSetTerm; o->set_vote = wSetVote; o->send = wSend; o->append = wAppend;
  o->truncate = wTruncate; o->snapshot_put = wSnapPut; o->snapshot_get = wSnapGet; o->time = wTime; o->random = wRandom;
}

/* A raft_uv_transport around raft_uv_tcp that sets TCP_NODELAY on every stream
 * (raft_uv 0.15 sets only SO_REUSEADDR: Nagle + delayed ACK stall multi-KB messages). */
static struct raft_uv_transport nd_outer;
struct ndConnect { struct raft_uv_connect req; struct raft_uv_connect *orig; raft_uv_connect_cb cb; };
static raft_uv_accept_cb nd_accept;
static int ndInit(struct raft_uv_transport *t, raft_id id, const char *a) { struct raft_uv_transport *in = t->impl; return in->init(in, id, a); }
static void ndAccept(struct raft_uv_transport *in, raft_id id, const char *a, struct uv_stream_s *s) {
  (void)in; uv_tcp_nodelay((uv_tcp_t *)s, 1); nd_accept(&nd_outer, id, a, s); }
static int ndListen(struct raft_uv_transport *t, raft_uv_accept_cb cb) { struct raft_uv_transport *in = t->impl; nd_accept = cb; return in->listen(in, ndAccept); }
static void ndConnected(struct raft_uv_connect *req, struct uv_stream_s *s, int status) {
  struct ndConnect *c = (struct ndConnect *)req;
  if (status == 0) uv_tcp_nodelay((uv_tcp_t *)s, 1);
  c->cb(c->orig, s, status); free(c); }
static int ndConnect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id, const char *a, raft_uv_connect_cb cb) {
  struct raft_uv_transport *in = t->impl; struct ndConnect *c = calloc(1, sizeof *c); c->orig = req; c->cb = cb;
  int rv = in->connect(in, &c->req, id, a, ndConnected); if (rv) free(c); return rv; }
static void (*nd_close_cb)(struct raft_uv_transport *);
static void ndClosed(struct raft_uv_transport *in) { (void)in; if (nd_close_cb) nd_close_cb(&nd_outer); }
static void ndClose(struct raft_uv_transport *t, raft_uv_transport_close_cb cb) { struct raft_uv_transport *in = t->impl; nd_close_cb = cb; in->close(in, ndClosed); }
static struct raft_uv_transport *nodelay(struct raft_uv_transport *in) {
  memset(&nd_outer, 0, sizeof nd_outer); nd_outer.impl = in; in->data = &nd_outer;
  nd_outer.init = ndInit; nd_outer.listen = ndListen; nd_outer.connect = ndConnect; nd_outer.close = ndClose;
  return &nd_outer; }

static int fsmApply(struct raft_fsm *f, const struct raft_buffer *buf, void **result) {
  (void)f; (void)buf; applied++; *result = NULL; return 0; }
static int fsmSnapshot(struct raft_fsm *f, struct raft_buffer *bufs[], unsigned *n) {
  (void)f; *bufs = raft_malloc(sizeof **bufs); (*bufs)[0].len = 8;
  (*bufs)[0].base = raft_malloc(8); memcpy((*bufs)[0].base, &applied, 8); *n = 1; return 0; }
static int fsmRestore(struct raft_fsm *f, struct raft_buffer *buf) {
  (void)f; memcpy(&applied, buf->base, 8); raft_free(buf->base); return 0; }

static double floorSample(void) {
  static char b[160];
  double t0 = nowUs();
  if (pwrite(floor_fd, b, sizeof b, (off_t)floor_off) != (ssize_t)sizeof b || fdatasync(floor_fd) != 0) return -1;
  floor_off += sizeof b;
  return nowUs() - t0;
}

/* Durable-write batches, seen from outside: a loop iteration in which raft.last_stored
 * (public field) moved is one completed write (raft_uv completes a coalesced write's
 * requests together). */
static uv_check_t check;
static raft_index prev_stored; static unsigned long long write_batches, stored_entries;
static volatile sig_atomic_t term_flag;
static void onCheck(uv_check_t *c) {
  (void)c;
  if (raft.last_stored > prev_stored) { if (prev_stored) { write_batches++; stored_entries += raft.last_stored - prev_stored; } prev_stored = raft.last_stored; }
  else if (raft.last_stored < prev_stored) prev_stored = raft.last_stored;
}
static void printStored(const char *who) {
  printf("node %u (%s): %llu entries made durable in %llu write completions: %.1f entries per durable write\n",
         id, who, stored_entries, write_batches, write_batches ? (double)stored_entries / write_batches : 0.0);
}
static void onTermSig(int s) { (void)s; term_flag = 1; }
struct req { struct raft_apply a; double t0; };
static void submitOne(void);
static void finish(void);
static void applyCb(struct raft_apply *a, int status, void *result) {
  (void)result;
  struct req *r = a->data;
  if (status != 0) { failed++; fprintf(stderr, "node %u: apply status %d %s\n", id, status, raft_strerror(status)); }
  else lat[completed] = nowUs() - r->t0;
  completed++;
  free(r);
  if (completed == n_total) { finish(); return; }
  if (!strcmp(mode, "lat")) floor_us[completed - 1] = floorSample();
  if (submitted < n_total) submitOne();
}
static void submitOne(void) {
  struct req *r = malloc(sizeof *r);
  r->a.data = r;
  struct raft_buffer buf = {raft_malloc(size), size};
  memset(buf.base, (int)submitted, size);
  r->t0 = nowUs();
  int rv = raft_apply(&raft, &r->a, &buf, 1, applyCb);
  if (rv != 0) { fprintf(stderr, "node %u: raft_apply: %s\n", id, raft_strerror(rv)); exit(2); }
  submitted++;
}
static void finish(void) {
  double secs = (nowUs() - t_start) / 1e6;
  qsort(lat, n_total, sizeof *lat, cmpd);
  printf("node %u leader: mode %s n %u size %u conc %u: %.0f applies/s, latency p50 %.0f us p90 %.0f us p99 %.0f us, failed %u\n",
         id, mode, n_total, size, conc, n_total / secs, lat[n_total / 2], lat[n_total * 9 / 10], lat[n_total * 99 / 100], failed);
  if (!strcmp(mode, "lat")) {
    qsort(floor_us, n_total - 1, sizeof *floor_us, cmpd);
    printf("node %u: paired fdatasync floor p50 %.0f us p90 %.0f us -> commit p50 / floor p50 = %.2f\n",
           id, floor_us[(n_total - 1) / 2], floor_us[(n_total - 1) * 9 / 10], lat[n_total / 2] / floor_us[(n_total - 1) / 2]);
  }
  if (getenv("WRAP")) printf("node %u (leader) raft_io wrapper: %llu append requests, %llu entries, %.1f entries per append; %llu sends\n",
                             id, n_append_calls, n_append_entries, (double)n_append_entries / n_append_calls, n_send_calls);
  printStored("leader");
  fflush(stdout);
  if (!strcmp(mode, "kill")) { printf("node %u: waiting to be killed\n", id); fflush(stdout); return; }
  _exit(0);
}
struct bar { struct raft_barrier b; double t0; };
static void barrierCb(struct raft_barrier *b, int status) {
  struct bar *x = b->data;
  printf("node %u: barrier after election: status %d, %.0f us\n", id, status, nowUs() - x->t0);
  fflush(stdout);
  free(x);
  if (status != 0 || running) return;
  running = 1;
  t_start = nowUs();
  if (!strcmp(mode, "kill") && first_leader != 0 && first_leader != id) {
    printf("node %u: new leader, barrier committed at monotonic %.1f ms (%.0f ms after this node saw no leader)\n", id, nowUs() / 1e3, (nowUs() - t_lost_leader) / 1e3);
    fflush(stdout);
    _exit(0);
  }
  unsigned c = !strcmp(mode, "tput") ? conc : 1;
  for (unsigned i = 0; i < c && submitted < n_total; i++) submitOne();
}
static void tick(uv_timer_t *t) {
  (void)t;
  if (term_flag) { if (getenv("STORED")) printStored("follower"); fflush(stdout); _exit(0); }
  raft_id lid; const char *addr;
  raft_leader(&raft, &lid, &addr);
  if (first_leader == 0 && lid != 0) first_leader = lid;
  if (lid == 0 && first_leader != 0 && t_lost_leader == 0) t_lost_leader = nowUs();
  if (raft_state(&raft) == RAFT_LEADER && !running) {
    static int asked;
    if (!asked) {
      asked = 1;
      struct bar *b = malloc(sizeof *b); b->b.data = b; b->t0 = nowUs();
      int rv = raft_barrier(&raft, &b->b, barrierCb);
      if (rv) { fprintf(stderr, "barrier: %s\n", raft_strerror(rv)); asked = 0; free(b); }
    }
  }
}

static int runNode(unsigned i) {
  char dir[128], addr[64];
  id = i;
  snprintf(dir, sizeof dir, "/tmp/raft/data/node%u", i);
  snprintf(addr, sizeof addr, "127.0.0.1:%u", 9000 + i);
  if (getenv("IGNPIPE")) signal(SIGPIPE, SIG_IGN);
  uv_loop_init(&loop);
  int rv = raft_uv_tcp_init(&transport, &loop); assert(rv == 0);
  rv = raft_uv_init(&io, &loop, dir, getenv("NODELAY") ? nodelay(&transport) : &transport);
  if (rv) { fprintf(stderr, "raft_uv_init: %d %s\n", rv, io.errmsg); return 1; }
  fsm.version = 1; fsm.apply = fsmApply; fsm.snapshot = fsmSnapshot; fsm.restore = fsmRestore;
  struct raft_io *use = &io;
  if (getenv("WRAP")) { wrap(&outer, &io); use = &outer; }
  rv = raft_init(&raft, use, &fsm, i, addr);
  if (rv) { fprintf(stderr, "raft_init: %s\n", raft_errmsg(&raft)); return 1; }
  struct raft_configuration conf;
  raft_configuration_init(&conf);
  for (unsigned j = 1; j <= 3; j++) {
    char a[64]; snprintf(a, sizeof a, "127.0.0.1:%u", 9000 + j);
    raft_configuration_add(&conf, j, a, RAFT_VOTER);
  }
  rv = raft_bootstrap(&raft, &conf);
  if (rv) { fprintf(stderr, "bootstrap: %s\n", raft_errmsg(&raft)); return 1; }
  raft_configuration_close(&conf);
  if (i == 1) printf("defaults: election_timeout %u ms, heartbeat %u ms, install_snapshot_timeout %u ms, snapshot threshold %u trailing %u, pre_vote %d\n",
                     raft.election_timeout, raft.heartbeat_timeout, raft.install_snapshot_timeout,
                     raft.snapshot.threshold, raft.snapshot.trailing, raft.pre_vote);
  raft_set_election_timeout(&raft, i == 1 ? 300 : 600);  /* node 1 usually wins */
  raft_set_heartbeat_timeout(&raft, 50);
  raft_set_pre_vote(&raft, true);
  rv = raft_start(&raft);
  if (rv) { fprintf(stderr, "raft_start: %s\n", raft_errmsg(&raft)); return 1; }
  lat = calloc(n_total + 1, sizeof *lat);
  floor_us = calloc(n_total + 1, sizeof *floor_us);
  char fp[160]; snprintf(fp, sizeof fp, "%s/floor", dir);
  floor_fd = open(fp, O_CREAT | O_RDWR | O_TRUNC, 0644);
  if (fallocate(floor_fd, 0, 0, 64 << 20) == 0) fsync(floor_fd);
  signal(SIGTERM, onTermSig);
  uv_check_init(&loop, &check); uv_check_start(&check, onCheck);
  uv_timer_init(&loop, &timer);
  uv_timer_start(&timer, tick, 5, 5);
  uv_run(&loop, UV_RUN_DEFAULT);
  return 0;
}

int main(int argc, char **argv) {
  mode = argc > 1 ? argv[1] : "lat";
  n_total = argc > 2 ? atoi(argv[2]) : 1000;
  size = argc > 3 ? atoi(argv[3]) : 128;
  conc = argc > 4 ? atoi(argv[4]) : 64;
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (system("rm -rf /tmp/raft/data && mkdir -p /tmp/raft/data/node1 /tmp/raft/data/node2 /tmp/raft/data/node3") != 0) return 1;
  pid_t pids[4];
  for (unsigned i = 1; i <= 3; i++) {
    pids[i] = fork();
    if (pids[i] == 0) _exit(runNode(i));
  }
  int status;
  if (!strcmp(mode, "kill")) {
    /* The leader prints "waiting to be killed" when done; node 1 normally leads. */
    sleep(3);
    kill(pids[1], SIGKILL);
    printf("parent: SIGKILLed node 1 at monotonic %.1f ms\n", nowUs() / 1e3);
    for (int k = 0; k < 3; k++) {
      pid_t p = wait(&status);
      unsigned who = p == pids[1] ? 1 : p == pids[2] ? 2 : 3;
      if (WIFSIGNALED(status)) printf("parent: node %u died of signal %d (%s)\n", who, WTERMSIG(status), strsignal(WTERMSIG(status)));
      else printf("parent: node %u exited %d\n", who, WEXITSTATUS(status));
      if (k == 1) for (unsigned i = 1; i <= 3; i++) kill(pids[i], SIGTERM);
    }
    return 0;
  }
  pid_t p = wait(&status);  /* the leader exits when done */
  for (unsigned i = 1; i <= 3; i++) if (pids[i] != p) kill(pids[i], SIGTERM);
  while (wait(&status) > 0) {}
  return 0;
}
