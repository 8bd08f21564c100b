// lib/backends/cuda/attention_kernel.cuh: the attention kernels over the paged cache
// (attention.cu launches them): decode, with its split keys and the experimental merge by
// the last split; MLA's absorbed decode over the latent cache; the tiled prompt kernel; the
// merge of splits; the KV store; and the kernels around the tensor-core prompt path's cuBLAS
// GEMMs. Apart so that tests/backends/cuda_emulation.h can run the same source on the host
// (which includes cuda_emulation.h before this).
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
  RRT_DYNAMIC_SHARED(float, keys);  // kMlaKeys * dk
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
  RRT_DYNAMIC_SHARED(float, smem);
  const int64_t qs = a.dk + kTilePad, vs = a.dv + kTilePad;  // row strides, multiples of 4
  float* q_tile = smem;                                      // kAttentionTileRows x qs
  float* k_tile = q_tile + kAttentionTileRows * qs;          // kTileKeys x qs
  float* v_tile = k_tile + kTileKeys * qs;                   // kTileKeys x vs
  float* p_tile = v_tile + kTileKeys * vs;                   // kAttentionTileRows x (kTileKeys + 1)
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

inline size_t TiledAttentionShared(const AttentionArgs& a) {
  return sizeof(float) * ((kAttentionTileRows + kTileKeys) * (a.dk + kTilePad) +
                          kTileKeys * (a.dv + kTilePad) + kAttentionTileRows * (kTileKeys + 1));
}

inline bool UseMlaDecode(const AttentionArgs& a) {
  return a.v == nullptr && a.kv_heads == 1 && a.heads >= kMlaHeads &&
         a.dk <= kWarp * kMlaMaxKeyPerLane;
}

// Merges the splits of AttentionKernel: one block per (query row, head).
__global__ void AttentionCombineKernel(AttentionArgs a) {
  DependentStart();
  RRT_DYNAMIC_SHARED(float, weight);  // a.splits (+ 4: see the launch)
  const int64_t r = blockIdx.x, h = blockIdx.y;
  if (a.row_position[r] < 0) return;
  MergeSplits<false>(a, r, h, weight);
}

// ---------------------------------------------------------------------------------------
// The KV store, and the tensor-core prompt path's gather, layout and softmax kernels

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
    const uint2 a = PackBf16x4(p[0]), b = PackBf16x4(p[1]);
    out = make_uint4(a.x, a.y, b.x, b.y);
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
    out[j] = PackBf16x4(w);
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
  reinterpret_cast<uint2*>(dst)[(h * rows + r) * quads + c] = PackBf16x4(v);
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

}  // namespace
}  // namespace reasonrt::cuda

#endif  // REASONRT_LIB_BACKENDS_CUDA_ATTENTION_KERNEL_CUH_
