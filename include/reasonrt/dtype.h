// reasonrt/dtype.h: element types and exact conversions to and from f32.
//
// Basic usage:
//
//   uint16_t h = reasonrt::F32ToBf16(1.5f);          // round to nearest even
//   float x = reasonrt::Bf16ToF32(h);                // exact
//   size_t n = reasonrt::DTypeSize(reasonrt::DType::kF8E4M3);   // 1
//   absl::StatusOr<DType> d = reasonrt::ParseSafetensorsDType("BF16");
//
// All conversions here are pure functions, exact where the target can hold the value and
// round-to-nearest-even otherwise, and safe to call from any thread.
//
// FP8 e4m3 is the "fn" variant used by DeepSeek's checkpoints (torch.float8_e4m3fn): 4
// exponent bits (bias 7), 3 mantissa bits, no infinities, 0x7f/0xff are NaN, largest
// finite value 448. DeepSeek ships FP8 weights with one f32 scale per 128x128 block in a
// companion tensor `<name>_scale_inv`: weight[i][j] = fp8[i][j] * scale_inv[i/128][j/128].
#ifndef REASONRT_DTYPE_H_
#define REASONRT_DTYPE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "absl/status/statusor.h"
#include "reasonrt/export.h"

namespace reasonrt {

// Element types. Values are stable (they appear in the C ABI later); new quantized block
// types take new values at the end.
enum class DType : uint8_t {
  kF32 = 0,
  kF16 = 1,
  kBF16 = 2,
  kF8E4M3 = 3,  // e4m3fn; block scales live in a separate f32 tensor
  kI8 = 4,
  kI32 = 5,
  kI64 = 6,
  kU8 = 7,
};

// Number of DType values; a DType converted from an integer must be below this.
inline constexpr int kNumDTypes = 8;

// Side of the square weight blocks that share one FP8 scale in DeepSeek's checkpoints.
inline constexpr int kFp8BlockSize = 128;

// Largest finite e4m3fn value.
inline constexpr float kFp8E4M3Max = 448.0f;

// Bytes per element.
RRT_API size_t DTypeSize(DType dtype);

// Our lower-case name: "f32", "bf16", "f8_e4m3", ...
RRT_API std::string_view DTypeName(DType dtype);

// True for f32, f16, bf16 and f8_e4m3.
RRT_API bool IsFloatingPoint(DType dtype);

// The dtype of a safetensors header string ("F32", "BF16", "F8_E4M3", ...).
// Returns InvalidArgument naming the string for dtypes reasonrt does not handle.
RRT_API absl::StatusOr<DType> ParseSafetensorsDType(std::string_view name);

// The safetensors header string of `dtype`.
RRT_API std::string_view SafetensorsDTypeName(DType dtype);

// Parses our own names ("bf16", "f8_e4m3", also "fp8" and "float32"-style aliases).
RRT_API absl::StatusOr<DType> ParseDTypeName(std::string_view name);

// ---- Scalar conversions (header-inline: they sit in inner loops) ----

inline uint32_t F32Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float F32FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// bf16 -> f32: exact.
inline float Bf16ToF32(uint16_t h) { return F32FromBits(static_cast<uint32_t>(h) << 16); }

// f32 -> bf16: round to nearest even; NaN stays NaN (quiet), infinities stay infinite.
inline uint16_t F32ToBf16(float f) {
  uint32_t u = F32Bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// f16 -> f32: exact, subnormals included.
inline float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) return F32FromBits(sign | 0x7f800000u | (man << 13));  // inf / NaN
  if (exp != 0) return F32FromBits(sign | ((exp + 112u) << 23) | (man << 13));
  // Zero or subnormal: man * 2^-24, exact in f32.
  const float mag = static_cast<float>(man) * 5.9604644775390625e-8f;
  return sign ? -mag : mag;
}

