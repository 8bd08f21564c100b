// The GRPO toolkit's numerics at trainer batch sizes: advantages of 1024 prompts x 8
// completions, the policy loss and gradient over 256 x 4096 tokens (a large GRPO step),
// and the rule-based rewards over R1-length completions. The rollout itself is
// generation, measured by `reasonrt bench --group`.
#include <random>
#include <string>

#include "benchmark/benchmark.h"
#include "reasonrt/grpo.h"

namespace reasonrt::grpo {
namespace {

void BM_Advantages(benchmark::State& state) {
  const int64_t groups = state.range(0), g = 8;
  std::mt19937 rng(1);
  std::bernoulli_distribution coin(0.4);
  std::vector<float> rewards(static_cast<size_t>(2 * groups * g));
  for (float& r : rewards) r = coin(rng) ? 1.0f : 0.0f;
  AdvantageOptions o;
  o.group_size = g;
  o.weights = {1.0, 0.5};
  for (auto _ : state) benchmark::DoNotOptimize(ComputeAdvantages(rewards, 2, o));
  state.SetItemsProcessed(state.iterations() * groups * g);
}
BENCHMARK(BM_Advantages)->Arg(1024)->Unit(benchmark::kMicrosecond);

void BM_PolicyLoss(benchmark::State& state) {
  const int64_t b = state.range(0), t = state.range(1);
  std::mt19937 rng(2);
  std::normal_distribution<float> noise(0.0f, 0.1f);
  std::vector<float> old_lp(b * t), new_lp(b * t), ref_lp(b * t), mask(b * t, 1.0f), adv(b);
  for (int64_t i = 0; i < b * t; ++i) {
    old_lp[i] = -1.0f + noise(rng);
    new_lp[i] = old_lp[i] + noise(rng);
    ref_lp[i] = old_lp[i] + noise(rng);
  }
  for (float& a : adv) a = noise(rng) * 10.0f;
  LossOptions o;
  o.beta = 0.04;
  for (auto _ : state) benchmark::DoNotOptimize(ComputePolicyLoss(new_lp, old_lp, ref_lp, adv, mask, b, t, o));
  state.SetItemsProcessed(state.iterations() * b * t);  // tokens
}
BENCHMARK(BM_PolicyLoss)->Args({256, 4096})->Unit(benchmark::kMillisecond);

// A completion of R1's usual shape: a few thousand words of thinking, then a boxed answer.
std::string LongCompletion(int words) {
  std::string s;
  for (int i = 0; i < words; ++i) s += (i % 17 == 0 ? "Wait, " : "so ") + std::to_string(i % 97) + " plus ";
  return s + "\n</think>\n\nThe answer is $\\boxed{\\frac{3}{4}}$.";
}

void BM_Rewards(benchmark::State& state) {
  const std::string text = LongCompletion(static_cast<int>(state.range(0)));
  RewardSet set;
  for (const char* name : {"accuracy", "format", "tag_count", "language:latin", "repetition"}) {
    set.Add(name, *BuiltinReward(name), 1.0);
  }
  Sample s;
  s.completion = text;
  s.gold = "0.75";
  const std::vector<Sample> samples(8, s);
  for (auto _ : state) benchmark::DoNotOptimize(set.Score(samples));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(text.size()) * 8);
}
BENCHMARK(BM_Rewards)->Arg(2000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace reasonrt::grpo

BENCHMARK_MAIN();
