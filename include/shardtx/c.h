/* shardtx/c.h: the C API of shardtx, for hosts written in C or loading libshardtx.so through
 * FFI (Go, Rust, Python). A thin layer over the C++ API (shardtx/database.h): the same
 * semantics, errors and guarantees, documented there in full; this header says what differs.
 *
 *   shardtx_options_t* options = shardtx_options_create();
 *   shardtx_options_set_path(options, "/var/lib/myhost/shardtx", &err);
 *   shardtx_db_t* db;
 *   if (shardtx_open(options, &db, &err) != SHARDTX_OK) { fprintf(stderr, "%s\n", err); ... }
 *   shardtx_options_destroy(options);
 *   shardtx_txn_t* txn;
 *   shardtx_begin(db, SHARDTX_SNAPSHOT, SHARDTX_SYNC, &txn, &err);
 *   shardtx_put(txn, "k", 1, "v", 1, &err);
 *   shardtx_code code = shardtx_commit(txn, &err);   // durable once SHARDTX_OK
 *   shardtx_txn_destroy(txn);
 *   shardtx_close(db, &err);
 *
 * Errors. Every call that can fail returns a shardtx_code (SHARDTX_OK on success; the values
 * are those of absl::StatusCode) and takes a last argument `char** errptr`. errptr may be NULL.
 * Otherwise *errptr is set to NULL on success, and on failure to a NUL-terminated message
 * (what failed and where: key, shard, file, phase), which the caller frees with shardtx_free.
 * (If even that allocation fails, *errptr is NULL and the code is still returned.) No C++
 * exception leaves this API: running out of memory is SHARDTX_RESOURCE_EXHAUSTED, anything
 * unexpected SHARDTX_INTERNAL. A NULL handle where one is required is SHARDTX_INVALID_ARGUMENT.
 *
 * Memory. Every buffer this API returns to the caller (messages, values, names, stats) is one
 * malloc'd block, freed with shardtx_free. Handles are freed by their own call (_destroy,
 * shardtx_close). Keys and values are byte strings (pointer and length, any bytes, no NUL
 * needed); names and paths are NUL-terminated.
 *
 * Handles and threads. A shardtx_db_t may be used from many threads at once. A shardtx_txn_t,
 * and a shardtx_iterator_t, by one thread at a time (they may move between threads); a
 * transaction and its iterators count as one here: never use or destroy them from two threads
 * at once (a finalizer thread included). Otherwise handles may be destroyed in any order: a transaction
 * keeps what it needs of its database alive, and an iterator what it needs of its transaction,
 * so that destroying the database handle or the transaction first is never a use after free;
 * the directory is released when the last of them is gone.
 *
 * Linking: `pkg-config --cflags --libs shardtx` (libshardtx.so, which names its own
 * dependencies); `pkg-config --static --libs shardtx` lists everything libshardtx.a needs. */
#ifndef SHARDTX_C_H_
#define SHARDTX_C_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes: the values of absl::StatusCode. The ones shardtx returns, and when: */
typedef enum shardtx_code {
  SHARDTX_OK = 0,
  SHARDTX_CANCELLED = 1,
  SHARDTX_UNKNOWN = 2,
  SHARDTX_INVALID_ARGUMENT = 3, /* bad options, key, name or handle */
  SHARDTX_DEADLINE_EXCEEDED = 4,
  SHARDTX_NOT_FOUND = 5,      /* no such key, prepared name, or directory */
  SHARDTX_ALREADY_EXISTS = 6, /* a prepared transaction has this name */
  SHARDTX_PERMISSION_DENIED = 7,
  SHARDTX_RESOURCE_EXHAUSTED = 8,  /* transaction too large; out of memory; disk full */
  SHARDTX_FAILED_PRECONDITION = 9, /* closed, transaction over, directory in use */
  SHARDTX_ABORTED = 10,            /* conflict: retryable (run the transaction again) */
  SHARDTX_OUT_OF_RANGE = 11,
  SHARDTX_UNIMPLEMENTED = 12,
  SHARDTX_INTERNAL = 13, /* I/O errors; the log failed: reopen the database */
  SHARDTX_UNAVAILABLE = 14,
  SHARDTX_DATA_LOSS = 15, /* the WAL or a store is corrupt */
  SHARDTX_UNAUTHENTICATED = 16
} shardtx_code;

