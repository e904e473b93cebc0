// Overlay against a model: random adds, removes (a failed commit taken back), point reads at
// random snapshots, newest timestamps, range checks and scans in both directions must all agree
// with a plain ordered map of version lists. Point lookups and scans use different indexes
// inside the overlay, so a key the two disagree on shows up here.
#include "engine/overlay.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace shardtx::engine {
namespace {

struct ModelVersion {
  Timestamp ts;
  bool tombstone;
  std::string value;
};
using Model = std::map<std::string, std::vector<ModelVersion>>;  // versions newest first

const ModelVersion* Visible(const Model& m, const std::string& key, Timestamp snapshot) {
  auto it = m.find(key);
  if (it == m.end()) return nullptr;
  for (const ModelVersion& v : it->second) {
    if (v.ts <= snapshot) return &v;
  }
  return nullptr;
}

std::vector<std::string> ModelScan(const Model& m, const std::string& from, bool reverse,
                                   Timestamp snapshot) {
  std::vector<std::string> out;
  auto add = [&](const std::string& key) {
    if (const ModelVersion* v = Visible(m, key, snapshot)) {
      out.push_back(absl::StrCat(key, v->tombstone ? "=del" : "=", v->value));
    }
  };
  if (!reverse) {
    for (auto it = m.lower_bound(from); it != m.end(); ++it) add(it->first);
  } else {
    auto it = from.empty() ? m.end() : m.upper_bound(from);
    while (it != m.begin()) add((--it)->first);
  }
  return out;
}

std::vector<std::string> OverlayScan(const Overlay& o, const std::string& from, bool reverse,
                                     Timestamp snapshot) {
  std::vector<std::string> out;
  std::vector<ScanEntry> entries;
  std::optional<absl::string_view> stopped;
  o.Scan(from, /*inclusive=*/true, reverse, /*limit=*/1 << 20, snapshot, &entries, &stopped);
  for (const ScanEntry& e : entries) {
    out.push_back(absl::StrCat(e.key, e.tombstone ? "=del" : "=", e.value));
  }
  return out;
}

TEST(Overlay, AgreesWithAModelUnderRandomAddsRemovesAndReads) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    std::mt19937_64 rng(seed);
    Overlay o;
    Model m;
    Timestamp ts = 0;
    auto key = [&] { return absl::StrCat("k", rng() % 64); };
    for (int step = 0; step < 2000; ++step) {
      const int op = static_cast<int>(rng() % 10);
      if (op < 5) {
        const std::string k = key();
        const bool tombstone = rng() % 5 == 0;
        const std::string value = tombstone ? "" : absl::StrCat("v", step);
        o.Add(k, ++ts, tombstone, std::string(value));
        auto& chain = m[k];
        chain.insert(chain.begin(), ModelVersion{ts, tombstone, value});
      } else if (op < 7) {
        // Take back a version, as a failed commit does: often the newest, the key's only one.
        const std::string k = key();
        auto it = m.find(k);
        if (it == m.end()) {
          o.Remove(k, ts + 1);  // nothing there: a no-op
          continue;
        }
        const size_t i = rng() % 3 == 0 ? rng() % it->second.size() : 0;
        o.Remove(k, it->second[i].ts);
        it->second.erase(it->second.begin() + static_cast<std::ptrdiff_t>(i));
        if (it->second.empty()) m.erase(it);
      } else {
        const std::string k = key();
        const Timestamp snapshot = ts == 0 ? 0 : rng() % (ts + 1);
        const std::optional<Found> got = o.Get(k, snapshot);
        const ModelVersion* want = Visible(m, k, snapshot);
        ASSERT_EQ(got.has_value(), want != nullptr) << k << " at " << snapshot;
        if (want != nullptr) {
          EXPECT_EQ(got->ts, want->ts);
          EXPECT_EQ(got->tombstone, want->tombstone);
          EXPECT_EQ(got->value, want->value);
        }
        auto it = m.find(k);
        EXPECT_EQ(o.LatestTs(k), it == m.end() ? 0 : it->second.front().ts) << k;
        const std::string lower = key(), upper = key();
        bool newer = false;
        for (auto i = m.lower_bound(lower); i != m.end() && i->first < upper; ++i) {
          newer |= i->second.front().ts > snapshot;
        }
        if (lower < upper) {
          EXPECT_EQ(o.AnyNewerInRange(lower, upper, snapshot), newer);
        }
      }
      if (step % 100 == 99) {
        const Timestamp snapshot = rng() % (ts + 1);
        const std::string from = rng() % 4 == 0 ? "" : key();
        for (bool reverse : {false, true}) {
          ASSERT_EQ(OverlayScan(o, from, reverse, snapshot), ModelScan(m, from, reverse, snapshot))
              << "from '" << from << "' reverse " << reverse << " at " << snapshot;
        }
      }
    }
    // Every key the checkpoint walk sees, newest version first, and nothing else.
    std::vector<std::string> walked;
    o.ForEachNewestAfter(nullptr, [&](absl::string_view k, const Version& v) {
      walked.push_back(absl::StrCat(k, "@", v.ts));
      return true;
    });
    std::vector<std::string> want;
    for (const auto& [k, chain] : m) want.push_back(absl::StrCat(k, "@", chain.front().ts));
    EXPECT_EQ(walked, want);
  }
}

