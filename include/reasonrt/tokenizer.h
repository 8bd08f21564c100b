// reasonrt/tokenizer.h: Hugging Face byte-level BPE tokenizers (tokenizer.json), id-exact.
//
// Basic usage:
//
//   absl::StatusOr<std::unique_ptr<reasonrt::Tokenizer>> tok =
//       reasonrt::Tokenizer::Load("/models/DeepSeek-R1-Distill-Qwen-1.5B");
//   absl::StatusOr<std::vector<int32_t>> ids = (*tok)->Encode("Hello, world", {});
//   absl::StatusOr<std::string> text = (*tok)->Decode(*ids, {});
//
//   // Streaming: text comes out only as whole UTF-8 characters.
//   reasonrt::Tokenizer::StreamDecoder stream(**tok);
//   for (int32_t id : generated) emit(stream.Add(id));
//   emit(stream.Finish());
//
// Load reads tokenizer.json (and tokenizer_config.json beside it, for add_bos_token and
// the bos/eos tokens) and supports exactly the components the R1 family's files use: BPE
// (byte-level, merges as strings or pairs, ignore_merges, byte_fallback), NFC and Sequence
// normalizers, Split (regex, Isolated) / ByteLevel / Sequence pre-tokenizers, ByteLevel
// decoders, ByteLevel / TemplateProcessing / Sequence post-processors. Anything else is
// refused with an error naming the component.
//
// Special tokens: by default, text that spells a special or added token ("<｜User｜>",
// "</think>", "<|im_start|>") is tokenized as plain text; control tokens come from the
// chat template (EncodeOptions::parse_special) or from ids the caller adds.
//
// A Tokenizer is immutable and safe to use from many threads at once.
#ifndef REASONRT_TOKENIZER_H_
#define REASONRT_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "reasonrt/export.h"

namespace reasonrt {

struct ByteRange {
  size_t begin = 0, end = 0;  // [begin, end)
};

struct EncodeOptions {
  // Recognize added/special tokens written in the text (as Hugging Face does by default).
  bool parse_special = false;
  // With parse_special: if not empty, a special token is recognised only where it lies
  // wholly inside one of these sorted, disjoint byte ranges of the text (the parts of a
  // chat prompt that the template wrote; see reasonrt/chat.h). Not owned.
  absl::Span<const ByteRange> special_ranges;
  // Apply the post-processor and add_bos_token (the BOS of Llama 3 and DeepSeek).
  bool add_special_tokens = false;
};

struct DecodeOptions {
  bool skip_special_tokens = false;
};

class RRT_API Tokenizer {
 public:
  // `path`: a model folder or a tokenizer.json file. Errors name the file and component.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(const std::string& path);
  // From the JSON texts (tokenizer_config may be empty).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJson(std::string_view tokenizer_json,
                                                             std::string_view tokenizer_config_json,
                                                             std::string_view source = "tokenizer.json");
  ~Tokenizer();

  // InvalidArgument for text that is not valid UTF-8 (naming the byte offset).
  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text, const EncodeOptions& options) const;

  // The UTF-8 text of `ids`; bytes that do not form valid UTF-8 (a token boundary inside
  // a character) become U+FFFD, as Hugging Face does. OutOfRange for an unknown id.
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids, const DecodeOptions& options) const;

  // Raw bytes of one token (may be part of a UTF-8 character). OutOfRange for unknown ids.
  absl::StatusOr<std::string> TokenBytes(int32_t id) const;

  // The id of a token spelled as in the vocabulary or added tokens, if any.
  std::optional<int32_t> TokenId(std::string_view token) const;

  // One more than the largest id (base vocabulary and added tokens).
  int32_t vocab_size() const;
  bool IsSpecial(int32_t id) const;
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;

  // Incremental decoding of generated ids: Add returns the text that became complete.
  // The concatenation of every Add and Finish equals Decode of all ids.
  class RRT_API StreamDecoder {
   public:
    explicit StreamDecoder(const Tokenizer& tokenizer, DecodeOptions options = {});
    // OutOfRange for an unknown id (nothing is consumed then).
    absl::StatusOr<std::string> Add(int32_t id);
    // Whatever is left: an incomplete character at the end becomes U+FFFD.
    std::string Finish();

   private:
    const Tokenizer& tokenizer_;
    DecodeOptions options_;
    std::string pending_;  // bytes not yet emitted (an incomplete character)
  };

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Replaces invalid UTF-8 in `bytes` by U+FFFD (one per maximal invalid subpart). If
// `keep_incomplete_tail`, an incomplete character at the very end is left out of the
// result and its bytes are returned in *tail instead.
RRT_API std::string RepairUtf8(std::string_view bytes, bool keep_incomplete_tail, std::string* tail);

}  // namespace reasonrt

#endif  // REASONRT_TOKENIZER_H_
