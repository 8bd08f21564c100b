// deepseek_v2 and deepseek_v3 (R1): Multi-head Latent Attention in its absorbed form and
// Mixture-of-Experts MLPs.
//
// Attention of layer l, per token (H heads, c = kv_lora_rank, r = qk_rope_head_dim):
//   q = q_b(rmsnorm(q_a(n)))  or  q_proj(n)                 [H, nope + r]
//   [c_kv; k_pe] = kv_a_proj_with_mqa(n);  c_kv = rmsnorm(c_kv);  k_pe = rope(k_pe)
//   q_abs[h] = [W_UK[h]^T q_nope[h]; rope(q_pe[h])]          [H, c + r]
//   cache <- [c_kv; k_pe]                                    (c + r values per token)
//   ctx[h] = softmax(scale * q_abs[h] . cache^T) . cache[:, :c]
//   out = o_proj([W_UV[h] ctx[h] for h])
// with W_UK[h] / W_UV[h] the k_nope / v rows of head h of kv_b_proj. This equals the naive
// form (k_nope = W_UK c_kv, v = W_UV c_kv per head) by associativity; the cache holds only
// the latent and the shared RoPE key.
//
// MoE layer: y = sum_j w_j * expert_j(n) + shared(n) with (experts, w) from the router of
// reasonrt/moe.h on gate logits computed in f32. Each active expert runs one GEMM over the
// tokens routed to it (Backend::GroupedMatMul); decode touches only the chosen experts.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "lib/core/status_macros.h"
#include "lib/core/strings.h"
#include "lib/models/architecture.h"
#include "lib/models/rope.h"
#include "lib/runtime/kv_cache.h"

