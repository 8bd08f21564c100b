// lib/backends/cuda/attention.cu: the KV cache and attention (see kernels.h). Decode runs one
// block per (query row, head) with an online softmax per warp, split over the keys for long
// contexts, or for MLA's latent cache one block per (query row, 8 heads) sharing each key
// read; exact prompts stage each block of keys once for a tile of 32 query rows (f32 FMAs);
// the tensor-core prompt path's gather, layout and softmax kernels sit around cuBLAS GEMMs
// that the backend runs.
#include "lib/backends/cuda/attention_kernel.cuh"
#include "lib/backends/cuda/kernel_util.cuh"

namespace reasonrt::cuda {
namespace {

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
  if (a.splits < 1 || a.splits > 4096 || (a.splits > 1 && a.partial == nullptr))
    return cudaErrorInvalidValue;
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
    // The last split merges (merge_counters), with room for the merge's weights; else
    // AttentionCombineKernel below.
    const bool merge = a.splits > 1 && a.merge_counters != nullptr;
    const bool bf16 = a.cache_dtype == DType::kBF16;
    void (*kernel)(AttentionArgs) =
        merge ? (bf16 ? AttentionKernel<DType::kBF16, true> : AttentionKernel<DType::kF32, true>)
              : (bf16 ? AttentionKernel<DType::kBF16> : AttentionKernel<DType::kF32>);
    RRT_LAUNCH(kernel, grid, kAttentionWarps * kWarp, AttentionKernelShared(a, merge), stream, a);
    if (merge) return cudaGetLastError();
  }
  if (a.splits > 1) {
    const dim3 combine(static_cast<unsigned>(a.rows), static_cast<unsigned>(a.heads));
    // Padded: the compiled merge may read up to 3 weights past the last in one wide load.
    RRT_LAUNCH(AttentionCombineKernel, combine, 128, sizeof(float) * (a.splits + 4), stream, a);
  }
  return cudaGetLastError();
}

}  // namespace reasonrt::cuda
