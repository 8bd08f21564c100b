// Group-relative advantages and the clipped policy loss with its gradient. Double
// precision inside; inputs and outputs f32.
#include <algorithm>
#include <cmath>

#include "lib/core/strings.h"
#include "reasonrt/grpo.h"

namespace reasonrt::grpo {
namespace {

// Mean and std of the present (non-NaN) values; `count` of them.
struct Stats {
  int64_t count = 0;
  double mean = 0.0, std = 0.0;
  bool all_equal = true;
};

Stats Describe(absl::Span<const double> v, bool unbiased) {
  Stats s;
  double sum = 0.0, first = 0.0;
  for (double x : v) {
    if (std::isnan(x)) continue;
    if (s.count == 0) first = x;
    s.all_equal = s.all_equal && x == first;
    sum += x;
    ++s.count;
  }
  if (s.count == 0) return s;
  s.mean = s.all_equal ? first : sum / static_cast<double>(s.count);
  double ss = 0.0;
  for (double x : v) {
    if (!std::isnan(x)) ss += (x - s.mean) * (x - s.mean);
  }
  const int64_t dof = unbiased ? s.count - 1 : s.count;
  s.std = dof > 0 ? std::sqrt(ss / static_cast<double>(dof)) : 0.0;
  return s;
}

// Advantages of one reward vector (NaN: missing), per the options.
std::vector<double> AdvantagesOf(const std::vector<double>& r, const AdvantageOptions& o) {
  const int64_t n = static_cast<int64_t>(r.size()), g = o.group_size;
  std::vector<double> a(r.size(), 0.0);
  const Stats batch = Describe(r, o.unbiased_std);
  for (int64_t start = 0; start < n; start += g) {
    const absl::Span<const double> group(r.data() + start, static_cast<size_t>(g));
    const Stats s = Describe(group, o.unbiased_std);
    if (s.count == 0 || s.all_equal) continue;  // exactly 0
    const double scale = o.scaling == AdvantageScaling::kGroup   ? s.std + o.eps
                         : o.scaling == AdvantageScaling::kBatch ? batch.std + o.eps
                                                                 : 1.0;
    for (int64_t i = 0; i < g; ++i) {
      const double x = group[i];
      if (std::isnan(x)) continue;
      double centred = x - s.mean;
      // Leave-one-out: x - (sum - x) / (count - 1) = (x - mean) * count / (count - 1).
      if (o.baseline == Baseline::kLeaveOneOut) {
        centred = s.count > 1 ? centred * static_cast<double>(s.count) / static_cast<double>(s.count - 1) : 0.0;
      }
      a[start + i] = centred / scale;
    }
  }
  return a;
}

}  // namespace

absl::StatusOr<std::vector<float>> ComputeAdvantages(absl::Span<const float> rewards, int64_t functions,
                                                     const AdvantageOptions& o) {
  if (functions < 1 || rewards.size() % static_cast<size_t>(functions) != 0) {
    return absl::InvalidArgumentError(StrCat("advantages: ", rewards.size(), " rewards do not split into ",
                                             functions, " functions"));
  }
  const int64_t n = static_cast<int64_t>(rewards.size()) / functions;
  if (o.group_size < 1 || n % o.group_size != 0) {
    return absl::InvalidArgumentError(StrCat("advantages: ", n, " samples do not split into groups of ",
                                             o.group_size));
  }
  if (!o.weights.empty() && static_cast<int64_t>(o.weights.size()) != functions) {
    return absl::InvalidArgumentError(StrCat("advantages: ", o.weights.size(), " weights for ", functions,
                                             " reward functions"));
  }
  if (!(o.eps >= 0.0) || std::isinf(o.eps)) return absl::InvalidArgumentError("advantages: eps must be finite and >= 0");
  for (float r : rewards) {
    if (std::isinf(r)) return absl::InvalidArgumentError("advantages: infinite reward");
  }
  for (double w : o.weights) {
    if (!std::isfinite(w)) return absl::InvalidArgumentError("advantages: weights must be finite");
  }
  auto weight = [&](int64_t f) { return o.weights.empty() ? 1.0 : o.weights[f]; };
  auto row = [&](int64_t f) {
    std::vector<double> r(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) r[i] = rewards[f * n + i];
    return r;
  };
  std::vector<double> total(static_cast<size_t>(n), 0.0);
  if (o.combination == RewardCombination::kSumThenNormalize) {
    std::vector<double> combined(static_cast<size_t>(n), NAN);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t f = 0; f < functions; ++f) {
        const double r = rewards[f * n + i];
        if (std::isnan(r)) continue;
        combined[i] = (std::isnan(combined[i]) ? 0.0 : combined[i]) + weight(f) * r;
      }
    }
    total = AdvantagesOf(combined, o);
  } else {
    for (int64_t f = 0; f < functions; ++f) {
      const std::vector<double> a = AdvantagesOf(row(f), o);
      for (int64_t i = 0; i < n; ++i) total[i] += weight(f) * a[i];
    }
  }
  return std::vector<float>(total.begin(), total.end());
}

