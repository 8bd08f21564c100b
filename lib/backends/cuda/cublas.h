// lib/backends/cuda/cublas.h: the parts of cuBLAS reasonrt uses, opened at run time.
//
// The library links no cuBLAS, so it loads on machines without one (or without a GPU);
// where libcublas.so.13 (or .12) is found, the cuda backend's bf16 prompt GEMM and the
// bench's GEMM peak use it. Thread-safe: the loaded library is shared, handles are not.
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
  GemmExFn gemm_ex_ = nullptr;
};

}  // namespace reasonrt::cuda

#endif  // REASONRT_LIB_BACKENDS_CUDA_CUBLAS_H_
