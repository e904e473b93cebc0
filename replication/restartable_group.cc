// RestartableGroup: the C++ face of raft_shim.h's crash simulator backend.
#include "replication/restartable_group.h"

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "replication/machine_callbacks.h"
#include "replication/raft_shim.h"
#include "replication/sim_io.h"

namespace shardtx::replication {

// One incarnation of a server: its machine and the shim callbacks' context.
struct RestartableGroup::Server {
  RestartableGroup* group = nullptr;
  unsigned index = 0;
  std::unique_ptr<StateMachine> machine;
  uint64_t next_cookie = 1;
  absl::flat_hash_map<uint64_t, DoneCallback> pending;

  rs_callbacks Callbacks() {
    return rs_callbacks{this,
                        &OnRelease,
                        &OnSnapshot,
                        &OnRestore,
                        &OnDone,
                        &OnBarrierDone,
                        /*change_done=*/nullptr};
  }
  static void OnRelease(void* ctx, uint64_t term, uint64_t index, const void* data, size_t len) {
    ReleaseTo(static_cast<Server*>(ctx)->machine.get(), term, index, data, len);
  }
  static int OnSnapshot(void* ctx, void** data, size_t* len) {
    return SnapshotOf(static_cast<Server*>(ctx)->machine.get(), data, len);
  }
  static int OnRestore(void* ctx, const void* data, size_t len) {
    auto* self = static_cast<Server*>(ctx);
    int rv = RestoreInto(self->machine.get(), data, len);
    if (rv == 0 && self->group->after_restore_) self->group->after_restore_(self->index);
    return rv;
  }
  static void OnDone(void* ctx, uint64_t cookie, int status) {
    auto* self = static_cast<Server*>(ctx);
    auto it = self->pending.find(cookie);
    if (it == self->pending.end()) return;
    DoneCallback done = std::move(it->second);
    self->pending.erase(it);
    done(status == RS_OK ? absl::OkStatus()
                         : absl::UnknownError(absl::StrCat(
                               "outcome unknown: server ", self->index,
                               " lost its leadership or crashed while the entry was in flight")));
  }
  static void OnBarrierDone(void*, uint64_t, int, uint64_t) {}  // no barriers here
};

absl::StatusOr<std::unique_ptr<RestartableGroup>> RestartableGroup::Open(
    const RestartableGroupOptions& options, MachineOpener open, MachineCrasher crash,
    RestoreHook after_restore) {
  if (options.servers == 0 || options.servers > SIO_MAX_SERVERS) {
    return absl::InvalidArgumentError(
        absl::StrCat("a restartable group has 1 to 8 servers, not ", options.servers));
  }
  if (!open || !crash) return absl::InvalidArgumentError("an opener and a crasher are required");
  std::unique_ptr<RestartableGroup> group(new RestartableGroup());
  group->open_ = std::move(open);
  group->crash_ = std::move(crash);
  group->after_restore_ = std::move(after_restore);
  std::vector<rs_callbacks> callbacks;
  for (unsigned i = 0; i < options.servers; i++) {
    auto server = std::make_unique<Server>();
    server->group = group.get();
    server->index = i;
    absl::StatusOr<std::unique_ptr<StateMachine>> machine = group->open_(i);
    if (!machine.ok()) return machine.status();
    server->machine = std::move(*machine);
    callbacks.push_back(server->Callbacks());
    group->servers_.push_back(std::move(server));
  }
  rs_config config;
  rs_config_default(&config);
  config.election_timeout_ms = options.election_timeout_ms;
  config.heartbeat_ms = options.heartbeat_ms;
  config.snapshot_threshold = options.snapshot_threshold;
  config.snapshot_trailing = options.snapshot_trailing;
  config.pre_vote = options.pre_vote ? 1 : 0;
  config.figure8_guard = options.figure8_guard ? 1 : 0;
  config.match_index_fix = options.match_index_fix ? 1 : 0;
  int rv = rs_world_open(options.servers, &config, options.seed, callbacks.data(), &group->world_);
  if (rv == RS_NOMEM) return absl::ResourceExhaustedError("restartable group: out of memory");
  if (rv != RS_OK) {
    return absl::InvalidArgumentError(
        "restartable group: libraft refused the configuration (timeouts and threshold must be > "
        "0)");
  }
  rs_world_set_mutation(group->world_, options.mutation);
  return group;
}

RestartableGroup::~RestartableGroup() {
  if (world_ != nullptr) rs_world_close(world_);
}

bool RestartableGroup::Up(unsigned server) const { return rs_world_up(world_, server) != 0; }

StateMachine* RestartableGroup::machine(unsigned server) {
  return Up(server) ? servers_[server]->machine.get() : nullptr;
}

absl::Status RestartableGroup::Propose(unsigned server, std::string_view payload,
                                       DoneCallback done) {
  rs_group* g = rs_world_group(world_, server);
  if (g == nullptr) return absl::UnavailableError(absl::StrCat("server ", server, " is down"));
  Server& s = *servers_[server];
  uint64_t cookie = s.next_cookie++;
  int rv = rs_group_propose(g, payload.data(), payload.size(), cookie, 0);
  if (rv == RS_OK) {
    s.pending.emplace(cookie, std::move(done));
    return absl::OkStatus();
  }
  return Refusal(server, rv);
}

absl::Status RestartableGroup::Refusal(unsigned server, int code) const {
  return ProposalRefusal(server, code, Info(server));
}

std::optional<unsigned> RestartableGroup::Leader() const {
  return ReadyLeaderOf(size(), [this](unsigned i) { return Info(i); });
}

ServerInfo RestartableGroup::Info(unsigned server) const {
  rs_group* g = rs_world_group(world_, server);
  if (g == nullptr) {
    ServerInfo info;
    info.server = server;
    info.alive = false;
    return info;
  }
  rs_info raw;
  rs_group_info(g, &raw);
  return ServerInfoOf(server, true, raw);
}

uint64_t RestartableGroup::NowMs() const { return rs_world_time(world_); }
bool RestartableGroup::Step() { return rs_world_step(world_) != 0; }

std::optional<uint64_t> RestartableGroup::NextEventMs() const {
  uint64_t t = 0;
  if (rs_world_next_time(world_, &t) == 0) return std::nullopt;
  return t;
}
void RestartableGroup::AdvanceTo(uint64_t ms) { rs_world_advance(world_, ms); }

void RestartableGroup::StepFor(uint64_t ms) {
  uint64_t end = NowMs() + ms;
  while (NowMs() < end && Step()) {
  }
}

bool RestartableGroup::StepUntil(const std::function<bool()>& done, uint64_t timeout_ms) {
  uint64_t end = NowMs() + timeout_ms;
  while (!done()) {
    if (NowMs() >= end || !Step()) return done();
  }
  return true;
}

void RestartableGroup::Crash(unsigned server) {
  if (!Up(server)) return;
  rs_world_crash(world_, server);  // in-flight proposals: OnDone(kUnknown)
  Server& s = *servers_[server];
  s.pending.clear();
  crash_(server, std::move(s.machine));
}

absl::Status RestartableGroup::Restart(unsigned server) {
  if (Up(server)) {
    return absl::FailedPreconditionError(absl::StrCat("server ", server, " is up"));
  }
  auto fresh = std::make_unique<Server>();
  fresh->group = this;
  fresh->index = server;
  absl::StatusOr<std::unique_ptr<StateMachine>> machine = open_(server);
  if (!machine.ok()) return machine.status();
  fresh->machine = std::move(*machine);
  servers_[server] = std::move(fresh);
  Server& s = *servers_[server];
  rs_callbacks callbacks = s.Callbacks();
  int rv = rs_world_restart(world_, server, &callbacks);
  if (rv != RS_OK) {
    crash_(server, std::move(s.machine));
    return absl::UnavailableError(
        absl::StrCat("server ", server, ": libraft refused to start (shim code ", rv, ")"));
  }
  return absl::OkStatus();
}

void RestartableGroup::SetLink(unsigned from, unsigned to, bool up) {
  rs_world_link(world_, from, to, up ? 1 : 0);
}
void RestartableGroup::SetDrop(unsigned from, unsigned to, unsigned percent) {
  rs_world_drop(world_, from, to, percent);
}
void RestartableGroup::Isolate(unsigned server) {
  for (unsigned j = 0; j < size(); j++) {
    if (j == server) continue;
    SetLink(server, j, false);
    SetLink(j, server, false);
  }
}
void RestartableGroup::HealNetwork() {
  for (unsigned i = 0; i < size(); i++) {
    for (unsigned j = 0; j < size(); j++) {
      SetLink(i, j, true);
      SetDrop(i, j, 0);
    }
  }
}
void RestartableGroup::SetLatency(unsigned server, unsigned network_ms, unsigned disk_ms) {
  rs_world_latency(world_, server, network_ms, disk_ms);
}
void RestartableGroup::FailWrite(unsigned server, unsigned n) {
  rs_world_fail_write(world_, server, n);
}
uint64_t RestartableGroup::LeaderConflicts() const { return rs_world_leader_conflicts(world_); }

SimulatorStats RestartableGroup::Stats() const {
  struct sio_stats raw;
  rs_world_stats(world_, &raw);
  SimulatorStats s;
  s.messages_sent = raw.messages_sent;
  s.messages_dropped = raw.messages_dropped;
  s.messages_lost = raw.messages_lost;
  s.appends_completed = raw.appends_completed;
  s.appends_cancelled = raw.appends_cancelled;
  s.writes_failed = raw.writes_failed;
  s.snapshots_put = raw.snapshots_put;
  s.crashes = raw.crashes;
  s.model_errors = raw.model_errors;
  return s;
}

uint64_t RestartableGroup::DurableLastIndex(unsigned server) const {
  return rs_world_durable_last_index(world_, server);
}

}  // namespace shardtx::replication
