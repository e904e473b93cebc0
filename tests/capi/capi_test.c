/* The C API (include/shardtx/c.h) as a C host uses it: compiled as C99, linked against
 * libshardtx.so like any C program. Calls every function of c.h, the error paths included.
 * Usage: capi_test <scratch directory> (created; emptied first). Exits 1 if any check fails. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "shardtx/c.h"

static int failures = 0;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                              \
    }                                                                          \
  } while (0)

/* Checks that `call` returns `want`, and that the message is set exactly when it is not OK. */
#define CHECK_CODE(want, call) check_code((want), (call), &err, __FILE__, __LINE__, #call)

static char* err = NULL;

static void check_code(shardtx_code want, shardtx_code got, char** message, const char* file,
                       int line, const char* call) {
  if (got != want) {
    fprintf(stderr, "%s:%d: %s returned %s, want %s: %s\n", file, line, call,
            shardtx_code_name(got), shardtx_code_name(want), *message ? *message : "(no message)");
    failures++;
  } else if ((got == SHARDTX_OK) != (*message == NULL)) {
    fprintf(stderr, "%s:%d: %s: message '%s' does not match code %s\n", file, line, call,
            *message ? *message : "(null)", shardtx_code_name(got));
    failures++;
  }
  shardtx_free(*message);
  *message = NULL;
}

static char dir[4096];

static const char* path_in(const char* name) {
  static char path[4200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return path;
}

static shardtx_options_t* options_for(const char* name, uint32_t shards) {
  shardtx_options_t* options = shardtx_options_create();
  CHECK(options != NULL);
  CHECK_CODE(SHARDTX_OK, shardtx_options_set_path(options, path_in(name), &err));
  shardtx_options_set_num_shards(options, shards);
  return options;
}

static void put(shardtx_txn_t* txn, const char* key, const char* value) {
  CHECK_CODE(SHARDTX_OK, shardtx_put(txn, key, strlen(key), value, strlen(value), &err));
}

/* Checks that `key` reads as `want` in a new transaction (NULL: absent). */
static void expect(shardtx_db_t* db, const char* key, const char* want) {
  shardtx_txn_t* txn = NULL;
  char* value = NULL;
  size_t len = 0;
  CHECK_CODE(SHARDTX_OK, shardtx_begin(db, SHARDTX_SNAPSHOT, SHARDTX_SYNC, &txn, &err));
  shardtx_code code = shardtx_get(txn, key, strlen(key), &value, &len, &err);
  if (want == NULL) {
    CHECK_CODE(SHARDTX_NOT_FOUND, code);
    CHECK(value == NULL && len == 0);
  } else {
    CHECK_CODE(SHARDTX_OK, code);
    CHECK(value != NULL && len == strlen(want) && memcmp(value, want, len) == 0);
    CHECK(value != NULL && value[len] == '\0');
  }
  shardtx_free(value);
  shardtx_txn_destroy(txn);
}

static void test_codes_and_null_handles(void) {
  CHECK(strcmp(shardtx_code_name(SHARDTX_OK), "OK") == 0);
  CHECK(strcmp(shardtx_code_name(SHARDTX_ABORTED), "ABORTED") == 0);
  CHECK(strcmp(shardtx_code_name(SHARDTX_UNAUTHENTICATED), "UNAUTHENTICATED") == 0);
  CHECK(strcmp(shardtx_code_name(17), "UNKNOWN_CODE") == 0);
  CHECK(strcmp(shardtx_code_name(-1), "UNKNOWN_CODE") == 0);
  shardtx_free(NULL);
  shardtx_options_destroy(NULL);
  shardtx_txn_destroy(NULL);
  shardtx_iter_destroy(NULL);
  CHECK_CODE(SHARDTX_OK, shardtx_close(NULL, &err));
  shardtx_db_t* db = (shardtx_db_t*)&db; /* never dereferenced: every call below stops first */
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_open(NULL, &db, &err));
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_commit(NULL, &err));
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_checkpoint(NULL, &err));
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_options_set_path(NULL, "x", &err));
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_options_set_replication(NULL, 1, "c", &err));
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_options_add_member(NULL, 1, "127.0.0.1:1", &err));
  shardtx_options_set_raft_timing(NULL, 1000, 100);
  shardtx_options_set_replication_join(NULL, 1);
  shardtx_options_set_raft_snapshots(NULL, 1024, 1024);
  shardtx_options_set_preferred_leader(NULL, 1);
  shardtx_options_set_gather_leaders(NULL, 0);
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_remove_member(NULL, 1, &err));
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_iter_status(NULL, &err));
  CHECK(shardtx_iter_seek_to_first(NULL) == SHARDTX_INVALID_ARGUMENT);
  CHECK(shardtx_iter_valid(NULL) == 0);
  CHECK(shardtx_txn_id(NULL) == 0);
  /* errptr may be NULL. */
  CHECK(shardtx_rollback(NULL, NULL) == SHARDTX_INVALID_ARGUMENT);
}

