// What reaches LMDB's data file, and in what order, during a checkpoint: the transaction that
// records applied_lsn (the WAL is truncated behind it) must be durable when the checkpoint
// returns, meta page included, while each earlier chunk costs one sync, not two.
//
// A kill -9 cannot test this (the page cache survives it; a power cut does not), so this
// binary interposes the calls liblmdb makes (pwrite, writev, fdatasync, fsync) and records
// those on the data.mdb files under this process's test directory. It can also fail one sync
// there with EIO. The interposers forward to the system calls, so everything else in the
// process works as usual. Under a sanitizer they replace its interceptors for these calls,
// which only stops it checking their buffers and tracking these descriptors.
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/test_db.h"

namespace {

struct Event {
  enum Kind { kMetaWrite, kSync } kind;
  bool dsync_fd = false;  // a write through an O_DSYNC descriptor is durable by itself
};

std::atomic<bool> recording{false};
std::atomic<int> syncs_seen{0};    // data.mdb syncs while recording
std::atomic<int> fail_sync_at{0};  // the one of them (1-based) to fail with EIO; 0: none
std::mutex events_mu;
std::vector<Event>* events = new std::vector<Event>;  // never freed: used until exit
// Directories are unique to this process, so a concurrent run (another build's) cannot match.
// Canonical, as /proc/self/fd shows it.
const std::string* root = new std::string(
    (std::filesystem::weakly_canonical(::testing::TempDir()) /
     absl::StrCat("shardtx_lmdb_durability_", getpid()))
        .string());

bool IsDataMdb(int fd) {
  char link[64], path[PATH_MAX];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  const ssize_t n = readlink(link, path, sizeof(path) - 1);
  if (n <= 0) return false;
  path[n] = '\0';
  return absl::StartsWith(path, *root) && absl::EndsWith(path, "/data.mdb");
}

// True if this sync is to fail.
bool FailSync(int fd) {
  if (!recording.load(std::memory_order_relaxed) || !IsDataMdb(fd)) return false;
  return syncs_seen.fetch_add(1) + 1 == fail_sync_at.load();
}

void Record(int fd, Event::Kind kind, off_t offset) {
  if (!recording.load(std::memory_order_relaxed) || !IsDataMdb(fd)) return;
  const long page = sysconf(_SC_PAGESIZE);
  // LMDB's two meta pages are pages 0 and 1.
  if (kind == Event::kMetaWrite && offset >= 2 * page) return;  // a data page
  Event e{kind};
  e.dsync_fd = (fcntl(fd, F_GETFL) & O_DSYNC) == O_DSYNC;
  std::lock_guard<std::mutex> l(events_mu);
  events->push_back(e);
}

// fdatasync or fsync (`number`), failed with EIO when the test asks.
int Sync(long number, int fd) {
  if (FailSync(fd)) {
    errno = EIO;
    return -1;
  }
  const int r = static_cast<int>(syscall(number, fd));
  if (r == 0) Record(fd, Event::kSync, 0);
  return r;
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
int fdatasync(int fd) { return Sync(SYS_fdatasync, fd); }
int fsync(int fd) { return Sync(SYS_fsync, fd); }
}  // extern "C"

namespace shardtx {
namespace {

using testing::OpenOrDie;

class LmdbDurability : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove_all(*root); }
  static std::string Dir() {
    std::filesystem::create_directories(*root);
    return absl::StrCat(*root, "/",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
};

std::vector<Event> Recorded(const std::function<void()>& f, int fail_sync = 0) {
  {
    std::lock_guard<std::mutex> l(events_mu);
    events->clear();
  }
  syncs_seen = 0;
  fail_sync_at = fail_sync;
  recording = true;
  f();
  recording = false;
  fail_sync_at = 0;
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

TEST_F(LmdbDurability, CreatingTheStoreEndsDurable) {
  std::unique_ptr<Database> db;
  const auto ev = Recorded([&] { db = OpenOrDie(Opts(Dir())); });
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(LastMetaWriteIsDurable(ev)) << ev.size() << " events";
}

// Creating the store commits once: its own sync (1), then the meta page's (2). Either failing
// fails Open with the I/O error, naming the step, and a later Open succeeds.
TEST_F(LmdbDurability, AFailedSyncWhileCreatingTheStoreFailsOpen) {
  for (int fail : {1, 2}) {
    SCOPED_TRACE(absl::StrCat("failing sync ", fail));
    const Options o = Opts(absl::StrCat(Dir(), fail));
    absl::StatusOr<std::unique_ptr<Database>> db;
    Recorded([&] { db = Database::Open(o); }, fail);
    ASSERT_FALSE(db.ok());
    EXPECT_NE(db.status().message().find("Input/output error"), std::string::npos)
        << db.status();
    EXPECT_NE(db.status().message().find(fail == 1 ? "txn_commit" : "env_sync"),
              std::string::npos)
        << db.status();
    // Nothing is left half open: a retry once the disk behaves succeeds.
    EXPECT_TRUE(Database::Open(o).ok());
  }
}

// Opening an existing store writes nothing to LMDB, so it adds no sync to Open.
TEST_F(LmdbDurability, OpeningAnExistingStoreSyncsNothing) {
  const Options o = Opts(Dir());
  { ASSERT_NE(OpenOrDie(o), nullptr); }
  std::unique_ptr<Database> db;
  const auto ev = Recorded([&] { db = OpenOrDie(o); });
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(Syncs(ev), 0u);
}

TEST_F(LmdbDurability, ACheckpointEndsWithItsMetaPageSynced) {
  auto db = OpenOrDie(Opts(Dir()));
  ASSERT_NE(db, nullptr);
  Fill(db.get(), 100);
  const auto ev = Recorded([&] { ASSERT_TRUE(db->Checkpoint().ok()); });
  EXPECT_TRUE(LastMetaWriteIsDurable(ev)) << ev.size() << " events";
}

TEST_F(LmdbDurability, EachChunkButTheLastSyncsOnce) {
  auto db = OpenOrDie(Opts(Dir()));
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

// The two meta pages of the one data.mdb under `dir`.
std::string DataMdb(const std::string& dir) {
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.path().filename() == "data.mdb") return e.path().string();
  }
  return "";
}
std::string ReadMetaPages(const std::string& file) {
  std::string pages(2 * sysconf(_SC_PAGESIZE), '\0');
  std::ifstream in(file, std::ios::binary);
  in.read(pages.data(), static_cast<std::streamsize>(pages.size()));
  return in ? pages : "";
}
void WriteMetaPages(const std::string& file, const std::string& pages) {
  std::fstream out(file, std::ios::binary | std::ios::in | std::ios::out);
  out.write(pages.data(), static_cast<std::streamsize>(pages.size()));
  ASSERT_TRUE(out.good());
}

// One LMDB transaction (no chunks): its first sync is the commit's (data pages), its second
// the meta page's. Either failing fails the checkpoint, which then neither advances the applied
// LSN nor truncates the WAL. Then a power cut: the meta pages go back to their state before
// the checkpoint (whatever it wrote there was not synced). The reopen redoes every record from
// the WAL, which must therefore still hold them all (the segments are small, so a truncation
// would have removed some), and the next checkpoint succeeds.
TEST_F(LmdbDurability, AFailedSyncFailsTheCheckpointAndLosesNothing) {
  for (int fail : {1, 2}) {
    SCOPED_TRACE(absl::StrCat("failing sync ", fail));
    Options o = Opts(absl::StrCat(Dir(), fail));
    o.checkpoint_txn_bytes = 0;
    o.wal_segment_size = 64 << 10;
    o.max_txn_bytes = 16 << 10;
    auto db = OpenOrDie(o);
    ASSERT_NE(db, nullptr);
    Fill(db.get(), 200);
    const std::string file = DataMdb(o.path);
    const std::string before = ReadMetaPages(file);
    ASSERT_FALSE(before.empty()) << file;
    absl::Status s;
    Recorded([&] { s = db->Checkpoint(); }, fail);
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find("Input/output error"), std::string::npos) << s;
    // The message names the step: the commit's own sync, or the meta page's.
    EXPECT_NE(s.message().find(fail == 1 ? "txn_commit" : "env_sync"), std::string::npos) << s;
    ShardStatsView st = db->GetStats().shards[0];
    EXPECT_EQ(st.applied_lsn, 0u);
    EXPECT_EQ(st.checkpoints, 0u);
    EXPECT_EQ(testing::GetOne(db.get(), "k199").value_or("missing").size(), 1000u);
    db.reset();
    WriteMetaPages(file, before);
    db = OpenOrDie(o);
    ASSERT_NE(db, nullptr);
    EXPECT_EQ(db->GetStats().shards[0].recovery_records, 200u);
    EXPECT_EQ(testing::GetOne(db.get(), "k0").value_or("missing").size(), 1000u);
    ASSERT_TRUE(db->Checkpoint().ok());
    EXPECT_GT(db->GetStats().shards[0].applied_lsn, 0u);
    EXPECT_EQ(testing::GetOne(db.get(), "k199").value_or("missing").size(), 1000u);
  }
}

}  // namespace
}  // namespace shardtx
