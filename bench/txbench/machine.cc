#include "bench/txbench/machine.h"

#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace txbench {
namespace {

std::string FirstLineWith(const std::string& path, const std::string& prefix) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, prefix)) return line;
  }
  return "";
}

std::string AfterColon(const std::string& line) {
  const size_t c = line.find(':');
  if (c == std::string::npos) return "";
  return std::string(absl::StripAsciiWhitespace(line.substr(c + 1)));
}

std::string FileSystemName(const std::string& dir) {
  struct statfs s;
  if (statfs(dir.c_str(), &s) != 0) return "unknown";
  switch (static_cast<uint64_t>(s.f_type)) {
    case 0xEF53:
      return "ext4";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x01021994:
      return "tmpfs (fsync is free: not a disk measurement)";
    case 0x794c7630:
      return "overlayfs";
    case 0x65735546:
      return "fuse";
    case 0x6969:
      return "nfs";
    case 0x2FC12FC1:
      return "zfs";
    case 0xF2F52010:
      return "f2fs";
    default:
      return absl::StrFormat("0x%x", static_cast<uint64_t>(s.f_type));
  }
}

}  // namespace

MachineInfo DescribeMachine(const std::string& dir) {
  MachineInfo m;
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) == 0) m.host = host;
  m.cpu_model = AfterColon(FirstLineWith("/proc/cpuinfo", "model name"));
  m.cpus = static_cast<int>(std::thread::hardware_concurrency());
  const std::string mem = AfterColon(FirstLineWith("/proc/meminfo", "MemTotal"));
  m.mem_gb = std::atof(mem.c_str()) / (1024.0 * 1024.0);
  struct utsname u;
  if (uname(&u) == 0) m.kernel = absl::StrFormat("%s %s %s", u.sysname, u.release, u.machine);
  std::string os = FirstLineWith("/etc/os-release", "PRETTY_NAME=");
  os = std::string(absl::StripPrefix(os, "PRETTY_NAME="));
  if (os.size() >= 2 && os.front() == '"') os = os.substr(1, os.size() - 2);
  m.os = os;
  m.dir = dir;
  m.filesystem = FileSystemName(dir);
  m.date_utc = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone());
  return m;
}

CpuSample SampleCpu() {
  CpuSample s;
  s.wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) == 0) {
    s.self_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  }
  std::ifstream in("/proc/stat");
  std::string cpu;
  uint64_t v[10] = {0};
  in >> cpu;
  for (uint64_t& x : v) in >> x;
  // user nice system idle iowait irq softirq steal guest guest_nice; guest is inside user.
  const uint64_t busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  const long hz = sysconf(_SC_CLK_TCK);
  s.machine_s = static_cast<double>(busy) / static_cast<double>(hz > 0 ? hz : 100);
  return s;
}

std::pair<double, double> CoresUsed(const CpuSample& from, const CpuSample& to) {
  const double wall = to.wall_s - from.wall_s;
  if (wall <= 0) return {0, 0};
  const double self = (to.self_s - from.self_s) / wall;
  double other = (to.machine_s - from.machine_s) / wall - self;
  if (other < 0) other = 0;  // tick granularity
  return {self, other};
}

}  // namespace txbench