static void test_open_errors(void) {
  shardtx_db_t* db = NULL;

  /* Missing directory, create_if_missing off: NOT_FOUND, nothing created. */
  shardtx_options_t* options = options_for("missing", 1);
  shardtx_options_set_create_if_missing(options, 0);
  CHECK_CODE(SHARDTX_NOT_FOUND, shardtx_open(options, &db, &err));
  CHECK(db == NULL);
  struct stat st;
  CHECK(stat(path_in("missing"), &st) != 0);
  shardtx_options_destroy(options);

  /* A directory holding something else. */
  CHECK(mkdir(path_in("other"), 0755) == 0);
  FILE* f = fopen(path_in("other/notes.txt"), "w");
  CHECK(f != NULL);
  if (f != NULL) fclose(f);
  options = options_for("other", 1);
  CHECK_CODE(SHARDTX_FAILED_PRECONDITION, shardtx_open(options, &db, &err));
  CHECK(db == NULL);
  shardtx_options_destroy(options);

  /* A regular file; a directory whose parent is missing; no path at all. */
  options = options_for("other/notes.txt", 1);
  CHECK_CODE(SHARDTX_FAILED_PRECONDITION, shardtx_open(options, &db, &err));
  CHECK_CODE(SHARDTX_OK, shardtx_options_set_path(options, path_in("no/parent"), &err));
  CHECK_CODE(SHARDTX_NOT_FOUND, shardtx_open(options, &db, &err));
  CHECK(stat(path_in("no"), &st) != 0);
  CHECK_CODE(SHARDTX_OK, shardtx_options_set_path(options, "", &err));
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_open(options, &db, &err));
  CHECK(db == NULL);
  shardtx_options_destroy(options);

  /* Range partitioning needs num_shards - 1 split points. */
  options = options_for("badrange", 3);
  const char* points[] = {"m"};
  size_t lens[] = {1};
  CHECK_CODE(SHARDTX_OK, shardtx_options_set_range_partitioning(options, points, lens, 1, &err));
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_open(options, &db, &err));
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT,
             shardtx_options_set_range_partitioning(options, NULL, lens, 1, &err));
  /* Explicit partitioning without a function; then a valid scheme again. */
  shardtx_options_set_explicit_partitioning(options, NULL, NULL);
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_open(options, &db, &err));
  shardtx_options_set_hash_partitioning(options);
  shardtx_options_set_wal_segment_size(options, 100); /* not a multiple of 8, below 64 KiB */
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_open(options, &db, &err));
  CHECK(db == NULL);
  CHECK(stat(path_in("badrange"), &st) != 0); /* bad options created nothing */
  /* A path through a regular file. */
  shardtx_options_set_wal_segment_size(options, 64u << 20);
  CHECK_CODE(SHARDTX_OK, shardtx_options_set_path(options, path_in("other/notes.txt/db"), &err));
  CHECK_CODE(SHARDTX_FAILED_PRECONDITION, shardtx_open(options, &db, &err));
  shardtx_options_destroy(options);
}

static uint32_t explicit_calls = 0;

static uint32_t first_byte_shard(void* state, const char* key, size_t keylen) {
  (void)keylen;
  *(uint32_t*)state += 1;
  return (unsigned char)key[0] % 2;
}

static void test_explicit_partitioning(void) {
  shardtx_options_t* options = options_for("explicit", 2);
  shardtx_options_set_explicit_partitioning(options, first_byte_shard, &explicit_calls);
  shardtx_db_t* db = NULL;
  CHECK_CODE(SHARDTX_OK, shardtx_open(options, &db, &err));
  shardtx_options_destroy(options);
  if (db == NULL) return;
  shardtx_txn_t* txn = NULL;
  CHECK_CODE(SHARDTX_OK, shardtx_begin(db, SHARDTX_SNAPSHOT, SHARDTX_SYNC, &txn, &err));
  put(txn, "a", "1");
  put(txn, "b", "2");
  CHECK_CODE(SHARDTX_OK, shardtx_commit(txn, &err));
  shardtx_txn_destroy(txn);
  CHECK(explicit_calls >= 2);
  expect(db, "a", "1");
  expect(db, "b", "2");
  CHECK_CODE(SHARDTX_OK, shardtx_close(db, &err));
}

/* shardtx_options_set_shared_log: a new database gets one log for all its shards (PATH/log, no
 * shard-NNN/wal), which it keeps when reopened with the option off. */
