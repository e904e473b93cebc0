// Free TCP ports on 127.0.0.1 for the tests that run RaftNodes over real sockets
// (util/loopback_ports.h, with a test failure when none is found).
#pragma once

#include <vector>

#include "gtest/gtest.h"
#include "util/loopback_ports.h"

namespace shardtx::replication {

// n distinct free TCP ports on 127.0.0.1.
inline std::vector<int> FreePorts(int n) {
  std::vector<int> ports;
  for (int i = 0; i < n; i++) {
    const int p = FreeLoopbackPortRange(1, ports);
    if (p == 0) {
      ADD_FAILURE() << "cannot find a free port";
      continue;
    }
    ports.push_back(p);
  }
  return ports;
}

// The first of `count` consecutive free TCP ports on 127.0.0.1 (a replicated Database's member
// uses P .. P+shards), avoiding `avoid` ports already handed out; 0 if none was found.
inline int FreePortRange(int count, const std::vector<int>& avoid = {}) {
  const int first = FreeLoopbackPortRange(count, avoid);
  if (first == 0) ADD_FAILURE() << "no " << count << " consecutive free ports";
  return first;
}

}  // namespace shardtx::replication
