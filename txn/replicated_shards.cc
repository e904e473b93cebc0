#include "txn/replicated_shards.h"

#include <arpa/inet.h>

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "replication/shard_replica.h"
#include "txn/database_impl.h"
#include "txn/node_manifest.h"
#include "txn/txn_ids.h"
#include "util/status_macros.h"

namespace shardtx::txn {
namespace {

constexpr size_t kMaxMembers = 9;
constexpr size_t kMaxClusterId = 64;
constexpr uint32_t kMaxSnapshotSpacing = 1u << 24;

Mutex tamper_mu;
std::function<bool(uint64_t, std::string*)>& SnapshotTamper() {
  static auto* tamper = new std::function<bool(uint64_t, std::string*)>();
  return *tamper;
}

struct HostPort {
  std::string host;
  uint32_t port = 0;
};

absl::StatusOr<HostPort> ParseAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  HostPort hp;
  in_addr ip{};
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &hp.port) || hp.port == 0 ||
      hp.port > 65535 || inet_pton(AF_INET, address.substr(0, colon).c_str(), &ip) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("replication address '", address, "' is not \"IPv4:port\""));
  }
  hp.host = address.substr(0, colon);
  return hp;
}

// Where shard `shard`'s Raft group of the member at `address` listens: port P+1+shard.
std::string RaftAddress(const HostPort& hp, uint32_t shard) {
  return absl::StrCat(hp.host, ":", hp.port + 1 + shard);
}

// The member address "IPv4:P" of a server of shard `shard`'s group at Raft address "IPv4:P+1+g"
// (unchanged if it is not of that form).
std::string MemberAddressOf(const std::string& raft_address, uint32_t shard) {
  absl::StatusOr<HostPort> hp = ParseAddress(raft_address);
  if (!hp.ok() || hp->port < 1 + shard + 1) return raft_address;
  return absl::StrCat(hp->host, ":", hp->port - 1 - shard);
}

ShardReplicationStats::Member::Kind StatsKind(replication::ServerRole role) {
  switch (role) {
    case replication::ServerRole::kVoter:
      return ShardReplicationStats::Member::Kind::kVoter;
    case replication::ServerRole::kStandby:
      return ShardReplicationStats::Member::Kind::kStandby;
    default:
      return ShardReplicationStats::Member::Kind::kSpare;
  }
}

int64_t Millis(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

// A node's role as a public enum (Database::ShardLeadership::Role, ShardReplicationStats::Role).
template <class PublicRole>
PublicRole ToPublic(replication::Role role) {
  switch (role) {
    case replication::Role::kLeader:
      return PublicRole::kLeader;
    case replication::Role::kCandidate:
      return PublicRole::kCandidate;
    case replication::Role::kFollower:
      return PublicRole::kFollower;
    default:
      return PublicRole::kUnavailable;
  }
}

// Builds before catch-up by snapshot kept shard g's Raft state in shard-NNN/raft/, which an
// install replaces along with the rest of the shard's directory: found there (and not in its
// place), it is moved to raft-NNN/, durably.
absl::Status MoveRaftStateOutOfShards(DatabaseImpl* db) {
  Env* env = db->env();
  bool moved = false;
  for (uint32_t g = 0; g < db->num_shards(); ++g) {
    const std::string old_dir = db->directory().ShardDir(g) + "/raft";
    if (!env->FileExists(old_dir).ok() || env->FileExists(db->RaftDir(g)).ok()) continue;
    RETURN_IF_ERROR(env->RenameFile(old_dir, db->RaftDir(g)));
    moved = true;
  }
  return moved ? env->SyncDir(db->options().path) : absl::OkStatus();
}

}  // namespace