/* The name of a code ("OK", "ABORTED", ...); "UNKNOWN_CODE" for a value not listed above.
 * A static string: do not free it. */
const char* shardtx_code_name(int code);

/* Frees a block this API returned (message, value, name list, stats). NULL is a no-op. */
void shardtx_free(void* ptr);

/* ---------------------------------------------------------------------------------------------
 * Options for shardtx_open. Defaults are those of shardtx::Options (shardtx/options.h), which
 * documents each field; shardtx_open checks them all (SHARDTX_INVALID_ARGUMENT). The setters
 * only record a value. An options object is used by one thread at a time and may be destroyed
 * once shardtx_open returns. */
typedef struct shardtx_options_t shardtx_options_t;

/* A new options object with the defaults, or NULL when out of memory. */
shardtx_options_t* shardtx_options_create(void);
/* NULL is a no-op. */
void shardtx_options_destroy(shardtx_options_t* options);

/* The database directory (required). Errors: INVALID_ARGUMENT (NULL), RESOURCE_EXHAUSTED. */
shardtx_code shardtx_options_set_path(shardtx_options_t* options, const char* path, char** errptr);
/* Non-zero (the default): create the directory when it is missing; zero: NOT_FOUND instead. */
void shardtx_options_set_create_if_missing(shardtx_options_t* options, int create_if_missing);
/* Fixed when the directory is created; 0 (the default): whatever the directory has, 1 if new. */
void shardtx_options_set_num_shards(shardtx_options_t* options, uint32_t num_shards);

/* Partitioning: how keys map to shards (one of the three calls below; the last one wins).
 * Recorded in the directory: reopening with another scheme fails with INVALID_ARGUMENT. */
/* Consistent hashing of the key (the default). */
void shardtx_options_set_hash_partitioning(shardtx_options_t* options);
/* Range partitioning: shard i holds [split_points[i-1], split_points[i]); num_shards - 1
 * strictly ascending keys (checked by shardtx_open). The keys are copied. Errors:
 * INVALID_ARGUMENT (NULL arrays with count > 0), RESOURCE_EXHAUSTED. */
shardtx_code shardtx_options_set_range_partitioning(shardtx_options_t* options,
                                                    const char* const* split_points,
                                                    const size_t* split_point_lens, size_t count,
                                                    char** errptr);
/* Explicit placement: shard_of(state, key, keylen) decides; it must return a shard below
 * num_shards for every key, the same one forever, and may be called from any thread at any
 * time while the database is open. `state` is passed through and must outlive the database. */
typedef uint32_t (*shardtx_shard_fn)(void* state, const char* key, size_t keylen);
void shardtx_options_set_explicit_partitioning(shardtx_options_t* options,
                                               shardtx_shard_fn shard_of, void* state);

/* The numeric fields of shardtx::Options, same names, same meaning, same defaults. */
void shardtx_options_set_wal_segment_size(shardtx_options_t* options, uint64_t bytes);
void shardtx_options_set_max_txn_bytes(shardtx_options_t* options, uint64_t bytes);
void shardtx_options_set_checkpoint_wal_bytes(shardtx_options_t* options, uint64_t bytes);
void shardtx_options_set_checkpoint_overlay_bytes(shardtx_options_t* options, uint64_t bytes);
/* Checkpoint a shard after this many milliseconds (0 disables the timer; default 30000). */
void shardtx_options_set_checkpoint_interval_ms(shardtx_options_t* options, uint64_t ms);
void shardtx_options_set_overlay_limit_bytes(shardtx_options_t* options, uint64_t bytes);
void shardtx_options_set_checkpointed_deletes_bytes(shardtx_options_t* options, uint64_t bytes);
void shardtx_options_set_checkpoint_on_close(shardtx_options_t* options, int checkpoint);
void shardtx_options_set_checkpoint_txn_bytes(shardtx_options_t* options, uint64_t bytes);
void shardtx_options_set_checkpoint_pace(shardtx_options_t* options, double pace);
void shardtx_options_set_max_open_transactions(shardtx_options_t* options, uint32_t count);
void shardtx_options_set_max_async_commits(shardtx_options_t* options, uint32_t count);
void shardtx_options_set_lmdb_map_size(shardtx_options_t* options, uint64_t bytes);
/* Options::log_layout: nonzero (the default) one log shared by all shards (PATH/log), 0 one log
 * per shard (PATH/shard-NNN/wal). Used when the directory is created; an existing directory
 * keeps the layout it was created with, whatever this says. */
