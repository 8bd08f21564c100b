// The CUDA backend's kernels (see kernels.h). First versions, written to be correct and to
// read clearly: the GEMV streams each weight row once for up to 8 activation rows with
// 16-byte loads, several in flight per lane; the GEMM is a shared-memory tiled f32 kernel
// (no tensor cores yet; bf16 prompts go to cuBLAS); decode attention runs one block per
// (query row, head) with an online softmax per warp, or for MLA's latent cache one block
// per (query row, 8 heads) sharing each key read; prompt attention stages each block of
// keys once for a tile of 32 query rows (f32 FMAs, no tensor cores yet).
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

int Blocks(int64_t n, int threads) { return static_cast<int>((n + threads - 1) / threads); }

// ---------------------------------------------------------------------------------------
// Programmatic dependent launch (sm_90 and later): a kernel launched with it (the decode
// GEMV) may start while the kernel before it on the stream still runs, so it streams its
// first weights during its predecessor's last microseconds and its own launch; it waits
// for the predecessor (all of it, memory included) before it reads activations or writes
// anything. Kernels that often come before a GEMV let it launch from their start. Both are
// no-ops where the code is compiled for older GPUs.

__device__ __forceinline__ void WaitForPredecessor() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void LetSuccessorLaunch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Whether launches on the current device may overlap (compute capability 9.0 or later,
// and RRT_CUDA_PDL is not 0).
bool DependentLaunchAllowed() {
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

// ---------------------------------------------------------------------------------------
// MatMul

constexpr int kGemvWarps = 8;

// Eight consecutive weights as loaded: 32 bytes of f32, 16 of f16/bf16, 8 of fp8.
template <DType D>
struct Chunk {
  uint4 v[D == DType::kF32 ? 2 : 1];
};

// The chunk at element i (a multiple of 8) of weight memory w, read past L1 (each weight is
// read once per forward pass: streaming, evict first).
template <DType D>
__device__ __forceinline__ Chunk<D> LoadChunk(const void* w, int64_t i) {
  Chunk<D> c;
  if constexpr (D == DType::kF32) {
    const uint4* p = reinterpret_cast<const uint4*>(static_cast<const float*>(w) + i);
    c.v[0] = __ldcs(p), c.v[1] = __ldcs(p + 1);
  } else if constexpr (D == DType::kF8E4M3) {
    const uint2 v = __ldcs(reinterpret_cast<const uint2*>(static_cast<const uint8_t*>(w) + i));
    c.v[0] = make_uint4(v.x, v.y, 0, 0);
  } else {
    c.v[0] = __ldcs(reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(w) + i));
  }
  return c;
}

template <DType D>
__device__ __forceinline__ void Convert(const Chunk<D>& c, float out[8]) {
  if constexpr (D == DType::kF32) {
    const uint32_t words[8] = {c.v[0].x, c.v[0].y, c.v[0].z, c.v[0].w,
                               c.v[1].x, c.v[1].y, c.v[1].z, c.v[1].w};
    for (int j = 0; j < 8; ++j) out[j] = __uint_as_float(words[j]);
  } else if constexpr (D == DType::kF8E4M3) {
    for (int j = 0; j < 4; ++j) out[j] = E4m3Bits((c.v[0].x >> (8 * j)) & 0xff);
    for (int j = 0; j < 4; ++j) out[4 + j] = E4m3Bits((c.v[0].y >> (8 * j)) & 0xff);
  } else {
    const uint32_t words[4] = {c.v[0].x, c.v[0].y, c.v[0].z, c.v[0].w};
    for (int j = 0; j < 4; ++j) {
      const uint16_t lo = words[j] & 0xffff, hi = words[j] >> 16;
      out[2 * j] = D == DType::kBF16 ? Bf16Bits(lo) : F16Bits(lo);
      out[2 * j + 1] = D == DType::kBF16 ? Bf16Bits(hi) : F16Bits(hi);
    }
  }
}

// Chunks each lane has in flight per step: enough bytes in flight per multiprocessor to
// cover the memory latency at full bandwidth (on an H200, 16 for bf16 decoded a 7B model at
// 165 tokens/s against 8's 181-184).
template <DType D>
constexpr int kChunksInFlight = D == DType::kF32 ? 4 : 8;

// kSplit warps per weight row of the batch's segments (rows numbered across them), each
// over its kSplit-th of the row's chunks: lane l reads chunks l, l + 32, ... of its range,
// kChunksInFlight at a time before using any, and multiplies each with the same 8 columns
// of all R activation rows; the kSplit partial sums meet in shared memory. Needs k % 8 == 0
// and 16-byte aligned x, weights (8 for fp8).
template <DType D, int R, int kSplit>
__global__ void __launch_bounds__(kGemvWarps * kWarp)
    GemvKernel(const float* __restrict__ x, int64_t k, const __grid_constant__ GemvBatch b) {
  constexpr int kU = kChunksInFlight<D>;
  LetSuccessorLaunch();  // takes effect once every block has started: the last wave
  __shared__ float partial[kSplit > 1 ? kGemvWarps : 1][R];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, part = warp % kSplit;
  const int64_t global_row =
      static_cast<int64_t>(blockIdx.x) * (kGemvWarps / kSplit) + warp / kSplit;
  const bool live = global_row < b.first_row[b.count];
  int s = 0;
  while (live && global_row >= b.first_row[s + 1]) ++s;
  const GemvSegment& g = b.segments[s];
  const int64_t row = global_row - b.first_row[s], chunks = k / 8;
  const int64_t per_part = (chunks + kSplit - 1) / kSplit, begin = part * per_part;
  const int64_t end = live ? min(chunks, begin + per_part) : 0;
  const float* row_scales =
      D == DType::kF8E4M3 ? g.scale_inv + (row / 128) * g.scale_cols : nullptr;
  float acc[R];
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = 0.0f;
  bool waited = false;
  for (int64_t base = begin + lane; base < end; base += kU * kWarp) {
    Chunk<D> c[kU];
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int64_t ch = base + u * kWarp;
      if (ch < end) c[u] = LoadChunk<D>(g.w, row * k + ch * 8);
    }
    if (!waited) WaitForPredecessor(), waited = true;  // x comes from the kernel before
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int64_t ch = base + u * kWarp;
      if (ch >= end) break;
      float wv[8];
      Convert<D>(c[u], wv);
      if constexpr (D == DType::kF8E4M3) {
        const float scale = row_scales[ch / 16];  // 128 columns a scale block
        for (int j = 0; j < 8; ++j) wv[j] *= scale;
      }
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const float4* xv = reinterpret_cast<const float4*>(x + r * k + ch * 8);
        const float4 p = xv[0], q = xv[1];
        acc[r] += p.x * wv[0] + p.y * wv[1] + p.z * wv[2] + p.w * wv[3] + q.x * wv[4] +
                  q.y * wv[5] + q.z * wv[6] + q.w * wv[7];
      }
    }
  }
  if (!waited) WaitForPredecessor();  // before any write
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = WarpSum(acc[r]);
  if constexpr (kSplit > 1) {
    if (lane == 0) {
      for (int r = 0; r < R; ++r) partial[warp][r] = acc[r];
    }
    __syncthreads();
    if (part != 0) return;
    for (int r = 0; r < R; ++r) {
      float sum = 0.0f;
      for (int w = 0; w < kSplit; ++w) sum += partial[warp + w][r];
      acc[r] = sum;
    }
  }
  if (!live || lane != 0) return;
  const float bias = g.bias != nullptr ? LoadAny(g.bias, row, g.bias_dtype) : 0.0f;
  for (int r = 0; r < R; ++r) g.y[r * g.n + row] = acc[r] + bias;
}

// 2 to 8 activation rows against bf16 weights on tensor cores (mma.sync m16n8k16: the
// weights as A, 16 rows a block; the activation rows, rounded to bf16, as B's 8 columns;
// f32 sums). The 8 warps of a block split k; each lane loads 16 bytes of each of its two
// weight rows (g and g + 8) per 32 columns, kMmaChunks at a time before using any. As the
// sum over k does not depend on its order, the 32 columns a lane loads are given to the mma
// in a permuted order that the activations follow too, so no shuffling is needed. Needs
// k % 32 == 0 and 16-byte aligned weights and x.
constexpr int kMmaWarps = 8, kMmaChunks = 4;

__device__ __forceinline__ uint32_t PackBf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

