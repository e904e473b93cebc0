// RaftNode: three real servers (raft_uv on disk, TCP on 127.0.0.1) in one process. Ports come from
// binding port 0, so parallel test processes do not collide; directories are per process.
#include "replication/raft_node.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/replication/free_ports.h"

namespace shardtx::replication {
namespace {

using Clock = std::chrono::steady_clock;

#ifdef SHARDTX_REPLICATION_SLOW_BUILD
// Sanitizers slow the loop threads several times over: longer timeouts keep elections rare.
constexpr unsigned kElectionMs = 1000;
constexpr unsigned kHeartbeatMs = 100;
#else
constexpr unsigned kElectionMs = 300;
constexpr unsigned kHeartbeatMs = 50;
#endif

// A state machine other threads can read: the released payloads, in order.
class SyncMachine : public StateMachine {
 public:
  // Keeps the first `keep` bytes of each payload (snapshots copy the whole state on the loop
  // thread: 200 x 64 KiB of it stalled sanitizer builds past the election timeout).
  explicit SyncMachine(size_t keep = std::string::npos) : keep_(keep) {}

  void Release(const ReleasedEntry& entry) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (entry.index <= last_index_) violations_++;
    last_index_ = entry.index;
    sequence_.emplace_back(entry.payload.substr(0, keep_));
    cv_.notify_all();
  }

  absl::StatusOr<std::string> Snapshot() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out(reinterpret_cast<const char*>(&last_index_), sizeof last_index_);
    for (const std::string& p : sequence_) {
      uint32_t n = static_cast<uint32_t>(p.size());
      out.append(reinterpret_cast<const char*>(&n), sizeof n);
      out.append(p);
    }
    snapshots_++;
    return out;
  }

  absl::Status Restore(std::string_view snapshot) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (snapshot.size() < sizeof(uint64_t)) return absl::DataLossError("short snapshot");
    std::memcpy(&last_index_, snapshot.data(), sizeof last_index_);
    sequence_.clear();
    size_t pos = sizeof last_index_;
    while (pos < snapshot.size()) {
      uint32_t n = 0;
      if (snapshot.size() - pos < sizeof n) return absl::DataLossError("torn snapshot");
      std::memcpy(&n, snapshot.data() + pos, sizeof n);
      pos += sizeof n;
      if (snapshot.size() - pos < n) return absl::DataLossError("torn snapshot");
      sequence_.emplace_back(snapshot.substr(pos, n));
      pos += n;
    }
    restores_++;
    cv_.notify_all();
    return absl::OkStatus();
  }

  // Waits until at least n entries were released; false on timeout.
  bool WaitForSize(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return sequence_.size() >= n; });
  }
  std::vector<std::string> sequence() const {
    std::lock_guard<std::mutex> lock(mu_);
    return sequence_;
  }
  uint64_t violations() const {
    std::lock_guard<std::mutex> lock(mu_);
    return violations_;
  }
  uint64_t restores() const {
    std::lock_guard<std::mutex> lock(mu_);
    return restores_;
  }

 private:
  const size_t keep_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> sequence_;
  uint64_t last_index_ = 0;
  uint64_t violations_ = 0;
  uint64_t snapshots_ = 0;
  uint64_t restores_ = 0;
};

// One proposal's outcome, waited for by the test thread.
// Opening a node: the status on failure (a port another process took, say).
#define ASSERT_OK_OPEN(expr)                      \
  do {                                            \
    const absl::Status open_status = (expr);      \
    ASSERT_TRUE(open_status.ok()) << open_status; \
  } while (0)

struct Outcome {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<absl::Status> status;
  void Set(absl::Status s) {
    std::lock_guard<std::mutex> lock(mu);
    status = std::move(s);
    cv.notify_all();
  }
  std::optional<absl::Status> Wait(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, timeout, [&] { return status.has_value(); });
    return status;
  }
};

