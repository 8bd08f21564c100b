// lib/backends/cuda/kernel_util.cuh: what the CUDA backend's kernel files share: element
// loads by dtype, warp and block reductions, launch helpers, and programmatic dependent
// launch. Included by gemv.cu, attention.cu and ops.cu only; everything here has internal
// linkage (each file its own copy).
#ifndef REASONRT_LIB_BACKENDS_CUDA_KERNEL_UTIL_CUH_
#define REASONRT_LIB_BACKENDS_CUDA_KERNEL_UTIL_CUH_

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <string_view>
#include <utility>

#include "lib/backends/cuda/kernels.h"

namespace reasonrt::cuda {
namespace {

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;

// ---------------------------------------------------------------------------------------
// Element conversion

__device__ __forceinline__ float Bf16Bits(uint16_t b) {
  return __uint_as_float(static_cast<uint32_t>(b) << 16);
}
__device__ __forceinline__ float F16Bits(uint16_t h) { return __half2float(__ushort_as_half(h)); }
__device__ __forceinline__ float E4m3Bits(uint8_t v) {
  return __half2float(
      __half(__nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(v), __NV_E4M3)));
}

// Element i of an array of dtype D, as f32.
template <DType D>
__device__ __forceinline__ float Load(const void* p, int64_t i) {
  if constexpr (D == DType::kF32) return static_cast<const float*>(p)[i];
  if constexpr (D == DType::kBF16) return Bf16Bits(static_cast<const uint16_t*>(p)[i]);
  if constexpr (D == DType::kF16) return F16Bits(static_cast<const uint16_t*>(p)[i]);
  if constexpr (D == DType::kF8E4M3) return E4m3Bits(static_cast<const uint8_t*>(p)[i]);
  return 0.0f;
}

// The same with the dtype known only at run time (biases, gains: one load per row).
__device__ __forceinline__ float LoadAny(const void* p, int64_t i, DType d) {
  switch (d) {
    case DType::kF32:
      return Load<DType::kF32>(p, i);
    case DType::kBF16:
      return Load<DType::kBF16>(p, i);
    case DType::kF16:
      return Load<DType::kF16>(p, i);
    default:
      return Load<DType::kF8E4M3>(p, i);
  }
}

// Two values as a bf16 pair (round to nearest even; lo in the low half), and four as two pairs.
__device__ __forceinline__ uint32_t PackBf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}
__device__ __forceinline__ uint2 PackBf16x4(float4 v) {
  return make_uint2(PackBf16(v.x, v.y), PackBf16(v.z, v.w));
}

// Four consecutive elements from index i (a multiple of 4) of f32 or bf16 data.
template <DType D>
__device__ __forceinline__ float4 Load4(const void* p, int64_t i) {
  if constexpr (D == DType::kBF16) {
    const uint2 v = *reinterpret_cast<const uint2*>(static_cast<const uint16_t*>(p) + i);
    return make_float4(Bf16Bits(v.x & 0xffff), Bf16Bits(v.x >> 16), Bf16Bits(v.y & 0xffff),
                       Bf16Bits(v.y >> 16));
  } else {
    return *reinterpret_cast<const float4*>(static_cast<const float*>(p) + i);
  }
}

// ---------------------------------------------------------------------------------------
// Reductions

__device__ __forceinline__ float WarpSum(float v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}

__device__ __forceinline__ float WarpMax(float v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, o));
  return v;
}

// Sum (or max) over the block; every thread gets the result. `scratch` holds 32 floats.
template <bool kMax>
__device__ float BlockReduce(float v, float* scratch) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int warps = (blockDim.x + kWarp - 1) / kWarp;
  v = kMax ? WarpMax(v) : WarpSum(v);
  __syncthreads();  // scratch may still be read from a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : (kMax ? -INFINITY : 0.0f);
  return kMax ? WarpMax(v) : WarpSum(v);
}

