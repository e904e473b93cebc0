// The shardtx tool's stat on a replicated database: the node manifest and each shard's Raft
// position, from a real one-member cluster on 127.0.0.1, and the records a replica's kRaftEntry
// records carry counted as the replica redoes them (a prepare inside one is listed).
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engine/log_record.h"
#include "gtest/gtest.h"
#include "shardtx/database.h"
#include "tests/replication/free_ports.h"
#include "tests/tools/shardtx_cli_util.h"
#include "txn/txn_records.h"
#include "wal/writer.h"

namespace shardtx::testing {
namespace {

// The unsigned number after `field` ("\"applied_index\":") at or after `from` in `json`; -1 if
// absent.
int64_t NumberAfter(const std::string& json, const std::string& field, size_t from = 0) {
  const size_t at = json.find(field, from);
  if (at == std::string::npos) return -1;
  size_t end = at + field.size();
  while (end < json.size() && json[end] >= '0' && json[end] <= '9') ++end;
  int64_t v = -1;
  if (!absl::SimpleAtoi(json.substr(at + field.size(), end - at - field.size()), &v)) return -1;
  return v;
}

// A one-member replicated database of two shards, `per_shard` commits on each, closed.
std::string ReplicatedDb(int per_shard) {
  const std::string dir = FreshDir("_replicated");
  const auto members = replication::LoopbackMembers(1, 2);
  Options o = replication::LoopbackNodeOptions(dir, 2, 1, "stat-cluster", members);
  auto db = Database::Open(o);
  EXPECT_TRUE(db.ok()) << db.status();
  if (!db.ok()) return dir;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  for (bool ready = false; !ready && absl::Now() < deadline;) {
    ready = true;
    for (const auto& l : (*db)->Leadership()) ready = ready && l.ready;
    if (!ready) absl::SleepFor(absl::Milliseconds(10));  // polled against the deadline
  }
  for (int i = 0; i < per_shard; ++i) {
    for (const char* prefix : {"a", "b"}) {  // 'a...' on shard 0, 'b...' on shard 1
      EXPECT_TRUE(PutOne(db->get(), absl::StrCat(prefix, "-key-", i), "value").ok());
    }
  }
  EXPECT_TRUE((*db)->Close().ok());
  return dir;
}

TEST(ShardtxCliReplicated, StatShowsTheNodeAndEachShardsRaftPosition) {
  const std::string dir = ReplicatedDb(6);
  CliResult json = RunCli({"stat", dir, "--json"});
  ASSERT_EQ(json.code, 0) << Describe(json);
  EXPECT_TRUE(absl::StrContains(
      json.out, "\"replication\":{\"node_id\":1,\"cluster_id\":\"stat-cluster\",\"incarnation\":"))
      << json.out;
  EXPECT_TRUE(absl::StrContains(json.out, "\"members\":[{\"id\":1,\"address\":\"127.0.0.1:"))
      << json.out;
  // Each shard applied its six commits' entries, after its bootstrap configuration entry (and
  // the barrier of its leader's term), and keeps libraft's files.
  size_t from = 0;
  for (int shard = 0; shard < 2; ++shard) {
    from = json.out.find(absl::StrCat("{\"shard\":", shard, ","), from);
    ASSERT_NE(from, std::string::npos) << json.out;
    EXPECT_GE(NumberAfter(json.out, "\"applied_index\":", from), 7) << json.out;
    EXPECT_GE(NumberAfter(json.out, "\"applied_term\":", from), 1) << json.out;
    EXPECT_GE(NumberAfter(json.out, "\"entries_in_wal\":", from), 6) << json.out;
    EXPECT_GE(NumberAfter(json.out, "\"files\":", from), 1) << json.out;
  }
  CliResult text = RunCli({"stat", dir});
  ASSERT_EQ(text.code, 0) << Describe(text);
  EXPECT_TRUE(absl::StrContains(text.out, "replicated: node 1 of cluster stat-cluster"))
      << text.out;
  EXPECT_TRUE(absl::StrContains(text.out, "; Raft: applied entry ")) << text.out;

  // An unreplicated database says so.
  const std::string plain = FreshDir("_plain");
  {
    auto db = OpenOrDie(SmallDb(plain, 1, /*keep_wal=*/true));
    EXPECT_TRUE(PutOne(db.get(), "k", "v").ok());
    EXPECT_TRUE(db->Close().ok());
  }
  json = RunCli({"stat", plain, "--json"});
  ASSERT_EQ(json.code, 0) << Describe(json);
  EXPECT_TRUE(absl::StrContains(json.out, "\"replication\":null")) << json.out;
  EXPECT_FALSE(absl::StrContains(json.out, "\"raft\":")) << json.out;
}

// A replica's prepare reaches its WAL inside a kRaftEntry record: stat lists it as prepared
// until a commit record of it (inside another entry) resolves it.
TEST(ShardtxCliReplicated, StatListsAPrepareCarriedByARaftEntry) {
  const std::string dir = ReplicatedDb(1);
  txn::PrepareRecord p;
  p.txn_id = 0xabcdef;
  p.name = "carried";
  p.snapshot_ts = 1;
  p.participants = {0};
  p.writes = {engine::Write{engine::WriteOp::kPut, "a-prepared", "v"}};
  std::string entry;
  engine::AppendEntryRecord(&entry, engine::kPrepare, txn::EncodePrepare(p));
  {
    auto w = wal::WalWriter::OpenAfterScan(Env::Default(), dir + "/shard-000/wal", {});
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE(
        (*w)->Append(engine::kRaftEntry, engine::EncodeRaftEntry({1000, 9}, entry),
                     wal::Durability::kSync)
            .ok());
    ASSERT_TRUE((*w)->Close().ok());
  }
  CliResult r = RunCli({"stat", dir, "--json"});
  ASSERT_EQ(r.code, 0) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.out, "\"prepared\":[{\"txn\":11259375,\"name\":\"carried\""))
      << r.out;
  EXPECT_EQ(NumberAfter(r.out, "\"applied_index\":", r.out.find("{\"shard\":0,")), 1000)
      << r.out;

  std::string commit;
  engine::AppendEntryRecord(&commit, engine::kCommitPrepared, txn::EncodeTxnTs(p.txn_id, 5));
  {
    auto w = wal::WalWriter::OpenAfterScan(Env::Default(), dir + "/shard-000/wal", {});
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE(
        (*w)->Append(engine::kRaftEntry, engine::EncodeRaftEntry({1001, 9}, commit),
                     wal::Durability::kSync)
            .ok());
    ASSERT_TRUE((*w)->Close().ok());
  }
  r = RunCli({"stat", dir, "--json"});
  ASSERT_EQ(r.code, 0) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.out, "\"prepared\":[]")) << r.out;
  EXPECT_EQ(NumberAfter(r.out, "\"applied_index\":", r.out.find("{\"shard\":0,")), 1001)
      << r.out;
}

}  // namespace
}  // namespace shardtx::testing
