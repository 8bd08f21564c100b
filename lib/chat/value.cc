#include "lib/chat/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "lib/core/status_macros.h"
#include "lib/core/strings.h"
#include "lib/io/json.h"
#include "lib/tokenizer/utf8.h"
#include "simdjson.h"
#include "utf8proc.h"

namespace reasonrt::chat {

void Text::Append(const Text& other) {
  const size_t shift = bytes.size();
  bytes += other.bytes;
  for (const ByteRange& r : other.untrusted) {
    if (!untrusted.empty() && untrusted.back().end == r.begin + shift) {
      untrusted.back().end = r.end + shift;
    } else {
      untrusted.push_back({r.begin + shift, r.end + shift});
    }
  }
}

void Text::Append(std::string_view s, bool is_trusted) {
  const size_t begin = bytes.size();
  bytes += s;
  if (is_trusted || s.empty()) return;
  if (!untrusted.empty() && untrusted.back().end == begin) {
    untrusted.back().end = bytes.size();
  } else {
    untrusted.push_back({begin, bytes.size()});
  }
}

const Value* Value::Find(std::string_view key) const {
  if (!is_dict()) return nullptr;
  for (const auto& [k, v] : *dict_) {
    if (k == key) return &v;
  }
  return nullptr;
}

bool Value::Truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone: return false;
    case Kind::kBool:
    case Kind::kInt: return int_ != 0;
    case Kind::kFloat: return float_ != 0;
    case Kind::kString: return !text_->bytes.empty();
    case Kind::kList: return !list_->empty();
    case Kind::kDict: return !dict_->empty();
    case Kind::kNamespace:
    case Kind::kFunction: return true;
  }
  return false;
}

std::string_view Value::TypeName() const {
  switch (kind_) {
    case Kind::kUndefined: return "Undefined";
    case Kind::kNone: return "NoneType";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return "str";
    case Kind::kList: return is_tuple() ? "tuple" : "list";
    case Kind::kDict: return "dict";
    case Kind::kNamespace: return "Namespace";
    case Kind::kFunction: return "function";
  }
  return "?";
}

std::string FloatRepr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  const std::string_view sci(buf, res.ptr - buf);  // shortest round trip: "-1.5e+16"
  std::string out;
  size_t p = 0;
  if (sci[0] == '-') {
    out += '-';
    p = 1;
  }
  const size_t e_pos = sci.find('e');
  std::string digits;
  for (size_t i = p; i < e_pos; ++i) {
    if (sci[i] != '.') digits += sci[i];
  }
  int exp10 = 0;
  std::from_chars(sci.data() + e_pos + 1 + (sci[e_pos + 1] == '+'), sci.data() + sci.size(), exp10);
  const int decpt = exp10 + 1;  // value = 0.d1d2... x 10^decpt
  const int n = static_cast<int>(digits.size());
  if (-4 < decpt && decpt <= 16) {
    if (decpt <= 0) {
      out += "0.";
      out.append(-decpt, '0');
      out += digits;
    } else if (decpt >= n) {
      out += digits;
      out.append(decpt - n, '0');
      out += ".0";
    } else {
      out += digits.substr(0, decpt);
      out += '.';
      out += digits.substr(decpt);
    }
    return out;
  }
  out += digits[0];
  if (n > 1) {
    out += '.';
    out += digits.substr(1);
  }
  char exp_buf[16];
  std::snprintf(exp_buf, sizeof(exp_buf), "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
  out += exp_buf;
  return out;
}

namespace {

// Python's str.isprintable() for one code point.
bool IsPrintable(int32_t cp) {
  if (cp == ' ') return true;
  switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS: return false;
    default: return true;
  }
}

std::string StringRepr(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  size_t i = 0;
  char buf[16];
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      if (c == quote || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c == '\t') {
        out += "\\t";
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '\r') {
        out += "\\r";
      } else if (c < 0x20 || c == 0x7f) {
        std::snprintf(buf, sizeof(buf), "\\x%02x", c);
        out += buf;
      } else {
        out += static_cast<char>(c);
      }
      continue;
    }
    utf8proc_int32_t cp = 0;
    const utf8proc_ssize_t len = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                                                  static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
    if (len <= 0) {  // not UTF-8 (cannot come from valid input); show the byte
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
      ++i;
      continue;
    }
    if (IsPrintable(cp)) {
      out.append(s.substr(i, len));
    } else if (cp <= 0xff) {
      std::snprintf(buf, sizeof(buf), "\\x%02x", cp);
      out += buf;
    } else if (cp <= 0xffff) {
      std::snprintf(buf, sizeof(buf), "\\u%04x", cp);
      out += buf;
    } else {
      std::snprintf(buf, sizeof(buf), "\\U%08x", cp);
      out += buf;
    }
    i += len;
  }
  out += quote;
  return out;
}

