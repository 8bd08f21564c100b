#include "lib/generate/run.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "lib/core/status_macros.h"
#include "lib/core/strings.h"
#include "lib/generate/sampler.h"
#include "lib/generate/text_stream.h"

namespace reasonrt::gen {
namespace {

constexpr int64_t kBlockTokens = 16;  // the KV cache's block size

// An event of `type` for completion `index`, its other fields at their defaults.
GenerationEvent Event(GenerationEvent::Type type, int index) {
  GenerationEvent e;
  e.type = type;
  e.index = index;
  return e;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// One completion of the group.
struct Sequence {
  int32_t seq_id = 0;
  Rng rng{0};
  Completion completion;
  absl::flat_hash_map<int32_t, int> counts;  // tokens generated so far
  std::optional<Tokenizer::StreamDecoder> decoder;
  std::optional<ReasoningSplitter> splitter;
  std::optional<StopMatcher> stop;
  Channel held_channel = Channel::kAnswer;  // channel of the text StopMatcher holds back
  std::vector<int32_t> to_feed;  // tokens appended but not yet in the cache
  size_t awaiting_logprob = 0;   // of to_feed's tail: forced tokens whose log-prob comes with the next pass
  int64_t length = 0;            // tokens in the cache
  bool done = false;
  bool budget_closed = false;    // the thinking budget already forced the end of thinking
};

class Run final : public GenerationRun {
 public:
  Run(std::unique_ptr<Session> session, std::shared_ptr<const Tokenizer> tokenizer, ModelInfo info,
      std::vector<int32_t> prompt, std::string prompt_text, const GenerateOptions& options)
      : session_(std::move(session)),
        tokenizer_(std::move(tokenizer)),
        info_(std::move(info)),
        options_(options),
        sampler_(options.sampling),
        start_in_thinking_(PromptOpensThinking(prompt_text)) {
    result_.prompt = std::move(prompt_text);
    result_.prompt_tokens = std::move(prompt);
    for (int32_t t : result_.prompt_tokens) ++prompt_counts_[t];
    if (auto id = tokenizer_->TokenId("</think>")) think_end_ = *id;
    if (options_.routing_stats || options_.routing_trace) session_->ResetRoutingStats(options_.routing_trace);
  }

  absl::Status Init() {
    EncodeOptions special;
    special.parse_special = true;
    RRT_ASSIGN_OR_RETURN(close_tokens_, tokenizer_->Encode(options_.thinking.close_text + "</think>", special));
    RRT_ASSIGN_OR_RETURN(continuation_tokens_, tokenizer_->Encode(options_.thinking.continuation, special));
    ended_by_ = info_.eos_ids;
    if (think_end_ >= 0) banned_early_ = {think_end_};
    banned_early_.insert(banned_early_.end(), info_.eos_ids.begin(), info_.eos_ids.end());
    return absl::OkStatus();
  }

  std::optional<absl::StatusOr<GenerationEvent>> Next() override {
    while (events_.empty()) {
      if (failed_ || finished_) return std::nullopt;
      absl::Status s = started_ ? Step() : Begin();
      if (!s.ok()) {
        failed_ = true;
        return absl::StatusOr<GenerationEvent>(s);
      }
    }
    GenerationEvent e = std::move(events_.front());
    events_.pop_front();
    return absl::StatusOr<GenerationEvent>(std::move(e));
  }

  const GenerationResult& result() const override { return result_; }

 private:
  bool Cancelled() const { return options_.cancel && options_.cancel->load(std::memory_order_relaxed); }

  absl::Status Begin() {
    started_ = true;
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t n_prompt = static_cast<int64_t>(result_.prompt_tokens.size());
    Batch prefill;
    for (int64_t i = 0; i < n_prompt; ++i) {
      prefill.Add(result_.prompt_tokens[i], static_cast<int32_t>(i), 0, i == n_prompt - 1);
    }
    // The logits stay where the model computed them (a GPU's memory); only the drawn
    // tokens and their log-probs come back.
    RRT_RETURN_IF_ERROR(session_->ForwardKeepLogits(prefill).status());
    for (int i = 1; i < options_.n; ++i) RRT_RETURN_IF_ERROR(session_->ForkSequence(0, i));
    result_.timings.prompt_tokens = n_prompt;
    result_.timings.prompt_seconds = Seconds(t0);
    decode_start_ = std::chrono::steady_clock::now();
    seqs_.resize(options_.n);
    result_.completions.resize(options_.n);
    for (int i = 0; i < options_.n; ++i) {
      Sequence& s = seqs_[i];
      s.seq_id = i;
      s.rng = CompletionRng(options_.sampling.seed, options_.first_index + i);
      s.completion.index = i;
      s.decoder.emplace(*tokenizer_);
      s.splitter.emplace(start_in_thinking_);
      s.stop.emplace(options_.stop);
      s.length = n_prompt;
    }
    // Every completion's first token comes from the prompt's last logits.
    std::vector<std::pair<Sequence*, int32_t>> next;
    for (Sequence& s : seqs_) next.emplace_back(&s, 0);
    RRT_RETURN_IF_ERROR(Advance(next));
    return Finalize();
  }

  absl::Status Step() {
    Batch batch;
    std::vector<Sequence*> fed;
    for (Sequence& s : seqs_) {
      if (s.done) continue;
      if (Cancelled()) {
        Finish(s, FinishReason::kCancelled);
        continue;
      }
      if (s.length + static_cast<int64_t>(s.to_feed.size()) > info_.max_positions) {
        Finish(s, FinishReason::kContextFull);
        continue;
      }
      for (size_t j = 0; j < s.to_feed.size(); ++j) {
        // Logits for the rows that give the next forced token's log-prob, and for the last.
        const bool want = j + 1 == s.to_feed.size() || j + s.awaiting_logprob + 1 >= s.to_feed.size();
        batch.Add(s.to_feed[j], static_cast<int32_t>(s.length + j), s.seq_id, want);
      }
      fed.push_back(&s);
    }
    if (batch.size() == 0) return Finalize();
    absl::StatusOr<int64_t> kept = session_->ForwardKeepLogits(batch);
    if (!kept.ok()) {
      if (kept.status().code() != absl::StatusCode::kResourceExhausted) return kept.status();
      for (Sequence* s : fed) Finish(*s, FinishReason::kContextFull);  // the cache is full
      return Finalize();
    }
    // Each sequence's kept rows: first those of the forced tokens that waited for their
    // log-probs (token k-a+i follows row i), then the last.
    int32_t row = 0;
    std::vector<int32_t> first_row, score_rows;
    std::vector<TokenDraw> scores;
    for (Sequence* s : fed) {
      first_row.push_back(row);
      const size_t k = s->to_feed.size();
      for (size_t i = 0; i < s->awaiting_logprob; ++i) {
        score_rows.push_back(row + static_cast<int32_t>(i));
        scores.push_back(sampler_.ScoreDraw(s->to_feed[k - s->awaiting_logprob + i]));
      }
      row += static_cast<int32_t>(s->awaiting_logprob) + 1;
    }
    std::vector<DrawnToken> scored(scores.size());
    RRT_RETURN_IF_ERROR(session_->SampleKept(score_rows, scores, absl::MakeSpan(scored)));
    size_t score = 0;
    std::vector<std::pair<Sequence*, int32_t>> next;
    for (size_t f = 0; f < fed.size(); ++f) {
      Sequence* s = fed[f];
      const size_t k = s->to_feed.size(), waited = s->awaiting_logprob;
      const std::vector<int32_t> forced(s->to_feed.end() - waited, s->to_feed.end());
      s->length += static_cast<int64_t>(k);
      s->to_feed.clear();
      s->awaiting_logprob = 0;
      for (size_t i = 0; i < forced.size() && !s->done; ++i) {
        Append(*s, forced[i], scored[score + i].score_logprob, 0.0f, /*is_forced=*/true);
      }
      score += waited;
      if (!s->done) next.emplace_back(s, first_row[f] + static_cast<int32_t>(waited));
    }
    RRT_RETURN_IF_ERROR(Advance(next));
    return Finalize();
  }

  // Chooses what follows each (sequence, kept logits row): a sampled token, or forced text
  // of a budget. The draws go to the session at once (a device draws a group's rows in
  // one launch; each completion has its own generator, so the tokens do not depend on
  // how); their tokens are then appended in the given order.
  absl::Status Advance(absl::Span<const std::pair<Sequence*, int32_t>> next) {
    struct Choice {
      Sequence* s;
      bool close;      // the thinking budget ends the thinking (no draw)
      bool too_early;  // "</think>" and EOS are not yet allowed
    };
    std::vector<Choice> choices;
    std::vector<int32_t> rows;
    std::vector<TokenDraw> draws;
    std::deque<std::vector<LogitEdit>> edits;  // the draws' edits (stable addresses)
    const ThinkingBudget& budget = options_.thinking;
    for (const auto& [s, row] : next) {
      if (s->done) continue;
      if (Cancelled()) {
        Finish(*s, FinishReason::kCancelled);
        continue;
      }
      const Completion& c = s->completion;
      const bool thinking = s->splitter->thinking();
      TokenDraw d;
      if (thinking && !s->budget_closed && budget.max_tokens >= 0 &&
          c.thinking_tokens >= budget.max_tokens) {
        s->budget_closed = true;
        if (close_tokens_.empty()) continue;
        choices.push_back({s, true, false});
        d = sampler_.ScoreDraw(close_tokens_[0]);
      } else {
        const bool too_early = thinking && c.thinking_tokens < budget.min_tokens;
        // Too early: with no continuation text the endings get no probability; with one, a
        // drawn ending is replaced by it (so its first token's log-prob comes along).
        const bool ban = too_early && continuation_tokens_.empty();
        choices.push_back({s, false, too_early});
        RRT_ASSIGN_OR_RETURN(d, sampler_.MakeDraw(info_.vocab_size, prompt_counts_, s->counts,
                                                  ban ? absl::MakeConstSpan(banned_early_)
                                                      : absl::Span<const int32_t>(),
                                                  s->rng, edits.emplace_back()));
        if (too_early && !continuation_tokens_.empty()) d.score_token = continuation_tokens_[0];
      }
      rows.push_back(row);
      draws.push_back(d);
    }
    std::vector<DrawnToken> drawn(draws.size());
    RRT_RETURN_IF_ERROR(session_->SampleKept(rows, draws, absl::MakeSpan(drawn)));
    for (size_t i = 0; i < choices.size(); ++i) {
      Sequence& s = *choices[i].s;
      const DrawnToken& r = drawn[i];
      if (choices[i].close) {
        Force(s, close_tokens_, r.score_logprob);
        continue;
      }
      if (choices[i].too_early &&
          std::find(banned_early_.begin(), banned_early_.end(), r.token) != banned_early_.end()) {
        Force(s, continuation_tokens_, r.score_logprob);  // s1's "Wait"
        continue;
      }
      Append(s, r.token, r.logprob, r.sampled_logprob, false);
      if (!s.done) s.to_feed.push_back(r.token);
    }
    return absl::OkStatus();
  }

  // Appends forced tokens (the first's log-prob given): the others' log-probs come with
  // the next forward pass.
  void Force(Sequence& s, const std::vector<int32_t>& tokens, float first_logprob) {
    if (tokens.empty()) return;
    Append(s, tokens[0], first_logprob, 0.0f, true);
    if (s.done) return;
    s.to_feed.push_back(tokens[0]);
    for (size_t i = 1; i < tokens.size(); ++i) s.to_feed.push_back(tokens[i]);
    s.awaiting_logprob = tokens.size() - 1;
  }

  // Adds one token to a completion: text, channels, events, and the end conditions.
  void Append(Sequence& s, int32_t token, float logprob, float sampled_logprob, bool is_forced) {
    Completion& c = s.completion;
    const bool was_thinking = s.splitter->thinking();
    const bool is_eos = !is_forced && std::find(ended_by_.begin(), ended_by_.end(), token) != ended_by_.end();
    std::vector<Piece> pieces;
    if (!is_eos) {
      absl::StatusOr<std::string> text = s.decoder->Add(token);
      if (text.ok()) s.splitter->Feed(*text, &pieces);
    }
    const Channel channel = was_thinking || s.splitter->thinking() ? Channel::kThinking : Channel::kAnswer;
    c.tokens.push_back(token);
    c.channels.push_back(channel);
    c.forced.push_back(is_forced ? 1 : 0);
    c.logprobs.push_back(logprob);
    if (options_.sampled_logprobs) c.sampled_logprobs.push_back(sampled_logprob);
    if (channel == Channel::kThinking) ++c.thinking_tokens;
    ++s.counts[token];
    ++generated_;
    GenerationEvent e = Event(GenerationEvent::Type::kToken, c.index);
    e.token = token;
    e.logprob = logprob;
    e.channel = channel;
    events_.push_back(std::move(e));
    if (EmitPieces(s, pieces)) {
      Finish(s, FinishReason::kStopString);
      return;
    }
    if (is_eos) {
      Finish(s, FinishReason::kEos);
    } else if (static_cast<int64_t>(c.tokens.size()) >= options_.max_new_tokens) {
      Finish(s, FinishReason::kMaxTokens);
    } else if (s.length + static_cast<int64_t>(s.to_feed.size()) + 1 > info_.max_positions) {
      Finish(s, FinishReason::kContextFull);
    }
  }

  // Passes pieces through the stop matcher to the result and the events; true at a stop.
  bool EmitPieces(Sequence& s, const std::vector<Piece>& pieces) {
    for (const Piece& p : pieces) {
      if (p.channel != s.held_channel) {
        Show(s, s.held_channel, s.stop->Flush());
        s.held_channel = p.channel;
      }
      bool stopped = false;
      Show(s, p.channel, s.stop->Feed(p.text, &stopped));
      if (stopped) return true;
    }
    return false;
  }

  void Show(Sequence& s, Channel channel, const std::string& text) {
    if (text.empty()) return;
    Completion& c = s.completion;
    (channel == Channel::kThinking ? c.thinking : c.answer) += text;
    GenerationEvent e = Event(channel == Channel::kThinking ? GenerationEvent::Type::kThinking
                                                            : GenerationEvent::Type::kAnswer,
                              c.index);
    e.text = text;
    events_.push_back(std::move(e));
  }

  void Finish(Sequence& s, FinishReason reason) {
    if (s.done) return;
    s.done = true;
    s.to_feed.clear();
    if (reason != FinishReason::kStopString) {
      std::vector<Piece> pieces;
      const std::string tail = s.decoder->Finish();
      if (!tail.empty()) s.splitter->Feed(tail, &pieces);
      s.splitter->Finish(&pieces);
      bool stopped = false;
      for (const Piece& p : pieces) {
        if (p.channel != s.held_channel) {
          Show(s, s.held_channel, s.stop->Flush());
          s.held_channel = p.channel;
        }
        Show(s, p.channel, s.stop->Feed(p.text, &stopped));
        if (stopped) {
          reason = FinishReason::kStopString;
          break;
        }
      }
      if (!stopped) Show(s, s.held_channel, s.stop->Flush());
    }
    s.completion.finish_reason = reason;
    session_->RemoveSequence(s.seq_id);
    GenerationEvent e = Event(GenerationEvent::Type::kFinish, s.completion.index);
    e.finish_reason = reason;
    events_.push_back(std::move(e));
    result_.completions[s.completion.index] = s.completion;
  }

  absl::Status Finalize() {
    result_.timings.generated_tokens = generated_;
    result_.timings.decode_seconds = Seconds(decode_start_);
    finished_ = std::all_of(seqs_.begin(), seqs_.end(), [](const Sequence& s) { return s.done; });
    if (finished_ && (options_.routing_stats || options_.routing_trace)) {
      result_.routing = session_->routing_stats();
    }
    return absl::OkStatus();
  }

  std::unique_ptr<Session> session_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  ModelInfo info_;
  GenerateOptions options_;
  Sampler sampler_;
  bool start_in_thinking_;
  int32_t think_end_ = -1;
  std::vector<int32_t> close_tokens_, continuation_tokens_, ended_by_, banned_early_;
  absl::flat_hash_map<int32_t, int> prompt_counts_;
  std::vector<Sequence> seqs_;
  std::deque<GenerationEvent> events_;
  GenerationResult result_;
  int64_t generated_ = 0;
  std::chrono::steady_clock::time_point decode_start_;
  bool started_ = false, finished_ = false, failed_ = false;
};

}  // namespace

int64_t CacheTokensFor(int64_t prompt_tokens, const GenerateOptions& options) {
  const int64_t n = std::max(options.n, 1);
  const int64_t per_completion = std::max(options.max_new_tokens, 1) + kBlockTokens;
  return prompt_tokens + n * per_completion + (n + 1) * kBlockTokens;
}

absl::StatusOr<std::unique_ptr<GenerationRun>> StartRun(std::unique_ptr<Session> session,
                                                        std::shared_ptr<const Tokenizer> tokenizer, ModelInfo info,
                                                        std::vector<int32_t> prompt, std::string prompt_text,
                                                        const GenerateOptions& options) {
  RRT_RETURN_IF_ERROR(Sampler::Validate(options.sampling));
  if (options.n < 1 || options.n > 4096) {
    return absl::InvalidArgumentError(StrCat("n = ", options.n, ": a group has 1 to 4096 completions"));
  }
  if (options.max_new_tokens < 1) {
    return absl::InvalidArgumentError(StrCat("max_new_tokens = ", options.max_new_tokens, " must be at least 1"));
  }
  if (options.thinking.min_tokens < 0) return absl::InvalidArgumentError("thinking.min_tokens is negative");
  if (options.first_index < 0) return absl::InvalidArgumentError("first_index is negative");
  if (prompt.empty()) return absl::InvalidArgumentError("the prompt has no tokens");
  for (int32_t t : prompt) {
    if (t < 0 || t >= info.vocab_size) {
      return absl::InvalidArgumentError(StrCat("prompt token ", t, " is outside the vocabulary (", info.vocab_size, ")"));
    }
  }
  if (static_cast<int64_t>(prompt.size()) >= info.max_positions) {
    return absl::ResourceExhaustedError(StrCat("the prompt has ", prompt.size(),
                                               " tokens; the model's context holds ", info.max_positions));
  }
  auto run = std::make_unique<Run>(std::move(session), std::move(tokenizer), std::move(info), std::move(prompt),
                                   std::move(prompt_text), options);
  RRT_RETURN_IF_ERROR(run->Init());
  return run;
}

absl::StatusOr<GenerationResult> Drive(GenerationRun& run, const StreamCallbacks& stream) {
  while (auto event = run.Next()) {
    if (!event->ok()) return event->status();
    const GenerationEvent& e = **event;
    switch (e.type) {
      case GenerationEvent::Type::kThinking:
        if (stream.on_thinking) stream.on_thinking(e.index, e.text);
        break;
      case GenerationEvent::Type::kAnswer:
        if (stream.on_answer) stream.on_answer(e.index, e.text);
        break;
      case GenerationEvent::Type::kToken:
        if (stream.on_token) stream.on_token(e.index, e.token, e.logprob, e.channel);
        break;
      case GenerationEvent::Type::kFinish:
        if (stream.on_finish) stream.on_finish(run.result().completions[e.index]);
        break;
    }
  }
  return run.result();
}

absl::StatusOr<ScoreResult> ScoreOn(Session& session, int64_t vocab_size, absl::Span<const int32_t> prompt,
                                    absl::Span<const std::vector<int32_t>> completions, float temperature) {
  if (prompt.empty()) return absl::InvalidArgumentError("Score: the prompt has no tokens");
  if (!(temperature > 0)) return absl::InvalidArgumentError("Score: temperature must be > 0");
  SamplingParams params;
  params.temperature = temperature;
  const Sampler sampler(params);
  Batch prefill;
  for (size_t i = 0; i < prompt.size(); ++i) prefill.Add(prompt[i], static_cast<int32_t>(i), 0, i + 1 == prompt.size());
  RRT_ASSIGN_OR_RETURN(Logits first, session.Forward(prefill));
  ScoreResult result;
  result.logprobs.resize(completions.size());
  for (size_t c = 0; c < completions.size(); ++c) {
    for (int32_t t : completions[c]) {
      if (t < 0 || t >= vocab_size) {
        return absl::InvalidArgumentError(StrCat("Score: completion ", c, " has token ", t, " outside the vocabulary"));
      }
    }
    if (!completions[c].empty()) result.logprobs[c].push_back(sampler.LogProb(first.Row(0), completions[c][0]));
    RRT_RETURN_IF_ERROR(session.ForkSequence(0, static_cast<int32_t>(c + 1)));
  }
  // Feed each completion but its last token, a bounded number of rows per pass (logits of
  // a row are vocab_size floats).
  constexpr size_t kRowsPerPass = 64;
  std::vector<size_t> fed(completions.size(), 0);
  while (true) {
    Batch batch;
    std::vector<std::pair<size_t, size_t>> rows;  // (completion, index of the token it predicts)
    for (size_t c = 0; c < completions.size() && batch.size() < kRowsPerPass; ++c) {
      const auto& tokens = completions[c];
      while (fed[c] + 1 < tokens.size() && batch.size() < kRowsPerPass) {
        batch.Add(tokens[fed[c]], static_cast<int32_t>(prompt.size() + fed[c]), static_cast<int32_t>(c + 1), true);
        rows.emplace_back(c, fed[c] + 1);
        ++fed[c];
      }
    }
    if (batch.size() == 0) break;
    RRT_ASSIGN_OR_RETURN(Logits logits, session.Forward(batch));
    for (size_t r = 0; r < rows.size(); ++r) {
      const auto [c, next] = rows[r];
      result.logprobs[c].push_back(sampler.LogProb(logits.Row(r), completions[c][next]));
    }
  }
  return result;
}

}  // namespace reasonrt::gen
