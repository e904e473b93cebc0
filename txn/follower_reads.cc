#include "txn/follower_reads.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "engine/log_record.h"
#include "engine/replicated_log.h"
#include "engine/shard.h"
#include "txn/database_impl.h"
#include "util/status_macros.h"

namespace shardtx::txn {

namespace {

// A closed-timestamp entry, which nobody waits for: it clears the shard's in-flight flag and
// deletes itself once answered (its groups answer it after the Database stopped looking).
class ClosedEntry final : public engine::ReplicatedLog::Proposal {
 public:
  explicit ClosedEntry(std::shared_ptr<std::atomic<bool>> in_flight)
      : in_flight_(std::move(in_flight)) {}
  void Committed(engine::RaftPosition) override { Done(); }
  void Unknown(const absl::Status&) override { Done(); }
  void Refused(const absl::Status&) override { Done(); }

 private:
  void Done() {
    in_flight_->store(false);
    delete this;
  }
  std::shared_ptr<std::atomic<bool>> in_flight_;
};

int64_t NowMicros() { return absl::ToUnixMicros(absl::Now()); }

}  // namespace

FollowerReads::FollowerReads(DatabaseImpl* db, absl::Duration interval, absl::Duration refresh)
    : db_(db), interval_(interval), refresh_(refresh), shards_(db->num_shards()) {}

FollowerReads::~FollowerReads() { Stop(); }

void FollowerReads::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void FollowerReads::Stop() {
  {
    MutexLock l(&mu_);
    stop_ = true;
    cv_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

void FollowerReads::Run() {
  const auto wait = absl::ToChronoMicroseconds(interval_);
  while (true) {
    {
      MutexLock l(&mu_);
      if (stop_) return;
      cv_.WaitFor(wait);
      if (stop_) return;
    }
    for (uint32_t s = 0; s < db_->num_shards(); ++s) CloseShard(s, false).IgnoreError();
  }
}

engine::Timestamp FollowerReads::PreparedFloor(uint32_t shard, std::string* who) {
  auto [snapshot, id] = db_->two_phase().PreparedFloor(shard);
  if (id == 0) return UINT64_MAX;
  if (who != nullptr) {
    *who = absl::StrCat("shard ", shard, " holds transaction ", id, " prepared (snapshot ",
                        snapshot, "), not decided here");
  }
  return snapshot;
}

absl::Status FollowerReads::CloseShard(uint32_t shard, bool force) {
  engine::ReplicatedLog* log = db_->replicated_log(shard);
  if (log == nullptr) return absl::FailedPreconditionError("not a replicated shard");
  RETURN_IF_ERROR(log->CheckLeader());
  const uint64_t term = log->StampRead().term;
  if (term == 0) return absl::UnavailableError("not the ready leader");
  ShardState& st = shards_[shard];
  if (st.in_flight->load()) return absl::OkStatus();
  engine::Shard* s = db_->shard(shard);
  MutexLock l(s->commit_mu());
  const uint64_t released = s->raft_applied_locked().index;
  const bool idle = released == st.last_released;
  st.last_released = released;
  // Under commit_mu: every commit of this shard assigned at or below it has proposed its entry
  // already, and every later one is above it.
  const engine::Timestamp closed = db_->oracle().last_assigned();
  // A transaction prepared here may still commit above its snapshot and below `closed`: the
  // shard cannot be closed past that snapshot, and the state at it is not current (its leader
  // time would overstate its freshness), so nothing is proposed until it is decided.
  if (PreparedFloor(shard, nullptr) < closed) return absl::OkStatus();
  const engine::Shard::SafeBound bound = s->SafeBoundLocked();
  const int64_t now = NowMicros();
  const bool due = refresh_ != absl::InfiniteDuration() &&
                   absl::Microseconds(now - bound.closed_time_us) >= refresh_;
  // Busy, the shard's own commits raise its bound; a refresh still goes out when due, so that
  // reads below the latest commits have a leader time to count their staleness from.
  if (!force && !due && (!idle || closed <= bound.ts)) return absl::OkStatus();
  std::string entry;
  engine::AppendEntryRecord(&entry, engine::kClosedTs, engine::EncodeClosedTs({closed, now}));
  auto* e = new ClosedEntry(st.in_flight);
  st.in_flight->store(true);
  absl::Status proposed = log->ProposeLocked(entry, term, e);
  if (!proposed.ok()) e->Refused(proposed);
  return proposed;
}

FollowerReads::Safe FollowerReads::ShardSafe(uint32_t shard) {
  Safe out;
  engine::Shard* s = db_->shard(shard);
  MutexLock l(s->commit_mu());
  out.ts = s->SafeBoundLocked().ts;
  const engine::Timestamp floor = PreparedFloor(shard, &out.held_by);
  if (floor < out.ts) {
    out.ts = floor;
  } else {
    out.held_by.clear();
  }
  const int64_t at = s->ClosedTimeAtOrBelowLocked(out.ts);
  if (at != 0) {
    out.staleness = std::max(absl::ZeroDuration(), absl::Microseconds(NowMicros() - at));
  } else if (out.held_by.empty()) {
    out.held_by = absl::StrCat("shard ", shard, " has applied no closed timestamp at or below ",
                               out.ts, " since it opened");
  }
  return out;
}

FollowerReads::Safe FollowerReads::SafeTimestamp() {
  std::vector<Safe> per_shard;
  per_shard.reserve(db_->num_shards());
  for (uint32_t s = 0; s < db_->num_shards(); ++s) {
    if (db_->replicated_log(s) != nullptr) per_shard.push_back(ShardSafe(s));
  }
  Safe out;
  if (per_shard.empty()) return out;
  out.ts = per_shard.front().ts;
  for (const Safe& p : per_shard) {
    out.ts = std::min(out.ts, p.ts);
    if (out.held_by.empty()) out.held_by = p.held_by;
  }
  // How fresh a read at out.ts is: per shard, the newest closed timestamp at or below it.
  out.staleness = absl::ZeroDuration();
  for (uint32_t s = 0; s < db_->num_shards(); ++s) {
    if (db_->replicated_log(s) == nullptr) continue;
    engine::Shard* shard = db_->shard(s);
    int64_t at;
    {
      MutexLock l(shard->commit_mu());
      at = shard->ClosedTimeAtOrBelowLocked(out.ts);
    }
    if (at == 0) {
      out.staleness = absl::InfiniteDuration();
      if (out.held_by.empty()) {
        out.held_by = absl::StrCat("shard ", s, " has applied no closed timestamp at or below ",
                                   out.ts, " since it opened");
      }
      break;
    }
    out.staleness = std::max(out.staleness, absl::Microseconds(NowMicros() - at));
  }
  return out;
}

}  // namespace shardtx::txn