namespace reasonrt {
namespace {

struct Mlp {
  Weight gate, up, down;
};

struct DeepseekLayer {
  TensorView input_norm, post_norm;
  // Attention.
  Weight q;                  // q_proj, or q_b_proj with q-LoRA
  Weight q_a;                // q-LoRA only
  TensorView q_a_norm;       // q-LoRA only
  Weight kv_a;               // kv_a_proj_with_mqa: [c + r, hidden]
  TensorView kv_a_norm;
  TensorView w_uk;           // [H, nope, c]: used as x . W (kInOut)
  TensorView w_uv;           // [H, v, c]: used as x . W^T (kOutIn)
  Weight o;
  // MLP: dense, or routed experts plus shared ones.
  bool moe = false;
  Mlp dense;
  Weight router;                   // f32 [E, hidden]
  std::vector<float> router_bias;  // noaux_tc's e_score_correction_bias
  std::vector<Weight> expert_gates, expert_ups, expert_downs;  // the routed experts' projections
  bool has_shared = false;
  Mlp shared;
};

// A [rows, cols] weight in f32: itself if stored so, else an owned dequantized copy.
absl::StatusOr<TensorView> F32Weight(const Weight& w) {
  const TensorView& d = w.data;
  if (d.dtype() == DType::kF32) return d;
  RRT_ASSIGN_OR_RETURN(TensorView out, TensorView::Allocate(DType::kF32, {d.dim(0), d.dim(1)}));
  if (d.dtype() == DType::kF8E4M3) {
    DequantizeFp8Blocks(d.data_as<uint8_t>(), w.scale_inv.data_as<float>(), d.dim(0), d.dim(1),
                        out.mutable_data_as<float>());
  } else {
    ConvertToF32(d.dtype(), d.data(), out.mutable_data_as<float>(), static_cast<size_t>(d.num_elements()));
  }
  return out;
}

// kv_b_proj in a dtype HeadMatMul reads (f32 or bf16): itself when stored so, else an f32
// copy (fp8 blocks do not follow the per-head slices, and f16 is not read there).
absl::StatusOr<TensorView> HeadMatMulWeight(const Weight& w) {
  if (w.data.dtype() == DType::kBF16) return w.data;
  return F32Weight(w);
}

class DeepseekModel final : public ArchitectureModel {
 public:
  static absl::StatusOr<std::unique_ptr<ArchitectureModel>> Create(const ModelConfig& c,
                                                                   const Checkpoint& ckpt) {
    auto m = std::unique_ptr<DeepseekModel>(new DeepseekModel(c));
    RRT_ASSIGN_OR_RETURN(m->rope_, ComputeRope(c));
    auto get = [&](const std::string& name) { return ckpt.Get(name); };
    auto weight = [&](const std::string& prefix) { return GetWeight(ckpt, prefix); };
    auto mlp = [&](const std::string& prefix) -> absl::StatusOr<Mlp> {
      Mlp out;
      RRT_ASSIGN_OR_RETURN(out.gate, weight(prefix + ".gate_proj"));
      RRT_ASSIGN_OR_RETURN(out.up, weight(prefix + ".up_proj"));
      RRT_ASSIGN_OR_RETURN(out.down, weight(prefix + ".down_proj"));
      return out;
    };
    RRT_ASSIGN_OR_RETURN(m->embed_, get("model.embed_tokens.weight"));
    RRT_ASSIGN_OR_RETURN(m->final_norm_, get("model.norm.weight"));
    if (c.tie_word_embeddings) {
      m->lm_head_.data = m->embed_;
    } else {
      RRT_ASSIGN_OR_RETURN(m->lm_head_, weight("lm_head"));
    }
    const int64_t nh = c.num_attention_heads, nope = c.qk_nope_head_dim, vd = c.v_head_dim;
    const int64_t rank = c.kv_lora_rank;
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string p = StrCat("model.layers.", i);
      DeepseekLayer l;
      RRT_ASSIGN_OR_RETURN(l.input_norm, get(p + ".input_layernorm.weight"));
      RRT_ASSIGN_OR_RETURN(l.post_norm, get(p + ".post_attention_layernorm.weight"));
      const std::string a = p + ".self_attn";
      if (c.q_lora_rank > 0) {
        RRT_ASSIGN_OR_RETURN(l.q_a, weight(a + ".q_a_proj"));
        RRT_ASSIGN_OR_RETURN(l.q_a_norm, get(a + ".q_a_layernorm.weight"));
        RRT_ASSIGN_OR_RETURN(l.q, weight(a + ".q_b_proj"));
      } else {
        RRT_ASSIGN_OR_RETURN(l.q, weight(a + ".q_proj"));
      }
      RRT_ASSIGN_OR_RETURN(l.kv_a, weight(a + ".kv_a_proj_with_mqa"));
      RRT_ASSIGN_OR_RETURN(l.kv_a_norm, get(a + ".kv_a_layernorm.weight"));
      RRT_ASSIGN_OR_RETURN(Weight kv_b, weight(a + ".kv_b_proj"));
      RRT_ASSIGN_OR_RETURN(TensorView kv_b_heads, HeadMatMulWeight(kv_b));
      RRT_ASSIGN_OR_RETURN(kv_b_heads, kv_b_heads.Reshape({nh, nope + vd, rank}));
      RRT_ASSIGN_OR_RETURN(l.w_uk, kv_b_heads.Slice(1, 0, nope));
      RRT_ASSIGN_OR_RETURN(l.w_uv, kv_b_heads.Slice(1, nope, nope + vd));
      RRT_ASSIGN_OR_RETURN(l.o, weight(a + ".o_proj"));
      l.moe = c.IsMoeLayer(i);
      if (!l.moe) {
        RRT_ASSIGN_OR_RETURN(l.dense, mlp(p + ".mlp"));
      } else {
        // The router in f32: its choices should not depend on the stored dtype's rounding
        // of activations (the backend keeps f32 weights' products f32).
        RRT_ASSIGN_OR_RETURN(Weight gate, weight(p + ".mlp.gate"));
        RRT_ASSIGN_OR_RETURN(l.router.data, F32Weight(gate));
        if (c.topk_method == TopkMethod::kNoauxTc) {
          RRT_ASSIGN_OR_RETURN(TensorView bias, get(p + ".mlp.gate.e_score_correction_bias"));
          l.router_bias.resize(static_cast<size_t>(c.n_routed_experts));
          ConvertToF32(bias.dtype(), bias.data(), l.router_bias.data(), l.router_bias.size());
        }
        for (int64_t e = 0; e < c.n_routed_experts; ++e) {
          RRT_ASSIGN_OR_RETURN(Mlp expert, mlp(StrCat(p, ".mlp.experts.", e)));
          l.expert_gates.push_back(expert.gate);
          l.expert_ups.push_back(expert.up);
          l.expert_downs.push_back(expert.down);
        }
        l.has_shared = c.n_shared_experts > 0;
        if (l.has_shared) {
          RRT_ASSIGN_OR_RETURN(l.shared, mlp(p + ".mlp.shared_experts"));
        }
      }
      m->layers_.push_back(std::move(l));
    }
    return std::unique_ptr<ArchitectureModel>(std::move(m));
  }

