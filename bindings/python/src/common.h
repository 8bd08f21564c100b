// Helpers shared by the binding's translation units: status -> Python exception, vectors
// -> numpy arrays.
#ifndef REASONRT_BINDINGS_PYTHON_SRC_COMMON_H_
#define REASONRT_BINDINGS_PYTHON_SRC_COMMON_H_

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace reasonrt::py_binding {

namespace py = pybind11;

[[noreturn]] inline void Raise(const absl::Status& s) {
  const std::string message(s.message());
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange: throw py::value_error(message);
    case absl::StatusCode::kNotFound: {
      PyErr_SetString(PyExc_FileNotFoundError, message.c_str());
      throw py::error_already_set();
    }
    case absl::StatusCode::kResourceExhausted: {
      PyErr_SetString(PyExc_MemoryError, message.c_str());
      throw py::error_already_set();
    }
    case absl::StatusCode::kCancelled: {
      PyErr_SetString(PyExc_KeyboardInterrupt, message.c_str());
      throw py::error_already_set();
    }
    case absl::StatusCode::kUnimplemented: {
      PyErr_SetString(PyExc_NotImplementedError, message.c_str());
      throw py::error_already_set();
    }
    default: throw std::runtime_error(message);
  }
}

template <typename T>
T Check(absl::StatusOr<T> v) {
  if (!v.ok()) Raise(v.status());
  return std::move(*v);
}

template <typename T>
py::array_t<T> ToArray(const std::vector<T>& v) {
  py::array_t<T> a(static_cast<py::ssize_t>(v.size()));
  if (!v.empty()) std::memcpy(a.mutable_data(), v.data(), v.size() * sizeof(T));
  return a;
}

}  // namespace reasonrt::py_binding

#endif  // REASONRT_BINDINGS_PYTHON_SRC_COMMON_H_
