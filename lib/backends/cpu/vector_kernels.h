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

// One row's attention for kv_heads kv heads (side by side in the cache) and gn (1 to 8)
// query heads each, over the first n_keys positions of a paged cache (reasonrt/backend.h's
// layout): out_hg = softmax(scale * q_hg . K_h^T) . V_h.
struct AttendArgs {
  const float* q = nullptr;  // kv head h's gn rows of dk, contiguous, at q + h * q_stride
  int64_t gn = 0, dk = 0, dv = 0;
  int64_t kv_heads = 1;
  // Elements from one kv head's query (output) rows to the next kv head's.
  int64_t q_stride = 0, out_stride = 0;
  float scale = 1.0f;
  const void* k = nullptr;  // the first kv head's row in slot 0 of the key cache
  const void* v = nullptr;  // the same for values (MLA's latent cache: k again)
  bool bf16 = false;        // the cache's dtype: bf16, else f32
  int64_t k_slot_stride = 0, v_slot_stride = 0;  // elements from a slot's row to the next's
  int64_t k_head_stride = 0, v_head_stride = 0;  // from a kv head's row to the next head's
  const int32_t* block_table = nullptr;
  int64_t n_keys = 0;
  // A part of the keys only (split-K): positions [key_begin, n_keys), key_begin a multiple
  // of kKvBlockSize; with `stats`, out is left unnormalised (sum_p exp(s_p - max) v_p) and
  // stats[2i], stats[2i + 1] get head i's (i = h * gn + g) max score and sum of exp(s_p - max).
  int64_t key_begin = 0;
  float* stats = nullptr;
  float* out = nullptr;     // kv head h's gn rows of dv, contiguous, at out + h * out_stride
  float* scores = nullptr;  // scratch of kv_heads * gn * (n_keys - key_begin)
};
void Attend(const AttendArgs& args);

}  // namespace reasonrt::cpu

#endif  // REASONRT_LIB_BACKENDS_CPU_VECTOR_KERNELS_H_
