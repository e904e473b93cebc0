// The WAL payload decoders against their encoders. A record that passed its checksum can still
// be malformed (a bug in an older writer, or a crafted file): decoding must then refuse it,
// never read past its end or allocate a length read from it. Random records round-trip; every
// strict prefix and every one-byte extension is refused; random damage is refused or decodes
// to a record that encodes again (under ASan, any read out of bounds fails the test).
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "engine/log_record.h"
#include "gtest/gtest.h"
#include "txn/txn_records.h"
#include "util/coding.h"

namespace shardtx {
namespace {

using engine::Write;
using engine::WriteOp;

class Gen {
 public:
  explicit Gen(uint32_t seed) : rng_(seed) {}
  uint64_t U64() {
    // Small values (one-byte varints) and large ones (ten-byte varints) alike.
    return rng_() % 2 == 0 ? rng_() % 200 : (uint64_t{rng_()} << 32) | rng_();
  }
  std::string Bytes(size_t max) {
    std::string s(rng_() % (max + 1), '\0');
    for (char& c : s) c = static_cast<char>(rng_());
    return s;
  }
  std::vector<Write> Writes() {
    std::vector<Write> w(rng_() % 6);
    for (Write& x : w) {
      x.op = rng_() % 3 == 0 ? WriteOp::kDelete : WriteOp::kPut;
      x.key = Bytes(40);
      if (x.key.empty()) x.key = "k";
      if (x.op == WriteOp::kPut) x.value = Bytes(300);
    }
    return w;
  }
  std::vector<uint32_t> Shards() {
    std::vector<uint32_t> s(rng_() % 5);
    for (uint32_t& x : s) x = static_cast<uint32_t>(U64());
    return s;
  }
  std::mt19937& rng() { return rng_; }

 private:
  std::mt19937 rng_;
};

bool SameWrites(const std::vector<Write>& a, const std::vector<Write>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].op != b[i].op || a[i].key != b[i].key || a[i].value != b[i].value) return false;
  }
  return true;
}

// One record type: make a random record, encode it, decode bytes (true: well-formed, with the
// record re-encoded into *again), and say whether a decoded record equals the one made.
struct Codec {
  const char* name;
  std::function<std::string(Gen&)> make;  // a random record, encoded; remembers it
  std::function<bool(absl::string_view, std::string* again)> decode;
  std::function<bool()> same;  // the last decoded record equals the last one made
};

std::vector<Codec> Codecs() {
  struct Commit {
    uint64_t ts = 0, id = 0;
    std::vector<Write> writes;
  };
  auto made_c = std::make_shared<Commit>(), got_c = std::make_shared<Commit>();
  auto made_p = std::make_shared<txn::PrepareRecord>(),
       got_p = std::make_shared<txn::PrepareRecord>();
  auto made_d = std::make_shared<txn::DecisionRecord>(),
       got_d = std::make_shared<txn::DecisionRecord>();
  auto made_2 = std::make_shared<std::pair<uint64_t, uint64_t>>(),
       got_2 = std::make_shared<std::pair<uint64_t, uint64_t>>();
  return {
      {"commit",
       [=](Gen& g) {
         *made_c = Commit{g.U64(), g.U64(), g.Writes()};
         return engine::EncodeCommit(made_c->ts, made_c->id, made_c->writes);
       },
       [=](absl::string_view in, std::string* again) {
         if (!engine::DecodeCommit(in, &got_c->ts, &got_c->id, &got_c->writes)) return false;
         uint64_t ts, id;  // the header alone agrees
         EXPECT_TRUE(engine::DecodeCommitHeader(in, &ts, &id));
         EXPECT_EQ(ts, got_c->ts);
         EXPECT_EQ(id, got_c->id);
         *again = engine::EncodeCommit(got_c->ts, got_c->id, got_c->writes);
         return true;
       },
       [=] {
         return got_c->ts == made_c->ts && got_c->id == made_c->id &&
                SameWrites(got_c->writes, made_c->writes);
       }},
      {"prepare",
       [=](Gen& g) {
         *made_p =
             txn::PrepareRecord{g.U64(), g.Bytes(20), g.U64(), g.Shards(), g.Writes(), {}, {}};
         if (g.rng()() % 2 == 0) {  // a serializable named prepare's read set, half the time
           for (uint64_t i = g.rng()() % 4; i > 0; --i) made_p->read_keys.push_back(g.Bytes(12));
           for (uint64_t i = g.rng()() % 3; i > 0; --i) {
             made_p->read_ranges.emplace_back(g.Bytes(6), g.Bytes(6));
           }
         }
         return txn::EncodePrepare(*made_p);
       },
       [=](absl::string_view in, std::string* again) {
         if (!txn::DecodePrepare(in, got_p.get())) return false;
         *again = txn::EncodePrepare(*got_p);
         return true;
       },
       [=] {
         return got_p->txn_id == made_p->txn_id && got_p->name == made_p->name &&
                got_p->snapshot_ts == made_p->snapshot_ts &&
                got_p->participants == made_p->participants &&
                SameWrites(got_p->writes, made_p->writes) &&
                got_p->read_keys == made_p->read_keys && got_p->read_ranges == made_p->read_ranges;
       }},
      {"decision",
       [=](Gen& g) {
         *made_d = txn::DecisionRecord{g.U64(), g.rng()() % 2 == 0, g.U64(), g.Shards()};
         return txn::EncodeDecision(*made_d);
       },
       [=](absl::string_view in, std::string* again) {
         if (!txn::DecodeDecision(in, got_d.get())) return false;
         *again = txn::EncodeDecision(*got_d);
         return true;
       },
       [=] {
         return got_d->txn_id == made_d->txn_id && got_d->commit == made_d->commit &&
                got_d->commit_ts == made_d->commit_ts && got_d->shards == made_d->shards;
       }},
      {"txn-ts",
       [=](Gen& g) {
         *made_2 = {g.U64(), g.U64()};
         return txn::EncodeTxnTs(made_2->first, made_2->second);
       },
       [=](absl::string_view in, std::string* again) {
         if (!txn::DecodeTxnTs(in, &got_2->first, &got_2->second)) return false;
         *again = txn::EncodeTxnTs(got_2->first, got_2->second);
         return true;
       },
       [=] { return *got_2 == *made_2; }},
      {"txn",
       [=](Gen& g) {
         made_2->first = g.U64();
         return txn::EncodeTxn(made_2->first);
       },
       [=](absl::string_view in, std::string* again) {
         if (!txn::DecodeTxn(in, &got_2->first)) return false;
         *again = txn::EncodeTxn(got_2->first);
         return true;
       },
       [=] { return got_2->first == made_2->first; }},
  };
}

