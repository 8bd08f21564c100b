// reasonrt/backend.h: the kernel interface every backend implements, and the registry.
//
// Basic usage (model code does this; applications rarely need to):
//
//   absl::StatusOr<std::unique_ptr<reasonrt::Backend>> be = reasonrt::CreateBackend("auto", {});
//   // y[T, N] = x[T, K] . W[N, K]^T, W in its stored dtype (bf16, f16, f32, fp8 + scales)
//   absl::Status s = (*be)->MatMul(x, reasonrt::Weight{w}, /*bias=*/nullptr, y);
//
// A backend is a small table of operations (ggml-backend and ONNX Runtime execution
// providers are the models). The public methods below validate shapes and dtypes and
// return InvalidArgument naming the operand at fault; they then call the protected Do*
// methods, which a backend implements and which may assume valid arguments. Activations
// are f32 and row-major; weights stay in their stored dtype. Optional operations say so
// and have a default built from the others. Models are written against this interface
// and never name a backend; backends never know which model calls them.
//
// A Backend object is used by one thread at a time (a Session's); it may use a thread
// pool of its own inside an operation.
#ifndef REASONRT_BACKEND_H_
#define REASONRT_BACKEND_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "reasonrt/export.h"
#include "reasonrt/moe.h"
#include "reasonrt/tensor.h"

namespace reasonrt {

// A projection weight as stored: data [out, in] in f32, f16, bf16 or f8_e4m3; for f8_e4m3,
// scale_inv holds the f32 scale of each 128x128 block, [ceil(out/128), ceil(in/128)].
struct Weight {
  TensorView data;
  TensorView scale_inv;
};

// Which dims of a head RoPE rotates together: (i, i + d/2) for Qwen2 and Llama,
// (2i, 2i + 1) for DeepSeek.
enum class RopeLayout : uint8_t { kHalfSplit, kInterleaved };

// How HeadMatMul's per-head weight W[h] is laid out: [N, K] (as a Linear's [out, in]) or
// [K, N].
enum class HeadWeightLayout : uint8_t { kOutIn, kInOut };

// Tokens per block of the paged KV cache.
inline constexpr int64_t kKvBlockSize = 16;

// One layer of a paged KV cache: k [blocks, kKvBlockSize, kv_heads, k_dim] and
// v [blocks, kKvBlockSize, kv_heads, v_dim], in f32 or bf16. Token slot s lives in block
// s / kKvBlockSize at offset s % kKvBlockSize.
struct PagedKvLayer {
  TensorView k;
  TensorView v;
};

// The query rows of one sequence in an Attention call. Row i of the sequence sits at
// position first_position + i and attends (causally) to the sequence's cached positions
// 0 .. first_position + i, found through block_table.
struct AttentionSequence {
  absl::Span<const int32_t> block_table;
  int64_t query_begin = 0;  // first row in q / out
  int64_t query_count = 0;
  int64_t first_position = 0;
};

// A change to one token's logit before a draw (Backend::SampleTokens), applied in this
// order: + bias; then the repetition penalty (the logit divided by it when positive,
// multiplied when negative; 1: none); then + offset (OpenAI's presence and frequency
// penalties as -(presence + frequency * count)); a banned token ends at -inf.
struct LogitEdit {
  int32_t token = 0;
  float bias = 0.0f;                // finite or -inf
  float repetition_penalty = 1.0f;  // > 0, finite
  float offset = 0.0f;              // finite
  bool banned = false;
};

// How one row of logits becomes a token (Backend::SampleTokens). The row is edited, then
// divided by the temperature; top_k keeps the k best tokens (by value, ties to the lower
// id); top_p keeps the best of those, best first, until their mass reaches top_p of theirs
// (the token that crosses included); min_p keeps those with p >= min_p * p_max; the token
// drawn is the first kept one, in id order, at which the kept tokens' running mass exceeds
// uniform times their sum. This is SamplingParams' pipeline with the draw's random number
// given, so every backend draws the same token from the same values (up to rounding
// where a boundary or the draw falls within a few ulps of a token's edge).
struct TokenDraw {
  bool draw = true;          // false: only score_token's log-prob (a forced token)
  bool greedy = false;       // the edited row's argmax (ties: the lower id); uniform unused
  float temperature = 1.0f;  // in [0.001, 100] unless greedy
  int32_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // in (0, 1]; 1: off
  float min_p = 0.0f;        // in [0, 1]; 0: off
  double uniform = 0.0;      // in [0, 1)
  absl::Span<const LogitEdit> edits;  // token ids strictly increasing, inside the row
  int32_t score_token = -1;           // also give this token's log-prob (-1: none)
};

// What a TokenDraw gave. Log-probs are over the row as given (unedited), divided by the
// temperature (1 when greedy): what RL trainers recompute.
struct DrawnToken {
  int32_t token = -1;            // -1 when draw is false
  float logprob = 0.0f;          // log_softmax(logits / T)[token]
  float sampled_logprob = 0.0f;  // its share of the kept, edited mass, as a log (0 greedy)
  float score_logprob = 0.0f;    // log_softmax(logits / T)[score_token]
};

class RRT_API Backend {
 public:
  virtual ~Backend();