void shardtx_options_set_shared_log(shardtx_options_t* options, int shared);

/* Replication (ReplicationOptions in shardtx/options.h; README, "Replication"): this node's id
 * (0, the default, means not replicated) and the cluster's id; every voting member, this node
 * included, added one at a time (id, "IPv4:P"; shard g's Raft group uses port P+1+g); the Raft
 * timing in milliseconds; whether this node joins an existing cluster; the Raft log compaction;
 * where the shards' leaders gather.
 * shardtx_open checks them all (INVALID_ARGUMENT). The strings are copied. Errors of the
 * setters: INVALID_ARGUMENT for a NULL string. */
shardtx_code shardtx_options_set_replication(shardtx_options_t* options, uint64_t node_id,
                                             const char* cluster_id, char** errptr);
shardtx_code shardtx_options_add_member(shardtx_options_t* options, uint64_t id,
                                        const char* address, char** errptr);
void shardtx_options_set_raft_timing(shardtx_options_t* options, uint64_t election_timeout_ms,
                                     uint64_t heartbeat_ms);
void shardtx_options_set_replication_join(shardtx_options_t* options, int join);
void shardtx_options_set_raft_snapshots(shardtx_options_t* options, uint32_t threshold,
                                        uint32_t trailing);
/* Leadership gathering (ReplicationOptions::preferred_leader, gather_leaders): the member the
 * shards' leaders should gather on (0: none), and whether this node gathers at all. */
void shardtx_options_set_preferred_leader(shardtx_options_t* options, uint64_t id);
void shardtx_options_set_gather_leaders(shardtx_options_t* options, int gather);

/* ---------------------------------------------------------------------------------------------
 * The database. */
typedef struct shardtx_db_t shardtx_db_t;

/* Opens (creating or recovering) the database that `options` describe and sets *db. Errors
 * (see Database::Open): INVALID_ARGUMENT (bad options, which create nothing; shard count or
 * partitioning differ from the directory's), NOT_FOUND (missing and create_if_missing is 0),
 * FAILED_PRECONDITION (not a shardtx directory, a path through a regular file, a newer format,
 * already open), PERMISSION_DENIED, DATA_LOSS. On failure *db is NULL. */
shardtx_code shardtx_open(const shardtx_options_t* options, shardtx_db_t** db, char** errptr);

/* Closes the database (Database::Close: later writes through its transactions fail with
 * FAILED_PRECONDITION, commits are made durable, every shard is checkpointed unless disabled)
 * and frees the handle, also when it returns an error (the first one met). The handle must not
 * be used afterwards, nor by another thread meanwhile. Transactions still alive keep the
 * directory locked until they are destroyed. NULL is a no-op returning SHARDTX_OK. */
shardtx_code shardtx_close(shardtx_db_t* db, char** errptr);

/* Checkpoints every shard now (commits continue meanwhile). */
shardtx_code shardtx_checkpoint(shardtx_db_t* db, char** errptr);

/* Writes a consistent copy of the open database into the new directory `dest`, whose parent
 * must exist, while commits continue (Database::Backup: every commit acknowledged before the
 * call is in it, no cross-shard transaction is in it in part; it opens with shardtx_open like
 * any database). ALREADY_EXISTS if dest exists; NOT_FOUND if its parent does not;
 * INVALID_ARGUMENT if dest is empty or lies inside the database;
 * FAILED_PRECONDITION if the database is closed or another backup of it is running. */
