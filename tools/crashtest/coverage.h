// RunCoverage: what a crashtest run exercised (rounds whose verification checked an acknowledged
// commit, kill points that fired) and the rule that decides whether that is enough for the run
// to count (tools/crashtest/README.md, "When a run counts"). A run below it exits 3: it found
// nothing wrong, but it did not look.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace shardtx::crashtest {

struct RunCoverage {
  int64_t rounds = 0;
  // Rounds whose verification after the crash checked at least one acknowledged durable
  // operation of that round (Model::verified_this_round() > 0).
  int64_t verifying_rounds = 0;
  // Rounds that armed a kill point (whitebox; powerloss triggered at a point).
  int64_t armed_rounds = 0;
  // Every kill point compiled in, with the number of rounds it fired in (zeros included).
  std::map<std::string, uint64_t> fired;

  int64_t distinct_fired() const;
  // At least half the rounds (rounded down), and at least one.
  int64_t required_verifying_rounds() const;
  // One distinct point per four armed rounds (rounded down), capped at two thirds of the
  // compiled points: some need rare events (2pc.after_failed_prepare a failed prepare).
  int64_t required_distinct_fired() const;
  // One line per requirement not met; empty if the run counts.
  std::vector<std::string> Shortfalls() const;
};

}  // namespace shardtx::crashtest