static int is_dir(const char* path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void test_shared_log(void) {
  shardtx_options_set_shared_log(NULL, 1); /* a no-op */
  for (int round = 0; round < 2; ++round) {
    shardtx_options_t* options = options_for("shared", 2);
    shardtx_options_set_shared_log(options, round == 0); /* then off: the directory decides */
    shardtx_db_t* db = NULL;
    CHECK_CODE(SHARDTX_OK, shardtx_open(options, &db, &err));
    shardtx_options_destroy(options);
    if (db == NULL) return;
    shardtx_txn_t* txn = NULL;
    CHECK_CODE(SHARDTX_OK, shardtx_begin(db, SHARDTX_SNAPSHOT, SHARDTX_SYNC, &txn, &err));
    put(txn, round == 0 ? "a" : "b", "1");
    CHECK_CODE(SHARDTX_OK, shardtx_commit(txn, &err));
    shardtx_txn_destroy(txn);
    expect(db, "a", "1");
    char* stats = NULL;
    CHECK_CODE(SHARDTX_OK, shardtx_stats(db, &stats, &err));
    CHECK(stats != NULL && strstr(stats, "one log shared by all shards") != NULL);
    shardtx_free(stats);
    CHECK_CODE(SHARDTX_OK, shardtx_close(db, &err));
  }
  CHECK(is_dir(path_in("shared/log")));
  CHECK(!is_dir(path_in("shared/shard-000/wal")));
  CHECK(!is_dir(path_in("shared/shard-001/wal")));
}

/* What a shardtx_commit_async callback saw. */
struct async_outcome {
  int calls;
  shardtx_code code;
  int had_message;
};

static void on_commit(void* arg, shardtx_code code, const char* message) {
  struct async_outcome* o = (struct async_outcome*)arg;
  o->calls++;
  o->code = code;
  o->had_message = message != NULL;
}

/* shardtx_commit_async: a callback per accepted commit (seen after shardtx_close, which waits
 * for every one), none for a conflict; a read-only commit calls back before returning. */
static void test_commit_async(void) {
  shardtx_options_t* options = options_for("async", 1);
  shardtx_options_set_max_async_commits(options, 8);
  shardtx_db_t* db = NULL;
  CHECK_CODE(SHARDTX_OK, shardtx_open(options, &db, &err));
  shardtx_options_destroy(options);
  if (db == NULL) return;
  struct async_outcome committed = {0, SHARDTX_UNKNOWN, 1};
  struct async_outcome conflicted = {0, SHARDTX_UNKNOWN, 0};
  struct async_outcome read_only = {0, SHARDTX_UNKNOWN, 1};
  shardtx_txn_t* loser = NULL;
  CHECK_CODE(SHARDTX_OK, shardtx_begin(db, SHARDTX_SNAPSHOT, SHARDTX_SYNC, &loser, &err));
  shardtx_txn_t* txn = NULL;
  CHECK_CODE(SHARDTX_OK, shardtx_begin(db, SHARDTX_SNAPSHOT, SHARDTX_SYNC, &txn, &err));
  put(txn, "async", "1");
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_commit_async(txn, NULL, NULL, &err));
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_commit_async(NULL, on_commit, NULL, &err));
  CHECK_CODE(SHARDTX_OK, shardtx_commit_async(txn, on_commit, &committed, &err));
  shardtx_txn_destroy(txn); /* at once: allowed */
  put(loser, "async", "2");
  CHECK_CODE(SHARDTX_ABORTED, shardtx_commit_async(loser, on_commit, &conflicted, &err));
  shardtx_txn_destroy(loser);
  CHECK_CODE(SHARDTX_OK, shardtx_begin(db, SHARDTX_SNAPSHOT, SHARDTX_SYNC, &txn, &err));
  CHECK_CODE(SHARDTX_OK, shardtx_commit_async(txn, on_commit, &read_only, &err));
  CHECK(read_only.calls == 1 && read_only.code == SHARDTX_OK && !read_only.had_message);
  shardtx_txn_destroy(txn);
  CHECK_CODE(SHARDTX_OK, shardtx_close(db, &err));
  CHECK(committed.calls == 1 && committed.code == SHARDTX_OK && !committed.had_message);
  CHECK(conflicted.calls == 0);
  options = options_for("async", 1);
  CHECK_CODE(SHARDTX_OK, shardtx_open(options, &db, &err));
  shardtx_options_destroy(options);
  if (db == NULL) return;
  expect(db, "async", "1");
  CHECK_CODE(SHARDTX_OK, shardtx_close(db, &err));
}

