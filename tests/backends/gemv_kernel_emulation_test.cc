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
// - The default decode GEMV (kStore) of 1 to 8 rows, every dtype and split, three
//   segments with f32 and bf16 biases; its scalar fallback (any k); the tiled f32 prompt
//   GEMM (partial tiles); MLA's per-head products, both weight layouts: 1e-4 of each
//   output's sum of |w * x|.
// - The kernels around cuBLAS's GEMM: the activations' bf16 halves, the fp8 prompt weight as
//   bf16 (DequantizeFp8Kernel): the host's bits; the stacked GEMM's columns split into
//   segments, biases added: exact.
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
using testing::RoundToBf16;
using testing::Uniform;

// The weight as a GemvBatch segment writing y (n rows, an f32 bias or none).
GemvSegment Segment(const EmulationWeight& w, int64_t n, float* y, const float* bias = nullptr) {
  return GemvSegment{w.w.data(), w.scale_inv(), w.scale_cols, bias, DType::kF32, n, y};
}

// A GEMV as a dependent launch: the kernel before writes the activations x into x_in (NaN
// till then) and NaN into `outputs`, when the GEMV waits for it.
cuda_emulation::ScopedPredecessor WrittenOnWait(const std::vector<float>& x,
                                                std::vector<float>& x_in,
                                                std::vector<std::vector<float>*> outputs) {
  return cuda_emulation::ScopedPredecessor([&x, &x_in, outputs] {
    std::copy(x.begin(), x.end(), x_in.begin());
    for (std::vector<float>* y : outputs) std::fill(y->begin(), y->end(), NAN);
  });
}

// A gated MLP's gate and up (n rows each, biases or none) as a silu_pairs batch writing
// gate's y (up's y is not to be written).
GemvBatch SiluPairsBatch(const EmulationWeight& gate_w, const EmulationWeight& up_w, int64_t n,
                         float* gate, float* up, const float* gate_bias, const float* up_bias) {
  GemvBatch b{};
  b.count = 2;
  b.silu_pairs = true;
  b.segments[0] = Segment(gate_w, n, gate, gate_bias);
  b.segments[1] = Segment(up_w, n, up, up_bias);
  b.first_row[1] = n, b.first_row[2] = 2 * n;
  return b;
}

