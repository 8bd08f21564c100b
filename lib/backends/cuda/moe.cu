// The launches of moe_kernel.cuh's kernels.
#include "lib/backends/cuda/kernel_util.cuh"
#include "lib/backends/cuda/moe_kernel.cuh"

namespace reasonrt::cuda {

cudaError_t Route(const RouteArgs& a, cudaStream_t stream) {
  if (a.tokens == 0) return cudaSuccess;
  const unsigned blocks = static_cast<unsigned>((a.tokens + kRouteWarps - 1) / kRouteWarps);
  RouteKernel<<<blocks, kRouteWarps * kWarp, 0, stream>>>(a);
  return cudaGetLastError();
}

cudaError_t ExpertGemv(const ExpertGemvArgs& a, cudaStream_t stream) {
  if (a.rows == 0 || a.n == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>((a.n + kExpertGemvWarps - 1) / kExpertGemvWarps),
                  static_cast<unsigned>(a.rows));
  const int threads = kExpertGemvWarps * kWarp;
  switch (a.w_dtype) {
    case DType::kF32:
      ExpertGemvKernel<DType::kF32><<<grid, threads, 0, stream>>>(a);
      break;
    case DType::kBF16:
      ExpertGemvKernel<DType::kBF16><<<grid, threads, 0, stream>>>(a);
      break;
    case DType::kF16:
      ExpertGemvKernel<DType::kF16><<<grid, threads, 0, stream>>>(a);
      break;
    case DType::kF8E4M3:
      ExpertGemvKernel<DType::kF8E4M3><<<grid, threads, 0, stream>>>(a);
      break;
    default:
      return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace reasonrt::cuda