__device__ __forceinline__ void MmaBf16(float c[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                        uint32_t a3, uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#endif
}

__global__ void __launch_bounds__(kMmaWarps* kWarp)
    GemvMmaKernel(const float* __restrict__ x, int64_t t, int64_t k,
                  const __grid_constant__ GemvBatch b) {
  LetSuccessorLaunch();
  __shared__ float partial[kMmaWarps][kWarp][4];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int g = lane / 4, q = lane % 4;
  const int64_t total = b.first_row[b.count];
  // This lane's two weight rows (g and g + 8 of the block's 16): segment and row in it.
  const __nv_bfloat16* w_row[2];
  for (int h = 0; h < 2; ++h) {
    const int64_t row = static_cast<int64_t>(blockIdx.x) * 16 + g + 8 * h;
    const int64_t clamped = row < total ? row : 0;  // a row past the end reads row 0
    int s = 0;
    while (clamped >= b.first_row[s + 1]) ++s;
    w_row[h] = static_cast<const __nv_bfloat16*>(b.segments[s].w) + (clamped - b.first_row[s]) * k;
  }
  const int64_t blocks32 = k / 32, per_warp = (blocks32 + kMmaWarps - 1) / kMmaWarps;
  const int64_t begin = warp * per_warp, end = min(blocks32, begin + per_warp);
  const float* x_row = x + g * k;  // activation row g (rows >= t read as zeros)
  float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  bool waited = false;
  for (int64_t base = begin; base < end; base += kMmaChunks) {
    uint4 wa[kMmaChunks], wb[kMmaChunks];
#pragma unroll
    for (int u = 0; u < kMmaChunks; ++u) {
      if (base + u < end) {
        const int64_t col = (base + u) * 32 + 8 * q;
        wa[u] = __ldcs(reinterpret_cast<const uint4*>(w_row[0] + col));
        wb[u] = __ldcs(reinterpret_cast<const uint4*>(w_row[1] + col));
      }
    }
    if (!waited) WaitForPredecessor(), waited = true;  // x comes from the kernel before
#pragma unroll
    for (int u = 0; u < kMmaChunks; ++u) {
      if (base + u >= end) break;
      const int64_t col = (base + u) * 32 + 8 * q;
      uint4 xb = make_uint4(0, 0, 0, 0);
      if (g < t) {
        const float4 lo = *reinterpret_cast<const float4*>(x_row + col),
                     hi = *reinterpret_cast<const float4*>(x_row + col + 4);
        xb = make_uint4(PackBf16(lo.x, lo.y), PackBf16(lo.z, lo.w), PackBf16(hi.x, hi.y),
                        PackBf16(hi.z, hi.w));
      }
      MmaBf16(c, wa[u].x, wb[u].x, wa[u].y, wb[u].y, xb.x, xb.y);
      MmaBf16(c, wa[u].z, wb[u].z, wa[u].w, wb[u].w, xb.z, xb.w);
    }
  }
  if (!waited) WaitForPredecessor();  // before any write
  for (int i = 0; i < 4; ++i) partial[warp][lane][i] = c[i];
  __syncthreads();
  if (warp != 0) return;
  for (int i = 0; i < 4; ++i) {
    float sum = 0.0f;
    for (int w = 0; w < kMmaWarps; ++w) sum += partial[w][lane][i];
    c[i] = sum;
  }
  // c[0], c[1]: weight row g, activation rows 2q and 2q + 1; c[2], c[3]: weight row g + 8.
  for (int h = 0; h < 2; ++h) {
    const int64_t row = static_cast<int64_t>(blockIdx.x) * 16 + g + 8 * h;
    if (row >= total) continue;
    int s = 0;
    while (row >= b.first_row[s + 1]) ++s;
    const GemvSegment& seg = b.segments[s];
    const int64_t local = row - b.first_row[s];
    const float bias = seg.bias != nullptr ? LoadAny(seg.bias, local, seg.bias_dtype) : 0.0f;
    for (int j = 0; j < 2; ++j) {
      const int n = 2 * q + j;
      if (n < t) seg.y[n * seg.n + local] = c[2 * h + j] + bias;
    }
  }
}

// The same for any k and alignment, one element per lane at a time (a fallback: no model
// shape takes it).
template <DType D, int R>
__global__ void GemvScalarKernel(const float* __restrict__ x, int64_t k,
                                 const __grid_constant__ GemvBatch b) {
  const int lane = threadIdx.x % kWarp;
  const int64_t global_row = static_cast<int64_t>(blockIdx.x) * kGemvWarps + threadIdx.x / kWarp;
  if (global_row >= b.first_row[b.count]) return;
  int s = 0;
  while (global_row >= b.first_row[s + 1]) ++s;
  const GemvSegment& g = b.segments[s];
  const int64_t row = global_row - b.first_row[s];
  const float* row_scales =
      D == DType::kF8E4M3 ? g.scale_inv + (row / 128) * g.scale_cols : nullptr;
  float acc[R];
  for (int r = 0; r < R; ++r) acc[r] = 0.0f;
  for (int64_t c = lane; c < k; c += kWarp) {
    float wv = Load<D>(g.w, row * k + c);
    if constexpr (D == DType::kF8E4M3) wv *= row_scales[c / 128];
#pragma unroll
    for (int r = 0; r < R; ++r) acc[r] += x[r * k + c] * wv;
  }
  const float bias = g.bias != nullptr ? LoadAny(g.bias, row, g.bias_dtype) : 0.0f;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const float sum = WarpSum(acc[r]);
    if (lane == 0) g.y[r * g.n + row] = sum + bias;
  }
}

__global__ void SplitColumnsKernel(const float* all, int64_t t,
                                   const __grid_constant__ GemvBatch b) {
  const int64_t width = b.first_row[b.count];
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= t * width) return;
  const int64_t r = i / width, c = i % width;
  int s = 0;
  while (c >= b.first_row[s + 1]) ++s;
  const GemvSegment& g = b.segments[s];
  const int64_t col = c - b.first_row[s];
  g.y[r * g.n + col] = all[i] + (g.bias != nullptr ? LoadAny(g.bias, col, g.bias_dtype) : 0.0f);
}

constexpr int kTile = 64, kTileK = 16;

// y[m0 .. m0 + 64, n0 .. n0 + 64] by one block of 256 threads, 4x4 outputs each, through
// shared-memory tiles of x and of the (converted) weights.
template <DType D>
__global__ void GemmKernel(const float* __restrict__ x, int64_t t, int64_t k,
                           const void* __restrict__ w, const float* __restrict__ scale_inv,
                           int64_t scale_cols, const void* __restrict__ bias, DType bias_dtype,
                           int64_t n, float* __restrict__ y) {
  __shared__ float xs[kTileK][kTile + 4];
  __shared__ float ws[kTileK][kTile + 4];
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kTile,
                n0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < k; k0 += kTileK) {
    for (int i = threadIdx.x; i < kTile * kTileK; i += blockDim.x) {
      const int r = i / kTileK, kk = i % kTileK;
      const int64_t gk = k0 + kk;
      const int64_t gm = m0 + r, gn = n0 + r;
      xs[kk][r] = gm < t && gk < k ? x[gm * k + gk] : 0.0f;
      float wv = 0.0f;
      if (gn < n && gk < k) {
        wv = Load<D>(w, gn * k + gk);
        if constexpr (D == DType::kF8E4M3) wv *= scale_inv[(gn / 128) * scale_cols + gk / 128];
      }
      ws[kk][r] = wv;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      float a[4], b[4];
      for (int i = 0; i < 4; ++i) a[i] = xs[kk][ty * 4 + i];
      for (int j = 0; j < 4; ++j) b[j] = ws[kk][tx * 4 + j];
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
  for (int i = 0; i < 4; ++i) {
    const int64_t gm = m0 + ty * 4 + i;
    if (gm >= t) continue;
    for (int j = 0; j < 4; ++j) {
      const int64_t gn = n0 + tx * 4 + j;
      if (gn < n)
        y[gm * n + gn] = acc[i][j] + (bias != nullptr ? LoadAny(bias, gn, bias_dtype) : 0.0f);
    }
  }
}

// Rows split over kGemvSplit warps when a launch has too few rows to keep every
// multiprocessor streaming (a down projection: few, long rows; q, k and v) and each part
// still gives every lane a chunk.
constexpr int kGemvSplit = 4;
constexpr int64_t kGemvSplitBelowRows = 8192;

template <DType D, int R>
cudaError_t LaunchGemv(const float* x, int64_t k, const GemvBatch& b, bool vec,
                       cudaStream_t stream) {
  const int64_t rows = b.first_row[b.count];
  int split = b.split;
  if (split == 0)
    split = rows < kGemvSplitBelowRows && k / 8 >= kGemvSplit * kWarp ? kGemvSplit : 1;
  const int threads = kGemvWarps * kWarp;
  if (!vec) {
    GemvScalarKernel<D, R><<<Blocks(rows, kGemvWarps), threads, 0, stream>>>(x, k, b);
    return cudaGetLastError();
  }
  switch (split) {
    case 8:
      return LaunchMaybeDependent(b.weights_settled, GemvKernel<D, R, 8>,
                                  Blocks(rows, kGemvWarps / 8), threads, 0, stream, x, k, b);
    case 4:
      return LaunchMaybeDependent(b.weights_settled, GemvKernel<D, R, 4>,
                                  Blocks(rows, kGemvWarps / 4), threads, 0, stream, x, k, b);
    case 2:
      return LaunchMaybeDependent(b.weights_settled, GemvKernel<D, R, 2>,
                                  Blocks(rows, kGemvWarps / 2), threads, 0, stream, x, k, b);
    default:
      return LaunchMaybeDependent(b.weights_settled, GemvKernel<D, R, 1>, Blocks(rows, kGemvWarps),
                                  threads, 0, stream, x, k, b);
  }
}

template <DType D>
cudaError_t GemvTyped(const float* x, int64_t t, int64_t k, const GemvBatch& b,
                      cudaStream_t stream) {
  const uintptr_t align = D == DType::kF8E4M3 ? 8 : 16;
  bool vec = k % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
  for (int s = 0; s < b.count; ++s)
    vec = vec && reinterpret_cast<uintptr_t>(b.segments[s].w) % align == 0;
  if (D == DType::kBF16 && b.round_activations && t >= 2 && vec && k % 32 == 0) {
    return LaunchMaybeDependent(b.weights_settled, GemvMmaKernel, Blocks(b.first_row[b.count], 16),
                                kMmaWarps * kWarp, 0, stream, x, t, k, b);
  }
  switch (t) {
    case 1:
      return LaunchGemv<D, 1>(x, k, b, vec, stream);
    case 2:
      return LaunchGemv<D, 2>(x, k, b, vec, stream);
    case 3:
      return LaunchGemv<D, 3>(x, k, b, vec, stream);
    case 4:
      return LaunchGemv<D, 4>(x, k, b, vec, stream);
    case 5:
      return LaunchGemv<D, 5>(x, k, b, vec, stream);
    case 6:
      return LaunchGemv<D, 6>(x, k, b, vec, stream);
    case 7:
      return LaunchGemv<D, 7>(x, k, b, vec, stream);
    default:
      return LaunchGemv<D, 8>(x, k, b, vec, stream);
  }
}

template <DType D>
cudaError_t MatMulTyped(const float* x, int64_t t, int64_t k, const void* w, const float* s,
                        int64_t sc, const void* bias, DType bd, int64_t n, float* y,
                        cudaStream_t stream, bool weights_settled, bool round_activations) {
  if (t > kMaxGemvRows) {
    const dim3 grid(Blocks(n, kTile), Blocks(t, kTile));
    GemmKernel<D><<<grid, 256, 0, stream>>>(x, t, k, w, s, sc, bias, bd, n, y);
    return cudaGetLastError();
  }
  GemvBatch b{};
  b.count = 1;
  b.segments[0] = GemvSegment{w, s, sc, bias, bd, n, y};
  b.first_row[1] = n;
  b.weights_settled = weights_settled;
  b.round_activations = round_activations;
  return GemvTyped<D>(x, t, k, b, stream);
}

// ---------------------------------------------------------------------------------------
// Small ops

template <DType D>
__global__ void HeadMatMulKernel(HeadMatMulArgs a) {
  const int lane = threadIdx.x % kWarp;
  const int64_t out = static_cast<int64_t>(blockIdx.x) * (blockDim.x / kWarp) + threadIdx.x / kWarp;
  if (out >= a.t * a.heads * a.n) return;
  const int64_t j = out % a.n, h = (out / a.n) % a.heads, t = out / (a.n * a.heads);
  const float* xv = a.x + t * a.x_stride_t + h * a.x_stride_h;
  const int64_t wh = h * a.w_stride_h;
  float acc = 0.0f;
  for (int64_t i = lane; i < a.k; i += kWarp) {
    const int64_t wi = a.out_in ? wh + j * a.w_stride_row + i : wh + i * a.w_stride_row + j;
    acc += xv[i] * Load<D>(a.w, wi);
  }
  acc = WarpSum(acc);
  if (lane == 0) a.y[t * a.y_stride_t + h * a.y_stride_h + j] = acc;
}

__global__ void AddWeightedRowsKernel(const float* x, const float* weights, int64_t t, int64_t k,
                                      int64_t h, float* out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= t * h) return;
  const int64_t row = i / h, col = i % h;
  float o = out[i];
  for (int64_t j = 0; j < k; ++j) o += weights[row * k + j] * x[(row * k + j) * h + col];
  out[i] = o;
}

