#include "txn/transaction_impl.h"

#include <chrono>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "txn/database_impl.h"
#include "txn/merge_iterator.h"
#include "util/kill_point.h"
#include "util/status_macros.h"

namespace shardtx::txn {

SHARDTX_DEFINE_KILL_POINT(commit_after_append, "commit.after_wal_append");
SHARDTX_DEFINE_KILL_POINT(commit_after_durable, "commit.after_durable");

namespace {

wal::Durability ToWal(Durability d) {
  switch (d) {
    case Durability::kSync:
      return wal::Durability::kSync;
    case Durability::kAsync:
      return wal::Durability::kAsync;
    case Durability::kNone:
      return wal::Durability::kNone;
  }
  return wal::Durability::kSync;
}

std::string Printable(absl::string_view key) {
  std::string k = absl::CHexEscape(key.substr(0, 64));
  if (key.size() > 64) k += "...";
  return "'" + k + "'";
}

}  // namespace

TransactionImpl::TransactionImpl(DatabaseImpl* db, const TxnOptions& options)
    : db_(db), options_(options) {
  views_.resize(db->num_shards());
  snapshot_ = db_->oracle().BeginSnapshot();
  snapshot_registered_ = true;
  // With one shard, pin it now: a snapshot pinned at Begin can never be "too old". A
  // checkpoint may have moved LMDB past the snapshot just read; then take a newer one.
  if (db_->num_shards() == 1) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      auto v = db_->shard(0)->Pin(snapshot_);
      if (v.ok()) {
        views_[0] = std::move(*v);
        break;
      }
      if (!absl::IsAborted(v.status())) break;  // surfaces again on first use
      db_->oracle().EndSnapshot(snapshot_);
      snapshot_ = db_->oracle().BeginSnapshot();
    }
  }
}

TransactionImpl::~TransactionImpl() {
  if (state_ == State::kActive) Rollback().IgnoreError();
  Finish();
}

void TransactionImpl::Finish() {
  for (auto& v : views_) v.reset();
  if (snapshot_registered_) {
    db_->oracle().EndSnapshot(snapshot_);
    snapshot_registered_ = false;
  }
}

absl::Status TransactionImpl::CheckActive() const {
  if (state_ != State::kActive) {
    return absl::FailedPreconditionError("transaction already committed or rolled back");
  }
  return absl::OkStatus();
}

absl::StatusOr<engine::Shard::View*> TransactionImpl::ViewOf(uint32_t shard) {
  if (views_[shard] == nullptr) {
    auto v = db_->shard(shard)->Pin(snapshot_);
    if (!v.ok()) {
      if (absl::IsAborted(v.status())) db_->counters().aborts_snapshot_too_old++;
      return v.status();
    }
    views_[shard] = std::move(*v);
  }
  return views_[shard].get();
}

absl::StatusOr<std::string> TransactionImpl::Get(absl::string_view key) {
  RETURN_IF_ERROR(CheckActive());
  if (auto it = writes_.find(key); it != writes_.end()) {
    if (!it->second.has_value()) return absl::NotFoundError(Printable(key));
    return *it->second;
  }
  const uint32_t shard = db_->partitioner().ShardOf(key);
  ASSIGN_OR_RETURN(engine::Shard::View * view, ViewOf(shard));
  if (options_.isolation == Isolation::kSerializable) reads_.insert(std::string(key));
  ASSIGN_OR_RETURN(std::optional<engine::Found> f, engine::Shard::Get(view, key));
  if (!f.has_value() || f->tombstone) return absl::NotFoundError(Printable(key));
  return std::move(f->value);
}

absl::Status TransactionImpl::Put(absl::string_view key, absl::string_view value) {
  RETURN_IF_ERROR(CheckActive());
  auto [it, inserted] = writes_.try_emplace(key);
  if (!inserted) write_bytes_ -= it->first.size() + (it->second ? it->second->size() : 0);
  it->second = std::string(value);
  write_bytes_ += key.size() + value.size();
  return absl::OkStatus();
}

absl::Status TransactionImpl::Delete(absl::string_view key) {
  RETURN_IF_ERROR(CheckActive());
  auto [it, inserted] = writes_.try_emplace(key);
  if (!inserted) write_bytes_ -= it->first.size() + (it->second ? it->second->size() : 0);
  it->second.reset();
  write_bytes_ += key.size();
  return absl::OkStatus();
}

void TransactionImpl::RecordRange(absl::string_view lower, absl::string_view upper) {
  if (options_.isolation == Isolation::kSerializable) {
    ranges_.emplace_back(std::string(lower), std::string(upper));
  }
}

std::unique_ptr<Iterator> TransactionImpl::NewIterator(const IteratorOptions& options) {
  return std::make_unique<MergeIterator>(this, options);
}

absl::Status TransactionImpl::Rollback() {
  RETURN_IF_ERROR(CheckActive());
  state_ = State::kAborted;
  db_->counters().rollbacks++;
  Finish();
  return absl::OkStatus();
}

absl::Status TransactionImpl::ValidateWritesLocked(uint32_t shard,
                                                   const std::vector<engine::Write>& writes) {
  engine::Shard* s = db_->shard(shard);
  for (const engine::Write& w : writes) {
    ASSIGN_OR_RETURN(engine::Timestamp ts, s->LatestTsLocked(w.key));
    if (ts > snapshot_) {
      db_->counters().aborts_write_conflict++;
      return absl::AbortedError(absl::StrCat(
          "write-write conflict on key ", Printable(w.key), " (shard ", shard,
          ", commit phase): committed at ts ", ts, " after this snapshot ", snapshot_));
    }
  }
  return absl::OkStatus();
}

