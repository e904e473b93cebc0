// util/loopback_ports.h: ports drawn by one program are not drawn again by it or by another
// program running beside it (the suite runs replicated tests two at a time; CI once failed when
// two drew the same port: "Address already in use" at Open).
#include "util/loopback_ports.h"

#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace shardtx {
namespace {

bool Overlap(int a, int b, int count) { return a < b + count && b < a + count; }

TEST(LoopbackPorts, TheSameDrawsInOneProcessGiveDisjointRanges) {
  std::mt19937_64 rng1(7), rng2(7);  // the same draws: the same first candidate
  const int a = FreeLoopbackPortRange(3, {}, rng1);
  const int b = FreeLoopbackPortRange(3, {}, rng2);
  ASSERT_NE(a, 0);
  ASSERT_NE(b, 0);
  EXPECT_FALSE(Overlap(a, b, 3)) << a << " " << b;
}

// A child process draws with the same generator and keeps its ports (without binding them, as a
// node restarting does between close and open) until the parent has drawn.
TEST(LoopbackPorts, APortAnotherRunningProcessDrewIsNotDrawn) {
  int to_parent[2], to_child[2];
  ASSERT_EQ(pipe(to_parent), 0);
  ASSERT_EQ(pipe(to_child), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::mt19937_64 rng(11);
    const int p = FreeLoopbackPortRange(3, {}, rng);
    char done = 0;
    const bool ok = write(to_parent[1], &p, sizeof p) == sizeof p &&
                    read(to_child[0], &done, 1) == 1;
    _exit(ok ? 0 : 1);
  }
  int theirs = 0;
  ASSERT_EQ(read(to_parent[0], &theirs, sizeof theirs), static_cast<ssize_t>(sizeof theirs));
  ASSERT_NE(theirs, 0);
  std::mt19937_64 rng(11);
  const int mine = FreeLoopbackPortRange(3, {}, rng);
  EXPECT_NE(mine, 0);
  EXPECT_FALSE(Overlap(mine, theirs, 3)) << mine << " " << theirs;
  const char done = 1;
  EXPECT_EQ(write(to_child[1], &done, 1), 1);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  for (int fd : {to_parent[0], to_parent[1], to_child[0], to_child[1]}) close(fd);
}

// Ports a process gave back may be drawn again: the reservation is not a leak.
TEST(LoopbackPorts, AReleasedPortCanBeReservedAgain) {
  std::mt19937_64 rng(13);
  const int p = FreeLoopbackPortRange(1, {}, rng);
  ASSERT_NE(p, 0);
  EXPECT_FALSE(ReserveLoopbackPort(p));
  ReleaseLoopbackPort(p);
  EXPECT_TRUE(ReserveLoopbackPort(p));
}

}  // namespace
}  // namespace shardtx
