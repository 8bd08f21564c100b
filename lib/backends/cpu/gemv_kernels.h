// lib/backends/cpu/gemv_kernels.h: decode matrix-vector kernels (a few activation rows
// times a weight in its stored dtype), SIMD with run-time dispatch (Highway), f32
// accumulation.
#ifndef REASONRT_LIB_BACKENDS_CPU_GEMV_KERNELS_H_
#define REASONRT_LIB_BACKENDS_CPU_GEMV_KERNELS_H_

#include <cstdint>

#include "reasonrt/dtype.h"

namespace reasonrt::cpu {

// The most activation rows one Gemv call takes.
inline constexpr int64_t kGemvRows = 8;

// y[m * ldy + n] = sum_k x[m * k_dim + k] * W[n, k] for m < rows (1..kGemvRows) and n in
// [n_begin, n_end). `w` is the whole [N, k_dim] weight in `dtype` (f32, f16, bf16, or
// f8_e4m3 with `scale_inv` [ceil(N/128), ceil(k_dim/128)]). bf16 reads each weight row
// once for all rows; the other dtypes once per 4 rows.
void Gemv(DType dtype, const void* w, const float* scale_inv, const float* x, int64_t rows,
          int64_t k_dim, int64_t n_begin, int64_t n_end, float* y, int64_t ldy);

// out[(n - n_begin) * k_dim + k] = W[n, k] as f32 for n in [n_begin, n_end): W as in Gemv,
// FP8 multiplied by its block's scale (exactly the value the reference multiplies by).
void DequantizeRows(DType dtype, const void* w, const float* scale_inv, int64_t k_dim, int64_t n_begin,
                    int64_t n_end, float* out);

// Sum of n floats read once, with SIMD: the bench's memory read kernel.
float StreamSum(const float* p, int64_t n);

// Makes the SIMD dispatch of every kernel honor RRT_CPU_DISABLE; idempotent.
void ApplyCpuOverrides();

// The instruction set the kernels run with here ("AVX3", "AVX2", ...).
const char* GemvTargetName();

}  // namespace reasonrt::cpu

#endif  // REASONRT_LIB_BACKENDS_CPU_GEMV_KERNELS_H_
