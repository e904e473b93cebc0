/* How libraft 0.15 + raft_uv moves a snapshot: nodes 1 and 2 start, node 1 leads and
 * applies entries over an FSM whose state is <MB> MiB of random bytes; libraft snapshots
 * and truncates its log (threshold 40, trailing 8); then node 3 starts empty and must
 * be sent the snapshot. Each node reports its peak RSS.
 * Usage: snap_mem <MB> */
#define _GNU_SOURCE
#include <raft.h>
#include <raft/uv.h>
#include <uv.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static size_t state_len; static char *state;
static unsigned id, applied, restores, snapshots;
static struct raft raft; static struct raft_io io; static struct raft_uv_transport tr; static struct raft_fsm fsm;
static uv_loop_t loop; static uv_timer_t timer; static unsigned submitted; static volatile sig_atomic_t stop;
static long rssMB(void) { struct rusage u; getrusage(RUSAGE_SELF, &u); return u.ru_maxrss / 1024; }
static int fsmApply(struct raft_fsm *f, const struct raft_buffer *b, void **r) { (void)f; (void)b; applied++; *r = NULL; return 0; }
static int fsmSnapshot(struct raft_fsm *f, struct raft_buffer *bufs[], unsigned *n) {
  (void)f; snapshots++;
  if (getenv("V3")) fprintf(stderr, "node %u: snapshot (v3) on thread %d\n", id, gettid());
  *bufs = raft_malloc(sizeof **bufs); (*bufs)[0].base = state; (*bufs)[0].len = state_len; *n = 1;  /* no copy (v2) */
  return 0; }
static int fsmSnapshotAsync(struct raft_fsm *f, struct raft_buffer *bufs[], unsigned *n) {
  (void)f; (void)bufs; (void)n;
  fprintf(stderr, "node %u: snapshot_async on thread %d (loop thread %d)\n", id, gettid(), getpid());
  return 0; }
static int fsmFinalize(struct raft_fsm *f, struct raft_buffer *bufs[], unsigned *n) { (void)f; (void)n; raft_free(*bufs); *bufs = NULL; return 0; }
static int fsmRestore(struct raft_fsm *f, struct raft_buffer *b) {
  (void)f; restores++;
  fprintf(stderr, "node %u: restore of a %zu-byte snapshot in one buffer, peak RSS so far %ld MiB\n", id, b->len, rssMB());
  if (state != NULL) free(state);
  state = b->base; state_len = b->len;  /* keep it: it is our state now */
  return 0; }
static void cb(struct raft_apply *a, int s, void *r) { (void)s; (void)r; free(a); }
static void tick(uv_timer_t *t) {
  (void)t;
  if (stop) { fprintf(stderr, "node %u: applied %u, snapshots taken %u, restored %u, peak RSS %ld MiB (state %zu MiB)\n",
                      id, applied, snapshots, restores, rssMB(), state_len >> 20); _exit(0); }
  if (raft_state(&raft) == RAFT_LEADER && submitted < 100) {
    for (int k = 0; k < 10; k++) {
      struct raft_apply *a = malloc(sizeof *a); struct raft_buffer b = {raft_calloc(1, 64), 64};
      if (raft_apply(&raft, a, &b, 1, cb) == 0) submitted++;
    }
  }
}
static void onTerm(int s) { (void)s; stop = 1; }
static int node(unsigned i, size_t mb) {
  char dir[64], addr[32]; id = i;
  signal(SIGPIPE, SIG_IGN); signal(SIGTERM, onTerm);
  snprintf(dir, sizeof dir, "/tmp/raft/data/node%u", i); snprintf(addr, sizeof addr, "127.0.0.1:%u", 9100 + i);
  if (i != 3) {  /* the two founding nodes share the same initial state */
    state_len = mb << 20; state = malloc(state_len);
    unsigned long long x = 88172645463325252ull;
    for (size_t k = 0; k + 8 <= state_len; k += 8) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; memcpy(state + k, &x, 8); }
  }
  if (i == 3) sleep(4);
  uv_loop_init(&loop); raft_uv_tcp_init(&tr, &loop); raft_uv_init(&io, &loop, dir, &tr);
  fsm.version = getenv("V3") ? 3 : 2; if (getenv("V3")) fsm.snapshot_async = fsmSnapshotAsync;
  fsm.apply = fsmApply; fsm.snapshot = fsmSnapshot; fsm.snapshot_finalize = fsmFinalize; fsm.restore = fsmRestore;
  { int rv = raft_init(&raft, &io, &fsm, i, addr); if (rv) { fprintf(stderr, "node %u: raft_init: %d %s / %s\n", i, rv, raft_strerror(rv), raft_errmsg(&raft)); return 1; } }
  struct raft_configuration c; raft_configuration_init(&c);
  for (unsigned j = 1; j <= 3; j++) { char a[32]; snprintf(a, sizeof a, "127.0.0.1:%u", 9100 + j); raft_configuration_add(&c, j, a, RAFT_VOTER); }
  raft_bootstrap(&raft, &c); raft_configuration_close(&c);
  raft_set_election_timeout(&raft, i == 1 ? 300 : 600); raft_set_heartbeat_timeout(&raft, 50);
  raft_set_snapshot_threshold(&raft, 40); raft_set_snapshot_trailing(&raft, 8);
  if (getenv("NOCOMPRESS")) raft_uv_set_snapshot_compression(&io, false);
  { int rv = raft_start(&raft); if (rv) { fprintf(stderr, "node %u: raft_start: %d %s / %s\n", i, rv, raft_strerror(rv), raft_errmsg(&raft)); return 1; } }
  uv_timer_init(&loop, &timer); uv_timer_start(&timer, tick, 20, 20);
  return uv_run(&loop, UV_RUN_DEFAULT);
}
int main(int argc, char **argv) {
  size_t mb = argc > 1 ? atoi(argv[1]) : 32;
  if (system("rm -rf /tmp/raft/data && mkdir -p /tmp/raft/data/node1 /tmp/raft/data/node2 /tmp/raft/data/node3")) return 1;
  pid_t p[4];
  for (unsigned i = 1; i <= 3; i++) if ((p[i] = fork()) == 0) _exit(node(i, mb));
  sleep(12);
  for (unsigned i = 1; i <= 3; i++) kill(p[i], SIGTERM);
  while (wait(NULL) > 0) {}
  system("ls -la /tmp/raft/data/node3 | grep -i snap >&2");
  return 0;
}
