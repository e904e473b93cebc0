/* Figure 8 again (see fig8.c), with the two guards proposed for shardtx's replication
 * layer on libraft 0.15:
 *  - every command entry carries the term and index its leader proposed it at;
 *  - the FSM does not hand an applied entry to the shard until an entry proposed in
 *    the applying server's *current* term has been applied (the release gate); entries
 *    of older terms wait in a queue (libraft may have committed them by counting
 *    replicas, which 0.15 does: canonical/raft#220, fixed by PR #336 in 0.17);
 *  - a server that finds itself leader proposes a "term start" command at once.
 *  - fsm->snapshot refuses (RAFT_BUSY) while the queue holds entries.
 * Usage: fig8_gate <ms to wait in step 4> */
#include <raft.h>
#include <raft/fixture.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
struct entry { uint64_t term, index; char c; char pad[7]; };
struct node {
  unsigned i;
  struct raft *r;
  char released[64]; unsigned nreleased;   /* what the shard has applied */
  struct entry queue[64]; unsigned nqueue; /* applied by libraft, held back */
  uint64_t index_mismatch, busy_snapshots;
  raft_term noop_term;                      /* term we proposed a term-start entry in */
} N[3];
static int fsmApply(struct raft_fsm *fsm, const struct raft_buffer *b, void **res) {
  struct node *n = fsm->data;
  struct entry e; memcpy(&e, b->base, sizeof e);
  if (e.index != raft_last_applied(n->r) + 1) n->index_mismatch++;  /* index check */
  n->queue[n->nqueue++] = e;
  if (e.term == n->r->current_term) {          /* safe: release the whole queue */
    for (unsigned k = 0; k < n->nqueue; k++)
      if (n->queue[k].c != '.') { n->released[n->nreleased++] = n->queue[k].c; n->released[n->nreleased] = 0; }
    n->nqueue = 0;
  }
  *res = NULL;
  return 0;
}
static int fsmSnapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *nb) {
  struct node *n = fsm->data;
  if (n->nqueue) { n->busy_snapshots++; return RAFT_BUSY; }
  *bufs = raft_malloc(sizeof **bufs); (*bufs)[0].len = 64; (*bufs)[0].base = raft_calloc(1, 64);
  memcpy((*bufs)[0].base, n->released, 64); *nb = 1; return 0;
}
static int fsmRestore(struct raft_fsm *fsm, struct raft_buffer *b) {
  struct node *n = fsm->data; memcpy(n->released, b->base, 64); n->nreleased = strlen(n->released); raft_free(b->base); return 0; }
