// A simulated Raft group of N servers (libraft's fixture, behind replication/raft_shim.h), driven
// by one C++ thread: elect, propose entries, learn when each server releases them, ask who leads,
// cut links, kill and revive servers, and step a deterministic clock. Used by the replication
// tests and, later, by the simulator over the real shard apply path (docs/replication-plan.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct rs_sim;
struct rs_info;

namespace shardtx::replication {

// One entry as a server releases it: committed, in index order, each index once.
struct ReleasedEntry {
  uint64_t term = 0;   // the term its proposer led when it proposed it
  uint64_t index = 0;  // its Raft log index
  std::string_view payload;
};

// One server's state machine: what released entries are applied to. Called on the thread that
// drives the group, from inside Step*(); a method must not call back into the group.
class StateMachine {
 public:
  virtual ~StateMachine() = default;

  // Applies one released entry. payload is valid only during the call.
  virtual void Release(const ReleasedEntry& entry) = 0;

  // The state as of the last released entry, as bytes Restore() accepts (Raft snapshots).
  virtual absl::StatusOr<std::string> Snapshot() = 0;

  // Replaces the state with a snapshot's (a lagging server catching up). Later entries continue
  // above the snapshot's index.
  virtual absl::Status Restore(std::string_view snapshot) = 0;
};

enum class Role { kUnavailable, kFollower, kCandidate, kLeader };

// What one server knows of itself; see rs_info in raft_shim.h for the counters.
struct ServerInfo {
  unsigned server = 0;
  bool alive = true;
  Role role = Role::kFollower;
  // Leads and has released an entry of its current term (its term-start entry): only a ready
  // leader accepts proposals.
  bool ready = false;
  uint64_t term = 0;
  std::optional<unsigned> believed_leader;  // whom it takes for the leader, if anyone
  uint64_t last_index = 0;                  // the last index in its log (stored or not)
  uint64_t commit_index = 0;  // libraft's (may count an older term's entry: see the gate)
  uint64_t last_applied = 0;  // libraft's: released or held by the gate
  uint64_t released_index = 0;
  uint64_t held = 0;  // entries libraft applied that the release gate holds back
  uint64_t noops_proposed = 0;
  uint64_t snapshots_taken = 0;
  uint64_t snapshots_refused = 0;
  uint64_t restores = 0;
  uint64_t tag_mismatches = 0;
  uint64_t malformed = 0;
  // Times the server was seen in Role::kUnavailable. A real node then closes and reopens its
  // Raft instance from disk; the fixture cannot restart a server, so it stays there.
  uint64_t unavailable = 0;
  // The match-index fix (rs_info in raft_shim.h): successful AppendEntries results whose last
  // index was lowered to what their request proved, and successes that answer no request of
  // their addressee in their term (sent with last index 0).
  uint64_t results_lowered = 0;
  uint64_t results_unmatched = 0;
  // Elections stood in and won; snapshots sent as leader and installed from one (rs_info).
  uint64_t elections_started = 0;
  uint64_t elections_won = 0;
  uint64_t snapshots_sent = 0;
  uint64_t snapshots_installed = 0;
};

struct SimulatedGroupOptions {
  unsigned servers = 3;  // 1..8
  uint64_t seed = 1;     // every random choice of the run (election timeouts)
  unsigned election_timeout_ms = 1000;
  unsigned heartbeat_ms = 100;
  // Small by default: the fixture copies a leader's log at each step, so its cost grows with the
  // entries kept in memory.
  unsigned snapshot_threshold = 64;
  unsigned snapshot_trailing = 16;
  bool pre_vote = true;
  // Draw each server's election timeout from the seed after each of its events; false keeps the
  // fixture's fixed timeouts (1000 + 100 * server ms), as the probes in docs/ do.
  bool redraw_election_timeouts = true;
  // TEST ONLY: false switches the Figure-8 guard off (stock libraft 0.15, which can diverge or
  // wedge), so that a test can show the guard matters.
  bool figure8_guard = true;
  // TEST ONLY: false switches the match-index fix off (stock libraft 0.15, whose followers answer
  // AppendEntries with their own last index; see rs_config.match_index_fix).
  bool match_index_fix = true;
};

// Shared by the groups over raft_shim.h's backends (SimulatedGroup, RestartableGroup): server
// `server`'s ServerInfo from the shim's info, the rule of Leader() over any group's Info, and a
// refusal code of rs_group_propose (RS_NOT_LEADER, ...) as the status Propose returns.
ServerInfo ServerInfoOf(unsigned server, bool alive, const ::rs_info& raw);
std::optional<unsigned> ReadyLeaderOf(unsigned servers,
                                      const std::function<ServerInfo(unsigned)>& info_of);
absl::Status ProposalRefusal(unsigned server, int code, const ServerInfo& info);

// The group. Servers are numbered 0..servers-1. Not thread-safe: one thread calls everything, and
// every callback (state machines, proposal callbacks) runs on it, inside a Step*() call.
class SimulatedGroup {
 public:
  // The outcome of an accepted proposal, called once: OK = released on the proposing server
  // (committed on a majority and applied there); kUnknown = leadership was lost while it was in
  // flight, so it may or may not commit (its release on the servers tells). Never called after
  // the group is destroyed. It runs inside a Step*() call and must not call into the group
  // (Info() and Leader() excepted).
  using DoneCallback = std::function<void(absl::Status)>;
  // The outcome of an accepted barrier, called once, like a DoneCallback: the term the barrier
  // was appended and committed in, the proposing server leading that term until it applied it;
  // kUnknown if it lost the leadership first.
  using BarrierCallback = std::function<void(absl::StatusOr<uint64_t>)>;

