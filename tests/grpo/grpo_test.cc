// GRPO numerics and rewards: the issue's vectors (derived by hand), more derived here,
// properties (advantages of a group sum to 0, invariance to reward shifts and scales),
// gradients against finite differences, and rewards on tricky strings.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "gtest/gtest.h"
#include "lib/models/synth.h"
#include "reasonrt/grpo.h"
#include "tests/testing/temp_dir.h"

namespace reasonrt::grpo {
namespace {

std::vector<float> Adv(std::vector<float> r, AdvantageOptions o, int64_t functions = 1) {
  auto a = ComputeAdvantages(r, functions, o);
  EXPECT_TRUE(a.ok()) << a.status();
  return a.ok() ? *a : std::vector<float>{};
}

AdvantageOptions Group4(double eps = 1e-4) {
  AdvantageOptions o;
  o.group_size = 4;
  o.eps = eps;
  return o;
}

void ExpectVec(const std::vector<float>& got, const std::vector<float>& want, float tol = 1e-6f) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << i;
}

TEST(AdvantagesTest, TheIssuesVectors) {
  const float a = 0.8658754f, b = 0.8660239f;
  ExpectVec(Adv({1, 0, 0, 1}, Group4(1e-4)), {a, -a, -a, a});
  ExpectVec(Adv({1, 0, 0, 1}, Group4(1e-6)), {b, -b, -b, b});
  AdvantageOptions none = Group4();
  none.scaling = AdvantageScaling::kNone;
  ExpectVec(Adv({1, 0, 0, 1}, none), {0.5f, -0.5f, -0.5f, 0.5f});
  AdvantageOptions rloo = none;
  rloo.baseline = Baseline::kLeaveOneOut;
  const float c = 2.0f / 3.0f;
  ExpectVec(Adv({1, 0, 0, 1}, rloo), {c, -c, -c, c});
  ExpectVec(Adv({1, 0, 0, 0}, Group4()), {1.4997001f, -0.4999000f, -0.4999000f, -0.4999000f});
  const std::vector<float> zeros = Adv({1, 1, 1, 1}, Group4());
  for (float v : zeros) EXPECT_EQ(v, 0.0f);  // exactly
}

TEST(AdvantagesTest, MoreByHand) {
  // Population std: [1,0,0,1] has std 0.5 -> +-0.5 / 0.5001.
  AdvantageOptions pop = Group4();
  pop.unbiased_std = false;
  const float p = 0.5f / 0.5001f;
  ExpectVec(Adv({1, 0, 0, 1}, pop), {p, -p, -p, p});
  // Two groups; the second all equal: only the first moves. Batch scaling divides by the
  // std of all 8 rewards: [3,1,2,2, 5,5,5,5] mean 3.5, unbiased var = (0.25+6.25+2.25+2.25+4*2.25)/7 = 20/7.
  AdvantageOptions batch = Group4(0.0);
  batch.scaling = AdvantageScaling::kBatch;
  const float s = std::sqrt(20.0f / 7.0f);
  ExpectVec(Adv({3, 1, 2, 2, 5, 5, 5, 5}, batch), {1 / s, -1 / s, 0, 0, 0, 0, 0, 0}, 1e-5f);
  // A missing reward: left out of the statistics, advantage 0. [1, NaN, 0, 0] as a group of
  // three present: mean 1/3, unbiased std sqrt(1/3).
  const float m = 1.0f / 3.0f, sd = std::sqrt(1.0f / 3.0f);
  ExpectVec(Adv({1, NAN, 0, 0}, Group4(0.0)), {(1 - m) / sd, 0, -m / sd, -m / sd}, 1e-5f);
  // A group with one present reward: 0.
  ExpectVec(Adv({NAN, NAN, 7, NAN}, Group4()), {0, 0, 0, 0});
}

TEST(AdvantagesTest, SeveralRewardFunctions) {
  // accuracy [1,0,0,1] weight 1, format [1,1,0,0] weight 0.5: summed [1.5,0.5,0,1].
  const std::vector<float> r = {1, 0, 0, 1, 1, 1, 0, 0};
  AdvantageOptions o = Group4(0.0);
  o.scaling = AdvantageScaling::kNone;
  o.weights = {1.0, 0.5};
  ExpectVec(Adv(r, o, 2), {0.75f, -0.25f, -0.75f, 0.25f});
  // Normalise each then sum: 1 x [0.5,-0.5,-0.5,0.5] + 0.5 x [0.5,0.5,-0.5,-0.5].
  o.combination = RewardCombination::kNormalizeThenSum;
  ExpectVec(Adv(r, o, 2), {0.75f, -0.25f, -0.75f, 0.25f});
  // A NaN in one function only: the sample keeps the other's reward (sum then normalise).
  o.combination = RewardCombination::kSumThenNormalize;
  // Combined [1, 0.5, 0, 1]: mean 0.625.
  ExpectVec(Adv({1, 0, 0, 1, NAN, 1, 0, 0}, o, 2), {0.375f, -0.125f, -0.625f, 0.375f});
}

TEST(AdvantagesTest, PropertiesOnRandomGroups) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<float> r(24);
    for (float& v : r) v = normal(rng);
    AdvantageOptions o;
    o.group_size = 6;
    o.eps = 0.0;
    const std::vector<float> a = Adv(r, o);
    // Shifted and scaled rewards give the same advantages.
    std::vector<float> r2 = r;
    for (float& v : r2) v = 3.0f * v + 10.0f;
    const std::vector<float> a2 = Adv(r2, o);
    for (int g = 0; g < 4; ++g) {
      double sum = 0.0, sq = 0.0;
      for (int i = 0; i < 6; ++i) {
        sum += a[g * 6 + i];
        sq += double(a[g * 6 + i]) * a[g * 6 + i];
      }
      EXPECT_NEAR(sum, 0.0, 1e-4);
      EXPECT_NEAR(sq / 5.0, 1.0, 1e-4);  // unit unbiased variance
    }
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], a2[i], 1e-4f);
  }
}

