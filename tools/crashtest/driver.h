// The crashtest parent: runs the rounds. Each round spawns a child (this binary with --child)
// on the persistent database directory, lets it die the way the round's mode says, reopens the
// database (recovery, timed), verifies it against the Model, decides some named prepared
// transactions itself, closes it, and prints a progress line. The first round with a
// violation ends the run: it prints the seed, the round, the kill point and the first
// offending key, keeps the directory and returns non-zero. A run without violations that
// verified too little (coverage.h) does not count either.
#pragma once

#include <cstdint>
#include <string>

#include "shardtx/options.h"

namespace shardtx::crashtest {

struct DriverOptions {
  int64_t rounds = 100;  // stop after this many rounds (0: no limit)
  int64_t seconds = 0;   // ... or start no round after this many seconds (0: no limit)
  uint64_t seed = 0;
  int shards = 4;
  int threads = 4;
  // Where the database keeps its shards' logs: one per shard, or one shared by all of them.
  Options::LogLayout log_layout = Options::LogLayout::kShared;
  std::string mode = "mixed";  // blackbox | whitebox | powerloss | mixed
  // How children commit: "sync" (Commit), "async" (CommitAsync, acknowledged from the
  // callback) or "mixed" (async in about a third of the rounds).
  std::string commit = "sync";
  std::string dir;             // work directory; the database is <dir>/db
  bool keep = false;           // keep the directory after a clean run
  std::string self;            // path of this binary, for the children
  // A deliberately broken crashtest, to prove that a run which looked at too little does not
  // count: "never_arm" (children never arm the round's kill point, so none fires) or
  // "skip_verify" (the parent skips every verification). Empty: none.
  std::string self_test_broken;
};

// Returns the process exit code: 0 clean, 1 violation, 2 setup error, 3 a run without
// violations that verified too little to count (coverage.h).
int RunDriver(const DriverOptions& options);

}  // namespace shardtx::crashtest
