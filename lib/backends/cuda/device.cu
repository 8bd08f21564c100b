#include <cuda_runtime.h>
#include <dlfcn.h>

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

// The few cuBLAS entry points the peak probe uses, opened at run time.
struct Cublas {
  using Create = int (*)(void**);
  using Destroy = int (*)(void*);
  using GemmEx = int (*)(void*, int, int, int, int, int, const void*, const void*, int, int,
                         const void*, int, int, const void*, void*, int, int, int, int);
  void* lib = nullptr;
  Create create = nullptr;
  Destroy destroy = nullptr;
  GemmEx gemm = nullptr;

  Cublas() {
    for (const char* name : {"libcublas.so.13", "libcublas.so.12", "libcublas.so"}) {
      if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
    }
    if (lib == nullptr) return;
    create = reinterpret_cast<Create>(dlsym(lib, "cublasCreate_v2"));
    destroy = reinterpret_cast<Destroy>(dlsym(lib, "cublasDestroy_v2"));
    gemm = reinterpret_cast<GemmEx>(dlsym(lib, "cublasGemmEx"));
  }
  ~Cublas() {
    if (lib != nullptr) dlclose(lib);
  }
  bool ok() const { return create != nullptr && destroy != nullptr && gemm != nullptr; }
};

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
  Cublas cublas;
  if (!cublas.ok() || cudaSetDevice(index) != cudaSuccess) {
    cudaGetLastError();
    return 0.0;
  }
  void* handle = nullptr;
  if (cublas.create(&handle) != 0) return 0.0;
  void *a = nullptr, *b = nullptr, *c = nullptr;
  double gflops = 0.0;
  const size_t elems_a = size_t(m) * k, elems_b = size_t(k) * n, elems_c = size_t(m) * n;
  if (cudaMalloc(&a, elems_a * 2) == cudaSuccess && cudaMalloc(&b, elems_b * 2) == cudaSuccess &&
      cudaMalloc(&c, elems_c * 4) == cudaSuccess) {
    cudaMemset(a, 0x3c, elems_a * 2);  // bf16 values near 0.01: no overflow, no denormals
    cudaMemset(b, 0x3c, elems_b * 2);
    const float alpha = 1.0f, beta = 0.0f;
    constexpr int kOpN = 0, kOpT = 1, kBf16 = 14, kF32 = 0, kCompute32F = 68, kGemmDefault = -1;
    // Column-major C[n, m] = B^T[n, k] . A[k, m]: row-major y[m, n] = x[m, k] . W[n, k]^T.
    auto run = [&] {
      return cublas.gemm(handle, kOpT, kOpN, n, m, k, &alpha, b, kBf16, k, a, kBf16, k, &beta, c,
                         kF32, n, kCompute32F, kGemmDefault) == 0;
    };
    run();
    const float ms = BestMs(reps, run);
    if (ms > 0) gflops = 2.0 * m * n * k / (ms * 1e-3) / 1e9;
  }
  cudaFree(a);
  cudaFree(b);
  cudaFree(c);
  cublas.destroy(handle);
  cudaGetLastError();
  return gflops;
}

}  // namespace reasonrt::cuda
