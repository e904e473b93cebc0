#include "txn/two_phase_state.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "txn/txn_records.h"

namespace shardtx::txn {

TwoPhaseState::TwoPhaseState(uint32_t num_shards) {
  MutexLock l(&mu_);
  locks_.resize(num_shards);
  tables_.resize(num_shards);
}

std::optional<std::string> TwoPhaseState::LockHolder(uint32_t shard,
                                                     absl::string_view key) const {
  if (locked_keys_.load(std::memory_order_acquire) == 0) return std::nullopt;
  MutexLock l(&mu_);
  auto it = locks_[shard].find(key);
  if (it == locks_[shard].end()) return std::nullopt;
  auto p = prepared_.find(it->second);
  std::string name = p != prepared_.end() && !p->second.name.empty()
                         ? absl::StrCat(" ('", p->second.name, "')")
                         : "";
  return absl::StrCat("prepared transaction ", it->second, name);
}

absl::Status TwoPhaseState::ReserveName(const std::string& name, uint64_t txn_id) {
  MutexLock l(&mu_);
  auto [it, inserted] = names_.try_emplace(name, txn_id);
  if (!inserted) {
    return absl::AlreadyExistsError(absl::StrCat("a prepared transaction is already named '",
                                                 name, "' (transaction ", it->second, ")"));
  }
  return absl::OkStatus();
}

void TwoPhaseState::ReleaseName(const std::string& name) {
  MutexLock l(&mu_);
  names_.erase(name);
}

void TwoPhaseState::AddPart(uint64_t txn_id, const std::string& name, Timestamp snapshot,
                            const std::vector<uint32_t>& participants, uint32_t shard, Lsn lsn,
                            std::vector<engine::Write> writes, bool persisted) {
  MutexLock l(&mu_);
  PreparedTxn& t = prepared_[txn_id];
  t.name = name;
  t.snapshot = snapshot;
  t.participants = participants;
  if (!name.empty()) names_.try_emplace(name, txn_id);  // an older replayed one never steals it
  for (const engine::Write& w : writes) {
    if (locks_[shard].try_emplace(w.key, txn_id).second) locked_keys_++;
  }
  Part& p = t.parts[shard];
  if (p.persisted && !persisted) return;  // already known from the table
  p.writes = std::move(writes);
  p.lsn = lsn;
  p.persisted = persisted;
}

bool TwoPhaseState::HasPart(uint64_t txn_id, uint32_t shard) const {
  MutexLock l(&mu_);
  auto it = prepared_.find(txn_id);
  return it != prepared_.end() && it->second.parts.count(shard) > 0;
}

std::optional<std::vector<engine::Write>> TwoPhaseState::ResolvePart(uint64_t txn_id,
                                                                     uint32_t shard) {
  MutexLock l(&mu_);
  auto it = prepared_.find(txn_id);
  if (it == prepared_.end()) return std::nullopt;
  auto p = it->second.parts.find(shard);
  if (p == it->second.parts.end()) return std::nullopt;
  std::vector<engine::Write> writes = std::move(p->second.writes);
  for (const engine::Write& w : writes) {
    auto lk = locks_[shard].find(w.key);
    if (lk != locks_[shard].end() && lk->second == txn_id) {
      locks_[shard].erase(lk);
      locked_keys_--;
    }
  }
  if (p->second.persisted || p->second.pending) tables_[shard].deletes.insert(txn_id);
  it->second.parts.erase(p);
  if (it->second.parts.empty()) {
    if (!it->second.name.empty()) {
      auto n = names_.find(it->second.name);
      if (n != names_.end() && n->second == txn_id) names_.erase(n);
    }
    prepared_.erase(it);
  }
  return writes;
}

std::optional<TwoPhaseState::PreparedInfo> TwoPhaseState::FindByName(
    const std::string& name) const {
  MutexLock l(&mu_);
  auto n = names_.find(name);
  if (n == names_.end()) return std::nullopt;
  auto it = prepared_.find(n->second);
  if (it == prepared_.end()) return std::nullopt;
  PreparedInfo info{n->second, it->second.name, it->second.snapshot, {},
                    it->second.participants};
  for (const auto& [shard, part] : it->second.parts) info.shards.push_back(shard);
  return info;
}

std::vector<TwoPhaseState::PreparedInfo> TwoPhaseState::AllPrepared() const {
  MutexLock l(&mu_);
  std::vector<PreparedInfo> out;
  for (const auto& [id, t] : prepared_) {
    PreparedInfo info{id, t.name, t.snapshot, {}, t.participants};
    for (const auto& [shard, part] : t.parts) info.shards.push_back(shard);
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(),
            [](const PreparedInfo& a, const PreparedInfo& b) { return a.txn_id < b.txn_id; });
  return out;
}

std::vector<std::string> TwoPhaseState::Names() const {
  MutexLock l(&mu_);
  std::vector<std::string> out;
  for (const auto& [name, id] : names_) {
    if (prepared_.count(id)) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

size_t TwoPhaseState::InDoubt() const {
  MutexLock l(&mu_);
  return prepared_.size();
}

void TwoPhaseState::AddDecision(uint64_t txn_id, uint32_t coordinator, Lsn lsn,
                                size_t participants) {
  MutexLock l(&mu_);
  Decision& d = decisions_[txn_id];
  d.coordinator = coordinator;
  d.lsn = lsn;
  d.participants = participants;
}

void TwoPhaseState::AddCommitLsn(uint64_t txn_id, uint32_t shard, Lsn lsn) {
  MutexLock l(&mu_);
  auto it = decisions_.find(txn_id);
  if (it != decisions_.end()) it->second.commit_lsns.emplace_back(shard, lsn);
}

std::vector<engine::ShardStore::TableWrite> TwoPhaseState::CheckpointTables(uint32_t shard) {
  MutexLock l(&mu_);
  std::vector<engine::ShardStore::TableWrite> out;
  TableState& ts = tables_[shard];
  ts.puts_in_flight.clear();
  ts.deletes_in_flight.assign(ts.deletes.begin(), ts.deletes.end());
  for (uint64_t id : ts.deletes_in_flight) {
    out.push_back({engine::kPreparedTable, PreparedTableKey(id), std::nullopt});
  }
  for (auto& [id, t] : prepared_) {
    auto p = t.parts.find(shard);
    if (p == t.parts.end() || p->second.persisted) continue;
    PrepareRecord r{id, t.name, t.snapshot, t.participants, p->second.writes};
    out.push_back({engine::kPreparedTable, PreparedTableKey(id), EncodePrepare(r)});
    p->second.pending = true;
    ts.puts_in_flight.push_back(id);
  }
  return out;
}

void TwoPhaseState::CheckpointCommitted(uint32_t shard) {
  MutexLock l(&mu_);
  TableState& ts = tables_[shard];
  for (uint64_t id : ts.puts_in_flight) {
    auto it = prepared_.find(id);
    if (it == prepared_.end()) continue;
    auto p = it->second.parts.find(shard);
    if (p != it->second.parts.end() && p->second.pending) {
      p->second.persisted = true;
      p->second.pending = false;
    }
  }
  for (uint64_t id : ts.deletes_in_flight) ts.deletes.erase(id);
  ts.puts_in_flight.clear();
  ts.deletes_in_flight.clear();
}

Lsn TwoPhaseState::PinnedLsn(uint32_t shard, const std::function<Lsn(uint32_t)>& durable_lsn) {
  MutexLock l(&mu_);
  Lsn pinned = 0;
  auto pin = [&](Lsn lsn) {
    if (lsn != 0 && (pinned == 0 || lsn < pinned)) pinned = lsn;
  };
  for (const auto& [id, t] : prepared_) {
    auto p = t.parts.find(shard);
    if (p != t.parts.end() && !p->second.persisted) pin(p->second.lsn);
  }
  for (auto it = decisions_.begin(); it != decisions_.end();) {
    const Decision& d = it->second;
    bool ended = d.commit_lsns.size() >= d.participants;
    for (const auto& [s, lsn] : d.commit_lsns) ended = ended && durable_lsn(s) >= lsn;
    if (ended) {
      decisions_.erase(it++);  // every participant's commit record is durable: forget it
      continue;
    }
    if (d.coordinator == shard) pin(d.lsn);
    ++it;
  }
  return pinned;
}

void TwoPhaseState::SetOutcome(uint64_t txn_id, Database::Outcome outcome) {
  OutcomeStripe& st = outcomes_[txn_id % kStripes];
  MutexLock l(&st.mu);
  auto [it, inserted] = st.map.insert_or_assign(txn_id, outcome);
  if (inserted) {
    st.order.push_back(txn_id);
    if (st.order.size() > kOutcomeWindow / kStripes) {
      st.map.erase(st.order.front());
      st.order.pop_front();
    }
  }
}

Database::Outcome TwoPhaseState::GetOutcome(uint64_t txn_id) const {
  {
    MutexLock l(&mu_);
    if (prepared_.count(txn_id)) return Database::Outcome::kPrepared;
  }
  OutcomeStripe& st = outcomes_[txn_id % kStripes];
  MutexLock l(&st.mu);
  auto it = st.map.find(txn_id);
  return it == st.map.end() ? Database::Outcome::kUnknown : it->second;
}

}  // namespace shardtx::txn
