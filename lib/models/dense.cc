// qwen2 and llama: pre-norm decoder layers of grouped-query attention and a SwiGLU MLP.
#include <cmath>

#include "lib/core/status_macros.h"
#include "lib/core/strings.h"
#include "lib/models/architecture.h"
#include "lib/models/rope.h"
#include "lib/runtime/kv_cache.h"

namespace reasonrt {
namespace {

struct DenseLayer {
  TensorView input_norm, post_norm;
  Weight q, k, v, o, gate, up, down;
  TensorView q_bias, k_bias, v_bias;  // empty without attention_bias
};

class DenseModel final : public ArchitectureModel {
 public:
  static absl::StatusOr<std::unique_ptr<ArchitectureModel>> Create(const ModelConfig& c,
                                                                   const Checkpoint& ckpt) {
    auto m = std::unique_ptr<DenseModel>(new DenseModel(c));
    RRT_ASSIGN_OR_RETURN(m->rope_, ComputeRope(c));
    auto get = [&](const std::string& name) { return ckpt.Get(name); };
    auto weight = [&](const std::string& prefix) { return GetWeight(ckpt, prefix); };
    RRT_ASSIGN_OR_RETURN(m->embed_, get("model.embed_tokens.weight"));
    RRT_ASSIGN_OR_RETURN(m->final_norm_, get("model.norm.weight"));
    if (c.tie_word_embeddings) {
      m->lm_head_.data = m->embed_;
    } else {
      RRT_ASSIGN_OR_RETURN(m->lm_head_, weight("lm_head"));
    }
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string p = StrCat("model.layers.", i);
      DenseLayer l;
      RRT_ASSIGN_OR_RETURN(l.input_norm, get(p + ".input_layernorm.weight"));
      RRT_ASSIGN_OR_RETURN(l.post_norm, get(p + ".post_attention_layernorm.weight"));
      RRT_ASSIGN_OR_RETURN(l.q, weight(p + ".self_attn.q_proj"));
      RRT_ASSIGN_OR_RETURN(l.k, weight(p + ".self_attn.k_proj"));
      RRT_ASSIGN_OR_RETURN(l.v, weight(p + ".self_attn.v_proj"));
      RRT_ASSIGN_OR_RETURN(l.o, weight(p + ".self_attn.o_proj"));
      RRT_ASSIGN_OR_RETURN(l.gate, weight(p + ".mlp.gate_proj"));
      RRT_ASSIGN_OR_RETURN(l.up, weight(p + ".mlp.up_proj"));
      RRT_ASSIGN_OR_RETURN(l.down, weight(p + ".mlp.down_proj"));
      if (c.attention_bias) {
        RRT_ASSIGN_OR_RETURN(l.q_bias, get(p + ".self_attn.q_proj.bias"));
        RRT_ASSIGN_OR_RETURN(l.k_bias, get(p + ".self_attn.k_proj.bias"));
        RRT_ASSIGN_OR_RETURN(l.v_bias, get(p + ".self_attn.v_proj.bias"));
      }
      m->layers_.push_back(std::move(l));
    }
    return std::unique_ptr<ArchitectureModel>(std::move(m));
  }

  KvCacheShape CacheShape(DType dtype) const override {
    return {cfg_.num_hidden_layers, cfg_.num_key_value_heads, cfg_.head_dim, cfg_.head_dim, dtype};
  }

