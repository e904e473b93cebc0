// TransactionImpl: snapshot reads across shards, a private write buffer, and the commit path
// (one phase for a single shard; cross-shard commits use two-phase commit).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/types/span.h"
#include "engine/replicated_log.h"
#include "engine/shard.h"
#include "shardtx/options.h"
#include "shardtx/transaction.h"
#include "txn/async_commits.h"
#include "txn/coordinator.h"

namespace shardtx::txn {

class DatabaseImpl;

class TransactionImpl final : public Transaction {
 public:
  TransactionImpl(DatabaseImpl* db, const TxnOptions& options);
  ~TransactionImpl() override;

  absl::StatusOr<std::string> Get(absl::string_view key) override;
  absl::Status Put(absl::string_view key, absl::string_view value) override;
  absl::Status Delete(absl::string_view key) override;
  std::unique_ptr<Iterator> NewIterator(const IteratorOptions& options) override;
  absl::Status Commit() override;
  absl::Status CommitAsync(CommitCallback done) override;
  absl::Status Rollback() override;
  absl::Status Prepare(absl::string_view name) override;
  uint64_t id() const override { return id_; }
  uint64_t commit_timestamp() const override { return commit_ts_; }
  uint64_t snapshot_timestamp() const override { return snapshot_; }

  // For the iterator.
  absl::StatusOr<engine::Shard::View*> ViewOf(uint32_t shard);
  using WriteBuffer = absl::btree_map<std::string, std::optional<std::string>, std::less<>>;
  const WriteBuffer& writes() const { return writes_; }
  DatabaseImpl* db() { return db_; }
  void RecordRange(absl::string_view lower, absl::string_view upper);
  absl::Status CheckActive() const;
  bool active() const { return state_ == State::kActive; }

 private:
  // The snapshot (and, with one shard, its view); on a database with replicated shards, between
  // two ReadStamps of each replicated shard (read_stamps_).
  void TakeSnapshot();
  void TakeReplicatedSnapshot();
  // TxnOptions::follower_read on a replicated database: the node's safe timestamp, or
  // follower_error_ when it is staler than max_staleness.
  void TakeFollowerSnapshot();
  // kFailedPrecondition for a follower-read transaction.
  absl::Status CheckWritable() const;
  // Commit on a database with a replicated shard: read-only, one shard written, or several
  // (CommitCrossShardReplicated). The reads of replicated shards are confirmed
  // (ConfirmReplicatedReads) or, on the shards written, covered by their entries (ProposeLocked
  // gets the stamp's term).
  absl::Status CommitOnReplicatedDatabase(std::chrono::steady_clock::time_point start);
  // The transaction is committed (counted as a commit begun at `start`, or read-only): over.
  absl::Status Committed(bool wrote, std::chrono::steady_clock::time_point start);
  // The replicated shards whose views this transaction pinned (read, or pinned at Begin).
  absl::InlinedVector<uint32_t, 4> ReplicatedShardsPinned() const;
  // Blocks until each of `shards` confirmed that it still led, after the snapshot, the term it
  // led when the snapshot was taken (ReplicatedLog::ConfirmReads). kUnavailable otherwise.
  absl::Status ConfirmReplicatedReads(absl::Span<const uint32_t> shards);
  // The write sets by shard, and the shards a commit must lock: those written, plus (when
  // serializable) those read. Moves the write buffer out.
  absl::StatusOr<CommitPlan> MakePlan();
  // One shard written: validate, log one commit record, install, wait for the fsync.
  // (Several: the Coordinator's two-phase commit.)
  absl::Status CommitOnePhase(CommitPlan& plan);
  // One replicated shard written (DatabaseImpl::AttachReplicatedLog): validate, install
  // invisibly, propose one entry; visible and acknowledged once this replica releases it.
  // kUnavailable (no effect) on a replica that is not the ready leader; kUnknown if leadership
  // was lost while the entry was in flight (the writes are taken back here; the entry may still
  // commit, and is then applied here by redo).
  absl::Status CommitReplicated(CommitPlan& plan, engine::ReplicatedLog* log);
  // Several shards written, every one replicated (docs/replicated-2pc-plan.md section 3): on a
  // node that is the ready leader of every participant in the terms the reads were stamped in,
  // Coordinator::CommitReplicated. Otherwise kUnavailable naming each participant's leader as
  // this node knows it, nothing proposed.
  absl::Status CommitCrossShardReplicated(CommitPlan& plan);
  // ConfirmReplicatedReads of the shards `read` but not `written` (ascending): a written shard's
  // entry confirms its reads.
  absl::Status ConfirmReplicatedReadsBesides(absl::InlinedVector<uint32_t, 4> read,
                                             absl::Span<const uint32_t> written);
  // Prepare(name) on a database with replicated shards (txn/replicated_named.cc): on the ready
  // leader of every part in the terms the reads were stamped in (else kUnavailable naming each
  // part's leader, no effect), the reads of `read` (replicated shards pinned) not written
  // confirmed, then Coordinator::PrepareReplicated.
  absl::Status PrepareReplicated(Coordinator::PrepareRequest& request,
                                 absl::InlinedVector<uint32_t, 4> read);
  // The commit's validation: write conflicts and locks on every part, and (serializable) the
  // reads on every involved shard. REQUIRES: every involved shard's commit lock.
  absl::Status ValidateLocked(const CommitPlan& plan);
  // Serializable: fails if something read on `shard` changed after the snapshot.
  // REQUIRES: the shard's commit lock.
  absl::Status ValidateReadsLocked(uint32_t shard);
  absl::Status ValidateWritesLocked(uint32_t shard, const std::vector<engine::Write>& writes);
  void Finish();
  // Takes over `from`'s state (snapshot, writes, reads, views, its place among the live
  // transactions), leaving it over: a cross-shard CommitAsync commits the copy on another
  // thread, since the caller may destroy `from` at once.
  explicit TransactionImpl(TransactionImpl* from);
  // The shards the buffered writes go to number more than one.
  bool WritesSeveralShards() const { return several_shards_; }
  // Put and Delete, for a key new to the write buffer (already in it): keeps first_shard_ and
  // several_shards_.
  void NoteWrittenShard(absl::string_view key);
  // CommitAsync of a transaction writing one shard: validate, log, install, queue for the
  // fsync. An error means nothing was logged (or installed) and `commit` is dropped.
  absl::Status CommitOnePhaseAsync(CommitPlan& plan, std::unique_ptr<AsyncCommit> commit);

  DatabaseImpl* const db_;
  const TxnOptions options_;
  const uint64_t id_;
  uint64_t snapshot_ = 0;
  uint64_t commit_ts_ = 0;
  enum class State { kActive, kCommitted, kAborted, kPrepared } state_ = State::kActive;
  WriteBuffer writes_;
  uint64_t write_bytes_ = 0;
  // The shard of the first key written, and whether another key went to another shard: a
  // commit of one shard's writes needs no partitioning.
  uint32_t first_shard_ = 0;
  bool several_shards_ = false;
  std::vector<std::unique_ptr<engine::Shard::View>> views_;  // by shard, pinned lazily
  bool live_ = true;  // counted in the database's live transactions until Finish
  // Serializable read tracking.
  absl::btree_set<std::string> reads_;
  std::vector<std::pair<std::string, std::string>> ranges_;
  // Replicated shards only: by shard, where the snapshot stands in its leadership.
  std::vector<engine::ReplicatedLog::ReadStamp> read_stamps_;
  // A follower read whose node could not promise max_staleness: every read and Commit get it.
  absl::Status follower_error_;
};

}  // namespace shardtx::txn
