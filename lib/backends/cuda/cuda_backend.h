// lib/backends/cuda/cuda_backend.h: the "cuda" backend (NVIDIA GPUs).
//
// Usage: CreateBackend("cuda", {}) (registered only where a device runs our code), or
// LoadOptions::backend = "cuda" for a whole model.
//
// Contracts beyond backend.h:
// - Allocate returns zeroed device memory (stream-ordered, from the device's pool);
//   out of memory is ResourceExhausted.
// - Operands may live on the host or on this device. Host weights (see
//   InvalidateWeightCopies in backend.h) are copied once per device and shared; other host
//   operands are copied in for the call and host outputs copied back before it returns,
//   so the backend passes the same conformance suite as the CPU ones. Models keep their
//   activations and KV cache in Allocate'd device memory, so a forward pass moves only its
//   token ids, positions and block tables in and its logits out.
// - All work runs on one CUDA stream per backend; calls return once their work is queued,
//   except those that write host memory, which wait for it.
// - A kernel that fails leaves the error in the returned status (Internal, naming the
//   operation), never a crash of the host.
#ifndef REASONRT_LIB_BACKENDS_CUDA_CUDA_BACKEND_H_
#define REASONRT_LIB_BACKENDS_CUDA_CUDA_BACKEND_H_

#include <memory>

#include "absl/status/statusor.h"
#include "reasonrt/backend.h"

namespace reasonrt::cuda {

// A backend on CUDA device `device`; FailedPrecondition where there is no such device.
absl::StatusOr<std::unique_ptr<Backend>> NewCudaBackend(const BackendOptions& options, int device);

}  // namespace reasonrt::cuda

#endif  // REASONRT_LIB_BACKENDS_CUDA_CUDA_BACKEND_H_
