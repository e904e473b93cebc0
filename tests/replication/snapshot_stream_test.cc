// The snapshot stream (replication/snapshot_stream.h) over 127.0.0.1: a follower's ShardMachine
// restores a producer's shard through gRPC; memory stays bounded for a shard larger than the
// bound; a corrupted chunk, a stream cut off and a foreign cluster leave the follower as it was.
#include "replication/snapshot_stream.h"

#include <malloc.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/log_record.h"
#include "gtest/gtest.h"
#include "replication/shard_machine.h"
#include "tests/support/test_db.h"
#include "util/mutex.h"

namespace shardtx::replication {
namespace {

using engine::Write;
using engine::WriteOp;
using ::shardtx::testing::FreshDir;

constexpr char kCluster[] = "cluster-a";

engine::ShardOptions ShardAt(const std::string& dir, uint64_t segment = 1 << 20) {
  engine::ShardOptions o;
  o.dir = dir;
  o.env = Env::Default();
  o.wal_segment_size = segment;
  o.max_record_size = segment / 2;
  o.lmdb_map_size = 256ull << 20;
  o.max_readers = 16;
  return o;
}

// Entry i (raft index i + 1, term 1 + i / 10) puts `per_entry` keys "k<i>-<j>" with values of
// `value_size` bytes drawn from the seed, and deletes one key of the entry before.
std::vector<std::string> Entries(int n, int per_entry, size_t value_size, uint64_t seed = 7) {
  std::vector<std::string> out;
  uint64_t x = seed;
  engine::Timestamp ts = 100;
  for (int i = 0; i < n; ++i) {
    std::vector<Write> writes;
    for (int j = 0; j < per_entry; ++j) {
      std::string v(value_size, '\0');
      for (char& ch : v) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        ch = static_cast<char>(x >> 56);
      }
      writes.push_back({WriteOp::kPut, absl::StrCat("k", i, "-", j), std::move(v)});
    }
    if (i > 0) writes.push_back({WriteOp::kDelete, absl::StrCat("k", i - 1, "-0"), ""});
    std::string entry;
    engine::AppendEntryRecord(&entry, engine::kCommit, engine::EncodeCommit(++ts, 7, writes));
    out.push_back(std::move(entry));
  }
  return out;
}

ReleasedEntry EntryAt(const std::vector<std::string>& entries, uint64_t index) {
  return ReleasedEntry{1 + (index - 1) / 10, index, entries[index - 1]};
}

void ApplyRange(ShardMachine& m, const std::vector<std::string>& entries, uint64_t from,
                uint64_t to) {
  for (uint64_t i = from; i <= to; ++i) {
    absl::Status s = m.Apply(EntryAt(entries, i));
    ASSERT_TRUE(s.ok()) << "entry " << i << ": " << s;
  }
}

bool Exists(const std::string& path) { return Env::Default()->FileExists(path).ok(); }

// Holds the first stream that reaches message `seq` on the server (in the tamper hook) until
// the server has cancelled it (the after_cancel hook): so that a test can stop or remove a
// stream that is certainly still running (it cannot end before it is cancelled), whatever the
// buffers between the two ends hold.
class HoldUntilCancelled {
 public:
  explicit HoldUntilCancelled(uint64_t seq) : seq_(seq) {}
  void Install(SnapshotServerOptions* so) {
    so->tamper = [this](uint64_t seq, std::string*) {
      std::unique_lock<std::mutex> l(mu_);
      if (seq == seq_ && !held_) {
        held_ = true;
        cv_.wait(l, [this] { return released_; });
      }
      return false;
    };
    so->after_cancel = [this] {
      std::lock_guard<std::mutex> l(mu_);
      released_ = true;
      cv_.notify_all();
    };
  }