constexpr int kNormThreads = 256, kNormVectors = 8;  // rows up to 8192 wide stay in registers

// One block per row. Rows of a multiple of 4 values, 16-byte aligned and at most
// 4 * kNormThreads * kNormVectors wide are read once, in float4s kept in registers. With
// delta, x's row first becomes x + delta (written back: the residual stream). A settled
// gain (written by no kernel on the stream) is read before waiting for the kernel before.
__global__ void __launch_bounds__(kNormThreads)
    RmsNormKernel(float* x, int64_t x_stride, const float* delta, const void* gain,
                  DType gain_dtype, bool gain_settled, int64_t h, float eps, float* y,
                  int64_t y_stride, bool vec) {
  LetSuccessorLaunch();
  __shared__ float scratch[32];
  const int64_t n4 = vec ? h / 4 : 0;
  float4 g[kNormVectors];
  auto load_gains = [&] {
#pragma unroll
    for (int j = 0; j < kNormVectors; ++j) {
      const int64_t i = threadIdx.x + j * kNormThreads;
      g[j] = i < n4
                 ? make_float4(
                       LoadAny(gain, 4 * i, gain_dtype), LoadAny(gain, 4 * i + 1, gain_dtype),
                       LoadAny(gain, 4 * i + 2, gain_dtype), LoadAny(gain, 4 * i + 3, gain_dtype))
                 : make_float4(0, 0, 0, 0);
    }
  };
  if (gain_settled) load_gains();
  WaitForPredecessor();
  if (!gain_settled) load_gains();
  float* in = x + blockIdx.x * x_stride;
  const float* d = delta != nullptr ? delta + blockIdx.x * h : nullptr;
  float* o = y + blockIdx.x * y_stride;
  float sum_sq = 0.0f;
  if (vec) {
    float4 v[kNormVectors];
#pragma unroll
    for (int j = 0; j < kNormVectors; ++j) {
      const int64_t i = threadIdx.x + j * kNormThreads;
      v[j] = i < n4 ? reinterpret_cast<const float4*>(in)[i] : make_float4(0, 0, 0, 0);
      if (d != nullptr && i < n4) {
        const float4 e = reinterpret_cast<const float4*>(d)[i];
        v[j].x += e.x, v[j].y += e.y, v[j].z += e.z, v[j].w += e.w;
        reinterpret_cast<float4*>(in)[i] = v[j];
      }
      sum_sq += v[j].x * v[j].x + v[j].y * v[j].y + v[j].z * v[j].z + v[j].w * v[j].w;
    }
    sum_sq = BlockReduce<false>(sum_sq, scratch);
    const float inv = 1.0f / sqrtf(sum_sq / static_cast<float>(h) + eps);
#pragma unroll
    for (int j = 0; j < kNormVectors; ++j) {
      const int64_t i = threadIdx.x + j * kNormThreads;
      if (i >= n4) break;
      reinterpret_cast<float4*>(o)[i] = make_float4(v[j].x * inv * g[j].x, v[j].y * inv * g[j].y,
                                                    v[j].z * inv * g[j].z, v[j].w * inv * g[j].w);
    }
    return;
  }
  // Each thread reads back only the values it wrote itself.
  for (int64_t i = threadIdx.x; i < h; i += blockDim.x) {
    if (d != nullptr) in[i] += d[i];
    sum_sq += in[i] * in[i];
  }
  sum_sq = BlockReduce<false>(sum_sq, scratch);
  const float inv = 1.0f / sqrtf(sum_sq / static_cast<float>(h) + eps);
  for (int64_t i = threadIdx.x; i < h; i += blockDim.x)
    o[i] = in[i] * inv * LoadAny(gain, i, gain_dtype);
}

__global__ void RopeKernel(float* x, int64_t t, int64_t heads, int64_t half, int64_t stride_t,
                           int64_t stride_h, const int32_t* positions, const float* inv_freq,
                           bool interleaved, float scale) {
  DependentStart();
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= t * heads * half) return;
  const int64_t i = idx % half, h = (idx / half) % heads, row = idx / (half * heads);
  float* v = x + row * stride_t + h * stride_h;
  const float angle = static_cast<float>(positions[row]) * inv_freq[i];
  const float c = cosf(angle) * scale, s = sinf(angle) * scale;
  float* a = interleaved ? v + 2 * i : v + i;
  float* b = interleaved ? v + 2 * i + 1 : v + i + half;
  const float a0 = *a, b0 = *b;
  *a = a0 * c - b0 * s;
  *b = b0 * c + a0 * s;
}

__global__ void StoreRowsKernel(const float* src, int64_t t, int64_t width, const int64_t* slots,
                                void* cache, DType cache_dtype) {
  DependentStart();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= t * width) return;
  const int64_t row = i / width, col = i % width;
  const int64_t dst = slots[row] * width + col;
  if (cache_dtype == DType::kBF16) {
    static_cast<__nv_bfloat16*>(cache)[dst] = __float2bfloat16_rn(src[i]);
  } else {
    static_cast<float*>(cache)[dst] = src[i];
  }
}

// Rows of keys, then rows of values, one thread a value.
__global__ void StoreKeysAndValuesKernel(const float* k, int64_t k_width, void* k_cache,
                                         const float* v, int64_t v_width, void* v_cache, int64_t t,
                                         const int64_t* slots, DType cache_dtype) {
  DependentStart();
  int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const float* src = k;
  void* cache = k_cache;
  int64_t width = k_width;
  if (i >= t * k_width) {
    i -= t * k_width, src = v, cache = v_cache, width = v_width;
    if (i >= t * v_width) return;
  }
  const int64_t dst = slots[i / width] * width + i % width;
  if (cache_dtype == DType::kBF16) {
    static_cast<__nv_bfloat16*>(cache)[dst] = __float2bfloat16_rn(src[i]);
  } else {
    static_cast<float*>(cache)[dst] = src[i];
  }
}

