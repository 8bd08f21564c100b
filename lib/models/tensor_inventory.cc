#include "lib/models/tensor_inventory.h"

#include <set>

#include "absl/strings/match.h"
#include "lib/core/strings.h"

namespace reasonrt {
namespace {

class Builder {
 public:
  Builder(const ModelConfig& c, const InventoryOptions& o) : cfg_(c), opt_(o) {}

  void Add(std::string name, std::vector<int64_t> shape, WeightKind kind) {
    TensorSpec spec{std::move(name), opt_.float_dtype, std::move(shape), kind, layer_, expert_, mtp_};
    if (kind == WeightKind::kRouterBias) spec.dtype = DType::kF32;
    const bool quantize = kind == WeightKind::kLinear && opt_.fp8;
    if (quantize) spec.dtype = DType::kF8E4M3;
    const std::vector<int64_t> weight_shape = spec.shape;
    const std::string scale_name = StrCat(spec.name, "_scale_inv");
    out_.push_back(std::move(spec));
    if (quantize) {
      out_.push_back(TensorSpec{scale_name, DType::kF32,
                                {Fp8ScaleBlocks(weight_shape[0]), Fp8ScaleBlocks(weight_shape[1])},
                                WeightKind::kScale, layer_, expert_, mtp_});
    }
  }
  void Linear(const std::string& prefix, int64_t out, int64_t in, bool bias = false) {
    Add(prefix + ".weight", {out, in}, WeightKind::kLinear);
    if (bias) Add(prefix + ".bias", {out}, WeightKind::kBias);
  }
  void Mlp(const std::string& prefix, int64_t inner) {
    Linear(prefix + ".gate_proj", inner, cfg_.hidden_size);
    Linear(prefix + ".up_proj", inner, cfg_.hidden_size);
    Linear(prefix + ".down_proj", cfg_.hidden_size, inner);
  }

  void DenseAttention(const std::string& p) {
    const int64_t h = cfg_.hidden_size, hd = cfg_.head_dim;
    const bool bias = cfg_.attention_bias;
    Linear(p + ".q_proj", cfg_.num_attention_heads * hd, h, bias);
    Linear(p + ".k_proj", cfg_.num_key_value_heads * hd, h, bias);
    Linear(p + ".v_proj", cfg_.num_key_value_heads * hd, h, bias);
    Linear(p + ".o_proj", h, cfg_.num_attention_heads * hd);
  }

  void LatentAttention(const std::string& p) {
    const int64_t h = cfg_.hidden_size, nh = cfg_.num_attention_heads;
    if (cfg_.q_lora_rank > 0) {
      Linear(p + ".q_a_proj", cfg_.q_lora_rank, h);
      Add(p + ".q_a_layernorm.weight", {cfg_.q_lora_rank}, WeightKind::kNorm);
      Linear(p + ".q_b_proj", nh * cfg_.qk_head_dim(), cfg_.q_lora_rank);
    } else {
      Linear(p + ".q_proj", nh * cfg_.qk_head_dim(), h);
    }
    Linear(p + ".kv_a_proj_with_mqa", cfg_.kv_lora_rank + cfg_.qk_rope_head_dim, h);
    Add(p + ".kv_a_layernorm.weight", {cfg_.kv_lora_rank}, WeightKind::kNorm);
    Linear(p + ".kv_b_proj", nh * (cfg_.qk_nope_head_dim + cfg_.v_head_dim), cfg_.kv_lora_rank);
    Linear(p + ".o_proj", h, nh * cfg_.v_head_dim);
  }

  void DecoderLayer(int64_t i) {
    const std::string p = StrCat("model.layers.", i);
    Add(p + ".input_layernorm.weight", {cfg_.hidden_size}, WeightKind::kNorm);
    if (cfg_.is_deepseek()) {
      LatentAttention(p + ".self_attn");
    } else {
      DenseAttention(p + ".self_attn");
    }
    Add(p + ".post_attention_layernorm.weight", {cfg_.hidden_size}, WeightKind::kNorm);
    if (!cfg_.IsMoeLayer(i)) {
      Mlp(p + ".mlp", cfg_.intermediate_size);
      return;
    }
    Add(p + ".mlp.gate.weight", {cfg_.n_routed_experts, cfg_.hidden_size}, WeightKind::kRouter);
    if (cfg_.topk_method == TopkMethod::kNoauxTc) {
      Add(p + ".mlp.gate.e_score_correction_bias", {cfg_.n_routed_experts}, WeightKind::kRouterBias);
    }
    for (int64_t e = 0; e < cfg_.n_routed_experts; ++e) {
      expert_ = e;
      Mlp(StrCat(p, ".mlp.experts.", e), cfg_.moe_intermediate_size);
    }
    expert_ = -1;
    if (cfg_.n_shared_experts > 0) {
      Mlp(p + ".mlp.shared_experts", cfg_.moe_intermediate_size * cfg_.n_shared_experts);
    }
  }

