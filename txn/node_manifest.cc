#include "txn/node_manifest.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "txn/db_directory.h"
#include "util/status_macros.h"

namespace shardtx::txn {
namespace {

constexpr char kNodeFile[] = "NODE";
constexpr char kHeader[] = "shardtx-node 1";

}  // namespace

absl::StatusOr<std::optional<NodeManifest>> ReadNodeManifest(Env* env, const std::string& path) {
  const std::string file = absl::StrCat(path, "/", kNodeFile);
  absl::Status exists = env->FileExists(file);
  if (absl::IsNotFound(exists)) return std::optional<NodeManifest>();
  RETURN_IF_ERROR(exists);
  ASSIGN_OR_RETURN(std::string text, ReadSmallFile(env, file));
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  auto bad = [&](size_t line, absl::string_view why) {
    return absl::DataLossError(absl::StrCat("node manifest ", file, " line ", line + 1, ": ", why));
  };
  if (lines.empty() || lines[0] != kHeader) return bad(0, absl::StrCat("not '", kHeader, "'"));
  NodeManifest m;
  bool has_cluster = false, has_node = false, has_incarnation = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> f = absl::StrSplit(lines[i], ' ');
    if (f[0] == "cluster" && f.size() == 2 && !f[1].empty()) {
      m.cluster_id = f[1];
      has_cluster = true;
    } else if (f[0] == "node" && f.size() == 2 && absl::SimpleAtoi(f[1], &m.node_id)) {
      has_node = true;
    } else if (f[0] == "incarnation" && f.size() == 2 && absl::SimpleAtoi(f[1], &m.incarnation)) {
      has_incarnation = true;
    } else if (f[0] == "join" && f.size() == 2 && f[1] == "1") {
      m.join = true;
    } else if (f[0] == "member" && f.size() == 3) {
      ReplicationMember member;
      if (!absl::SimpleAtoi(f[1], &member.id)) return bad(i, "bad member id");
      member.address = f[2];
      m.members.push_back(std::move(member));
    } else {
      return bad(i, absl::StrCat("unexpected '", lines[i], "'"));
    }
  }
  if (!has_cluster || !has_node || !has_incarnation || m.members.empty()) {
    return bad(lines.size() - 1, "a field is missing (cluster, node, incarnation, member)");
  }
  return std::optional<NodeManifest>(std::move(m));
}

absl::Status WriteNodeManifest(Env* env, const std::string& path, const NodeManifest& m) {
  std::string text = absl::StrCat(kHeader, "\ncluster ", m.cluster_id, "\nnode ", m.node_id,
                                  "\nincarnation ", m.incarnation, "\n");
  for (const ReplicationMember& member : m.members) {
    absl::StrAppend(&text, "member ", member.id, " ", member.address, "\n");
  }
  if (m.join) absl::StrAppend(&text, "join 1\n");
  return WriteFileAtomically(env, path, kNodeFile, text);
}

std::string MembersToString(const std::vector<ReplicationMember>& members) {
  return absl::StrJoin(members, ", ", [](std::string* out, const ReplicationMember& m) {
    absl::StrAppend(out, m.id, "@", m.address);
  });
}

bool SameMembers(std::vector<ReplicationMember> a, std::vector<ReplicationMember> b) {
  auto by_id = [](const ReplicationMember& x, const ReplicationMember& y) { return x.id < y.id; };
  std::sort(a.begin(), a.end(), by_id);
  std::sort(b.begin(), b.end(), by_id);
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const ReplicationMember& x, const ReplicationMember& y) {
                      return x.id == y.id && x.address == y.address;
                    });
}

bool OneMemberApart(const std::vector<ReplicationMember>& a,
                    const std::vector<ReplicationMember>& b) {
  const std::vector<ReplicationMember>& longer = a.size() > b.size() ? a : b;
  const std::vector<ReplicationMember>& shorter = a.size() > b.size() ? b : a;
  if (longer.size() != shorter.size() + 1) return false;
  for (size_t skip = 0; skip < longer.size(); ++skip) {
    std::vector<ReplicationMember> rest = longer;
    rest.erase(rest.begin() + static_cast<std::ptrdiff_t>(skip));
    if (SameMembers(rest, shorter)) return true;
  }
  return false;
}

}  // namespace shardtx::txn
