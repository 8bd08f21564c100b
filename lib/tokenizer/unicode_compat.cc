#include "lib/tokenizer/unicode_compat.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <map>
#include <utility>
#include <vector>

#include "lib/tokenizer/utf8.h"

namespace reasonrt {
namespace {

struct Tables {
  std::vector<bool> unknown_to_pcre2;                // by code point
  std::map<std::pair<int, size_t>, uint32_t> stand_in;  // (category, utf8 length) -> code point

  Tables() : unknown_to_pcre2(0x110000, false) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    const char pattern[] = "^\\p{Cn}$";
    pcre2_code* cn = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
    if (cn == nullptr) return;
    const bool jit = pcre2_jit_compile(cn, PCRE2_JIT_COMPLETE) == 0;
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(cn, nullptr);
    std::string buf;
    for (uint32_t cp = 0x80; cp < 0x110000; ++cp) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const int cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
      if (cat == UTF8PROC_CATEGORY_CN || cat == UTF8PROC_CATEGORY_CO) continue;
      buf.clear();
      utf8::Append(cp, buf);
      const auto* s = reinterpret_cast<PCRE2_SPTR>(buf.data());
      const int rc = jit ? pcre2_jit_match(cn, s, buf.size(), 0, 0, md, nullptr)
                         : pcre2_match(cn, s, buf.size(), 0, 0, md, nullptr);
      if (rc >= 0) {
        unknown_to_pcre2[cp] = true;
        continue;
      }
      // A known character of this category and length: outside the literal ranges the
      // R1-family pre-tokenizers name (CJK ideographs, kana).
      const bool literal = (cp >= 0x3040 && cp <= 0x30ff) || (cp >= 0x4e00 && cp <= 0x9fa5);
      if (!literal) stand_in.emplace(std::make_pair(cat, buf.size()), cp);
    }
    pcre2_match_data_free(md);
    pcre2_code_free(cn);
  }
};

const Tables& GetTables() {
  static const Tables* tables = new Tables();
  return *tables;
}

}  // namespace

bool RegexStandIns(std::string_view text, std::string* out) {
  // Only characters of 3 or 4 bytes were assigned after Unicode 14.
  bool any_wide = false;
  for (char c : text) {
    if (static_cast<uint8_t>(c) >= 0xe0) {
      any_wide = true;
      break;
    }
  }
  if (!any_wide) return false;
  const Tables& t = GetTables();
  bool changed = false;
  size_t i = 0;
  while (i < text.size()) {
    const size_t begin = i;
    const uint32_t cp = utf8::Next(text, i);
    if (cp < 0x800 || !t.unknown_to_pcre2[cp]) continue;
    auto it = t.stand_in.find({utf8proc_category(static_cast<utf8proc_int32_t>(cp)), i - begin});
    if (it == t.stand_in.end()) continue;
    if (!changed) {
      *out = std::string(text);
      changed = true;
    }
    std::string repl;
    utf8::Append(it->second, repl);
    out->replace(begin, repl.size(), repl);
  }
  return changed;
}

}  // namespace reasonrt
