// lib/backends/cuda/ops.cu: the small ops (see kernels.h): norms and RoPE (their kernels in
// ops_kernel.cuh), element-wise ops, row gathers and scatters, softmax and top-k.
#include "lib/backends/cuda/kernel_util.cuh"
#include "lib/backends/cuda/ops_kernel.cuh"

namespace reasonrt::cuda {
namespace {

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
  __shared__ float scratch[32];
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
  __shared__ float keys[32];
  __shared__ int32_t ids[32];
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

cudaError_t AddWeightedRows(const float* x, const float* weights, int64_t t, int64_t k, int64_t h,
                            float* out, cudaStream_t stream) {
  if (t * h == 0) return cudaSuccess;
  AddWeightedRowsKernel<<<Blocks(t * h, 256), 256, 0, stream>>>(x, weights, t, k, h, out);
  return cudaGetLastError();
}

cudaError_t RmsNorm(const float* x, int64_t x_stride, const void* gain, DType gain_dtype,
                    int64_t rows, int64_t h, float eps, float* y, int64_t y_stride,
                    cudaStream_t stream, bool gain_settled) {
  if (rows == 0) return cudaSuccess;
  const bool vec = h % 4 == 0 && h <= 4 * kNormThreads * kNormVectors && x_stride % 4 == 0 &&
                   y_stride % 4 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(y) % 16 == 0;
  RRT_LAUNCH(RmsNormKernel, static_cast<unsigned>(rows), kNormThreads, 0, stream,
             const_cast<float*>(x), x_stride, nullptr, gain, gain_dtype, gain_settled, h, eps, y,
             y_stride, vec);
  return cudaGetLastError();
}

cudaError_t AddRmsNorm(float* x, const float* delta, const void* gain, DType gain_dtype,
                       int64_t rows, int64_t h, float eps, float* y, int64_t y_stride,
                       cudaStream_t stream, bool gain_settled) {
  if (rows == 0) return cudaSuccess;
  const bool vec = h % 4 == 0 && h <= 4 * kNormThreads * kNormVectors && y_stride % 4 == 0 &&
                   Aligned16({x, delta, y});
  RRT_LAUNCH(RmsNormKernel, static_cast<unsigned>(rows), kNormThreads, 0, stream, x, h, delta, gain,
             gain_dtype, gain_settled, h, eps, y, y_stride, vec);
  return cudaGetLastError();
}

cudaError_t Rope(float* x, int64_t t, int64_t heads, int64_t dims, int64_t stride_t,
                 int64_t stride_h, const int32_t* positions, const float* inv_freq,
                 bool interleaved, float cos_sin_scale, cudaStream_t stream) {
  const int64_t n = t * heads * (dims / 2);
  if (n == 0) return cudaSuccess;
  RRT_LAUNCH(RopeKernel, Blocks(n, 256), 256, 0, stream, x, t, heads, dims / 2, stride_t, stride_h,
             positions, inv_freq, interleaved, cos_sin_scale);
  return cudaGetLastError();
}

cudaError_t RopeAndStoreKv(const RopeStoreArgs& a, cudaStream_t stream) {
  if (a.dims % 2 != 0 || (a.cache_dtype != DType::kF32 && a.cache_dtype != DType::kBF16))
    return cudaErrorInvalidValue;
  const int64_t n =
      a.t * (a.q_heads + a.k_heads) * (a.dims / 2) + (a.v != nullptr ? a.t * a.v_width : 0);
  if (n == 0) return cudaSuccess;
  RRT_LAUNCH(RopeStoreKernel, Blocks(n, 256), 256, 0, stream, a);
  return cudaGetLastError();
}

cudaError_t SiluMul(const float* gate, const float* up, float* out, int64_t n,
                    cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const bool vec = n % 4 == 0 && Aligned16({gate, up, out});
  RRT_LAUNCH(SiluMulKernel<float>, Blocks(vec ? n / 4 : n, 256), 256, 0, stream, gate, up, out, n,
             vec);
  return cudaGetLastError();
}

cudaError_t SiluMulBf16(const float* gate, const float* up, void* out, int64_t n,
                        cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const bool vec = n % 4 == 0 && Aligned16({gate, up}) && reinterpret_cast<uintptr_t>(out) % 8 == 0;
  RRT_LAUNCH(SiluMulKernel<__nv_bfloat16>, Blocks(vec ? n / 4 : n, 256), 256, 0, stream, gate, up,
             static_cast<__nv_bfloat16*>(out), n, vec);
  return cudaGetLastError();
}

cudaError_t Add(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const bool vec = n % 4 == 0 && Aligned16({a, b, out});
  RRT_LAUNCH(AddKernel, Blocks(vec ? n / 4 : n, 256), 256, 0, stream, a, b, out, n, vec);
  return cudaGetLastError();
}

cudaError_t GatherRows(const void* table, DType table_dtype, int64_t h, const int32_t* ids,
                       int64_t count, float* out, cudaStream_t stream) {
  const int64_t n = count * h;
  if (n == 0) return cudaSuccess;
  switch (table_dtype) {
    case DType::kF32:
      RRT_LAUNCH(GatherRowsKernel<DType::kF32>, Blocks(n, 256), 256, 0, stream, table, h, ids,
                 count, out);
      break;
    case DType::kBF16:
      RRT_LAUNCH(GatherRowsKernel<DType::kBF16>, Blocks(n, 256), 256, 0, stream, table, h, ids,
                 count, out);
      break;
    case DType::kF16:
      RRT_LAUNCH(GatherRowsKernel<DType::kF16>, Blocks(n, 256), 256, 0, stream, table, h, ids,
                 count, out);
      break;
    default:
      return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

cudaError_t ScatterRows(const float* src, int64_t h, const int32_t* rows, int64_t count, float* y,
                        cudaStream_t stream) {
  if (count * h == 0) return cudaSuccess;
  ScatterRowsKernel<<<Blocks(count * h, 256), 256, 0, stream>>>(src, h, rows, count, y);
  return cudaGetLastError();
}

cudaError_t Softmax(const float* x, float* out, int64_t rows, int64_t n, bool log,
                    cudaStream_t stream) {
  if (rows == 0 || n == 0) return cudaSuccess;
  SoftmaxKernel<<<static_cast<unsigned>(rows), 256, 0, stream>>>(x, out, n, log);
  return cudaGetLastError();
}

cudaError_t TopK(const float* x, int64_t rows, int64_t n, int64_t k, float* values,
                 int32_t* indices, cudaStream_t stream) {
  if (rows == 0 || k == 0) return cudaSuccess;
  TopKKernel<<<static_cast<unsigned>(rows), 256, 0, stream>>>(x, n, k, values, indices);
  return cudaGetLastError();
}

}  // namespace reasonrt::cuda
