// Overlay against a model: random adds, removes (a failed commit taken back), point reads at
// random snapshots, newest timestamps, range checks and scans in both directions must all agree
// with a plain ordered map of version lists. Point lookups and scans use different indexes
// inside the overlay, so a key the two disagree on shows up here.
#include "engine/overlay.h"

#include <map>
#include <random>
#include <string>
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

}  // namespace
}  // namespace shardtx::engine
