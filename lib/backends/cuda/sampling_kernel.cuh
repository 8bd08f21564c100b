// lib/backends/cuda/sampling_kernel.cuh: SampleTokens' kernel (see sampling.cu), apart so
// that a host emulation of the few CUDA features it uses (tests/backends/cuda_emulation.h:
// a thread per CUDA thread, barriers for __syncthreads and the warp shuffles) can run the
// same source where there is no GPU (a test includes cuda_emulation.h before this).
#ifndef REASONRT_LIB_BACKENDS_CUDA_SAMPLING_KERNEL_CUH_
#define REASONRT_LIB_BACKENDS_CUDA_SAMPLING_KERNEL_CUH_

#include <cstdint>

#include "lib/backends/cuda/kernel_util.cuh"
#include "lib/backends/cuda/kernels.h"

namespace reasonrt::cuda {
namespace {

constexpr int kDrawThreads = 1024;
constexpr int kDrawWarps = kDrawThreads / kWarp;
constexpr double kMassScale = 1099511627776.0;  // 2^40
static_assert(kDrawWarps == kWarp,
              "BlockAll's second stage is one warp over a warp's worth of results");

// Distinct for every token of a row; a larger key ranks first.
__device__ __forceinline__ uint64_t OrderKey(float w, int32_t id) {
  const uint32_t u = __float_as_uint(w);
  const uint32_t ordered = (u & 0x80000000u) != 0 ? ~u : (u | 0x80000000u);
  return (static_cast<uint64_t>(ordered) << 32) | (0xffffffffu - static_cast<uint32_t>(id));
}

__device__ __forceinline__ unsigned long long Mass(float w, float top) {
  return static_cast<unsigned long long>(static_cast<double>(expf(w - top)) * kMassScale);
}

// Block-wide reductions in a fixed order (warp shuffles, then warp 0 over the warps'
// results): the same result on every run. Every thread gets the result.
template <typename T, typename Op>
__device__ T BlockAll(T v, T* scratch, Op op) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  for (int o = kWarp / 2; o > 0; o /= 2) v = op(v, __shfl_xor_sync(kFullMask, v, o));
  __syncthreads();  // scratch may still be read from a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kDrawWarps ? scratch[lane] : scratch[0];
    for (int o = kWarp / 2; o > 0; o /= 2) v = op(v, __shfl_xor_sync(kFullMask, v, o));
    if (lane == 0) scratch[0] = v;
  }
  __syncthreads();
  return scratch[0];
}

struct Shared {
  unsigned long long hist[256];
  unsigned long long u64[kDrawWarps];
  double f64[kDrawWarps];
  float f32[kDrawWarps];
  int32_t i32[kDrawWarps];
  int chosen;
  unsigned long long cum;
  int32_t pick;
};

// The running sum of v over a warp's lanes, lane 0 first (inclusive).
__device__ __forceinline__ unsigned long long WarpInclusiveSum(unsigned long long v) {
  const int lane = threadIdx.x % kWarp;
  for (int o = 1; o < kWarp; o *= 2) {
    const unsigned long long below = __shfl_up_sync(kFullMask, v, o);
    if (lane >= o) v += below;
  }
  return v;
}

// The sum of v over the threads before this one (thread order), and over all in *total.
__device__ unsigned long long BlockExclusiveSum(unsigned long long v, Shared& sh,
                                                unsigned long long* total) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const unsigned long long inclusive = WarpInclusiveSum(v);
  __syncthreads();  // sh.u64 may still be read from a previous call
  if (lane == kWarp - 1) sh.u64[warp] = inclusive;
  __syncthreads();
  if (warp == 0) {
    const unsigned long long warp_total = sh.u64[lane];
    const unsigned long long warps_through = WarpInclusiveSum(warp_total);
    sh.u64[lane] = warps_through - warp_total;
    if (lane == kWarp - 1) sh.cum = warps_through;
  }
  __syncthreads();
  *total = sh.cum;
  return sh.u64[warp] + inclusive - v;
}

