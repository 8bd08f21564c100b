// lib/backends/cpu/gemv_kernels.h: decode matrix-vector kernels (a few activation rows
// times a weight in its stored dtype), SIMD with run-time dispatch (Highway), f32
// accumulation.
#ifndef REASONRT_LIB_BACKENDS_CPU_GEMV_KERNELS_H_
#define REASONRT_LIB_BACKENDS_CPU_GEMV_KERNELS_H_

#include <cstdint>
#include <vector>

#include "reasonrt/dtype.h"

namespace reasonrt::cpu {

// The most activation rows one Gemv call takes.
inline constexpr int64_t kGemvRows = 8;

// The activations x [rows, k_dim] (rows 1..kGemvRows, row-major, kept alive by the
// caller) prepared once per matmul, before the threads split the weight rows: the bf16
// kernels read x deinterleaved into even and odd elements, in a layout of this CPU's
// SIMD width.
struct GemvInput {
  GemvInput() = default;
  GemvInput(const GemvInput&) = delete;  // bf16 points into storage
  GemvInput& operator=(const GemvInput&) = delete;

  const float* x = nullptr;
  int64_t rows = 0, k_dim = 0;
  const float* bf16 = nullptr;  // x in the bf16 kernels' layout (64-byte aligned), or null
  std::vector<float> storage;   // holds bf16
};
void PrepareGemvInput(const float* x, int64_t rows, int64_t k_dim, bool for_bf16, GemvInput* out);

// y[m * ldy + n] = sum_k x[m, k] * W[n, k] for m < x.rows and n in [n_begin, n_end). `w` is
// the whole [N, x.k_dim] weight in `dtype` (f32, f16, bf16, or f8_e4m3 with `scale_inv`
// [ceil(N/128), ceil(k_dim/128)]). bf16 reads each weight row once for all rows (an input
// not prepared for bf16 is prepared per call, which costs rows x k_dim copies each); the
// other dtypes once per 4 rows.
void Gemv(DType dtype, const void* w, const float* scale_inv, const GemvInput& x, int64_t n_begin,
          int64_t n_end, float* y, int64_t ldy);

// out[(n - n_begin) * k_dim + k] = W[n, k] as f32 for n in [n_begin, n_end): W as in Gemv,
// FP8 multiplied by its block's scale (exactly the value the reference multiplies by), or
// with scale_inv null the FP8 values as they are.
void DequantizeRows(DType dtype, const void* w, const float* scale_inv, int64_t k_dim, int64_t n_begin,
                    int64_t n_end, float* out);

// Sum of n floats read once, with SIMD: the bench's memory read kernel.
float StreamSum(const float* p, int64_t n);

// Independent vector multiply-add chains, `iterations` x 12 vector FMAs at the kernels'
// width, no memory traffic: one core's FMA peak. Returns the scalar multiply-adds done;
// `sink` receives a value that depends on all of them.
int64_t MultiplyAddLoop(int64_t iterations, float* sink);

// Makes the SIMD dispatch of every kernel honor RRT_CPU_DISABLE; idempotent.
void ApplyCpuOverrides();

// The instruction set the kernels run with here ("AVX3", "AVX2", ...).
const char* GemvTargetName();

}  // namespace reasonrt::cpu

#endif  // REASONRT_LIB_BACKENDS_CPU_GEMV_KERNELS_H_
