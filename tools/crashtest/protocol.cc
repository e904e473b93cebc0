#include "tools/crashtest/protocol.h"

#include <unistd.h>

#include <cerrno>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace shardtx::crashtest {

std::string FormatIntent(const Intent& intent) {
  std::string out = absl::StrCat(std::string(1, static_cast<char>(intent.kind)), " ", intent.txn_id,
                                 " ", intent.name.empty() ? "-" : intent.name, " ",
                                 intent.from.empty() ? "-" : intent.from, " ",
                                 intent.to.empty() ? "-" : intent.to, " ", intent.amount);
  for (const auto& [key, value] : intent.writes) {
    absl::StrAppend(&out, " ", key, "=", value.has_value() ? *value : "-");
  }
  return out;
}

bool ParseIntent(absl::string_view text, Intent* intent) {
  std::vector<absl::string_view> f = absl::StrSplit(text, ' ', absl::SkipEmpty());
  if (f.size() < 6 || f[0].size() != 1) return false;
  *intent = Intent();
  intent->kind = static_cast<OpKind>(f[0][0]);
  if (!absl::SimpleAtoi(f[1], &intent->txn_id)) return false;
  if (f[2] != "-") intent->name = std::string(f[2]);
  if (f[3] != "-") intent->from = std::string(f[3]);
  if (f[4] != "-") intent->to = std::string(f[4]);
  if (!absl::SimpleAtoi(f[5], &intent->amount)) return false;
  for (size_t i = 6; i < f.size(); ++i) {
    const size_t eq = f[i].find('=');
    if (eq == absl::string_view::npos) return false;
    absl::string_view value = f[i].substr(eq + 1);
    intent->writes.emplace_back(
        std::string(f[i].substr(0, eq)),
        value == "-" ? std::nullopt : std::optional<std::string>(std::string(value)));
  }
  return true;
}

void WriteLine(int fd, const std::string& line) {
  std::string data = line + "\n";
  while (true) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n == static_cast<ssize_t>(data.size())) return;
    if (n < 0 && errno == EINTR) continue;
    _exit(3);  // the parent is gone (EPIPE) or the pipe is broken: nobody to report to
  }
}

}  // namespace shardtx::crashtest