// Whether `got` is silu(Wg x + bg) * (Wu x + bu) for weight row `row` within the
// projections' 1e-4 of their sums of |w * x| carried through the product, plus 1e-5
// relative.
::testing::AssertionResult SiluProduct(float got, const EmulationWeight& gate_w,
                                       const EmulationWeight& up_w, int64_t row, int64_t k,
                                       const float* x, float gate_bias, float up_bias) {
  auto [g, g_size] = gate_w.Dot(row, k, x);
  auto [v, v_size] = up_w.Dot(row, k, x);
  g += gate_bias, v += up_bias;
  const double silu = g / (1.0 + std::exp(-g)), want = silu * v;
  // silu's slope is at most 1.1: an error e in g moves the product by up to 1.1 e |v|.
  const double tol = 1e-4 * (1.1 * g_size * std::fabs(v) + v_size * std::fabs(silu)) +
                     1e-5 * std::fabs(want) + 1e-6;
  if (std::fabs(got - want) <= tol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << got << " against " << want << " (tolerance " << tol
                                       << "; gate " << g << ", up " << v << ")";
}

// y [t, n] of a weight against x, + bias, within 1e-4 of each row's sum of |w * x|.
void ExpectProducts(const std::vector<float>& y, const EmulationWeight& w, int64_t t, int64_t n,
                    int64_t k, const std::vector<float>& x, const std::vector<float>& bias,
                    const std::string& what) {
  for (int64_t r = 0; r < t; ++r) {
    for (int64_t row = 0; row < n; ++row) {
      auto [want, size] = w.Dot(row, k, x.data() + r * k);
      if (!bias.empty()) want += bias[row];
      ASSERT_NEAR(y[r * n + row], want, 1e-4 * size + 1e-6)
          << what << ": activation row " << r << " weight row " << row;
    }
  }
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
  const auto before = WrittenOnWait(x, x_in, {&gate});
  const GemvBatch b =
      SiluPairsBatch(gate_w, up_w, n, gate.data(), up.data(), biases ? gate_bias.data() : nullptr,
                     biases ? up_bias.data() : nullptr);
  const int slots_per_block = kGemvWarps / kSplit;
  const unsigned blocks = static_cast<unsigned>((2 * n + slots_per_block - 1) / slots_per_block);
  cuda_emulation::RunBlocks(blocks, kGemvWarps * kWarp, [&] {
    GemvKernel<D, 1, kSplit, GemvEnd::kSiluPairs>(x_in.data(), k, b);
  });
  for (int64_t r = 0; r < n; ++r) {
    ASSERT_TRUE(SiluProduct(gate[r], gate_w, up_w, r, k, x.data(), gate_bias[r], up_bias[r]))
        << "row " << r;
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
  std::vector<float> x(static_cast<size_t>(t * k)), bias(n1);
  for (float& v : x) v = u(rng) * 2.0f;
  for (float& v : bias) v = u(rng);
  std::vector<float> rounded = x;
  RoundToBf16(rounded);
  std::vector<float> y0(static_cast<size_t>(t * n0), NAN), y1(static_cast<size_t>(t * n1), NAN);
  std::vector<float> x_in(x.size(), NAN);
  const auto before = WrittenOnWait(x, x_in, {&y0, &y1});
  GemvBatch b{};
  b.count = 2;
  b.segments[0] = Segment(w0, n0, y0.data());
  b.segments[1] = Segment(w1, n1, y1.data(), bias.data());
  b.first_row[1] = n0, b.first_row[2] = n0 + n1;
  const unsigned blocks = static_cast<unsigned>((n0 + n1 + 15) / 16);
  cuda_emulation::RunBlocks(blocks, kMmaWarps * kWarp,
                            [&] { GemvMmaKernel<false>(x_in.data(), t, k, b); });
  ExpectProducts(y0, w0, t, n0, k, rounded, {}, "segment 0");
  ExpectProducts(y1, w1, t, n1, k, rounded, bias, "segment 1");
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
  std::vector<float> x(static_cast<size_t>(t * k)), gate_bias(n), up_bias(n);
  for (float& v : x) v = u(rng) * 2.0f;
  for (float& v : gate_bias) v = biases ? u(rng) * 3.0f : 0.0f;
  for (float& v : up_bias) v = biases ? u(rng) : 0.0f;
  std::vector<float> rounded = x;
  RoundToBf16(rounded);
  std::vector<float> gate(static_cast<size_t>(t * n), NAN), up(gate.size(), NAN);
  std::vector<float> x_in(x.size(), NAN);
  const auto before = WrittenOnWait(x, x_in, {&gate});
  GemvBatch b =
      SiluPairsBatch(gate_w, up_w, n, gate.data(), up.data(), biases ? gate_bias.data() : nullptr,
                     biases ? up_bias.data() : nullptr);
  b.round_activations = true;
  const unsigned blocks = static_cast<unsigned>((n + 7) / 8);
  cuda_emulation::RunBlocks(blocks, kMmaWarps * kWarp,
                            [&] { GemvMmaKernel<true>(x_in.data(), t, k, b); });
  for (int64_t r = 0; r < t; ++r) {
    for (int64_t row = 0; row < n; ++row) {
      ASSERT_TRUE(SiluProduct(gate[r * n + row], gate_w, up_w, row, k, rounded.data() + r * k,
                              gate_bias[row], up_bias[row]))
          << "activation row " << r << " row " << row;
      ASSERT_TRUE(std::isnan(up[r * n + row])) << "up's y written at row " << row;
    }
  }
}

// The default decode GEMV (GemvKernel, kStore): R activation rows against three segments
// of n0, n1, n2 rows (q, k and v as one launch; the second with an f32 bias, the third with
// a bf16 one), kSplit warps a weight row, as a dependent launch.
template <DType D, int R, int kSplit>
void CheckGemv(int64_t n0, int64_t n1, int64_t n2, int64_t k) {
  SCOPED_TRACE(std::string(DTypeName(D)) + " rows " + std::to_string(R) + " split " +
               std::to_string(kSplit) + " k " + std::to_string(k));
  std::mt19937 rng(53);
  const int64_t ns[3] = {n0, n1, n2};
  std::vector<EmulationWeight> w;
  for (int64_t n : ns) w.emplace_back(D, n, k, rng);
  const std::vector<float> x = Uniform(R * k, 2.0f, rng);
  std::vector<float> bias1 = Uniform(n1, 2.0f, rng), bias2 = Uniform(n2, 2.0f, rng);
  const std::vector<uint16_t> bias2_bits = RoundToBf16(bias2);
  std::vector<std::vector<float>> y;
  for (int64_t n : ns) y.emplace_back(static_cast<size_t>(R * n), NAN);
  std::vector<float> x_in(x.size(), NAN);
  const auto before = WrittenOnWait(x, x_in, {&y[0], &y[1], &y[2]});
  GemvBatch b{};
  b.count = 3;
  b.segments[0] = Segment(w[0], n0, y[0].data());
  b.segments[1] = Segment(w[1], n1, y[1].data(), bias1.data());
  b.segments[2] = Segment(w[2], n2, y[2].data());
  b.segments[2].bias = bias2_bits.data(), b.segments[2].bias_dtype = DType::kBF16;
  b.first_row[1] = n0, b.first_row[2] = n0 + n1, b.first_row[3] = n0 + n1 + n2;
  const int rows_per_block = kGemvWarps / kSplit;
  const auto blocks = static_cast<unsigned>((n0 + n1 + n2 + rows_per_block - 1) / rows_per_block);
  cuda_emulation::RunBlocks(blocks, kGemvWarps * kWarp,
                            [&] { GemvKernel<D, R, kSplit>(x_in.data(), k, b); });
  ExpectProducts(y[0], w[0], R, n0, k, x, {}, "segment 0");
  ExpectProducts(y[1], w[1], R, n1, k, x, bias1, "segment 1");
  ExpectProducts(y[2], w[2], R, n2, k, x, bias2, "segment 2");
}

// The scalar fallback (GemvScalarKernel: any k), two segments, the second with a bias.
template <DType D, int R>
void CheckScalarGemv(int64_t n0, int64_t n1, int64_t k) {
  SCOPED_TRACE(std::string(DTypeName(D)) + " scalar rows " + std::to_string(R) + " k " +
               std::to_string(k));
  std::mt19937 rng(59);
  const EmulationWeight w0(D, n0, k, rng), w1(D, n1, k, rng);
  const std::vector<float> x = Uniform(R * k, 2.0f, rng), bias = Uniform(n1, 2.0f, rng);
  std::vector<float> y0(static_cast<size_t>(R * n0), NAN), y1(static_cast<size_t>(R * n1), NAN);
  GemvBatch b{};
  b.count = 2;
  b.segments[0] = Segment(w0, n0, y0.data());
  b.segments[1] = Segment(w1, n1, y1.data(), bias.data());
  b.first_row[1] = n0, b.first_row[2] = n0 + n1;
  cuda_emulation::RunBlocks(static_cast<unsigned>((n0 + n1 + kGemvWarps - 1) / kGemvWarps),
                            kGemvWarps * kWarp, [&] { GemvScalarKernel<D, R>(x.data(), k, b); });
  ExpectProducts(y0, w0, R, n0, k, x, {}, "segment 0");
  ExpectProducts(y1, w1, R, n1, k, x, bias, "segment 1");
}

// The tiled f32 prompt GEMM of non-bf16 weights (GemmKernel): t x n outputs in 64 x 64
// tiles, k in steps of 16, none of them whole; a bf16 bias.
template <DType D>
void CheckGemm(int64_t t, int64_t n, int64_t k) {
  SCOPED_TRACE(std::string(DTypeName(D)) + " GEMM t " + std::to_string(t) + " n " +
               std::to_string(n) + " k " + std::to_string(k));
  std::mt19937 rng(61);
  const EmulationWeight w(D, n, k, rng);
  const std::vector<float> x = Uniform(t * k, 2.0f, rng);
  std::vector<float> bias = Uniform(n, 2.0f, rng);
  const std::vector<uint16_t> bias_bits = RoundToBf16(bias);
  std::vector<float> y(static_cast<size_t>(t * n), NAN);
  cuda_emulation::RunBlocks(
      static_cast<unsigned>((n + kTile - 1) / kTile), 256,
      [&] {
        GemmKernel<D>(x.data(), t, k, w.w.data(), w.scale_inv(), w.scale_cols, bias_bits.data(),
                      DType::kBF16, n, y.data());
      },
      static_cast<unsigned>((t + kTile - 1) / kTile));
  ExpectProducts(y, w, t, n, k, x, bias, "GEMM");
}

// MLA's per-head products (HeadMatMulKernel): y[t, h, :] = x[t, h, :] . W[h]^T (out_in) or
// x[t, h, :] . W[h], with x's and y's rows padded (strides wider than the heads).
template <DType D>
void CheckHeadMatMul(bool out_in) {
  SCOPED_TRACE(std::string(DTypeName(D)) + (out_in ? " W[h] [n, k]" : " W[h] [k, n]"));
  const int64_t t = 2, heads = 3, k = 40, n = 24;
  std::mt19937 rng(67);
  const EmulationWeight w(D, heads * n, k, rng);  // out_in: W[h] is rows h * n ..; else [k, n]
  const std::vector<float> x = Uniform(t * (heads * k + 4), 2.0f, rng);
  std::vector<float> y(static_cast<size_t>(t * (heads * n + 8)), NAN);
  HeadMatMulArgs a{};
  a.x = x.data(), a.x_stride_t = heads * k + 4, a.x_stride_h = k;
  a.w = w.w.data(), a.w_dtype = D, a.w_stride_h = n * k, a.w_stride_row = out_in ? k : n;
  a.out_in = out_in;
  a.y = y.data(), a.y_stride_t = heads * n + 8, a.y_stride_h = n;
  a.t = t, a.heads = heads, a.k = k, a.n = n;
  cuda_emulation::RunBlocks(static_cast<unsigned>((t * heads * n + 7) / 8), 256,
                            [&] { HeadMatMulKernel<D>(a); });
  for (int64_t r = 0; r < t; ++r) {
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t j = 0; j < n; ++j) {
        double want = 0, size = 0;
        for (int64_t i = 0; i < k; ++i) {
          const double wv = w.dense[h * n * k + (out_in ? j * k + i : i * n + j)];
          want += wv * x[r * a.x_stride_t + h * k + i];
          size += std::fabs(wv * x[r * a.x_stride_t + h * k + i]);
        }
        ASSERT_NEAR(y[r * a.y_stride_t + h * n + j], want, 1e-4 * size + 1e-6)
            << "row " << r << " head " << h << " output " << j;
      }
    }
    for (int64_t j = heads * n; j < a.y_stride_t; ++j)
      ASSERT_TRUE(std::isnan(y[r * a.y_stride_t + j])) << "y's padding written";
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

TEST(GemvKernelEmulationTest, DecodeGemvEveryDTypeRowsAndSplit) {
  CheckGemv<DType::kBF16, 1, 4>(40, 8, 8, 512);   // q, k, v of a small model
  CheckGemv<DType::kBF16, 1, 1>(20, 9, 3, 4096);  // two steps of 8 chunks a lane
  CheckGemv<DType::kF32, 3, 2>(16, 5, 7, 256);
  CheckGemv<DType::kF16, 8, 8>(9, 9, 9, 512);
  CheckGemv<DType::kF8E4M3, 1, 4>(200, 60, 8, 1024);  // rows across fp8 scale blocks
  CheckGemv<DType::kF8E4M3, 5, 1>(130, 4, 4, 384);
}

TEST(GemvKernelEmulationTest, ScalarGemvAnyWidth) {
  CheckScalarGemv<DType::kF32, 2>(13, 6, 37);
  CheckScalarGemv<DType::kF8E4M3, 1>(150, 20, 300);
  CheckScalarGemv<DType::kBF16, 8>(9, 3, 61);
}

TEST(GemvKernelEmulationTest, TiledPromptGemm) {
  CheckGemm<DType::kF32>(70, 130, 300);
  CheckGemm<DType::kF16>(5, 64, 40);
  CheckGemm<DType::kF8E4M3>(70, 200, 272);
}

TEST(GemvKernelEmulationTest, HeadMatMulBothLayouts) {
  CheckHeadMatMul<DType::kBF16>(true);
  CheckHeadMatMul<DType::kBF16>(false);
  CheckHeadMatMul<DType::kF32>(true);
}

// SplitBf16Kernel: hi = bf16(x), lo = bf16(x - hi) (round to nearest even, the host's
// bits), or hi only; SplitColumnsKernel and AddBiasKernel: a stacked GEMM's columns into
// its segments with their biases, and a bias added in place.
TEST(GemvKernelEmulationTest, KernelsAroundTheBlasGemm) {
  std::mt19937 rng(71);
  std::vector<float> x = Uniform(1000, 2.0f, rng);
  x[0] = 1e30f, x[1] = -3e-38f, x[2] = 0.0f, x[3] = 1.0f + 1.0f / 256;  // a tie
  std::vector<uint16_t> hi(x.size()), lo(x.size()), want_hi(x.size()), want_lo(x.size());
  ConvertFromF32(DType::kBF16, x.data(), want_hi.data(), x.size());
  std::vector<float> rest(x.size());
  ConvertToF32(DType::kBF16, want_hi.data(), rest.data(), x.size());
  for (size_t i = 0; i < x.size(); ++i) rest[i] = x[i] - rest[i];
  ConvertFromF32(DType::kBF16, rest.data(), want_lo.data(), x.size());
  for (bool with_lo : {true, false}) {
    std::fill(lo.begin(), lo.end(), 0x7fc1);
    cuda_emulation::RunBlocks(4, 256, [&] {
      SplitBf16Kernel(x.data(), 1000, reinterpret_cast<__nv_bfloat16*>(hi.data()),
                      with_lo ? reinterpret_cast<__nv_bfloat16*>(lo.data()) : nullptr);
    });
    EXPECT_EQ(hi, want_hi);
    if (with_lo) EXPECT_EQ(lo, want_lo);
    if (!with_lo) EXPECT_EQ(lo, std::vector<uint16_t>(x.size(), 0x7fc1));
  }

  const int64_t t = 3, n0 = 5, n1 = 300;
  const std::vector<float> all = Uniform(t * (n0 + n1), 2.0f, rng), bias = Uniform(n1, 2.0f, rng);
  std::vector<float> y0(static_cast<size_t>(t * n0), NAN), y1(static_cast<size_t>(t * n1), NAN);
  GemvBatch b{};
  b.count = 2;
  b.segments[0] = GemvSegment{nullptr, nullptr, 0, nullptr, DType::kF32, n0, y0.data()};
  b.segments[1] = GemvSegment{nullptr, nullptr, 0, bias.data(), DType::kF32, n1, y1.data()};
  b.first_row[1] = n0, b.first_row[2] = n0 + n1;
  cuda_emulation::RunBlocks(4, 256, [&] { SplitColumnsKernel(all.data(), t, b); });
  for (int64_t r = 0; r < t; ++r) {
    for (int64_t c = 0; c < n0; ++c) ASSERT_EQ(y0[r * n0 + c], all[r * (n0 + n1) + c]);
    for (int64_t c = 0; c < n1; ++c)
      ASSERT_EQ(y1[r * n1 + c], all[r * (n0 + n1) + n0 + c] + bias[c]) << r << ", " << c;
  }
  std::vector<float> y = y1;
  cuda_emulation::RunBlocks(4, 256,
                            [&] { AddBiasKernel(y.data(), t, n1, bias.data(), DType::kF32); });
  for (int64_t i = 0; i < t * n1; ++i) ASSERT_EQ(y[i], y1[i] + bias[i % n1]) << i;
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
