#include "replication/shard_replica.h"

#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "engine/log_record.h"
#include "replication/shard_machine.h"
#include "replication/snapshot_install.h"
#include "util/coding.h"
#include "util/status_macros.h"

namespace shardtx::replication {

namespace {

constexpr size_t kTagSize = 20;  // u64 marked origin, u64 sequence, u32 length of the records

// The top 16 bits of a part's first u64: kPartMark, then the origin in the low 48 bits. An entry
// written before packing (u64 origin, u64 sequence, then the records to the end) starts with the
// origin alone, whose top 16 bits are zero: (server << 32) ^ a 32-bit nonce, with server ids of at
// most 16 bits (TxnIds::kMaxNode); so its first u64 never carries the mark.
constexpr int kMarkShift = 48;
constexpr uint64_t kPartMark = 0xFACE;
constexpr uint64_t kOriginMask = (uint64_t{1} << kMarkShift) - 1;

// One proposal's part of an entry's payload (several when the group packed them).
struct Part {
  uint64_t origin = 0;
  uint64_t seq = 0;
  absl::string_view records;
};

// Splits `payload` into its tagged parts; false unless it is one or more well-formed parts and
// nothing else. An entry of the format before packing is one part (its records run to the end).
bool DecodeParts(absl::string_view payload, std::vector<Part>* parts) {
  parts->clear();
  uint64_t first = 0;
  if (absl::string_view peek = payload; GetFixed64(&peek, &first) && first >> kMarkShift == 0) {
    Part part;
    if (!GetFixed64(&payload, &part.origin) || !GetFixed64(&payload, &part.seq)) return false;
    part.records = payload;
    parts->push_back(part);
    return true;
  }
  while (!payload.empty()) {
    Part part;
    uint64_t marked = 0;
    uint32_t len = 0;
    if (!GetFixed64(&payload, &marked) || marked >> kMarkShift != kPartMark ||
        !GetFixed64(&payload, &part.seq) || !GetFixed32(&payload, &len) || payload.size() < len) {
      return false;
    }
    part.origin = marked & kOriginMask;
    part.records = payload.substr(0, len);
    payload.remove_prefix(len);
    parts->push_back(part);
  }
  return !parts->empty();
}

uint64_t NewOrigin(uint64_t server) {
  std::random_device rd;
  return ((server << 32) ^ rd()) & kOriginMask;  // unchanged for server ids below 2^16
}

}  // namespace

ShardReplica::ShardReplica(const ShardReplicaOptions& options, engine::Shard* shard)
    : options_(options), shard_(shard), origin_(NewOrigin(options.server)) {
  MutexLock l(&state_mu_);
  not_ready_ = absl::StrCat("server ", options_.server, " of shard ", options_.shard_id,
                            ": leadership not known yet");
}

ShardReplica::~ShardReplica() {
  {
    MutexLock r(&read_mu_);
    for (ReadWaiter& w : read_waiters_) {
      ++reads_failed_;
      w.check->Done(absl::UnavailableError(
          absl::StrCat("server ", options_.server, " of shard ", options_.shard_id,
                       " closed while a read-only commit waited for its barrier; no effect")));
    }
    read_waiters_.clear();
  }
  MutexLock l(shard_->commit_mu());
  AbandonLocked("the replica closed");
}

void ShardReplica::SetListener(Listener* listener) { listener_ = listener; }

absl::Status ShardReplica::first_error() const {
  MutexLock l(shard_->commit_mu());
  return first_error_;
}

size_t ShardReplica::waiting() const {
  MutexLock l(shard_->commit_mu());
  return in_flight_.size() + queue_.size();
}

absl::Status ShardReplica::CheckLeader() {
  MutexLock l(&state_mu_);
  if (ready_) return absl::OkStatus();
  return absl::UnavailableError(not_ready_);
}

absl::Status ShardReplica::CheckLeads(uint64_t term, absl::string_view what) {
  MutexLock l(&state_mu_);
  if (ready_ && term == term_) return absl::OkStatus();
  if (!ready_) {
    if (term == 0) return absl::UnavailableError(not_ready_);
    return absl::UnavailableError(
        absl::StrCat(not_ready_, " (", what, " whose reads began in term ", term, "; no effect)"));
  }
  const std::string me = absl::StrCat("server ", options_.server, " of shard ", options_.shard_id);
  return absl::UnavailableError(absl::StrCat(
      me, " leads term ", term_, ", but ", what, " began ",
      term == 0 ? std::string("while it was not the ready leader") : absl::StrCat("in term ", term),
      ": its reads are not confirmed (no effect; retry); leader is server ", options_.server,
      " at ", address_.empty() ? "(address unknown)" : address_));
}

absl::Status ShardReplica::ProposeLocked(absl::string_view records, uint64_t term,
                                         Proposal* proposal) {
  shard_->commit_mu()->AssertHeld();
  // The entry, released in `term`, confirms the transaction's reads too (replicated_log.h).
  RETURN_IF_ERROR(CheckLeads(term, "the transaction"));
  if (!stop_.ok()) {
    return absl::UnavailableError(absl::StrCat("server ", options_.server, " of shard ",
                                               options_.shard_id,
                                               " stopped applying entries: ", stop_.message()));
  }
  if (records.size() > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat("shard ", options_.shard_id, ": a commit of ",
                                                   records.size(),
                                                   " bytes of records does not fit an entry"));
  }
  const uint64_t seq = next_seq_++;
  std::string entry;
  entry.reserve(kTagSize + records.size());
  PutFixed64(&entry, (kPartMark << kMarkShift) | origin_);
  PutFixed64(&entry, seq);
  PutFixed32(&entry, static_cast<uint32_t>(records.size()));
  entry.append(records.data(), records.size());
  if (RaftNode* node = node_.load(); node != nullptr) {
    // Registered first: the loop thread answers under commit_mu, so not before this returns.
    in_flight_.emplace(seq, InFlight{proposal, {0, term}});
    absl::Status s =
        node->Propose(entry, [this, seq](absl::Status st) { OnDone(seq, st); }, term);
    if (!s.ok()) in_flight_.erase(seq);  // refused: no effect
    return s;
  }
  queue_.push_back(Queued{seq, std::move(entry), proposal, term});
  if (options_.on_queued) options_.on_queued();
  return absl::OkStatus();
}