/* Opens the main database: 3 shards split at "h" and "p", every numeric option set. */
static shardtx_db_t* open_main(void) {
  shardtx_options_t* options = options_for("main", 3);
  const char* points[] = {"h", "p"};
  size_t lens[] = {1, 1};
  CHECK_CODE(SHARDTX_OK, shardtx_options_set_range_partitioning(options, points, lens, 2, &err));
  shardtx_options_set_create_if_missing(options, 1);
  shardtx_options_set_wal_segment_size(options, 4u << 20);
  shardtx_options_set_max_txn_bytes(options, 1u << 20);
  shardtx_options_set_checkpoint_wal_bytes(options, 8u << 20);
  shardtx_options_set_checkpoint_overlay_bytes(options, 8u << 20);
  shardtx_options_set_checkpoint_interval_ms(options, 60000);
  shardtx_options_set_overlay_limit_bytes(options, 32u << 20);
  shardtx_options_set_checkpointed_deletes_bytes(options, 1u << 20);
  shardtx_options_set_checkpoint_on_close(options, 1);
  shardtx_options_set_checkpoint_txn_bytes(options, 16u << 10);
  shardtx_options_set_checkpoint_pace(options, 0.5);
  shardtx_options_set_max_open_transactions(options, 64);
  shardtx_options_set_max_async_commits(options, 1024);
  shardtx_options_set_lmdb_map_size(options, 64u << 20);
  shardtx_db_t* db = NULL;
  CHECK_CODE(SHARDTX_OK, shardtx_open(options, &db, &err));
  CHECK(db != NULL);

  /* A second open of the same directory is refused while it is open. */
  shardtx_db_t* again = NULL;
  CHECK_CODE(SHARDTX_FAILED_PRECONDITION, shardtx_open(options, &again, &err));
  CHECK(again == NULL);
  shardtx_options_destroy(options);
  return db;
}

