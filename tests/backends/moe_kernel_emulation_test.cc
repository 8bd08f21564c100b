// The cuda backend's MoE kernels (lib/backends/cuda/moe_kernel.cuh: the router, one warp a
// token, and the experts' GEMV that reads each row's expert from device memory), their
// source run on the host through tests/backends/cuda_emulation.h: the router against
// RouteTokens (the same experts; weights within 1e-5), the GEMV against the weights
// dequantized on the host (1e-4 of the row's sum of |x * w|), and its gated form (gate and
// up experts in one launch) against silu(gate) * up in f64 (those errors carried through
// the product, plus 1e-5 relative). The conformance suite runs
// the kernels themselves where a GPU is at hand.
// clang-format off
#include "tests/backends/cuda_emulation.h"
#include "lib/backends/cuda/kernel_util.cuh"
#include "lib/backends/cuda/moe_kernel.cuh"
// clang-format on

#include <cmath>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "reasonrt/dtype.h"
#include "reasonrt/moe.h"
#include "reasonrt/tensor.h"
#include "tests/backends/emulation_weights.h"

namespace reasonrt::cuda {
namespace {

struct Routed {
  std::vector<int32_t> experts;
  std::vector<float> weights;
};

Routed RunRouter(const RouterConfig& c, const std::vector<float>& logits, int64_t tokens,
                 const std::vector<float>& bias) {
  Routed out;
  const int64_t k = c.num_experts_per_tok;
  out.experts.assign(static_cast<size_t>(tokens * k), -1);
  out.weights.assign(static_cast<size_t>(tokens * k), 0.0f);
  const bool grouped = c.topk_method != TopkMethod::kGreedy;
  RouteArgs a{};
  a.logits = logits.data(), a.bias = bias.empty() ? nullptr : bias.data();
  a.tokens = tokens, a.experts = c.n_routed_experts, a.k = static_cast<int32_t>(k);
  a.groups = grouped ? static_cast<int32_t>(c.n_group) : 1;
  a.keep_groups = grouped ? static_cast<int32_t>(c.topk_group) : 1;
  a.sigmoid = c.scoring_func == ScoringFunc::kSigmoid,
  a.top2_groups = c.topk_method == TopkMethod::kNoauxTc;
  a.normalise = c.norm_topk_prob, a.always_scale = c.always_scale,
  a.scaling_factor = c.routed_scaling_factor;
  a.out_experts = out.experts.data(), a.out_weights = out.weights.data();
  const unsigned blocks = static_cast<unsigned>((tokens + kRouteWarps - 1) / kRouteWarps);
  cuda_emulation::RunBlocks(blocks, kRouteWarps * kWarp, [&] { RouteKernel(a); });
  return out;
}

RouterConfig V3() {
  RouterConfig c;
  c.n_routed_experts = 256, c.num_experts_per_tok = 8, c.n_group = 8, c.topk_group = 4;
  c.scoring_func = ScoringFunc::kSigmoid, c.topk_method = TopkMethod::kNoauxTc;
  c.norm_topk_prob = true, c.routed_scaling_factor = 2.5;
  return c;
}

TEST(MoeKernelEmulationTest, RouterIsRouteTokens) {
  RouterConfig v2;  // DeepSeek-V2's: softmax, greedy, no normalisation
  v2.n_routed_experts = 160, v2.num_experts_per_tok = 6, v2.scoring_func = ScoringFunc::kSoftmax;
  v2.topk_method = TopkMethod::kGreedy, v2.routed_scaling_factor = 16.0, v2.always_scale = false;
  RouterConfig limited = V3();  // group_limited_greedy: a group scored by its best
  limited.topk_method = TopkMethod::kGroupLimitedGreedy,
  limited.scoring_func = ScoringFunc::kSoftmax;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-4.0f, 4.0f), small(-0.1f, 0.1f);
  for (const RouterConfig& c : {V3(), v2, limited}) {
    const int64_t tokens = 9, e = c.n_routed_experts, k = c.num_experts_per_tok;
    std::vector<float> logits(static_cast<size_t>(tokens * e)), bias;
    for (float& v : logits) v = u(rng);
    if (c.topk_method == TopkMethod::kNoauxTc) {
      for (int64_t i = 0; i < e; ++i) bias.push_back(small(rng));
    }
    const Routed got = RunRouter(c, logits, tokens, bias);
    absl::StatusOr<Routing> want = RouteTokens(c, logits, tokens, bias);
    ASSERT_TRUE(want.ok()) << want.status();
    for (int64_t i = 0; i < tokens * k; ++i) {
      EXPECT_EQ(got.experts[i], want->experts[i]) << i;
      EXPECT_NEAR(got.weights[i], want->weights[i], 1e-5f) << i;
    }
  }
}

// Ties go to the lower expert (and group); a NaN logit is never chosen.
TEST(MoeKernelEmulationTest, RouterTiesAndNaN) {
  const RouterConfig c = V3();
  std::vector<float> logits(2 * 256, 0.0f);  // token 0: all equal; token 1: a NaN at the top
  logits[256 + 5] = NAN;
  logits[256 + 200] = 3.0f;
  const std::vector<float> bias(256, 0.0f);
  const Routed got = RunRouter(c, logits, 2, bias);
  for (int j = 0; j < 8; ++j) EXPECT_EQ(got.experts[j], j);  // groups 0-3, then experts 0..7
  for (int j = 0; j < 8; ++j) EXPECT_NE(got.experts[8 + j], 5);
  EXPECT_EQ(got.experts[8], 200);
}

// kChunks: the decode GEMV's chunks of 8 (k = 304: two full 128-blocks and a short one);
// otherwise one weight at a time (k = 300). kGated: gate and up experts, silu(gate) * up.
template <bool kChunks, bool kGated>
void CheckExpertGemv() {
  const int32_t experts = 3;
  const int64_t n = 256, k = kChunks ? 304 : 300, rows = 5;
  const std::vector<int32_t> ids = {2, 0, -1, 2, 7};  // -1 and 7 are not experts: zeros
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(rows * k));
  for (float& v : x) v = u(rng);
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16, DType::kF8E4M3}) {
    SCOPED_TRACE(std::string(DTypeName(dtype)) + (kChunks ? " chunks" : "") +
                 (kGated ? " gated" : ""));
    const bool fp8 = dtype == DType::kF8E4M3;
    // The experts stacked, [experts * n, k] each.
    const testing::EmulationWeight gate(dtype, experts * n, k, rng), up(dtype, experts * n, k, rng);
    std::vector<float> y(static_cast<size_t>(rows * n), -1.0f);
    ExpertGemvArgs a{};
    a.x = x.data(), a.ids = ids.data(), a.w = gate.w.data(), a.w_dtype = dtype;
    a.scale_inv = gate.scale_inv(), a.scale_cols = fp8 ? gate.scale_cols : 0;
    a.experts = experts, a.rows = rows, a.n = n, a.k = k, a.y = y.data();
    if (kGated) a.up_w = up.w.data(), a.up_scale_inv = up.scale_inv();
    const unsigned blocks_x = static_cast<unsigned>((n + kExpertGemvWarps - 1) / kExpertGemvWarps);
    auto run = [&] {
      switch (dtype) {
        case DType::kF32:
          return ExpertGemvKernel<DType::kF32, kChunks, kGated>(a);
        case DType::kBF16:
          return ExpertGemvKernel<DType::kBF16, kChunks, kGated>(a);
        case DType::kF16:
          return ExpertGemvKernel<DType::kF16, kChunks, kGated>(a);
        default:
          return ExpertGemvKernel<DType::kF8E4M3, kChunks, kGated>(a);
      }
    };
    cuda_emulation::RunBlocks(blocks_x, kExpertGemvWarps * kWarp, run, static_cast<unsigned>(rows));
    for (int64_t p = 0; p < rows; ++p) {
      for (int64_t o = 0; o < n; ++o) {
        double want = 0, tol = 1e-6;
        if (ids[p] >= 0 && ids[p] < experts) {
          const int64_t row = static_cast<int64_t>(ids[p]) * n + o;
          const auto [g, g_size] = gate.Dot(row, k, x.data() + p * k);
          want = g, tol += 1e-4 * g_size;
          if (kGated) {
            const auto [v, v_size] = up.Dot(row, k, x.data() + p * k);
            const double silu = g / (1.0 + std::exp(-g));
            want = silu * v;
            // silu's slope is at most 1.1: an error e in g moves the product by up to 1.1 e |v|.
            tol = 1e-4 * (1.1 * g_size * std::fabs(v) + v_size * std::fabs(silu)) +
                  1e-5 * std::fabs(want) + 1e-6;
          }
        }
        ASSERT_NEAR(y[p * n + o], want, tol) << "row " << p << " out " << o;
      }
    }
  }
}

TEST(MoeKernelEmulationTest, ExpertGemvReadsEachRowsExpert) {
  CheckExpertGemv<true, false>();
  CheckExpertGemv<false, false>();
}

TEST(MoeKernelEmulationTest, GatedExpertGemvGivesSiluGateTimesUp) {
  CheckExpertGemv<true, true>();
  CheckExpertGemv<false, true>();
}

}  // namespace
}  // namespace reasonrt::cuda
