// The MoE router on hand-made cases: groups, biases that change the choice but not the
// weights, ties, normalisation and scaling of V3 and V2, and bad input.
#include "reasonrt/moe.h"

#include <cmath>

#include "gtest/gtest.h"

namespace reasonrt {
namespace {

float Logit(float p) { return std::log(p / (1 - p)); }  // sigmoid^-1

RouterConfig V3(int64_t experts, int64_t k, int64_t groups, int64_t topk_group) {
  RouterConfig c;
  c.n_routed_experts = experts;
  c.num_experts_per_tok = k;
  c.n_group = groups;
  c.topk_group = topk_group;
  c.scoring_func = ScoringFunc::kSigmoid;
  c.topk_method = TopkMethod::kNoauxTc;
  c.norm_topk_prob = true;
  c.routed_scaling_factor = 2.5;
  return c;
}

TEST(MoeRouterTest, V3GroupsKeepTheBestPairsAndWeightsAreUnbiased) {
  // 8 experts in 4 groups of 2; sigmoid scores chosen directly.
  const float s[8] = {0.9f, 0.1f, 0.6f, 0.55f, 0.2f, 0.3f, 0.7f, 0.65f};
  std::vector<float> logits;
  for (float p : s) logits.push_back(Logit(p));
  const std::vector<float> bias(8, 0.0f);
  // Group scores (sum of both): 1.0, 1.15, 0.5, 1.35 -> keep groups 3 and 1: experts 2,3,6,7.
  // Top 2 among them: 6 (0.7) and 7 (0.65); expert 0 (0.9) is in a dropped group.
  auto r = RouteTokens(V3(8, 2, 4, 2), logits, 1, bias);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->experts, (std::vector<int32_t>{6, 7}));
  EXPECT_NEAR(r->weights[0], 0.7 / 1.35 * 2.5, 1e-5);
  EXPECT_NEAR(r->weights[1], 0.65 / 1.35 * 2.5, 1e-5);
  // A bias makes expert 3 the choice (0.55 + 0.2 = 0.75) without changing its weight.
  std::vector<float> bias3(8, 0.0f);
  bias3[3] = 0.2f;
  r = RouteTokens(V3(8, 2, 4, 2), logits, 1, bias3);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->experts, (std::vector<int32_t>{3, 6}));
  EXPECT_NEAR(r->weights[0], 0.55 / 1.25 * 2.5, 1e-5);
  // A negative bias pushes group 3 out: group scores 1.0, 1.15, 0.5, 1.35 - 1.0 = 0.35.
  std::vector<float> bias_neg(8, 0.0f);
  bias_neg[6] = bias_neg[7] = -0.5f;
  r = RouteTokens(V3(8, 2, 4, 2), logits, 1, bias_neg);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->experts, (std::vector<int32_t>{0, 2}));  // groups 1 (1.15) and 0 (1.0)
}

TEST(MoeRouterTest, TiesGoToTheLowerExpert) {
  const std::vector<float> logits(8, 0.0f);
  auto r = RouteTokens(V3(8, 3, 4, 2), logits, 1, std::vector<float>(8, 0.0f));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->experts, (std::vector<int32_t>{0, 1, 2}));  // groups 0 and 1, then ids
  for (float w : r->weights) EXPECT_NEAR(w, 2.5 / 3, 1e-6);
}

