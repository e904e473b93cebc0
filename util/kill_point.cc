// Kill points and deliberate bugs: compiled into the testing library only (SHARDTX_KILL_POINTS).
// In the library a host links, util/kill_point.h defines the little that remains inline.
#include "util/kill_point.h"

#ifdef SHARDTX_KILL_POINTS

#include <algorithm>
#include <cstdlib>
#include <map>

#include "util/mutex.h"

namespace shardtx {
namespace {

struct Registry {
  Mutex mu;
  std::map<std::string, uint64_t> hits ABSL_GUARDED_BY(mu);
  std::string armed ABSL_GUARDED_BY(mu);
  int skip ABSL_GUARDED_BY(mu) = 0;
  std::function<void()> action ABSL_GUARDED_BY(mu);
};

Registry& R() {
  static Registry* r = new Registry;
  return *r;
}

}  // namespace

std::atomic<bool> KillPoints::any_armed_{false};

KillPointRegistration::KillPointRegistration(const char* name) {
  Registry& r = R();
  MutexLock l(&r.mu);
  r.hits.emplace(name, 0);
}

std::vector<std::string> KillPoints::All() {
  Registry& r = R();
  MutexLock l(&r.mu);
  std::vector<std::string> out;
  for (const auto& [name, hits] : r.hits) out.push_back(name);
  return out;
}

void KillPoints::Arm(const std::string& name, int skip, std::function<void()> action) {
  Registry& r = R();
  MutexLock l(&r.mu);
  r.armed = name;
  r.skip = skip;
  r.action = std::move(action);
  any_armed_.store(true);
}

void KillPoints::DisarmAll() {
  Registry& r = R();
  MutexLock l(&r.mu);
  r.armed.clear();
  r.action = nullptr;
  any_armed_.store(false);
}

uint64_t KillPoints::Hits(const std::string& name) {
  Registry& r = R();
  MutexLock l(&r.mu);
  auto it = r.hits.find(name);
  return it == r.hits.end() ? 0 : it->second;
}

bool KillPoints::DeliberateBug(const char* bug) {
  static const std::string* configured = [] {
    const char* v = std::getenv("SHARDTX_DELIBERATE_BUG");
    return new std::string(v != nullptr ? v : "");
  }();
  return !configured->empty() && *configured == bug;
}

void KillPoints::Reached(const char* name) {
  Registry& r = R();
  std::function<void()> action;
  {
    MutexLock l(&r.mu);
    r.hits[name]++;
    if (r.armed != name) return;
    if (r.skip-- > 0) return;
    action = std::move(r.action);
    r.armed.clear();
    r.action = nullptr;
    any_armed_.store(false);
  }
  if (action) action();
}

}  // namespace shardtx

#endif  // SHARDTX_KILL_POINTS