void ReprInto(const Value& v, std::string& out) {
  switch (v.kind()) {
    case Value::Kind::kString: out += StringRepr(v.str()); return;
    case Value::Kind::kList: {
      const bool tuple = v.is_tuple();
      out += tuple ? '(' : '[';
      for (size_t i = 0; i < v.list().size(); ++i) {
        if (i) out += ", ";
        ReprInto(v.list()[i], out);
      }
      if (tuple && v.list().size() == 1) out += ',';
      out += tuple ? ')' : ']';
      return;
    }
    case Value::Kind::kDict: {
      out += '{';
      bool first = true;
      for (const auto& [k, item] : v.entries()) {
        if (!first) out += ", ";
        first = false;
        out += StringRepr(k);
        out += ": ";
        ReprInto(item, out);
      }
      out += '}';
      return;
    }
    default: out += ToText(v).bytes;
  }
}

}  // namespace

std::string Repr(const Value& v) {
  std::string out;
  ReprInto(v, out);
  return out;
}

// Strings keep their provenance; anything built from an untrusted string is untrusted.
bool AnyUntrusted(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kString: return !v.text().trusted();
    case Value::Kind::kList:
      return std::any_of(v.list().begin(), v.list().end(), [](const Value& e) { return AnyUntrusted(e); });
    case Value::Kind::kDict:
    case Value::Kind::kNamespace:
      return std::any_of(v.entries().begin(), v.entries().end(),
                         [](const auto& e) { return AnyUntrusted(e.second); });
    default: return false;
  }
}

Text ToText(const Value& v) {
  Text t;
  switch (v.kind()) {
    case Value::Kind::kUndefined: return t;
    case Value::Kind::kNone: t.Append("None", true); return t;
    case Value::Kind::kBool: t.Append(v.bool_value() ? "True" : "False", true); return t;
    case Value::Kind::kInt: t.Append(std::to_string(v.int_value()), true); return t;
    case Value::Kind::kFloat: t.Append(FloatRepr(v.number()), true); return t;
    case Value::Kind::kString: return v.text();
    case Value::Kind::kNamespace: t.Append("<Namespace>", true); return t;
    case Value::Kind::kFunction: t.Append(StrCat("<function ", v.function().name, ">"), true); return t;
    default: t.Append(Repr(v), !AnyUntrusted(v)); return t;
  }
}

namespace {

void JsonString(std::string_view s, bool ensure_ascii, std::string& out) {
  if (!ensure_ascii) {  // json.dumps(ensure_ascii=False) escapes exactly what JSON requires
    out += json::Quote(s);
    return;
  }
  out += '"';
  char buf[16];
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      utf8proc_int32_t cp = 0;
      utf8proc_ssize_t len = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                                              static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
      if (len <= 0) {
        cp = 0xfffd;
        len = 1;
      }
      if (cp >= 0x10000) {
        const int32_t v = cp - 0x10000;
        std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", 0xd800 + (v >> 10), 0xdc00 + (v & 0x3ff));
      } else {
        std::snprintf(buf, sizeof(buf), "\\u%04x", cp);
      }
      out += buf;
      i += len;
      continue;
    }
    ++i;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

struct JsonWriter {
  int indent;
  bool sort_keys;
  bool ensure_ascii;
  std::string item_sep, key_sep;
  std::string out;

  void Newline(int depth) {
    out += '\n';
    out.append(static_cast<size_t>(indent) * depth, ' ');
  }

  absl::Status Write(const Value& v, int depth) {
    if (depth > 512) return absl::InvalidArgumentError("tojson: nesting deeper than 512");
    switch (v.kind()) {
      case Value::Kind::kNone: out += "null"; return absl::OkStatus();
      case Value::Kind::kBool: out += v.bool_value() ? "true" : "false"; return absl::OkStatus();
      case Value::Kind::kInt: out += std::to_string(v.int_value()); return absl::OkStatus();
      case Value::Kind::kFloat: {
        const double d = v.number();
        out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d < 0 ? "-Infinity" : "Infinity") : FloatRepr(d);
        return absl::OkStatus();
      }
      case Value::Kind::kString: JsonString(v.str(), ensure_ascii, out); return absl::OkStatus();
      case Value::Kind::kList: {
        if (v.list().empty()) {
          out += "[]";
          return absl::OkStatus();
        }
        out += '[';
        for (size_t i = 0; i < v.list().size(); ++i) {
          if (i) out += item_sep;
          if (indent >= 0) Newline(depth + 1);
          RRT_RETURN_IF_ERROR(Write(v.list()[i], depth + 1));
        }
        if (indent >= 0) Newline(depth);
        out += ']';
        return absl::OkStatus();
      }
      case Value::Kind::kDict:
      case Value::Kind::kNamespace: {
        if (v.entries().empty()) {
          out += "{}";
          return absl::OkStatus();
        }
        std::vector<const std::pair<std::string, Value>*> items;
        for (const auto& e : v.entries()) items.push_back(&e);
        if (sort_keys) {
          std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
        }
        out += '{';
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) out += item_sep;
          if (indent >= 0) Newline(depth + 1);
          JsonString(items[i]->first, ensure_ascii, out);
          out += key_sep;
          RRT_RETURN_IF_ERROR(Write(items[i]->second, depth + 1));
        }
        if (indent >= 0) Newline(depth);
        out += '}';
        return absl::OkStatus();
      }
      default:
        return absl::InvalidArgumentError(
            StrCat("tojson: Object of type ", v.TypeName(), " is not JSON serializable"));
    }
  }
};

}  // namespace

