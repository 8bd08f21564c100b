#include "lib/backends/builtin.h"

#include <string>

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
  // Only where a GPU runs our kernels: "cuda" on device 0, "cuda:N" on device N > 0. Above
  // "cpu", so "auto" means the first GPU where there is one (verified on an H200: the
  // conformance suite, and every test that loads models through "auto" run on cuda).
  for (const cuda::DeviceInfo& d : cuda::ListDevices()) {
    if (!cuda::SmokeTestDevice(d.index)) continue;
    const int index = d.index;
    out.emplace_back(index == 0 ? std::string("cuda") : "cuda:" + std::to_string(index),
                     index == 0 ? 20 : 19,
                     [index](const BackendOptions& o) { return cuda::NewCudaBackend(o, index); });
  }
#endif
  return out;
}

}  // namespace reasonrt
