/* Cost of raft_fixture_step against log length: raft_fixture_step copies the
 * stable leader's whole in-memory log every step (Leader Append-Only check).
 * Usage: fixture_cost <entries> <snapshot_threshold> */
#include <raft.h>
#include <raft/fixture.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static unsigned applied[3];
static int fsmApply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result) {
  (void)buf; (*(unsigned *)fsm->data)++; *result = NULL; return 0; }
static int fsmSnapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n) {
  *bufs = raft_malloc(sizeof **bufs); (*bufs)[0].len = 8; (*bufs)[0].base = raft_calloc(1, 8);
  memcpy((*bufs)[0].base, fsm->data, 4); *n = 1; return 0; }
static int fsmRestore(struct raft_fsm *fsm, struct raft_buffer *buf) {
  memcpy(fsm->data, buf->base, 4); raft_free(buf->base); return 0; }
static void cb(struct raft_apply *a, int status, void *r) { (void)status; (void)r; free(a); }
int main(int argc, char **argv) {
  unsigned entries = argc > 1 ? atoi(argv[1]) : 2000, threshold = argc > 2 ? atoi(argv[2]) : 64;
  struct raft_fixture f; struct raft_fsm fsms[3]; struct raft_configuration conf;
  memset(&f, 0, sizeof f); raft_fixture_initialize(&f);
  for (int i = 0; i < 3; i++) {
    memset(&fsms[i], 0, sizeof fsms[i]); fsms[i].version = 1; fsms[i].data = &applied[i];
    fsms[i].apply = fsmApply; fsms[i].snapshot = fsmSnapshot; fsms[i].restore = fsmRestore;
    raft_fixture_grow(&f, &fsms[i]);
  }
  raft_configuration_init(&conf); raft_fixture_configuration(&f, 3, &conf);
  raft_fixture_bootstrap(&f, &conf); raft_configuration_close(&conf);
  for (int i = 0; i < 3; i++) raft_set_snapshot_threshold(raft_fixture_get(&f, i), threshold);
  raft_fixture_start(&f);
  raft_fixture_step_until_has_leader(&f, 10000);
  struct raft *l = raft_fixture_get(&f, raft_fixture_leader_index(&f));
  struct timespec a, b; clock_gettime(CLOCK_MONOTONIC, &a);
  unsigned steps = 0;
  for (unsigned i = 0; i < entries; i++) {
    struct raft_apply *req = malloc(sizeof *req);
    struct raft_buffer buf = {raft_calloc(1, 64), 64};
    int rv = raft_apply(l, req, &buf, 1, cb); assert(rv == 0);
    if (i % 8 == 7) raft_fixture_step_until_applied(&f, 3, raft_last_index(l), 100000);
  }
  raft_fixture_step_until_applied(&f, 3, raft_last_index(l), 100000);
  clock_gettime(CLOCK_MONOTONIC, &b);
  double ms = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
  printf("entries %u threshold %u: %.1f ms real, %.1f us per entry; applied %u/%u/%u\n", entries, threshold, ms, ms * 1e3 / entries, applied[0], applied[1], applied[2]);
  raft_fixture_close(&f);
  return 0;
}
