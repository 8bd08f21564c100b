// lib/io/json.h: small helpers over simdjson's DOM for reading and writing JSON files.
#ifndef REASONRT_LIB_IO_JSON_H_
#define REASONRT_LIB_IO_JSON_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "simdjson.h"

namespace reasonrt::json {

// Parses `text` into `parser`'s document. Errors name `source` (a file name).
absl::StatusOr<simdjson::dom::element> Parse(simdjson::dom::parser& parser, std::string_view text,
                                             std::string_view source);

// Python writes integers of any size (model_max_length = 10^30 in some tokenizer
// configs), which simdjson refuses; this returns `text` with every integer literal of
// more than 18 digits outside strings turned into a float ("...0.0").
std::string RelaxBigIntegers(std::string_view text);

// "object", "array", "string", "integer", "number", "boolean" or "null".
std::string_view TypeName(const simdjson::dom::element& e);

// A JSON string literal, quotes included, with the escapes JSON requires.
std::string Quote(std::string_view s);

// Reads typed keys of one JSON object; every error names the source and the key.
// A key that is present with the JSON value null counts as absent.
class ObjectReader {
 public:
  ObjectReader(simdjson::dom::object object, std::string source)
      : object_(object), source_(std::move(source)) {}

  bool Has(std::string_view key) const;
  absl::StatusOr<std::optional<int64_t>> Int(std::string_view key) const;
  absl::StatusOr<std::optional<double>> Double(std::string_view key) const;
  absl::StatusOr<std::optional<bool>> Bool(std::string_view key) const;
  absl::StatusOr<std::optional<std::string>> String(std::string_view key) const;
  absl::StatusOr<std::optional<simdjson::dom::object>> Object(std::string_view key) const;

  // The same with a value required: InvalidArgument "<source>: missing key 'k'".
  absl::StatusOr<int64_t> RequiredInt(std::string_view key) const;
  absl::StatusOr<double> RequiredDouble(std::string_view key) const;

  absl::Status Error(std::string_view key, std::string_view problem) const;
  const std::string& source() const { return source_; }

 private:
  std::optional<simdjson::dom::element> Find(std::string_view key) const;
  absl::Status WrongType(std::string_view key, std::string_view expected,
                         const simdjson::dom::element& got) const;
  simdjson::dom::object object_;
  std::string source_;
};

}  // namespace reasonrt::json

#endif  // REASONRT_LIB_IO_JSON_H_
