#include "lib/backends/cuda/cublas.h"

#include <dlfcn.h>

namespace reasonrt::cuda {
namespace {

// cuBLAS's enum values (cublas_api.h, library_types.h), stable across its versions.
constexpr int kOpN = 0, kOpT = 1, kR32F = 0, kR16BF = 14, kCompute32F = 68, kGemmDefault = -1;

}  // namespace

const Cublas* Cublas::Get() {
  static const Cublas* loaded = []() -> const Cublas* {
    void* lib = nullptr;
    for (const char* name : {"libcublas.so.13", "libcublas.so.12", "libcublas.so"}) {
      if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
    }
    if (lib == nullptr) return nullptr;
    auto* c = new Cublas();  // kept for the process's life, as the library is
    c->create_ = reinterpret_cast<CreateFn>(dlsym(lib, "cublasCreate_v2"));
    c->destroy_ = reinterpret_cast<DestroyFn>(dlsym(lib, "cublasDestroy_v2"));
    c->set_stream_ = reinterpret_cast<SetStreamFn>(dlsym(lib, "cublasSetStream_v2"));
    c->gemm_ex_ = reinterpret_cast<GemmExFn>(dlsym(lib, "cublasGemmEx"));
    c->gemm_strided_batched_ex_ =
        reinterpret_cast<GemmStridedBatchedExFn>(dlsym(lib, "cublasGemmStridedBatchedEx"));
    if (!c->create_ || !c->destroy_ || !c->set_stream_ || !c->gemm_ex_ ||
        !c->gemm_strided_batched_ex_) {
      delete c;
      return nullptr;
    }
    return c;
  }();
  return loaded;
}

void* Cublas::NewHandle(cudaStream_t stream) const {
  void* handle = nullptr;
  if (create_(&handle) != 0) return nullptr;
  if (set_stream_(handle, stream) != 0) {
    destroy_(handle);
    return nullptr;
  }
  return handle;
}

void Cublas::Destroy(void* handle) const {
  if (handle != nullptr) destroy_(handle);
}

bool Cublas::GemmBf16(void* handle, int m, int n, int k, const void* x, const void* w, float beta,
                      float* y) const {
  // cuBLAS is column-major: y^T [n, m] = w [n, k] (w^T stored) . x^T [k, m].
  const float alpha = 1.0f;
  return gemm_ex_(handle, kOpT, kOpN, n, m, k, &alpha, w, kR16BF, k, x, kR16BF, k, &beta, y, kR32F,
                  n, kCompute32F, kGemmDefault) == 0;
}

bool Cublas::GemmStridedBatchedBf16(void* handle, bool trans_a, bool trans_b, int m, int n, int k,
                                    float alpha, StridedOperand a, StridedOperand b, float beta,
                                    float* c, int ldc, long long stride_c, int batch) const {
  return gemm_strided_batched_ex_(handle, trans_a ? kOpT : kOpN, trans_b ? kOpT : kOpN, m, n, k,
                                  &alpha, a.data, kR16BF, a.ld, a.stride, b.data, kR16BF, b.ld,
                                  b.stride, &beta, c, kR32F, ldc, stride_c, batch, kCompute32F,
                                  kGemmDefault) == 0;
}

}  // namespace reasonrt::cuda
