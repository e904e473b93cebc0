#include "txn/db_directory.h"

#include <algorithm>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "txn/partitioner.h"
#include "util/status_macros.h"

namespace shardtx::txn {
namespace {

constexpr char kManifest[] = "SHARDTX";
constexpr char kLockFile[] = "LOCK";
constexpr uint32_t kFormatVersion = DbDirectory::kFormatVersion;
constexpr uint32_t kSharedLogFormatVersion = DbDirectory::kSharedLogFormatVersion;

// The format this build writes for a database of the given layout.
uint32_t CurrentFormat(bool shared_log) {
  return shared_log ? kSharedLogFormatVersion : kFormatVersion;
}

std::string Manifest(uint32_t shards, const std::string& partitioning, bool shared_log) {
  return absl::StrCat("format ", CurrentFormat(shared_log), "\nshards ", shards, "\npartitioning ",
                      partitioning, "\n", shared_log ? "log shared\n" : "");
}

}  // namespace

absl::StatusOr<std::string> ReadSmallFile(Env* env, const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<File> f, env->OpenFile(path, Env::OpenMode::kRead));
  ASSIGN_OR_RETURN(uint64_t size, f->Size());
  if (size > 4096) return absl::DataLossError(absl::StrCat(path, ": unexpectedly large"));
  std::string data(size, '\0');
  ASSIGN_OR_RETURN(size_t got, f->Read(0, size, data.data()));
  data.resize(got);
  return data;
}

// Writes a small file atomically: temp file, fsync, rename, fsync of the directory.
absl::Status WriteFileAtomically(Env* env, const std::string& dir, const std::string& name,
                                 const std::string& data) {
  const std::string tmp = dir + "/" + name + ".tmp";
  // A temp file left by a crash may be longer than `data` (kCreate does not truncate).
  if (env->FileExists(tmp).ok()) RETURN_IF_ERROR(env->RemoveFile(tmp));
  {
    ASSIGN_OR_RETURN(std::unique_ptr<File> f, env->OpenFile(tmp, Env::OpenMode::kCreate));
    RETURN_IF_ERROR(f->Write(0, data));
    RETURN_IF_ERROR(f->Sync());
  }
  RETURN_IF_ERROR(env->RenameFile(tmp, dir + "/" + name));
  return env->SyncDir(dir);
}

