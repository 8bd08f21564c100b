// lib/backends/cuda/kernels.h: the CUDA backend's kernels (gemv.cu, attention.cu, ops.cu), as
// host functions that launch them on a stream.
//
// Plain pointers to device memory and sizes: the backend (cuda_backend.cc) has already
// validated shapes, moved every operand to the device and chosen the strides. Each
// launcher returns the launch's cudaError_t (kernels run asynchronously; errors they hit
// later surface at the stream's next synchronisation). Arithmetic is f32 throughout, as
// in the reference backend: weights of any stored dtype are converted on load.
#ifndef REASONRT_LIB_BACKENDS_CUDA_KERNELS_H_
#define REASONRT_LIB_BACKENDS_CUDA_KERNELS_H_

#include <cuda_runtime.h>

#include <cstdint>

#include "reasonrt/dtype.h"

namespace reasonrt::cuda {

// y[T, N] = x[T, K] . W[N, K]^T (+ bias[N]). W in f32, f16, bf16 or f8_e4m3 (then
// scale_inv [ceil(N/128), scale_cols] holds the 128x128 block scales). bias may be null.
// Up to 8 rows run as a GEMV that reads each weight row once for all rows; more as a
// tiled GEMM.
// weights_settled and round_activations as in GemvBatch.
cudaError_t MatMul(const float* x, int64_t t, int64_t k, const void* w, DType w_dtype,
                   const float* scale_inv, int64_t scale_cols, const void* bias, DType bias_dtype,
                   int64_t n, float* y, cudaStream_t stream, bool weights_settled = false,
                   bool round_activations = false);

// Up to kMaxGemvSegments weights that multiply the same activations (q, k and v; gate and
// up), run as one GEMV launch: segment s is y_s[T, n_s] = x[T, K] . W_s[n_s, K]^T (+ bias_s),
// its rows numbered first_row[s] .. first_row[s + 1] across the launch.
constexpr int kMaxGemvRows = 8, kMaxGemvSegments = 4;
struct GemvSegment {
  const void* w;
  const float* scale_inv;  // fp8 only, as in MatMul
  int64_t scale_cols;
  const void* bias;  // may be null
  DType bias_dtype;
  int64_t n;
  float* y;
};
// AddRmsNorm(residual, y, gain, eps, normed) fused into a one-row GEMV's end (experimental:
// see GemvTakesNorm): each block adds its rows of y into residual and sums their squares
// into partial[block]; the block that finishes last (counter) sums the partials in block
// order and writes normed = residual / sqrt(mean of squares + eps) * gain over all n. The
// counter is zero before the launch and again after it; partial holds a float per block
// (n floats always suffice).
struct GemvNorm {
  float* residual = nullptr;  // [n]; null: no epilogue
  const void* gain = nullptr;
  DType gain_dtype = DType::kF32;
  float eps = 0.0f;
  float* normed = nullptr;  // [n]
  float* partial = nullptr;
  unsigned int* counter = nullptr;
};

struct GemvBatch {
  GemvSegment segments[kMaxGemvSegments];
  int count;                                // segments in use, 1 .. kMaxGemvSegments
  int64_t first_row[kMaxGemvSegments + 1];  // first_row[0] = 0, first_row[count] = rows in all
  // Warps per weight row (each over its share of the row, partial sums met in shared
  // memory): 0 lets Gemv choose by shape, else 1, 2, 4 or 8 (benchmarks compare them).
  int split = 0;
  // No kernel on the stream writes the weights (device copies of host weights): the launch
  // may then overlap the kernel before it, reading weights while it finishes (on sm_90 and
  // later; activations are read only after it).
  bool weights_settled = false;
  // The activations may be rounded to bf16 (not exact): then 2 to 8 rows against bf16
  // weights may run on tensor cores (GemvMmaKernel), one weight read for all rows with the
  // activations read once per 16 weight rows.
  bool round_activations = false;
  // With norm.residual set: GemvNorm's epilogue (one segment, T = 1, GemvTakesNorm).
  GemvNorm norm;
  // A gated MLP's gate and up in one launch (experimental: GemvTakesSiluPairs): the two
  // segments (the same n) run row by row interleaved, gate row i beside up row i in one
  // block, and segment 0's y gets silu(gate) * up (segment 1's y is not written).
  bool silu_pairs = false;
};
// The batch of one weight (MatMul's GEMV), its norm unset.
inline GemvBatch OneWeightBatch(const void* w, const float* scale_inv, int64_t scale_cols,
                                const void* bias, DType bias_dtype, int64_t n, float* y,
                                bool weights_settled, bool round_activations) {
  GemvBatch b{};
  b.count = 1;
  b.segments[0] = GemvSegment{w, scale_inv, scale_cols, bias, bias_dtype, n, y};
  b.first_row[1] = n;
  b.weights_settled = weights_settled;
  b.round_activations = round_activations;
  return b;
}

// Whether Gemv runs this batch (its norm aside) in the kernel that takes GemvNorm: one
// segment, one activation row, k % 8 == 0, x 16-byte aligned, the weights 16-byte aligned
// (8 for fp8).
bool GemvTakesNorm(const float* x, int64_t t, int64_t k, DType w_dtype, const GemvBatch& batch);
// Whether Gemv takes this batch with silu_pairs: two segments of the same n, and one row as
// GemvTakesNorm, or 2 to 8 rows on tensor cores (round_activations, bf16 weights, k % 32
// == 0, x and the weights 16-byte aligned).
bool GemvTakesSiluPairs(const float* x, int64_t t, int64_t k, DType w_dtype,
                        const GemvBatch& batch);

// T (1 .. kMaxGemvRows) activation rows; all weights of one dtype.
cudaError_t Gemv(const float* x, int64_t t, int64_t k, DType w_dtype, const GemvBatch& batch,
                 cudaStream_t stream);

// The outputs of one GEMM over weights stacked as a batch's segments: segment s's y [t, n_s]
// = columns first_row[s] .. first_row[s + 1] of all [t, first_row[count]] (+ bias_s).
cudaError_t SplitColumns(const float* all, int64_t t, const GemvBatch& batch, cudaStream_t stream);

// Per head h: y[t, h, :] = x[t, h, :] . W[h]^T (out_in: W[h] is [N, K]) or x[t, h, :] . W[h]
// (W[h] is [K, N]). Strides in elements: x (t, h), w's heads and rows, y (t, h).
struct HeadMatMulArgs {
  const float* x;
  int64_t x_stride_t, x_stride_h;
  const void* w;
  DType w_dtype;
  int64_t w_stride_h, w_stride_row;
  bool out_in;
  float* y;
  int64_t y_stride_t, y_stride_h;
  int64_t t, heads, k, n;
};
cudaError_t HeadMatMul(const HeadMatMulArgs& a, cudaStream_t stream);

// out[t, :] += sum_j weights[t * k + j] * x[t * k + j, :]; x [T * k, h], out [T, h].
cudaError_t AddWeightedRows(const float* x, const float* weights, int64_t t, int64_t k, int64_t h,
                            float* out, cudaStream_t stream);

// y[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * gain; rows strided, y may be x.
// gain_settled: no kernel on the stream writes the gain (a host weight's device copy), so it
// may be read before the kernel before this one ends.
cudaError_t RmsNorm(const float* x, int64_t x_stride, const void* gain, DType gain_dtype,
                    int64_t rows, int64_t h, float eps, float* y, int64_t y_stride,
                    cudaStream_t stream, bool gain_settled = false);

// x[r, :] += delta[r, :], then y[r, :] = RmsNorm(x[r, :]) as above: a residual step and the
// norm after it in one pass. x and delta contiguous [rows, h]; y's rows strided, not
// overlapping x or delta.
cudaError_t AddRmsNorm(float* x, const float* delta, const void* gain, DType gain_dtype,
                       int64_t rows, int64_t h, float eps, float* y, int64_t y_stride,
                       cudaStream_t stream, bool gain_settled = false);

// Rotates x[t, head, :dims] in place (strides in elements for t and head).
cudaError_t Rope(float* x, int64_t t, int64_t heads, int64_t dims, int64_t stride_t,
                 int64_t stride_h, const int32_t* positions, const float* inv_freq,
                 bool interleaved, float cos_sin_scale, cudaStream_t stream);

// Backend::RopeAndStoreKv in one launch: q [t, q_heads, dims] and k [t, k_heads, dims]
// (rows and heads strided, dims contiguous) rotated in place as Rope rotates them, the
// rotated keys and v [t, v_width] (contiguous; may be null) stored into the cache rows
// slots[t] (k_cache rows k_heads * dims wide, v_cache rows v_width; f32 or bf16).
struct RopeStoreArgs {
  float* q;
  int64_t q_stride_t, q_stride_h, q_heads;
  float* k;
  int64_t k_stride_t, k_stride_h, k_heads;
  const float* v;
  int64_t v_width;
  int64_t t, dims;
  const int32_t* positions;
  const float* inv_freq;  // dims / 2
  bool interleaved;
  float cos_sin_scale;
  const int64_t* slots;
  void* k_cache;
  void* v_cache;
  DType cache_dtype;
};
cudaError_t RopeAndStoreKv(const RopeStoreArgs& a, cudaStream_t stream);

// cache[slots[t], :] = src[t, :] (width values a row, converted to cache_dtype: f32/bf16).
cudaError_t StoreRows(const float* src, int64_t t, int64_t width, const int64_t* slots, void* cache,
                      DType cache_dtype, cudaStream_t stream);

// The same for a layer's keys and values in one launch: k_cache[slots[t], :] = k[t, :]
// (k_width values a row) and v_cache[slots[t], :] = v[t, :] (v_width).
cudaError_t StoreKeysAndValues(const float* k, int64_t k_width, void* k_cache, const float* v,
                               int64_t v_width, void* v_cache, int64_t t, const int64_t* slots,
                               DType cache_dtype, cudaStream_t stream);

// Prompt attention on tensor cores: kernels around two batched bf16 GEMMs (cuBLAS).
// GatherKeys copies a sequence's first `keys` cache rows (its block table on the device;
// width values a row, f32 or bf16 in the cache) into dst [keys, width] as bf16, so that the
// GEMMs see its keys and values as plain matrices. width % 8 == 0.
cudaError_t GatherKeys(const void* cache, DType cache_dtype, const int32_t* table, int64_t keys,
                       int64_t width, void* dst, cudaStream_t stream);
// HeadsFirst: q [rows, heads, d] (f32) to dst [heads, rows, d] in bf16, so that the rows of
// the heads that share a kv head form one matrix. d % 4 == 0.
cudaError_t HeadsFirst(const float* q, int64_t rows, int64_t heads, int64_t d, void* dst,
                       cudaStream_t stream);
// RowsFirst: the way back for the outputs, o [heads, rows, d] into out [rows, heads, d]
// (both f32). d % 4 == 0.
cudaError_t RowsFirst(const float* o, int64_t heads, int64_t rows, int64_t d, float* out,
                      cudaStream_t stream);
// CausalSoftmax turns scores s[heads * rows, ld] (f32; row i is query i % rows of a head)
// into weights p[heads * rows, ld] (bf16): query r sees keys 0 .. first_keys + r - 1 (at most
// `keys`); the rest of its ld weights are 0. ld % 4 == 0.
cudaError_t CausalSoftmax(const float* s, void* p, int64_t heads, int64_t rows, int64_t keys,
                          int64_t ld, int64_t first_keys, cudaStream_t stream);

// Paged causal attention. Query row r belongs to the sequence whose block table starts at
// tables + table_offset[r] and sits at position row_position[r] (it attends to positions
// 0 .. row_position[r]; a row at position -1 is left as it is). A cache without values (v null)
// uses the first dv dims of each key as its value. dv <= 512.
// splits > 1 (at most 4096) divides each row's keys into that many ranges run by separate blocks (decode:
// few rows, long contexts, so more of the GPU works), merged by a second kernel; `partial`
// then holds rows * heads * splits * (dv + 2) floats of device scratch.
struct AttentionArgs {
  const float* q;  // [rows, heads, dk]
  const void* k;   // [blocks * 16, kv_heads, dk]
  const void* v;   // [blocks * 16, kv_heads, dv] or null
  DType cache_dtype;
  const int32_t* tables;
  const int32_t* table_offset;  // [rows]
  const int32_t* row_position;  // [rows]
  float* out;                   // [rows, heads, dv]
  int64_t rows, heads, kv_heads, dk, dv;
  float scale;
  int64_t splits = 1;
  float* partial = nullptr;
  // Experimental (not yet run on a GPU): with splits > 1 in the one-row-a-block decode
  // kernel, one counter per (row, head), zero before the launch and after it: the split
  // that finishes last merges the row's splits itself, with no AttentionCombineKernel.
  // Ignored by the tiled and MLA kernels.
  unsigned int* merge_counters = nullptr;
  // Prompts: tiles of up to kAttentionTileRows consecutive query rows of one sequence, as
  // (first row, row count) pairs; when given (and TiledAttentionFits), a kernel that
  // stages each block of keys once for a tile's rows runs instead. With splits > 1, split
  // s takes keys [s, s + 1) * tile_keys_per_split (a multiple of kAttentionTileKeys).
  const int32_t* tiles = nullptr;
  int64_t tile_count = 0;
  int64_t tile_keys_per_split = 0;
};
// A latent cache (v null, one kv head, dk <= 576, at least 8 heads: MLA's absorbed decode)
// runs a kernel that reads each key once for 8 heads instead of once per head.
cudaError_t Attention(const AttentionArgs& a, cudaStream_t stream);

constexpr int kAttentionTileRows = 32, kAttentionTileKeys = 32;
// Whether the tiled prompt kernel takes these widths (a cache with values, dk <= 256 a
// multiple of 4, dv <= 128 a multiple of 32).
bool TiledAttentionFits(const AttentionArgs& a);

// How many blocks Attention runs per split of the keys (to choose a.splits).
int64_t AttentionBlocks(const AttentionArgs& a);

// hi = bf16(x) and, where lo is not null, lo = bf16(x - hi) (round to nearest even): the
// activations of the bf16 tensor-core GEMM, lo for exact activations.
cudaError_t SplitBf16(const float* x, int64_t n, void* hi, void* lo, cudaStream_t stream);

// out[n, k] = bf16(W[n, k] * scale_inv[n / 128, k / 128]) (round to nearest even) for an
// f8_e4m3 weight W [n, k] with scale_inv [ceil(n/128), scale_cols]: a prompt's fp8 weight
// for the bf16 tensor-core GEMM.
cudaError_t DequantizeFp8ToBf16(const void* w, const float* scale_inv, int64_t scale_cols,
                                int64_t n, int64_t k, void* out, cudaStream_t stream);

// y[r, :] += bias (bias f32, f16 or bf16, n values) for each of t rows.
cudaError_t AddBias(float* y, int64_t t, int64_t n, const void* bias, DType bias_dtype,
                    cudaStream_t stream);

// out = silu(gate) * up; out may be gate or up.
cudaError_t SiluMul(const float* gate, const float* up, float* out, int64_t n, cudaStream_t stream);

// out = bf16(silu(gate) * up): the down projection's prompt GEMM input, formed in one pass
// (the same values as SiluMul, then SplitBf16's rounding).
cudaError_t SiluMulBf16(const float* gate, const float* up, void* out, int64_t n,
                        cudaStream_t stream);

// out = a + b; out may be a or b.
cudaError_t Add(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream);

// out[i, :] = table[ids[i], :] as f32 (table f32, f16 or bf16, [., h] contiguous).
cudaError_t GatherRows(const void* table, DType table_dtype, int64_t h, const int32_t* ids,
                       int64_t count, float* out, cudaStream_t stream);

// y[rows[i], :] = src[i, :] (h f32 values a row).
cudaError_t ScatterRows(const float* src, int64_t h, const int32_t* rows, int64_t count, float* y,
                        cudaStream_t stream);

// Row-wise softmax or log-softmax of x[rows, n]; out may be x.
cudaError_t Softmax(const float* x, float* out, int64_t rows, int64_t n, bool log,
                    cudaStream_t stream);

// The k largest of each row of x[rows, n], decreasing, ties to the lower index, NaN below
// everything.
cudaError_t TopK(const float* x, int64_t rows, int64_t n, int64_t k, float* values,
                 int32_t* indices, cudaStream_t stream);

// Backend::SampleTokens (sampling.cu): row r of logits [rows, vocab] drawn as draws[r]
// directs (TokenDraw's fields; its edits are edits[edit_begin, edit_begin + edit_count),
// in increasing token order), into out[r]. work holds rows * vocab floats of scratch (the
// edited rows). Errors are per row, in DeviceDrawn::error.
struct DeviceDraw {
  int32_t draw, greedy;
  float temperature;
  int32_t top_k;
  float top_p, min_p;
  double uniform;
  int32_t score_token;
  int32_t edit_begin, edit_count;
};
struct DeviceEdit {
  int32_t token;
  float bias, repetition_penalty, offset;
  int32_t banned;
};
constexpr int32_t kDrawOk = 0, kDrawNaN = 1, kDrawInfinity = 2, kDrawNothingLeft = 3;
struct DeviceDrawn {
  int32_t token;  // with kDrawNaN / kDrawInfinity: the first such logit
  int32_t error;
  float logprob, sampled_logprob, score_logprob;
};
cudaError_t SampleTokens(const float* logits, int64_t rows, int64_t vocab, const DeviceDraw* draws,
                         const DeviceEdit* edits, float* work, DeviceDrawn* out,
                         cudaStream_t stream);

// Backend::RouteExperts (moe.cu): RouteTokens of logits [tokens, experts] (f32), one warp
// a token, into out_experts / out_weights [tokens, k]. experts <= kMaxRoutedExperts, k <=
// kMaxExpertsPerToken, groups <= 32 (1: no groups) dividing the experts, bias null or one
// value an expert. A NaN logit scores 0 and ranks below every other expert.
constexpr int kMaxRoutedExperts = 512, kMaxExpertsPerToken = 16;
struct RouteArgs {
  const float* logits;
  const float* bias;
  int64_t tokens, experts;
  int32_t k, groups, keep_groups;
  bool sigmoid, top2_groups, normalise, always_scale;
  double scaling_factor;
  int32_t* out_experts;
  float* out_weights;
};
cudaError_t Route(const RouteArgs& a, cudaStream_t stream);

// Backend::ExpertMatMul for ids on the device: y[p, :] = x[p, :] . W_e^T, e = ids[p], for
// the experts' weights stacked into w [experts * n, k] (f32, f16, bf16 or f8_e4m3; fp8 with
// its stacked block scales scale_inv [experts * n / 128, scale_cols], n % 128 == 0). Rows
// whose id is not in [0, experts) get zeros. With up_w (a gated MLP's up experts, stacked
// as w, of its dtype and shape; fp8: up_scale_inv as scale_inv) y[p, :] is
// silu(x[p, :] . W_e^T) * (x[p, :] . U_e^T), gate and up in one launch.
struct ExpertGemvArgs {
  const float* x;
  const int32_t* ids;
  const void* w;
  DType w_dtype;
  const float* scale_inv;
  int64_t scale_cols;
  int32_t experts;
  int64_t rows, n, k;
  float* y;
  const void* up_w = nullptr;
  const float* up_scale_inv = nullptr;
};
cudaError_t ExpertGemv(const ExpertGemvArgs& a, cudaStream_t stream);

}  // namespace reasonrt::cuda

#endif  // REASONRT_LIB_BACKENDS_CUDA_KERNELS_H_
