// One server of one Raft group on real disk and sockets: libraft's raft_uv behind
// replication/raft_shim.h, with the Figure-8 guard of docs/replication-plan.md section 3. Each node
// runs its own uv loop thread; its StateMachine and proposal callbacks run on that thread.
//
// A process may open several nodes (of one group or of several), each with its own address and
// directory. Opening a node sets SIGPIPE to ignored for the whole process if it is still at its
// default (a peer that dies mid-write would otherwise kill the process).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "replication/simulated_group.h"  // StateMachine, ReleasedEntry, Role

struct rs_group;

namespace shardtx::replication {

// A voting member of a group.
struct RaftMember {
  uint64_t id = 0;      // > 0, unique in the group
  std::string address;  // "IPv4:port", where that member listens
};

struct NodeInfo;

struct RaftNodeOptions {
  uint64_t id = 0;                      // this node's Raft id; must be in `members`
  std::string address;                  // this node's address, as in `members`
  std::string dir;                      // Raft log, term/vote and snapshots; created if missing
  std::vector<RaftMember> members;      // bootstraps a pristine `dir`; not checked after
                                        // (opened_voters() says what the directory holds)
  unsigned election_timeout_ms = 1000;  // libraft draws each timeout in [this, 2 * this)
  unsigned heartbeat_ms = 100;
  unsigned snapshot_threshold = 1024;  // entries released since the last snapshot
  unsigned snapshot_trailing = 128;    // entries kept in the log after a snapshot
  bool pre_vote = true;
  unsigned connect_retry_ms = 0;  // between connection attempts to a member; 0 = 1000 ms
  // Optional: called on the node's loop thread after its role, term, believed leader or readiness
  // changed (and once inside Open, on the calling thread). It must not call into the node except
  // Info().
  std::function<void()> on_change;
  // TEST ONLY: false switches the Figure-8 guard off (stock libraft 0.15).
  bool figure8_guard = true;
  // A pristine `dir` is not bootstrapped: the node starts with no configuration and waits for a
  // leader of the group to add it (AddVoter there). `members` must still name this node.
  bool join = false;
  // The loop thread packs proposals queued one after another for the same term into one entry
  // (at most 256 proposals or 1 MiB of payload): the machine is released their payloads
  // concatenated in proposal order, so they must delimit themselves; each proposal's done
  // callback hears the entry's outcome. A leader holds proposals while its last append is being
  // written, and packs them once it is stored (one entry per durable write). Off: one entry per
  // proposal, proposed at once.
  bool pack_proposals = false;
  // Optional: leadership gathering. Called on the node's loop thread while it is a ready leader,
  // two heartbeats after its term became ready and then about every election timeout (not while
  // a transfer is in flight), with the node's current state: returns the server that should lead
  // the group (0, or this node: stay). If that server is a live voter at most gather_max_lag
  // entries behind (TransferEligible), the node transfers its leadership to it
  // (TransferLeadership). It must not call into the node, nor block.
  std::function<uint64_t(const NodeInfo&)> gather_anchor;
  uint64_t gather_max_lag = 64;
};

// A server's role in a group's configuration (libraft's).
enum class ServerRole { kStandby, kVoter, kSpare };

// One server of a group's configuration.
struct ConfiguredServer {
  uint64_t id = 0;
  std::string address;
  ServerRole role = ServerRole::kVoter;
};

// One server of the configuration as a node's Info() reports it.
struct ServerProgress {
  uint64_t id = 0;
  ServerRole role = ServerRole::kVoter;
  // On a leader: the highest index it knows the server holds (its own last index for itself);
  // 0 on any other node.
  uint64_t match_index = 0;
  // On a leader: heard from within an election timeout (true for itself); false elsewhere.
  bool live = false;
};

// What a node knows of itself (a copy; see rs_info in raft_shim.h for the counters).
struct NodeInfo {
  uint64_t id = 0;
  Role role = Role::kFollower;
  // Leads and has released an entry of its current term: only a ready leader accepts proposals.
  bool ready = false;
  uint64_t term = 0;
  uint64_t leader_id = 0;      // whom it takes for the leader (0: nobody)
  std::string leader_address;  // that leader's address ("" if none)
  uint64_t last_index = 0;
  uint64_t commit_index = 0;
  uint64_t last_applied = 0;
  uint64_t released_index = 0;
  uint64_t held = 0;
  uint64_t noops_proposed = 0;
  uint64_t snapshots_taken = 0;
  uint64_t snapshots_refused = 0;
  uint64_t restores = 0;
  uint64_t tag_mismatches = 0;
  uint64_t malformed = 0;
  uint64_t unavailable = 0;  // times seen in Role::kUnavailable (not reopened yet: see the memo)
  uint64_t nodelay_streams = 0;  // TCP connections (made or accepted) set to TCP_NODELAY
  // The match-index fix (rs_info): successes whose last index was lowered, and successes
  // that answer no request of their addressee in their term (sent with last index 0).
  uint64_t results_lowered = 0;
  uint64_t results_unmatched = 0;
  // Durable writes of the node's Raft log and the entries they stored (rs_info).
  uint64_t log_writes = 0;
  uint64_t entries_stored = 0;
  // Elections stood in and won, snapshots sent (as leader) and installed (from a leader): rs_info.
  uint64_t elections_started = 0;
  uint64_t elections_won = 0;
  uint64_t snapshots_sent = 0;
  uint64_t snapshots_installed = 0;
  // The configuration (its last entry in the log, committed or not), with match indexes on a
  // leader; the index of that entry; a membership change pending on this leader.
  std::vector<ServerProgress> servers;
  uint64_t configuration_index = 0;
  bool change_pending = false;
  // Leadership transfers this node asked for as leader (TransferLeadership, gathering): done =
  // the target was then seen leading; failed = refused by libraft, or ended (timed out, or the
  // leadership went elsewhere) without it. transfer_target: the one in flight (0: none).
  uint64_t transfers_asked = 0;
  uint64_t transfers_done = 0;
  uint64_t transfers_failed = 0;
  uint64_t transfer_target = 0;
};

// Whether `info` is a leader's and server `id` a voter of its configuration, live, other than the
// leader, and at most `max_lag` entries behind the leader's last index: the target gathering
// transfers to.
bool TransferEligible(const NodeInfo& info, uint64_t id, uint64_t max_lag);

// Thread-safety: Propose() and Info() may be called from any thread, the node's own callbacks
// included. Close() (and the destructor) must not run concurrently with any other call on the
// node, nor from one of its callbacks.
class RaftNode {
 public:
  // The outcome of an accepted proposal, called exactly once, on the node's loop thread:
  //  - OK: released on this node, so committed on a majority and applied here;
  //  - kUnknown: leadership was lost (or the node closed) while the entry was in flight; it may
  //    or may not commit;
  //  - kUnavailable: leadership changed between Propose() and the loop thread; no effect.
  // It must not call Close().
  using DoneCallback = std::function<void(absl::Status)>;
  // The outcome of an accepted barrier, called exactly once, on the node's loop thread: the term
  // the barrier was appended and committed in, this node leading that term until it applied it;
  // kUnknown if it lost the leadership (or closed) first; kUnavailable as for DoneCallback.
  using BarrierCallback = std::function<void(absl::StatusOr<uint64_t>)>;
  // The outcome of an accepted membership change, called exactly once, on the node's loop thread
  // (or inside the call, when the loop refuses it at once):
  //  - OK: the configuration asked for is committed (it may have been so already);
  //  - kUnknown: leadership was lost (or the node closed) first: the change may or may not take
  //    effect (ask again: a repeated change does only what is left);
  //  - kAborted: another change is in progress (libraft makes one at a time): no effect;
  //  - kAlreadyExists: the id is in the configuration with another address, or the address is
  //    another server's: no effect;
  //  - kInvalidArgument: this node asked to remove itself: no effect;
  //  - kInternal: libraft failed the change (the message names its error); after an add, the
  //    server may be left in the configuration as a spare (no vote): ask again;
  //  - kUnavailable: as for DoneCallback.
  using ChangeCallback = std::function<void(absl::Status)>;

