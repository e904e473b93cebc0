// Regression: WalWriter::Open must sync the segment it resumes after, since its first records
// claim (sync_lsn) that everything before them is durable. Records a recovery
// read from the page cache after a process crash can then vanish in a later power cut while
// the new segment survives: the log reads as corrupt (kDataLoss), and the records recovery
// already applied are gone.
#include <string>

#include "gtest/gtest.h"
#include "tests/support/fault_injection_env.h"
#include "tests/wal/wal_test_util.h"
#include "util/coding.h"

namespace shardtx::wal {
namespace {

TEST(WalWriterRepro, OpenSyncsTheSegmentItResumesAfter) {
  testutil::ScratchDir dir;
  shardtx::testing::FaultInjectionEnv fi(Env::Default(), {.sync_base = false});
  // Records 1..5, durable.
  {
    auto w = WalWriter::OpenAfterScan(&fi, dir.path(), testutil::SmallSegments());
    ASSERT_TRUE(w.ok()) << w.status();
    for (int i = 1; i <= 5; ++i) {
      auto lsn = (*w)->Append(1, "durable " + std::to_string(i), Durability::kSync);
      ASSERT_TRUE(lsn.ok());
      ASSERT_TRUE((*w)->WaitDurable(*lsn).ok());
    }
    ASSERT_TRUE((*w)->Close().ok());
  }
  // Records 6..10 written by a process that then died before syncing them: in the page cache
  // (written through the env, never synced).
  const testutil::ReadResult before = testutil::ReadLog(dir.path());
  ASSERT_TRUE(before.status.ok());
  const uint64_t number = before.tail.last_segment;
  const std::string path = SegmentPath(dir.path(), number);
  const auto ext = testutil::RecordExtents(path, number);
  ASSERT_EQ(ext.size(), 5u);
  const std::string bytes = testutil::ReadFile(path);
  const uint64_t seed = DecodeSegmentHeader(bytes, number)->seed();
  uint64_t off = ext.back().offset + ext.back().aligned_size;
  {
    auto f = fi.OpenFile(path, Env::OpenMode::kReadWrite);
    ASSERT_TRUE(f.ok());
    for (Lsn lsn = 6; lsn <= 10; ++lsn) {
      const std::string payload = "page cache " + std::to_string(lsn);
      std::string rec(AlignedRecordSize(payload.size()), '\0');
      EncodeRecord(rec.data(), 1, lsn, payload);
      SealRecord(rec.data(), 6, seed);
      ASSERT_TRUE((*f)->Write(off, rec).ok());
      off += rec.size();
    }
  }
  // Restart: recovery reads 1..10 and a writer resumes at 11, durably.
  {
    auto r = WalReader::Open(&fi, dir.path(), {});
    ASSERT_TRUE(r.ok());
    WalRecord rec;
    int n = 0;
    while (*(*r)->Next(&rec)) ++n;
    ASSERT_EQ(n, 10);
    auto w = WalWriter::Open(&fi, dir.path(), testutil::SmallSegments(), (*r)->tail());
    ASSERT_TRUE(w.ok()) << w.status();
    auto lsn = (*w)->Append(1, "after restart", Durability::kSync);
    ASSERT_TRUE(lsn.ok());
    ASSERT_EQ(*lsn, 11u);
    ASSERT_TRUE((*w)->WaitDurable(*lsn).ok());
    // Power cut while the writer runs.
    ASSERT_TRUE(fi.SimulateCrash().ok());
  }
  fi.Reset();
  // Everything recovery read (1..10) and the acknowledged 11 must still be there.
  testutil::ReadResult after = testutil::ReadLog(dir.path());
  ASSERT_TRUE(after.status.ok()) << after.status;
  EXPECT_EQ(after.records.size(), 11u);
}

}  // namespace
}  // namespace shardtx::wal
