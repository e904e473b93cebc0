#include "tools/crashtest/repl_driver.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "tools/crashtest/repl_model.h"
#include "tools/crashtest/repl_node.h"
#include "tools/crashtest/repl_protocol.h"
#include "util/loopback_ports.h"

extern char** environ;

namespace shardtx::crashtest {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kNodes = 3;
constexpr auto kHealDeadline = std::chrono::seconds(60);

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}
void SleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// One shard's leadership as a node reported it ("= L ...").
struct ShardView {
  std::string role;
  bool ready = false;
  uint64_t term = 0;
  uint64_t leader_id = 0;
};

// One node process: spawned with its stdin a command pipe and fd 3 a report pipe; a reader
// thread feeds the model with the workload's reports and queues command replies.
class NodeProc {
 public:
  NodeProc(uint64_t id, std::string log, ReplModel* model, std::mutex* model_mu)
      : id_(id), log_(std::move(log)), model_(model), model_mu_(model_mu) {}
  ~NodeProc() { Kill(); }

  uint64_t id() const { return id_; }
  bool alive() const { return pid_ > 0; }
  bool stopped() const { return stopped_; }
  uint64_t incarnation() const { return incarnation_; }

  // Spawns the node; Ready() waits for its "R".
  bool Spawn(const std::string& self, const std::vector<std::string>& args, std::string* error) {
    int cmd[2], rep[2];
    if (pipe2(cmd, O_CLOEXEC) != 0 || pipe2(rep, O_CLOEXEC) != 0) {
      *error = absl::StrCat("pipe: ", strerror(errno));
      return false;
    }
    // Above 3 first, so that dup2 onto 0 and 3 always copies (and clears FD_CLOEXEC).
    const int cmd_r = fcntl(cmd[0], F_DUPFD_CLOEXEC, 10);
    const int rep_w = fcntl(rep[1], F_DUPFD_CLOEXEC, 10);
    close(cmd[0]);
    close(rep[1]);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, cmd_r, 0);
    posix_spawn_file_actions_adddup2(&fa, rep_w, 3);
    posix_spawn_file_actions_addopen(&fa, 1, log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    std::vector<std::string> all = {self};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = posix_spawn(&pid_, self.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(cmd_r);
    close(rep_w);
    if (rc != 0) {
      close(cmd[1]);
      close(rep[0]);
      pid_ = 0;
      *error = absl::StrCat("posix_spawn: ", strerror(rc));
      return false;
    }
    cmd_fd_ = cmd[1];
    {
      std::lock_guard<std::mutex> l(mu_);
      eof_ = false;
      ready_ = false;
      replies_.clear();
      error_line_.clear();
    }
    stopped_ = false;
    reader_ = std::thread([this, fd = rep[0]] { Reader(fd); });
    return true;
  }

  // Waits for "R" (the database open); false if the node died or the deadline passed.
  bool Ready(std::string* error) {
    std::unique_lock<std::mutex> l(mu_);
    if (!cv_.wait_for(l, kHealDeadline, [&] { return ready_ || eof_; }) || !ready_) {
      *error = absl::StrCat("node ", id_, " did not open: ",
                            error_line_.empty() ? "(no report; see its log)" : error_line_);
      return false;
    }
    return true;
  }

  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = 0;
    stopped_ = false;
    if (cmd_fd_ >= 0) close(cmd_fd_);
    cmd_fd_ = -1;
    if (reader_.joinable()) reader_.join();  // EOF: every report of the node is in the model
  }
  void Stop() {
    if (pid_ > 0 && kill(pid_, SIGSTOP) == 0) stopped_ = true;
  }
  // Whether the node exited (its report pipe closed) within `timeout`; Kill() reaps it.
  bool WaitExit(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, timeout, [&] { return eof_; });
  }
  void Cont() {
    if (pid_ > 0 && stopped_) kill(pid_, SIGCONT);
    stopped_ = false;
  }

  // Sends `cmd` and collects its reply lines (without "= ") up to "= ."; false if the node
  // died or did not answer in time.
  bool Call(const std::string& cmd, std::vector<std::string>* reply,
            std::chrono::milliseconds timeout = std::chrono::milliseconds(30000)) {
    reply->clear();
    if (pid_ <= 0 || stopped_) return false;
    const std::string line = cmd + "\n";
    if (write(cmd_fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      return false;
    }
    std::unique_lock<std::mutex> l(mu_);
    const auto end = Clock::now() + timeout;
    while (true) {
      if (!cv_.wait_until(l, end, [&] { return !replies_.empty() || eof_; })) return false;
      while (!replies_.empty()) {
        std::string r = std::move(replies_.front());
        replies_.pop_front();
        if (r == ".") return true;
        reply->push_back(std::move(r));
      }
      if (eof_) return false;
    }
  }

  std::string error_line() {
    std::lock_guard<std::mutex> l(mu_);
    return error_line_;
  }

 private:
  void Reader(int fd) {
    std::string partial;
    char buf[1 << 16];
    while (true) {
      const ssize_t got = read(fd, buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;
      partial.append(buf, static_cast<size_t>(got));
      size_t pos;
      while ((pos = partial.find('\n')) != std::string::npos) {
        Handle(partial.substr(0, pos));
        partial.erase(0, pos + 1);
      }
    }
    close(fd);
    std::lock_guard<std::mutex> l(mu_);
    eof_ = true;
    cv_.notify_all();
  }

  void Handle(const std::string& line) {
    if (line.rfind("= ", 0) == 0 || line == "= .") {
      std::lock_guard<std::mutex> l(mu_);
      replies_.push_back(line.substr(2));
      cv_.notify_all();
      return;
    }
    std::vector<std::string> w = absl::StrSplit(line, ' ');
    uint64_t txn = 0;
    if (w[0] == "R") {
      std::lock_guard<std::mutex> l(mu_);
      if (w.size() > 1) (void)absl::SimpleAtoi(w[1], &incarnation_);
      ready_ = true;
      cv_.notify_all();
      return;
    }
    if (w[0] == "E") {
      std::lock_guard<std::mutex> l(mu_);
      error_line_ = line;
      return;
    }
    if (w[0] == "V") {
      std::lock_guard<std::mutex> l(*model_mu_);
      model_->ReaderViolation(id_, line.substr(2));
      return;
    }
    if (w.size() < 2 || !absl::SimpleAtoi(w[1], &txn)) return;
    std::lock_guard<std::mutex> l(*model_mu_);
    if (w[0] == "N" && w.size() == 7) {
      int shard = 0, from = 0, to = 0, to_shard = 0;
      int64_t amount = 0;
      if (absl::SimpleAtoi(w[2], &shard) && absl::SimpleAtoi(w[3], &from) &&
          absl::SimpleAtoi(w[4], &to) && absl::SimpleAtoi(w[5], &amount) &&
          absl::SimpleAtoi(w[6], &to_shard)) {
        model_->NamedIntent(id_, txn, shard, from, to, amount, to_shard);
      }
      return;
    }
    if (w[0] == "PA") model_->Prepared(txn);
    if (w[0] == "DC" || w[0] == "DR") model_->Deciding(txn, w[0] == "DC");
    if (w[0] == "DA") model_->Decided(txn, id_);
    if (w[0] == "DU") model_->DecisionUnknown(txn);
    if (w[0] == "I" && (w.size() == 6 || w.size() == 7)) {
      int shard = 0, from = 0, to = 0, to_shard = -1;
      int64_t amount = 0;
      if (absl::SimpleAtoi(w[2], &shard) && absl::SimpleAtoi(w[3], &from) &&
          absl::SimpleAtoi(w[4], &to) && absl::SimpleAtoi(w[5], &amount) &&
          (w.size() == 6 || absl::SimpleAtoi(w[6], &to_shard))) {
        model_->Intent(id_, txn, shard, from, to, amount, to_shard);
      }
    } else if (w[0] == "A" && w.size() == 4) {
      uint64_t before = 0, after = 0;
      (void)absl::SimpleAtoi(w[2], &before);
      (void)absl::SimpleAtoi(w[3], &after);
      model_->Acked(id_, txn, before, after);
    } else if (w[0] == "F") {
      model_->NoEffect(txn);
    } else if (w[0] == "U") {
      model_->Unknown(txn);
    }
  }

  const uint64_t id_;
  const std::string log_;
  ReplModel* const model_;
  std::mutex* const model_mu_;
  pid_t pid_ = 0;
  bool stopped_ = false;
  int cmd_fd_ = -1;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> replies_;
  bool eof_ = false;
  bool ready_ = false;
  uint64_t incarnation_ = 0;
  std::string error_line_;
};

enum Fault {
  kNone,
  kLeaderKill,
  kFollowerKill,
  kLeaderStop,
  kClusterKill,
  kLeaderIsolate,
  kOneWay,
  kReplace,
  kLeaderKill2pc,
  kFaultKinds
};
const char* const kFaultNames[] = {"none",        "leader-kill",      "follower-kill",
                                   "leader-stop", "cluster-kill",     "leader-isolate",
                                   "one-way",     "replace-follower", "leader-kill-2pc"};
// The seeded mix, in percent (README.md): leader kills the most frequent. leader-kill-2pc is
// drawn as half the leader kills when transfers cross shards (Run), so the seeds' draws are
// those of the mix without it.
constexpr int kFaultPercent[kFaultKinds] = {5, 28, 14, 14, 10, 12, 9, 8, 0};
static_assert(kFaultPercent[0] + kFaultPercent[1] + kFaultPercent[2] + kFaultPercent[3] +
                  kFaultPercent[4] + kFaultPercent[5] + kFaultPercent[6] + kFaultPercent[7] +
                  kFaultPercent[8] ==
              100);

// replace-follower waits until every shard's commit index is past this: two snapshots at the
// default Raft log settings, the second of which drops the entries up to the first (so entry 1,
// which an empty member needs first, is no longer in any leader's log).
uint64_t TruncatedLogIndex() {
  const ReplicationOptions defaults;
  return uint64_t{defaults.snapshot_threshold} * 2 + 100;
}

class ReplDriver {
 public:
  explicit ReplDriver(const ReplDriverOptions& o) : o_(o), rng_(o.seed), model_(o.shards) {
    model_.SetNamedSeed(o.seed);
  }
  int Run();

 private:
  bool StartNode(int i, std::string* error);
  // replace-follower (below, "A new member"): the fault, and its steps.
  bool ReplaceFollower(int shard, uint64_t draw, std::string* what, std::string* error);
  // Per shard, the largest commit index any node reports ("G"); empty if a node cannot answer.
  std::vector<uint64_t> CommitIndexes();
  bool ChangeOnEveryLeader(const std::string& cmd, std::string* error);
  // Waits until node i installed a snapshot of every shard and every node sees 3 voters in each.
  bool JoinedBySnapshot(int i, std::string* error);
  bool StartDead(std::string* error);
  // Leadership of every shard as node i reports it; nullopt if it cannot answer.
  std::optional<std::vector<ShardView>> Views(int i);
  // Waits until every node is up and, for every shard, one of them is the ready leader and all
  // three name it; the leader's index per shard.
  std::optional<std::vector<int>> WaitHealed();
  // The node now reporting itself ready leader of `shard` (-1 if none answers so), `exclude`
  // not asked.
  int LeaderOf(int shard, uint64_t* term, int exclude = -1);
  // Polls until a node other than `old` is the ready leader of `shard` in a term above `term`
  // (30 s at most); that node (-1 if none) and its term.
  int WaitNewLeader(int shard, int old, uint64_t term, uint64_t* new_term);
  // Node `from` can no longer (cut) or again (!cut) send to node `to`: `from` blocks its
  // outbound link to `to`, `to` its inbound link from `from` (repl_protocol.h, "P").
  bool CutSend(int from, int to, bool cut);
  // Cuts `leader` off from the other two (a kLeaderIsolate or kOneWay fault, `deaf` choosing the
  // direction of a one-way one); what it did, for the round's line.
  std::string Partition(Fault fault, int leader, bool deaf);
  bool HealLinks();
  bool Verify(const std::vector<int>& leaders, std::vector<std::string>* findings);
  bool CompareDigests(std::vector<std::string>* findings);
  // After the workload stopped: the named transfers still prepared are decided on the node that
  // leads every shard (polled, 30 s at most); false if none did. `decided`: how many.
  bool DrainNamed(uint64_t* decided);
  // The follower reads served since the last call, summed over the nodes ("RC").
  void CountReads(uint64_t* served, uint64_t* as_follower, uint64_t* refused);
  void Workload(bool on);
  void Finish();

  const ReplDriverOptions o_;
  std::mt19937_64 rng_;
  std::mutex model_mu_;
  ReplModel model_;
  std::vector<ReplicationMember> members_;
  std::vector<std::unique_ptr<NodeProc>> nodes_;
  uint64_t faults_[kFaultKinds] = {};
  std::vector<Fault> plan_;       // ReplDriverOptions::fault_plan
  std::vector<int> plan_points_;  // ... a planned 2PC point's index, else -1
  uint64_t outcome_answers_ = 0;  // GetOutcomeOfKey said committed or aborted
  uint64_t divergent_ = 0;
  uint64_t digests_compared_ = 0;
  uint64_t port_retries_ = 0;  // restarts repeated because a port was still in use
  uint64_t partitions_without_leader_ = 0;  // no new leader within 30 s of a partition
  std::vector<ReplicationMember> retired_;  // members replaced by replace-follower
  uint64_t membership_retries_ = 0;         // membership calls a shard answered not done
  uint64_t new_member_installs_ = 0;        // snapshots the new members installed
  uint64_t last_id_ = kNodes;               // the last member id given
  uint64_t max_in_doubt_ = 0;               // the most parts in doubt after a round
  uint64_t kill_2pc_reached_[kRepl2pcPoints] = {};  // leader-kill-2pc, by point
  uint64_t kill_2pc_missed_ = 0;                    // ... not reached within 3 s
  uint64_t named_drained_ = 0;    // named transfers decided after the workload stopped
  uint64_t named_undrained_ = 0;  // rounds in which no node could decide them all in 30 s
  uint64_t reads_served_ = 0, reads_as_follower_ = 0, reads_refused_ = 0;
  int round_ = 0;
};

bool ReplDriver::StartNode(int i, std::string* error) {
  const std::vector<std::string> args = {
      "--repl_node",
      absl::StrCat("--repl_node_id=", members_[i].id),
      absl::StrCat("--repl_dir=", o_.dir, "/node", members_[i].id),
      absl::StrCat("--repl_cluster=", absl::StrFormat("ct%016x", o_.seed)),
      absl::StrCat("--repl_members=", FormatMembers(members_)),
      absl::StrCat("--repl_election_ms=", o_.election_ms),
      absl::StrCat("--repl_seed=", o_.seed ^ (uint64_t(round_) << 8) ^ uint64_t(i)),
      absl::StrCat("--repl_broken=", o_.broken),
      absl::StrCat("--repl_pause_ms=", o_.pause_ms),
      absl::StrCat("--shards=", o_.shards),
      absl::StrCat("--threads=", o_.threads),
      absl::StrCat("--repl_cross_pct=", o_.cross_pct),
      absl::StrCat("--repl_named_pct=", o_.named_pct),
      absl::StrCat("--repl_named_seed=", o_.seed),
      absl::StrCat("--repl_readers=", o_.readers),
      absl::StrCat("--repl_workload=", o_.workload),
      absl::StrCat("--repl_join=", members_[i].id > kNodes ? 1 : 0)};  // replace-follower's
  return nodes_[i]->Spawn(o_.self, args, error);
}

bool ReplDriver::StartDead(std::string* error) {
  std::vector<int> started;
  for (int i = 0; i < kNodes; ++i) {
    nodes_[i]->Cont();
    if (nodes_[i]->alive()) continue;
    if (!StartNode(i, error)) return false;
    started.push_back(i);
  }
  for (int i : started) {
    // A port of the node's can still be held for a moment after its kill (a connection being
    // torn down): Open says so (kUnavailable, "address in use"); try again then.
    for (int attempt = 0;; ++attempt) {
      if (nodes_[i]->Ready(error)) break;
      nodes_[i]->Kill();
      if (attempt >= 40 || error->find("address in use") == std::string::npos) return false;
      ++port_retries_;
      SleepMs(250);
      if (!StartNode(i, error)) return false;
    }
  }
  return true;
}

std::optional<std::vector<ShardView>> ReplDriver::Views(int i) {
  std::vector<std::string> reply;
  if (!nodes_[i]->Call("L", &reply, std::chrono::milliseconds(5000))) return std::nullopt;
  std::vector<ShardView> out(o_.shards);
  if (static_cast<int>(reply.size()) != o_.shards) return std::nullopt;
  for (const std::string& r : reply) {
    std::vector<std::string> w = absl::StrSplit(r, ' ');
    int shard = 0;
    if (w.size() != 6 || w[0] != "L" || !absl::SimpleAtoi(w[1], &shard) || shard < 0 ||
        shard >= o_.shards) {
      return std::nullopt;
    }
    out[shard].role = w[2];
    out[shard].ready = w[3] == "1";
    (void)absl::SimpleAtoi(w[4], &out[shard].term);
    (void)absl::SimpleAtoi(w[5], &out[shard].leader_id);
  }
  return out;
}

std::optional<std::vector<int>> ReplDriver::WaitHealed() {
  const auto end = Clock::now() + kHealDeadline;
  while (Clock::now() < end) {
    std::vector<std::vector<ShardView>> views;
    for (int i = 0; i < kNodes; ++i) {
      std::optional<std::vector<ShardView>> v = Views(i);
      if (!v.has_value()) break;
      views.push_back(std::move(*v));
    }
    if (views.size() == kNodes) {
      std::vector<int> leaders(o_.shards, -1);
      bool ok = true;
      for (int g = 0; g < o_.shards && ok; ++g) {
        for (int i = 0; i < kNodes; ++i) {
          if (!views[i][g].ready) continue;
          if (leaders[g] >= 0) ok = false;  // two say ready: wait for the old one to learn
          leaders[g] = i;
        }
        ok = ok && leaders[g] >= 0;
        for (int i = 0; i < kNodes && ok; ++i) {
          ok = views[i][g].leader_id == members_[leaders[g]].id;
        }
      }
      if (ok) return leaders;
    }
    SleepMs(20);
  }
  return std::nullopt;
}

int ReplDriver::LeaderOf(int shard, uint64_t* term, int exclude) {
  for (int i = 0; i < kNodes; ++i) {
    if (i == exclude || !nodes_[i]->alive() || nodes_[i]->stopped()) continue;
    std::optional<std::vector<ShardView>> v = Views(i);
    if (v.has_value() && (*v)[shard].ready) {
      *term = (*v)[shard].term;
      return i;
    }
  }
  return -1;
}

int ReplDriver::WaitNewLeader(int shard, int old, uint64_t term, uint64_t* new_term) {
  const auto start = Clock::now();
  while (MsSince(start) < 30000) {
    const int next = LeaderOf(shard, new_term, old);
    if (next >= 0 && *new_term > term) return next;
    SleepMs(20);
  }
  return -1;
}

bool ReplDriver::CutSend(int from, int to, bool cut) {
  std::vector<std::string> reply;
  const char* on = cut ? "1" : "0";
  return nodes_[from]->Call(absl::StrCat("P ", members_[to].id, " out ", on), &reply) &&
         reply == std::vector<std::string>{"P ok"} &&
         nodes_[to]->Call(absl::StrCat("P ", members_[from].id, " in ", on), &reply) &&
         reply == std::vector<std::string>{"P ok"};
}

std::string ReplDriver::Partition(Fault fault, int leader, bool deaf) {
  bool ok = true;
  for (int j = 0; j < kNodes; ++j) {
    if (j == leader) continue;
    // Isolated: both directions. One way: the leader's followers cannot reach it (deaf: it keeps
    // sending heartbeats, hears no answer, and steps down after an election timeout), or it
    // cannot reach them (they time out and elect; the new leader's messages reach it).
    if (fault == kLeaderIsolate || !deaf) ok = CutSend(leader, j, true) && ok;
    if (fault == kLeaderIsolate || deaf) ok = CutSend(j, leader, true) && ok;
  }
  if (!ok) return "";
  return fault == kLeaderIsolate ? "cut off both ways"
         : deaf                  ? "cannot hear the others (it can send)"
                                 : "cannot reach the others (it can hear)";
}

bool ReplDriver::HealLinks() {
  bool ok = true;
  for (auto& n : nodes_) {
    std::vector<std::string> reply;
    ok = n->Call("P clear", &reply) && reply == std::vector<std::string>{"P ok"} && ok;
  }
  return ok;
}

bool ReplDriver::DrainNamed(uint64_t* decided) {
  *decided = 0;
  const auto end = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < end) {
    for (auto& n : nodes_) {
      std::vector<std::string> reply;
      if (!n->Call("N", &reply) || reply.size() != 1) continue;
      std::vector<std::string> w = absl::StrSplit(reply[0], ' ');
      uint64_t d = 0;
      if (w.size() != 3 || w[0] != "N" || !absl::SimpleAtoi(w[1], &d)) continue;
      *decided += d;
      if (w[2] == "0") return true;
    }
    SleepMs(100);
  }
  return false;
}

