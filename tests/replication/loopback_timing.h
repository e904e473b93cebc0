// The Raft timing of the tests that run replicated Databases over real sockets on 127.0.0.1
// (longer in a sanitizer build: SHARDTX_REPLICATION_SLOW_BUILD), and their polling wait.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace shardtx::replication {

#ifdef SHARDTX_REPLICATION_SLOW_BUILD
inline constexpr int kElectionMs = 1000;
inline constexpr int kHeartbeatMs = 100;
#else
inline constexpr int kElectionMs = 300;
inline constexpr int kHeartbeatMs = 50;
#endif
inline constexpr auto kDeadline = std::chrono::seconds(30);

// Polls `done` every few milliseconds until it holds or kDeadline passes.
inline bool WaitFor(const std::function<bool()>& done) {
  const auto end = std::chrono::steady_clock::now() + kDeadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace shardtx::replication