double KlK3(double new_logprob, double ref_logprob) {
  const double d = ref_logprob - new_logprob;
  return std::exp(d) - d - 1.0;
}

absl::StatusOr<PolicyLoss> ComputePolicyLoss(absl::Span<const float> new_lp, absl::Span<const float> old_lp,
                                             absl::Span<const float> ref_lp, absl::Span<const float> adv,
                                             absl::Span<const float> mask, int64_t batch, int64_t length,
                                             const LossOptions& o) {
  const size_t bt = static_cast<size_t>(batch) * static_cast<size_t>(length);
  if (batch < 0 || length < 0 || new_lp.size() != bt || old_lp.size() != bt || mask.size() != bt ||
      adv.size() != static_cast<size_t>(batch) || (!ref_lp.empty() && ref_lp.size() != bt)) {
    return absl::InvalidArgumentError(StrCat("policy loss: new/old/mask need ", batch, " x ", length,
                                             " values and advantages ", batch, "; got ", new_lp.size(), ", ",
                                             old_lp.size(), ", ", mask.size(), " and ", adv.size()));
  }
  if (o.beta != 0.0 && ref_lp.empty()) return absl::InvalidArgumentError("policy loss: beta != 0 needs ref log-probs");
  if (!(o.eps_low >= 0.0 && o.eps_high >= 0.0) || (o.dual_clip != 0.0 && !(o.dual_clip > 1.0)) ||
      !std::isfinite(o.beta) || o.max_length < 0) {
    return absl::InvalidArgumentError("policy loss: eps must be >= 0, dual_clip 0 or > 1, beta finite, max_length >= 0");
  }
  for (size_t i = 0; i < bt; ++i) {
    if (mask[i] != 0.0f && mask[i] != 1.0f) return absl::InvalidArgumentError("policy loss: mask values must be 0 or 1");
    if (mask[i] == 0.0f) continue;
    if (!std::isfinite(new_lp[i]) || !std::isfinite(old_lp[i]) || (!ref_lp.empty() && !std::isfinite(ref_lp[i]))) {
      return absl::InvalidArgumentError(StrCat("policy loss: non-finite log-prob at row ", i / length, ", token ",
                                               i % length));
    }
  }
  for (float a : adv) {
    if (!std::isfinite(a)) return absl::InvalidArgumentError("policy loss: non-finite advantage");
  }
  PolicyLoss out;
  out.grad.assign(bt, 0.0f);
  out.per_token_loss.assign(bt, 0.0f);
  // Aggregation weights: d loss / d loss_t.
  std::vector<double> tokens(static_cast<size_t>(batch), 0.0);
  double all_tokens = 0.0;
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t t = 0; t < length; ++t) tokens[b] += mask[b * length + t];
    all_tokens += tokens[b];
  }
  auto agg_weight = [&](int64_t b) -> double {
    switch (o.aggregation) {
      case LossAggregation::kSequenceMean: return tokens[b] > 0 ? 1.0 / (static_cast<double>(batch) * tokens[b]) : 0.0;
      case LossAggregation::kTokenMean: return all_tokens > 0 ? 1.0 / all_tokens : 0.0;
      case LossAggregation::kTokenSumNorm:
        return 1.0 / (static_cast<double>(batch) * static_cast<double>(o.max_length > 0 ? o.max_length : length));
    }
    return 0.0;
  };
  const double lo = 1.0 - o.eps_low, hi = 1.0 + o.eps_high;
  double loss = 0.0, kl_sum = 0.0, clipped = 0.0;
  for (int64_t b = 0; b < batch; ++b) {
    if (tokens[b] == 0.0) continue;
    const double a = adv[b], w = agg_weight(b);
    // GSPO: one ratio per sequence, exp of the mean log-ratio.
    double seq_ratio = 0.0;
    if (o.level == ImportanceLevel::kSequence) {
      double s = 0.0;
      for (int64_t t = 0; t < length; ++t) {
        const size_t i = static_cast<size_t>(b * length + t);
        if (mask[i] != 0.0f) s += static_cast<double>(new_lp[i]) - old_lp[i];
      }
      seq_ratio = std::exp(s / tokens[b]);
    }
    double d_seq_ratio = 0.0;  // d loss / d seq_ratio, summed over the sequence's tokens
    for (int64_t t = 0; t < length; ++t) {
      const size_t i = static_cast<size_t>(b * length + t);
      if (mask[i] == 0.0f) continue;
      const double r = o.level == ImportanceLevel::kToken ? std::exp(static_cast<double>(new_lp[i]) - old_lp[i])
                                                           : seq_ratio;
      const double unclipped = r * a, clipped_obj = std::clamp(r, lo, hi) * a;
      double obj = std::min(unclipped, clipped_obj);
      // d obj / d r: a through the unclipped branch when it is the minimum (inside the clip
      // range both branches agree), 0 through the clamped one.
      double d_obj_dr = unclipped <= clipped_obj || (r >= lo && r <= hi) ? a : 0.0;
      if (d_obj_dr == 0.0) clipped += 1.0;
      if (o.dual_clip > 1.0 && a < 0.0 && o.dual_clip * a > obj) {
        obj = o.dual_clip * a;
        d_obj_dr = 0.0;
      }
      double lt = -obj, d_lt_d_new = 0.0;
      if (o.level == ImportanceLevel::kToken) {
        d_lt_d_new = -d_obj_dr * r;  // dr / d new = r
      } else {
        d_seq_ratio += -d_obj_dr * w;
      }
      if (!ref_lp.empty()) {
        const double k3 = KlK3(new_lp[i], ref_lp[i]);
        kl_sum += k3;
        lt += o.beta * k3;
        d_lt_d_new += o.beta * (1.0 - std::exp(static_cast<double>(ref_lp[i]) - new_lp[i]));
      }
      out.per_token_loss[i] = static_cast<float>(lt);
      loss += w * lt;
      out.grad[i] = static_cast<float>(w * d_lt_d_new);
    }
    if (o.level == ImportanceLevel::kSequence) {
      // d seq_ratio / d new_t = seq_ratio / tokens for each of the sequence's tokens.
      const double g = d_seq_ratio * seq_ratio / tokens[b];
      for (int64_t t = 0; t < length; ++t) {
        const size_t i = static_cast<size_t>(b * length + t);
        if (mask[i] != 0.0f) out.grad[i] += static_cast<float>(g);
      }
    }
  }
  out.loss = loss;
  out.kl_mean = all_tokens > 0 ? kl_sum / all_tokens : 0.0;
  out.clip_fraction = all_tokens > 0 ? clipped / all_tokens : 0.0;
  return out;
}

}  // namespace reasonrt::grpo
