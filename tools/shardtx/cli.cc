#include "tools/shardtx/cli.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

ABSL_FLAG(bool, json, false, "Machine-readable output: JSON (one object per line for wal dump).");
ABSL_FLAG(int32_t, shard, -1, "wal dump: only this shard (-1: all).");
ABSL_FLAG(std::string, from, "",
          "wal dump: first LSN to print; dump: first key (inclusive, in the dump format or "
          "plain text).");
ABSL_FLAG(std::string, to, "", "dump: end key (exclusive).");
ABSL_FLAG(uint64_t, limit, 0, "wal dump: print at most this many records (0: all).");
ABSL_FLAG(uint64_t, max_keys, 16, "wal dump: keys printed per record (0: all).");
ABSL_FLAG(bool, hex, false, "dump: keys and values in hex instead of escaped text.");
ABSL_FLAG(uint64_t, batch_keys, 1000, "load: keys per transaction (at most).");
ABSL_FLAG(uint64_t, batch_bytes, 1 << 20, "load: key and value bytes per transaction (at most).");
ABSL_FLAG(bool, create, false, "load: create the database if DIR does not exist.");
ABSL_FLAG(uint32_t, shards, 1, "load --create: shards of the new database.");
ABSL_FLAG(std::string, log_layout, "shared",
          "load --create: where the new database keeps its shards' logs: shared (one log for "
          "all shards, the library's default) or per-shard.");

namespace shardtx::cli {

absl::StatusOr<std::vector<std::string>> ParseArgs(const std::vector<std::string>& args,
                                                   absl::Span<const char* const> allowed) {
  std::vector<std::string> positional;
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (flags_done || a.size() < 2 || a[0] != '-') {
      positional.push_back(a);
      continue;
    }
    if (a == "--") {
      flags_done = true;
      continue;
    }
    absl::string_view body = absl::StripPrefix(absl::StripPrefix(a, "-"), "-");
    std::string name(body.substr(0, body.find('=')));
    std::optional<std::string> value;
    if (body.find('=') != absl::string_view::npos)
      value = std::string(body.substr(name.size() + 1));
    auto is_allowed = [&](const std::string& n) {
      return std::find(allowed.begin(), allowed.end(), n) != allowed.end();
    };
    absl::CommandLineFlag* flag = is_allowed(name) ? absl::FindCommandLineFlag(name) : nullptr;
    if (flag == nullptr && absl::StartsWith(name, "no") && !value.has_value() &&
        is_allowed(name.substr(2))) {
      flag = absl::FindCommandLineFlag(name.substr(2));
      if (flag != nullptr && flag->IsOfType<bool>()) {
        value = "false";
      } else {
        flag = nullptr;
      }
    }
    if (flag == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag ", a, " for this command"));
    }
    if (!value.has_value()) {
      if (flag->IsOfType<bool>()) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat("flag ", a, " needs a value"));
      }
    }
    std::string error;
    if (!flag->ParseFrom(*value, &error)) {
      return absl::InvalidArgumentError(absl::StrCat("bad value for --", name, ": ", error));
    }
  }
  return positional;
}

absl::StatusOr<DbInfo> ParseDirCommand(const std::vector<std::string>& args,
                                       absl::Span<const char* const> allowed,
                                       absl::string_view usage) {
  absl::StatusOr<std::vector<std::string>> pos = ParseArgs(args, allowed);
  if (!pos.ok()) return pos.status();
  if (pos->size() != 1) return absl::InvalidArgumentError(absl::StrCat("usage: shardtx ", usage));
  return InspectDb((*pos)[0]);
}

int Fail(absl::string_view message) {
  std::fprintf(stderr, "shardtx: %.*s\n", static_cast<int>(message.size()), message.data());
  return kExitCannotRun;
}

int Fail(const absl::Status& status) { return Fail(status.message()); }

std::string Printable(absl::string_view bytes, size_t max_bytes) {
  const bool cut = max_bytes != 0 && bytes.size() > max_bytes;
  absl::string_view shown = cut ? bytes.substr(0, max_bytes) : bytes;
  std::string out;
  out.reserve(shown.size() + 8);
  for (char c : shown) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u >= 0x20 && u < 0x7f) {
      out.push_back(c);
    } else {
      absl::StrAppendFormat(&out, "\\x%02x", u);
    }
  }
  if (cut) absl::StrAppend(&out, "...(", bytes.size(), " bytes)");
  return out;
}

