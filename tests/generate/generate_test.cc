// Generation with scripted logits (a fake Session): sampler, reasoning splitter, stop
// strings, thinking budgets, groups, cancellation and the pull form. The real models'
// generation is checked against the PyTorch reference in tests/reference/.
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <cmath>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <unistd.h>

#include "gtest/gtest.h"
#include "lib/generate/run.h"
#include "lib/models/synth.h"
#include "lib/generate/sampler.h"
#include "lib/generate/text_stream.h"
#include "reasonrt/generate.h"
#include "reasonrt/tokenizer.h"

#define RRT_ASSIGN_OR_RETURN_TEST(lhs, expr) \
  auto RRT_CONCAT_(s_, __LINE__) = (expr);   \
  if (!RRT_CONCAT_(s_, __LINE__).ok()) return RRT_CONCAT_(s_, __LINE__).status(); \
  lhs = std::move(*RRT_CONCAT_(s_, __LINE__))
#define RRT_CONCAT_(a, b) RRT_CONCAT2_(a, b)
#define RRT_CONCAT2_(a, b) a##b

namespace reasonrt::gen {
namespace {

// ---------------------------------------------------------------------------------------
// Text side.

std::pair<std::string, std::string> Split(bool start_thinking, const std::vector<std::string>& chunks) {
  ReasoningSplitter splitter(start_thinking);
  std::vector<Piece> pieces;
  for (const std::string& c : chunks) splitter.Feed(c, &pieces);
  splitter.Finish(&pieces);
  std::string thinking, answer;
  for (const Piece& p : pieces) (p.channel == Channel::kThinking ? thinking : answer) += p.text;
  return {thinking, answer};
}

TEST(ReasoningSplitterTest, TagsWholeOrInPieces) {
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(Split(true, {"\nLet me", " think.", "</think>", "\n\n", "4"}), P("Let me think.", "4"));
  EXPECT_EQ(Split(true, {"a<", "/th", "ink", ">\n\nb"}), P("a", "b"));
  EXPECT_EQ(Split(true, {"a </thin", "g> still thinking"}), P("a </thing> still thinking", ""));
  EXPECT_EQ(Split(false, {"  \n<th", "ink>\nhm</think>yes"}), P("hm", "yes"));
  EXPECT_EQ(Split(false, {"No thinking", " at all"}), P("", "No thinking at all"));
  EXPECT_EQ(Split(false, {"<", "b>bold</b>"}), P("", "<b>bold</b>"));
  EXPECT_EQ(Split(false, {"<thi"}), P("", "<thi"));  // ended before the tag was complete
  EXPECT_EQ(Split(true, {"never closed"}), P("never closed", ""));
  EXPECT_EQ(Split(true, {"x</think>y</think>z"}), P("x", "y</think>z"));  // only the first closes
  EXPECT_TRUE(PromptOpensThinking("<｜Assistant｜><think>\n"));
  EXPECT_FALSE(PromptOpensThinking("<｜Assistant｜>"));
}

TEST(StopMatcherTest, HoldsBackAndCuts) {
  StopMatcher m({"STOP", "\n\n\n"});
  bool stopped = false;
  EXPECT_EQ(m.Feed("abc S", &stopped), "abc ");
  EXPECT_FALSE(stopped);
  EXPECT_EQ(m.Feed("T", &stopped), "");
  EXPECT_EQ(m.Feed("OP tail", &stopped), "");
  EXPECT_TRUE(stopped);
  StopMatcher n({"STOP"});
  EXPECT_EQ(n.Feed("ST", &stopped), "");
  EXPECT_EQ(n.Feed("ART", &stopped), "START");
  EXPECT_EQ(n.Feed("ST", &stopped), "");
  EXPECT_EQ(n.Flush(), "ST");
}

// ---------------------------------------------------------------------------------------
// Sampler.

std::vector<float> Row(std::vector<float> v) { return v; }
const absl::flat_hash_map<int32_t, int> kNone;

double LogSoftmax(const std::vector<float>& l, int i, double t = 1) {
  double m = -1e30, z = 0;
  for (float x : l) m = std::max(m, x / t);
  for (float x : l) z += std::exp(x / t - m);
  return l[i] / t - m - std::log(z);
}

TEST(SamplerTest, GreedyAndLogProbs) {
  SamplingParams p;
  p.greedy = true;
  Sampler s(p);
  Rng rng(1);
  const auto l = Row({0.5f, 3.0f, -1.0f, 3.0f});
  auto r = s.Sample(l, kNone, kNone, {}, rng);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->token, 1);  // the first of tied maxima
  EXPECT_NEAR(r->logprob, LogSoftmax(l, 1), 1e-6);
}

// Draw frequencies of 20,000 samples against the expected distribution.
std::vector<double> Frequencies(const SamplingParams& p, const std::vector<float>& logits, int draws = 20000) {
  Sampler s(p);
  Rng rng(7);
  std::vector<double> f(logits.size());
  for (int i = 0; i < draws; ++i) {
    auto r = s.Sample(logits, kNone, kNone, {}, rng);
    EXPECT_TRUE(r.ok());
    f[r->token] += 1.0 / draws;
  }
  return f;
}

TEST(SamplerTest, TemperatureTopKTopPMinP) {
  const auto l = Row({2.0f, 1.0f, 0.0f, -1.0f, -3.0f});
  SamplingParams p;
  p.temperature = 0.7f;
  auto f = Frequencies(p, l);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(f[i], std::exp(LogSoftmax(l, i, 0.7)), 0.012) << i;

  p = {};
  p.top_k = 2;  // only tokens 0 and 1, renormalised
  f = Frequencies(p, l);
  const double z = std::exp(2.0) + std::exp(1.0);
  EXPECT_NEAR(f[0], std::exp(2.0) / z, 0.012);
  EXPECT_NEAR(f[1], std::exp(1.0) / z, 0.012);
  EXPECT_EQ(f[2] + f[3] + f[4], 0.0);

  // Probabilities at T=1: 0.6439 0.2369 0.0871 0.0321 0.0043. top_p 0.85: 0.6439 < 0.85,
  // 0.8808 >= 0.85, so tokens 0 and 1 stay.
  p = {};
  p.top_p = 0.85f;
  f = Frequencies(p, l);
  EXPECT_GT(f[1], 0.2);
  EXPECT_EQ(f[2] + f[3] + f[4], 0.0);
  p.top_p = 0.89f;  // now token 2 is needed too
  f = Frequencies(p, l);
  EXPECT_GT(f[2], 0.05);
  EXPECT_EQ(f[3] + f[4], 0.0);

  p = {};
  p.min_p = 0.1f;  // p >= 0.0644: tokens 0, 1, 2
  f = Frequencies(p, l);
  EXPECT_GT(f[2], 0.05);
  EXPECT_EQ(f[3] + f[4], 0.0);
}

TEST(SamplerTest, PenaltiesBiasAndBans) {
  SamplingParams p;
  p.greedy = true;
  const auto l = Row({2.0f, 1.5f, -1.0f, -0.5f});
  Rng rng(1);
  absl::flat_hash_map<int32_t, int> seen = {{0, 1}};
  p.repetition_penalty = 2.0f;  // 2.0 -> 1.0 < 1.5
  EXPECT_EQ(Sampler(p).Sample(l, seen, kNone, {}, rng)->token, 1);
  p.repetition_penalty = 1.0f;
  absl::flat_hash_map<int32_t, int> generated = {{0, 2}};
  p.frequency_penalty = 0.3f;  // 2.0 - 0.6 = 1.4 < 1.5
  EXPECT_EQ(Sampler(p).Sample(l, kNone, generated, {}, rng)->token, 1);
  p.frequency_penalty = 0;
  p.presence_penalty = 0.4f;  // 1.6 > 1.5
  EXPECT_EQ(Sampler(p).Sample(l, kNone, generated, {}, rng)->token, 0);
  p.presence_penalty = 0;
  p.logit_bias = {{3, 3.0f}};
  EXPECT_EQ(Sampler(p).Sample(l, kNone, kNone, {}, rng)->token, 3);
  const int32_t banned[] = {3, 0};
  EXPECT_EQ(Sampler(p).Sample(l, kNone, kNone, banned, rng)->token, 1);
  // Negative logits are multiplied by the repetition penalty (pushed further down).
  SamplingParams q;
  q.greedy = true;
  q.repetition_penalty = 3.0f;
  EXPECT_EQ(Sampler(q).Sample(Row({-1.0f, -2.0f}), {{0, 1}}, kNone, {}, rng)->token, 1);
}

TEST(SamplerTest, BadLogitsAndParametersAreErrors) {
  SamplingParams p;
  Rng rng(1);
  EXPECT_EQ(Sampler(p).Sample(Row({1.0f, NAN}), kNone, kNone, {}, rng).status().code(),
            absl::StatusCode::kInvalidArgument);
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(Sampler(p).Sample(Row({-inf, -inf}), kNone, kNone, {}, rng).status().code(),
            absl::StatusCode::kInvalidArgument);
  const int32_t all[] = {0, 1};
  EXPECT_FALSE(Sampler(p).Sample(Row({1.0f, 2.0f}), kNone, kNone, all, rng).ok());
  p.logit_bias = {{5, 1.0f}};
  EXPECT_FALSE(Sampler(p).Sample(Row({1.0f, 2.0f}), kNone, kNone, {}, rng).ok());
  for (auto bad : std::vector<std::function<void(SamplingParams&)>>{
           [](SamplingParams& q) { q.temperature = NAN; }, [](SamplingParams& q) { q.top_p = 0; },
           [](SamplingParams& q) { q.top_p = 1.5f; }, [](SamplingParams& q) { q.top_k = -1; },
           [](SamplingParams& q) { q.min_p = 2; }, [](SamplingParams& q) { q.repetition_penalty = 0; },
           [inf](SamplingParams& q) { q.logit_bias = {{0, inf}}; }}) {
    SamplingParams q;
    bad(q);
    EXPECT_EQ(Sampler::Validate(q).code(), absl::StatusCode::kInvalidArgument);
  }
}

// The pipeline done the plain way (every candidate sorted, f64 exponentials), as the
// reference for the fast sampler: same processed logits, same draw u in [0, 1).
struct PlainPick {
  int32_t token;
  double sampled_logprob;
};
PlainPick PlainSample(std::vector<float> l, const SamplingParams& p, double u) {
  struct C {
    float logit;
    int32_t id;
  };
  const float inv_t = 1.0f / p.temperature;
  std::vector<C> cand;
  for (int32_t i = 0; i < static_cast<int32_t>(l.size()); ++i) {
    if (l[i] != -INFINITY) cand.push_back({l[i] * inv_t, i});
  }
  auto better = [](const C& a, const C& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  std::sort(cand.begin(), cand.end(), better);
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < cand.size()) cand.resize(p.top_k);
  const double m = cand[0].logit;
  auto mass = [&](const C& c) { return std::exp(double(c.logit) - m); };
  if (p.top_p < 1.0f) {
    double z = 0, cum = 0;
    for (const C& c : cand) z += mass(c);
    size_t keep = 0;
    while (keep < cand.size() && cum < p.top_p * z) cum += mass(cand[keep++]);
    cand.resize(std::max<size_t>(keep, 1));
  }
  if (p.min_p > 0) {
    const double floor = m + std::log(double(p.min_p));
    cand.erase(
        std::remove_if(cand.begin(), cand.end(), [&](const C& c) { return c.logit < floor; }),
        cand.end());
  }
  std::sort(cand.begin(), cand.end(), [](const C& a, const C& b) { return a.id < b.id; });
  double z = 0;
  for (const C& c : cand) z += mass(c);
  double cum = 0;
  for (const C& c : cand) {
    cum += mass(c);
    if (u * z < cum) return {c.id, std::log(mass(c) / z)};
  }
  return {cand.back().id, std::log(mass(cand.back()) / z)};
}

// Random rows (peaked, flat, tied values, -inf entries, sizes up to the R1 vocabulary) and
// settings: the fast sampler picks the reference's token for the same draw, with the same
// log-probs (f32 exponentials: within 2e-5). Some rows need the pool widened: most of the
// top-p mass or the top-k tokens lie far below the best.
TEST(SamplerTest, MatchesThePlainPipeline) {
  std::mt19937 gen(11);
  int checked = 0;
  for (int trial = 0; trial < 1500; ++trial) {
    const int shape = trial % 5;
    const int vocab = trial % 100 == 0 ? 151936 : 1 + static_cast<int>(gen() % 3000);
    std::vector<float> l(vocab);
    std::normal_distribution<float> noise(0.0f, shape == 1 ? 0.5f : 3.0f);
    for (float& v : l) v = noise(gen);
    if (shape == 0) {  // a few far above the rest
      for (int i = 0; i < 3; ++i) l[gen() % vocab] = 25.0f - i;
    } else if (shape == 2) {  // ties: values on a coarse grid
      for (float& v : l) v = std::round(v);
    } else if (shape == 3) {  // -inf entries
      for (int i = 0; i < vocab / 3; ++i) l[gen() % vocab] = -INFINITY;
      l[gen() % vocab] = 1.0f;
    } else if (shape == 4) {  // one token 20 above a crowd: the rest of the mass is deep
      std::fill(l.begin(), l.end(), 0.0f);
      l[gen() % vocab] = 20.0f;
    }
    SamplingParams p;
    const float temps[] = {0.3f, 0.6f, 1.0f, 1.7f};
    const int top_ks[] = {0, 0, 1, 5, 50, 1000};
    const float top_ps[] = {1.0f, 1.0f, 0.5f, 0.9f, 0.95f, 0.9999f};
    const float min_ps[] = {0.0f, 0.0f, 0.05f, 0.3f};
    p.temperature = temps[gen() % 4];
    p.top_k = top_ks[gen() % 6];
    p.top_p = top_ps[gen() % 6];
    p.min_p = min_ps[gen() % 4];
    const uint64_t seed = gen();
    Rng rng(seed), copy(seed);
    const double u = copy.Uniform();
    auto r = Sampler(p).Sample(l, kNone, kNone, {}, rng);
    ASSERT_TRUE(r.ok()) << r.status();
    const PlainPick want = PlainSample(l, p, u);
    ASSERT_EQ(r->token, want.token)
        << "trial " << trial << " vocab " << vocab << " T " << p.temperature << " top_k " << p.top_k
        << " top_p " << p.top_p << " min_p " << p.min_p;
    EXPECT_NEAR(r->sampled_logprob, want.sampled_logprob, 2e-5) << trial;
    EXPECT_NEAR(r->logprob, LogSoftmax(l, r->token, p.temperature), 2e-5) << trial;
    // Bit for bit what scoring records for the same token (Sampler::LogProb).
    EXPECT_EQ(r->logprob, Sampler(p).LogProb(l, r->token)) << trial;
    ++checked;
  }
  EXPECT_EQ(checked, 1500);
}

TEST(SamplerTest, SeedsAreReproducibleAndIndependent) {
  SamplingParams p;
  const auto l = Row({0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f});
  auto draw = [&](uint64_t seed, int index) {
    Rng rng = CompletionRng(seed, index);
    std::vector<int32_t> t;
    for (int i = 0; i < 32; ++i) t.push_back(Sampler(p).Sample(l, kNone, kNone, {}, rng)->token);
    return t;
  };
  EXPECT_EQ(draw(42, 0), draw(42, 0));
  EXPECT_NE(draw(42, 0), draw(42, 1));
  EXPECT_NE(draw(42, 0), draw(43, 0));
}

// ---------------------------------------------------------------------------------------
// The loop, over a scripted session.

// A Session whose logits come from a script: given a sequence's tokens so far, the row
// of logits for the next. Counts the rows it was asked to process.
class ScriptedSession : public Session {
 public:
  using Script = std::function<std::vector<float>(int32_t seq, const std::vector<int32_t>& tokens)>;
  struct Stats {
    int64_t rows_processed = 0, forward_calls = 0, forks = 0;
  };
  ScriptedSession(Script script, int64_t capacity) : script_(std::move(script)), capacity_(capacity) {}