static void test_commit_get_delete(shardtx_db_t* db) {
  shardtx_txn_t* txn = NULL;
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_begin(db, 7, SHARDTX_SYNC, &txn, &err));
  CHECK(txn == NULL);
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_begin(db, SHARDTX_SNAPSHOT, -1, &txn, &err));

  CHECK_CODE(SHARDTX_OK, shardtx_begin(db, SHARDTX_SNAPSHOT, SHARDTX_SYNC, &txn, &err));
  CHECK(shardtx_txn_id(txn) != 0);
  CHECK(shardtx_txn_commit_timestamp(txn) == 0);
  put(txn, "apple", "red");     /* shard 0 */
  put(txn, "kiwi", "green");    /* shard 1 */
  put(txn, "zucchini", "long"); /* shard 2 */
  put(txn, "banana", "yellow");
  /* A value with a NUL inside round-trips. */
  CHECK_CODE(SHARDTX_OK, shardtx_put(txn, "bin", 3, "x\0y", 3, &err));
  /* Bad keys: empty, and one byte over the limit. */
  char long_key[512];
  memset(long_key, 'k', sizeof long_key);
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_put(txn, "", 0, "v", 1, &err));
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_put(txn, long_key, sizeof long_key, "v", 1, &err));
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_put(txn, NULL, 3, "v", 1, &err));
  CHECK_CODE(SHARDTX_OK, shardtx_put(txn, long_key, sizeof long_key - 1, "max", 3, &err));
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_delete(txn, "", 0, &err));
  /* Own writes are visible before commit. */
  char* value = NULL;
  size_t len = 0;
  CHECK_CODE(SHARDTX_OK, shardtx_get(txn, "kiwi", 4, &value, &len, &err));
  CHECK(len == 5 && memcmp(value, "green", 5) == 0);
  shardtx_free(value);
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_get(txn, "", 0, &value, &len, &err));
  CHECK(value == NULL);
  CHECK_CODE(SHARDTX_OK, shardtx_commit(txn, &err));
  const uint64_t commit_ts = shardtx_txn_commit_timestamp(txn);
  CHECK(commit_ts > 0);
  uint64_t committed_id = shardtx_txn_id(txn);
  /* The transaction is over. */
  CHECK_CODE(SHARDTX_FAILED_PRECONDITION, shardtx_commit(txn, &err));
  CHECK_CODE(SHARDTX_FAILED_PRECONDITION, shardtx_rollback(txn, &err));
  CHECK_CODE(SHARDTX_FAILED_PRECONDITION, shardtx_put(txn, "apple", 5, "x", 1, &err));
  shardtx_txn_destroy(txn);

  shardtx_outcome outcome = SHARDTX_OUTCOME_UNKNOWN;
  CHECK_CODE(SHARDTX_OK, shardtx_get_outcome(db, committed_id, &outcome, &err));
  CHECK(outcome == SHARDTX_OUTCOME_COMMITTED);
  CHECK_CODE(SHARDTX_OK, shardtx_get_outcome(db, committed_id + 1000000, &outcome, &err));
  CHECK(outcome == SHARDTX_OUTCOME_UNKNOWN);
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_get_outcome(db, committed_id, NULL, &err));
  /* An unreplicated database: outcomes by key as without one; no leaders; no membership.
   * (tests/capi/capi_replicated_test.cc runs these calls on three replicated nodes.) */
  CHECK_CODE(SHARDTX_OK,
             shardtx_get_outcome_of_key(db, committed_id, "apple", 5, &outcome, &err));
  CHECK(outcome == SHARDTX_OUTCOME_COMMITTED);
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT,
             shardtx_get_outcome_of_key(db, committed_id, NULL, 5, &outcome, &err));
  {
    shardtx_role role;
    int ready;
    uint64_t term, leader_id;
    char* address = NULL;
    CHECK_CODE(SHARDTX_FAILED_PRECONDITION,
               shardtx_shard_leader(db, 0, &role, &ready, &term, &leader_id, &address, &err));
    CHECK(address == NULL);
  }
  CHECK_CODE(SHARDTX_FAILED_PRECONDITION, shardtx_add_member(db, 2, "127.0.0.1:1", &err));
  CHECK_CODE(SHARDTX_FAILED_PRECONDITION, shardtx_remove_member(db, 2, &err));
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_add_member(db, 2, NULL, &err));

  expect(db, "apple", "red");
  expect(db, "zucchini", "long");
  expect(db, "cherry", NULL);
  shardtx_txn_t* reader = NULL;
  CHECK_CODE(SHARDTX_OK, shardtx_begin(db, SHARDTX_SNAPSHOT, SHARDTX_SYNC, &reader, &err));
  CHECK(shardtx_txn_snapshot_timestamp(reader) >= commit_ts);
  CHECK_CODE(SHARDTX_OK, shardtx_get(reader, "bin", 3, &value, &len, &err));
  CHECK(len == 3 && memcmp(value, "x\0y", 3) == 0);
  shardtx_free(value);
  CHECK_CODE(SHARDTX_OK, shardtx_get(reader, long_key, sizeof long_key - 1, &value, &len, &err));
  CHECK(len == 3);
  shardtx_free(value);
  CHECK_CODE(SHARDTX_OK, shardtx_rollback(reader, &err));
  shardtx_txn_destroy(reader);

  /* Delete, async and no-sync durability. */
  CHECK_CODE(SHARDTX_OK, shardtx_begin(db, SHARDTX_SNAPSHOT, SHARDTX_ASYNC, &txn, &err));
  CHECK_CODE(SHARDTX_OK, shardtx_delete(txn, "banana", 6, &err));
  CHECK_CODE(SHARDTX_OK, shardtx_commit(txn, &err));
  shardtx_txn_destroy(txn);
  expect(db, "banana", NULL);
  CHECK_CODE(SHARDTX_OK, shardtx_begin(db, SHARDTX_SNAPSHOT, SHARDTX_NONE, &txn, &err));
  put(txn, "banana", "back");
  CHECK_CODE(SHARDTX_OK, shardtx_commit(txn, &err));
  shardtx_txn_destroy(txn);
  expect(db, "banana", "back");

  /* A transaction larger than max_txn_bytes (1 MiB here). */
  size_t big_len = 2u << 20;
  char* big = malloc(big_len);
  CHECK(big != NULL);
  if (big != NULL) {
    memset(big, 'b', big_len);
    CHECK_CODE(SHARDTX_OK, shardtx_begin(db, SHARDTX_SNAPSHOT, SHARDTX_SYNC, &txn, &err));
    CHECK_CODE(SHARDTX_RESOURCE_EXHAUSTED, shardtx_put(txn, "big", 3, big, big_len, &err));
    CHECK_CODE(SHARDTX_OK, shardtx_commit(txn, &err)); /* the refused write is not in it */
    shardtx_txn_destroy(txn);
    free(big);
    expect(db, "big", NULL);
  }
}