// The key of the token at which the best-first walk over the candidates (keys >= floor)
// first reaches `target`, by count or by mass.
__device__ uint64_t SelectKey(const float* w, int32_t vocab, float top, uint64_t floor,
                              bool by_mass, unsigned long long target, Shared& sh) {
  uint64_t prefix = 0, mask = 0;
  if (threadIdx.x == 0) sh.cum = 0;
  for (int shift = 56; shift >= 0; shift -= 8) {
    for (int d = threadIdx.x; d < 256; d += blockDim.x) sh.hist[d] = 0;
    __syncthreads();
    for (int32_t i = threadIdx.x; i < vocab; i += blockDim.x) {
      const uint64_t key = OrderKey(w[i], i);
      if (key < floor || (key & mask) != prefix) continue;
      atomicAdd(&sh.hist[(key >> shift) & 255], by_mass ? Mass(w[i], top) : 1ull);
    }
    __syncthreads();
    // The first digit, best first, at which the running sum reaches the target: warp 0,
    // lane l over digits 255 - 8l down to 248 - 8l, the lanes' sums scanned.
    if (threadIdx.x < kWarp) {
      const int lane = threadIdx.x;
      unsigned long long part[8], sum = 0;
      for (int j = 0; j < 8; ++j) sum += part[j] = sh.hist[255 - 8 * lane - j];
      unsigned long long before = sh.cum + WarpInclusiveSum(sum) - sum;
      const unsigned reached = __ballot_sync(kFullMask, before + sum >= target);
      // (Never none: the target is at most the candidates' total. Then digit 0 would do.)
      const int first = reached != 0 ? __ffs(reached) - 1 : kWarp - 1;
      if (lane == first) {
        int j = 0;
        for (; j < 7; ++j) {
          if (before + part[j] >= target) break;
          before += part[j];
        }
        sh.chosen = 255 - 8 * lane - j;
        sh.cum = before;
      }
    }
    __syncthreads();
    prefix |= static_cast<uint64_t>(sh.chosen) << shift;
    mask |= 255ull << shift;
  }
  return prefix;
}

// log_softmax(in * inv_t)[token] from the row's scaled max and sum.
__device__ __forceinline__ float RawLogProb(const float* in, int32_t token, float inv_t,
                                            float offset, double z) {
  return static_cast<float>(static_cast<double>(__fmul_rn(in[token], inv_t)) -
                            static_cast<double>(offset) - log(z));
}

