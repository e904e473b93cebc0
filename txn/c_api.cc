// The C API (include/shardtx/c.h) over the C++ one. Each handle is a small struct owning C++
// objects; each entry point turns an absl::Status into a code and a malloc'd message, and
// catches every exception so that none reaches a C caller.
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "shardtx/c.h"
#include "shardtx/database.h"

namespace {

// What a transaction handle and its iterators share: the transaction, and the database it must
// not outlive (declared first, so destroyed last).
struct SharedTxn {
  std::shared_ptr<shardtx::Database> db;
  std::unique_ptr<shardtx::Transaction> txn;
};

}  // namespace

struct shardtx_options_t {
  shardtx::Options options;
};
struct shardtx_db_t {
  std::shared_ptr<shardtx::Database> db;
};
struct shardtx_txn_t {
  std::shared_ptr<SharedTxn> shared;
};
struct shardtx_iterator_t {
  std::shared_ptr<SharedTxn> shared;  // declared first: outlives `it`
  std::unique_ptr<shardtx::Iterator> it;
  absl::Status error;  // an exception caught during a move; ends the iteration
};

namespace {

#define SHARDTX_SAME_CODE(c_code, absl_code) \
  static_assert(static_cast<int>(c_code) == static_cast<int>(absl::StatusCode::absl_code))
SHARDTX_SAME_CODE(SHARDTX_OK, kOk);
SHARDTX_SAME_CODE(SHARDTX_CANCELLED, kCancelled);
SHARDTX_SAME_CODE(SHARDTX_UNKNOWN, kUnknown);
SHARDTX_SAME_CODE(SHARDTX_INVALID_ARGUMENT, kInvalidArgument);
SHARDTX_SAME_CODE(SHARDTX_DEADLINE_EXCEEDED, kDeadlineExceeded);
SHARDTX_SAME_CODE(SHARDTX_NOT_FOUND, kNotFound);
SHARDTX_SAME_CODE(SHARDTX_ALREADY_EXISTS, kAlreadyExists);
SHARDTX_SAME_CODE(SHARDTX_PERMISSION_DENIED, kPermissionDenied);
SHARDTX_SAME_CODE(SHARDTX_RESOURCE_EXHAUSTED, kResourceExhausted);
SHARDTX_SAME_CODE(SHARDTX_FAILED_PRECONDITION, kFailedPrecondition);
SHARDTX_SAME_CODE(SHARDTX_ABORTED, kAborted);
SHARDTX_SAME_CODE(SHARDTX_OUT_OF_RANGE, kOutOfRange);
SHARDTX_SAME_CODE(SHARDTX_UNIMPLEMENTED, kUnimplemented);
SHARDTX_SAME_CODE(SHARDTX_INTERNAL, kInternal);
SHARDTX_SAME_CODE(SHARDTX_UNAVAILABLE, kUnavailable);
SHARDTX_SAME_CODE(SHARDTX_DATA_LOSS, kDataLoss);
SHARDTX_SAME_CODE(SHARDTX_UNAUTHENTICATED, kUnauthenticated);
#undef SHARDTX_SAME_CODE

// A malloc'd, NUL-terminated copy of `bytes` (the NUL not counted), or nullptr when out of
// memory. Never throws.
char* MallocCopy(absl::string_view bytes) {
  char* copy = static_cast<char*>(std::malloc(bytes.size() + 1));
  if (copy == nullptr) return nullptr;
  if (!bytes.empty()) std::memcpy(copy, bytes.data(), bytes.size());
  copy[bytes.size()] = '\0';
  return copy;
}

// Sets *errptr (when errptr is not null) and returns `code`. Never throws.
shardtx_code Report(shardtx_code code, absl::string_view message, char** errptr) {
  if (errptr != nullptr) *errptr = code == SHARDTX_OK ? nullptr : MallocCopy(message);
  return code;
}

shardtx_code Report(const absl::Status& status, char** errptr) {
  return Report(static_cast<shardtx_code>(status.code()), status.message(), errptr);
}

// Runs `body` (returning an absl::Status) and reports its status; an exception becomes
// RESOURCE_EXHAUSTED (out of memory) or INTERNAL. Reporting allocates no C++ object, so that a
// second bad_alloc cannot escape.
template <typename Body>
shardtx_code Guard(char** errptr, Body&& body) {
  try {
    return Report(body(), errptr);
  } catch (const std::bad_alloc&) {
    return Report(SHARDTX_RESOURCE_EXHAUSTED, "out of memory", errptr);
  } catch (const std::exception& e) {
    return Report(SHARDTX_INTERNAL, e.what(), errptr);
  } catch (...) {
    return Report(SHARDTX_INTERNAL, "unknown exception", errptr);
  }
}

shardtx_code NullArgument(const char* function, char** errptr) {
  std::string message;
  try {
    message = std::string(function) + ": a required argument is NULL";
  } catch (...) {
  }
  return Report(SHARDTX_INVALID_ARGUMENT, message, errptr);
}

// `bytes` of `len` as a string_view; false when the pointer is NULL but the length is not 0.
bool Bytes(const char* bytes, size_t len, absl::string_view* out) {
  if (bytes == nullptr && len > 0) return false;
  *out = len == 0 ? absl::string_view() : absl::string_view(bytes, len);
  return true;
}

// Runs one move of `iter`, keeping an exception it throws as the iterator's error.
template <typename Move>
shardtx_code MoveIterator(shardtx_iterator_t* iter, Move&& move) {
  if (iter == nullptr) return SHARDTX_INVALID_ARGUMENT;
  if (!iter->error.ok()) return static_cast<shardtx_code>(iter->error.code());
  shardtx_code code = Guard(nullptr, [&] {
    move();
    return iter->it->status();
  });
  if (code != SHARDTX_OK && iter->it->status().ok()) {
    // The move threw. Recording it may throw again (bad_alloc): then the code says enough.
    try {
      iter->error = absl::Status(
          static_cast<absl::StatusCode>(code),
          code == SHARDTX_RESOURCE_EXHAUSTED ? "out of memory" : "iterator move failed");
    } catch (...) {
      iter->error = absl::Status(static_cast<absl::StatusCode>(code), "");
    }
  }
  return code;
}

}  // namespace