class Cluster {
 public:
  explicit Cluster(std::string name) {
    root_ = std::filesystem::path(testing::TempDir()) /
            absl::StrCat("shardtx_raft_node_", getpid(), "_", name);
    std::filesystem::remove_all(root_);
    std::vector<int> ports = FreePorts(3);
    for (int i = 0; i < 3; i++) {
      members_.push_back({static_cast<uint64_t>(i + 1),
                          absl::StrCat("127.0.0.1:", ports.size() > size_t(i) ? ports[i] : 1)});
    }
    nodes_.resize(3);
    machines_.resize(3);
  }
  ~Cluster() {
    for (auto& node : nodes_) node.reset();  // never while holding mu_
    std::filesystem::remove_all(root_);
  }

  RaftNodeOptions Options(int i) {
    RaftNodeOptions o;
    o.id = members_[i].id;
    o.address = members_[i].address;
    o.dir = (root_ / absl::StrCat("node", i + 1)).string();
    o.members = members_;
    o.election_timeout_ms = election_ms;
    o.heartbeat_ms = kHeartbeatMs;
    o.snapshot_threshold = 256;
    o.snapshot_trailing = 32;
    o.connect_retry_ms = 50;
    o.pack_proposals = pack_proposals;
    o.on_change = [this] {
      std::lock_guard<std::mutex> lock(mu_);
      cv_.notify_all();
    };
    return o;
  }

  // Opens node i with a fresh state machine (from its directory, if it has state).
  absl::Status Open(int i) {
    auto machine = std::make_unique<SyncMachine>(keep_payload_bytes);
    SyncMachine* raw = machine.get();
    absl::StatusOr<std::unique_ptr<RaftNode>> node = RaftNode::Open(Options(i), std::move(machine));
    if (!node.ok()) return node.status();
    std::lock_guard<std::mutex> lock(mu_);
    machines_[i] = raw;
    nodes_[i] = std::move(*node);
    return absl::OkStatus();
  }
  void Close(int i) {
    std::unique_ptr<RaftNode> node;
    {
      std::lock_guard<std::mutex> lock(mu_);
      node = std::move(nodes_[i]);
      machines_[i] = nullptr;
    }
    node.reset();
  }

  // The open node that is a ready leader with no open node in a higher term, waiting for one up to
  // `timeout`.
  std::optional<int> WaitLeader(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    std::optional<int> leader;
    cv_.wait_for(lock, timeout, [&] {
      leader = LeaderLocked();
      return leader.has_value();
    });
    return leader;
  }

  size_t keep_payload_bytes = std::string::npos;  // for the machines Open() makes
  bool pack_proposals = false;                    // for the nodes Open() opens
  unsigned election_ms = kElectionMs;             // for the nodes Open() opens

  RaftNode& node(int i) { return *nodes_[i]; }
  SyncMachine& machine(int i) { return *machines_[i]; }
  const RaftMember& member(int i) const { return members_[i]; }

 private:
  std::optional<int> LeaderLocked() {
    std::optional<int> leader;
    uint64_t top = 0;
    for (int i = 0; i < 3; i++) {
      if (nodes_[i] == nullptr) continue;
      NodeInfo info = nodes_[i]->Info();
      if (info.term > top) {
        top = info.term;
        leader.reset();
      }
      if (info.term == top && info.ready) leader = i;
    }
    return leader;
  }

  std::filesystem::path root_;
  std::vector<RaftMember> members_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<RaftNode>> nodes_;
  std::vector<SyncMachine*> machines_;
};

// Proposes `count` payloads "<prefix>-<k>" on `node` with up to `window` in flight, and waits for
// every outcome. Returns the number that were acknowledged OK; *first_error gets the first other
// status.
int ProposeAll(RaftNode& node, const std::string& prefix, int count, int window,
               std::vector<std::string>* proposed, absl::Status* first_error) {
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0, ok = 0, done = 0;
  for (int k = 0; k < count; k++) {
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return in_flight < window; });
      in_flight++;
    }
    std::string payload = absl::StrCat(prefix, "-", k);
    absl::Status s = node.Propose(payload, [&](absl::Status st) {
      std::lock_guard<std::mutex> lock(mu);
      if (st.ok()) {
        ok++;
      } else if (first_error->ok()) {
        *first_error = st;
      }
      done++;
      in_flight--;
      cv.notify_all();
    });
    if (!s.ok()) {
      std::lock_guard<std::mutex> lock(mu);
      if (first_error->ok()) *first_error = s;
      in_flight--;
      done++;
      continue;
    }
    proposed->push_back(payload);
  }
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done == count; });
  return ok;
}

