// lib/backends/cuda/gemv_kernel.cuh: the matrix products' kernels (gemv.cu launches them):
// the decode GEMV, f32 with GemvNorm's and silu_pairs' epilogues and on tensor cores for 2
// to 8 rows, its scalar fallback, the tiled f32 prompt GEMM, MLA's per-head products, and
// the small kernels around cuBLAS's GEMM (bf16 activations, fp8 weights as bf16, biases),
// apart so that tests/backends/cuda_emulation.h can run the same source on the host (which
// includes cuda_emulation.h before this).
#ifndef REASONRT_LIB_BACKENDS_CUDA_GEMV_KERNEL_CUH_
#define REASONRT_LIB_BACKENDS_CUDA_GEMV_KERNEL_CUH_

#include <cstdint>

#include "lib/backends/cuda/kernel_util.cuh"
#include "lib/backends/cuda/kernels.h"

namespace reasonrt::cuda {
namespace {

constexpr int kGemvWarps = 8;

// Eight consecutive weights as loaded: 32 bytes of f32, 16 of f16/bf16, 8 of fp8.
template <DType D>
struct Chunk {
  uint4 v[D == DType::kF32 ? 2 : 1];
};

// The alignment LoadChunk's loads need of weight memory: 8 bytes for fp8, else 16.
constexpr uintptr_t ChunkAlignment(DType d) { return d == DType::kF8E4M3 ? 8 : 16; }

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

// GemvNorm's epilogue, called by every thread of a GemvKernel block (one activation row):
// `writer` threads hold the value y[row] they wrote. No thread may have left the kernel.
__device__ __forceinline__ void NormEpilogue(const GemvNorm& norm, int64_t n, bool writer,
                                             int64_t row, float value) {
  RRT_SHARED(float[kGemvWarps], squares);
  RRT_SHARED(float[kWarp], reduce);  // BlockReduce's scratch
  RRT_SHARED(bool, last);
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  if (lane == 0) {
    float square = 0.0f;
    if (writer) {
      const float x = norm.residual[row] + value;  // as AddRmsNorm adds delta
      norm.residual[row] = x;
      square = x * x;
      __threadfence();  // before this block's ticket (thread 0's, after the barrier)
    }
    squares[warp] = square;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float sum = 0.0f;
    for (int w = 0; w < kGemvWarps; ++w) sum += squares[w];
    norm.partial[blockIdx.x] = sum;
    __threadfence();  // the residual rows and the partial before the ticket
    last = atomicAdd(norm.counter, 1u) == gridDim.x - 1;
  }
  __syncthreads();
  if (!last) return;
  __threadfence();
  // The partials in a fixed order (thread i: blocks i, i + 256, ...; then the block sum),
  // so that the result does not depend on which block finished last.
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < gridDim.x; i += blockDim.x) sum += __ldcg(norm.partial + i);
  sum = BlockReduce<false>(sum, reduce);
  const float inv = 1.0f / sqrtf(sum / static_cast<float>(n) + norm.eps);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
    norm.normed[i] = __ldcg(norm.residual + i) * inv * LoadAny(norm.gain, i, norm.gain_dtype);
  if (threadIdx.x == 0) *norm.counter = 0;  // for the next launch
}

// What a GemvKernel does with its sums: stores them (y = x . W^T + bias), or also runs
// GemvNorm's epilogue, or (silu_pairs) stores silu(gate) * up.
enum class GemvEnd { kStore, kNorm, kSiluPairs };

// kSplit warps per weight row of the batch's segments (rows numbered across them; with
// kSiluPairs gate row i is slot 2i, up row i slot 2i + 1, so a block holds whole pairs),
// each over its kSplit-th of the row's chunks: lane l reads chunks l, l + 32, ... of its
// range, kChunksInFlight at a time before using any, and multiplies each with the same 8
// columns of all R activation rows; the kSplit partial sums meet in shared memory. Needs
// k % 8 == 0 and 16-byte aligned x, weights (8 for fp8).
template <DType D, int R, int kSplit, GemvEnd kEnd = GemvEnd::kStore>
__global__ void __launch_bounds__(kGemvWarps* kWarp)
    GemvKernel(const float* __restrict__ x, int64_t k, const __grid_constant__ GemvBatch b) {
  constexpr int kU = kChunksInFlight<D>;
  static_assert(kEnd != GemvEnd::kSiluPairs || (kGemvWarps / kSplit) % 2 == 0,
                "a block holds whole gate/up pairs");
  LetSuccessorLaunch();  // takes effect once every block has started: the last wave
  constexpr int kPartials = kSplit > 1 ? kGemvWarps : 1;
  RRT_SHARED(float[kPartials][R], partial);
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, part = warp % kSplit;
  const int64_t slot = static_cast<int64_t>(blockIdx.x) * (kGemvWarps / kSplit) + warp / kSplit;
  int s = 0;
  int64_t row;
  bool live;
  if constexpr (kEnd == GemvEnd::kSiluPairs) {
    s = static_cast<int>(slot % 2), row = slot / 2, live = row < b.segments[0].n;
  } else {
    live = slot < b.first_row[b.count];
    while (live && slot >= b.first_row[s + 1]) ++s;
    row = slot - b.first_row[s];
  }
  const GemvSegment& g = b.segments[s];
  const int64_t chunks = k / 8;
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
    if constexpr (kEnd == GemvEnd::kStore) {
      if (part != 0) return;
    }
    if (part == 0) {
      for (int r = 0; r < R; ++r) {
        float sum = 0.0f;
        for (int w = 0; w < kSplit; ++w) sum += partial[warp + w][r];
        acc[r] = sum;
      }
    }
  }
  if constexpr (kEnd == GemvEnd::kStore) {
    if (!live || lane != 0) return;
    const float bias = g.bias != nullptr ? LoadAny(g.bias, row, g.bias_dtype) : 0.0f;
    for (int r = 0; r < R; ++r) g.y[r * g.n + row] = acc[r] + bias;
  } else if constexpr (kEnd == GemvEnd::kSiluPairs) {
    // The up warp hands its sum to the gate warp beside it. Every thread reaches the barrier.
    static_assert(R == 1, "silu_pairs takes one activation row");
    RRT_SHARED(float[kGemvWarps], up_sums);  // by slot within the block
    const int in_block = warp / kSplit;
    const bool holder = live && lane == 0 && part == 0;
    const float value =
        holder ? acc[0] + (g.bias != nullptr ? LoadAny(g.bias, row, g.bias_dtype) : 0.0f) : 0.0f;
    if (holder && s == 1) up_sums[in_block] = value;
    __syncthreads();
    if (holder && s == 0) g.y[row] = Silu(value) * up_sums[in_block + 1];
  } else {
    // Every thread goes on to the epilogue's barriers; the writers with their value.
    static_assert(R == 1, "GemvNorm takes one activation row");
    const bool writer = live && lane == 0 && part == 0;
    float value = 0.0f;
    if (writer) {
      const float bias = g.bias != nullptr ? LoadAny(g.bias, row, g.bias_dtype) : 0.0f;
      value = acc[0] + bias;
      g.y[row] = value;
    }
    NormEpilogue(b.norm, g.n, writer, row, value);
  }
}