void ReplDriver::CountReads(uint64_t* served, uint64_t* as_follower, uint64_t* refused) {
  *served = *as_follower = *refused = 0;
  for (auto& n : nodes_) {
    std::vector<std::string> reply;
    if (!n->Call("RC", &reply) || reply.size() != 1) continue;
    std::vector<std::string> w = absl::StrSplit(reply[0], ' ');
    uint64_t a = 0, b = 0, c = 0;
    if (w.size() == 4 && absl::SimpleAtoi(w[1], &a) && absl::SimpleAtoi(w[2], &b) &&
        absl::SimpleAtoi(w[3], &c)) {
      *served += a;
      *as_follower += b;
      *refused += c;
    }
  }
}

void ReplDriver::Workload(bool on) {
  std::vector<std::string> reply;
  for (auto& n : nodes_) n->Call(on ? "W 1" : "W 0", &reply);
}

bool ReplDriver::Verify(const std::vector<int>& leaders, std::vector<std::string>* findings) {
  int verified = 0;
  for (int g = 0; g < o_.shards; ++g) {
    // Transfers of unknown outcome: GetOutcomeOfKey on the shard's leader first (its answer is
    // checked against the scan below), then the scan settles every one of them.
    std::vector<std::pair<uint64_t, std::string>> unsettled;
    {
      std::lock_guard<std::mutex> l(model_mu_);
      unsettled = model_.Unsettled(g);
    }
    for (const auto& [txn, key] : unsettled) {
      std::vector<std::string> reply;
      if (!nodes_[leaders[g]]->Call(absl::StrCat("O ", txn, " ", key), &reply) ||
          reply.size() != 1) {
        continue;
      }
      std::vector<std::string> w = absl::StrSplit(reply[0], ' ');
      ReplModel::Said said = ReplModel::Said::kNothing;
      if (w.size() >= 2 && w[1] == "committed") said = ReplModel::Said::kCommitted;
      if (w.size() >= 2 && w[1] == "aborted") said = ReplModel::Said::kAborted;
      if (said != ReplModel::Said::kNothing) ++outcome_answers_;
      if (w.size() >= 2 && (w[1] == "indoubt" || w[1] == "prepared")) {
        said = ReplModel::Said::kInDoubt;
      }
      std::lock_guard<std::mutex> l(model_mu_);
      model_.NoteSaid(txn, g, said);
    }
    // Named transfers the leader lists as prepared: in doubt there whatever GetOutcomeOfKey
    // said (it answers kUnknown for a transaction of the node's own process).
    if (o_.named_pct > 0) {
      std::vector<std::string> reply;
      if (nodes_[leaders[g]]->Call("LP", &reply)) {
        std::lock_guard<std::mutex> l(model_mu_);
        for (const std::string& r : reply) {
          uint64_t txn = 0;
          if (r.rfind("LP ", 0) == 0 && absl::SimpleAtoi(r.substr(3), &txn)) {
            model_.NoteSaid(txn, g, ReplModel::Said::kInDoubt);
          }
        }
      }
    }
    std::map<std::string, std::string> scan;
    bool confirmed = false;
    std::string last_status = "no answer";
    for (int attempt = 0; attempt < 5 && !confirmed; ++attempt) {
      int leader = leaders[g];
      if (attempt > 0) {
        std::optional<std::vector<int>> again = WaitHealed();
        if (!again.has_value()) break;
        leader = (*again)[g];
      }
      std::vector<std::string> reply;
      if (!nodes_[leader]->Call(absl::StrCat("S ", g), &reply)) continue;
      scan.clear();
      for (const std::string& r : reply) {
        if (r.rfind("K ", 0) == 0) {
          std::vector<std::string> w = absl::StrSplit(r, absl::MaxSplits(' ', 2));
          if (w.size() == 3) scan[w[1]] = w[2];
        } else if (r.rfind("C ", 0) == 0) {
          confirmed = r == "C ok";
          last_status = r.substr(2);
        }
      }
    }
    if (!confirmed) {
      findings->push_back(absl::StrCat("[violation] shard ", g,
                                       ": no leader confirmed a scan of it (5 attempts; ",
                                       "the last: ", last_status, ")"));
      continue;
    }
    std::lock_guard<std::mutex> l(model_mu_);
    model_.Verify(g, scan, findings);
    ++verified;
  }
  if (verified == o_.shards) {
    std::lock_guard<std::mutex> l(model_mu_);
    model_.VerifyTotal(findings);
  }
  return true;
}

