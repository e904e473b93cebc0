// RaftNode: the C++ face of raft_shim.h's raft_uv backend.
#include "replication/raft_node.h"

#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "replication/machine_callbacks.h"
#include "replication/raft_shim.h"

namespace shardtx::replication {

struct RaftNode::Callbacks {
  // Removes and returns the callback registered under `cookie` (empty if there is none).
  template <class Callback>
  static Callback Take(RaftNode* self, absl::flat_hash_map<uint64_t, Callback>& pending,
                       uint64_t cookie) {
    std::lock_guard<std::mutex> lock(self->mu_);
    auto it = pending.find(cookie);
    if (it == pending.end()) return Callback();
    Callback done = std::move(it->second);
    pending.erase(it);
    return done;
  }

  static void OnRelease(void* ctx, uint64_t term, uint64_t index, const void* data, size_t len) {
    ReleaseTo(static_cast<RaftNode*>(ctx)->machine_.get(), term, index, data, len);
  }
  static int OnSnapshot(void* ctx, void** data, size_t* len) {
    return SnapshotOf(static_cast<RaftNode*>(ctx)->machine_.get(), data, len);
  }
  static int OnRestore(void* ctx, const void* data, size_t len) {
    return RestoreInto(static_cast<RaftNode*>(ctx)->machine_.get(), data, len);
  }

  static void OnDone(void* ctx, uint64_t cookie, int status) {
    auto* self = static_cast<RaftNode*>(ctx);
    DoneCallback done = Take(self, self->pending_, cookie);
    if (!done) return;
    if (status == RS_OK) {
      done(absl::OkStatus());
    } else if (status == RS_UNKNOWN) {
      done(absl::UnknownError(
          absl::StrCat("outcome unknown: server ", self->id_,
                       " lost its leadership (or closed) while the entry was in flight")));
    } else {
      done(self->Refusal(status));
    }
  }

  static void OnBarrierDone(void* ctx, uint64_t cookie, int status, uint64_t term) {
    auto* self = static_cast<RaftNode*>(ctx);
    BarrierCallback done = Take(self, self->pending_barriers_, cookie);
    if (!done) return;
    if (status == RS_OK) {
      done(term);
    } else if (status == RS_UNKNOWN) {
      done(absl::UnknownError(absl::StrCat("server ", self->id_,
                                           " lost its leadership (or closed) before the barrier "
                                           "committed")));
    } else {
      done(self->Refusal(status));
    }
  }

  static void OnChangeDone(void* ctx, uint64_t cookie, int status, const char* detail) {
    auto* self = static_cast<RaftNode*>(ctx);
    ChangeCallback done = Take(self, self->pending_changes_, cookie);
    if (done) done(self->ChangeStatus(status, detail));
  }

  static uint64_t OnGather(void* ctx, const rs_info* info) {
    auto* self = static_cast<RaftNode*>(ctx);
    return self->gather_anchor_(ToNodeInfo(self->id_, *info));
  }

  static void OnChange(void* ctx) {
    auto* self = static_cast<RaftNode*>(ctx);
    if (self->on_change_) self->on_change_();
  }
};

absl::StatusOr<std::unique_ptr<RaftNode>> RaftNode::Open(const RaftNodeOptions& options,
                                                         std::unique_ptr<StateMachine> machine) {
  if (machine == nullptr) return absl::InvalidArgumentError("the state machine is null");
  if (options.dir.empty()) return absl::InvalidArgumentError("the Raft directory is not set");
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot create the Raft directory ", options.dir, ": ", ec.message()));
  }
  std::unique_ptr<RaftNode> node(new RaftNode());
  node->id_ = options.id;
  node->on_change_ = options.on_change;
  node->gather_anchor_ = options.gather_anchor;
  node->machine_ = std::move(machine);

