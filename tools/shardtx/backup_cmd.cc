// `backup DIR DEST` and `restore BACKUP DIR`: Database::Backup from the command line. Both open
// a database the way a host does (Database::Open takes its lock: a database another process
// has open cannot be backed up from here; the host calls Database::Backup itself).
#include <chrono>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "tools/shardtx/cli.h"
#include "tools/shardtx/commands.h"

namespace shardtx::cli {
namespace {

// Copies the database at `from` into the new directory `to` with Database::Backup. `what`
// names the operation in messages.
int Copy(const std::string& from, const std::string& to, const char* what) {
  auto db = OpenDatabase(from);
  if (!db.ok()) return Fail(db.status());
  const auto start = std::chrono::steady_clock::now();
  absl::Status s = (*db)->Backup(to);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  absl::Status closed = (*db)->Close();
  if (absl::IsAlreadyExists(s) || absl::IsInvalidArgument(s) || absl::IsNotFound(s)) {
    return Fail(s);  // nothing was written: bad input
  }
  if (!s.ok()) {
    std::fprintf(stderr, "shardtx: %s failed (nothing left at %s): %s\n", what, to.c_str(),
                 std::string(s.message()).c_str());
    return kExitProblem;
  }
  if (!closed.ok()) return Fail(closed);
  std::printf("%s %s to %s in %.2f s\n", what, from.c_str(), to.c_str(), seconds);
  return kExitOk;
}

}  // namespace

int RunBackup(const Args& args) {
  auto pos = ParseArgs(args, {});
  if (!pos.ok()) return Fail(pos.status());
  if (pos->size() != 2) return Fail("usage: shardtx backup DIR DEST");
  return Copy((*pos)[0], (*pos)[1], "backed up");
}

// A backup is an ordinary database, so restoring one is backing it up again: consistent,
// crash-safe (nothing at DIR opens until the copy is complete) and checked on the way, since
// the backup is opened (recovered) like any database first.
int RunRestore(const Args& args) {
  auto pos = ParseArgs(args, {});
  if (!pos.ok()) return Fail(pos.status());
  if (pos->size() != 2) return Fail("usage: shardtx restore BACKUP DIR");
  return Copy((*pos)[0], (*pos)[1], "restored");
}

}  // namespace shardtx::cli
