#include "lib/models/synth.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "lib/core/strings.h"
#include "absl/strings/str_join.h"
#include "absl/status/status.h"
#include "lib/core/file.h"
#include "lib/core/status_macros.h"
#include "lib/io/json.h"
#include "lib/models/tensor_inventory.h"
#include "reasonrt/model_config.h"
#include "reasonrt/safetensors.h"

namespace reasonrt {
namespace {

constexpr size_t kMaxConfigBytes = 16u << 20;

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t HashName(uint64_t seed, const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ull ^ SplitMix64(seed);
  for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ull;
  return SplitMix64(h);
}

// Scale and offset of a tensor's uniform values: projections keep activations O(1)
// (std 1/sqrt(fan_in)), norms sit near 1, biases and router biases are small.
std::pair<float, float> ValueRange(const TensorSpec& t) {
  const float sqrt3 = std::sqrt(3.0f);
  switch (t.kind) {
    case WeightKind::kNorm: return {0.2f, 1.0f};
    case WeightKind::kBias: return {0.1f * sqrt3, 0.0f};
    case WeightKind::kRouterBias: return {0.05f, 0.0f};
    case WeightKind::kEmbedding: return {sqrt3, 0.0f};
    case WeightKind::kScale: return {0.0f, 1.0f};
    default: return {sqrt3 / std::sqrt(static_cast<float>(t.shape.back())), 0.0f};
  }
}

// GPT-2's byte-level map: printable bytes stand for themselves, the others for 256 + k.
std::string ByteToUnicode(int b) {
  static const std::vector<int> table = [] {
    std::vector<int> cp(256, -1);
    for (int i = 33; i <= 126; ++i) cp[i] = i;
    for (int i = 161; i <= 172; ++i) cp[i] = i;
    for (int i = 174; i <= 255; ++i) cp[i] = i;
    int next = 256;
    for (int i = 0; i < 256; ++i) {
      if (cp[i] < 0) cp[i] = next++;
    }
    return cp;
  }();
  const int c = table[b];
  std::string out;
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else {
    out += static_cast<char>(0xc0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3f));
  }
  return out;
}

struct SpecialToken {
  int64_t id;
  std::string content;
};

// The R1 family's special tokens at the ids the real tokenizers use where the vocabulary
// has room; otherwise bos/eos from the config and the rest at the top of the vocabulary.
absl::StatusOr<std::vector<SpecialToken>> SpecialTokens(const ModelConfig& cfg) {
  const std::string bos = "<｜begin▁of▁sentence｜>", eos = "<｜end▁of▁sentence｜>";
  const std::string user = "<｜User｜>", assistant = "<｜Assistant｜>";
  std::vector<SpecialToken> family;
  switch (cfg.architecture) {
    case Architecture::kQwen2:
      family = {{151643, eos}, {151644, user}, {151645, assistant}, {151646, bos},
                {151647, "<|EOT|>"}, {151648, "<think>"}, {151649, "</think>"}};
      break;
    case Architecture::kLlama:
      family = {{128000, bos}, {128001, eos}, {128011, user}, {128012, assistant},
                {128013, "<think>"}, {128014, "</think>"}};
      break;
    case Architecture::kDeepseekV3:
      family = {{0, bos}, {1, eos}, {128798, "<think>"}, {128799, "</think>"},
                {128803, user}, {128804, assistant}};
      break;
    case Architecture::kDeepseekV2:
      break;
  }
  bool fits = !family.empty();
  for (const auto& t : family) fits = fits && t.id < cfg.vocab_size;
  for (const auto& t : family) {
    if (t.content == bos && cfg.bos_token_id >= 0 && t.id != cfg.bos_token_id) fits = false;
  }
  if (fits) return family;
  if (cfg.vocab_size < 256 + 6) {
    return absl::InvalidArgumentError(StrCat(
        "vocab_size ", cfg.vocab_size, " is too small for a byte-level tokenizer (at least 262)"));
  }
  std::vector<SpecialToken> out;
  std::set<int64_t> used;
  auto take = [&](int64_t preferred, const std::string& content) {
    int64_t id = preferred;
    if (id < 0 || id >= cfg.vocab_size || used.count(id)) {
      id = cfg.vocab_size - 1;
      while (used.count(id)) --id;
    }
    used.insert(id);
    out.push_back({id, content});
  };
  take(cfg.bos_token_id, bos);
  take(cfg.eos_token_ids.empty() ? -1 : cfg.eos_token_ids[0], eos);
  for (const std::string& s : {user, assistant, std::string("<think>"), std::string("</think>")}) {
    take(-1, s);
  }
  return out;
}

absl::Status WriteTokenizer(const ModelConfig& cfg, const std::filesystem::path& dir) {
  RRT_ASSIGN_OR_RETURN(std::vector<SpecialToken> specials, SpecialTokens(cfg));
  std::set<int64_t> special_ids;
  for (const auto& t : specials) special_ids.insert(t.id);
  std::vector<std::string> vocab;
  int64_t id = 0;
  for (int b = 0; b < 256; ++b, ++id) {
    while (special_ids.count(id)) ++id;
    vocab.push_back(StrCat("      ", json::Quote(ByteToUnicode(b)), ": ", id));
  }
  std::vector<std::string> added;
  for (const auto& t : specials) {
    vocab.push_back(StrCat("      ", json::Quote(t.content), ": ", t.id));
    added.push_back(StrCat("    {\"id\": ", t.id, ", \"content\": ", json::Quote(t.content),
                                 ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, "
                                 "\"normalized\": false, \"special\": true}"));
  }
  const std::string byte_level =
      "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, "
      "\"use_regex\": true}";
  const std::string tokenizer = StrCat(
      "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n"
      "  \"added_tokens\": [\n", absl::StrJoin(added, ",\n"), "\n  ],\n"
      "  \"normalizer\": null,\n  \"pre_tokenizer\": ", byte_level, ",\n"
      "  \"post_processor\": null,\n  \"decoder\": ", byte_level, ",\n"
      "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n"
      "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n"
      "    \"fuse_unk\": false,\n    \"byte_fallback\": false,\n    \"ignore_merges\": false,\n"
      "    \"vocab\": {\n", absl::StrJoin(vocab, ",\n"), "\n    },\n    \"merges\": []\n  }\n}\n");
  RRT_RETURN_IF_ERROR(WriteStringToFile((dir / "tokenizer.json").string(), tokenizer));
  const std::string tokenizer_config = StrCat(
      "{\n  \"add_bos_token\": true,\n  \"add_eos_token\": false,\n  \"bos_token\": ",
      json::Quote(specials[0].content == "<｜begin▁of▁sentence｜>" ? specials[0].content : "<｜begin▁of▁sentence｜>"),
      ",\n  \"eos_token\": ", json::Quote("<｜end▁of▁sentence｜>"),
      ",\n  \"model_max_length\": ", cfg.max_position_embeddings,
      ",\n  \"tokenizer_class\": \"LlamaTokenizerFast\"\n}\n");
  return WriteStringToFile((dir / "tokenizer_config.json").string(), tokenizer_config);
}

// The span [begin, end) of the top-level "added_tokens" array in a tokenizer.json text.
bool FindAddedTokens(std::string_view text, size_t* begin, size_t* end) {
  const size_t key = text.find("\"added_tokens\"");
  if (key == std::string_view::npos) return false;
  const size_t open = text.find('[', key);
  if (open == std::string_view::npos) return false;
  int depth = 0;
  bool in_string = false;
  for (size_t i = open; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') ++depth;
    else if ((c == ']' || c == '}') && --depth == 0) {
      *begin = open;
      *end = i + 1;
      return true;
    }
  }
  return false;
}

struct FamilyToken {
  int64_t id;
  std::string content;
  bool special;
};

std::string AddedTokenJson(const FamilyToken& t) {
  return StrCat("{\"id\": ", t.id, ", \"content\": ", json::Quote(t.content),
                ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, "
                "\"normalized\": false, \"special\": ", t.special ? "true" : "false", "}");
}

// Writes the R1 family's real tokenizer built from a base model's files, or returns
// NotFound when the files are not there (the caller falls back to the minimal one).
absl::Status WriteFamilyTokenizer(const ModelConfig& cfg, const std::string& files,
                                  const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  const std::string bos = "<｜begin▁of▁sentence｜>", eos = "<｜end▁of▁sentence｜>";
  std::string package;
  std::vector<FamilyToken> replace;  // tokens the R1 family renames or adds
  int64_t keep_below = -1;           // drop base added tokens with ids >= this (if >= 0)
  switch (cfg.architecture) {
    case Architecture::kDeepseekV3:
      package = "tokenizer-deepseek_v3";
      replace = {{128798, "<think>", false}, {128799, "</think>", false}};
      break;
    case Architecture::kQwen2:
      package = "tokenizer-qwen3";
      replace = {{151643, eos, true},   {151644, "<｜User｜>", false}, {151645, "<｜Assistant｜>", false},
                 {151646, bos, true},   {151647, "<|EOT|>", false},   {151648, "<think>", false},
                 {151649, "</think>", false}};
      keep_below = 151665;  // Qwen3's additions after Qwen2.5's set
      break;
    case Architecture::kLlama:
      package = "tokenizer-llama3_1";
      replace = {{128000, bos, true}, {128001, eos, true}, {128011, "<｜User｜>", false},
                 {128012, "<｜Assistant｜>", false}, {128013, "<think>", false}, {128014, "</think>", false}};
      break;
    default:
      return absl::NotFoundError("no R1-family tokenizer for this architecture");
  }
  const fs::path base = fs::path(files) / package / "models";
  auto text = ReadFileToString((base / "tokenizer.json").string(), size_t{256} << 20);
  if (!text.ok()) return text.status();
  simdjson::dom::parser parser;
  RRT_ASSIGN_OR_RETURN(simdjson::dom::element root, json::Parse(parser, *text, (base / "tokenizer.json").string()));
  std::map<int64_t, std::string> entries;  // id -> JSON of the added token
  int64_t max_id = 0;
  for (simdjson::dom::element t : root["added_tokens"].get_array()) {
    int64_t id = 0;
    if (t["id"].get_int64().get(id) != simdjson::SUCCESS) continue;
    if (keep_below >= 0 && id >= keep_below) continue;
    entries[id] = simdjson::minify(t);
  }
  for (const FamilyToken& t : replace) entries[t.id] = AddedTokenJson(t);
  for (const auto& [id, json] : entries) max_id = std::max(max_id, id);
  if (max_id >= cfg.vocab_size) {
    return absl::NotFoundError(StrCat("the ", package, " tokenizer (ids up to ", max_id,
                                      ") does not fit vocab_size ", cfg.vocab_size));
  }
  size_t begin = 0, end = 0;
  if (!FindAddedTokens(*text, &begin, &end)) return absl::InvalidArgumentError("no added_tokens array");
  std::vector<std::string> list;
  for (const auto& [id, json] : entries) list.push_back(json);
  std::string out = text->substr(0, begin) + "[\n    " + absl::StrJoin(list, ",\n    ") + "\n  ]" + text->substr(end);
  RRT_RETURN_IF_ERROR(WriteStringToFile((dir / "tokenizer.json").string(), out));
  // R1's configs: BOS added (LlamaTokenizerFast), R1's bos/eos names.
  const std::string config = StrCat(
      "{\n  \"add_bos_token\": true,\n  \"add_eos_token\": false,\n  \"bos_token\": ", json::Quote(bos),
      ",\n  \"eos_token\": ", json::Quote(eos), ",\n  \"model_max_length\": ", cfg.max_position_embeddings,
      ",\n  \"tokenizer_class\": \"LlamaTokenizerFast\"\n}\n");
  return WriteStringToFile((dir / "tokenizer_config.json").string(), config);
}

// The input config with overrides applied, as JSON text.
absl::StatusOr<std::string> RewriteConfig(const std::string& text, const std::string& source,
                                          const SynthOptions& options) {
  std::map<std::string, std::string> overrides(options.overrides.begin(), options.overrides.end());
  if (options.layers > 0) overrides["num_hidden_layers"] = StrCat(options.layers);
  if (options.fp8) {
    overrides["quantization_config"] =
        "{\"activation_scheme\": \"dynamic\", \"fmt\": \"e4m3\", \"quant_method\": \"fp8\", "
        "\"weight_block_size\": [128, 128]}";
  }
  for (const auto& [key, value] : overrides) {
    simdjson::dom::parser check;
    auto parsed = json::Parse(check, value, StrCat("override of '", key, "'"));
    if (!parsed.ok()) return parsed.status();
  }
  simdjson::dom::parser parser;
  RRT_ASSIGN_OR_RETURN(simdjson::dom::element root, json::Parse(parser, text, source));
  simdjson::dom::object obj;
  if (root.get_object().get(obj) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(StrCat(source, ": not a JSON object"));
  }
  std::vector<std::string> fields;
  for (auto [key, value] : obj) {
    auto it = overrides.find(std::string(key));
    const std::string v = it != overrides.end() ? it->second : simdjson::minify(value);
    fields.push_back(StrCat("  ", json::Quote(key), ": ", v));
    if (it != overrides.end()) overrides.erase(it);
  }
  for (const auto& [key, value] : overrides) fields.push_back(StrCat("  ", json::Quote(key), ": ", value));
  return StrCat("{\n", absl::StrJoin(fields, ",\n"), "\n}\n");
}

}  // namespace