TEST(AdvantagesTest, BadInputIsAnError) {
  AdvantageOptions o = Group4();
  EXPECT_FALSE(ComputeAdvantages(std::vector<float>(6, 1.0f), 1, o).ok());  // 6 % 4
  EXPECT_FALSE(ComputeAdvantages(std::vector<float>(8, 1.0f), 3, o).ok());
  o.weights = {1.0, 2.0, 3.0};
  EXPECT_FALSE(ComputeAdvantages(std::vector<float>(8, 1.0f), 2, o).ok());
  o.weights = {};
  o.eps = -1.0;
  EXPECT_FALSE(ComputeAdvantages(std::vector<float>(4, 1.0f), 1, o).ok());
  o.eps = 1e-4;
  o.group_size = 0;
  EXPECT_FALSE(ComputeAdvantages(std::vector<float>(4, 1.0f), 1, o).ok());
  o.group_size = 4;
  EXPECT_FALSE(ComputeAdvantages({1, INFINITY, 0, 0}, 1, o).ok());
}

// Two sequences padded to T = 4: a 2-token one with A = +1, a 4-token one with A = -1,
// ratio 1 everywhere (new == old).
struct TwoSequences {
  std::vector<float> lp = {-1.0f, -2.0f, 0.0f, 0.0f, -0.5f, -1.5f, -0.7f, -2.2f};
  std::vector<float> mask = {1, 1, 0, 0, 1, 1, 1, 1};
  std::vector<float> adv = {1.0f, -1.0f};
};

TEST(PolicyLossTest, TheIssuesAggregations) {
  TwoSequences s;
  LossOptions o;
  auto grpo = ComputePolicyLoss(s.lp, s.lp, {}, s.adv, s.mask, 2, 4, o);
  ASSERT_TRUE(grpo.ok()) << grpo.status();
  EXPECT_NEAR(grpo->loss, 0.0, 1e-7);
  ExpectVec(grpo->grad, {-0.25f, -0.25f, 0, 0, 0.125f, 0.125f, 0.125f, 0.125f});
  o.aggregation = LossAggregation::kTokenMean;
  auto dapo = ComputePolicyLoss(s.lp, s.lp, {}, s.adv, s.mask, 2, 4, o);
  ASSERT_TRUE(dapo.ok());
  EXPECT_NEAR(dapo->loss, 0.3333333, 1e-6);
  const float sixth = 1.0f / 6.0f;
  ExpectVec(dapo->grad, {-sixth, -sixth, 0, 0, sixth, sixth, sixth, sixth});
  // Dr. GRPO: sum over tokens / (B x T) = (-2 + 4) / 8.
  o.aggregation = LossAggregation::kTokenSumNorm;
  auto dr = ComputePolicyLoss(s.lp, s.lp, {}, s.adv, s.mask, 2, 4, o);
  ASSERT_TRUE(dr.ok());
  EXPECT_NEAR(dr->loss, 0.25, 1e-7);
  ExpectVec(dr->grad, {-0.125f, -0.125f, 0, 0, 0.125f, 0.125f, 0.125f, 0.125f});
  EXPECT_NEAR(KlK3(-1.0, -1.5), 0.1065307, 1e-7);
}