  std::vector<TensorSpec> Build() {
    const int64_t h = cfg_.hidden_size, v = cfg_.vocab_size;
    Add("model.embed_tokens.weight", {v, h}, WeightKind::kEmbedding);
    Add("model.norm.weight", {h}, WeightKind::kNorm);
    if (!cfg_.tie_word_embeddings) Add("lm_head.weight", {v, h}, WeightKind::kLmHead);
    for (int64_t i = 0; i < cfg_.num_hidden_layers; ++i) {
      layer_ = i;
      DecoderLayer(i);
    }
    if (opt_.include_mtp && cfg_.is_deepseek()) {
      mtp_ = true;
      for (int64_t k = 0; k < cfg_.num_nextn_predict_layers; ++k) {
        const int64_t i = cfg_.num_hidden_layers + k;
        layer_ = i;
        const std::string p = StrCat("model.layers.", i);
        Add(p + ".embed_tokens.weight", {v, h}, WeightKind::kEmbedding);
        Add(p + ".enorm.weight", {h}, WeightKind::kNorm);
        Add(p + ".hnorm.weight", {h}, WeightKind::kNorm);
        Linear(p + ".eh_proj", h, 2 * h);
        DecoderLayer(i);
        Add(p + ".shared_head.norm.weight", {h}, WeightKind::kNorm);
        Add(p + ".shared_head.head.weight", {v, h}, WeightKind::kLmHead);
      }
    }
    return std::move(out_);
  }

 private:
  const ModelConfig& cfg_;
  const InventoryOptions& opt_;
  std::vector<TensorSpec> out_;
  int64_t layer_ = -1;
  int64_t expert_ = -1;
  bool mtp_ = false;
};

bool IsUsableFloat(DType d) {
  return d == DType::kF32 || d == DType::kF16 || d == DType::kBF16;
}

}  // namespace

int64_t TensorSpec::num_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<TensorSpec> ExpectedTensors(const ModelConfig& config, const InventoryOptions& options) {
  return Builder(config, options).Build();
}

ParameterCounts CountParameters(const ModelConfig& config) {
  ParameterCounts c;
  int64_t routed = 0;
  for (const TensorSpec& t : ExpectedTensors(config, {})) {
    const int64_t n = t.num_elements();
    if (t.mtp) {
      c.mtp += n;
      continue;
    }
    c.total += n;
    if (t.kind == WeightKind::kEmbedding) c.embedding += n;
    if (t.expert >= 0) routed += n;
  }
  c.active_per_token = c.total - routed;
  if (config.n_routed_experts > 0) {
    c.active_per_token += routed / config.n_routed_experts * config.num_experts_per_tok;
  }
  return c;
}

int64_t KvCacheBytesPerToken(const ModelConfig& config, DType cache_dtype) {
  const int64_t elem = static_cast<int64_t>(DTypeSize(cache_dtype));
  if (config.is_deepseek()) {
    return config.num_hidden_layers * (config.kv_lora_rank + config.qk_rope_head_dim) * elem;
  }
  return config.num_hidden_layers * 2 * config.num_key_value_heads * config.head_dim * elem;
}

absl::Status CheckInventory(const ModelConfig& config, const Checkpoint& checkpoint,
                            std::vector<std::string>* unexpected) {
  InventoryOptions options;
  options.fp8 = config.fp8_weights;
  std::set<std::string> expected;
  for (const TensorSpec& spec : ExpectedTensors(config, options)) {
    expected.insert(spec.name);
    if (spec.mtp) continue;
    const TensorInfo* info = checkpoint.Find(spec.name);
    if (info == nullptr) {
      if (spec.kind == WeightKind::kScale) {
        // An FP8 config may still come with some weights in bf16: then there is no scale.
        const TensorInfo* weight =
            checkpoint.Find(spec.name.substr(0, spec.name.size() - std::string("_scale_inv").size()));
        if (weight != nullptr && weight->dtype != DType::kF8E4M3) continue;
      }
      return absl::NotFoundError(StrCat("checkpoint has no tensor '", spec.name, "' (",
                                              ArchitectureName(config.architecture), " expects ",
                                              ShapeString(spec.shape), ")"));
    }
    const std::string where = StrCat(checkpoint.FileOf(spec.name), ": tensor '", spec.name, "'");
    if (info->shape != spec.shape) {
      return absl::InvalidArgumentError(StrCat(where, " has shape ", ShapeString(info->shape),
                                                     ", the config implies ", ShapeString(spec.shape)));
    }
    const bool fp8_ok = spec.kind == WeightKind::kLinear && info->dtype == DType::kF8E4M3;
    if (!IsUsableFloat(info->dtype) && !fp8_ok) {
      return absl::InvalidArgumentError(StrCat(where, " has dtype ", DTypeName(info->dtype),
                                                     ", which a ", StrCat(spec.kind == WeightKind::kLinear ? "projection" : "tensor"),
                                                     " of this kind cannot use"));
    }
    if (fp8_ok) {
      const std::string scale = spec.name + "_scale_inv";
      const TensorInfo* s = checkpoint.Find(scale);
      const std::vector<int64_t> want = {Fp8ScaleBlocks(spec.shape[0]), Fp8ScaleBlocks(spec.shape[1])};
      if (s == nullptr) {
        return absl::NotFoundError(StrCat(where, " is FP8 but '", scale, "' is missing"));
      }
      if (s->shape != want || !IsUsableFloat(s->dtype)) {
        return absl::InvalidArgumentError(StrCat(
            checkpoint.FileOf(scale), ": tensor '", scale, "' is ", DTypeName(s->dtype),
            ShapeString(s->shape), ", expected float ", ShapeString(want)));
      }
      expected.insert(scale);
    }
  }
  if (unexpected != nullptr) {
    for (const std::string& name : checkpoint.names()) {
      if (expected.count(name) == 0) unexpected->push_back(name);
    }
  }
  return absl::OkStatus();
}

}  // namespace reasonrt
