// Free TCP ports on 127.0.0.1 for the programs that run several replicated nodes on one machine:
// the replication tests, txbench --replicas and crashtest --mode=replicated. Header-only; not
// part of the library.
//
// The ports are drawn below the kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range,
// 32768 when unreadable), never from it: a port the kernel handed out for a bind to port 0 and
// that was then released is exactly what the next outgoing connection on the machine (of another
// node, of a test running beside this one) takes as its local port, and a node restarting on it
// would then fail to listen.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

namespace shardtx {

// The first of `count` consecutive ports in [10000, the ephemeral range's start) that could each
// be bound on 127.0.0.1 just now, none of them in `avoid`; 0 if 500 draws from `rng` found none.
// A port found free may be taken by another process before its user binds it: bind soon, and
// draw again if that fails.
inline int FreeLoopbackPortRange(int count, const std::vector<int>& avoid, std::mt19937_64& rng) {
  int ephemeral_low = 32768;
  if (FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r"); f != nullptr) {
    if (std::fscanf(f, "%d", &ephemeral_low) != 1) ephemeral_low = 32768;
    std::fclose(f);
  }
  const int span = ephemeral_low - 10000 - count;
  if (count <= 0 || span <= 0) return 0;
  for (int attempt = 0; attempt < 500; ++attempt) {
    const int first = 10000 + static_cast<int>(rng() % static_cast<uint64_t>(span));
    bool ok = true;
    for (int p = first; p < first + count && ok; ++p) {
      ok = std::find(avoid.begin(), avoid.end(), p) == avoid.end();
      const int fd = ok ? socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) : -1;
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<uint16_t>(p));
      ok = ok && fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      if (fd >= 0) close(fd);
    }
    if (ok) return first;
  }
  return 0;
}

// The same, drawing from a generator seeded by the process id and the clock (so that tests
// running side by side draw different ports).
inline int FreeLoopbackPortRange(int count, const std::vector<int>& avoid = {}) {
  static thread_local std::mt19937_64 rng(
      static_cast<uint64_t>(::getpid()) * 0x9E3779B97F4A7C15ull ^
      static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  return FreeLoopbackPortRange(count, avoid, rng);
}

}  // namespace shardtx
