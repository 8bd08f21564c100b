// lib/backends/cuda/ops_kernel.cuh: the decode step's RmsNorm (AddRmsNorm: the residual
// add in the same launch) and RoPE kernels, RoPE with the KV store (ops.cu launches them),
// apart so that tests/backends/cuda_emulation.h can run the same source on the host (which
// includes cuda_emulation.h before this).
#ifndef REASONRT_LIB_BACKENDS_CUDA_OPS_KERNEL_CUH_
#define REASONRT_LIB_BACKENDS_CUDA_OPS_KERNEL_CUH_

#include <cstdint>

#include "lib/backends/cuda/kernel_util.cuh"
#include "lib/backends/cuda/kernels.h"

namespace reasonrt::cuda {
namespace {

constexpr int kNormThreads = 256, kNormVectors = 8;  // rows up to 8192 wide stay in registers

// One block per row. Rows of a multiple of 4 values, 16-byte aligned and at most
// 4 * kNormThreads * kNormVectors wide are read once, in float4s kept in registers. With
// delta, x's row first becomes x + delta (written back: the residual stream). A settled
// gain (written by no kernel on the stream) is read before waiting for the kernel before.
__global__ void __launch_bounds__(kNormThreads)
    RmsNormKernel(float* x, int64_t x_stride, const float* delta, const void* gain,
                  DType gain_dtype, bool gain_settled, int64_t h, float eps, float* y,
                  int64_t y_stride, bool vec) {
  LetSuccessorLaunch();
  RRT_SHARED(float[32], scratch);
  const int64_t n4 = vec ? h / 4 : 0;
  float4 g[kNormVectors];
  auto load_gains = [&] {
#pragma unroll
    for (int j = 0; j < kNormVectors; ++j) {
      const int64_t i = threadIdx.x + j * kNormThreads;
      g[j] = i < n4
                 ? make_float4(
                       LoadAny(gain, 4 * i, gain_dtype), LoadAny(gain, 4 * i + 1, gain_dtype),
                       LoadAny(gain, 4 * i + 2, gain_dtype), LoadAny(gain, 4 * i + 3, gain_dtype))
                 : make_float4(0, 0, 0, 0);
    }
  };
  if (gain_settled) load_gains();
  WaitForPredecessor();
  if (!gain_settled) load_gains();
  float* in = x + blockIdx.x * x_stride;
  const float* d = delta != nullptr ? delta + blockIdx.x * h : nullptr;
  float* o = y + blockIdx.x * y_stride;
  float sum_sq = 0.0f;
  if (vec) {
    float4 v[kNormVectors];
#pragma unroll
    for (int j = 0; j < kNormVectors; ++j) {
      const int64_t i = threadIdx.x + j * kNormThreads;
      v[j] = i < n4 ? reinterpret_cast<const float4*>(in)[i] : make_float4(0, 0, 0, 0);
      if (d != nullptr && i < n4) {
        const float4 e = reinterpret_cast<const float4*>(d)[i];
        v[j].x += e.x, v[j].y += e.y, v[j].z += e.z, v[j].w += e.w;
        reinterpret_cast<float4*>(in)[i] = v[j];
      }
      sum_sq += v[j].x * v[j].x + v[j].y * v[j].y + v[j].z * v[j].z + v[j].w * v[j].w;
    }
    sum_sq = BlockReduce<false>(sum_sq, scratch);
    const float inv = 1.0f / sqrtf(sum_sq / static_cast<float>(h) + eps);
#pragma unroll
    for (int j = 0; j < kNormVectors; ++j) {
      const int64_t i = threadIdx.x + j * kNormThreads;
      if (i >= n4) break;
      reinterpret_cast<float4*>(o)[i] = make_float4(v[j].x * inv * g[j].x, v[j].y * inv * g[j].y,
                                                    v[j].z * inv * g[j].z, v[j].w * inv * g[j].w);
    }
    return;
  }
  // Each thread reads back only the values it wrote itself.
  for (int64_t i = threadIdx.x; i < h; i += blockDim.x) {
    if (d != nullptr) in[i] += d[i];
    sum_sq += in[i] * in[i];
  }
  sum_sq = BlockReduce<false>(sum_sq, scratch);
  const float inv = 1.0f / sqrtf(sum_sq / static_cast<float>(h) + eps);
  for (int64_t i = threadIdx.x; i < h; i += blockDim.x)
    o[i] = in[i] * inv * LoadAny(gain, i, gain_dtype);
}

// Rotates pair i of one head in place (its new values also in *a_out, *b_out).
__device__ __forceinline__ void RotatePair(float* head, int64_t i, int64_t half, int32_t position,
                                           const float* inv_freq, bool interleaved, float scale,
                                           float* a_out, float* b_out) {
  const float angle = static_cast<float>(position) * inv_freq[i];
  const float c = cosf(angle) * scale, s = sinf(angle) * scale;
  float* a = interleaved ? head + 2 * i : head + i;
  float* b = interleaved ? head + 2 * i + 1 : head + i + half;
  const float a0 = *a, b0 = *b;
  *a = *a_out = a0 * c - b0 * s;
  *b = *b_out = b0 * c + a0 * s;
}

__device__ __forceinline__ void StoreCacheValue(void* cache, DType dtype, int64_t at, float v) {
  if (dtype == DType::kBF16) {
    static_cast<__nv_bfloat16*>(cache)[at] = __float2bfloat16_rn(v);
  } else {
    static_cast<float*>(cache)[at] = v;
  }
}

// One thread a pair of q, then a pair of k (also stored), then a value of v.
__global__ void RopeStoreKernel(RopeStoreArgs a) {
  DependentStart();
  const int64_t half = a.dims / 2;
  const int64_t n_q = a.t * a.q_heads * half, n_k = a.t * a.k_heads * half;
  int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  float lo, hi;
  if (idx < n_q) {
    const int64_t i = idx % half, h = (idx / half) % a.q_heads, row = idx / (half * a.q_heads);
    RotatePair(a.q + row * a.q_stride_t + h * a.q_stride_h, i, half, a.positions[row], a.inv_freq,
               a.interleaved, a.cos_sin_scale, &lo, &hi);
    return;
  }
  idx -= n_q;
  if (idx < n_k) {
    const int64_t i = idx % half, h = (idx / half) % a.k_heads, row = idx / (half * a.k_heads);
    RotatePair(a.k + row * a.k_stride_t + h * a.k_stride_h, i, half, a.positions[row], a.inv_freq,
               a.interleaved, a.cos_sin_scale, &lo, &hi);
    const int64_t base = a.slots[row] * a.k_heads * a.dims + h * a.dims;
    StoreCacheValue(a.k_cache, a.cache_dtype, base + (a.interleaved ? 2 * i : i), lo);
    StoreCacheValue(a.k_cache, a.cache_dtype, base + (a.interleaved ? 2 * i + 1 : i + half), hi);
    return;
  }
  idx -= n_k;
  if (a.v == nullptr || idx >= a.t * a.v_width) return;
  const int64_t row = idx / a.v_width, col = idx % a.v_width;
  StoreCacheValue(a.v_cache, a.cache_dtype, a.slots[row] * a.v_width + col, a.v[idx]);
}

__global__ void RopeKernel(float* x, int64_t t, int64_t heads, int64_t half, int64_t stride_t,
                           int64_t stride_h, const int32_t* positions, const float* inv_freq,
                           bool interleaved, float scale) {
  DependentStart();
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= t * heads * half) return;
  const int64_t i = idx % half, h = (idx / half) % heads, row = idx / (half * heads);
  float lo, hi;
  RotatePair(x + row * stride_t + h * stride_h, i, half, positions[row], inv_freq, interleaved,
             scale, &lo, &hi);
}

}  // namespace
}  // namespace reasonrt::cuda

#endif  // REASONRT_LIB_BACKENDS_CUDA_OPS_KERNEL_CUH_
