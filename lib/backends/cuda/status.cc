#include "lib/backends/cuda/status.h"

#include <string>

#include "lib/core/strings.h"

namespace reasonrt::cuda {

absl::Status CudaStatus(cudaError_t e, std::string_view what) {
  if (e == cudaSuccess) return absl::OkStatus();
  cudaGetLastError();
  const std::string message = StrCat("cuda: ", what, ": ", cudaGetErrorString(e));
  if (e == cudaErrorMemoryAllocation) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

}  // namespace reasonrt::cuda
