#include "txn/backup.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <numeric>
#include <set>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "txn/coordinator.h"
#include "txn/database_impl.h"
#include "util/kill_point.h"
#include "util/status_macros.h"
#include "wal/log_copy.h"
#include "wal/writer.h"

namespace shardtx::txn {

SHARDTX_DEFINE_KILL_POINT(backup_after_store_copy, "backup.after_store_copy");
SHARDTX_DEFINE_KILL_POINT(backup_after_cut, "backup.after_cut");
SHARDTX_DEFINE_KILL_POINT(backup_before_manifest, "backup.before_manifest");
SHARDTX_DEFINE_KILL_POINT(backup_before_rename, "backup.before_rename");

bool BackupPins::Begin(uint32_t shards) {
  MutexLock l(&mu_);
  if (running_) return false;
  running_ = true;
  pins_.assign(shards, 1);
  return true;
}

void BackupPins::Set(uint32_t shard, engine::Lsn lsn) {
  MutexLock l(&mu_);
  if (running_ && shard < pins_.size()) pins_[shard] = lsn;
}

void BackupPins::End() {
  MutexLock l(&mu_);
  running_ = false;
  pins_.clear();
}

engine::Lsn BackupPins::Fold(uint32_t shard, engine::Lsn pinned) {
  MutexLock l(&mu_);
  if (!running_ || shard >= pins_.size() || pins_[shard] == 0) return pinned;
  return pinned == 0 ? pins_[shard] : std::min(pinned, pins_[shard]);
}

namespace {

constexpr char kPartialTag[] = ".partial-";
// In every backup's directory from its start ("backup of <path>"): with no manifest beside it,
// it marks the debris of an interrupted backup, which a later backup to the same destination
// may remove.
constexpr char kBackupNote[] = "BACKUP";
constexpr char kManifest[] = "SHARDTX";

// The directories this process's running backups are writing: partial ones, and dest between
// the rename and the manifest.
struct InFlight {
  Mutex mu;
  std::set<std::string> paths ABSL_GUARDED_BY(mu);
  std::atomic<uint64_t> next{0};
};
InFlight& Partials() {
  static InFlight* p = new InFlight;
  return *p;
}

// The destination without trailing slashes, its parent directory and its last component.
struct Target {
  std::string dest, parent, base;
};

std::string Join(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

absl::StatusOr<Target> ParseDest(const std::string& dest) {
  std::string d = dest;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  Target t;
  const size_t slash = d.rfind('/');
  t.dest = d;
  t.parent = slash == std::string::npos ? "." : slash == 0 ? "/" : d.substr(0, slash);
  t.base = slash == std::string::npos ? d : d.substr(slash + 1);
  if (t.base.empty() || t.base == "." || t.base == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat("backup destination '", dest, "' does not name a new directory"));
  }
  return t;
}

// Whether `inner` is `outer` or lies inside it, as far as the file system can tell now.
bool Inside(const std::string& inner, const std::string& outer) {
  std::error_code e1, e2;
  const std::filesystem::path i = std::filesystem::weakly_canonical(inner, e1);
  const std::filesystem::path o = std::filesystem::weakly_canonical(outer, e2);
  if (e1 || e2) return false;
  const std::filesystem::path rel = i.lexically_relative(o);
  return !rel.empty() && *rel.begin() != "..";
}

// Whether process `pid`, which wrote the backup directory `path`, is done with it: it no longer
// exists, or it is this process and none of its running backups owns `path`.
bool WriterGone(int pid, const std::string& path) {
  if (pid == ::getpid()) {
    InFlight& f = Partials();
    MutexLock l(&f.mu);
    return f.paths.count(path) == 0;
  }
  return ::kill(pid, 0) != 0 && errno == ESRCH;
}

// Whether `dest` is what a backup killed after its rename left: its note, no manifest, and a
// writer that is gone.
bool InterruptedBackup(Env* env, const std::string& dest) {
  if (!absl::IsNotFound(env->FileExists(Join(dest, kManifest)))) return false;
  auto note = env->OpenFile(Join(dest, kBackupNote), Env::OpenMode::kRead);
  if (!note.ok()) return false;
  char buf[4096];
  auto got = (*note)->Read(0, sizeof(buf), buf);
  if (!got.ok()) return false;
  absl::string_view text(buf, *got);
  const size_t at = text.rfind(" by pid ");
  int pid = 0;
  return at != absl::string_view::npos &&
         absl::SimpleAtoi(absl::StripSuffix(text.substr(at + 8), "\n"), &pid) && pid > 0 &&
         WriterGone(pid, dest);
}

// Removes the partial directories `<base>.partial-<pid>-<n>` that backups interrupted by a crash
// left next to `t.dest`: those of processes that no longer exist, and this process's own that
// no backup is writing. Another live process's are left alone (it may be writing them; a
// recycled pid keeps a stale one until that process is gone).
void RemoveStalePartials(Env* env, const Target& t) {
  auto names = env->ListDir(t.parent);
  if (!names.ok()) return;
  const std::string prefix = t.base + kPartialTag;
  for (const std::string& name : *names) {
    if (!absl::StartsWith(name, prefix)) continue;
    const std::string rest = name.substr(prefix.size());
    int pid = 0;
    if (!absl::SimpleAtoi(rest.substr(0, rest.find('-')), &pid) || pid <= 0) continue;
    const std::string path = Join(t.parent, name);
    if (!WriterGone(pid, path)) continue;
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
}

// Steps 1-4 (see backup.h) into the new directory `partial`: everything but the manifest.
absl::Status CopyDatabase(DatabaseImpl* db, const std::string& partial) {
  Env* env = db->env();
  const uint32_t n = db->num_shards();
  RETURN_IF_ERROR(CreateDirDurably(env, partial));
  {
    ASSIGN_OR_RETURN(std::unique_ptr<File> note,
                     env->OpenFile(Join(partial, kBackupNote), Env::OpenMode::kCreate));
    RETURN_IF_ERROR(note->Write(
        0, absl::StrCat("backup of ", db->options().path, " by pid ", ::getpid(), "\n")));
    RETURN_IF_ERROR(note->Sync());
  }
  // 1. Pins. Every log was pinned whole by BackupPins::Begin, so a checkpoint that read its pin
  // before then has published its applied LSN by now (it does so before asking): what it may
  // still truncate lies below applied_lsn() + 1 and below what 2PC pinned then (no LSN is
  // pinned that was not pinned then or appended since).
  std::vector<engine::Lsn> from(n);
  for (uint32_t s = 0; s < n; ++s) {
    from[s] = db->shard(s)->applied_lsn() + 1;
    if (engine::Lsn p = db->TwoPhasePinnedLsn(s); p != 0) from[s] = std::min(from[s], p);
    db->backup_pins().Set(s, from[s]);
  }
  // 2. The LMDB stores. Each copy's applied LSN is at least the one read above, and its data
  // comes from records appended before the copy began (a checkpoint writes only what it froze).
  const std::string& path = db->options().path;
  std::vector<std::string> dirs(n);
  std::vector<engine::Lsn> applied(n);
  for (uint32_t s = 0; s < n; ++s) {
    dirs[s] = partial + db->directory().ShardDir(s).substr(path.size());
    RETURN_IF_ERROR(env->CreateDir(dirs[s]));
    ASSIGN_OR_RETURN(applied[s], db->shard(s)->CopyStoreTo(dirs[s]));
    SHARDTX_KILL_POINT("backup.after_store_copy");
  }
  // 3. The cut, after every store copy: one instant for all shards (every record is appended
  // under its shard's commit lock; a prepare on all its shards under all their locks at once).
  std::vector<engine::Lsn> cut(n);
  {
    std::vector<uint32_t> all(n);
    std::iota(all.begin(), all.end(), 0);
    ShardLocks locks(db, all);
    for (uint32_t s = 0; s < n; ++s) {
      db->shard(s)->commit_mu()->AssertHeld();
      cut[s] = db->shard(s)->last_lsn_locked();
    }
  }
  SHARDTX_KILL_POINT("backup.after_cut");
  for (uint32_t s = 0; s < n; ++s) {
    if (applied[s] > cut[s] || from[s] > applied[s] + 1) {
      return absl::InternalError(absl::StrCat("backup of shard ", s, ": store copy at LSN ",
                                              applied[s], " does not lie in [", from[s] - 1, ", ",
                                              cut[s], "]"));
    }
  }
  if (wal::WalWriter* log = db->shared_log(); log != nullptr) {
    // 4. (One log shared by the shards.) Once durable through the last cut, copied once, from
    // the oldest record any shard still needs (at or below every pin: the pins keep each
    // shard's records from its pin on, Retain keeps them until the copy is done) through the
    // last cut. Each shard's cut is its last record at the cut's instant, and every record
    // after that instant has a larger LSN than every cut: the records of the copy above a
    // shard's cut are other shards' records from before the cut. Retain is asked for at most
    // the log's next LSN, not the last cut: when no shard needs a record (every store copy
    // holds all its shard has), the segments holding the cuts may be gone (every shard
    // checkpointed past them and they were freed, as after a Close and reopen), and the copy
    // is the next LSN alone.
    const engine::Lsn last = *std::max_element(cut.begin(), cut.end());
    if (last != 0) RETURN_IF_ERROR(log->WaitDurable(last));
    const engine::Lsn oldest = log->Retain(last + 1);
    absl::Cleanup release = [log, oldest] { log->Release(oldest); };
    for (uint32_t s = 0; s < n; ++s) RETURN_IF_ERROR(env->SyncDir(dirs[s]));
    RETURN_IF_ERROR(
        wal::CopyLog(env, db->directory().LogDir(), Join(partial, "log"), oldest, last));
    return env->SyncDir(partial);
  }
  // 4. Each log from its pin through its cut, once durable there.
  for (uint32_t s = 0; s < n; ++s) {
    if (cut[s] != 0) RETURN_IF_ERROR(db->shard(s)->WaitDurable(cut[s]));
  }
  for (uint32_t s = 0; s < n; ++s) {
    RETURN_IF_ERROR(db->shard(s)->CopyWalTo(dirs[s], from[s], cut[s]));
    RETURN_IF_ERROR(env->SyncDir(dirs[s]));
  }
  return env->SyncDir(partial);
}

}  // namespace

absl::Status RunBackup(DatabaseImpl* db, const std::string& dest) {
  Env* env = db->env();
  ASSIGN_OR_RETURN(const Target t, ParseDest(dest));
  bool interrupted = false;  // dest holds what a killed backup left: removed below
  if (absl::Status e = env->FileExists(t.dest); e.ok()) {
    interrupted = InterruptedBackup(env, t.dest);
    if (!interrupted) {
      return absl::AlreadyExistsError(absl::StrCat("backup destination ", t.dest, " exists"));
    }
  } else if (!absl::IsNotFound(e)) {
    return e;
  }
  if (absl::Status e = env->FileExists(t.parent); !e.ok()) {
    if (!absl::IsNotFound(e)) return e;
    return absl::NotFoundError(
        absl::StrCat("the directory to hold backup ", t.dest, ", ", t.parent, ", does not exist"));
  }
  if (Inside(t.dest, db->options().path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "backup destination ", t.dest, " lies inside the database ", db->options().path));
  }
  if (!db->backup_pins().Begin(db->num_shards())) {
    return absl::FailedPreconditionError(
        absl::StrCat("a backup of ", db->options().path, " is already running"));
  }
  absl::Cleanup end_pins = [db] { db->backup_pins().End(); };
  if (interrupted) {
    std::error_code ec;
    std::filesystem::remove_all(t.dest, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("removing the interrupted backup at ", t.dest, ": ", ec.message()));
    }
  }
  RemoveStalePartials(env, t);