absl::StatusOr<std::string> ToJsonWith(const Value& v, int indent, bool sort_keys, bool ensure_ascii,
                                       std::string item_sep, std::string key_sep) {
  JsonWriter w{indent, sort_keys, ensure_ascii, std::move(item_sep), std::move(key_sep), {}};
  RRT_RETURN_IF_ERROR(w.Write(v, 0));
  return std::move(w.out);
}

absl::StatusOr<std::string> ToJson(const Value& v, int indent, bool sort_keys) {
  return ToJsonWith(v, indent, sort_keys, false, indent >= 0 ? "," : ", ", ": ");
}

bool Equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.number() == b.number();
    return a.int_value() == b.int_value();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone: return true;
    case Value::Kind::kString: return a.str() == b.str();
    case Value::Kind::kList: {
      if (a.is_tuple() != b.is_tuple() || a.list().size() != b.list().size()) return false;
      for (size_t i = 0; i < a.list().size(); ++i) {
        if (!Equal(a.list()[i], b.list()[i])) return false;
      }
      return true;
    }
    case Value::Kind::kDict: {
      if (a.entries().size() != b.entries().size()) return false;
      for (const auto& [k, v] : a.entries()) {
        const Value* other = b.Find(k);
        if (other == nullptr || !Equal(v, *other)) return false;
      }
      return true;
    }
    case Value::Kind::kNamespace: return &a.entries() == &b.entries();  // identity
    case Value::Kind::kFunction: return &a.function() == &b.function();
    default: return a.int_value() == b.int_value();
  }
}

absl::StatusOr<bool> Less(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.number() < b.number();
    return a.int_value() < b.int_value();
  }
  if (a.is_string() && b.is_string()) return a.str() < b.str();  // UTF-8 order is code point order
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    const size_t n = std::min(a.list().size(), b.list().size());
    for (size_t i = 0; i < n; ++i) {
      if (!Equal(a.list()[i], b.list()[i])) return Less(a.list()[i], b.list()[i]);
    }
    return a.list().size() < b.list().size();
  }
  return absl::InvalidArgumentError(
      StrCat("'<' not supported between instances of '", a.TypeName(), "' and '", b.TypeName(), "'"));
}

namespace {

absl::StatusOr<Value> FromElement(const simdjson::dom::element& e, int depth) {
  if (depth > 256) return absl::InvalidArgumentError("JSON nested deeper than 256 levels");
  switch (e.type()) {
    case simdjson::dom::element_type::ARRAY: {
      List items;
      simdjson::dom::array array;
      if (e.get_array().get(array) != simdjson::SUCCESS) return absl::InvalidArgumentError("bad JSON array");
      for (const simdjson::dom::element& item : array) {
        RRT_ASSIGN_OR_RETURN(Value v, FromElement(item, depth + 1));
        items.push_back(std::move(v));
      }
      return Value::MakeList(std::move(items));
    }
    case simdjson::dom::element_type::OBJECT: {
      Entries entries;
      simdjson::dom::object object;
      if (e.get_object().get(object) != simdjson::SUCCESS) return absl::InvalidArgumentError("bad JSON object");
      for (const auto field : object) {
        RRT_ASSIGN_OR_RETURN(Value v, FromElement(field.value, depth + 1));
        const std::string key(field.key);
        // Python's json keeps the last of duplicate keys, in the first one's place.
        auto it = std::find_if(entries.begin(), entries.end(), [&](const auto& p) { return p.first == key; });
        if (it != entries.end()) {
          it->second = std::move(v);
        } else {
          entries.emplace_back(key, std::move(v));
        }
      }
      return Value::MakeDict(std::move(entries));
    }
    case simdjson::dom::element_type::INT64: return Value::Int(e.get_int64().value_unsafe());
    case simdjson::dom::element_type::UINT64:
      return Value::Float(static_cast<double>(e.get_uint64().value_unsafe()));
    case simdjson::dom::element_type::DOUBLE: return Value::Float(e.get_double().value_unsafe());
    case simdjson::dom::element_type::STRING:
      return Value::String(std::string(e.get_string().value_unsafe()), /*trusted=*/false);
    case simdjson::dom::element_type::BOOL: return Value::Bool(e.get_bool().value_unsafe());
    case simdjson::dom::element_type::NULL_VALUE: return Value::None();
  }
  return absl::InvalidArgumentError("unknown JSON element");
}

}  // namespace

absl::StatusOr<Value> FromJson(std::string_view text, std::string_view what) {
  simdjson::dom::parser parser;
  const std::string relaxed = json::RelaxBigIntegers(text);
  RRT_ASSIGN_OR_RETURN(simdjson::dom::element root, json::Parse(parser, relaxed, what));
  auto v = FromElement(root, 0);
  if (!v.ok()) return absl::InvalidArgumentError(StrCat(what, ": ", v.status().message()));
  return v;
}

}  // namespace reasonrt::chat