  absl::StatusOr<reasonrt::Logits> Forward(const Batch& batch) override {
    stats->rows_processed += static_cast<int64_t>(batch.size());
    ++stats->forward_calls;
    int64_t used = 0;
    for (const auto& [id, t] : seqs_) used += static_cast<int64_t>(t.size());
    if (used + static_cast<int64_t>(batch.size()) > capacity_) return absl::ResourceExhaustedError("full");
    reasonrt::Logits out;
    for (size_t i = 0; i < batch.size(); ++i) {
      auto& tokens = seqs_[batch.seq_ids[i]];
      if (batch.positions[i] != static_cast<int32_t>(tokens.size())) return absl::InvalidArgumentError("position");
      tokens.push_back(batch.tokens[i]);
      if (batch.want_logits[i]) {
        std::vector<float> row = script_(batch.seq_ids[i], tokens);
        out.vocab_size = static_cast<int64_t>(row.size());
        out.batch_rows.push_back(static_cast<int32_t>(i));
        out.values.insert(out.values.end(), row.begin(), row.end());
      }
    }
    return out;
  }
  int64_t SequenceLength(int32_t seq) const override {
    auto it = seqs_.find(seq);
    return it == seqs_.end() ? 0 : static_cast<int64_t>(it->second.size());
  }
  void RemoveSequence(int32_t seq) override { seqs_.erase(seq); }
  absl::Status ForkSequence(int32_t src, int32_t dst) override {
    if (!seqs_.count(src) || seqs_.count(dst)) return absl::InvalidArgumentError("fork");
    seqs_[dst] = seqs_[src];
    ++stats->forks;
    return absl::OkStatus();
  }
  int64_t FreeTokens() const override { return capacity_; }

