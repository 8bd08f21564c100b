// lib/backends/cuda/status.h: CUDA runtime errors as absl::Status.
#ifndef REASONRT_LIB_BACKENDS_CUDA_STATUS_H_
#define REASONRT_LIB_BACKENDS_CUDA_STATUS_H_

#include <cuda_runtime.h>

#include <string_view>

#include "absl/status/status.h"

namespace reasonrt::cuda {

// OK for cudaSuccess; else ResourceExhausted (out of memory) or Internal, the message naming
// `what` and CUDA's own text. Clears a non-sticky error so later calls are not blamed for it.
absl::Status CudaStatus(cudaError_t e, std::string_view what);

}  // namespace reasonrt::cuda

#endif  // REASONRT_LIB_BACKENDS_CUDA_STATUS_H_