TEST(RaftNode, ThreeNodesElectAndReleaseTheSameThousandEntries) {
  Cluster cluster("thousand");
  for (int i = 0; i < 3; i++) ASSERT_OK_OPEN(cluster.Open(i));
  std::optional<int> leader = cluster.WaitLeader(std::chrono::seconds(20));
  ASSERT_TRUE(leader.has_value()) << "no leader within 20 s";

  std::vector<std::string> expected;
  absl::Status error;
  int ok = ProposeAll(cluster.node(*leader), "entry", 1000, 64, &expected, &error);
  EXPECT_EQ(ok, 1000) << error;
  ASSERT_EQ(expected.size(), 1000u);
  for (int i = 0; i < 3; i++) {
    SCOPED_TRACE(i);
    ASSERT_TRUE(cluster.machine(i).WaitForSize(expected.size(), std::chrono::seconds(20)));
    EXPECT_EQ(cluster.machine(i).sequence(), expected);
    EXPECT_EQ(cluster.machine(i).violations(), 0u);
    NodeInfo info = cluster.node(i).Info();
    EXPECT_EQ(info.tag_mismatches, 0u);
    EXPECT_EQ(info.malformed, 0u);
    EXPECT_EQ(info.unavailable, 0u);
    // The snapshot threshold (256) is below 1,000: the snapshot path ran on every node.
    EXPECT_GT(info.snapshots_taken, 0u);
    // raft_uv receives on accepted connections and sends on its own: every node has at least
    // one of each (the leader two of each), all set to TCP_NODELAY.
    EXPECT_GE(info.nodelay_streams, i == *leader ? 4u : 2u);
  }
  NodeInfo leader_info = cluster.node(*leader).Info();
  EXPECT_EQ(leader_info.role, Role::kLeader);
  EXPECT_GE(leader_info.noops_proposed, 1u);
}

