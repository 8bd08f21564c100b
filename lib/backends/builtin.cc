#include "lib/backends/builtin.h"

#if RRT_WITH_CUDA
#include "lib/backends/cuda/cuda_backend.h"
#include "lib/backends/cuda/device.h"
#endif

namespace reasonrt {

std::vector<std::tuple<std::string, int, BackendFactory>> BuiltinBackends() {
  std::vector<std::tuple<std::string, int, BackendFactory>> out;
  out.emplace_back("reference", 0, [](const BackendOptions&) -> absl::StatusOr<std::unique_ptr<Backend>> {
    return NewReferenceBackend();
  });
  out.emplace_back("cpu", 10, [](const BackendOptions& o) -> absl::StatusOr<std::unique_ptr<Backend>> {
    return NewCpuBackend(o);
  });
#if RRT_WITH_CUDA
  // Only where a GPU runs our kernels. Below "cpu" for "auto" until the GPU path has been
  // verified end to end on a device; ask for it by name.
  if (!cuda::ListDevices().empty() && cuda::SmokeTestDevice(0)) {
    out.emplace_back("cuda", 5, [](const BackendOptions& o) { return cuda::NewCudaBackend(o, 0); });
  }
#endif
  return out;
}

}  // namespace reasonrt
