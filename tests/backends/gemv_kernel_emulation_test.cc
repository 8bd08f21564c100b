// The cuda backend's decode GEMV with its experimental epilogues (lib/backends/cuda/
// gemv_kernel.cuh), its source run on the host through tests/backends/cuda_emulation.h,
// one to four blocks at once, against the same steps in f64:
// - GemvNorm (MatMulAddRmsNorm of one row in the GEMV's own launch, the norm taken by the
//   block that finishes last): y = W x, residual += y, normed = RmsNorm(residual) * gain,
//   and the block counter back at zero for the next launch; the same bits whichever block
//   finishes last (the blocks one at a time forward and reversed, two at a time shuffled,
//   four at a time). Tolerance: 1e-4 of each row's sum of |w * x| (y, residual) and 1e-4
//   relative (normed).
// - silu_pairs (GateUpMatMul of one row in one launch): gate's y = silu(Wg x + bg) *
//   (Wu x + bu), up's y untouched. Tolerance: the projections' 1e-4 of their sums of
//   |w * x| carried through the product, plus 1e-5 relative.
// - The tensor-core GEMV of 2 to 8 rows (GemvMmaKernel, mma.sync emulated by
//   cuda_emulation.h's MmaBf16): y = W bf16(x) + bias against f64 over the same rounded
//   activations, 1e-4 of each row's sum of |w * x|; and with silu_pairs (a group's gate
//   and up in one launch) silu(gate) * up, tolerances as silu_pairs' above.
// - The fp8 prompt weight as bf16 (DequantizeFp8Kernel): the host's bits.
// The GEMVs run as dependent launches (cuda_emulation.h's ScopedPredecessor): the kernel
// before writes the activations (and the residual) only when the GEMV waits for it, and
// NaN into the outputs, so a read of them before the wait, or a write before it, gives NaN.
// clang-format off
#include "tests/backends/cuda_emulation.h"
#include "lib/backends/cuda/kernel_util.cuh"
#include "lib/backends/cuda/gemv_kernel.cuh"
// clang-format on

#include <algorithm>
#include <cmath>
#include <iterator>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "reasonrt/dtype.h"
#include "tests/backends/emulation_weights.h"

