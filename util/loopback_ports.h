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
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <random>
#include <set>
#include <vector>

namespace shardtx {

// Every port drawn below is also reserved until the drawing process exits, so that programs
// running side by side (ctest -j) never draw the same port, even one whose user has closed it
// for a moment to restart a node on it: in this process by a set, across processes by a write
// lock (fcntl, released by the kernel when the process exits) on byte `port` of one shared file.
// Without the file (not creatable or writable) only the in-process reservation holds.
inline constexpr char kLoopbackPortLockFile[] = "/tmp/shardtx-loopback-ports.lock";

// This process's reservations (see above).
struct LoopbackPortReservations {
  std::mutex mu;
  std::set<int> mine;
  int fd = -1;  // the lock file, or -1

  static LoopbackPortReservations& Get() {
    static LoopbackPortReservations* r = [] {
      auto* n = new LoopbackPortReservations;  // never freed: its locks last as long as the process
      n->fd = open(kLoopbackPortLockFile, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
      if (n->fd >= 0) (void)fchmod(n->fd, 0666);  // other users' programs share it
      return n;
    }();
    return *r;
  }
  // Sets (F_WRLCK) or clears (F_UNLCK) this process's lock on byte `port`; true if done.
  bool Lock(int port, short type) const {
    if (fd < 0) return true;
    struct flock range{};
    range.l_type = type;
    range.l_whence = SEEK_SET;
    range.l_start = port;
    range.l_len = 1;
    return fcntl(fd, F_SETLK, &range) == 0;
  }
};

// Reserves `port` for this process until it exits; false if this or another process has it.
inline bool ReserveLoopbackPort(int port) {
  LoopbackPortReservations& r = LoopbackPortReservations::Get();
  std::lock_guard<std::mutex> lock(r.mu);
  if (r.mine.count(port) != 0 || !r.Lock(port, F_WRLCK)) return false;
  r.mine.insert(port);
  return true;
}

// Gives back a port this process reserved.
inline void ReleaseLoopbackPort(int port) {
  LoopbackPortReservations& r = LoopbackPortReservations::Get();
  std::lock_guard<std::mutex> lock(r.mu);
  if (r.mine.erase(port) != 0) r.Lock(port, F_UNLCK);
}

// The first of `count` consecutive ports in [10000, the ephemeral range's start) that could each
// be bound on 127.0.0.1 just now, none of them in `avoid` nor drawn before by this or another
// process that is still running (see ReserveLoopbackPort); 0 if 500 draws from `rng` found none.
// The ports stay reserved until this process exits. A program that does not draw here may still
// take a port before its user binds it: bind soon.
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
    int reserved = 0;
    while (ok && reserved < count) {
      ok = ReserveLoopbackPort(first + reserved);
      reserved += ok ? 1 : 0;
    }
    if (ok) return first;
    for (int p = first; p < first + reserved; ++p) ReleaseLoopbackPort(p);
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