std::string ShardReplica::EntryName(uint64_t seq, engine::RaftPosition at) const {
  return absl::StrCat("entry (term ", at.term, ", index ",
                      at.index == 0 ? std::string("not known here") : absl::StrCat(at.index),
                      ", tag ", origin_, ":", seq, ") of shard ", options_.shard_id,
                      " proposed by server ", options_.server);
}

engine::ReplicatedLog::ReadStamp ShardReplica::StampRead() {
  ReadStamp stamp;
  stamp.barriers = barriers_proposed_.load();
  MutexLock l(&state_mu_);
  if (ready_) stamp.term = term_;
  return stamp;
}

absl::Status ShardReplica::ConfirmReads(const ReadStamp& begun, ReadCheck* check) {
  if (absl::Status s = CheckLeads(begun.term, "the read-only transaction"); !s.ok()) {
    ++reads_refused_;
    return s;
  }
  {
    MutexLock r(&read_mu_);
    read_waiters_.push_back(ReadWaiter{begun, check});
    // A RaftNode's barriers go out at once (and the next from each one's completion); a
    // SimulatedGroup's at the next Pump.
    if (!barrier_in_flight_ && node_.load() != nullptr) ProposeBarrierLocked(nullptr);
  }
  if (options_.on_read_queued) options_.on_read_queued();
  return absl::OkStatus();
}

void ShardReplica::ProposeBarrierLocked(SimulatedGroup* group) {
  // Raised before the barrier exists: a read stamped from now on waits for the next one.
  const uint64_t seq = barriers_proposed_.load() + 1;
  barriers_proposed_.store(seq);
  barrier_in_flight_ = true;
  auto done = [this, seq](absl::StatusOr<uint64_t> term) { OnBarrierDone(seq, term); };
  absl::Status s;
  if (group != nullptr) {
    s = group->Barrier(static_cast<unsigned>(options_.server), std::move(done));
  } else if (RaftNode* node = node_.load(); node != nullptr) {
    s = node->Barrier(std::move(done));
  } else {
    s = absl::UnavailableError("no Raft group attached");
  }
  if (!s.ok()) {
    barrier_in_flight_ = false;
    DecideReadsLocked(seq, s);
  }
}

