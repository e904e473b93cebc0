#include "tools/crashtest/coverage.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace shardtx::crashtest {

int64_t RunCoverage::distinct_fired() const {
  int64_t n = 0;
  for (const auto& [name, count] : fired) n += count > 0;
  return n;
}

int64_t RunCoverage::required_verifying_rounds() const {
  if (rounds <= 0) return 0;
  return std::max<int64_t>(1, rounds / 2);
}

int64_t RunCoverage::required_distinct_fired() const {
  const int64_t cap = static_cast<int64_t>(fired.size()) * 2 / 3;
  return std::min(armed_rounds / 4, cap);
}

std::vector<std::string> RunCoverage::Shortfalls() const {
  std::vector<std::string> out;
  if (verifying_rounds < required_verifying_rounds()) {
    out.push_back(absl::StrCat("only ", verifying_rounds, " of ", rounds,
                               " rounds verified an acknowledged commit after the crash (",
                               required_verifying_rounds(), " required)"));
  }
  if (distinct_fired() < required_distinct_fired()) {
    out.push_back(absl::StrCat("only ", distinct_fired(), " distinct kill points fired in ",
                               armed_rounds, " rounds that armed one (", required_distinct_fired(),
                               " required)"));
  }
  return out;
}

}  // namespace shardtx::crashtest