absl::Status ReplicatedShards::Validate(const Options& options) {
  const ReplicationOptions& r = options.replication;
  if (!r.enabled()) {
    if (!r.members.empty() || !r.cluster_id.empty()) {
      return absl::InvalidArgumentError(
          "Options.replication names members or a cluster id but node_id is 0 (not replicated)");
    }
    return absl::OkStatus();
  }
  if (r.cluster_id.empty() || r.cluster_id.size() > kMaxClusterId ||
      !std::all_of(r.cluster_id.begin(), r.cluster_id.end(),
                   [](char c) { return absl::ascii_isalnum(c) || c == '-' || c == '_'; })) {
    return absl::InvalidArgumentError(
        absl::StrCat("Options.replication.cluster_id '", r.cluster_id,
                     "' must be 1 to 64 characters of [A-Za-z0-9_-]"));
  }
  if (r.members.empty() || r.members.size() > kMaxMembers) {
    return absl::InvalidArgumentError(absl::StrCat("Options.replication.members has ",
                                                   r.members.size(), " members (1 to 9)"));
  }
  bool self = false;
  for (size_t i = 0; i < r.members.size(); ++i) {
    const ReplicationMember& m = r.members[i];
    if (m.id == 0 || m.id > TxnIds::kMaxNode) {
      return absl::InvalidArgumentError(absl::StrCat("Options.replication: member id ", m.id,
                                                     " is not in 1..", TxnIds::kMaxNode,
                                                     " (it is 16 bits of transaction ids)"));
    }
    RETURN_IF_ERROR(ParseAddress(m.address).status());
    for (size_t j = 0; j < i; ++j) {
      if (r.members[j].id == m.id || r.members[j].address == m.address) {
        return absl::InvalidArgumentError(absl::StrCat(
            "Options.replication.members repeats an id or an address: ", MembersToString(r.members)));
      }
    }
    self = self || m.id == r.node_id;
  }
  if (!self) {
    return absl::InvalidArgumentError(absl::StrCat("Options.replication.node_id ", r.node_id,
                                                   " is not among the members (",
                                                   MembersToString(r.members), ")"));
  }
  if (r.preferred_leader != 0 &&
      std::none_of(r.members.begin(), r.members.end(),
                   [&](const ReplicationMember& m) { return m.id == r.preferred_leader; })) {
    return absl::InvalidArgumentError(
        absl::StrCat("Options.replication.preferred_leader ", r.preferred_leader,
                     " is not among the members (", MembersToString(r.members), "); 0 means none"));
  }
  const int64_t election = Millis(r.election_timeout), heartbeat = Millis(r.heartbeat);
  const int64_t max = Millis(absl::Minutes(10));
  if (heartbeat < 1 || election > max || heartbeat >= election) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Options.replication: heartbeat (", heartbeat, " ms) and election_timeout (", election,
        " ms) must satisfy 1 ms <= heartbeat < election_timeout <= 10 min"));
  }
  if (r.closed_ts_refresh < r.heartbeat) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Options.replication.closed_ts_refresh (", absl::FormatDuration(r.closed_ts_refresh),
        ") must be at least the heartbeat (", heartbeat, " ms)"));
  }
  if (r.snapshot_threshold < 1 || r.snapshot_threshold > kMaxSnapshotSpacing ||
      r.snapshot_trailing > kMaxSnapshotSpacing) {
    return absl::InvalidArgumentError(
        absl::StrCat("Options.replication: snapshot_threshold (", r.snapshot_threshold,
                     ") must be in 1..", kMaxSnapshotSpacing, " and snapshot_trailing (",
                     r.snapshot_trailing, ") at most ", kMaxSnapshotSpacing));
  }
  return absl::OkStatus();
}

void ReplicatedShards::SetSnapshotTamperForTesting(
    std::function<bool(uint64_t, std::string*)> tamper) {
#ifdef SHARDTX_KILL_POINTS
  MutexLock l(&tamper_mu);
  SnapshotTamper() = std::move(tamper);
#else
  (void)tamper;  // the shipped library takes no test switch
#endif
}