extern "C" {

const char* shardtx_code_name(int code) {
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  if (code < 0 || code >= static_cast<int>(sizeof(kNames) / sizeof(kNames[0]))) {
    return "UNKNOWN_CODE";
  }
  return kNames[code];
}

void shardtx_free(void* ptr) { std::free(ptr); }

// --- Options -----------------------------------------------------------------------------------

shardtx_options_t* shardtx_options_create(void) { return new (std::nothrow) shardtx_options_t(); }

void shardtx_options_destroy(shardtx_options_t* options) { delete options; }

shardtx_code shardtx_options_set_path(shardtx_options_t* options, const char* path, char** errptr) {
  if (options == nullptr || path == nullptr) return NullArgument(__func__, errptr);
  return Guard(errptr, [&] {
    options->options.path = path;
    return absl::OkStatus();
  });
}

void shardtx_options_set_create_if_missing(shardtx_options_t* options, int create_if_missing) {
  if (options != nullptr) options->options.create_if_missing = create_if_missing != 0;
}

void shardtx_options_set_num_shards(shardtx_options_t* options, uint32_t num_shards) {
  if (options != nullptr) options->options.num_shards = num_shards;
}

void shardtx_options_set_hash_partitioning(shardtx_options_t* options) {
  if (options == nullptr) return;
  options->options.partitioning = shardtx::Options::Partitioning::kHash;
  options->options.range_split_points.clear();
  options->options.explicit_shard = nullptr;
}

shardtx_code shardtx_options_set_range_partitioning(shardtx_options_t* options,
                                                    const char* const* split_points,
                                                    const size_t* split_point_lens, size_t count,
                                                    char** errptr) {
  if (options == nullptr ||
      (count > 0 && (split_points == nullptr || split_point_lens == nullptr))) {
    return NullArgument(__func__, errptr);
  }
  return Guard(errptr, [&] {
    std::vector<std::string> points;
    points.reserve(count);
    for (size_t i = 0; i < count; ++i) {
      absl::string_view point;
      if (!Bytes(split_points[i], split_point_lens[i], &point)) {
        return absl::InvalidArgumentError("range split point is NULL with a non-zero length");
      }
      points.emplace_back(point);
    }
    options->options.partitioning = shardtx::Options::Partitioning::kRange;
    options->options.range_split_points = std::move(points);
    options->options.explicit_shard = nullptr;
    return absl::OkStatus();
  });
}

void shardtx_options_set_explicit_partitioning(shardtx_options_t* options,
                                               shardtx_shard_fn shard_of, void* state) {
  if (options == nullptr) return;
  options->options.partitioning = shardtx::Options::Partitioning::kExplicit;
  options->options.range_split_points.clear();
  options->options.explicit_shard = nullptr;
  if (shard_of != nullptr) {  // a null function is left unset, for Open to refuse
    options->options.explicit_shard = [shard_of, state](absl::string_view key) {
      return shard_of(state, key.data(), key.size());
    };
  }
}

#define SHARDTX_OPTION_SETTER(field, type)                                   \
  void shardtx_options_set_##field(shardtx_options_t* options, type value) { \
    if (options != nullptr) options->options.field = value;                  \
  }
