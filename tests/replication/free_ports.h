// Free TCP ports on 127.0.0.1 for the tests that run RaftNodes over real sockets.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "gtest/gtest.h"

namespace shardtx::replication {

// n distinct free TCP ports on 127.0.0.1 (bound together, then released).
inline std::vector<int> FreePorts(int n) {
  std::vector<int> fds, ports;
  for (int i = 0; i < n; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ADD_FAILURE() << "cannot find a free port";
      if (fd >= 0) close(fd);
      continue;
    }
    fds.push_back(fd);
    ports.push_back(ntohs(a.sin_port));
  }
  for (int fd : fds) close(fd);
  return ports;
}

// The first of `count` consecutive free TCP ports on 127.0.0.1 (a replicated Database's member
// uses P .. P+shards), avoiding `avoid` ports already handed out; 0 if none was found.
inline int FreePortRange(int count, const std::vector<int>& avoid = {}) {
  for (int attempt = 0; attempt < 200; attempt++) {
    std::vector<int> first = FreePorts(1);
    if (first.empty() || first[0] + count > 65535) continue;
    bool ok = true;
    for (int p = first[0]; p < first[0] + count && ok; p++) {
      for (int a : avoid) ok = ok && a != p;
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<uint16_t>(p));
      ok = ok && fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      if (fd >= 0) close(fd);
    }
    if (ok) return first[0];
  }
  ADD_FAILURE() << "no " << count << " consecutive free ports";
  return 0;
}

}  // namespace shardtx::replication
