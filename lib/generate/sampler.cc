#include "lib/generate/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "lib/backends/token_draw.h"
#include "lib/core/status_macros.h"
#include "lib/core/strings.h"

namespace reasonrt::gen {

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
  return RawLogProb(logits, 1.0f / temperature())(token);
}

TokenDraw Sampler::ScoreDraw(int32_t token) const {
  TokenDraw d;
  d.draw = false;
  d.greedy = greedy();
  d.temperature = temperature();
  d.score_token = token;
  return d;
}

absl::StatusOr<TokenDraw> Sampler::MakeDraw(int64_t vocab,
                                            const absl::flat_hash_map<int32_t, int>& seen,
                                            const absl::flat_hash_map<int32_t, int>& generated,
                                            absl::Span<const int32_t> banned, Rng& rng,
                                            std::vector<LogitEdit>& edits) const {
  const SamplingParams& p = params_;
  edits.clear();
  auto inside = [vocab](int32_t id) { return id >= 0 && id < vocab; };
  for (const auto& [id, bias] : p.logit_bias) {
    if (!inside(id)) {
      return absl::InvalidArgumentError(
          StrCat("logit_bias names token ", id, " outside the vocabulary (", vocab, ")"));
    }
    edits.push_back({.token = id, .bias = bias});
  }
  if (p.repetition_penalty != 1.0f) {
    for (const auto& [id, count] : seen) {
      if (inside(id)) edits.push_back({.token = id, .repetition_penalty = p.repetition_penalty});
    }
    for (const auto& [id, count] : generated) {
      if (inside(id) && !seen.contains(id))
        edits.push_back({.token = id, .repetition_penalty = p.repetition_penalty});
    }
  }
  if (p.presence_penalty != 0 || p.frequency_penalty != 0) {
    for (const auto& [id, count] : generated) {
      if (inside(id))
        edits.push_back(
            {.token = id, .offset = -(p.presence_penalty + p.frequency_penalty * count)});
    }
  }
  for (int32_t id : banned) {
    if (inside(id)) edits.push_back({.token = id, .banned = true});
  }
  // One edit a token: a token's parts merged (biases summed in the order given).
  std::stable_sort(edits.begin(), edits.end(),
                   [](const LogitEdit& a, const LogitEdit& b) { return a.token < b.token; });
  size_t out = 0;
  for (size_t i = 0; i < edits.size(); ++i) {
    if (out > 0 && edits[out - 1].token == edits[i].token) {
      LogitEdit& e = edits[out - 1];
      e.bias += edits[i].bias;
      if (edits[i].repetition_penalty != 1.0f) e.repetition_penalty = edits[i].repetition_penalty;
      e.offset += edits[i].offset;
      e.banned |= edits[i].banned;
    } else {
      edits[out++] = edits[i];
    }
  }
  edits.resize(out);

  TokenDraw d;
  d.greedy = greedy();
  d.temperature = temperature();
  d.top_k = p.top_k;
  d.top_p = p.top_p;
  d.min_p = p.min_p;
  d.edits = edits;
  if (!d.greedy) d.uniform = rng.Uniform();
  return d;
}

absl::StatusOr<SampleResult> Sampler::Sample(absl::Span<const float> logits,
                                             const absl::flat_hash_map<int32_t, int>& seen,
                                             const absl::flat_hash_map<int32_t, int>& generated,
                                             absl::Span<const int32_t> banned, Rng& rng) const {
  thread_local std::vector<LogitEdit> edits;
  const int64_t vocab = static_cast<int64_t>(logits.size());
  RRT_ASSIGN_OR_RETURN(TokenDraw d, MakeDraw(vocab, seen, generated, banned, rng, edits));
  RRT_ASSIGN_OR_RETURN(DrawnToken t, DrawTokenOnHost(logits, d));
  return SampleResult{t.token, t.logprob, t.sampled_logprob};
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