  virtual std::string_view name() const = 0;
  virtual Device device() const = 0;

  // New zeroed memory on this backend's device.
  virtual absl::StatusOr<TensorView> Allocate(DType dtype, absl::Span<const int64_t> shape);

  // y[T, N] = x[T, K] . W[N, K]^T (+ bias[N], any float dtype). x and y f32; y must not
  // alias x.
  absl::Status MatMul(const TensorView& x, const Weight& w, const TensorView* bias,
                      const TensorView& y);

  // (optional) Several weights applied to the same x: ys[i] = x . weights[i]^T (+ biases[i],
  // which may be null), as for q/k/v or gate/up projections. Defaults to one MatMul each;
  // a backend may run them as one parallel pass.
  absl::Status MatMulShared(const TensorView& x, absl::Span<const Weight* const> weights,
                            absl::Span<const TensorView* const> biases,
                            absl::Span<const TensorView* const> ys);

  // (optional) The projections that open a gated MLP, gate = x . Wg^T and up = x . Wu^T
  // (x f32 [T, K]; Wg and Wu [I, K] as in MatMul; gate and up f32 [T, I], contiguous,
  // overlapping neither x nor each other), of which the MLP goes on with silu(gate) * up.
  // Returns false where it wrote the two projections (the default: MatMulShared); a backend
  // may instead write that product, silu(x . Wg^T) * (x . Wu^T), into gate in the same pass
  // (up's contents then unspecified) and return true: the caller then uses gate as the
  // product. Either way the product is what SiluMul of the two projections gives, within
  // the backend's MatMul tolerance.
  //
  //   RRT_ASSIGN_OR_RETURN(bool formed, be.GateUpMatMul(x, gate_w, up_w, gate, up));
  //   if (!formed) RRT_RETURN_IF_ERROR(be.SiluMul(gate, up, gate));
  //   RRT_RETURN_IF_ERROR(be.MatMul(gate, down_w, nullptr, out));
  absl::StatusOr<bool> GateUpMatMul(const TensorView& x, const Weight& gate_w, const Weight& up_w,
                                    const TensorView& gate, const TensorView& up);

  // (optional) The MoE form: for each group g, the rows rows[g] of x times weights[g]
  // into the same rows of y (rows of different groups may coincide only if y is
  // overwritten per group, so callers give disjoint y rows). Defaults to gathering the
  // rows and calling MatMul per group.
  absl::Status GroupedMatMul(const TensorView& x, absl::Span<const Weight> weights,
                             absl::Span<const std::vector<int32_t>> rows, const TensorView& y);

  // (optional, MoE) y[p, :] = x[p, :] . experts[ids[p]]^T for each row p of x [P, K] (f32):
  // the experts of one projection (all [N, K], one dtype, as in MatMul) chosen per row by
  // ids [P] (i32, host or this backend's device), so that routing computed on a device
  // need not come to the host. An id outside [0, experts.size()) is InvalidArgument once
  // the ids are on the host (as given, or brought there); a backend that reads them on its
  // device instead leaves such a row's y as zeros. Defaults to bringing ids to the host
  // and calling GroupedMatMul.
  absl::Status ExpertMatMul(const TensorView& x, const TensorView& ids,
                            absl::Span<const Weight> experts, const TensorView& y);

