// lib/backends/cpu/gemv_bf16_dot.h: decode on AVX512-BF16 (vdpbf16ps), 1 to 32 activation
// rows: several sequences' GEMV in one pass over bf16 or FP8 weights at close to the
// memory speed of one. The activations are rounded to bf16 (as in the prompt GEMM), or,
// with `exact`, split as hi + lo bf16 pairs that keep about 16 mantissa bits of x
// (relative error ~1e-5) at twice the multiply-adds.
#ifndef REASONRT_LIB_BACKENDS_CPU_GEMV_BF16_DOT_H_
#define REASONRT_LIB_BACKENDS_CPU_GEMV_BF16_DOT_H_

#include <cstdint>
#include <vector>

namespace reasonrt::cpu {

// Whether this CPU runs the kernel (AVX512-BF16, not disabled by RRT_CPU_DISABLE).
bool HasBf16DotKernel();

// x [rows, k] f32 split into hi and lo bf16 rows of `padded_k` (k rounded up to 32, zeros
// after k): the kernel's input, prepared once per matmul. Both start on a 64-byte boundary
// (so does every row), so that no load of them splits across two cache lines: a
// misaligned x made the 8-row kernel 1.2-1.4x slower.
struct SplitActivations {
  SplitActivations() = default;
  SplitActivations(const SplitActivations&) = delete;  // hi and lo point into storage
  SplitActivations& operator=(const SplitActivations&) = delete;

  int64_t rows = 0, k = 0, padded_k = 0;
  const uint16_t* hi = nullptr;  // [rows, padded_k]
  const uint16_t* lo = nullptr;  // [rows, padded_k], or null unless exact
  std::vector<uint16_t> storage;
};
void SplitBf16(const float* x, int64_t rows, int64_t k, bool exact, SplitActivations* out);

// out[i] = F32ToBf16(x[i]) for i < n (round to nearest even, NaNs quiet), 16 at a time
// where HasBf16DotKernel(): the prompt GEMM's bf16 activations and weight panels.
void RoundToBf16(const float* x, int64_t n, uint16_t* out);
// The same of x[i] * scales[i / kFp8BlockSize] (an FP8 weight block's scales, folded into
// the activations).
void RoundScaledToBf16(const float* x, int64_t n, const float* scales, uint16_t* out);

// The most activation rows GemvBf16Dot takes.
constexpr int64_t kBf16DotMaxRows = 32;

// y[m * ldy + n] = sum_k x[m, k] * W[n, k] for m < x.rows (1..kBf16DotMaxRows), n in
// [n_begin, n_end); `w` is the whole [N, k] bf16 weight. Only call when HasBf16DotKernel().
void GemvBf16Dot(const uint16_t* w, const SplitActivations& x, int64_t n_begin, int64_t n_end, float* y, int64_t ldy);

// The same for FP8 (e4m3) weights with DeepSeek's block scales: y[m * ldy + n] =
// sum_k x[m, k] * W[n, k] * scale_inv[n / 128, k / 128], `w` the whole [N, k] weight and
// `scale_inv` its [ceil(N / 128), ceil(k / 128)] scales. Each 32 weights become bf16 in
// registers, exactly (bf16 holds every e4m3 value but the two NaNs, which come out as
// finite +-480 like the f32 kernel's), for vdpbf16ps against x's hi (and lo) parts; each
// 128-wide block's sums are scaled once. With x split exact (hi + lo) the result is within
// ~1e-5 of sum |x * w| of f32 arithmetic, the f32 GEMV kernel's precision at about half
// its instructions. Only call when HasBf16DotKernel(); x.rows 1..kBf16DotMaxRows.
void GemvFp8Dot(const uint8_t* w, const float* scale_inv, const SplitActivations& x,
                int64_t n_begin, int64_t n_end, float* y, int64_t ldy);

// Independent vdpbf16ps chains, `iterations` x 12 instructions (32 multiply-adds each), no
// memory traffic: one core's peak for the kernel above. Returns the multiply-adds done;
// `sink` receives a value that depends on all of them. Only call when HasBf16DotKernel().
int64_t Bf16DotMultiplyAddLoop(int64_t iterations, float* sink);

}  // namespace reasonrt::cpu

#endif  // REASONRT_LIB_BACKENDS_CPU_GEMV_BF16_DOT_H_