TEST(PolicyLossTest, ClippingAndDualClipByHand) {
  // One token, A = +1: ratio e^0.5 = 1.6487 > 1.2 -> clipped objective 1.2, no gradient.
  std::vector<float> mask = {1};
  auto up = ComputePolicyLoss({-0.5f}, {-1.0f}, {}, {1.0f}, mask, 1, 1, {});
  ASSERT_TRUE(up.ok());
  EXPECT_NEAR(up->loss, -1.2, 1e-6);
  EXPECT_EQ(up->grad[0], 0.0f);
  EXPECT_EQ(up->clip_fraction, 1.0);
  // A = -1 and the same ratio: min(-1.6487, -1.2) = -1.6487 (unclipped), gradient r.
  auto down = ComputePolicyLoss({-0.5f}, {-1.0f}, {}, {-1.0f}, mask, 1, 1, {});
  ASSERT_TRUE(down.ok());
  EXPECT_NEAR(down->loss, std::exp(0.5), 1e-5);
  EXPECT_NEAR(down->grad[0], std::exp(0.5), 1e-5);
  // Dual clip 1.5 caps it: max(-1.6487, -1.5) = -1.5, no gradient.
  LossOptions dual;
  dual.dual_clip = 1.5;
  auto capped = ComputePolicyLoss({-0.5f}, {-1.0f}, {}, {-1.0f}, mask, 1, 1, dual);
  ASSERT_TRUE(capped.ok());
  EXPECT_NEAR(capped->loss, 1.5, 1e-6);
  EXPECT_EQ(capped->grad[0], 0.0f);
  // Clip-higher (DAPO): eps_high 0.28 lets ratio 1.25 through for A > 0.
  LossOptions high;
  high.eps_high = 0.28;
  auto through = ComputePolicyLoss({std::log(1.25f)}, {0.0f}, {}, {1.0f}, mask, 1, 1, high);
  ASSERT_TRUE(through.ok());
  EXPECT_NEAR(through->loss, -1.25, 1e-6);
  EXPECT_NEAR(through->grad[0], -1.25, 1e-6);
}

// Gradients against central differences of the loss, every mode, random inputs in the
// region where no clip boundary is within the step.
TEST(PolicyLossTest, GradientsMatchFiniteDifferences) {
  std::mt19937 rng(11);
  std::normal_distribution<float> noise(0.0f, 0.15f);
  const int64_t b = 3, t = 5;
  std::vector<float> old_lp(b * t), new_lp(b * t), ref_lp(b * t);
  for (size_t i = 0; i < old_lp.size(); ++i) {
    old_lp[i] = -1.0f - 0.3f * static_cast<float>(i % 4);
    new_lp[i] = old_lp[i] + noise(rng);
    ref_lp[i] = old_lp[i] + noise(rng);
  }
  const std::vector<float> mask = {1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0};
  const std::vector<float> adv = {0.7f, -1.2f, 0.4f};
  for (ImportanceLevel level : {ImportanceLevel::kToken, ImportanceLevel::kSequence}) {
    for (LossAggregation agg : {LossAggregation::kSequenceMean, LossAggregation::kTokenMean, LossAggregation::kTokenSumNorm}) {
      LossOptions o;
      o.level = level;
      o.aggregation = agg;
      o.beta = 0.04;
      o.eps_low = o.eps_high = 10.0;  // no clipping: the loss is smooth everywhere here
      auto at = [&](const std::vector<float>& lp) {
        return ComputePolicyLoss(lp, old_lp, ref_lp, adv, mask, b, t, o)->loss;
      };
      auto l = ComputePolicyLoss(new_lp, old_lp, ref_lp, adv, mask, b, t, o);
      ASSERT_TRUE(l.ok()) << l.status();
      for (size_t i = 0; i < new_lp.size(); ++i) {
        std::vector<float> plus = new_lp, minus = new_lp;
        plus[i] += 1e-3f;
        minus[i] -= 1e-3f;
        const double fd = (at(plus) - at(minus)) / 2e-3;
        EXPECT_NEAR(l->grad[i], fd, 2e-4) << "token " << i << " level " << int(level) << " agg " << int(agg);
      }
    }
  }
}

TEST(PolicyLossTest, BadInputIsAnError) {
  TwoSequences s;
  EXPECT_FALSE(ComputePolicyLoss(s.lp, s.lp, {}, s.adv, s.mask, 2, 3, {}).ok());  // sizes
  LossOptions kl;
  kl.beta = 0.1;
  EXPECT_FALSE(ComputePolicyLoss(s.lp, s.lp, {}, s.adv, s.mask, 2, 4, kl).ok());  // no ref
  std::vector<float> bad = s.lp;
  bad[1] = NAN;
  EXPECT_FALSE(ComputePolicyLoss(bad, s.lp, {}, s.adv, s.mask, 2, 4, {}).ok());
  bad[1] = -2.0f;
  bad[2] = NAN;  // masked out: ignored
  EXPECT_TRUE(ComputePolicyLoss(bad, s.lp, {}, s.adv, s.mask, 2, 4, {}).ok());
  LossOptions dual;
  dual.dual_clip = 0.5;
  EXPECT_FALSE(ComputePolicyLoss(s.lp, s.lp, {}, s.adv, s.mask, 2, 4, dual).ok());
  std::vector<float> half = s.mask;
  half[0] = 0.5f;
  EXPECT_FALSE(ComputePolicyLoss(s.lp, s.lp, {}, s.adv, half, 2, 4, {}).ok());
}