absl::StatusOr<std::unique_ptr<ReplicatedShards>> ReplicatedShards::Open(DatabaseImpl* db) {
  const Options& options = db->options();
  const ReplicationOptions& r = options.replication;
  Env* env = db->env();
  const uint32_t n = db->num_shards();
  for (const ReplicationMember& m : r.members) {
    ASSIGN_OR_RETURN(HostPort hp, ParseAddress(m.address));
    if (hp.port + n > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("replication address ", m.address, ": ", n,
                                                     " shards need ports up to ", hp.port + n));
    }
  }

  RETURN_IF_ERROR(MoveRaftStateOutOfShards(db));
  // Which shards hold Raft state already.
  std::vector<uint32_t> with_state, without_state;
  for (uint32_t g = 0; g < n; ++g) {
    const std::string dir = db->RaftDir(g);
    bool has = false;
    absl::Status exists = env->FileExists(dir);
    if (exists.ok()) {
      ASSIGN_OR_RETURN(std::vector<std::string> names, env->ListDir(dir));
      has = !names.empty();
    } else if (!absl::IsNotFound(exists)) {
      return exists;
    }
    (has ? with_state : without_state).push_back(g);
  }

  // A shard that logged anything: its data is not the cluster's, so this node must not
  // bootstrap (or re-create) Raft state under it.
  auto history = [db](uint32_t g) -> std::string {
    engine::Shard* shard = db->shard(g);
    MutexLock l(shard->commit_mu());
    if (shard->raft_applied_locked().index != 0) {
      return absl::StrCat("applied Raft entries up to index ", shard->raft_applied_locked().index);
    }
    if (shard->applied_lsn() != 0 || shard->recovered_max_ts() != 0) {
      return "holds data committed without replication";
    }
    return "";
  };
  ASSIGN_OR_RETURN(std::optional<NodeManifest> manifest, ReadNodeManifest(env, options.path));
  NodeManifest m;
  if (!manifest.has_value()) {
    if (!with_state.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "database ", options.path, " has Raft state (", db->RaftDir(with_state.front()),
          ") but no node manifest (NODE): it will not bootstrap a new cluster over it"));
    }
    for (uint32_t g = 0; g < n; ++g) {
      if (std::string h = history(g); !h.empty()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "database ", options.path, ": shard ", g, " ", h,
            "; a node bootstraps only with a new (empty) database"));
      }
    }
    m.cluster_id = r.cluster_id;
    m.node_id = r.node_id;
    m.members = r.members;
    m.join = r.join;
  } else {
    m = std::move(*manifest);
    if (m.cluster_id != r.cluster_id) {
      return absl::FailedPreconditionError(absl::StrCat(
          "database ", options.path, " belongs to cluster '", m.cluster_id,
          "' (its node manifest), but the options name cluster '", r.cluster_id, "'"));
    }
    if (m.node_id != r.node_id) {
      return absl::FailedPreconditionError(
          absl::StrCat("database ", options.path, " is node ", m.node_id,
                       " of its cluster (its node manifest), but the options name node ", r.node_id));
    }
    // With Raft state, the replicated configuration is the truth (OpenGroups compares the
    // options with it); without, a bootstrap or join was interrupted: the manifest's list is.
    if (with_state.empty() && !SameMembers(m.members, r.members)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "database ", options.path, ": the options' members [", MembersToString(r.members),
          "] differ from the node manifest's [", MembersToString(m.members),
          "]; membership changes go through Raft, not the options"));
    }
    if (!with_state.empty() && !without_state.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "database ", options.path, ": shard ", with_state.front(), " has Raft state but shard ",
          without_state.front(), " has none (", db->RaftDir(without_state.front()),
          "): it will not bootstrap one shard's group again"));
    }
    // All pristine with a manifest: a bootstrap interrupted before any group was created is
    // completed; a shard with history has lost its Raft state, and is refused.
    for (uint32_t g : without_state) {
      if (std::string h = history(g); !h.empty()) {
        return absl::FailedPreconditionError(absl::StrCat("database ", options.path, ": shard ", g,
                                                          " ", h, " but its Raft state (",
                                                          db->RaftDir(g), ") is missing"));
      }
    }
  }
  if (db->directory().shared_log()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "database ", options.path,
        " has one log for all shards; a replicated database needs a "
        "log per shard (a replica installing a snapshot replaces its shard's log): replicated "
        "databases are created so"));
  }
  if (m.incarnation >= TxnIds::kMaxIncarnation) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "database ", options.path, ": node ", m.node_id, " has used all ",
        TxnIds::kMaxIncarnation, " incarnations of its transaction ids"));
  }
  m.incarnation++;
  RETURN_IF_ERROR(WriteNodeManifest(env, options.path, m));

  std::unique_ptr<ReplicatedShards> rs(new ReplicatedShards(db));
  rs->options_ = r;
  rs->incarnation_ = m.incarnation;
  rs->join_ = m.join;
  absl::Status s = rs->OpenGroups();
  if (s.ok() && !SameMembers(m.members, r.members)) {
    m.members = r.members;  // the list the replicated configuration agreed with
    s = WriteNodeManifest(env, options.path, m);
  }
  if (!s.ok()) {
    rs.reset();  // closes the nodes opened, destroys their replicas
    db->DetachReplicatedLogs();
    if (with_state.empty()) {
      // A failed bootstrap leaves the Raft directories pristine again (libraft bootstraps a
      // directory before it binds the port), so that a later Open can bootstrap.
      for (uint32_t g = 0; g < n; ++g) {
        std::error_code ec;
        std::filesystem::remove_all(db->RaftDir(g), ec);
      }
    }
    return s;
  }
  return rs;
}

