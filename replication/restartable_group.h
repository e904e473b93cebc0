// A simulated Raft group whose servers can crash and restart and whose disks can fail: the C++
// face of raft_shim.h's crash simulator backend (rs_world, over replication/sim_io.h's raft_io).
// Like SimulatedGroup, one thread drives everything and a seed replays a run exactly; unlike it,
// a crashed server loses what its disk had not completed and its state machine, and a restart
// opens a new state machine and a new raft instance over the server's durable Raft state
// (docs/replication-plan.md, step 9).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "replication/simulated_group.h"

struct rs_world;

namespace shardtx::replication {

struct RestartableGroupOptions {
  unsigned servers = 3;  // 1..8
  uint64_t seed = 1;     // every random choice of the simulation
  unsigned election_timeout_ms = 1000;
  unsigned heartbeat_ms = 100;
  unsigned snapshot_threshold = 64;
  unsigned snapshot_trailing = 16;
  bool pre_vote = true;
  // TEST ONLY, as in SimulatedGroupOptions.
  bool figure8_guard = true;
  bool match_index_fix = true;
  // TEST ONLY: a mutation of the crash model (SIO_MUTATE_* in replication/sim_io.h), to show
  // that the tests' checks fail when durability is broken. 0: none.
  int mutation = 0;
};

// Counters of the simulated network and disks (sio_stats in replication/sim_io.h).
struct SimulatorStats {
  uint64_t messages_sent = 0, messages_dropped = 0, messages_lost = 0;
  uint64_t appends_completed = 0, appends_cancelled = 0, writes_failed = 0;
  uint64_t snapshots_put = 0, crashes = 0;
  uint64_t model_errors = 0;  // expect 0
};

class RestartableGroup {
 public:
  using DoneCallback = SimulatedGroup::DoneCallback;
  // Opens server `server`'s state machine: at Open and at every Restart.
  using MachineOpener =
      std::function<absl::StatusOr<std::unique_ptr<StateMachine>>(unsigned server)>;
  // Receives a crashed server's state machine once its raft instance is gone, to crash it as
  // the test models it (for example power loss under a fault-injecting Env) and destroy it.
  using MachineCrasher = std::function<void(unsigned server, std::unique_ptr<StateMachine>)>;
  // Called after a server's machine restored a snapshot successfully (optional).
  using RestoreHook = std::function<void(unsigned server)>;

  // Opens the machines, then the group (all servers up, no leader yet). kInvalidArgument on bad
  // options; the opener's errors.
  static absl::StatusOr<std::unique_ptr<RestartableGroup>> Open(
      const RestartableGroupOptions& options, MachineOpener open, MachineCrasher crash,
      RestoreHook after_restore = nullptr);
  RestartableGroup(const RestartableGroup&) = delete;
  RestartableGroup& operator=(const RestartableGroup&) = delete;
  // Closes every server (pending callbacks are dropped uncalled), then destroys the machines.
  ~RestartableGroup();

  unsigned size() const { return static_cast<unsigned>(servers_.size()); }
  bool Up(unsigned server) const;
  // The server's state machine, or null while it is down.
  StateMachine* machine(unsigned server);

  // As SimulatedGroup::Propose; a server that is down refuses with kUnavailable.
  absl::Status Propose(unsigned server, std::string_view payload, DoneCallback done);
  // The ready leader of the highest term among the servers that are up, if no server that is up
  // (and not left unavailable) is in a higher term.
  std::optional<unsigned> Leader() const;
  // What the server knows of itself; `alive` is false while it is down (the rest is then zero).
  ServerInfo Info(unsigned server) const;

  uint64_t NowMs() const;
  // Fires the earliest event. False if there was none (every server down): the clock stands.
  bool Step();
  void StepFor(uint64_t ms);
  bool StepUntil(const std::function<bool()>& done, uint64_t timeout_ms);
  // Lock-step with other groups (several groups per simulated node, one clock): the time of
  // the earliest event still to fire (nullopt: none), and moving the clock forward to `ms`
  // (nothing if it is not later). REQUIRES for AdvanceTo: no event due before `ms`.
  std::optional<uint64_t> NextEventMs() const;
  void AdvanceTo(uint64_t ms);

  // Crashes a server that is up (nothing otherwise): proposals in flight on it get kUnknown,
  // then the crasher gets its machine.
  void Crash(unsigned server);
  // Restarts a server that is down: opens its machine, then a raft instance over its durable
  // state. On failure the server stays down (its machine destroyed by the crasher):
  // kFailedPrecondition if it is up, the opener's error, or kUnavailable if libraft refused to
  // start (for example its snapshot's restore failed).
  absl::Status Restart(unsigned server);

  // The network, one direction at a time, and the disks (replication/sim_io.h).
  void SetLink(unsigned from, unsigned to, bool up);
  void SetDrop(unsigned from, unsigned to, unsigned percent);
  void Isolate(unsigned server);  // every link to and from it down
  void HealNetwork();             // every link up, no drops
  void SetLatency(unsigned server, unsigned network_ms, unsigned disk_ms);
  // The nth write (n >= 1) of `server`'s Raft log, term or vote from now fails, and every later
  // one until it restarts.
  void FailWrite(unsigned server, unsigned n);

  uint64_t LeaderConflicts() const;
  SimulatorStats Stats() const;
  // The last index of the server's durable Raft log.
  uint64_t DurableLastIndex(unsigned server) const;

 private:
  struct Server;
  RestartableGroup() = default;
  absl::Status Refusal(unsigned server, int code) const;

  MachineOpener open_;
  MachineCrasher crash_;
  RestoreHook after_restore_;
  std::vector<std::unique_ptr<Server>> servers_;
  rs_world* world_ = nullptr;
};

}  // namespace shardtx::replication
