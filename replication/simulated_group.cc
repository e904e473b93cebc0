// SimulatedGroup: the C++ face of raft_shim.h's fixture backend.
#include "replication/simulated_group.h"

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "replication/machine_callbacks.h"
#include "replication/raft_shim.h"

namespace shardtx::replication {

// One server's context for the shim's callbacks.
struct SimulatedGroup::Server {
  StateMachine* machine = nullptr;
  uint64_t next_cookie = 1;
  absl::flat_hash_map<uint64_t, DoneCallback> pending;
  absl::flat_hash_map<uint64_t, BarrierCallback> pending_barriers;

  static void OnRelease(void* ctx, uint64_t term, uint64_t index, const void* data, size_t len) {
    ReleaseTo(static_cast<Server*>(ctx)->machine, term, index, data, len);
  }
  static int OnSnapshot(void* ctx, void** data, size_t* len) {
    return SnapshotOf(static_cast<Server*>(ctx)->machine, data, len);
  }
  static int OnRestore(void* ctx, const void* data, size_t len) {
    return RestoreInto(static_cast<Server*>(ctx)->machine, data, len);
  }

  static void OnDone(void* ctx, uint64_t cookie, int status) {
    auto* self = static_cast<Server*>(ctx);
    auto it = self->pending.find(cookie);
    if (it == self->pending.end()) return;
    DoneCallback done = std::move(it->second);
    self->pending.erase(it);
    if (status == RS_OK) {
      done(absl::OkStatus());
    } else {
      done(
          absl::UnknownError("outcome unknown: leadership was lost while the entry was in flight"));
    }
  }

  static void OnBarrierDone(void* ctx, uint64_t cookie, int status, uint64_t term) {
    auto* self = static_cast<Server*>(ctx);
    auto it = self->pending_barriers.find(cookie);
    if (it == self->pending_barriers.end()) return;
    BarrierCallback done = std::move(it->second);
    self->pending_barriers.erase(it);
    if (status == RS_OK) {
      done(term);
    } else {
      done(absl::UnknownError("leadership was lost before the barrier committed"));
    }
  }
};

absl::StatusOr<std::unique_ptr<SimulatedGroup>> SimulatedGroup::Open(
    const SimulatedGroupOptions& options, std::vector<std::unique_ptr<StateMachine>> machines) {
  if (options.servers == 0 || options.servers > 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("a simulated group has 1 to 8 servers, not ", options.servers));
  }
  if (machines.size() != options.servers) {
    return absl::InvalidArgumentError(absl::StrCat("options name ", options.servers,
                                                   " servers but ", machines.size(),
                                                   " state machines were given"));
  }
  std::unique_ptr<SimulatedGroup> group(new SimulatedGroup());
  std::vector<rs_callbacks> callbacks(options.servers);
  for (unsigned i = 0; i < options.servers; i++) {
    if (machines[i] == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("state machine ", i, " is null"));
    }
    auto server = std::make_unique<Server>();
    server->machine = machines[i].get();
    callbacks[i] = rs_callbacks{server.get(),           &Server::OnRelease, &Server::OnSnapshot,
                                &Server::OnRestore,     &Server::OnDone,    &Server::OnBarrierDone,
                                /*change_done=*/nullptr};
    group->servers_.push_back(std::move(server));
  }
  group->machines_ = std::move(machines);
  rs_config config;
  rs_config_default(&config);
  config.election_timeout_ms = options.election_timeout_ms;
  config.heartbeat_ms = options.heartbeat_ms;
  config.snapshot_threshold = options.snapshot_threshold;
  config.snapshot_trailing = options.snapshot_trailing;
  config.pre_vote = options.pre_vote ? 1 : 0;
  config.redraw_election_timeouts = options.redraw_election_timeouts ? 1 : 0;
  config.figure8_guard = options.figure8_guard ? 1 : 0;
  config.match_index_fix = options.match_index_fix ? 1 : 0;
  int rv = rs_sim_open(options.servers, &config, options.seed, callbacks.data(), &group->sim_);
  if (rv == RS_NOMEM) return absl::ResourceExhaustedError("simulated group: out of memory");
  if (rv != RS_OK) {
    return absl::InvalidArgumentError(
        "simulated group: libraft refused the configuration (timeouts and threshold must be > 0)");
  }
  return group;
}