  // (optional, MoE) The gated MLP's two input projections over the experts, as
  // GateUpMatMul is to MatMulShared: gate[p, :] = x[p, :] . gate_experts[ids[p]]^T and
  // up[p, :] = x[p, :] . up_experts[ids[p]]^T (the two spans of equal length, every expert
  // [N, K] of one dtype; gate and up f32 [P, N], contiguous, overlapping neither x nor each
  // other; ids as ExpertMatMul's). Returns false where it wrote the two projections (the
  // default: ExpertMatMul for each), or true where it wrote silu(gate) * up into gate in
  // the same pass (up's contents then unspecified); either way the product is what SiluMul
  // of the two projections gives, within the backend's MatMul tolerance.
  //
  //   RRT_ASSIGN_OR_RETURN(bool formed, be.ExpertGateUpMatMul(xe, ids, gates, ups, ge, ue));
  //   if (!formed) RRT_RETURN_IF_ERROR(be.SiluMul(ge, ue, ge));
  //   RRT_RETURN_IF_ERROR(be.ExpertMatMul(ge, ids, downs, de));
  absl::StatusOr<bool> ExpertGateUpMatMul(const TensorView& x, const TensorView& ids,
                                          absl::Span<const Weight> gate_experts,
                                          absl::Span<const Weight> up_experts,
                                          const TensorView& gate, const TensorView& up);

  // (optional, MoE) RouteTokens (reasonrt/moe.h) of logits [T, n_routed_experts] (f32)
  // under `router` with its correction bias (noaux_tc; host values): experts [T, k] (i32)
  // and weights [T, k] (f32), k = num_experts_per_tok. All three may live on this
  // backend's device. Errors as RouteTokens for the configuration; a NaN logit is
  // InvalidArgument where the routing runs on the host (the default), while a kernel on a
  // device ranks it below every other expert. Defaults to RouteTokens on the host.
  absl::Status RouteExperts(const TensorView& logits, const RouterConfig& router,
                            absl::Span<const float> bias, const TensorView& experts,
                            const TensorView& weights);

  // (MLA's absorbed projections) per head h: y[t, h, :] = x[t, h, :] . W[h]^T for kOutIn
  // (W[h] is [N, K]) or x[t, h, :] . W[h] for kInOut (W[h] is [K, N]). w [heads, ., .] in
  // f32 or bf16 with contiguous rows; its heads may be strided (slices of kv_b_proj).
  // x [T, heads, K] and y [T, heads, N] are f32 with a contiguous last dim (rows and heads
  // may be strided); y must not overlap x.
  absl::Status HeadMatMul(const TensorView& x, const TensorView& w, HeadWeightLayout layout,
                          const TensorView& y);

  // (MoE combine) out[t, :] += sum_j weights[t * k + j] * x[t * k + j, :] for x [T * k, H]
  // and out [T, H], both f32 and contiguous.
  absl::Status AddWeightedRows(const TensorView& x, absl::Span<const float> weights, int64_t k,
                               const TensorView& out);
  // (optional) The same with weights [T * k] (f32) in a tensor on the host or this
  // backend's device (RouteExperts' output). Defaults to bringing them to the host.
  absl::Status AddWeightedRows(const TensorView& x, const TensorView& weights, int64_t k,
                               const TensorView& out);

  // y[T, H] = x / sqrt(mean(x^2) + eps) * gain[H] (gain in any float dtype). Rows of x and y
  // may be strided (the last dim contiguous), so a slice of a wider matrix can be
  // normalised in place. y may be x.
  absl::Status RmsNorm(const TensorView& x, const TensorView& gain, float eps, const TensorView& y);

