#include "tools/shardtx/dump_format.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "tools/shardtx/cli.h"

namespace shardtx::cli {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string DumpTrailer(uint64_t records) { return absl::StrCat("# end ", records, " records"); }

bool ParseDumpTrailer(absl::string_view line, uint64_t* records) {
  return absl::ConsumePrefix(&line, "# end ") && absl::ConsumeSuffix(&line, " records") &&
         absl::SimpleAtoi(line, records);
}

std::string EncodeField(absl::string_view bytes, bool hex) {
  if (hex) return absl::StrCat("0x", absl::BytesToHexString(bytes));
  return absl::StrCat("\"", Printable(bytes), "\"");
}

absl::StatusOr<std::string> ParseField(absl::string_view* in) {
  std::string out;
  if (absl::ConsumePrefix(in, "0x")) {
    size_t n = 0;
    while (n < in->size() && (*in)[n] != ' ') ++n;
    absl::string_view digits = in->substr(0, n);
    if (digits.size() % 2 != 0) return absl::InvalidArgumentError("odd number of hex digits");
    for (size_t i = 0; i < digits.size(); i += 2) {
      const int hi = HexDigit(digits[i]), lo = HexDigit(digits[i + 1]);
      if (hi < 0 || lo < 0) return absl::InvalidArgumentError("not a hex digit");
      out.push_back(static_cast<char>(hi * 16 + lo));
    }
    in->remove_prefix(n);
    return out;
  }
  if (!absl::ConsumePrefix(in, "\"")) {
    return absl::InvalidArgumentError("a field starts with '\"' or '0x'");
  }
  for (size_t i = 0; i < in->size(); ++i) {
    const char c = (*in)[i];
    if (c == '"') {
      in->remove_prefix(i + 1);
      return out;
    }
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      return absl::InvalidArgumentError("unescaped byte in a quoted field");
    }
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (++i == in->size()) break;
    const char e = (*in)[i];
    if (e == '\\' || e == '"') {
      out.push_back(e);
    } else if (e == 'x' && i + 2 < in->size() && HexDigit((*in)[i + 1]) >= 0 &&
               HexDigit((*in)[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexDigit((*in)[i + 1]) * 16 + HexDigit((*in)[i + 2])));
      i += 2;
    } else {
      return absl::InvalidArgumentError("bad escape (\\\\, \\\" or \\xNN)");
    }
  }
  return absl::InvalidArgumentError("unterminated quoted field");
}

absl::Status ParseRecordLine(absl::string_view line, std::string* key, std::string* value) {
  absl::StatusOr<std::string> k = ParseField(&line);
  if (!k.ok()) return absl::InvalidArgumentError(absl::StrCat("key: ", k.status().message()));
  if (!absl::ConsumePrefix(&line, " ")) {
    return absl::InvalidArgumentError("expected one space between key and value");
  }
  absl::StatusOr<std::string> v = ParseField(&line);
  if (!v.ok()) return absl::InvalidArgumentError(absl::StrCat("value: ", v.status().message()));
  if (!line.empty()) return absl::InvalidArgumentError("trailing bytes after the value");
  *key = std::move(*k);
  *value = std::move(*v);
  return absl::OkStatus();
}

}  // namespace shardtx::cli
