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

}  // namespace reasonrt::cpu

#endif  // REASONRT_LIB_BACKENDS_CPU_VECTOR_KERNELS_H_