SimulatedGroup::~SimulatedGroup() {
  if (sim_ != nullptr) rs_sim_close(sim_);
}

absl::Status SimulatedGroup::Elect(unsigned server, uint64_t timeout_ms) {
  rs_sim_elect(sim_, server);
  if (!StepUntil([&] { return Info(server).ready; }, timeout_ms)) {
    return absl::DeadlineExceededError(
        absl::StrCat("server ", server, " was elected but not ready within ", timeout_ms, " ms"));
  }
  return absl::OkStatus();
}

absl::Status SimulatedGroup::Propose(unsigned server, std::string_view payload, DoneCallback done,
                                     uint64_t term) {
  Server& s = *servers_[server];
  uint64_t cookie = s.next_cookie++;
  int rv =
      rs_group_propose(rs_sim_group(sim_, server), payload.data(), payload.size(), cookie, term);
  if (rv == RS_OK) {
    s.pending.emplace(cookie, std::move(done));
    return absl::OkStatus();
  }
  return Refusal(server, rv);
}

absl::Status SimulatedGroup::Barrier(unsigned server, BarrierCallback done) {
  Server& s = *servers_[server];
  uint64_t cookie = s.next_cookie++;
  int rv = rs_group_barrier(rs_sim_group(sim_, server), cookie);
  if (rv == RS_OK) {
    s.pending_barriers.emplace(cookie, std::move(done));
    return absl::OkStatus();
  }
  if (rv == RS_IOERR) {
    return absl::UnavailableError(
        absl::StrCat("libraft failed a barrier on server ", server, " with an I/O error"));
  }
  return Refusal(server, rv);
}

absl::Status ProposalRefusal(unsigned server, int code, const ServerInfo& info) {
  switch (code) {
    case RS_NOT_LEADER: {
      return absl::UnavailableError(absl::StrCat(
          "server ", server, " does not lead (term ", info.term, "); ",
          info.believed_leader ? absl::StrCat("leader is server ", *info.believed_leader)
                               : std::string("leader unknown")));
    }
    case RS_NOT_READY: {
      return absl::UnavailableError(absl::StrCat(
          "server ", server, " leads term ", info.term,
          " but is not ready (its term-start entry is not released); leader is server ", server));
    }
    case RS_TERM_CHANGED:
      return absl::UnavailableError(
          absl::StrCat("server ", server, " leads term ", info.term,
                       ", not the term the entry was proposed for (its leadership moved and came "
                       "back)"));
    case RS_DOWN:
      return absl::UnavailableError(absl::StrCat("server ", server, " is down"));
    case RS_NOMEM:
      return absl::ResourceExhaustedError("propose: out of memory");
    default:
      return absl::UnknownError(absl::StrCat(
          "outcome unknown: libraft failed the proposal on server ", server, " with an I/O error"));
  }
}

std::optional<unsigned> ReadyLeaderOf(unsigned servers,
                                      const std::function<ServerInfo(unsigned)>& info_of) {
  std::optional<unsigned> leader;
  uint64_t top_term = 0;
  for (unsigned i = 0; i < servers; i++) {
    ServerInfo info = info_of(i);
    if (info.alive && info.ready && info.term >= top_term) {
      top_term = info.term;
      leader = i;
    }
  }
  // A ready leader of an older term than a live server's is being deposed.
  for (unsigned i = 0; leader && i < servers; i++) {
    ServerInfo info = info_of(i);
    if (info.alive && info.role != Role::kUnavailable && info.term > top_term) leader.reset();
  }
  return leader;
}

