// config.json -> ModelConfig, with validation that names the key at fault.
#include <filesystem>
#include <set>

#include "lib/core/strings.h"
#include "lib/core/file.h"
#include "lib/core/status_macros.h"
#include "lib/io/json.h"
#include "reasonrt/model_config.h"

namespace reasonrt {
namespace {

constexpr size_t kMaxConfigBytes = 16u << 20;

// Reads an optional integer key into *out (leaving the default when absent) and checks a
// lower bound.
absl::Status ReadInt(const json::ObjectReader& r, std::string_view key, int64_t* out,
                     bool required, int64_t min_value) {
  RRT_ASSIGN_OR_RETURN(std::optional<int64_t> v, r.Int(key));
  if (!v) {
    if (required) return r.Error(key, "is missing");
    return absl::OkStatus();
  }
  if (*v < min_value) return r.Error(key, StrCat("must be at least ", min_value, ", got ", *v));
  *out = *v;
  return absl::OkStatus();
}

absl::Status ReadPositiveDouble(const json::ObjectReader& r, std::string_view key, double* out,
                                bool required) {
  RRT_ASSIGN_OR_RETURN(std::optional<double> v, r.Double(key));
  if (!v) return required ? r.Error(key, "is missing") : absl::OkStatus();
  if (!(*v > 0.0) || !std::isfinite(*v)) return r.Error(key, StrCat("must be a positive number, got ", *v));
  *out = *v;
  return absl::OkStatus();
}

absl::Status ReadBool(const json::ObjectReader& r, std::string_view key, bool* out) {
  RRT_ASSIGN_OR_RETURN(std::optional<bool> v, r.Bool(key));
  if (v) *out = *v;
  return absl::OkStatus();
}

absl::Status ParseRopeScaling(const json::ObjectReader& parent, simdjson::dom::object obj,
                              ModelConfig& cfg) {
  const json::ObjectReader r(obj, StrCat(parent.source(), ": rope_scaling"));
  RRT_ASSIGN_OR_RETURN(std::optional<std::string> type, r.String("rope_type"));
  if (!type) {
    RRT_ASSIGN_OR_RETURN(type, r.String("type"));
  }
  if (!type) return r.Error("rope_type", "is missing");
  RopeScaling& rs = cfg.rope_scaling;
  if (*type == "default") {
    rs.type = RopeScalingType::kNone;
    return absl::OkStatus();
  }
  if (*type == "linear") {
    rs.type = RopeScalingType::kLinear;
    return ReadPositiveDouble(r, "factor", &rs.factor, true);
  }
  if (*type == "llama3") {
    rs.type = RopeScalingType::kLlama3;
    RRT_RETURN_IF_ERROR(ReadPositiveDouble(r, "factor", &rs.factor, true));
    RRT_RETURN_IF_ERROR(ReadPositiveDouble(r, "low_freq_factor", &rs.low_freq_factor, true));
    RRT_RETURN_IF_ERROR(ReadPositiveDouble(r, "high_freq_factor", &rs.high_freq_factor, true));
    RRT_RETURN_IF_ERROR(ReadInt(r, "original_max_position_embeddings",
                                &rs.original_max_position_embeddings, true, 1));
    if (rs.high_freq_factor <= rs.low_freq_factor) {
      return r.Error("high_freq_factor", "must be greater than low_freq_factor");
    }
    return absl::OkStatus();
  }
  if (*type == "yarn") {
    rs.type = RopeScalingType::kYarn;
    RRT_RETURN_IF_ERROR(ReadPositiveDouble(r, "factor", &rs.factor, true));
    RRT_RETURN_IF_ERROR(ReadInt(r, "original_max_position_embeddings",
                                &rs.original_max_position_embeddings, true, 1));
    RRT_RETURN_IF_ERROR(ReadPositiveDouble(r, "beta_fast", &rs.beta_fast, false));
    RRT_RETURN_IF_ERROR(ReadPositiveDouble(r, "beta_slow", &rs.beta_slow, false));
    RRT_RETURN_IF_ERROR(ReadPositiveDouble(r, "mscale", &rs.mscale, false));
    RRT_ASSIGN_OR_RETURN(std::optional<double> all_dim, r.Double("mscale_all_dim"));
    if (all_dim) {
      if (*all_dim < 0 || !std::isfinite(*all_dim)) return r.Error("mscale_all_dim", "must be >= 0");
      rs.mscale_all_dim = *all_dim;
    }
    if (rs.beta_fast <= rs.beta_slow) return r.Error("beta_fast", "must be greater than beta_slow");
    return absl::OkStatus();
  }
  return absl::UnimplementedError(
      StrCat(r.source(), ": rope type '", *type, "' is not supported (default, linear, llama3, yarn)"));
}

absl::Status ParseDeepseek(const json::ObjectReader& r, ModelConfig& cfg) {
  RRT_RETURN_IF_ERROR(ReadInt(r, "q_lora_rank", &cfg.q_lora_rank, false, 1));
  RRT_RETURN_IF_ERROR(ReadInt(r, "kv_lora_rank", &cfg.kv_lora_rank, true, 1));
  RRT_RETURN_IF_ERROR(ReadInt(r, "qk_nope_head_dim", &cfg.qk_nope_head_dim, true, 1));
  RRT_RETURN_IF_ERROR(ReadInt(r, "qk_rope_head_dim", &cfg.qk_rope_head_dim, true, 2));
  RRT_RETURN_IF_ERROR(ReadInt(r, "v_head_dim", &cfg.v_head_dim, true, 1));
  if (cfg.qk_rope_head_dim % 2 != 0) return r.Error("qk_rope_head_dim", "must be even");
  cfg.head_dim = cfg.qk_nope_head_dim + cfg.qk_rope_head_dim;
  RRT_RETURN_IF_ERROR(ReadInt(r, "num_nextn_predict_layers", &cfg.num_nextn_predict_layers, false, 0));

  RRT_RETURN_IF_ERROR(ReadInt(r, "n_routed_experts", &cfg.n_routed_experts, false, 1));
  if (cfg.n_routed_experts == 0) return absl::OkStatus();
  RRT_RETURN_IF_ERROR(ReadInt(r, "num_experts_per_tok", &cfg.num_experts_per_tok, true, 1));
  RRT_RETURN_IF_ERROR(ReadInt(r, "moe_intermediate_size", &cfg.moe_intermediate_size, true, 1));
  RRT_RETURN_IF_ERROR(ReadInt(r, "n_shared_experts", &cfg.n_shared_experts, false, 0));
  RRT_RETURN_IF_ERROR(ReadInt(r, "first_k_dense_replace", &cfg.first_k_dense_replace, false, 0));
  RRT_RETURN_IF_ERROR(ReadInt(r, "moe_layer_freq", &cfg.moe_layer_freq, false, 1));
  RRT_RETURN_IF_ERROR(ReadInt(r, "n_group", &cfg.n_group, false, 1));
  RRT_RETURN_IF_ERROR(ReadInt(r, "topk_group", &cfg.topk_group, false, 1));
  RRT_ASSIGN_OR_RETURN(std::optional<double> scale, r.Double("routed_scaling_factor"));
  if (scale) {
    if (!(*scale > 0) || !std::isfinite(*scale)) return r.Error("routed_scaling_factor", "must be positive");
    cfg.routed_scaling_factor = *scale;
  }
  RRT_RETURN_IF_ERROR(ReadBool(r, "norm_topk_prob", &cfg.norm_topk_prob));
  RRT_ASSIGN_OR_RETURN(std::optional<std::string> scoring, r.String("scoring_func"));
  if (scoring) {
    if (*scoring == "softmax") cfg.scoring_func = ScoringFunc::kSoftmax;
    else if (*scoring == "sigmoid") cfg.scoring_func = ScoringFunc::kSigmoid;
    else return r.Error("scoring_func", StrCat("must be 'softmax' or 'sigmoid', got '", *scoring, "'"));
  }
  RRT_ASSIGN_OR_RETURN(std::optional<std::string> method, r.String("topk_method"));
  if (method) {
    if (*method == "greedy") cfg.topk_method = TopkMethod::kGreedy;
    else if (*method == "group_limited_greedy") cfg.topk_method = TopkMethod::kGroupLimitedGreedy;
    else if (*method == "noaux_tc") cfg.topk_method = TopkMethod::kNoauxTc;
    else return r.Error("topk_method", StrCat("'", *method, "' is not greedy, group_limited_greedy or noaux_tc"));
  }

  if (cfg.num_experts_per_tok > cfg.n_routed_experts) {
    return r.Error("num_experts_per_tok", StrCat("(", cfg.num_experts_per_tok,
                                                       ") exceeds n_routed_experts (",
                                                       cfg.n_routed_experts, ")"));
  }
  if (cfg.n_routed_experts % cfg.n_group != 0) {
    return r.Error("n_group", StrCat("(", cfg.n_group, ") must divide n_routed_experts (",
                                           cfg.n_routed_experts, ")"));
  }
  if (cfg.topk_group > cfg.n_group) {
    return r.Error("topk_group", StrCat("(", cfg.topk_group, ") exceeds n_group (", cfg.n_group, ")"));
  }
  const int64_t per_group = cfg.n_routed_experts / cfg.n_group;
  if (cfg.topk_method != TopkMethod::kGreedy && cfg.num_experts_per_tok > cfg.topk_group * per_group) {
    return r.Error("num_experts_per_tok",
                   StrCat("(", cfg.num_experts_per_tok, ") exceeds the experts in topk_group groups (",
                                cfg.topk_group * per_group, ")"));
  }
  if (cfg.topk_method == TopkMethod::kNoauxTc && per_group < 2) {
    return r.Error("n_group", "leaves fewer than 2 experts per group, which noaux_tc scores by its top 2");
  }
  if (cfg.first_k_dense_replace > cfg.num_hidden_layers) {
    return r.Error("first_k_dense_replace", StrCat("(", cfg.first_k_dense_replace,
                                                         ") exceeds num_hidden_layers (",
                                                         cfg.num_hidden_layers, ")"));
  }
  return absl::OkStatus();
}

absl::Status ParseTokenIds(const json::ObjectReader& r, simdjson::dom::object obj, ModelConfig& cfg) {
  RRT_ASSIGN_OR_RETURN(std::optional<int64_t> bos, r.Int("bos_token_id"));
  if (bos) cfg.bos_token_id = *bos;
  simdjson::dom::element eos;
  if (obj.at_key("eos_token_id").get(eos) == simdjson::SUCCESS && !eos.is_null()) {
    simdjson::dom::array list;
    if (eos.get_array().get(list) == simdjson::SUCCESS) {
      for (simdjson::dom::element e : list) {
        int64_t id;
        if (e.get_int64().get(id) != simdjson::SUCCESS) {
          return r.Error("eos_token_id", "must be an integer or a list of integers");
        }
        cfg.eos_token_ids.push_back(id);
      }
    } else {
      RRT_ASSIGN_OR_RETURN(std::optional<int64_t> id, r.Int("eos_token_id"));
      cfg.eos_token_ids.push_back(*id);
    }
  }
  auto check = [&](std::string_view key, int64_t id) -> absl::Status {
    if (id < 0 || id >= cfg.vocab_size) {
      return r.Error(key, StrCat("(", id, ") is outside the vocabulary [0, ", cfg.vocab_size, ")"));
    }
    return absl::OkStatus();
  };
  if (bos) RRT_RETURN_IF_ERROR(check("bos_token_id", *bos));
  for (int64_t id : cfg.eos_token_ids) RRT_RETURN_IF_ERROR(check("eos_token_id", id));
  return absl::OkStatus();
}

absl::Status ParseQuantization(const json::ObjectReader& parent, simdjson::dom::object obj,
                               ModelConfig& cfg) {
  const json::ObjectReader r(obj, StrCat(parent.source(), ": quantization_config"));
  RRT_ASSIGN_OR_RETURN(std::optional<std::string> method, r.String("quant_method"));
  if (!method) return r.Error("quant_method", "is missing");
  if (*method != "fp8") {
    return absl::UnimplementedError(
        StrCat(r.source(), ": quant_method '", *method, "' is not supported (fp8)"));
  }
  RRT_ASSIGN_OR_RETURN(std::optional<std::string> fmt, r.String("fmt"));
  if (fmt && *fmt != "e4m3") return r.Error("fmt", StrCat("'", *fmt, "' is not supported (e4m3)"));
  simdjson::dom::element block;
  if (obj.at_key("weight_block_size").get(block) == simdjson::SUCCESS && !block.is_null()) {
    simdjson::dom::array a;
    int64_t rows, cols;
    if (block.get_array().get(a) != simdjson::SUCCESS || a.size() != 2 ||
        a.at(0).get_int64().get(rows) != simdjson::SUCCESS ||
        a.at(1).get_int64().get(cols) != simdjson::SUCCESS) {
      return r.Error("weight_block_size", "must be a pair of integers");
    }
    if (rows != kFp8BlockSize || cols != kFp8BlockSize) {
      return absl::UnimplementedError(StrCat(r.source(), ": weight_block_size [", rows, ", ",
                                                   cols, "] is not supported ([128, 128])"));
    }
    cfg.fp8_block_rows = rows;
    cfg.fp8_block_cols = cols;
  }
  cfg.fp8_weights = true;
  return absl::OkStatus();
}

}  // namespace

std::string_view ArchitectureName(Architecture arch) {
  switch (arch) {
    case Architecture::kQwen2: return "qwen2";
    case Architecture::kLlama: return "llama";
    case Architecture::kDeepseekV2: return "deepseek_v2";
    case Architecture::kDeepseekV3: return "deepseek_v3";
  }
  return "unknown";
}

absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view json_text, std::string_view source) {
  simdjson::dom::parser parser;
  RRT_ASSIGN_OR_RETURN(simdjson::dom::element root, json::Parse(parser, json_text, source));
  simdjson::dom::object obj;
  if (root.get_object().get(obj) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(StrCat(source, ": not a JSON object"));
  }
  const json::ObjectReader r(obj, std::string(source));
  std::set<std::string_view> keys;
  for (auto [key, value] : obj) {
    if (!keys.insert(key).second) return r.Error(key, "appears twice");
  }
  ModelConfig cfg;
  RRT_ASSIGN_OR_RETURN(std::optional<std::string> model_type, r.String("model_type"));
  if (!model_type) return r.Error("model_type", "is missing");
  cfg.model_type = *model_type;
  if (*model_type == "qwen2") cfg.architecture = Architecture::kQwen2;
  else if (*model_type == "llama") cfg.architecture = Architecture::kLlama;
  else if (*model_type == "deepseek_v2") cfg.architecture = Architecture::kDeepseekV2;
  else if (*model_type == "deepseek_v3") cfg.architecture = Architecture::kDeepseekV3;
  else {
    return absl::UnimplementedError(StrCat(
        source, ": model_type '", *model_type,
        "' is not supported (reasonrt runs qwen2, llama, deepseek_v2 and deepseek_v3)"));
  }

  RRT_RETURN_IF_ERROR(ReadInt(r, "hidden_size", &cfg.hidden_size, true, 1));
  RRT_RETURN_IF_ERROR(ReadInt(r, "num_hidden_layers", &cfg.num_hidden_layers, true, 1));
  RRT_RETURN_IF_ERROR(ReadInt(r, "num_attention_heads", &cfg.num_attention_heads, true, 1));
  cfg.num_key_value_heads = cfg.num_attention_heads;
  RRT_RETURN_IF_ERROR(ReadInt(r, "num_key_value_heads", &cfg.num_key_value_heads, false, 1));
  RRT_RETURN_IF_ERROR(ReadInt(r, "intermediate_size", &cfg.intermediate_size, true, 1));
  RRT_RETURN_IF_ERROR(ReadInt(r, "vocab_size", &cfg.vocab_size, true, 1));
  RRT_RETURN_IF_ERROR(ReadInt(r, "max_position_embeddings", &cfg.max_position_embeddings, true, 1));
  RRT_RETURN_IF_ERROR(ReadPositiveDouble(r, "rms_norm_eps", &cfg.rms_norm_eps, false));
  RRT_RETURN_IF_ERROR(ReadPositiveDouble(r, "rope_theta", &cfg.rope_theta, false));
  RRT_RETURN_IF_ERROR(ReadBool(r, "tie_word_embeddings", &cfg.tie_word_embeddings));
  cfg.attention_bias = cfg.architecture == Architecture::kQwen2;
  if (cfg.architecture == Architecture::kLlama) {
    RRT_RETURN_IF_ERROR(ReadBool(r, "attention_bias", &cfg.attention_bias));
    bool mlp_bias = false;
    RRT_RETURN_IF_ERROR(ReadBool(r, "mlp_bias", &mlp_bias));
    if (mlp_bias) return absl::UnimplementedError(StrCat(source, ": mlp_bias true is not supported"));
  }
  bool sliding = false;
  RRT_RETURN_IF_ERROR(ReadBool(r, "use_sliding_window", &sliding));
  if (sliding) {
    return absl::UnimplementedError(StrCat(source, ": use_sliding_window true is not supported"));
  }
  RRT_ASSIGN_OR_RETURN(std::optional<std::string> act, r.String("hidden_act"));
  if (act && *act != "silu") return r.Error("hidden_act", StrCat("'", *act, "' is not supported (silu)"));
  RRT_ASSIGN_OR_RETURN(std::optional<std::string> torch_dtype, r.String("torch_dtype"));
  if (torch_dtype) {
    auto d = ParseDTypeName(*torch_dtype);
    if (!d.ok() || !IsFloatingPoint(*d)) return r.Error("torch_dtype", StrCat("'", *torch_dtype, "' is not a float type"));
    cfg.torch_dtype = *d;
  }

  if (cfg.num_attention_heads % cfg.num_key_value_heads != 0) {
    return r.Error("num_key_value_heads", StrCat("(", cfg.num_key_value_heads,
                                                       ") must divide num_attention_heads (",
                                                       cfg.num_attention_heads, ")"));
  }
  if (cfg.is_deepseek()) {
    RRT_RETURN_IF_ERROR(ParseDeepseek(r, cfg));
  } else {
    RRT_RETURN_IF_ERROR(ReadInt(r, "head_dim", &cfg.head_dim, false, 2));
    if (cfg.head_dim == 0) {
      if (cfg.hidden_size % cfg.num_attention_heads != 0) {
        return r.Error("num_attention_heads", StrCat("(", cfg.num_attention_heads,
                                                           ") must divide hidden_size (",
                                                           cfg.hidden_size, ")"));
      }
      cfg.head_dim = cfg.hidden_size / cfg.num_attention_heads;
    }
    if (cfg.head_dim % 2 != 0) return r.Error("head_dim", StrCat("(", cfg.head_dim, ") must be even for RoPE"));
  }

  RRT_ASSIGN_OR_RETURN(std::optional<simdjson::dom::object> rope, r.Object("rope_scaling"));
  if (rope) RRT_RETURN_IF_ERROR(ParseRopeScaling(r, *rope, cfg));
  RRT_ASSIGN_OR_RETURN(std::optional<simdjson::dom::object> quant, r.Object("quantization_config"));
  if (quant) RRT_RETURN_IF_ERROR(ParseQuantization(r, *quant, cfg));
  RRT_RETURN_IF_ERROR(ParseTokenIds(r, obj, cfg));
  return cfg;
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& path) {
  std::error_code ec;
  const std::string file = std::filesystem::is_directory(path, ec)
                               ? (std::filesystem::path(path) / "config.json").string()
                               : path;
  RRT_ASSIGN_OR_RETURN(std::string text, ReadFileToString(file, kMaxConfigBytes));
  return ParseModelConfig(text, file);
}

}  // namespace reasonrt
