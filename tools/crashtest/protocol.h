// The lines a crashtest child writes to its parent through a pipe, one write(2) per line (so a
// line is never torn, even when the child is killed mid-run: pipe writes of at most PIPE_BUF
// bytes are atomic).
//
//   R                                  the database is open (recovery done), workload starts
//   I <t> <seq> <intent...>            operation <seq> of thread <t> is about to be called
//   A <t> <seq> <ts> <shard>           ... returned OK (ts/shard of a single-shard commit, else
//                                      0 -1): acknowledged
//   F <t> <seq>                        ... returned kAborted: certainly not applied
//   U <t> <seq> <message>              ... returned another error: outcome unknown (the thread
//                                      stops)
//   K <kill point>                     the armed kill point fired; the child exits now
//   P <how>                            the fault-injecting Env crashed (power loss); exits now
//   N                                  the armed recovery kill point was not reached
//   V <message>                        the child saw a violation (e.g. bank total at a snapshot)
//   E <message>                        the child could not run (e.g. Open failed)
//
// Intent: "<kind> <txn id> <name|-> <from|-> <to|-> <amount> <key>=<value|-> ...", where value
// "-" is a delete. Keys and values never hold spaces, '=' or a lone "-".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace shardtx::crashtest {

enum class OpKind : char {
  kTransfer = 'T',         // cross- or single-shard bank transfer plus a marker per shard
  kWrite = 'W',            // inserts, overwrites and deletes of the thread's own keys
  kAsync = 'Y',            // unique inserts with Durability::kAsync or kNone, one shard
  kPrepare = 'P',          // Transaction::Prepare(name): writes or a transfer, or nothing
  kCommitPrepared = 'C',   // Database::CommitPrepared(name)
  kRollbackPrepared = 'B'  // Database::RollbackPrepared(name)
};

struct Intent {
  OpKind kind = OpKind::kWrite;
  uint64_t txn_id = 0;
  std::string name;      // P, C, B
  std::string from, to;  // account keys of a transfer (T, P); empty otherwise
  int64_t amount = 0;    // moved from `from` to `to`
  std::vector<std::pair<std::string, std::optional<std::string>>> writes;  // nullopt: delete
};

std::string FormatIntent(const Intent& intent);
bool ParseIntent(absl::string_view text, Intent* intent);

// Writes one line to the parent with a single write(2). If the parent is gone, exits.
void WriteLine(int fd, const std::string& line);

}  // namespace shardtx::crashtest