bool ReplDriver::CompareDigests(std::vector<std::string>* findings) {
  // Each node digests what its replica applied, with its applied index the same before and
  // after. The workload has stopped, so the nodes converge on the leader's last entry; equal
  // applied indexes mean the same committed prefix applied (Raft's log matching), so the
  // contents must be equal. Shard by shard, polled: all three at one index, compare; or all
  // three with equal contents at different indexes, nothing to find (a leader's
  // closed-timestamp entries, ReplicationOptions::closed_ts_refresh, keep an idle shard's
  // index moving, so its replicas are often an entry apart).
  const auto end = Clock::now() + kHealDeadline;
  std::vector<std::vector<std::string>> last;
  std::vector<bool> done(o_.shards, false);
  while (Clock::now() < end) {
    std::vector<std::vector<std::string>> now(kNodes);
    bool ok = true;
    for (int i = 0; i < kNodes && ok; ++i) {
      ok = nodes_[i]->Call("H", &now[i]) && static_cast<int>(now[i].size()) == o_.shards;
    }
    if (ok) last = now;
    bool all_done = ok;
    for (int g = 0; g < o_.shards && ok; ++g) {
      if (done[g]) continue;
      bool same_index = true, same_contents = true;
      for (int i = 0; i < kNodes; ++i) {
        std::vector<std::string> w = absl::StrSplit(now[i][g], ' ');
        std::vector<std::string> w0 = absl::StrSplit(now[0][g], ' ');
        const bool ready = w.size() == 5 && w0.size() == 5;  // not busy
        same_index = same_index && ready && w[2] == w0[2];
        same_contents = same_contents && ready && w[3] == w0[3] && w[4] == w0[4];
      }
      if (same_index) {
        ++digests_compared_;
        for (int i = 1; i < kNodes; ++i) {
          if (now[i][g] != now[0][g]) {
            ++divergent_;
            findings->push_back(absl::StrCat("[divergent] shard ", g, ": node ", members_[i].id,
                                             " (H ", now[i][g], ") differs from node ",
                                             members_[0].id, " (H ", now[0][g], ")"));
          }
        }
      } else if (same_contents) {
        ++digests_compared_;
      }
      done[g] = same_index || same_contents;
      all_done = all_done && done[g];
    }
    if (all_done) return true;
    SleepMs(20);
  }
  std::string seen;
  for (size_t i = 0; i < last.size(); ++i) {
    for (const std::string& h : last[i]) absl::StrAppend(&seen, " node ", i + 1, ": ", h, ";");
  }
  // What each node's Raft groups say (commit and applied index, snapshots installed, voters).
  std::string raft;
  for (int i = 0; i < kNodes; ++i) {
    std::vector<std::string> reply;
    nodes_[i]->Call("G", &reply);
    for (const std::string& r : reply) {
      absl::StrAppend(&raft, " node ", members_[i].id, ": ", r, ";");
    }
  }
  findings->push_back(absl::StrCat(
      "[violation] the replicas did not reach one applied index per shard in 60 s (last:", seen,
      "; raft:", raft, ")"));
  return false;
}