TEST(RaftNode, FailoverThenTheClosedLeaderReopensAndCatchesUp) {
  Cluster cluster("failover");
  for (int i = 0; i < 3; i++) ASSERT_OK_OPEN(cluster.Open(i));
  std::optional<int> first = cluster.WaitLeader(std::chrono::seconds(20));
  ASSERT_TRUE(first.has_value());
  std::vector<std::string> expected;
  absl::Status error;
  ASSERT_EQ(ProposeAll(cluster.node(*first), "before", 100, 16, &expected, &error), 100) << error;

  // Close the leader. The others stop hearing heartbeats, time out within [T, 2T), and one of
  // them wins and releases its term-start entry: the bound is 5 election timeouts T.
  Clock::time_point closed_at = Clock::now();
  cluster.Close(*first);
  std::optional<int> second = cluster.WaitLeader(std::chrono::milliseconds(20 * kElectionMs));
  ASSERT_TRUE(second.has_value()) << "no new leader";
  auto failover = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - closed_at);
  std::printf(
      "failover: a new ready leader %lld ms after the leader closed (election timeout %u "
      "ms)\n",
      static_cast<long long>(failover.count()), kElectionMs);
  EXPECT_LT(failover.count(), 5 * kElectionMs);
  ASSERT_NE(*second, *first);

  // Proposals on the new leader succeed; one on the remaining follower is refused, naming the
  // leader's id and address, with no effect.
  ASSERT_EQ(ProposeAll(cluster.node(*second), "after", 100, 16, &expected, &error), 100) << error;
  int follower = 3 - *first - *second;
  absl::Status refused = cluster.node(follower).Propose(
      "refused", [](absl::Status) { ADD_FAILURE() << "a refused proposal was called back"; });
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
  EXPECT_NE(refused.message().find(absl::StrCat("leader is server ", cluster.member(*second).id,
                                                " at ", cluster.member(*second).address)),
            std::string::npos)
      << refused;

  // The closed node reopens from its directory and catches up: same sequence everywhere.
  ASSERT_OK_OPEN(cluster.Open(*first));
  for (int i = 0; i < 3; i++) {
    SCOPED_TRACE(i);
    bool caught_up = cluster.machine(i).WaitForSize(expected.size(), std::chrono::seconds(20));
    NodeInfo info = cluster.node(i).Info();
    ASSERT_TRUE(caught_up) << cluster.machine(i).sequence().size() << " released; role "
                           << static_cast<int>(info.role) << " term " << info.term << " commit "
                           << info.commit_index << " applied " << info.last_applied << " released "
                           << info.released_index << " held " << info.held << " last "
                           << info.last_index << " restores " << info.restores << " malformed "
                           << info.malformed << " first "
                           << (cluster.machine(i).sequence().empty()
                                   ? std::string("-")
                                   : cluster.machine(i).sequence().front())
                           << " last "
                           << (cluster.machine(i).sequence().empty()
                                   ? std::string("-")
                                   : cluster.machine(i).sequence().back());
    EXPECT_EQ(cluster.machine(i).sequence(), expected);
    EXPECT_EQ(cluster.machine(i).violations(), 0u);
  }
  NodeInfo reopened = cluster.node(*first).Info();
  EXPECT_EQ(reopened.role, Role::kFollower);
  EXPECT_EQ(reopened.leader_id, cluster.member(*second).id);
}

void CloseAnswersEveryProposal(bool pack) {
  Cluster cluster(pack ? "closepacked" : "close");
  cluster.pack_proposals = pack;
  for (int i = 0; i < 3; i++) ASSERT_OK_OPEN(cluster.Open(i));
  std::optional<int> leader = cluster.WaitLeader(std::chrono::seconds(20));
  ASSERT_TRUE(leader.has_value());
  RaftNode& node = cluster.node(*leader);
  // A first burst, then a second once the first proposal has committed (so the loop thread has
  // taken proposals off the queue and writes them; with packing it may hold the second burst).
  constexpr int kFirst = 200, kProposals = 300;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int> calls(kProposals, 0);
  int ok = 0, unknown = 0, unavailable = 0, other = 0, accepted = 0;
  auto propose = [&](int k) {
    absl::Status s = node.Propose(absl::StrCat("close-", k), [&, k](absl::Status st) {
      std::lock_guard<std::mutex> lock(mu);
      calls[k]++;
      cv.notify_all();
      if (st.ok()) {
        ok++;
      } else if (absl::IsUnknown(st)) {
        unknown++;
      } else if (absl::IsUnavailable(st)) {
        unavailable++;
      } else {
        other++;
      }
    });
    if (s.ok()) accepted++;
  };
  for (int k = 0; k < kFirst; k++) propose(k);
  {
    // No early return from here on: the callbacks use this frame until Close has answered all.
    // (A leadership change may answer the whole first burst kUnknown before any commits.)
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::seconds(20),
                [&] { return ok > 0 || ok + unknown + unavailable + other == accepted; });
  }
  for (int k = kFirst; k < kProposals; k++) propose(k);
  node.Close();  // with proposals in flight (and perhaps some still queued or held)
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(accepted, kProposals);
  EXPECT_EQ(ok + unknown + unavailable, accepted) << "other " << other;
  for (int k = 0; k < kProposals; k++) EXPECT_EQ(calls[k], 1) << k;
  std::printf("close with %d proposals accepted: %d OK, %d unknown, %d unavailable\n", accepted, ok,
              unknown, unavailable);

  absl::Status after = node.Propose("late", [](absl::Status) { ADD_FAILURE() << "called"; });
  EXPECT_TRUE(absl::IsUnavailable(after)) << after;
  EXPECT_EQ(node.Info().role, Role::kUnavailable);
}

