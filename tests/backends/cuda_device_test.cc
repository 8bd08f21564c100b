#include "lib/backends/cuda/device.h"

#include "gtest/gtest.h"

namespace reasonrt::cuda {
namespace {

// Runs everywhere: without a GPU or driver the list is empty (and nothing crashes);
// with one, each device must run our kernel.
TEST(CudaDeviceTest, ListDevicesAndSmokeTest) {
  const std::vector<DeviceInfo> devices = ListDevices();
  if (devices.empty()) GTEST_SKIP() << "no CUDA device here";
  for (const DeviceInfo& d : devices) {
    EXPECT_GE(d.compute_major, 7) << d.name;
    EXPECT_TRUE(SmokeTestDevice(d.index)) << d.name;
  }
}

}  // namespace
}  // namespace reasonrt::cuda
