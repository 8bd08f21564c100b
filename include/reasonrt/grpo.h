// reasonrt/grpo.h: the numerics and rule-based rewards of GRPO (group relative policy
// optimisation, as DeepSeekMath and R1 train), and rollouts that produce a trainer's batch.
//
// Basic usage (a trainer's step; rewards and advantages need only the core):
//
//   namespace grpo = reasonrt::grpo;
//   grpo::RewardSet rewards;
//   rewards.Add("accuracy", grpo::AccuracyReward(), 1.0);
//   rewards.Add("format", grpo::FormatReward(), 0.5);
//   grpo::RolloutOptions ro;                        // n = 8 completions per prompt, ...
//   absl::StatusOr<grpo::RolloutBatch> batch =
//       grpo::Rollout(*generator, prompts, golds, rewards, ro);
//   // batch->completion_tokens [B, T], batch->old_logprobs [B, T], batch->mask [B, T],
//   // batch->advantages [B]; the trainer computes new log-probs, then:
//   absl::StatusOr<grpo::PolicyLoss> loss = grpo::ComputePolicyLoss(
//       new_logprobs, batch->old_logprobs, {}, batch->advantages, batch->mask,
//       batch->size(), batch->max_length, {});
//   // loss->loss, loss->grad [B, T] = d loss / d new_logprobs
//
// Arrays are row-major spans; [B, T] means B sequences padded to T tokens, `mask` 1 on real
// completion tokens. Missing rewards are NaN. Functions are thread-safe and keep no state;
// reward functions may be called from several threads.
#ifndef REASONRT_GRPO_H_
#define REASONRT_GRPO_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "reasonrt/export.h"
#include "reasonrt/generate.h"

