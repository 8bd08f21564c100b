// Backend::SampleTokens on the GPU: one block a row of logits, in passes over the row.
//
// The pipeline is TokenDraw's (reasonrt/backend.h). Its order is by key: a token's value
// in the edited, scaled row (its f32 bits made to order as unsigned) above its id
// (complemented, so that ties go to the lower id), 64 bits that are distinct for every
// token. top-k's and top-p's boundaries are found by radix selection on that key, 8 bits
// a pass from the top: a histogram of the candidates' next digits, by count (top-k) or by
// mass (top-p), walked from the best digit down. Masses are exp(w - top) in f32 (CUDA's
// expf, within 2 ulp) held as fixed point with 40 fraction bits, so that every sum is an
// integer sum: the same whatever the order the threads add in, and the same from run to
// run. The draw walks the kept tokens in id order (each thread a contiguous run of ids,
// the runs' sums scanned across the block).
#include "lib/backends/cuda/kernel_util.cuh"
#include "lib/backends/cuda/sampling_kernel.cuh"

namespace reasonrt::cuda {

cudaError_t SampleTokens(const float* logits, int64_t rows, int64_t vocab, const DeviceDraw* draws,
                         const DeviceEdit* edits, float* work, DeviceDrawn* out,
                         cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  SampleTokensKernel<<<static_cast<unsigned>(rows), kDrawThreads, 0, stream>>>(
      logits, static_cast<int32_t>(vocab), draws, edits, work, out);
  return cudaGetLastError();
}

}  // namespace reasonrt::cuda