absl::Status TransactionImpl::ValidateReadsLocked(uint32_t shard) {
  if (options_.isolation != Isolation::kSerializable) return absl::OkStatus();
  engine::Shard* s = db_->shard(shard);
  for (const std::string& key : reads_) {
    if (db_->partitioner().ShardOf(key) != shard) continue;
    ASSIGN_OR_RETURN(engine::Timestamp ts, s->LatestTsLocked(key));
    if (ts > snapshot_) {
      db_->counters().aborts_read_validation++;
      return absl::AbortedError(absl::StrCat(
          "serializable validation failed: key ", Printable(key), " (shard ", shard,
          ") read at snapshot ", snapshot_, " was changed at ts ", ts));
    }
  }
  for (const auto& [lower, upper] : ranges_) {
    ASSIGN_OR_RETURN(bool newer, s->AnyNewerInRangeLocked(lower, upper, snapshot_));
    if (newer) {
      db_->counters().aborts_read_validation++;
      return absl::AbortedError(absl::StrCat("serializable validation failed: range [",
                                             Printable(lower), ", ", Printable(upper),
                                             ") on shard ", shard, " changed after snapshot ",
                                             snapshot_));
    }
  }
  return absl::OkStatus();
}

absl::Status TransactionImpl::Commit() {
  RETURN_IF_ERROR(CheckActive());
  const auto start = std::chrono::steady_clock::now();
  auto fail = [&](absl::Status s) {
    state_ = State::kAborted;
    Finish();
    return s;
  };
  for (auto& v : views_) v.reset();  // release LMDB readers early
  if (writes_.empty()) {
    state_ = State::kCommitted;
    db_->counters().read_only_commits++;
    Finish();
    return absl::OkStatus();
  }
  if (write_bytes_ + 16 * writes_.size() > db_->options().max_txn_bytes) {
    db_->counters().aborts_too_large++;
    return fail(absl::ResourceExhaustedError(
        absl::StrCat("transaction of ", write_bytes_, " bytes in ", writes_.size(),
                     " writes exceeds Options.max_txn_bytes ", db_->options().max_txn_bytes)));
  }
  std::vector<std::vector<engine::Write>> by_shard(db_->num_shards());
  uint32_t write_shards = 0, last = 0;
  for (auto& [key, value] : writes_) {
    const uint32_t s = db_->partitioner().ShardOf(key);
    if (by_shard[s].empty()) {
      ++write_shards;
      last = s;
    }
    engine::Write w;
    w.op = value.has_value() ? engine::WriteOp::kPut : engine::WriteOp::kDelete;
    w.key = key;
    if (value.has_value()) w.value = std::move(*value);
    by_shard[s].push_back(std::move(w));
  }
  writes_.clear();
  if (write_shards > 1 ||
      (options_.isolation == Isolation::kSerializable && !reads_.empty() &&
       db_->num_shards() > 1)) {
    return fail(absl::UnimplementedError("cross-shard commit"));
  }
  absl::Status s = CommitOneShard(last, by_shard[last]);
  if (!s.ok()) return fail(s);
  state_ = State::kCommitted;
  db_->counters().commits++;
  db_->counters().commit_latency_us.Add(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                            start)
          .count()));
  Finish();
  return absl::OkStatus();
}

absl::Status TransactionImpl::CommitOneShard(uint32_t shard, std::vector<engine::Write>& writes) {
  engine::Shard* s = db_->shard(shard);
  s->WaitForSpace();
  engine::Lsn lsn;
  {
    MutexLock l(s->commit_mu());
    RETURN_IF_ERROR(ValidateWritesLocked(shard, writes));
    RETURN_IF_ERROR(ValidateReadsLocked(shard));
    commit_ts_ = db_->oracle().Assign();
    auto appended = s->AppendLocked(engine::kCommit, engine::EncodeCommit(commit_ts_, writes),
                                    ToWal(options_.durability));
    if (!appended.ok()) {
      db_->oracle().Finish(commit_ts_);  // nothing installed under it
      commit_ts_ = 0;
      db_->counters().aborts_io_error++;
      return appended.status();
    }
    lsn = *appended;
    s->InstallLocked(writes, commit_ts_);
    if (options_.durability == Durability::kSync) {
      db_->RegisterDurableCommit(shard, lsn, commit_ts_);
    } else {
      db_->oracle().Finish(commit_ts_);  // visible now; durable soon (async) or later (none)
    }
  }
  SHARDTX_KILL_POINT("commit.after_wal_append");
  if (options_.durability == Durability::kSync) {
    absl::Status d = s->WaitDurable(lsn);
    if (!d.ok()) {
      // The log is poisoned. Nobody has seen the versions (visible_ts is below commit_ts_):
      // take them back. The record may still have reached the disk; an I/O status means the
      // outcome is unknown until the database is reopened.
      {
        MutexLock l(s->commit_mu());
        s->UninstallLocked(writes, commit_ts_);
      }
      db_->oracle().Finish(commit_ts_);
      db_->counters().aborts_io_error++;
      commit_ts_ = 0;
      return d;
    }
  }
  SHARDTX_KILL_POINT("commit.after_durable");
  if (options_.durability == Durability::kSync) db_->FinishDurableCommits(shard);
  // Read-your-commits: a transaction begun after Commit returns sees this one.
  db_->oracle().WaitVisible(commit_ts_);
  return absl::OkStatus();
}

}  // namespace shardtx::txn
