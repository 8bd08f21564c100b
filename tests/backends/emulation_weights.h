// tests/backends/emulation_weights.h: the weights and values the cuda kernels' emulation
// tests feed their kernels, with the values those kernels should compute with.
#ifndef REASONRT_TESTS_BACKENDS_EMULATION_WEIGHTS_H_
#define REASONRT_TESTS_BACKENDS_EMULATION_WEIGHTS_H_

#include <cmath>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "reasonrt/dtype.h"

namespace reasonrt::cuda::testing {

// n values drawn uniformly from [-scale, scale].
inline std::vector<float> Uniform(int64_t n, float scale, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = u(rng);
  return v;
}

// v rounded to bf16 in place (to nearest even, as the host rounds); its bits.
inline std::vector<uint16_t> RoundToBf16(std::vector<float>& v) {
  std::vector<uint16_t> bits(v.size());
  ConvertFromF32(DType::kBF16, v.data(), bits.data(), v.size());
  ConvertToF32(DType::kBF16, bits.data(), v.data(), v.size());
  return bits;
}

// A weight [n, k] of `dtype` with random values (fp8: with random 128x128 block scales,
// rows n a whole number of blocks or not) and the f32 values a kernel computes with.
struct EmulationWeight {
  DType dtype;
  std::vector<char> w;
  std::vector<float> scales, dense;
  int64_t scale_cols = 0;

  EmulationWeight(DType d, int64_t n, int64_t k, std::mt19937& rng)
      : dtype(d), dense(static_cast<size_t>(n * k)), scale_cols(Fp8ScaleBlocks(k)) {
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> values(static_cast<size_t>(n * k));
    for (float& v : values) v = dtype == DType::kF8E4M3 ? u(rng) * 200.0f : u(rng);
    w.resize(values.size() * DTypeSize(dtype));
    ConvertFromF32(dtype, values.data(), w.data(), values.size());
    scales.resize(static_cast<size_t>(Fp8ScaleBlocks(n) * scale_cols));
    for (float& s : scales) s = 0.001f + 0.01f * std::fabs(u(rng));
    if (dtype == DType::kF8E4M3) {
      DequantizeFp8Blocks(reinterpret_cast<const uint8_t*>(w.data()), scales.data(), n, k,
                          dense.data());
    } else {
      ConvertToF32(dtype, w.data(), dense.data(), dense.size());
    }
  }
  // The block scales a kernel reads: fp8's, else none.
  const float* scale_inv() const { return dtype == DType::kF8E4M3 ? scales.data() : nullptr; }
  // Row r times x[0, k) in f64, and the sum of |w * x| (the size of its rounding).
  std::pair<double, double> Dot(int64_t r, int64_t k, const float* x) const {
    double dot = 0, size = 0;
    for (int64_t i = 0; i < k; ++i) {
      dot += double(dense[r * k + i]) * x[i];
      size += std::fabs(double(dense[r * k + i]) * x[i]);
    }
    return {dot, size};
  }
};

}  // namespace reasonrt::cuda::testing

#endif  // REASONRT_TESTS_BACKENDS_EMULATION_WEIGHTS_H_