 private:
  const uint64_t seq_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false, released_ = false;
};

// A producer (server 1, serving its shard on a SnapshotServer) and a follower (server 2, which
// restores over the stream from whatever address `producer_address` holds).
class SnapshotStreamTest : public ::testing::Test {
 protected:
  void StartServer(SnapshotServerOptions so = {}) {
    so.cluster = kCluster;
    so.producer = 1;
    so.env = Env::Default();
    auto server = SnapshotServer::Start(so);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    producer_address_ = server_->address();
  }

  void OpenProducer(uint64_t checkpoint_every = 0, uint64_t segment = 1 << 20) {
    ShardMachineOptions o;
    o.shard = ShardAt(producer_dir_, segment);
    o.server = 1;
    o.checkpoint_every = checkpoint_every;
    o.cluster = kCluster;
    o.snapshot_server = server_.get();
    auto m = ShardMachine::Open(o);
    ASSERT_TRUE(m.ok()) << m.status();
    producer_ = std::move(*m);
  }

  void OpenFollower(const std::string& cluster = kCluster) {
    ShardMachineOptions o;
    o.shard = ShardAt(follower_dir_);
    o.server = 2;
    o.cluster = cluster;
    o.snapshot_address = [this](uint32_t server) {
      return server == 1 ? producer_address_ : std::string();
    };
    auto m = ShardMachine::Open(o);
    ASSERT_TRUE(m.ok()) << m.status();
    follower_ = std::move(*m);
  }

  std::string Snapshot() {
    auto s = producer_->Snapshot();
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : std::string();
  }

  ShardDigest DigestOf(ShardMachine& m) {
    auto d = m.Digest();
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? *d : ShardDigest{};
  }

  // The follower is as it was: same position and digest, no staging directory, and it still
  // reopens to the same state.
  void ExpectFollowerUnchanged(engine::RaftPosition position, const ShardDigest& digest) {
    EXPECT_EQ(follower_->applied().index, position.index);
    EXPECT_EQ(DigestOf(*follower_), digest);
    EXPECT_FALSE(Exists(follower_dir_ + ".partial"));
    EXPECT_EQ(follower_->restores(), 0u);
    ASSERT_TRUE(follower_->CloseShard().ok());
    ASSERT_TRUE(follower_->ReopenShard().ok());
    EXPECT_EQ(follower_->applied().index, position.index);
    EXPECT_EQ(DigestOf(*follower_), digest);
  }

  void TearDown() override {
    follower_.reset();
    producer_.reset();
    server_.reset();
  }