absl::Status ReplicatedShards::PersistIncarnation(uint64_t incarnation) {
  Env* env = db_->env();
  const std::string& path = db_->options().path;
  ASSIGN_OR_RETURN(std::optional<NodeManifest> manifest, ReadNodeManifest(env, path));
  if (!manifest.has_value()) {
    return absl::DataLossError(absl::StrCat("database ", path, ": the node manifest is gone"));
  }
  if (manifest->incarnation >= incarnation) return absl::OkStatus();
  manifest->incarnation = incarnation;
  return WriteNodeManifest(env, path, *manifest);
}

absl::Status ReplicatedShards::OpenGroups() {
  const uint32_t n = db_->num_shards();
  HostPort self;
  std::vector<std::pair<uint64_t, HostPort>> members;
  for (const ReplicationMember& m : options_.members) {
    ASSIGN_OR_RETURN(HostPort hp, ParseAddress(m.address));
    if (m.id == options_.node_id) self = hp;
    members.emplace_back(m.id, std::move(hp));
  }
  std::vector<std::vector<ReplicationMember>> configured(n);
  gather_ =
      std::make_unique<replication::LeaderGather>(n, options_.preferred_leader, kGatherMaxLag);
  resolver_ = std::make_unique<InDoubtResolver>(db_, n);
  db_->coordinator().SetInDoubtResolver(resolver_.get());
  {
    replication::SnapshotServerOptions so;
    so.address = absl::StrCat(self.host, ":", self.port);
    so.cluster = options_.cluster_id;
    so.producer = static_cast<uint32_t>(options_.node_id);
    so.env = db_->env();
    {
      MutexLock l(&tamper_mu);
      so.tamper = SnapshotTamper();
    }
    auto server = replication::SnapshotServer::Start(so);
    if (!server.ok()) {
      return absl::Status(server.status().code(), absl::StrCat("the snapshot stream on port P: ",
                                                               server.status().message()));
    }
    snapshot_server_ = std::move(*server);
  }
  for (uint32_t g = 0; g < n; ++g) {
    replication::ShardReplicaOptions ro;
    ro.server = options_.node_id;
    ro.shard_id = g;
    ro.address_of = [this](uint64_t id) { return MemberAddress(id); };
    ro.snapshot_address = ro.address_of;  // a member's SnapshotServer listens on its host:P
    ro.cluster = options_.cluster_id;
    ro.snapshot_server = snapshot_server_.get();
    ro.pin_wal = [db = db_, g](engine::Lsn lsn) { db->PinWalForSnapshots(g, lsn); };
    ro.on_node_change = [gather = gather_.get(), resolver = resolver_.get(),
                         g](const replication::NodeInfo& info) {
      gather->Observe(g, info);
      resolver->ShardReady(g, info.role == replication::Role::kLeader && info.ready, info.term);
    };
    auto replica = std::make_unique<replication::ShardReplica>(ro, db_->shard(g));
    replication::ShardReplica* r = replica.get();
    db_->AttachReplicatedLog(g, r);  // before the node replays its log: redo raises the oracle
    replication::RaftNodeOptions no;
    no.id = options_.node_id;
    no.address = RaftAddress(self, g);
    no.dir = db_->RaftDir(g);
    for (const auto& [id, hp] : members) no.members.push_back({id, RaftAddress(hp, g)});
    no.election_timeout_ms = static_cast<unsigned>(Millis(options_.election_timeout));
    no.heartbeat_ms = static_cast<unsigned>(Millis(options_.heartbeat));
    no.snapshot_threshold = options_.snapshot_threshold;
    no.snapshot_trailing = options_.snapshot_trailing;
    no.on_change = [r] { r->OnNodeChange(); };
    no.join = join_;
    no.pack_proposals = true;  // ShardReplica's parts delimit themselves: commits share entries
    if (options_.gather_leaders) {
      no.gather_anchor = [gather = gather_.get(), g](const replication::NodeInfo& info) {
        return gather->Anchor(g, info);
      };
    }
    no.gather_max_lag = kGatherMaxLag;
    auto node = replication::RaftNode::Open(no, std::move(replica));
    if (!node.ok()) {
      return absl::Status(node.status().code(),
                          absl::StrCat("shard ", g, ": ", node.status().message()));
    }
    for (const replication::ConfiguredServer& x : (*node)->Configuration()) {
      configured[g].push_back({x.id, MemberAddressOf(x.address, g)});
    }
    r->AttachNode(node->get());
    nodes_.push_back(std::move(*node));
    replicas_.push_back(r);
    RETURN_IF_ERROR(snapshot_server_->AddShard(g, r));
  }
  return CheckMembers(configured);
}