// 2 to 8 activation rows against bf16 weights on tensor cores (mma.sync m16n8k16: the
// weights as A, 16 rows a block; the activation rows, rounded to bf16, as B's 8 columns;
// f32 sums). The 8 warps of a block split k; each lane loads 16 bytes of each of its two
// weight rows (g and g + 8) per 32 columns, kMmaChunks at a time before using any. As the
// sum over k does not depend on its order, the 32 columns a lane loads are given to the mma
// in a permuted order that the activations follow too, so no shuffling is needed. Needs
// k % 32 == 0 and 16-byte aligned weights and x.
constexpr int kMmaWarps = 8, kMmaChunks = 4;

// c += A . B for one m16n8k16 tile (bf16 A 16x16 row-major, B 16x8 column-major, f32 c),
// in the warp's registers as mma.sync lays them out: lane l = 4 g + q holds A's (g, 2q..2q+1)
// in a0, (g + 8, 2q..) in a1, (g, 2q + 8..) in a2, (g + 8, 2q + 8..) in a3; B's (2q..2q+1, g)
// in b0 and (2q + 8.., g) in b1; c (g, 2q), (g, 2q + 1), (g + 8, 2q), (g + 8, 2q + 1). (The
// host emulation in tests/backends/cuda_emulation.h defines RRT_EMULATED_MMA and its own.)
#ifndef RRT_EMULATED_MMA
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
#endif

