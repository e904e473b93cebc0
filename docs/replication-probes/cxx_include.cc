#include <raft.h>
#include <raft/uv.h>
#include <raft/fixture.h>
static void cb(struct raft_apply *req, int status, void *result) {}
int main() {
  struct raft r;
  struct raft_apply req;
  struct raft_buffer buf{};
  int rv = raft_apply(&r, &req, &buf, 1, cb);
  return rv + (int)raft_state(&r);
}
