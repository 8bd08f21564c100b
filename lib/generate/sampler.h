// lib/generate/sampler.h: choosing a token from a row of logits.
#ifndef REASONRT_LIB_GENERATE_SAMPLER_H_
#define REASONRT_LIB_GENERATE_SAMPLER_H_

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "reasonrt/backend.h"
#include "reasonrt/generate.h"

namespace reasonrt::gen {

// SplitMix64: a small, fully specified generator, so draws are the same everywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }  // [0, 1)

 private:
  uint64_t state_;
};

// The generator of completion `index` of a run seeded with `seed`.
Rng CompletionRng(uint64_t seed, int index);

struct SampleResult {
  int32_t token = -1;
  float logprob = 0;          // log_softmax(raw logits / temperature)[token]
  float sampled_logprob = 0;  // log-prob in the processed, truncated distribution
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params) : params_(params) {}

  // Checks the parameters (InvalidArgument naming the bad one).
  static absl::Status Validate(const SamplingParams& params);

  // Picks the next token from `logits` (one row, the vocabulary). `seen` counts the
  // prompt's tokens and `generated` the completion's (for the penalties); `banned` tokens
  // get no probability. InvalidArgument for NaN logits or when nothing can be drawn.
  absl::StatusOr<SampleResult> Sample(absl::Span<const float> logits, const absl::flat_hash_map<int32_t, int>& seen,
                                      const absl::flat_hash_map<int32_t, int>& generated,
                                      absl::Span<const int32_t> banned, Rng& rng) const;

  // The same draw as a TokenDraw, for Backend::SampleTokens over a row of `vocab` logits:
  // the penalties, biases and bans as edits (written to `edits`, which the draw points
  // into), and the uniform taken from `rng` unless the draw is greedy. InvalidArgument
  // when a logit_bias names a token outside the vocabulary.
  absl::StatusOr<TokenDraw> MakeDraw(int64_t vocab, const absl::flat_hash_map<int32_t, int>& seen,
                                     const absl::flat_hash_map<int32_t, int>& generated,
                                     absl::Span<const int32_t> banned, Rng& rng,
                                     std::vector<LogitEdit>& edits) const;

  bool greedy() const { return params_.greedy || params_.temperature <= 0; }

  // A TokenDraw that only scores `token` (a forced token's log-prob), as LogProb would.
  TokenDraw ScoreDraw(int32_t token) const;

  // log_softmax(logits / temperature)[token] (temperature 1 when greedy).
  float LogProb(absl::Span<const float> logits, int32_t token) const;
  float temperature() const;

 private:
  SamplingParams params_;
};

}  // namespace reasonrt::gen

#endif  // REASONRT_LIB_GENERATE_SAMPLER_H_
