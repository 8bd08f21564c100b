// lib/tokenizer/unicode_compat.h: PCRE2 10.42 knows Unicode 14; Hugging Face's regex
// engine (Oniguruma) and the reference tokenizers know 15. Characters assigned since then
// (new emoji, CJK extension H, ...) would fall out of \p{L}, \p{S}, ... and split words
// differently. Before a pre-tokenizer regex runs, such characters are replaced by
// stand-ins PCRE2 knows, of the same general category (utf8proc's Unicode 15 tables) and
// the same UTF-8 length, so match offsets stay valid for the original text.
#ifndef REASONRT_LIB_TOKENIZER_UNICODE_COMPAT_H_
#define REASONRT_LIB_TOKENIZER_UNICODE_COMPAT_H_

#include <string>
#include <string_view>

namespace reasonrt {

// Returns true and fills *out when `text` (valid UTF-8) has characters to stand in for.
bool RegexStandIns(std::string_view text, std::string* out);

}  // namespace reasonrt

#endif  // REASONRT_LIB_TOKENIZER_UNICODE_COMPAT_H_
