// `prepared list|commit|rollback` and `checkpoint`: named two-phase commit and checkpoints
// through the database as a host opens it (Database::Open takes the lock: if another process
// has the database, these fail with its message and exit 2).
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tools/shardtx/cli.h"
#include "tools/shardtx/commands.h"

namespace shardtx::cli {
namespace {

// Opens DIR, runs `op`, closes. A database that does not open is kExitCannotRun; an operation
// that fails is kExitProblem.
template <typename Op>
int WithDatabase(const std::string& dir, Op op) {
  auto db = OpenDatabase(dir);
  if (!db.ok()) return Fail(db.status());
  absl::Status s = op(db->get());
  absl::Status closed = (*db)->Close();
  if (!s.ok()) {
    std::fprintf(stderr, "shardtx: %s\n", std::string(s.message()).c_str());
    return kExitProblem;
  }
  if (!closed.ok()) return Fail(closed);
  return kExitOk;
}

int Resolve(const Args& args, bool commit) {
  auto pos = ParseArgs(args, {});
  if (!pos.ok()) return Fail(pos.status());
  if (pos->size() != 2) {
    return Fail(
        absl::StrCat("usage: shardtx prepared ", commit ? "commit" : "rollback", " DIR NAME"));
  }
  const std::string name = (*pos)[1];
  return WithDatabase((*pos)[0], [&](Database* db) {
    absl::Status s = commit ? db->CommitPrepared(name) : db->RollbackPrepared(name);
    if (s.ok()) {
      std::printf("%s \"%s\"\n", commit ? "committed" : "rolled back", Printable(name).c_str());
    }
    return s;
  });
}

}  // namespace

int RunPreparedList(const Args& args) {
  auto pos = ParseArgs(args, {"json"});
  if (!pos.ok()) return Fail(pos.status());
  if (pos->size() != 1) return Fail("usage: shardtx prepared list DIR [--json]");
  const bool json = absl::GetFlag(FLAGS_json);
  return WithDatabase((*pos)[0], [&](Database* db) {
    auto names = db->ListPrepared();
    if (!names.ok()) return names.status();
    std::vector<std::string> shown;
    for (const std::string& n : *names) {
      shown.push_back(json ? JsonString(Printable(n)) : Printable(n));
    }
    if (json) {
      std::printf("{\"prepared\":[%s]}\n", absl::StrJoin(shown, ",").c_str());
    } else {
      for (const std::string& n : shown) std::printf("%s\n", n.c_str());
    }
    return absl::OkStatus();
  });
}

int RunPreparedCommit(const Args& args) { return Resolve(args, true); }
int RunPreparedRollback(const Args& args) { return Resolve(args, false); }

int RunCheckpoint(const Args& args) {
  auto pos = ParseArgs(args, {});
  if (!pos.ok()) return Fail(pos.status());
  if (pos->size() != 1) return Fail("usage: shardtx checkpoint DIR");
  return WithDatabase((*pos)[0], [](Database* db) {
    absl::Status s = db->Checkpoint();
    if (s.ok()) std::printf("checkpointed\n");
    return s;
  });
}

}  // namespace shardtx::cli