  absl::Status Forward(Backend& be, const PagedKvCache& cache, const ForwardPlan& plan,
                       const TensorView& logits) const override {
    const int64_t t = static_cast<int64_t>(plan.tokens.size());
    const int64_t h = cfg_.hidden_size, hd = cfg_.head_dim;
    const int64_t nh = cfg_.num_attention_heads, nkv = cfg_.num_key_value_heads;
    const int64_t inter = cfg_.intermediate_size;
    const float eps = static_cast<float>(cfg_.rms_norm_eps);
    auto alloc = [&](std::initializer_list<int64_t> shape) { return be.Allocate(DType::kF32, shape); };
    RRT_ASSIGN_OR_RETURN(TensorView x, alloc({t, h}));        // residual stream
    RRT_ASSIGN_OR_RETURN(TensorView normed, alloc({t, h}));
    RRT_ASSIGN_OR_RETURN(TensorView q, alloc({t, nh * hd}));
    RRT_ASSIGN_OR_RETURN(TensorView k, alloc({t, nkv * hd}));
    RRT_ASSIGN_OR_RETURN(TensorView v, alloc({t, nkv * hd}));
    RRT_ASSIGN_OR_RETURN(TensorView attn, alloc({t, nh * hd}));
    RRT_ASSIGN_OR_RETURN(TensorView proj, alloc({t, h}));
    RRT_ASSIGN_OR_RETURN(TensorView gate, alloc({t, inter}));
    RRT_ASSIGN_OR_RETURN(TensorView up, alloc({t, inter}));
    RRT_ASSIGN_OR_RETURN(TensorView q3, q.Reshape({t, nh, hd}));
    RRT_ASSIGN_OR_RETURN(TensorView k3, k.Reshape({t, nkv, hd}));
    RRT_ASSIGN_OR_RETURN(TensorView v3, v.Reshape({t, nkv, hd}));
    RRT_ASSIGN_OR_RETURN(TensorView attn3, attn.Reshape({t, nh, hd}));
    auto bias = [](const TensorView& b) -> const TensorView* { return b.empty() ? nullptr : &b; };

    RRT_RETURN_IF_ERROR(be.Embedding(embed_, plan.tokens, x));
    if (!layers_.empty()) RRT_RETURN_IF_ERROR(be.RmsNorm(x, layers_[0].input_norm, eps, normed));
    for (size_t i = 0; i < layers_.size(); ++i) {
      const DenseLayer& l = layers_[i];
      // x = x + o(attention(rope(q), rope(k), v))   with q, k, v from normed = rmsnorm(x)
      RRT_RETURN_IF_ERROR(be.MatMulShared(normed, {&l.q, &l.k, &l.v},
                                          {bias(l.q_bias), bias(l.k_bias), bias(l.v_bias)}, {&q, &k, &v}));
      RRT_RETURN_IF_ERROR(be.RopeAndStoreKv(q3, k3, v3, plan.positions, rope_.inv_freq,
                                            rope_.layout, rope_.cos_sin_scale, plan.slots,
                                            cache.Layer(i)));
      RRT_RETURN_IF_ERROR(be.Attention(q3, cache.Layer(i), plan.sequences, rope_.softmax_scale, attn3));
      RRT_RETURN_IF_ERROR(
          be.MatMulAddRmsNorm(attn, nullptr, l.o, proj, x, l.post_norm, eps, normed));
      // x = x + down(silu(gate(n)) * up(n))   with n = rmsnorm(x); `formed`: the backend
      // wrote the product into gate already
      RRT_ASSIGN_OR_RETURN(const bool formed, be.GateUpMatMul(normed, l.gate, l.up, gate, up));
      const TensorView* product_up = formed ? nullptr : &up;
      if (i + 1 < layers_.size()) {  // the next layer's input norm with the residual step
        RRT_RETURN_IF_ERROR(be.MatMulAddRmsNorm(gate, product_up, l.down, proj, x,
                                                layers_[i + 1].input_norm, eps, normed));
      } else {
        RRT_RETURN_IF_ERROR(formed ? be.MatMul(gate, l.down, nullptr, proj)
                                   : be.SiluMulMatMul(gate, up, l.down, proj));
        RRT_RETURN_IF_ERROR(be.Add(x, proj, x));
      }
    }
    return HeadLogits(be, x, plan.logit_rows, final_norm_, eps, lm_head_, logits);
  }

 private:
  explicit DenseModel(const ModelConfig& c) : cfg_(c) {}
  ModelConfig cfg_;
  RopeParams rope_;
  TensorView embed_, final_norm_;
  Weight lm_head_;
  std::vector<DenseLayer> layers_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ArchitectureModel>> CreateDenseModel(const ModelConfig& config,
                                                                   const Checkpoint& checkpoint) {
  return DenseModel::Create(config, checkpoint);
}

}  // namespace reasonrt