void ShardReplica::OnBarrierDone(uint64_t seq, const absl::StatusOr<uint64_t>& term) {
  MutexLock r(&read_mu_);
  if (term.ok()) ++barriers_committed_;
  barrier_in_flight_ = false;
  DecideReadsLocked(seq, term);
  if (!read_waiters_.empty() && node_.load() != nullptr) ProposeBarrierLocked(nullptr);
}

void ShardReplica::DecideReadsLocked(uint64_t seq, const absl::StatusOr<uint64_t>& term) {
  std::vector<ReadWaiter> later;
  std::string leader;  // what is known of the leader now, for the refusals
  for (const ReadWaiter& w : read_waiters_) {
    if (w.begun.barriers >= seq) {
      later.push_back(w);  // stamped after this barrier was proposed: the next one decides
      continue;
    }
    if (term.ok() && *term == w.begun.term) {
      ++reads_confirmed_;
      w.check->Done(absl::OkStatus());
      continue;
    }
    if (leader.empty()) {
      MutexLock l(&state_mu_);
      leader = ready_ ? absl::StrCat("leader is server ", options_.server, " at ",
                                     address_.empty() ? "(address unknown)" : address_)
                      : not_ready_;
    }
    ++reads_failed_;
    w.check->Done(absl::UnavailableError(absl::StrCat(
        "server ", options_.server, " of shard ", options_.shard_id,
        " could not confirm that it still leads term ", w.begun.term,
        " for a read-only commit (barrier ", seq, ": ",
        term.ok() ? absl::StrCat("committed in term ", *term) : term.status().ToString(),
        "); no effect, retry; ", leader)));
  }
  read_waiters_.swap(later);
}

void ShardReplica::AbandonLocked(const std::string& why) {
  for (auto& [seq, f] : in_flight_) {
    ++unknown_;
    f.proposal->Unknown(absl::UnknownError(
        absl::StrCat("outcome unknown: ", EntryName(seq, f.at), " was in flight when ", why)));
  }
  in_flight_.clear();
  for (Queued& q : queue_) {
    ++refused_;
    q.proposal->Refused(absl::UnavailableError(
        absl::StrCat("server ", options_.server, " of shard ", options_.shard_id,
                     " did not propose the commit: ", why, "; no effect")));
  }
  queue_.clear();
}

void ShardReplica::OnDone(uint64_t seq, const absl::Status& status) {
  // The common case, without the commit lock: OK for an entry released here already, which its
  // release completed (or redid). Entries of this replica reach the log in sequence order.
  if (status.ok() && seq <= released_seq_.load(std::memory_order_acquire)) return;
  MutexLock l(shard_->commit_mu());
  auto it = in_flight_.find(seq);
  if (it == in_flight_.end()) return;  // completed at its release (or abandoned)
  const InFlight f = it->second;
  in_flight_.erase(it);
  if (absl::IsUnavailable(status)) {
    // A RaftNode's loop thread refused it (leadership changed after Propose): in no log.
    ++refused_;
    f.proposal->Refused(absl::UnavailableError(
        absl::StrCat(status.message(), " (shard ", options_.shard_id, "; no effect)")));
    return;
  }
  ++unknown_;
  // OK without a release that completed it cannot happen (the shim releases an entry before it
  // reports it OK); were it to, the outcome is still not known here.
  f.proposal->Unknown(absl::UnknownError(
      absl::StrCat("outcome unknown: server ", options_.server, " lost the leadership of shard ",
                   options_.shard_id, " while its ", EntryName(seq, f.at), " was in flight (",
                   status.message(), "); if it commits, every replica applies it")));
}

