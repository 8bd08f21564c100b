// reasonrt/model_config.h: a model's config.json as typed, validated values.
//
// Basic usage:
//
//   absl::StatusOr<reasonrt::ModelConfig> cfg = reasonrt::LoadModelConfig("/models/R1-Distill-Qwen-7B");
//   if (!cfg.ok()) { /* "config.json: key 'num_key_value_heads' (3) must divide ..." */ }
//   int64_t kv = cfg->num_key_value_heads;
//
// Reads the Hugging Face keys of the `qwen2`, `llama`, `deepseek_v2` and `deepseek_v3`
// model types; any other model_type is refused. Missing required keys, keys of the wrong
// JSON type and inconsistent values are InvalidArgument errors naming the key. Keys that
// Hugging Face gives a default (num_key_value_heads, rope_theta, tie_word_embeddings, ...)
// take that default when absent. Unknown keys are ignored, as Hugging Face does.
#ifndef REASONRT_MODEL_CONFIG_H_
#define REASONRT_MODEL_CONFIG_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "reasonrt/dtype.h"
#include "reasonrt/export.h"

namespace reasonrt {

enum class Architecture : uint8_t { kQwen2, kLlama, kDeepseekV2, kDeepseekV3 };

// "qwen2", "llama", "deepseek_v2", "deepseek_v3".
RRT_API std::string_view ArchitectureName(Architecture arch);

enum class RopeScalingType : uint8_t { kNone, kLinear, kLlama3, kYarn };

struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  double factor = 1.0;
  int64_t original_max_position_embeddings = 0;
  // llama3
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  // YaRN
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double mscale = 1.0;
  double mscale_all_dim = 0.0;
};

enum class ScoringFunc : uint8_t { kSoftmax, kSigmoid };
// greedy: plain top-k; group_limited_greedy: V2's best groups by max score;
// noaux_tc: V3's groups by the sum of their top-2 biased scores.
enum class TopkMethod : uint8_t { kGreedy, kGroupLimitedGreedy, kNoauxTc };

struct ModelConfig {
  Architecture architecture = Architecture::kQwen2;
  std::string model_type;

  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;  // dense models: hidden_size / heads unless given
  int64_t intermediate_size = 0;
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v biases (always on for qwen2)
  int64_t bos_token_id = -1;    // -1 when absent
  std::vector<int64_t> eos_token_ids;
  DType torch_dtype = DType::kBF16;

  // DeepSeek (Multi-head Latent Attention and Mixture-of-Experts).
  int64_t q_lora_rank = 0;  // 0: plain q_proj
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;
  int64_t n_routed_experts = 0;  // 0: no MoE layers
  int64_t n_shared_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t moe_intermediate_size = 0;
  int64_t first_k_dense_replace = 0;
  int64_t moe_layer_freq = 1;
  int64_t n_group = 1;
  int64_t topk_group = 1;
  double routed_scaling_factor = 1.0;
  ScoringFunc scoring_func = ScoringFunc::kSoftmax;
  TopkMethod topk_method = TopkMethod::kGreedy;
  bool norm_topk_prob = false;
  int64_t num_nextn_predict_layers = 0;  // MTP layers after the main ones (skipped)

  // quantization_config: FP8 e4m3 weights with block scales.
  bool fp8_weights = false;
  int64_t fp8_block_rows = 128;
  int64_t fp8_block_cols = 128;

  bool is_deepseek() const {
    return architecture == Architecture::kDeepseekV2 || architecture == Architecture::kDeepseekV3;
  }
  // Whether decoder layer `layer` has a routed-expert MLP.
  bool IsMoeLayer(int64_t layer) const {
    return n_routed_experts > 0 && layer >= first_k_dense_replace &&
           layer % moe_layer_freq == 0;
  }
  // Query/key width per head: qk_nope + qk_rope for DeepSeek, head_dim otherwise.
  int64_t qk_head_dim() const {
    return is_deepseek() ? qk_nope_head_dim + qk_rope_head_dim : head_dim;
  }
};

// Parses and validates config.json text. `source` names the file in errors.
RRT_API absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view json_text,
                                                     std::string_view source = "config.json");

// Reads `<dir>/config.json` (or the file itself when `path` is a file).
RRT_API absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& path);

}  // namespace reasonrt

#endif  // REASONRT_MODEL_CONFIG_H_
