#include "lib/backends/builtin.h"

namespace reasonrt {

std::vector<std::tuple<std::string, int, BackendFactory>> BuiltinBackends() {
  std::vector<std::tuple<std::string, int, BackendFactory>> out;
  out.emplace_back("reference", 0, [](const BackendOptions&) -> absl::StatusOr<std::unique_ptr<Backend>> {
    return NewReferenceBackend();
  });
  out.emplace_back("cpu", 10, [](const BackendOptions& o) -> absl::StatusOr<std::unique_ptr<Backend>> {
    return NewCpuBackend(o);
  });
  return out;
}

}  // namespace reasonrt