static void test_conflicts(shardtx_db_t* db) {
  /* First committer wins; the loser gets ABORTED and its transaction is over. */
  shardtx_txn_t *first = NULL, *second = NULL;
  CHECK_CODE(SHARDTX_OK, shardtx_begin(db, SHARDTX_SNAPSHOT, SHARDTX_SYNC, &first, &err));
  CHECK_CODE(SHARDTX_OK, shardtx_begin(db, SHARDTX_SNAPSHOT, SHARDTX_SYNC, &second, &err));
  put(first, "apple", "green");
  put(second, "apple", "yellow");
  CHECK_CODE(SHARDTX_OK, shardtx_commit(first, &err));
  CHECK_CODE(SHARDTX_ABORTED, shardtx_commit(second, &err));
  uint64_t aborted_id = shardtx_txn_id(second);
  CHECK_CODE(SHARDTX_FAILED_PRECONDITION, shardtx_commit(second, &err));
  shardtx_txn_destroy(first);
  shardtx_txn_destroy(second);
  expect(db, "apple", "green");
  shardtx_outcome outcome = SHARDTX_OUTCOME_UNKNOWN;
  CHECK_CODE(SHARDTX_OK, shardtx_get_outcome(db, aborted_id, &outcome, &err));
  /* Not committed. (A conflict abort at commit is not recorded today: UNKNOWN, not ABORTED.) */
  CHECK(outcome == SHARDTX_OUTCOME_ABORTED || outcome == SHARDTX_OUTCOME_UNKNOWN);

  /* Serializable: what it read changed after its snapshot. */
  shardtx_txn_t* reader = NULL;
  CHECK_CODE(SHARDTX_OK, shardtx_begin(db, SHARDTX_SERIALIZABLE, SHARDTX_SYNC, &reader, &err));
  char* value = NULL;
  size_t len = 0;
  CHECK_CODE(SHARDTX_OK, shardtx_get(reader, "kiwi", 4, &value, &len, &err));
  shardtx_free(value);
  put(reader, "zucchini", "short");
  CHECK_CODE(SHARDTX_OK, shardtx_begin(db, SHARDTX_SNAPSHOT, SHARDTX_SYNC, &first, &err));
  put(first, "kiwi", "brown");
  CHECK_CODE(SHARDTX_OK, shardtx_commit(first, &err));
  shardtx_txn_destroy(first);
  CHECK_CODE(SHARDTX_ABORTED, shardtx_commit(reader, &err));
  shardtx_txn_destroy(reader);
  expect(db, "zucchini", "long");
}

/* Iterates `txn` over [lower, upper) and checks the keys seen, joined by ',', equal `want`. */
static void expect_scan(shardtx_txn_t* txn, const char* lower, const char* upper, int reverse,
                        const char* want) {
  shardtx_iterator_t* it = NULL;
  CHECK_CODE(SHARDTX_OK, shardtx_iter_create(txn, lower, lower ? strlen(lower) : 0, upper,
                                             upper ? strlen(upper) : 0, reverse, &it, &err));
  if (it == NULL) return;
  char seen[1024] = "";
  size_t used = 0;
  CHECK(shardtx_iter_valid(it) == 0); /* not positioned yet */
  for (shardtx_code code = shardtx_iter_seek_to_first(it); shardtx_iter_valid(it);
       code = shardtx_iter_next(it)) {
    CHECK(code == SHARDTX_OK);
    size_t keylen = 0, value_len = 0;
    const char* key = shardtx_iter_key(it, &keylen);
    CHECK(shardtx_iter_value(it, &value_len) != NULL);
    if (keylen > 20) keylen = 20; /* the 511-byte key */
    if (used + keylen + 2 < sizeof seen) {
      if (used > 0) seen[used++] = ',';
      memcpy(seen + used, key, keylen);
      used += keylen;
      seen[used] = '\0';
    }
  }
  CHECK_CODE(SHARDTX_OK, shardtx_iter_status(it, &err));
  if (strcmp(seen, want) != 0) {
    fprintf(stderr, "scan [%s, %s) reverse=%d saw '%s', want '%s'\n", lower ? lower : "",
            upper ? upper : "", reverse, seen, want);
    failures++;
  }
  shardtx_iter_destroy(it);
}

static void test_iterators(shardtx_db_t* db) {
  shardtx_txn_t* txn = NULL;
  CHECK_CODE(SHARDTX_OK, shardtx_begin(db, SHARDTX_SNAPSHOT, SHARDTX_SYNC, &txn, &err));
  put(txn, "fig", "purple"); /* uncommitted: seen by its own iterators */
  CHECK_CODE(SHARDTX_OK, shardtx_delete(txn, "kiwi", 4, &err));
  expect_scan(txn, NULL, NULL, 0, "apple,banana,bin,fig,kkkkkkkkkkkkkkkkkkkk,zucchini");
  expect_scan(txn, "b", "l", 0, "banana,bin,fig,kkkkkkkkkkkkkkkkkkkk");
  expect_scan(txn, "b", "l", 1, "kkkkkkkkkkkkkkkkkkkk,fig,bin,banana");
  expect_scan(txn, "x", "y", 0, "");

  shardtx_iterator_t* it = NULL;
  CHECK_CODE(SHARDTX_OK, shardtx_iter_create(txn, NULL, 0, NULL, 0, 0, &it, &err));
  CHECK(shardtx_iter_seek(it, "c", 1) == SHARDTX_OK);
  size_t len = 0;
  const char* key = shardtx_iter_key(it, &len);
  CHECK(shardtx_iter_valid(it) && len == 3 && memcmp(key, "fig", 3) == 0);
  const char* value = shardtx_iter_value(it, &len);
  CHECK(len == 6 && memcmp(value, "purple", 6) == 0);
  CHECK(shardtx_iter_seek(it, "zz", 2) == SHARDTX_OK);
  CHECK(shardtx_iter_valid(it) == 0);
  CHECK(shardtx_iter_key(it, &len) == NULL && len == 0);
  CHECK(shardtx_iter_value(it, &len) == NULL && len == 0);
  CHECK(shardtx_iter_next(it) == SHARDTX_OK); /* no-op when not valid */
  CHECK(shardtx_iter_seek(it, NULL, 1) == SHARDTX_INVALID_ARGUMENT);

  /* The end of the transaction ends the iteration. Destroying the transaction before its
   * iterator is allowed. */
  CHECK(shardtx_iter_seek_to_first(it) == SHARDTX_OK && shardtx_iter_valid(it));
  CHECK_CODE(SHARDTX_OK, shardtx_rollback(txn, &err));
  shardtx_txn_destroy(txn);
  CHECK(shardtx_iter_seek_to_first(it) == SHARDTX_FAILED_PRECONDITION);
  CHECK(shardtx_iter_valid(it) == 0);
  CHECK_CODE(SHARDTX_FAILED_PRECONDITION, shardtx_iter_status(it, &err));
  shardtx_iter_destroy(it);
  expect(db, "fig", NULL);
  expect(db, "kiwi", "brown");
}

