// crashtest: the crash-recovery torture tool. See tools/crashtest/README.md.
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tools/crashtest/driver.h"
#include "tools/crashtest/layout.h"
#include "tools/crashtest/repl_driver.h"
#include "util/kill_point.h"

ABSL_DECLARE_FLAG(std::string, self_test_broken);  // child_flags.cc (hidden)

ABSL_FLAG(int64_t, rounds, 100, "Rounds to run (0: no limit; --seconds then ends the run).");
ABSL_FLAG(int64_t, seconds, 0,
          "Start no new round after this many seconds (0: no limit). With --rounds, whichever "
          "comes first.");
ABSL_FLAG(uint64_t, seed, 0,
          "Seed of every random choice (0: a random one, printed). It replays the rounds' "
          "plans (modes, kill points, skips, timings, workload choices), not the threads' "
          "interleaving.");
ABSL_FLAG(int32_t, shards, 4, "Shards of the database (1..64).");
ABSL_FLAG(int32_t, threads, 4, "Workload threads in each child (1..64).");
ABSL_FLAG(std::string, log_layout, "shared",
          "Where the database keeps its shards' write-ahead logs (Options::log_layout): "
          "shared (one log for all shards, each shard a stream in it; the library's default) "
          "or per-shard (one log per shard). Also --log-layout.");
ABSL_FLAG(std::string, mode, "mixed",
          "How each round's child dies: blackbox (SIGKILL at a random moment), whitebox (exits "
          "at a random named kill point), powerloss (the fault-injecting Env drops every "
          "unsynced WAL byte, maybe tearing the last write; WAL only: LMDB does its own I/O), "
          "or mixed (a random one per round). Or replicated: three node processes of one "
          "replicated database on 127.0.0.1, one fault per round (leader or follower kill -9, "
          "SIGSTOP of a leader, whole-cluster kill -9, an isolated leader, a one-way "
          "partition, a follower replaced by a new member); see README.md.");
ABSL_FLAG(int32_t, txn_pause_ms, 0,
          "--mode=replicated: each workload thread pauses this long after each transfer (fewer "
          "Raft entries per round).");
ABSL_FLAG(int64_t, replace_round, 0,
          "--mode=replicated: this round's fault is replace-follower (a follower replaced by a new "
          "empty member once the Raft logs were truncated), whatever the seed draws; the run "
          "fails as too little if it did not happen. 0: only the seeded mix.");
ABSL_FLAG(std::vector<std::string>, fault_plan, {},
          "--mode=replicated: comma-separated fault names for rounds 1, 2, ... (later rounds draw "
          "from the seeded mix); the run fails as too little if a planned kind never happened. "
          "leader-kill-2pc:<point> also plans its point (after-first-prepare, after-prepares, "
          "after-decision).");
ABSL_FLAG(std::string, workload, "bank",
          "--mode=replicated: the workload of the nodes: bank (transfers between accounts, each "
          "writing a marker on every shard it touches; --cross_pct of them between two shards) "
          "or cycle (4 nodes per shard in one cycle; a swap of two adjacent nodes rewrites three "
          "successors, on one or two shards, with a marker on each; the cycle must stay whole, "
          "on the leaders after each round and for the follower readers).");
ABSL_FLAG(int32_t, cross_pct, 80,
          "--mode=replicated --workload=bank: percentage of transfers between accounts of two "
          "shards (cross-shard transactions: two-phase commit over the replicated shards, run on "
          "a node leading both); 0 keeps every transfer inside one shard.");
ABSL_FLAG(int32_t, named_pct, 10,
          "--mode=replicated --workload=bank: percentage of transfers prepared under a name "
          "(Transaction::Prepare) instead of committed, then decided (CommitPrepared or "
          "RollbackPrepared, as the seed draws for each) by a decider thread of the node that "
          "leads their shards: the host's coordinator, which lists what is prepared "
          "(ListPrepared) and so also decides what a killed node prepared. 0: none.");
ABSL_FLAG(int32_t, follower_readers, 1,
          "--mode=replicated: reader threads per node, each summing every account in one "
          "follower-read transaction (TxnOptions::follower_read) while the workload runs; the "
          "total must be exact. 0: none.");
ABSL_FLAG(bool, require_no_in_doubt, false,
          "--mode=replicated: fail the run when a cross-shard transaction is left prepared (in "
          "doubt) on a shard's leader after healing (each round first waits up to max(10 s, 40 "
          "election timeouts) for the in-doubt resolver). Off: the count is only printed after "
          "every round and at the end.");
ABSL_FLAG(int32_t, election_ms, 300,
          "--mode=replicated: the Raft election timeout of the nodes, in ms (heartbeat: a "
          "sixth of it).");
ABSL_FLAG(std::string, commit, "",
          "How the workload commits: sync (Transaction::Commit), async (CommitAsync, each commit "
          "acknowledged to the parent only from its callback, several in flight per thread) or "
          "mixed (async in about a third of the rounds). Default: mixed with --mode=mixed, "
          "else sync.");
