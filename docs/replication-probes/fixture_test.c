/* Deterministic 3-server libraft 0.15 fixture scenario, one seed per run.
 * Usage: fixture_test [first_seed] [n_seeds] [-v]
 * Scenario per seed: elect, apply a batch, isolate the leader (or kill it, or
 * inject an I/O fault on it), apply on the old leader (pending -> LEADERSHIPLOST),
 * elect a new leader, barrier, apply more, heal, check every server applied the
 * same sequence and every acknowledged apply is present. */
#include <raft.h>
#include <raft/fixture.h>
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N 3
#define MAXE 4096
static int verbose;

struct fsm_state { uint64_t seq[MAXE]; unsigned n; };
static struct fsm_state states[N];

static int fsmApply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result) {
  struct fsm_state *s = fsm->data;
  assert(buf->len == 8);
  if (s->n < MAXE) s->seq[s->n++] = *(uint64_t *)buf->base;
  *result = NULL;
  return 0;
}
/* Snapshot: the whole applied sequence, in memory (the fixture copies it). */
static int fsmSnapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n) {
  struct fsm_state *s = fsm->data;
  *bufs = raft_malloc(sizeof **bufs);
  (*bufs)[0].len = 8 + 8 * s->n;
  (*bufs)[0].base = raft_malloc((*bufs)[0].len);
  uint64_t cnt = s->n;
  memcpy((*bufs)[0].base, &cnt, 8);
  memcpy((char *)(*bufs)[0].base + 8, s->seq, 8 * s->n);
  *n = 1;
  return 0;
}
static unsigned restores;
static int fsmRestore(struct raft_fsm *fsm, struct raft_buffer *buf) {
  struct fsm_state *s = fsm->data;
  uint64_t cnt;
  memcpy(&cnt, buf->base, 8);
  s->n = (unsigned)cnt;
  memcpy(s->seq, (char *)buf->base + 8, 8 * cnt);
  raft_free(buf->base);
  restores++;
  return 0;
}

