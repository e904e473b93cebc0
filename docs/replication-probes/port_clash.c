/* Two raft_uv instances (two shard groups of one node) in one process, one loop:
 * same listening address -> ?, different ports -> fine. */
#include <raft.h>
#include <raft/uv.h>
#include <uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static int fsmApply(struct raft_fsm *f, const struct raft_buffer *b, void **r) { (void)f; (void)b; *r = NULL; return 0; }
struct g { struct raft raft; struct raft_io io; struct raft_uv_transport tr; struct raft_fsm fsm; };
static int start(uv_loop_t *loop, struct g *g, const char *dir, const char *addr) {
  char cmd[128]; snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir); if (system(cmd)) return -1;
  raft_uv_tcp_init(&g->tr, loop); raft_uv_init(&g->io, loop, dir, &g->tr);
  memset(&g->fsm, 0, sizeof g->fsm); g->fsm.version = 1; g->fsm.apply = fsmApply;
  raft_init(&g->raft, &g->io, &g->fsm, 1, addr);
  struct raft_configuration c; raft_configuration_init(&c); raft_configuration_add(&c, 1, addr, RAFT_VOTER);
  raft_bootstrap(&g->raft, &c); raft_configuration_close(&c);
  int rv = raft_start(&g->raft);
  printf("raft_start(%s): %d %s%s%s\n", addr, rv, rv ? raft_strerror(rv) : "ok", rv ? " / " : "", rv ? raft_errmsg(&g->raft) : "");
  return rv;
}
int main(void) {
  uv_loop_t loop; uv_loop_init(&loop);
  static struct g a, b, c;
  start(&loop, &a, "/tmp/raft/data/ga", "127.0.0.1:9301");
  start(&loop, &b, "/tmp/raft/data/gb", "127.0.0.1:9301");
  start(&loop, &c, "/tmp/raft/data/gc", "127.0.0.1:9302");
  uv_run(&loop, UV_RUN_NOWAIT);
  return 0;
}
