// `backup DIR DEST`: Database::Backup from the command line (Database::Open takes the lock: a
// database another process has open cannot be backed up from here; its host calls
// Database::Backup itself). `restore BACKUP DIR`: a checked file copy of a backup, see below.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "shardtx/env.h"
#include "tools/shardtx/cli.h"
#include "tools/shardtx/commands.h"

namespace shardtx::cli {
namespace {

namespace fs = std::filesystem;

// Syncs the file at `path` through the Env (the library's file-system seam).
absl::Status SyncFile(Env* env, const std::string& path) {
  auto f = env->OpenFile(path, Env::OpenMode::kRead);
  if (!f.ok()) return f.status();
  return (*f)->Sync();
}

// Copies `from` to `dir`/`name` and syncs it (the file, then the directory).
absl::Status CopyFileDurably(Env* env, const std::string& from, const std::string& dir,
                             const std::string& name) {
  const std::string tmp = dir + "/" + name + ".tmp";
  std::error_code ec;
  if (!fs::copy_file(from, tmp, fs::copy_options::overwrite_existing, ec)) {
    return absl::InternalError(absl::StrCat("copy ", from, ": ", ec.message()));
  }
  if (absl::Status s = SyncFile(env, tmp); !s.ok()) return s;
  if (absl::Status s = env->RenameFile(tmp, dir + "/" + name); !s.ok()) return s;
  return env->SyncDir(dir);
}

// The backup's files, all but its manifest and lock files, into the new directory `to`, synced.
absl::Status CopyTree(Env* env, const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::create_directory(to, ec);
  if (ec) return absl::InternalError(absl::StrCat("mkdir ", to, ": ", ec.message()));
  for (auto it = fs::recursive_directory_iterator(from, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::path rel = fs::relative(it->path(), from);
    const std::string name = rel.filename().string();
    const std::string dest = (fs::path(to) / rel).string();
    if (it->is_directory()) {
      fs::create_directory(dest, ec);
    } else if (name != "SHARDTX" && name != "LOCK" && name != "lock.mdb") {
      fs::copy_file(it->path(), dest, ec);
      if (!ec) {
        if (absl::Status s = SyncFile(env, dest); !s.ok()) return s;
      }
    }
  }
  if (ec) return absl::InternalError(absl::StrCat("copy ", from, ": ", ec.message()));
  for (auto it = fs::recursive_directory_iterator(to, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory()) {
      if (absl::Status s = env->SyncDir(it->path().string()); !s.ok()) return s;
    }
  }
  return env->SyncDir(to);
}

absl::Status RenameDurably(Env* env, const std::string& from, const std::string& to) {
  if (absl::Status s = env->RenameFile(from, to); !s.ok()) return s;
  return env->SyncDir(fs::path(to).parent_path().string());
}

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

// Restoring copies the backup's files (it stays untouched: it is never opened) after checking
// it as `check` does, into `DIR.restore-partial-<pid>`, syncs them, renames the directory to
// DIR and only then writes the manifest, so that a restore killed at any point leaves no
// directory that opens as a database.
int RunRestore(const Args& args) {
  auto pos = ParseArgs(args, {});
  if (!pos.ok()) return Fail(pos.status());
  if (pos->size() != 2) return Fail("usage: shardtx restore BACKUP DIR");
  const std::string backup = (*pos)[0], dir = (*pos)[1];
  auto info = InspectDb(backup);
  if (!info.ok()) return Fail(info.status());
  std::error_code ec;
  if (fs::exists(dir, ec)) return Fail(absl::StrCat("restore destination ", dir, " exists"));
  const fs::path target = fs::absolute(dir).lexically_normal();
  const fs::path parent = target.parent_path();
  if (!fs::is_directory(parent, ec)) {
    return Fail(
        absl::StrCat("the directory to hold ", dir, ", ", parent.string(), ", does not exist"));
  }
  // The same verdict `check` gives, printed; only a clean backup is restored.
  if (const int checked = RunCheck({backup}); checked != kExitOk) {
    std::fprintf(stderr, "shardtx: %s is not a clean backup; nothing restored\n", backup.c_str());
    return checked;
  }
  const fs::path partial =
      parent / absl::StrCat(target.filename().string(), ".restore-partial-", ::getpid());
  Env* env = Env::Default();
  absl::Status s = CopyTree(env, backup, partial.string());
  if (s.ok()) s = RenameDurably(env, partial.string(), target.string());
  if (s.ok()) s = CopyFileDurably(env, backup + "/SHARDTX", target.string(), "SHARDTX");
  if (!s.ok()) {
    fs::remove_all(partial, ec);
    if (!fs::exists(target / "SHARDTX", ec)) fs::remove_all(target, ec);
    std::fprintf(stderr, "shardtx: restore failed (nothing left at %s): %s\n", dir.c_str(),
                 std::string(s.message()).c_str());
    return kExitProblem;
  }
  std::printf("restored %s to %s\n", backup.c_str(), dir.c_str());
  return kExitOk;
}

}  // namespace shardtx::cli