/* splitmix64 */
static uint64_t rng;
static uint64_t rnd(void) {
  uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static unsigned rndIn(unsigned lo, unsigned hi) { return lo + (unsigned)(rnd() % (hi - lo + 1)); }

/* Client requests and what they returned. */
#define MAXREQ 256
struct req { struct raft_apply apply; uint64_t value; int status; int done; };
static struct req reqs[MAXREQ];
static unsigned nreq;
static unsigned cnt_ok, cnt_lost, cnt_notleader, cnt_other;
static unsigned cnt_sync[32], cnt_sync_present;
static uint64_t syncfail[MAXREQ]; static unsigned nsyncfail;
static unsigned cnt_notdone, cnt_notdone_present, cnt_status[32], cnt_other_present, cnt_lost_present;

static void applyCb(struct raft_apply *a, int status, void *result) {
  (void)result;
  struct req *r = a->data;
  r->status = status;
  r->done = 1;
}
static int submit(struct raft *raft, uint64_t value) {
  if (nreq >= MAXREQ) return -1;
  struct req *r = &reqs[nreq];
  memset(r, 0, sizeof *r);
  r->value = value;
  r->apply.data = r;
  struct raft_buffer buf = {raft_malloc(8), 8};
  memcpy(buf.base, &value, 8);
  int rv = raft_apply(raft, &r->apply, &buf, 1, applyCb);
  if (rv != 0) {
    raft_free(buf.base);
    if (rv == RAFT_NOTLEADER) cnt_notleader++; else { cnt_other++; cnt_sync[rv & 31]++; if (nsyncfail < MAXREQ) syncfail[nsyncfail++] = value; }
    return rv;
  }
  nreq++;
  return 0;
}
struct bar { struct raft_barrier b; int status; int done; };
static void barrierCb(struct raft_barrier *b, int status) {
  struct bar *x = b->data; x->status = status; x->done = 1;
}

/* The fixture's io->random() returns a fixed per-server value: re-draw it from
 * the seed after every event, or equal timeouts split votes forever. */
static raft_time two_since, two_max, two_total; static unsigned two_episodes;
static void watchTwoLeaders(struct raft_fixture *f) {
  unsigned leaders = 0;
  for (unsigned j = 0; j < raft_fixture_n(f); j++)
    if (raft_fixture_alive(f, j) && raft_state(raft_fixture_get(f, j)) == RAFT_LEADER) leaders++;
  raft_time now = raft_fixture_time(f);
  if (leaders > 1 && two_since == 0) { two_since = now; two_episodes++; }
  if (leaders <= 1 && two_since != 0) {
    raft_time d = now - two_since; two_total += d; if (d > two_max) two_max = d; two_since = 0;
  }
}
static void hook(struct raft_fixture *f, struct raft_fixture_event *e) {
  if (getenv("REDRAW")) raft_fixture_set_randomized_election_timeout(f, e->server_index, rndIn(1000, 2000));
  watchTwoLeaders(f);
}
static unsigned leaderIndex(struct raft_fixture *f) { return raft_fixture_leader_index(f); }

static int runSeed(uint64_t seed, uint64_t *steps_out) {
  struct raft_fixture f;
  struct raft_fsm fsms[N];
  struct raft_configuration conf;
  int rv;
  rng = seed * 0x2545F4914F6CDD1Dull + 1;
  memset(states, 0, sizeof states);
  nreq = 0; nsyncfail = 0;
  memset(&f, 0, sizeof f); /* raft_fixture_initialize leaves fields uninitialised */
  rv = raft_fixture_initialize(&f); assert(rv == 0);
  for (unsigned i = 0; i < N; i++) {
    memset(&fsms[i], 0, sizeof fsms[i]);
    fsms[i].version = 1;
    fsms[i].data = &states[i];
    fsms[i].apply = fsmApply;
    fsms[i].snapshot = fsmSnapshot;
    fsms[i].restore = fsmRestore;
    rv = raft_fixture_grow(&f, &fsms[i]); assert(rv == 0);
  }
  raft_configuration_init(&conf);
  rv = raft_fixture_configuration(&f, N, &conf); assert(rv == 0);
  rv = raft_fixture_bootstrap(&f, &conf); if (rv) { fprintf(stderr, "bootstrap: %d %s\n", rv, raft_strerror(rv)); abort(); }
  raft_configuration_close(&conf);
  /* The fixture has no seed of its own: all variety comes from here. */
  for (unsigned i = 0; i < N; i++) {
    struct raft *r = raft_fixture_get(&f, i);
    raft_set_snapshot_threshold(r, rndIn(8, 64));
    raft_set_snapshot_trailing(r, rndIn(2, 8));
    raft_set_pre_vote(r, true);
    raft_fixture_set_randomized_election_timeout(&f, i, rndIn(1000, 2000));
    raft_fixture_set_network_latency(&f, i, rndIn(1, 40));
    raft_fixture_set_disk_latency(&f, i, rndIn(1, 30));
  }
  raft_fixture_hook(&f, hook); two_since = 0;
  rv = raft_fixture_start(&f); assert(rv == 0);
  if (!raft_fixture_step_until_has_leader(&f, 10000)) { fprintf(stderr, "seed %llu: no first leader\n", (unsigned long long)seed); return 1; }
  unsigned l1 = leaderIndex(&f);
  raft_term t1 = raft_fixture_get(&f, l1)->current_term;
  uint64_t v = 1;
  unsigned k = rndIn(5, 40);
  for (unsigned i = 0; i < k; i++) submit(raft_fixture_get(&f, l1), v++);
  raft_fixture_step_until_applied(&f, N, raft_last_index(raft_fixture_get(&f, l1)), 5000);

  /* Fault on the leader, with applies still in flight on it. */
  unsigned fault = rndIn(0, 3);
  unsigned inflight = rndIn(1, 10);
  for (unsigned i = 0; i < inflight; i++) submit(raft_fixture_get(&f, l1), v++);
  raft_fixture_step_n(&f, rndIn(0, 6) + 1);
  if (fault == 0) {            /* isolate */
    for (unsigned j = 0; j < N; j++) if (j != l1) raft_fixture_disconnect(&f, l1, j);
  } else if (fault == 1) {     /* kill (the fixture's kill freezes it; no restart) */
    raft_fixture_kill(&f, l1);
  } else if (fault == 3) {     /* I/O fault only: the network stays up */
    raft_fixture_io_fault(&f, l1, 0, (int)rndIn(1, 3));
  } else {                     /* I/O fault on its next disk/io request(s), plus isolation */
    raft_fixture_io_fault(&f, l1, 0, 1);
    for (unsigned j = 0; j < N; j++) if (j != l1) raft_fixture_saturate(&f, l1, j);
  }
  /* The deposed leader keeps accepting applies until it notices. */
  for (unsigned i = 0; i < 3; i++) submit(raft_fixture_get(&f, l1), v++);
  if (fault == 3) {            /* then isolate it, so that a new leader comes */
    raft_fixture_step_n(&f, rndIn(1, 30));
    for (unsigned j = 0; j < N; j++) if (j != l1) raft_fixture_disconnect(&f, l1, j);
  }
  /* Step until someone other than l1 leads. */
  unsigned l2 = N;
  for (unsigned s = 0; s < 20000; s++) {
    raft_fixture_step(&f);
    unsigned li = leaderIndex(&f);
    if (li < N && li != l1) { l2 = li; break; }
  }
  if (l2 == N) {
    fprintf(stderr, "seed %llu: no second leader (fault %u) time %llu:", (unsigned long long)seed, fault, (unsigned long long)raft_fixture_time(&f));
    for (unsigned j = 0; j < N; j++) { struct raft *r = raft_fixture_get(&f, j); fprintf(stderr, " [%u state %d term %llu last %llu]", j, raft_state(r), r->current_term, raft_last_index(r)); }
    fprintf(stderr, "\n"); return 1; }
  struct raft *r2 = raft_fixture_get(&f, l2);
  raft_term t2 = r2->current_term;
  assert(t2 > t1);
  /* Barrier first: before 0.17 the new leader has no entry of its own term. */
  struct bar b; memset(&b, 0, sizeof b); b.b.data = &b;
  rv = raft_barrier(r2, &b.b, barrierCb); assert(rv == 0);
  for (unsigned s = 0; s < 20000 && !b.done; s++) raft_fixture_step(&f);
  if (!b.done || b.status != 0) { fprintf(stderr, "seed %llu: barrier %d/%d\n", (unsigned long long)seed, b.done, b.status); return 1; }
  k = rndIn(5, 40);
  for (unsigned i = 0; i < k; i++) submit(r2, v++);
  /* Heal. */
  if (fault == 0 || fault == 3) { for (unsigned j = 0; j < N; j++) if (j != l1) raft_fixture_reconnect(&f, l1, j); }
  else if (fault == 1) { raft_fixture_revive(&f, l1); for (unsigned j = 0; j < N; j++) if (j != l1) raft_fixture_reconnect(&f, l1, j); }
  else { for (unsigned j = 0; j < N; j++) if (j != l1) raft_fixture_desaturate(&f, l1, j); }
  /* Let everything settle: all servers apply the leader's last index. */
  unsigned lf = leaderIndex(&f);
  for (unsigned s = 0; s < 100000 && lf >= N; s++) { raft_fixture_step(&f); lf = leaderIndex(&f); }
  if (lf >= N) { fprintf(stderr, "seed %llu: no leader after heal\n", (unsigned long long)seed); return 1; }
  struct bar b2; memset(&b2, 0, sizeof b2); b2.b.data = &b2;
  rv = raft_barrier(raft_fixture_get(&f, lf), &b2.b, barrierCb);
  for (unsigned s = 0; s < 100000 && !(b2.done); s++) raft_fixture_step(&f);
  raft_index last = raft_last_index(raft_fixture_get(&f, lf));
  if (!raft_fixture_step_until_applied(&f, N, last, 120000)) {
    fprintf(stderr, "seed %llu: not all applied %llu (fault %u, old leader %u, leader %u):", (unsigned long long)seed, last, fault, l1, lf);
    for (unsigned j = 0; j < N; j++) { struct raft *r = raft_fixture_get(&f, j); fprintf(stderr, " [%u state %d term %llu last %llu applied %llu commit %llu snap %llu]", j, raft_state(r), r->current_term, raft_last_index(r), raft_last_applied(r), r->commit_index, r->log.snapshot.last_index); }
    fprintf(stderr, "\n"); return 1; }
  /* Let the deposed leader's callbacks drain. */
  raft_fixture_step_until_elapsed(&f, 3000);

  /* Checks: same sequence everywhere; every OK apply present; no duplicates. */
  for (unsigned i = 1; i < N; i++) {
    if (states[i].n != states[0].n || memcmp(states[i].seq, states[0].seq, 8 * states[0].n) != 0) {
      fprintf(stderr, "seed %llu: divergent fsm %u (%u vs %u entries)\n", (unsigned long long)seed, i, states[i].n, states[0].n); return 1;
    }
  }
  for (unsigned q = 0; q < nreq; q++) {
    int found = 0;
    for (unsigned e = 0; e < states[0].n; e++) if (states[0].seq[e] == reqs[q].value) found++;
    if (found > 1) { fprintf(stderr, "seed %llu: value %llu applied twice\n", (unsigned long long)seed, (unsigned long long)reqs[q].value); return 1; }
    if (!reqs[q].done) { cnt_other++; cnt_notdone++; if (found) cnt_notdone_present++; continue; }
    if (reqs[q].status == 0) { cnt_ok++; if (!found) { fprintf(stderr, "seed %llu: acked value lost\n", (unsigned long long)seed); return 1; } }
    else if (reqs[q].status == RAFT_LEADERSHIPLOST) { cnt_lost++; if (found) cnt_lost_present++; if (verbose) printf("  lost %llu present=%d\n", (unsigned long long)reqs[q].value, found); }
    else { cnt_other++; cnt_status[reqs[q].status & 31]++; if (found) cnt_other_present++; if (verbose) printf("  status %d (%s) present=%d\n", reqs[q].status, raft_strerror(reqs[q].status), found); }
  }
  for (unsigned q = 0; q < nsyncfail; q++)
    for (unsigned e = 0; e < states[0].n; e++) if (states[0].seq[e] == syncfail[q]) { cnt_sync_present++;
      if (verbose) printf("  value %llu: raft_apply returned an error, yet it was applied\n", (unsigned long long)syncfail[q]); }
  *steps_out += 0;
  if (verbose) printf("seed %llu fault %u leaders %u->%u terms %llu->%llu applied %u time %llu ms\n",
      (unsigned long long)seed, fault, l1, l2, t1, t2, states[0].n, (unsigned long long)raft_fixture_time(&f));
  raft_fixture_close(&f);
  return 0;
}

int main(int argc, char **argv) {
  uint64_t first = argc > 1 ? strtoull(argv[1], 0, 10) : 1;
  uint64_t n = argc > 2 ? strtoull(argv[2], 0, 10) : 1;
  verbose = argc > 3;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  unsigned failed = 0;
  uint64_t steps = 0;
  for (uint64_t s = first; s < first + n; s++) failed += runSeed(s, &steps) != 0;
  clock_gettime(CLOCK_MONOTONIC, &b);
  double ms = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
  printf("seeds %llu failed %u | applies ok %u leadershiplost %u notleader(sync) %u other %u | restores %u | %.1f ms total, %.3f ms/seed\n",
         (unsigned long long)n, failed, cnt_ok, cnt_lost, cnt_notleader, cnt_other, restores, ms, ms / n);
  printf("LEADERSHIPLOST but applied anyway: %u of %u; callback never fired: %u (%u applied); other statuses:", cnt_lost_present, cnt_lost, cnt_notdone, cnt_notdone_present);
  for (int i = 0; i < 32; i++) if (cnt_status[i]) printf(" %s=%u", raft_strerror(i), cnt_status[i]);
  printf(" (%u applied); synchronous raft_apply errors:", cnt_other_present);
  for (int i = 0; i < 32; i++) if (cnt_sync[i]) printf(" %d:%s=%u", i, raft_strerror(i), cnt_sync[i]);
  printf(" (%u of them applied anyway)\n", cnt_sync_present);
  printf("two live servers in leader state at once: %u episodes, longest %llu ms (simulated), total %llu ms\n", two_episodes, (unsigned long long)two_max, (unsigned long long)two_total);
  return failed != 0;
}
