extern "C" {
#include <raft.h>
#include <raft/uv.h>
#include <raft/fixture.h>
}
static void cb(struct raft_apply *, int, void *) {}
int main() {
  struct raft r;
  raft_apply req;            // C++ style: no 'struct' keyword
  struct raft_buffer buf{};
  int rv = raft_apply(&r, &req, &buf, 1, cb);
  return rv + (int)raft_state(&r);
}