TEST(RecordFormat, RandomRecordsRoundTrip) {
  Gen g(11);
  for (const Codec& c : Codecs()) {
    SCOPED_TRACE(c.name);
    for (int i = 0; i < 300; ++i) {
      const std::string bytes = c.make(g);
      std::string again;
      ASSERT_TRUE(c.decode(bytes, &again));
      ASSERT_TRUE(c.same());
      ASSERT_EQ(again, bytes);
    }
  }
}

TEST(RecordFormat, EveryTruncationAndEveryExtensionIsRefused) {
  Gen g(12);
  for (const Codec& c : Codecs()) {
    SCOPED_TRACE(c.name);
    for (int i = 0; i < 60; ++i) {
      const std::string bytes = c.make(g);
      std::string again;
      int whole_prefixes = 0;
      for (size_t n = 0; n < bytes.size(); ++n) {
        // A copy of exactly n bytes, so that ASan sees any read past it.
        const std::string prefix = bytes.substr(0, n);
        if (!c.decode(prefix, &again)) continue;
        // The one exception: a prepare's read set is an optional extension (records written
        // without it stay readable), so the record cut where its writes end is itself a
        // record, the same one without its read set. (The WAL's checksum over the framed
        // length is what refuses a torn record; this test is about the decoders alone.)
        ASSERT_EQ(std::string(c.name), "prepare") << n << " of " << bytes.size() << " bytes";
        ASSERT_EQ(again, prefix);
        ASSERT_EQ(++whole_prefixes, 1);
      }
      ASSERT_FALSE(c.decode(bytes + static_cast<char>(g.rng()()), &again));
    }
  }
}

TEST(RecordFormat, DamagedRecordsAreRefusedOrDecodeToAWellFormedRecord) {
  Gen g(13);
  for (const Codec& c : Codecs()) {
    SCOPED_TRACE(c.name);
    int refused = 0, decoded = 0;
    for (int i = 0; i < 3000; ++i) {
      std::string bytes = c.make(g);
      if (bytes.empty()) continue;
      const int flips = 1 + static_cast<int>(g.rng()() % 4);
      for (int f = 0; f < flips; ++f) {
        bytes[g.rng()() % bytes.size()] = static_cast<char>(g.rng()());
      }
      std::string again, again2;
      if (!c.decode(bytes, &again)) {
        ++refused;
        continue;
      }
      ++decoded;
      // What decoded is a record: its own encoding decodes to the same encoding.
      ASSERT_TRUE(c.decode(again, &again2));
      ASSERT_EQ(again2, again);
    }
    // Both outcomes occur (fixed-size fields take any bytes; counts and lengths often break).
    EXPECT_GT(decoded, 0);
    if (std::string(c.name) != "txn-ts" && std::string(c.name) != "txn") {
      EXPECT_GT(refused, 0);
    }
  }
}

// A count or length read from the bytes is checked against what is left before anything is
// allocated for it: a record claiming 2^63 writes is refused at once.
TEST(RecordFormat, HugeCountsAreRefusedWithoutAllocating) {
  std::string commit(16, '\0');  // ts, txn id
  PutVarint64(&commit, uint64_t{1} << 62);  // writes
  commit.append(64, '\1');
  uint64_t ts, id;
  std::vector<Write> writes;
  EXPECT_FALSE(engine::DecodeCommit(commit, &ts, &id, &writes));
  EXPECT_EQ(writes.capacity(), 0u);
  std::string decision(8, '\0');  // txn id
  decision.push_back('\1');       // commit
  decision.append(8, '\0');       // commit ts
  PutVarint64(&decision, uint64_t{1} << 62);  // shards
  decision.append(64, '\1');
  txn::DecisionRecord d;
  EXPECT_FALSE(txn::DecodeDecision(decision, &d));
  EXPECT_EQ(d.shards.capacity(), 0u);
}

}  // namespace
}  // namespace shardtx