__global__ void __launch_bounds__(kDrawThreads)
    SampleTokensKernel(const float* logits, int32_t vocab, const DeviceDraw* draws,
                       const DeviceEdit* edits, float* work, DeviceDrawn* out) {
  RRT_SHARED(Shared, sh);
  const int64_t row = blockIdx.x;
  const float* in = logits + row * vocab;
  float* w = work + row * vocab;
  const DeviceDraw d = draws[row];
  DeviceDrawn result{};
  result.token = -1;

  // The row as given: the first NaN or +inf, and its scaled max and sum (online: each
  // thread's running sum rescaled when its max grows).
  const float inv_t = d.greedy ? 1.0f : 1.0f / d.temperature;
  int32_t bad = vocab;
  float m = -INFINITY;
  for (int32_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float x = in[i];
    if (!(x < INFINITY) && bad == vocab) bad = i;
    m = fmaxf(m, x);
  }
  bad = BlockAll(bad, sh.i32, [](int32_t a, int32_t b) { return min(a, b); });
  if (bad < vocab) {
    if (threadIdx.x == 0) {
      result.error = isnan(in[bad]) ? kDrawNaN : kDrawInfinity;
      result.token = bad;
      out[row] = result;
    }
    return;
  }
  m = BlockAll(m, sh.f32, [](float a, float b) { return fmaxf(a, b); });
  const float offset = m * inv_t;
  double z_raw = 0;
  for (int32_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    z_raw += static_cast<double>(expf(__fmul_rn(in[i], inv_t) - offset));
  }
  z_raw = BlockAll(z_raw, sh.f64, [](double a, double b) { return a + b; });
  if (d.score_token >= 0)
    result.score_logprob = RawLogProb(in, d.score_token, inv_t, offset, z_raw);
  if (!d.draw) {
    if (threadIdx.x == 0) out[row] = result;
    return;
  }

  // The edited row, divided by the temperature (edits are of distinct tokens: one thread
  // each), its max and (greedy) the first token at it.
  const float scale = d.greedy ? 1.0f : inv_t;
  for (int32_t i = threadIdx.x; i < vocab; i += blockDim.x) w[i] = __fmul_rn(in[i], scale);
  __syncthreads();
  for (int32_t j = threadIdx.x; j < d.edit_count; j += blockDim.x) {
    const DeviceEdit e = edits[d.edit_begin + j];
    float v = in[e.token] + e.bias;
    if (e.repetition_penalty != 1.0f)
      v = v > 0 ? v / e.repetition_penalty : v * e.repetition_penalty;
    v += e.offset;
    if (e.banned) v = -INFINITY;
    w[e.token] = __fmul_rn(v, scale);
  }
  __syncthreads();
  float top = -INFINITY;
  for (int32_t i = threadIdx.x; i < vocab; i += blockDim.x) top = fmaxf(top, w[i]);
  top = BlockAll(top, sh.f32, [](float a, float b) { return fmaxf(a, b); });
  if (top == -INFINITY) {
    if (threadIdx.x == 0) {
      result.error = kDrawNothingLeft;
      out[row] = result;
    }
    return;
  }
  if (d.greedy) {
    int32_t first = vocab;
    for (int32_t i = threadIdx.x; i < vocab; i += blockDim.x) {
      if (w[i] == top) {
        first = i;
        break;
      }
    }
    first = BlockAll(first, sh.i32, [](int32_t a, int32_t b) { return min(a, b); });
    if (threadIdx.x == 0) {
      result.token = first;
      result.logprob = RawLogProb(in, first, inv_t, offset, z_raw);
      out[row] = result;
    }
    return;
  }

  // top-k: the k-th best token's key (everything at or above it is kept).
  uint64_t kth = 0;
  if (d.top_k > 0 && d.top_k < vocab) {
    kth = SelectKey(w, vocab, top, 0, false, static_cast<unsigned long long>(d.top_k), sh);
  }
  // top-p over what top-k kept: the key of the token whose mass crosses top_p of theirs.
  uint64_t cross = 0;
  if (d.top_p < 1.0f) {
    unsigned long long z = 0;
    for (int32_t i = threadIdx.x; i < vocab; i += blockDim.x) {
      if (OrderKey(w[i], i) >= kth) z += Mass(w[i], top);
    }
    z = BlockAll(z, sh.u64, [](unsigned long long a, unsigned long long b) { return a + b; });
    unsigned long long target =
        static_cast<unsigned long long>(static_cast<double>(d.top_p) * static_cast<double>(z));
    if (target == 0) target = 1;
    cross = SelectKey(w, vocab, top, kth, true, target, sh);
  }
  const uint64_t bound = kth > cross ? kth : cross;
  const double min_p_floor =
      d.min_p > 0 ? static_cast<double>(top) + log(static_cast<double>(d.min_p)) : -HUGE_VAL;

  // The draw: each thread sums the kept mass of its run of ids; the runs' sums scanned;
  // the thread whose run holds uniform * total finds the token in it.
  const int32_t run = (vocab + kDrawThreads - 1) / kDrawThreads;
  const int32_t begin = min(vocab, static_cast<int32_t>(threadIdx.x) * run),
                end = min(vocab, begin + run);
  auto kept_mass = [&](int32_t i) -> unsigned long long {
    const float v = w[i];
    if (OrderKey(v, i) < bound || static_cast<double>(v) < min_p_floor) return 0;
    return Mass(v, top);
  };
  unsigned long long mine = 0;
  for (int32_t i = begin; i < end; ++i) mine += kept_mass(i);
  if (threadIdx.x == 0) sh.pick = -1;
  unsigned long long total = 0;
  const unsigned long long before = BlockExclusiveSum(mine, sh, &total);
  // (A product within rounding of the total, uniform close to 1, is the last unit.)
  unsigned long long u = static_cast<unsigned long long>(d.uniform * static_cast<double>(total));
  if (u >= total) u = total - 1;
  if (mine > 0 && before <= u && u < before + mine) {
    unsigned long long cum = before;
    for (int32_t i = begin; i < end; ++i) {
      cum += kept_mass(i);
      if (u < cum) {
        sh.pick = i;
        break;
      }
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    const int32_t token = sh.pick;
    result.token = token;
    if (token < 0) {
      result.error = kDrawNothingLeft;  // no kept token had mass (cannot happen: the top has 2^40)
    } else {
      result.logprob = RawLogProb(in, token, inv_t, offset, z_raw);
      result.sampled_logprob = static_cast<float>(
          log(static_cast<double>(Mass(w[token], top)) / static_cast<double>(total)));
    }
    out[row] = result;
  }
}

}  // namespace
}  // namespace reasonrt::cuda

#endif  // REASONRT_LIB_BACKENDS_CUDA_SAMPLING_KERNEL_CUH_
