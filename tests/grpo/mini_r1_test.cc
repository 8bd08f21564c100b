// Mini-R1 (examples/mini-r1/model, trained with reasonrt's own R1 recipe) on a fixed set of
// 100 problems of its training distribution: greedy accuracy and format as measured when the
// weights were committed. A change to the forward pass, the tokenizer, the chat template,
// generation or the rewards that moves them fails here.
#include <gtest/gtest.h>

#include <cmath>

#include "reasonrt/generate.h"
#include "reasonrt/grpo.h"

namespace reasonrt {
namespace {

// Measured at commit time (greedy, this test's 100 problems): see examples/mini-r1/README.md.
constexpr int kRightAtCommit = RRT_MINI_R1_RIGHT;
constexpr int kWellFormedAtCommit = RRT_MINI_R1_FORMAT;
// Greedy decoding is deterministic on one machine; another CPU's kernels round differently
// and may flip a close argmax in a problem or two.
constexpr int kMargin = 3;

TEST(MiniR1Test, AccuracyOnAFixedSetMatchesTheCommittedMeasurement) {
  auto gen = Generator::Load(RRT_MINI_R1_DIR);
  ASSERT_TRUE(gen.ok()) << gen.status();
  grpo::ArithmeticOptions o;
  o.min_operands = 2;
  o.max_operands = 3;
  const std::vector<grpo::ArithmeticProblem> problems = grpo::GenerateArithmetic(100, 2026, o);
  GenerateOptions options;
  options.sampling.greedy = true;
  options.max_new_tokens = 400;
  const grpo::RewardFn accuracy = grpo::AccuracyReward(), format = grpo::FormatReward();
  int right = 0, well_formed = 0;
  for (const grpo::ArithmeticProblem& p : problems) {
    auto r = (*gen)->Generate({{.role = "user", .content = p.question}}, options);
    ASSERT_TRUE(r.ok()) << r.status();
    const Completion& c = r->completions[0];
    // The completion as text with its tags, without the end-of-sequence token.
    std::vector<int32_t> ids = c.tokens;
    if (c.finish_reason == FinishReason::kEos) ids.pop_back();
    auto text = (*gen)->tokenizer().Decode(ids, {});
    ASSERT_TRUE(text.ok()) << text.status();
    grpo::Sample s;
    s.completion = *text;
    s.gold = p.verifier_answer;
    right += accuracy(s) == 1.0f;
    well_formed += format(s) == 1.0f;
  }
  std::printf("Mini-R1: %d/100 right, %d/100 well formed (committed: %d, %d)\n", right, well_formed, kRightAtCommit,
              kWellFormedAtCommit);
  EXPECT_NEAR(right, kRightAtCommit, kMargin);
  EXPECT_NEAR(well_formed, kWellFormedAtCommit, kMargin);
}

}  // namespace
}  // namespace reasonrt
