#include <unistd.h>

#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "tests/support/test_db.h"
#include "wal/reader.h"
#include "wal/writer.h"

namespace shardtx::wal {
namespace {

TEST(WalSmoke, WriteReopenRead) {
  std::string dir = ::testing::TempDir() + "/walsmoke_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  shardtx::testing::internal::DirsOfThisTest().push_back(dir);  // removed if the test passes
  {
    auto w = WalWriter::OpenAfterScan(Env::Default(), dir, WalOptions{});
    ASSERT_TRUE(w.ok()) << w.status();
    for (int i = 0; i < 100; ++i) {
      auto lsn = (*w)->Append(1, "record " + std::to_string(i), Durability::kSync);
      ASSERT_TRUE(lsn.ok());
      ASSERT_TRUE((*w)->WaitDurable(*lsn).ok());
    }
  }
  auto r = WalReader::Open(Env::Default(), dir, ReaderOptions{});
  ASSERT_TRUE(r.ok()) << r.status();
  WalRecord rec;
  int n = 0;
  while (true) {
    auto more = (*r)->Next(&rec);
    ASSERT_TRUE(more.ok()) << more.status();
    if (!*more) break;
    EXPECT_EQ(rec.payload, "record " + std::to_string(n));
    ++n;
  }
  EXPECT_EQ(n, 100);
}

}  // namespace
}  // namespace shardtx::wal