TEST(RaftNode, CloseAnswersEveryProposalInFlightAndRefusesLaterOnes) {
  CloseAnswersEveryProposal(/*pack=*/false);
}

// The same with packing, where the loop thread may also hold proposals (its last append not
// stored yet) when the node closes: those are answered too.
TEST(RaftNode, CloseAnswersEveryPackedOrHeldProposal) { CloseAnswersEveryProposal(/*pack=*/true); }

// Close while appends wait behind a write still in flight (raft_uv writes one at a time): a large
// entry, then small ones each appended on its own (no packing), and Close once libraft has taken
// them all into its log. raft_uv 0.15 cancels queued appends at close and libraft truncates its
// log from each one's index: the second truncation runs past the log's end and crashed (SIGSEGV in
// removeSuffix). The shim now closes libraft once the log's writes are stored.
TEST(RaftNode, CloseWithAppendsQueuedBehindAWriteInFlight) {
  Cluster cluster("closequeued");
  for (int i = 0; i < 3; i++) ASSERT_OK_OPEN(cluster.Open(i));
  std::optional<int> leader = cluster.WaitLeader(std::chrono::seconds(20));
  ASSERT_TRUE(leader.has_value());
  RaftNode& node = cluster.node(*leader);
  const uint64_t before = node.Info().last_index;
  constexpr int kSmall = 20;
  std::mutex mu;
  std::vector<int> calls(kSmall + 1, 0);
  int accepted = 0;
  auto propose = [&](int k, std::string payload) {
    absl::Status s = node.Propose(payload, [&, k](absl::Status) {
      std::lock_guard<std::mutex> lock(mu);
      calls[k]++;
    });
    if (s.ok()) accepted++;
  };
  propose(0, std::string(8 << 20, 'x'));
  for (int k = 1; k <= kSmall; k++) propose(k, absl::StrCat("small-", k));
  // No early return from here on: the callbacks use this frame until Close has answered all.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (node.Info().last_index < before + kSmall + 1 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  const NodeInfo at_close = node.Info();
  node.Close();
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(accepted, kSmall + 1);
  EXPECT_EQ(at_close.last_index, before + kSmall + 1);  // all taken into the log before Close
  for (int k = 0; k <= kSmall; k++) EXPECT_EQ(calls[k], 1) << k;
  std::printf("closed at last index %llu (%llu before the proposals), %llu entries stored\n",
              static_cast<unsigned long long>(at_close.last_index),
              static_cast<unsigned long long>(before),
              static_cast<unsigned long long>(at_close.entries_stored));
}

TEST(RaftNode, OpenRefusesBadOptionsAndATakenAddress) {
  Cluster cluster("refuse");
  RaftNodeOptions stranger = cluster.Options(0);
  stranger.id = 9;  // not a member
  absl::StatusOr<std::unique_ptr<RaftNode>> node =
      RaftNode::Open(stranger, std::make_unique<SyncMachine>());
  EXPECT_TRUE(absl::IsInvalidArgument(node.status())) << node.status();

  ASSERT_OK_OPEN(cluster.Open(0));
  // Opening a node installs SIG_IGN for SIGPIPE (it was at its default in this test binary).
  struct sigaction current;
  ASSERT_EQ(sigaction(SIGPIPE, nullptr, &current), 0);
  EXPECT_EQ(current.sa_handler, SIG_IGN);

  RaftNodeOptions twin = cluster.Options(0);  // the same address, another directory
  twin.dir += "-twin";
  node = RaftNode::Open(twin, std::make_unique<SyncMachine>());
  EXPECT_TRUE(absl::IsUnavailable(node.status())) << node.status();
}

