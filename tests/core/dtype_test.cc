// DType conversions, checked over every bf16, f16 and fp8 code.
#include "reasonrt/dtype.h"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace reasonrt {
namespace {

bool IsNanBits(float f) { return std::isnan(f); }

// For a narrow format given by its decode function and its finite positive codes in
// increasing order, checks: decode->encode is the identity; values between neighbours
// round to the nearer one and exact midpoints to the one with the even code.
template <typename Code, typename Decode, typename Encode>
void CheckRoundToNearestEven(const std::vector<Code>& ascending, Decode decode, Encode encode) {
  for (Code c : ascending) {
    ASSERT_EQ(encode(decode(c)), c) << "code " << int(c);
    const Code neg = static_cast<Code>(c | (Code(1) << (sizeof(Code) * 8 - 1)));
    ASSERT_EQ(encode(-decode(c)), neg) << "code " << int(c);
  }
  for (size_t i = 0; i + 1 < ascending.size(); ++i) {
    const Code lo = ascending[i], hi = ascending[i + 1];
    const double a = decode(lo), b = decode(hi);
    const float mid = static_cast<float>((a + b) / 2);
    ASSERT_EQ(static_cast<double>(mid), (a + b) / 2) << "midpoint not exact in f32";
    const Code even = (lo & 1) == 0 ? lo : hi;
    ASSERT_EQ(encode(mid), even) << "midpoint of codes " << int(lo) << " and " << int(hi);
    ASSERT_EQ(encode(std::nextafter(mid, 0.0f)), lo) << "just below midpoint " << int(lo);
    ASSERT_EQ(encode(std::nextafter(mid, std::numeric_limits<float>::infinity())), hi) << "just above midpoint " << int(lo);
  }
}

TEST(DTypeTest, Bf16EveryCode) {
  std::vector<uint16_t> finite;
  for (uint32_t c = 0; c < 0x7f80; ++c) finite.push_back(static_cast<uint16_t>(c));
  // bf16 -> f32 is a shift: check that directly for every code, NaN and inf included.
  for (uint32_t c = 0; c < 0x10000; ++c) {
    ASSERT_EQ(F32Bits(Bf16ToF32(static_cast<uint16_t>(c))), c << 16);
  }
  CheckRoundToNearestEven(finite, Bf16ToF32, F32ToBf16);
  EXPECT_EQ(F32ToBf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(F32ToBf16(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_TRUE(IsNanBits(Bf16ToF32(F32ToBf16(std::numeric_limits<float>::quiet_NaN()))));
  // A NaN whose payload sits only in the low bits must not become infinity.
  EXPECT_TRUE(IsNanBits(Bf16ToF32(F32ToBf16(F32FromBits(0x7f800001u)))));
  // Rounding up past the largest finite bf16 gives infinity.
  EXPECT_EQ(F32ToBf16(std::numeric_limits<float>::max()), 0x7f80);
}

TEST(DTypeTest, F16EveryCode) {
  std::vector<uint16_t> finite;
  for (uint32_t c = 0; c < 0x7c00; ++c) finite.push_back(static_cast<uint16_t>(c));
  CheckRoundToNearestEven(finite, F16ToF32, F32ToF16);
  EXPECT_EQ(F16ToF32(0x3c00), 1.0f);
  EXPECT_EQ(F16ToF32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(F16ToF32(0x7bff), 65504.0f);
  EXPECT_EQ(F32ToF16(65519.99f), 0x7bff);
  EXPECT_EQ(F32ToF16(65520.0f), 0x7c00);  // the midpoint to "65536" rounds to infinity
  EXPECT_EQ(F32ToF16(-1e9f), 0xfc00);
  EXPECT_TRUE(std::isinf(F16ToF32(0x7c00)));
  EXPECT_TRUE(IsNanBits(F16ToF32(0x7e00)));
  EXPECT_TRUE(IsNanBits(F16ToF32(F32ToF16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and the smallest: even
  EXPECT_EQ(F32ToF16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
}

#if defined(__FLT16_MAX__)
// The compiler's own _Float16 conversion is an independent oracle for f32 -> f16.
TEST(DTypeTest, F16MatchesCompilerConversion) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 2'000'000; ++i) {
    const float f = F32FromBits(bits(rng));
    if (std::isnan(f)) continue;
    const _Float16 h = static_cast<_Float16>(f);
    uint16_t expect;
    std::memcpy(&expect, &h, 2);
    ASSERT_EQ(F32ToF16(f), expect) << "f32 bits " << std::hex << F32Bits(f);
  }
  for (uint32_t c = 0; c < 0x10000; ++c) {
    _Float16 h;
    const uint16_t code = static_cast<uint16_t>(c);
    std::memcpy(&h, &code, 2);
    const float mine = F16ToF32(code), theirs = static_cast<float>(h);
    if (std::isnan(theirs)) {
      ASSERT_TRUE(std::isnan(mine));
    } else {
      ASSERT_EQ(F32Bits(mine), F32Bits(theirs)) << "code " << c;
    }
  }
}
#endif

TEST(DTypeTest, Fp8E4M3EveryCode) {
  // Decoding from the definition: sign, 4-bit exponent with bias 7, 3-bit mantissa.
  for (int c = 0; c < 256; ++c) {
    const int sign = c >> 7, exp = (c >> 3) & 15, man = c & 7;
    const float got = Fp8E4M3ToF32(static_cast<uint8_t>(c));
    if (exp == 15 && man == 7) {
      EXPECT_TRUE(std::isnan(got)) << c;
      continue;
    }
    const double mag = exp == 0 ? man * std::ldexp(1.0, -9) : (1 + man / 8.0) * std::ldexp(1.0, exp - 7);
    EXPECT_EQ(got, sign ? -mag : mag) << "code " << c;
  }
  std::vector<uint8_t> finite;
  for (int c = 0; c < 0x7f; ++c) finite.push_back(static_cast<uint8_t>(c));
  CheckRoundToNearestEven(finite, Fp8E4M3ToF32, F32ToFp8E4M3);
  EXPECT_EQ(Fp8E4M3ToF32(0x7e), 448.0f);
  EXPECT_EQ(F32ToFp8E4M3(464.0f), 0x7e);  // tie between 448 and 480 goes to the even 448
  EXPECT_EQ(F32ToFp8E4M3(465.0f), 0x7f);  // past it there is nothing finite: NaN, as torch
  EXPECT_EQ(F32ToFp8E4M3(-1e6f), 0xff);
  EXPECT_EQ(F32ToFp8E4M3(std::numeric_limits<float>::infinity()), 0x7f);
  EXPECT_EQ(F32ToFp8E4M3Saturate(1e6f), 0x7e);
  EXPECT_EQ(F32ToFp8E4M3Saturate(-std::numeric_limits<float>::infinity()), 0xfe);
  EXPECT_EQ(F32ToFp8E4M3Saturate(std::numeric_limits<float>::quiet_NaN()), 0x7f);
  EXPECT_EQ(F32ToFp8E4M3(std::ldexp(1.0f, -10)), 0x00);  // half the smallest subnormal: tie to 0
  EXPECT_EQ(F32ToFp8E4M3(std::ldexp(1.0f, -9)), 0x01);
}

TEST(DTypeTest, ArrayConversionsMatchScalar) {
  std::vector<float> src = {0.0f, -1.5f, 3.14159f, 1e-7f, 448.0f, -65504.0f, 100.25f};
  for (DType d : {DType::kF32, DType::kF16, DType::kBF16, DType::kF8E4M3}) {
    std::vector<uint8_t> packed(src.size() * DTypeSize(d));
    std::vector<float> back(src.size());
    ConvertFromF32(d, src.data(), packed.data(), src.size());
    ConvertToF32(d, packed.data(), back.data(), src.size());
    for (size_t i = 0; i < src.size(); ++i) {
      float expect = src[i];
      if (d == DType::kF16) expect = F16ToF32(F32ToF16(src[i]));
      if (d == DType::kBF16) expect = Bf16ToF32(F32ToBf16(src[i]));
      if (d == DType::kF8E4M3) expect = Fp8E4M3ToF32(F32ToFp8E4M3(src[i]));
      if (std::isnan(expect)) {
        EXPECT_TRUE(std::isnan(back[i]));
      } else {
        EXPECT_EQ(back[i], expect) << DTypeName(d) << " " << i;
      }
    }
  }
}

// An empty array may be null (an empty std::vector's data()): nothing is read or written
// (the UndefinedBehaviorSanitizer build fails a memcpy from null).
TEST(DTypeTest, EmptyArrayConversionsTouchNothing) {
  for (DType d : {DType::kF32, DType::kF16, DType::kBF16, DType::kF8E4M3}) {
    ConvertFromF32(d, nullptr, nullptr, 0);
    ConvertToF32(d, nullptr, nullptr, 0);
  }
}

TEST(DTypeTest, Fp8BlockQuantizationRoundTrip) {
  // A 200 x 300 weight: partial blocks on both edges, one block all zero.
  const int64_t rows = 200, cols = 300;
  std::vector<float> w(rows * cols);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const bool zero_block = r < 128 && c >= 128 && c < 256;
      w[r * cols + c] = zero_block ? 0.0f : normal(rng) * (1.0f + r / 50.0f);
    }
  }
  std::vector<uint8_t> q(rows * cols);
  std::vector<float> scales(Fp8ScaleBlocks(rows) * Fp8ScaleBlocks(cols));
  ASSERT_EQ(scales.size(), 2u * 3u);
  QuantizeFp8Blocks(w.data(), rows, cols, q.data(), scales.data());
  EXPECT_EQ(scales[1], 1.0f);  // the all-zero block
  std::vector<float> back(rows * cols);
  DequantizeFp8Blocks(q.data(), scales.data(), rows, cols, back.data());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const float scale = scales[(r / 128) * 3 + c / 128];
      // e4m3 keeps 3 mantissa bits: relative error <= 2^-4 for normals, plus the
      // subnormal spacing (2^-9 of the scale) near zero.
      const float tol = std::fabs(w[r * cols + c]) / 16.0f + scale * std::ldexp(1.0f, -10);
      ASSERT_NEAR(back[r * cols + c], w[r * cols + c], tol) << r << "," << c;
    }
  }
  // The largest magnitude of each block maps to +-448 exactly.
  float amax = 0;
  for (int64_t r = 128; r < 200; ++r) {
    for (int64_t c = 256; c < 300; ++c) amax = std::max(amax, std::fabs(w[r * cols + c]));
  }
  EXPECT_FLOAT_EQ(scales[5], amax / 448.0f);
}

TEST(DTypeTest, NamesAndParsing) {
  EXPECT_EQ(DTypeSize(DType::kBF16), 2u);
  EXPECT_EQ(DTypeSize(DType::kF8E4M3), 1u);
  EXPECT_EQ(DTypeSize(DType::kI64), 8u);
  EXPECT_EQ(*ParseSafetensorsDType("F8_E4M3"), DType::kF8E4M3);
  EXPECT_EQ(*ParseSafetensorsDType("BF16"), DType::kBF16);
  EXPECT_FALSE(ParseSafetensorsDType("F8_E5M2").ok());
  EXPECT_FALSE(ParseSafetensorsDType("bf16").ok());  // the header names are upper-case
  EXPECT_EQ(*ParseDTypeName("bfloat16"), DType::kBF16);
  EXPECT_EQ(*ParseDTypeName("fp8"), DType::kF8E4M3);
  EXPECT_EQ(*ParseDTypeName("F32"), DType::kF32);
  EXPECT_FALSE(ParseDTypeName("q4_k").ok());
  for (int i = 0; i < kNumDTypes; ++i) {
    const DType d = static_cast<DType>(i);
    EXPECT_EQ(*ParseSafetensorsDType(SafetensorsDTypeName(d)), d);
    EXPECT_EQ(*ParseDTypeName(DTypeName(d)), d);
  }
}

}  // namespace
}  // namespace reasonrt
