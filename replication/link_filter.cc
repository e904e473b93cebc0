#include "replication/link_filter.h"

#include "absl/strings/str_cat.h"
#include "replication/raft_shim.h"

namespace shardtx::replication {

absl::Status SetLinkBlocked(uint64_t self, uint64_t peer, LinkDirection direction, bool blocked) {
  const int dirs = direction == LinkDirection::kOut ? RS_LINK_OUT : RS_LINK_IN;
  const int rv = rs_link_block(self, peer, dirs, blocked ? 1 : 0);
  if (rv == RS_INVALID) {
    return absl::FailedPreconditionError(
        "link filter: only the testing library (SHARDTX_KILL_POINTS) has one");
  }
  if (rv != RS_OK) {
    return absl::ResourceExhaustedError(
        absl::StrCat("link filter: no room to block server ", self, "'s link with ", peer));
  }
  return absl::OkStatus();
}

absl::Status BlockSend(uint64_t from, uint64_t to, bool blocked) {
  absl::Status s = SetLinkBlocked(from, to, LinkDirection::kOut, blocked);
  if (s.ok()) s = SetLinkBlocked(to, from, LinkDirection::kIn, blocked);
  return s;
}

void UnblockAllLinks() { rs_link_clear(); }

LinkFilterCounters GetLinkFilterCounters() {
  struct rs_link_counters raw;
  rs_link_counters(&raw);
  LinkFilterCounters c;
  c.refused_connects = raw.refused_connects;
  c.refused_accepts = raw.refused_accepts;
  c.cut_streams = raw.cut_streams;
  return c;
}

}  // namespace shardtx::replication
