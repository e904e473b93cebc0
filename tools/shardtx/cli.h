// What the shardtx tool's subcommands share: exit codes, per-subcommand flag parsing, printable
// and JSON renderings of bytes, the progress bar, and the database directory as the tool sees
// it before (or without) opening it: its manifest and whether another process holds its lock.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "shardtx/database.h"
#include "shardtx/options.h"
#include "txn/db_directory.h"

// Every flag of every subcommand (cli.cc); each subcommand names the ones it accepts.
ABSL_DECLARE_FLAG(bool, json);
ABSL_DECLARE_FLAG(int32_t, shard);
ABSL_DECLARE_FLAG(std::string, from);
ABSL_DECLARE_FLAG(std::string, to);
ABSL_DECLARE_FLAG(uint64_t, limit);
ABSL_DECLARE_FLAG(uint64_t, max_keys);
ABSL_DECLARE_FLAG(bool, hex);
ABSL_DECLARE_FLAG(uint64_t, batch_keys);
ABSL_DECLARE_FLAG(uint64_t, batch_bytes);
ABSL_DECLARE_FLAG(bool, create);
ABSL_DECLARE_FLAG(std::string, log_layout);
ABSL_DECLARE_FLAG(uint32_t, shards);

namespace shardtx::cli {

// The tool's exit status (documented in --help and README).
enum ExitCode : int {
  kExitOk = 0,         // success; the verdict is clean (a torn WAL tail included)
  kExitProblem = 1,    // the command ran and found damage or a problem
  kExitCannotRun = 2,  // usage error, or the command could not run (see Fail)
};

// Parses a subcommand's arguments: positional ones are returned, flags (--name=value,
// --name value, --name / --noname for booleans) are set, and only those named in `allowed`
// are accepted. kInvalidArgument names the offending argument.
absl::StatusOr<std::vector<std::string>> ParseArgs(const std::vector<std::string>& args,
                                                   absl::Span<const char* const> allowed);

struct DbInfo;
// The start of a command whose one argument is DIR: ParseArgs, then InspectDb. kInvalidArgument
// with `usage` when there is not exactly one positional argument.
absl::StatusOr<DbInfo> ParseDirCommand(const std::vector<std::string>& args,
                                       absl::Span<const char* const> allowed,
                                       absl::string_view usage);

// Prints "shardtx: <message>" to stderr and returns kExitCannotRun.
int Fail(const absl::Status& status);
int Fail(absl::string_view message);

// Bytes as printable ASCII: bytes 0x20-0x7e except '\' and '"' as they are, others as \xNN
// (\\ and \" for those two). At most max_bytes of the input are rendered (0: all); a longer
// one ends in "...(N bytes)".
std::string Printable(absl::string_view bytes, size_t max_bytes = 0);
// A JSON string literal of already printable text (see Printable).
std::string JsonString(absl::string_view text);

// stdout written in 64 KiB blocks, not line by line. Flush returns false once a write failed.
class StdoutBuffer {
 public:
  ~StdoutBuffer() { Flush(); }
  void Line(absl::string_view s);
  bool Flush();

 private:
  std::string buf_;
};

// A one-line progress bar on stderr, drawn only when stderr is a terminal, at most ten times a
// second, and erased when done or destroyed. With total 0 it shows a count, not a fraction.
class Progress {
 public:
  Progress(std::string label, uint64_t total);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void Set(uint64_t done);
  void SetLabel(std::string label);
  void Done();

 private:
  void Draw();
  const bool enabled_;
  std::string label_;
  uint64_t total_;
  uint64_t done_ = 0;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_draw_;
};

// A database directory, read without writing anything (not even its LOCK).
struct DbInfo {
  std::string path;
  uint32_t format = 0;
  uint32_t shards = 0;
  std::string partitioning;  // as recorded: "hash", "range <hex split points>", "explicit"
  // The shared log layout ("log shared", format 3): one log for all shards in LogDir(), each
  // record's stream its shard; shards have no WalDir then.
  bool shared_log = false;
  std::string ShardDir(uint32_t shard) const;
  std::string WalDir(uint32_t shard) const { return ShardDir(shard) + "/wal"; }
  std::string LmdbDir(uint32_t shard) const { return ShardDir(shard) + "/lmdb"; }
  std::string LogDir() const { return path + "/log"; }
  // A replicated database's Raft state of shard `shard` (libraft's log, snapshots, metadata).
  std::string RaftDir(uint32_t shard) const;
};

// The newest manifest format this tool reads: the library's (the shared log layout's).
inline constexpr uint32_t kManifestFormat = txn::DbDirectory::kSharedLogFormatVersion;
// The first format whose LMDB values carry checksums (check needs them).
inline constexpr uint32_t kChecksummedFormat = txn::DbDirectory::kFormatVersion;

// Reads dir's manifest. kNotFound: no such directory; kFailedPrecondition: not a shardtx
// database (no SHARDTX file), or a newer format; kDataLoss: a corrupt manifest (format 3
// without "log shared", or that line in an older format).
absl::StatusOr<DbInfo> InspectDb(const std::string& dir);

// The pid recorded in dir/LOCK if another process (or this one) holds the lock, as the
// kernel's lock table (/proc/locks) tells; nullopt if nobody holds it. Never takes the lock.
std::optional<std::string> LockHolder(const std::string& dir);

// Opens the database like a host would (Database::Open, which takes the lock): options as its
// manifest records them, never creating anything. `tune` adjusts the options first. Errors of
// InspectDb and Database::Open (kFailedPrecondition "already open by pid N" among them).
absl::StatusOr<std::unique_ptr<Database>> OpenDatabase(const std::string& dir,
                                                       void (*tune)(Options*) = nullptr);
// The Options that open `info` (partitioning as recorded). kExplicit gets a placeholder map
// that sends every key to shard 0: enough for what does not route keys (iteration, prepared
// transactions, checkpoints), wrong for writes (load refuses such a database).
absl::StatusOr<Options> OptionsFor(const DbInfo& info);

}  // namespace shardtx::cli
