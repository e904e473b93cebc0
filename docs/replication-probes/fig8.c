/* Raft paper Figure 8 (section 3.6.2) on libraft 0.15's fixture, 3 servers.
 * Does a leader commit an entry of an earlier term by counting replicas, and can
 * that entry then be overwritten after it was applied? */
#include <raft.h>
#include <raft/fixture.h>
#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include <stdlib.h>
struct st { char seq[64]; unsigned n; } S[3];
static int fsmApply(struct raft_fsm *fsm, const struct raft_buffer *b, void **res) {
  struct st *s = fsm->data; s->seq[s->n++] = *(char *)b->base; s->seq[s->n] = 0; *res = NULL; return 0; }
static void applyCb(struct raft_apply *a, int st, void *r) { (void)r; printf("  apply cb for '%c': %s\n", *(char *)a->data, st ? raft_strerror(st) : "OK (acknowledged)"); }
static void show(struct raft_fixture *f, const char *when) {
  printf("%-52s t=%5llu:", when, (unsigned long long)raft_fixture_time(f));
  for (unsigned i = 0; i < 3; i++) { struct raft *r = raft_fixture_get(f, i);
    const struct raft_entry *e = NULL; (void)e;
    printf(" S%u[%c%s T%llu last %llu(t%llu) commit %llu fsm \"%s\"]", i,
           r->state == RAFT_LEADER ? 'L' : r->state == RAFT_FOLLOWER ? 'F' : r->state == RAFT_CANDIDATE ? 'C' : 'U',
           raft_fixture_alive(f, i) ? "" : ",dead", r->current_term, raft_last_index(r),
           r->log.snapshot.last_index, r->commit_index, S[i].seq);
  }
  printf("\n");
}
static void apply(struct raft_fixture *f, unsigned i, char *c) {
  static struct raft_apply reqs[8]; static int k;
  struct raft_buffer b = {raft_malloc(8), 8}; memset(b.base, *c, 8);
  reqs[k].data = c;
  int rv = raft_apply(raft_fixture_get(f, i), &reqs[k++], &b, 1, applyCb);
  printf("  raft_apply('%c') on S%u -> %s\n", *c, i, rv ? raft_strerror(rv) : "0");
}
static void isolate(struct raft_fixture *f, unsigned i) { for (unsigned j = 0; j < 3; j++) if (j != i) raft_fixture_disconnect(f, i, j); }
static int leaderIs(struct raft_fixture *f, unsigned i, unsigned ms) {
  raft_term above = 0;
  for (unsigned j = 0; j < 3; j++) if (raft_fixture_get(f, j)->current_term > above) above = raft_fixture_get(f, j)->current_term;
  /* Leader in a term above every other server's: a revived server may still be in
   * leader state from an old term. */
  raft_time end = raft_fixture_time(f) + ms;
  while (raft_fixture_time(f) < end) {
    raft_fixture_step(f);
    struct raft *r = raft_fixture_get(f, i);
    int top = r->state == RAFT_LEADER && r->current_term > above;
    for (unsigned j = 0; j < 3; j++) if (j != i && raft_fixture_alive(f, j) && raft_fixture_get(f, j)->state == RAFT_LEADER && raft_fixture_get(f, j)->current_term >= r->current_term) top = 0;
    if (top) return 1;
  }
  return 0;
}
int main(int argc, char **argv) {
  unsigned wait4 = argc > 1 ? (unsigned)atoi(argv[1]) : 200;
  static char A = 'A', B = 'B', X = 'x';
  struct raft_fixture f; struct raft_fsm fsms[3]; struct raft_configuration c;
  memset(&f, 0, sizeof f); raft_fixture_initialize(&f);
  for (int i = 0; i < 3; i++) { memset(&fsms[i], 0, sizeof fsms[i]); fsms[i].version = 1; fsms[i].data = &S[i]; fsms[i].apply = fsmApply; raft_fixture_grow(&f, &fsms[i]); }
  raft_configuration_init(&c); raft_fixture_configuration(&f, 3, &c); raft_fixture_bootstrap(&f, &c); raft_configuration_close(&c);
  raft_fixture_start(&f);
  raft_fixture_elect(&f, 0);
  apply(&f, 0, &X);
  raft_fixture_step_until_applied(&f, 3, 2, 5000);
  show(&f, "1. S0 leads term 2; 'x' committed everywhere");
  isolate(&f, 0);
  apply(&f, 0, &A);
  raft_fixture_step_until_elapsed(&f, 50);
  raft_fixture_kill(&f, 0);
  show(&f, "2. S0 appended 'A' (term 2) alone, then died");
  unsigned l = 3;
  for (int k = 0; k < 100000 && l == 3; k++) {
    raft_fixture_step(&f);
    for (unsigned j = 1; j < 3; j++) if (raft_state(raft_fixture_get(&f, j)) == RAFT_LEADER) l = j;
  }
  if (l == 3) { show(&f, "no new leader"); return 1; }
  printf("  new leader S%u\n", l);
  unsigned other = l == 1 ? 2 : 1;
  isolate(&f, l);
  apply(&f, l, &B);
  raft_fixture_step_until_elapsed(&f, 50);
  raft_fixture_kill(&f, l);
  show(&f, "3. new leader appended 'B' alone, then died");
  raft_fixture_revive(&f, 0);
  raft_fixture_reconnect(&f, 0, other);
  if (!leaderIs(&f, 0, 30000)) { show(&f, "S0 did not win"); return 1; }
  show(&f, "4. S0 back, re-elected with the other survivor");
  raft_fixture_step_until_elapsed(&f, wait4);
  show(&f, "   wait4 ms later (no request of its own term)");
  isolate(&f, 0);
  raft_fixture_kill(&f, 0);
  raft_fixture_revive(&f, l);
  raft_fixture_reconnect(&f, l, other);
  if (!leaderIs(&f, l, 30000)) { show(&f, "5. B's server did not win"); return 0; }
  show(&f, "5. S0 died again; B's server back and elected");
  raft_fixture_step_until_elapsed(&f, 500);
  show(&f, "   500 ms later");
  raft_fixture_revive(&f, 0);
  for (unsigned j = 1; j < 3; j++) raft_fixture_reconnect(&f, 0, j);
  raft_fixture_step_until_elapsed(&f, 3000);
  show(&f, "6. S0 back, all connected, 3 s later");
  return 0;
}