  const std::string producer_dir_ = FreshDir("_producer");
  std::unique_ptr<HoldUntilCancelled> hold_;  // outlives server_, whose hooks use it
  const std::string follower_dir_ = FreshDir("_follower");
  std::unique_ptr<SnapshotServer> server_;
  std::string producer_address_;
  std::unique_ptr<ShardMachine> producer_, follower_;
};

// (1) A round trip: the follower ends with the producer's digest at or above the snapshot's
// position, and goes on applying above it.
TEST_F(SnapshotStreamTest, RoundTripGivesTheProducersShard) {
  StartServer();
  OpenProducer();
  OpenFollower();
  const std::vector<std::string> entries = Entries(60, 8, 300);
  ApplyRange(*producer_, entries, 1, 30);
  ASSERT_TRUE(producer_->shard().Checkpoint().ok());  // some in LMDB, some in the WAL tail
  ApplyRange(*producer_, entries, 31, 45);
  ApplyRange(*follower_, entries, 1, 4);  // the follower's older state, replaced
  const std::string snapshot = Snapshot();

  ASSERT_TRUE(follower_->Restore(snapshot).ok());
  EXPECT_GE(follower_->applied().index, 45u);
  EXPECT_EQ(follower_->restores(), 1u);
  EXPECT_EQ(DigestOf(*follower_), DigestOf(*producer_));
  EXPECT_FALSE(Exists(follower_dir_ + ".partial"));
  EXPECT_EQ(server_->streams_completed(), 1u);

  // It continues above the snapshot, and survives a reopen.
  ApplyRange(*producer_, entries, 46, 60);
  ApplyRange(*follower_, entries, 46, 60);
  ASSERT_TRUE(follower_->CloseShard().ok());
  ASSERT_TRUE(follower_->ReopenShard().ok());
  EXPECT_EQ(follower_->applied().index, 60u);
  EXPECT_EQ(DigestOf(*follower_), DigestOf(*producer_));
}

// The producer's shard applies 300 more entries, checkpointing every 3 (and so recycling its
// WAL's 64 KiB segments), after the stream pinned its WAL and while the LMDB copy is in flight:
// the WAL pin keeps the tail the copy needs. (Without the pin the stream fails: CopyLog finds
// the tail's first LSN gone.) The applying runs on the server's stream thread, from the test
// hook, while the test thread waits in Restore: one thread drives the producer at a time.
TEST_F(SnapshotStreamTest, WalPinKeepsTheTailWhileTheProducerCheckpoints) {
  SnapshotServerOptions so;
  so.chunk_bytes = 16 << 10;
  const std::vector<std::string> entries = Entries(400, 4, 700);
  absl::Status applied_meanwhile = absl::UnknownError("not run");
  so.tamper = [&](uint64_t seq, std::string*) {
    if (seq != 1) return false;  // the first piece of the LMDB copy
    applied_meanwhile = absl::OkStatus();
    for (uint64_t i = 101; i <= entries.size() && applied_meanwhile.ok(); ++i) {
      applied_meanwhile = producer_->Apply(EntryAt(entries, i));
    }
    return false;
  };
  StartServer(so);
  OpenProducer(/*checkpoint_every=*/3, /*segment=*/64 << 10);
  OpenFollower();
  ApplyRange(*producer_, entries, 1, 100);
  const engine::Lsn applied_before = producer_->shard().applied_lsn();
  absl::Status restored = follower_->Restore(Snapshot());
  ASSERT_TRUE(applied_meanwhile.ok()) << applied_meanwhile;
  ASSERT_TRUE(restored.ok()) << restored;
  // Checkpoints ran while the stream was in flight.
  EXPECT_GT(producer_->shard().applied_lsn(), applied_before + 100);
  // The copy holds everything up to the cut, taken after the LMDB copy: all 400 entries.
  EXPECT_EQ(follower_->applied().index, 400u);
  EXPECT_EQ(DigestOf(*follower_), DigestOf(*producer_));
}

uint64_t RssAnonBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("RssAnon:", 0) == 0) return std::stoull(line.substr(8)) << 10;  // kB
  }
  return 0;
}