// Eight values (16 bytes of bf16) a thread: dst row j is the cache row of the sequence's
// key j (its block table's entry j / 16, slot j % 16).
template <DType C>
__global__ void GatherKeysKernel(const void* cache, const int32_t* table, int64_t keys,
                                 int64_t width, __nv_bfloat16* dst) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t eights = width / 8;
  if (i >= keys * eights) return;
  const int64_t j = i / eights, col = (i % eights) * 8;
  const int64_t src = (static_cast<int64_t>(table[j / 16]) * 16 + j % 16) * width + col;
  uint4 out;
  if constexpr (C == DType::kBF16) {
    out = *reinterpret_cast<const uint4*>(static_cast<const __nv_bfloat16*>(cache) + src);
  } else {
    const float4* p = reinterpret_cast<const float4*>(static_cast<const float*>(cache) + src);
    const float4 a = p[0], b = p[1];
    const __nv_bfloat162 w[4] = {__floats2bfloat162_rn(a.x, a.y), __floats2bfloat162_rn(a.z, a.w),
                                 __floats2bfloat162_rn(b.x, b.y), __floats2bfloat162_rn(b.z, b.w)};
    out = *reinterpret_cast<const uint4*>(w);
  }
  *reinterpret_cast<uint4*>(dst + j * width + col) = out;
}

// One warp a (head, query) row of scores, four at a time: max, sum of exponentials, then
// the normalised weights in bf16 (masked keys and the padding up to ld: 0). Scores past
// `seen` (unwritten padding among them) are never used.
__global__ void CausalSoftmaxKernel(const float* s, __nv_bfloat16* p, int64_t total_rows,
                                    int64_t rows, int64_t keys, int64_t ld, int64_t first_keys) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / kWarp) + threadIdx.x / kWarp;
  if (row >= total_rows) return;
  const int lane = threadIdx.x % kWarp;
  const int64_t seen = min(keys, first_keys + row % rows);
  const float4* in = reinterpret_cast<const float4*>(s + row * ld);
  const int64_t quads = (seen + 3) / 4;
  float m = -INFINITY;
  for (int64_t j = lane; j < quads; j += kWarp) {
    const float4 v = in[j];
    const int64_t e = 4 * j;
    m = fmaxf(m, fmaxf(fmaxf(v.x, e + 1 < seen ? v.y : -INFINITY),
                       fmaxf(e + 2 < seen ? v.z : -INFINITY, e + 3 < seen ? v.w : -INFINITY)));
  }
  m = WarpMax(m);
  float total = 0.0f;
  for (int64_t j = lane; j < quads; j += kWarp) {
    const float4 v = in[j];
    const int64_t e = 4 * j;
    total += expf(v.x - m) + (e + 1 < seen ? expf(v.y - m) : 0.0f) +
             (e + 2 < seen ? expf(v.z - m) : 0.0f) + (e + 3 < seen ? expf(v.w - m) : 0.0f);
  }
  const float inv = 1.0f / WarpSum(total);
  uint2* out = reinterpret_cast<uint2*>(p + row * ld);
  for (int64_t j = lane; j < ld / 4; j += kWarp) {
    const int64_t e = 4 * j;
    float4 w = make_float4(0, 0, 0, 0);
    if (e < seen) {
      const float4 v = in[j];
      w = make_float4(expf(v.x - m) * inv, e + 1 < seen ? expf(v.y - m) * inv : 0.0f,
                      e + 2 < seen ? expf(v.z - m) * inv : 0.0f,
                      e + 3 < seen ? expf(v.w - m) * inv : 0.0f);
    }
    const __nv_bfloat162 lo = __floats2bfloat162_rn(w.x, w.y), hi = __floats2bfloat162_rn(w.z, w.w);
    out[j] = make_uint2(*reinterpret_cast<const uint32_t*>(&lo),
                        *reinterpret_cast<const uint32_t*>(&hi));
  }
}

// Four values a thread: dst[h, r, :] = bf16(q[r, h, :]).
__global__ void HeadsFirstKernel(const float* q, int64_t rows, int64_t heads, int64_t d,
                                 __nv_bfloat16* dst) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t quads = d / 4;
  if (i >= rows * heads * quads) return;
  const int64_t c = i % quads, h = (i / quads) % heads, r = i / (quads * heads);
  const float4 v = reinterpret_cast<const float4*>(q)[i];  // q's own order: (r, h, c)
  const __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
  reinterpret_cast<uint2*>(dst)[(h * rows + r) * quads + c] =
      make_uint2(*reinterpret_cast<const uint32_t*>(&lo), *reinterpret_cast<const uint32_t*>(&hi));
}

// Four values a thread: out[r, h, :] = o[h, r, :].
__global__ void RowsFirstKernel(const float* o, int64_t heads, int64_t rows, int64_t d,
                                float* out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t quads = d / 4;
  if (i >= rows * heads * quads) return;
  const int64_t c = i % quads, h = (i / quads) % heads, r = i / (quads * heads);
  reinterpret_cast<float4*>(out)[i] =
      reinterpret_cast<const float4*>(o)[(h * rows + r) * quads + c];
}

constexpr int kAttentionWarps = 4, kMaxValuePerLane = 16;  // dv <= 512
constexpr int kKeysAtOnce = 4;

// The positions [begin, end) of query row r's keys that split `split` of a.splits reads
// (empty for a split past the row's keys).
struct KeyRange {
  int64_t begin, end;
};
__device__ __forceinline__ KeyRange SplitKeys(const AttentionArgs& a, int64_t r, int64_t split) {
  const int64_t n_keys = static_cast<int64_t>(a.row_position[r]) + 1;
  const int64_t per_split = (n_keys + a.splits - 1) / a.splits;
  const int64_t begin = split * per_split;
  return {begin, begin + per_split < n_keys ? begin + per_split : n_keys};
}

// One block per (query row, head, split of the keys); warp w takes the split's keys in
// groups of kKeysAtOnce (groups w, w + 4, ...) with its own running max, denominator and
// weighted value sum; the four are merged at the end. With one split the block writes the
// output; with several (decode: few rows, long contexts) it writes its split's max,
// denominator and unnormalized values to a.partial, and AttentionCombineKernel merges the
// splits.
template <DType C>
__global__ void AttentionKernel(AttentionArgs a) {
  DependentStart();
  extern __shared__ float shared[];
  float* qs = shared;                            // dk
  float* accs = qs + a.dk;                       // kAttentionWarps * dv
  float* maxes = accs + kAttentionWarps * a.dv;  // kAttentionWarps
  float* sums = maxes + kAttentionWarps;         // kAttentionWarps
  const int64_t r = blockIdx.x, h = blockIdx.y, split = blockIdx.z, splits = a.splits;
  if (a.row_position[r] < 0) return;  // a row no sequence covers
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  for (int64_t d = threadIdx.x; d < a.dk; d += blockDim.x)
    qs[d] = a.q[(r * a.heads + h) * a.dk + d];
  __syncthreads();
  const int64_t kvh = h / (a.heads / a.kv_heads);
  const int32_t* table = a.tables + a.table_offset[r];
  const auto [begin, end] = SplitKeys(a, r, split);
  const void* vals = a.v != nullptr ? a.v : a.k;
  float m = -INFINITY, l = 0.0f, acc[kMaxValuePerLane];
  for (int j = 0; j < kMaxValuePerLane; ++j) acc[j] = 0.0f;
  // kKeysAtOnce keys a step, their loads issued together: one memory latency per step
  // rather than per key. A key past the range repeats the first with weight 0.
  for (int64_t first = begin + warp * kKeysAtOnce; first < end;
       first += kAttentionWarps * kKeysAtOnce) {
    int64_t key[kKeysAtOnce], val[kKeysAtOnce];
#pragma unroll
    for (int i = 0; i < kKeysAtOnce; ++i) {
      const int64_t p = first + i < end ? first + i : first;
      const int64_t slot = static_cast<int64_t>(table[p / 16]) * 16 + p % 16;
      key[i] = (slot * a.kv_heads + kvh) * a.dk;
      val[i] = a.v != nullptr ? (slot * a.kv_heads + kvh) * a.dv : key[i];
    }
    float dot[kKeysAtOnce] = {};
    for (int64_t d = lane; d < a.dk; d += kWarp) {
      const float qd = qs[d];
#pragma unroll
      for (int i = 0; i < kKeysAtOnce; ++i) dot[i] += qd * Load<C>(a.k, key[i] + d);
    }
    float s[kKeysAtOnce], m_new = m;
#pragma unroll
    for (int i = 0; i < kKeysAtOnce; ++i) {
      s[i] = first + i < end ? WarpSum(dot[i]) * a.scale : -INFINITY;
      m_new = fmaxf(m_new, s[i]);
    }
    const float correction = expf(m - m_new);  // m_new is finite: key `first` is in range
    float weight[kKeysAtOnce];
    l *= correction;
#pragma unroll
    for (int i = 0; i < kKeysAtOnce; ++i) l += (weight[i] = expf(s[i] - m_new));
#pragma unroll
    for (int j = 0; j < kMaxValuePerLane; ++j) {
      const int64_t d = lane + kWarp * j;
      if (d >= a.dv) break;
      float o = acc[j] * correction;
#pragma unroll
      for (int i = 0; i < kKeysAtOnce; ++i) o += weight[i] * Load<C>(vals, val[i] + d);
      acc[j] = o;
    }
    m = m_new;
  }
  if (lane == 0) maxes[warp] = m, sums[warp] = l;
  for (int j = 0; j < kMaxValuePerLane; ++j) {
    const int64_t d = lane + kWarp * j;
    if (d < a.dv) accs[warp * a.dv + d] = acc[j];
  }
  __syncthreads();
  float top = -INFINITY;
  for (int w = 0; w < kAttentionWarps; ++w) top = fmaxf(top, maxes[w]);
  float total = 0.0f, factor[kAttentionWarps];
  for (int w = 0; w < kAttentionWarps; ++w) {
    // 0 for a warp that saw no key (and for all of them in a split past the row's keys).
    factor[w] = maxes[w] == -INFINITY ? 0.0f : expf(maxes[w] - top);
    total += sums[w] * factor[w];
  }
  // Several splits: partial[(r, h, split)] holds the max, the denominator, then dv
  // unnormalized values.
  float* part = splits == 1 ? nullptr : a.partial + ((r * a.heads + h) * splits + split) * (a.dv + 2);
  if (part != nullptr && threadIdx.x == 0) part[0] = top, part[1] = total;
  for (int64_t d = threadIdx.x; d < a.dv; d += blockDim.x) {
    float o = 0.0f;
    for (int w = 0; w < kAttentionWarps; ++w) o += accs[w * a.dv + d] * factor[w];
    if (part == nullptr) {
      a.out[(r * a.heads + h) * a.dv + d] = o / total;
    } else {
      part[2 + d] = o;
    }
  }
}