absl::Status ReplicatedShards::CheckMembers(
    const std::vector<std::vector<ReplicationMember>>& configured) const {
  // Shards with no configuration yet (a joining node not added) are not compared.
  std::vector<uint32_t> known;
  for (uint32_t g = 0; g < configured.size(); ++g) {
    if (!configured[g].empty()) known.push_back(g);
  }
  if (known.empty()) return absl::OkStatus();
  bool all_same = true, matches_one = false;
  for (uint32_t g : known) {
    all_same = all_same && SameMembers(configured[g], configured[known.front()]);
    matches_one = matches_one || SameMembers(configured[g], options_.members);
  }
  // A change done on some shards only: the options may name either side of it, and the other
  // shards may differ from them by that one member (added or removed), nothing else.
  const bool half_done = matches_one && !all_same;
  for (uint32_t g : known) {
    if (!SameMembers(configured[g], options_.members) &&
        !(half_done && OneMemberApart(configured[g], options_.members))) {
      return absl::FailedPreconditionError(absl::StrCat(
          "shard ", g, " of database ", db_->options().path, ": the options' members [",
          MembersToString(options_.members), "] differ from the replicated Raft configuration [",
          MembersToString(configured[g]),
          "]; membership changes go through Raft (Database::AddMember, RemoveMember), and "
          "every node reopens with the list they made"));
    }
  }
  return absl::OkStatus();
}

ReplicatedShards::~ReplicatedShards() {
  Stop();
  replicas_.clear();
  nodes_.clear();
  snapshot_server_.reset();
  resolver_.reset();
}

void ReplicatedShards::Stop() {
  MutexLock l(&mu_);
  if (stopped_) return;
  stopped_ = true;
  // The streams first (cancelled; it returns once none runs), then Raft: no follower copies a
  // shard once its database starts closing.
  if (resolver_ != nullptr) resolver_->Stop();  // proposes nothing from now on
  if (snapshot_server_ != nullptr) snapshot_server_->Stop();
  for (auto& node : nodes_) node->Close();
  if (resolver_ != nullptr) db_->coordinator().SetInDoubtResolver(nullptr);  // no loop calls now
}

