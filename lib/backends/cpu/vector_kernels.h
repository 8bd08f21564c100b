// lib/backends/cpu/vector_kernels.h: the small ops' inner loops (dot products, axpy,
// RMSNorm, SiLU-multiply, add), SIMD with run-time dispatch (Highway), f32 arithmetic.
#ifndef REASONRT_LIB_BACKENDS_CPU_VECTOR_KERNELS_H_
#define REASONRT_LIB_BACKENDS_CPU_VECTOR_KERNELS_H_

#include <cstdint>

#include "reasonrt/dtype.h"

namespace reasonrt::cpu {

// sum_i a[i] * b[i], b in f32 or bf16.
float Dot(const float* a, const void* b, DType b_type, int64_t n);

// y[i] += alpha * x[i], x in f32 or bf16.
void Axpy(float alpha, const void* x, DType x_type, float* y, int64_t n);

// y = x / sqrt(mean(x^2) + eps) * gain, one row of n.
void RmsNormRow(const float* x, const float* gain, float eps, float* y, int64_t n);

// out = silu(gate) * up.
void SiluMul(const float* gate, const float* up, float* out, int64_t n);

// out = a + b.
void Add(const float* a, const float* b, float* out, int64_t n);

// One row's attention for gn (1 to 8) query heads that share a kv head, over the first
// n_keys positions of a paged cache (reasonrt/backend.h's layout): out_g = softmax(scale *
// q_g . K^T) . V.
struct AttendArgs {
  const float* q = nullptr;  // gn rows of dk, contiguous
  int64_t gn = 0, dk = 0, dv = 0;
  float scale = 1.0f;
  const void* k = nullptr;  // the kv head's row in slot 0 of the key cache
  const void* v = nullptr;  // the same for values (MLA's latent cache: k again)
  bool bf16 = false;        // the cache's dtype: bf16, else f32
  int64_t k_slot_stride = 0, v_slot_stride = 0;  // elements from a slot's row to the next's
  const int32_t* block_table = nullptr;
  int64_t n_keys = 0;
  // A part of the keys only (split-K): positions [key_begin, n_keys), key_begin a multiple
  // of kKvBlockSize; with `stats`, out is left unnormalised (sum_p exp(s_p - max) v_p) and
  // stats[2g], stats[2g + 1] get head g's max score and sum of exp(s_p - max).
  int64_t key_begin = 0;
  float* stats = nullptr;
  float* out = nullptr;     // gn rows of dv, contiguous
  float* scores = nullptr;  // scratch of gn * (n_keys - key_begin)
};
void Attend(const AttendArgs& args);

}  // namespace reasonrt::cpu

#endif  // REASONRT_LIB_BACKENDS_CPU_VECTOR_KERNELS_H_
