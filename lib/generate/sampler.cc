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

namespace {

// The token at which the best-first walk over `ids` first reaches `target`: by count
// (`prob` null) or by mass (prob[id]); -1 when it never does (rounding). Tokens are binned
// by how far below `top` they lie (1/16 apart, then one bin for everything 16 below):
// whole bins are taken up to the target's bin, and only that bin's tokens are sorted.
template <typename Better>
int32_t Boundary(const std::vector<int32_t>& ids, float top, const std::vector<float>& work,
                 const float* prob, double target, const Better& better) {
  constexpr int kBins = 257;
  auto bin = [&](int32_t id) {
    const float d = (top - work[id]) * 16.0f;
    return d < kBins - 1 ? static_cast<int>(d) : kBins - 1;
  };
  // Four histograms side by side, so that neighbouring tokens' additions do not wait on
  // each other when they land in the same bin.
  const size_t n = ids.size();
  double part[4][kBins] = {};
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (int j = 0; j < 4; ++j) {
      const int32_t id = ids[i + j];
      part[j][bin(id)] += prob != nullptr ? prob[id] : 1.0;
    }
  }
  for (; i < n; ++i) part[0][bin(ids[i])] += prob != nullptr ? prob[ids[i]] : 1.0;
  double cum = 0;
  int b = 0;
  for (; b < kBins; ++b) {
    const double weight = (part[0][b] + part[1][b]) + (part[2][b] + part[3][b]);
    if (cum + weight >= target) break;
    cum += weight;
  }
  if (b == kBins) return -1;
  thread_local std::vector<int32_t> members;
  members.clear();
  for (int32_t id : ids) {
    if (bin(id) == b) members.push_back(id);
  }
  std::sort(members.begin(), members.end(), better);
  for (int32_t id : members) {
    cum += prob != nullptr ? prob[id] : 1.0;
    if (cum >= target) return id;
  }
  return -1;
}

}  // namespace

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
      return absl::InvalidArgumentError(
          StrCat("logit_bias names token ", id, " outside the vocabulary (", vocab, ")"));
    }
  }
  // Whether anything below may change a logit (then the log-prob is computed apart).
  const bool processed =
      !params_.logit_bias.empty() || !banned.empty() ||
      (params_.repetition_penalty != 1.0f && (!seen.empty() || !generated.empty())) ||
      ((params_.presence_penalty != 0 || params_.frequency_penalty != 0) && !generated.empty());
  thread_local std::vector<float> work;
  work.assign(logits.begin(), logits.end());
  for (const auto& [id, bias] : params_.logit_bias) work[id] += bias;
  if (params_.repetition_penalty != 1.0f) {
    auto penalise = [&](int32_t id) {
      if (id < 0 || id >= vocab) return;
      work[id] = work[id] > 0 ? work[id] / params_.repetition_penalty
                              : work[id] * params_.repetition_penalty;
    };
    for (const auto& [id, count] : seen) penalise(id);
    for (const auto& [id, count] : generated) {
      if (!seen.contains(id)) penalise(id);
    }
  }
  if (params_.presence_penalty != 0 || params_.frequency_penalty != 0) {
    for (const auto& [id, count] : generated) {
      if (id >= 0 && id < vocab)
        work[id] -= params_.presence_penalty + params_.frequency_penalty * count;
    }
  }
  for (int32_t id : banned) {
    if (id >= 0 && id < vocab) work[id] = kNegInf;
  }

  SampleResult r;
  const bool greedy = params_.greedy || params_.temperature <= 0;
  const float max_logit = greedy ? MaxOf(work.data(), vocab)
                                 : ScaleAndMax(work.data(), vocab, 1.0f / params_.temperature);
  if (max_logit == kNegInf)
    return absl::InvalidArgumentError("no token can be sampled: every logit is -inf");
  if (greedy) {
    r.token = static_cast<int32_t>(std::find(work.begin(), work.end(), max_logit) - work.begin());
    r.logprob = LogProb(logits, r.token);
    r.sampled_logprob = 0;
    return r;
  }

  auto better = [&](int32_t a, int32_t b) {
    return work[a] > work[b] || (work[a] == work[b] && a < b);
  };
  const bool top_k = params_.top_k > 0;
  const bool top_p = params_.top_p < 1.0f;
  const double min_p_floor =
      params_.min_p > 0 ? max_logit + std::log(double(params_.min_p)) : -HUGE_VAL;
  thread_local std::vector<float> prob;        // exp(work[id] - max_logit), unnormalised
  thread_local std::vector<int32_t> pool;      // ids in increasing order
  thread_local std::vector<int32_t> universe;  // the pool that top-k keeps
  prob.resize(static_cast<size_t>(vocab));
  const double z_all = ExpOf(work.data(), vocab, max_logit, prob.data());
  pool.resize(static_cast<size_t>(vocab));
  // The pool: the tokens within `depth` of the best (every finite one once depth is
  // infinite). With neither top-k nor top-p, everything min-p keeps.
  constexpr float kWhole = std::numeric_limits<float>::infinity();
  float depth = 16.0f;
  if (!top_k && !top_p) {
    depth =
        params_.min_p > 0 ? static_cast<float>(-std::log(double(params_.min_p))) + 1.0f : kWhole;
  }
  int32_t kth = -1;    // top-k: the k-th best token (kept: it and everything better)
  int32_t cross = -1;  // top-p: the token whose mass crosses top_p (likewise)
  int64_t size = 0;
  while (true) {
    if (depth > 128.0f) depth = kWhole;  // exp(-128) is 0 in f32: nothing left to gain
    const float floor = depth == kWhole ? std::numeric_limits<float>::lowest() : max_logit - depth;
    size = IndicesAtLeast(work.data(), vocab, floor, pool.data());
    const bool whole = depth == kWhole || size == vocab;
    universe.assign(pool.begin(), pool.begin() + size);
    if (top_k) {
      if (params_.top_k < size) {
        kth = Boundary(universe, max_logit, work, nullptr, params_.top_k, better);
        universe.erase(std::remove_if(universe.begin(), universe.end(),
                                      [&](int32_t id) { return id != kth && better(kth, id); }),
                       universe.end());
      } else if (!whole) {
        depth *= 2;
        continue;
      }
    }
    if (!top_p) break;
    // The mass top-p takes its share of: what top-k kept, or (no top-k) the whole row.
    double z = 0;
    if (top_k) {
      for (int32_t id : universe) z += prob[id];
    } else {
      z = z_all;
    }
    cross = Boundary(universe, max_logit, work, prob.data(), params_.top_p * z, better);
    if (cross >= 0) break;
    if (whole || top_k) {  // rounding left the mass short of the target: all of it is kept
      cross = *std::min_element(universe.begin(), universe.end(),
                                [&](int32_t a, int32_t b) { return better(b, a); });
      break;
    }
    depth *= 2;
  }

  // The kept tokens in id order, and the draw.
  auto at_least = [&](int32_t id, int32_t bound) {  // no bound (-1): compares id with itself
    const int32_t b = bound < 0 ? id : bound;
    return (work[id] > work[b]) | ((work[id] == work[b]) & (id <= b));
  };
  int64_t kept = 0;
  double z = 0;
  for (int64_t i = 0; i < size; ++i) {  // without branches: about half may be kept
    const int32_t id = pool[i];
    const bool keep = at_least(id, kth) & at_least(id, cross) & (double(work[id]) >= min_p_floor);
    pool[kept] = id;
    kept += keep;
    z += keep ? prob[id] : 0.0;
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
  // Unprocessed logits: work is logits / T and z_all is LogProb's own sum, so its value
  // comes without two more passes over the row.
  r.logprob = processed ? LogProb(logits, r.token)
                        : static_cast<float>(double(work[r.token]) - double(max_logit) -
                                             std::log(z_all));
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
