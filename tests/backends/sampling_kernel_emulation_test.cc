// The cuda backend's SampleTokens kernel (lib/backends/cuda/sampling_kernel.cuh), its very
// source run on the host through tests/backends/cuda_emulation.h, against the host draw
// (DrawTokenOnHost, itself checked against the reference backend by the conformance
// suite). Where a GPU is at hand the conformance suite runs the kernel itself; this test
// checks its logic and synchronisation on every machine. Tokens must be equal; log-probs
// agree to 1e-4 (the kernel's sums are fixed point and f64, the host's f32 blocks in f64).
// clang-format off
#include "tests/backends/cuda_emulation.h"
#include "lib/backends/cuda/kernel_util.cuh"
#include "lib/backends/cuda/sampling_kernel.cuh"
// clang-format on

#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "lib/backends/token_draw.h"
#include "reasonrt/backend.h"

namespace reasonrt::cuda {
namespace {

std::vector<DeviceDrawn> RunKernel(const std::vector<float>& logits, int64_t vocab,
                                   const std::vector<TokenDraw>& draws) {
  std::vector<DeviceDraw> dd;
  std::vector<DeviceEdit> de;
  for (const TokenDraw& t : draws) {
    dd.push_back(DeviceDraw{t.draw ? 1 : 0, t.greedy ? 1 : 0, t.temperature, t.top_k, t.top_p,
                            t.min_p, t.uniform, t.score_token, static_cast<int32_t>(de.size()),
                            static_cast<int32_t>(t.edits.size())});
    for (const LogitEdit& e : t.edits) {
      de.push_back(DeviceEdit{e.token, e.bias, e.repetition_penalty, e.offset, e.banned ? 1 : 0});
    }
  }
  std::vector<float> work(logits.size());
  std::vector<DeviceDrawn> out(draws.size());
  cuda_emulation::RunBlocks(static_cast<unsigned>(draws.size()), kDrawThreads, [&] {
    SampleTokensKernel(logits.data(), static_cast<int32_t>(vocab), dd.data(), de.data(),
                       work.data(), out.data());
  });
  return out;
}

// Rows like a model's logits: a long normal tail and a few favourites.
std::vector<float> Rows(int64_t rows, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> v(static_cast<size_t>(rows * vocab));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < vocab; ++i) v[r * vocab + i] = normal(rng);
    for (int j = 0; j < 5; ++j) v[r * vocab + (r * 131 + j * 977) % vocab] += 8.0f - j;
  }
  return v;
}

void ExpectSameAsHost(const std::vector<float>& logits, int64_t vocab,
                      const std::vector<TokenDraw>& draws) {
  const std::vector<DeviceDrawn> got = RunKernel(logits, vocab, draws);
  for (size_t r = 0; r < draws.size(); ++r) {
    absl::StatusOr<DrawnToken> want = DrawTokenOnHost(
        absl::MakeConstSpan(logits.data() + r * vocab, static_cast<size_t>(vocab)), draws[r]);
    ASSERT_TRUE(want.ok()) << want.status();
    EXPECT_EQ(got[r].error, kDrawOk) << "row " << r;
    EXPECT_EQ(got[r].token, want->token) << "row " << r;
    EXPECT_NEAR(got[r].logprob, want->logprob, 1e-4) << "row " << r;
    EXPECT_NEAR(got[r].sampled_logprob, want->sampled_logprob, 1e-4) << "row " << r;
    EXPECT_NEAR(got[r].score_logprob, want->score_logprob, 1e-4) << "row " << r;
  }
}

TEST(SamplingKernelEmulationTest, EveryStageMatchesTheHostDraw) {
  const int64_t vocab = 3000;
  const std::vector<LogitEdit> edits = {
      {.token = 3, .bias = 4.0f},
      {.token = 17, .repetition_penalty = 1.3f},
      {.token = 18, .bias = 0.5f, .repetition_penalty = 1.1f, .offset = -0.7f},
      {.token = 40, .banned = true},
      {.token = 2999, .bias = -INFINITY}};
  std::vector<TokenDraw> draws = {{.greedy = true},
                                  {.greedy = true, .edits = edits, .score_token = 40},
                                  {.draw = false, .temperature = 0.6f, .score_token = 12}};
  for (double u : {0.0, 0.37, 0.999999999}) {
    draws.push_back({.temperature = 1.0f, .uniform = u});
    draws.push_back(
        {.temperature = 0.6f, .top_p = 0.95f, .uniform = u, .edits = edits, .score_token = 3});
    draws.push_back({.temperature = 1.3f, .top_k = 40, .uniform = u});
    draws.push_back({.temperature = 2.0f, .top_p = 0.5f, .uniform = u});
    draws.push_back({.temperature = 1.0f, .min_p = 0.05f, .uniform = u});
    draws.push_back({.temperature = 0.7f,
                     .top_k = 50,
                     .top_p = 0.9f,
                     .min_p = 0.02f,
                     .uniform = u,
                     .edits = edits});
    draws.push_back({.temperature = 100.0f, .top_k = 2500, .uniform = u});  // nearly flat
  }
  std::vector<float> logits = Rows(static_cast<int64_t>(draws.size()), vocab, 3);
  logits[0 * vocab + 100] = logits[0 * vocab + 200] = 30.0f;  // a tie at the top: the lower id
  logits[4 * vocab + 9] = -INFINITY;
  ExpectSameAsHost(logits, vocab, draws);
  EXPECT_EQ(RunKernel(logits, vocab, draws)[0].token, 100);
}

// A real vocabulary (R1's distills: 152064): the fixed-point sums' range and the runs of the
// draw's scan at full width.
TEST(SamplingKernelEmulationTest, FullVocabulary) {
  const int64_t vocab = 152064;
  std::vector<TokenDraw> draws;
  for (double u : {0.01, 0.5, 0.97}) {
    draws.push_back({.temperature = 0.6f, .top_p = 0.95f, .uniform = u});
    draws.push_back({.temperature = 1.0f, .uniform = u});
  }
  ExpectSameAsHost(Rows(static_cast<int64_t>(draws.size()), vocab, 11), vocab, draws);
}

TEST(SamplingKernelEmulationTest, BadRowsAreReportedPerRow) {
  const int64_t vocab = 64;
  std::vector<float> logits = Rows(3, vocab, 5);
  logits[0 * vocab + 7] = NAN;
  logits[1 * vocab + 9] = INFINITY;
  std::vector<LogitEdit> ban_all;
  for (int32_t i = 0; i < vocab; ++i) ban_all.push_back({.token = i, .banned = true});
  const std::vector<TokenDraw> draws = {
      {.temperature = 1.0f}, {.greedy = true}, {.temperature = 1.0f, .edits = ban_all}};
  const std::vector<DeviceDrawn> got = RunKernel(logits, vocab, draws);
  EXPECT_EQ(got[0].error, kDrawNaN);
  EXPECT_EQ(got[0].token, 7);
  EXPECT_EQ(got[1].error, kDrawInfinity);
  EXPECT_EQ(got[1].token, 9);
  EXPECT_EQ(got[2].error, kDrawNothingLeft);
}

}  // namespace
}  // namespace reasonrt::cuda
