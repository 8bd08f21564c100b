// lib/backends/cuda/attention.cu: the KV cache and attention (see kernels.h). Decode runs one
// block per (query row, head) with an online softmax per warp, split over the keys for long
// contexts, or for MLA's latent cache one block per (query row, 8 heads) sharing each key
// read; exact prompts stage each block of keys once for a tile of 32 query rows (f32 FMAs);
// the tensor-core prompt path's gather, layout and softmax kernels sit around cuBLAS GEMMs
// that the backend runs. The kernels are in attention_kernel.cuh; here are their launchers.
#include "lib/backends/cuda/attention_kernel.cuh"
#include "lib/backends/cuda/kernel_util.cuh"

namespace reasonrt::cuda {

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
