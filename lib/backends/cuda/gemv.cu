// lib/backends/cuda/gemv.cu: the matrix products (see kernels.h). The decode GEMV streams each
// weight row once for up to 8 activation rows with 16-byte loads, several in flight per
// lane (or, without exact activations, 2-8 rows on tensor cores); the prompt GEMM of non-bf16
// weights is a shared-memory tiled f32 kernel (bf16 prompts go to cuBLAS, with SplitBf16's
// activations); HeadMatMul is MLA's per-head projection. The kernels are in gemv_kernel.cuh;
// here are their launchers.
#include "lib/backends/cuda/gemv_kernel.cuh"
#include "lib/backends/cuda/kernel_util.cuh"

namespace reasonrt::cuda {
namespace {

// ---------------------------------------------------------------------------------------
// MatMul

// Rows split over kGemvSplit warps when a launch has too few rows to keep every
// multiprocessor streaming (a down projection: few, long rows; q, k and v) and each part
// still gives every lane a chunk.
constexpr int kGemvSplit = 4;
constexpr int64_t kGemvSplitBelowRows = 8192;

// GemvKernel<D, R, split, kEnd> over the batch's rows (silu_pairs: at most 4 warps a row,
// so that a block holds whole pairs).
template <DType D, int R, GemvEnd kEnd>
cudaError_t LaunchGemvKernel(int split, const float* x, int64_t k, const GemvBatch& b,
                             cudaStream_t stream) {
  const int64_t rows = b.first_row[b.count];
  const int threads = kGemvWarps * kWarp;
  if constexpr (kEnd != GemvEnd::kSiluPairs) {
    if (split == 8) {
      return LaunchMaybeDependent(b.weights_settled, GemvKernel<D, R, 8, kEnd>,
                                  Blocks(rows, kGemvWarps / 8), threads, 0, stream, x, k, b);
    }
  }
  switch (split) {
    case 8:
    case 4:
      return LaunchMaybeDependent(b.weights_settled, GemvKernel<D, R, 4, kEnd>,
                                  Blocks(rows, kGemvWarps / 4), threads, 0, stream, x, k, b);
    case 2:
      return LaunchMaybeDependent(b.weights_settled, GemvKernel<D, R, 2, kEnd>,
                                  Blocks(rows, kGemvWarps / 2), threads, 0, stream, x, k, b);
    default:
      return LaunchMaybeDependent(b.weights_settled, GemvKernel<D, R, 1, kEnd>,
                                  Blocks(rows, kGemvWarps), threads, 0, stream, x, k, b);
  }
}

template <DType D, int R>
cudaError_t LaunchGemv(const float* x, int64_t k, const GemvBatch& b, bool vec,
                       cudaStream_t stream) {
  const int64_t rows = b.first_row[b.count];
  int split = b.split;
  if (split == 0)
    split = rows < kGemvSplitBelowRows && k / 8 >= kGemvSplit * kWarp ? kGemvSplit : 1;
  if (!vec) {
    GemvScalarKernel<D, R><<<Blocks(rows, kGemvWarps), kGemvWarps * kWarp, 0, stream>>>(x, k, b);
    return cudaGetLastError();
  }
  if constexpr (R == 1) {
    if (b.norm.residual != nullptr)
      return LaunchGemvKernel<D, 1, GemvEnd::kNorm>(split, x, k, b, stream);
    if (b.silu_pairs) return LaunchGemvKernel<D, 1, GemvEnd::kSiluPairs>(split, x, k, b, stream);
  }
  return LaunchGemvKernel<D, R, GemvEnd::kStore>(split, x, k, b, stream);
}

// Whether GemvKernel's chunked loads take x [., k] and the batch's weights of dtype w_dtype:
// k % 8 == 0, x 16-byte aligned, every weight as ChunkAlignment asks.
bool ChunkedLoads(const float* x, int64_t k, DType w_dtype, const GemvBatch& b) {
  bool ok = k % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
  for (int s = 0; s < b.count; ++s)
    ok = ok && reinterpret_cast<uintptr_t>(b.segments[s].w) % ChunkAlignment(w_dtype) == 0;
  return ok;
}

// Whether GemvMmaKernel takes the batch: 2 to 8 rows that may be rounded against bf16
// weights, chunked loads, k % 32 == 0.
bool TakesMma(const float* x, int64_t t, int64_t k, DType w_dtype, const GemvBatch& b) {
  return w_dtype == DType::kBF16 && b.round_activations && t >= 2 && t <= 8 && k % 32 == 0 &&
         ChunkedLoads(x, k, w_dtype, b);
}

template <DType D>
cudaError_t GemvTyped(const float* x, int64_t t, int64_t k, const GemvBatch& b,
                      cudaStream_t stream) {
  const bool vec = ChunkedLoads(x, k, D, b);
  if (TakesMma(x, t, k, D, b)) {
    if (b.silu_pairs) {
      return LaunchMaybeDependent(b.weights_settled, GemvMmaKernel<true>,
                                  Blocks(b.segments[0].n, 8), kMmaWarps * kWarp, 0, stream, x, t, k,
                                  b);
    }
    return LaunchMaybeDependent(b.weights_settled, GemvMmaKernel<false>,
                                Blocks(b.first_row[b.count], 16), kMmaWarps * kWarp, 0, stream, x,
                                t, k, b);
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
  return GemvTyped<D>(x, t, k,
                      OneWeightBatch(w, s, sc, bias, bd, n, y, weights_settled, round_activations),
                      stream);
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

namespace {

// One activation row through GemvKernel (vectorized loads), whatever the epilogue.
bool OneVectorRow(const float* x, int64_t t, int64_t k, DType w_dtype, const GemvBatch& batch) {
  return t == 1 &&
         (w_dtype == DType::kF32 || w_dtype == DType::kBF16 || w_dtype == DType::kF16 ||
          w_dtype == DType::kF8E4M3) &&
         ChunkedLoads(x, k, w_dtype, batch);
}

}  // namespace

bool GemvTakesNorm(const float* x, int64_t t, int64_t k, DType w_dtype, const GemvBatch& batch) {
  return batch.count == 1 && OneVectorRow(x, t, k, w_dtype, batch);
}

bool GemvTakesSiluPairs(const float* x, int64_t t, int64_t k, DType w_dtype,
                        const GemvBatch& batch) {
  return batch.count == 2 && batch.segments[0].n == batch.segments[1].n &&
         (OneVectorRow(x, t, k, w_dtype, batch) || TakesMma(x, t, k, w_dtype, batch));
}

cudaError_t Gemv(const float* x, int64_t t, int64_t k, DType w_dtype, const GemvBatch& batch,
                 cudaStream_t stream) {
  if (batch.norm.residual != nullptr &&
      (!GemvTakesNorm(x, t, k, w_dtype, batch) || batch.norm.normed == nullptr ||
       batch.norm.partial == nullptr || batch.norm.counter == nullptr))
    return cudaErrorInvalidValue;
  if (batch.silu_pairs &&
      (!GemvTakesSiluPairs(x, t, k, w_dtype, batch) || batch.norm.residual != nullptr))
    return cudaErrorInvalidValue;
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

cudaError_t SplitBf16(const float* x, int64_t n, void* hi, void* lo, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  SplitBf16Kernel<<<Blocks(n, 256), 256, 0, stream>>>(x, n, static_cast<__nv_bfloat16*>(hi),
                                                      static_cast<__nv_bfloat16*>(lo));
  return cudaGetLastError();
}

cudaError_t DequantizeFp8ToBf16(const void* w, const float* scale_inv, int64_t scale_cols,
                                int64_t n, int64_t k, void* out, cudaStream_t stream) {
  if (n * k == 0) return cudaSuccess;
  const auto* src = static_cast<const uint8_t*>(w);
  auto* dst = static_cast<__nv_bfloat16*>(out);
  if (k % 4 == 0 && reinterpret_cast<uintptr_t>(w) % 4 == 0) {
    DequantizeFp8Kernel<4>
        <<<Blocks(n * k / 4, 256), 256, 0, stream>>>(src, scale_inv, scale_cols, n, k, dst);
  } else {
    DequantizeFp8Kernel<1>
        <<<Blocks(n * k, 256), 256, 0, stream>>>(src, scale_inv, scale_cols, n, k, dst);
  }
  return cudaGetLastError();
}

cudaError_t AddBias(float* y, int64_t t, int64_t n, const void* bias, DType bias_dtype,
                    cudaStream_t stream) {
  if (t * n == 0) return cudaSuccess;
  AddBiasKernel<<<Blocks(t * n, 256), 256, 0, stream>>>(y, t, n, bias, bias_dtype);
  return cudaGetLastError();
}

}  // namespace reasonrt::cuda