  KvCacheShape CacheShape(DType dtype) const override {
    return {cfg_.num_hidden_layers, 1, cfg_.kv_lora_rank + cfg_.qk_rope_head_dim, 0, dtype};
  }

  RoutingStats NewRoutingStats() const override {
    RoutingStats s;
    s.n_routed_experts = cfg_.n_routed_experts;
    s.k = cfg_.num_experts_per_tok;
    for (size_t i = 0; i < layers_.size(); ++i) {
      if (layers_[i].moe) s.layers.push_back(static_cast<int32_t>(i));
    }
    s.load.assign(s.layers.size() * static_cast<size_t>(s.n_routed_experts), 0);
    return s;
  }

  absl::Status Forward(Backend& be, const PagedKvCache& cache, const ForwardPlan& plan,
                       const TensorView& logits) const override {
    const int64_t t = static_cast<int64_t>(plan.tokens.size());
    const int64_t h = cfg_.hidden_size;
    const float eps = static_cast<float>(cfg_.rms_norm_eps);
    RRT_ASSIGN_OR_RETURN(TensorView x, be.Allocate(DType::kF32, {t, h}));  // residual stream
    RRT_ASSIGN_OR_RETURN(TensorView normed, be.Allocate(DType::kF32, {t, h}));
    RRT_ASSIGN_OR_RETURN(TensorView proj, be.Allocate(DType::kF32, {t, h}));
    RRT_ASSIGN_OR_RETURN(Scratch s, MakeScratch(be, t));
    RRT_RETURN_IF_ERROR(be.Embedding(embed_, plan.tokens, x));
    // Each counted MoE layer's routing, where the backend computed it: brought to the host
    // once the pass is queued, so that no layer waits for it.
    std::vector<std::pair<int32_t, LayerRouting>> counted;
    if (!layers_.empty()) RRT_RETURN_IF_ERROR(be.RmsNorm(x, layers_[0].input_norm, eps, normed));
    for (size_t i = 0; i < layers_.size(); ++i) {
      const DeepseekLayer& l = layers_[i];
      // normed = rmsnorm(x) with this layer's input norm (the step before made it)
      RRT_RETURN_IF_ERROR(Attention(be, l, cache.Layer(static_cast<int64_t>(i)), plan, normed, s, proj));
      RRT_RETURN_IF_ERROR(be.AddRmsNorm(x, proj, l.post_norm, eps, normed));
      if (!l.moe) {
        RRT_RETURN_IF_ERROR(RunMlp(be, l.dense, normed, proj));
      } else {
        LayerRouting routing;
        RRT_RETURN_IF_ERROR(Moe(be, l, normed, proj, routing));
        if (plan.routing != nullptr)
          counted.emplace_back(static_cast<int32_t>(i), std::move(routing));
      }
      if (i + 1 < layers_.size()) {  // the next layer's input norm with the residual step
        RRT_RETURN_IF_ERROR(be.AddRmsNorm(x, proj, layers_[i + 1].input_norm, eps, normed));
      } else {
        RRT_RETURN_IF_ERROR(be.Add(x, proj, x));
      }
    }
    RRT_RETURN_IF_ERROR(HeadLogits(be, x, plan.logit_rows, final_norm_, eps, lm_head_, logits));
    for (size_t row = 0; row < counted.size(); ++row) {
      RRT_ASSIGN_OR_RETURN(Routing r, ToHost(be, counted[row].second));
      Record(r, plan, counted[row].first, static_cast<int>(row), *plan.routing);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Routing> Route(Backend& be, int64_t layer, const TensorView& hidden) const override {
    RRT_RETURN_IF_ERROR(CheckMoeLayer(layer, hidden));
    RRT_ASSIGN_OR_RETURN(LayerRouting lr, RouteLayer(be, layers_[layer], hidden));
    return ToHost(be, lr);
  }

  absl::Status MoeBlock(Backend& be, int64_t layer, const TensorView& hidden, const TensorView& out,
                        Routing* routing) const override {
    RRT_RETURN_IF_ERROR(CheckMoeLayer(layer, hidden));
    LayerRouting lr;
    RRT_RETURN_IF_ERROR(Moe(be, layers_[layer], hidden, out, lr));
    if (routing != nullptr) {
      RRT_ASSIGN_OR_RETURN(*routing, ToHost(be, lr));
    }
    return absl::OkStatus();
  }

 private:
  explicit DeepseekModel(const ModelConfig& c) : cfg_(c), router_(RouterConfig::FromModelConfig(c)) {}

  // Activations of the attention block, allocated once per Forward.
  struct Scratch {
    TensorView q_a;    // [T, q_lora_rank] (q-LoRA only)
    TensorView q;      // [T, H, nope + r]
    TensorView kv;     // [T, 1, c + r]: the cache entries
    TensorView q_abs;  // [T, H, c + r]
    TensorView ctx;    // [T, H, c]
    TensorView attn;   // [T, H, v]
  };

  absl::StatusOr<Scratch> MakeScratch(Backend& be, int64_t t) const {
    const int64_t nh = cfg_.num_attention_heads, c = cfg_.kv_lora_rank, r = cfg_.qk_rope_head_dim;
    Scratch s;
    if (cfg_.q_lora_rank > 0) {
      RRT_ASSIGN_OR_RETURN(s.q_a, be.Allocate(DType::kF32, {t, cfg_.q_lora_rank}));
    }
    RRT_ASSIGN_OR_RETURN(s.q, be.Allocate(DType::kF32, {t, nh, cfg_.qk_nope_head_dim + r}));
    RRT_ASSIGN_OR_RETURN(s.kv, be.Allocate(DType::kF32, {t, 1, c + r}));
    RRT_ASSIGN_OR_RETURN(s.q_abs, be.Allocate(DType::kF32, {t, nh, c + r}));
    RRT_ASSIGN_OR_RETURN(s.ctx, be.Allocate(DType::kF32, {t, nh, c}));
    RRT_ASSIGN_OR_RETURN(s.attn, be.Allocate(DType::kF32, {t, nh, cfg_.v_head_dim}));
    return s;
  }

  // out [T, hidden] = o_proj(MLA(normed)); writes this batch's cache entries.
  absl::Status Attention(Backend& be, const DeepseekLayer& l, const PagedKvLayer& cache,
                         const ForwardPlan& plan, const TensorView& normed, const Scratch& s,
                         const TensorView& out) const {
    const int64_t t = normed.dim(0), nh = cfg_.num_attention_heads;
    const int64_t nope = cfg_.qk_nope_head_dim, r = cfg_.qk_rope_head_dim, c = cfg_.kv_lora_rank;
    const float eps = static_cast<float>(cfg_.rms_norm_eps);
    RRT_ASSIGN_OR_RETURN(TensorView q2, s.q.Reshape({t, nh * (nope + r)}));
    RRT_ASSIGN_OR_RETURN(TensorView kv2, s.kv.Reshape({t, c + r}));
    if (cfg_.q_lora_rank > 0) {
      RRT_RETURN_IF_ERROR(be.MatMulShared(normed, {&l.q_a, &l.kv_a}, {nullptr, nullptr}, {&s.q_a, &kv2}));
      RRT_RETURN_IF_ERROR(be.RmsNorm(s.q_a, l.q_a_norm, eps, s.q_a));
      RRT_RETURN_IF_ERROR(be.MatMul(s.q_a, l.q, nullptr, q2));
    } else {
      RRT_RETURN_IF_ERROR(be.MatMulShared(normed, {&l.q, &l.kv_a}, {nullptr, nullptr}, {&q2, &kv2}));
    }
    // The cache entry: [rmsnorm(c_kv); rope(k_pe)].
    RRT_ASSIGN_OR_RETURN(TensorView latent, kv2.Slice(1, 0, c));
    RRT_RETURN_IF_ERROR(be.RmsNorm(latent, l.kv_a_norm, eps, latent));
    RRT_ASSIGN_OR_RETURN(TensorView k_pe, s.kv.Slice(2, c, c + r));
    RRT_RETURN_IF_ERROR(be.Rope(k_pe, plan.positions, rope_.inv_freq, rope_.layout, rope_.cos_sin_scale));
    RRT_RETURN_IF_ERROR(be.StoreKv(s.kv, TensorView(), plan.slots, cache));
    // The absorbed query: [W_UK^T q_nope; rope(q_pe)] per head.
    RRT_ASSIGN_OR_RETURN(TensorView q_nope, s.q.Slice(2, 0, nope));
    RRT_ASSIGN_OR_RETURN(TensorView q_pe, s.q.Slice(2, nope, nope + r));
    RRT_ASSIGN_OR_RETURN(TensorView abs_nope, s.q_abs.Slice(2, 0, c));
    RRT_ASSIGN_OR_RETURN(TensorView abs_pe, s.q_abs.Slice(2, c, c + r));
    RRT_RETURN_IF_ERROR(be.HeadMatMul(q_nope, l.w_uk, HeadWeightLayout::kInOut, abs_nope));
    RRT_RETURN_IF_ERROR(be.Copy(q_pe, abs_pe));
    RRT_RETURN_IF_ERROR(be.Rope(abs_pe, plan.positions, rope_.inv_freq, rope_.layout, rope_.cos_sin_scale));
    RRT_RETURN_IF_ERROR(be.Attention(s.q_abs, cache, plan.sequences, rope_.softmax_scale, s.ctx));
    RRT_RETURN_IF_ERROR(be.HeadMatMul(s.ctx, l.w_uv, HeadWeightLayout::kOutIn, s.attn));
    RRT_ASSIGN_OR_RETURN(TensorView attn2, s.attn.Reshape({t, nh * cfg_.v_head_dim}));
    return be.MatMul(attn2, l.o, nullptr, out);
  }

  // out = down(silu(gate(x)) * up(x)).
  static absl::Status RunMlp(Backend& be, const Mlp& m, const TensorView& x, const TensorView& out) {
    const int64_t t = x.dim(0), inter = m.gate.data.dim(0);
    RRT_ASSIGN_OR_RETURN(TensorView gate, be.Allocate(DType::kF32, {t, inter}));
    RRT_ASSIGN_OR_RETURN(TensorView up, be.Allocate(DType::kF32, {t, inter}));
    RRT_ASSIGN_OR_RETURN(const bool formed, be.GateUpMatMul(x, m.gate, m.up, gate, up));
    return formed ? be.MatMul(gate, m.down, nullptr, out) : be.SiluMulMatMul(gate, up, m.down, out);
  }

  // A layer's routing where the backend computed it: experts [T, k] (i32), weights [T, k].
  struct LayerRouting {
    TensorView experts, weights;
  };

  static absl::StatusOr<Routing> ToHost(Backend& be, const LayerRouting& lr) {
    Routing r;
    r.tokens = lr.experts.dim(0);
    r.k = lr.experts.dim(1);
    r.experts.resize(static_cast<size_t>(r.tokens * r.k));
    r.weights.resize(static_cast<size_t>(r.tokens * r.k));
    RRT_ASSIGN_OR_RETURN(TensorView he,
                         TensorView::Borrow(r.experts.data(), DType::kI32, {r.tokens, r.k}));
    RRT_ASSIGN_OR_RETURN(TensorView hw,
                         TensorView::Borrow(r.weights.data(), DType::kF32, {r.tokens, r.k}));
    RRT_RETURN_IF_ERROR(be.Copy(lr.experts, he));
    RRT_RETURN_IF_ERROR(be.Copy(lr.weights, hw));
    return r;
  }

  // The router's choice for x [T, hidden], computed (and left) where the backend runs.
  absl::StatusOr<LayerRouting> RouteLayer(Backend& be, const DeepseekLayer& l,
                                          const TensorView& x) const {
    const int64_t t = x.dim(0), k = router_.num_experts_per_tok;
    RRT_ASSIGN_OR_RETURN(TensorView logits, be.Allocate(DType::kF32, {t, cfg_.n_routed_experts}));
    RRT_RETURN_IF_ERROR(be.MatMul(x, l.router, nullptr, logits));
    LayerRouting r;
    RRT_ASSIGN_OR_RETURN(r.experts, be.Allocate(DType::kI32, {t, k}));
    RRT_ASSIGN_OR_RETURN(r.weights, be.Allocate(DType::kF32, {t, k}));
    RRT_RETURN_IF_ERROR(be.RouteExperts(logits, router_, l.router_bias, r.experts, r.weights));
    return r;
  }

  // out [T, hidden] = routed experts (weighted) + shared experts, of x [T, hidden]. The
  // routing stays where the backend computed it (a GPU's memory; `routing` gets it): the
  // experts' matmuls take their ids from there.
  absl::Status Moe(Backend& be, const DeepseekLayer& l, const TensorView& x, const TensorView& out,
                   LayerRouting& routing) const {
    const int64_t t = x.dim(0), h = cfg_.hidden_size, inter = cfg_.moe_intermediate_size;
    const int64_t k = router_.num_experts_per_tok, pairs = t * k;
    RRT_ASSIGN_OR_RETURN(routing, RouteLayer(be, l, x));
    const TensorView &experts = routing.experts, &weights = routing.weights;
    // Pair p = t * k + j is token t's j-th expert: its row of xe is token t's.
    std::vector<int32_t> token_of(static_cast<size_t>(pairs));
    for (int64_t p = 0; p < pairs; ++p) token_of[p] = static_cast<int32_t>(p / k);
    RRT_ASSIGN_OR_RETURN(TensorView ids, TensorView::Borrow(experts.mutable_data(), DType::kI32,
                                                            {pairs}, experts.device()));
    RRT_ASSIGN_OR_RETURN(
        TensorView pair_weights,
        TensorView::Borrow(weights.mutable_data(), DType::kF32, {pairs}, weights.device()));
    RRT_ASSIGN_OR_RETURN(TensorView xe, be.Allocate(DType::kF32, {pairs, h}));
    RRT_ASSIGN_OR_RETURN(TensorView ge, be.Allocate(DType::kF32, {pairs, inter}));
    RRT_ASSIGN_OR_RETURN(TensorView ue, be.Allocate(DType::kF32, {pairs, inter}));
    RRT_ASSIGN_OR_RETURN(TensorView de, be.Allocate(DType::kF32, {pairs, h}));
    RRT_RETURN_IF_ERROR(be.Embedding(x, token_of, xe));
    RRT_ASSIGN_OR_RETURN(const bool formed,
                         be.ExpertGateUpMatMul(xe, ids, l.expert_gates, l.expert_ups, ge, ue));
    if (!formed) RRT_RETURN_IF_ERROR(be.SiluMul(ge, ue, ge));
    RRT_RETURN_IF_ERROR(be.ExpertMatMul(ge, ids, l.expert_downs, de));
    if (l.has_shared) {
      RRT_RETURN_IF_ERROR(RunMlp(be, l.shared, x, out));
    } else {
      RRT_ASSIGN_OR_RETURN(TensorView zeros, be.Allocate(DType::kF32, {t, h}));  // out may be device memory
      RRT_RETURN_IF_ERROR(be.Copy(zeros, out));
    }
    RRT_RETURN_IF_ERROR(be.AddWeightedRows(de, pair_weights, k, out));
    return absl::OkStatus();
  }

  void Record(const Routing& r, const ForwardPlan& plan, int32_t layer, int moe_row,
              RoutingStats& stats) const {
    int64_t* load = stats.load.data() + static_cast<size_t>(moe_row) * static_cast<size_t>(stats.n_routed_experts);
    for (int32_t e : r.experts) ++load[e];
    if (moe_row == 0) stats.tokens += r.tokens;
    if (!plan.routing_trace) return;
    for (int64_t t = 0; t < r.tokens; ++t) {
      stats.trace_seq_ids.push_back(plan.seq_ids.empty() ? 0 : plan.seq_ids[t]);
      stats.trace_positions.push_back(plan.positions[t]);
      stats.trace_layers.push_back(layer);
    }
    stats.trace_experts.insert(stats.trace_experts.end(), r.experts.begin(), r.experts.end());
    stats.trace_weights.insert(stats.trace_weights.end(), r.weights.begin(), r.weights.end());
  }

  absl::Status CheckMoeLayer(int64_t layer, const TensorView& hidden) const {
    if (layer < 0 || layer >= static_cast<int64_t>(layers_.size()) || !layers_[layer].moe) {
      return absl::InvalidArgumentError(StrCat("layer ", layer, " has no routed experts (MoE layers: ",
                                               cfg_.first_k_dense_replace, " .. ", layers_.size() - 1, ")"));
    }
    if (hidden.rank() != 2 || hidden.dim(1) != cfg_.hidden_size) {
      return absl::InvalidArgumentError(StrCat("hidden states ", hidden.DebugString(), " are not [tokens, ",
                                               cfg_.hidden_size, "]"));
    }
    return absl::OkStatus();
  }

  ModelConfig cfg_;
  RouterConfig router_;
  RopeParams rope_;
  TensorView embed_, final_norm_;
  Weight lm_head_;
  std::vector<DeepseekLayer> layers_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ArchitectureModel>> CreateDeepseekModel(const ModelConfig& config,
                                                                      const Checkpoint& checkpoint) {
  return DeepseekModel::Create(config, checkpoint);
}

}  // namespace reasonrt