  // Outlives the session (a run owns its session).
  std::shared_ptr<Stats> stats = std::make_shared<Stats>();

 private:
  Script script_;
  int64_t capacity_;
  std::map<int32_t, std::vector<int32_t>> seqs_;
};

class GenerateLoopTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Qwen3's files: "<think>" and "</think>" are single tokens there, as in the R1 distills.
    auto tok = Tokenizer::Load(std::string(RRT_TOKENIZER_FILES_DIR) + "/tokenizer-qwen3/models");
    ASSERT_TRUE(tok.ok()) << tok.status();
    tokenizer_ = std::shared_ptr<const Tokenizer>(std::move(*tok));
  }
  static void TearDownTestSuite() { tokenizer_.reset(); }

  int32_t Id(std::string_view token) { return *tokenizer_->TokenId(token); }
  std::vector<int32_t> Encode(std::string_view text) {
    EncodeOptions o;
    o.parse_special = true;
    return *tokenizer_->Encode(text, o);
  }
  int64_t Vocab() const { return tokenizer_->vocab_size(); }

  // Logits that make `text`'s tokens (then EOS) the argmax after the prompt, one by one;
  // `off_script` decides what follows a token the script did not plan (EOS by default).
  ScriptedSession::Script Follow(std::string text, size_t prompt_len) {
    std::vector<int32_t> plan = Encode(text);
    plan.push_back(*tokenizer_->eos_id());
    const int64_t vocab = Vocab();
    return [plan, prompt_len, vocab](int32_t, const std::vector<int32_t>& tokens) {
      std::vector<float> row(vocab, -20.0f);
      const size_t k = tokens.size() - prompt_len;
      row[plan[std::min(k, plan.size() - 1)]] = 10.0f;
      return row;
    };
  }

  struct Output {
    GenerationResult result;
    std::string streamed_thinking, streamed_answer;
    std::vector<FinishReason> finished;
    std::map<int, std::vector<int32_t>> streamed_tokens;  // by completion, in event order
  };
  absl::StatusOr<Output> RunScript(ScriptedSession::Script script, const std::string& prompt_text,
                                   const GenerateOptions& options,
                                   std::shared_ptr<ScriptedSession::Stats>* stats_out = nullptr,
                                   std::function<void(int32_t)> on_token = nullptr) {
    auto session = std::make_unique<ScriptedSession>(std::move(script), 1 << 20);
    if (stats_out) *stats_out = session->stats;
    ModelInfo info{Vocab(), max_positions_, {*tokenizer_->eos_id()}};
    auto prompt = Encode(prompt_text);
    RRT_ASSIGN_OR_RETURN_TEST(auto run, StartRun(std::move(session), tokenizer_, info, prompt, prompt_text, options));
    Output out;
    StreamCallbacks cb;
    cb.on_thinking = [&](int i, std::string_view t) { if (i == 0) out.streamed_thinking += t; };
    cb.on_answer = [&](int i, std::string_view t) { if (i == 0) out.streamed_answer += t; };
    cb.on_token = [&](int i, int32_t t, float, Channel) {
      out.streamed_tokens[i].push_back(t);
      if (on_token) on_token(t);
    };
    cb.on_finish = [&](const Completion& c) { out.finished.push_back(c.finish_reason); };
    RRT_ASSIGN_OR_RETURN_TEST(out.result, Drive(*run, cb));
    return out;
  }

  // Each completion of `group` equals the one generated alone (first_index), field by field,
  // and its token events came in its own order; the completions differ. Returns how many
  // have forced tokens.
  int ExpectGroupMatchesSingles(const ScriptedSession::Script& script, const std::string& prompt,
                                const GenerateOptions& o, Output& group) {
    int forced_runs = 0;
    std::set<std::vector<int32_t>> distinct;
    for (int i = 0; i < o.n; ++i) {
      GenerateOptions one = o;
      one.n = 1;
      one.first_index = i;
      auto single = RunScript(script, prompt, one);
      EXPECT_TRUE(single.ok()) << single.status();
      if (!single.ok()) return forced_runs;
      const Completion& a = group.result.completions[i];
      const Completion& b = single->result.completions[0];
      EXPECT_EQ(a.tokens, b.tokens) << i;
      EXPECT_EQ(a.logprobs, b.logprobs) << i;
      EXPECT_EQ(a.forced, b.forced) << i;
      EXPECT_EQ(a.channels, b.channels) << i;
      EXPECT_EQ(a.finish_reason, b.finish_reason) << i;
      EXPECT_EQ(group.streamed_tokens[i], a.tokens) << i;
      forced_runs += std::count(a.forced.begin(), a.forced.end(), 1) > 0;
      distinct.insert(a.tokens);
    }
    EXPECT_GT(distinct.size(), 1u);
    return forced_runs;
  }

  static std::shared_ptr<const Tokenizer> tokenizer_;
  int64_t max_positions_ = 100000;
  const std::string prompt_ = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n";
};
std::shared_ptr<const Tokenizer> GenerateLoopTest::tokenizer_;

