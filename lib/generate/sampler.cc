#include "lib/generate/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "lib/core/strings.h"
#include "lib/generate/sampler_kernels.h"

namespace reasonrt::gen {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

}  // namespace

Rng CompletionRng(uint64_t seed, int index) {
  Rng mix(seed ^ (0xd1b54a32d192ed03ull * (static_cast<uint64_t>(index) + 1)));
  return Rng(mix.Next());
}

absl::Status Sampler::Validate(const SamplingParams& p) {
  if (!(p.temperature <= 100) || (p.temperature > 0 && p.temperature < 1e-3f)) {
    return absl::InvalidArgumentError(
        StrCat("sampling: temperature ", p.temperature, " is not 0 (greedy) or in [0.001, 100]"));
  }
  if (p.top_k < 0) return absl::InvalidArgumentError(StrCat("sampling: top_k ", p.top_k, " is negative"));
  if (!(p.top_p > 0 && p.top_p <= 1)) return absl::InvalidArgumentError(StrCat("sampling: top_p ", p.top_p, " is not in (0, 1]"));
  if (!(p.min_p >= 0 && p.min_p <= 1)) return absl::InvalidArgumentError(StrCat("sampling: min_p ", p.min_p, " is not in [0, 1]"));
  if (!(p.repetition_penalty > 0) || std::isinf(p.repetition_penalty)) {
    return absl::InvalidArgumentError(StrCat("sampling: repetition_penalty ", p.repetition_penalty, " must be > 0"));
  }
  if (!std::isfinite(p.presence_penalty) || !std::isfinite(p.frequency_penalty)) {
    return absl::InvalidArgumentError("sampling: presence/frequency penalties must be finite");
  }
  for (const auto& [id, bias] : p.logit_bias) {
    if (std::isnan(bias) || bias == std::numeric_limits<float>::infinity()) {
      return absl::InvalidArgumentError(StrCat("sampling: logit_bias of token ", id, " must be finite or -inf"));
    }
  }
  return absl::OkStatus();
}

float Sampler::temperature() const {
  return params_.greedy || params_.temperature <= 0 ? 1.0f : params_.temperature;
}

float Sampler::LogProb(absl::Span<const float> logits, int32_t token) const {
  const int64_t n = static_cast<int64_t>(logits.size());
  const float inv_t = 1.0f / temperature();
  // Any offset gives the same value; the largest scaled logit keeps exp() in range.
  const float offset = MaxOf(logits.data(), n) * inv_t;
  const double z = SumExp(logits.data(), n, inv_t, offset);
  return static_cast<float>(double(logits[token] * inv_t) - double(offset) - std::log(z));
}

