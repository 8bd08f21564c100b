// The cuda backend's decode GEMV with GemvNorm's epilogue (lib/backends/cuda/gemv_kernel.cuh,
// experimental: MatMulAddRmsNorm of one row in the GEMV's own launch, the norm taken by the
// block that finishes last), its source run on the host through
// tests/backends/cuda_emulation.h, blocks one after another, against the same steps in f64:
// y = W x, residual += y, normed = RmsNorm(residual) * gain, and the block counter back at
// zero for the next launch. Tolerance: 1e-4 of each row's sum of |w * x| (y, residual) and
// 1e-4 relative (normed).
// clang-format off
#include "tests/backends/cuda_emulation.h"
#include "lib/backends/cuda/kernel_util.cuh"
#include "lib/backends/cuda/gemv_kernel.cuh"
// clang-format on

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "reasonrt/dtype.h"

namespace reasonrt::cuda {
namespace {

template <DType D, int kSplit>
void CheckNormEpilogue(int64_t n, int64_t k) {
  SCOPED_TRACE(std::string(DTypeName(D)) + " split " + std::to_string(kSplit) + " n " +
               std::to_string(n));
  std::mt19937 rng(17);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> values(static_cast<size_t>(n * k)), x(static_cast<size_t>(k)),
      residual(static_cast<size_t>(n)), gain(static_cast<size_t>(n));
  for (float& v : values) v = D == DType::kF8E4M3 ? u(rng) * 200.0f : u(rng);
  for (float& v : x) v = u(rng);
  for (float& v : residual) v = u(rng) * 4.0f;
  for (float& v : gain) v = 1.0f + 0.1f * u(rng);
  std::vector<char> w(values.size() * DTypeSize(D));
  ConvertFromF32(D, values.data(), w.data(), values.size());
  const int64_t scale_cols = Fp8ScaleBlocks(k);
  std::vector<float> scales(static_cast<size_t>(Fp8ScaleBlocks(n) * scale_cols));
  for (float& s : scales) s = 0.001f + 0.01f * std::fabs(u(rng));
  std::vector<float> dense(values.size());
  if (D == DType::kF8E4M3) {
    DequantizeFp8Blocks(reinterpret_cast<const uint8_t*>(w.data()), scales.data(), n, k,
                        dense.data());
  } else {
    ConvertToF32(D, w.data(), dense.data(), dense.size());
  }
  const int rows_per_block = kGemvWarps / kSplit;
  const unsigned blocks = static_cast<unsigned>((n + rows_per_block - 1) / rows_per_block);
  std::vector<float> y(static_cast<size_t>(n), NAN), normed(static_cast<size_t>(n), NAN),
      partial(blocks, NAN);
  std::vector<float> residual_in = residual;
  unsigned counter = 0;
  GemvBatch b{};
  b.count = 1;
  b.segments[0] = GemvSegment{
      w.data(), D == DType::kF8E4M3 ? scales.data() : nullptr, scale_cols, nullptr, DType::kF32, n,
      y.data()};
  b.first_row[1] = n;
  b.norm = GemvNorm{residual.data(), gain.data(),    DType::kF32, 1e-6f,
                    normed.data(),   partial.data(), &counter};
  cuda_emulation::RunBlocks(blocks, kGemvWarps * kWarp,
                            [&] { GemvKernel<D, 1, kSplit, true>(x.data(), k, b); });

  std::vector<double> sum_after(static_cast<size_t>(n));
  double squares = 0;
  for (int64_t r = 0; r < n; ++r) {
    double want = 0, size = 0;
    for (int64_t i = 0; i < k; ++i) {
      want += double(dense[r * k + i]) * x[i];
      size += std::fabs(double(dense[r * k + i]) * x[i]);
    }
    ASSERT_NEAR(y[r], want, 1e-4 * size + 1e-6) << "y row " << r;
    sum_after[r] = residual_in[r] + want;
    ASSERT_NEAR(residual[r], sum_after[r], 1e-4 * size + 1e-6) << "residual row " << r;
    squares += sum_after[r] * sum_after[r];
  }
  const double inv = 1.0 / std::sqrt(squares / double(n) + 1e-6);
  for (int64_t r = 0; r < n; ++r) {
    const double want = sum_after[r] * inv * gain[r];
    ASSERT_NEAR(normed[r], want, 1e-4 * std::fabs(want) + 1e-5) << "normed row " << r;
  }
  EXPECT_EQ(counter, 0u);  // ready for the next launch
}

TEST(GemvKernelEmulationTest, NormEpilogueEveryBlockAndSplit) {
  CheckNormEpilogue<DType::kBF16, 1>(300, 1024);  // 300: a last block with idle warps
  CheckNormEpilogue<DType::kBF16, 4>(300, 1024);
  CheckNormEpilogue<DType::kF8E4M3, 4>(260, 1024);
  CheckNormEpilogue<DType::kF32, 2>(64, 512);
}

}  // namespace
}  // namespace reasonrt::cuda
