#include "lib/generate/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "lib/core/strings.h"

namespace reasonrt::gen {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct Candidate {
  float logit;  // processed and divided by the temperature
  int32_t id;
};

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
  const double inv_t = 1.0 / temperature();
  double m = -std::numeric_limits<double>::infinity();
  for (float l : logits) m = std::max(m, l * inv_t);
  double sum = 0;
  for (float l : logits) sum += std::exp(l * inv_t - m);
  return static_cast<float>(logits[token] * inv_t - m - std::log(sum));
}

absl::StatusOr<SampleResult> Sampler::Sample(absl::Span<const float> logits,
                                             const absl::flat_hash_map<int32_t, int>& seen,
                                             const absl::flat_hash_map<int32_t, int>& generated,
                                             absl::Span<const int32_t> banned, Rng& rng) const {
  const int32_t vocab = static_cast<int32_t>(logits.size());
  thread_local std::vector<float> work;
  work.assign(logits.begin(), logits.end());
  for (int32_t i = 0; i < vocab; ++i) {
    if (std::isnan(work[i]) || work[i] == std::numeric_limits<float>::infinity()) {
      return absl::InvalidArgumentError(StrCat("logits contain ", std::isnan(work[i]) ? "NaN" : "+inf", " (token ", i, ")"));
    }
  }
  for (const auto& [id, bias] : params_.logit_bias) {
    if (id < 0 || id >= vocab) {
      return absl::InvalidArgumentError(StrCat("logit_bias names token ", id, " outside the vocabulary (", vocab, ")"));
    }
    work[id] += bias;
  }
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
  if (greedy) {
    int32_t best = -1;
    for (int32_t i = 0; i < vocab; ++i) {
      if (work[i] != kNegInf && (best < 0 || work[i] > work[best])) best = i;
    }
    if (best < 0) return absl::InvalidArgumentError("no token can be sampled: every logit is -inf");
    r.token = best;
    r.logprob = LogProb(logits, best);
    r.sampled_logprob = 0;
    return r;
  }

  const float inv_t = 1.0f / params_.temperature;
  std::vector<Candidate> cand;
  cand.reserve(vocab);
  for (int32_t i = 0; i < vocab; ++i) {
    if (work[i] != kNegInf) cand.push_back({work[i] * inv_t, i});
  }
  if (cand.empty()) return absl::InvalidArgumentError("no token can be sampled: every logit is -inf");
  auto by_logit = [](const Candidate& a, const Candidate& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); };
  bool reordered = false;
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < cand.size()) {
    std::nth_element(cand.begin(), cand.begin() + params_.top_k, cand.end(), by_logit);
    cand.resize(params_.top_k);
    reordered = true;
  }
  float max_logit = kNegInf;
  for (const Candidate& c : cand) max_logit = std::max(max_logit, c.logit);
  std::vector<double> probs;
  auto compute_probs = [&]() {  // unnormalised: exp(logit - max); returns the sum
    probs.resize(cand.size());
    double z = 0;
    for (size_t i = 0; i < cand.size(); ++i) z += probs[i] = std::exp(double(cand[i].logit) - max_logit);
    return z;
  };
  double z = compute_probs();
  if (params_.top_p < 1.0f) {
    // Keep the most likely tokens until their mass reaches top_p (the token that crosses
    // it included). Sort a head first; the whole list only if the head is not enough.
    size_t head = std::min<size_t>(cand.size(), 512);
    while (true) {
      if (head < cand.size()) std::nth_element(cand.begin(), cand.begin() + head, cand.end(), by_logit);
      std::sort(cand.begin(), cand.begin() + head, by_logit);
      double cum = 0;
      size_t keep = 0;
      while (keep < head && cum < params_.top_p * z) cum += std::exp(double(cand[keep++].logit) - max_logit);
      if (cum >= params_.top_p * z || head == cand.size()) {
        cand.resize(std::max<size_t>(keep, 1));
        break;
      }
      head = cand.size();
    }
    reordered = true;
    z = compute_probs();
  }
  if (params_.min_p > 0) {
    // p >= min_p * p_max, i.e. logit >= max_logit + log(min_p).
    const double floor = max_logit + std::log(double(params_.min_p));
    std::vector<Candidate> kept;
    for (const Candidate& c : cand) {
      if (c.logit >= floor) kept.push_back(c);
    }
    cand = std::move(kept);
    z = compute_probs();
  }
  if (reordered) {
    std::sort(cand.begin(), cand.end(), [](const Candidate& a, const Candidate& b) { return a.id < b.id; });
    z = compute_probs();
  }
  const double u = rng.Uniform() * z;
  double cum = 0;
  size_t pick = cand.size() - 1;
  for (size_t i = 0; i < cand.size(); ++i) {
    cum += probs[i];
    if (u < cum) {
      pick = i;
      break;
    }
  }
  while (probs[pick] == 0 && pick > 0) --pick;  // never a zero-probability token
  r.token = cand[pick].id;
  r.logprob = LogProb(logits, r.token);
  r.sampled_logprob = static_cast<float>(std::log(probs[pick] / z));
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
