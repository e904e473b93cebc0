// Named kill points: places in the commit, checkpoint, 2PC and recovery paths where a crash test
// can make the process die (or the fault-injecting Env crash) deterministically, and deliberate
// bugs that prove the crash tests catch what they should. Only in the testing library
// (shardtx_testing, compiled with SHARDTX_KILL_POINTS); a disarmed point costs one relaxed
// atomic load there. The library a host links (shardtx) has none: without SHARDTX_KILL_POINTS
// the macros below compile to nothing, DeliberateBug is constant false (no environment variable
// is read) and All() is empty.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace shardtx {

class KillPoints {
 public:
#ifdef SHARDTX_KILL_POINTS
  // Every kill point name compiled into the library, sorted.
  static std::vector<std::string> All();

  // Arms `name`: its `skip`+1-th hit from now runs `action` (once), then the point is disarmed.
  // Replaces any earlier arming. `action` typically calls _exit or crashes a FaultInjectionEnv.
  static void Arm(const std::string& name, int skip, std::function<void()> action);
  static void DisarmAll();
  // Number of times `name` was reached while some kill point was armed.
  static uint64_t Hits(const std::string& name);

  // Deliberate bugs, for proving that crash tests catch them: true when the environment
  // variable SHARDTX_DELIBERATE_BUG names `bug` (read once). Known bugs:
  //   "ack_before_fsync"      single-shard commits return before their record is durable;
  //   "commit_with_prepare_missing"  a cross-shard commit is decided (acknowledged) with its
  //                          last participant's prepare neither synced nor waited for;
  //   "async_complete_before_fsync"  CommitAsync calls back before the record is durable.
  static bool DeliberateBug(const char* bug);

  // Implementation of SHARDTX_KILL_POINT; do not call directly.
  static void Reached(const char* name);
  static std::atomic<bool> any_armed_;
#else
  // The library a host links: no kill points, and no deliberate bug can be switched on (the
  // compiler drops the code behind them).
  static std::vector<std::string> All() { return {}; }
  static constexpr bool DeliberateBug(const char*) { return false; }
#endif
};

#ifdef SHARDTX_KILL_POINTS
// Registers a name at static-initialisation time so --list-kill-points can print it.
struct KillPointRegistration {
  explicit KillPointRegistration(const char* name);
};
#endif

}  // namespace shardtx

#ifdef SHARDTX_KILL_POINTS
// Declares a kill point. `name` must be a string literal; declare each name once with
// SHARDTX_DEFINE_KILL_POINT at namespace scope in the .cc file that uses it.
#define SHARDTX_DEFINE_KILL_POINT(var, name) \
  static const ::shardtx::KillPointRegistration kill_point_##var(name)
#define SHARDTX_KILL_POINT(name)                                           \
  do {                                                                     \
    if (::shardtx::KillPoints::any_armed_.load(std::memory_order_relaxed)) \
      ::shardtx::KillPoints::Reached(name);                                \
  } while (0)
#else
#define SHARDTX_DEFINE_KILL_POINT(var, name) static_assert(true)
#define SHARDTX_KILL_POINT(name) \
  do {                           \
  } while (0)
#endif
