// tokenizer.json loading and the encode / decode pipeline.
#include "reasonrt/tokenizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "absl/container/flat_hash_map.h"
#include "lib/core/file.h"
#include "lib/core/status_macros.h"
#include "lib/core/strings.h"
#include "lib/io/json.h"
#include "lib/tokenizer/bpe.h"
#include "lib/tokenizer/regex.h"
#include "lib/tokenizer/unicode_compat.h"
#include "lib/tokenizer/utf8.h"

namespace reasonrt {
namespace {

constexpr size_t kMaxTokenizerBytes = 256u << 20;

// GPT-2's byte-level alphabet: printable bytes stand for themselves, the rest for 256+k.
struct ByteLevelTables {
  std::string byte_to_text[256];
  int16_t cp_to_byte[324];  // the alphabet's code points are all below 324; -1 elsewhere
  ByteLevelTables() {
    std::fill(std::begin(cp_to_byte), std::end(cp_to_byte), int16_t{-1});
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      const uint32_t cp = printable ? b : next++;
      utf8::Append(cp, byte_to_text[b]);
      cp_to_byte[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteLevelTables& Tables() {
  static const ByteLevelTables* t = new ByteLevelTables();
  return *t;
}

// The pattern ByteLevel uses when use_regex is on (GPT-2's).
constexpr char kGpt2Pattern[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct PreTokenizerStep {
  enum Kind { kSplit, kByteLevel } kind;
  std::unique_ptr<Regex> regex;  // kSplit, or kByteLevel with use_regex
  bool add_prefix_space = false;
};

struct AddedToken {
  std::string content;
  int32_t id;
  bool special;
  bool lstrip, rstrip;
};

}  // namespace

struct Tokenizer::Impl {
  std::string source;
  bool nfc = false;
  std::vector<PreTokenizerStep> pre;
  bool byte_level = false;  // a ByteLevel pre-tokenizer maps bytes to the GPT-2 alphabet
  Bpe bpe;
  std::vector<AddedToken> added;               // longest content first
  std::vector<std::vector<const AddedToken*>> added_by_first_byte;  // 256 lists, longest first
  absl::flat_hash_map<std::string, int32_t> added_by_content;
  std::vector<std::string> token_bytes;        // id -> raw bytes ("" for holes)
  std::vector<uint8_t> id_known, id_special;
  std::vector<int32_t> template_prefix, template_suffix;  // post-processor around $A
  std::optional<int32_t> bos, eos;
  bool add_bos = false, add_eos = false;

  absl::Status EncodeSegment(std::string_view text, std::vector<int32_t>& out) const;
  // OutOfRange for ids that name no token.
  absl::Status CheckId(int32_t id) const;
};

namespace {

absl::Status Unsupported(std::string_view source, std::string_view component, std::string_view type) {
  return absl::UnimplementedError(StrCat(source, ": ", component, " type '", type,
                                         "' is not supported by reasonrt"));
}

// Reads an optional boolean field; leaves *out as it is when absent or not a boolean.
void ReadBool(const simdjson::dom::element& e, const char* key, bool* out) {
  bool v;
  if (e[key].get_bool().get(v) == simdjson::SUCCESS) *out = v;
}

std::string TypeOf(const simdjson::dom::element& e) {
  std::string_view t;
  if (e["type"].get_string().get(t) != simdjson::SUCCESS) return "";
  return std::string(t);
}

// `e` is {"type": "Sequence", list_key: [...]}: parses each entry with `parse`.
absl::Status ParseSequence(Tokenizer::Impl& impl, const simdjson::dom::element& e,
                           const char* list_key, std::string_view component,
                           absl::Status (*parse)(Tokenizer::Impl&, const simdjson::dom::element&)) {
  simdjson::dom::array list;
  if (e[list_key].get_array().get(list) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(StrCat(impl.source, ": ", component, " Sequence without '", list_key, "'"));
  }
  for (simdjson::dom::element item : list) RRT_RETURN_IF_ERROR(parse(impl, item));
  return absl::OkStatus();
}

absl::Status ParseNormalizer(Tokenizer::Impl& impl, const simdjson::dom::element& n) {
  if (n.is_null()) return absl::OkStatus();
  const std::string type = TypeOf(n);
  if (type == "NFC") {
    impl.nfc = true;
    return absl::OkStatus();
  }
  if (type == "Sequence") return ParseSequence(impl, n, "normalizers", "normalizer", ParseNormalizer);
  return Unsupported(impl.source, "normalizer", type);
}

absl::Status ParsePreTokenizer(Tokenizer::Impl& impl, const simdjson::dom::element& p) {
  if (p.is_null()) return absl::OkStatus();
  const std::string type = TypeOf(p);
  if (type == "Sequence") return ParseSequence(impl, p, "pretokenizers", "pre_tokenizer", ParsePreTokenizer);
  if (impl.byte_level) {
    return absl::UnimplementedError(StrCat(impl.source, ": pre_tokenizer '", type, "' after ByteLevel is not supported"));
  }
  if (type == "Split") {
    std::string_view behavior, pattern;
    bool invert = false;
    ReadBool(p, "invert", &invert);
    if (p["behavior"].get_string().get(behavior) != simdjson::SUCCESS || behavior != "Isolated" || invert) {
      return absl::UnimplementedError(StrCat(impl.source, ": Split pre_tokenizer with behavior '",
                                             behavior, "'", invert ? " inverted" : "",
                                             " is not supported (Isolated)"));
    }
    if (p["pattern"]["Regex"].get_string().get(pattern) != simdjson::SUCCESS) {
      return absl::UnimplementedError(StrCat(impl.source, ": Split pre_tokenizer needs a Regex pattern"));
    }
    PreTokenizerStep step{PreTokenizerStep::kSplit, nullptr, false};
    RRT_ASSIGN_OR_RETURN(step.regex, Regex::Compile(std::string(pattern)));
    impl.pre.push_back(std::move(step));
    return absl::OkStatus();
  }
  if (type == "ByteLevel") {
    bool add_prefix_space = false, use_regex = true;
    ReadBool(p, "add_prefix_space", &add_prefix_space);
    ReadBool(p, "use_regex", &use_regex);
    PreTokenizerStep step{PreTokenizerStep::kByteLevel, nullptr, add_prefix_space};
    if (use_regex) {
      RRT_ASSIGN_OR_RETURN(step.regex, Regex::Compile(kGpt2Pattern));
    }
    impl.pre.push_back(std::move(step));
    impl.byte_level = true;
    return absl::OkStatus();
  }
  return Unsupported(impl.source, "pre_tokenizer", type);
}

absl::Status ParseDecoder(Tokenizer::Impl& impl, const simdjson::dom::element& d) {
  if (d.is_null()) return absl::OkStatus();
  const std::string type = TypeOf(d);
  if (type == "ByteLevel") return absl::OkStatus();
  if (type == "Sequence") return ParseSequence(impl, d, "decoders", "decoder", ParseDecoder);
  return Unsupported(impl.source, "decoder", type);
}

absl::Status ParsePostProcessor(Tokenizer::Impl& impl, const simdjson::dom::element& p) {
  if (p.is_null()) return absl::OkStatus();
  const std::string type = TypeOf(p);
  if (type == "ByteLevel") return absl::OkStatus();  // offsets only
  if (type == "Sequence") return ParseSequence(impl, p, "processors", "post_processor", ParsePostProcessor);
  if (type == "TemplateProcessing") {
    simdjson::dom::array single;
    simdjson::dom::object specials;
    if (p["single"].get_array().get(single) != simdjson::SUCCESS ||
        p["special_tokens"].get_object().get(specials) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError(StrCat(impl.source, ": TemplateProcessing needs 'single' and 'special_tokens'"));
    }
    bool seen_sequence = false;
    for (simdjson::dom::element piece : single) {
      std::string_view name;
      if (piece["Sequence"]["id"].get_string().get(name) == simdjson::SUCCESS) {
        if (name != "A") return absl::InvalidArgumentError(StrCat(impl.source, ": TemplateProcessing single uses sequence '", name, "'"));
        seen_sequence = true;
        continue;
      }
      if (piece["SpecialToken"]["id"].get_string().get(name) != simdjson::SUCCESS) {
        return absl::InvalidArgumentError(StrCat(impl.source, ": TemplateProcessing piece is neither Sequence nor SpecialToken"));
      }
      simdjson::dom::array ids;
      if (specials[name]["ids"].get_array().get(ids) != simdjson::SUCCESS) {
        return absl::InvalidArgumentError(StrCat(impl.source, ": TemplateProcessing special token '", name, "' has no ids"));
      }
      for (simdjson::dom::element id : ids) {
        int64_t v;
        if (id.get_int64().get(v) != simdjson::SUCCESS) return absl::InvalidArgumentError(StrCat(impl.source, ": bad template id"));
        (seen_sequence ? impl.template_suffix : impl.template_prefix).push_back(static_cast<int32_t>(v));
      }
    }
    return absl::OkStatus();
  }
  return Unsupported(impl.source, "post_processor", type);
}

absl::Status ParseModel(Tokenizer::Impl& impl, const simdjson::dom::element& m) {
  const std::string type = TypeOf(m);
  if (type != "BPE") return Unsupported(impl.source, "model", type);
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    std::string_view v;
    if (m[key].get_string().get(v) == simdjson::SUCCESS && !v.empty()) {
      return absl::UnimplementedError(StrCat(impl.source, ": BPE ", key, " '", v, "' is not supported"));
    }
  }
  double dropout = 0;
  if (m["dropout"].get_double().get(dropout) == simdjson::SUCCESS && dropout != 0) {
    return absl::UnimplementedError(StrCat(impl.source, ": BPE dropout is not supported"));
  }
  simdjson::dom::object vocab_obj;
  simdjson::dom::array merges_arr;
  if (m["vocab"].get_object().get(vocab_obj) != simdjson::SUCCESS ||
      m["merges"].get_array().get(merges_arr) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(StrCat(impl.source, ": BPE model needs 'vocab' and 'merges'"));
  }
  absl::flat_hash_map<std::string, int32_t> vocab;
  vocab.reserve(vocab_obj.size());
  for (auto [token, id] : vocab_obj) {
    int64_t v;
    if (id.get_int64().get(v) != simdjson::SUCCESS || v < 0 || v > (1 << 26)) {
      return absl::InvalidArgumentError(StrCat(impl.source, ": vocab entry '", token, "' has a bad id"));
    }
    vocab.emplace(std::string(token), static_cast<int32_t>(v));
  }
  bool ignore_merges = false, byte_fallback = false;
  ReadBool(m, "ignore_merges", &ignore_merges);
  ReadBool(m, "byte_fallback", &byte_fallback);
  RRT_RETURN_IF_ERROR(impl.bpe.Init(std::move(vocab), merges_arr.size(), ignore_merges, byte_fallback, impl.source));
  for (simdjson::dom::element e : merges_arr) {
    std::string_view s;
    simdjson::dom::array pair;
    if (e.get_string().get(s) == simdjson::SUCCESS) {
      const size_t space = s.find(' ');
      if (space == std::string_view::npos || s.find(' ', space + 1) != std::string_view::npos) {
        return absl::InvalidArgumentError(StrCat(impl.source, ": merge '", s, "' is not two tokens"));
      }
      RRT_RETURN_IF_ERROR(impl.bpe.AddMerge(s.substr(0, space), s.substr(space + 1)));
    } else if (e.get_array().get(pair) == simdjson::SUCCESS && pair.size() == 2) {
      std::string_view a, b;
      if (pair.at(0).get_string().get(a) != simdjson::SUCCESS || pair.at(1).get_string().get(b) != simdjson::SUCCESS) {
        return absl::InvalidArgumentError(StrCat(impl.source, ": a merge pair is not two strings"));
      }
      RRT_RETURN_IF_ERROR(impl.bpe.AddMerge(a, b));
    } else {
      return absl::InvalidArgumentError(StrCat(impl.source, ": a merge is neither 'a b' nor [a, b]"));
    }
  }
  return absl::OkStatus();
}

// A token named in tokenizer_config.json: a string or an AddedToken object.
std::optional<std::string> ConfigToken(const simdjson::dom::element& root, const char* key) {
  simdjson::dom::element e;
  if (root[key].get(e) != simdjson::SUCCESS || e.is_null()) return std::nullopt;
  std::string_view s;
  if (e.get_string().get(s) == simdjson::SUCCESS) return std::string(s);
  if (e["content"].get_string().get(s) == simdjson::SUCCESS) return std::string(s);
  return std::nullopt;
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Load(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path file = fs::is_directory(path, ec) ? fs::path(path) / "tokenizer.json" : fs::path(path);
  RRT_ASSIGN_OR_RETURN(std::string json, ReadFileToString(file.string(), kMaxTokenizerBytes));
  std::string config;
  const fs::path config_file = file.parent_path() / "tokenizer_config.json";
  if (fs::exists(config_file, ec)) {
    RRT_ASSIGN_OR_RETURN(config, ReadFileToString(config_file.string(), kMaxTokenizerBytes));
  }
  return FromJson(json, config, file.string());
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(std::string_view tokenizer_json,
                                                               std::string_view tokenizer_config_json,
                                                               std::string_view source) {
  auto impl = std::make_unique<Impl>();
  impl->source = std::string(source);
  simdjson::dom::parser parser;
  RRT_ASSIGN_OR_RETURN(simdjson::dom::element root, json::Parse(parser, tokenizer_json, source));
  simdjson::dom::element e;
  if (root["model"].get(e) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(StrCat(source, ": no 'model'"));
  }
  RRT_RETURN_IF_ERROR(ParseModel(*impl, e));
  using Parser = absl::Status (*)(Tokenizer::Impl&, const simdjson::dom::element&);
  const std::pair<const char*, Parser> components[] = {{"normalizer", ParseNormalizer},
                                                       {"pre_tokenizer", ParsePreTokenizer},
                                                       {"post_processor", ParsePostProcessor},
                                                       {"decoder", ParseDecoder}};
  for (const auto& [key, parse] : components) {
    if (root[key].get(e) != simdjson::SUCCESS) continue;  // absent == null
    RRT_RETURN_IF_ERROR(parse(*impl, e));
  }
  if (!impl->byte_level) {
    return absl::UnimplementedError(StrCat(source, ": only byte-level BPE tokenizers are supported (no ByteLevel pre_tokenizer)"));
  }

  // Ids: the vocabulary, then added tokens.
  int32_t max_id = -1;
  for (const auto& [token, id] : impl->bpe.vocab()) max_id = std::max(max_id, id);
  simdjson::dom::array added;
  if (root["added_tokens"].get_array().get(added) == simdjson::SUCCESS) {
    for (simdjson::dom::element t : added) {
      AddedToken a;
      int64_t id;
      std::string_view content;
      if (t["id"].get_int64().get(id) != simdjson::SUCCESS || id < 0 || id > (1 << 26) ||
          t["content"].get_string().get(content) != simdjson::SUCCESS || content.empty()) {
        return absl::InvalidArgumentError(StrCat(source, ": an added token lacks a valid id or content"));
      }
      a.id = static_cast<int32_t>(id);
      a.content = std::string(content);
      a.special = false;
      a.lstrip = a.rstrip = false;
      ReadBool(t, "special", &a.special);
      ReadBool(t, "lstrip", &a.lstrip);
      ReadBool(t, "rstrip", &a.rstrip);
      max_id = std::max(max_id, a.id);
      impl->added_by_content[a.content] = a.id;
      impl->added.push_back(std::move(a));
    }
  }
  std::stable_sort(impl->added.begin(), impl->added.end(),
                   [](const AddedToken& x, const AddedToken& y) { return x.content.size() > y.content.size(); });
  impl->added_by_first_byte.assign(256, {});
  for (const AddedToken& a : impl->added) {
    impl->added_by_first_byte[static_cast<uint8_t>(a.content[0])].push_back(&a);
  }
  impl->token_bytes.assign(max_id + 1, "");
  impl->id_known.assign(max_id + 1, 0);
  impl->id_special.assign(max_id + 1, 0);
  const ByteLevelTables& tables = Tables();
  for (const auto& [token, id] : impl->bpe.vocab()) {
    std::string bytes;
    size_t i = 0;
    bool mapped = true;
    while (i < token.size()) {
      const uint32_t cp = utf8::Next(token, i);
      if (cp >= 324 || tables.cp_to_byte[cp] < 0) {
        mapped = false;
        break;
      }
      bytes += static_cast<char>(tables.cp_to_byte[cp]);
    }
    impl->token_bytes[id] = mapped ? bytes : token;
    impl->id_known[id] = 1;
  }
  for (const AddedToken& a : impl->added) {
    impl->token_bytes[a.id] = a.content;
    impl->id_known[a.id] = 1;
    impl->id_special[a.id] = a.special;
  }

  if (!tokenizer_config_json.empty()) {
    simdjson::dom::parser cparser;
    const std::string relaxed = json::RelaxBigIntegers(tokenizer_config_json);
    RRT_ASSIGN_OR_RETURN(simdjson::dom::element config,
                         json::Parse(cparser, relaxed, "tokenizer_config.json"));
    auto id_of = [&](const std::optional<std::string>& t) -> std::optional<int32_t> {
      if (!t) return std::nullopt;
      auto it = impl->added_by_content.find(*t);
      if (it != impl->added_by_content.end()) return it->second;
      auto v = impl->bpe.vocab().find(*t);
      if (v != impl->bpe.vocab().end()) return v->second;
      return std::nullopt;
    };
    impl->bos = id_of(ConfigToken(config, "bos_token"));
    impl->eos = id_of(ConfigToken(config, "eos_token"));
    ReadBool(config, "add_bos_token", &impl->add_bos);
    ReadBool(config, "add_eos_token", &impl->add_eos);
  }
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

absl::Status Tokenizer::Impl::EncodeSegment(std::string_view text, std::vector<int32_t>& out) const {
  if (text.empty()) return absl::OkStatus();
  std::string normalized;
  if (nfc) {
    utf8proc_uint8_t* result = utf8proc_NFC(reinterpret_cast<const utf8proc_uint8_t*>(std::string(text).c_str()));
    if (result == nullptr) return absl::InvalidArgumentError("text cannot be NFC-normalized");
    normalized = reinterpret_cast<char*>(result);
    std::free(result);
    text = normalized;
  }
  // Pre-tokenize: each Split step cuts every piece into matches and the gaps between them.
  // The regexes run over `view` (the text with stand-ins for characters newer than
  // PCRE2's Unicode tables, same byte offsets); the pieces are cut from `text`.
  std::string stand_ins;
  const std::string_view view = RegexStandIns(text, &stand_ins) ? std::string_view(stand_ins) : text;
  std::vector<std::pair<size_t, size_t>> pieces = {{0, text.size()}};
  const ByteLevelTables& tables = Tables();
  std::string mapped;
  for (const PreTokenizerStep& step : pre) {
    if (step.kind == PreTokenizerStep::kSplit || step.regex) {
      std::vector<std::pair<size_t, size_t>> next;  // [begin, end) in text
      for (const auto& piece : pieces) {
        const size_t pb = piece.first, pe = piece.second;  // (clang 14 cannot capture bindings)
        size_t last = pb;
        step.regex->ForEachMatch(view.substr(pb, pe - pb), [&](size_t b, size_t e) {
          if (pb + b > last) next.emplace_back(last, pb + b);
          next.emplace_back(pb + b, pb + e);
          last = pb + e;
        });
        if (last < pe) next.emplace_back(last, pe);
      }
      pieces = std::move(next);
    }
    if (step.kind == PreTokenizerStep::kByteLevel) {
      for (size_t k = 0; k < pieces.size(); ++k) {
        const std::string_view piece = text.substr(pieces[k].first, pieces[k].second - pieces[k].first);
        mapped.clear();
        if (step.add_prefix_space && k == 0 && !piece.empty() && piece[0] != ' ') {
          mapped += tables.byte_to_text[' '];
        }
        for (char c : piece) mapped += tables.byte_to_text[static_cast<uint8_t>(c)];
        RRT_RETURN_IF_ERROR(bpe.EncodeWord(mapped, out));
      }
      return absl::OkStatus();
    }
  }
  return absl::InternalError("tokenizer has no ByteLevel step");
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::Encode(std::string_view text,
                                                       const EncodeOptions& options) const {
  const size_t bad = utf8::FirstInvalid(text);
  if (bad != std::string_view::npos) {
    return absl::InvalidArgumentError(StrCat("Encode: text is not valid UTF-8 at byte ", bad));
  }
  std::vector<int32_t> ids;
  if (options.add_special_tokens) ids = impl_->template_prefix;
  if (options.add_special_tokens && impl_->add_bos && impl_->bos &&
      (ids.empty() || ids.front() != *impl_->bos)) {
    ids.insert(ids.begin(), *impl_->bos);
  }
  if (!options.parse_special || impl_->added.empty()) {
    RRT_RETURN_IF_ERROR(impl_->EncodeSegment(text, ids));
  } else {
    // Leftmost added token, longest first at a position; text between goes through BPE.
    size_t start = 0, pos = 0;
    while (pos < text.size()) {
      // With special_ranges, only a token wholly inside a range counts: the last range
      // starting at or before pos must reach its end.
      const auto& candidates = impl_->added_by_first_byte[static_cast<uint8_t>(text[pos])];
      if (candidates.empty()) {
        ++pos;
        continue;
      }
      size_t allowed_end = text.size();
      if (!options.special_ranges.empty()) {
        auto r = std::upper_bound(options.special_ranges.begin(), options.special_ranges.end(), pos,
                                  [](size_t p, const ByteRange& range) { return p < range.begin; });
        allowed_end = r == options.special_ranges.begin() ? pos : std::prev(r)->end;
      }
      const AddedToken* hit = nullptr;
      for (const AddedToken* a : candidates) {
        if (pos + a->content.size() <= allowed_end && text.compare(pos, a->content.size(), a->content) == 0) {
          hit = a;
          break;
        }
      }
      if (hit == nullptr) {
        ++pos;
        continue;
      }
      size_t seg_end = pos;
      if (hit->lstrip) {
        while (seg_end > start && std::isspace(static_cast<unsigned char>(text[seg_end - 1]))) --seg_end;
      }
      RRT_RETURN_IF_ERROR(impl_->EncodeSegment(text.substr(start, seg_end - start), ids));
      ids.push_back(hit->id);
      pos += hit->content.size();
      if (hit->rstrip) {
        while (pos < text.size() && std::isspace(static_cast<unsigned char>(text[pos]))) ++pos;
      }
      start = pos;
    }
    RRT_RETURN_IF_ERROR(impl_->EncodeSegment(text.substr(start), ids));
  }
  if (options.add_special_tokens) {
    ids.insert(ids.end(), impl_->template_suffix.begin(), impl_->template_suffix.end());
    if (impl_->add_eos && impl_->eos) ids.push_back(*impl_->eos);
  }
  return ids;
}

absl::Status Tokenizer::Impl::CheckId(int32_t id) const {
  if (id < 0 || id >= static_cast<int32_t>(id_known.size()) || !id_known[id]) {
    return absl::OutOfRangeError(StrCat("token id ", id, " is not in the vocabulary (size ", id_known.size(), ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Tokenizer::TokenBytes(int32_t id) const {
  RRT_RETURN_IF_ERROR(impl_->CheckId(id));
  return impl_->token_bytes[id];
}

absl::StatusOr<std::string> Tokenizer::Decode(absl::Span<const int32_t> ids,
                                              const DecodeOptions& options) const {
  std::string bytes;
  for (int32_t id : ids) {
    RRT_RETURN_IF_ERROR(impl_->CheckId(id));
    if (options.skip_special_tokens && impl_->id_special[id]) continue;
    bytes += impl_->token_bytes[id];
  }
  return RepairUtf8(bytes, false, nullptr);
}

std::optional<int32_t> Tokenizer::TokenId(std::string_view token) const {
  auto a = impl_->added_by_content.find(ToAbsl(token));
  if (a != impl_->added_by_content.end()) return a->second;
  auto v = impl_->bpe.vocab().find(ToAbsl(token));
  if (v != impl_->bpe.vocab().end()) return v->second;
  return std::nullopt;
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->id_known.size()); }
bool Tokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && id < vocab_size() && impl_->id_special[id];
}
std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos; }
std::optional<int32_t> Tokenizer::eos_id() const { return impl_->eos; }

Tokenizer::StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, DecodeOptions options)
    : tokenizer_(tokenizer), options_(options) {}

absl::StatusOr<std::string> Tokenizer::StreamDecoder::Add(int32_t id) {
  RRT_RETURN_IF_ERROR(tokenizer_.impl_->CheckId(id));
  if (options_.skip_special_tokens && tokenizer_.IsSpecial(id)) return std::string();
  pending_ += tokenizer_.impl_->token_bytes[id];
  std::string tail;
  std::string out = RepairUtf8(pending_, /*keep_incomplete_tail=*/true, &tail);
  pending_ = std::move(tail);
  return out;
}

std::string Tokenizer::StreamDecoder::Finish() {
  std::string out = RepairUtf8(pending_, false, nullptr);
  pending_.clear();
  return out;
}

}  // namespace reasonrt
