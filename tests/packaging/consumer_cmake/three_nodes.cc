// A replicated host as a user writes one, built against an installed shardtx: three members of
// one cluster (here in one process on 127.0.0.1; normally one per machine). It commits through
// whichever member leads, closes that member (a failover), commits again on the survivors,
// brings the member back, and reads everything on the current leader. README.md ("Replicated
// database") quotes it; the packaging test runs it.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "shardtx/database.h"

namespace {

using shardtx::Database;
using shardtx::Transaction;
using Nodes = std::vector<std::unique_ptr<Database>>;  // member i+1 at [i]; null while down
using Clock = std::chrono::steady_clock;

int Fail(const char* what, const absl::Status& s) {
  std::fprintf(stderr, "three_nodes: %s: %s\n", what, s.ToString().c_str());
  return 1;
}

// Member `id` of the cluster whose members listen on 127.0.0.1:base, base+10 and base+20
// (member i's shard g is served on port base+10*(i-1)+1+g).
absl::StatusOr<std::unique_ptr<Database>> OpenMember(const std::string& dir, uint64_t id,
                                                     int base) {
  shardtx::Options options;
  options.path = dir + "/node" + std::to_string(id);
  options.num_shards = 2;
  options.replication.node_id = id;
  options.replication.cluster_id = "example-7d1f03a2";  // drawn once for the cluster
  for (uint64_t m = 1; m <= 3; ++m) {
    options.replication.members.push_back(
        {m, "127.0.0.1:" + std::to_string(base + 10 * static_cast<int>(m - 1))});
  }
  options.replication.election_timeout = absl::Milliseconds(300);
  options.replication.heartbeat = absl::Milliseconds(50);
  return Database::Open(options);
}

// Runs `work` on each member in turn until one commits it. A member that does not lead the
// key's shard refuses with kUnavailable and no effect; kUnknown (leadership lost in flight):
// ask what became of it before trying again.
absl::StatusOr<size_t> CommitOnLeader(Nodes& nodes, const std::string& key,
                                      const std::function<absl::Status(Transaction&)>& work) {
  for (auto deadline = Clock::now() + std::chrono::seconds(30); Clock::now() < deadline;) {
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (nodes[i] == nullptr) continue;  // a member that is down
      std::unique_ptr<Transaction> txn = nodes[i]->Begin();
      absl::Status s = work(*txn);
      if (s.ok()) s = txn->Commit();
      if (s.ok()) return i;
      if (!absl::IsUnavailable(s) && !absl::IsUnknown(s)) return s;
      while (absl::IsUnknown(s) && Clock::now() < deadline) {
        for (auto& asked : nodes) {  // kUnavailable there names the leader to ask
          auto o = asked ? asked->GetOutcomeOfKey(txn->id(), key) : absl::UnavailableError("");
          if (o.ok() && *o == Database::Outcome::kCommitted) return i;
          if (o.ok() && *o == Database::Outcome::kAborted) s = absl::OkStatus();  // retry
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // an election is under way
  }
  return absl::UnavailableError("no member committed it in time");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <new scratch directory>\n", argv[0]);
    return 2;
  }
  // Ports: a base drawn from the pid, another one if a port is taken.
  std::string dir;
  int base = 0;
  Nodes nodes(3);
  for (int attempt = 0; attempt < 20 && nodes[2] == nullptr; ++attempt) {
    base = 20000 + static_cast<int>((::getpid() + 7919 * attempt) % 1200) * 10;  // < 32768
    dir = std::string(argv[1]) + "/try" + std::to_string(attempt);
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    nodes.clear();
    nodes.resize(3);
    for (uint64_t id = 1; id <= 3; ++id) {
      auto db = OpenMember(dir, id, base);
      if (!db.ok() && !absl::IsUnavailable(db.status())) return Fail("Open", db.status());
      if (!db.ok()) {
        std::fprintf(stderr, "three_nodes: ports from %d: %s\n", base,
                     db.status().ToString().c_str());
        break;
      }
      nodes[id - 1] = std::move(*db);
    }
  }
  if (nodes[2] == nullptr) return Fail("Open", absl::UnavailableError("no free ports"));

  auto put = [](std::string key, std::string value) {
    return [=](Transaction& txn) { return txn.Put(key, value); };
  };
  absl::StatusOr<size_t> leader = CommitOnLeader(nodes, "greeting", put("greeting", "hello"));
  if (!leader.ok()) return Fail("first commit", leader.status());

  // Close the member that led that commit: the others elect a leader and commit on.
  nodes[*leader].reset();
  absl::StatusOr<size_t> next = CommitOnLeader(nodes, "farewell", put("farewell", "goodbye"));
  if (!next.ok()) return Fail("commit after the failover", next.status());

  // The member comes back from its directory and catches up from the leader.
  auto back = OpenMember(dir, *leader + 1, base);
  if (!back.ok()) return Fail("reopen", back.status());
  nodes[*leader] = std::move(*back);

  // Reads are confirmed by Commit: a read-only transaction commits too before what it read (a
  // kNotFound included: a follower answers from what it has applied) is believed. One key per
  // transaction: the two keys' shards may be led by different members.
  for (const auto& [k, want] :
       {std::pair<std::string, std::string>{"greeting", "hello"}, {"farewell", "goodbye"}}) {
    const std::string key = k;
    std::string value;
    absl::StatusOr<size_t> reader = CommitOnLeader(nodes, key, [&](Transaction& txn) {
      absl::StatusOr<std::string> v = txn.Get(key);  // kNotFound too is believed only after Commit
      if (!v.ok() && !absl::IsNotFound(v.status())) return v.status();
      value = v.ok() ? *v : "(not found)";
      return absl::OkStatus();
    });
    if (!reader.ok()) return Fail("read", reader.status());
    if (value != want) {
      std::fprintf(stderr, "three_nodes: %s reads '%s'\n", key.c_str(), value.c_str());
      return 1;
    }
  }
  std::printf(
      "three_nodes: committed on member %zu, then on member %zu after it closed; both "
      "read back\n",
      *leader + 1, *next + 1);
  return 0;
}