static void applyCb(struct raft_apply *a, int st, void *r) { (void)r; printf("  apply cb for '%c': %s\n", *(char *)a->data, st ? raft_strerror(st) : "OK (acknowledged)"); free(a); }
static void noopCb(struct raft_apply *a, int st, void *r) { (void)r; (void)st; free(a); }
static int propose(struct raft *r, char *c, raft_apply_cb cb) {
  struct raft_apply *req = calloc(1, sizeof *req); req->data = c;
  struct entry e = {r->current_term, raft_last_index(r) + 1, *c, {0}};
  struct raft_buffer b = {raft_malloc(sizeof e), sizeof e}; memcpy(b.base, &e, sizeof e);
  return raft_apply(r, req, &b, 1, cb);
}
static void hook(struct raft_fixture *f, struct raft_fixture_event *ev) {
  static char noop = '.';
  (void)ev;
  for (unsigned i = 0; i < 3; i++) {          /* the uv_check handle's job in production */
    struct raft *r = raft_fixture_get(f, i);
    if (raft_fixture_alive(f, i) && r->state == RAFT_LEADER && N[i].noop_term != r->current_term) {
      N[i].noop_term = r->current_term;
      if (getenv("NOOP")) propose(r, &noop, noopCb);
    }
  }
}
static void show(struct raft_fixture *f, const char *when) {
  printf("%-46s t=%5llu:", when, (unsigned long long)raft_fixture_time(f));
  for (unsigned i = 0; i < 3; i++) { struct raft *r = raft_fixture_get(f, i);
    printf(" S%u[%c%s T%llu last %llu commit %llu shard \"%s\" held %u]", i,
           r->state == RAFT_LEADER ? 'L' : r->state == RAFT_FOLLOWER ? 'F' : r->state == RAFT_CANDIDATE ? 'C' : 'U',
           raft_fixture_alive(f, i) ? "" : ",dead", r->current_term, raft_last_index(r), r->commit_index, N[i].released, N[i].nqueue); }
  printf("\n");
}
static void isolate(struct raft_fixture *f, unsigned i) { for (unsigned j = 0; j < 3; j++) if (j != i) raft_fixture_disconnect(f, i, j); }
static int leaderIs(struct raft_fixture *f, unsigned i, unsigned ms) {
  raft_term above = 0;
  for (unsigned j = 0; j < 3; j++) if (raft_fixture_get(f, j)->current_term > above) above = raft_fixture_get(f, j)->current_term;
  raft_time end = raft_fixture_time(f) + ms;
  while (raft_fixture_time(f) < end) {
    raft_fixture_step(f);
    struct raft *r = raft_fixture_get(f, i);
    if (r->state == RAFT_LEADER && r->current_term > above) return 1;
  }
  return 0;
}
int main(int argc, char **argv) {
  unsigned wait4 = argc > 1 ? (unsigned)atoi(argv[1]) : 200;
  static char A = 'A', B = 'B', X = 'x';
  struct raft_fixture f; struct raft_fsm fsms[3]; struct raft_configuration c;
  memset(&f, 0, sizeof f); raft_fixture_initialize(&f);
  for (int i = 0; i < 3; i++) {
    memset(&fsms[i], 0, sizeof fsms[i]); fsms[i].version = 1; fsms[i].data = &N[i];
    fsms[i].apply = fsmApply; fsms[i].snapshot = fsmSnapshot; fsms[i].restore = fsmRestore;
    raft_fixture_grow(&f, &fsms[i]); N[i].i = i; N[i].r = raft_fixture_get(&f, i);
  }
  raft_configuration_init(&c); raft_fixture_configuration(&f, 3, &c); raft_fixture_bootstrap(&f, &c); raft_configuration_close(&c);
  for (int i = 0; i < 3; i++) raft_set_snapshot_threshold(raft_fixture_get(&f, i), 2);
  raft_fixture_hook(&f, hook);
  raft_fixture_start(&f);
  raft_fixture_elect(&f, 0);
  propose(raft_fixture_get(&f, 0), &X, applyCb);
  raft_fixture_step_until_applied(&f, 3, raft_last_index(raft_fixture_get(&f, 0)), 5000);
  show(&f, "1. S0 leads; 'x' committed");
  isolate(&f, 0);
  propose(raft_fixture_get(&f, 0), &A, applyCb);
  raft_fixture_step_until_elapsed(&f, 50);
  raft_fixture_kill(&f, 0);
  show(&f, "2. S0 appended 'A' alone, died");
  unsigned l = 3;
  for (int k = 0; k < 100000 && l == 3; k++) {
    raft_fixture_step(&f);
    for (unsigned j = 1; j < 3; j++) if (raft_state(raft_fixture_get(&f, j)) == RAFT_LEADER) l = j;
  }
  unsigned other = l == 1 ? 2 : 1;
  isolate(&f, l);  /* too late for its term-start entry if NOOP: it reached the other one */
  propose(raft_fixture_get(&f, l), &B, applyCb);
  raft_fixture_step_until_elapsed(&f, 50);
  raft_fixture_kill(&f, l);
  show(&f, "3. new leader appended 'B' alone, died");
  raft_fixture_revive(&f, 0);
  raft_fixture_reconnect(&f, 0, other);
  if (!leaderIs(&f, 0, 30000)) { show(&f, "S0 did not win"); }
  else show(&f, "4. S0 back, re-elected");
  raft_fixture_step_until_elapsed(&f, wait4);
  show(&f, "   wait4 ms later");
  isolate(&f, 0);
  raft_fixture_kill(&f, 0);
  raft_fixture_revive(&f, l);
  raft_fixture_reconnect(&f, l, other);
  if (!leaderIs(&f, l, 30000)) show(&f, "5. B's server did not win");
  else show(&f, "5. S0 died again; B's server elected");
  raft_fixture_step_until_elapsed(&f, 500);
  show(&f, "   500 ms later");
  raft_fixture_revive(&f, 0);
  for (unsigned j = 1; j < 3; j++) raft_fixture_reconnect(&f, 0, j);
  raft_fixture_step_until_elapsed(&f, 3000);
  show(&f, "6. all back and connected, 3 s later");
  for (unsigned i = 0; i < 3; i++) printf("  S%u: index mismatches %llu, snapshots refused %llu\n", i, (unsigned long long)N[i].index_mismatch, (unsigned long long)N[i].busy_snapshots);
  return 0;
}
