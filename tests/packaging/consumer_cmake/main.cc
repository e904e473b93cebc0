// A host program as a user writes one, built against an installed shardtx: with
// find_package(shardtx) (CMakeLists.txt here) and with `pkg-config --cflags --libs shardtx`
// (../run_consumer.cmake). Opens a database in the directory given, commits, reads back.
#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "shardtx/database.h"

namespace {

int Fail(const char* what, const absl::Status& s) {
  std::fprintf(stderr, "consumer: %s: %s\n", what, s.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <new database directory>\n", argv[0]);
    return 2;
  }
  shardtx::Options options;
  options.path = argv[1];
  options.num_shards = 2;
  auto db = shardtx::Database::Open(options);
  if (!db.ok()) return Fail("Open", db.status());

  std::unique_ptr<shardtx::Transaction> txn = (*db)->Begin();
  for (const char* key : {"alice", "bob", "carol"}) {
    absl::Status s = txn->Put(key, std::string("value of ") + key);
    if (!s.ok()) return Fail("Put", s);
  }
  absl::Status s = txn->Commit();
  if (!s.ok()) return Fail("Commit", s);

  std::unique_ptr<shardtx::Transaction> reader = (*db)->Begin();
  for (const char* key : {"alice", "bob", "carol"}) {
    auto value = reader->Get(key);
    if (!value.ok()) return Fail(key, value.status());
    if (*value != std::string("value of ") + key) {
      std::fprintf(stderr, "consumer: %s reads back as '%s'\n", key, value->c_str());
      return 1;
    }
  }
  if (!(s = reader->Rollback()).ok()) return Fail("Rollback", s);
  reader.reset();
  txn.reset();
  if (!(s = (*db)->Close()).ok()) return Fail("Close", s);
  std::printf("consumer: committed and read back 3 keys over 2 shards\n");
  return 0;
}
