// The CPU decode GEMV kernels called directly (the conformance suite reaches them through
// the backend): every row count, K with and without a tail past the last vector, weight
// ranges split the way the thread pool splits them, and inputs not prepared for bf16.
#include "lib/backends/cpu/gemv_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "lib/backends/cpu/gemv_bf16_dot.h"
#include "reasonrt/dtype.h"

namespace reasonrt {
namespace {

struct Case {
  std::vector<uint16_t> w;  // [n, k] bf16
  std::vector<float> x;     // [rows, k]
  int64_t rows, n, k;
};

Case Make(int64_t rows, int64_t n, int64_t k, uint32_t seed) {
  Case c{std::vector<uint16_t>(n * k), std::vector<float>(rows * k), rows, n, k};
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> wf(n * k);
  for (float& v : wf) v = u(rng);
  ConvertFromF32(DType::kBF16, wf.data(), c.w.data(), wf.size());
  for (float& v : c.x) v = u(rng);
  return c;
}

std::vector<float> MultiplyBf16(const Case& c, bool prepare, const std::vector<int64_t>& cuts) {
  cpu::GemvInput input;
  cpu::PrepareGemvInput(c.x.data(), c.rows, c.k, prepare, &input);
  std::vector<float> y(c.rows * c.n, std::nanf(""));
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    cpu::Gemv(DType::kBF16, c.w.data(), nullptr, input, cuts[i], cuts[i + 1], y.data(), c.n);
  }
  return y;
}

TEST(GemvKernelsTest, Bf16EveryRowCountMatchesADoubleReference) {
  for (int64_t rows = 1; rows <= cpu::kGemvRows; ++rows) {
    // 7: no whole vector; 200 and 4600: several K blocks of the batched kernel; 1003: a tail.
    for (int64_t k : {7, 200, 1003, 4600}) {
      // Tiles of 15 weight rows in groups of 3: 16 and 37 end on one row, 17 on two.
      for (int64_t n : {1, 16, 17, 37}) {
        const std::string what = "rows=" + std::to_string(rows) + " n=" + std::to_string(n) +
                                 " k=" + std::to_string(k);
        const Case c = Make(rows, n, k, static_cast<uint32_t>(rows * 7919 + k + n));
        const std::vector<float> y = MultiplyBf16(c, true, {0, n});
        std::vector<float> wf(n * k);
        ConvertToF32(DType::kBF16, c.w.data(), wf.data(), wf.size());
        for (int64_t m = 0; m < rows; ++m) {
          for (int64_t j = 0; j < n; ++j) {
            double exact = 0.0, mag = 0.0;
            for (int64_t i = 0; i < k; ++i) {
              exact += static_cast<double>(c.x[m * k + i]) * wf[j * k + i];
              mag += std::fabs(static_cast<double>(c.x[m * k + i]) * wf[j * k + i]);
            }
            ASSERT_NEAR(y[m * n + j], exact, 1e-6 * mag + 1e-6) << what << " at " << m << "," << j;
          }
        }
      }
    }
  }
}

TEST(GemvKernelsTest, Bf16SplitRangesAndUnpreparedInputsGiveTheSameBits) {
  for (int64_t rows : {1, 3, 4, 5, 8}) {
    const Case c = Make(rows, 61, 1536, static_cast<uint32_t>(rows));
    const std::vector<float> whole = MultiplyBf16(c, true, {0, 61});
    // Ranges that cut the batched kernel's tiles of 15 rows and its groups of 3 anywhere.
    for (const std::vector<int64_t>& cuts :
         std::vector<std::vector<int64_t>>{{0, 1, 61}, {0, 16, 32, 48, 61}, {0, 29, 30, 44, 61}}) {
      EXPECT_EQ(MultiplyBf16(c, true, cuts), whole) << "rows=" << rows << ", " << cuts.size() - 1 << " ranges";
    }
    EXPECT_EQ(MultiplyBf16(c, false, {0, 20, 61}), whole) << "rows=" << rows << ", not prepared for bf16";
  }
}

// The FMA peak loop (the bench's compute roofline) runs every multiply-add it counts: each
// of its 12 chains is a <- a * 0.999 + 0.001, so a_n = 1 + (a_0 - 1) * 0.999^n per lane.
TEST(GemvKernelsTest, MultiplyAddLoopDoesTheWorkItCounts) {
  for (int64_t iterations : {1, 1000}) {
    float sink = 0.0f;
    const int64_t done = cpu::MultiplyAddLoop(iterations, &sink);
    ASSERT_EQ(done % (12 * iterations), 0) << iterations;
    const int64_t lanes = done / (12 * iterations);  // the SIMD width: 1 (scalar) to 16 (AVX-512)
    EXPECT_TRUE(lanes == 1 || lanes == 4 || lanes == 8 || lanes == 16) << lanes;
    double per_lane = 0.0;  // chain i starts at i
    for (int i = 0; i < 12; ++i)
      per_lane += 1.0 + (i - 1.0) * std::pow(0.999, static_cast<double>(iterations));
    EXPECT_NEAR(sink, lanes * per_lane, 1e-4 * lanes * per_lane) << iterations;
  }
}

// The same for the bf16 dot peak loop: each vdpbf16ps adds 1 x 2^-10 twice to every lane.
TEST(GemvKernelsTest, Bf16DotMultiplyAddLoopDoesTheWorkItCounts) {
  if (!cpu::HasBf16DotKernel()) GTEST_SKIP() << "no AVX512-BF16 here";
  for (int64_t iterations : {1, 1000}) {
    float sink = 0.0f;
    EXPECT_EQ(cpu::Bf16DotMultiplyAddLoop(iterations, &sink), iterations * 12 * 32);
    const double per_lane = 66.0 + 12.0 * static_cast<double>(iterations) * std::ldexp(1.0, -9);
    EXPECT_NEAR(sink, 16 * per_lane, 1e-5 * 16 * per_lane) << iterations;
  }
}

// SplitBf16 (the AVX512-BF16 kernel's input; vectorized where that kernel runs): each
// value's hi is F32ToBf16 of it and lo F32ToBf16 of what hi leaves, bit for bit, for rounding
// ties, NaNs, infinities, signed zeros and subnormals too; zeros after k; both parts and every
// row on a 64-byte boundary.
TEST(GemvKernelsTest, SplitBf16RoundsEachValueLikeF32ToBf16) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-3.0f, 3.0f);
  for (int64_t k : {1, 15, 16, 17, 45, 64}) {
    for (bool exact : {false, true}) {
      const int64_t rows = 3;
      std::vector<float> x(rows * k);
      for (float& v : x) v = u(rng);
      const std::vector<float> special = {std::nanf(""),
                                          -std::nanf(""),
                                          INFINITY,
                                          -INFINITY,
                                          0.0f,
                                          -0.0f,
                                          1e-40f,
                                          -3e-39f,
                                          F32FromBits(0x3f808000u),
                                          F32FromBits(0x3f818000u),
                                          F32FromBits(0x3f80ffffu),
                                          3.4e38f};
      for (size_t i = 0; i < special.size() && i < x.size(); ++i)
        x[(i * 7) % x.size()] = special[i];
      cpu::SplitActivations s;
      cpu::SplitBf16(x.data(), rows, k, exact, &s);
      ASSERT_EQ(s.padded_k, (k + 31) / 32 * 32);
      ASSERT_EQ(reinterpret_cast<uintptr_t>(s.hi) % 64, 0u);
      ASSERT_EQ(exact, s.lo != nullptr);
      if (exact) ASSERT_EQ(reinterpret_cast<uintptr_t>(s.lo) % 64, 0u);
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t i = 0; i < s.padded_k; ++i) {
          const std::string at =
              "k=" + std::to_string(k) + " row " + std::to_string(r) + " at " + std::to_string(i);
          if (i >= k) {
            ASSERT_EQ(s.hi[r * s.padded_k + i], 0) << at;
            if (exact) ASSERT_EQ(s.lo[r * s.padded_k + i], 0) << at;
            continue;
          }
          const float v = x[r * k + i];
          const uint16_t hi = F32ToBf16(v);
          ASSERT_EQ(s.hi[r * s.padded_k + i], hi) << at;
          if (exact) ASSERT_EQ(s.lo[r * s.padded_k + i], F32ToBf16(v - Bf16ToF32(hi))) << at;
        }
      }
    }
  }
}

}  // namespace
// GemvFp8Dot converts each weight byte to bf16 in registers: every one of the 254 e4m3
// values that are not NaN (both zeros and the subnormals included) must come out exact. W's row v
// holds byte v 32 times (a tail row, k = 35, takes the masked load too); x is all ones, so y = k *
// value * scale, exact in f32.
TEST(GemvKernelsTest, Fp8DotConvertsEveryByteExactly) {
  if (!cpu::HasBf16DotKernel()) GTEST_SKIP() << "no AVX512-BF16 here";
  for (int64_t k : {32, 35}) {
    const int64_t n = 256;
    std::vector<uint8_t> w(n * k);
    for (int64_t v = 0; v < n; ++v)
      std::fill(w.begin() + v * k, w.begin() + (v + 1) * k, static_cast<uint8_t>(v));
    const std::vector<float> scales = {0.5f, 0.25f};  // rows 0-127, 128-255
    const std::vector<float> x(k, 1.0f);
    for (bool exact : {false, true}) {
      cpu::SplitActivations s;
      cpu::SplitBf16(x.data(), 1, k, exact, &s);
      std::vector<float> y(n, std::nanf(""));
      cpu::GemvFp8Dot(w.data(), scales.data(), s, 0, n, y.data(), n);
      for (int64_t v = 0; v < n; ++v) {
        if ((v & 0x7f) == 0x7f) continue;  // NaN
        const float want =
            static_cast<float>(k) * Fp8E4M3ToF32(static_cast<uint8_t>(v)) * scales[v / 128];
        ASSERT_EQ(y[v], want) << "byte " << v << " k=" << k << " exact=" << exact;
      }
    }
  }
}