SHARDTX_OPTION_SETTER(wal_segment_size, uint64_t)
SHARDTX_OPTION_SETTER(max_txn_bytes, uint64_t)
SHARDTX_OPTION_SETTER(checkpoint_wal_bytes, uint64_t)
SHARDTX_OPTION_SETTER(checkpoint_overlay_bytes, uint64_t)
SHARDTX_OPTION_SETTER(overlay_limit_bytes, uint64_t)
SHARDTX_OPTION_SETTER(checkpointed_deletes_bytes, uint64_t)
SHARDTX_OPTION_SETTER(checkpoint_txn_bytes, uint64_t)
SHARDTX_OPTION_SETTER(checkpoint_pace, double)
SHARDTX_OPTION_SETTER(max_open_transactions, uint32_t)
SHARDTX_OPTION_SETTER(max_async_commits, uint32_t)
SHARDTX_OPTION_SETTER(lmdb_map_size, uint64_t)
#undef SHARDTX_OPTION_SETTER

void shardtx_options_set_checkpoint_interval_ms(shardtx_options_t* options, uint64_t ms) {
  if (options != nullptr) options->options.checkpoint_interval = absl::Milliseconds(ms);
}

void shardtx_options_set_checkpoint_on_close(shardtx_options_t* options, int checkpoint) {
  if (options != nullptr) options->options.checkpoint_on_close = checkpoint != 0;
}

void shardtx_options_set_shared_log(shardtx_options_t* options, int shared) {
  if (options == nullptr) return;
  options->options.log_layout =
      shared != 0 ? shardtx::Options::LogLayout::kShared : shardtx::Options::LogLayout::kPerShard;
}

shardtx_code shardtx_options_set_replication(shardtx_options_t* options, uint64_t node_id,
                                             const char* cluster_id, char** errptr) {
  if (options == nullptr || cluster_id == nullptr) return NullArgument(__func__, errptr);
  return Guard(errptr, [&] {
    options->options.replication.node_id = node_id;
    options->options.replication.cluster_id = cluster_id;
    return absl::OkStatus();
  });
}

shardtx_code shardtx_options_add_member(shardtx_options_t* options, uint64_t id,
                                        const char* address, char** errptr) {
  if (options == nullptr || address == nullptr) return NullArgument(__func__, errptr);
  return Guard(errptr, [&] {
    options->options.replication.members.push_back({id, address});
    return absl::OkStatus();
  });
}

void shardtx_options_set_raft_timing(shardtx_options_t* options, uint64_t election_timeout_ms,
                                     uint64_t heartbeat_ms) {
  if (options == nullptr) return;
  options->options.replication.election_timeout = absl::Milliseconds(election_timeout_ms);
  options->options.replication.heartbeat = absl::Milliseconds(heartbeat_ms);
}

void shardtx_options_set_replication_join(shardtx_options_t* options, int join) {
  if (options != nullptr) options->options.replication.join = join != 0;
}

