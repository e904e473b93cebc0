// TxnIds (txn/txn_ids.h): unreplicated ids as before; replicated ids node:16|incarnation:16|
// counter:32, the counter's wrap carried into an incarnation persisted first, and refusal when
// that cannot be done.
#include "txn/txn_ids.h"

#include <vector>

#include "gtest/gtest.h"

namespace shardtx::txn {
namespace {

TEST(TxnIds, UnreplicatedIdsAreARandomBasePlusACounter) {
  TxnIds ids;
  const uint64_t first = ids.Next();
  EXPECT_EQ(first & 0xFFFFFFFF, 1u);
  EXPECT_EQ(ids.Next(), first + 1);
  EXPECT_FALSE(ids.replicated());
  EXPECT_FALSE(ids.Own(first));
}

TEST(TxnIds, ReplicatedIdsNameNodeAndIncarnation) {
  TxnIds ids;
  ids.UseNode(3, 7, nullptr);
  const uint64_t id = ids.Next();
  EXPECT_EQ(id, TxnIds::Make(3, 7, 1));
  EXPECT_EQ(TxnIds::NodeOf(id), 3u);
  EXPECT_EQ(TxnIds::IncarnationOf(id), 7u);
  EXPECT_EQ(TxnIds::CounterOf(id), 1u);
  EXPECT_TRUE(ids.Own(id));
  EXPECT_FALSE(ids.Own(TxnIds::Make(3, 6, 1)));  // an earlier incarnation: another process
  EXPECT_FALSE(ids.Own(TxnIds::Make(4, 7, 1)));  // another node
}

TEST(TxnIds, CounterWrapPersistsTheNextIncarnationFirst) {
  TxnIds ids;
  std::vector<uint64_t> persisted;
  ids.UseNode(2, 5, [&](uint64_t incarnation) {
    persisted.push_back(incarnation);
    return absl::OkStatus();
  });
  ids.SkipTo(0xFFFFFFFF);
  EXPECT_EQ(ids.Next(), TxnIds::Make(2, 5, 0xFFFFFFFF));
  EXPECT_TRUE(persisted.empty());
  const uint64_t wrapped = ids.Next();
  EXPECT_EQ(wrapped, TxnIds::Make(2, 6, 0));
  EXPECT_EQ(persisted, std::vector<uint64_t>{6});
  EXPECT_EQ(ids.Next(), TxnIds::Make(2, 6, 1));
  EXPECT_EQ(persisted.size(), 1u);
  EXPECT_TRUE(ids.Own(wrapped));
  EXPECT_TRUE(ids.Own(TxnIds::Make(2, 5, 3)));  // both incarnations are this process's
}

TEST(TxnIds, NoIdWhenTheIncarnationCannotBePersisted) {
  TxnIds ids;
  ids.UseNode(2, 5, [](uint64_t) { return absl::UnavailableError("disk full"); });
  ids.SkipTo(0xFFFFFFFF);
  EXPECT_NE(ids.Next(), 0u);
  EXPECT_EQ(ids.Next(), 0u);
  EXPECT_EQ(ids.Next(), 0u);
  EXPECT_TRUE(absl::IsUnavailable(ids.error())) << ids.error();
}

TEST(TxnIds, NoIdPastTheLastIncarnation) {
  TxnIds ids;
  ids.UseNode(2, TxnIds::kMaxIncarnation, [](uint64_t) { return absl::OkStatus(); });
  ids.SkipTo(0xFFFFFFFF);
  EXPECT_EQ(ids.Next(), TxnIds::Make(2, TxnIds::kMaxIncarnation, 0xFFFFFFFF));
  EXPECT_EQ(ids.Next(), 0u);
  EXPECT_TRUE(absl::IsResourceExhausted(ids.error())) << ids.error();
}

}  // namespace
}  // namespace shardtx::txn
