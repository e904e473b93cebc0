// `backup DIR DEST`: Database::Backup from the command line (Database::Open takes the lock: a
// database another process has open cannot be backed up from here; its host calls
// Database::Backup itself). `restore BACKUP DIR`: a checked file copy of a backup, see below.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "tools/shardtx/cli.h"
#include "tools/shardtx/commands.h"

namespace shardtx::cli {
namespace {

namespace fs = std::filesystem;

absl::Status Errno(const std::string& what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

absl::Status SyncPath(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return Errno("open", path);
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok ? absl::OkStatus() : Errno("fsync", path);
}

// Copies `from` to `dir`/`name` and syncs it (the file, then the directory).
absl::Status CopyFileDurably(const std::string& from, const std::string& dir,
                             const std::string& name) {
  const std::string tmp = dir + "/" + name + ".tmp";
  std::error_code ec;
  if (!fs::copy_file(from, tmp, fs::copy_options::overwrite_existing, ec)) {
    return absl::InternalError(absl::StrCat("copy ", from, ": ", ec.message()));
  }
  if (absl::Status s = SyncPath(tmp, false); !s.ok()) return s;
  fs::rename(tmp, dir + "/" + name, ec);
  if (ec) return absl::InternalError(absl::StrCat("rename ", tmp, ": ", ec.message()));
  return SyncPath(dir, true);
}

// The backup's files, all but its manifest and lock files, into the new directory `to`, synced.
absl::Status CopyTree(const std::string& from, const std::string& to) {
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
        if (absl::Status s = SyncPath(dest, false); !s.ok()) return s;
      }
    }
  }
  if (ec) return absl::InternalError(absl::StrCat("copy ", from, ": ", ec.message()));
  for (auto it = fs::recursive_directory_iterator(to, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory()) {
      if (absl::Status s = SyncPath(it->path().string(), true); !s.ok()) return s;
    }
  }
  return SyncPath(to, true);
}

absl::Status RenameDurably(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec) return absl::InternalError(absl::StrCat("rename ", from, ": ", ec.message()));
  return SyncPath(fs::path(to).parent_path().string(), true);
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
  absl::Status s = CopyTree(backup, partial.string());
  if (s.ok()) s = RenameDurably(partial.string(), target.string());
  if (s.ok()) s = CopyFileDurably(backup + "/SHARDTX", target.string(), "SHARDTX");
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