// Bytes malloc has handed out and not had back, in every arena and mmapped chunk: a counting
// allocator's figure, without replacing the allocator.
uint64_t MallocLiveBytes() {
  const struct mallinfo2 mi = ::mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

// (2) A shard of 56 MB (53.7 MiB of values) restored with both ends in this process, sampled
// every millisecond while it runs: the bytes malloc has live grow by at most the stated bound
// (StreamBoundBytes) plus 3 MiB for the fixed allocations of gRPC (channel, threads) and of
// opening the copy as a shard (a 0.3 MiB shard's restore measured 3.1-3.3 MiB in all); the
// process's anonymous memory (RssAnon) by at most the bound plus 16 MiB, which also covers what
// glibc's per-thread arenas keep of freed 1 MiB buffers. Buffering the shard whole, on either
// end, would exceed both.
TEST_F(SnapshotStreamTest, MemoryStaysBoundedForAShardLargerThanTheBound) {
#ifdef SHARDTX_SANITIZER_BUILD
  GTEST_SKIP() << "a sanitizer's allocator keeps freed memory (quarantine): not measured";
#endif
  if (RssAnonBytes() == 0) GTEST_SKIP() << "no RssAnon in /proc/self/status";
  StartServer();
  OpenProducer(/*checkpoint_every=*/0, /*segment=*/8 << 20);
  OpenFollower();
  constexpr int kEntries = 220, kPerEntry = 64;
  constexpr size_t kValue = 4000;  // one LMDB overflow page each
  {
    const std::vector<std::string> entries = Entries(kEntries, kPerEntry, kValue);
    ApplyRange(*producer_, entries, 1, kEntries);
  }
  ASSERT_TRUE(producer_->shard().Checkpoint().ok());
  const uint64_t shard_bytes = uint64_t{kEntries} * kPerEntry * kValue;
  constexpr uint64_t kSlack = 16ull << 20, kLiveSlack = 3ull << 20;
  const uint64_t bound = StreamBoundBytes(kDefaultChunkBytes) + kSlack;
  const uint64_t live_bound = StreamBoundBytes(kDefaultChunkBytes) + kLiveSlack;
  ASSERT_GT(shard_bytes, 2 * bound);
  const std::string snapshot = Snapshot();

  // Free memory the set-up left in malloc's arenas would hide allocations that reuse it: give it
  // back first, so that whatever the restore allocates shows.
  ::malloc_trim(0);
  const uint64_t before = RssAnonBytes(), live_before = MallocLiveBytes();
  std::atomic<uint64_t> peak{before}, live_peak{live_before};
  std::atomic<bool> done{false};
  // Samples while the restore runs (a measurement, not synchronisation).
  std::thread sampler([&] {
    while (!done.load()) {
      if (const uint64_t now = RssAnonBytes(); now > peak.load()) peak = now;
      if (const uint64_t now = MallocLiveBytes(); now > live_peak.load()) live_peak = now;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  const auto start = std::chrono::steady_clock::now();
  absl::Status restored = follower_->Restore(snapshot);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  done = true;
  sampler.join();
  ASSERT_TRUE(restored.ok()) << restored;
  const uint64_t growth = peak.load() - before;
  const uint64_t live_growth = live_peak.load() - live_before;
  const double copy_mib =
      static_cast<double>(std::filesystem::file_size(follower_dir_ + "/lmdb/data.mdb")) / 1048576.0;
  std::printf("snapshot stream: shard %.1f MiB of values, store copy %.1f MiB, restored in %.2f s "
              "(%.0f MiB/s); peak growth: malloc live %.1f MiB (bound %.1f + %.1f MiB), RssAnon "
              "%.1f MiB (bound + %.1f MiB)\n",
              shard_bytes / 1048576.0, copy_mib, seconds, copy_mib / seconds,
              live_growth / 1048576.0, StreamBoundBytes(kDefaultChunkBytes) / 1048576.0,
              kLiveSlack / 1048576.0, growth / 1048576.0, kSlack / 1048576.0);
  EXPECT_LT(live_growth, live_bound);
  EXPECT_LT(growth, bound);
  EXPECT_GE(follower_->applied().index, uint64_t{kEntries});
  EXPECT_EQ(DigestOf(*follower_), DigestOf(*producer_));
}

// (3) A byte flipped in one data chunk on the server side: kDataLoss, and the follower keeps its
// old shard, which still opens.
TEST_F(SnapshotStreamTest, CorruptedChunkIsDataLossAndChangesNothing) {
  SnapshotServerOptions so;
  so.chunk_bytes = 16 << 10;  // several chunks
  std::atomic<int> flipped{0};
  so.tamper = [&flipped](uint64_t seq, std::string* bytes) {
    if (seq == 3 && bytes != nullptr && !bytes->empty()) {
      (*bytes)[bytes->size() / 2] ^= 0x20;
      ++flipped;
    }
    return false;
  };
  StartServer(so);
  OpenProducer();
  OpenFollower();
  const std::vector<std::string> entries = Entries(40, 8, 500);
  ApplyRange(*producer_, entries, 1, 40);
  ASSERT_TRUE(producer_->shard().Checkpoint().ok());
  ApplyRange(*follower_, entries, 1, 6);
  const ShardDigest old = DigestOf(*follower_);

  absl::Status s = follower_->Restore(Snapshot());
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_EQ(flipped.load(), 1);
  ExpectFollowerUnchanged({6, 1}, old);
}

// A stream that ends early with an OK status (everything it sent checks out, the trailer is
// missing): kDataLoss, nothing applied. Cut right after the store file's end, before the WAL:
// a plausible-looking truncation.
TEST_F(SnapshotStreamTest, TruncatedStreamIsDataLossAndChangesNothing) {
  SnapshotServerOptions so;
  so.chunk_bytes = 16 << 10;
  std::atomic<uint64_t> store_end{0};
  so.tamper = [&](uint64_t seq, std::string* bytes) {
    // Seq 0 is the header, 1 the store's file start, then its data; the first message without
    // bytes after those is the store's file end.
    if (bytes == nullptr && seq > 2 && store_end.load() == 0) store_end = seq;
    return store_end.load() != 0 && seq == store_end.load() + 1;
  };
  StartServer(so);
  OpenProducer();
  OpenFollower();
  const std::vector<std::string> entries = Entries(40, 8, 500);
  ApplyRange(*producer_, entries, 1, 30);
  ASSERT_TRUE(producer_->shard().Checkpoint().ok());
  ApplyRange(*producer_, entries, 31, 40);
  ApplyRange(*follower_, entries, 1, 6);
  const ShardDigest old = DigestOf(*follower_);

  absl::Status s = follower_->Restore(Snapshot());
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_NE(s.message().find("without its trailer"), absl::string_view::npos) << s;
  EXPECT_GT(store_end.load(), 2u);
  EXPECT_EQ(server_->streams_completed(), 1u);  // the handler returned OK
  ExpectFollowerUnchanged({6, 1}, old);
}

// The wrong cluster (either end may notice: here the producer), and a snapshot index the
// producer has not reached: refused, nothing applied.
TEST_F(SnapshotStreamTest, WrongClusterOrMissingIndexChangesNothing) {
  StartServer();
  OpenProducer();
  OpenFollower("cluster-b");
  const std::vector<std::string> entries = Entries(20, 4, 100);
  ApplyRange(*producer_, entries, 1, 20);
  ApplyRange(*follower_, entries, 1, 3);
  const ShardDigest old = DigestOf(*follower_);
  absl::Status s = follower_->Restore(Snapshot());
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  ExpectFollowerUnchanged({3, 1}, old);

  // A direct fetch of a shard the producer does not serve.
  FetchOptions f;
  f.address = producer_address_;
  f.cluster = kCluster;
  f.shard = 9;
  f.env = Env::Default();
  auto r = FetchSnapshot(f, follower_dir_ + ".partial");
  EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
  // One above what the producer has applied.
  f.shard = 0;
  f.min_raft_index = 21;
  r = FetchSnapshot(f, follower_dir_ + ".partial");
  EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
  EXPECT_FALSE(Exists(follower_dir_ + ".partial"));
}

// (4) The producer's server stops in the middle of a stream: the fetch fails (kUnavailable),
// leaves no staging directory, the follower is unchanged; a later restore from a new server
// succeeds.
TEST_F(SnapshotStreamTest, StreamCutByAStoppingServerLeavesNothing) {
  SnapshotServerOptions so;
  so.chunk_bytes = 16 << 10;
  hold_ = std::make_unique<HoldUntilCancelled>(/*seq=*/7);
  hold_->Install(&so);
  StartServer(so);
  OpenProducer();
  OpenFollower();
  const std::vector<std::string> entries = Entries(60, 8, 800);
  ApplyRange(*producer_, entries, 1, 60);
  ASSERT_TRUE(producer_->shard().Checkpoint().ok());
  ApplyRange(*follower_, entries, 1, 2);
  const ShardDigest old = DigestOf(*follower_);

  FetchOptions f;
  f.address = producer_address_;
  f.cluster = kCluster;
  f.shard = 0;
  f.min_raft_index = 60;
  f.env = Env::Default();
  uint64_t seen = 0;
  f.on_message = [&](uint64_t seq) {
    seen = seq + 1;
    if (seq == 4) server_->Stop();  // cancels the stream in flight, waits for its handler
  };
  const std::string staging = follower_dir_ + ".partial";
  auto r = FetchSnapshot(f, staging);
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_GE(seen, 5u);
  EXPECT_LE(seen, 7u);  // the stream cannot pass message 7 before it is cancelled
  EXPECT_FALSE(Exists(staging));
  EXPECT_EQ(server_->streams_failed(), 1u);
  ExpectFollowerUnchanged({2, 1}, old);

  // The producer must stop serving before its server goes (the machine holds a registration).
  producer_.reset();
  server_.reset();
  StartServer();
  OpenProducer();
  ASSERT_TRUE(follower_->Restore(Snapshot()).ok());
  EXPECT_EQ(DigestOf(*follower_), DigestOf(*producer_));
}

// The producer's machine closes its shard while a stream of it runs: the stream is cancelled
// (RemoveShard waits for it), the fetch fails and leaves nothing; the reopened shard is served
// again. A second stream beyond max_streams is refused.
TEST_F(SnapshotStreamTest, ClosingTheProducersShardCancelsItsStreams) {
  SnapshotServerOptions so;
  so.chunk_bytes = 16 << 10;
  so.max_streams = 1;
  hold_ = std::make_unique<HoldUntilCancelled>(/*seq=*/5);
  hold_->Install(&so);
  StartServer(so);
  OpenProducer();
  const std::vector<std::string> entries = Entries(60, 8, 800);
  ApplyRange(*producer_, entries, 1, 60);
  ASSERT_TRUE(producer_->shard().Checkpoint().ok());

  FetchOptions f;
  f.address = producer_address_;
  f.cluster = kCluster;
  f.env = Env::Default();
  const std::string staging = follower_dir_ + ".partial";
  absl::Status second;
  f.on_message = [&](uint64_t seq) {
    if (seq != 2) return;
    FetchOptions g = f;
    g.on_message = nullptr;
    second = FetchSnapshot(g, follower_dir_ + ".second").status();
    ASSERT_TRUE(producer_->CloseShard().ok());  // returns once the stream is gone
  };
  auto r = FetchSnapshot(f, staging);
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_TRUE(absl::IsResourceExhausted(second)) << second;
  EXPECT_FALSE(Exists(staging));
  EXPECT_FALSE(Exists(follower_dir_ + ".second"));

  ASSERT_TRUE(producer_->ReopenShard().ok());
  f.on_message = nullptr;
  r = FetchSnapshot(f, staging);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GE(r->raft.index, 60u);
  EXPECT_EQ(server_->streams_completed(), 1u);
}

// A producer whose chunks exceed what the follower accepts: refused at the header, nothing kept.
TEST_F(SnapshotStreamTest, ChunksLargerThanTheFollowerAcceptsAreRefused) {
  StartServer();
  OpenProducer();
  const std::vector<std::string> entries = Entries(10, 4, 100);
  ApplyRange(*producer_, entries, 1, 10);
  FetchOptions f;
  f.address = producer_address_;
  f.cluster = kCluster;
  f.env = Env::Default();
  f.max_chunk_bytes = 64 << 10;
  auto r = FetchSnapshot(f, follower_dir_ + ".partial");
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(r.status()) || absl::IsResourceExhausted(r.status()))
      << r.status();
  EXPECT_FALSE(Exists(follower_dir_ + ".partial"));
}

}  // namespace
}  // namespace shardtx::replication