void ShardReplica::Pump(SimulatedGroup& group) {
  const unsigned me = static_cast<unsigned>(options_.server);
  {
    MutexLock l(shard_->commit_mu());
    while (!queue_.empty()) {
      // One entry: the first queued commit, and with options_.pack those queued after it for
      // the same term.
      size_t n = 1;
      while (options_.pack && n < queue_.size() && n < kMaxPackedCommits &&
             queue_[n].term == queue_.front().term) {
        ++n;
      }
      std::string packed;
      std::vector<uint64_t> seqs;
      for (size_t k = 0; k < n; ++k) {
        packed.append(queue_[k].entry);
        seqs.push_back(queue_[k].seq);
      }
      // The index the shim tags the entry with: the last index + 1 when it proposes.
      const ServerInfo before = group.Info(me);
      const engine::RaftPosition at{before.last_index + 1, before.term};
      absl::Status st = group.Propose(
          me, packed,
          [this, seqs](absl::Status s) {
            for (uint64_t seq : seqs) OnDone(seq, s);
          },
          queue_.front().term);
      for (size_t k = 0; k < n; ++k) {
        Queued q = std::move(queue_.front());
        queue_.pop_front();
        if (st.ok()) {
          in_flight_.emplace(q.seq, InFlight{q.proposal, at});
        } else if (absl::IsUnknown(st)) {
          ++unknown_;  // libraft may have taken it into its log
          q.proposal->Unknown(absl::UnknownError(
              absl::StrCat("outcome unknown: ", EntryName(q.seq, at), ": ",
                           absl::StripPrefix(st.message(), "outcome unknown: "))));
        } else {
          ++refused_;
          q.proposal->Refused(absl::UnavailableError(
              absl::StrCat(st.message(), " (shard ", options_.shard_id, "; no effect)")));
        }
      }
    }
  }
  const ServerInfo info = group.Info(me);
  Seen seen;
  seen.alive = info.alive;
  seen.role = info.role;
  seen.ready = info.ready;
  seen.term = info.term;
  if (info.believed_leader.has_value()) {
    seen.leader = *info.believed_leader;
    if (*info.believed_leader < options_.addresses.size()) {
      seen.leader_address = options_.addresses[*info.believed_leader];
    }
  }
  Publish(seen);
  MutexLock r(&read_mu_);
  if (!barrier_in_flight_ && !read_waiters_.empty()) ProposeBarrierLocked(&group);
}

void ShardReplica::AttachNode(RaftNode* node) {
  node_.store(node);
  OnNodeChange();
}

void ShardReplica::OnNodeChange() {
  RaftNode* node = node_.load();
  if (node == nullptr) return;
  MutexLock l(&node_change_mu_);
  const NodeInfo info = node->Info();
  Seen seen;
  seen.role = info.role;
  seen.ready = info.ready;
  seen.term = info.term;
  if (info.leader_id != 0) seen.leader = info.leader_id;
  seen.leader_address = info.leader_address;
  if (info.leader_id != 0 && options_.address_of) {
    std::string address = options_.address_of(info.leader_id);
    if (!address.empty()) seen.leader_address = std::move(address);
  }
  Publish(seen);
  if (options_.on_node_change) options_.on_node_change(info);
}

void ShardReplica::Publish(const Seen& seen) {
  const uint64_t me = options_.server;
  if (seen.alive && seen.role == Role::kLeader && seen.ready) {
    MutexLock c(shard_->commit_mu());
    if (seen.term != ready_term_) {
      // Every entry before this term's term-start entry is released and applied here: new
      // timestamps go above all of them before the first commit of the term.
      if (listener_ != nullptr) listener_->Applied(shard_->max_redone_ts_locked());
      ready_term_ = seen.term;
    }
    MutexLock l(&state_mu_);
    ready_ = true;
    term_ = seen.term;
    address_ = seen.leader_address;
    if (address_.empty() && me < options_.addresses.size()) address_ = options_.addresses[me];
    return;
  }
  std::string why;
  const std::string who = absl::StrCat("server ", me, " of shard ", options_.shard_id);
  if (!seen.alive) {
    why = absl::StrCat(who, " is down");
  } else if (seen.role == Role::kLeader) {
    std::string address = seen.leader_address;
    if (address.empty() && me < options_.addresses.size()) address = options_.addresses[me];
    why = absl::StrCat(who, " leads term ", seen.term,
                       " but is not ready (its term-start entry is not released yet; retry); "
                       "leader is server ",
                       me, " at ", address.empty() ? "(address unknown)" : address);
  } else if (seen.leader.has_value() && *seen.leader != me) {
    why = absl::StrCat(who, " does not lead (term ", seen.term, "); leader is server ",
                       *seen.leader, " at ",
                       seen.leader_address.empty() ? "(address unknown)" : seen.leader_address);
  } else {
    why = absl::StrCat(who, " does not lead (term ", seen.term, "); leader unknown");
  }
  MutexLock l(&state_mu_);
  ready_ = false;
  term_ = seen.term;
  not_ready_ = std::move(why);
}

