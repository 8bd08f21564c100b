// lib/tokenizer/regex.h: PCRE2 (UTF + Unicode properties, JIT) for pre-tokenizer splits.
#ifndef REASONRT_LIB_TOKENIZER_REGEX_H_
#define REASONRT_LIB_TOKENIZER_REGEX_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace reasonrt {

class Regex {
 public:
  // InvalidArgument naming the pattern and PCRE2's message at the offset it failed.
  static absl::StatusOr<std::unique_ptr<Regex>> Compile(const std::string& pattern);
  ~Regex();

  // Calls on_match(begin, end) for each non-overlapping match in `text` (valid UTF-8),
  // left to right. Thread-safe.
  void ForEachMatch(std::string_view text, const std::function<void(size_t, size_t)>& on_match) const;

 private:
  Regex() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace reasonrt

#endif  // REASONRT_LIB_TOKENIZER_REGEX_H_
