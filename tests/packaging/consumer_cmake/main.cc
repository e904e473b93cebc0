// A host program as a user writes one, built against an installed shardtx: with
// find_package(shardtx) (CMakeLists.txt here) and with `pkg-config --cflags --libs shardtx`
// (../run_consumer.cmake). Opens a database in the directory given, commits, reads back.
#include <cstdio>
#include <future>
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

  // A host that does not block a thread per commit: the outcome comes to a callback.
  std::promise<absl::Status> outcome;
  std::unique_ptr<shardtx::Transaction> async_txn = (*db)->Begin();
  if (!(s = async_txn->Put("dave", "value of dave")).ok()) return Fail("Put", s);
  s = async_txn->CommitAsync([&outcome](absl::Status st) { outcome.set_value(std::move(st)); });
  if (!s.ok()) return Fail("CommitAsync", s);
  async_txn.reset();
  if (!(s = outcome.get_future().get()).ok()) return Fail("CommitAsync's callback", s);
  reader = (*db)->Begin();  // began after the callback: sees the commit
  auto dave = reader->Get("dave");
  if (!dave.ok() || *dave != "value of dave") {
    return Fail("dave after CommitAsync", dave.ok() ? absl::DataLossError(*dave) : dave.status());
  }
  reader.reset();
  if (!(s = (*db)->Close()).ok()) return Fail("Close", s);
  std::printf("consumer: committed and read back 3 keys over 2 shards, and one with CommitAsync\n");
  return 0;
}
