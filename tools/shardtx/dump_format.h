// The text format of `dump` and `load`: binary-safe, one record per line.
//
//   # shardtx dump 1
//   "key" "value"             escaped: bytes 0x20-0x7e as they are except \ and " (\\ and \"),
//   0x6b6579 0x76616c         every other byte \xNN; or hex: 0x then two digits a byte
//   # end 2 records           (either form for either field; "" and 0x are empty)
//
// A file without the header, or without the trailer whose count matches (a truncated dump), or
// with anything after the trailer, is refused.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace shardtx::cli {

inline constexpr char kDumpHeader[] = "# shardtx dump 1";

// "# end N records"
std::string DumpTrailer(uint64_t records);
// Parses a trailer line; false if `line` is not one.
bool ParseDumpTrailer(absl::string_view line, uint64_t* records);

// One field, escaped or (hex) 0x-prefixed.
std::string EncodeField(absl::string_view bytes, bool hex);
// Parses one field at the start of *in and consumes it. kInvalidArgument says what is wrong.
absl::StatusOr<std::string> ParseField(absl::string_view* in);
// A record line: key, one space, value, nothing else.
absl::Status ParseRecordLine(absl::string_view line, std::string* key, std::string* value);

}  // namespace shardtx::cli
