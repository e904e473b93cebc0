// shardtx: look inside and operate on a shardtx database directory. The subcommand table and
// the help; each subcommand lives in its own file (commands.h).
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tools/shardtx/cli.h"
#include "tools/shardtx/commands.h"

namespace {

using shardtx::cli::Args;

struct Subcommand {
  const char* name;  // one or two words
  const char* synopsis;
  int (*run)(const Args&);
};

constexpr Subcommand kSubcommands[] = {
    {"stat", "stat DIR [--json]        shards, sizes, LSNs, checkpoint age, prepared (lock-free)",
     shardtx::cli::RunStat},
    {"wal dump",
     "wal dump DIR [--shard N] [--from LSN] [--limit N] [--max_keys N] [--json]\n"
     "                          one line per WAL record, then a summary (records/s)",
     shardtx::cli::RunWalDump},
    {"wal verify",
     "wal verify DIR [--json]  every record's checksum; clean / torn / corrupt per shard",
     shardtx::cli::RunWalVerify},
    {"check",
     "check DIR [--json]       wal verify + every LMDB value's checksum + the store digest\n"
     "                          + WAL covers LMDB",
     shardtx::cli::RunCheck},
    {"prepared list", "prepared list DIR [--json]", shardtx::cli::RunPreparedList},
    {"prepared commit", "prepared commit DIR NAME", shardtx::cli::RunPreparedCommit},
    {"prepared rollback", "prepared rollback DIR NAME", shardtx::cli::RunPreparedRollback},
    {"checkpoint", "checkpoint DIR", shardtx::cli::RunCheckpoint},
    {"dump", "dump DIR [--from KEY] [--to KEY] [--hex]   every key/value, key order",
     shardtx::cli::RunDump},
    {"load",
     "load DIR FILE [--batch_keys N] [--batch_bytes N]\n"
     "     [--create [--shards N] [--log_layout shared|per-shard]]\n"
     "                          a dump back, checked whole first, then in bounded transactions",
     shardtx::cli::RunLoad},
    {"backup", "backup DIR DEST          a consistent copy (Database::Backup) in the new DEST",
     shardtx::cli::RunBackup},
    {"restore", "restore BACKUP DIR       the backup copied back into the new DIR",
     shardtx::cli::RunRestore},
};

constexpr char kHelpTail[] = R"help(
Exit status:
  0  success; the verdict is clean. A torn WAL tail (bytes a crash left after the last
     record, which Open cuts off; nothing acknowledged is lost) is reported but is clean.
  1  the command ran and found damage or a problem: a corrupt WAL record (bad checksum with
     durable records after it), a malformed record, an LMDB entry or page that does not read,
     a WAL that does not cover LMDB's applied LSN; a prepared commit/rollback or checkpoint
     that failed; a load that failed part-way.
  2  usage error, or the command could not run: not a shardtx database, a missing directory,
     a newer format, the database locked by another process (prepared, checkpoint, dump,
     load, check), a damaged WAL that Database::Open refuses (dump, load), an I/O error.
     Nothing is created or changed on bad input (not even a LOCK file).

Log layout: a database created with one log shared by all shards (Options::log_layout
kShared; its manifest says "log shared") keeps it in DIR/log. wal dump reads it once, in LSN
order, each record under the shard its stream names (--shard N: that shard's only); wal verify
and check verify it once and report it as the log of all shards, with its records by shard;
stat counts its segment files once and gives each shard its own records' LSNs.

Lock: stat, wal dump and wal verify read without taking the database's lock and work while a
host has it open (they say so: "open by pid N: figures are a snapshot"). check reads without
the lock but needs the database closed. prepared, checkpoint, dump and load open the database
as a host does (its lock, recovery).

Dump format (load reads it back exactly):
  # shardtx dump 1
  "key" "value"          escaped: bytes 0x20-0x7e as they are except \ and " (written \\ and
                         \"), every other byte as \xNN
  0x6b6579 0x76616c      with --hex: 0x then two hex digits per byte ("" and 0x are empty)
  # end 2 records
load refuses a file without that header, or without the trailer with the right count (a
truncated dump), checking the whole file before it writes anything; it then commits in
transactions of at most --batch_keys keys and --batch_bytes bytes (existing keys are
overwritten). --from/--to take a key in either field form, or plain text.

Keys in wal dump are printable (non-printable bytes as \xNN, cut at 64 bytes with
"...(N bytes)"); --json writes one JSON object per line. A progress bar is drawn on stderr
for long work (wal verify, check, dump, load) when stderr is a terminal.
)help";

void PrintHelp(FILE* to) {
  std::fprintf(to,
               "shardtx: inspect and operate on a shardtx database directory.\n\n"
               "Usage: shardtx SUBCOMMAND ...\n\n");
  for (const Subcommand& c : kSubcommands) std::fprintf(to, "  %s\n", c.synopsis);
  std::fputs(kHelpTail, to);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> words(argv + 1, argv + argc);
  if (words.empty()) {
    PrintHelp(stderr);
    return shardtx::cli::kExitCannotRun;
  }
  if (words[0] == "--help" || words[0] == "-h" || words[0] == "help") {
    PrintHelp(stdout);
    return shardtx::cli::kExitOk;
  }
  for (const Subcommand& c : kSubcommands) {
    const std::string name = c.name;
    const size_t space = name.find(' ');
    size_t used = 1;
    if (space == std::string::npos) {
      if (words[0] != name) continue;
    } else {
      if (words[0] != name.substr(0, space) || words.size() < 2 ||
          words[1] != name.substr(space + 1)) {
        continue;
      }
      used = 2;
    }
    return c.run(Args(words.begin() + static_cast<long>(used), words.end()));
  }
  return shardtx::cli::Fail(absl::StrCat("unknown command '", words[0],
                                         words.size() > 1 ? " " + words[1] : std::string(),
                                         "' (shardtx --help lists them)"));
}