// kSiluPairs (GemvBatch::silu_pairs, gate and up segments of n rows each): the block's 16
// rows are gate rows 8 blockIdx.x + g and the same rows of up (g + 8), so that each lane
// of warp 0 ends with gate and up of the same rows and writes silu(gate) * up into the
// gate segment's y (blocks: n / 8 rounded up).
template <bool kSiluPairs = false>
__global__ void __launch_bounds__(kMmaWarps* kWarp)
    GemvMmaKernel(const float* __restrict__ x, int64_t t, int64_t k,
                  const __grid_constant__ GemvBatch b) {
  LetSuccessorLaunch();
  RRT_SHARED(float[kMmaWarps][kWarp][4], partial);
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int g = lane / 4, q = lane % 4;
  const int64_t total = b.first_row[b.count];
  // This lane's two weight rows (g and g + 8 of the block's 16): segment and row in it.
  const __nv_bfloat16* w_row[2];
  for (int h = 0; h < 2; ++h) {
    if constexpr (kSiluPairs) {
      const int64_t row = static_cast<int64_t>(blockIdx.x) * 8 + g;
      const int64_t clamped = row < b.segments[0].n ? row : 0;  // past the end: row 0
      w_row[h] = static_cast<const __nv_bfloat16*>(b.segments[h].w) + clamped * k;
      continue;
    }
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
        const uint2 lo = PackBf16x4(*reinterpret_cast<const float4*>(x_row + col)),
                    hi = PackBf16x4(*reinterpret_cast<const float4*>(x_row + col + 4));
        xb = make_uint4(lo.x, lo.y, hi.x, hi.y);
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
  if constexpr (kSiluPairs) {
    const GemvSegment &gate = b.segments[0], &up = b.segments[1];
    const int64_t row = static_cast<int64_t>(blockIdx.x) * 8 + g;
    if (row >= gate.n) return;
    const float gate_bias = gate.bias != nullptr ? LoadAny(gate.bias, row, gate.bias_dtype) : 0.0f;
    const float up_bias = up.bias != nullptr ? LoadAny(up.bias, row, up.bias_dtype) : 0.0f;
    for (int j = 0; j < 2; ++j) {
      const int n = 2 * q + j;
      if (n < t) gate.y[n * gate.n + row] = Silu(c[j] + gate_bias) * (c[2 + j] + up_bias);
    }
  } else {
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
}

// ---------------------------------------------------------------------------------------
// The fallback GEMV, the prompt GEMM of non-bf16 weights, MLA's per-head products and the
// small kernels around cuBLAS's GEMM

// A prompt's fp8 weight [n, k] as bf16 for the tensor-core GEMM (fp8_prompt): each weight
// times its 128x128 block's scale in f32, rounded to nearest even. kPer weights a thread:
// 4 (k % 4 == 0 and w 4-byte aligned: one 4-byte load) or 1.
template <int kPer>
__global__ void DequantizeFp8Kernel(const uint8_t* w, const float* scale_inv, int64_t scale_cols,
                                    int64_t n, int64_t k, __nv_bfloat16* out) {
  const int64_t first = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * kPer;
  if (first >= n * k) return;
  const int64_t row = first / k, col = first % k;  // kPer divides k: one row, one scale block
  const float scale = scale_inv[(row / 128) * scale_cols + col / 128];
  uint8_t v[kPer];
  if constexpr (kPer == 4) {
    const uint32_t word = *reinterpret_cast<const uint32_t*>(w + first);
    for (int i = 0; i < 4; ++i) v[i] = static_cast<uint8_t>(word >> (8 * i));
  } else {
    v[0] = w[first];
  }
  for (int i = 0; i < kPer; ++i) out[first + i] = __float2bfloat16_rn(E4m3Bits(v[i]) * scale);
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
  RRT_SHARED(float[kTileK][kTile + 4], xs);
  RRT_SHARED(float[kTileK][kTile + 4], ws);
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

}  // namespace
}  // namespace reasonrt::cuda

#endif  // REASONRT_LIB_BACKENDS_CUDA_GEMV_KERNEL_CUH_
