#include "lib/io/json.h"

#include <cmath>

#include "lib/core/strings.h"
#include "absl/strings/str_format.h"

namespace reasonrt::json {

absl::StatusOr<simdjson::dom::element> Parse(simdjson::dom::parser& parser, std::string_view text,
                                             std::string_view source) {
  simdjson::dom::element root;
  const auto error = parser.parse(text.data(), text.size(), /*realloc_if_needed=*/true).get(root);
  if (error) {
    return absl::InvalidArgumentError(
        StrCat(source, ": malformed JSON: ", simdjson::error_message(error)));
  }
  return root;
}

std::string RelaxBigIntegers(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < text.size()) {
        out += text[++i];
      } else if (c == '"') {
        in_string = false;
      }
      ++i;
      continue;
    }
    if (c == '"') {
      in_string = true;
      out += c;
      ++i;
      continue;
    }
    if (c >= '0' && c <= '9') {
      size_t j = i;
      while (j < text.size() && text[j] >= '0' && text[j] <= '9') ++j;
      out.append(text.substr(i, j - i));
      const bool fraction = j < text.size() && (text[j] == '.' || text[j] == 'e' || text[j] == 'E');
      if (j - i > 18 && !fraction) out += ".0";
      i = j;
      continue;
    }
    out += c;
    ++i;
  }
  return out;
}

std::string_view TypeName(const simdjson::dom::element& e) {
  switch (e.type()) {
    case simdjson::dom::element_type::ARRAY: return "array";
    case simdjson::dom::element_type::OBJECT: return "object";
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64: return "integer";
    case simdjson::dom::element_type::DOUBLE: return "number";
    case simdjson::dom::element_type::STRING: return "string";
    case simdjson::dom::element_type::BOOL: return "boolean";
    case simdjson::dom::element_type::NULL_VALUE: return "null";
  }
  return "unknown";
}

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
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
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

std::optional<simdjson::dom::element> ObjectReader::Find(std::string_view key) const {
  simdjson::dom::element e;
  if (object_.at_key(key).get(e) != simdjson::SUCCESS) return std::nullopt;
  if (e.is_null()) return std::nullopt;
  return e;
}

bool ObjectReader::Has(std::string_view key) const { return Find(key).has_value(); }

absl::Status ObjectReader::Error(std::string_view key, std::string_view problem) const {
  return absl::InvalidArgumentError(StrCat(source_, ": key '", key, "' ", problem));
}

absl::Status ObjectReader::WrongType(std::string_view key, std::string_view expected,
                                     const simdjson::dom::element& got) const {
  return Error(key, StrCat("must be ", expected, ", got ", TypeName(got)));
}

absl::StatusOr<std::optional<int64_t>> ObjectReader::Int(std::string_view key) const {
  auto e = Find(key);
  if (!e) return std::nullopt;
  int64_t i;
  if (e->get_int64().get(i) == simdjson::SUCCESS) return i;
  double d;
  if (e->get_double().get(d) == simdjson::SUCCESS && std::isfinite(d) && d == std::floor(d) &&
      std::fabs(d) < 9.0e15) {
    return static_cast<int64_t>(d);
  }
  return WrongType(key, "an integer", *e);
}

absl::StatusOr<std::optional<double>> ObjectReader::Double(std::string_view key) const {
  auto e = Find(key);
  if (!e) return std::nullopt;
  double d;
  if (e->is_number() && e->get_double().get(d) == simdjson::SUCCESS) return d;
  if (e->is_int64()) return static_cast<double>(int64_t(*e));
  if (e->is_uint64()) return static_cast<double>(uint64_t(*e));
  return WrongType(key, "a number", *e);
}

absl::StatusOr<std::optional<bool>> ObjectReader::Bool(std::string_view key) const {
  auto e = Find(key);
  if (!e) return std::nullopt;
  bool b;
  if (e->get_bool().get(b) == simdjson::SUCCESS) return b;
  return WrongType(key, "a boolean", *e);
}

absl::StatusOr<std::optional<std::string>> ObjectReader::String(std::string_view key) const {
  auto e = Find(key);
  if (!e) return std::nullopt;
  std::string_view s;
  if (e->get_string().get(s) == simdjson::SUCCESS) return std::string(s);
  return WrongType(key, "a string", *e);
}

absl::StatusOr<std::optional<simdjson::dom::object>> ObjectReader::Object(
    std::string_view key) const {
  auto e = Find(key);
  if (!e) return std::nullopt;
  simdjson::dom::object o;
  if (e->get_object().get(o) == simdjson::SUCCESS) return o;
  return WrongType(key, "an object", *e);
}

absl::StatusOr<int64_t> ObjectReader::RequiredInt(std::string_view key) const {
  auto v = Int(key);
  if (!v.ok()) return v.status();
  if (!v->has_value()) return Error(key, "is missing");
  return **v;
}

absl::StatusOr<double> ObjectReader::RequiredDouble(std::string_view key) const {
  auto v = Double(key);
  if (!v.ok()) return v.status();
  if (!v->has_value()) return Error(key, "is missing");
  return **v;
}

}  // namespace reasonrt::json