TEST_F(GenerateLoopTest, ThinkingThenAnswerThenEos) {
  GenerateOptions o;
  o.sampling.greedy = true;
  const std::string text = "Two plus two.\n</think>\n\nIt is 4.";
  auto out = RunScript(Follow(text, Encode(prompt_).size()), prompt_, o);
  ASSERT_TRUE(out.ok()) << out.status();
  const Completion& c = out->result.completions[0];
  EXPECT_EQ(c.thinking, "Two plus two.\n");
  EXPECT_EQ(c.answer, "It is 4.");
  EXPECT_EQ(out->streamed_thinking, c.thinking);
  EXPECT_EQ(out->streamed_answer, c.answer);
  EXPECT_EQ(c.finish_reason, FinishReason::kEos);
  EXPECT_EQ(c.tokens, [&] { auto t = Encode(text); t.push_back(*tokenizer_->eos_id()); return t; }());
  // Channels: thinking up to and including </think>, then answer.
  const auto think_end = std::find(c.tokens.begin(), c.tokens.end(), Id("</think>")) - c.tokens.begin();
  for (size_t i = 0; i < c.tokens.size(); ++i) {
    EXPECT_EQ(c.channels[i], static_cast<int64_t>(i) <= think_end ? Channel::kThinking : Channel::kAnswer) << i;
  }
  EXPECT_EQ(c.thinking_tokens, think_end + 1);
  for (float lp : c.logprobs) EXPECT_GT(lp, -1e-3);  // each token was the clear argmax
}