// MLA's absorbed decode: one latent cache row (kv_heads 1, no values: the first dv dims of
// each key are its value) read by every head. AttentionKernel would read each key once per
// head (128 times for DeepSeek-V3); this kernel reads it once per kMlaHeads heads. One
// block per (query row, tile of kMlaHeads heads, split of the keys): the block stages
// kMlaKeys keys at a time in shared memory, then warp w (head tile * kMlaHeads + w) scores
// them with its query, kept in registers, and folds them into its running max, denominator
// and weighted value sum. Splits write a.partial in AttentionKernel's layout, for
// AttentionCombineKernel.
constexpr int kMlaHeads = 8, kMlaKeys = 8, kMlaMaxKeyPerLane = 18;  // dk <= 576

template <DType C>
__global__ void MlaDecodeKernel(AttentionArgs a) {
  DependentStart();
  extern __shared__ float keys[];  // kMlaKeys * dk
  const int64_t r = blockIdx.x, split = blockIdx.z, splits = a.splits;
  if (a.row_position[r] < 0) return;  // a row no sequence covers (the whole block returns)
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int64_t h = static_cast<int64_t>(blockIdx.y) * kMlaHeads + warp;
  const bool live = h < a.heads;  // a warp past the last head still helps stage the keys
  float q[kMlaMaxKeyPerLane];
#pragma unroll
  for (int j = 0; j < kMlaMaxKeyPerLane; ++j) {
    const int64_t d = lane + kWarp * j;
    q[j] = live && d < a.dk ? a.q[(r * a.heads + h) * a.dk + d] : 0.0f;
  }
  const int32_t* table = a.tables + a.table_offset[r];
  const auto [begin, end] = SplitKeys(a, r, split);
  float m = -INFINITY, l = 0.0f, acc[kMaxValuePerLane];
  for (int j = 0; j < kMaxValuePerLane; ++j) acc[j] = 0.0f;
  for (int64_t first = begin; first < end; first += kMlaKeys) {
    const int64_t count = end - first < kMlaKeys ? end - first : kMlaKeys;
    __syncthreads();  // every warp is done with the previous keys
    for (int64_t i = threadIdx.x; i < count * a.dk; i += blockDim.x) {
      const int64_t p = first + i / a.dk, d = i % a.dk;
      const int64_t slot = static_cast<int64_t>(table[p / 16]) * 16 + p % 16;
      keys[i] = Load<C>(a.k, slot * a.dk + d);
    }
    __syncthreads();
    if (!live) continue;
    for (int64_t i = 0; i < count; ++i) {
      const float* key = keys + i * a.dk;
      float dot = 0.0f;
#pragma unroll
      for (int j = 0; j < kMlaMaxKeyPerLane; ++j) {
        const int64_t d = lane + kWarp * j;
        if (d < a.dk) dot += q[j] * key[d];
      }
      const float s = WarpSum(dot) * a.scale;
      const float m_new = fmaxf(m, s);
      const float correction = expf(m - m_new), weight = expf(s - m_new);
      l = l * correction + weight;
#pragma unroll
      for (int j = 0; j < kMaxValuePerLane; ++j) {
        const int64_t d = lane + kWarp * j;
        if (d < a.dv) acc[j] = acc[j] * correction + weight * key[d];
      }
      m = m_new;
    }
  }
  if (!live) return;
  if (splits == 1) {
    for (int j = 0; j < kMaxValuePerLane; ++j) {
      const int64_t d = lane + kWarp * j;
      if (d < a.dv) a.out[(r * a.heads + h) * a.dv + d] = acc[j] / l;
    }
    return;
  }
  // A split past the row's keys leaves max -inf and denominator 0: the merge weighs it 0.
  float* part = a.partial + ((r * a.heads + h) * splits + split) * (a.dv + 2);
  if (lane == 0) part[0] = m, part[1] = l;
  for (int j = 0; j < kMaxValuePerLane; ++j) {
    const int64_t d = lane + kWarp * j;
    if (d < a.dv) part[2 + d] = acc[j];
  }
}

// Prompt attention by tiles: one block of 128 threads per (tile of kAttentionTileRows query
// rows of one sequence, head). The tile's queries sit in shared memory; the keys up to the
// tile's last position go through in blocks of kTileKeys, each staged once (as f32) for
// all the tile's rows. Thread t owns rows 2 (t / 8) and 2 (t / 8) + 1: it scores keys
// t % 8 + 8 j of each block and accumulates value dims 4 (t % 8) + 32 m; the 8 threads of
// a row pair share the online softmax's max and denominator through shuffles.
constexpr int kTileKeys = kAttentionTileKeys, kTileThreads = 128, kTilePad = 4;

