// DeepSeek's MoE router (see reasonrt/moe.h for the rules).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "lib/core/strings.h"
#include "reasonrt/moe.h"

namespace reasonrt {

RouterConfig RouterConfig::FromModelConfig(const ModelConfig& c) {
  RouterConfig r;
  r.n_routed_experts = c.n_routed_experts;
  r.num_experts_per_tok = c.num_experts_per_tok;
  r.n_group = c.n_group;
  r.topk_group = c.topk_group;
  r.scoring_func = c.scoring_func;
  r.topk_method = c.topk_method;
  r.norm_topk_prob = c.norm_topk_prob;
  r.routed_scaling_factor = c.routed_scaling_factor;
  r.always_scale = c.architecture != Architecture::kDeepseekV2;
  return r;
}

namespace {

absl::Status Invalid(std::string_view message) { return absl::InvalidArgumentError(StrCat("RouteTokens: ", message)); }

// Indices of the k largest values, best first; ties go to the lower index.
void TopK(const std::vector<float>& v, int64_t k, std::vector<int32_t>& out) {
  out.resize(v.size());
  std::iota(out.begin(), out.end(), 0);
  std::partial_sort(out.begin(), out.begin() + k, out.end(),
                    [&](int32_t a, int32_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
  out.resize(k);
}

}  // namespace

absl::StatusOr<Routing> RouteTokens(const RouterConfig& c, absl::Span<const float> logits, int64_t tokens,
                                    absl::Span<const float> bias) {
  const int64_t e = c.n_routed_experts, k = c.num_experts_per_tok;
  if (e <= 0 || k <= 0 || k > e) return Invalid(StrCat("num_experts_per_tok ", k, " with ", e, " experts"));
  if (tokens < 0 || static_cast<int64_t>(logits.size()) != tokens * e) {
    return Invalid(StrCat("gate_logits has ", logits.size(), " values, expected ", tokens, " x ", e));
  }
  const bool grouped = c.topk_method != TopkMethod::kGreedy;
  if (grouped && (c.n_group <= 0 || e % c.n_group != 0 || c.topk_group <= 0 || c.topk_group > c.n_group)) {
    return Invalid(StrCat("n_group ", c.n_group, " / topk_group ", c.topk_group, " do not fit ", e, " experts"));
  }
  const int64_t per_group = grouped ? e / c.n_group : e;
  if (grouped && c.topk_group * per_group < k) {
    return Invalid(StrCat(c.topk_group, " groups of ", per_group, " experts leave fewer than k = ", k));
  }
  if (c.topk_method == TopkMethod::kNoauxTc) {
    if (static_cast<int64_t>(bias.size()) != e) return Invalid(StrCat("noaux_tc needs a correction bias of ", e));
    if (c.topk_group > 0 && per_group < 2) return Invalid("noaux_tc needs at least 2 experts per group");
  } else if (!bias.empty()) {
    return Invalid("a correction bias is only used by noaux_tc");
  }
  Routing r;
  r.tokens = tokens;
  r.k = k;
  r.experts.resize(tokens * k);
  r.weights.resize(tokens * k);
  std::vector<float> scores(e), choice(e), group_score;
  std::vector<int32_t> best, groups;
  constexpr float kOut = -std::numeric_limits<float>::infinity();
  for (int64_t t = 0; t < tokens; ++t) {
    const float* row = logits.data() + t * e;
    for (int64_t i = 0; i < e; ++i) {
      if (std::isnan(row[i])) return Invalid(StrCat("NaN gate logit (token ", t, ", expert ", i, ")"));
    }
    if (c.scoring_func == ScoringFunc::kSigmoid) {
      for (int64_t i = 0; i < e; ++i) scores[i] = 1.0f / (1.0f + std::exp(-row[i]));
    } else {
      const float m = *std::max_element(row, row + e);
      float z = 0;
      for (int64_t i = 0; i < e; ++i) z += scores[i] = std::exp(row[i] - m);
      for (int64_t i = 0; i < e; ++i) scores[i] /= z;
    }
    for (int64_t i = 0; i < e; ++i) choice[i] = scores[i] + (bias.empty() ? 0.0f : bias[i]);
    if (grouped) {
      group_score.assign(c.n_group, 0.0f);
      for (int64_t g = 0; g < c.n_group; ++g) {
        std::vector<float> members(choice.begin() + g * per_group, choice.begin() + (g + 1) * per_group);
        std::sort(members.begin(), members.end(), std::greater<float>());
        group_score[g] = c.topk_method == TopkMethod::kNoauxTc ? members[0] + members[1] : members[0];
      }
      TopK(group_score, c.topk_group, groups);
      std::vector<bool> keep(c.n_group, false);
      for (int32_t g : groups) keep[g] = true;
      for (int64_t i = 0; i < e; ++i) {
        if (!keep[i / per_group]) choice[i] = kOut;
      }
    }
    TopK(choice, k, best);
    double sum = 0;
    for (int64_t j = 0; j < k; ++j) sum += scores[best[j]];
    const bool normalise = c.norm_topk_prob && k > 1;
    const double scale = normalise ? 1.0 / (sum + 1e-20) : 1.0;
    const double factor = (normalise && !c.always_scale) ? 1.0 : c.routed_scaling_factor;
    for (int64_t j = 0; j < k; ++j) {
      r.experts[t * k + j] = best[j];
      r.weights[t * k + j] = static_cast<float>(scores[best[j]] * scale * factor);
    }
  }
  return r;
}

}  // namespace reasonrt
