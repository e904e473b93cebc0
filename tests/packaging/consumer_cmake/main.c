/* A C host as a user writes one against an installed shardtx, through shardtx/c.h: built with
 * the C compiler and `pkg-config --cflags --libs shardtx` alone (libshardtx.so), with
 * `pkg-config --static` against libshardtx.a (../run_consumer.cmake), and with
 * find_package(shardtx) (CMakeLists.txt here). Opens a database in the directory given,
 * commits, reads back, closes. */
#include <stdio.h>
#include <string.h>

#include "shardtx/c.h"

/* CommitAsync's callback: counts the calls and keeps the last code. */
static int async_calls = 0;
static shardtx_code async_code = SHARDTX_UNKNOWN;
static void on_commit(void* arg, shardtx_code code, const char* message) {
  (void)arg;
  (void)message;
  async_code = code;
  async_calls++;
}

static int fail(const char* what, shardtx_code code, char* message) {
  fprintf(stderr, "consumer (C): %s: %s: %s\n", what, shardtx_code_name(code),
          message != NULL ? message : "");
  shardtx_free(message);
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s <new database directory>\n", argv[0]);
    return 2;
  }
  char* err = NULL;
  shardtx_options_t* options = shardtx_options_create();
  if (options == NULL) return fail("shardtx_options_create", SHARDTX_RESOURCE_EXHAUSTED, NULL);
  shardtx_code code = shardtx_options_set_path(options, argv[1], &err);
  if (code != SHARDTX_OK) return fail("shardtx_options_set_path", code, err);
  shardtx_options_set_num_shards(options, 2);
  /* The C host keeps one log for both shards (the C++ host keeps a log per shard). */
  shardtx_options_set_shared_log(options, 1);
  shardtx_db_t* db = NULL;
  code = shardtx_open(options, &db, &err);
  shardtx_options_destroy(options);
  if (code != SHARDTX_OK) return fail("shardtx_open", code, err);

  static const char* const keys[] = {"alice", "bob", "carol"};
  shardtx_txn_t* txn = NULL;
  if ((code = shardtx_begin(db, SHARDTX_SNAPSHOT, SHARDTX_SYNC, &txn, &err)) != SHARDTX_OK) {
    return fail("shardtx_begin", code, err);
  }
  for (int i = 0; i < 3; i++) {
    code = shardtx_put(txn, keys[i], strlen(keys[i]), keys[i], strlen(keys[i]), &err);
    if (code != SHARDTX_OK) return fail("shardtx_put", code, err);
  }
  if ((code = shardtx_commit(txn, &err)) != SHARDTX_OK) return fail("shardtx_commit", code, err);
  shardtx_txn_destroy(txn);

  if ((code = shardtx_begin(db, SHARDTX_SNAPSHOT, SHARDTX_SYNC, &txn, &err)) != SHARDTX_OK) {
    return fail("shardtx_begin", code, err);
  }
  for (int i = 0; i < 3; i++) {
    char* value = NULL;
    size_t len = 0;
    code = shardtx_get(txn, keys[i], strlen(keys[i]), &value, &len, &err);
    if (code != SHARDTX_OK) return fail(keys[i], code, err);
    if (len != strlen(keys[i]) || memcmp(value, keys[i], len) != 0) {
      fprintf(stderr, "consumer (C): %s reads back as '%.*s'\n", keys[i], (int)len, value);
      return 1;
    }
    shardtx_free(value);
  }
  shardtx_txn_destroy(txn);

  /* One commit that does not block: shardtx_close returns after its callback has run. */
  if ((code = shardtx_begin(db, SHARDTX_SNAPSHOT, SHARDTX_SYNC, &txn, &err)) != SHARDTX_OK) {
    return fail("shardtx_begin", code, err);
  }
  if ((code = shardtx_put(txn, "dave", 4, "dave", 4, &err)) != SHARDTX_OK) {
    return fail("shardtx_put", code, err);
  }
  if ((code = shardtx_commit_async(txn, on_commit, NULL, &err)) != SHARDTX_OK) {
    return fail("shardtx_commit_async", code, err);
  }
  shardtx_txn_destroy(txn);
  if ((code = shardtx_close(db, &err)) != SHARDTX_OK) return fail("shardtx_close", code, err);
  if (async_calls != 1 || async_code != SHARDTX_OK) {
    fprintf(stderr, "consumer (C): commit_async callback: %d calls, last %s\n", async_calls,
            shardtx_code_name(async_code));
    return 1;
  }
  printf("consumer (C): committed and read back 3 keys over 2 shards, and one asynchronously\n");
  return 0;
}
