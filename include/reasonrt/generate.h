// reasonrt/generate.h: generation with the thinking and the answer on separate channels,
// sampling, budgets, groups of completions with log-probs, and scoring.
//
// Basic usage:
//
//   auto gen = reasonrt::Generator::Load("/models/DeepSeek-R1-Distill-Qwen-1.5B");
//   reasonrt::GenerateOptions options;
//   options.sampling = reasonrt::SamplingParams::R1Recommended();  // temperature 0.6, top-p 0.95
//   options.thinking.max_tokens = 1024;
//   reasonrt::StreamCallbacks stream;
//   stream.on_thinking = [](int, std::string_view text) { ShowDimmed(text); };
//   stream.on_answer = [](int, std::string_view text) { Show(text); };
//   absl::StatusOr<reasonrt::GenerationResult> r =
//       (*gen)->Generate({{.role = "user", .content = "What is 17 * 23?"}}, options, stream);
//   // r->completions[0].thinking, .answer, .tokens, .logprobs, .finish_reason
//
//   // GRPO: 8 completions of one prompt; the prompt is processed once and its KV blocks
//   // are shared; each completion is reproducible from (seed, index).
//   options.n = 8;
//   options.sampling.seed = 42;
//   r = (*gen)->Generate(messages, options);
//
//   // Pull instead of callbacks (for loops that own the thread, e.g. a game's frame):
//   auto run = (*gen)->Start(messages, options);
//   while (auto event = (*run)->Next()) { ... if (!event->ok()) break; ... }
//
// A Generator is immutable and thread-safe: each call makes its own KV cache, so calls
// may run at once on different threads (each uses the model's thread pool in turn).
#ifndef REASONRT_GENERATE_H_
#define REASONRT_GENERATE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "reasonrt/chat.h"
#include "reasonrt/export.h"
#include "reasonrt/model.h"
#include "reasonrt/tokenizer.h"

namespace reasonrt {

// How the next token is chosen. Order of processing: logit bias and suppressions,
// repetition/presence/frequency penalties, then (unless greedy) temperature, top-k, top-p,
// min-p, and a draw from what is left.
struct SamplingParams {
  bool greedy = false;       // argmax (also when temperature <= 0)
  float temperature = 1.0f;
  int top_k = 0;             // 0: off
  float top_p = 1.0f;        // 1: off
  float min_p = 0.0f;        // 0: off; keeps tokens with p >= min_p * p_max
  // Hugging Face's: a seen token's logit is divided by it when positive, multiplied when
  // negative. Seen = prompt and completion tokens. 1: off.
  float repetition_penalty = 1.0f;
  // OpenAI's: logit -= presence * [count > 0] + frequency * count, over completion tokens.
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to those tokens' logits
  // Completion i draws from its own generator seeded by (seed, i): the same seed gives the
  // same completions on any run and thread count. A completion of a group equals the one
  // generated alone (first_index) when the batch computes what one row computes: f32/f16
  // weights, or LoadOptions::exact_activations (bf16 weights otherwise round batched
  // activations to bf16, and samples may then part ways).
  uint64_t seed = 0;

