// lib/backends/cuda/device.h: what CUDA devices this process can use.
//
// Built only with RRT_WITH_CUDA. The CUDA runtime is linked statically and loads the
// driver at run time, so a machine without a GPU or driver runs the library unchanged:
// there the functions below report zero devices, never an error.
#ifndef REASONRT_LIB_BACKENDS_CUDA_DEVICE_H_
#define REASONRT_LIB_BACKENDS_CUDA_DEVICE_H_

#include <string>
#include <vector>

namespace reasonrt::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  size_t total_memory = 0;
};

// The usable devices; empty without a GPU, a driver, or CUDA support in this build.
std::vector<DeviceInfo> ListDevices();

// Runs a trivial kernel on device `index` and checks its result: true when the device
// really executes our code (the build carries code for its architecture).
bool SmokeTestDevice(int index);

}  // namespace reasonrt::cuda

#endif  // REASONRT_LIB_BACKENDS_CUDA_DEVICE_H_