void shardtx_options_set_raft_snapshots(shardtx_options_t* options, uint32_t threshold,
                                        uint32_t trailing) {
  if (options == nullptr) return;
  options->options.replication.snapshot_threshold = threshold;
  options->options.replication.snapshot_trailing = trailing;
}

void shardtx_options_set_preferred_leader(shardtx_options_t* options, uint64_t id) {
  if (options != nullptr) options->options.replication.preferred_leader = id;
}

void shardtx_options_set_gather_leaders(shardtx_options_t* options, int gather) {
  if (options != nullptr) options->options.replication.gather_leaders = gather != 0;
}

// --- Database ----------------------------------------------------------------------------------

shardtx_code shardtx_open(const shardtx_options_t* options, shardtx_db_t** db, char** errptr) {
  if (options == nullptr || db == nullptr) return NullArgument(__func__, errptr);
  *db = nullptr;
  return Guard(errptr, [&] {
    auto opened = shardtx::Database::Open(options->options);
    if (!opened.ok()) return opened.status();
    *db = new shardtx_db_t{std::shared_ptr<shardtx::Database>(std::move(*opened))};
    return absl::OkStatus();
  });
}

shardtx_code shardtx_close(shardtx_db_t* db, char** errptr) {
  if (db == nullptr) return Report(SHARDTX_OK, {}, errptr);
  std::unique_ptr<shardtx_db_t> owned(db);
  return Guard(errptr, [&] { return owned->db->Close(); });
}

shardtx_code shardtx_checkpoint(shardtx_db_t* db, char** errptr) {
  if (db == nullptr) return NullArgument(__func__, errptr);
  return Guard(errptr, [&] { return db->db->Checkpoint(); });
}

shardtx_code shardtx_backup(shardtx_db_t* db, const char* dest, char** errptr) {
  if (db == nullptr || dest == nullptr) return NullArgument(__func__, errptr);
  return Guard(errptr, [&] { return db->db->Backup(dest); });
}

shardtx_code shardtx_stats(shardtx_db_t* db, char** stats, char** errptr) {
  if (db == nullptr || stats == nullptr) return NullArgument(__func__, errptr);
  *stats = nullptr;
  return Guard(errptr, [&] {
    *stats = MallocCopy(db->db->GetStats().ToString());
    return *stats != nullptr ? absl::OkStatus() : absl::ResourceExhaustedError("out of memory");
  });
}

namespace {

shardtx_outcome OutcomeToC(shardtx::Database::Outcome outcome) {
  switch (outcome) {
    case shardtx::Database::Outcome::kUnknown:
      break;
    case shardtx::Database::Outcome::kCommitted:
      return SHARDTX_OUTCOME_COMMITTED;
    case shardtx::Database::Outcome::kAborted:
      return SHARDTX_OUTCOME_ABORTED;
    case shardtx::Database::Outcome::kPrepared:
      return SHARDTX_OUTCOME_PREPARED;
  }
  return SHARDTX_OUTCOME_UNKNOWN;
}

shardtx_role RoleToC(shardtx::Database::ShardLeadership::Role role) {
  using Role = shardtx::Database::ShardLeadership::Role;
  switch (role) {
    case Role::kFollower:
      return SHARDTX_ROLE_FOLLOWER;
    case Role::kCandidate:
      return SHARDTX_ROLE_CANDIDATE;
    case Role::kLeader:
      return SHARDTX_ROLE_LEADER;
    case Role::kUnavailable:
      break;
  }
  return SHARDTX_ROLE_UNAVAILABLE;
}

}  // namespace

shardtx_code shardtx_get_outcome(shardtx_db_t* db, uint64_t txn_id, shardtx_outcome* outcome,
                                 char** errptr) {
  if (db == nullptr || outcome == nullptr) return NullArgument(__func__, errptr);
  *outcome = SHARDTX_OUTCOME_UNKNOWN;
  return Guard(errptr, [&] {
    *outcome = OutcomeToC(db->db->GetOutcome(txn_id));
    return absl::OkStatus();
  });
}