shardtx_code shardtx_backup(shardtx_db_t* db, const char* dest, char** errptr);

/* A human-readable multi-line dump of the database's counters (Stats::ToString) in *stats,
 * NUL-terminated, to free with shardtx_free. */
shardtx_code shardtx_stats(shardtx_db_t* db, char** stats, char** errptr);

/* What became of the transaction with id `txn_id` (shardtx_txn_id), also after a restart; see
 * Database::GetOutcome for how long outcomes are remembered. */
typedef enum shardtx_outcome {
  SHARDTX_OUTCOME_UNKNOWN = 0,
  SHARDTX_OUTCOME_COMMITTED = 1,
  SHARDTX_OUTCOME_ABORTED = 2,
  SHARDTX_OUTCOME_PREPARED = 3
} shardtx_outcome;
shardtx_code shardtx_get_outcome(shardtx_db_t* db, uint64_t txn_id, shardtx_outcome* outcome,
                                 char** errptr);
/* The same for a replicated database, asked of the node that leads the shard of `key`, a key
 * the transaction wrote (Database::GetOutcomeOfKey): UNAVAILABLE naming the leader when this
 * node does not lead that shard. An unreplicated database answers as shardtx_get_outcome. */
shardtx_code shardtx_get_outcome_of_key(shardtx_db_t* db, uint64_t txn_id, const char* key,
                                        size_t keylen, shardtx_outcome* outcome, char** errptr);

/* Who leads shard `shard`'s Raft group, as this node knows it (Database::Leadership): this
 * node's role (a shardtx_role), whether it is the ready leader (accepts commits), its term,
 * and the leader's id (0 when none is known) and address in *leader_address ("" when none;
 * NUL-terminated, to free with shardtx_free). Errors: FAILED_PRECONDITION when the database is
 * not replicated or is closed; INVALID_ARGUMENT for a shard out of range. */
typedef enum shardtx_role {
  SHARDTX_ROLE_FOLLOWER = 0,
  SHARDTX_ROLE_CANDIDATE = 1,
  SHARDTX_ROLE_LEADER = 2,
  SHARDTX_ROLE_UNAVAILABLE = 3 /* the group is stopped (its log failed, or closing) */
} shardtx_role;
shardtx_code shardtx_shard_leader(shardtx_db_t* db, uint32_t shard, shardtx_role* role,
                                  int* ready, uint64_t* term, uint64_t* leader_id,
                                  char** leader_address, char** errptr);

/* Membership of a replicated database (Database::AddMember / RemoveMember: what each result
 * means, and the order to replace a dead member, are written there). Call on the node that
 * leads every shard; repeat until SHARDTX_OK. */
shardtx_code shardtx_add_member(shardtx_db_t* db, uint64_t id, const char* address,
                                char** errptr);
shardtx_code shardtx_remove_member(shardtx_db_t* db, uint64_t id, char** errptr);

/* ---------------------------------------------------------------------------------------------
 * Transactions (shardtx/transaction.h). Reads see the snapshot taken at shardtx_begin plus the
 * transaction's own writes; writes are buffered until commit. After commit, rollback, a
 * successful prepare, or any error of commit or prepare, the transaction is over: its calls
 * fail with FAILED_PRECONDITION, and only the handle remains to destroy. */
typedef struct shardtx_txn_t shardtx_txn_t;

typedef enum shardtx_isolation {
  SHARDTX_SNAPSHOT = 0,    /* write-write conflicts abort the later committer */
  SHARDTX_SERIALIZABLE = 1 /* also validates at commit what was read (keys and ranges) */
} shardtx_isolation;

typedef enum shardtx_durability {
  SHARDTX_SYNC = 0,  /* commit returns after the fsync: survives any crash */
  SHARDTX_ASYNC = 1, /* the log syncs it promptly; a crash may lose a suffix of commits */
  SHARDTX_NONE = 2   /* durable with the next synced commit, checkpoint or close */
} shardtx_durability;