  // Opens (bootstrapping a pristine `dir` with `members`, else reusing its state) and starts the
  // node; it then joins elections on its own. A snapshot in `dir` is restored into `machine`
  // before Open returns. kInvalidArgument on bad options; kUnavailable if the address or the
  // directory cannot be used (for example the port is taken).
  static absl::StatusOr<std::unique_ptr<RaftNode>> Open(const RaftNodeOptions& options,
                                                        std::unique_ptr<StateMachine> machine);

  RaftNode(const RaftNode&) = delete;
  RaftNode& operator=(const RaftNode&) = delete;
  ~RaftNode();  // Close()

  // Proposes `payload` (copied). With `term` non-zero, only in that term: the entry is refused,
  // with no effect, unless this node still leads `term` when its loop thread appends it (so not
  // if the leadership was lost and came back in a later term meanwhile). OK: accepted, `done`
  // will be called (possibly with one of the refusals below: decided on the loop thread).
  // Otherwise no effect and no callback: kUnavailable "server S does not lead (term T); leader is
  // server L at ADDRESS" (or "leader unknown"), "server S leads term T but is not ready ...",
  // "server S leads term T, not the term the entry was proposed for", or "server S is closed";
  // kResourceExhausted if out of memory.
  absl::Status Propose(std::string_view payload, DoneCallback done, uint64_t term = 0);