ServerInfo ServerInfoOf(unsigned server, bool alive, const ::rs_info& raw) {
  ServerInfo info;
  info.server = server;
  info.alive = alive;
  info.role = static_cast<Role>(raw.role);
  info.ready = raw.ready != 0;
  info.term = raw.term;
  if (raw.leader_id != 0) info.believed_leader = static_cast<unsigned>(raw.leader_id - 1);
  info.last_index = raw.last_index;
  info.commit_index = raw.commit_index;
  info.last_applied = raw.last_applied;
  info.released_index = raw.released_index;
  info.held = raw.held;
  info.noops_proposed = raw.noops_proposed;
  info.snapshots_taken = raw.snapshots_taken;
  info.snapshots_refused = raw.snapshots_refused;
  info.restores = raw.restores;
  info.tag_mismatches = raw.tag_mismatches;
  info.malformed = raw.malformed;
  info.unavailable = raw.unavailable;
  info.results_lowered = raw.results_lowered;
  info.results_unmatched = raw.results_unmatched;
  info.elections_started = raw.elections_started;
  info.elections_won = raw.elections_won;
  info.snapshots_sent = raw.snapshots_sent;
  info.snapshots_installed = raw.snapshots_installed;
  return info;
}

absl::Status SimulatedGroup::Refusal(unsigned server, int code) const {
  return ProposalRefusal(server, code, Info(server));
}

std::optional<unsigned> SimulatedGroup::Leader() const {
  return ReadyLeaderOf(size(), [this](unsigned i) { return Info(i); });
}

ServerInfo SimulatedGroup::Info(unsigned server) const {
  rs_info raw;
  rs_group_info(rs_sim_group(sim_, server), &raw);
  return ServerInfoOf(server, Alive(server), raw);
}

uint64_t SimulatedGroup::NowMs() const { return rs_sim_time(sim_); }
void SimulatedGroup::Step() { rs_sim_step(sim_); }

void SimulatedGroup::StepFor(uint64_t ms) {
  uint64_t end = NowMs() + ms;
  while (NowMs() < end) Step();
}

bool SimulatedGroup::StepUntil(const std::function<bool()>& done, uint64_t timeout_ms) {
  uint64_t end = NowMs() + timeout_ms;
  while (!done()) {
    if (NowMs() >= end) return false;
    Step();
  }
  return true;
}

void SimulatedGroup::Disconnect(unsigned from, unsigned to) { rs_sim_disconnect(sim_, from, to); }
void SimulatedGroup::Reconnect(unsigned from, unsigned to) { rs_sim_reconnect(sim_, from, to); }
void SimulatedGroup::Saturate(unsigned from, unsigned to) { rs_sim_saturate(sim_, from, to); }
void SimulatedGroup::Desaturate(unsigned from, unsigned to) { rs_sim_desaturate(sim_, from, to); }

void SimulatedGroup::Isolate(unsigned server) {
  for (unsigned j = 0; j < size(); j++) {
    if (j == server) continue;
    Disconnect(server, j);
    Disconnect(j, server);
  }
}

void SimulatedGroup::Rejoin(unsigned server) {
  for (unsigned j = 0; j < size(); j++) {
    if (j == server) continue;
    Reconnect(server, j);
    Reconnect(j, server);
    Desaturate(server, j);
    Desaturate(j, server);
  }
}

void SimulatedGroup::HealAll() {
  for (unsigned i = 0; i < size(); i++) {
    Rejoin(i);
    Revive(i);
  }
}

void SimulatedGroup::Kill(unsigned server) {
  if (Alive(server)) rs_sim_kill(sim_, server);
}
void SimulatedGroup::Revive(unsigned server) {
  if (!Alive(server)) rs_sim_revive(sim_, server);
}
bool SimulatedGroup::Alive(unsigned server) const { return rs_sim_alive(sim_, server) != 0; }
void SimulatedGroup::SetNetworkLatency(unsigned server, unsigned ms) {
  rs_sim_set_network_latency(sim_, server, ms);
}
void SimulatedGroup::SetDiskLatency(unsigned server, unsigned ms) {
  rs_sim_set_disk_latency(sim_, server, ms);
}
void SimulatedGroup::InjectIoFault(unsigned server, int delay, int repeat) {
  rs_sim_io_fault(sim_, server, delay, repeat);
}
uint64_t SimulatedGroup::LeaderConflicts() const { return rs_sim_leader_conflicts(sim_); }

}  // namespace shardtx::replication
