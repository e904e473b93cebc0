// The hidden flags by which the crashtest parent starts a child (kept out of --help).
#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "tools/crashtest/child.h"
#include "tools/crashtest/layout.h"

ABSL_DECLARE_FLAG(int32_t, shards);
ABSL_DECLARE_FLAG(int32_t, threads);
ABSL_DECLARE_FLAG(std::string, log_layout);

ABSL_FLAG(bool, child, false, "internal: run as a crashtest child");
ABSL_FLAG(int32_t, child_fd, 3, "internal: the pipe to the parent");
ABSL_FLAG(std::string, child_db, "", "internal: the database path");
ABSL_FLAG(int32_t, child_round, 0, "internal: the round");
ABSL_FLAG(uint64_t, child_seed, 0, "internal: the child's seed");
ABSL_FLAG(std::string, child_arm, "", "internal: the kill point to arm");
ABSL_FLAG(int32_t, child_skip, 0, "internal: hits of the kill point to skip");
ABSL_FLAG(bool, child_powerloss, false, "internal: run the WAL on the fault-injecting Env");
ABSL_FLAG(std::string, child_trigger, "", "internal: power loss trigger: timer, ops or point");
ABSL_FLAG(int32_t, child_delay_ms, 0, "internal: power loss timer");
ABSL_FLAG(uint64_t, child_ops, 0, "internal: power loss at this Env operation");
ABSL_FLAG(int32_t, child_tear, 0, "internal: tear mode of the power loss");
ABSL_FLAG(bool, child_workload, true, "internal: run the workload after Open");
ABSL_FLAG(bool, child_async_commit, false, "internal: commit with Transaction::CommitAsync");
ABSL_FLAG(std::string, child_pending, "", "internal: pending named prepares, comma-separated");
ABSL_FLAG(std::string, self_test_broken, "",
          "internal: break crashtest itself (never_arm | skip_verify); the run must not count");

namespace shardtx::crashtest {

// Runs the child if --child was given (never returns then); -1 otherwise.
int ChildMain() {
  if (!absl::GetFlag(FLAGS_child)) return -1;
  ChildConfig c;
  c.fd = absl::GetFlag(FLAGS_child_fd);
  c.db_path = absl::GetFlag(FLAGS_child_db);
  c.shards = absl::GetFlag(FLAGS_shards);
  c.threads = absl::GetFlag(FLAGS_threads);
  c.log_layout =
      ParseLogLayout(absl::GetFlag(FLAGS_log_layout)).value_or(Options::LogLayout::kShared);
  c.round = absl::GetFlag(FLAGS_child_round);
  c.seed = absl::GetFlag(FLAGS_child_seed);
  c.arm_point = absl::GetFlag(FLAGS_child_arm);
  c.skip = absl::GetFlag(FLAGS_child_skip);
  c.powerloss = absl::GetFlag(FLAGS_child_powerloss);
  c.trigger = absl::GetFlag(FLAGS_child_trigger);
  c.delay_ms = absl::GetFlag(FLAGS_child_delay_ms);
  c.ops = absl::GetFlag(FLAGS_child_ops);
  c.tear = absl::GetFlag(FLAGS_child_tear);
  c.workload = absl::GetFlag(FLAGS_child_workload);
  c.async_commit = absl::GetFlag(FLAGS_child_async_commit);
  const std::string pending = absl::GetFlag(FLAGS_child_pending);
  if (!pending.empty()) c.pending = absl::StrSplit(pending, ',');
  RunChild(c);
}

}  // namespace shardtx::crashtest