  // Opens, bootstraps and starts the group with no leader yet. machines[i] serves server i
  // (options.servers of them, none null). kInvalidArgument on bad options.
  static absl::StatusOr<std::unique_ptr<SimulatedGroup>> Open(
      const SimulatedGroupOptions& options, std::vector<std::unique_ptr<StateMachine>> machines);

  SimulatedGroup(const SimulatedGroup&) = delete;
  SimulatedGroup& operator=(const SimulatedGroup&) = delete;
  // Closes every server; pending proposal callbacks are dropped uncalled.
  ~SimulatedGroup();

  unsigned size() const { return static_cast<unsigned>(machines_.size()); }
  StateMachine& machine(unsigned server) { return *machines_[server]; }

  // Makes `server` leader now (there must be no leader or candidate, and it must reach a
  // majority), then steps until it is ready or `timeout_ms` pass. kDeadlineExceeded if not ready.
  absl::Status Elect(unsigned server, uint64_t timeout_ms = 10'000);

  // Proposes an entry on `server`. OK: accepted, `done` will be called. Otherwise no effect and no
  // callback: kUnavailable "server S does not lead; leader is server L" (or "leader unknown"),
  // "server S leads term T but is not ready" (its term-start entry is not released), or "server S
  // is down"; kUnknown if libraft failed it synchronously with an I/O error (then it may commit).
  // With `term` non-zero, also kUnavailable "server S leads term T, not the term the entry was
  // proposed for" unless `server` leads exactly `term`.
  absl::Status Propose(unsigned server, std::string_view payload, DoneCallback done,
                       uint64_t term = 0);

  // Proposes a Raft barrier on `server` (an entry no state machine sees; it proves that the
  // server still led its term after the call, once it commits). OK: accepted, `done` will be
  // called. Otherwise no effect and no callback, with Propose's refusals (kUnavailable), or
  // kUnavailable if libraft failed it synchronously.
  absl::Status Barrier(unsigned server, BarrierCallback done);

  // The ready leader of the highest term among live servers, if any and if no live server (not
  // left unavailable) is in a higher term. A killed server keeps its state frozen, and may still
  // think it leads an old term: it is never named here. A server named here may still lose its
  // leadership before the next proposal commits (then its callback says kUnknown).
  std::optional<unsigned> Leader() const;

  ServerInfo Info(unsigned server) const;

  // The clock (simulated milliseconds) and stepping: each step fires the earliest tick, disk write
  // or message delivery.
  uint64_t NowMs() const;
  void Step();
  void StepFor(uint64_t ms);
  // Steps until `done()` (checked before each step) or `timeout_ms` pass; returns done().
  bool StepUntil(const std::function<bool()>& done, uint64_t timeout_ms);

  // Faults. Links are directional: Disconnect makes sends fail, Saturate drops them silently.
  void Disconnect(unsigned from, unsigned to);
  void Reconnect(unsigned from, unsigned to);
  void Saturate(unsigned from, unsigned to);
  void Desaturate(unsigned from, unsigned to);
  // Cuts (or restores) every link to and from `server`, both directions.
  void Isolate(unsigned server);
  void Rejoin(unsigned server);
  // Restores every link and revives every server.
  void HealAll();
  // Kill freezes a server (no ticks, no messages, memory intact); Revive resumes it. Both do
  // nothing if the server is already in that state.
  void Kill(unsigned server);
  void Revive(unsigned server);
  bool Alive(unsigned server) const;
  void SetNetworkLatency(unsigned server, unsigned ms);
  void SetDiskLatency(unsigned server, unsigned ms);
  // The (delay+1)-th I/O request of `server` from now on fails, and the next repeat-1 too.
  void InjectIoFault(unsigned server, int delay, int repeat);

  // Terms in which two different servers were seen leading (checked after every step; 0 means
  // election safety held).
  uint64_t LeaderConflicts() const;

 private:
  struct Server;  // the C callbacks' context for one server
  SimulatedGroup() = default;
  // A refusal of Propose or Barrier (a shim code other than RS_OK), as a status.
  absl::Status Refusal(unsigned server, int code) const;

  std::vector<std::unique_ptr<StateMachine>> machines_;
  std::vector<std::unique_ptr<Server>> servers_;
  rs_sim* sim_ = nullptr;
};

}  // namespace shardtx::replication