std::vector<Database::ShardLeadership> ReplicatedShards::Leadership() {
  std::vector<Database::ShardLeadership> out;
  MutexLock l(&mu_);
  if (stopped_) return out;
  for (uint32_t g = 0; g < nodes_.size(); ++g) {
    const replication::NodeInfo info = nodes_[g]->Info();
    Database::ShardLeadership s;
    s.shard = g;
    s.role = ToPublic<Database::ShardLeadership::Role>(info.role);
    s.ready = info.ready;
    s.term = info.term;
    s.leader_id = info.leader_id;
    if (info.leader_id != 0) s.leader_address = MemberAddress(info.leader_id);
    out.push_back(std::move(s));
  }
  return out;
}

void ReplicatedShards::AddStats(Stats* stats) {
  MutexLock l(&mu_);
  if (stopped_) return;
  if (gather_ != nullptr) stats->gathering = gather_->Stats();
  if (resolver_ != nullptr) stats->resolver = resolver_->Stats();
  for (ShardStatsView& shard : stats->shards) {
    if (shard.shard >= nodes_.size()) continue;
    const replication::NodeInfo info = nodes_[shard.shard]->Info();
    shard.raft_log_writes = info.log_writes;
    shard.raft_entries_stored = info.entries_stored;
    shard.replicated = true;
    ShardReplicationStats& rep = shard.replication;
    rep.role = ToPublic<ShardReplicationStats::Role>(info.role);
    rep.ready = info.ready;
    rep.term = info.term;
    rep.leader_id = info.leader_id;
    rep.last_index = info.last_index;
    rep.commit_index = info.commit_index;
    // Barrier and configuration entries have nothing to apply to the shard: with nothing held
    // by the release gate, everything libraft applied counts.
    rep.applied_index =
        info.held == 0 ? std::max(info.last_applied, info.released_index) : info.released_index;
    const bool leads = info.role == replication::Role::kLeader;
    for (const replication::ServerProgress& p : info.servers) {
      ShardReplicationStats::Member member;
      member.id = p.id;
      member.kind = StatsKind(p.role);
      member.match_index = p.match_index;
      if (leads && p.match_index < info.last_index) member.lag = info.last_index - p.match_index;
      rep.members.push_back(member);
    }
    rep.membership_change_pending = info.change_pending;
    rep.snapshots_sent = info.snapshots_sent;
    rep.snapshots_installed = info.snapshots_installed;
    rep.elections_started = info.elections_started;
    rep.elections_won = info.elections_won;
    rep.leader_moves = gather_->leader_moves(shard.shard);
    rep.transfers_asked = info.transfers_asked;
    rep.transfers_done = info.transfers_done;
    rep.transfers_failed = info.transfers_failed;
    shard.snapshots_installed = replicas_[shard.shard]->snapshots_installed();
    shard.snapshot_install_failures = replicas_[shard.shard]->snapshot_failures();
  }
}

absl::Status ReplicatedShards::AddMember(const ReplicationMember& member,
                                         std::vector<absl::Status>* per_shard) {
  if (member.id == 0 || member.id > TxnIds::kMaxNode) {
    return absl::InvalidArgumentError(
        absl::StrCat("AddMember: member id ", member.id, " is not in 1..", TxnIds::kMaxNode));
  }
  ASSIGN_OR_RETURN(HostPort hp, ParseAddress(member.address));
  const uint32_t n = db_->num_shards();
  if (hp.port + n > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("AddMember: address ", member.address, ": ", n,
                                                   " shards need ports up to ", hp.port + n));
  }
  std::vector<absl::Status> status;
  absl::Status s = ChangeEveryShard(
      [&](uint32_t g, replication::RaftNode* node, replication::RaftNode::ChangeCallback done) {
        return node->AddVoter(member.id, RaftAddress(hp, g), std::move(done));
      },
      &status);
  if (std::any_of(status.begin(), status.end(), [](const absl::Status& x) { return x.ok(); })) {
    MutexLock l(&members_mu_);
    added_.push_back(member);  // named in messages from now on (its address, once it leads)
  }
  if (per_shard != nullptr) *per_shard = std::move(status);
  return s;
}