// Scans at a fixed snapshot while a writer keeps adding new keys above it (the shard's commit
// path: a version is installed before its timestamp becomes visible). The ordered index is
// brought up to date by the scans themselves, racing the adds: each scan, resumed where the
// overlay stopped it, must return exactly the keys at or below the snapshot, in order, however
// the two interleave (run it under TSan too).
std::vector<std::pair<std::string, std::string>> ScanAll(const Overlay& o, Timestamp snapshot) {
  std::vector<std::pair<std::string, std::string>> out;
  std::string from;
  bool inclusive = true;
  for (;;) {
    std::vector<ScanEntry> entries;
    std::optional<absl::string_view> stopped;
    o.Scan(from, inclusive, /*reverse=*/false, /*limit=*/1 << 20, snapshot, &entries, &stopped);
    for (const ScanEntry& e : entries) out.emplace_back(e.key, e.value);
    if (!stopped.has_value()) return out;
    from = std::string(*stopped);
    inclusive = false;
  }
}

TEST(Overlay, ScansAtASnapshotMissNothingWhileNewKeysArrive) {
  Overlay o;
  constexpr int kBefore = 2000, kDuring = 20000;
  auto key = [](int i) { return absl::StrCat("k", (i * 7919) % 100003); };  // scattered order
  std::vector<std::pair<std::string, std::string>> expected;
  for (int i = 0; i < kBefore; ++i) {
    o.Add(key(i), /*ts=*/i + 1, /*tombstone=*/false, absl::StrCat("v", i));
    expected.emplace_back(key(i), absl::StrCat("v", i));
  }
  std::sort(expected.begin(), expected.end());
  const Timestamp snapshot = kBefore;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = kBefore; i < kBefore + kDuring; ++i) {
      o.Add(key(i), i + 1, false, absl::StrCat("v", i));
      if (i % 500 == 0) o.Remove(key(i), i + 1);  // a commit taken back
    }
    done.store(true);
  });
  int scans = 0, wrong = 0;
  bool writer_done_at_start;
  do {
    writer_done_at_start = done.load();
    if (ScanAll(o, snapshot) != expected) ++wrong;
    ++scans;
  } while (!writer_done_at_start);
  writer.join();
  EXPECT_EQ(wrong, 0) << "of " << scans << " scans";
  // Every key, old and new, is in the ordered index once the writer is done.
  auto all = ScanAll(o, kBefore + kDuring);
  EXPECT_EQ(all.size(), static_cast<size_t>(kBefore + kDuring - kDuring / 500));
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end()));
}

}  // namespace
}  // namespace shardtx::engine
