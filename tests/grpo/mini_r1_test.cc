// Mini-R1 (examples/mini-r1/model, trained with reasonrt's own R1 recipe) on a fixed set of
// 100 problems of its training distribution: greedy accuracy and format as measured when the
// weights were committed. A change to the forward pass, the tokenizer, the chat template,
// generation or the rewards that moves them fails here.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

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
  // The model in this source tree, or where RRT_MINI_R1_DIR says (a test binary run on
  // another machine, as scripts/gpu_check.sh does).
  const char* dir = std::getenv("RRT_MINI_R1_DIR");
  auto gen = Generator::Load(dir != nullptr ? dir : RRT_MINI_R1_DIR);
  ASSERT_TRUE(gen.ok()) << gen.status();
  grpo::ArithmeticOptions o;
  o.min_operands = 2;
  o.max_operands = 3;
  const std::vector<grpo::ArithmeticProblem> problems = grpo::GenerateArithmetic(100, 2026, o);
  // Scored the way the recipe's rollouts are: grpo::Rollout decodes each completion with its
  // tags and applies the accuracy and format rewards.
  std::vector<std::vector<ChatMessage>> prompts;
  std::vector<std::string> golds;
  for (const grpo::ArithmeticProblem& p : problems) {
    prompts.push_back({{.role = "user", .content = p.question}});
    golds.push_back(p.verifier_answer);
  }
  grpo::RewardSet rewards;
  rewards.Add("accuracy", grpo::AccuracyReward(), 1.0);
  rewards.Add("format", grpo::FormatReward(), 1.0);
  grpo::RolloutOptions options;
  options.generate.n = 1;
  options.generate.sampling.greedy = true;
  options.generate.max_new_tokens = 400;
  auto batch = grpo::Rollout(**gen, prompts, golds, rewards, options);
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_EQ(batch->size(), 100);
  int right = 0, well_formed = 0;
  for (int64_t i = 0; i < batch->size(); ++i) {
    right += batch->rewards[i] == 1.0f;
    well_formed += batch->rewards[batch->size() + i] == 1.0f;
  }
  std::printf("Mini-R1: %d/100 right, %d/100 well formed (committed: %d, %d)\n", right, well_formed, kRightAtCommit,
              kWellFormedAtCommit);
  EXPECT_NEAR(right, kRightAtCommit, kMargin);
  EXPECT_NEAR(well_formed, kWellFormedAtCommit, kMargin);
}

}  // namespace
}  // namespace reasonrt
