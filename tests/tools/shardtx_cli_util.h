// Helpers for the shardtx tool's tests: run the built binary as a subprocess, build databases,
// find and damage bytes of their files, and fingerprint a directory to prove nothing changed.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "shardtx/database.h"
#include "tests/support/test_db.h"
#include "wal/format.h"
#include "wal/segment.h"

namespace shardtx::testing {

struct CliResult {
  int code = -1;  // exit status, or 128 + signal
  std::string out, err;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

// Runs the shardtx binary with `args`; stdout and stderr are captured through files.
inline CliResult RunCli(const std::vector<std::string>& args) {
  const std::string base = absl::StrCat(::testing::TempDir(), "/shardtx_cli_", ::getpid());
  const std::string out_path = base + ".out", err_path = base + ".err";
  std::vector<std::string> all = {SHARDTX_CLI_PATH};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {  // only async-signal-safe calls: the parent may have threads
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || err < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0) ::_exit(126);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  CliResult r;
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = ReadFile(out_path);
  r.err = ReadFile(err_path);
  std::remove(out_path.c_str());  // one pair per test process, not one per run left in TempDir
  std::remove(err_path.c_str());
  return r;
}

// Where RunCli captures the output of this process's runs (removed after each run).
inline std::vector<std::string> CliCaptureFiles() {
  const std::string base = absl::StrCat(::testing::TempDir(), "/shardtx_cli_", ::getpid());
  return {base + ".out", base + ".err"};
}

inline std::string Describe(const CliResult& r) {
  return absl::StrCat("exit ", r.code, "\nstdout:\n", r.out, "\nstderr:\n", r.err);
}

// Options for a small test database: a log per shard (the tests read and damage shard-NNN/wal;
// shardtx_cli_shared_test.cc covers the shared layout), 1 MiB WAL segments; with `keep_wal`,
// no checkpoint ever (every commit stays in the WAL).
inline Options SmallDb(const std::string& dir, uint32_t shards, bool keep_wal) {
  Options o;
  o.path = dir;
  o.num_shards = shards;
  o.log_layout = Options::LogLayout::kPerShard;
  o.wal_segment_size = 1 << 20;
  o.max_txn_bytes = 256 << 10;
  o.lmdb_map_size = 64 << 20;
  if (keep_wal) {
    o.checkpoint_on_close = false;
    o.checkpoint_wal_bytes = 0;
    o.checkpoint_overlay_bytes = 0;
    o.checkpoint_interval = absl::ZeroDuration();
  }
  return o;
}

// Every file under dir: its bytes and modification time. Equal fingerprints: nothing changed.
inline std::map<std::string, std::string> Fingerprint(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    struct stat st;
    ::stat(e.path().c_str(), &st);
    std::string v = e.is_regular_file() ? ReadFile(e.path().string()) : "dir";
    out[e.path().string()] =
        absl::StrCat(std::hash<std::string>()(v), "@", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec);
  }
  return out;
}

// The offsets of the consecutive records of a WAL segment file, from its first.
inline std::vector<uint64_t> RecordOffsets(const std::string& segment_path) {
  const std::string bytes = ReadFile(segment_path);
  const std::string name = std::filesystem::path(segment_path).filename().string();
  std::vector<uint64_t> out;
  auto number = wal::ParseSegmentFileName(name);
  if (!number) return out;
  auto header = wal::DecodeSegmentHeader(bytes, *number);
  if (!header) return out;
  uint64_t off = wal::kSegmentHeaderSize;
  for (wal::Lsn lsn = header->first_lsn;; ++lsn) {
    auto r = wal::ParseRecord(bytes, off, header->seed(), wal::kMaxSegmentSize);
    if (!r || r->lsn != lsn) break;
    out.push_back(off);
    off += r->aligned_size;
  }
  return out;
}

// The segment file of `wal_dir` that holds records (the first such, ascending).
inline std::string LiveSegment(const std::string& wal_dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(wal_dir)) {
    names.push_back(e.path().string());
  }
  std::sort(names.begin(), names.end());
  for (const std::string& n : names) {
    if (!RecordOffsets(n).empty()) return n;
  }
  return "";
}

inline void FlipByte(const std::string& path, uint64_t offset, uint8_t mask = 0xff) {
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ mask);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

// Every key/value of a database, read in one transaction.
inline std::map<std::string, std::string> Contents(Database* db) {
  std::map<std::string, std::string> out;
  auto txn = db->Begin();
  auto it = txn->NewIterator();
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    out[std::string(it->key())] = std::string(it->value());
  }
  EXPECT_TRUE(it->status().ok()) << it->status();
  return out;
}

}  // namespace shardtx::testing
