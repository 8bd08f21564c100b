// lib/backends/cuda/cuda_backend.h: the "cuda" backend (NVIDIA GPUs).
//
// Usage: CreateBackend("cuda", {}) (registered only where a device runs our code), or
// LoadOptions::backend = "cuda" for a whole model.
//
// Contracts beyond backend.h:
// - Allocate returns zeroed device memory (stream-ordered, from the device's pool);
//   out of memory is ResourceExhausted.
// - Operands may live on the host or on this device. Host weights (see
//   InvalidateWeightCopies in backend.h) are copied once per device and shared; other host
//   operands are copied in for the call and host outputs copied back before it returns,
//   so the backend passes the same conformance suite as the CPU ones. Models keep their
//   activations and KV cache in Allocate'd device memory, so a forward pass moves only its
//   token ids, positions and block tables in and its logits out.
// - All work runs on one CUDA stream per backend; calls return once their work is queued,
//   except those that write host memory, which wait for it.
// - Precision: f32 arithmetic throughout, except where BackendOptions::exact_activations is
//   off (the default): then prompt GEMMs of bf16 weights and the attention of prompt
//   sequences of at least 64 rows run on tensor cores (cuBLAS) with bf16 operands (the
//   activations, queries, keys and values, the softmax weights) and f32 accumulation, as
//   the cpu backend rounds its GEMM activations. Such attention needs scratch memory for
//   its scores of heads x rows x keys x 6 bytes; rows go in chunks that keep it under
//   256 MiB (the environment variable RRT_CUDA_ATTENTION_SCRATCH, in bytes, sets another
//   limit; at least 16 rows go at a time).
// - Without exact activations, decode steps of 2 to 8 rows (groups) against bf16 weights
//   also run on tensor cores, their activations rounded to bf16 (a group of 8 decodes about
//   4x as many tokens a second as one sequence instead of 2x). RopeAndStoreKv is one launch
//   and SiluMulMatMul forms its product straight in the prompt GEMM's bf16 input.
//   RRT_CUDA_FAST_PATHS=0 turns these three off (the plain paths, for comparisons).
// - RRT_CUDA_EXPERIMENTAL=1 turns on paths written without a GPU at hand and not yet run on
//   one (off by default; a comma-separated list of their names turns on only those):
//   norm_gemv: MatMulAddRmsNorm of one decode row runs the residual step and the norm in
//   its GEMV's last block (two launches fewer a layer); attention_merge: decode attention
//   over split keys merges the splits in the last split's block (one launch fewer a
//   layer); fp8_prompt: a prompt of 64 rows or more of an fp8 weight runs on bf16 tensor
//   cores (the weight converted per call); sampling: SampleTokens draws on the GPU (one
//   block a row; only the tokens come back) instead of copying the logits to the host and
//   drawing there; moe: RouteExperts routes on the GPU (one warp a token), and
//   ExpertMatMul of up to 16 rows reads each row's expert id in device memory (the experts
//   of a projection stacked into one device matrix; fp8 experts need a multiple of 128
//   rows) instead of bringing the ids to the host and running the rows expert by expert,
//   and ExpertGateUpMatMul of such rows runs the gate and up experts as one launch of that
//   GEMV that writes silu(gate) * up (returns true; two launches fewer a MoE layer);
//   silu_gemv: GateUpMatMul of one decode row, or of a group of 2 to 8 rows against bf16
//   weights on tensor cores, runs gate and up as one GEMV launch that writes silu(gate) *
//   up (returns true; one launch and a pass over gate and up fewer a layer). The kernels of all but
//   fp8_prompt (cuBLAS) also run, their very source, on the host in cuda_emulation_tests.
// - A kernel that fails leaves the error in the returned status (Internal, naming the
//   operation), never a crash of the host.
#ifndef REASONRT_LIB_BACKENDS_CUDA_CUDA_BACKEND_H_
#define REASONRT_LIB_BACKENDS_CUDA_CUDA_BACKEND_H_

#include <memory>

#include "absl/status/statusor.h"
#include "reasonrt/backend.h"

namespace reasonrt::cuda {

// A backend on CUDA device `device`; FailedPrecondition where there is no such device.
absl::StatusOr<std::unique_ptr<Backend>> NewCudaBackend(const BackendOptions& options, int device);

}  // namespace reasonrt::cuda

#endif  // REASONRT_LIB_BACKENDS_CUDA_CUDA_BACKEND_H_
