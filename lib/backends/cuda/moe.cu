// The launches of moe_kernel.cuh's kernels.
#include "lib/backends/cuda/kernel_util.cuh"
#include "lib/backends/cuda/moe_kernel.cuh"

namespace reasonrt::cuda {
namespace {

template <DType D>
cudaError_t Launch(const ExpertGemvArgs& a, bool chunks, dim3 grid, int threads,
                   cudaStream_t stream) {
  const bool gated = a.up_w != nullptr;
  if (chunks && gated) {
    ExpertGemvKernel<D, true, true><<<grid, threads, 0, stream>>>(a);
  } else if (chunks) {
    ExpertGemvKernel<D, true><<<grid, threads, 0, stream>>>(a);
  } else if (gated) {
    ExpertGemvKernel<D, false, true><<<grid, threads, 0, stream>>>(a);
  } else {
    ExpertGemvKernel<D, false><<<grid, threads, 0, stream>>>(a);
  }
  return cudaGetLastError();
}

}  // namespace

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
  // The decode GEMV's chunked loads where rows and the stacked matrix allow them.
  const bool chunks = a.k % 8 == 0 &&
                      reinterpret_cast<uintptr_t>(a.w) % ChunkAlignment(a.w_dtype) == 0 &&
                      reinterpret_cast<uintptr_t>(a.up_w) % ChunkAlignment(a.w_dtype) == 0;
  switch (a.w_dtype) {
    case DType::kF32:
      return Launch<DType::kF32>(a, chunks, grid, threads, stream);
    case DType::kBF16:
      return Launch<DType::kBF16>(a, chunks, grid, threads, stream);
    case DType::kF16:
      return Launch<DType::kF16>(a, chunks, grid, threads, stream);
    case DType::kF8E4M3:
      return Launch<DType::kF8E4M3>(a, chunks, grid, threads, stream);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace reasonrt::cuda
