// ChildProcess: spawns one crashtest child (posix_spawn of this binary with --child), reads its
// report lines from a pipe, and kills it with SIGKILL when the parent's deadline says so.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace shardtx::crashtest {

struct ChildExit {
  std::vector<std::string> lines;  // every line the child wrote, in order
  bool ready = false;              // it wrote "R" (Open succeeded)
  double ready_ms = 0;             // when, from the spawn
  bool killed = false;             // the parent sent SIGKILL
  bool exited = false;             // exited by itself ...
  int exit_code = 0;               // ... with this code
  int signal = 0;                  // or died of this signal
  std::string fired;               // "K <point>": the kill point that fired
  std::string power_loss;          // "P <how>": the Env crash that happened
  bool not_reached = false;        // "N"
};

// Runs the child to its death. `deadline(ready, ms_since_ready)` is asked every few
// milliseconds; when it returns true the child is killed. Child stdout and stderr go to
// `log_path` (appended).
bool RunChildProcess(
    const std::string& self, const std::vector<std::string>& args, const std::string& log_path,
    const std::function<bool(bool ready, double ms_since_spawn, double ms_since_ready)>& deadline,
    ChildExit* result, std::string* error);

}  // namespace shardtx::crashtest
