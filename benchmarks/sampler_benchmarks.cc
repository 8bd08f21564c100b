// Choosing the next token from a row of 151,936 logits (the R1 distills' vocabulary), as
// generation does once per completion per decode step on the host: greedy, R1's
// recommended settings (temperature 0.6, top-p 0.95), top-k and min-p, and the full-
// vocabulary log-prob every sampled token records. Two logit shapes: "peaked" (a few
// tokens far above the rest, as in most steps of a confident model) and "flat" (thousands
// of tokens within a few units, where top-p keeps many). On a GPU a decode step of a 7B
// model takes ~5 ms, so a sampler in the milliseconds would dominate it.
#include <random>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "benchmark/benchmark.h"
#include "lib/generate/sampler.h"

namespace reasonrt::gen {
namespace {

constexpr int kVocab = 151936;

std::vector<float> Logits(bool peaked) {
  std::mt19937 rng(7);
  std::normal_distribution<float> noise(peaked ? -2.0f : 0.0f, peaked ? 2.0f : 0.7f);
  std::vector<float> l(kVocab);
  for (float& v : l) v = noise(rng);
  if (peaked) {
    std::uniform_int_distribution<int> id(0, kVocab - 1);
    for (float top : {17.0f, 16.2f, 15.5f, 14.0f, 13.1f}) l[id(rng)] = top;
  }
  return l;
}

void BM_Sample(benchmark::State& state, SamplingParams p, bool peaked) {
  const std::vector<float> logits = Logits(peaked);
  const absl::flat_hash_map<int32_t, int> seen{{11, 2}, {500, 1}}, generated{{42, 3}};
  Sampler sampler(p);
  Rng rng(1);
  for (auto _ : state) {
    auto r = sampler.Sample(logits, seen, generated, {}, rng);
    if (!r.ok()) state.SkipWithError(std::string(r.status().message()).c_str());
    benchmark::DoNotOptimize(r);
  }
}

SamplingParams Greedy() {
  SamplingParams p;
  p.greedy = true;
  return p;
}
SamplingParams TopK() {
  SamplingParams p;
  p.temperature = 0.8f;
  p.top_k = 40;
  return p;
}
SamplingParams MinP() {
  SamplingParams p;
  p.temperature = 1.0f;
  p.min_p = 0.05f;
  return p;
}

BENCHMARK_CAPTURE(BM_Sample, greedy_peaked, Greedy(), true)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Sample, r1_peaked, SamplingParams::R1Recommended(), true)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Sample, r1_flat, SamplingParams::R1Recommended(), false)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Sample, top_k40_flat, TopK(), false)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Sample, min_p_flat, MinP(), false)->Unit(benchmark::kMicrosecond);

void BM_LogProb(benchmark::State& state) {
  const std::vector<float> logits = Logits(true);
  Sampler sampler(SamplingParams::R1Recommended());
  for (auto _ : state) benchmark::DoNotOptimize(sampler.LogProb(logits, 123));
}
BENCHMARK(BM_LogProb)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace reasonrt::gen

BENCHMARK_MAIN();
