// lib/backends/cuda/ops_kernel.cuh: the small ops' kernels (ops.cu launches them): RmsNorm
// (AddRmsNorm: the residual add in the same launch), RoPE, RoPE with the KV store,
// element-wise ops, row gathers and scatters, softmax and top-k, apart so that
// tests/backends/cuda_emulation.h can run the same source on the host (which includes
// cuda_emulation.h before this).
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

__global__ void AddWeightedRowsKernel(const float* x, const float* weights, int64_t t, int64_t k,
                                      int64_t h, float* out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= t * h) return;
  const int64_t row = i / h, col = i % h;
  float o = out[i];
  for (int64_t j = 0; j < k; ++j) o += weights[row * k + j] * x[(row * k + j) * h + col];
  out[i] = o;
}

// Element-wise ops: four elements a thread where n % 4 == 0 and every pointer is 16-byte
// aligned (vec; 8-byte for bf16 outputs), else one. SiluMul writes f32 or, for a prompt
// GEMM's input, bf16 (rounded to nearest even).
__device__ __forceinline__ void Store4(float* out, int64_t i, float4 v) {
  reinterpret_cast<float4*>(out)[i] = v;
}
__device__ __forceinline__ void Store4(__nv_bfloat16* out, int64_t i, float4 v) {
  reinterpret_cast<uint2*>(out)[i] = PackBf16x4(v);
}
__device__ __forceinline__ void Store1(float* out, int64_t i, float v) { out[i] = v; }
__device__ __forceinline__ void Store1(__nv_bfloat16* out, int64_t i, float v) {
  out[i] = __float2bfloat16_rn(v);
}

template <typename Out>
__global__ void SiluMulKernel(const float* gate, const float* up, Out* out, int64_t n, bool vec) {
  DependentStart();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (vec) {
    if (4 * i >= n) return;
    const float4 g = reinterpret_cast<const float4*>(gate)[i],
                 u = reinterpret_cast<const float4*>(up)[i];
    Store4(out, i, make_float4(Silu(g.x) * u.x, Silu(g.y) * u.y, Silu(g.z) * u.z, Silu(g.w) * u.w));
  } else if (i < n) {
    Store1(out, i, Silu(gate[i]) * up[i]);
  }
}

__global__ void AddKernel(const float* a, const float* b, float* out, int64_t n, bool vec) {
  DependentStart();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (vec) {
    if (4 * i >= n) return;
    const float4 x = reinterpret_cast<const float4*>(a)[i],
                 y = reinterpret_cast<const float4*>(b)[i];
    reinterpret_cast<float4*>(out)[i] = make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w);
  } else if (i < n) {
    out[i] = a[i] + b[i];
  }
}

template <DType D>
__global__ void GatherRowsKernel(const void* table, int64_t h, const int32_t* ids, int64_t count,
                                 float* out) {
  DependentStart();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count * h) out[i] = Load<D>(table, static_cast<int64_t>(ids[i / h]) * h + i % h);
}

__global__ void ScatterRowsKernel(const float* src, int64_t h, const int32_t* rows, int64_t count,
                                  float* y) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count * h) y[static_cast<int64_t>(rows[i / h]) * h + i % h] = src[i];
}

__global__ void SoftmaxKernel(const float* x, float* out, int64_t n, bool log) {
  RRT_SHARED(float[32], scratch);
  const float* in = x + blockIdx.x * n;
  float* o = out + blockIdx.x * n;
  float m = -INFINITY;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, in[i]);
  m = BlockReduce<true>(m, scratch);
  float total = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) total += expf(in[i] - m);
  total = BlockReduce<false>(total, scratch);
  const float log_total = logf(total);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    o[i] = log ? (in[i] - m) - log_total : expf(in[i] - m) / total;
  }
}

// (key, index) with NaN keyed as -inf; a before b when its key is larger, or equal with a
// lower index. index -1 is "none" and comes after everything.
__device__ __forceinline__ bool Before(float ka, int32_t ia, float kb, int32_t ib) {
  if (ib < 0) return ia >= 0;
  if (ia < 0) return false;
  return ka > kb || (ka == kb && ia < ib);
}

// k passes over the row, each finding the best element after the previous pass's pick.
__global__ void TopKKernel(const float* x, int64_t n, int64_t k, float* values, int32_t* indices) {
  RRT_SHARED(float[32], keys);
  RRT_SHARED(int32_t[32], ids);
  const float* in = x + blockIdx.x * n;
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int warps = blockDim.x / kWarp;
  float prev_key = 0.0f;
  int32_t prev_id = -1;
  for (int64_t pass = 0; pass < k; ++pass) {
    float best_key = -INFINITY;
    int32_t best_id = -1;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float key = isnan(in[i]) ? -INFINITY : in[i];
      const int32_t id = static_cast<int32_t>(i);
      if (prev_id >= 0 && !Before(prev_key, prev_id, key, id)) continue;  // already taken
      if (Before(key, id, best_key, best_id)) best_key = key, best_id = id;
    }
    for (int o = kWarp / 2; o > 0; o /= 2) {
      const float other_key = __shfl_xor_sync(kFullMask, best_key, o);
      const int32_t other_id = __shfl_xor_sync(kFullMask, best_id, o);
      if (Before(other_key, other_id, best_key, best_id)) best_key = other_key, best_id = other_id;
    }
    __syncthreads();
    if (lane == 0) keys[warp] = best_key, ids[warp] = best_id;
    __syncthreads();
    best_key = keys[0], best_id = ids[0];
    for (int w = 1; w < warps; ++w) {
      if (Before(keys[w], ids[w], best_key, best_id)) best_key = keys[w], best_id = ids[w];
    }
    if (threadIdx.x == 0) {
      values[blockIdx.x * k + pass] = in[best_id];
      indices[blockIdx.x * k + pass] = best_id;
    }
    prev_key = best_key, prev_id = best_id;
  }
}

}  // namespace
}  // namespace reasonrt::cuda

#endif  // REASONRT_LIB_BACKENDS_CUDA_OPS_KERNEL_CUH_