// A proposal for a term the leader does not lead (its own term moved on since the caller looked)
// is accepted by Propose, which decides on the published state, and then refused by the loop
// thread, with no effect: only the entry proposed for the leader's current term is released.
TEST(RaftNode, ProposalForAnotherTermIsRefusedOnTheLoopThread) {
  Cluster cluster("term");
  for (int i = 0; i < 3; i++) ASSERT_OK_OPEN(cluster.Open(i));
  std::optional<int> leader = cluster.WaitLeader(std::chrono::seconds(20));
  ASSERT_TRUE(leader.has_value());
  RaftNode& node = cluster.node(*leader);
  const uint64_t term = node.Info().term;
  Outcome stale, current;
  ASSERT_TRUE(node.Propose(
                      "stale", [&](absl::Status s) { stale.Set(s); }, term + 1)
                  .ok());
  ASSERT_TRUE(node.Propose(
                      "current", [&](absl::Status s) { current.Set(s); }, term)
                  .ok());
  std::optional<absl::Status> s = stale.Wait(std::chrono::seconds(20));
  ASSERT_TRUE(s.has_value());
  EXPECT_TRUE(absl::IsUnavailable(*s)) << *s;
  EXPECT_NE(s->message().find("not the term the entry was proposed for"), std::string::npos) << *s;
  std::optional<absl::Status> c = current.Wait(std::chrono::seconds(20));
  ASSERT_TRUE(c.has_value() && c->ok()) << (c ? c->ToString() : "no outcome");
  if (node.Info().term != term) GTEST_SKIP() << "the leadership moved during the test";
  EXPECT_EQ(cluster.machine(*leader).sequence(), std::vector<std::string>{"current"});
}

// Proposes, from the done callback of a first proposal (so on the loop thread: everything is
// queued before the loop takes its queue again), one proposal per payload, each for `terms[k]`;
// waits for every outcome. Returns the outcomes (the first proposal's last).
std::vector<absl::Status> ProposeFromTheLoop(RaftNode& node, uint64_t term,
                                             const std::vector<std::string>& payloads,
                                             const std::vector<uint64_t>& terms) {
  const size_t n = payloads.size();
  // Shared with the callbacks, which may outlive a timed-out wait (until the node closes).
  auto outcomes = std::make_shared<std::vector<Outcome>>(n + 1);
  absl::Status first = node.Propose(
      "first",
      [&node, outcomes, payloads, terms, n](absl::Status s) {
        for (size_t k = 0; k < n; ++k) {
          absl::Status accepted = node.Propose(
              payloads[k], [outcomes, k](absl::Status st) { (*outcomes)[k].Set(st); }, terms[k]);
          if (!accepted.ok()) (*outcomes)[k].Set(accepted);
        }
        (*outcomes)[n].Set(s);
      },
      term);
  if (!first.ok()) (*outcomes)[n].Set(first);
  std::vector<absl::Status> out;
  for (Outcome& o : *outcomes) {
    std::optional<absl::Status> s = o.Wait(std::chrono::seconds(30));
    out.push_back(s.value_or(absl::DeadlineExceededError("no outcome within 30 s")));
  }
  return out;
}

// Opens the three nodes with pack_proposals; the ready leader's node, or null (a failure added).
RaftNode* OpenPackedAndWaitLeader(Cluster& cluster) {
  cluster.pack_proposals = true;
  // Entries of up to 1 MiB, written by three nodes on a shared disk: a longer election timeout
  // keeps the leadership in place.
  cluster.election_ms = 3000;
  for (int i = 0; i < 3; i++) {
    const absl::Status s = cluster.Open(i);
    if (!s.ok()) {
      ADD_FAILURE() << "open node " << i << ": " << s;
      return nullptr;
    }
  }
  std::optional<int> leader = cluster.WaitLeader(std::chrono::seconds(20));
  if (!leader.has_value()) ADD_FAILURE() << "no leader within 20 s";
  return leader.has_value() ? &cluster.node(*leader) : nullptr;
}