void SynthValues(uint64_t seed, const std::string& name, float scale, float offset, float* out,
                 int64_t n) {
  const uint64_t base = HashName(seed, name);
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t r = SplitMix64(base + static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ull);
    // 24 random bits -> [-1, 1)
    const float u = static_cast<float>(r >> 40) * (2.0f / 16777216.0f) - 1.0f;
    out[i] = offset + scale * u;
  }
}

std::vector<float> SynthTensorValues(uint64_t seed, const TensorSpec& spec) {
  std::vector<float> values(static_cast<size_t>(spec.num_elements()));
  const auto [scale, offset] = ValueRange(spec);
  SynthValues(seed, spec.name, scale, offset, values.data(), spec.num_elements());
  return values;
}

absl::Status WriteSyntheticModel(const SynthOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string config_file = fs::is_directory(options.config_path, ec)
                                      ? (fs::path(options.config_path) / "config.json").string()
                                      : options.config_path;
  RRT_ASSIGN_OR_RETURN(std::string text, ReadFileToString(config_file, kMaxConfigBytes));
  RRT_ASSIGN_OR_RETURN(std::string config_text, RewriteConfig(text, config_file, options));
  RRT_ASSIGN_OR_RETURN(ModelConfig cfg, ParseModelConfig(config_text, config_file));
  if (!IsFloatingPoint(options.dtype) || options.dtype == DType::kF8E4M3) {
    return absl::InvalidArgumentError(StrCat("synth dtype must be f32, f16 or bf16, not ",
                                                   DTypeName(options.dtype)));
  }

  const fs::path dir(options.out_dir);
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(StrCat(options.out_dir, ": cannot create: ", ec.message()));
  RRT_RETURN_IF_ERROR(WriteStringToFile((dir / "config.json").string(), config_text));
  absl::Status family = absl::NotFoundError("no tokenizer files given");
  if (!options.tokenizer_files.empty()) family = WriteFamilyTokenizer(cfg, options.tokenizer_files, dir);
  if (absl::IsNotFound(family)) {
    RRT_RETURN_IF_ERROR(WriteTokenizer(cfg, dir));
  } else {
    RRT_RETURN_IF_ERROR(family);
  }

  InventoryOptions inv;
  inv.float_dtype = options.dtype;
  inv.fp8 = options.fp8;
  const std::vector<TensorSpec> specs = ExpectedTensors(cfg, inv);
  std::map<std::string, const TensorSpec*> by_name;
  for (const TensorSpec& s : specs) by_name[s.name] = &s;

  SafetensorsWriter writer;
  writer.SetMetadata("format", "pt");
  for (const TensorSpec& spec : specs) {
    SafetensorsWriter::Fill fill;
    if (!options.zeros) {
      const TensorSpec* values_of = &spec;  // a scale tensor is filled from its weight
      if (spec.kind == WeightKind::kScale) {
        values_of = by_name.at(spec.name.substr(0, spec.name.size() - std::strlen("_scale_inv")));
      }
      fill = [seed = options.seed, &spec, values_of](absl::Span<uint8_t> out) -> absl::Status {
        const int64_t n = values_of->num_elements();
        const std::vector<float> values = SynthTensorValues(seed, *values_of);
        if (values_of->dtype != DType::kF8E4M3) {
          ConvertFromF32(spec.dtype, values.data(), out.data(), static_cast<size_t>(n));
          return absl::OkStatus();
        }
        // The weight and its scales come from one quantization, done for each of the two.
        const int64_t rows = values_of->shape[0], cols = values_of->shape[1];
        std::vector<float> scales(static_cast<size_t>(Fp8ScaleBlocks(rows) * Fp8ScaleBlocks(cols)));
        std::vector<uint8_t> payload(spec.kind == WeightKind::kScale ? n : 0);
        uint8_t* weight = spec.kind == WeightKind::kScale ? payload.data() : out.data();
        QuantizeFp8Blocks(values.data(), rows, cols, weight, scales.data());
        if (spec.kind == WeightKind::kScale) std::memcpy(out.data(), scales.data(), out.size());
        return absl::OkStatus();
      };
    }
    RRT_RETURN_IF_ERROR(writer.AddLazy(spec.name, spec.dtype, spec.shape, std::move(fill)));
  }
  return writer.WriteSharded(options.out_dir, options.max_shard_bytes);
}

}  // namespace reasonrt
