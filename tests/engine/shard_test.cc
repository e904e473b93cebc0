// engine::Shard on its own, driven through fake hooks: the shard commits, checkpoints and
// redoes without any transaction layer, and treats every record type but its own kCommit as
// opaque bytes for the hooks (it knows nothing of two-phase commit).
#include "engine/shard.h"

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/log_record.h"
#include "gtest/gtest.h"
#include "tests/support/test_db.h"
#include "util/mutex.h"

namespace shardtx::engine {
namespace {

using ::shardtx::testing::FreshDir;

// Hooks that record what the shard tells them and answer from fixed data.
class FakeHooks final : public ShardHooks, public DurableListener {
 public:
  struct Redone {
    Lsn lsn;
    bool applied;
    uint8_t type;
    std::string payload;
  };

  absl::Status WaitVisible(Timestamp) override { return absl::OkStatus(); }
  std::vector<std::string> CheckpointTableNames() override { return {"fake-table"}; }
  absl::Status LoadTable(uint32_t, const std::string& table,
                         const std::vector<std::pair<std::string, std::string>>& rows) override {
    loaded[table] = rows;
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<RedoInstall>> Redo(uint32_t, Lsn lsn, bool applied, uint8_t type,
                                                  absl::string_view payload) override {
    redone.push_back({lsn, applied, type, std::string(payload)});
    if (type == kCommit || applied || install_for_type != type) return std::optional<RedoInstall>();
    return std::optional<RedoInstall>(install);
  }
  std::vector<TableWrite> CheckpointTables(uint32_t) override { return table_writes; }
  void CheckpointCommitted(uint32_t) override { ++checkpoints_committed; }
  void Durable(uint32_t, Lsn lsn) override {
    MutexLock l(&mu);
    durable.push_back(lsn);
  }
  Lsn PinnedLsn(uint32_t) override { return pinned; }

  std::map<std::string, std::vector<std::pair<std::string, std::string>>> loaded;
  std::vector<Redone> redone;
  uint8_t install_for_type = 0;  // the foreign record type whose redo installs `install`
  RedoInstall install;
  std::vector<TableWrite> table_writes;
  int checkpoints_committed = 0;
  Lsn pinned = 0;
  Mutex mu;
  std::vector<Lsn> durable ABSL_GUARDED_BY(mu);
};

ShardOptions OptionsFor(const std::string& dir, DurableListener* listener = nullptr) {
  ShardOptions o;
  o.dir = dir;
  o.env = Env::Default();
  o.durable_listener = listener;
  o.checkpoint_interval = absl::ZeroDuration();  // checkpoints only when the test asks
  o.checkpoint_wal_bytes = 0;
  o.checkpoint_overlay_bytes = 0;
  return o;
}

absl::StatusOr<Lsn> Append(Shard& s, uint8_t type, const std::string& payload) {
  MutexLock l(s.commit_mu());
  return s.AppendLocked(static_cast<RecordType>(type), payload, Durability::kSync);
}

absl::StatusOr<Lsn> Commit(Shard& s, Timestamp ts, std::vector<Write> writes) {
  MutexLock l(s.commit_mu());
  auto lsn = s.AppendLocked(kCommit, EncodeCommit(ts, 1, writes), Durability::kSync);
  if (lsn.ok()) s.InstallLocked(&writes, ts);
  return lsn;
}

std::optional<std::string> Read(Shard& s, Timestamp snapshot, const std::string& key) {
  auto view = s.Pin(snapshot);
  EXPECT_TRUE(view.ok()) << view.status();
  auto found = Shard::Get(view->get(), key);
  EXPECT_TRUE(found.ok()) << found.status();
  if (!found->has_value() || (*found)->tombstone) return std::nullopt;
  return (*found)->value;
}

Write Put(std::string key, std::string value) {
  return {WriteOp::kPut, std::move(key), std::move(value)};
}

TEST(ShardTest, CommitsCheckpointsAndRedoesWithoutATransactionLayer) {
  const std::string dir = FreshDir();
  FakeHooks hooks;
  {
    auto shard = Shard::Open(0, OptionsFor(dir, &hooks), &hooks);
    ASSERT_TRUE(shard.ok()) << shard.status();
    (*shard)->StartBackground();
    auto a = Commit(**shard, 10, {Put("a", "1"), Put("b", "2")});
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE((*shard)->WaitDurable(*a).ok());
    {
      MutexLock l(&hooks.mu);
      ASSERT_FALSE(hooks.durable.empty());
      EXPECT_GE(hooks.durable.back(), *a);  // told before WaitDurable returned
    }
    ASSERT_TRUE((*shard)->Checkpoint().ok());  // into LMDB
    EXPECT_EQ(hooks.checkpoints_committed, 1);
    auto c = Commit(**shard, 11, {Put("a", "3")});  // only in the WAL
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*shard)->WaitDurable(*c).ok());
    EXPECT_EQ(Read(**shard, 11, "a"), "3");
    EXPECT_EQ(Read(**shard, 10, "a"), "1");
    ASSERT_TRUE((*shard)->Close(/*checkpoint=*/false).ok());
  }
  FakeHooks again;
  auto shard = Shard::Open(0, OptionsFor(dir), &again);
  ASSERT_TRUE(shard.ok()) << shard.status();
  EXPECT_EQ((*shard)->recovered_max_ts(), 11u);
  EXPECT_EQ(Read(**shard, 11, "a"), "3");  // redone from the WAL above the checkpoint
  EXPECT_EQ(Read(**shard, 11, "b"), "2");  // from LMDB
  // The redone commit was reported to the hooks as such, and nothing else was.
  ASSERT_EQ(again.redone.size(), 1u);
  EXPECT_EQ(again.redone[0].type, kCommit);
  EXPECT_FALSE(again.redone[0].applied);
}

TEST(ShardTest, ForeignRecordsAreOpaqueBytesForTheHooks) {
  const std::string dir = FreshDir();
  constexpr uint8_t kForeign = kPrepare;  // any type but kCommit is the layer above's
  const std::string payload("\x00\xff not a prepare record at all \x01", 33);
  Lsn foreign_lsn = 0;
  {
    FakeHooks hooks;
    auto shard = Shard::Open(0, OptionsFor(dir), &hooks);
    ASSERT_TRUE(shard.ok()) << shard.status();
    auto lsn = Append(**shard, kForeign, payload);
    ASSERT_TRUE(lsn.ok()) << lsn.status();
    foreign_lsn = *lsn;
    ASSERT_TRUE((*shard)->WaitDurable(*lsn).ok());
    ASSERT_TRUE((*shard)->Close(false).ok());
  }
  FakeHooks hooks;
  hooks.install_for_type = kForeign;
  hooks.install = {42, {Put("x", "from the hooks")}};
  auto shard = Shard::Open(0, OptionsFor(dir), &hooks);
  ASSERT_TRUE(shard.ok()) << shard.status();
  ASSERT_EQ(hooks.redone.size(), 1u);
  EXPECT_EQ(hooks.redone[0].lsn, foreign_lsn);
  EXPECT_EQ(hooks.redone[0].type, kForeign);
  EXPECT_EQ(hooks.redone[0].payload, payload);          // handed over byte for byte, never decoded
  EXPECT_EQ(Read(**shard, 42, "x"), "from the hooks");  // what the hooks asked to install
  EXPECT_EQ((*shard)->recovered_max_ts(), 42u);
}

TEST(ShardTest, CheckpointTablesComeBackAndPinnedRecordsAreReplayed) {
  const std::string dir = FreshDir();
  Lsn foreign_lsn = 0;
  {
    FakeHooks hooks;
    hooks.table_writes = {{"fake-table", "k1", "v1"}, {"fake-table", "k2", "v2"}};
    auto shard = Shard::Open(0, OptionsFor(dir), &hooks);
    ASSERT_TRUE(shard.ok()) << shard.status();
    auto lsn = Append(**shard, kDecision, "opaque");
    ASSERT_TRUE(lsn.ok());
    foreign_lsn = *lsn;
    ASSERT_TRUE((*shard)->WaitDurable(*lsn).ok());
    hooks.pinned = foreign_lsn;  // the layer above still needs it: the WAL keeps it
    ASSERT_TRUE((*shard)->Checkpoint().ok());
    ASSERT_TRUE((*shard)->Close(false).ok());
  }
  FakeHooks hooks;
  auto shard = Shard::Open(0, OptionsFor(dir), &hooks);
  ASSERT_TRUE(shard.ok()) << shard.status();
  ASSERT_EQ(hooks.loaded.count("fake-table"), 1u);
  EXPECT_EQ(hooks.loaded["fake-table"],
            (std::vector<std::pair<std::string, std::string>>{{"k1", "v1"}, {"k2", "v2"}}));
  // Below the checkpoint, but kept: replayed as applied, for the hooks only.
  ASSERT_EQ(hooks.redone.size(), 1u);
  EXPECT_EQ(hooks.redone[0].lsn, foreign_lsn);
  EXPECT_TRUE(hooks.redone[0].applied);
  EXPECT_EQ(hooks.redone[0].payload, "opaque");
}

}  // namespace
}  // namespace shardtx::engine
