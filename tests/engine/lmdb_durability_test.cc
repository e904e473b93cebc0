// What reaches LMDB's data file, and in what order, during a checkpoint: the transaction that
// records applied_lsn (the WAL is truncated behind it) must be durable when the checkpoint
// returns, meta page included, while each earlier chunk costs one sync, not two.
//
// A kill -9 cannot test this (the page cache survives it; a power cut does not), so this
// binary interposes the calls liblmdb makes (pwrite, writev, fdatasync, fsync) and records
// those on a file named data.mdb. The interposers forward to the system calls, so everything
// else in the process works as usual. Under a sanitizer they replace its interceptors for these
// calls, which only stops it checking their buffers.
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/engine/test_db.h"

namespace {

struct Event {
  enum Kind { kMetaWrite, kSync } kind;
  bool dsync_fd = false;  // a write through an O_DSYNC descriptor is durable by itself
};

std::atomic<bool> recording{false};
std::mutex events_mu;
std::vector<Event>* events = new std::vector<Event>;  // never freed: used until exit

// LMDB's two meta pages are pages 0 and 1; its pages are no larger than 64 KiB here.
bool IsDataMdb(int fd) {
  char link[64], path[PATH_MAX];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  const ssize_t n = readlink(link, path, sizeof(path) - 1);
  if (n <= 0) return false;
  path[n] = '\0';
  return absl::EndsWith(path, "/data.mdb");
}

void Record(int fd, Event::Kind kind, off_t offset) {
  if (!recording.load(std::memory_order_relaxed) || !IsDataMdb(fd)) return;
  const long page = sysconf(_SC_PAGESIZE);
  if (kind == Event::kMetaWrite && offset >= 2 * page) return;  // a data page
  Event e{kind};
  e.dsync_fd = (fcntl(fd, F_GETFL) & O_DSYNC) == O_DSYNC;
  std::lock_guard<std::mutex> l(events_mu);
  events->push_back(e);
}

}  // namespace

extern "C" {
ssize_t pwrite(int fd, const void* buf, size_t n, off_t offset) {
  const ssize_t r = syscall(SYS_pwrite64, fd, buf, n, offset);
  if (r >= 0) Record(fd, Event::kMetaWrite, offset);
  return r;
}
ssize_t writev(int fd, const struct iovec* iov, int count) {
  // LMDB writes runs of data pages with lseek + writev; never a meta page.
  return syscall(SYS_writev, fd, iov, count);
}
int fdatasync(int fd) {
  const int r = static_cast<int>(syscall(SYS_fdatasync, fd));
  if (r == 0) Record(fd, Event::kSync, 0);
  return r;
}
int fsync(int fd) {
  const int r = static_cast<int>(syscall(SYS_fsync, fd));
  if (r == 0) Record(fd, Event::kSync, 0);
  return r;
}
}  // extern "C"

namespace shardtx {
namespace {

using testing::FreshDir;
using testing::OpenOrDie;

std::vector<Event> Recorded(const std::function<void()>& f) {
  {
    std::lock_guard<std::mutex> l(events_mu);
    events->clear();
  }
  recording = true;
  f();
  recording = false;
  std::lock_guard<std::mutex> l(events_mu);
  return *events;
}

// True if the last meta page written is durable at the end of `ev`.
bool LastMetaWriteIsDurable(const std::vector<Event>& ev) {
  for (size_t i = ev.size(); i-- > 0;) {
    if (ev[i].kind != Event::kMetaWrite) continue;
    if (ev[i].dsync_fd) return true;
    for (size_t j = i + 1; j < ev.size(); ++j) {
      if (ev[j].kind == Event::kSync) return true;
    }
    return false;
  }
  return false;  // no meta write at all: nothing was committed
}

// Syncs of the data file: fdatasync/fsync calls, and writes through an O_DSYNC descriptor.
size_t Syncs(const std::vector<Event>& ev) {
  size_t n = 0;
  for (const Event& e : ev) n += e.kind == Event::kSync || e.dsync_fd;
  return n;
}

Options Opts(const std::string& dir) {
  Options o;
  o.path = dir;
  o.checkpoint_interval = absl::ZeroDuration();
  o.checkpoint_wal_bytes = 0;
  o.checkpoint_overlay_bytes = 0;
  o.checkpoint_txn_bytes = 4 << 10;
  o.checkpoint_on_close = false;
  return o;
}

void Fill(Database* db, int keys) {
  TxnOptions none;
  none.durability = Durability::kNone;
  const std::string value(1000, 'v');
  for (int i = 0; i < keys; ++i) {
    auto t = db->Begin(none);
    ASSERT_TRUE(t->Put(absl::StrCat("k", i), value).ok());
    ASSERT_TRUE(t->Commit().ok());
  }
}

TEST(LmdbDurability, CreatingTheStoreEndsDurable) {
  std::unique_ptr<Database> db;
  const auto ev = Recorded([&] { db = OpenOrDie(Opts(FreshDir())); });
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(LastMetaWriteIsDurable(ev)) << ev.size() << " events";
}

TEST(LmdbDurability, ACheckpointEndsWithItsMetaPageSynced) {
  auto db = OpenOrDie(Opts(FreshDir()));
  ASSERT_NE(db, nullptr);
  Fill(db.get(), 100);
  const auto ev = Recorded([&] { ASSERT_TRUE(db->Checkpoint().ok()); });
  EXPECT_TRUE(LastMetaWriteIsDurable(ev)) << ev.size() << " events";
}

TEST(LmdbDurability, EachChunkButTheLastSyncsOnce) {
  auto db = OpenOrDie(Opts(FreshDir()));
  ASSERT_NE(db, nullptr);
  Fill(db.get(), 200);
  const uint64_t txns_before = db->GetStats().shards[0].checkpoint_txns;
  const auto ev = Recorded([&] { ASSERT_TRUE(db->Checkpoint().ok()); });
  const uint64_t txns = db->GetStats().shards[0].checkpoint_txns - txns_before;
  ASSERT_GT(txns, 20u) << "not written in chunks";
  // One sync per transaction, plus the last one's meta page.
  EXPECT_EQ(Syncs(ev), txns + 1);
  EXPECT_TRUE(LastMetaWriteIsDurable(ev));
}

}  // namespace
}  // namespace shardtx