static void test_named_prepares(shardtx_db_t* db) {
  char** names = NULL;
  size_t count = 99;
  CHECK_CODE(SHARDTX_OK, shardtx_list_prepared(db, &names, &count, &err));
  CHECK(count == 0 && names == NULL);

  shardtx_txn_t *alpha = NULL, *beta = NULL, *dup = NULL;
  CHECK_CODE(SHARDTX_OK, shardtx_begin(db, SHARDTX_SNAPSHOT, SHARDTX_SYNC, &alpha, &err));
  put(alpha, "apple", "prepared");
  put(alpha, "quince", "prepared"); /* two shards */
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_prepare(alpha, "", &err));
  CHECK_CODE(SHARDTX_OK, shardtx_prepare(alpha, "xa-alpha", &err));
  uint64_t alpha_id = shardtx_txn_id(alpha);
  CHECK_CODE(SHARDTX_FAILED_PRECONDITION, shardtx_commit(alpha, &err));
  shardtx_txn_destroy(alpha); /* prepared transactions live on by name */

  CHECK_CODE(SHARDTX_OK, shardtx_begin(db, SHARDTX_SNAPSHOT, SHARDTX_SYNC, &beta, &err));
  put(beta, "raspberry", "prepared");
  CHECK_CODE(SHARDTX_OK, shardtx_prepare(beta, "xa-beta", &err));
  shardtx_txn_destroy(beta);

  CHECK_CODE(SHARDTX_OK, shardtx_begin(db, SHARDTX_SNAPSHOT, SHARDTX_SYNC, &dup, &err));
  put(dup, "strawberry", "x");
  CHECK_CODE(SHARDTX_ALREADY_EXISTS, shardtx_prepare(dup, "xa-alpha", &err));
  shardtx_txn_destroy(dup);

  shardtx_outcome outcome = SHARDTX_OUTCOME_UNKNOWN;
  CHECK_CODE(SHARDTX_OK, shardtx_get_outcome(db, alpha_id, &outcome, &err));
  CHECK(outcome == SHARDTX_OUTCOME_PREPARED);

  /* A prepared key is locked until the decision. */
  shardtx_txn_t* writer = NULL;
  CHECK_CODE(SHARDTX_OK, shardtx_begin(db, SHARDTX_SNAPSHOT, SHARDTX_SYNC, &writer, &err));
  put(writer, "raspberry", "other");
  CHECK_CODE(SHARDTX_ABORTED, shardtx_commit(writer, &err));
  shardtx_txn_destroy(writer);

  CHECK_CODE(SHARDTX_OK, shardtx_list_prepared(db, &names, &count, &err));
  CHECK(count == 2);
  if (count == 2) {
    CHECK(strcmp(names[0], "xa-alpha") == 0);
    CHECK(strcmp(names[1], "xa-beta") == 0);
  }
  shardtx_free(names);

  CHECK_CODE(SHARDTX_OK, shardtx_commit_prepared(db, "xa-alpha", &err));
  CHECK_CODE(SHARDTX_OK, shardtx_rollback_prepared(db, "xa-beta", &err));
  CHECK_CODE(SHARDTX_NOT_FOUND, shardtx_commit_prepared(db, "xa-alpha", &err));
  CHECK_CODE(SHARDTX_NOT_FOUND, shardtx_rollback_prepared(db, "xa-beta", &err));
  CHECK_CODE(SHARDTX_NOT_FOUND, shardtx_rollback_prepared(db, "never", &err));
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_commit_prepared(db, NULL, &err));
  CHECK_CODE(SHARDTX_OK, shardtx_list_prepared(db, &names, &count, &err));
  CHECK(count == 0 && names == NULL);
  CHECK_CODE(SHARDTX_OK, shardtx_get_outcome(db, alpha_id, &outcome, &err));
  CHECK(outcome == SHARDTX_OUTCOME_COMMITTED);

  expect(db, "apple", "prepared");
  expect(db, "quince", "prepared");
  expect(db, "raspberry", NULL);
}

