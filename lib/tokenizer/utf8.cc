#include "lib/tokenizer/utf8.h"

#include "reasonrt/tokenizer.h"

namespace reasonrt::utf8 {

size_t ValidCharLength(std::string_view s, size_t i, bool* incomplete) {
  if (incomplete) *incomplete = false;
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[i + k]); };
  const uint8_t lead = b(0);
  if (lead < 0x80) return 1;
  size_t len;
  uint8_t lo = 0x80, hi = 0xbf;  // allowed range of the second byte
  if (lead >= 0xc2 && lead <= 0xdf) {
    len = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    len = 3;
    if (lead == 0xe0) lo = 0xa0;  // no overlongs
    if (lead == 0xed) hi = 0x9f;  // no surrogates
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    len = 4;
    if (lead == 0xf0) lo = 0x90;
    if (lead == 0xf4) hi = 0x8f;  // nothing past U+10FFFF
  } else {
    return 0;
  }
  for (size_t k = 1; k < len; ++k) {
    if (i + k >= s.size()) {
      if (incomplete) *incomplete = true;
      return 0;
    }
    const uint8_t c = b(k);
    const uint8_t min = k == 1 ? lo : 0x80, max = k == 1 ? hi : 0xbf;
    if (c < min || c > max) return 0;
  }
  return len;
}

size_t FirstInvalid(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<uint8_t>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t n = ValidCharLength(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

void Append(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

uint32_t Next(std::string_view s, size_t& i) {
  const uint8_t lead = static_cast<uint8_t>(s[i]);
  if (lead < 0x80) {
    ++i;
    return lead;
  }
  const size_t len = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
  uint32_t cp = lead & (0x7f >> len);
  for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3f);
  i += len;
  return cp;
}

}  // namespace reasonrt::utf8

namespace reasonrt {

std::string RepairUtf8(std::string_view bytes, bool keep_incomplete_tail, std::string* tail) {
  std::string out;
  out.reserve(bytes.size());
  if (tail != nullptr) tail->clear();
  size_t i = 0;
  while (i < bytes.size()) {
    bool incomplete = false;
    const size_t n = utf8::ValidCharLength(bytes, i, &incomplete);
    if (n > 0) {
      out.append(bytes.substr(i, n));
      i += n;
      continue;
    }
    if (incomplete) {  // a valid start of a character cut off by the end of the input
      if (keep_incomplete_tail) {
        if (tail != nullptr) *tail = std::string(bytes.substr(i));
      } else {
        out += "\xEF\xBF\xBD";
      }
      return out;
    }
    // One U+FFFD per maximal subpart: the longest run from i that is a valid prefix.
    size_t prefix = 1;
    for (size_t k = 2; k <= 4 && i + k <= bytes.size(); ++k) {
      bool truncated = false;
      utf8::ValidCharLength(bytes.substr(0, i + k), i, &truncated);
      if (!truncated) break;
      prefix = k;
    }
    out += "\xEF\xBF\xBD";
    i += prefix;
  }
  return out;
}

}  // namespace reasonrt
