// lib/backends/cuda/attention_kernel.cuh: the decode attention kernel (attention.cu launches
// it), with its split keys and the experimental merge by the last split, apart so that
// tests/backends/cuda_emulation.h can run the same source on the host (which includes
// cuda_emulation.h before this).
#ifndef REASONRT_LIB_BACKENDS_CUDA_ATTENTION_KERNEL_CUH_
#define REASONRT_LIB_BACKENDS_CUDA_ATTENTION_KERNEL_CUH_

#include <cstddef>
#include <cstdint>

#include "lib/backends/cuda/kernel_util.cuh"
#include "lib/backends/cuda/kernels.h"

namespace reasonrt::cuda {
namespace {

// Merges the splits of row r, head h (AttentionKernel's partials) into the output; each
// split's weight exp(max_s - max) computed once into `weight` (a.splits + 4 floats; 0 for
// a split that saw no key). kCoherent: the partials were written by other blocks of the
// running grid, so they are read from L2 (the fused merge).
template <bool kCoherent>
__device__ __forceinline__ void MergeSplits(const AttentionArgs& a, int64_t r, int64_t h,
                                            float* weight) {
  const int64_t stride = a.dv + 2;
  const float* parts = a.partial + (r * a.heads + h) * a.splits * stride;
  auto part = [&](int64_t i) { return kCoherent ? __ldcg(parts + i) : parts[i]; };
  float top = -INFINITY;
  for (int64_t s = 0; s < a.splits; ++s) top = fmaxf(top, part(s * stride));
  for (int64_t s = threadIdx.x; s < a.splits; s += blockDim.x) {
    const float ms = part(s * stride);
    weight[s] = ms == -INFINITY ? 0.0f : expf(ms - top);
  }
  __syncthreads();
  float total = 0.0f;
  for (int64_t s = 0; s < a.splits; ++s) total += part(s * stride + 1) * weight[s];
  for (int64_t d = threadIdx.x; d < a.dv; d += blockDim.x) {
    float o = 0.0f;
    for (int64_t s = 0; s < a.splits; ++s) o += part(s * stride + 2 + d) * weight[s];
    a.out[(r * a.heads + h) * a.dv + d] = o / total;
  }
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
// AttentionKernel's dynamic shared memory in bytes (the layout below).
inline size_t AttentionKernelShared(const AttentionArgs& a, bool merge) {
  return sizeof(float) * static_cast<size_t>(a.dk + kAttentionWarps * a.dv + 2 * kAttentionWarps +
                                             (merge ? a.splits + 4 : 0));
}

template <DType C, bool kMerge = false>
__global__ void AttentionKernel(AttentionArgs a) {
  DependentStart();
  RRT_DYNAMIC_SHARED(float, shared);
  float* qs = shared;                            // dk
  float* accs = qs + a.dk;                       // kAttentionWarps * dv
  float* maxes = accs + kAttentionWarps * a.dv;  // kAttentionWarps
  float* sums = maxes + kAttentionWarps;         // kAttentionWarps
  // (kMerge: then a.splits + 4 floats for MergeSplits' weights)
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
  float* part =
      splits == 1 ? nullptr : a.partial + ((r * a.heads + h) * splits + split) * (a.dv + 2);
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
  if constexpr (kMerge) {
    // The last of the row's splits to finish merges them (a ticket per (row, head)).
    if (splits == 1) return;
    RRT_SHARED(bool, last);
    __threadfence();  // this split's partial before its ticket
    __syncthreads();
    unsigned int* counter = a.merge_counters + r * a.heads + h;
    if (threadIdx.x == 0) last = atomicAdd(counter, 1u) == splits - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    MergeSplits<true>(a, r, h, sums + kAttentionWarps);
    if (threadIdx.x == 0) *counter = 0;  // for the next launch
  }
}

}  // namespace
}  // namespace reasonrt::cuda

#endif  // REASONRT_LIB_BACKENDS_CUDA_ATTENTION_KERNEL_CUH_
