#include "lib/tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "lib/core/strings.h"
#include "lib/tokenizer/utf8.h"

namespace reasonrt {

struct Regex::Impl {
  pcre2_code* code = nullptr;
  bool jit = false;
};

Regex::~Regex() {
  if (impl_ && impl_->code) pcre2_code_free(impl_->code);
}

absl::StatusOr<std::unique_ptr<Regex>> Regex::Compile(const std::string& pattern) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    return absl::InvalidArgumentError(StrCat("regex '", pattern, "' does not compile at offset ",
                                             offset, ": ", reinterpret_cast<const char*>(message)));
  }
  auto re = std::unique_ptr<Regex>(new Regex());
  re->impl_ = std::make_unique<Impl>();
  re->impl_->code = code;
  re->impl_->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  return re;
}

void Regex::ForEachMatch(std::string_view text,
                         const std::function<void(size_t, size_t)>& on_match) const {
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  while (start <= text.size()) {
    const int rc = impl_->jit
                       ? pcre2_jit_match(impl_->code, subject, text.size(), start, 0, md, nullptr)
                       : pcre2_match(impl_->code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc < 0) break;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t b = ov[0], e = ov[1];
    if (e > b) {
      on_match(b, e);
      start = e;
    } else {  // an empty match: step over one character
      if (b >= text.size()) break;
      size_t next = b;
      utf8::Next(text, next);
      start = next;
    }
  }
  pcre2_match_data_free(md);
}

}  // namespace reasonrt
