// lib/generate/run.h: the generation loop over any Session (the tests script one).
#ifndef REASONRT_LIB_GENERATE_RUN_H_
#define REASONRT_LIB_GENERATE_RUN_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "reasonrt/generate.h"
#include "reasonrt/session.h"
#include "reasonrt/tokenizer.h"

namespace reasonrt::gen {

struct ModelInfo {
  int64_t vocab_size = 0;
  int64_t max_positions = 0;     // the model's context length
  std::vector<int32_t> eos_ids;  // every id that ends a turn
};

// KV-cache tokens a run needs: the prompt once, plus n completions and the blocks that
// copy-on-write may duplicate.
int64_t CacheTokensFor(int64_t prompt_tokens, const GenerateOptions& options);

// Starts a run on `session` (empty, owned by the run). `prompt_text` decides whether the
// output starts in thinking (the prompt ends with "<think>"); pass the decoded prompt.
absl::StatusOr<std::unique_ptr<GenerationRun>> StartRun(std::unique_ptr<Session> session,
                                                        std::shared_ptr<const Tokenizer> tokenizer, ModelInfo info,
                                                        std::vector<int32_t> prompt, std::string prompt_text,
                                                        const GenerateOptions& options);

// Runs `run` to its end, passing its events to `stream`.
absl::StatusOr<GenerationResult> Drive(GenerationRun& run, const StreamCallbacks& stream);

// Teacher-forced log-probs (see Generator::Score) on an empty session.
absl::StatusOr<ScoreResult> ScoreOn(Session& session, int64_t vocab_size, absl::Span<const int32_t> prompt,
                                    absl::Span<const std::vector<int32_t>> completions, float temperature);

}  // namespace reasonrt::gen

#endif  // REASONRT_LIB_GENERATE_RUN_H_