shardtx_code shardtx_get_outcome_of_key(shardtx_db_t* db, uint64_t txn_id, const char* key,
                                        size_t keylen, shardtx_outcome* outcome, char** errptr) {
  absl::string_view k;
  if (db == nullptr || outcome == nullptr || !Bytes(key, keylen, &k)) {
    return NullArgument(__func__, errptr);
  }
  *outcome = SHARDTX_OUTCOME_UNKNOWN;
  return Guard(errptr, [&] {
    absl::StatusOr<shardtx::Database::Outcome> o = db->db->GetOutcomeOfKey(txn_id, std::string(k));
    if (!o.ok()) return o.status();
    *outcome = OutcomeToC(*o);
    return absl::OkStatus();
  });
}

shardtx_code shardtx_shard_leader(shardtx_db_t* db, uint32_t shard, shardtx_role* role,
                                  int* ready, uint64_t* term, uint64_t* leader_id,
                                  char** leader_address, char** errptr) {
  if (db == nullptr || role == nullptr || ready == nullptr || term == nullptr ||
      leader_id == nullptr || leader_address == nullptr) {
    return NullArgument(__func__, errptr);
  }
  *leader_address = nullptr;
  return Guard(errptr, [&] {
    const std::vector<shardtx::Database::ShardLeadership> all = db->db->Leadership();
    if (all.empty()) {
      return absl::FailedPreconditionError(
          "shardtx_shard_leader: the database is not replicated, or closed");
    }
    if (shard >= all.size()) {
      return absl::InvalidArgumentError(absl::StrCat("shardtx_shard_leader: shard ", shard,
                                                     " out of range (", all.size(), " shards)"));
    }
    const shardtx::Database::ShardLeadership& l = all[shard];
    *leader_address = MallocCopy(l.leader_address);
    if (*leader_address == nullptr) return absl::ResourceExhaustedError("out of memory");
    *role = RoleToC(l.role);
    *ready = l.ready ? 1 : 0;
    *term = l.term;
    *leader_id = l.leader_id;
    return absl::OkStatus();
  });
}

shardtx_code shardtx_add_member(shardtx_db_t* db, uint64_t id, const char* address,
                                char** errptr) {
  if (db == nullptr || address == nullptr) return NullArgument(__func__, errptr);
  return Guard(errptr, [&] { return db->db->AddMember({id, address}); });
}

shardtx_code shardtx_remove_member(shardtx_db_t* db, uint64_t id, char** errptr) {
  if (db == nullptr) return NullArgument(__func__, errptr);
  return Guard(errptr, [&] { return db->db->RemoveMember(id); });
}

// --- Transactions ------------------------------------------------------------------------------

shardtx_code shardtx_begin(shardtx_db_t* db, int isolation, int durability, shardtx_txn_t** txn,
                           char** errptr) {
  if (db == nullptr || txn == nullptr) return NullArgument(__func__, errptr);
  *txn = nullptr;
  return Guard(errptr, [&] {
    shardtx::TxnOptions options;
    switch (isolation) {
      case SHARDTX_SNAPSHOT:
        options.isolation = shardtx::Isolation::kSnapshot;
        break;
      case SHARDTX_SERIALIZABLE:
        options.isolation = shardtx::Isolation::kSerializable;
        break;
      default:
        return absl::InvalidArgumentError("shardtx_begin: unknown isolation " +
                                          std::to_string(isolation));
    }
    switch (durability) {
      case SHARDTX_SYNC:
        options.durability = shardtx::Durability::kSync;
        break;
      case SHARDTX_ASYNC:
        options.durability = shardtx::Durability::kAsync;
        break;
      case SHARDTX_NONE:
        options.durability = shardtx::Durability::kNone;
        break;
      default:
        return absl::InvalidArgumentError("shardtx_begin: unknown durability " +
                                          std::to_string(durability));
    }
    auto shared = std::make_shared<SharedTxn>();
    shared->db = db->db;
    shared->txn = db->db->Begin(options);
    *txn = new shardtx_txn_t{std::move(shared)};
    return absl::OkStatus();
  });
}

void shardtx_txn_destroy(shardtx_txn_t* txn) {
  if (txn == nullptr) return;
  std::unique_ptr<shardtx_txn_t> owned(txn);
  // An iterator may keep the Transaction object alive; the transaction ends now regardless.
  // Rollback fails only when it is already over.
  Guard(nullptr, [&] {
    owned->shared->txn->Rollback().IgnoreError();
    return absl::OkStatus();
  });
}