absl::StatusOr<std::unique_ptr<DbDirectory>> DbDirectory::Open(Env* env, const Options& options) {
  const std::string& path = options.path;
  absl::Status exists = env->FileExists(path);
  if (absl::IsNotFound(exists)) {
    if (!options.create_if_missing) {
      return absl::NotFoundError(absl::StrCat("database ", path, " does not exist"));
    }
    // Options that cannot describe the new database create nothing.
    RETURN_IF_ERROR(
        Partitioner::Validate(options, options.num_shards == 0 ? 1 : options.num_shards));
  } else if (!exists.ok()) {
    return exists;
  }
  // The directory's own entry must be durable before anything in it counts.
  absl::Status mk = CreateDirDurably(env, path);
  if (!mk.ok()) {
    return absl::Status(mk.code(),
                        absl::StrCat("cannot create database directory: ", mk.message()));
  }

  ASSIGN_OR_RETURN(std::vector<std::string> names, env->ListDir(path));
  const bool has_manifest = std::find(names.begin(), names.end(), kManifest) != names.end();
  if (!has_manifest && !options.create_if_missing) {
    // An existing directory without a manifest holds no database (an empty one included):
    // opening it must not create one.
    return absl::NotFoundError(absl::StrCat("database ", path, " does not exist (", path,
                                            " holds no ", kManifest, " manifest)"));
  }
  if (!has_manifest) {
    for (const std::string& n : names) {
      if (n != kLockFile && n != std::string(kManifest) + ".tmp") {
        return absl::FailedPreconditionError(
            absl::StrCat(path, " holds something other than a shardtx database (found '", n, "')"));
      }
    }
  }
  // The lock comes before anything is written, so a second opener changes nothing.
  auto lock = env->LockFile(path + "/" + kLockFile);
  if (!lock.ok()) {
    if (absl::IsPermissionDenied(lock.status())) {
      return absl::PermissionDeniedError(
          absl::StrCat("database directory ", path, " is not writable: ", lock.status().message()));
    }
    return lock.status();
  }

  uint32_t shards = options.num_shards == 0 ? 1 : options.num_shards;
  bool shared_log = options.log_layout == Options::LogLayout::kShared;
  uint32_t format = CurrentFormat(shared_log);
  if (has_manifest) {
    ASSIGN_OR_RETURN(std::string m, ReadSmallFile(env, path + "/" + kManifest));
    uint32_t version = 0, recorded = 0;
    std::string partitioning = "hash";
    std::string log;
    for (absl::string_view line : absl::StrSplit(m, '\n', absl::SkipEmpty())) {
      std::vector<absl::string_view> kv = absl::StrSplit(line, absl::MaxSplits(' ', 1));
      if (kv.size() != 2) continue;
      if (kv[0] == "format") (void)absl::SimpleAtoi(kv[1], &version);
      if (kv[0] == "shards") (void)absl::SimpleAtoi(kv[1], &recorded);
      if (kv[0] == "partitioning") partitioning = std::string(kv[1]);
      if (kv[0] == "log") log = std::string(kv[1]);
    }
    if (version == 0 || recorded == 0 || recorded > kMaxShards) {
      return absl::DataLossError(absl::StrCat(path, "/", kManifest, " is corrupt"));
    }
    if (version > kSharedLogFormatVersion) {
      return absl::FailedPreconditionError(absl::StrCat(path, " has format version ", version,
                                                        ", newer than this build's ",
                                                        kSharedLogFormatVersion));
    }
    // Format 3 is the shared log layout and says so; no older format has a log line.
    if ((version == kSharedLogFormatVersion) != (log == "shared") ||
        (!log.empty() && log != "shared")) {
      return absl::DataLossError(absl::StrCat(path, "/", kManifest, " is corrupt: format ", version,
                                              " with log layout '", log, "'"));
    }
    shared_log = log == "shared";
    if (options.num_shards != 0 && options.num_shards != recorded) {
      return absl::InvalidArgumentError(absl::StrCat(path, " was created with ", recorded,
                                                     " shards; Options.num_shards is ",
                                                     options.num_shards));
    }
    shards = recorded;
    format = version;
    if (Partitioner::Describe(options) != partitioning) {
      return absl::InvalidArgumentError(absl::StrCat(path, " was created with partitioning '",
                                                     partitioning, "'; the options say '",
                                                     Partitioner::Describe(options), "'"));
    }
    RETURN_IF_ERROR(Partitioner::Validate(options, shards));
  } else {
    RETURN_IF_ERROR(Partitioner::Validate(options, shards));
    RETURN_IF_ERROR(WriteFileAtomically(
        env, path, kManifest, Manifest(shards, Partitioner::Describe(options), shared_log)));
  }
  return std::unique_ptr<DbDirectory>(new DbDirectory(
      env, path, shards, format, Partitioner::Describe(options), shared_log, std::move(*lock)));
}

absl::Status DbDirectory::RecordCurrentFormat() {
  const uint32_t current = CurrentFormat(shared_log_);
  if (format_ == current) return absl::OkStatus();
  RETURN_IF_ERROR(WriteFileAtomically(env_, path_, kManifest,
                                      Manifest(num_shards_, partitioning_, shared_log_)));
  format_ = current;
  return absl::OkStatus();
}

absl::Status DbDirectory::CopyManifestTo(Env* env, const std::string& dir) const {
  ASSIGN_OR_RETURN(std::string m, ReadSmallFile(env, path_ + "/" + kManifest));
  return WriteFileAtomically(env, dir, kManifest, m);
}

std::string DbDirectory::ShardDir(uint32_t i) const {
  return absl::StrFormat("%s/shard-%03d", path_, i);
}

std::string DbDirectory::RaftDir(uint32_t i) const {
  return absl::StrFormat("%s/raft-%03d", path_, i);
}

}  // namespace shardtx::txn