float Score(const RewardFn& f, std::string_view completion, std::string_view gold = "", bool opens = true,
            int64_t tokens = 0) {
  Sample s;
  s.completion = completion;
  s.gold = gold;
  s.prompt_opens_thinking = opens;
  s.completion_tokens = tokens;
  return f(s);
}

TEST(RewardsTest, ExtractAnswer) {
  EXPECT_EQ(ExtractAnswer("think</think>\n\nSo the answer is \\boxed{\\frac{1}{2}}."), "\\frac{1}{2}");
  EXPECT_EQ(ExtractAnswer("\\boxed{3} wait</think> final: \\boxed{4}"), "4");
  EXPECT_EQ(ExtractAnswer("a \\boxed{1} b \\boxed{{2}+{3}}"), "{2}+{3}");  // the last, nested
  EXPECT_EQ(ExtractAnswer("hmm</think>\n  42  "), "42");
  EXPECT_EQ(ExtractAnswer("\\boxed{unbalanced"), "");
  EXPECT_EQ(ExtractAnswer("x</think>"), "");
}

TEST(RewardsTest, ParseNumber) {
  struct Case {
    const char* text;
    double value;
  };
  for (const Case& c : std::vector<Case>{{"42", 42}, {"-7", -7}, {"3.25", 3.25}, {"1,234", 1234},
                                         {"1,234,567.5", 1234567.5}, {"3/4", 0.75}, {"\\frac{3}{4}", 0.75},
                                         {"\\dfrac{-1}{8}", -0.125}, {"\\frac12", 0.5}, {"$\\sqrt{16}$", 4},
                                         {"2\\sqrt{2}", 2 * std::sqrt(2.0)}, {"\\pi", M_PI}, {"2\\pi", 2 * M_PI},
                                         {"\\(5\\)", 5}, {"x = 12", 12}, {"10\\%", 10}, {"12 \\text{ cm}", 12},
                                         {"2^{10}", 1024}, {"(1+2)\\cdot 3", 9}, {"7.", 7}, {"$$-0.5$$", -0.5},
                                         {"\\left(3\\right)", 3}, {"6 \\times 7", 42}, {"90^\\circ", 90}}) {
    auto v = ParseNumber(c.text);
    ASSERT_TRUE(v.ok()) << c.text << ": " << v.status();
    EXPECT_NEAR(*v, c.value, 1e-9 * std::max(1.0, std::fabs(c.value))) << c.text;
  }
  for (const char* bad : {"", "abc", "1/0", "\\frac{1}{0}", "1,23", "2 +", "\\sqrt{-4}", "((1)", "yes"}) {
    EXPECT_FALSE(ParseNumber(bad).ok()) << bad;
  }
}

TEST(RewardsTest, Accuracy) {
  const RewardFn acc = AccuracyReward();
  EXPECT_EQ(Score(acc, "44+41=85, 85+25=110</think>\n\nThe answer is \\boxed{110}.", "110"), 1.0f);
  EXPECT_EQ(Score(acc, "...</think>\\boxed{111}", "110"), 0.0f);
  EXPECT_EQ(Score(acc, "...</think>\\boxed{0.5}", "\\frac{1}{2}"), 1.0f);
  EXPECT_EQ(Score(acc, "...</think>\\boxed{1,000}", "1000"), 1.0f);
  EXPECT_EQ(Score(acc, "...</think> 1000", "1000"), 1.0f);  // no box: the text after </think>
  EXPECT_EQ(Score(acc, "\\boxed{110} in thinking only", "110"), 1.0f);  // no </think>: whole text
  EXPECT_EQ(Score(acc, "...</think>\\boxed{seven}", "7"), 0.0f);
  EXPECT_TRUE(std::isnan(Score(acc, "...</think>\\boxed{7}", "seven")));  // gold not a number: no reward
  EXPECT_TRUE(std::isnan(Score(acc, "...</think>\\boxed{7}", "")));
  AccuracyOptions loose;
  loose.relative_tolerance = 1e-2;
  EXPECT_EQ(Score(AccuracyReward(loose), "</think>\\boxed{3.14}", "\\pi"), 1.0f);
  EXPECT_EQ(Score(acc, "</think>\\boxed{3.14}", "\\pi"), 0.0f);
}