absl::Status ReplicatedShards::RemoveMember(uint64_t id, std::vector<absl::Status>* per_shard) {
  if (id == 0) return absl::InvalidArgumentError("RemoveMember: member id 0");
  if (id == options_.node_id) {
    return absl::FailedPreconditionError(
        absl::StrCat("RemoveMember: server ", id,
                     " is this node; a node cannot remove itself: ask another node once it leads"));
  }
  return ChangeEveryShard(
      [&](uint32_t, replication::RaftNode* node, replication::RaftNode::ChangeCallback done) {
        return node->Remove(id, std::move(done));
      },
      per_shard);
}

absl::Status ReplicatedShards::ChangeEveryShard(const StartChange& start,
                                                std::vector<absl::Status>* per_shard) {
  struct Outcomes {
    Mutex mu;
    CondVar cv{&mu};
    std::vector<absl::Status> status ABSL_GUARDED_BY(mu);
    size_t pending ABSL_GUARDED_BY(mu) = 0;
  };
  auto outcomes = std::make_shared<Outcomes>();
  {
    MutexLock l(&mu_);  // Stop waits: every node is open while the changes start
    if (stopped_) {
      return absl::FailedPreconditionError(
          absl::StrCat("database ", db_->options().path, " is closed"));
    }
    MutexLock o(&outcomes->mu);
    outcomes->status.assign(nodes_.size(), absl::OkStatus());
    outcomes->pending = nodes_.size();
  }
  for (uint32_t g = 0; g < nodes_.size(); ++g) {
    auto finish = [outcomes, g](absl::Status s) {
      MutexLock o(&outcomes->mu);
      outcomes->status[g] = std::move(s);
      if (--outcomes->pending == 0) outcomes->cv.SignalAll();
    };
    absl::Status refused;
    {
      MutexLock l(&mu_);
      if (stopped_) {
        refused = absl::UnavailableError(absl::StrCat("server ", options_.node_id, " is closed"));
      } else if (const replication::NodeInfo info = nodes_[g]->Info(); !info.ready) {
        refused = absl::UnavailableError(
            absl::StrCat("server ", options_.node_id,
                         info.role == replication::Role::kLeader ? " leads but is not ready (term "
                                                                 : " does not lead (term ",
                         info.term, "); ",
                         info.leader_id != 0 && info.leader_id != options_.node_id
                             ? absl::StrCat("leader is server ", info.leader_id, " at ",
                                            MemberAddress(info.leader_id))
                             : std::string("leader unknown")));
      } else {
        refused = start(g, nodes_[g].get(), finish);
      }
    }
    if (!refused.ok()) finish(std::move(refused));
  }
  std::vector<absl::Status> status;
  {
    MutexLock o(&outcomes->mu);
    while (outcomes->pending > 0) outcomes->cv.Wait();
    status = outcomes->status;
  }
  absl::Status first;
  std::string failed, done;
  for (uint32_t g = 0; g < status.size(); ++g) {
    if (status[g].ok()) {
      absl::StrAppend(&done, done.empty() ? "" : ", ", g);
      continue;
    }
    if (first.ok()) first = status[g];
    absl::StrAppend(&failed, failed.empty() ? "" : "; ", "shard ", g, " (", status[g].ToString(),
                    ")");
  }
  if (per_shard != nullptr) *per_shard = status;
  if (first.ok()) return first;
  return absl::Status(
      first.code(),
      absl::StrCat("membership change not done on ", failed, "; done on ",
                   done.empty() ? std::string("no shard") : absl::StrCat("shards ", done)));
}

std::string ReplicatedShards::MemberAddress(uint64_t id) const {
  for (const ReplicationMember& m : options_.members) {
    if (m.id == id) return m.address;
  }
  MutexLock l(&members_mu_);
  for (const ReplicationMember& m : added_) {
    if (m.id == id) return m.address;
  }
  return "";
}

}  // namespace shardtx::txn