  // DeepSeek's recommendation for R1 and its distills: temperature 0.6, top-p 0.95.
  static SamplingParams R1Recommended();
};

struct ThinkingBudget {
  // When a completion has thought this many tokens, its thinking is closed: `close_text`
  // and then "</think>" are appended as forced tokens and the answer follows. -1: no limit.
  int max_tokens = -1;
  std::string close_text = "\n\nTime is up, so I will give my answer now.\n";
  // Until a completion has thought this many tokens, "</think>" and EOS are not allowed:
  // if the model picks one, `continuation` is forced instead (s1's "Wait"), or, when
  // continuation is empty, the next most likely other token is drawn.
  int min_tokens = 0;
  std::string continuation = "Wait";
};

struct GenerateOptions {
  SamplingParams sampling;
  int max_new_tokens = 4096;      // per completion, forced tokens included
  std::vector<std::string> stop;  // stop strings: the text ends before them, never shown
  ThinkingBudget thinking;
  int n = 1;                      // completions of the prompt (a GRPO group)
  // Completion i draws from the generator of (sampling.seed, first_index + i): a group can
  // be split over calls or machines and give the same completions.
  int first_index = 0;
  // Also record each sampled token's log-prob under the truncated, penalised distribution
  // it was actually drawn from (Completion::sampled_logprobs).
  bool sampled_logprobs = false;
  // Set from any thread to stop; every completion then ends within one decode step with
  // FinishReason::kCancelled.
  std::shared_ptr<std::atomic<bool>> cancel;
  ChatOptions chat;  // chat template options (add_generation_prompt, tools, extra)
  DType kv_dtype = DType::kF32;  // the KV cache's (bf16 halves its memory)
  // KV-cache capacity in tokens; 0: the prompt once plus n x max_new_tokens (and the
  // blocks copy-on-write may need). Out of room ends completions with kContextFull.
  int64_t cache_tokens = 0;
  // (MoE models) Count which experts the generation's tokens went to, prompt included
  // (GenerationResult::routing); routing_trace also records every token's choice.
  bool routing_stats = false;
  bool routing_trace = false;
};

enum class Channel : uint8_t { kThinking = 0, kAnswer = 1 };

enum class FinishReason : uint8_t {
  kEos,             // the model ended (EOS or another end-of-turn id of the config)
  kStopString,      // a stop string appeared
  kMaxTokens,       // max_new_tokens reached
  kCancelled,       // GenerateOptions::cancel was set
  kContextFull,     // the sequence reached the model's or the cache's length
};
RRT_API std::string_view FinishReasonName(FinishReason reason);

struct Completion {
  int index = 0;
  std::string thinking;  // without the tags; leading newlines dropped
  std::string answer;    // text after "</think>" (or all text if the model never thought)
  std::vector<int32_t> tokens;
  std::vector<Channel> channels;  // per token: the channel it was generated in
  std::vector<uint8_t> forced;    // per token: 1 if written by a budget, not sampled
  // Per token: log_softmax(logits / temperature)[token] over the full vocabulary and the
  // model's raw logits (temperature 1 when greedy): what RL trainers recompute.
  std::vector<float> logprobs;
  std::vector<float> sampled_logprobs;  // see GenerateOptions::sampled_logprobs
  FinishReason finish_reason = FinishReason::kMaxTokens;
  int thinking_tokens = 0;
};

struct Timings {
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;  // over all completions
  double prompt_seconds = 0;
  double decode_seconds = 0;
  double decode_tokens_per_second() const { return decode_seconds > 0 ? generated_tokens / decode_seconds : 0; }
};

struct GenerationResult {
  std::string prompt;  // the rendered prompt (empty for token prompts)
  std::vector<int32_t> prompt_tokens;
  std::vector<Completion> completions;  // by index
  Timings timings;
  RoutingStats routing;  // with GenerateOptions::routing_stats (MoE models)
};

// All callbacks run on the calling thread, in order; `index` is the completion's. Each
// completion's events come in its own order; a group's completions take turns, a decode
// step at a time (a group's draws run on a few threads of their own, which the callbacks
// never see).
struct StreamCallbacks {
  std::function<void(int index, std::string_view text)> on_thinking;  // UTF-8 complete pieces
  std::function<void(int index, std::string_view text)> on_answer;
  std::function<void(int index, int32_t token, float logprob, Channel channel)> on_token;
  std::function<void(const Completion& completion)> on_finish;
};

struct GenerationEvent {
  enum class Type : uint8_t { kThinking, kAnswer, kToken, kFinish };
  Type type;
  int index = 0;
  std::string text;                    // kThinking, kAnswer
  int32_t token = -1;                  // kToken
  float logprob = 0;                   // kToken
  Channel channel = Channel::kAnswer;  // kToken
  FinishReason finish_reason = FinishReason::kMaxTokens;  // kFinish
};

// A generation in progress, advanced by the caller: each Next runs at most one decode step.
class RRT_API GenerationRun {
 public:
  virtual ~GenerationRun();
  // The next event; nullopt when every completion has finished. An error ends the run.
  virtual std::optional<absl::StatusOr<GenerationEvent>> Next() = 0;
  // The result so far (complete once Next has returned nullopt).
  virtual const GenerationResult& result() const = 0;
};

struct ScoreResult {
  // Per completion, per token: log_softmax(logits / temperature)[token].
  std::vector<std::vector<float>> logprobs;
};

class RRT_API Generator {
 public:
  // The model, its tokenizer and its chat template from one folder.
  static absl::StatusOr<std::unique_ptr<Generator>> Load(const std::string& path, const LoadOptions& options = {});
  static absl::StatusOr<std::unique_ptr<Generator>> Create(std::shared_ptr<const Model> model,
                                                           std::shared_ptr<const Tokenizer> tokenizer,
                                                           std::shared_ptr<const ChatTemplate> chat_template);
  ~Generator();

  // Renders `messages` with the chat template and generates. Errors: InvalidArgument for
  // bad options or logits that leave nothing to sample (NaN, all -inf); ResourceExhausted
  // when the prompt does not fit the context; errors of the template and tokenizer.
  absl::StatusOr<GenerationResult> Generate(absl::Span<const ChatMessage> messages, const GenerateOptions& options,
                                            const StreamCallbacks& stream = {}) const;
  // A prompt as text (special tokens in it are recognised; no template is applied).
  absl::StatusOr<GenerationResult> GenerateFromText(std::string_view prompt, const GenerateOptions& options,
                                                    const StreamCallbacks& stream = {}) const;
  absl::StatusOr<GenerationResult> GenerateFromTokens(absl::Span<const int32_t> prompt, const GenerateOptions& options,
                                                      const StreamCallbacks& stream = {}) const;

  // The pull form of Generate / GenerateFromTokens.
  absl::StatusOr<std::unique_ptr<GenerationRun>> Start(absl::Span<const ChatMessage> messages,
                                                       const GenerateOptions& options) const;
  absl::StatusOr<std::unique_ptr<GenerationRun>> StartFromTokens(absl::Span<const int32_t> prompt,
                                                                 const GenerateOptions& options) const;

  // Teacher-forced log-probs of `completions` after `prompt`, all in one batch (the prompt
  // is processed once). Equals the logprobs a generation with that temperature recorded.
  absl::StatusOr<ScoreResult> Score(absl::Span<const int32_t> prompt,
                                    absl::Span<const std::vector<int32_t>> completions, float temperature = 1.0f) const;

  const Model& model() const;
  const Tokenizer& tokenizer() const;
  const ChatTemplate& chat_template() const;

  struct Impl;

 private:
  explicit Generator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace reasonrt

#endif  // REASONRT_GENERATE_H_
