// The crashtest child: opens the database (recovery), reports "R", then runs the workload on
// many threads until it dies the way its parent chose: SIGKILL from the parent (blackbox), an
// armed kill point (whitebox), or a simulated power loss of the fault-injecting Env
// (powerloss). Every call is reported to the parent before it is made (intent) and after it
// returned (acknowledged, aborted or unknown); see protocol.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "shardtx/options.h"

namespace shardtx::crashtest {

struct ChildConfig {
  int fd = 3;  // the pipe to the parent
  std::string db_path;
  int shards = 4;
  int threads = 4;
  Options::LogLayout log_layout = Options::LogLayout::kShared;
  int round = 0;
  uint64_t seed = 0;
  // Whitebox or powerloss at a kill point: armed before Open, so recovery points can fire.
  std::string arm_point;
  int skip = 0;
  // Powerloss: the WAL runs on a FaultInjectionEnv; the crash drops unsynced WAL bytes.
  bool powerloss = false;
  std::string trigger;  // powerloss: "timer", "ops" or "point"
  int delay_ms = 0;     // timer: after "R"
  uint64_t ops = 0;     // ops: crash instead of the ops-th Env operation
  int tear = 0;         // FaultInjectionEnv::Tear of the crash
  // Commit read-write transactions with Transaction::CommitAsync (several in flight per
  // thread), acknowledging each from its callback; else with Commit.
  bool async_commit = false;
  // false: only open (recover), report N if the armed point was not reached, and exit.
  bool workload = true;
  // Named prepared transactions left from earlier rounds; thread i % threads may decide them.
  std::vector<std::string> pending;
};

[[noreturn]] void RunChild(const ChildConfig& config);

}  // namespace shardtx::crashtest
