// lib/backends/cuda/moe_kernel.cuh: the MoE block's kernels whose routing stays on the GPU
// (moe.cu launches them): DeepSeek's router, one warp a token, and the experts' GEMV,
// which finds each row's expert in device memory. Apart, as sampling_kernel.cuh, so that
// tests/backends/cuda_emulation.h can run the same source on the host (which includes
// cuda_emulation.h before this).
#ifndef REASONRT_LIB_BACKENDS_CUDA_MOE_KERNEL_CUH_
#define REASONRT_LIB_BACKENDS_CUDA_MOE_KERNEL_CUH_

#include <cstdint>

#include "lib/backends/cuda/gemv_kernel.cuh"
#include "lib/backends/cuda/kernel_util.cuh"
#include "lib/backends/cuda/kernels.h"

namespace reasonrt::cuda {
namespace {

constexpr int kRouteWarps = 4;                // tokens a block
constexpr int kExpertGemvWarps = 8;           // output rows a block
constexpr uint32_t kTakenBits = 0xff800001u;  // a NaN: ranks after everything (RanksBefore)

// a ranks before b: a larger value, or the same value and a lower index. A NaN (a taken
// expert or group) ranks after everything else, NaNs by index, so that a warp's reduction
// still meets on one winner.
__device__ __forceinline__ bool RanksBefore(float a, int32_t ia, float b, int32_t ib) {
  if (isnan(a) || isnan(b)) return isnan(a) ? isnan(b) && ia < ib : true;
  return a > b || (a == b && ia < ib);
}

// The best (value, index) over the warp, by RanksBefore; every lane gets it.
__device__ __forceinline__ void WarpBest(float& v, int32_t& i) {
  for (int o = kWarp / 2; o > 0; o /= 2) {
    const float ov = __shfl_xor_sync(kFullMask, v, o);
    const int32_t oi = __shfl_xor_sync(kFullMask, i, o);
    if (RanksBefore(ov, oi, v, i)) v = ov, i = oi;
  }
}

// One warp a token (RouteArgs in kernels.h): scores, selection scores, the groups, the k
// best experts, their weights. Lane l holds experts l, l + 32, ... in shared memory.
__global__ void __launch_bounds__(kRouteWarps* kWarp) RouteKernel(RouteArgs a) {
  RRT_SHARED(float[kRouteWarps][kMaxRoutedExperts], score_all);
  RRT_SHARED(float[kRouteWarps][kMaxRoutedExperts], choice_all);
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * kRouteWarps + warp;
  if (t >= a.tokens) return;  // a whole warp leaves: no other warp waits on it
  float* score = score_all[warp];
  float* choice = choice_all[warp];
  const float* row = a.logits + t * a.experts;
  const int e_count = static_cast<int>(a.experts);
  // Scores: sigmoid, or softmax over the experts. A NaN logit scores 0 and is never chosen
  // while another expert can be.
  float m = -INFINITY;
  for (int e = lane; e < e_count; e += kWarp) {
    const float x = row[e];
    if (!isnan(x)) m = fmaxf(m, x);
  }
  for (int o = kWarp / 2; o > 0; o /= 2) m = fmaxf(m, __shfl_xor_sync(kFullMask, m, o));
  float z = 0;
  for (int e = lane; e < e_count; e += kWarp) {
    const float x = row[e];
    float s;
    if (isnan(x)) {
      s = 0.0f;
    } else if (a.sigmoid) {
      s = 1.0f / (1.0f + expf(-x));
    } else {
      s = expf(x - m);
      z += s;
    }
    score[e] = s;
    choice[e] = isnan(x) ? -INFINITY : s + (a.bias != nullptr ? a.bias[e] : 0.0f);
  }
  if (!a.sigmoid) {
    for (int o = kWarp / 2; o > 0; o /= 2) z += __shfl_xor_sync(kFullMask, z, o);
    for (int e = lane; e < e_count; e += kWarp) score[e] /= z;
  }
  __syncwarp();
  // Groups: lane g scores group g (its best selection score, or its two best summed), the
  // topk_group best stay; the other groups' experts are out.
  if (a.groups > 1) {
    const int per_group = e_count / a.groups;
    float group_score = -INFINITY;
    if (lane < a.groups) {
      float best = -INFINITY, second = -INFINITY;
      for (int j = 0; j < per_group; ++j) {
        const float c = choice[lane * per_group + j];
        if (c > best) {
          second = best, best = c;
        } else if (c > second) {
          second = c;
        }
      }
      group_score = a.top2_groups ? best + second : best;
    }
    bool keep = false;
    float v = group_score;
    for (int pass = 0; pass < a.keep_groups; ++pass) {
      float bv = v;
      int32_t bi = lane < a.groups ? lane : kWarp;
      WarpBest(bv, bi);
      if (bi == lane) keep = true, v = __int_as_float(kTakenBits);
    }
    const unsigned kept = __ballot_sync(kFullMask, keep);
    for (int e = lane; e < e_count; e += kWarp) {
      if ((kept >> (e / per_group) & 1u) == 0) choice[e] = -INFINITY;
    }
    __syncwarp();
  }
  // The k best experts, best first: k passes of the warp's best over what is left.
  double sum = 0;
  int32_t chosen_expert[kMaxExpertsPerToken];
  for (int j = 0; j < a.k; ++j) {
    float bv = -INFINITY;
    int32_t bi = INT32_MAX;
    for (int e = lane; e < e_count; e += kWarp) {
      if (RanksBefore(choice[e], e, bv, bi)) bv = choice[e], bi = e;
    }
    WarpBest(bv, bi);
    chosen_expert[j] = bi;
    sum += static_cast<double>(score[bi]);
    if (lane == 0) choice[bi] = __int_as_float(kTakenBits);  // (not -inf: -inf ties go by index)
    __syncwarp();
  }
  if (lane == 0) {
    const bool normalise = a.normalise && a.k > 1;
    const double scale = normalise ? 1.0 / (sum + 1e-20) : 1.0;
    const double factor = (normalise && !a.always_scale) ? 1.0 : a.scaling_factor;
    for (int j = 0; j < a.k; ++j) {
      a.out_experts[t * a.k + j] = chosen_expert[j];
      a.out_weights[t * a.k + j] =
          static_cast<float>(static_cast<double>(score[chosen_expert[j]]) * scale * factor);
    }
  }
}

// This lane's part of x . W[row, :] (ExpertGemvKernel's loads; row in the stacked weights).
template <DType D, bool kChunks>
__device__ __forceinline__ float ExpertRowPart(const void* w, const float* scale_inv,
                                               int64_t scale_cols, int64_t row, int64_t k,
                                               const float* x, int lane) {
  float acc = 0.0f;
  if constexpr (kChunks) {
    for (int64_t ch = lane; ch < k / 8; ch += kWarp) {
      float wv[8];
      Convert<D>(LoadChunk<D>(w, row * k + ch * 8), wv);
      float dot = 0.0f;
      for (int j = 0; j < 8; ++j) dot += wv[j] * x[ch * 8 + j];
      if constexpr (D == DType::kF8E4M3) dot *= scale_inv[(row / 128) * scale_cols + ch / 16];
      acc += dot;
    }
  } else {
    for (int64_t kb = 0; kb < k; kb += 128) {
      const int64_t end = kb + 128 < k ? kb + 128 : k;
      float part = 0.0f;
      for (int64_t i = kb + lane; i < end; i += kWarp) part += Load<D>(w, row * k + i) * x[i];
      if constexpr (D == DType::kF8E4M3) part *= scale_inv[(row / 128) * scale_cols + kb / 128];
      acc += part;
    }
  }
  return acc;
}

// y[p, n] = x[p, :] . W_e[n, :] for e = ids[p] (ExpertGemvArgs in kernels.h): block
// (blockIdx.x, p) computes kExpertGemvWarps rows n, a warp each. kChunks (k % 8 == 0, the
// weights 16-byte aligned, 8 for fp8): lane l takes the row's chunks of 8 weights l,
// l + 32, ... (the decode GEMV's loads; fp8: each chunk's dot times its block's scale);
// else its lanes go over the row's 128-wide blocks one weight at a time (fp8: each
// block's partial sum times its scale). kGated (a.up_w set): the warp takes row n of the
// expert's up weights too and writes silu(gate) * up. A row whose id is not an expert
// gets zeros.
template <DType D, bool kChunks, bool kGated = false>
__global__ void __launch_bounds__(kExpertGemvWarps* kWarp) ExpertGemvKernel(ExpertGemvArgs a) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int64_t p = blockIdx.y, n = static_cast<int64_t>(blockIdx.x) * kExpertGemvWarps + warp;
  if (n >= a.n) return;
  const int32_t e = a.ids[p];
  float acc = 0.0f, up = 0.0f;
  if (e >= 0 && e < a.experts) {
    const int64_t row = static_cast<int64_t>(e) * a.n + n;  // in the stacked weights
    const float* x = a.x + p * a.k;
    acc = WarpSum(ExpertRowPart<D, kChunks>(a.w, a.scale_inv, a.scale_cols, row, a.k, x, lane));
    if constexpr (kGated)
      up = WarpSum(
          ExpertRowPart<D, kChunks>(a.up_w, a.up_scale_inv, a.scale_cols, row, a.k, x, lane));
  }
  if (lane == 0) a.y[p * a.n + n] = kGated ? Silu(acc) * up : acc;
}

}  // namespace
}  // namespace reasonrt::cuda

#endif  // REASONRT_LIB_BACKENDS_CUDA_MOE_KERNEL_CUH_