// --- A new member: replace-follower. ---

std::vector<uint64_t> ReplDriver::CommitIndexes() {
  std::vector<uint64_t> commit(o_.shards, 0);
  for (int i = 0; i < kNodes; ++i) {
    std::vector<std::string> reply;
    if (!nodes_[i]->Call("G", &reply) || static_cast<int>(reply.size()) != o_.shards) return {};
    for (const std::string& r : reply) {
      std::vector<std::string> w = absl::StrSplit(r, ' ');
      int g = 0;
      uint64_t index = 0;
      if (w.size() != 6 || !absl::SimpleAtoi(w[1], &g) || g < 0 || g >= o_.shards ||
          !absl::SimpleAtoi(w[2], &index)) {
        return {};
      }
      commit[g] = std::max(commit[g], index);
    }
  }
  return commit;
}

bool ReplDriver::ChangeOnEveryLeader(const std::string& cmd, std::string* error) {
  // Each shard's group is changed by its own ready leader; a node changes the shards it leads
  // and answers kUnavailable for the others, kAborted / kUnknown / kInternal (a new member that
  // did not catch up in time) are retried too: the calls are idempotent.
  std::vector<bool> done(o_.shards, false);
  std::string last = "no ready leader";
  const auto end = Clock::now() + kHealDeadline;
  while (Clock::now() < end) {
    int g = 0;
    while (g < o_.shards && done[g]) ++g;
    if (g == o_.shards) return true;
    uint64_t term = 0;
    const int leader = LeaderOf(g, &term);
    std::vector<std::string> reply;
    if (leader >= 0 && nodes_[leader]->Call(cmd, &reply)) {
      for (const std::string& r : reply) {
        std::vector<std::string> w = absl::StrSplit(r, ' ');
        int shard = -1;
        if (w.size() == 3 && absl::SimpleAtoi(w[1], &shard) && shard >= 0 && shard < o_.shards) {
          done[shard] = done[shard] || w[2] == "OK";
        }
        if (w.size() == 3 && w[2] != "OK" && (w[1] == "all" || shard == g)) {
          last = absl::StrCat("node ", members_[leader].id, ": ", r);
        }
      }
    }
    if (!done[g]) {
      ++membership_retries_;
      SleepMs(50);
    }
  }
  *error = absl::StrCat("'", cmd, "' was not done on every shard in 60 s (the last refusal: ", last,
                        ")");
  return false;
}

