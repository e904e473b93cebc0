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
};

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

  // Stops the node: proposals in flight get kUnknown and queued ones kUnavailable (their
  // callbacks run before Close returns), the loop thread ends, sockets and memory are freed. The
  // directory keeps the state for a later Open. Idempotent.
  void Close();

  // The voters of the configuration the node loaded from its directory (or bootstrapped) at
  // Open, in libraft's order. What a later Open compares with the members it was given.
  const std::vector<RaftMember>& opened_voters() const { return opened_voters_; }

  StateMachine& machine() { return *machine_; }
  uint64_t id() const { return id_; }

 private:
  struct Callbacks;  // the shim's C callbacks
  RaftNode() = default;
  absl::Status Refusal(int code) const;

  uint64_t id_ = 0;
  std::function<void()> on_change_;
  std::unique_ptr<StateMachine> machine_;
  std::vector<RaftMember> opened_voters_;
  rs_group* group_ = nullptr;
  mutable std::mutex mu_;
  uint64_t next_cookie_ = 1;                                         // guarded by mu_
  absl::flat_hash_map<uint64_t, DoneCallback> pending_;              // guarded by mu_
  absl::flat_hash_map<uint64_t, BarrierCallback> pending_barriers_;  // guarded by mu_
};

}  // namespace shardtx::replication