std::string JsonString(absl::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u >= 0x7f) {
      absl::StrAppendFormat(&out, "\\u%04x", u);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

void StdoutBuffer::Line(absl::string_view s) {
  buf_.append(s.data(), s.size());
  buf_.push_back('\n');
  if (buf_.size() >= (64 << 10)) Flush();
}

bool StdoutBuffer::Flush() {
  std::fwrite(buf_.data(), 1, buf_.size(), stdout);
  buf_.clear();
  return std::fflush(stdout) == 0 && !std::ferror(stdout);
}

Progress::Progress(std::string label, uint64_t total)
    : enabled_(::isatty(STDERR_FILENO) == 1), label_(std::move(label)), total_(total) {}

Progress::~Progress() { Done(); }

void Progress::SetLabel(std::string label) { label_ = std::move(label); }

void Progress::Set(uint64_t done) {
  done_ = done;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  Draw();
}

void Progress::Draw() {
  std::string line = absl::StrCat("\r", label_, " ");
  if (total_ != 0) {
    constexpr int kWidth = 30;
    const uint64_t done = std::min(done_, total_);
    const int filled = static_cast<int>(done * kWidth / total_);
    absl::StrAppend(&line, "[", std::string(filled, '#'), std::string(kWidth - filled, '.'), "] ",
                    done * 100 / total_, "%");
  } else {
    absl::StrAppend(&line, done_);
  }
  absl::StrAppend(&line, "\x1b[K");
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::Done() {
  if (!drawn_) return;
  std::fputs("\r\x1b[K", stderr);
  std::fflush(stderr);
  drawn_ = false;
}

std::string DbInfo::ShardDir(uint32_t shard) const {
  return absl::StrFormat("%s/shard-%03d", path, shard);
}

std::string DbInfo::RaftDir(uint32_t shard) const {
  return absl::StrFormat("%s/raft-%03d", path, shard);
}

absl::StatusOr<DbInfo> InspectDb(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat(dir, ": no such directory"));
  }
  if (!S_ISDIR(st.st_mode)) return absl::FailedPreconditionError(dir + ": not a directory");
  const std::string manifest = dir + "/SHARDTX";
  std::ifstream in(manifest, std::ios::binary);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir, " is not a shardtx database (no SHARDTX file)"));
  }
  std::string text(4097, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > 4096) return absl::DataLossError(manifest + " is corrupt (too large)");
  DbInfo info;
  info.path = dir;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(line, absl::MaxSplits(' ', 1));
    if (kv.first == "format") (void)absl::SimpleAtoi(kv.second, &info.format);
    if (kv.first == "shards") (void)absl::SimpleAtoi(kv.second, &info.shards);
    if (kv.first == "partitioning") info.partitioning = std::string(kv.second);
    if (kv.first == "log") {
      if (kv.second != "shared") return absl::DataLossError(manifest + " is corrupt (log line)");
      info.shared_log = true;
    }
  }
  if (info.format == 0 || info.shards == 0 || info.shards > 1024 || info.partitioning.empty()) {
    return absl::DataLossError(manifest + " is corrupt");
  }
  // The shared log layout is format 3, which requires its line; older formats have none.
  if (info.format <= kManifestFormat &&
      info.shared_log != (info.format == txn::DbDirectory::kSharedLogFormatVersion)) {
    return absl::DataLossError(absl::StrCat(manifest, " is corrupt (format ", info.format,
                                            info.shared_log ? " with" : " without",
                                            " a 'log shared' line)"));
  }
  if (info.format > kManifestFormat) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir, " has format version ", info.format, ", newer than this tool's ", kManifestFormat));
  }
  return info;
}

std::optional<std::string> LockHolder(const std::string& dir) {
  const std::string path = dir + "/LOCK";
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  // /proc/locks: "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF" (device in hex).
  const std::string id = absl::StrFormat("%02x:%02x:%d", major(st.st_dev), minor(st.st_dev),
                                         static_cast<uint64_t>(st.st_ino));
  std::ifstream locks("/proc/locks");
  bool held = false;
  for (std::string line; std::getline(locks, line);) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() >= 6 && f[1] == "FLOCK" && f[5] == id) held = true;
  }
  if (!held) return std::nullopt;
  std::ifstream lock(path);
  std::string pid;
  std::getline(lock, pid);
  pid = std::string(absl::StripAsciiWhitespace(pid));
  return pid.empty() ? std::string("unknown") : pid;
}

absl::StatusOr<Options> OptionsFor(const DbInfo& info) {
  Options options;
  options.path = info.path;
  options.create_if_missing = false;
  std::vector<std::string> words = absl::StrSplit(info.partitioning, ' ', absl::SkipEmpty());
  if (words.empty()) return absl::DataLossError(info.path + "/SHARDTX: no partitioning");
  if (words[0] == "hash") {
    options.partitioning = Options::Partitioning::kHash;
  } else if (words[0] == "range") {
    options.partitioning = Options::Partitioning::kRange;
    for (size_t i = 1; i < words.size(); ++i) {
      options.range_split_points.push_back(absl::HexStringToBytes(words[i]));
    }
  } else if (words[0] == "explicit") {
    options.partitioning = Options::Partitioning::kExplicit;
    options.explicit_shard = [](absl::string_view) { return 0u; };
  } else {
    return absl::DataLossError(
        absl::StrCat(info.path, "/SHARDTX: unknown partitioning '", info.partitioning, "'"));
  }
  return options;
}

absl::StatusOr<std::unique_ptr<Database>> OpenDatabase(const std::string& dir,
                                                       void (*tune)(Options*)) {
  absl::StatusOr<DbInfo> info = InspectDb(dir);  // first, so that a non-database is untouched
  if (!info.ok()) return info.status();
  absl::StatusOr<Options> options = OptionsFor(*info);
  if (!options.ok()) return options.status();
  if (tune != nullptr) tune(&*options);
  return Database::Open(*options);
}

}  // namespace shardtx::cli