  std::vector<rs_member> members;
  members.reserve(options.members.size());
  for (const RaftMember& m : options.members) members.push_back({m.id, m.address.c_str()});
  rs_uv_options uv{};
  uv.id = options.id;
  uv.address = options.address.c_str();
  uv.dir = options.dir.c_str();
  uv.members = members.data();
  uv.n_members = static_cast<unsigned>(members.size());
  uv.connect_retry_ms = options.connect_retry_ms;
  uv.changed = &Callbacks::OnChange;
  uv.changed_ctx = node.get();
  uv.join = options.join ? 1 : 0;
  uv.pack = options.pack_proposals ? 1 : 0;
  if (options.gather_anchor) {
    uv.gather_anchor = &Callbacks::OnGather;
    uv.gather_ctx = node.get();
    uv.gather_max_lag = options.gather_max_lag;
  }
  rs_config config;
  rs_config_default(&config);
  config.election_timeout_ms = options.election_timeout_ms;
  config.heartbeat_ms = options.heartbeat_ms;
  config.snapshot_threshold = options.snapshot_threshold;
  config.snapshot_trailing = options.snapshot_trailing;
  config.pre_vote = options.pre_vote ? 1 : 0;
  config.redraw_election_timeouts = 0;
  config.figure8_guard = options.figure8_guard ? 1 : 0;
  rs_callbacks callbacks{
      node.get(),         &Callbacks::OnRelease,     &Callbacks::OnSnapshot,  &Callbacks::OnRestore,
      &Callbacks::OnDone, &Callbacks::OnBarrierDone, &Callbacks::OnChangeDone};
  char error[256];
  int rv = rs_uv_open(&uv, &config, &callbacks, &node->group_, error, sizeof error);
  switch (rv) {
    case RS_OK: {
      rs_voter voters[RS_MAX_VOTERS];
      const unsigned n = rs_group_opened_voters(node->group_, voters, RS_MAX_VOTERS);
      for (unsigned i = 0; i < n && i < RS_MAX_VOTERS; i++) {
        node->opened_voters_.push_back({voters[i].id, voters[i].address});
      }
      return node;
    }
    case RS_INVALID:
      return absl::InvalidArgumentError(absl::StrCat("raft node ", options.id, ": ", error));
    case RS_NOMEM:
      return absl::ResourceExhaustedError(absl::StrCat("raft node ", options.id, ": ", error));
    default:
      return absl::UnavailableError(absl::StrCat("raft node ", options.id, ": ", error));
  }
}

RaftNode::~RaftNode() { Close(); }

void RaftNode::Close() {
  if (group_ == nullptr) return;
  rs_group_close(group_);  // every accepted proposal's callback has run
  group_ = nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  pending_.clear();  // empty: the shim answers each accepted proposal
  pending_barriers_.clear();
  pending_changes_.clear();
}

absl::Status RaftNode::Refusal(int code) const {
  switch (code) {
    case RS_NOT_LEADER: {
      NodeInfo info = Info();
      if (info.role == Role::kLeader && info.transfer_target != 0) {
        return absl::UnavailableError(absl::StrCat("server ", id_,
                                                   " is handing its leadership (term ", info.term,
                                                   ") to server ", info.transfer_target));
      }
      return absl::UnavailableError(absl::StrCat(
          "server ", id_, " does not lead (term ", info.term, "); ",
          info.leader_id != 0
              ? absl::StrCat("leader is server ", info.leader_id, " at ", info.leader_address)
              : std::string("leader unknown")));
    }
    case RS_NOT_READY: {
      NodeInfo info = Info();
      return absl::UnavailableError(
          absl::StrCat("server ", id_, " leads term ", info.term,
                       " but is not ready (its term-start entry is not released); leader is "
                       "server ",
                       id_, " at ", info.leader_address));
    }
    case RS_TERM_CHANGED:
      return absl::UnavailableError(absl::StrCat(
          "server ", id_, " leads term ", Info().term,
          ", not the term the entry was proposed for (its leadership moved and came back)"));
    case RS_DOWN:
      return absl::UnavailableError(absl::StrCat("server ", id_, " is closed"));
    case RS_NOMEM:
      return absl::ResourceExhaustedError("propose: out of memory");
    default:
      return absl::UnknownError(absl::StrCat(
          "outcome unknown: libraft failed the proposal on server ", id_, " with an I/O error"));
  }
}

absl::Status RaftNode::Propose(std::string_view payload, DoneCallback done, uint64_t term) {
  if (group_ == nullptr) return Refusal(RS_DOWN);
  uint64_t cookie;
  {
    // Registered first: the loop thread may answer before rs_group_propose returns.
    std::lock_guard<std::mutex> lock(mu_);
    cookie = next_cookie_++;
    pending_.emplace(cookie, std::move(done));
  }
  int rv = rs_group_propose(group_, payload.data(), payload.size(), cookie, term);
  if (rv == RS_OK) return absl::OkStatus();
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.erase(cookie);
  }
  return Refusal(rv);
}

absl::Status RaftNode::Barrier(BarrierCallback done) {
  if (group_ == nullptr) return Refusal(RS_DOWN);
  uint64_t cookie;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cookie = next_cookie_++;
    pending_barriers_.emplace(cookie, std::move(done));
  }
  int rv = rs_group_barrier(group_, cookie);
  if (rv == RS_OK) return absl::OkStatus();
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_barriers_.erase(cookie);
  }
  if (rv == RS_IOERR) {
    return absl::UnavailableError(
        absl::StrCat("libraft failed a barrier on server ", id_, " with an I/O error"));
  }
  return Refusal(rv);
}

NodeInfo RaftNode::Info() const {
  if (group_ == nullptr) {
    NodeInfo info;
    info.id = id_;
    info.role = Role::kUnavailable;
    return info;
  }
  rs_info raw;
  rs_group_info(group_, &raw);
  return ToNodeInfo(id_, raw);
}