bool ReplDriver::JoinedBySnapshot(int i, std::string* error) {
  std::string last;
  const auto end = Clock::now() + kHealDeadline;
  while (Clock::now() < end) {
    bool ok = true;
    uint64_t installs = 0;
    last.clear();
    for (int n = 0; n < kNodes && ok; ++n) {
      std::vector<std::string> reply;
      ok = nodes_[n]->Call("G", &reply) && static_cast<int>(reply.size()) == o_.shards;
      for (size_t g = 0; ok && g < reply.size(); ++g) {
        std::vector<std::string> w = absl::StrSplit(reply[g], ' ');
        uint64_t installed = 0;
        ok = w.size() == 6 && w[5] == "3" && absl::SimpleAtoi(w[4], &installed) &&
             (n != i || installed >= 1);
        installs += n == i ? installed : 0;
        absl::StrAppend(&last, " node ", members_[n].id, ": ", reply[g], ";");
      }
    }
    if (ok) {
      new_member_installs_ += installs;
      return true;
    }
    SleepMs(50);
  }
  *error = absl::StrCat("[violation] new member ", members_[i].id,
                        " did not install a snapshot of every shard, or the groups are not 3 "
                        "voters, 60 s after it was added past the log's truncation (G:",
                        last, ")");
  return false;
}

// The fault: once every shard's Raft log was truncated past entry 1, a follower is killed for
// good and replaced by a new empty member (new id, directory and ports, opened with join): the
// old one removed and the new one added on each shard's leader, in an order the seed draws
// (remove first: two voters meanwhile; add first: four, three of them live), while the workload
// runs. The new member can only catch up by installing a snapshot of each shard. The groups end
// with 3 voters; the round's checks then cover the new node like the others.
bool ReplDriver::ReplaceFollower(int shard, uint64_t draw, std::string* what, std::string* error) {
  const uint64_t bound = TruncatedLogIndex();
  std::vector<uint64_t> commit;
  const auto wait_start = Clock::now();
  auto past = [&] {
    commit = CommitIndexes();
    for (uint64_t c : commit) {
      if (c < bound) return false;
    }
    return !commit.empty();
  };
  while (!past()) {
    if (MsSince(wait_start) > 60000) {
      absl::StrAppend(what, " skipped: the shards' commit indexes did not all reach ", bound,
                      " in 60 s");
      return true;
    }
    SleepMs(50);
  }
  // The victim: a node that leads no shard, else one that does not lead `shard`.
  std::vector<bool> leads(kNodes, false);
  for (int g = 0; g < o_.shards; ++g) {
    uint64_t term = 0;
    const int l = LeaderOf(g, &term);
    if (l >= 0) leads[l] = true;
  }
  int victim = static_cast<int>(draw % kNodes);
  for (int k = 0; k < kNodes && leads[victim]; ++k) victim = (victim + 1) % kNodes;
  if (leads[victim]) {
    uint64_t term = 0;
    const int l = LeaderOf(shard, &term);
    if (victim == l) victim = (victim + 1) % kNodes;
  }
  const ReplicationMember old = members_[victim];
  std::vector<int> avoid;
  retired_.push_back(old);
  for (const auto* list : {&members_, &retired_}) {
    for (const ReplicationMember& m : *list) {
      int p = 0;
      (void)absl::SimpleAtoi(m.address.substr(m.address.rfind(':') + 1), &p);
      for (int k = 0; k <= o_.shards; ++k) avoid.push_back(p + k);
    }
  }
  const int port = FreeLoopbackPortRange(1 + o_.shards, avoid);
  if (port == 0) {
    *error = "no free ports on 127.0.0.1 for a new member";
    return false;
  }
  const ReplicationMember joiner{++last_id_, absl::StrCat("127.0.0.1:", port)};
  const bool remove_first = (draw >> 8) % 2 == 0;
  absl::StrAppend(what, " node ", old.id, " (", leads[victim] ? "leads a shard" : "leads none",
                  ") by node ", joiner.id, " at ", joiner.address, ", commit indexes");
  for (uint64_t c : commit) absl::StrAppend(what, " ", c);
  absl::StrAppend(what, remove_first ? ", removed then added" : ", added then removed");
  const auto change_start = Clock::now();
  nodes_[victim]->Kill();
  auto start_joiner = [&] {
    members_[victim] = joiner;
    nodes_[victim] = std::make_unique<NodeProc>(
        joiner.id, absl::StrCat(o_.dir, "/node", joiner.id, ".log"), &model_, &model_mu_);
    std::vector<std::string> reply;
    return StartDead(error) && nodes_[victim]->Call("W 1", &reply);
  };
  const std::string add = absl::StrCat("MA ", joiner.id, " ", joiner.address);
  const std::string remove = absl::StrCat("MR ", old.id);
  if (remove_first) {
    if (!ChangeOnEveryLeader(remove, error) || !start_joiner() ||
        !ChangeOnEveryLeader(add, error)) {
      return false;
    }
  } else if (!start_joiner() || !ChangeOnEveryLeader(add, error) ||
             !ChangeOnEveryLeader(remove, error)) {
    return false;
  }
  if (!JoinedBySnapshot(victim, error)) return false;
  absl::StrAppend(what, " in ", static_cast<int>(MsSince(change_start)), " ms");
  ++faults_[kReplace];
  return true;
}