  InFlight& in_flight = Partials();
  const std::string partial = Join(
      t.parent, absl::StrCat(t.base, kPartialTag, ::getpid(), "-", in_flight.next.fetch_add(1)));
  {
    MutexLock l(&in_flight.mu);
    in_flight.paths.insert(partial);
  }
  absl::Cleanup forget = [&] {
    MutexLock l(&in_flight.mu);
    in_flight.paths.erase(partial);
    in_flight.paths.erase(t.dest);
  };
  // 5. Rename, then the manifest: until it is written, Database::Open refuses the directory
  // (under either name), so a crash at any point leaves nothing that opens as a database.
  absl::Status s = CopyDatabase(db, partial);
  bool renamed = false;
  if (s.ok()) {
    SHARDTX_KILL_POINT("backup.before_rename");
    {
      MutexLock l(&in_flight.mu);
      in_flight.paths.insert(t.dest);  // ours until the manifest is written
    }
    s = env->RenameFile(partial, t.dest);
    renamed = s.ok();
  }
  if (s.ok()) s = env->SyncDir(t.parent);
  if (s.ok()) {
    SHARDTX_KILL_POINT("backup.before_manifest");
    s = db->directory().CopyManifestTo(env, t.dest);
  }
  if (!s.ok()) {
    std::error_code ec;
    std::filesystem::remove_all(renamed ? t.dest : partial, ec);
  }
  return s;
}

}  // namespace shardtx::txn
