// lib/backends/builtin.h: the backends compiled into this build, for the registry.
#ifndef REASONRT_LIB_BACKENDS_BUILTIN_H_
#define REASONRT_LIB_BACKENDS_BUILTIN_H_

#include <string>
#include <tuple>
#include <vector>

#include "reasonrt/backend.h"

namespace reasonrt {

// (name, priority, factory) of each built-in backend.
std::vector<std::tuple<std::string, int, BackendFactory>> BuiltinBackends();

// One registration function per backend folder.
std::unique_ptr<Backend> NewReferenceBackend();
std::unique_ptr<Backend> NewCpuBackend(const BackendOptions& options);

}  // namespace reasonrt

#endif  // REASONRT_LIB_BACKENDS_BUILTIN_H_