TEST(RewardsTest, FormatAndTags) {
  const RewardFn fmt = FormatReward();
  EXPECT_EQ(Score(fmt, "reasoning\n</think>\n\nanswer"), 1.0f);            // the template opened <think>
  EXPECT_EQ(Score(fmt, "<think>reasoning</think>answer"), 0.0f);           // a second opening
  EXPECT_EQ(Score(fmt, "<think>reasoning</think>answer", "", false), 1.0f);  // a prompt that does not open it
  EXPECT_EQ(Score(fmt, "reasoning</think>answer", "", false), 0.0f);
  EXPECT_EQ(Score(fmt, "reasoning</think>   "), 0.0f);                     // no answer
  EXPECT_EQ(Score(fmt, "  </think>answer"), 0.0f);                         // no thinking
  EXPECT_EQ(Score(fmt, "a</think>b</think>c"), 0.0f);
  EXPECT_EQ(Score(fmt, "never closes"), 0.0f);
  const RewardFn tags = TagCountReward();
  EXPECT_EQ(Score(tags, "r</think>a"), 1.0f);
  EXPECT_EQ(Score(tags, "r</think>"), 0.75f);
  EXPECT_EQ(Score(tags, "<think>r</think>a"), 0.75f);  // two openings counting the prompt's
  EXPECT_EQ(Score(tags, "no tags"), 0.25f);            // the prompt's <think> only
}

TEST(RewardsTest, LanguageConsistency) {
  const RewardFn en = LanguageConsistencyReward(Script::kLatin);
  const RewardFn zh = LanguageConsistencyReward(Script::kHan);
  EXPECT_EQ(Score(en, "Let me add 2 and 3.</think>5"), 1.0f);  // numbers are not words
  EXPECT_NEAR(Score(en, "first 先 then 后</think>x"), 0.5f, 1e-6f);
  EXPECT_NEAR(Score(zh, "首先计算 then</think>x"), 4.0f / 5.0f, 1e-6f);  // 4 Han characters, 1 word
  EXPECT_EQ(Score(en, "<think>Привет мир</think>"), 0.0f);
  EXPECT_TRUE(std::isnan(Score(en, "1 + 2 = 3</think>")));
  EXPECT_EQ(Score(en, "caf\xc3\xa9 na\xc3\xafve</think>"), 1.0f);  // accented Latin
}

TEST(RewardsTest, LengthAware) {
  const RewardFn over = SoftOverlongReward(100, 20);
  EXPECT_EQ(Score(over, "", "", true, 80), 0.0f);
  EXPECT_NEAR(Score(over, "", "", true, 90), -0.5f, 1e-6f);
  EXPECT_EQ(Score(over, "", "", true, 100), -1.0f);
  EXPECT_EQ(Score(over, "", "", true, 150), -1.0f);
  CosineOptions co;
  co.max_tokens = 100;
  const RewardFn cosine = CosineLengthReward(co);
  EXPECT_NEAR(Score(cosine, "</think>\\boxed{4}", "4", true, 0), 1.0f, 1e-6f);     // short and right
  EXPECT_NEAR(Score(cosine, "</think>\\boxed{4}", "4", true, 100), 0.5f, 1e-6f);   // long and right
  EXPECT_NEAR(Score(cosine, "</think>\\boxed{4}", "4", true, 50), 0.75f, 1e-6f);
  EXPECT_NEAR(Score(cosine, "</think>\\boxed{5}", "4", true, 0), -0.5f, 1e-6f);    // short and wrong
  EXPECT_NEAR(Score(cosine, "</think>\\boxed{5}", "4", true, 100), 0.0f, 1e-6f);   // long and wrong
  const RewardFn rep = RepetitionPenaltyReward(2, 1.0);
  EXPECT_EQ(Score(rep, "a b c d"), 0.0f);
  EXPECT_NEAR(Score(rep, "a b a b a b"), -(1.0f - 2.0f / 5.0f), 1e-6f);  // 2 distinct of 5 bigrams
  EXPECT_EQ(Score(rep, "a"), 0.0f);
}

TEST(RewardsTest, RewardSetScoresFunctionMajor) {
  RewardSet set;
  set.Add("accuracy", AccuracyReward(), 1.0);
  set.Add("format", FormatReward(), 0.5);
  Sample a, b;
  a.completion = "r</think>\\boxed{2}";
  a.gold = "2";
  b.completion = "r \\boxed{3}";
  b.gold = "2";
  const std::vector<Sample> samples = {a, b};
  EXPECT_EQ(set.Score(samples), (std::vector<float>{1, 0, 1, 0}));
  EXPECT_EQ(set.weights(), (std::vector<double>{1.0, 0.5}));
}

