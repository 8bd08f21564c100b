#include <cuda_runtime.h>

#include "lib/backends/cuda/device.h"

namespace reasonrt::cuda {
namespace {

__global__ void AddOneKernel(int* data, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) data[i] += 1;
}

}  // namespace

std::vector<DeviceInfo> ListDevices() {
  std::vector<DeviceInfo> out;
  int count = 0;
  // Without a driver this fails (cudaErrorNoDevice / InsufficientDriver): that means no GPU.
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return out;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    out.push_back({i, prop.name, prop.major, prop.minor, prop.totalGlobalMem});
  }
  return out;
}

bool SmokeTestDevice(int index) {
  if (cudaSetDevice(index) != cudaSuccess) return false;
  constexpr int kN = 1000;
  int host[kN];
  for (int i = 0; i < kN; ++i) host[i] = i;
  int* dev = nullptr;
  if (cudaMalloc(&dev, sizeof(host)) != cudaSuccess) return false;
  bool ok = cudaMemcpy(dev, host, sizeof(host), cudaMemcpyHostToDevice) == cudaSuccess;
  if (ok) {
    AddOneKernel<<<(kN + 255) / 256, 256>>>(dev, kN);
    ok = cudaGetLastError() == cudaSuccess &&
         cudaMemcpy(host, dev, sizeof(host), cudaMemcpyDeviceToHost) == cudaSuccess;
  }
  cudaFree(dev);
  for (int i = 0; ok && i < kN; ++i) ok = host[i] == i + 1;
  return ok;
}

}  // namespace reasonrt::cuda
