// lib/backends/cuda/ops.cu: the small ops' launchers (see kernels.h; their kernels are in
// ops_kernel.cuh): norms, RoPE, element-wise ops, row gathers and scatters, softmax, top-k.
#include "lib/backends/cuda/kernel_util.cuh"
#include "lib/backends/cuda/ops_kernel.cuh"

namespace reasonrt::cuda {

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
