// lib/backends/cuda/cublas.h: the parts of cuBLAS reasonrt uses, opened at run time.
//
// The library links no cuBLAS, so it loads on machines without one (or without a GPU);
// where libcublas.so.13 (or .12) is found, the cuda backend's bf16 prompt GEMM and prompt
// attention, and the bench's GEMM peak, use it. Thread-safe: the loaded library is shared,
// handles are not.
#ifndef REASONRT_LIB_BACKENDS_CUDA_CUBLAS_H_
#define REASONRT_LIB_BACKENDS_CUDA_CUBLAS_H_

#include <cuda_runtime.h>

namespace reasonrt::cuda {

class Cublas {
 public:
  // The loaded library, or nullptr where there is none.
  static const Cublas* Get();

  // A handle whose work runs on `stream`, or nullptr on failure. Destroy with Destroy.
  void* NewHandle(cudaStream_t stream) const;
  void Destroy(void* handle) const;

  // y[m, n] = x[m, k] . w[n, k]^T + beta * y, with x and w bf16 (row-major, contiguous), y
  // f32, f32 accumulation. True on success.
  bool GemmBf16(void* handle, int m, int n, int k, const void* x, const void* w, float beta,
                float* y) const;

  // Column-major batched GEMM in cuBLAS's own terms, for attention's per-head products:
  // for b in [0, batch): C_b[m, n] = alpha * op(A_b) . op(B_b) + beta * C_b with
  // X_b = X + b * stride_x (elements; 0 shares one matrix across the batch), A and B
  // bf16, C f32, f32 accumulation; op is the transpose where trans_* is set. True on
  // success.
  struct StridedOperand {
    const void* data;
    int ld;
    long long stride;
  };
  bool GemmStridedBatchedBf16(void* handle, bool trans_a, bool trans_b, int m, int n, int k,
                              float alpha, StridedOperand a, StridedOperand b, float beta, float* c,
                              int ldc, long long stride_c, int batch) const;

 private:
  Cublas() = default;
  using CreateFn = int (*)(void**);
  using DestroyFn = int (*)(void*);
  using SetStreamFn = int (*)(void*, cudaStream_t);
  using GemmExFn = int (*)(void*, int, int, int, int, int, const void*, const void*, int, int,
                           const void*, int, int, const void*, void*, int, int, int, int);
  CreateFn create_ = nullptr;
  DestroyFn destroy_ = nullptr;
  SetStreamFn set_stream_ = nullptr;
  using GemmStridedBatchedExFn = int (*)(void*, int, int, int, int, int, const void*, const void*,
                                         int, int, long long, const void*, int, int, long long,
                                         const void*, void*, int, int, long long, int, int, int);
  GemmExFn gemm_ex_ = nullptr;
  GemmStridedBatchedExFn gemm_strided_batched_ex_ = nullptr;
};

}  // namespace reasonrt::cuda

#endif  // REASONRT_LIB_BACKENDS_CUDA_CUBLAS_H_
