// What the numbers were measured on: the machine, the file system of --dir, and how busy the
// CPUs were with other work during a run (a busy neighbour skews fsync and wake-up latency).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace txbench {

struct MachineInfo {
  std::string host, cpu_model, kernel, os, dir, filesystem, date_utc;
  int cpus = 0;
  double mem_gb = 0;
};

MachineInfo DescribeMachine(const std::string& dir);

// CPU time used by this process and by the whole machine, sampled at two instants.
struct CpuSample {
  double self_s = 0;     // this process, user + system (all threads)
  double machine_s = 0;  // all CPUs, busy (not idle or iowait)
  double wall_s = 0;
};
CpuSample SampleCpu();
// Cores used by this process / by everything else, between two samples.
std::pair<double, double> CoresUsed(const CpuSample& from, const CpuSample& to);

}  // namespace txbench
