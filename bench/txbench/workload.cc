#include "bench/txbench/workload.h"

#include <algorithm>
#include <cstdint>
#include <functional>

#include "absl/strings/str_cat.h"

namespace txbench {
namespace {

// Appends `n` distinct keys of `shard`.
void PickDistinctInShard(const KeySpace& keys, uint32_t shard, uint32_t n, Rng& rng,
                         std::vector<uint64_t>* out) {
  const size_t start = out->size();
  while (out->size() - start < n) {
    const uint64_t k = keys.PickInShard(shard, rng);
    if (std::find(out->begin() + static_cast<ptrdiff_t>(start), out->end(), k) == out->end()) {
      out->push_back(k);
    }
  }
}

void PlanSingle(const WorkloadParams& p, const KeySpace& keys, Rng& rng, TxnPlan* plan) {
  plan->kind = TxnPlan::Kind::kReadWrite;
  plan->cross_shard = false;
  const auto shard = static_cast<uint32_t>(rng.Uniform(keys.num_shards()));
  PickDistinctInShard(keys, shard, p.shards_per_txn, rng, &plan->keys);
}

void PlanCross(const WorkloadParams& p, const KeySpace& keys, Rng& rng, TxnPlan* plan) {
  plan->kind = TxnPlan::Kind::kReadWrite;
  plan->cross_shard = true;
  uint32_t shards[64];
  uint32_t n = 0;
  while (n < p.shards_per_txn) {
    const auto s = static_cast<uint32_t>(rng.Uniform(keys.num_shards()));
    if (std::find(shards, shards + n, s) == shards + n) shards[n++] = s;
  }
  for (uint32_t i = 0; i < n; ++i) plan->keys.push_back(keys.PickInShard(shards[i], rng));
}

void PlanYcsb(double read_fraction, const KeySpace& keys, Rng& rng, TxnPlan* plan) {
  plan->kind = rng.NextDouble() < read_fraction ? TxnPlan::Kind::kReadOnly : TxnPlan::Kind::kUpdate;
  plan->cross_shard = false;
  plan->keys.push_back(keys.PickAny(rng));
}

}  // namespace

uint64_t TxnPlan::ops() const {
  switch (kind) {
    case Kind::kReadWrite:
      return 2 * keys.size();
    case Kind::kReadOnly:
    case Kind::kUpdate:
      return keys.size();
    case Kind::kBank:
      return 4;
  }
  return 0;
}

void NextPlan(const WorkloadParams& p, const KeySpace& keys, Rng& rng, TxnPlan* plan) {
  plan->keys.clear();
  switch (p.workload) {
    case Workload::kSingle:
      PlanSingle(p, keys, rng, plan);
      break;
    case Workload::kCross:
      PlanCross(p, keys, rng, plan);
      break;
    case Workload::kMixed:
      if (rng.NextDouble() * 100 < p.cross_pct) {
        PlanCross(p, keys, rng, plan);
      } else {
        PlanSingle(p, keys, rng, plan);
      }
      break;
    case Workload::kYcsbA:
      PlanYcsb(0.5, keys, rng, plan);
      break;
    case Workload::kYcsbB:
      PlanYcsb(0.95, keys, rng, plan);
      break;
    case Workload::kReadonly:
      plan->kind = TxnPlan::Kind::kReadOnly;
      plan->cross_shard = false;
      for (uint32_t i = 0; i < p.shards_per_txn; ++i) plan->keys.push_back(keys.PickAny(rng));
      break;
    case Workload::kBank: {
      plan->kind = TxnPlan::Kind::kBank;
      const uint64_t a = keys.PickAny(rng);
      uint64_t b = keys.PickAny(rng);
      while (b == a) b = rng.Uniform(keys.size());
      plan->keys = {a, b};
      plan->cross_shard = keys.ShardOfIndex(a) != keys.ShardOfIndex(b);
      plan->bank_first_pays = (rng.Next() & 1) != 0;
      plan->bank_amount = static_cast<uint32_t>(1 + rng.Uniform(100));
      break;
    }
    case Workload::kFsync:
    case Workload::kDsync:
      break;
  }
  std::sort(plan->keys.begin(), plan->keys.end());
}

absl::Status Execute(const TxnPlan& plan, const KeySpace& keys, Session& session, Rng& rng,
                     uint32_t value_size) {
  return Execute(plan, keys, session, rng, value_size, [](Session& s) { return s.Commit(); });
}

absl::Status Execute(const TxnPlan& plan, const KeySpace& keys, Session& session, Rng& rng,
                     uint32_t value_size, const std::function<absl::Status(Session&)>& commit) {
  auto fail = [&](absl::Status s, const std::string& key) {
    session.Rollback();
    if (absl::IsNotFound(s)) {
      return absl::DataLossError(absl::StrCat("preloaded key ", key, " not found"));
    }
    return s;
  };
  std::string key;
  switch (plan.kind) {
    case TxnPlan::Kind::kReadOnly: {
      session.Begin(plan.keys.size() == 1 ? TxnShape::kSingleRead : TxnShape::kReadOnly);
      for (uint64_t k : plan.keys) {
        keys.KeyInto(k, &key);
        auto v = session.Get(key);
        if (!v.ok()) return fail(v.status(), key);
      }
      break;
    }
    case TxnPlan::Kind::kUpdate:
    case TxnPlan::Kind::kReadWrite: {
      session.Begin(TxnShape::kReadWrite);
      for (uint64_t k : plan.keys) {
        keys.KeyInto(k, &key);
        if (plan.kind == TxnPlan::Kind::kReadWrite) {
          auto v = session.Get(key);
          if (!v.ok()) return fail(v.status(), key);
        }
        absl::Status s = session.Put(key, keys.RandomValue(rng));
        if (!s.ok()) return fail(s, key);
      }
      break;
    }
    case TxnPlan::Kind::kBank: {
      session.Begin(TxnShape::kReadWrite);
      const std::string k0 = keys.Key(plan.keys[0]), k1 = keys.Key(plan.keys[1]);
      auto v0 = session.GetForUpdate(k0);
      if (!v0.ok()) return fail(v0.status(), k0);
      auto v1 = session.GetForUpdate(k1);
      if (!v1.ok()) return fail(v1.status(), k1);
      int64_t b0 = DecodeBalance(*v0), b1 = DecodeBalance(*v1);
      if (b0 < 0 || b1 < 0) {
        session.Rollback();
        return absl::DataLossError(absl::StrCat("bank: account ", b0 < 0 ? k0 : k1,
                                                " does not hold a balance: '", b0 < 0 ? *v0 : *v1,
                                                "'"));
      }
      int64_t& from = plan.bank_first_pays ? b0 : b1;
      int64_t& to = plan.bank_first_pays ? b1 : b0;
      const int64_t amount = std::min<int64_t>(plan.bank_amount, from);
      from -= amount;
      to += amount;
      absl::Status s = session.Put(k0, EncodeBalance(b0, value_size));
      if (!s.ok()) return fail(s, k0);
      s = session.Put(k1, EncodeBalance(b1, value_size));
      if (!s.ok()) return fail(s, k1);
      break;
    }
  }
  absl::Status s = commit(session);
  if (!s.ok()) session.Rollback();
  return s;
}

absl::Status Preload(Engine& engine, const KeySpace& keys, bool bank, uint32_t value_size,
                     uint32_t batch, const std::function<void(uint64_t)>& progress) {
  std::unique_ptr<Session> session = engine.NewSession();
  uint64_t done = 0;
  const std::string balance = EncodeBalance(kInitialBalance, value_size);
  for (uint32_t shard = 0; shard < keys.num_shards(); ++shard) {
    const std::vector<uint64_t>& of_shard = keys.KeysOfShard(shard);
    for (size_t i = 0; i < of_shard.size(); i += batch) {
      const size_t end = std::min(of_shard.size(), i + batch);
      for (int attempt = 0;; ++attempt) {
        session->Begin(TxnShape::kReadWrite);
        absl::Status s;
        for (size_t j = i; j < end && s.ok(); ++j) {
          const uint64_t k = of_shard[j];
          s = session->Put(keys.Key(k), bank ? absl::string_view(balance) : keys.InitialValue(k));
        }
        if (s.ok()) s = session->Commit();
        if (s.ok()) break;
        session->Rollback();
        if (!absl::IsAborted(s) || attempt >= 100) {
          return absl::Status(s.code(), absl::StrCat("preload: ", s.message()));
        }
      }
      done += end - i;
      if (progress) progress(done);
    }
  }
  return absl::OkStatus();
}

std::vector<uint64_t> AccountGroups(const KeySpace& keys, uint32_t k) {
  const uint32_t shards = keys.num_shards();
  size_t per_shard = SIZE_MAX;
  for (uint32_t s = 0; s < shards; ++s) per_shard = std::min(per_shard, keys.KeysOfShard(s).size());
  std::vector<uint64_t> out;
  if (k < 2 || k > shards) return out;
  out.reserve(per_shard * k);
  for (size_t j = 0; j < per_shard; ++j) {
    const size_t first = out.size();
    for (uint32_t i = 0; i < k; ++i) out.push_back(keys.KeysOfShard((j + i) % shards)[j]);
    std::sort(out.begin() + static_cast<ptrdiff_t>(first), out.end());
  }
  return out;
}

absl::StatusOr<int64_t> BankTotal(Engine& engine, const KeySpace& keys) {
  std::unique_ptr<Session> session = engine.NewSession();
  session->Begin(TxnShape::kReadOnly);
  int64_t total = 0;
  for (uint64_t k = 0; k < keys.size(); ++k) {
    const std::string key = keys.Key(k);
    auto v = session->Get(key);
    if (!v.ok()) {
      session->Rollback();
      return absl::DataLossError(
          absl::StrCat("bank check: reading account ", key, ": ", v.status().ToString()));
    }
    const int64_t b = DecodeBalance(*v);
    if (b < 0) {
      session->Rollback();
      return absl::DataLossError(
          absl::StrCat("bank check: account ", key, " holds '", *v, "', not a balance"));
    }
    total += b;
  }
  absl::Status s = session->Commit();
  if (!s.ok()) return s;
  return total;
}

}  // namespace txbench