TEST(DataTest, ColumnStepsSpellOutCarriesAndBorrows) {
  ArithmeticOptions o;
  o.column_steps = true;
  o.parentheses = false;
  o.multiplication = false;
  o.max_operands = 2;
  bool saw_carry = false, saw_borrow = false, saw_negative = false;
  for (const ArithmeticProblem& p : GenerateArithmetic(300, 5, o)) {
    ASSERT_EQ(p.steps.size(), 1u);
    const std::string& step = p.steps[0];
    EXPECT_NE(step.find(". So " + p.expression + " = " + p.verifier_answer), std::string::npos) << step;
    saw_carry = saw_carry || step.find("carry 1") != std::string::npos;
    saw_borrow = saw_borrow || step.find("borrow 1") != std::string::npos;
    saw_negative = saw_negative || step.find("= -(") != std::string::npos;
    EXPECT_EQ(Score(AccuracyReward(), p.Completion(), p.verifier_answer), 1.0f);
  }
  EXPECT_TRUE(saw_carry && saw_borrow && saw_negative);
}

// Every column fragment does its arithmetic right: "a + b [+ 1] = s, write w [carry 1]" and
// "t - d = r[, borrow 1]"; the written digits, read back in reverse, give the magnitude.
TEST(DataTest, ColumnFragmentsAreCorrect) {
  ArithmeticOptions o;
  o.column_steps = true;
  for (const ArithmeticProblem& p : GenerateArithmetic(300, 9, o)) {
    for (const std::string& step : p.steps) {
      const size_t colon = step.find(": ");
      if (colon == std::string::npos) continue;  // a product
      const std::string columns = step.substr(colon + 2, step.find(". So ") - colon - 2);
      std::string digits;  // written digits, least significant first
      size_t start = 0;
      while (start < columns.size()) {
        size_t end = columns.find("; ", start);
        if (end == std::string::npos) end = columns.size();
        const std::string f = columns.substr(start, end - start);
        start = end + 2;
        int a = 0, b = 0, c = 0, r = 0, w = 0;
        if (std::sscanf(f.c_str(), "%d + %d + %d = %d, write %d", &a, &b, &c, &r, &w) == 5) {
          EXPECT_EQ(a + b + c, r) << f;
          EXPECT_EQ(r % 10, w) << f;
          digits += static_cast<char>('0' + w);
        } else if (std::sscanf(f.c_str(), "%d + %d = %d, write %d", &a, &b, &r, &w) == 4) {
          EXPECT_EQ(a + b, r) << f;
          EXPECT_EQ(r % 10, w) << f;
          digits += static_cast<char>('0' + w);
        } else if (std::sscanf(f.c_str(), "%d - %d = %d", &a, &b, &r) == 3) {
          EXPECT_EQ(a - b, r) << f;
          EXPECT_GE(r, 0) << f;
          digits += static_cast<char>('0' + r);
        } else if (std::sscanf(f.c_str(), "carry %d", &c) == 1) {
          digits += static_cast<char>('0' + c);
        } else {
          ADD_FAILURE() << "unparsed fragment '" << f << "' in " << step;
        }
      }
      std::string magnitude(digits.rbegin(), digits.rend());
      magnitude.erase(0, std::min(magnitude.find_first_not_of('0'), magnitude.size() - 1));
      const std::string result = step.substr(step.rfind(" = ") + 3);
      EXPECT_EQ(magnitude, result[0] == '-' ? result.substr(1) : result) << step;
    }
  }
}

// An independent evaluator for the generator's expressions (integers, + - *, parentheses,
// "a - -7"): recursive descent with the usual precedence.
struct ExpressionEvaluator {
  std::string_view s;
  size_t i = 0;
  void Space() { while (i < s.size() && s[i] == ' ') ++i; }
  int64_t Atom() {
    Space();
    if (s[i] == '(') {
      ++i;
      const int64_t v = Sum();
      Space();
      ++i;  // ')'
      return v;
    }
    const bool negative = s[i] == '-';
    if (negative) ++i;
    int64_t v = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') v = v * 10 + (s[i++] - '0');
    return negative ? -v : v;
  }
  int64_t Product() {
    int64_t v = Atom();
    for (Space(); i < s.size() && s[i] == '*'; Space()) ++i, v *= Atom();
    return v;
  }
  int64_t Sum() {
    int64_t v = Product();
    for (Space(); i < s.size() && (s[i] == '+' || s[i] == '-'); Space()) {
      const char op = s[i++];
      v = op == '+' ? v + Product() : v - Product();
    }
    return v;
  }
};

