/* Membership on libraft 0.15's fixture: grow a 4th (empty) server, raft_add (SPARE),
 * raft_assign STANDBY then VOTER (catch-up rounds), then raft_remove a voter; what do
 * concurrent changes return; does the newcomer get a snapshot. */
#include <raft.h>
#include <raft/fixture.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static unsigned applied[5], restored[5];
static int fsmApply(struct raft_fsm *f, const struct raft_buffer *b, void **r) { (void)b; applied[(long)f->data]++; *r = NULL; return 0; }
static int fsmSnapshot(struct raft_fsm *f, struct raft_buffer *bufs[], unsigned *n) {
  *bufs = raft_malloc(sizeof **bufs); (*bufs)[0].len = 8; (*bufs)[0].base = raft_calloc(1, 8);
  memcpy((*bufs)[0].base, &applied[(long)f->data], 4); *n = 1; return 0; }
static int fsmRestore(struct raft_fsm *f, struct raft_buffer *b) { memcpy(&applied[(long)f->data], b->base, 4); restored[(long)f->data]++; raft_free(b->base); return 0; }
static int done; static int st;
static void changeCb(struct raft_change *c, int s) { (void)c; done = 1; st = s; }
static void applyCb(struct raft_apply *a, int s, void *r) { (void)s; (void)r; free(a); }
static int wait(struct raft_fixture *f, const char *what) {
  for (int k = 0; k < 200000 && !done; k++) raft_fixture_step(f);
  printf("  %s -> callback %s (t=%llu ms)\n", what, done ? (st ? raft_strerror(st) : "OK") : "never", (unsigned long long)raft_fixture_time(f));
  done = 0; return st;
}
int main(void) {
  struct raft_fixture f; struct raft_fsm fsms[4]; struct raft_configuration c;
  memset(&f, 0, sizeof f); raft_fixture_initialize(&f);
  for (long i = 0; i < 3; i++) { memset(&fsms[i], 0, sizeof fsms[i]); fsms[i].version = 1; fsms[i].data = (void *)i; fsms[i].apply = fsmApply; fsms[i].snapshot = fsmSnapshot; fsms[i].restore = fsmRestore; raft_fixture_grow(&f, &fsms[i]); }
  raft_configuration_init(&c); raft_fixture_configuration(&f, 3, &c); raft_fixture_bootstrap(&f, &c); raft_configuration_close(&c);
  for (int i = 0; i < 3; i++) { raft_set_snapshot_threshold(raft_fixture_get(&f, i), 32); raft_set_snapshot_trailing(raft_fixture_get(&f, i), 4); }
  raft_fixture_start(&f);
  raft_fixture_elect(&f, 0);
  struct raft *l = raft_fixture_get(&f, 0);
  for (int k = 0; k < 100; k++) { struct raft_apply *a = malloc(sizeof *a); struct raft_buffer b = {raft_calloc(1, 8), 8}; raft_apply(l, a, &b, 1, applyCb); if (k % 10 == 9) raft_fixture_step_until_applied(&f, 3, raft_last_index(l), 5000); }
  raft_fixture_step_until_applied(&f, 3, raft_last_index(l), 5000);
  printf("100 entries applied; leader log starts after snapshot index %llu\n", l->log.snapshot.last_index);
  long i4 = 3; memset(&fsms[3], 0, sizeof fsms[3]); fsms[3].version = 1; fsms[3].data = (void *)i4; fsms[3].apply = fsmApply; fsms[3].snapshot = fsmSnapshot; fsms[3].restore = fsmRestore;
  raft_fixture_grow(&f, &fsms[3]);
  struct raft *n4 = raft_fixture_get(&f, 3);
  raft_set_snapshot_threshold(n4, 32); raft_set_snapshot_trailing(n4, 4);
  printf("raft_start(new server, not bootstrapped) = %d\n", raft_start(n4));
  struct raft_change ch, ch2;
  int rv = raft_add(l, &ch, 4, "4", changeCb); printf("raft_add(4) = %d\n", rv);
  rv = raft_add(l, &ch2, 5, "5", changeCb); printf("second raft_add while one is pending = %d (%s)\n", rv, raft_strerror(rv));
  wait(&f, "raft_add(4)");
  rv = raft_assign(l, &ch, 4, RAFT_VOTER, changeCb); printf("raft_assign(4, VOTER) = %d\n", rv);
  wait(&f, "raft_assign(4, VOTER)");
  printf("server 4: role in leader's configuration %d, applied %u, snapshots restored %u\n",
         l->configuration.servers[3].role, applied[3], restored[3]);
  rv = raft_remove(l, &ch, 3, changeCb); printf("raft_remove(3) = %d\n", rv);
  wait(&f, "raft_remove(3)");
  printf("configuration now:"); for (unsigned k = 0; k < l->configuration.n; k++) printf(" %llu(role %d)", l->configuration.servers[k].id, l->configuration.servers[k].role); printf("\n");
  struct raft_transfer tr; rv = raft_transfer(l, &tr, 4, NULL);
  printf("raft_transfer(4) = %d\n", rv);
  for (int k = 0; k < 100000 && raft_state(n4) != RAFT_LEADER; k++) raft_fixture_step(&f);
  printf("server 4 state %d (3 = leader) at t=%llu\n", raft_state(n4), (unsigned long long)raft_fixture_time(&f));
  return 0;
}