ABSL_FLAG(std::string, dir, "",
          "Work directory; the database is <dir>/db, which must not exist (default: "
          "$TMPDIR/crashtest.<pid>).");
ABSL_FLAG(bool, keep, false,
          "Keep the directory after a clean run (it is always kept after a "
          "violation).");
ABSL_FLAG(bool, list_kill_points, false,
          "Print the kill points compiled into this build and exit (also --list-kill-points).");

namespace shardtx::crashtest {
int ChildMain();  // child_flags.cc
int ReplNodeMain();  // repl_node.cc
}  // namespace shardtx::crashtest

namespace {

constexpr char kUsage[] =
    "crash-recovery torture for shardtx.\n"
    "\n"
    "Each round runs a workload in a child process on a database directory that persists\n"
    "across rounds (cross-shard bank transfers, unique inserts, overwrites and deletes, async\n"
    "commits, named prepares, checkpoints), kills it, reopens the database (recovery) and\n"
    "verifies it against what the child acknowledged: every acknowledged commit present with\n"
    "its latest value, deleted keys absent, async commits a prefix per shard, the bank total\n"
    "exact, no cross-shard transaction partly applied, named prepared transactions listed and\n"
    "still locking. On a violation it prints the seed, round, kill point and first offending\n"
    "key, keeps the directory and exits 1.\n"
    "\n"
    "Modes: blackbox = SIGKILL at a random moment; whitebox = exit at a random named kill\n"
    "point (--list-kill-points); powerloss = the child's WAL runs on the fault-injecting Env\n"
    "and the crash drops every WAL byte not yet fsynced (tearing the last write at random).\n"
    "Power loss is simulated for the WAL only: LMDB does its own I/O, and its (durable)\n"
    "commits survive as they would after a process crash.\n"
    "\n"
    "This is a test build: crashtest carries its own copy of shardtx compiled with the named\n"
    "kill points and the SHARDTX_DELIBERATE_BUG switches (ack_before_fsync,\n"
    "commit_with_prepare_missing, async_complete_before_fsync with --commit=async: set one\n"
    "and crashtest must report a violation). The library a host\n"
    "links (libshardtx, as installed) has none of them, and ignores that variable.\n"
    "\n"
    "Usage: crashtest [--mode=mixed] [--rounds=N] [--seconds=S] [--seed=N] [--shards=N]\n"
    "                 [--threads=N] [--commit=sync|async|mixed] [--log-layout=per-shard|shared]\n"
    "                 [--dir=D] [--keep]\n"
    "                 | --list-kill-points";

void ListKillPoints() {
  for (const std::string& name : shardtx::KillPoints::All()) std::printf("%s\n", name.c_str());
}

std::string SelfPath() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

// --mode=replicated: the flags it shares with the other modes, and its own.
int RunReplicated(shardtx::crashtest::DriverOptions o) {
  shardtx::crashtest::ReplDriverOptions r;
  r.rounds = absl::GetFlag(FLAGS_rounds);
  r.seconds = absl::GetFlag(FLAGS_seconds);
  r.seed = o.seed;
  r.shards = o.shards;
  r.threads = o.threads;
  r.election_ms = absl::GetFlag(FLAGS_election_ms);
  r.pause_ms = std::max(0, absl::GetFlag(FLAGS_txn_pause_ms));
  r.keep = absl::GetFlag(FLAGS_keep);
  r.dir = absl::GetFlag(FLAGS_dir);
  r.self = SelfPath();
  r.broken = absl::GetFlag(FLAGS_self_test_broken);
  r.replace_round = std::max<int64_t>(0, absl::GetFlag(FLAGS_replace_round));
  r.fault_plan = absl::GetFlag(FLAGS_fault_plan);
  r.cross_pct = absl::GetFlag(FLAGS_cross_pct);
  r.require_no_in_doubt = absl::GetFlag(FLAGS_require_no_in_doubt);
  r.named_pct = absl::GetFlag(FLAGS_named_pct);
  r.readers = absl::GetFlag(FLAGS_follower_readers);
  r.workload = absl::GetFlag(FLAGS_workload);
  if (r.workload != "bank" && r.workload != "cycle") {
    std::fprintf(stderr, "crashtest: --mode=replicated runs --workload=bank or cycle\n");
    return 2;
  }
  if (r.cross_pct < 0 || r.cross_pct > 100 || r.named_pct < 0 || r.named_pct > 100) {
    std::fprintf(stderr, "crashtest: --cross_pct and --named_pct take 0..100\n");
    return 2;
  }
  if (r.readers < 0 || r.readers > 16) {
    std::fprintf(stderr, "crashtest: --follower_readers takes 0..16\n");
    return 2;
  }
  if (!r.broken.empty() && r.broken != "ack_refused" && r.broken != "torn_read") {
    std::fprintf(stderr,
                 "crashtest: --mode=replicated takes --self_test_broken=ack_refused or "
                 "torn_read\n");
    return 2;
  }
  if (r.broken == "torn_read" && (r.readers == 0 || r.shards < 2)) {
    std::fprintf(stderr, "crashtest: torn_read needs --follower_readers and two shards\n");
    return 2;
  }
  if (r.shards < 1 || r.shards > 16 || r.threads < 1 || r.threads > 64 || r.election_ms < 20 ||
      r.election_ms > 60000) {
    std::fprintf(stderr,
                 "crashtest: --mode=replicated takes --shards in 1..16, --threads in 1..64, "
                 "--election_ms in 20..60000\n");
    return 2;
  }
  if (r.rounds < 0 || r.seconds < 0 || (r.rounds == 0 && r.seconds == 0)) {
    std::fprintf(stderr, "crashtest: give --rounds or --seconds (or both)\n");
    return 2;
  }
  if (r.dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    r.dir = absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/crashtest.", getpid());
  }
  if (r.self.empty()) {
    std::fprintf(stderr, "crashtest: cannot find its own binary (/proc/self/exe)\n");
    return 2;
  }
  return shardtx::crashtest::RunReplicatedDriver(r);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--list-kill-points") == 0) {
      ListKillPoints();
      return 0;
    }
  }
  absl::SetProgramUsageMessage(kUsage);
  absl::FlagsUsageConfig usage;
  // --help shows the user's flags, not the hidden ones the parent passes to its children.
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::StrContains(file, "crashtest/main.cc");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  // Flag names may be written with hyphens (--log-layout): Abseil's are underscores.
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i < args.size() && args[i] != "--"; ++i) {
    std::string& a = args[i];
    if (a.size() < 3 || a[0] != '-') continue;
    const size_t end = std::min(a.find('='), a.size());
    for (size_t j = a[1] == '-' ? 2 : 1; j < end; ++j) {
      if (a[j] == '-') a[j] = '_';
    }
  }
  std::vector<char*> normalized;
  for (std::string& a : args) normalized.push_back(a.data());
  absl::ParseCommandLine(static_cast<int>(normalized.size()), normalized.data());
  if (shardtx::crashtest::ChildMain() >= 0) return 0;     // never returns in a child
  if (shardtx::crashtest::ReplNodeMain() >= 0) return 0;  // nor in a replicated node
  if (absl::GetFlag(FLAGS_list_kill_points)) {
    ListKillPoints();
    return 0;
  }
  shardtx::crashtest::DriverOptions o;
  o.rounds = absl::GetFlag(FLAGS_rounds);
  o.seconds = absl::GetFlag(FLAGS_seconds);
  o.seed = absl::GetFlag(FLAGS_seed);
  if (o.seed == 0) o.seed = (uint64_t{std::random_device{}()} << 32) | std::random_device{}();
  o.shards = absl::GetFlag(FLAGS_shards);
  o.threads = absl::GetFlag(FLAGS_threads);
  const absl::StatusOr<shardtx::Options::LogLayout> layout =
      shardtx::ParseLogLayout(absl::GetFlag(FLAGS_log_layout));
  if (!layout.ok()) {
    std::fprintf(stderr, "crashtest: --log-layout: %s\n",
                 std::string(layout.status().message()).c_str());
    return 2;
  }
  o.log_layout = *layout;
  o.mode = absl::GetFlag(FLAGS_mode);
  if (o.mode == "replicated") return RunReplicated(o);
  o.commit = absl::GetFlag(FLAGS_commit);
  if (o.commit.empty()) o.commit = o.mode == "mixed" ? "mixed" : "sync";
  if (o.commit != "sync" && o.commit != "async" && o.commit != "mixed") {
    std::fprintf(stderr, "crashtest: --commit must be sync, async or mixed\n");
    return 2;
  }
  o.dir = absl::GetFlag(FLAGS_dir);
  o.keep = absl::GetFlag(FLAGS_keep);
  o.self = SelfPath();
  o.self_test_broken = absl::GetFlag(FLAGS_self_test_broken);
  if (!o.self_test_broken.empty() && o.self_test_broken != "never_arm" &&
      o.self_test_broken != "skip_verify") {
    std::fprintf(stderr, "crashtest: --self_test_broken must be never_arm or skip_verify\n");
    return 2;
  }
  if (o.shards < 1 || o.shards > 64 || o.threads < 1 || o.threads > 64) {
    std::fprintf(stderr, "crashtest: --shards and --threads must be in 1..64\n");
    return 2;
  }
  if (o.mode != "blackbox" && o.mode != "whitebox" && o.mode != "powerloss" && o.mode != "mixed") {
    std::fprintf(stderr, "crashtest: --mode must be blackbox, whitebox, powerloss or mixed\n");
    return 2;
  }
  if (o.rounds < 0 || o.seconds < 0 || (o.rounds == 0 && o.seconds == 0)) {
    std::fprintf(stderr, "crashtest: give --rounds or --seconds (or both)\n");
    return 2;
  }
  if (o.dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    o.dir = absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/crashtest.", getpid());
  }
  if (o.self.empty()) {
    std::fprintf(stderr, "crashtest: cannot find its own binary (/proc/self/exe)\n");
    return 2;
  }
  return shardtx::crashtest::RunDriver(o);
}
