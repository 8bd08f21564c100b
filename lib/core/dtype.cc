// DType names, sizes and array conversions.
#include "reasonrt/dtype.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "lib/core/strings.h"

namespace reasonrt {
namespace {

struct DTypeInfo {
  DType dtype;
  size_t size;
  std::string_view name;
  std::string_view safetensors_name;
};

constexpr DTypeInfo kDTypes[kNumDTypes] = {
    {DType::kF32, 4, "f32", "F32"},         {DType::kF16, 2, "f16", "F16"},
    {DType::kBF16, 2, "bf16", "BF16"},      {DType::kF8E4M3, 1, "f8_e4m3", "F8_E4M3"},
    {DType::kI8, 1, "i8", "I8"},            {DType::kI32, 4, "i32", "I32"},
    {DType::kI64, 8, "i64", "I64"},         {DType::kU8, 1, "u8", "U8"},
};

const DTypeInfo& Info(DType dtype) {
  const int i = static_cast<int>(dtype);
  return kDTypes[(i >= 0 && i < kNumDTypes) ? i : 0];
}

}  // namespace

size_t DTypeSize(DType dtype) { return Info(dtype).size; }
std::string_view DTypeName(DType dtype) { return Info(dtype).name; }
std::string_view SafetensorsDTypeName(DType dtype) { return Info(dtype).safetensors_name; }

bool IsFloatingPoint(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16 ||
         dtype == DType::kF8E4M3;
}

absl::StatusOr<DType> ParseSafetensorsDType(std::string_view name) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.safetensors_name == name) return info.dtype;
  }
  return absl::InvalidArgumentError(
      StrCat("unsupported safetensors dtype '", name,
                   "' (reasonrt reads F32, F16, BF16, F8_E4M3, I8, U8, I32, I64)"));
}

absl::StatusOr<DType> ParseDTypeName(std::string_view name) {
  const std::string lower = absl::AsciiStrToLower(ToAbsl(name));
  for (const DTypeInfo& info : kDTypes) {
    if (info.name == lower || absl::AsciiStrToLower(ToAbsl(info.safetensors_name)) == lower) {
      return info.dtype;
    }
  }
  if (lower == "float32" || lower == "float") return DType::kF32;
  if (lower == "float16" || lower == "half") return DType::kF16;
  if (lower == "bfloat16") return DType::kBF16;
  if (lower == "fp8" || lower == "float8_e4m3fn" || lower == "e4m3") return DType::kF8E4M3;
  return absl::InvalidArgumentError(StrCat("unknown dtype '", name, "'"));
}

void ConvertToF32(DType dtype, const void* src, float* dst, size_t n) {
  if (n == 0) return;  // (empty arrays may be null: memcpy must not see them)
  switch (dtype) {
    case DType::kF32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::kF16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = F16ToF32(s[i]);
      return;
    }
    case DType::kBF16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = Bf16ToF32(s[i]);
      return;
    }
    case DType::kF8E4M3: {
      const auto* s = static_cast<const uint8_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = Fp8E4M3ToF32(s[i]);
      return;
    }
    case DType::kI8: {
      const auto* s = static_cast<const int8_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(s[i]);
      return;
    }
    case DType::kU8: {
      const auto* s = static_cast<const uint8_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(s[i]);
      return;
    }
    case DType::kI32: {
      const auto* s = static_cast<const int32_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(s[i]);
      return;
    }
    case DType::kI64: {
      const auto* s = static_cast<const int64_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(s[i]);
      return;
    }
  }
}

void ConvertFromF32(DType dtype, const float* src, void* dst, size_t n) {
  if (n == 0) return;  // (empty arrays may be null: memcpy must not see them)
  switch (dtype) {
    case DType::kF32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::kF16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = F32ToF16(src[i]);
      return;
    }
    case DType::kBF16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = F32ToBf16(src[i]);
      return;
    }
    case DType::kF8E4M3: {
      auto* d = static_cast<uint8_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = F32ToFp8E4M3(src[i]);
      return;
    }
    case DType::kI8: {
      auto* d = static_cast<int8_t*>(dst);
      for (size_t i = 0; i < n; ++i) {
        d[i] = static_cast<int8_t>(std::clamp(std::nearbyint(src[i]), -128.0f, 127.0f));
      }
      return;
    }
    case DType::kU8: {
      auto* d = static_cast<uint8_t*>(dst);
      for (size_t i = 0; i < n; ++i) {
        d[i] = static_cast<uint8_t>(std::clamp(std::nearbyint(src[i]), 0.0f, 255.0f));
      }
      return;
    }
    case DType::kI32: {
      auto* d = static_cast<int32_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = static_cast<int32_t>(std::nearbyint(src[i]));
      return;
    }
    case DType::kI64: {
      auto* d = static_cast<int64_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = static_cast<int64_t>(std::nearbyint(src[i]));
      return;
    }
  }
}

void DequantizeFp8Blocks(const uint8_t* weight, const float* scale_inv, int64_t rows,
                         int64_t cols, float* dst) {
  const int64_t col_blocks = Fp8ScaleBlocks(cols);
  for (int64_t r = 0; r < rows; ++r) {
    const float* scales = scale_inv + (r / kFp8BlockSize) * col_blocks;
    for (int64_t c = 0; c < cols; ++c) {
      dst[r * cols + c] = Fp8E4M3ToF32(weight[r * cols + c]) * scales[c / kFp8BlockSize];
    }
  }
}

void QuantizeFp8Blocks(const float* src, int64_t rows, int64_t cols, uint8_t* weight,
                       float* scale_inv) {
  const int64_t row_blocks = Fp8ScaleBlocks(rows);
  const int64_t col_blocks = Fp8ScaleBlocks(cols);
  for (int64_t br = 0; br < row_blocks; ++br) {
    const int64_t r0 = br * kFp8BlockSize, r1 = std::min(rows, r0 + kFp8BlockSize);
    for (int64_t bc = 0; bc < col_blocks; ++bc) {
      const int64_t c0 = bc * kFp8BlockSize, c1 = std::min(cols, c0 + kFp8BlockSize);
      float amax = 0.0f;
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(src[r * cols + c]));
      }
      const float scale = amax > 0.0f ? amax / kFp8E4M3Max : 1.0f;
      scale_inv[br * col_blocks + bc] = scale;
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t c = c0; c < c1; ++c) {
          weight[r * cols + c] = F32ToFp8E4M3Saturate(src[r * cols + c] / scale);
        }
      }
    }
  }
}

}  // namespace reasonrt