/* Starts a transaction and sets *txn. isolation is a shardtx_isolation and durability a
 * shardtx_durability (ints, so that any value a host passes is read safely). Errors:
 * INVALID_ARGUMENT (a value not listed above), RESOURCE_EXHAUSTED. */
shardtx_code shardtx_begin(shardtx_db_t* db, int isolation, int durability, shardtx_txn_t** txn,
                           char** errptr);

/* Rolls the transaction back if it is not over, and frees the handle. NULL is a no-op. */
void shardtx_txn_destroy(shardtx_txn_t* txn);

/* Keys are 1 to 511 bytes (shardtx::kMaxKeySize); others get INVALID_ARGUMENT. */

/* Reads `key`: on SHARDTX_OK, *value is a malloc'd copy of its bytes (to free with
 * shardtx_free; one extra NUL byte follows them, not counted in *value_len). On
 * SHARDTX_NOT_FOUND (no such key) and every other error, *value is NULL and *value_len 0. */
shardtx_code shardtx_get(shardtx_txn_t* txn, const char* key, size_t keylen, char** value,
                         size_t* value_len, char** errptr);
/* Buffers a write of `key`; visible to this transaction at once, to others after commit. */
shardtx_code shardtx_put(shardtx_txn_t* txn, const char* key, size_t keylen, const char* value,
                         size_t value_len, char** errptr);
/* Buffers a delete of `key` (absent or not). */
shardtx_code shardtx_delete(shardtx_txn_t* txn, const char* key, size_t keylen, char** errptr);

/* Commits: durable (per the transaction's durability) and visible on every shard at once when
 * SHARDTX_OK. Errors: ABORTED (retryable: a write-write conflict, a failed serializable
 * validation, a key locked by a prepared transaction; the message names key, shard and phase),
 * RESOURCE_EXHAUSTED (larger than max_txn_bytes), FAILED_PRECONDITION (database closed,
 * transaction over), INTERNAL (the log failed: not committed, reopen the database). A
 * replicated database also returns UNAVAILABLE (this node does not lead the shard: no effect;
 * the message names the leader's id and address) and UNKNOWN (leadership was lost while the
 * commit was in flight: it may or may not have committed; ask shardtx_get_outcome_of_key on the
 * new leader, with shardtx_txn_id, before running it again). */
shardtx_code shardtx_commit(shardtx_txn_t* txn, char** errptr);
/* Commits without blocking for the disk (Transaction::CommitAsync: the rules for callbacks,
 * back-pressure and transactions writing several shards are written there). An error known
 * before anything is logged (ABORTED, RESOURCE_EXHAUSTED, FAILED_PRECONDITION, INTERNAL for a
 * failed log) is returned at once, and `done` is never called. SHARDTX_OK means `done(arg,
 * code, message)` will be called exactly once, on a shardtx thread (or, for a read-only
 * transaction, on this one before shardtx_commit_async returns): with SHARDTX_OK and a NULL
 * message once the commit is durable and visible, or with the error (a failed log: not
 * committed, reopen the database) and its message, valid only during the call. The callback
 * must be quick, must not call shardtx_close nor destroy the last handle of the database, and
 * must not unwind (longjmp) out. The transaction is over once this returns; its handle may be
 * destroyed at once. shardtx_close returns only after every accepted callback has returned. */
typedef void (*shardtx_commit_fn)(void* arg, shardtx_code code, const char* message);
shardtx_code shardtx_commit_async(shardtx_txn_t* txn, shardtx_commit_fn done, void* arg,
                                  char** errptr);
/* Discards the writes. FAILED_PRECONDITION if the transaction is already over. */
shardtx_code shardtx_rollback(shardtx_txn_t* txn, char** errptr);

/* The transaction's id (for shardtx_get_outcome), its snapshot timestamp, and its commit
 * timestamp (0 until a successful commit). 0 for a NULL handle. Never fail. */
uint64_t shardtx_txn_id(const shardtx_txn_t* txn);
uint64_t shardtx_txn_snapshot_timestamp(const shardtx_txn_t* txn);
uint64_t shardtx_txn_commit_timestamp(const shardtx_txn_t* txn);

