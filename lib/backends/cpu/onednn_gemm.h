// lib/backends/cpu/onednn_gemm.h: prompt-processing GEMM through oneDNN, run
// single-threaded on the calling thread (the backend splits N across its own threads).
#ifndef REASONRT_LIB_BACKENDS_CPU_ONEDNN_GEMM_H_
#define REASONRT_LIB_BACKENDS_CPU_ONEDNN_GEMM_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "reasonrt/dtype.h"

namespace reasonrt::cpu {

class OneDnnGemm {
 public:
  OneDnnGemm();
  ~OneDnnGemm();

  // Whether this build has oneDNN and it takes weights of `dtype` (bf16 needs AVX512-BF16
  // or AMX to be worth it; f32 always).
  static bool Supports(DType dtype);

  // y[M, N] (row stride ldy) = x[M, K] . W[N, K]^T, W row-major in `dtype` (bf16: x is
  // rounded to bf16 first, in `x_bf16`, M*K elements the caller provides; f32: x as is).
  // Runs on the calling thread. Each distinct (M, N, K, dtype) builds a primitive once.
  absl::Status Run(DType dtype, const float* x, const uint16_t* x_bf16, int64_t m, int64_t k,
                   const void* w, int64_t n, float* y, int64_t ldy);

  // The dtype prompts of bf16 weights compute in here: bf16 where Supports(kBF16), else f32
  // (weights converted to f32 panels).
  static DType PromptDType();

  // GFLOP/s of oneDNN's own multithreaded matmul [m x k] x [k x n] in `dtype` (bf16 or f32)
  // on `threads` OpenMP threads (best of `reps`); the peak the bench compares prompt
  // processing with. 0 when oneDNN or support for `dtype` is missing.
  static double MeasurePeakGflops(DType dtype, int64_t m, int64_t n, int64_t k, int threads, int reps);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace reasonrt::cpu

#endif  // REASONRT_LIB_BACKENDS_CPU_ONEDNN_GEMM_H_