TEST_F(GenerateLoopTest, OutputThatOpensThinkingItselfOrNever) {
  GenerateOptions o;
  o.sampling.greedy = true;
  const std::string prompt = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n";
  auto out = RunScript(Follow("<think>\nhmm</think>hello", Encode(prompt).size()), prompt, o);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->result.completions[0].thinking, "hmm");
  EXPECT_EQ(out->result.completions[0].answer, "hello");
  out = RunScript(Follow("just an answer", Encode(prompt).size()), prompt, o);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->result.completions[0].thinking, "");
  EXPECT_EQ(out->result.completions[0].answer, "just an answer");
  EXPECT_EQ(out->result.completions[0].thinking_tokens, 0);
}

TEST_F(GenerateLoopTest, StopStringsAndMaxTokens) {
  GenerateOptions o;
  o.sampling.greedy = true;
  o.stop = {"STOP"};
  auto out = RunScript(Follow("ok</think>The answer is 4. STOP and more", Encode(prompt_).size()), prompt_, o);
  ASSERT_TRUE(out.ok()) << out.status();
  const Completion& c = out->result.completions[0];
  EXPECT_EQ(c.finish_reason, FinishReason::kStopString);
  EXPECT_EQ(c.answer, "The answer is 4. ");
  EXPECT_EQ(out->streamed_answer, c.answer);  // the stop string never reached the callbacks
  o.stop.clear();
  o.max_new_tokens = 3;
  out = RunScript(Follow("one two three four five", Encode(prompt_).size()), prompt_, o);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->result.completions[0].finish_reason, FinishReason::kMaxTokens);
  EXPECT_EQ(out->result.completions[0].tokens.size(), 3u);
}