shardtx_code shardtx_get(shardtx_txn_t* txn, const char* key, size_t keylen, char** value,
                         size_t* value_len, char** errptr) {
  if (txn == nullptr || value == nullptr || value_len == nullptr) {
    return NullArgument(__func__, errptr);
  }
  *value = nullptr;
  *value_len = 0;
  absl::string_view k;
  if (!Bytes(key, keylen, &k)) return NullArgument(__func__, errptr);
  return Guard(errptr, [&] {
    absl::StatusOr<std::string> got = txn->shared->txn->Get(k);
    if (!got.ok()) return got.status();
    *value = MallocCopy(*got);
    if (*value == nullptr) return absl::ResourceExhaustedError("out of memory");
    *value_len = got->size();
    return absl::OkStatus();
  });
}

shardtx_code shardtx_put(shardtx_txn_t* txn, const char* key, size_t keylen, const char* value,
                         size_t value_len, char** errptr) {
  absl::string_view k, v;
  if (txn == nullptr || !Bytes(key, keylen, &k) || !Bytes(value, value_len, &v)) {
    return NullArgument(__func__, errptr);
  }
  return Guard(errptr, [&] { return txn->shared->txn->Put(k, v); });
}

shardtx_code shardtx_delete(shardtx_txn_t* txn, const char* key, size_t keylen, char** errptr) {
  absl::string_view k;
  if (txn == nullptr || !Bytes(key, keylen, &k)) return NullArgument(__func__, errptr);
  return Guard(errptr, [&] { return txn->shared->txn->Delete(k); });
}

shardtx_code shardtx_commit(shardtx_txn_t* txn, char** errptr) {
  if (txn == nullptr) return NullArgument(__func__, errptr);
  return Guard(errptr, [&] { return txn->shared->txn->Commit(); });
}

shardtx_code shardtx_commit_async(shardtx_txn_t* txn, shardtx_commit_fn done, void* arg,
                                  char** errptr) {
  if (txn == nullptr || done == nullptr) return NullArgument(__func__, errptr);
  return Guard(errptr, [&] {
    return txn->shared->txn->CommitAsync([done, arg](absl::Status status) {
      if (status.ok()) {
        done(arg, SHARDTX_OK, nullptr);
        return;
      }
      // The message, NUL-terminated; none if even that copy fails (no exception may leave).
      char* message = MallocCopy(status.message());
      done(arg, static_cast<shardtx_code>(status.code()), message);
      std::free(message);
    });
  });
}

shardtx_code shardtx_rollback(shardtx_txn_t* txn, char** errptr) {
  if (txn == nullptr) return NullArgument(__func__, errptr);
  return Guard(errptr, [&] { return txn->shared->txn->Rollback(); });
}

uint64_t shardtx_txn_id(const shardtx_txn_t* txn) {
  return txn == nullptr ? 0 : txn->shared->txn->id();
}

uint64_t shardtx_txn_snapshot_timestamp(const shardtx_txn_t* txn) {
  return txn == nullptr ? 0 : txn->shared->txn->snapshot_timestamp();
}

uint64_t shardtx_txn_commit_timestamp(const shardtx_txn_t* txn) {
  return txn == nullptr ? 0 : txn->shared->txn->commit_timestamp();
}

// --- Named two-phase commit --------------------------------------------------------------------

shardtx_code shardtx_prepare(shardtx_txn_t* txn, const char* name, char** errptr) {
  if (txn == nullptr || name == nullptr) return NullArgument(__func__, errptr);
  return Guard(errptr, [&] { return txn->shared->txn->Prepare(name); });
}