/* ---------------------------------------------------------------------------------------------
 * Named two-phase commit, for a host that runs its own coordinator (Transaction::Prepare). */

/* Phase one: makes the writes durable as prepared under `name` (NUL-terminated), their keys
 * locked until shardtx_commit_prepared or shardtx_rollback_prepared of that name, across
 * crashes and restarts. The transaction is then over. Errors: INVALID_ARGUMENT (empty name),
 * ALREADY_EXISTS (a prepared transaction has this name), and those of shardtx_commit. */
shardtx_code shardtx_prepare(shardtx_txn_t* txn, const char* name, char** errptr);

/* The names of the transactions prepared and not yet decided, sorted: *names is an array of
 * *count NUL-terminated strings, all in one malloc'd block (the array and the strings): free
 * *names, and only it, with shardtx_free. With no prepared transaction, *count is 0 and *names
 * NULL. */
shardtx_code shardtx_list_prepared(shardtx_db_t* db, char*** names, size_t* count, char** errptr);

/* Decides the prepared transaction `name`: commit (durable and visible when SHARDTX_OK) or roll
 * back (its locks released). Exactly one resolution of a name wins. Errors: NOT_FOUND (no
 * prepared transaction of that name, or already decided), FAILED_PRECONDITION (another call is
 * deciding it; in doubt after a log failure; database closed), INTERNAL (the log failed). */
shardtx_code shardtx_commit_prepared(shardtx_db_t* db, const char* name, char** errptr);
shardtx_code shardtx_rollback_prepared(shardtx_db_t* db, const char* name, char** errptr);

/* ---------------------------------------------------------------------------------------------
 * Iterators (shardtx/iterator.h): the keys visible to a transaction, in key order, merged
 * across shards, within [lower_bound, upper_bound). Not positioned when created: call
 * shardtx_iter_seek_to_first or shardtx_iter_seek first. An error ends the iteration
 * (shardtx_iter_valid turns 0) and stays in shardtx_iter_status; so does the end of the
 * transaction (a later move reports FAILED_PRECONDITION). */
typedef struct shardtx_iterator_t shardtx_iterator_t;

/* A new iterator of `txn` and sets *iter. An empty bound (length 0; the pointer may then be
 * NULL) is no bound. reverse non-zero: from the last key to the first. Its reads count as
 * reads of the whole bounded range for serializable validation. */
shardtx_code shardtx_iter_create(shardtx_txn_t* txn, const char* lower_bound, size_t lower_len,
                                 const char* upper_bound, size_t upper_len, int reverse,
                                 shardtx_iterator_t** iter, char** errptr);
/* NULL is a no-op. */
void shardtx_iter_destroy(shardtx_iterator_t* iter);

/* Moves: to the first key of the range (the last, if reverse); to the first key >= target (the
 * last <= target, if reverse), target being any bytes; to the next key (a no-op when not
 * valid). Each returns the iterator's status code after the move (SHARDTX_OK also at the end
 * of the range); the message is in shardtx_iter_status. */
shardtx_code shardtx_iter_seek_to_first(shardtx_iterator_t* iter);
shardtx_code shardtx_iter_seek(shardtx_iterator_t* iter, const char* target, size_t target_len);
shardtx_code shardtx_iter_next(shardtx_iterator_t* iter);

/* Non-zero when positioned at a key. */
int shardtx_iter_valid(const shardtx_iterator_t* iter);
/* The current key and value: borrowed bytes (not NUL-terminated, do not free), valid until
 * the iterator moves or is destroyed, or its transaction ends. NULL with length 0 when the
 * iterator is not valid. */
const char* shardtx_iter_key(const shardtx_iterator_t* iter, size_t* keylen);
const char* shardtx_iter_value(const shardtx_iterator_t* iter, size_t* value_len);
/* SHARDTX_OK, or the error that ended the iteration (with its message in *errptr). */
shardtx_code shardtx_iter_status(const shardtx_iterator_t* iter, char** errptr);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SHARDTX_C_H_ */