TEST_F(GenerateLoopTest, MaxThinkingForcesTheCloseAndTheAnswerFollows) {
  GenerateOptions o;
  o.sampling.greedy = true;
  o.thinking.max_tokens = 4;
  o.thinking.close_text = "\nEnough.\n";
  // The script keeps thinking ("la la ...") until it sees </think>, then answers "4".
  const size_t prompt_len = Encode(prompt_).size();
  const int32_t la = Encode(" la")[0], four = Encode("4")[0], think_end = Id("</think>");
  const int32_t eos = *tokenizer_->eos_id();
  const int64_t vocab = Vocab();
  auto script = [=](int32_t, const std::vector<int32_t>& tokens) {
    std::vector<float> row(vocab, -5.0f);
    const bool closed = std::find(tokens.begin() + prompt_len, tokens.end(), think_end) != tokens.end();
    row[!closed ? la : tokens.back() == four ? eos : four] = 10.0f;
    return row;
  };
  auto out = RunScript(script, prompt_, o);
  ASSERT_TRUE(out.ok()) << out.status();
  const Completion& c = out->result.completions[0];
  EXPECT_EQ(c.thinking, "la la la la\nEnough.\n");
  EXPECT_EQ(c.answer, "4");
  EXPECT_EQ(c.finish_reason, FinishReason::kEos);
  const std::vector<int32_t> forced = Encode("\nEnough.\n</think>");
  ASSERT_EQ(c.tokens.size(), 4 + forced.size() + 2);
  for (size_t i = 0; i < forced.size(); ++i) {
    EXPECT_EQ(c.tokens[4 + i], forced[i]);
    EXPECT_EQ(c.forced[4 + i], 1);
    EXPECT_LT(c.logprobs[4 + i], -10.0f);  // the model did not want them
  }
  EXPECT_EQ(c.forced[0], 0);
  EXPECT_EQ(c.channels.back(), Channel::kAnswer);
}

TEST_F(GenerateLoopTest, MinThinkingInsertsTheContinuation) {
  GenerateOptions o;
  o.sampling.greedy = true;
  o.thinking.min_tokens = 6;
  o.thinking.continuation = " Wait";
  // The model wants to close its thinking right away, every time.
  const size_t prompt_len = Encode(prompt_).size();
  const int32_t think_end = Id("</think>"), eos = *tokenizer_->eos_id(), ok = Encode("ok")[0];
  const int64_t vocab = Vocab();
  auto script = [=](int32_t, const std::vector<int32_t>& tokens) {
    std::vector<float> row(vocab, -5.0f);
    const bool closed = std::find(tokens.begin() + prompt_len, tokens.end(), think_end) != tokens.end();
    row[!closed ? think_end : tokens.back() == ok ? eos : ok] = 10.0f;
    return row;
  };
  auto out = RunScript(script, prompt_, o);
  ASSERT_TRUE(out.ok()) << out.status();
  const Completion& c = out->result.completions[0];
  EXPECT_EQ(c.thinking, "Wait Wait Wait Wait Wait Wait");  // one-token " Wait" x6, then it may close
  EXPECT_EQ(c.thinking_tokens, 7);
  EXPECT_EQ(c.answer, "ok");
  // Without a continuation, </think> and EOS are banned instead and another token is drawn.
  o.thinking.continuation.clear();
  out = RunScript(script, prompt_, o);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_GE(out->result.completions[0].thinking_tokens, 7);
  EXPECT_EQ(out->result.completions[0].answer, "ok");
}

// Random-ish but deterministic logits from the token history: `picks` tokens of
// [1000, 3000) get values 0 .. levels-1, the rest -30.
std::vector<float> HashedRow(int64_t vocab, const std::vector<int32_t>& tokens, int picks,
                             int shift, int levels) {
  std::vector<float> row(vocab, -30.0f);
  uint64_t h = 1469598103934665603ull;
  for (int32_t t : tokens) h = (h ^ t) * 1099511628211ull;
  for (int i = 0; i < picks; ++i) row[(h >> (i * shift)) % 2000 + 1000] = static_cast<float>((h >> i) % levels);
  return row;
}

TEST_F(GenerateLoopTest, GroupSharesThePromptAndMatchesSingleRuns) {
  GenerateOptions o;
  o.sampling.temperature = 1.0f;
  o.sampling.seed = 9;
  o.max_new_tokens = 12;
  o.n = 4;
  const int64_t vocab = Vocab();
  auto script = [vocab](int32_t, const std::vector<int32_t>& tokens) {
    return HashedRow(vocab, tokens, 8, 5, 7);
  };
  std::shared_ptr<ScriptedSession::Stats> stats;
  auto group = RunScript(script, prompt_, o, &stats);
  ASSERT_TRUE(group.ok()) << group.status();
  const int64_t prompt_len = static_cast<int64_t>(Encode(prompt_).size());
  EXPECT_EQ(stats->forks, 3);
  // The prompt went through once; then at most one row per live completion per step.
  int64_t generated = 0;
  for (const auto& c : group->result.completions) generated += static_cast<int64_t>(c.tokens.size());
  EXPECT_LE(stats->rows_processed, prompt_len + generated);
  ExpectGroupMatchesSingles(script, prompt_, o, *group);
}

// A group whose completions hit both thinking budgets at different steps (forced text
// mid-group while the others draw, all of a step's draws in one SampleKept): each completion
// equals the one generated alone, and its token events arrive in its own order.
TEST_F(GenerateLoopTest, GroupWithBudgetsMatchesSingleRunsEventsInOrder) {
  GenerateOptions o;
  o.sampling.temperature = 1.0f;
  o.sampling.seed = 21;
  o.max_new_tokens = 24;
  o.n = 6;
  o.thinking.max_tokens = 7;
  o.thinking.min_tokens = 2;
  o.thinking.continuation = " Wait";
  o.thinking.close_text = "\nEnough.\n";
  const int32_t think_end = Id("</think>"), eos = *tokenizer_->eos_id();
  const int64_t vocab = Vocab();
  auto script = [=](int32_t, const std::vector<int32_t>& tokens) {
    std::vector<float> row = HashedRow(vocab, tokens, 6, 7, 5);
    row[think_end] = 1.5f;  // sometimes closes early (then " Wait"), sometimes thinks on
    row[eos] = 0.5f;
    return row;
  };
  auto group = RunScript(script, prompt_, o);
  ASSERT_TRUE(group.ok()) << group.status();
  // The budgets did act, in more than one completion.
  EXPECT_GT(ExpectGroupMatchesSingles(script, prompt_, o, *group), 1);
}

