// lib/tokenizer/utf8.h: UTF-8 validation and code point iteration.
#ifndef REASONRT_LIB_TOKENIZER_UTF8_H_
#define REASONRT_LIB_TOKENIZER_UTF8_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace reasonrt::utf8 {

// Length of the valid UTF-8 character starting at s[i], or 0 if the bytes there are not
// one (overlong forms, surrogates and code points past U+10FFFF are invalid). If the
// bytes are a valid but truncated prefix of a character, *incomplete is set.
size_t ValidCharLength(std::string_view s, size_t i, bool* incomplete = nullptr);

// Offset of the first invalid byte, or npos when all of s is valid UTF-8.
size_t FirstInvalid(std::string_view s);

// Appends code point cp as UTF-8.
void Append(uint32_t cp, std::string& out);

// Decodes the (valid) character at s[i] and advances i past it.
uint32_t Next(std::string_view s, size_t& i);

}  // namespace reasonrt::utf8

#endif  // REASONRT_LIB_TOKENIZER_UTF8_H_