void ReplDriver::Finish() {
  for (auto& n : nodes_) {
    std::vector<std::string> reply;
    n->Cont();
    n->Call("Q", &reply, std::chrono::milliseconds(20000));
    n->Kill();
  }
}

int ReplDriver::Run() {
  namespace fs = std::filesystem;
  signal(SIGPIPE, SIG_IGN);  // a killed node's command pipe
  for (const std::string& entry : o_.fault_plan) {
    // "leader-kill-2pc:<point>" plans the point too (else the seed draws it).
    const size_t colon = entry.find(':');
    const std::string name = entry.substr(0, colon);
    const auto* k = std::find(std::begin(kFaultNames), std::end(kFaultNames), name);
    int point = -1;
    if (colon != std::string::npos && name == kFaultNames[kLeaderKill2pc]) {
      const std::string p = entry.substr(colon + 1);
      for (int i = 0; i < kRepl2pcPoints; ++i) {
        if (p == kRepl2pcPointNames[i]) point = i;
      }
    }
    if (k == std::end(kFaultNames) || (colon != std::string::npos && point < 0)) {
      std::fprintf(stderr, "crashtest: --fault_plan: unknown fault '%s'\n", entry.c_str());
      return 2;
    }
    plan_.push_back(static_cast<Fault>(k - std::begin(kFaultNames)));
    plan_points_.push_back(point);
  }
  std::error_code ec;
  if (fs::exists(o_.dir + "/node1", ec)) {
    std::fprintf(stderr, "crashtest: %s/node1 exists; remove it or choose another --dir\n",
                 o_.dir.c_str());
    return 2;
  }
  fs::create_directories(o_.dir, ec);
  std::mt19937_64 port_rng(o_.seed ^ static_cast<uint64_t>(getpid()));
  std::vector<int> used;
  for (int i = 0; i < kNodes; ++i) {
    const int p = FreeLoopbackPortRange(1 + o_.shards, used, port_rng);
    if (p == 0) {
      std::fprintf(stderr, "crashtest: no free ports on 127.0.0.1\n");
      return 2;
    }
    for (int k = 0; k <= o_.shards; ++k) used.push_back(p + k);
    members_.push_back({static_cast<uint64_t>(i + 1), absl::StrCat("127.0.0.1:", p)});
    nodes_.push_back(std::make_unique<NodeProc>(i + 1, absl::StrCat(o_.dir, "/node", i + 1, ".log"),
                                                &model_, &model_mu_));
  }
  std::printf(
      "crashtest: mode replicated, seed %llu, 3 nodes (%s), %d shards, %d threads per node, "
      "%s, election timeout %d ms, dir %s\n",
      static_cast<unsigned long long>(o_.seed), FormatMembers(members_).c_str(), o_.shards,
      o_.threads,
      o_.workload == "cycle"
          ? "cycle (swaps of adjacent nodes, as transfers of 0)"
          : absl::StrCat("bank with ", o_.cross_pct, "% cross-shard transfers").c_str(),
      o_.election_ms, o_.dir.c_str());
  std::fflush(stdout);
  const auto start = Clock::now();
  std::vector<std::string> findings;
  std::string error;
  auto fail = [&](const std::string& what) {
    std::printf("crashtest: VIOLATION in round %d (seed %llu): %s\n", round_,
                static_cast<unsigned long long>(o_.seed), what.c_str());
    for (size_t i = 0; i < findings.size() && i < 20; ++i) {
      std::printf("  %s\n", findings[i].c_str());
    }
    std::printf("crashtest: seed %llu, round %d; directory kept: %s (node<i>.log per node)\n",
                static_cast<unsigned long long>(o_.seed), round_, o_.dir.c_str());
    std::fflush(stdout);
    for (auto& n : nodes_) n->Kill();
    return 1;
  };
  if (!StartDead(&error)) return fail(error);
  while (o_.rounds == 0 || round_ < o_.rounds) {
    if (o_.seconds > 0 && MsSince(start) >= 1000.0 * static_cast<double>(o_.seconds)) break;
    ++round_;
    const auto round_start = Clock::now();
    // The plan: a fault and its timing. Leader kills are the most frequent.
    int pick = static_cast<int>(rng_() % 100);
    Fault drawn = kNone;
    for (int k = 0; k < kFaultKinds; ++k) {
      pick -= kFaultPercent[k];
      if (pick < 0) {
        drawn = static_cast<Fault>(k);
        break;
      }
    }
    const int shard = static_cast<int>(rng_() % static_cast<uint64_t>(o_.shards));
    const int before_ms = 100 + static_cast<int>(rng_() % 700);
    const int after_ms = 300 + static_cast<int>(rng_() % 1000);
    const uint64_t other = rng_();
    Fault fault = round_ == o_.replace_round ? kReplace : drawn;
    // Half the drawn leader kills hit a 2PC point when transfers cross shards (no extra draw).
    if (fault == kLeaderKill && o_.cross_pct > 0 && o_.shards > 1 && ((other >> 8) & 1) != 0) {
      fault = kLeaderKill2pc;
    }
    if (round_ <= static_cast<int64_t>(plan_.size())) fault = plan_[round_ - 1];
    std::optional<std::vector<int>> leaders = WaitHealed();
    if (!leaders.has_value()) return fail("no ready leader on every shard before the round");
    uint64_t acked_before, named_before[3];
    {
      std::lock_guard<std::mutex> l(model_mu_);
      acked_before = model_.acked();
      named_before[0] = model_.named_prepared();
      named_before[1] = model_.named_committed();
      named_before[2] = model_.named_rolled_back();
    }
    Workload(true);
    SleepMs(before_ms);
    std::string what = kFaultNames[fault];
    uint64_t term = 0;
    const int leader = LeaderOf(shard, &term);
    bool partitioned = false;
    if (fault == kLeaderIsolate || fault == kOneWay) {
      if (leader < 0) {
        absl::StrAppend(&what, " (no ready leader of shard ", shard, " at that moment: none)");
      } else {
        const auto cut_start = Clock::now();
        const std::string how = Partition(fault, leader, other % 2 == 0);
        partitioned = true;
        if (how.empty()) return fail("a node did not take its link filter command (P)");
        // Past the election timeout: until another node is the ready leader in a later term;
        // the partition then holds as long as a killed node would stay dead.
        uint64_t new_term = 0;
        const int next = WaitNewLeader(shard, leader, term, &new_term);
        if (next < 0) ++partitions_without_leader_;
        absl::StrAppend(&what, " node ", members_[leader].id, " (leader of shard ", shard,
                        ", term ", term, ") ", how, "; new leader ",
                        next >= 0 ? absl::StrCat("node ", members_[next].id, " term ", new_term)
                                  : std::string("none"),
                        " after ", static_cast<int>(MsSince(cut_start)), " ms");
        ++faults_[fault];
      }
    } else if (fault == kLeaderKill || fault == kLeaderStop) {
      if (leader < 0) {
        absl::StrAppend(&what, " (no ready leader of shard ", shard, " at that moment: none)");
      } else if (fault == kLeaderKill) {
        nodes_[leader]->Kill();
        absl::StrAppend(&what, " node ", members_[leader].id, " (leader of shard ", shard,
                        ", term ", term, ")");
        ++faults_[fault];
      } else {
        nodes_[leader]->Stop();
        // Past the election timeout: until another node is the ready leader of the shard in a
        // later term (then a little longer, so the stopped one's peers move on).
        const auto stop_start = Clock::now();
        uint64_t new_term = 0;
        const int next = WaitNewLeader(shard, leader, term, &new_term);
        SleepMs(100);
        nodes_[leader]->Cont();
        absl::StrAppend(&what, " node ", members_[leader].id, " (leader of shard ", shard,
                        ", term ", term, ") for ", static_cast<int>(MsSince(stop_start)),
                        " ms, new leader ",
                        next >= 0 ? absl::StrCat("node ", members_[next].id, " term ", new_term)
                                  : std::string("none"));
        ++faults_[fault];
      }
    } else if (fault == kLeaderKill2pc) {
      int point = static_cast<int>((other >> 9) % kRepl2pcPoints);
      if (round_ <= static_cast<int64_t>(plan_points_.size()) && plan_points_[round_ - 1] >= 0) {
        point = plan_points_[round_ - 1];
      }
      if (leader < 0) {
        absl::StrAppend(&what, " (no ready leader of shard ", shard, " at that moment: none)");
      } else {
        // The leader exits at the point in its next cross-shard commit (3 s at most, else
        // kill -9 as leader-kill does; counted apart).
        std::vector<std::string> reply;
        nodes_[leader]->Call(absl::StrCat("K ", kRepl2pcPointNames[point]), &reply);
        const bool reached = nodes_[leader]->WaitExit(std::chrono::milliseconds(3000));
        nodes_[leader]->Kill();
        ++(reached ? kill_2pc_reached_[point] : kill_2pc_missed_);
        absl::StrAppend(&what, " node ", members_[leader].id, " (leader of shard ", shard,
                        ", term ", term, ") ", kRepl2pcPointNames[point],
                        reached ? "" : " (not reached in 3 s: kill -9)");
        ++faults_[fault];
      }
    } else if (fault == kFollowerKill) {
      // A node that does not lead `shard` (it may lead another).
      int victim = static_cast<int>(other % kNodes);
      if (victim == leader) victim = (victim + 1 + static_cast<int>(other % 2)) % kNodes;
      nodes_[victim]->Kill();
      absl::StrAppend(&what, " node ", members_[victim].id, " (follower of shard ", shard, ")");
      ++faults_[fault];
    } else if (fault == kClusterKill) {
      for (auto& n : nodes_) n->Kill();
      ++faults_[fault];
    } else if (fault == kReplace) {
      if (!ReplaceFollower(shard, other, &what, &error)) return fail(error);
    } else {
      ++faults_[fault];
    }
    SleepMs(after_ms);
    if (partitioned && !HealLinks()) return fail("a node did not take its link filter command (P)");
    // Heal: restart whatever was killed; the workload goes on on the leaders meanwhile.
    if (!StartDead(&error)) return fail(error);
    leaders = WaitHealed();
    if (!leaders.has_value()) return fail("no ready leader on every shard after healing");
    Workload(true);  // the restarted nodes too
    SleepMs(100);
    Workload(false);
    uint64_t served = 0, as_follower = 0, refused = 0, drained = 0;
    CountReads(&served, &as_follower, &refused);
    reads_served_ += served;
    reads_as_follower_ += as_follower;
    reads_refused_ += refused;
    leaders = WaitHealed();
    if (!leaders.has_value()) return fail("no ready leader on every shard after the workload");
    if (o_.named_pct > 0) {
      if (!DrainNamed(&drained)) ++named_undrained_;
      named_drained_ += drained;
      leaders = WaitHealed();
      if (!leaders.has_value()) return fail("no ready leader on every shard after the decisions");
    }
    {
      std::lock_guard<std::mutex> l(model_mu_);
      findings = model_.TakeReportFindings();
    }
    uint64_t verified_before;
    {
      std::lock_guard<std::mutex> l(model_mu_);
      verified_before = model_.acked_verified();
    }
    Verify(*leaders, &findings);
    if (o_.require_no_in_doubt) {
      // A part left in doubt by a failover is decided by the in-doubt resolver once one node is
      // the ready leader of every participant again (leadership gathering: within ten election
      // timeouts of the restart, docs/replicated-2pc-plan.md section 5). Asked again until then,
      // with room to spare, before what is left counts.
      const auto deadline =
          Clock::now() + std::chrono::milliseconds(std::max(10000, 40 * o_.election_ms));
      auto in_doubt_now = [this] {
        std::lock_guard<std::mutex> l(model_mu_);
        return model_.InDoubt();
      };
      while (in_doubt_now() > 0 && Clock::now() < deadline) {
        SleepMs(200);
        leaders = WaitHealed();
        if (!leaders.has_value()) return fail("no ready leader on every shard while in doubt");
        Verify(*leaders, &findings);
      }
    }
    CompareDigests(&findings);
    uint64_t acked_round, verified_round, acked_total, in_doubt;
    std::string in_doubt_text, extra;
    {
      std::lock_guard<std::mutex> l(model_mu_);
      if (o_.named_pct > 0) {
        extra = absl::StrCat("; named: ", model_.named_prepared() - named_before[0], " prepared, ",
                             model_.named_committed() - named_before[1], " committed, ",
                             model_.named_rolled_back() - named_before[2], " rolled back, ",
                             drained, " decided after the workload");
      }
      if (o_.readers > 0) {
        absl::StrAppend(&extra, "; follower reads: ", served, " served (", as_follower,
                        " on a node leading no shard), ", refused, " refused");
      }
      acked_total = model_.acked();
      acked_round = acked_total - acked_before;
      verified_round = model_.acked_verified() - verified_before;
      in_doubt = model_.InDoubt();
      in_doubt_text = model_.InDoubtText(5);
    }
    max_in_doubt_ = std::max(max_in_doubt_, in_doubt);
    if (in_doubt > 0 && o_.require_no_in_doubt) {
      findings.push_back(
          absl::StrCat("[in-doubt] ", in_doubt,
                       " transaction parts left prepared after healing: ", in_doubt_text));
    }
    std::printf("round %d: %s; %llu acknowledged, %llu verified; %llu in doubt%s%s; %.0f ms\n",
                round_, what.c_str(), static_cast<unsigned long long>(acked_round),
                static_cast<unsigned long long>(verified_round),
                static_cast<unsigned long long>(in_doubt),
                in_doubt > 0 ? absl::StrCat(" (", in_doubt_text, ")").c_str() : "", extra.c_str(),
                MsSince(round_start));
    std::fflush(stdout);
    if (!findings.empty()) return fail(findings.front());
  }
  Finish();
  std::lock_guard<std::mutex> l(model_mu_);
  std::string faults;
  for (int k = 1; k <= kFaultKinds; ++k) {
    const int f = k % kFaultKinds;  // "none" last
    absl::StrAppend(&faults, f == 1 ? "" : ", ", kFaultNames[f], " ", faults_[f]);
  }
  std::printf(
      "crashtest: faults: %s; %llu partitions without a new leader in 30 s; %llu transfers "
      "refused (no effect), %llu committed; %llu digests compared; %llu node starts repeated "
      "(port still in use)\n",
      faults.c_str(), static_cast<unsigned long long>(partitions_without_leader_),
      static_cast<unsigned long long>(model_.no_effect()),
      static_cast<unsigned long long>(model_.committed()),
      static_cast<unsigned long long>(digests_compared_),
      static_cast<unsigned long long>(port_retries_));
  std::printf(
      "crashtest: replicated: %d rounds, %llu acknowledged commits verified, %llu of %llu "
      "kUnknown resolved (%llu answers from GetOutcomeOfKey), %llu unanswered commits resolved, "
      "0 lost, 0 violations, 0 divergent replicas (3 nodes, %d shards)\n",
      round_, static_cast<unsigned long long>(model_.acked_verified()),
      static_cast<unsigned long long>(model_.unknown_resolved()),
      static_cast<unsigned long long>(model_.unknown()),
      static_cast<unsigned long long>(outcome_answers_),
      static_cast<unsigned long long>(model_.unanswered_resolved()), o_.shards);
  std::printf(
      "crashtest: cross-shard: %s, %llu committed; %llu transaction parts left in doubt after "
      "healing at the end (at most %llu after a round)%s\n",
      o_.workload == "cycle"
          ? "swaps of the cycle across two shards"
          : absl::StrCat(o_.cross_pct, "% of transfers drawn across two shards").c_str(),
      static_cast<unsigned long long>(model_.cross_committed()),
      static_cast<unsigned long long>(model_.InDoubt()),
      static_cast<unsigned long long>(max_in_doubt_),
      o_.require_no_in_doubt ? "" : " (reported, not failed on: no --require_no_in_doubt)");
  std::printf(
      "crashtest: leader-kill-2pc: the leader exited %s %llu, %s %llu, %s %llu times; %llu not "
      "reached in 3 s (kill -9)\n",
      kRepl2pcPointNames[0], static_cast<unsigned long long>(kill_2pc_reached_[0]),
      kRepl2pcPointNames[1], static_cast<unsigned long long>(kill_2pc_reached_[1]),
      kRepl2pcPointNames[2], static_cast<unsigned long long>(kill_2pc_reached_[2]),
      static_cast<unsigned long long>(kill_2pc_missed_));
  std::printf(
      "crashtest: replace-follower: %llu followers replaced by new empty members after the Raft "
      "logs were truncated (%llu snapshots installed on them; %llu membership calls retried)\n",
      static_cast<unsigned long long>(faults_[kReplace]),
      static_cast<unsigned long long>(new_member_installs_),
      static_cast<unsigned long long>(membership_retries_));
  if (o_.named_pct > 0) {
    std::printf(
        "crashtest: named: %d%% of transfers prepared under a name, %llu prepared, %llu "
        "committed (CommitPrepared OK), %llu rolled back (RollbackPrepared OK), %llu of them by "
        "another node than the one that prepared them, %llu decided after the workload stopped; "
        "%llu rounds in which no node could decide them all in 30 s\n",
        o_.named_pct, static_cast<unsigned long long>(model_.named_prepared()),
        static_cast<unsigned long long>(model_.named_committed()),
        static_cast<unsigned long long>(model_.named_rolled_back()),
        static_cast<unsigned long long>(model_.named_decided_elsewhere()),
        static_cast<unsigned long long>(named_drained_),
        static_cast<unsigned long long>(named_undrained_));
  }
  if (o_.readers > 0) {
    std::printf(
        "crashtest: follower reads: %d reader(s) per node, %llu served (%llu on a node leading no "
        "shard), %llu refused, 0 wrong totals\n",
        o_.readers, static_cast<unsigned long long>(reads_served_),
        static_cast<unsigned long long>(reads_as_follower_),
        static_cast<unsigned long long>(reads_refused_));
  }
  for (size_t k = 0; k < plan_.size() && static_cast<int64_t>(k) < round_; ++k) {
    if (faults_[plan_[k]] == 0) {
      std::printf("crashtest: TOO LITTLE VERIFIED: planned fault %s (round %zu) never happened\n",
                  kFaultNames[plan_[k]], k + 1);
      return 3;
    }
  }
  if (o_.replace_round > 0 && round_ >= o_.replace_round && faults_[kReplace] == 0) {
    std::printf("crashtest: TOO LITTLE VERIFIED: the replacement of round %lld did not happen\n",
                static_cast<long long>(o_.replace_round));
    return 3;
  }
  if (model_.acked_verified() == 0) {
    std::printf("crashtest: TOO LITTLE VERIFIED: no acknowledged commit was verified\n");
    return 3;
  }
  if (!o_.keep) fs::remove_all(o_.dir, ec);
  return 0;
}

}  // namespace

int RunReplicatedDriver(const ReplDriverOptions& options) {
  ReplDriver driver(options);
  return driver.Run();
}

}  // namespace shardtx::crashtest