  // (optional) A residual step and the norm after it, as between a transformer's blocks:
  // x += delta, then y = RmsNorm(x) (gain and eps as in RmsNorm). x and delta f32 [T, H],
  // contiguous; y f32 [T, H], its rows may be strided; y overlaps neither x nor delta.
  // Defaults to Add, then RmsNorm; a device backend may do both in one pass.
  absl::Status AddRmsNorm(const TensorView& x, const TensorView& delta, const TensorView& gain,
                          float eps, const TensorView& y);

  // (optional) A projection and the residual step after it, as at the end of a
  // transformer's attention or MLP: y = in . W^T with in = x, or silu(x) * up where up is
  // given (then as SiluMulMatMul: x's contents afterwards unspecified); then
  // AddRmsNorm(residual, y, gain, eps, normed). Operands as those calls; x and up overlap
  // neither residual nor normed, y not residual. Defaults to those calls; a device backend
  // may run the residual step and the norm in the projection's own launch.
  absl::Status MatMulAddRmsNorm(const TensorView& x, const TensorView* up, const Weight& w,
                                const TensorView& y, const TensorView& residual,
                                const TensorView& gain, float eps, const TensorView& normed);

  // Rotates, in place, x[T, heads, rotary_dims] (rows may be strided; the last dim is
  // contiguous) by the angle positions[t] * inv_freq[i] (computed in f32 as
  // float(position) * inv_freq[i]), then scales cos and sin by cos_sin_scale.
  // inv_freq has rotary_dims / 2 entries.
  absl::Status Rope(const TensorView& x, absl::Span<const int32_t> positions,
                    absl::Span<const float> inv_freq, RopeLayout layout,
                    float cos_sin_scale = 1.0f);

  // Writes k[T, kv_heads, k_dim] and v[T, kv_heads, v_dim] (f32) into the cache slots
  // `slots[t]` (converting to the cache dtype). A layer without values (v empty, as the
  // latent cache of MLA) stores k only.
  absl::Status StoreKv(const TensorView& k, const TensorView& v, absl::Span<const int64_t> slots,
                       const PagedKvLayer& cache);

  // (optional) The attention inputs of a step in one call: q [T, heads, dims] and
  // k [T, kv_heads, dims] rotated in place as Rope rotates them (same positions,
  // frequencies, layout and scale), then StoreKv(k, v, slots, cache). Operands and errors
  // as those calls; q, k and v must not overlap. Defaults to Rope, Rope, StoreKv; a device
  // backend may do it in one pass.
  absl::Status RopeAndStoreKv(const TensorView& q, const TensorView& k, const TensorView& v,
                              absl::Span<const int32_t> positions, absl::Span<const float> inv_freq,
                              RopeLayout layout, float cos_sin_scale,
                              absl::Span<const int64_t> slots, const PagedKvLayer& cache);

  // out[T, heads, v_dim] = softmax(scale * q . k^T over the causal window) . v, per
  // sequence, q[T, heads, k_dim] (f32). Grouped-query attention: head h reads kv head
  // h / (heads / kv_heads). A cache without values (MLA's latent cache: k holds
  // [latent; rotated rope key]) uses the first v_dim = out.dim(2) dims of each key as its
  // value.
  absl::Status Attention(const TensorView& q, const PagedKvLayer& cache,
                         absl::Span<const AttentionSequence> sequences, float scale,
                         const TensorView& out);

  // out = silu(gate) * up, all [T, I]. out may alias gate.
  absl::Status SiluMul(const TensorView& gate, const TensorView& up, const TensorView& out);

  // (optional) The end of an MLP: y[T, N] = (silu(gate) * up) . W^T for gate and up [T, K]
  // (f32, contiguous) and W [N, K] as in MatMul. gate's contents afterwards are unspecified
  // (the default writes the product into it); y overlaps neither. Defaults to SiluMul(gate,
  // up, gate), then MatMul; a device backend may form the product in the GEMM's own input.
  absl::Status SiluMulMatMul(const TensorView& gate, const TensorView& up, const Weight& w,
                             const TensorView& y);