void ShardReplica::Release(const ReleasedEntry& entry) {
  MutexLock l(shard_->commit_mu());
  absl::Status s = stop_.ok() ? ApplyLocked(entry) : stop_;
  if (!s.ok()) {
    ++failures_;
    if (first_error_.ok()) first_error_ = s;
    if (stop_.ok()) stop_ = s;
  }
  if (options_.on_applied) options_.on_applied();
}

absl::Status ShardReplica::ApplyLocked(const ReleasedEntry& entry) {
  if (entry.index <= shard_->raft_applied_locked().index) {
    ++skipped_;  // applied before
    return absl::OkStatus();
  }
  std::vector<Part> parts;  // (absl::InlinedVector: a maybe-uninitialized warning under ASan)
  if (!DecodeParts(absl::string_view(entry.payload.data(), entry.payload.size()), &parts)) {
    return absl::InvalidArgumentError(
        absl::StrCat("shard ", options_.shard_id,
                     ": entry without a well-formed tag at raft index ", entry.index));
  }
  // The records of every part, in order: what every replica's WAL holds for the entry.
  std::string packed;
  absl::string_view records = parts.front().records;
  if (parts.size() > 1) {
    for (const Part& part : parts) packed.append(part.records.data(), part.records.size());
    records = packed;
  }
  const engine::RaftPosition at{entry.index, entry.term};
  const std::string record = engine::EncodeRaftEntry(at, records);
  bool own = true;  // every part ours, still waited for
  for (const Part& part : parts) {
    own = own && part.origin == origin_ && in_flight_.contains(part.seq);
  }
  if (own) {
    // Installed at commit, so logged here but not redone.
    absl::StatusOr<engine::Lsn> lsn =
        shard_->AppendLocked(engine::kRaftEntry, record, engine::Durability::kNone);
    if (lsn.ok()) shard_->NoteRaftAppliedLocked(at, records);
    for (const Part& part : parts) {
      auto it = in_flight_.find(part.seq);
      Proposal* proposal = it->second.proposal;
      in_flight_.erase(it);
      if (!lsn.ok()) {
        ++unknown_;
        proposal->Unknown(absl::UnknownError(absl::StrCat(
            "outcome unknown: ", EntryName(part.seq, at),
            " committed but this replica could not log it: ", lsn.status().message())));
        continue;
      }
      ++committed_;
      proposal->Committed(at);
    }
    released_seq_.store(parts.back().seq, std::memory_order_release);
    return lsn.status();
  }
  // Another proposer's entry (or ours, answered kUnknown before it committed). Raft releases in
  // index order, so an entry of ours still in flight now lies above an entry of a later term:
  // it can no longer commit. Take such entries back first, so that no version of theirs shares
  // a timestamp with a redone one.
  if (!in_flight_.empty() || !queue_.empty()) {
    AbandonLocked(absl::StrCat("server ", options_.server, " applied another proposer's entry (",
                               "raft index ", entry.index, ", term ", entry.term, ")"));
  }
  RETURN_IF_ERROR(CheckEntryPayload(*shard_, entry.index, records));
  ASSIGN_OR_RETURN(engine::Lsn lsn,
                   shard_->AppendLocked(engine::kRaftEntry, record, engine::Durability::kNone));
  RETURN_IF_ERROR(shard_->RedoLocked(lsn, engine::kRaftEntry, record, /*applied=*/false));
  ++redone_;
  if (listener_ != nullptr) listener_->Applied(shard_->max_redone_ts_locked());
  return absl::OkStatus();
}

