// lib/backends/token_draw_kernels.h: the host token draw's passes over a row of logits (a whole
// vocabulary, ~152K for the R1 distills), SIMD with run-time dispatch (Highway). The
// exponentials are f32 (Highway's Exp, within 1 ulp) summed per block of 64 in f32 and
// across blocks in f64: a sum's relative error stays within ~1e-6.
#ifndef REASONRT_LIB_BACKENDS_TOKEN_DRAW_KERNELS_H_
#define REASONRT_LIB_BACKENDS_TOKEN_DRAW_KERNELS_H_

#include <cstdint>

namespace reasonrt::draw {

// The index of the first NaN or +inf in x[0, n), or -1.
int64_t FindNotFinite(const float* x, int64_t n);

// max of x[0, n) (-inf for n == 0 or an all -inf row). x holds no NaN.
float MaxOf(const float* x, int64_t n);

// x[i] *= scale in place; returns the new max (as MaxOf).
float ScaleAndMax(float* x, int64_t n, float scale);

// sum_i exp(x[i] * scale - offset) (-inf entries add 0).
double SumExp(const float* x, int64_t n, float scale, float offset);

// out[i] = exp(x[i] - offset) for i in [0, n); returns their sum, the very value
// SumExp(x, n, 1, offset) gives (and SumExp(y, n, s, offset) when x[i] = y[i] * s).
double ExpOf(const float* x, int64_t n, float offset, float* out);

// Writes, in increasing order, the indices i with x[i] >= threshold to ids (room for n);
// returns how many.
int64_t IndicesAtLeast(const float* x, int64_t n, float threshold, int32_t* ids);

}  // namespace reasonrt::draw

#endif  // REASONRT_LIB_BACKENDS_TOKEN_DRAW_KERNELS_H_