namespace reasonrt::grpo {

// ---------------------------------------------------------------------------------------
// Advantages

enum class AdvantageScaling : uint8_t {
  kGroup,  // divide by the group's std (+ eps): GRPO
  kBatch,  // divide by the whole batch's std (+ eps)
  kNone,   // no division (Dr. GRPO)
};

enum class Baseline : uint8_t {
  kGroupMean,    // A_i = R_i - mean(group)
  kLeaveOneOut,  // RLOO: A_i = R_i - mean(group without i)
};

enum class RewardCombination : uint8_t {
  kSumThenNormalize,  // R_i = sum_f w_f r_fi, then advantages of R (TRL's default)
  kNormalizeThenSum,  // A_i = sum_f w_f A(r_f)_i
};

struct AdvantageOptions {
  int64_t group_size = 8;  // consecutive samples of one prompt
  AdvantageScaling scaling = AdvantageScaling::kGroup;
  Baseline baseline = Baseline::kGroupMean;
  bool unbiased_std = true;  // divide the variance by n - 1 (torch.std's default)
  double eps = 1e-4;         // TRL uses 1e-4, verl 1e-6
  RewardCombination combination = RewardCombination::kSumThenNormalize;
  std::vector<double> weights;  // per reward function; empty: all 1
};

// rewards: [functions, N] with N = groups x group_size (functions = 1 for a plain vector).
// A sample's missing rewards (NaN) are left out of its combined reward; a sample with no
// reward at all is left out of its group's (and batch's) statistics and gets advantage 0.
// A group whose present rewards are all equal gets exactly 0. InvalidArgument for sizes
// that do not fit, a group size < 1, weights of the wrong count, eps < 0 or infinities.
RRT_API absl::StatusOr<std::vector<float>> ComputeAdvantages(absl::Span<const float> rewards,
                                                             int64_t functions,
                                                             const AdvantageOptions& options);

// ---------------------------------------------------------------------------------------
// Policy loss

enum class ImportanceLevel : uint8_t {
  kToken,     // r_t = exp(new_t - old_t)  (GRPO, PPO)
  kSequence,  // r = exp(mean_t(new_t - old_t)) for every token of the sequence (GSPO)
};

enum class LossAggregation : uint8_t {
  kSequenceMean,  // mean over sequences of each one's token mean (GRPO)
  kTokenMean,     // sum over all tokens / number of tokens (DAPO, BNPO)
  kTokenSumNorm,  // sum over all tokens / (B x max_length) (Dr. GRPO)
};

struct LossOptions {
  double eps_low = 0.2;   // ratio clipped to [1 - eps_low, 1 + eps_high]
  double eps_high = 0.2;  // DAPO raises it (clip-higher), e.g. 0.28
  // > 1: dual clip: where A < 0 the objective is at least dual_clip x A (the ratio's effect
  // is capped); 0: off.
  double dual_clip = 0.0;
  ImportanceLevel level = ImportanceLevel::kToken;
  double beta = 0.0;  // KL penalty coefficient (k3 estimator against the reference)
  LossAggregation aggregation = LossAggregation::kSequenceMean;
  int64_t max_length = 0;  // kTokenSumNorm's constant; 0: T
};

// Per token: obj = min(r A, clip(r) A) (then max(obj, dual_clip A) where A < 0), plus
// beta x k3 with k3 = exp(ref - new) - (ref - new) - 1; loss_t = -obj + beta k3, then
// aggregated. The gradient is exact for the loss as written (the clipped branch carries
// none; GSPO's sequence ratio spreads d/dr over the sequence's tokens as r / |y|).
struct PolicyLoss {
  double loss = 0.0;
  std::vector<float> grad;            // [B, T]: d loss / d new_logprobs (0 where masked out)
  std::vector<float> per_token_loss;  // [B, T]: loss_t before aggregation (0 where masked out)
  double kl_mean = 0.0;               // mean k3 over masked tokens (0 without ref)
  double clip_fraction = 0.0;         // share of masked tokens whose objective was clipped
};

// new/old/ref log-probs and mask [B, T] (mask: 0 or 1), advantages [B]. ref may be empty
// when beta == 0. InvalidArgument for wrong sizes, NaN inputs on masked-in tokens or
// inconsistent options (eps < 0, 0 < dual_clip <= 1).
RRT_API absl::StatusOr<PolicyLoss> ComputePolicyLoss(absl::Span<const float> new_logprobs,
                                                     absl::Span<const float> old_logprobs,
                                                     absl::Span<const float> ref_logprobs,
                                                     absl::Span<const float> advantages,
                                                     absl::Span<const float> mask, int64_t batch,
                                                     int64_t length, const LossOptions& options);

// k3 estimator of KL(new || ref) for one token: exp(ref - new) - (ref - new) - 1.
RRT_API double KlK3(double new_logprob, double ref_logprob);

// ---------------------------------------------------------------------------------------
// Rule-based rewards

// What a reward function sees of one sample.
struct Sample {
  std::string_view completion;  // generated text (with its <think> / </think> tags)
  std::string_view gold;        // the reference answer ("" if none)
  // The prompt ended inside an opened <think> (the R1 template does this), so the
  // completion starts in the thinking.
  bool prompt_opens_thinking = true;
  int64_t completion_tokens = 0;  // for the length-aware rewards
};

// A reward: a number, or NaN for "no reward".
using RewardFn = std::function<float(const Sample&)>;

// The final answer of a completion: the last \boxed{...} (nested braces balanced) of the
// text after the last </think> (or of the whole text without one), else that text trimmed
// of whitespace. Empty if there is none.
RRT_API std::string ExtractAnswer(std::string_view completion);

// The numeric value of an answer or a gold: integers, decimals, thousands separators
// ("1,234"), fractions (3/4, \frac{3}{4}, \dfrac, \tfrac), \sqrt{x}, \pi, signs, + - * / ^
// \cdot \times and parentheses, $...$ and \( \), \text{...} units and a trailing period
// dropped. InvalidArgument if it is not a number.
RRT_API absl::StatusOr<double> ParseNumber(std::string_view text);

struct AccuracyOptions {
  double relative_tolerance = 1e-6;
  double absolute_tolerance = 1e-9;
};
// 1 if the completion's answer equals the gold numerically (else, if the gold is not a
// number, compared as normalised text is not attempted: NaN, "no reward"); 0 otherwise.
RRT_API RewardFn AccuracyReward(const AccuracyOptions& options = {});

// 1 if the completion is thinking closed by exactly one </think> (opened by the prompt, or
// by exactly one <think> at its start) followed by a non-empty answer with no more tags;
// else 0.
RRT_API RewardFn FormatReward();

// 0.25 for each of: one <think> (the prompt's counts), one </think>, the </think> after
// the <think>, and a non-empty answer after it. A partial credit that GRPO can climb.
RRT_API RewardFn TagCountReward();

enum class Script : uint8_t { kLatin, kHan, kCyrillic, kArabic, kGreek, kHangul, kKana, kDevanagari };
// R1's language consistency: the share of the thinking's words written in `script` (a
// word: a run of letters; each Han, kana or hangul character counts as one). NaN if the
// thinking has no words.
RRT_API RewardFn LanguageConsistencyReward(Script script);

// DAPO's soft overlong punishment on completion_tokens: 0 up to max_tokens - cache, then
// linearly down to -1 at max_tokens, -1 beyond.
RRT_API RewardFn SoftOverlongReward(int64_t max_tokens, int64_t cache);

struct CosineOptions {
  double min_correct = 0.5, max_correct = 1.0;  // long .. short correct answers
  double min_wrong = -0.5, max_wrong = 0.0;     // short .. long wrong answers
  int64_t max_tokens = 1000;
  AccuracyOptions accuracy;
};
// Length-scaled correctness (cosine schedule over completion_tokens / max_tokens):
// correct answers earn more when short, wrong ones lose less when long. NaN where the gold
// is not a number.
RRT_API RewardFn CosineLengthReward(const CosineOptions& options = {});

// -max_penalty x (1 - distinct n-grams / n-grams) over the completion's words (0 for
// fewer than n words). max_penalty >= 0.
RRT_API RewardFn RepetitionPenaltyReward(int n = 3, double max_penalty = 1.0);

// A built-in reward by name: "accuracy", "format", "tag_count", "repetition" (3-grams,
// penalty 1), "language:<script>" (latin, han, cyrillic, arabic, greek, hangul, kana,
// devanagari), each with its default options. InvalidArgument names the choices.
RRT_API absl::StatusOr<RewardFn> BuiltinReward(std::string_view name);

// Several reward functions with weights (used by ComputeAdvantages' combination).
class RRT_API RewardSet {
 public:
  void Add(std::string name, RewardFn fn, double weight = 1.0);
  size_t size() const { return names_.size(); }
  const std::vector<std::string>& names() const { return names_; }
  const std::vector<double>& weights() const { return weights_; }
  // [size(), samples.size()]: function-major.
  std::vector<float> Score(absl::Span<const Sample> samples) const;