// f32 -> f16: round to nearest even; overflow to infinity, NaN stays NaN.
inline uint16_t F32ToF16(float f) {
  const uint32_t u = F32Bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u | static_cast<uint16_t>((abs >> 13) & 0x3ffu);
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520 rounds to infinity
  if (abs >= 0x38800000u) {                       // normal f16 range (>= 2^-14)
    uint32_t r = abs + 0xfffu + ((abs >> 13) & 1u);
    return sign | static_cast<uint16_t>((r - 0x38000000u) >> 13);
  }
  if (abs < 0x33000000u) return sign;  // below half the smallest subnormal: zero
  // Subnormal: shift the full mantissa into place with round-to-nearest-even.
  const uint32_t exp = abs >> 23;
  const uint32_t man = (abs & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126u - exp;  // 14..24 for this range
  uint32_t half = 1u << (shift - 1);
  uint32_t rest = man & ((1u << shift) - 1u);
  uint32_t q = man >> shift;
  if (rest > half || (rest == half && (q & 1u))) ++q;
  return sign | static_cast<uint16_t>(q);
}

// e4m3fn -> f32: exact. 0x7f and 0xff are NaN.
inline float Fp8E4M3ToF32(uint8_t b) {
  const uint32_t sign = static_cast<uint32_t>(b & 0x80u) << 24;
  const uint32_t exp = (b >> 3) & 0xfu;
  const uint32_t man = b & 0x7u;
  if (exp == 0xf && man == 0x7) return F32FromBits(sign | 0x7fc00000u);
  if (exp != 0) return F32FromBits(sign | ((exp + 120u) << 23) | (man << 20));
  const float mag = static_cast<float>(man) * 0.001953125f;  // man * 2^-9
  return sign ? -mag : mag;
}

// f32 -> e4m3fn: round to nearest even. Like torch's conversion, values whose magnitude
// rounds above 448 (and infinities and NaN) become NaN; use F32ToFp8E4M3Saturate to clamp.
inline uint8_t F32ToFp8E4M3(float f) {
  const uint32_t u = F32Bits(f);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs >= 0x43f00000u) return sign | 0x7fu;  // >= 480 (or inf/NaN): NaN
  if (abs >= 0x3c800000u) {                     // normal range (>= 2^-6)
    uint32_t r = abs + 0x7ffffu + ((abs >> 20) & 1u);
    return sign | static_cast<uint8_t>((r - 0x3c000000u) >> 20);
  }
  if (abs < 0x3a800000u) return sign;  // <= 2^-10 (half the smallest subnormal): zero
  const uint32_t exp = abs >> 23;
  const uint32_t man = (abs & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 141u - exp;  // 21..24 for this range
  uint32_t half = 1u << (shift - 1);
  uint32_t rest = man & ((1u << shift) - 1u);
  uint32_t q = man >> shift;
  if (rest > half || (rest == half && (q & 1u))) ++q;
  return sign | static_cast<uint8_t>(q);
}

// f32 -> e4m3fn, clamping finite values and infinities to +-448; NaN stays NaN.
inline uint8_t F32ToFp8E4M3Saturate(float f) {
  if (f != f) return 0x7f;
  if (f > kFp8E4M3Max) f = kFp8E4M3Max;
  if (f < -kFp8E4M3Max) f = -kFp8E4M3Max;
  return F32ToFp8E4M3(f);
}

// ---- Array conversions ----

// Converts `n` elements of `src` (of type `dtype`, floating point) to f32.
RRT_API void ConvertToF32(DType dtype, const void* src, float* dst, size_t n);

// Converts `n` f32 values to `dtype` (floating point) with round-to-nearest-even.
RRT_API void ConvertFromF32(DType dtype, const float* src, void* dst, size_t n);

// Dequantizes a [rows, cols] e4m3 weight with its [ceil(rows/128), ceil(cols/128)] f32
// `scale_inv` blocks (row-major) into `dst` (row-major f32).
RRT_API void DequantizeFp8Blocks(const uint8_t* weight, const float* scale_inv, int64_t rows,
                                 int64_t cols, float* dst);

// Quantizes a [rows, cols] f32 weight the way DeepSeek's released checkpoints are made:
// per 128x128 block, scale_inv = max|w| / 448 (1 for an all-zero block) and
// fp8 = round(w / scale_inv). Writes rows*cols bytes to `weight` and the block scales
// to `scale_inv`.
RRT_API void QuantizeFp8Blocks(const float* src, int64_t rows, int64_t cols, uint8_t* weight,
                               float* scale_inv);

// Shape of the scale tensor of a [rows, cols] FP8 weight: ceil(rows/128), ceil(cols/128).
inline int64_t Fp8ScaleBlocks(int64_t n) { return (n + kFp8BlockSize - 1) / kFp8BlockSize; }

}  // namespace reasonrt

#endif  // REASONRT_DTYPE_H_