// Restated lines are the expression as it stands: each evaluates to the answer, one sits
// between every two operations, and products stay times-table facts.
TEST(DataTest, RestatedExpressionsKeepTheValue) {
  ArithmeticOptions o;
  o.column_steps = true;
  o.restate = true;
  o.min_operands = 3;
  o.max_operands = 5;
  int restated = 0;
  for (const ArithmeticProblem& p : GenerateArithmetic(300, 11, o)) {
    EXPECT_EQ(ExpressionEvaluator{p.expression}.Sum(), p.answer) << p.expression;
    size_t operations = 0, now = 0;
    for (const std::string& step : p.steps) {
      if (step.rfind("Now: ", 0) == 0) {
        ++now;
        EXPECT_EQ(ExpressionEvaluator{std::string_view(step).substr(5)}.Sum(), p.answer) << step;
        continue;
      }
      ++operations;
      const size_t star = step.find(" * ");
      if (star != std::string::npos) {
        const int64_t a = std::stoll(step.substr(0, star)), b = std::stoll(step.substr(star + 3));
        EXPECT_TRUE(a >= 0 && a <= 12 && b >= 0 && b <= 12) << step;
      }
    }
    EXPECT_EQ(now + 1, operations) << p.expression;
    restated += static_cast<int>(now);
    EXPECT_EQ(p.steps.back().substr(p.steps.back().rfind(" = ") + 3), p.verifier_answer);
  }
  EXPECT_GT(restated, 300);
}

TEST(DataTest, ArithmeticProblemsAreRightAndReproducible) {
  const auto a = GenerateArithmetic(200, 7), b = GenerateArithmetic(200, 7), c = GenerateArithmetic(200, 8);
  ASSERT_EQ(a.size(), 200u);
  int parens = 0, products = 0;
  bool differs = false;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].question, b[i].question);
    differs = differs || a[i].question != c[i].question;
    // The answer by an independent evaluation of the expression.
    auto v = ParseNumber(a[i].expression);
    ASSERT_TRUE(v.ok()) << a[i].expression;
    EXPECT_EQ(static_cast<int64_t>(*v), a[i].answer) << a[i].expression;
    EXPECT_NE(a[i].question.find(a[i].expression), std::string::npos);
    // The completion is R1-format and earns full accuracy and format rewards.
    const std::string completion = a[i].Completion();
    EXPECT_EQ(Score(AccuracyReward(), completion, a[i].verifier_answer), 1.0f) << completion;
    EXPECT_EQ(Score(FormatReward(), completion, "", /*opens=*/false), 1.0f) << completion;
    ASSERT_FALSE(a[i].steps.empty());
    EXPECT_NE(a[i].steps.back().find("= " + a[i].verifier_answer), std::string::npos);
    parens += a[i].expression.find('(') != std::string::npos;
    products += a[i].expression.find('*') != std::string::npos;
  }
  EXPECT_TRUE(differs);
  EXPECT_GT(parens, 20);
  EXPECT_GT(products, 20);
  const std::string line = SftJsonLine("What's 1 + 1?", "<think>\n1 + 1 = 2\n</think>\n\n\\boxed{2}");
  EXPECT_EQ(line, "{\"messages\": [{\"role\": \"user\", \"content\": \"What's 1 + 1?\"}, {\"role\": \"assistant\", "
                  "\"content\": \"<think>\\n1 + 1 = 2\\n</think>\\n\\n\\\\boxed{2}\"}]}");
}

}  // namespace
}  // namespace reasonrt::grpo