template <DType C>
__global__ void __launch_bounds__(kTileThreads) TiledAttentionKernel(AttentionArgs a) {
  extern __shared__ float smem[];
  const int64_t qs = a.dk + kTilePad, vs = a.dv + kTilePad;  // row strides, multiples of 4
  float* q_tile = smem;                          // kAttentionTileRows x qs
  float* k_tile = q_tile + kAttentionTileRows * qs;  // kTileKeys x qs
  float* v_tile = k_tile + kTileKeys * qs;           // kTileKeys x vs
  float* p_tile = v_tile + kTileKeys * vs;           // kAttentionTileRows x (kTileKeys + 1)
  constexpr int kPs = kTileKeys + 1;
  const int64_t first_row = a.tiles[2 * blockIdx.x], count = a.tiles[2 * blockIdx.x + 1];
  const int64_t h = blockIdx.y, kvh = h / (a.heads / a.kv_heads);
  const int32_t* table = a.tables + a.table_offset[first_row];
  const int t = threadIdx.x, g = t % 8, i0 = 2 * (t / 8);
  int64_t pos[2];
  for (int r = 0; r < 2; ++r) pos[r] = i0 + r < count ? a.row_position[first_row + i0 + r] : -1;
  int64_t last = 0;  // the tile's last key position
  for (int64_t i = 0; i < count; ++i)
    last = max(last, static_cast<int64_t>(a.row_position[first_row + i]));
  const int kc = static_cast<int>(a.dk / 4), vc = static_cast<int>(a.dv / 4);  // float4s a row
  for (int e = t; e < kAttentionTileRows * kc; e += kTileThreads) {
    const int i = e / kc, c = e % kc;
    *reinterpret_cast<float4*>(q_tile + i * qs + 4 * c) =
        i < count ? Load4<DType::kF32>(a.q, ((first_row + i) * a.heads + h) * a.dk + 4 * c)
                  : make_float4(0, 0, 0, 0);
  }
  const int dv_chunks = static_cast<int>(a.dv / 32);  // float4s a thread owns per row, <= 4
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  float4 o[2][4];
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 4; ++c) o[r][c] = make_float4(0, 0, 0, 0);
  // This block's keys: split blockIdx.z of a.tile_keys_per_split (a multiple of kTileKeys).
  const int64_t key_begin = blockIdx.z * a.tile_keys_per_split;
  if (a.splits > 1) last = min(last, key_begin + a.tile_keys_per_split - 1);
  for (int64_t kt = key_begin; kt <= last; kt += kTileKeys) {
    __syncthreads();  // the previous block's keys, values and weights are used up
    for (int e = t; e < kTileKeys * (kc + vc); e += kTileThreads) {
      const bool is_key = e < kTileKeys * kc;
      const int f = is_key ? e : e - kTileKeys * kc, w = is_key ? kc : vc;
      const int j = f / w, c = f % w;
      const int64_t p = kt + j;
      float4 v = make_float4(0, 0, 0, 0);
      if (p <= last) {
        const int64_t slot = static_cast<int64_t>(table[p / 16]) * 16 + p % 16;
        v = is_key ? Load4<C>(a.k, (slot * a.kv_heads + kvh) * a.dk + 4 * c)
                   : Load4<C>(a.v, (slot * a.kv_heads + kvh) * a.dv + 4 * c);
      }
      *reinterpret_cast<float4*>(is_key ? k_tile + j * qs + 4 * c : v_tile + j * vs + 4 * c) = v;
    }
    __syncthreads();
    float s[2][4] = {};
    for (int64_t d = 0; d < a.dk; d += 4) {
      const float4 qa = *reinterpret_cast<const float4*>(q_tile + i0 * qs + d);
      const float4 qb = *reinterpret_cast<const float4*>(q_tile + (i0 + 1) * qs + d);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float4 kv = *reinterpret_cast<const float4*>(k_tile + (g + 8 * j) * qs + d);
        s[0][j] += qa.x * kv.x + qa.y * kv.y + qa.z * kv.z + qa.w * kv.w;
        s[1][j] += qb.x * kv.x + qb.y * kv.y + qb.z * kv.z + qb.w * kv.w;
      }
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float top = -INFINITY;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        s[r][j] = kt + g + 8 * j <= pos[r] ? s[r][j] * a.scale : -INFINITY;
        top = fmaxf(top, s[r][j]);
      }
      for (int off = 1; off < 8; off *= 2) top = fmaxf(top, __shfl_xor_sync(kFullMask, top, off));
      const float m_new = fmaxf(m[r], top);
      // A row that sees no key yet (or a padding row) keeps max -inf and weighs nothing.
      const float correction = m_new == -INFINITY ? 1.0f : expf(m[r] - m_new);
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float w = m_new == -INFINITY ? 0.0f : expf(s[r][j] - m_new);
        p_tile[(i0 + r) * kPs + g + 8 * j] = w;
        sum += w;
      }
      for (int off = 1; off < 8; off *= 2) sum += __shfl_xor_sync(kFullMask, sum, off);
      l[r] = l[r] * correction + sum;
      m[r] = m_new;
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        o[r][c].x *= correction, o[r][c].y *= correction, o[r][c].z *= correction,
            o[r][c].w *= correction;
      }
    }
    __syncthreads();  // every row's weights are in p_tile
    for (int j = 0; j < kTileKeys; ++j) {
      const float pa = p_tile[i0 * kPs + j], pb = p_tile[(i0 + 1) * kPs + j];
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        if (c >= dv_chunks) break;
        const float4 v = *reinterpret_cast<const float4*>(v_tile + j * vs + 4 * g + 32 * c);
        o[0][c].x += pa * v.x, o[0][c].y += pa * v.y, o[0][c].z += pa * v.z, o[0][c].w += pa * v.w;
        o[1][c].x += pb * v.x, o[1][c].y += pb * v.y, o[1][c].z += pb * v.z, o[1][c].w += pb * v.w;
      }
    }
  }
  for (int r = 0; r < 2; ++r) {
    if (i0 + r >= count) continue;
    const int64_t row = first_row + i0 + r;
    if (a.splits == 1) {
      float* out = a.out + (row * a.heads + h) * a.dv;
      const float inv = 1.0f / l[r];
      for (int c = 0; c < dv_chunks; ++c) {
        *reinterpret_cast<float4*>(out + 4 * g + 32 * c) =
            make_float4(o[r][c].x * inv, o[r][c].y * inv, o[r][c].z * inv, o[r][c].w * inv);
      }
      continue;
    }
    // AttentionKernel's partial layout; a row none of whose keys is in this split leaves
    // max -inf, denominator 0 and values 0, which the merge weighs 0.
    float* part = a.partial + ((row * a.heads + h) * a.splits + blockIdx.z) * (a.dv + 2);
    if (g == 0) part[0] = m[r], part[1] = l[r];
    for (int c = 0; c < dv_chunks; ++c) {
      for (int e = 0; e < 4; ++e) part[2 + 4 * g + 32 * c + e] = (&o[r][c].x)[e];
    }
  }
}

size_t TiledAttentionShared(const AttentionArgs& a) {
  return sizeof(float) * ((kAttentionTileRows + kTileKeys) * (a.dk + kTilePad) +
                          kTileKeys * (a.dv + kTilePad) + kAttentionTileRows * (kTileKeys + 1));
}

bool UseMlaDecode(const AttentionArgs& a) {
  return a.v == nullptr && a.kv_heads == 1 && a.heads >= kMlaHeads && a.dk <= kWarp * kMlaMaxKeyPerLane;
}

// Merges the splits of AttentionKernel: one block per (query row, head); each split's weight
// exp(max_s - max) computed once into shared memory (0 for a split that saw no key).
__global__ void AttentionCombineKernel(AttentionArgs a) {
  DependentStart();
  extern __shared__ float weight[];  // a.splits
  const int64_t r = blockIdx.x, h = blockIdx.y, stride = a.dv + 2;
  if (a.row_position[r] < 0) return;
  const float* parts = a.partial + (r * a.heads + h) * a.splits * stride;
  float top = -INFINITY;
  for (int64_t s = 0; s < a.splits; ++s) top = fmaxf(top, parts[s * stride]);
  for (int64_t s = threadIdx.x; s < a.splits; s += blockDim.x) {
    const float ms = parts[s * stride];
    weight[s] = ms == -INFINITY ? 0.0f : expf(ms - top);
  }
  __syncthreads();
  float total = 0.0f;
  for (int64_t s = 0; s < a.splits; ++s) total += parts[s * stride + 1] * weight[s];
  for (int64_t d = threadIdx.x; d < a.dv; d += blockDim.x) {
    float o = 0.0f;
    for (int64_t s = 0; s < a.splits; ++s) o += parts[s * stride + 2 + d] * weight[s];
    a.out[(r * a.heads + h) * a.dv + d] = o / total;
  }
}

__global__ void SplitBf16Kernel(const float* x, int64_t n, __nv_bfloat16* hi, __nv_bfloat16* lo) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const __nv_bfloat16 h = __float2bfloat16_rn(x[i]);
  hi[i] = h;
  if (lo != nullptr) lo[i] = __float2bfloat16_rn(x[i] - __bfloat162float(h));
}

__global__ void AddBiasKernel(float* y, int64_t t, int64_t n, const void* bias, DType bias_dtype) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < t * n) y[i] += LoadAny(bias, i % n, bias_dtype);
}

__device__ __forceinline__ float Silu(float g) { return g / (1.0f + expf(-g)); }

// Element-wise ops: four elements a thread where n % 4 == 0 and every pointer is 16-byte
// aligned (vec), else one.
__global__ void SiluMulKernel(const float* gate, const float* up, float* out, int64_t n, bool vec) {
  DependentStart();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (vec) {
    if (4 * i >= n) return;
    const float4 g = reinterpret_cast<const float4*>(gate)[i],
                 u = reinterpret_cast<const float4*>(up)[i];
    reinterpret_cast<float4*>(out)[i] =
        make_float4(Silu(g.x) * u.x, Silu(g.y) * u.y, Silu(g.z) * u.z, Silu(g.w) * u.w);
  } else if (i < n) {
    out[i] = Silu(gate[i]) * up[i];
  }
}

__global__ void AddKernel(const float* a, const float* b, float* out, int64_t n, bool vec) {
  DependentStart();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (vec) {
    if (4 * i >= n) return;
    const float4 x = reinterpret_cast<const float4*>(a)[i],
                 y = reinterpret_cast<const float4*>(b)[i];
    reinterpret_cast<float4*>(out)[i] = make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w);
  } else if (i < n) {
    out[i] = a[i] + b[i];
  }
}

bool Aligned16(std::initializer_list<const void*> ps) {
  for (const void* p : ps)
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  return true;
}

template <DType D>
__global__ void GatherRowsKernel(const void* table, int64_t h, const int32_t* ids, int64_t count,
                                 float* out) {
  DependentStart();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count * h) out[i] = Load<D>(table, static_cast<int64_t>(ids[i / h]) * h + i % h);
}

__global__ void ScatterRowsKernel(const float* src, int64_t h, const int32_t* rows, int64_t count,
                                  float* y) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count * h) y[static_cast<int64_t>(rows[i / h]) * h + i % h] = src[i];
}

__global__ void SoftmaxKernel(const float* x, float* out, int64_t n, bool log) {
  __shared__ float scratch[32];
  const float* in = x + blockIdx.x * n;
  float* o = out + blockIdx.x * n;
  float m = -INFINITY;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, in[i]);
  m = BlockReduce<true>(m, scratch);
  float total = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) total += expf(in[i] - m);
  total = BlockReduce<false>(total, scratch);
  const float log_total = logf(total);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    o[i] = log ? (in[i] - m) - log_total : expf(in[i] - m) / total;
  }
}

// (key, index) with NaN keyed as -inf; a before b when its key is larger, or equal with a
// lower index. index -1 is "none" and comes after everything.
__device__ __forceinline__ bool Before(float ka, int32_t ia, float kb, int32_t ib) {
  if (ib < 0) return ia >= 0;
  if (ia < 0) return false;
  return ka > kb || (ka == kb && ia < ib);
}

