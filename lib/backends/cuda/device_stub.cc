// The CUDA device queries of a build without CUDA: no devices.
#include "lib/backends/cuda/device.h"

namespace reasonrt::cuda {

std::vector<DeviceInfo> ListDevices() { return {}; }
bool SmokeTestDevice(int) { return false; }
double MeasureCopyBandwidthGBs(int, int) { return 0.0; }
double MeasureCublasBf16PeakGflops(int, int, int, int, int) { return 0.0; }

}  // namespace reasonrt::cuda