// With pack_proposals, the proposals the loop thread finds queued one after another for one term
// share an entry: released once, as their payloads concatenated in order, on every node, each
// proposal acknowledged. A proposal for another term ends the run and is refused alone.
TEST(RaftNode, PackedProposalsShareAnEntryAndAnotherTermSplitsThem) {
  Cluster cluster("pack");
  RaftNode* leader = OpenPackedAndWaitLeader(cluster);
  ASSERT_NE(leader, nullptr);
  RaftNode& node = *leader;
  const uint64_t term = node.Info().term;
  std::vector<std::string> payloads;
  std::vector<uint64_t> terms;
  for (int k = 0; k < 9; k++) {
    payloads.push_back(k == 4 ? "stale|" : absl::StrCat("p", k, "|"));
    terms.push_back(k == 4 ? term + 1 : term);
  }
  std::vector<absl::Status> outcomes = ProposeFromTheLoop(node, term, payloads, terms);
  // An election during the proposals (a 1 MiB entry on a shared, loaded disk can delay
  // heartbeats past the timeout) splits the packs by term, so their exact layout below says
  // nothing: skipped and reported, not passed.
  if (node.Info().term != term) GTEST_SKIP() << "the leadership moved during the test";
  for (int k = 0; k <= 9; k++) {
    SCOPED_TRACE(k);
    if (k == 4) {
      EXPECT_TRUE(absl::IsUnavailable(outcomes[k])) << outcomes[k];
      EXPECT_NE(outcomes[k].message().find("not the term the entry was proposed for"),
                std::string::npos)
          << outcomes[k];
    } else {
      EXPECT_TRUE(outcomes[k].ok()) << outcomes[k];
    }
  }
  const std::vector<std::string> expected = {"first", "p0|p1|p2|p3|", "p5|p6|p7|p8|"};
  for (int i = 0; i < 3; i++) {
    SCOPED_TRACE(i);
    ASSERT_TRUE(cluster.machine(i).WaitForSize(expected.size(), std::chrono::seconds(20)));
    EXPECT_EQ(cluster.machine(i).sequence(), expected);
  }
}

// A packed entry takes at most 256 proposals and 1 MiB of their payloads; the rest of the queue
// goes on in the next entry. A proposal past 1 MiB alone still gets an entry.
TEST(RaftNode, PackedEntriesStopAt256ProposalsOrOneMiB) {
  Cluster cluster("packcap");
  RaftNode* leader = OpenPackedAndWaitLeader(cluster);
  ASSERT_NE(leader, nullptr);
  RaftNode& node = *leader;
  const uint64_t term = node.Info().term;
  std::vector<std::string> payloads(300, "x");
  for (int k = 0; k < 4; k++) {
    payloads.push_back(std::string(300 << 10, static_cast<char>('a' + k)));
  }
  payloads.push_back(std::string((1 << 20) + 1, 'z'));
  payloads.push_back("y");
  std::vector<uint64_t> terms(payloads.size(), term);
  const std::vector<absl::Status> outcomes = ProposeFromTheLoop(node, term, payloads, terms);
  // An election during the proposals (a 1 MiB entry on a shared, loaded disk can delay
  // heartbeats past the timeout) splits the packs by term, so their exact layout below says
  // nothing: skipped and reported, not passed.
  if (node.Info().term != term) GTEST_SKIP() << "the leadership moved during the test";
  for (const absl::Status& s : outcomes) ASSERT_TRUE(s.ok()) << s;
  // 256 "x"; 44 "x" and three of 300 KiB (under 1 MiB); the fourth of 300 KiB; the one past
  // 1 MiB alone; "y".
  const std::vector<std::string> expected = {"first",
                                             std::string(256, 'x'),
                                             std::string(44, 'x') + std::string(300 << 10, 'a') +
                                                 std::string(300 << 10, 'b') +
                                                 std::string(300 << 10, 'c'),
                                             std::string(300 << 10, 'd'),
                                             std::string((1 << 20) + 1, 'z'),
                                             "y"};
  for (int i = 0; i < 3; i++) {
    SCOPED_TRACE(i);
    ASSERT_TRUE(cluster.machine(i).WaitForSize(expected.size(), std::chrono::seconds(20)));
    EXPECT_TRUE(cluster.machine(i).sequence() == expected);
  }
}