NodeInfo RaftNode::ToNodeInfo(uint64_t id, const rs_info& raw) {
  NodeInfo info;
  info.id = id;
  info.role = static_cast<Role>(raw.role);
  info.ready = raw.ready != 0;
  info.term = raw.term;
  info.leader_id = raw.leader_id;
  info.leader_address = raw.leader_address;
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
  info.nodelay_streams = raw.nodelay_streams;
  info.results_lowered = raw.results_lowered;
  info.results_unmatched = raw.results_unmatched;
  info.log_writes = raw.log_writes;
  info.entries_stored = raw.entries_stored;
  info.elections_started = raw.elections_started;
  info.elections_won = raw.elections_won;
  info.snapshots_sent = raw.snapshots_sent;
  info.snapshots_installed = raw.snapshots_installed;
  info.configuration_index = raw.configuration_index;
  info.change_pending = raw.change_pending != 0;
  for (unsigned k = 0; k < raw.n_servers && k < RS_MAX_SERVERS; ++k) {
    info.servers.push_back({raw.servers[k].id, static_cast<ServerRole>(raw.servers[k].role),
                            raw.servers[k].match_index, raw.servers[k].live != 0});
  }
  info.transfers_asked = raw.transfers_asked;
  info.transfers_done = raw.transfers_done;
  info.transfers_failed = raw.transfers_failed;
  info.transfer_target = raw.transfer_target;
  return info;
}

bool TransferEligible(const NodeInfo& info, uint64_t id, uint64_t max_lag) {
  if (info.role != Role::kLeader || id == 0 || id == info.id) return false;
  for (const ServerProgress& p : info.servers) {
    if (p.id == id) {
      return p.role == ServerRole::kVoter && p.live && p.match_index + max_lag >= info.last_index;
    }
  }
  return false;
}

absl::Status RaftNode::TransferLeadership(uint64_t id) {
  if (id == 0) return absl::InvalidArgumentError("TransferLeadership: server id 0");
  if (group_ == nullptr) return Refusal(RS_DOWN);
  const int rv = rs_group_transfer(group_, id);
  return rv == RS_OK ? absl::OkStatus() : Refusal(rv);
}

std::vector<ConfiguredServer> RaftNode::Configuration() const {
  std::vector<ConfiguredServer> out;
  if (group_ == nullptr) return out;
  rs_server servers[RS_MAX_SERVERS];
  const unsigned n = rs_group_configuration(group_, servers, RS_MAX_SERVERS);
  for (unsigned k = 0; k < n && k < RS_MAX_SERVERS; ++k) {
    out.push_back({servers[k].id, servers[k].address, static_cast<ServerRole>(servers[k].role)});
  }
  return out;
}

absl::Status RaftNode::AddVoter(uint64_t id, const std::string& address, ChangeCallback done) {
  return Change(RS_CHANGE_ADD_VOTER, id, address, std::move(done));
}

absl::Status RaftNode::Remove(uint64_t id, ChangeCallback done) {
  return Change(RS_CHANGE_REMOVE, id, "", std::move(done));
}

absl::Status RaftNode::Change(int op, uint64_t id, const std::string& address,
                              ChangeCallback done) {
  if (group_ == nullptr) return Refusal(RS_DOWN);
  uint64_t cookie;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cookie = next_cookie_++;
    pending_changes_.emplace(cookie, std::move(done));
  }
  int rv = rs_group_change(group_, op, id, address.c_str(), cookie);
  if (rv == RS_OK) return absl::OkStatus();
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_changes_.erase(cookie);
  }
  return ChangeStatus(rv, "");
}

absl::Status RaftNode::ChangeStatus(int code, const char* detail) const {
  switch (code) {
    case RS_OK:
      return absl::OkStatus();
    case RS_UNKNOWN:
      return absl::UnknownError(
          absl::StrCat("outcome unknown: server ", id_,
                       " lost its leadership (or closed) before the membership change committed"));
    case RS_BUSY:
      return absl::AbortedError(
          absl::StrCat("server ", id_, ": another membership change of the group is in progress"));
    case RS_CONFLICT:
      return absl::AlreadyExistsError(
          absl::StrCat("server ", id_,
                       ": the id or the address is in the group's configuration already, with "
                       "another address or id"));
    case RS_INVALID:
      return absl::InvalidArgumentError(absl::StrCat(
          "server ", id_, ": invalid membership change (a leader cannot remove itself)"));
    case RS_IOERR:
      return absl::InternalError(
          absl::StrCat("server ", id_, ": libraft failed the membership change: ", detail));
    default:
      return Refusal(code);
  }
}

}  // namespace shardtx::replication
