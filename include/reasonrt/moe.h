// reasonrt/moe.h: Mixture-of-Experts routing of DeepSeek-V2/V3 (R1), callable directly.
//
// Basic usage:
//
//   reasonrt::RouterConfig router = reasonrt::RouterConfig::FromModelConfig(model->config());
//   // gate_logits: [tokens, n_routed_experts] = hidden states x the layer's gate weight^T
//   absl::StatusOr<reasonrt::Routing> r = reasonrt::RouteTokens(router, gate_logits, tokens, bias);
//   // r->experts[t * r->k + j], r->weights[t * r->k + j]: token t's j-th expert and its weight
//
// The rules (f32 throughout), as DeepSeek's models define them:
// - scores: sigmoid(logits) (V3/R1) or softmax over the experts (V2);
// - selection scores: scores + e_score_correction_bias (V3's noaux_tc; the bias steers the
//   choice only), scores otherwise;
// - groups (noaux_tc, group_limited_greedy): n_group contiguous groups of experts, each
//   scored by the sum of its two best selection scores (noaux_tc) or its best one
//   (group_limited_greedy); the topk_group best groups stay, the others' experts are out;
// - the k = num_experts_per_tok best selection scores among the rest (ties: the lower
//   expert id first; groups likewise);
// - weights: the unbiased scores of those experts; if norm_topk_prob (and k > 1) divided
//   by their sum (+1e-20); then times routed_scaling_factor, except V2 with normalisation,
//   which does not scale.
// Shared experts are not routed: every token uses them with weight 1.
//
// A loaded model's layers can be probed directly (Model::RouteLayer, Model::MoeLayerForward),
// and sessions and generations count which experts their tokens went to (RoutingStats,
// Session::routing_stats, GenerateOptions::routing_stats):
//
//   std::vector<float> h = ...;  // [tokens, hidden_size]: layer 3's post-attention-norm output
//   absl::StatusOr<reasonrt::MoeLayerOutput> out = model->MoeLayerForward(3, h, tokens);
//   // out->routing as above; out->output [tokens, hidden_size] = routed + shared experts
//
// RouteTokens is thread-safe and has no state.
#ifndef REASONRT_MOE_H_
#define REASONRT_MOE_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "reasonrt/export.h"
#include "reasonrt/model_config.h"

namespace reasonrt {

struct RouterConfig {
  int64_t n_routed_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t n_group = 1;
  int64_t topk_group = 1;
  ScoringFunc scoring_func = ScoringFunc::kSoftmax;
  TopkMethod topk_method = TopkMethod::kGreedy;
  bool norm_topk_prob = false;
  double routed_scaling_factor = 1.0;
  // V3's rule: always scale by routed_scaling_factor (V2 scales only without normalising).
  bool always_scale = true;

  // The router of a deepseek_v2 / deepseek_v3 config.
  static RouterConfig FromModelConfig(const ModelConfig& config);
};

struct Routing {
  int64_t tokens = 0;
  int64_t k = 0;
  std::vector<int32_t> experts;  // [tokens, k], best first
  std::vector<float> weights;    // [tokens, k]
};

// The output of one MoE block run by itself.
struct MoeLayerOutput {
  Routing routing;
  // [tokens, hidden_size]: sum_j weight_j * expert_j(h) + sum of the shared experts(h), the
  // value the block adds to the residual stream.
  std::vector<float> output;
};

// Expert routing observed over a session's forward passes or a generation.
struct RoutingStats {
  int64_t n_routed_experts = 0;
  int64_t k = 0;                 // experts per token
  std::vector<int32_t> layers;   // the MoE decoder layers, ascending
  // [layers.size(), n_routed_experts]: how many tokens each expert of each layer received.
  std::vector<int64_t> load;
  int64_t tokens = 0;  // tokens that went through the MoE layers (each counted once)
  // The per-token trace, when enabled: entry i is the token at position trace_positions[i]
  // of sequence trace_seq_ids[i] in decoder layer trace_layers[i], in forward order.
  std::vector<int32_t> trace_seq_ids, trace_positions, trace_layers;
  std::vector<int32_t> trace_experts;  // [entries, k], best first
  std::vector<float> trace_weights;    // [entries, k]

  int64_t Load(size_t layer_row, int64_t expert) const {
    return load[layer_row * static_cast<size_t>(n_routed_experts) + static_cast<size_t>(expert)];
  }
  size_t trace_size() const { return trace_layers.size(); }
};

// Routes `tokens` rows of gate logits ([tokens, n_routed_experts], row-major).
// `correction_bias` ([n_routed_experts]) is required for noaux_tc and must be empty
// otherwise. InvalidArgument for inconsistent shapes or configs (k > experts, groups that
// do not divide the experts, topk_group > n_group, fewer experts left than k, NaN logits).
RRT_API absl::StatusOr<Routing> RouteTokens(const RouterConfig& config, absl::Span<const float> gate_logits,
                                            int64_t tokens, absl::Span<const float> correction_bias = {});

}  // namespace reasonrt

#endif  // REASONRT_MOE_H_
