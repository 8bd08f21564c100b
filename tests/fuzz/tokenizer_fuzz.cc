// Fuzz target: any bytes as tokenizer.json. Must load and then encode/decode without
// crashing, or return an error.
#include <cstdint>
#include <string_view>

#include "reasonrt/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto tok = reasonrt::Tokenizer::FromJson(text, "", "fuzz");
  if (!tok.ok()) return 0;
  reasonrt::EncodeOptions options;
  for (bool special : {false, true}) {
    options.parse_special = special;
    options.add_special_tokens = special;
    auto ids = (*tok)->Encode("ab c <s>\xc3\xa9 12345 \xf0\x9f\xa4\x96", options);
    if (ids.ok()) (void)(*tok)->Decode(*ids, {});
  }
  return 0;
}
