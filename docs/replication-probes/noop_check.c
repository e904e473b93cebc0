/* Does a libraft 0.15 leader append an entry of its own term when elected?
 * Elect, replicate entries whose commit the followers have not yet heard of,
 * isolate the leader, let a new one win, and watch its last index / commit index
 * with no client request, then after a barrier. */
#include <raft.h>
#include <raft/fixture.h>
#include <stdio.h>
#include <string.h>
static unsigned napplied[3];
static int fsmApply(struct raft_fsm *fsm, const struct raft_buffer *b, void **res) { (void)b; (*(unsigned *)fsm->data)++; *res = NULL; return 0; }
static void applyCb(struct raft_apply *a, int s, void *r) { (void)a; (void)r; printf("  old leader apply cb: %s\n", s ? raft_strerror(s) : "ok"); }
static int bdone, bstatus;
static void barrierCb(struct raft_barrier *b, int s) { (void)b; bdone = 1; bstatus = s; }
static void show(struct raft_fixture *f, const char *when) {
  printf("%s (t=%llu ms):", when, (unsigned long long)raft_fixture_time(f));
  for (unsigned i = 0; i < 3; i++) { struct raft *r = raft_fixture_get(f, i);
    printf(" [%u %s term %llu last %llu commit %llu applied %llu]", i, r->state == RAFT_LEADER ? "L" : r->state == RAFT_FOLLOWER ? "F" : "C",
           r->current_term, raft_last_index(r), r->commit_index, raft_last_applied(r)); }
  printf("\n");
}
int main(void) {
  struct raft_fixture f; struct raft_fsm fsms[3]; struct raft_configuration c;
  memset(&f, 0, sizeof f); raft_fixture_initialize(&f);
  for (int i = 0; i < 3; i++) { memset(&fsms[i], 0, sizeof fsms[i]); fsms[i].version = 1; fsms[i].data = &napplied[i]; fsms[i].apply = fsmApply; raft_fixture_grow(&f, &fsms[i]); }
  raft_configuration_init(&c); raft_fixture_configuration(&f, 3, &c); raft_fixture_bootstrap(&f, &c); raft_configuration_close(&c);
  raft_fixture_start(&f);
  raft_fixture_elect(&f, 0);
  show(&f, "server 0 elected");
  struct raft_apply reqs[3];
  for (int i = 0; i < 3; i++) { struct raft_buffer b = {raft_calloc(1, 8), 8}; raft_apply(raft_fixture_get(&f, 0), &reqs[i], &b, 1, applyCb); }
  /* Deliver the AppendEntries to the followers (15 ms latency) but cut the leader off
   * before they learn the new commit index. */
  raft_fixture_step_until_elapsed(&f, 20);
  raft_fixture_disconnect(&f, 0, 1); raft_fixture_disconnect(&f, 0, 2);
  show(&f, "entries on followers, leader isolated");
  raft_fixture_step_until_state_is(&f, 1, RAFT_LEADER, 10000);
  if (raft_state(raft_fixture_get(&f, 1)) != RAFT_LEADER) raft_fixture_step_until_state_is(&f, 2, RAFT_LEADER, 10000);
  show(&f, "new leader elected");
  raft_fixture_step_until_elapsed(&f, 2000);
  show(&f, "2 s later, no client request");
  unsigned li = raft_state(raft_fixture_get(&f, 1)) == RAFT_LEADER ? 1 : 2;
  struct raft_barrier br; raft_barrier(raft_fixture_get(&f, li), &br, barrierCb);
  while (!bdone) raft_fixture_step(&f);
  show(&f, bstatus ? "barrier FAILED" : "after the new leader's barrier");
  raft_fixture_reconnect(&f, 0, 1); raft_fixture_reconnect(&f, 0, 2);
  raft_fixture_step_until_elapsed(&f, 2000);
  show(&f, "healed");
  raft_fixture_close(&f);
  return 0;
}