  // Proposes a Raft barrier (an entry no state machine sees): once committed, it proves that this
  // node still led its term after the call. OK: accepted, `done` will be called. Otherwise no
  // effect and no callback, with Propose's refusals.
  absl::Status Barrier(BarrierCallback done);

  NodeInfo Info() const;

  // Membership changes, on a ready leader only (refusals as Propose's; see ChangeCallback):
  // AddVoter adds server `id`, whose Raft instance of this group listens at `address`, as a spare,
  // then promotes it to voter once libraft has replicated the log to it; a spare or standby is
  // promoted; a voter is left alone. Remove removes server `id` (nothing if it is not there).
  absl::Status AddVoter(uint64_t id, const std::string& address, ChangeCallback done);
  absl::Status Remove(uint64_t id, ChangeCallback done);

  // Asks this node, a ready leader, to hand its leadership to server `id` (libraft's
  // raft_transfer). While the transfer is in flight (one election timeout at most) the node
  // refuses proposals, barriers and changes (kUnavailable: no effect), so nothing it accepted
  // after the target took over is acknowledged. OK: asked; Info()'s transfers_* count how it
  // ends (the target need not be caught up: libraft waits for it, then gives up after an
  // election timeout). Otherwise no effect: Propose's refusals, or kInvalidArgument (id 0).
  absl::Status TransferLeadership(uint64_t id);

  // The configuration as the node last published it (at most one loop iteration old): its last
  // configuration entry, committed or not. Any thread.
  std::vector<ConfiguredServer> Configuration() const;

  // Stops the node: queued proposals get kUnavailable at once; the node then waits until its log
  // holds on disk every entry it appended (5 s at most), meanwhile committing (OK) what a majority
  // holds and accepting nothing new; proposals still in flight then get kUnknown. Every callback
  // runs before Close returns; the loop thread ends, sockets and memory are freed. The directory
  // keeps the state for a later Open. Idempotent.
  void Close();

  // The voters of the configuration the node loaded from its directory (or bootstrapped) at
  // Open, in libraft's order. What a later Open compares with the members it was given.
  const std::vector<RaftMember>& opened_voters() const { return opened_voters_; }

  StateMachine& machine() { return *machine_; }
  uint64_t id() const { return id_; }

 private:
  struct Callbacks;  // the shim's C callbacks
  static NodeInfo ToNodeInfo(uint64_t id, const struct rs_info& raw);
  RaftNode() = default;
  absl::Status Refusal(int code) const;
  absl::Status Change(int op, uint64_t id, const std::string& address, ChangeCallback done);
  absl::Status ChangeStatus(int code, const char* detail) const;

  uint64_t id_ = 0;
  std::function<void()> on_change_;
  std::function<uint64_t(const NodeInfo&)> gather_anchor_;
  std::unique_ptr<StateMachine> machine_;
  std::vector<RaftMember> opened_voters_;
  rs_group* group_ = nullptr;
  mutable std::mutex mu_;
  uint64_t next_cookie_ = 1;                                         // guarded by mu_
  absl::flat_hash_map<uint64_t, DoneCallback> pending_;              // guarded by mu_
  absl::flat_hash_map<uint64_t, BarrierCallback> pending_barriers_;  // guarded by mu_
  absl::flat_hash_map<uint64_t, ChangeCallback> pending_changes_;    // guarded by mu_
};

}  // namespace shardtx::replication