  // Built-in rewards from "accuracy:1,format:0.5,language:latin:0.1" (a missing weight is 1).
  static absl::StatusOr<RewardSet> Parse(std::string_view spec);

 private:
  std::vector<std::string> names_;
  std::vector<RewardFn> fns_;
  std::vector<double> weights_;
};

// ---------------------------------------------------------------------------------------
// Data

// One arithmetic problem (the cold-start recipe): the question, the expression, the
// answer computed by code, and the answer as the accuracy reward expects it.
struct ArithmeticProblem {
  std::string question;         // "What's 44 + 41 + 25?"
  std::string expression;       // "44 + 41 + 25"
  int64_t answer = 0;
  std::string verifier_answer;  // "110"
  std::vector<std::string> steps;  // one line per step, in order (with restate, "Now: ...")
  // R1-format SFT target: "<think>\n" steps "\n</think>\n\n" ... "\boxed{110}".
  std::string Completion() const;
};

struct ArithmeticOptions {
  int min_operands = 2;
  int max_operands = 4;
  int64_t max_value = 100;     // operands in [0, max_value]
  bool multiplication = true;  // also x: each product is two factors in [0, 12]
  bool parentheses = true;     // a parenthesised run of operands (never a factor)
  // Spell each + and - out column by column (digits, carries, borrows) before its result:
  // "85 + 25: 5 + 5 = 10, write 0 carry 1; 8 + 2 + 1 = 11, write 1 carry 1; carry 1. So
  // 85 + 25 = 110". Products stay one step (small factors).
  bool column_steps = false;
  // After every step but the last, the expression as it now stands: "Now: 125 + 63".
  bool restate = false;
};
// `count` problems, reproducible from `seed`.
RRT_API std::vector<ArithmeticProblem> GenerateArithmetic(int64_t count, uint64_t seed,
                                                          const ArithmeticOptions& options = {});

// A chat-format SFT record: {"messages": [{"role": "user", ...}, {"role": "assistant",
// "content": completion}]} as one JSON line (no trailing newline).
RRT_API std::string SftJsonLine(std::string_view question, std::string_view completion);

// ---------------------------------------------------------------------------------------
// Rollouts

struct RolloutOptions {
  GenerateOptions generate;  // n, sampling, max_new_tokens, ... (n: the group size)
  AdvantageOptions advantages;  // group_size is taken from generate.n
};

// What a trainer needs, for B = prompts x n completions (prompt-major, then index).
struct RolloutBatch {
  int64_t max_length = 0;                              // T
  std::vector<std::vector<int32_t>> prompt_tokens;     // per prompt
  std::vector<int32_t> prompt_of;                      // [B]: the prompt of each row
  std::vector<int32_t> completion_tokens;              // [B, T], padded with -1
  std::vector<float> old_logprobs;                     // [B, T]: sampled tokens' log-probs
  std::vector<float> mask;                             // [B, T]
  std::vector<uint8_t> truncated;                      // [B]: ended by max_new_tokens
  std::vector<std::string> completions;                // [B]: the text (thinking and answer)
  std::vector<std::string> reward_names;
  std::vector<float> rewards;                          // [functions, B]
  std::vector<float> advantages;                       // [B]
  int64_t size() const { return static_cast<int64_t>(prompt_of.size()); }
};

// For each prompt (chat messages, rendered with the model's template): n completions
// (one group, the prompt's cache shared), their rewards against golds[p], and the group
// advantages. golds has one entry per prompt.
RRT_API absl::StatusOr<RolloutBatch> Rollout(const Generator& generator,
                                             absl::Span<const std::vector<ChatMessage>> prompts,
                                             absl::Span<const std::string> golds,
                                             const RewardSet& rewards, const RolloutOptions& options);

// Rejection sampling for SFT data: the rollout's completions whose combined (weighted
// sum) reward is >= threshold, as SftJsonLine records (one per line).
RRT_API std::string AcceptedJsonl(const RolloutBatch& batch,
                                  absl::Span<const std::vector<ChatMessage>> prompts,
                                  absl::Span<const double> weights, double threshold);

}  // namespace reasonrt::grpo

#endif  // REASONRT_GRPO_H_