TEST_F(GenerateLoopTest, CancelFromAnotherThreadAndContextFull) {
  GenerateOptions o;
  o.sampling.greedy = true;
  o.cancel = std::make_shared<std::atomic<bool>>(false);
  int seen = 0;
  std::thread canceller;
  auto out = RunScript(Follow(std::string(200, 'x'), Encode(prompt_).size()), prompt_, o, nullptr, [&](int32_t) {
    if (++seen == 5) canceller = std::thread([flag = o.cancel] { flag->store(true); });
    if (seen == 6 && canceller.joinable()) canceller.join();
  });
  if (canceller.joinable()) canceller.join();
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->result.completions[0].finish_reason, FinishReason::kCancelled);
  EXPECT_LE(out->result.completions[0].tokens.size(), 7u);  // within one step of the flag

  o.cancel.reset();
  max_positions_ = static_cast<int64_t>(Encode(prompt_).size()) + 5;
  out = RunScript(Follow(std::string(200, 'x'), Encode(prompt_).size()), prompt_, o);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->result.completions[0].finish_reason, FinishReason::kContextFull);
  max_positions_ = static_cast<int64_t>(Encode(prompt_).size());
  EXPECT_EQ(RunScript(Follow("x", 0), prompt_, o).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(GenerateLoopTest, PullFormGivesTheSameEvents) {
  GenerateOptions o;
  o.sampling.greedy = true;
  const std::string text = "a b</think>c d";
  auto session = std::make_unique<ScriptedSession>(Follow(text, Encode(prompt_).size()), 1 << 20);
  ModelInfo info{Vocab(), 100000, {*tokenizer_->eos_id()}};
  auto run = StartRun(std::move(session), tokenizer_, info, Encode(prompt_), prompt_, o);
  ASSERT_TRUE(run.ok());
  std::string thinking, answer;
  int tokens = 0, finishes = 0;
  while (auto e = (*run)->Next()) {
    ASSERT_TRUE(e->ok());
    switch ((*e)->type) {
      case GenerationEvent::Type::kThinking: thinking += (*e)->text; break;
      case GenerationEvent::Type::kAnswer: answer += (*e)->text; break;
      case GenerationEvent::Type::kToken: ++tokens; break;
      case GenerationEvent::Type::kFinish: ++finishes; break;
    }
  }
  EXPECT_EQ(thinking, "a b");
  EXPECT_EQ(answer, "c d");
  EXPECT_EQ(finishes, 1);
  EXPECT_EQ(tokens, static_cast<int>((*run)->result().completions[0].tokens.size()));
}

TEST_F(GenerateLoopTest, BadOptionsAndLogits) {
  GenerateOptions o;
  o.n = 0;
  EXPECT_EQ(RunScript(Follow("x", 0), prompt_, o).status().code(), absl::StatusCode::kInvalidArgument);
  o.n = 1;
  o.max_new_tokens = 0;
  EXPECT_EQ(RunScript(Follow("x", 0), prompt_, o).status().code(), absl::StatusCode::kInvalidArgument);
  o.max_new_tokens = 10;
  const int64_t vocab = Vocab();
  auto nan_script = [vocab](int32_t, const std::vector<int32_t>&) { return std::vector<float>(vocab, NAN); };
  auto out = RunScript(nan_script, prompt_, o);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(out.status().message()).find("NaN"), std::string::npos);
}

TEST_F(GenerateLoopTest, ScoreEqualsRecordedLogProbs) {
  GenerateOptions o;
  o.sampling.temperature = 0.8f;
  o.sampling.seed = 3;
  o.max_new_tokens = 10;
  o.n = 3;
  const int64_t vocab = Vocab();
  auto script = [vocab](int32_t, const std::vector<int32_t>& tokens) {
    std::vector<float> row(vocab, -20.0f);
    for (int i = 0; i < 50; ++i) row[1000 + (tokens.size() * 7 + i * 13) % 3000] = static_cast<float>(i % 5);
    return row;
  };
  auto out = RunScript(script, prompt_, o);
  ASSERT_TRUE(out.ok());
  std::vector<std::vector<int32_t>> completions;
  for (const auto& c : out->result.completions) completions.push_back(c.tokens);
  ScriptedSession session(script, 1 << 20);
  auto scores = ScoreOn(session, vocab, Encode(prompt_), completions, 0.8f);
  ASSERT_TRUE(scores.ok()) << scores.status();
  for (size_t i = 0; i < completions.size(); ++i) {
    ASSERT_EQ(scores->logprobs[i].size(), completions[i].size());
    for (size_t t = 0; t < completions[i].size(); ++t) {
      EXPECT_FLOAT_EQ(scores->logprobs[i][t], out->result.completions[i].logprobs[t]) << i << " " << t;
    }
  }
}