// Every row count the backend gives it (1..32), K with tails inside and past the last
// 128-wide block, N across row blocks (each with its own scales), ranges cut anywhere:
// against a double reference, within 1e-5 (x split hi + lo) or 2^-8 (x rounded to bf16)
// of sum |x * w * scale|.
TEST(GemvKernelsTest, Fp8DotMatchesADoubleReference) {
  if (!cpu::HasBf16DotKernel()) GTEST_SKIP() << "no AVX512-BF16 here";
  for (int64_t rows : {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 32}) {
    for (int64_t k : {7, 128, 200, 1003}) {
      const int64_t n = rows > 8 ? 37 : 131;
      const std::string what = "rows=" + std::to_string(rows) + " k=" + std::to_string(k);
      std::mt19937 rng(static_cast<uint32_t>(rows * 131 + k));
      std::uniform_real_distribution<float> u(-1.0f, 1.0f), s(0.001f, 0.01f);
      std::uniform_int_distribution<int> byte(0, 255);
      std::vector<uint8_t> w(n * k);
      for (uint8_t& b : w) {
        do b = static_cast<uint8_t>(byte(rng));
        while ((b & 0x7f) == 0x7f);
      }
      const int64_t kb = Fp8ScaleBlocks(k);
      std::vector<float> scales(Fp8ScaleBlocks(n) * kb), x(rows * k);
      for (float& v : scales) v = s(rng);
      for (float& v : x) v = u(rng);
      for (bool exact : {false, true}) {
        cpu::SplitActivations split;
        cpu::SplitBf16(x.data(), rows, k, exact, &split);
        std::vector<float> y(rows * n, std::nanf(""));
        const std::vector<int64_t> cuts = {0, 1, 30, n - 5, n};
        for (size_t c = 0; c + 1 < cuts.size(); ++c)
          cpu::GemvFp8Dot(w.data(), scales.data(), split, cuts[c], cuts[c + 1], y.data(), n);
        for (int64_t m = 0; m < rows; ++m) {
          for (int64_t j = 0; j < n; ++j) {
            double want = 0.0, mag = 0.0;
            for (int64_t i = 0; i < k; ++i) {
              const double p = static_cast<double>(x[m * k + i]) * Fp8E4M3ToF32(w[j * k + i]) *
                               scales[j / kFp8BlockSize * kb + i / kFp8BlockSize];
              want += p;
              mag += std::fabs(p);
            }
            ASSERT_NEAR(y[m * n + j], want, (exact ? 1e-5 : std::ldexp(1.0, -8)) * mag + 1e-7)
                << what << " exact=" << exact << " at " << m << "," << j;
          }
        }
      }
    }
  }
}

}  // namespace reasonrt