// k passes over the row, each finding the best element after the previous pass's pick.
__global__ void TopKKernel(const float* x, int64_t n, int64_t k, float* values, int32_t* indices) {
  __shared__ float keys[32];
  __shared__ int32_t ids[32];
  const float* in = x + blockIdx.x * n;
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int warps = blockDim.x / kWarp;
  float prev_key = 0.0f;
  int32_t prev_id = -1;
  for (int64_t pass = 0; pass < k; ++pass) {
    float best_key = -INFINITY;
    int32_t best_id = -1;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float key = isnan(in[i]) ? -INFINITY : in[i];
      const int32_t id = static_cast<int32_t>(i);
      if (prev_id >= 0 && !Before(prev_key, prev_id, key, id)) continue;  // already taken
      if (Before(key, id, best_key, best_id)) best_key = key, best_id = id;
    }
    for (int o = kWarp / 2; o > 0; o /= 2) {
      const float other_key = __shfl_xor_sync(kFullMask, best_key, o);
      const int32_t other_id = __shfl_xor_sync(kFullMask, best_id, o);
      if (Before(other_key, other_id, best_key, best_id)) best_key = other_key, best_id = other_id;
    }
    __syncthreads();
    if (lane == 0) keys[warp] = best_key, ids[warp] = best_id;
    __syncthreads();
    best_key = keys[0], best_id = ids[0];
    for (int w = 1; w < warps; ++w) {
      if (Before(keys[w], ids[w], best_key, best_id)) best_key = keys[w], best_id = ids[w];
    }
    if (threadIdx.x == 0) {
      values[blockIdx.x * k + pass] = in[best_id];
      indices[blockIdx.x * k + pass] = best_id;
    }
    prev_key = best_key, prev_id = best_id;
  }
}

}  // namespace

cudaError_t MatMul(const float* x, int64_t t, int64_t k, const void* w, DType w_dtype,
                   const float* scale_inv, int64_t scale_cols, const void* bias, DType bias_dtype,
                   int64_t n, float* y, cudaStream_t stream, bool weights_settled,
                   bool round_activations) {
  if (t == 0 || n == 0) return cudaSuccess;
  switch (w_dtype) {
    case DType::kF32:
      return MatMulTyped<DType::kF32>(x, t, k, w, scale_inv, scale_cols, bias, bias_dtype, n, y,
                                      stream, weights_settled, round_activations);
    case DType::kBF16:
      return MatMulTyped<DType::kBF16>(x, t, k, w, scale_inv, scale_cols, bias, bias_dtype, n, y,
                                       stream, weights_settled, round_activations);
    case DType::kF16:
      return MatMulTyped<DType::kF16>(x, t, k, w, scale_inv, scale_cols, bias, bias_dtype, n, y,
                                      stream, weights_settled, round_activations);
    case DType::kF8E4M3:
      return MatMulTyped<DType::kF8E4M3>(x, t, k, w, scale_inv, scale_cols, bias, bias_dtype, n, y,
                                         stream, weights_settled, round_activations);
    default:
      return cudaErrorInvalidValue;
  }
}

cudaError_t Gemv(const float* x, int64_t t, int64_t k, DType w_dtype, const GemvBatch& batch,
                 cudaStream_t stream) {
  if (t < 1 || t > kMaxGemvRows || batch.count < 1 || batch.count > kMaxGemvSegments ||
      (batch.split != 0 && batch.split != 1 && batch.split != 2 && batch.split != 4 &&
       batch.split != 8))
    return cudaErrorInvalidValue;
  if (batch.first_row[batch.count] == 0) return cudaSuccess;
  switch (w_dtype) {
    case DType::kF32:
      return GemvTyped<DType::kF32>(x, t, k, batch, stream);
    case DType::kBF16:
      return GemvTyped<DType::kBF16>(x, t, k, batch, stream);
    case DType::kF16:
      return GemvTyped<DType::kF16>(x, t, k, batch, stream);
    case DType::kF8E4M3:
      return GemvTyped<DType::kF8E4M3>(x, t, k, batch, stream);
    default:
      return cudaErrorInvalidValue;
  }
}

cudaError_t SplitColumns(const float* all, int64_t t, const GemvBatch& batch, cudaStream_t stream) {
  if (batch.count < 1 || batch.count > kMaxGemvSegments) return cudaErrorInvalidValue;
  const int64_t n = t * batch.first_row[batch.count];
  if (n == 0) return cudaSuccess;
  SplitColumnsKernel<<<Blocks(n, 256), 256, 0, stream>>>(all, t, batch);
  return cudaGetLastError();
}

cudaError_t HeadMatMul(const HeadMatMulArgs& a, cudaStream_t stream) {
  const int64_t outputs = a.t * a.heads * a.n;
  if (outputs == 0) return cudaSuccess;
  const int blocks = Blocks(outputs, 8);
  if (a.w_dtype == DType::kBF16) {
    HeadMatMulKernel<DType::kBF16><<<blocks, 256, 0, stream>>>(a);
  } else {
    HeadMatMulKernel<DType::kF32><<<blocks, 256, 0, stream>>>(a);
  }
  return cudaGetLastError();
}

cudaError_t AddWeightedRows(const float* x, const float* weights, int64_t t, int64_t k, int64_t h,
                            float* out, cudaStream_t stream) {
  if (t * h == 0) return cudaSuccess;
  AddWeightedRowsKernel<<<Blocks(t * h, 256), 256, 0, stream>>>(x, weights, t, k, h, out);
  return cudaGetLastError();
}

cudaError_t RmsNorm(const float* x, int64_t x_stride, const void* gain, DType gain_dtype,
                    int64_t rows, int64_t h, float eps, float* y, int64_t y_stride,
                    cudaStream_t stream, bool gain_settled) {
  if (rows == 0) return cudaSuccess;
  const bool vec = h % 4 == 0 && h <= 4 * kNormThreads * kNormVectors && x_stride % 4 == 0 &&
                   y_stride % 4 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(y) % 16 == 0;
  RRT_LAUNCH(RmsNormKernel, static_cast<unsigned>(rows), kNormThreads, 0, stream,
             const_cast<float*>(x), x_stride, nullptr, gain, gain_dtype, gain_settled, h, eps, y,
             y_stride, vec);
  return cudaGetLastError();
}

cudaError_t AddRmsNorm(float* x, const float* delta, const void* gain, DType gain_dtype,
                       int64_t rows, int64_t h, float eps, float* y, int64_t y_stride,
                       cudaStream_t stream, bool gain_settled) {
  if (rows == 0) return cudaSuccess;
  const bool vec = h % 4 == 0 && h <= 4 * kNormThreads * kNormVectors && y_stride % 4 == 0 &&
                   Aligned16({x, delta, y});
  RRT_LAUNCH(RmsNormKernel, static_cast<unsigned>(rows), kNormThreads, 0, stream, x, h, delta, gain,
             gain_dtype, gain_settled, h, eps, y, y_stride, vec);
  return cudaGetLastError();
}

cudaError_t Rope(float* x, int64_t t, int64_t heads, int64_t dims, int64_t stride_t,
                 int64_t stride_h, const int32_t* positions, const float* inv_freq,
                 bool interleaved, float cos_sin_scale, cudaStream_t stream) {
  const int64_t n = t * heads * (dims / 2);
  if (n == 0) return cudaSuccess;
  RRT_LAUNCH(RopeKernel, Blocks(n, 256), 256, 0, stream, x, t, heads, dims / 2, stride_t, stride_h,
             positions, inv_freq, interleaved, cos_sin_scale);
  return cudaGetLastError();
}

cudaError_t StoreRows(const float* src, int64_t t, int64_t width, const int64_t* slots, void* cache,
                      DType cache_dtype, cudaStream_t stream) {
  if (t * width == 0) return cudaSuccess;
  RRT_LAUNCH(StoreRowsKernel, Blocks(t * width, 256), 256, 0, stream, src, t, width, slots, cache,
             cache_dtype);
  return cudaGetLastError();
}

cudaError_t StoreKeysAndValues(const float* k, int64_t k_width, void* k_cache, const float* v,
                               int64_t v_width, void* v_cache, int64_t t, const int64_t* slots,
                               DType cache_dtype, cudaStream_t stream) {
  const int64_t n = t * (k_width + v_width);
  if (n == 0) return cudaSuccess;
  RRT_LAUNCH(StoreKeysAndValuesKernel, Blocks(n, 256), 256, 0, stream, k, k_width, k_cache, v,
             v_width, v_cache, t, slots, cache_dtype);
  return cudaGetLastError();
}