// The public Generator on a small synthetic Qwen2 model (cpu backend).
class GeneratorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = (std::filesystem::temp_directory_path() / ("rrt_gen_" + std::to_string(::getpid()))).string();
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ + "/cfg.json") << R"({"model_type": "qwen2", "hidden_size": 96, "num_hidden_layers": 2,
        "num_attention_heads": 6, "num_key_value_heads": 2, "intermediate_size": 160, "vocab_size": 512,
        "max_position_embeddings": 4096, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
        "tie_word_embeddings": false, "bos_token_id": 300, "eos_token_id": 301})";
    SynthOptions synth;
    synth.config_path = dir_ + "/cfg.json";
    synth.out_dir = dir_ + "/model";
    synth.seed = 5;
    ASSERT_TRUE(WriteSyntheticModel(synth).ok());
    LoadOptions load;
    load.exact_activations = true;  // prompt passes as exact as decode, for Score vs Generate
    auto g = Generator::Load(dir_ + "/model", load);
    ASSERT_TRUE(g.ok()) << g.status();
    gen_ = std::move(*g).release();
  }
  static void TearDownTestSuite() {
    delete gen_;
    std::filesystem::remove_all(dir_);
  }
  static std::string dir_;
  static Generator* gen_;
};
std::string GeneratorTest::dir_;
Generator* GeneratorTest::gen_ = nullptr;

TEST_F(GeneratorTest, ChatGenerationScoringAndReproducibility) {
  GenerateOptions o;
  o.sampling.temperature = 0.9f;
  o.sampling.seed = 21;
  o.max_new_tokens = 12;
  o.n = 3;
  const std::vector<ChatMessage> messages = {{.role = "user", .content = "What is 17 * 23?"}};
  auto r = gen_->Generate(messages, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->prompt, "<｜begin▁of▁sentence｜><｜User｜>What is 17 * 23?<｜Assistant｜><think>\n");
  EXPECT_EQ(r->prompt_tokens.front(), 300);  // BOS from the template, once
  ASSERT_EQ(r->completions.size(), 3u);
  EXPECT_EQ(r->timings.prompt_tokens, static_cast<int64_t>(r->prompt_tokens.size()));
  // The same call again gives the same completions; another thread count too.
  auto again = gen_->Generate(messages, o);
  ASSERT_TRUE(again.ok());
  std::vector<std::vector<int32_t>> completions;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(r->completions[i].tokens, again->completions[i].tokens);
    completions.push_back(r->completions[i].tokens);
  }
  // ... and so does one thread instead of the default.
  LoadOptions one_thread;
  one_thread.exact_activations = true;
  one_thread.num_threads = 1;
  auto single_threaded = Generator::Load(dir_ + "/model", one_thread);
  ASSERT_TRUE(single_threaded.ok());
  auto r1 = (*single_threaded)->Generate(messages, o);
  ASSERT_TRUE(r1.ok());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(r->completions[i].tokens, r1->completions[i].tokens) << i;
  // Teacher-forced scoring gives the log-probs recorded while sampling.
  auto scores = gen_->Score(r->prompt_tokens, completions, 0.9f);
  ASSERT_TRUE(scores.ok()) << scores.status();
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(scores->logprobs[i].size(), completions[i].size());
    for (size_t t = 0; t < completions[i].size(); ++t) {
      EXPECT_NEAR(scores->logprobs[i][t], r->completions[i].logprobs[t], 2e-4) << i << " " << t;
    }
  }
  // Errors: a prompt too long for the context, tokens outside the vocabulary.
  std::vector<int32_t> too_long(5000, 65);
  EXPECT_EQ(gen_->GenerateFromTokens(too_long, o).status().code(), absl::StatusCode::kResourceExhausted);
  const int32_t bad[] = {1, 9999};
  EXPECT_EQ(gen_->GenerateFromTokens(bad, o).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(gen_->Score(r->prompt_tokens, {{9999}}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(GeneratorTest, LoadReportsProgressAndCanBeCancelled) {
  std::vector<float> seen;
  LoadOptions load;
  load.progress = [&](float f) {
    seen.push_back(f);
    return true;
  };
  auto model = Model::Load(dir_ + "/model", load);
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_GE(seen.size(), 2u);
  EXPECT_EQ(seen.front(), 0.0f);
  EXPECT_EQ(seen.back(), 1.0f);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  load.progress = [](float) { return false; };
  EXPECT_EQ(Model::Load(dir_ + "/model", load).status().code(), absl::StatusCode::kCancelled);
}

TEST_F(GeneratorTest, GroupMemoryIsPromptPlusCompletions) {
  // A group of 8 needs the prompt's cache once: the sizing rule, and a run that fits it.
  GenerateOptions o;
  o.n = 8;
  o.max_new_tokens = 32;
  o.sampling.seed = 1;
  const int64_t prompt = 100;
  const int64_t need = CacheTokensFor(prompt, o);
  EXPECT_LT(need, prompt + 8 * (32 + 16) + 9 * 16 + 1);
  EXPECT_LT(need, 8 * (prompt + 32));
  std::vector<int32_t> ids(prompt, 65);
  ids[0] = 300;
  auto r = gen_->GenerateFromTokens(ids, o);
  ASSERT_TRUE(r.ok()) << r.status();
  for (const auto& c : r->completions) EXPECT_NE(c.finish_reason, FinishReason::kContextFull);
}

}  // namespace
}  // namespace reasonrt::gen
