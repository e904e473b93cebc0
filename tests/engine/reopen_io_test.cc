// What reopening a database reads through the Env (issue 14, item 5): in proportion to the live
// log, not to the preallocated segments (64 MiB each by default) that hold it.
#include <string>

#include "gtest/gtest.h"
#include "shardtx/database.h"
#include "tests/support/recording_env.h"
#include "tests/support/test_db.h"

namespace shardtx {
namespace {

using testing::FreshDir;
using testing::GetOne;
using testing::PutOne;
using testing::RecordingEnv;

constexpr uint32_t kShards = 4;
// Per shard: segment headers, the records, and the first page or so of each live segment.
constexpr uint64_t kBytesPerShard = 16 << 10;

Options FourShards(const std::string& path, RecordingEnv* env) {
  Options o;
  o.path = path;
  o.env = env;
  o.num_shards = kShards;
  o.checkpoint_interval = absl::ZeroDuration();
  return o;
}

// Opens the database, returning the bytes Open read; checks that every key is there.
uint64_t BytesReadByOpen(const Options& o, RecordingEnv* env, int keys) {
  env->Reset();
  auto db = Database::Open(o);
  const uint64_t bytes = env->bytes_read();
  EXPECT_TRUE(db.ok()) << db.status();
  if (!db.ok()) return bytes;
  for (int i = 0; i < keys; ++i) {
    EXPECT_EQ(*GetOne(db->get(), "k" + std::to_string(i)), "v" + std::to_string(i));
  }
  EXPECT_TRUE((*db)->Close().ok());
  return bytes;
}

TEST(ReopenIo, ReopenAfterOneCommitAndACleanCloseReadsOnlyTheLiveLog) {
  RecordingEnv env;
  Options o = FourShards(FreshDir(), &env);
  o.checkpoint_on_close = false;  // the commit stays in the WAL: recovery redoes it
  {
    auto db = Database::Open(o);
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE(PutOne(db->get(), "k0", "v0").ok());
    ASSERT_TRUE((*db)->Close().ok());
  }
  for (int reopen = 0; reopen < 3; ++reopen) {  // each reopen adds a segment to each shard
    SCOPED_TRACE(reopen);
    const uint64_t bytes = BytesReadByOpen(o, &env, 1);
    EXPECT_LE(bytes, kShards * kBytesPerShard) << "Open read " << bytes << " bytes";
  }
}

TEST(ReopenIo, ReopenOfAFreshlyCheckpointedDatabaseReadsOnlyTheLiveLog) {
  RecordingEnv env;
  Options o = FourShards(FreshDir(), &env);
  {
    auto db = Database::Open(o);
    ASSERT_TRUE(db.ok()) << db.status();
    for (int i = 0; i < 8; ++i) {
      ASSERT_TRUE(PutOne(db->get(), "k" + std::to_string(i), "v" + std::to_string(i)).ok());
    }
    ASSERT_TRUE((*db)->Checkpoint().ok());
    ASSERT_TRUE((*db)->Close().ok());
  }
  for (int reopen = 0; reopen < 3; ++reopen) {
    SCOPED_TRACE(reopen);
    const uint64_t bytes = BytesReadByOpen(o, &env, 8);
    EXPECT_LE(bytes, kShards * kBytesPerShard) << "Open read " << bytes << " bytes";
  }
}

}  // namespace
}  // namespace shardtx