  // out[T, H] (f32) = rows ids[t] of table[V, H] (any float dtype). An id outside [0, V)
  // is InvalidArgument.
  absl::Status Embedding(const TensorView& table, absl::Span<const int32_t> ids,
                         const TensorView& out);

  // out = a + b, same shapes; out may alias a or b.
  absl::Status Add(const TensorView& a, const TensorView& b, const TensorView& out);

  // Row-wise over the last dim of [T, N]. out may alias x.
  absl::Status Softmax(const TensorView& x, const TensorView& out);
  absl::Status LogSoftmax(const TensorView& x, const TensorView& out);

  // The k largest values of each row of x[T, N] in decreasing order (ties: lower index
  // first), values [T, k] f32 and indices [T, k] i32.
  absl::Status TopK(const TensorView& x, int64_t k, const TensorView& values,
                    const TensorView& indices);

  // Copies src to dst (same dtype and shape; both contiguous, or both with a contiguous
  // last dim and strided outer dims, not overlapping), between host memory and this
  // backend's device in any direction. Returns once dst holds the values.
  absl::Status Copy(const TensorView& src, const TensorView& dst);

  // (optional) The next token of each row of logits [R, V] (f32, contiguous, host or this
  // backend's device): out[i] from row i as draws[i] directs (draws and out have R entries).
  // Only the tokens and log-probs come back, so a device backend need not copy the logits
  // to the host. InvalidArgument for a draw's bad parameters or edits (naming the row),
  // for a row that holds NaN or +inf, or when a drawing row has no token left (every
  // logit -inf after the edits). Defaults to copying the logits to the host and drawing
  // there.
  absl::Status SampleTokens(const TensorView& logits, absl::Span<const TokenDraw> draws,
                            absl::Span<DrawnToken> out);