// The pipeline, in the order that defines it: logits processed (bias, penalties, bans),
// divided by the temperature; top-k keeps the k best (by value, ties to the lower id);
// top-p keeps the best tokens of what remains until their mass reaches top_p (the one that
// crosses included); min-p keeps those with p >= min_p * p_max; the draw walks the kept
// tokens in id order. Done in passes over the whole row (SIMD) and work on a "pool": the
// tokens within `depth` of the best, widened until it provably holds every kept token.
absl::StatusOr<SampleResult> Sampler::Sample(absl::Span<const float> logits,
                                             const absl::flat_hash_map<int32_t, int>& seen,
                                             const absl::flat_hash_map<int32_t, int>& generated,
                                             absl::Span<const int32_t> banned, Rng& rng) const {
  const int32_t vocab = static_cast<int32_t>(logits.size());
  if (const int64_t bad = FindNotFinite(logits.data(), vocab); bad >= 0) {
    return absl::InvalidArgumentError(
        StrCat("logits contain ", std::isnan(logits[bad]) ? "NaN" : "+inf", " (token ", bad, ")"));
  }
  for (const auto& [id, bias] : params_.logit_bias) {
    if (id < 0 || id >= vocab) {
      return absl::InvalidArgumentError(StrCat("logit_bias names token ", id, " outside the vocabulary (", vocab, ")"));
    }
  }
  thread_local std::vector<float> work;
  work.assign(logits.begin(), logits.end());
  for (const auto& [id, bias] : params_.logit_bias) work[id] += bias;
  if (params_.repetition_penalty != 1.0f) {
    auto penalise = [&](int32_t id) {
      if (id < 0 || id >= vocab) return;
      work[id] = work[id] > 0 ? work[id] / params_.repetition_penalty : work[id] * params_.repetition_penalty;
    };
    for (const auto& [id, count] : seen) penalise(id);
    for (const auto& [id, count] : generated) {
      if (!seen.contains(id)) penalise(id);
    }
  }
  if (params_.presence_penalty != 0 || params_.frequency_penalty != 0) {
    for (const auto& [id, count] : generated) {
      if (id >= 0 && id < vocab) work[id] -= params_.presence_penalty + params_.frequency_penalty * count;
    }
  }
  for (int32_t id : banned) {
    if (id >= 0 && id < vocab) work[id] = kNegInf;
  }

  SampleResult r;
  const bool greedy = params_.greedy || params_.temperature <= 0;
  const float max_logit = greedy ? MaxOf(work.data(), vocab)
                                 : ScaleAndMax(work.data(), vocab, 1.0f / params_.temperature);
  if (max_logit == kNegInf) return absl::InvalidArgumentError("no token can be sampled: every logit is -inf");
  if (greedy) {
    r.token = static_cast<int32_t>(std::find(work.begin(), work.end(), max_logit) - work.begin());
    r.logprob = LogProb(logits, r.token);
    r.sampled_logprob = 0;
    return r;
  }

  auto better = [&](int32_t a, int32_t b) { return work[a] > work[b] || (work[a] == work[b] && a < b); };
  const bool top_k = params_.top_k > 0;
  const bool top_p = params_.top_p < 1.0f;
  const double min_p_floor = params_.min_p > 0 ? max_logit + std::log(double(params_.min_p)) : -HUGE_VAL;
  thread_local std::vector<float> prob;    // exp(work[id] - max_logit), unnormalised
  thread_local std::vector<int32_t> pool;  // ids in increasing order
  thread_local std::vector<int32_t> order;
  prob.resize(static_cast<size_t>(vocab));
  ExpOf(work.data(), vocab, max_logit, prob.data());
  pool.resize(static_cast<size_t>(vocab));
  // The pool: the tokens within `depth` of the best (every finite one once depth is
  // infinite). With neither top-k nor top-p, everything min-p keeps.
  constexpr float kWhole = std::numeric_limits<float>::infinity();
  float depth = 16.0f;
  if (!top_k && !top_p) {
    depth = params_.min_p > 0 ? static_cast<float>(-std::log(double(params_.min_p))) + 1.0f : kWhole;
  }
  int32_t kth = -1;    // top-k: the k-th best token (kept: it and everything better)
  int32_t cross = -1;  // top-p: the token whose mass crosses top_p (likewise)
  int64_t size = 0;
  while (true) {
    if (depth > 128.0f) depth = kWhole;  // exp(-128) is 0 in f32: nothing left to gain
    const float floor = depth == kWhole ? std::numeric_limits<float>::lowest() : max_logit - depth;
    size = IndicesAtLeast(work.data(), vocab, floor, pool.data());
    const bool whole = depth == kWhole || size == vocab;
    order.assign(pool.begin(), pool.begin() + size);
    int64_t universe = size;  // the part of the pool top-k keeps: order's first entries
    if (top_k) {
      if (params_.top_k < size) {
        std::nth_element(order.begin(), order.begin() + (params_.top_k - 1), order.end(), better);
        kth = order[params_.top_k - 1];
        universe = params_.top_k;
      } else if (!whole) {
        depth *= 2;
        continue;
      }
    }
    if (!top_p) break;
    // The mass top-p takes its share of: what top-k kept, or (no top-k) the whole row.
    double z = 0;
    if (top_k) {
      for (int64_t i = 0; i < universe; ++i) z += prob[order[i]];
    } else {
      z = SumExp(work.data(), vocab, 1.0f, max_logit);
    }
    const double target = params_.top_p * z;
    // The crossing token by quickselect: [lo, hi) holds it, `before` is the mass of the
    // tokens better than all of [lo, hi).
    int64_t lo = 0, hi = universe;
    double before = 0;
    while (hi - lo > 32) {
      const int64_t mid = lo + (hi - lo) / 2;
      std::nth_element(order.begin() + lo, order.begin() + mid, order.begin() + hi, better);
      double upper = 0;
      for (int64_t i = lo; i <= mid; ++i) upper += prob[order[i]];
      if (before + upper >= target) {
        hi = mid + 1;
      } else {
        before += upper;
        lo = mid + 1;
      }
    }
    std::sort(order.begin() + lo, order.begin() + hi, better);
    double cum = before;
    for (int64_t i = lo; i < hi && cross < 0; ++i) {
      cum += prob[order[i]];
      if (cum >= target) cross = order[i];
    }
    if (cross >= 0) break;
    if (whole || universe == params_.top_k) {  // rounding left it short: all of it is kept
      cross = *std::min_element(order.begin(), order.begin() + universe,
                                [&](int32_t a, int32_t b) { return better(b, a); });
      break;
    }
    depth *= 2;
  }

  // The kept tokens in id order, and the draw.
  auto at_least = [&](int32_t id, int32_t bound) { return bound < 0 || id == bound || better(id, bound); };
  int64_t kept = 0;
  double z = 0;
  for (int64_t i = 0; i < size; ++i) {
    const int32_t id = pool[i];
    if (at_least(id, kth) && at_least(id, cross) && double(work[id]) >= min_p_floor) {
      pool[kept++] = id;
      z += prob[id];
    }
  }
  const double u = rng.Uniform() * z;
  double cum = 0;
  int64_t pick = kept - 1;
  for (int64_t i = 0; i < kept; ++i) {
    cum += prob[pool[i]];
    if (u < cum) {
      pick = i;
      break;
    }
  }
  while (prob[pool[pick]] == 0 && pick > 0) --pick;  // never a zero-probability token
  r.token = pool[pick];
  r.logprob = LogProb(logits, r.token);
  r.sampled_logprob = static_cast<float>(std::log(prob[r.token] / z));
  return r;
}

}  // namespace reasonrt::gen

namespace reasonrt {

SamplingParams SamplingParams::R1Recommended() {
  SamplingParams p;
  p.temperature = 0.6f;
  p.top_p = 0.95f;
  return p;
}

}  // namespace reasonrt