// silu(g) = g * sigmoid(g), as SiluMul and the gated GEMV (silu_pairs) compute it.
__device__ __forceinline__ float Silu(float g) { return g / (1.0f + expf(-g)); }

// A kernel's shared variable, RRT_SHARED(float[8], sums) for `__shared__ float sums[8]`,
// and its dynamic shared memory, `type name[]`: macros, so that the host emulation in
// tests/backends/cuda_emulation.h can stand in for them (there, a copy per running block).
template <typename T>
using SharedType = T;  // so that an array type can come first
#ifndef RRT_SHARED
#define RRT_SHARED(type, name) __shared__ SharedType<type> name
#endif
#ifndef RRT_DYNAMIC_SHARED
#define RRT_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#endif

inline int Blocks(int64_t n, int threads) { return static_cast<int>((n + threads - 1) / threads); }

// ---------------------------------------------------------------------------------------
// Programmatic dependent launch (sm_90 and later): a kernel launched with it (the decode
// GEMV) may start while the kernel before it on the stream still runs, so it streams its
// first weights during its predecessor's last microseconds and its own launch; it waits
// for the predecessor (all of it, memory included) before it reads activations or writes
// anything. Kernels that often come before a GEMV let it launch from their start. Both are
// no-ops where the code is compiled for older GPUs.

// (The host emulation in tests/backends/cuda_emulation.h defines RRT_EMULATED_PDL and its
// own WaitForPredecessor, which runs a test's stand-in for the kernel before.)
#ifndef RRT_EMULATED_PDL
__device__ __forceinline__ void WaitForPredecessor() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
#endif

__device__ __forceinline__ void LetSuccessorLaunch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Whether launches on the current device may overlap (compute capability 9.0 or later,
// and RRT_CUDA_PDL is not 0).
inline bool DependentLaunchAllowed() {
  static const bool enabled = [] {
    const char* v = std::getenv("RRT_CUDA_PDL");
    return v == nullptr || std::string_view(v) != "0";
  }();
  static std::atomic<int8_t> capable[64] = {};  // per device: 0 unknown, 1 no, 2 yes
  int device = 0;
  if (!enabled || cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= 64) return false;
  int8_t c = capable[device].load(std::memory_order_relaxed);
  if (c == 0) {
    int major = 0;
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
    c = major >= 9 ? 2 : 1;
    capable[device].store(c, std::memory_order_relaxed);
  }
  return c == 2;
}

// kernel<<<grid, block, shared, stream>>>(args...), as a dependent launch where `dependent`
// and allowed.
template <typename... Params, typename... Args>
cudaError_t LaunchMaybeDependent(bool dependent, void (*kernel)(Params...), dim3 grid, dim3 block,
                                 size_t shared, cudaStream_t stream, Args&&... args) {
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared;
  config.stream = stream;
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = 1;
  config.attrs = attribute;
  config.numAttrs = dependent && DependentLaunchAllowed() ? 1 : 0;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

template <typename... Params, typename... Args>
cudaError_t LaunchDependent(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared,
                            cudaStream_t stream, Args&&... args) {
  return LaunchMaybeDependent(true, kernel, grid, block, shared, stream,
                              std::forward<Args>(args)...);
}

// The same, returning the error from the enclosing launcher.
#define RRT_LAUNCH(...)                                                \
  do {                                                                 \
    if (const cudaError_t launch_error = LaunchDependent(__VA_ARGS__); \
        launch_error != cudaSuccess)                                   \
      return launch_error;                                             \
  } while (0)

// The start of a kernel launched as a dependent one: its own successor may launch, then it
// waits for its predecessor before touching memory.
__device__ __forceinline__ void DependentStart() {
  LetSuccessorLaunch();
  WaitForPredecessor();
}

inline bool Aligned16(std::initializer_list<const void*> ps) {
  for (const void* p : ps)
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  return true;
}

}  // namespace
}  // namespace reasonrt::cuda

#endif  // REASONRT_LIB_BACKENDS_CUDA_KERNEL_UTIL_CUH_