 protected:
  virtual absl::Status DoMatMul(const TensorView& x, const Weight& w, const TensorView* bias,
                                const TensorView& y) = 0;
  virtual absl::Status DoMatMulShared(const TensorView& x, absl::Span<const Weight* const> weights,
                                      absl::Span<const TensorView* const> biases,
                                      absl::Span<const TensorView* const> ys);
  virtual absl::StatusOr<bool> DoGateUpMatMul(const TensorView& x, const Weight& gate_w,
                                              const Weight& up_w, const TensorView& gate,
                                              const TensorView& up);
  virtual absl::Status DoGroupedMatMul(const TensorView& x, absl::Span<const Weight> weights,
                                       absl::Span<const std::vector<int32_t>> rows,
                                       const TensorView& y);
  virtual absl::Status DoExpertMatMul(const TensorView& x, const TensorView& ids,
                                      absl::Span<const Weight> experts, const TensorView& y);
  virtual absl::StatusOr<bool> DoExpertGateUpMatMul(const TensorView& x, const TensorView& ids,
                                                    absl::Span<const Weight> gate_experts,
                                                    absl::Span<const Weight> up_experts,
                                                    const TensorView& gate, const TensorView& up);
  virtual absl::Status DoRouteExperts(const TensorView& logits, const RouterConfig& router,
                                      absl::Span<const float> bias, const TensorView& experts,
                                      const TensorView& weights);
  virtual absl::Status DoAddWeightedRowsFrom(const TensorView& x, const TensorView& weights,
                                             int64_t k, const TensorView& out);
  virtual absl::Status DoHeadMatMul(const TensorView& x, const TensorView& w,
                                    HeadWeightLayout layout, const TensorView& y) = 0;
  virtual absl::Status DoAddWeightedRows(const TensorView& x, absl::Span<const float> weights,
                                         int64_t k, const TensorView& out) = 0;
  virtual absl::Status DoRmsNorm(const TensorView& x, const TensorView& gain, float eps,
                                 const TensorView& y) = 0;
  virtual absl::Status DoAddRmsNorm(const TensorView& x, const TensorView& delta,
                                    const TensorView& gain, float eps, const TensorView& y);
  virtual absl::Status DoMatMulAddRmsNorm(const TensorView& x, const TensorView* up,
                                          const Weight& w, const TensorView& y,
                                          const TensorView& residual, const TensorView& gain,
                                          float eps, const TensorView& normed);
  virtual absl::Status DoRope(const TensorView& x, absl::Span<const int32_t> positions,
                              absl::Span<const float> inv_freq, RopeLayout layout,
                              float cos_sin_scale) = 0;
  virtual absl::Status DoRopeAndStoreKv(const TensorView& q, const TensorView& k,
                                        const TensorView& v, absl::Span<const int32_t> positions,
                                        absl::Span<const float> inv_freq, RopeLayout layout,
                                        float cos_sin_scale, absl::Span<const int64_t> slots,
                                        const PagedKvLayer& cache);
  // (optional) Defaults to converting rows into the cache in host memory.
  virtual absl::Status DoStoreKv(const TensorView& k, const TensorView& v,
                                 absl::Span<const int64_t> slots, const PagedKvLayer& cache);
  virtual absl::Status DoAttention(const TensorView& q, const PagedKvLayer& cache,
                                   absl::Span<const AttentionSequence> sequences, float scale,
                                   const TensorView& out) = 0;
  virtual absl::Status DoSiluMul(const TensorView& gate, const TensorView& up,
                                 const TensorView& out) = 0;
  virtual absl::Status DoSiluMulMatMul(const TensorView& gate, const TensorView& up,
                                       const Weight& w, const TensorView& y);
  virtual absl::Status DoEmbedding(const TensorView& table, absl::Span<const int32_t> ids,
                                   const TensorView& out) = 0;
  virtual absl::Status DoAdd(const TensorView& a, const TensorView& b, const TensorView& out) = 0;
  virtual absl::Status DoSoftmax(const TensorView& x, const TensorView& out, bool log) = 0;
  virtual absl::Status DoTopK(const TensorView& x, int64_t k, const TensorView& values,
                              const TensorView& indices) = 0;
  virtual absl::Status DoSampleTokens(const TensorView& logits, absl::Span<const TokenDraw> draws,
                                      absl::Span<DrawnToken> out);
  // (optional) Copy calls DoCopyBytes once per contiguous run of bytes, then FinishCopy.
  // Defaults to memcpy and nothing, which suit CPU memory; a device backend queues the
  // runs and waits for them in FinishCopy.
  virtual absl::Status DoCopyBytes(void* dst, const void* src, size_t bytes);
  virtual absl::Status FinishCopy();
};

struct BackendOptions {
  int num_threads = 0;  // 0: one per core
  // Keep activations f32-exact where a backend would round them for speed (the cpu
  // backend's bf16 prompt GEMM then runs on a hi + lo bf16 split of the activations:
  // twice the GEMM work, results within f32 accumulation error of the reference).
  bool exact_activations = false;
};

using BackendFactory =
    std::function<absl::StatusOr<std::unique_ptr<Backend>>(const BackendOptions&)>;

// Makes `name` available to CreateBackend. Higher `priority` wins for "auto". Returns
// AlreadyExists for a taken name. Thread-safe.
RRT_API absl::Status RegisterBackend(std::string name, int priority, BackendFactory factory);

// A new backend by name ("reference", "cpu", ...), or for "auto" the one the environment
// variable RRT_BACKEND names when it is set (so a host program's backend can be chosen
// without changing it), else the highest-priority one. NotFound lists the registered
// names. Thread-safe.
RRT_API absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(std::string_view name,
                                                               const BackendOptions& options);

// Registered names, highest priority first.
RRT_API std::vector<std::string> RegisteredBackends();

// Device backends (cuda) copy the host weights they are given (MatMul and HeadMatMul
// weights, biases, RmsNorm gains, Embedding tables) to the device once and share the copy
// between all their instances while the host memory lives. After changing such weights in
// place, call InvalidateWeightCopies(): every copy is refreshed at its next use.
// Model::UpdateWeights does this itself.
RRT_API void InvalidateWeightCopies();
// How many times InvalidateWeightCopies() has been called (a copy made at an older count
// is stale).
RRT_API uint64_t WeightCopiesGeneration();

}  // namespace reasonrt

#endif  // REASONRT_BACKEND_H_
