#include "tools/shardtx/store_check.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "engine/lmdb_store.h"
#include "tools/shardtx/cli.h"

namespace shardtx::cli {

StoreReport VerifyStore(const std::string& lmdb_dir) {
  StoreReport report;
  engine::StoreOptions options;
  options.read_only = true;
  options.no_reader_lock = true;  // check runs only on a database nobody has open
  options.initial_map_size = 0;   // as large as the environment says
  options.max_readers = 8;
  auto store = engine::ShardStore::Open(lmdb_dir, options);
  if (!store.ok()) {
    report.problems.push_back(absl::StrCat("LMDB does not open: ", store.status().message()));
    return report;
  }
  report.opened = true;
  report.applied_lsn = (*store)->meta().applied_lsn;
  // Every entry of every table against its checksum (also looked up from the root, in order),
  // and all of them against the digest the last checkpoint recorded.
  auto check = (*store)->Check();
  if (!check.ok()) {
    report.problems.push_back(absl::StrCat("LMDB read: ", check.status().message()));
    return report;
  }
  report.entries = check->entries;
  report.problems = std::move(check->problems);
  return report;
}

namespace {

// The report over a pipe: one field per line ("entries N", "applied N", "opened",
// "problem TEXT", newlines in TEXT replaced by spaces).
std::string Serialize(const StoreReport& r) {
  std::string out = absl::StrCat("entries ", r.entries, "\napplied ", r.applied_lsn, "\n");
  if (r.opened) out += "opened\n";
  for (std::string p : r.problems) {
    for (char& c : p) c = c == '\n' ? ' ' : c;
    absl::StrAppend(&out, "problem ", p, "\n");
  }
  return out + "end\n";
}

bool Parse(absl::string_view text, StoreReport* r) {
  bool ended = false;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&line, "entries ")) (void)absl::SimpleAtoi(line, &r->entries);
    if (absl::ConsumePrefix(&line, "applied ")) (void)absl::SimpleAtoi(line, &r->applied_lsn);
    if (line == "opened") r->opened = true;
    if (absl::ConsumePrefix(&line, "problem ")) r->problems.emplace_back(line);
    if (line == "end") ended = true;
  }
  return ended;
}

}  // namespace

StoreReport VerifyStoreIsolated(const std::string& lmdb_dir) {
  StoreReport report;
  int fds[2];
  if (::pipe(fds) != 0) {
    report.problems.push_back(absl::StrCat("pipe: ", std::strerror(errno)));
    return report;
  }
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    report.problems.push_back(absl::StrCat("fork: ", std::strerror(errno)));
    return report;
  }
  if (pid == 0) {
    ::close(fds[0]);
    const std::string out = Serialize(VerifyStore(lmdb_dir));
    for (size_t done = 0; done < out.size();) {
      const ssize_t n = ::write(fds[1], out.data() + done, out.size() - done);
      if (n <= 0) ::_exit(3);
      done += static_cast<size_t>(n);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof(buf))) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const bool complete = Parse(text, &report);
  if (WIFSIGNALED(status)) {
    report.problems.push_back(absl::StrCat("reading LMDB crashed the reader (signal ",
                                           WTERMSIG(status), ", ", strsignal(WTERMSIG(status)),
                                           "): its structure is damaged"));
  } else if (!complete || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    report.problems.push_back("the store's reader ended without a report");
  }
  return report;
}

}  // namespace shardtx::cli