shardtx_code shardtx_list_prepared(shardtx_db_t* db, char*** names, size_t* count, char** errptr) {
  if (db == nullptr || names == nullptr || count == nullptr) {
    return NullArgument(__func__, errptr);
  }
  *names = nullptr;
  *count = 0;
  return Guard(errptr, [&] {
    absl::StatusOr<std::vector<std::string>> listed = db->db->ListPrepared();
    if (!listed.ok()) return listed.status();
    if (listed->empty()) return absl::OkStatus();
    // One block: the pointer array, then the strings it points at.
    size_t bytes = listed->size() * sizeof(char*);
    for (const std::string& name : *listed) bytes += name.size() + 1;
    char** block = static_cast<char**>(std::malloc(bytes));
    if (block == nullptr) return absl::ResourceExhaustedError("out of memory");
    char* next = reinterpret_cast<char*>(block + listed->size());
    for (size_t i = 0; i < listed->size(); ++i) {
      const std::string& name = (*listed)[i];
      block[i] = next;
      std::memcpy(next, name.c_str(), name.size() + 1);
      next += name.size() + 1;
    }
    *names = block;
    *count = listed->size();
    return absl::OkStatus();
  });
}

shardtx_code shardtx_commit_prepared(shardtx_db_t* db, const char* name, char** errptr) {
  if (db == nullptr || name == nullptr) return NullArgument(__func__, errptr);
  return Guard(errptr, [&] { return db->db->CommitPrepared(name); });
}

shardtx_code shardtx_rollback_prepared(shardtx_db_t* db, const char* name, char** errptr) {
  if (db == nullptr || name == nullptr) return NullArgument(__func__, errptr);
  return Guard(errptr, [&] { return db->db->RollbackPrepared(name); });
}

// --- Iterators ---------------------------------------------------------------------------------

shardtx_code shardtx_iter_create(shardtx_txn_t* txn, const char* lower_bound, size_t lower_len,
                                 const char* upper_bound, size_t upper_len, int reverse,
                                 shardtx_iterator_t** iter, char** errptr) {
  absl::string_view lower, upper;
  if (txn == nullptr || iter == nullptr || !Bytes(lower_bound, lower_len, &lower) ||
      !Bytes(upper_bound, upper_len, &upper)) {
    return NullArgument(__func__, errptr);
  }
  *iter = nullptr;
  return Guard(errptr, [&] {
    shardtx::IteratorOptions options;
    options.lower_bound = std::string(lower);
    options.upper_bound = std::string(upper);
    options.reverse = reverse != 0;
    auto created = std::make_unique<shardtx_iterator_t>();
    created->shared = txn->shared;
    created->it = txn->shared->txn->NewIterator(options);
    *iter = created.release();
    return absl::OkStatus();
  });
}

void shardtx_iter_destroy(shardtx_iterator_t* iter) { delete iter; }

int shardtx_iter_valid(const shardtx_iterator_t* iter) {
  return iter != nullptr && iter->error.ok() && iter->it->Valid() ? 1 : 0;
}

shardtx_code shardtx_iter_seek_to_first(shardtx_iterator_t* iter) {
  return MoveIterator(iter, [&] { iter->it->SeekToFirst(); });
}

shardtx_code shardtx_iter_seek(shardtx_iterator_t* iter, const char* target, size_t target_len) {
  absl::string_view t;
  if (!Bytes(target, target_len, &t)) return SHARDTX_INVALID_ARGUMENT;
  return MoveIterator(iter, [&] { iter->it->Seek(t); });
}

shardtx_code shardtx_iter_next(shardtx_iterator_t* iter) {
  return MoveIterator(iter, [&] {
    if (iter->it->Valid()) iter->it->Next();
  });
}

const char* shardtx_iter_key(const shardtx_iterator_t* iter, size_t* keylen) {
  const bool valid = shardtx_iter_valid(iter);
  absl::string_view key = valid ? iter->it->key() : absl::string_view();
  if (keylen != nullptr) *keylen = key.size();
  return valid ? key.data() : nullptr;
}

const char* shardtx_iter_value(const shardtx_iterator_t* iter, size_t* value_len) {
  const bool valid = shardtx_iter_valid(iter);
  absl::string_view value = valid ? iter->it->value() : absl::string_view();
  if (value_len != nullptr) *value_len = value.size();
  return valid ? value.data() : nullptr;
}

shardtx_code shardtx_iter_status(const shardtx_iterator_t* iter, char** errptr) {
  if (iter == nullptr) return NullArgument(__func__, errptr);
  return Guard(errptr, [&] { return iter->error.ok() ? iter->it->status() : iter->error; });
}

}  // extern "C"
