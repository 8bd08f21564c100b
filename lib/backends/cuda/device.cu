#include <cuda_runtime.h>

#include "lib/backends/cuda/cublas.h"
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

namespace reasonrt::cuda {
namespace {

// Milliseconds of the fastest of `reps` runs of f on the current device.
template <typename F>
float BestMs(int reps, F f) {
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  float best = 0.0f;
  for (int r = 0; r < reps; ++r) {
    cudaEventRecord(start);
    if (!f()) {
      best = 0.0f;
      break;
    }
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float ms = 0.0f;
    cudaEventElapsedTime(&ms, start, stop);
    if (r == 0 || ms < best) best = ms;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return best;
}

}  // namespace

double MeasureCopyBandwidthGBs(int index, int reps) {
  if (cudaSetDevice(index) != cudaSuccess) {
    cudaGetLastError();
    return 0.0;
  }
  constexpr size_t kBytes = size_t{1} << 30;
  void *a = nullptr, *b = nullptr;
  double gbs = 0.0;
  if (cudaMalloc(&a, kBytes) == cudaSuccess && cudaMalloc(&b, kBytes) == cudaSuccess) {
    cudaMemset(a, 1, kBytes);
    const float ms = BestMs(
        reps, [&] { return cudaMemcpy(b, a, kBytes, cudaMemcpyDeviceToDevice) == cudaSuccess; });
    if (ms > 0) gbs = 2.0 * kBytes / (ms * 1e-3) / 1e9;
  }
  cudaFree(a);
  cudaFree(b);
  cudaGetLastError();
  return gbs;
}

double MeasureCublasBf16PeakGflops(int index, int m, int n, int k, int reps) {
  const Cublas* cublas = Cublas::Get();
  if (cublas == nullptr || cudaSetDevice(index) != cudaSuccess) {
    cudaGetLastError();
    return 0.0;
  }
  void* handle = cublas->NewHandle(nullptr);
  if (handle == nullptr) return 0.0;
  void *x = nullptr, *w = nullptr, *y = nullptr;
  double gflops = 0.0;
  const size_t elems_x = size_t(m) * k, elems_w = size_t(n) * k, elems_y = size_t(m) * n;
  if (cudaMalloc(&x, elems_x * 2) == cudaSuccess && cudaMalloc(&w, elems_w * 2) == cudaSuccess &&
      cudaMalloc(&y, elems_y * 4) == cudaSuccess) {
    cudaMemset(x, 0x3c, elems_x * 2);  // bf16 values near 0.01: no overflow, no denormals
    cudaMemset(w, 0x3c, elems_w * 2);
    auto run = [&] {
      return cublas->GemmBf16(handle, m, n, k, x, w, 0.0f, static_cast<float*>(y));
    };
    run();
    const float ms = BestMs(reps, run);
    if (ms > 0) gflops = 2.0 * m * n * k / (ms * 1e-3) / 1e9;
  }
  cudaFree(x);
  cudaFree(w);
  cudaFree(y);
  cublas->Destroy(handle);
  cudaGetLastError();
  return gflops;
}

}  // namespace reasonrt::cuda
