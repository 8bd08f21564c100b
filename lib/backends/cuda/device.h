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

// The device's copy bandwidth in GB/s (bytes read plus bytes written per second, as
// device-to-device cudaMemcpy of a 1 GiB buffer moves them, best of `reps`): the roofline
// of decode on the GPU. 0 where there is no such device.
double MeasureCopyBandwidthGBs(int index, int reps = 5);

// What cuBLAS's bf16 GEMM (f32 accumulation) reaches on device `index` for
// [m, k] x [k, n], in GFLOP/s, best of `reps`: the roofline of prompt processing. cuBLAS
// is opened at run time (libcublas.so.13 or .12); 0 where it or the device is missing.
double MeasureCublasBf16PeakGflops(int index, int m, int n, int k, int reps = 5);

}  // namespace reasonrt::cuda

#endif  // REASONRT_LIB_BACKENDS_CUDA_DEVICE_H_
