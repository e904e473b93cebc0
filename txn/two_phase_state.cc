#include "txn/two_phase_state.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "txn/txn_records.h"

namespace shardtx::txn {

TwoPhaseState::TwoPhaseState(uint32_t num_shards) {
  MutexLock l(&mu_);
  locks_.resize(num_shards);
  read_locks_.resize(num_shards);
  tables_.resize(num_shards);
}

std::string TwoPhaseState::DescribeLocked(uint64_t txn_id) const {
  auto p = prepared_.find(txn_id);
  std::string name = p != prepared_.end() && !p->second.name.empty()
                         ? absl::StrCat(" ('", p->second.name, "')")
                         : "";
  return absl::StrCat("prepared transaction ", txn_id, name);
}

std::optional<std::string> TwoPhaseState::LockHolder(uint32_t shard,
                                                     absl::string_view key) const {
  if (locked_keys_.load(std::memory_order_acquire) == 0) return std::nullopt;
  MutexLock l(&mu_);
  auto it = locks_[shard].find(key);
  if (it == locks_[shard].end()) return std::nullopt;
  return DescribeLocked(it->second.front());
}

std::optional<std::string> TwoPhaseState::LockHolderInRange(uint32_t shard, absl::string_view lower,
                                                            absl::string_view upper) const {
  if (locked_keys_.load(std::memory_order_acquire) == 0) return std::nullopt;
  MutexLock l(&mu_);
  auto it = locks_[shard].lower_bound(lower);
  if (it == locks_[shard].end() || (!upper.empty() && it->first >= upper)) return std::nullopt;
  return absl::StrCat(DescribeLocked(it->second.front()), " (on key '",
                      absl::CHexEscape(it->first.substr(0, 64)), "')");
}

std::optional<std::string> TwoPhaseState::ReadLockHolder(uint32_t shard,
                                                         absl::string_view key) const {
  if (read_lock_count_.load(std::memory_order_acquire) == 0) return std::nullopt;
  MutexLock l(&mu_);
  if (auto it = read_locks_[shard].find(key); it != read_locks_[shard].end()) {
    return absl::StrCat(DescribeLocked(it->second.front()), ", which read it");
  }
  for (const RangeLock& r : range_locks_) {
    if (key >= r.lower && (r.upper.empty() || key < r.upper)) {
      return absl::StrCat(DescribeLocked(r.txn_id), ", which read a range holding it");
    }
  }
  return std::nullopt;
}

void TwoPhaseState::AddReadLocks(uint64_t txn_id,
                                 std::vector<std::pair<uint32_t, std::string>> keys,
                                 std::vector<std::pair<std::string, std::string>> ranges) {
  MutexLock l(&mu_);
  auto it = prepared_.find(txn_id);
  if (it == prepared_.end() || it->second.read_locked) return;
  PreparedTxn& t = it->second;
  t.read_locked = true;
  for (const auto& [shard, key] : keys) read_locks_[shard][key].push_back(txn_id);
  for (const auto& [lower, upper] : ranges) range_locks_.push_back({txn_id, lower, upper});
  read_lock_count_.fetch_add(keys.size() + ranges.size(), std::memory_order_release);
  t.read_keys = std::move(keys);
  t.read_ranges = std::move(ranges);
}

void TwoPhaseState::ForgetLocked(absl::node_hash_map<uint64_t, PreparedTxn>::iterator it) {
  const uint64_t txn_id = it->first;
  PreparedTxn& t = it->second;
  for (const auto& [shard, key] : t.read_keys) {
    auto rk = read_locks_[shard].find(key);
    if (rk == read_locks_[shard].end()) continue;
    Holders& h = rk->second;
    h.erase(std::remove(h.begin(), h.end(), txn_id), h.end());
    if (h.empty()) read_locks_[shard].erase(rk);
  }
  if (!t.read_ranges.empty()) {
    range_locks_.erase(std::remove_if(range_locks_.begin(), range_locks_.end(),
                                      [&](const RangeLock& r) { return r.txn_id == txn_id; }),
                       range_locks_.end());
  }
  if (t.read_locked) {
    read_lock_count_.fetch_sub(t.read_keys.size() + t.read_ranges.size(),
                               std::memory_order_release);
  }
  if (!t.name.empty()) {
    auto n = names_.find(t.name);
    if (n != names_.end() && n->second == txn_id) {
      names_.erase(n);
      // During recovery a later prepare of the same name may have been replayed after this
      // one took the name (this one was resolved in memory before the later one prepared,
      // but its resolution was not yet durable): the name is the later one's now.
      for (const auto& [other_id, other] : prepared_) {
        if (other_id != txn_id && other.name == t.name) {
          names_.emplace(t.name, other_id);
          break;
        }
      }
    }
  }
  if (t.commit_ts != 0) with_commit_ts_.fetch_sub(1);
  prepared_.erase(it);
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

void TwoPhaseState::ReleaseName(const std::string& name, uint64_t txn_id) {
  MutexLock l(&mu_);
  auto n = names_.find(name);
  if (n != names_.end() && n->second == txn_id) names_.erase(n);
}

void TwoPhaseState::AddPart(uint64_t txn_id, const std::string& name, Timestamp snapshot,
                            absl::Span<const uint32_t> participants, uint32_t shard, Lsn lsn,
                            std::vector<engine::Write> writes, bool persisted) {
  MutexLock l(&mu_);
  auto [created_it, created] = prepared_.try_emplace(txn_id);
  PreparedTxn& t = created_it->second;
  if (created) {
    // Committed at a known timestamp already (another part's commit redone first): this part
    // commits at it too.
    t.commit_ts = WindowCommitTs(txn_id);
    if (t.commit_ts != 0) with_commit_ts_.fetch_add(1);
  }
  t.name = name;
  t.snapshot = snapshot;
  t.participants.assign(participants.begin(), participants.end());
  if (!name.empty()) names_.try_emplace(name, txn_id);  // an older replayed one never steals it
  Part& p = t.parts[shard];
  if (p.persisted && !persisted) return;  // already known from the table, locks included
  for (const engine::Write& w : writes) {
    Holders& h = locks_[shard][w.key];
    if (std::find(h.begin(), h.end(), txn_id) != h.end()) continue;
    h.push_back(txn_id);
    if (h.size() == 1) locked_keys_++;
  }
  p.writes = std::move(writes);
  p.lsn = lsn;
  p.persisted = persisted;
}

void TwoPhaseState::MarkInDoubt(uint64_t txn_id) {
  MutexLock l(&mu_);
  auto it = prepared_.find(txn_id);
  if (it != prepared_.end()) it->second.phase = Phase::kInDoubt;
}

std::optional<TwoPhaseState::SavedPart> TwoPhaseState::SavePart(uint64_t txn_id,
                                                                 uint32_t shard) const {
  MutexLock l(&mu_);
  auto it = prepared_.find(txn_id);
  if (it == prepared_.end()) return std::nullopt;
  auto p = it->second.parts.find(shard);
  if (p == it->second.parts.end()) return std::nullopt;
  const PreparedTxn& t = it->second;
  return SavedPart{t.name,           t.snapshot,        t.participants, p->second.lsn,
                   p->second.persisted, p->second.writes, t.read_keys,    t.read_ranges};
}

void TwoPhaseState::RestorePart(uint64_t txn_id, uint32_t shard, SavedPart saved) {
  AddPart(txn_id, saved.name, saved.snapshot, saved.participants, shard, saved.lsn,
          std::move(saved.writes), saved.persisted);
  AddReadLocks(txn_id, std::move(saved.read_keys), std::move(saved.read_ranges));
  MarkInDoubt(txn_id);
  MutexLock l(&mu_);
  tables_[shard].deletes.erase(txn_id);  // it is prepared again: its row stays
  tables_[shard].rows_kept.erase(txn_id);
}

void TwoPhaseState::MarkPrepared(uint64_t txn_id) {
  MutexLock l(&mu_);
  auto it = prepared_.find(txn_id);
  if (it != prepared_.end() && it->second.phase == Phase::kPreparing) {
    it->second.phase = Phase::kPrepared;
  }
}

void TwoPhaseState::ReturnToPrepared(uint64_t txn_id) {
  MutexLock l(&mu_);
  auto it = prepared_.find(txn_id);
  if (it == prepared_.end()) return;
  PreparedTxn& t = it->second;
  bool complete = t.parts.size() == t.participants.size();
  for (uint32_t s : t.participants) complete = complete && t.parts.count(s) != 0;
  t.phase = complete ? Phase::kPrepared : Phase::kPreparing;
}

void TwoPhaseState::MarkPreparedIfComplete(uint64_t txn_id) {
  MutexLock l(&mu_);
  auto it = prepared_.find(txn_id);
  if (it == prepared_.end() || it->second.phase != Phase::kPreparing) return;
  const PreparedTxn& t = it->second;
  if (t.parts.size() != t.participants.size()) return;
  for (uint32_t s : t.participants) {
    if (t.parts.count(s) == 0) return;
  }
  it->second.phase = Phase::kPrepared;
}

void TwoPhaseState::SetCommitTs(uint64_t txn_id, Timestamp ts) {
  if (ts == 0) return;
  MutexLock l(&mu_);
  auto it = prepared_.find(txn_id);
  if (it == prepared_.end()) return;
  if (it->second.commit_ts == 0) with_commit_ts_.fetch_add(1);
  it->second.commit_ts = ts;
}

std::pair<Timestamp, uint64_t> TwoPhaseState::KnownCommitFloor(uint32_t shard) const {
  if (with_commit_ts_.load() == 0) return {0, 0};
  MutexLock l(&mu_);
  std::pair<Timestamp, uint64_t> floor{0, 0};
  for (const auto& [id, txn] : prepared_) {
    if (txn.commit_ts != 0 && txn.parts.count(shard) != 0 &&
        (floor.second == 0 || txn.commit_ts < floor.first)) {
      floor = {txn.commit_ts, id};
    }
  }
  return floor;
}

void TwoPhaseState::MarkResolving(uint64_t txn_id, bool commit) {
  MutexLock l(&mu_);
  auto it = prepared_.find(txn_id);
  if (it == prepared_.end() || it->second.phase == Phase::kInDoubt) return;
  it->second.phase = commit ? Phase::kCommitting : Phase::kRollingBack;
}

void TwoPhaseState::DropShard(uint32_t shard) {
  MutexLock l(&mu_);
  std::vector<uint64_t> ids;
  for (const auto& [id, t] : prepared_) {
    if (t.parts.count(shard) != 0) ids.push_back(id);
  }
  for (uint64_t id : ids) {
    auto it = prepared_.find(id);
    auto p = it->second.parts.find(shard);
    UnlockLocked(id, shard, p->second.writes);
    it->second.parts.erase(p);
    if (it->second.parts.empty()) ForgetLocked(it);
  }
  tables_[shard] = TableState();
}

std::pair<Timestamp, uint64_t> TwoPhaseState::PreparedFloor(uint32_t shard) const {
  MutexLock l(&mu_);
  std::pair<Timestamp, uint64_t> floor{0, 0};
  for (const auto& [id, txn] : prepared_) {
    if (txn.parts.count(shard) != 0 && (floor.second == 0 || txn.snapshot < floor.first)) {
      floor = {txn.snapshot, id};
    }
  }
  return floor;
}

std::string TwoPhaseState::DescribeForTesting() const {
  MutexLock l(&mu_);
  std::vector<uint64_t> ids;
  for (const auto& [id, t] : prepared_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  std::string out;
  for (uint64_t id : ids) {
    const PreparedTxn& t = prepared_.at(id);
    const auto n = names_.find(t.name);
    const bool listed =
        !t.name.empty() && t.phase == Phase::kPrepared && n != names_.end() && n->second == id;
    absl::StrAppend(&out, "txn ", id, " '", t.name, "'", listed ? " listed" : "", " participants ",
                    absl::StrJoin(t.participants, ","), "\n");
    for (const auto& [shard, part] : t.parts) {
      absl::StrAppend(&out, "  part ", shard, ":");
      for (const engine::Write& w : part.writes) {
        absl::StrAppend(&out, " ", w.op == engine::WriteOp::kDelete ? "-" : "+", w.key);
      }
      absl::StrAppend(&out, "\n");
    }
    for (const auto& [shard, key] : t.read_keys) {
      absl::StrAppend(&out, "  read ", shard, ":", key, "\n");
    }
    for (const auto& [lower, upper] : t.read_ranges) {
      absl::StrAppend(&out, "  range [", lower, ", ", upper, ")\n");
    }
  }
  for (size_t shard = 0; shard < locks_.size(); ++shard) {
    for (const auto& [key, holders] : locks_[shard]) {
      absl::StrAppend(&out, "lock ", shard, ":", key, " by ", absl::StrJoin(holders, ","), "\n");
    }
  }
  absl::StrAppend(&out, "locked keys ", locked_keys_.load(), ", read locks ",
                  read_lock_count_.load(), "\n");
  return out;
}

TwoPhaseState::PreparedInfo TwoPhaseState::InfoLocked(uint64_t txn_id,
                                                      const PreparedTxn& t) const {
  PreparedInfo info{txn_id, t.name, t.snapshot, {}, t.participants};
  info.commit_begun = t.phase == Phase::kCommitting;
  info.abort_begun = t.phase == Phase::kRollingBack;
  info.commit_ts = t.commit_ts;
  for (const auto& [shard, part] : t.parts) info.shards.push_back(shard);
  return info;
}

absl::StatusOr<TwoPhaseState::PreparedInfo> TwoPhaseState::Claim(const std::string& name,
                                                                 bool commit) {
  MutexLock l(&mu_);
  auto n = names_.find(name);
  auto it = n == names_.end() ? prepared_.end() : prepared_.find(n->second);
  if (it == prepared_.end() || it->second.phase == Phase::kPreparing) {
    return absl::NotFoundError(absl::StrCat("no prepared transaction named '", name, "'"));
  }
  PreparedTxn& t = it->second;
  if (t.phase == Phase::kInDoubt) {
    return absl::FailedPreconditionError(absl::StrCat(
        "prepared transaction '", name, "' (transaction ", it->first,
        ") is in doubt after a failed resolution: reopen the database to learn its outcome"));
  }
  if (t.phase != Phase::kPrepared) {
    return absl::FailedPreconditionError(absl::StrCat(
        "prepared transaction '", name, "' (transaction ", it->first, ") is being ",
        t.phase == Phase::kCommitting ? "committed" : "rolled back", " by another caller"));
  }
  t.phase = commit ? Phase::kCommitting : Phase::kRollingBack;
  return InfoLocked(it->first, t);
}

bool TwoPhaseState::HasPart(uint64_t txn_id, uint32_t shard) const {
  MutexLock l(&mu_);
  auto it = prepared_.find(txn_id);
  return it != prepared_.end() && it->second.parts.count(shard) > 0;
}

void TwoPhaseState::UnlockLocked(uint64_t txn_id, uint32_t shard,
                                 const std::vector<engine::Write>& writes) {
  for (const engine::Write& w : writes) {
    auto lk = locks_[shard].find(w.key);
    if (lk == locks_[shard].end()) continue;
    Holders& h = lk->second;
    auto mine = std::find(h.begin(), h.end(), txn_id);
    if (mine == h.end()) continue;
    h.erase(mine);
    if (h.empty()) {
      locks_[shard].erase(lk);
      locked_keys_--;
    }
  }
}

std::optional<std::vector<engine::Write>> TwoPhaseState::ResolvePart(uint64_t txn_id,
                                                                     uint32_t shard) {
  return Resolve(txn_id, shard, /*logged=*/true);
}

std::optional<std::vector<engine::Write>> TwoPhaseState::ResolvePartUnlogged(uint64_t txn_id,
                                                                             uint32_t shard) {
  return Resolve(txn_id, shard, /*logged=*/false);
}

std::optional<std::vector<engine::Write>> TwoPhaseState::Resolve(uint64_t txn_id, uint32_t shard,
                                                                 bool logged) {
  MutexLock l(&mu_);
  auto it = prepared_.find(txn_id);
  if (it == prepared_.end()) return std::nullopt;
  auto p = it->second.parts.find(shard);
  if (p == it->second.parts.end()) return std::nullopt;
  if (!logged) {
    tables_[shard].rows_kept[txn_id] =
        p->second.persisted ? std::string() : RowLocked(txn_id, it->second, shard);
  }
  std::vector<engine::Write> writes = std::move(p->second.writes);
  UnlockLocked(txn_id, shard, writes);
  if (logged && (p->second.persisted || p->second.pending)) tables_[shard].deletes.insert(txn_id);
  it->second.parts.erase(p);
  if (it->second.parts.empty()) ForgetLocked(it);
  return writes;
}

void TwoPhaseState::ResolvedPartLogged(uint64_t txn_id, uint32_t shard) {
  MutexLock l(&mu_);
  TableState& ts = tables_[shard];
  // The row may be in LMDB (persisted, or written by a checkpoint since): delete it.
  if (ts.rows_kept.erase(txn_id) != 0) ts.deletes.insert(txn_id);
}

std::string TwoPhaseState::RowLocked(uint64_t txn_id, const PreparedTxn& t, uint32_t shard) const {
  PrepareRecord r{txn_id, t.name, t.snapshot, t.participants, t.parts.at(shard).writes, {}, {}};
  if (!t.participants.empty() && shard == t.participants.front()) {
    for (const auto& [s, key] : t.read_keys) r.read_keys.push_back(key);
    r.read_ranges = t.read_ranges;
  }
  return EncodePrepare(r);
}

std::vector<TwoPhaseState::PreparedInfo> TwoPhaseState::AllPrepared() const {
  MutexLock l(&mu_);
  std::vector<PreparedInfo> out;
  for (const auto& [id, t] : prepared_) out.push_back(InfoLocked(id, t));
  std::sort(out.begin(), out.end(),
            [](const PreparedInfo& a, const PreparedInfo& b) { return a.txn_id < b.txn_id; });
  return out;
}

std::optional<TwoPhaseState::PreparedInfo> TwoPhaseState::Prepared(uint64_t txn_id) const {
  MutexLock l(&mu_);
  auto it = prepared_.find(txn_id);
  if (it == prepared_.end()) return std::nullopt;
  return InfoLocked(it->first, it->second);
}

std::vector<std::string> TwoPhaseState::Names() const {
  MutexLock l(&mu_);
  std::vector<std::string> out;
  for (const auto& [name, id] : names_) {
    auto it = prepared_.find(id);
    if (it != prepared_.end() && it->second.phase == Phase::kPrepared) out.push_back(name);
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

std::vector<engine::TableWrite> TwoPhaseState::CheckpointTables(uint32_t shard) {
  MutexLock l(&mu_);
  std::vector<engine::TableWrite> out;
  TableState& ts = tables_[shard];
  ts.puts_in_flight.clear();
  ts.deletes_in_flight.assign(ts.deletes.begin(), ts.deletes.end());
  for (uint64_t id : ts.deletes_in_flight) {
    out.push_back({kPreparedTable, PreparedTableKey(id), std::nullopt});
  }
  for (auto& [id, t] : prepared_) {
    auto p = t.parts.find(shard);
    if (p == t.parts.end() || p->second.persisted) continue;
    out.push_back({kPreparedTable, PreparedTableKey(id), RowLocked(id, t, shard)});
    p->second.pending = true;
    ts.puts_in_flight.push_back(id);
  }
  for (const auto& [id, row] : ts.rows_kept) {
    if (!row.empty()) out.push_back({kPreparedTable, PreparedTableKey(id), row});
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

Lsn TwoPhaseState::PinnedLsn(uint32_t shard, const std::function<Lsn(uint32_t)>& durable_lsn,
                             std::vector<uint32_t>* waiting_on) {
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
      // Every participant's commit record is durable (the coordinator's comes after the
      // decision in its WAL, so the decision is too): forget it.
      decisions_.erase(it++);
      continue;
    }
    if (d.coordinator == shard) pin(d.lsn);
    // Parallel commit: while the decision is not durable (or could not be logged: lsn 0),
    // this participant's commit record stays in its WAL. Once its part is resolved, nothing
    // else keeps its prepare (the WAL below it may go, its prepared-table row is deleted), and
    // recovery would otherwise find no evidence here and abort a committed transaction.
    if (d.lsn == 0 || durable_lsn(d.coordinator) < d.lsn) {
      for (const auto& [s, lsn] : d.commit_lsns) {
        if (s != shard) continue;
        pin(lsn);
        if (waiting_on != nullptr && d.lsn != 0 &&
            std::find(waiting_on->begin(), waiting_on->end(), d.coordinator) == waiting_on->end()) {
          waiting_on->push_back(d.coordinator);
        }
      }
    }
    ++it;
  }
  return pinned;
}

void TwoPhaseState::SetOutcome(uint64_t txn_id, Database::Outcome outcome, Timestamp commit_ts) {
  OutcomeStripe& st = outcomes_[txn_id % kStripes];
  MutexLock l(&st.mu);
  auto [it, inserted] = st.map.try_emplace(txn_id);
  it->second.outcome = outcome;
  if (commit_ts != 0) it->second.commit_ts = commit_ts;
  if (inserted) {
    st.order.push_back(txn_id);
    if (st.order.size() > kOutcomeWindow / kStripes) {
      st.map.erase(st.order.front());
      st.order.pop_front();
    }
  }
}

bool TwoPhaseState::PreparedUnnamed(uint64_t txn_id) const {
  MutexLock l(&mu_);
  auto it = prepared_.find(txn_id);
  return it != prepared_.end() && it->second.name.empty();
}

Database::Outcome TwoPhaseState::GetOutcome(uint64_t txn_id) const {
  {
    MutexLock l(&mu_);
    if (prepared_.count(txn_id)) return Database::Outcome::kPrepared;
  }
  return WindowOutcome(txn_id);
}

Database::Outcome TwoPhaseState::WindowOutcome(uint64_t txn_id) const {
  OutcomeStripe& st = outcomes_[txn_id % kStripes];
  MutexLock l(&st.mu);
  auto it = st.map.find(txn_id);
  return it == st.map.end() ? Database::Outcome::kUnknown : it->second.outcome;
}

Timestamp TwoPhaseState::WindowCommitTs(uint64_t txn_id) const {
  OutcomeStripe& st = outcomes_[txn_id % kStripes];
  MutexLock l(&st.mu);
  auto it = st.map.find(txn_id);
  return it == st.map.end() ? 0 : it->second.commit_ts;
}

}  // namespace shardtx::txn