namespace reasonrt::cuda {
namespace {

using testing::EmulationWeight;

// The weight as a GemvBatch segment writing y (n rows, an f32 bias or none).
GemvSegment Segment(const EmulationWeight& w, int64_t n, float* y, const float* bias = nullptr) {
  return GemvSegment{w.w.data(), w.scale_inv(), w.scale_cols, bias, DType::kF32, n, y};
}

template <DType D, int kSplit>
void CheckNormEpilogue(int64_t n, int64_t k) {
  SCOPED_TRACE(std::string(DTypeName(D)) + " split " + std::to_string(kSplit) + " n " +
               std::to_string(n));
  std::mt19937 rng(17);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const EmulationWeight weight(D, n, k, rng);
  std::vector<float> x(static_cast<size_t>(k)), residual(static_cast<size_t>(n)),
      gain(static_cast<size_t>(n));
  for (float& v : x) v = u(rng);
  for (float& v : residual) v = u(rng) * 4.0f;
  for (float& v : gain) v = 1.0f + 0.1f * u(rng);
  const int rows_per_block = kGemvWarps / kSplit;
  const unsigned blocks = static_cast<unsigned>((n + rows_per_block - 1) / rows_per_block);
  // One launch in the given block order, as a dependent launch: the kernel before is still
  // writing x and the residual, and is the GEMV before, whose last block resets the counter.
  unsigned counter = 0;
  struct Out {
    std::vector<float> y, residual, normed;
  };
  auto launch = [&](cuda_emulation::BlockOrder order, unsigned at_once) {
    cuda_emulation::ScopedLaunch in_order(order, at_once);
    Out o{std::vector<float>(static_cast<size_t>(n), NAN),
          std::vector<float>(static_cast<size_t>(n), NAN),
          std::vector<float>(static_cast<size_t>(n), NAN)};
    std::vector<float> partial(blocks, NAN), x_in(x.size(), NAN);
    counter = 7;
    cuda_emulation::ScopedPredecessor before([&] {
      std::copy(x.begin(), x.end(), x_in.begin());
      std::copy(residual.begin(), residual.end(), o.residual.begin());
      counter = 0;
      for (auto* v : {&o.y, &o.normed, &partial}) std::fill(v->begin(), v->end(), NAN);
    });
    GemvBatch b{};
    b.count = 1;
    b.segments[0] = Segment(weight, n, o.y.data());
    b.first_row[1] = n;
    b.norm = GemvNorm{o.residual.data(), gain.data(),    DType::kF32, 1e-6f,
                      o.normed.data(),   partial.data(), &counter};
    cuda_emulation::RunBlocks(blocks, kGemvWarps * kWarp,
                              [&] { GemvKernel<D, 1, kSplit, GemvEnd::kNorm>(x_in.data(), k, b); });
    EXPECT_EQ(counter, 0u);  // ready for the next launch
    return o;
  };
  const auto [y, sums, normed] = launch(cuda_emulation::BlockOrder::kForward, 1);
  // Whichever block takes the last ticket, it adds the partials in the same order: the
  // results are the same to the bit.
  for (auto [order, at_once] : cuda_emulation::kTicketLaunches) {
    SCOPED_TRACE("order " + std::to_string(static_cast<int>(order)) + ", " +
                 std::to_string(at_once) + " blocks at once");
    const Out other = launch(order, at_once);
    EXPECT_EQ(other.y, y);
    EXPECT_EQ(other.residual, sums);
    EXPECT_EQ(other.normed, normed);
  }

  std::vector<double> sum_after(static_cast<size_t>(n));
  double squares = 0;
  for (int64_t r = 0; r < n; ++r) {
    const auto [want, size] = weight.Dot(r, k, x.data());
    ASSERT_NEAR(y[r], want, 1e-4 * size + 1e-6) << "y row " << r;
    sum_after[r] = residual[r] + want;
    ASSERT_NEAR(sums[r], sum_after[r], 1e-4 * size + 1e-6) << "residual row " << r;
    squares += sum_after[r] * sum_after[r];
  }
  const double inv = 1.0 / std::sqrt(squares / double(n) + 1e-6);
  for (int64_t r = 0; r < n; ++r) {
    const double want = sum_after[r] * inv * gain[r];
    ASSERT_NEAR(normed[r], want, 1e-4 * std::fabs(want) + 1e-5) << "normed row " << r;
  }
}

template <DType D, int kSplit>
void CheckSiluPairs(int64_t n, int64_t k, bool biases) {
  SCOPED_TRACE(std::string(DTypeName(D)) + " split " + std::to_string(kSplit) + " n " +
               std::to_string(n) + (biases ? " biases" : ""));
  std::mt19937 rng(29);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const EmulationWeight gate_w(D, n, k, rng), up_w(D, n, k, rng);
  std::vector<float> x(static_cast<size_t>(k)), gate_bias(static_cast<size_t>(n)),
      up_bias(static_cast<size_t>(n));
  for (float& v : x) v = u(rng) * 2.0f;  // gate sums of a few units: silu's bend matters
  for (float& v : gate_bias) v = biases ? u(rng) * 3.0f : 0.0f;
  for (float& v : up_bias) v = biases ? u(rng) : 0.0f;
  std::vector<float> gate(static_cast<size_t>(n), NAN), up(static_cast<size_t>(n), NAN);
  std::vector<float> x_in(x.size(), NAN);
  cuda_emulation::ScopedPredecessor before([&] {
    std::copy(x.begin(), x.end(), x_in.begin());
    std::fill(gate.begin(), gate.end(), NAN);
  });
  GemvBatch b{};
  b.count = 2;
  b.silu_pairs = true;
  b.segments[0] = Segment(gate_w, n, gate.data(), biases ? gate_bias.data() : nullptr);
  b.segments[1] = Segment(up_w, n, up.data(), biases ? up_bias.data() : nullptr);
  b.first_row[1] = n, b.first_row[2] = 2 * n;
  const int slots_per_block = kGemvWarps / kSplit;
  const unsigned blocks = static_cast<unsigned>((2 * n + slots_per_block - 1) / slots_per_block);
  cuda_emulation::RunBlocks(blocks, kGemvWarps * kWarp, [&] {
    GemvKernel<D, 1, kSplit, GemvEnd::kSiluPairs>(x_in.data(), k, b);
  });
  for (int64_t r = 0; r < n; ++r) {
    auto [g, g_size] = gate_w.Dot(r, k, x.data());
    auto [v, v_size] = up_w.Dot(r, k, x.data());
    g += gate_bias[r], v += up_bias[r];
    const double silu = g / (1.0 + std::exp(-g)), want = silu * v;
    // silu's slope is at most 1.1: an error e in g moves the product by up to 1.1 e |v|.
    const double tol = 1e-4 * (1.1 * g_size * std::fabs(v) + v_size * std::fabs(silu)) +
                       1e-5 * std::fabs(want) + 1e-6;
    ASSERT_NEAR(gate[r], want, tol) << "row " << r << " (gate " << g << ", up " << v << ")";
    ASSERT_TRUE(std::isnan(up[r])) << "up's y written at row " << r;
  }
}

// The tensor-core GEMV (GemvMmaKernel) of t rows against two bf16 segments (n0 + n1 rows,
// the last block of 16 part empty; the second with a bias): y = W bf16(x) + bias, against
// f64 over the same bf16-rounded activations, within 1e-4 of each row's sum of |w * x|;
// activation rows past t and rows past the weights left unwritten.
void CheckMma(int64_t t, int64_t n0, int64_t n1, int64_t k) {
  SCOPED_TRACE("mma t " + std::to_string(t) + " n " + std::to_string(n0) + "+" +
               std::to_string(n1) + " k " + std::to_string(k));
  std::mt19937 rng(31);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const EmulationWeight w0(DType::kBF16, n0, k, rng), w1(DType::kBF16, n1, k, rng);
  std::vector<float> x(static_cast<size_t>(t * k)), rounded(x.size()), bias(n1);
  for (float& v : x) v = u(rng) * 2.0f;
  for (float& v : bias) v = u(rng);
  std::vector<uint16_t> bits(x.size());
  ConvertFromF32(DType::kBF16, x.data(), bits.data(), x.size());
  ConvertToF32(DType::kBF16, bits.data(), rounded.data(), x.size());
  std::vector<float> y0(static_cast<size_t>(t * n0), NAN), y1(static_cast<size_t>(t * n1), NAN);
  std::vector<float> x_in(x.size(), NAN);
  cuda_emulation::ScopedPredecessor before([&] {
    std::copy(x.begin(), x.end(), x_in.begin());
    for (auto* y : {&y0, &y1}) std::fill(y->begin(), y->end(), NAN);
  });
  GemvBatch b{};
  b.count = 2;
  b.segments[0] = Segment(w0, n0, y0.data());
  b.segments[1] = Segment(w1, n1, y1.data(), bias.data());
  b.first_row[1] = n0, b.first_row[2] = n0 + n1;
  const unsigned blocks = static_cast<unsigned>((n0 + n1 + 15) / 16);
  cuda_emulation::RunBlocks(blocks, kMmaWarps * kWarp,
                            [&] { GemvMmaKernel<false>(x_in.data(), t, k, b); });
  for (int64_t r = 0; r < t; ++r) {
    for (int64_t n = 0; n < n0 + n1; ++n) {
      const bool first = n < n0;
      const EmulationWeight& w = first ? w0 : w1;
      const int64_t row = first ? n : n - n0;
      auto [want, size] = w.Dot(row, k, rounded.data() + r * k);
      if (!first) want += bias[row];
      const float got = first ? y0[r * n0 + row] : y1[r * n1 + row];
      ASSERT_NEAR(got, want, 1e-4 * size + 1e-6) << "activation row " << r << " weight row " << n;
    }
  }
}

// The same kernel with silu_pairs: t rows of gate and up (n rows each, with biases or
// not) in one launch, silu(Wg bf16(x) + bg) * (Wu bf16(x) + bu) in gate's y (tolerance as
// CheckSiluPairs'), up's y untouched.
void CheckMmaSiluPairs(int64_t t, int64_t n, int64_t k, bool biases) {
  SCOPED_TRACE("mma silu pairs t " + std::to_string(t) + " n " + std::to_string(n) + " k " +
               std::to_string(k) + (biases ? " biases" : ""));
  std::mt19937 rng(37);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const EmulationWeight gate_w(DType::kBF16, n, k, rng), up_w(DType::kBF16, n, k, rng);
  std::vector<float> x(static_cast<size_t>(t * k)), rounded(x.size()), gate_bias(n), up_bias(n);
  for (float& v : x) v = u(rng) * 2.0f;
  for (float& v : gate_bias) v = biases ? u(rng) * 3.0f : 0.0f;
  for (float& v : up_bias) v = biases ? u(rng) : 0.0f;
  std::vector<uint16_t> bits(x.size());
  ConvertFromF32(DType::kBF16, x.data(), bits.data(), x.size());
  ConvertToF32(DType::kBF16, bits.data(), rounded.data(), x.size());
  std::vector<float> gate(static_cast<size_t>(t * n), NAN), up(gate.size(), NAN);
  std::vector<float> x_in(x.size(), NAN);
  cuda_emulation::ScopedPredecessor before([&] {
    std::copy(x.begin(), x.end(), x_in.begin());
    std::fill(gate.begin(), gate.end(), NAN);
  });
  GemvBatch b{};
  b.count = 2;
  b.silu_pairs = true;
  b.round_activations = true;
  b.segments[0] = Segment(gate_w, n, gate.data(), biases ? gate_bias.data() : nullptr);
  b.segments[1] = Segment(up_w, n, up.data(), biases ? up_bias.data() : nullptr);
  b.first_row[1] = n, b.first_row[2] = 2 * n;
  const unsigned blocks = static_cast<unsigned>((n + 7) / 8);
  cuda_emulation::RunBlocks(blocks, kMmaWarps * kWarp,
                            [&] { GemvMmaKernel<true>(x_in.data(), t, k, b); });
  for (int64_t r = 0; r < t; ++r) {
    for (int64_t row = 0; row < n; ++row) {
      auto [g, g_size] = gate_w.Dot(row, k, rounded.data() + r * k);
      auto [v, v_size] = up_w.Dot(row, k, rounded.data() + r * k);
      g += gate_bias[row], v += up_bias[row];
      const double silu = g / (1.0 + std::exp(-g)), want = silu * v;
      const double tol = 1e-4 * (1.1 * g_size * std::fabs(v) + v_size * std::fabs(silu)) +
                         1e-5 * std::fabs(want) + 1e-6;
      ASSERT_NEAR(gate[r * n + row], want, tol) << "activation row " << r << " row " << row;
      ASSERT_TRUE(std::isnan(up[r * n + row])) << "up's y written at row " << row;
    }
  }
}

// The fp8 prompt weight's conversion to bf16 (DequantizeFp8Kernel, kPer weights a thread):
// the same bits as the library's host dequantization (DequantizeFp8Blocks) rounded to bf16
// by ConvertFromF32, the extremes of e4m3 included (zeros of both signs, the smallest
// subnormal, +-448); nothing written past the weight.
template <int kPer>
void CheckDequantizeFp8(int64_t n, int64_t k) {
  SCOPED_TRACE("dequantize fp8, " + std::to_string(kPer) + " a thread, n " + std::to_string(n) +
               " k " + std::to_string(k));
  std::mt19937 rng(41);
  EmulationWeight w(DType::kF8E4M3, n, k, rng);
  const uint8_t extremes[] = {0x00, 0x80, 0x01, 0x81, 0x7e, 0xfe, 0x08};
  for (size_t i = 0; i < std::size(extremes) && i < w.w.size(); ++i)
    w.w[i] = static_cast<char>(extremes[i]);
  const auto* bytes = reinterpret_cast<const uint8_t*>(w.w.data());
  DequantizeFp8Blocks(bytes, w.scales.data(), n, k, w.dense.data());
  std::vector<uint16_t> want(static_cast<size_t>(n * k)), got(want.size() + 8, 0x7fc1);
  ConvertFromF32(DType::kBF16, w.dense.data(), want.data(), want.size());
  const auto blocks = static_cast<unsigned>((n * k / kPer + 255) / 256);
  auto* out = reinterpret_cast<__nv_bfloat16*>(got.data());
  cuda_emulation::RunBlocks(blocks, 256, [&] {
    DequantizeFp8Kernel<kPer>(bytes, w.scales.data(), w.scale_cols, n, k, out);
  });
  for (int64_t i = 0; i < n * k; ++i)
    ASSERT_EQ(got[i], want[i]) << "row " << i / k << " column " << i % k;
  for (size_t i = want.size(); i < got.size(); ++i) ASSERT_EQ(got[i], 0x7fc1) << "past the end";
}

TEST(GemvKernelEmulationTest, DequantizeFp8GivesTheHostsBf16Bits) {
  CheckDequantizeFp8<4>(300, 1024);  // rows past two whole scale blocks
  CheckDequantizeFp8<4>(130, 260);   // columns past two whole scale blocks
  CheckDequantizeFp8<1>(130, 250);   // k % 4 != 0: a weight a thread
  CheckDequantizeFp8<1>(3, 7);
}

TEST(GemvKernelEmulationTest, TensorCoreSiluPairsOfTwoToEightRows) {
  CheckMmaSiluPairs(2, 37, 96, true);  // a last block of 5 pairs
  CheckMmaSiluPairs(8, 64, 1024, false);
  CheckMmaSiluPairs(3, 20, 1312, true);
}

TEST(GemvKernelEmulationTest, TensorCoreGemvOfTwoToEightRows) {
  CheckMma(2, 40, 23, 96);     // 3 of 8 warps with columns; a last block of 15 rows
  CheckMma(5, 16, 16, 1024);   // a whole chunk step a warp
  CheckMma(8, 100, 60, 1312);  // 41 column blocks: steps of 4 and a last of 1
}

TEST(GemvKernelEmulationTest, SiluPairsEveryBlockAndSplit) {
  CheckSiluPairs<DType::kBF16, 1>(300, 1024, false);  // 300 pairs: a last block half idle
  CheckSiluPairs<DType::kBF16, 2>(301, 512, true);
  CheckSiluPairs<DType::kBF16, 4>(37, 1024, true);
  CheckSiluPairs<DType::kF8E4M3, 4>(260, 1024, false);
  CheckSiluPairs<DType::kF16, 1>(64, 256, true);
  CheckSiluPairs<DType::kF32, 2>(64, 512, false);
}

TEST(GemvKernelEmulationTest, NormEpilogueEveryBlockAndSplit) {
  CheckNormEpilogue<DType::kBF16, 1>(300, 1024);  // 300: a last block with idle warps
  CheckNormEpilogue<DType::kBF16, 4>(300, 1024);
  CheckNormEpilogue<DType::kF8E4M3, 4>(260, 1024);
  CheckNormEpilogue<DType::kF32, 2>(64, 512);
}

}  // namespace
}  // namespace reasonrt::cuda