namespace reasonrt::grpo {
namespace {

// A rollout on a tiny synthetic model: shapes, masks and log-probs as generated, rewards
// as the reward set scores the decoded completions, and advantages equal to a
// recomputation from those rewards.
TEST(RolloutTest, AdvantagesMatchRecomputationFromRewards) {
  testing::TempDir tmp;
  testing::WriteFile(tmp.file("config.json"), R"({"model_type":"qwen2","hidden_size":64,"num_hidden_layers":2,
    "num_attention_heads":4,"num_key_value_heads":2,"intermediate_size":96,"vocab_size":512,
    "max_position_embeddings":4096,"rms_norm_eps":1e-6,"bos_token_id":300,"eos_token_id":301})");
  SynthOptions so;
  so.config_path = tmp.file("config.json");
  so.out_dir = tmp.file("model");
  so.seed = 3;
  ASSERT_TRUE(WriteSyntheticModel(so).ok());
  auto gen = Generator::Load(so.out_dir);
  ASSERT_TRUE(gen.ok()) << gen.status();
  RewardSet rewards;
  rewards.Add("accuracy", AccuracyReward(), 1.0);
  rewards.Add("tags", TagCountReward(), 0.5);
  rewards.Add("repetition", RepetitionPenaltyReward(1, 1.0), 0.25);
  RolloutOptions ro;
  ro.generate.n = 4;
  ro.generate.max_new_tokens = 12;
  ro.generate.sampling.temperature = 1.0f;
  ro.generate.sampling.seed = 9;
  std::vector<std::vector<ChatMessage>> prompts = {{{.role = "user", .content = "What's 2 + 2?"}},
                                                   {{.role = "user", .content = "What's 3 * 3?"}}};
  const std::vector<std::string> golds = {"4", "9"};
  auto batch = Rollout(**gen, prompts, golds, rewards, ro);
  ASSERT_TRUE(batch.ok()) << batch.status();
  const int64_t b = batch->size();
  ASSERT_EQ(b, 8);
  EXPECT_EQ(batch->prompt_of, (std::vector<int32_t>{0, 0, 0, 0, 1, 1, 1, 1}));
  ASSERT_EQ(batch->prompt_tokens.size(), 2u);
  const int64_t t = batch->max_length;
  ASSERT_GT(t, 0);
  ASSERT_EQ(batch->completion_tokens.size(), static_cast<size_t>(b * t));
  ASSERT_EQ(batch->rewards.size(), static_cast<size_t>(3 * b));
  for (int64_t i = 0; i < b; ++i) {
    int64_t len = 0;
    while (len < t && batch->completion_tokens[i * t + len] >= 0) ++len;
    float mask_sum = 0.0f;
    for (int64_t j = 0; j < t; ++j) {
      mask_sum += batch->mask[i * t + j];
      if (j < len) EXPECT_LE(batch->old_logprobs[i * t + j], 0.0f);
      if (j >= len) EXPECT_EQ(batch->mask[i * t + j], 0.0f);
    }
    EXPECT_EQ(mask_sum, static_cast<float>(len));
    EXPECT_EQ(batch->truncated[i] != 0, len == 12);
    // The rewards are those of the decoded completion.
    Sample s;
    s.completion = batch->completions[i];
    s.gold = golds[batch->prompt_of[i]];
    s.completion_tokens = len;
    EXPECT_EQ(batch->rewards[0 * b + i], AccuracyReward()(s));
    EXPECT_EQ(batch->rewards[1 * b + i], TagCountReward()(s));
    EXPECT_EQ(batch->rewards[2 * b + i], RepetitionPenaltyReward(1, 1.0)(s));
  }
  AdvantageOptions ao;
  ao.group_size = 4;
  ao.weights = {1.0, 0.5, 0.25};
  const std::vector<float> want = *ComputeAdvantages(batch->rewards, 3, ao);
  EXPECT_EQ(batch->advantages, want);
  for (int g = 0; g < 2; ++g) {
    double sum = 0.0;
    for (int i = 0; i < 4; ++i) sum += batch->advantages[g * 4 + i];
    EXPECT_NEAR(sum, 0.0, 1e-5);
  }
  // The same seed gives the same rollout.
  auto again = Rollout(**gen, prompts, golds, rewards, ro);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->completion_tokens, batch->completion_tokens);
  // Rejection sampling: every completion passes a threshold of -inf, none one of +inf.
  const std::string all = AcceptedJsonl(*batch, prompts, rewards.weights(), -1e30);
  EXPECT_EQ(std::count(all.begin(), all.end(), '\n'), 8);
  EXPECT_NE(all.find("\"role\": \"user\", \"content\": \"What's 2 + 2?\""), std::string::npos);
  EXPECT_EQ(AcceptedJsonl(*batch, prompts, rewards.weights(), 1e30), "");
  EXPECT_FALSE(Rollout(**gen, prompts, {"4"}, rewards, ro).ok());  // golds per prompt
}

}  // namespace
}  // namespace reasonrt::grpo

namespace reasonrt::grpo {
namespace {

TEST(RewardsTest, BuiltinsByNameAndSpecs) {
  auto set = RewardSet::Parse("accuracy:1, format:0.5,language:han:0.25,tag_count");
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->names(), (std::vector<std::string>{"accuracy", "format", "language:han", "tag_count"}));
  EXPECT_EQ(set->weights(), (std::vector<double>{1.0, 0.5, 0.25, 1.0}));
  EXPECT_FALSE(RewardSet::Parse("accuracy,bogus:2").ok());
  EXPECT_FALSE(RewardSet::Parse("language:klingon").ok());
  EXPECT_FALSE(RewardSet::Parse("format:inf").ok());
  EXPECT_TRUE(RewardSet::Parse("")->size() == 0);
}

}  // namespace
}  // namespace reasonrt::grpo