cudaError_t GatherKeys(const void* cache, DType cache_dtype, const int32_t* table, int64_t keys,
                       int64_t width, void* dst, cudaStream_t stream) {
  if (width % 8 != 0) return cudaErrorInvalidValue;
  const int64_t n = keys * (width / 8);
  if (n == 0) return cudaSuccess;
  auto* out = static_cast<__nv_bfloat16*>(dst);
  if (cache_dtype == DType::kBF16) {
    GatherKeysKernel<DType::kBF16>
        <<<Blocks(n, 256), 256, 0, stream>>>(cache, table, keys, width, out);
  } else if (cache_dtype == DType::kF32) {
    GatherKeysKernel<DType::kF32>
        <<<Blocks(n, 256), 256, 0, stream>>>(cache, table, keys, width, out);
  } else {
    return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

cudaError_t HeadsFirst(const float* q, int64_t rows, int64_t heads, int64_t d, void* dst,
                       cudaStream_t stream) {
  if (d % 4 != 0) return cudaErrorInvalidValue;
  const int64_t n = rows * heads * (d / 4);
  if (n == 0) return cudaSuccess;
  HeadsFirstKernel<<<Blocks(n, 256), 256, 0, stream>>>(q, rows, heads, d,
                                                       static_cast<__nv_bfloat16*>(dst));
  return cudaGetLastError();
}

cudaError_t RowsFirst(const float* o, int64_t heads, int64_t rows, int64_t d, float* out,
                      cudaStream_t stream) {
  if (d % 4 != 0) return cudaErrorInvalidValue;
  const int64_t n = rows * heads * (d / 4);
  if (n == 0) return cudaSuccess;
  RowsFirstKernel<<<Blocks(n, 256), 256, 0, stream>>>(o, heads, rows, d, out);
  return cudaGetLastError();
}

cudaError_t CausalSoftmax(const float* s, void* p, int64_t heads, int64_t rows, int64_t keys,
                          int64_t ld, int64_t first_keys, cudaStream_t stream) {
  const int64_t total = heads * rows;
  if (total == 0) return cudaSuccess;
  if (first_keys < 1 || keys > ld || ld % 4 != 0) return cudaErrorInvalidValue;
  constexpr int kRowsABlock = 8;
  CausalSoftmaxKernel<<<Blocks(total, kRowsABlock), kRowsABlock * kWarp, 0, stream>>>(
      s, static_cast<__nv_bfloat16*>(p), total, rows, keys, ld, first_keys);
  return cudaGetLastError();
}

bool TiledAttentionFits(const AttentionArgs& a) {
  return a.v != nullptr && a.dk % 4 == 0 && a.dk <= 256 && a.dv % 32 == 0 && a.dv <= 128 &&
         a.dv > 0 && a.heads % a.kv_heads == 0;
}

int64_t AttentionBlocks(const AttentionArgs& a) {
  return a.rows * (UseMlaDecode(a) ? (a.heads + kMlaHeads - 1) / kMlaHeads : a.heads);
}

cudaError_t Attention(const AttentionArgs& a, cudaStream_t stream) {
  if (a.rows == 0) return cudaSuccess;
  if (a.dv > kWarp * kMaxValuePerLane || a.heads > 65535) return cudaErrorInvalidValue;
  // The merge keeps one weight per split in shared memory: at most 4096 (16 KB).
  if (a.splits < 1 || a.splits > 4096 || (a.splits > 1 && a.partial == nullptr)) return cudaErrorInvalidValue;
  if (a.tiles != nullptr) {
    if (!TiledAttentionFits(a) || a.tile_count > INT32_MAX ||
        (a.splits > 1 && (a.tile_keys_per_split < 1 || a.tile_keys_per_split % kTileKeys != 0)))
      return cudaErrorInvalidValue;
    if (a.tile_count == 0) return cudaSuccess;
    const size_t shared = TiledAttentionShared(a);
    // Above 48 KB a kernel must opt in (per device; cheap enough to ask every launch): the
    // largest this takes (dk 256, dv 128) is about 86 KB.
    for (const void* kernel : {reinterpret_cast<const void*>(TiledAttentionKernel<DType::kF32>),
                               reinterpret_cast<const void*>(TiledAttentionKernel<DType::kBF16>)}) {
      const cudaError_t e = cudaFuncSetAttribute(
          kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared));
      if (e != cudaSuccess) return e;
    }
    const dim3 grid(static_cast<unsigned>(a.tile_count), static_cast<unsigned>(a.heads),
                    static_cast<unsigned>(a.splits));
    if (a.cache_dtype == DType::kBF16) {
      TiledAttentionKernel<DType::kBF16><<<grid, kTileThreads, shared, stream>>>(a);
    } else {
      TiledAttentionKernel<DType::kF32><<<grid, kTileThreads, shared, stream>>>(a);
    }
    if (a.splits > 1) {
      const dim3 combine(static_cast<unsigned>(a.rows), static_cast<unsigned>(a.heads));
      RRT_LAUNCH(AttentionCombineKernel, combine, 128, sizeof(float) * (a.splits + 4), stream, a);
    }
    return cudaGetLastError();
  }
  if (UseMlaDecode(a)) {
    const dim3 grid(static_cast<unsigned>(a.rows),
                    static_cast<unsigned>((a.heads + kMlaHeads - 1) / kMlaHeads),
                    static_cast<unsigned>(a.splits));
    const size_t shared = sizeof(float) * kMlaKeys * a.dk;
    if (a.cache_dtype == DType::kBF16) {
      RRT_LAUNCH(MlaDecodeKernel<DType::kBF16>, grid, kMlaHeads * kWarp, shared, stream, a);
    } else {
      RRT_LAUNCH(MlaDecodeKernel<DType::kF32>, grid, kMlaHeads * kWarp, shared, stream, a);
    }
  } else {
    const dim3 grid(static_cast<unsigned>(a.rows), static_cast<unsigned>(a.heads),
                    static_cast<unsigned>(a.splits));
    const size_t shared = sizeof(float) * (a.dk + kAttentionWarps * a.dv + 2 * kAttentionWarps);
    if (a.cache_dtype == DType::kBF16) {
      RRT_LAUNCH(AttentionKernel<DType::kBF16>, grid, kAttentionWarps * kWarp, shared, stream, a);
    } else {
      RRT_LAUNCH(AttentionKernel<DType::kF32>, grid, kAttentionWarps * kWarp, shared, stream, a);
    }
  }
  if (a.splits > 1) {
    const dim3 combine(static_cast<unsigned>(a.rows), static_cast<unsigned>(a.heads));
    // Padded: the compiled merge may read up to 3 weights past the last in one wide load.
    RRT_LAUNCH(AttentionCombineKernel, combine, 128, sizeof(float) * (a.splits + 4), stream, a);
  }
  return cudaGetLastError();
}

cudaError_t SplitBf16(const float* x, int64_t n, void* hi, void* lo, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  SplitBf16Kernel<<<Blocks(n, 256), 256, 0, stream>>>(x, n, static_cast<__nv_bfloat16*>(hi),
                                                      static_cast<__nv_bfloat16*>(lo));
  return cudaGetLastError();
}

cudaError_t AddBias(float* y, int64_t t, int64_t n, const void* bias, DType bias_dtype,
                    cudaStream_t stream) {
  if (t * n == 0) return cudaSuccess;
  AddBiasKernel<<<Blocks(t * n, 256), 256, 0, stream>>>(y, t, n, bias, bias_dtype);
  return cudaGetLastError();
}

cudaError_t SiluMul(const float* gate, const float* up, float* out, int64_t n,
                    cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const bool vec = n % 4 == 0 && Aligned16({gate, up, out});
  RRT_LAUNCH(SiluMulKernel, Blocks(vec ? n / 4 : n, 256), 256, 0, stream, gate, up, out, n, vec);
  return cudaGetLastError();
}

cudaError_t Add(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const bool vec = n % 4 == 0 && Aligned16({a, b, out});
  RRT_LAUNCH(AddKernel, Blocks(vec ? n / 4 : n, 256), 256, 0, stream, a, b, out, n, vec);
  return cudaGetLastError();
}

cudaError_t GatherRows(const void* table, DType table_dtype, int64_t h, const int32_t* ids,
                       int64_t count, float* out, cudaStream_t stream) {
  const int64_t n = count * h;
  if (n == 0) return cudaSuccess;
  switch (table_dtype) {
    case DType::kF32:
      RRT_LAUNCH(GatherRowsKernel<DType::kF32>, Blocks(n, 256), 256, 0, stream, table, h, ids,
                 count, out);
      break;
    case DType::kBF16:
      RRT_LAUNCH(GatherRowsKernel<DType::kBF16>, Blocks(n, 256), 256, 0, stream, table, h, ids,
                 count, out);
      break;
    case DType::kF16:
      RRT_LAUNCH(GatherRowsKernel<DType::kF16>, Blocks(n, 256), 256, 0, stream, table, h, ids,
                 count, out);
      break;
    default:
      return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

cudaError_t ScatterRows(const float* src, int64_t h, const int32_t* rows, int64_t count, float* y,
                        cudaStream_t stream) {
  if (count * h == 0) return cudaSuccess;
  ScatterRowsKernel<<<Blocks(count * h, 256), 256, 0, stream>>>(src, h, rows, count, y);
  return cudaGetLastError();
}

cudaError_t Softmax(const float* x, float* out, int64_t rows, int64_t n, bool log,
                    cudaStream_t stream) {
  if (rows == 0 || n == 0) return cudaSuccess;
  SoftmaxKernel<<<static_cast<unsigned>(rows), 256, 0, stream>>>(x, out, n, log);
  return cudaGetLastError();
}

cudaError_t TopK(const float* x, int64_t rows, int64_t n, int64_t k, float* values,
                 int32_t* indices, cudaStream_t stream) {
  if (rows == 0 || k == 0) return cudaSuccess;
  TopKKernel<<<static_cast<unsigned>(rows), 256, 0, stream>>>(x, n, k, values, indices);
  return cudaGetLastError();
}

}  // namespace reasonrt::cuda