TEST(MoeRouterTest, NormalisationAndScalingOfV3AndV2) {
  RouterConfig c = V3(4, 2, 1, 1);
  const float s[4] = {0.8f, 0.4f, 0.2f, 0.1f};
  std::vector<float> logits;
  for (float p : s) logits.push_back(Logit(p));
  c.norm_topk_prob = false;
  auto r = RouteTokens(c, logits, 1, std::vector<float>(4, 0.0f));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NEAR(r->weights[0], 0.8 * 2.5, 1e-5);
  EXPECT_NEAR(r->weights[1], 0.4 * 2.5, 1e-5);
  // V2: softmax scores, greedy top-k; normalised weights are not scaled, others are.
  RouterConfig v2;
  v2.n_routed_experts = 4;
  v2.num_experts_per_tok = 2;
  v2.scoring_func = ScoringFunc::kSoftmax;
  v2.topk_method = TopkMethod::kGreedy;
  v2.routed_scaling_factor = 16.0;
  v2.always_scale = false;
  const std::vector<float> l2 = {0.0f, std::log(3.0f), std::log(2.0f), std::log(4.0f)};  // p = 1,3,2,4 / 10
  r = RouteTokens(v2, l2, 1);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->experts, (std::vector<int32_t>{3, 1}));
  EXPECT_NEAR(r->weights[0], 0.4 * 16, 1e-5);
  v2.norm_topk_prob = true;
  r = RouteTokens(v2, l2, 1);
  ASSERT_TRUE(r.ok());
  EXPECT_NEAR(r->weights[0], 4.0 / 7, 1e-6);
  EXPECT_NEAR(r->weights[1], 3.0 / 7, 1e-6);
  // group_limited_greedy: groups scored by their best expert.
  v2.topk_method = TopkMethod::kGroupLimitedGreedy;
  v2.n_group = 2;
  v2.topk_group = 1;  // groups {0,1} (best 0.3) and {2,3} (best 0.4): keep {2,3}
  r = RouteTokens(v2, l2, 1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->experts, (std::vector<int32_t>{3, 2}));
}

TEST(MoeRouterTest, ManyTokensAndRealConfig) {
  ModelConfig cfg;
  cfg.architecture = Architecture::kDeepseekV3;
  cfg.n_routed_experts = 256;
  cfg.num_experts_per_tok = 8;
  cfg.n_group = 8;
  cfg.topk_group = 4;
  cfg.scoring_func = ScoringFunc::kSigmoid;
  cfg.topk_method = TopkMethod::kNoauxTc;
  cfg.norm_topk_prob = true;
  cfg.routed_scaling_factor = 2.5;
  const RouterConfig c = RouterConfig::FromModelConfig(cfg);
  std::vector<float> logits(3 * 256);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(0.37f * i) * 3;
  auto r = RouteTokens(c, logits, 3, std::vector<float>(256, 0.01f));
  ASSERT_TRUE(r.ok()) << r.status();
  for (int t = 0; t < 3; ++t) {
    double sum = 0;
    std::vector<bool> group_used(8, false);
    for (int j = 0; j < 8; ++j) {
      sum += r->weights[t * 8 + j];
      group_used[r->experts[t * 8 + j] / 32] = true;
    }
    EXPECT_NEAR(sum, 2.5, 1e-5);
    EXPECT_LE(std::count(group_used.begin(), group_used.end(), true), 4);
  }
}

TEST(MoeRouterTest, BadInputIsAnError) {
  const std::vector<float> logits(8, 0.0f), bias(8, 0.0f);
  EXPECT_FALSE(RouteTokens(V3(8, 9, 4, 2), logits, 1, bias).ok());               // k > experts
  EXPECT_FALSE(RouteTokens(V3(8, 2, 3, 2), logits, 1, bias).ok());               // groups do not divide
  EXPECT_FALSE(RouteTokens(V3(8, 2, 4, 5), logits, 1, bias).ok());               // topk_group > n_group
  EXPECT_FALSE(RouteTokens(V3(8, 5, 4, 2), logits, 1, bias).ok());               // 2 groups x 2 < k
  EXPECT_FALSE(RouteTokens(V3(8, 2, 4, 2), logits, 2, bias).ok());               // shape
  EXPECT_FALSE(RouteTokens(V3(8, 2, 4, 2), logits, 1, {}).ok());                 // bias missing
  std::vector<float> nan = logits;
  nan[3] = NAN;
  EXPECT_FALSE(RouteTokens(V3(8, 2, 4, 2), nan, 1, bias).ok());
}

}  // namespace
}  // namespace reasonrt
