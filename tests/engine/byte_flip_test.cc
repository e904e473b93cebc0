// Every byte of a small shard store's data.mdb flipped in turn, each damaged copy read in a
// process of its own (damage to LMDB's own structure may crash it): no read path returns a
// wrong value with an OK status, and ShardStore::Check reports every copy whose content changed
// (a lost or an extra entry included). The outcomes are counted and printed.
//
// LMDB keeps two meta pages and uses the newer valid one, so damage to the newer one can turn
// the store back into its previous checkpoint, a consistent state whose applied_lsn says so
// (redo from the WAL then brings it forward). A copy is therefore compared with the content of
// the checkpoint its applied_lsn names.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/lmdb_store.h"
#include "engine/overlay.h"
#include "gtest/gtest.h"
#include "tests/support/test_db.h"

#ifndef SHARDTX_BYTE_FLIP_STRIDE
#define SHARDTX_BYTE_FLIP_STRIDE 1
#endif

namespace shardtx::engine {
namespace {

using Content = std::map<std::string, std::string>;  // data keys, and "prepared/" + row keys

// What a child saw in one damaged copy.
struct Outcome {
  bool opened = false;           // ShardStore::Open succeeded
  uint64_t applied_lsn = 0;      // as the copy records it
  int wrong_ok = 0;              // reads that returned a wrong value with OK
  bool content_changed = false;  // OK reads found a missing or extra entry (or a wrong value)
  bool read_error = false;       // some read returned an error
  bool check_ran = false;        // Check returned a result
  bool check_clean = false;      // ... and found nothing
};

// A worker's own failure (its copy or its report could not be written), told apart from a
// crash while reading.
constexpr int kWorkerIoFailed = 121;

StoreOptions SmallStore() {
  StoreOptions o;
  o.initial_map_size = 1 << 20;
  o.max_readers = 4;             // a small lock file: opened once per damaged copy
  o.checkpoint_chunk_bytes = 0;  // one LMDB transaction per checkpoint
  return o;
}

// Reads everything in the store at `dir` and compares it with contents[applied_lsn].
Outcome Inspect(const std::string& dir, const std::map<uint64_t, Content>& contents) {
  Outcome out;
  auto store = ShardStore::Open(dir, SmallStore());
  if (!store.ok()) return out;
  out.opened = true;
  out.applied_lsn = (*store)->meta().applied_lsn;
  auto it = contents.find(out.applied_lsn);
  if (it == contents.end()) {
    out.content_changed = true;  // no checkpoint recorded this LSN
  }
  const Content empty;
  const Content& want = it == contents.end() ? empty : it->second;
  Content got;
  {
    auto view = (*store)->Pin();
    if (!view.ok()) {
      out.read_error = true;
    } else {
      for (const auto& [key, value] : want) {
        if (key.rfind("prepared/", 0) == 0) continue;
        auto found = (*view)->Get(key);
        if (!found.ok()) {
          out.read_error = true;
        } else if (!found->has_value()) {
          out.content_changed = true;
        } else if ((*found)->value != value) {
          ++out.wrong_ok;
        }
      }
      std::vector<ScanEntry> entries;
      if ((*view)->Scan("", true, false, 1 << 20, &entries).ok()) {
        for (const ScanEntry& e : entries) got[std::string(e.key)] = std::string(e.value);
      } else {
        out.read_error = true;
      }
    }
  }
  auto rows = (*store)->ReadTable("prepared");
  if (rows.ok()) {
    for (const auto& [k, v] : *rows) got["prepared/" + k] = v;
  } else {
    out.read_error = true;
  }
  if (!out.read_error) {
    for (const auto& [key, value] : got) {
      auto w = want.find(key);
      if (w != want.end() && w->second != value) ++out.wrong_ok;
    }
    if (got.size() != want.size() ||
        !std::equal(got.begin(), got.end(), want.begin(),
                    [](const auto& a, const auto& b) { return a.first == b.first; })) {
      out.content_changed = true;
    }
  }
  auto check = (*store)->Check();
  out.check_ran = check.ok();
  out.check_clean = check.ok() && check->ok();
  return out;
}

TEST(ByteFlip, NoWrongValueIsReadAndCheckReportsEveryChangedCopy) {
  const std::string dir = ::shardtx::testing::FreshDir();
  std::filesystem::create_directories(dir);
  // Two checkpoints, so that both meta pages describe data: the second overwrites, deletes and
  // adds keys and prepared rows.
  std::map<uint64_t, Content> contents;
  {
    auto store = ShardStore::Open(dir, SmallStore());
    ASSERT_TRUE(store.ok());
    Content c;
    for (int round = 1; round <= 2; ++round) {
      Overlay layer;
      for (int i = 0; i < 24; ++i) {
        const std::string key = absl::StrCat("key-", (i * 5 + round * 3) % 30);
        const bool del = round == 2 && i % 4 == 0;
        const std::string value = del ? "" : absl::StrCat("value ", round, " of ", key, "!");
        layer.Add(key, 10 * round, del, value);
        if (del) {
          c.erase(key);
        } else {
          c[key] = value;
        }
      }
      const std::string row = absl::StrCat("row", round);
      std::vector<TableWrite> rows = {{"prepared", row, "prepare record " + row}};
      if (round == 2) rows.push_back({"prepared", "row1", std::nullopt});
      c.erase("prepared/row1");
      c["prepared/" + row] = "prepare record " + row;
      ASSERT_TRUE((*store)->Apply({&layer}, round, 10 * round, rows).ok());
      contents[round] = c;
    }
  }
  std::string original;
  {
    std::ifstream in(dir + "/data.mdb", std::ios::binary);
    original.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_GT(original.size(), 4096u);
  {
    const Outcome clean = Inspect(dir, contents);
    ASSERT_TRUE(clean.opened && clean.check_clean && !clean.content_changed && !clean.read_error &&
                clean.wrong_ok == 0)
        << "the undamaged store must read back exactly";
    ASSERT_EQ(clean.applied_lsn, 2u);
  }

  std::map<std::string, int> counts;
  int copies = 0, wrong = 0, unreported = 0;
  auto judge = [&](size_t offset, const Outcome& o) {
    ++copies;
    if (o.wrong_ok > 0) {
      ++wrong;
      ADD_FAILURE() << "byte " << offset << ": " << o.wrong_ok << " wrong values read with OK";
    }
    const bool changed = o.content_changed || o.wrong_ok > 0 || o.read_error;
    if (changed && o.check_clean) {
      ++unreported;
      ADD_FAILURE() << "byte " << offset
                    << ": content changed (or reads failed) and Check found nothing (content "
                    << (o.content_changed ? "changed" : "same") << ", reads "
                    << (o.read_error ? "failed" : "OK") << ", applied_lsn " << o.applied_lsn
                    << ")";
    }
    if (!o.opened) {
      ++counts["Open refused it (clear error)"];
    } else if (!o.check_ran) {
      ++counts["Check could not read it (clear error)"];
    } else if (!o.check_clean) {
      ++counts[o.read_error ? "Check reported damage; reads returned errors"
                            : "Check reported damage; reads all OK and right"];
    } else if (o.applied_lsn != 2) {
      ++counts["an older checkpoint, consistent (the newer meta page was hit)"];
    } else {
      ++counts["content unchanged (unused bytes)"];
    }
  };
  // A worker process takes the offsets in turn: it restores its copy, flips one byte, inspects
  // it and reports. One that crashes (or hangs: alarm) costs that offset only; the next worker
  // goes on after it.
  const std::string scratch = dir + ".flip";
  const size_t stride = SHARDTX_BYTE_FLIP_STRIDE;
  for (size_t next = 0; next < original.size();) {
    std::filesystem::remove_all(scratch);
    std::filesystem::create_directories(scratch);
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      const int fd = open((scratch + "/data.mdb").c_str(), O_RDWR | O_CREAT, 0644);
      for (size_t offset = next; fd >= 0 && offset < original.size(); offset += stride) {
        std::string damaged = original;
        damaged[offset] = static_cast<char>(damaged[offset] ^ 0xFF);
        // Opening may write (damage can make a store look never written, and so new): every
        // copy starts from scratch.
        if (ftruncate(fd, 0) != 0 ||
            pwrite(fd, damaged.data(), damaged.size(), 0) != static_cast<ssize_t>(damaged.size())) {
          _exit(kWorkerIoFailed);
        }
        alarm(10);
        struct {
          size_t offset;
          Outcome outcome;
        } report{offset, Inspect(scratch, contents)};
        if (write(fds[1], &report, sizeof(report)) != static_cast<ssize_t>(sizeof(report))) {
          _exit(kWorkerIoFailed);
        }
      }
      _exit(fd >= 0 ? 0 : kWorkerIoFailed);
    }
    close(fds[1]);
    struct {
      size_t offset;
      Outcome outcome;
    } report;
    size_t done = next;  // the first offset not reported
    while (read(fds[0], &report, sizeof(report)) == static_cast<ssize_t>(sizeof(report))) {
      judge(report.offset, report.outcome);
      done = report.offset + stride;
    }
    close(fds[0]);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    next = done;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) break;
    // Died reading copy `next`: by a signal, or, under a sanitizer, which catches the signal
    // and reports it, by the sanitizer's exit.
    ASSERT_FALSE(WIFEXITED(status) && WEXITSTATUS(status) == kWorkerIoFailed)
        << "the worker could not write its copy or its report";
    ++copies;
    ++counts[absl::StrCat("the reading process died (",
                          !WIFSIGNALED(status)
                              ? absl::StrCat("exit ", WEXITSTATUS(status), ": a sanitizer's report")
                          : WTERMSIG(status) == SIGALRM ? std::string("hung")
                                                        : std::string(strsignal(WTERMSIG(status))),
                          "; damaged LMDB structure)")];
    next += stride;
  }
  std::filesystem::remove_all(scratch);
  std::printf("byte flips of a %zu-byte data.mdb: %d copies (stride %d)\n", original.size(), copies,
              SHARDTX_BYTE_FLIP_STRIDE);
  for (const auto& [what, n] : counts) std::printf("  %6d  %s\n", n, what.c_str());
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(unreported, 0);
}

}  // namespace
}  // namespace shardtx::engine