absl::StatusOr<std::string> ShardReplica::Snapshot() {
  RETURN_IF_ERROR(shard_->SyncWal());
  SnapshotMeta meta;
  meta.shard = options_.shard_id;
  meta.producer = static_cast<uint32_t>(options_.server);
  {
    MutexLock l(shard_->commit_mu());
    meta.at = shard_->raft_applied_locked();
  }
  return EncodeSnapshotMeta(meta);
}

void ShardReplica::PinWal(engine::Lsn lsn) {
  if (options_.pin_wal) options_.pin_wal(lsn);
}

absl::Status ShardReplica::last_snapshot_error() const {
  MutexLock l(shard_->commit_mu());
  return last_snapshot_error_;
}

absl::Status ShardReplica::Restore(std::string_view snapshot) {
  absl::Status s = RestoreOnce(snapshot);
  MutexLock l(shard_->commit_mu());
  if (s.ok()) return s;
  ++snapshot_failures_;
  last_snapshot_error_ = s;
  if (first_error_.ok()) first_error_ = s;
  // The entries after the snapshot need its state under them: none is applied until a later
  // Restore succeeds.
  if (stop_.ok()) stop_ = s;
  return s;
}

absl::Status ShardReplica::RestoreOnce(std::string_view snapshot) {
  ASSIGN_OR_RETURN(const SnapshotMeta meta, DecodeSnapshotMeta(options_.shard_id, snapshot));
  {
    MutexLock l(shard_->commit_mu());
    if (shard_->raft_applied_locked().index >= meta.at.index) {
      ++snapshots_kept_;  // this replica's own state covers it (a restart, or a late install)
      return absl::OkStatus();
    }
  }
  const std::string who = absl::StrCat("shard ", options_.shard_id, ": server ", options_.server);
  FetchOptions f;
  if (options_.snapshot_address) f.address = options_.snapshot_address(meta.producer);
  if (f.address.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(who, " cannot install the snapshot of server ", meta.producer,
                     " at raft index ", meta.at.index, ": no snapshot stream address for it"));
  }
  f.cluster = options_.cluster;
  f.shard = options_.shard_id;
  f.min_raft_index = meta.at.index;
  f.timeout = options_.fetch_timeout;
  f.env = shard_->options().env;
  const std::string dir = shard_->options().dir;
  RETURN_IF_ERROR(InstallCopy(
      dir,
      [&](const std::string& staging) {
        return FetchCheckedCopy(f, shard_->options(), meta.at, staging);
      },
      [&](const std::string& staging) {
        {
          MutexLock l(shard_->commit_mu());
          AbandonLocked(absl::StrCat("server ", options_.server,
                                     " installed a snapshot (raft index ", meta.at.index, ")"));
        }
        // No stream may copy the shard while its files move: off the server (waits for them).
        if (options_.snapshot_server != nullptr) {
          options_.snapshot_server->RemoveShard(options_.shard_id);
        }
        auto raise_oracle = [this](engine::Timestamp max_ts) {
          if (listener_ != nullptr) listener_->Applied(max_ts);
        };
        absl::Status s =
            shard_->ReplaceState([&] { return InstallSnapshotDir(staging, dir); }, raise_oracle);
        if (options_.snapshot_server != nullptr) {
          options_.snapshot_server->AddShard(options_.shard_id, this).IgnoreError();
        }
        return s;
      }));
  MutexLock l(shard_->commit_mu());
  if (const engine::RaftPosition now = shard_->raft_applied_locked(); now.index < meta.at.index) {
    return absl::InternalError(absl::StrCat(who, ": the copy of server ", meta.producer,
                                            " reaches raft index ", now.index, ", the snapshot ",
                                            meta.at.index));
  }
  stop_ = absl::OkStatus();
  ++snapshots_installed_;
  return absl::OkStatus();
}

}  // namespace shardtx::replication