static void test_checkpoint_stats_close(shardtx_db_t* db) {
  CHECK_CODE(SHARDTX_OK, shardtx_checkpoint(db, &err));

  /* A backup opens as a database holding what was committed; a second one to the same place
   * is refused. */
  char backup[4300];
  snprintf(backup, sizeof backup, "%s", path_in("backup"));
  CHECK_CODE(SHARDTX_OK, shardtx_backup(db, backup, &err));
  CHECK_CODE(SHARDTX_ALREADY_EXISTS, shardtx_backup(db, backup, &err));
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_backup(db, NULL, &err));
  {
    shardtx_options_t* copy_options = options_for("backup", 0);
    const char* splits[] = {"h", "p"};
    size_t split_lens[] = {1, 1};
    CHECK_CODE(SHARDTX_OK,
               shardtx_options_set_range_partitioning(copy_options, splits, split_lens, 2, &err));
    shardtx_db_t* copy = NULL;
    CHECK_CODE(SHARDTX_OK, shardtx_open(copy_options, &copy, &err));
    if (copy != NULL) {
      expect(copy, "apple", "prepared");
      CHECK_CODE(SHARDTX_OK, shardtx_close(copy, &err));
    }
    shardtx_options_destroy(copy_options);
  }
  char* stats = NULL;
  CHECK_CODE(SHARDTX_OK, shardtx_stats(db, &stats, &err));
  CHECK(stats != NULL && strlen(stats) > 0);
  CHECK(stats != NULL && strstr(stats, "commits") != NULL);
  shardtx_free(stats);
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_stats(db, NULL, &err));

  /* Close with a transaction still alive: the transaction fails afterwards, and keeps the
   * directory locked until it is destroyed. */
  shardtx_txn_t* straggler = NULL;
  CHECK_CODE(SHARDTX_OK, shardtx_begin(db, SHARDTX_SNAPSHOT, SHARDTX_SYNC, &straggler, &err));
  CHECK_CODE(SHARDTX_OK, shardtx_close(db, &err));
  put(straggler, "late", "x"); /* buffered: writes fail at commit */
  CHECK_CODE(SHARDTX_FAILED_PRECONDITION, shardtx_commit(straggler, &err));
  shardtx_options_t* options = options_for("main", 0);
  const char* points[] = {"h", "p"};
  size_t lens[] = {1, 1};
  CHECK_CODE(SHARDTX_OK, shardtx_options_set_range_partitioning(options, points, lens, 2, &err));
  shardtx_db_t* reopened = NULL;
  CHECK_CODE(SHARDTX_FAILED_PRECONDITION, shardtx_open(options, &reopened, &err));
  shardtx_txn_destroy(straggler);

  /* Reopened: everything committed is there; range partitioning is recorded. */
  CHECK_CODE(SHARDTX_OK, shardtx_open(options, &reopened, &err));
  if (reopened != NULL) {
    expect(reopened, "apple", "prepared");
    expect(reopened, "kiwi", "brown");
    expect(reopened, "late", NULL);
    CHECK_CODE(SHARDTX_OK, shardtx_close(reopened, &err));
  }
  shardtx_options_set_hash_partitioning(options);
  CHECK_CODE(SHARDTX_INVALID_ARGUMENT, shardtx_open(options, &reopened, &err));
  shardtx_options_destroy(options);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s <scratch directory>\n", argv[0]);
    return 2;
  }
  snprintf(dir, sizeof dir, "%s", argv[1]);
  char command[2 * sizeof dir + 32];
  snprintf(command, sizeof command, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
  if (system(command) != 0) {
    fprintf(stderr, "cannot prepare %s\n", dir);
    return 2;
  }

  test_codes_and_null_handles();
  test_open_errors();
  test_explicit_partitioning();
  test_commit_async();
  test_shared_log();
  shardtx_db_t* db = open_main();
  if (db != NULL) {
    test_commit_get_delete(db);
    test_conflicts(db);
    test_iterators(db);
    test_named_prepares(db);
    test_checkpoint_stats_close(db); /* closes db */
  }

  if (failures > 0) {
    fprintf(stderr, "capi_test: %d check(s) failed\n", failures);
    return 1;
  }
  printf("capi_test: every call of shardtx/c.h checked\n");
  return 0;
}