TEST(RaftNode, SixtyFourKiBEntriesCommitLatency) {
  Cluster cluster("latency");
  cluster.keep_payload_bytes = 16;
  for (int i = 0; i < 3; i++) ASSERT_OK_OPEN(cluster.Open(i));
  std::optional<int> leader = cluster.WaitLeader(std::chrono::seconds(20));
  ASSERT_TRUE(leader.has_value());
  constexpr int kEntries = 200;
  std::string payload(64 << 10, 'x');
  std::vector<double> micros;
  for (int k = 0; k < kEntries; k++) {
    payload[0] = static_cast<char>('a' + k % 26);
    Outcome outcome;
    Clock::time_point t0 = Clock::now();
    ASSERT_TRUE(
        cluster.node(*leader).Propose(payload, [&](absl::Status s) { outcome.Set(s); }).ok());
    std::optional<absl::Status> s = outcome.Wait(std::chrono::seconds(20));
    ASSERT_TRUE(s.has_value() && s->ok()) << (s ? s->ToString() : "no outcome");
    micros.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  std::sort(micros.begin(), micros.end());
  double p50 = micros[kEntries / 2], p90 = micros[kEntries * 9 / 10];
  std::printf(
      "64 KiB entries, one at a time, 3 nodes on 127.0.0.1: commit p50 %.0f us, p90 %.0f "
      "us, max %.0f us\n",
      p50, p90, micros.back());
  testing::Test::RecordProperty("p50_us", static_cast<int>(p50));
  // The timing target (p50 < 5 ms) belongs to a benchmark: this only checks that every entry
  // committed and was released everywhere.
  for (int i = 0; i < 3; i++) {
    ASSERT_TRUE(cluster.machine(i).WaitForSize(kEntries, std::chrono::seconds(20)));
  }

  // 2 KiB entries, 4 in flight: the case where Nagle + delayed ACK stalled stock raft_uv (memo
  // section 4: p50 19.8 ms without TCP_NODELAY, 1.2 ms with it). Printed, not checked.
  Clock::time_point t0 = Clock::now();
  std::vector<std::string> proposed;
  absl::Status error;
  ASSERT_EQ(ProposeAll(cluster.node(*leader), std::string(2040, 'y'), 400, 4, &proposed, &error),
            400)
      << error;
  double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("2 KiB entries, 4 in flight, proposed by the test thread: %.0f commits/s\n",
              400 / seconds);

  // The same, each callback proposing the next on the loop thread (no thread wake-up per entry).
  // Shared with its callbacks, which may still be returning when the test thread wakes.
  struct Chain : std::enable_shared_from_this<Chain> {
    RaftNode* node = nullptr;
    std::string payload = std::string(2048, 'z');
    std::mutex mu;
    std::condition_variable cv;
    int to_propose = 400, done = 0, failed = 0;
    void Next() {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (to_propose == 0) return;
        to_propose--;
      }
      absl::Status s = node->Propose(payload, [self = shared_from_this()](absl::Status st) {
        self->Next();
        std::lock_guard<std::mutex> lock(self->mu);
        self->done++;
        if (!st.ok()) self->failed++;
        self->cv.notify_all();
      });
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        done++;
        failed++;
        cv.notify_all();
      }
    }
  };
  auto chain = std::make_shared<Chain>();
  chain->node = &cluster.node(*leader);
  t0 = Clock::now();
  for (int k = 0; k < 4; k++) chain->Next();
  {
    std::unique_lock<std::mutex> lock(chain->mu);
    ASSERT_TRUE(
        chain->cv.wait_for(lock, std::chrono::seconds(60), [&] { return chain->done == 400; }));
    EXPECT_EQ(chain->failed, 0);
  }
  seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("2 KiB entries, 4 in flight, proposed from the callbacks: %.0f commits/s\n",
              400 / seconds);
}

}  // namespace
}  // namespace shardtx::replication
