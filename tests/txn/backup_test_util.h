// Helpers for the backup tests (tests/txn/backup_*_test.cc, tests/crash/backup_kill_test.cc): a
// bank over 4 shards whose writers count their acknowledged transfers in ledgers, and the
// checks a restored copy must pass.
#pragma once

#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "shardtx/database.h"

namespace shardtx::testing {

inline constexpr int kBankAccounts = 200;
inline constexpr int64_t kBankInitial = 100;

inline std::string BankAccount(int i) { return absl::StrCat("acct/", 1000 + i); }
// Writer w's count of its acknowledged transfers, written in each of its transfers.
inline std::string BankLedger(int w) { return absl::StrCat("ledger/", w); }

// 4 shards, hash partitioning: most transfers touch two or three shards. Small segments and
// checkpoint triggers, so that checkpoints and segment rolls happen during a backup.
inline Options BankOptions(const std::string& dir) {
  Options o;
  o.path = dir;
  o.num_shards = 4;
  o.wal_segment_size = 256 << 10;
  o.max_txn_bytes = 64 << 10;
  o.checkpoint_wal_bytes = 128 << 10;
  o.checkpoint_overlay_bytes = 64 << 10;
  o.checkpoint_txn_bytes = 4 << 10;
  o.checkpoint_interval = absl::ZeroDuration();
  return o;
}

inline absl::Status FundBank(Database* db) {
  auto t = db->Begin();
  for (int i = 0; i < kBankAccounts; ++i) {
    absl::Status s = t->Put(BankAccount(i), std::to_string(kBankInitial));
    if (!s.ok()) return s;
  }
  return t->Commit();
}

inline int64_t ValueOr0(const absl::StatusOr<std::string>& v) {
  return v.ok() ? std::stoll(*v) : 0;
}

// One transfer of writer `w` between two random accounts, counted in its ledger. The status of
// Commit (kAborted on a conflict), or of a read that failed.
inline absl::Status BankTransfer(Database* db, int w, std::mt19937_64& rng) {
  const int a = static_cast<int>(rng() % kBankAccounts);
  const int b = static_cast<int>((a + 1 + rng() % (kBankAccounts - 1)) % kBankAccounts);
  auto t = db->Begin();
  auto va = t->Get(BankAccount(a));
  auto vb = t->Get(BankAccount(b));
  auto ledger = t->Get(BankLedger(w));
  if (!va.ok()) return va.status();
  if (!vb.ok()) return vb.status();
  if (!ledger.ok() && !absl::IsNotFound(ledger.status())) return ledger.status();
  const int64_t amount = static_cast<int64_t>(rng() % 10);
  t->Put(BankAccount(a), std::to_string(std::stoll(*va) - amount)).IgnoreError();
  t->Put(BankAccount(b), std::to_string(std::stoll(*vb) + amount)).IgnoreError();
  t->Put(BankLedger(w), std::to_string(ValueOr0(ledger) + 1)).IgnoreError();
  return t->Commit();
}

// Opens the copy at `dir`, checks that it is exact (every account there, the total unchanged)
// and that its recovery found every log ending cleanly; returns each writer's ledger.
inline std::vector<int64_t> CheckBankCopy(const std::string& dir, int writers) {
  std::vector<int64_t> ledgers(writers, -1);
  Options o = BankOptions(dir);
  o.create_if_missing = false;
  auto db = Database::Open(o);
  EXPECT_TRUE(db.ok()) << "the copy does not open: " << db.status();
  if (!db.ok()) return ledgers;
  for (const ShardStatsView& s : (*db)->GetStats().shards) {
    EXPECT_FALSE(s.recovery_torn_tail) << "shard " << s.shard << " of the copy ends torn";
  }
  auto t = (*db)->Begin();
  int64_t total = 0;
  for (int i = 0; i < kBankAccounts; ++i) {
    auto v = t->Get(BankAccount(i));
    EXPECT_TRUE(v.ok()) << BankAccount(i) << ": " << v.status();
    total += ValueOr0(v);
  }
  EXPECT_EQ(total, kBankAccounts * kBankInitial) << "the copy created or destroyed money";
  for (int w = 0; w < writers; ++w) ledgers[w] = ValueOr0(t->Get(BankLedger(w)));
  return ledgers;
}

// Directories next to `dest` left by backups in progress or interrupted.
inline std::vector<std::string> PartialsOf(const std::string& dest) {
  std::vector<std::string> out;
  const std::filesystem::path d(dest);
  for (const auto& e : std::filesystem::directory_iterator(d.parent_path())) {
    const std::string name = e.path().filename().string();
    if (absl::StartsWith(name, d.filename().string() + ".partial-")) out.push_back(e.path());
  }
  return out;
}

}  // namespace shardtx::testing
