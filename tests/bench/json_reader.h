// A small JSON reader for the txbench tests: enough of RFC 8259 to check that txbench's output
// is well-formed and to read it back (objects, arrays, strings with escapes, numbers, true,
// false, null). Rejects trailing commas, bare words and trailing garbage.
#pragma once

#include <cctype>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace txbench::testing {

struct JsonMember;

struct JsonValue {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<JsonValue> array;
  std::vector<JsonMember> object;  // in document order

  // The member named `key`, or nullptr.
  const JsonValue* Get(const std::string& key) const;
};

struct JsonMember {
  std::string first;
  JsonValue second;
};

inline const JsonValue* JsonValue::Get(const std::string& key) const {
  for (const JsonMember& m : object) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

class JsonReader {
 public:
  // The document, or nullopt with error() saying where it went wrong.
  std::optional<JsonValue> Parse(const std::string& text) {
    text_ = &text;
    pos_ = 0;
    error_.clear();
    JsonValue v;
    if (!Value(&v, 0)) return std::nullopt;
    SkipSpace();
    if (pos_ != text.size()) return Fail("trailing characters");
    return v;
  }
  const std::string& error() const { return error_; }

 private:
  std::nullopt_t Fail(const std::string& what) {
    if (error_.empty()) error_ = what + " at offset " + std::to_string(pos_);
    return std::nullopt;
  }
  void SkipSpace() {
    while (pos_ < text_->size() && std::isspace(static_cast<unsigned char>((*text_)[pos_]))) {
      ++pos_;
    }
  }
  bool Literal(const char* word) {
    const std::string w(word);
    if (text_->compare(pos_, w.size(), w) != 0) return false;
    pos_ += w.size();
    return true;
  }
  bool String(std::string* out) {
    if (pos_ >= text_->size() || (*text_)[pos_] != '"') return (Fail("expected string"), false);
    ++pos_;
    while (pos_ < text_->size()) {
      const char c = (*text_)[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return (Fail("control character in string"), false);
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (pos_ >= text_->size()) break;
      const char e = (*text_)[pos_++];
      switch (e) {
        case '"':
          out->push_back('"');
          break;
        case '\\':
          out->push_back('\\');
          break;
        case '/':
          out->push_back('/');
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          if (pos_ + 4 > text_->size()) return (Fail("short \\u escape"), false);
          const long cp = std::strtol(text_->substr(pos_, 4).c_str(), nullptr, 16);
          pos_ += 4;
          out->push_back(cp < 0x80 ? static_cast<char>(cp) : '?');
          break;
        }
        default:
          return (Fail("bad escape"), false);
      }
    }
    return (Fail("unterminated string"), false);
  }
  bool Number(double* out) {
    const size_t start = pos_;
    if (pos_ < text_->size() && (*text_)[pos_] == '-') ++pos_;
    if (pos_ >= text_->size() || !std::isdigit(static_cast<unsigned char>((*text_)[pos_]))) {
      return (Fail("expected a value"), false);
    }
    while (pos_ < text_->size() &&
           (std::isdigit(static_cast<unsigned char>((*text_)[pos_])) ||
            std::string(".eE+-").find((*text_)[pos_]) != std::string::npos)) {
      ++pos_;
    }
    char* end = nullptr;
    const std::string s = text_->substr(start, pos_ - start);
    *out = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size()) return (Fail("bad number '" + s + "'"), false);
    return true;
  }
  bool Value(JsonValue* v, int depth) {
    if (depth > 64) return (Fail("nested too deeply"), false);
    SkipSpace();
    if (pos_ >= text_->size()) return (Fail("unexpected end"), false);
    const char c = (*text_)[pos_];
    if (c == '{') {
      v->type = JsonValue::Type::kObject;
      ++pos_;
      SkipSpace();
      if (pos_ < text_->size() && (*text_)[pos_] == '}') return ++pos_, true;
      for (;;) {
        SkipSpace();
        std::string key;
        if (!String(&key)) return false;
        SkipSpace();
        if (pos_ >= text_->size() || (*text_)[pos_] != ':') return (Fail("expected ':'"), false);
        ++pos_;
        JsonValue member;
        if (!Value(&member, depth + 1)) return false;
        v->object.push_back(JsonMember{std::move(key), std::move(member)});
        SkipSpace();
        if (pos_ < text_->size() && (*text_)[pos_] == ',') {
          ++pos_;
          continue;
        }
        if (pos_ < text_->size() && (*text_)[pos_] == '}') return ++pos_, true;
        return (Fail("expected ',' or '}'"), false);
      }
    }
    if (c == '[') {
      v->type = JsonValue::Type::kArray;
      ++pos_;
      SkipSpace();
      if (pos_ < text_->size() && (*text_)[pos_] == ']') return ++pos_, true;
      for (;;) {
        JsonValue element;
        if (!Value(&element, depth + 1)) return false;
        v->array.push_back(std::move(element));
        SkipSpace();
        if (pos_ < text_->size() && (*text_)[pos_] == ',') {
          ++pos_;
          continue;
        }
        if (pos_ < text_->size() && (*text_)[pos_] == ']') return ++pos_, true;
        return (Fail("expected ',' or ']'"), false);
      }
    }
    if (c == '"') {
      v->type = JsonValue::Type::kString;
      return String(&v->string);
    }
    if (Literal("true")) {
      v->type = JsonValue::Type::kBool;
      v->boolean = true;
      return true;
    }
    if (Literal("false")) {
      v->type = JsonValue::Type::kBool;
      return true;
    }
    if (Literal("null")) {
      v->type = JsonValue::Type::kNull;
      return true;
    }
    v->type = JsonValue::Type::kNumber;
    return Number(&v->number);
  }

  const std::string* text_ = nullptr;
  size_t pos_ = 0;
  std::string error_;
};

}  // namespace txbench::testing
