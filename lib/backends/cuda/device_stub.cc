// The CUDA device queries of a build without CUDA: no devices.
#include "lib/backends/cuda/device.h"

namespace reasonrt::cuda {

std::vector<DeviceInfo> ListDevices() { return {}; }
bool SmokeTestDevice(int) { return false; }

}  // namespace reasonrt::cuda
