// The "cuda" backend: validated operands in, device pointers to the kernels (kernels.h:
// gemv.cu, attention.cu, ops.cu).
//
// Host code only (compiled by the C++ compiler against the CUDA runtime's C API). What it
// adds to the kernels: device memory (Allocate, scratch), the process-wide copies of host
// weights, and staging of the host operands a caller such as the conformance suite gives.
#include "lib/backends/cuda/cuda_backend.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/backends/cuda/cublas.h"
#include "lib/backends/cuda/device.h"
#include "lib/backends/cuda/kernels.h"
#include "lib/backends/cuda/op_timer.h"
#include "lib/backends/cuda/status.h"
#include "lib/backends/cuda/weight_copies.h"
#include "lib/core/status_macros.h"
#include "lib/core/strings.h"

namespace reasonrt::cuda {
namespace {

static_assert(kKvBlockSize == 16, "attention.cu reads 16-token KV blocks");

// The stream of a backend, kept alive by every buffer freed on it.
struct Stream {
  cudaStream_t stream = nullptr;
  int device = 0;
  ~Stream() {
    if (stream == nullptr) return;
    cudaSetDevice(device);
    cudaStreamSynchronize(stream);
    cudaStreamDestroy(stream);
  }
};

// Attention splits a row's keys into ranges of at least this many when rows x heads alone
// would leave most of the GPU idle (decode).
constexpr int64_t kKeysPerSplit = 64;

// Weights applied to the same activations fuse into one device matrix when every part but
// the largest has at most this many rows (k and v beside q; see FusesWeights).
constexpr int64_t kFuseSmallRows = 1024;

// A prompt sequence of at least this many rows runs its attention as GEMMs on tensor cores
// (without exact activations; GemmAttention).
constexpr int64_t kGemmAttentionMinRows = 64;

// An fp8 weight's block scales on the device (null and 0 for other dtypes).
struct Fp8Scales {
  const float* data = nullptr;
  int64_t cols = 0;
};

// The paths RRT_CUDA_EXPERIMENTAL turns on: "1" (all of them) or a comma-separated list of
// their names (to measure one at a time).
enum ExperimentalPath : unsigned {
  kNormGemv = 1u << 0,        // norm_gemv: MatMulAddRmsNorm's norm in the GEMV's launch
  kAttentionMerge = 1u << 1,  // attention_merge: the last split merges decode attention
  kFp8Prompt = 1u << 2,       // fp8_prompt: prompts of fp8 weights on bf16 tensor cores
  kSampling = 1u << 3,        // sampling: SampleTokens on the GPU
  kMoe = 1u << 4,             // moe: RouteExperts and ExpertMatMul's ids on the GPU
  kSiluGemv = 1u << 5,        // silu_gemv: GateUpMatMul's product in its GEMV's launch
};

// The paths `value` names; a name that is none of them is reported on stderr (once a
// process), so that a misspelt one does not pass for a measurement of the plain path.
unsigned ExperimentalPaths(std::string_view value) {
  static constexpr std::pair<std::string_view, ExperimentalPath> kNames[] = {
      {"norm_gemv", kNormGemv},
      {"attention_merge", kAttentionMerge},
      {"fp8_prompt", kFp8Prompt},
      {"sampling", kSampling},
      {"moe", kMoe},
      {"silu_gemv", kSiluGemv}};
  if (value == "1") return ~0u;
  unsigned paths = 0;
  std::string unknown;
  while (!value.empty()) {
    const size_t comma = value.find(',');
    const std::string_view name = value.substr(0, comma);
    bool known = name.empty() || name == "0";
    for (const auto& [known_name, path] : kNames) {
      if (name == known_name) paths |= path, known = true;
    }
    if (!known) unknown += StrCat(unknown.empty() ? "" : ", ", name);
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
  }
  static std::once_flag reported;
  if (!unknown.empty()) {
    std::call_once(reported, [&] {
      std::string names;
      for (const auto& [known_name, path] : kNames)
        names += StrCat(names.empty() ? "" : ",", known_name);
      std::fprintf(stderr,
                   "reasonrt: RRT_CUDA_EXPERIMENTAL names no such path: %s (known: 1 or %s)\n",
                   unknown.c_str(), names.c_str());
    });
  }
  return paths;
}

class CudaBackend final : public Backend {
 public:
  CudaBackend(int device, bool exact, std::shared_ptr<Stream> stream, int multiprocessors)
      : device_(device), exact_(exact), stream_(std::move(stream)),
        multiprocessors_(multiprocessors) {
    if (std::getenv("RRT_CUDA_OP_TIMES") != nullptr)
      timer_ = std::make_unique<OpTimer>(stream_->stream);
    if (const char* v = std::getenv("RRT_CUDA_FAST_PATHS"); v != nullptr)
      fast_paths_ = std::string_view(v) != "0";
    if (const char* v = std::getenv("RRT_CUDA_EXPERIMENTAL"); v != nullptr)
      experimental_ = ExperimentalPaths(v);
    if (const char* v = std::getenv("RRT_CUDA_ATTENTION_SCRATCH"); v != nullptr) {
      const long long bytes = std::atoll(v);
      if (bytes > 0) attention_scratch_bytes_ = bytes;
    }
  }
  ~CudaBackend() override {
    timer_.reset();
    if (blas_ != nullptr) Cublas::Get()->Destroy(blas_);
  }

  std::string_view name() const override { return "cuda"; }
  Device device() const override { return Device{DeviceType::kCuda, device_}; }

  absl::StatusOr<TensorView> Allocate(DType dtype, absl::Span<const int64_t> shape) override {
    RRT_ASSIGN_OR_RETURN(int64_t count, CheckedNumElements(shape));
    const size_t bytes = static_cast<size_t>(count) * DTypeSize(dtype);
    RRT_ASSIGN_OR_RETURN(std::shared_ptr<void> memory,
                         DeviceMemory(bytes, StrCat("allocate ", ShapeString(shape))));
    RRT_RETURN_IF_ERROR(
        CudaStatus(cudaMemsetAsync(memory.get(), 0, bytes, stream_->stream), "zero"));
    return TensorView::Shared(memory, memory.get(), dtype, shape, /*read_only=*/false, device());
  }

 protected:
  absl::Status DoCopyBytes(void* dst, const void* src, size_t bytes) override {
    RRT_RETURN_IF_ERROR(Select());
    return CudaStatus(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream()), "Copy");
  }

  absl::Status FinishCopy() override { return CudaStatus(cudaStreamSynchronize(stream()), "Copy"); }

  absl::Status DoMatMul(const TensorView& x, const Weight& w, const TensorView* bias,
                        const TensorView& y) override {
    Call call(*this);
    RRT_ASSIGN_OR_RETURN(TensorView dx, call.In(x));
    RRT_ASSIGN_OR_RETURN(TensorView dy, call.Out(y, /*keep_contents=*/false));
    RRT_RETURN_IF_ERROR(RunMatMul(call, dx, w, bias, dy));
    // The op timer tells the weights apart by shape (o, down and the head of a dense model).
    if (timer_ != nullptr) return call.Finish(StrCat("MatMul ", w.data.dim(0), "x", w.data.dim(1)));
    return call.Finish("MatMul");
  }

  // Up to kMaxGemvRows rows: the weights' GEMVs as one launch per kMaxGemvSegments weights
  // (q, k and v read in one pass); more rows, or weights of mixed dtypes, one MatMul each.
  // Weights that fuse (FusesWeights: q, k and v) live on the device as one matrix, and more
  // rows then run as one GEMM over it whose columns are split into the outputs.
  absl::Status DoMatMulShared(const TensorView& x,
                              absl::Span<const reasonrt::Weight* const> weights,
                              absl::Span<const TensorView* const> biases,
                              absl::Span<const TensorView* const> ys) override {
    const int64_t t = x.dim(0), k = x.dim(1);
    const DType dtype = weights[0]->data.dtype();
    const bool fuse = FusesWeights(weights);
    bool gemv = t >= 1 && t <= kMaxGemvRows;
    for (const reasonrt::Weight* w : weights) gemv = gemv && w->data.dtype() == dtype;
    if (!gemv && !fuse) return Backend::DoMatMulShared(x, weights, biases, ys);
    Call call(*this);
    RRT_ASSIGN_OR_RETURN(TensorView dx, call.In(x));
    TensorView fused;
    if (fuse) {
      std::vector<const TensorView*> parts;
      for (const reasonrt::Weight* w : weights) parts.push_back(&w->data);
      RRT_ASSIGN_OR_RETURN(fused, call.Fused(parts));
    }
    for (size_t first = 0; first < weights.size(); first += kMaxGemvSegments) {
      GemvBatch batch{};
      batch.count = static_cast<int>(std::min<size_t>(kMaxGemvSegments, weights.size() - first));
      batch.weights_settled = true;
      batch.round_activations = RoundGemvActivations();
      for (int i = 0; i < batch.count; ++i) {
        const reasonrt::Weight& w = *weights[first + i];
        batch.weights_settled = batch.weights_settled && WeightsSettled(w);
        GemvSegment& g = batch.segments[i];
        if (fuse) {  // rows first_row[i] .. of the fused matrix (fuse: one batch)
          g.w = static_cast<const char*>(fused.data()) +
                batch.first_row[i] * k * static_cast<int64_t>(DTypeSize(dtype));
        } else {
          RRT_ASSIGN_OR_RETURN(TensorView dw, call.Weight(w.data));
          g.w = dw.data();
        }
        g.n = w.data.dim(0), g.bias_dtype = DType::kF32;
        RRT_ASSIGN_OR_RETURN(const Fp8Scales scales, call.Scales(w));
        g.scale_inv = scales.data, g.scale_cols = scales.cols;
        if (const TensorView* bias = biases[first + i]; bias != nullptr && !bias->empty()) {
          RRT_ASSIGN_OR_RETURN(TensorView db, call.Weight(*bias));
          g.bias = db.data(), g.bias_dtype = db.dtype();
        }
        RRT_ASSIGN_OR_RETURN(TensorView dy, call.Out(*ys[first + i], /*keep_contents=*/false));
        g.y = dy.mutable_data_as<float>();
        batch.first_row[i + 1] = batch.first_row[i] + g.n;
      }
      if (gemv) {
        RRT_RETURN_IF_ERROR(
            CudaStatus(Gemv(dx.data_as<float>(), t, k, dtype, batch, stream()), "MatMulShared"));
        continue;
      }
      RRT_ASSIGN_OR_RETURN(TensorView all, call.Scratch(DType::kF32, {t, fused.dim(0)}));
      RRT_RETURN_IF_ERROR(RunMatMul(call, dx, reasonrt::Weight{fused, {}}, nullptr, all));
      RRT_RETURN_IF_ERROR(
          CudaStatus(SplitColumns(all.data_as<float>(), t, batch, stream()), "MatMulShared split"));
    }
    return call.Finish("MatMulShared");
  }

  // Experimental (RRT_CUDA_EXPERIMENTAL=silu_gemv; not yet run on a GPU): one decode row of
  // gate and up runs as one GEMV launch whose blocks hold gate row i beside up row i and
  // write silu(gate) * up (GemvBatch::silu_pairs): SiluMul's launch and its pass over
  // gate and up gone; so do groups of 2 to 8 rows against bf16 weights on tensor cores
  // (where their activations may be rounded). Else (prompts, other groups) the two
  // projections, as MatMulShared runs them.
  absl::StatusOr<bool> DoGateUpMatMul(const TensorView& x, const reasonrt::Weight& gate_w,
                                      const reasonrt::Weight& up_w, const TensorView& gate,
                                      const TensorView& up) override {
    const int64_t t = x.dim(0), k = x.dim(1), n = gate_w.data.dim(0);
    const DType dtype = gate_w.data.dtype();
    if (!Experimental(kSiluGemv) || t > kMaxGemvRows || up_w.data.dtype() != dtype) {
      return Backend::DoGateUpMatMul(x, gate_w, up_w, gate, up);
    }
    Call call(*this);
    RRT_ASSIGN_OR_RETURN(TensorView dx, call.In(x));
    GemvBatch batch{};
    batch.count = 2;
    batch.silu_pairs = true;
    batch.round_activations = RoundGemvActivations();
    batch.weights_settled = WeightsSettled(gate_w) && WeightsSettled(up_w);
    const reasonrt::Weight* weights[] = {&gate_w, &up_w};
    for (int i = 0; i < 2; ++i) {
      GemvSegment& g = batch.segments[i];
      RRT_ASSIGN_OR_RETURN(TensorView dw, call.Weight(weights[i]->data));
      RRT_ASSIGN_OR_RETURN(const Fp8Scales scales, call.Scales(*weights[i]));
      g.w = dw.data(), g.scale_inv = scales.data, g.scale_cols = scales.cols;
      g.n = n, g.bias_dtype = DType::kF32;
      batch.first_row[i + 1] = batch.first_row[i] + n;
    }
    if (!GemvTakesSiluPairs(dx.data_as<float>(), t, k, dtype, batch)) {
      return Backend::DoGateUpMatMul(x, gate_w, up_w, gate, up);
    }
    RRT_ASSIGN_OR_RETURN(TensorView dy, call.Out(gate, /*keep_contents=*/false));
    batch.segments[0].y = dy.mutable_data_as<float>();  // up's y stays unwritten
    RRT_RETURN_IF_ERROR(
        CudaStatus(Gemv(dx.data_as<float>(), t, k, dtype, batch, stream()), "GateUpMatMul"));
    RRT_RETURN_IF_ERROR(call.Finish("GateUpMatMul"));
    return true;
  }

  // Whether these weights live on the device as one matrix (DoMatMulShared): two to
  // kMaxGemvSegments host matrices of one dtype (not fp8) and width, contiguous, whose
  // smaller parts are small (q, k and v; gate and up, both large, gain nothing from one GEMM
  // but pay for splitting its output).
  static bool FusesWeights(absl::Span<const reasonrt::Weight* const> weights) {
    if (weights.size() < 2 || weights.size() > static_cast<size_t>(kMaxGemvSegments)) return false;
    const TensorView& first = weights[0]->data;
    const DType dtype = first.dtype();
    if (dtype != DType::kBF16 && dtype != DType::kF16 && dtype != DType::kF32) return false;
    int64_t largest = 0, total = 0;
    for (const reasonrt::Weight* w : weights) {
      const TensorView& d = w->data;
      if (d.device().type != DeviceType::kCpu || d.owner() == nullptr || d.dtype() != dtype ||
          d.rank() != 2 || d.dim(1) != first.dim(1) || !d.is_contiguous() || d.dim(0) == 0)
        return false;
      largest = std::max(largest, d.dim(0)), total += d.dim(0);
    }
    return total - largest <= kFuseSmallRows * static_cast<int64_t>(weights.size() - 1);
  }

  absl::Status DoGroupedMatMul(const TensorView& x, absl::Span<const Weight> weights,
                               absl::Span<const std::vector<int32_t>> rows,
                               const TensorView& y) override {
    Call call(*this);
    RRT_ASSIGN_OR_RETURN(TensorView dx, call.In(x));
    RRT_ASSIGN_OR_RETURN(TensorView dy, call.Out(y, /*keep_contents=*/true));
    const int64_t k = x.dim(1), n = y.dim(1);
    for (size_t g = 0; g < weights.size(); ++g) {
      const int64_t count = static_cast<int64_t>(rows[g].size());
      if (count == 0) continue;
      RRT_ASSIGN_OR_RETURN(const int32_t* ids, call.Array(absl::MakeConstSpan(rows[g])));
      RRT_ASSIGN_OR_RETURN(TensorView gx, call.Scratch(DType::kF32, {count, k}));
      RRT_ASSIGN_OR_RETURN(TensorView gy, call.Scratch(DType::kF32, {count, n}));
      RRT_RETURN_IF_ERROR(CudaStatus(
          GatherRows(dx.data(), DType::kF32, k, ids, count, gx.mutable_data_as<float>(), stream()),
          "GroupedMatMul gather"));
      RRT_RETURN_IF_ERROR(RunMatMul(call, gx, weights[g], nullptr, gy));
      RRT_RETURN_IF_ERROR(CudaStatus(
          ScatterRows(gy.data_as<float>(), n, ids, count, dy.mutable_data_as<float>(), stream()),
          "GroupedMatMul scatter"));
    }
    return call.Finish("GroupedMatMul");
  }

  // Experimental (RRT_CUDA_EXPERIMENTAL=1; not yet run on a GPU): the experts' weights
  // stacked into one device matrix; a decode step's rows (at most kExpertGemvMaxRows) take
  // their experts' ids from device memory, so that no routing comes to the host; a
  // prompt's ids come to the host and each expert's rows run as one matmul on its slice.
  // Otherwise the default (ids to the host, GroupedMatMul).
  absl::Status DoExpertMatMul(const TensorView& x, const TensorView& ids,
                              absl::Span<const reasonrt::Weight> experts,
                              const TensorView& y) override {
    const DType dtype = experts[0].data.dtype();
    const int64_t p = x.dim(0), k = x.dim(1), n = y.dim(1);
    const bool fp8 = dtype == DType::kF8E4M3;
    if (!Stackable(experts, n)) return Backend::DoExpertMatMul(x, ids, experts, y);
    Call call(*this);
    TensorView dw, ds;
    RRT_RETURN_IF_ERROR(Stack(call, experts, dw, ds));
    if (p > kExpertGemvMaxRows) {
      // A prompt: the default (ids to the host, the rows by expert), its experts being
      // slices of the stacked matrix, so the weights are on the device once, for prompts
      // and decode alike.
      RRT_RETURN_IF_ERROR(call.Finish("ExpertMatMul"));  // the stacked copies
      const int64_t row_bytes = k * static_cast<int64_t>(DTypeSize(dtype));
      const int64_t scale_rows = fp8 ? n / 128 : 0,
                    scale_cols = fp8 ? experts[0].scale_inv.dim(1) : 0;
      std::vector<reasonrt::Weight> slices(experts.size());
      for (size_t e = 0; e < experts.size(); ++e) {
        RRT_ASSIGN_OR_RETURN(slices[e].data,
                             TensorView::Borrow(static_cast<char*>(dw.mutable_data()) +
                                                    static_cast<int64_t>(e) * n * row_bytes,
                                                dtype, {n, k}, device()));
        if (fp8) {
          RRT_ASSIGN_OR_RETURN(
              slices[e].scale_inv,
              TensorView::Borrow(
                  ds.mutable_data_as<float>() + static_cast<int64_t>(e) * scale_rows * scale_cols,
                  DType::kF32, {scale_rows, scale_cols}, device()));
        }
      }
      return Backend::DoExpertMatMul(x, ids, slices, y);
    }
    RRT_ASSIGN_OR_RETURN(TensorView dx, call.In(x));
    RRT_ASSIGN_OR_RETURN(TensorView di, call.In(ids));
    RRT_ASSIGN_OR_RETURN(TensorView dy, call.Out(y, /*keep_contents=*/false));
    const ExpertGemvArgs a = StackedExpertArgs(dx, di, experts, dw, ds, dy);
    RRT_RETURN_IF_ERROR(CudaStatus(ExpertGemv(a, stream()), "ExpertMatMul"));
    return call.Finish("ExpertMatMul");
  }

  // Experimental with ExpertMatMul (moe): a decode step's gate and up experts in one
  // launch that writes silu(gate) * up, each warp a row of both.
  absl::StatusOr<bool> DoExpertGateUpMatMul(const TensorView& x, const TensorView& ids,
                                            absl::Span<const reasonrt::Weight> gate_experts,
                                            absl::Span<const reasonrt::Weight> up_experts,
                                            const TensorView& gate, const TensorView& up) override {
    const int64_t p = x.dim(0), n = gate.dim(1);
    if (p > kExpertGemvMaxRows || !Stackable(gate_experts, n) || !Stackable(up_experts, n))
      return Backend::DoExpertGateUpMatMul(x, ids, gate_experts, up_experts, gate, up);
    Call call(*this);
    TensorView gw, gs, uw, us;
    RRT_RETURN_IF_ERROR(Stack(call, gate_experts, gw, gs));
    RRT_RETURN_IF_ERROR(Stack(call, up_experts, uw, us));
    RRT_ASSIGN_OR_RETURN(TensorView dx, call.In(x));
    RRT_ASSIGN_OR_RETURN(TensorView di, call.In(ids));
    RRT_ASSIGN_OR_RETURN(TensorView dy, call.Out(gate, /*keep_contents=*/false));
    ExpertGemvArgs a = StackedExpertArgs(dx, di, gate_experts, gw, gs, dy);
    a.up_w = uw.data(), a.up_scale_inv = a.scale_inv != nullptr ? us.data_as<float>() : nullptr;
    RRT_RETURN_IF_ERROR(CudaStatus(ExpertGemv(a, stream()), "ExpertGateUpMatMul"));
    RRT_RETURN_IF_ERROR(call.Finish("ExpertGateUpMatMul"));
    return true;
  }

  // Experimental likewise: the router on the GPU, one warp a token.
  absl::Status DoRouteExperts(const TensorView& logits, const RouterConfig& router,
                              absl::Span<const float> bias, const TensorView& experts,
                              const TensorView& weights) override {
    const bool grouped = router.topk_method != TopkMethod::kGreedy;
    if (!Experimental(kMoe) || router.n_routed_experts > kMaxRoutedExperts ||
        router.num_experts_per_tok > kMaxExpertsPerToken || (grouped && router.n_group > 32)) {
      return Backend::DoRouteExperts(logits, router, bias, experts, weights);
    }
    Call call(*this);
    RRT_ASSIGN_OR_RETURN(TensorView dl, call.In(logits));
    RRT_ASSIGN_OR_RETURN(const float* db, call.Array(bias));
    RRT_ASSIGN_OR_RETURN(TensorView de, call.Out(experts, /*keep_contents=*/false));
    RRT_ASSIGN_OR_RETURN(TensorView dw, call.Out(weights, /*keep_contents=*/false));
    RouteArgs a{};
    a.logits = dl.data_as<float>(), a.bias = db;
    a.tokens = logits.dim(0), a.experts = router.n_routed_experts;
    a.k = static_cast<int32_t>(router.num_experts_per_tok);
    a.groups = grouped ? static_cast<int32_t>(router.n_group) : 1;
    a.keep_groups = grouped ? static_cast<int32_t>(router.topk_group) : 1;
    a.sigmoid = router.scoring_func == ScoringFunc::kSigmoid;
    a.top2_groups = router.topk_method == TopkMethod::kNoauxTc;
    a.normalise = router.norm_topk_prob, a.always_scale = router.always_scale;
    a.scaling_factor = router.routed_scaling_factor;
    a.out_experts = de.mutable_data_as<int32_t>(), a.out_weights = dw.mutable_data_as<float>();
    RRT_RETURN_IF_ERROR(CudaStatus(Route(a, stream()), "RouteExperts"));
    return call.Finish("RouteExperts");
  }

  absl::Status DoAddWeightedRowsFrom(const TensorView& x, const TensorView& weights, int64_t k,
                                     const TensorView& out) override {
    Call call(*this);
    RRT_ASSIGN_OR_RETURN(TensorView dw, call.In(weights));
    return AddWeightedRowsWith(call, x, dw.data_as<float>(), k, out);
  }

  absl::Status DoHeadMatMul(const TensorView& x, const TensorView& w, HeadWeightLayout layout,
                            const TensorView& y) override {
    Call call(*this);
    RRT_ASSIGN_OR_RETURN(TensorView dx, call.In(x));
    RRT_ASSIGN_OR_RETURN(TensorView dw, call.Weight(w));
    RRT_ASSIGN_OR_RETURN(TensorView dy, call.Out(y, /*keep_contents=*/true));
    HeadMatMulArgs a{};
    a.x = dx.data_as<float>(), a.x_stride_t = dx.stride(0), a.x_stride_h = dx.stride(1);
    a.w = dw.data(), a.w_dtype = dw.dtype(), a.w_stride_h = dw.stride(0),
    a.w_stride_row = dw.stride(1);
    a.out_in = layout == HeadWeightLayout::kOutIn;
    a.y = dy.mutable_data_as<float>(), a.y_stride_t = dy.stride(0), a.y_stride_h = dy.stride(1);
    a.t = x.dim(0), a.heads = x.dim(1), a.k = x.dim(2), a.n = y.dim(2);
    RRT_RETURN_IF_ERROR(CudaStatus(cuda::HeadMatMul(a, stream()), "HeadMatMul"));
    return call.Finish("HeadMatMul");
  }

  absl::Status DoAddWeightedRows(const TensorView& x, absl::Span<const float> weights, int64_t k,
                                 const TensorView& out) override {
    Call call(*this);
    RRT_ASSIGN_OR_RETURN(const float* dw, call.Array(weights));
    return AddWeightedRowsWith(call, x, dw, k, out);
  }

  absl::Status DoRmsNorm(const TensorView& x, const TensorView& gain, float eps,
                         const TensorView& y) override {
    Call call(*this);
    RRT_ASSIGN_OR_RETURN(TensorView dx, call.In(x));
    RRT_ASSIGN_OR_RETURN(TensorView dg, call.Weight(gain));
    RRT_ASSIGN_OR_RETURN(TensorView dy, call.Out(y, /*keep_contents=*/true));
    RRT_RETURN_IF_ERROR(
        CudaStatus(cuda::RmsNorm(dx.data_as<float>(), dx.stride(0), dg.data(), dg.dtype(), x.dim(0),
                                 x.dim(1), eps, dy.mutable_data_as<float>(), dy.stride(0), stream(),
                                 /*gain_settled=*/gain.device().type == DeviceType::kCpu),
                   "RmsNorm"));
    return call.Finish("RmsNorm");
  }

  absl::Status DoAddRmsNorm(const TensorView& x, const TensorView& delta, const TensorView& gain,
                            float eps, const TensorView& y) override {
    Call call(*this);
    RRT_ASSIGN_OR_RETURN(TensorView dd, call.In(delta));
    RRT_ASSIGN_OR_RETURN(TensorView dx, call.Out(x, /*keep_contents=*/true));
    RRT_ASSIGN_OR_RETURN(TensorView dg, call.Weight(gain));
    RRT_ASSIGN_OR_RETURN(TensorView dy, call.Out(y, /*keep_contents=*/false));
    RRT_RETURN_IF_ERROR(
        CudaStatus(cuda::AddRmsNorm(dx.mutable_data_as<float>(), dd.data_as<float>(), dg.data(),
                                    dg.dtype(), x.dim(0), x.dim(1), eps,
                                    dy.mutable_data_as<float>(), dy.stride(0), stream(),
                                    /*gain_settled=*/gain.device().type == DeviceType::kCpu),
                   "AddRmsNorm"));
    return call.Finish("AddRmsNorm");
  }

  // Experimental (RRT_CUDA_EXPERIMENTAL=1; not yet run on a GPU): one decode row (T = 1)
  // of device operands runs the residual step and the norm in its GEMV's end (GemvNorm),
  // after SiluMul where up is given: two launches fewer a layer. Else the two calls.
  absl::Status DoMatMulAddRmsNorm(const TensorView& x, const TensorView* up,
                                  const reasonrt::Weight& w, const TensorView& y,
                                  const TensorView& residual, const TensorView& gain, float eps,
                                  const TensorView& normed) override {
    auto here = [&](const TensorView& t) {
      return t.device().type == DeviceType::kCuda && t.device().index == device_ &&
             t.is_contiguous();
    };
    const int64_t n = w.data.dim(0), k = w.data.dim(1);
    if (!Experimental(kNormGemv) || x.dim(0) != 1 || !here(x) || (up != nullptr && !here(*up)) ||
        !here(y) || !here(residual) || !here(normed)) {
      return Backend::DoMatMulAddRmsNorm(x, up, w, y, residual, gain, eps, normed);
    }
    Call call(*this);
    RRT_ASSIGN_OR_RETURN(TensorView dw, call.Weight(w.data));
    RRT_ASSIGN_OR_RETURN(const Fp8Scales scales, call.Scales(w));
    GemvBatch batch =
        OneWeightBatch(dw.data(), scales.data, scales.cols, nullptr, DType::kF32, n,
                       y.mutable_data_as<float>(), WeightsSettled(w), /*round_activations=*/false);
    const float* in = x.data_as<float>();
    if (!GemvTakesNorm(in, 1, k, w.data.dtype(), batch)) {
      return Backend::DoMatMulAddRmsNorm(x, up, w, y, residual, gain, eps, normed);
    }
    if (up != nullptr) {
      RRT_RETURN_IF_ERROR(CudaStatus(
          cuda::SiluMul(in, up->data_as<float>(), x.mutable_data_as<float>(), k, stream()),
          "MatMulAddRmsNorm"));
    }
    RRT_ASSIGN_OR_RETURN(TensorView dg, call.Weight(gain));
    RRT_ASSIGN_OR_RETURN(float* scratch, NormScratch(n));
    batch.norm.residual = residual.mutable_data_as<float>();
    batch.norm.gain = dg.data(), batch.norm.gain_dtype = dg.dtype(), batch.norm.eps = eps;
    batch.norm.normed = normed.mutable_data_as<float>();
    batch.norm.counter = reinterpret_cast<unsigned int*>(scratch);
    batch.norm.partial = scratch + kNormScratchHeader;
    RRT_RETURN_IF_ERROR(
        CudaStatus(Gemv(in, 1, k, w.data.dtype(), batch, stream()), "MatMulAddRmsNorm"));
    return call.Finish("MatMulAddRmsNorm");
  }

  // GemvNorm's counter (zero between launches) then a partial sum for each of up to
  // `blocks` blocks.
  static constexpr int64_t kNormScratchHeader = 16;  // floats: the counter, padded
  absl::StatusOr<float*> NormScratch(int64_t blocks) {
    RRT_ASSIGN_OR_RETURN(void* p, KeptZeroed(norm_scratch_, (kNormScratchHeader + blocks) * 4,
                                             kNormScratchHeader * 4, "norm"));
    return static_cast<float*>(p);
  }

  // A buffer kept from call to call of at least `bytes`, its first `zeroed` bytes zero when
  // it is made (the kernels that use them leave them zero); grown as needed, the old one
  // freed behind the launches that used it.
  struct Kept {
    std::shared_ptr<void> memory;
    int64_t bytes = 0;
  };
  absl::StatusOr<void*> KeptZeroed(Kept& kept, int64_t bytes, int64_t zeroed,
                                   std::string_view what) {
    if (bytes > kept.bytes) {
      RRT_ASSIGN_OR_RETURN(kept.memory, DeviceMemory(static_cast<size_t>(bytes), what));
      RRT_RETURN_IF_ERROR(CudaStatus(
          cudaMemsetAsync(kept.memory.get(), 0, static_cast<size_t>(zeroed), stream()), what));
      kept.bytes = bytes;
    }
    return kept.memory.get();
  }

  absl::Status DoRope(const TensorView& x, absl::Span<const int32_t> positions,
                      absl::Span<const float> inv_freq, RopeLayout layout,
                      float cos_sin_scale) override {
    Call call(*this);
    RRT_ASSIGN_OR_RETURN(TensorView dx, call.Out(x, /*keep_contents=*/true));
    RRT_ASSIGN_OR_RETURN(const int32_t* dp, call.Repeated(RepeatedArg::kPositions, positions));
    RRT_ASSIGN_OR_RETURN(const float* df, call.Repeated(RepeatedArg::kInvFreq, inv_freq));
    RRT_RETURN_IF_ERROR(
        CudaStatus(cuda::Rope(dx.mutable_data_as<float>(), x.dim(0), x.dim(1), x.dim(2),
                              dx.stride(0), dx.stride(1), dp, df,
                              layout == RopeLayout::kInterleaved, cos_sin_scale, stream()),
                   "Rope"));
    return call.Finish("Rope");
  }

  // One launch (unless RRT_CUDA_FAST_PATHS=0); else Rope, Rope, StoreKv.
  absl::Status DoRopeAndStoreKv(const TensorView& q, const TensorView& k, const TensorView& v,
                                absl::Span<const int32_t> positions,
                                absl::Span<const float> inv_freq, RopeLayout layout,
                                float cos_sin_scale, absl::Span<const int64_t> slots,
                                const PagedKvLayer& cache) override {
    const DType dtype = cache.k.dtype();
    const bool fits = fast_paths_ && (dtype == DType::kF32 || dtype == DType::kBF16) &&
                      (cache.v.empty() || cache.v.dtype() == dtype);
    if (!fits) {
      return Backend::DoRopeAndStoreKv(q, k, v, positions, inv_freq, layout, cos_sin_scale, slots,
                                       cache);
    }
    Call call(*this);
    RopeStoreArgs a{};
    RRT_ASSIGN_OR_RETURN(TensorView dq, call.Out(q, /*keep_contents=*/true));
    RRT_ASSIGN_OR_RETURN(TensorView dk, call.Out(k, /*keep_contents=*/true));
    RRT_ASSIGN_OR_RETURN(TensorView dkc, call.Out(cache.k, /*keep_contents=*/true));
    a.q = dq.mutable_data_as<float>(), a.q_stride_t = dq.stride(0), a.q_stride_h = dq.stride(1),
    a.q_heads = q.dim(1);
    a.k = dk.mutable_data_as<float>(), a.k_stride_t = dk.stride(0), a.k_stride_h = dk.stride(1),
    a.k_heads = k.dim(1);
    a.k_cache = dkc.mutable_data();
    if (!cache.v.empty()) {
      RRT_ASSIGN_OR_RETURN(TensorView dv, call.In(v));
      RRT_ASSIGN_OR_RETURN(TensorView dvc, call.Out(cache.v, /*keep_contents=*/true));
      a.v = dv.data_as<float>(), a.v_width = v.dim(1) * v.dim(2), a.v_cache = dvc.mutable_data();
    }
    a.t = q.dim(0), a.dims = q.dim(2);
    RRT_ASSIGN_OR_RETURN(a.positions, call.Repeated(RepeatedArg::kPositions, positions));
    RRT_ASSIGN_OR_RETURN(a.inv_freq, call.Repeated(RepeatedArg::kInvFreq, inv_freq));
    RRT_ASSIGN_OR_RETURN(a.slots, call.Repeated(RepeatedArg::kSlots, slots));
    a.interleaved = layout == RopeLayout::kInterleaved, a.cos_sin_scale = cos_sin_scale;
    a.cache_dtype = dtype;
    RRT_RETURN_IF_ERROR(CudaStatus(cuda::RopeAndStoreKv(a, stream()), "RopeAndStoreKv"));
    return call.Finish("RopeAndStoreKv");
  }

  absl::Status DoStoreKv(const TensorView& k, const TensorView& v, absl::Span<const int64_t> slots,
                         const PagedKvLayer& cache) override {
    Call call(*this);
    RRT_ASSIGN_OR_RETURN(const int64_t* ds, call.Repeated(RepeatedArg::kSlots, slots));
    if (!v.empty() && !cache.v.empty() && cache.v.dtype() == cache.k.dtype()) {  // one launch
      RRT_ASSIGN_OR_RETURN(TensorView dk, call.In(k));
      RRT_ASSIGN_OR_RETURN(TensorView dv, call.In(v));
      RRT_ASSIGN_OR_RETURN(TensorView dkc, call.Out(cache.k, /*keep_contents=*/true));
      RRT_ASSIGN_OR_RETURN(TensorView dvc, call.Out(cache.v, /*keep_contents=*/true));
      RRT_RETURN_IF_ERROR(CudaStatus(
          StoreKeysAndValues(dk.data_as<float>(), k.dim(1) * k.dim(2), dkc.mutable_data(),
                             dv.data_as<float>(), v.dim(1) * v.dim(2), dvc.mutable_data(), k.dim(0),
                             ds, cache.k.dtype(), stream()),
          "StoreKv"));
      return call.Finish("StoreKv");
    }
    for (const auto& [src, dst] : {std::pair{&k, &cache.k}, std::pair{&v, &cache.v}}) {
      if (dst->empty() || src->empty()) continue;
      RRT_ASSIGN_OR_RETURN(TensorView dsrc, call.In(*src));
      RRT_ASSIGN_OR_RETURN(TensorView ddst, call.Out(*dst, /*keep_contents=*/true));
      RRT_RETURN_IF_ERROR(
          CudaStatus(StoreRows(dsrc.data_as<float>(), src->dim(0), src->dim(1) * src->dim(2), ds,
                               ddst.mutable_data(), dst->dtype(), stream()),
                     "StoreKv"));
    }
    return call.Finish("StoreKv");
  }

  absl::Status DoAttention(const TensorView& q, const PagedKvLayer& cache,
                           absl::Span<const AttentionSequence> sequences, float scale,
                           const TensorView& out) override {
    // Per query row: where its sequence's block table starts and its position.
    std::vector<int32_t> tables, table_offset(static_cast<size_t>(q.dim(0)), 0),
        position(table_offset.size(), -1), sequence_table;
    for (const AttentionSequence& s : sequences) {
      const int32_t offset = static_cast<int32_t>(tables.size());
      sequence_table.push_back(offset);
      tables.insert(tables.end(), s.block_table.begin(), s.block_table.end());
      for (int64_t i = 0; i < s.query_count; ++i) {
        table_offset[s.query_begin + i] = offset;
        position[s.query_begin + i] = static_cast<int32_t>(s.first_position + i);
      }
    }
    if (tables.empty()) tables.push_back(0);
    Call call(*this);
    RRT_ASSIGN_OR_RETURN(TensorView dq, call.In(q));
    RRT_ASSIGN_OR_RETURN(TensorView dk, call.In(cache.k));
    TensorView dv;
    if (!cache.v.empty()) {
      RRT_ASSIGN_OR_RETURN(dv, call.In(cache.v));
    }
    RRT_ASSIGN_OR_RETURN(TensorView dout, call.Out(out, /*keep_contents=*/true));
    AttentionArgs a{};
    RRT_ASSIGN_OR_RETURN(a.tables,
                         call.Repeated(RepeatedArg::kTables, absl::MakeConstSpan(tables)));
    RRT_ASSIGN_OR_RETURN(a.table_offset, call.Repeated(RepeatedArg::kTableOffsets,
                                                       absl::MakeConstSpan(table_offset)));
    a.q = dq.data_as<float>(), a.k = dk.data(), a.v = dv.empty() ? nullptr : dv.data(),
    a.cache_dtype = cache.k.dtype();
    a.out = dout.mutable_data_as<float>();
    a.rows = q.dim(0), a.heads = q.dim(1), a.kv_heads = cache.k.dim(2), a.dk = q.dim(2),
    a.dv = out.dim(2);
    a.scale = scale;
    if (a.dv > 512)
      return absl::UnimplementedError(StrCat("cuda Attention: value width ", a.dv, " > 512"));
    // A prompt: sequences of many rows on tensor cores where allowed (GemmAttention), the
    // rest as tiles of consecutive rows of one sequence, each block of keys read once a tile.
    if (a.rows > kMaxGemvRows && TiledAttentionFits(a)) {
      std::vector<int32_t> tiles;
      int64_t max_keys = 0;  // the longest tiled row's keys
      bool gemm = false;     // some sequence went through GemmAttention (for the op timer)
      for (size_t i = 0; i < sequences.size(); ++i) {
        const AttentionSequence& s = sequences[i];
        if (UseGemmAttention(a, s)) {
          bool ran = false;
          RRT_RETURN_IF_ERROR(GemmAttention(call, a, s, a.tables + sequence_table[i], &ran));
          if (ran) {  // its rows out of the tiled kernels' way (the merge skips position -1)
            std::fill_n(position.begin() + s.query_begin, s.query_count, -1);
            gemm = true;
            continue;
          }
        }
        for (int64_t r = 0; r < s.query_count; r += kAttentionTileRows) {
          tiles.push_back(static_cast<int32_t>(s.query_begin + r));
          tiles.push_back(
              static_cast<int32_t>(std::min<int64_t>(kAttentionTileRows, s.query_count - r)));
        }
        if (s.query_count > 0) max_keys = std::max(max_keys, s.first_position + s.query_count);
      }
      a.tile_count = static_cast<int64_t>(tiles.size() / 2);
      // Too few tiles x heads to fill the GPU twice over (a short prompt, or causal masking's
      // one long tile at the end): each tile's keys split into ranges run by separate blocks.
      const int64_t tile_blocks = a.tile_count * a.heads;
      const int64_t want = 8 * static_cast<int64_t>(multiprocessors_);
      if (tile_blocks < want && max_keys > 2 * kAttentionTileKeys) {
        const int64_t key_tiles = (max_keys + kAttentionTileKeys - 1) / kAttentionTileKeys;
        const int64_t splits =
            std::min<int64_t>(key_tiles / 2, (want + tile_blocks - 1) / tile_blocks);
        a.tile_keys_per_split = (key_tiles + splits - 1) / splits * kAttentionTileKeys;
        a.splits = (max_keys + a.tile_keys_per_split - 1) / a.tile_keys_per_split;
        if (a.splits > 1) {
          RRT_ASSIGN_OR_RETURN(TensorView partial,
                               call.Scratch(DType::kF32, {a.rows * a.heads * a.splits, a.dv + 2}));
          a.partial = partial.mutable_data_as<float>();
        }
      }
      if (a.tile_count > 0) {
        RRT_ASSIGN_OR_RETURN(a.row_position, call.Repeated(RepeatedArg::kRowPositions,
                                                           absl::MakeConstSpan(position)));
        RRT_ASSIGN_OR_RETURN(a.tiles,
                             call.Repeated(RepeatedArg::kTiles, absl::MakeConstSpan(tiles)));
        RRT_RETURN_IF_ERROR(CudaStatus(cuda::Attention(a, stream()), "Attention"));
      }
      return call.Finish(gemm ? "Attention (tensor cores)" : "Attention");
    }
    RRT_ASSIGN_OR_RETURN(a.row_position,
                         call.Repeated(RepeatedArg::kRowPositions, absl::MakeConstSpan(position)));
    int32_t max_keys = 0;  // the longest row's keys
    for (int32_t p : position) max_keys = std::max(max_keys, p + 1);
    // Decode (fewer blocks per split than twice the multiprocessors) over a long context: the
    // keys split into ranges of at least kKeysPerSplit, so that the blocks fill the GPU.
    const int64_t blocks = AttentionBlocks(a), want = 2 * static_cast<int64_t>(multiprocessors_);
    if (blocks < want && max_keys >= 2 * kKeysPerSplit) {
      a.splits = std::min<int64_t>((max_keys + kKeysPerSplit - 1) / kKeysPerSplit,
                                   (want + blocks - 1) / blocks);
      RRT_ASSIGN_OR_RETURN(TensorView partial,
                           call.Scratch(DType::kF32, {a.rows * a.heads * a.splits, a.dv + 2}));
      a.partial = partial.mutable_data_as<float>();
      if (Experimental(kAttentionMerge)) {  // the last split merges (not yet run on a GPU)
        const int64_t bytes = a.rows * a.heads * static_cast<int64_t>(sizeof(unsigned int));
        RRT_ASSIGN_OR_RETURN(void* counters,
                             KeptZeroed(merge_counters_, bytes, bytes, "attention counters"));
        a.merge_counters = static_cast<unsigned int*>(counters);
      }
    }
    // Rows no sequence covers (position -1) keep their contents, as on the CPU.
    RRT_RETURN_IF_ERROR(CudaStatus(cuda::Attention(a, stream()), "Attention"));
    return call.Finish("Attention");
  }

  absl::Status DoSiluMul(const TensorView& gate, const TensorView& up,
                         const TensorView& out) override {
    Call call(*this);
    RRT_ASSIGN_OR_RETURN(TensorView dg, call.In(gate));
    RRT_ASSIGN_OR_RETURN(TensorView du, call.In(up));
    RRT_ASSIGN_OR_RETURN(TensorView dout, call.Out(out, /*keep_contents=*/false));
    RRT_RETURN_IF_ERROR(
        CudaStatus(cuda::SiluMul(dg.data_as<float>(), du.data_as<float>(),
                                 dout.mutable_data_as<float>(), out.num_elements(), stream()),
                   "SiluMul"));
    return call.Finish("SiluMul");
  }

  // Prompts of bf16 weights without exact activations (unless RRT_CUDA_FAST_PATHS=0):
  // the product formed straight in the GEMM's bf16 input (no f32 product written and read
  // back, no separate rounding pass); the same values as SiluMul then MatMul. Else those two.
  absl::Status DoSiluMulMatMul(const TensorView& gate, const TensorView& up,
                               const reasonrt::Weight& w, const TensorView& y) override {
    const int64_t t = gate.dim(0), k = gate.dim(1), n = w.data.dim(0);
    if (!fast_paths_ || exact_ || t <= kMaxGemvRows || w.data.dtype() != DType::kBF16 ||
        std::max({t, k, n}) > INT32_MAX || Blas() == nullptr) {
      return Backend::DoSiluMulMatMul(gate, up, w, y);
    }
    Call call(*this);
    RRT_ASSIGN_OR_RETURN(TensorView dg, call.In(gate));
    RRT_ASSIGN_OR_RETURN(TensorView du, call.In(up));
    RRT_ASSIGN_OR_RETURN(TensorView dw, call.Weight(w.data));
    RRT_ASSIGN_OR_RETURN(TensorView dy, call.Out(y, /*keep_contents=*/false));
    RRT_ASSIGN_OR_RETURN(TensorView product, call.Scratch(DType::kBF16, {t, k}));
    RRT_RETURN_IF_ERROR(CudaStatus(SiluMulBf16(dg.data_as<float>(), du.data_as<float>(),
                                               product.mutable_data(), t * k, stream()),
                                   "SiluMulMatMul"));
    if (!Cublas::Get()->GemmBf16(blas_, static_cast<int>(t), static_cast<int>(n),
                                 static_cast<int>(k), product.data(), dw.data(), 0.0f,
                                 dy.mutable_data_as<float>())) {
      return absl::InternalError(StrCat("cuda SiluMulMatMul: cuBLAS bf16 GEMM [", t, ", ", k,
                                        "] x [", n, ", ", k, "]^T failed"));
    }
    return call.Finish("SiluMulMatMul");
  }

  absl::Status DoEmbedding(const TensorView& table, absl::Span<const int32_t> ids,
                           const TensorView& out) override {
    Call call(*this);
    RRT_ASSIGN_OR_RETURN(TensorView dt, call.Weight(table));
    RRT_ASSIGN_OR_RETURN(const int32_t* di, call.Array(ids));
    RRT_ASSIGN_OR_RETURN(TensorView dout, call.Out(out, /*keep_contents=*/false));
    RRT_RETURN_IF_ERROR(CudaStatus(
        GatherRows(dt.data(), dt.dtype(), table.dim(1), di, static_cast<int64_t>(ids.size()),
                   dout.mutable_data_as<float>(), stream()),
        "Embedding"));
    return call.Finish("Embedding");
  }

  absl::Status DoAdd(const TensorView& a, const TensorView& b, const TensorView& out) override {
    Call call(*this);
    RRT_ASSIGN_OR_RETURN(TensorView da, call.In(a));
    RRT_ASSIGN_OR_RETURN(TensorView db, call.In(b));
    RRT_ASSIGN_OR_RETURN(TensorView dout, call.Out(out, /*keep_contents=*/false));
    RRT_RETURN_IF_ERROR(
        CudaStatus(cuda::Add(da.data_as<float>(), db.data_as<float>(),
                             dout.mutable_data_as<float>(), out.num_elements(), stream()),
                   "Add"));
    return call.Finish("Add");
  }

  absl::Status DoSoftmax(const TensorView& x, const TensorView& out, bool log) override {
    Call call(*this);
    RRT_ASSIGN_OR_RETURN(TensorView dx, call.In(x));
    RRT_ASSIGN_OR_RETURN(TensorView dout, call.Out(out, /*keep_contents=*/false));
    RRT_RETURN_IF_ERROR(CudaStatus(cuda::Softmax(dx.data_as<float>(), dout.mutable_data_as<float>(),
                                                 x.dim(0), x.dim(1), log, stream()),
                                   "Softmax"));
    return call.Finish("Softmax");
  }

  absl::Status DoTopK(const TensorView& x, int64_t k, const TensorView& values,
                      const TensorView& indices) override {
    Call call(*this);
    RRT_ASSIGN_OR_RETURN(TensorView dx, call.In(x));
    RRT_ASSIGN_OR_RETURN(TensorView dv, call.Out(values, /*keep_contents=*/false));
    RRT_ASSIGN_OR_RETURN(TensorView di, call.Out(indices, /*keep_contents=*/false));
    RRT_RETURN_IF_ERROR(
        CudaStatus(cuda::TopK(dx.data_as<float>(), x.dim(0), x.dim(1), k,
                              dv.mutable_data_as<float>(), di.mutable_data_as<int32_t>(), stream()),
                   "TopK"));
    return call.Finish("TopK");
  }

  // One block a row on the device; only the drawn tokens come back (20 bytes a row).
  // Experimental until run on a GPU: otherwise the logits go to the host and are drawn
  // there (the default).
  absl::Status DoSampleTokens(const TensorView& logits, absl::Span<const TokenDraw> draws,
                              absl::Span<DrawnToken> out) override {
    if (!Experimental(kSampling)) return Backend::DoSampleTokens(logits, draws, out);
    Call call(*this);
    RRT_ASSIGN_OR_RETURN(TensorView dl, call.In(logits));
    const int64_t rows = logits.dim(0), vocab = logits.dim(1);
    std::vector<DeviceDraw> dd(static_cast<size_t>(rows));
    std::vector<DeviceEdit> de;
    for (int64_t r = 0; r < rows; ++r) {
      const TokenDraw& t = draws[r];
      dd[r] = DeviceDraw{t.draw ? 1 : 0,
                         t.greedy ? 1 : 0,
                         t.temperature,
                         t.top_k,
                         t.top_p,
                         t.min_p,
                         t.uniform,
                         t.score_token,
                         static_cast<int32_t>(de.size()),
                         static_cast<int32_t>(t.edits.size())};
      for (const LogitEdit& e : t.edits) {
        de.push_back(DeviceEdit{e.token, e.bias, e.repetition_penalty, e.offset, e.banned ? 1 : 0});
      }
    }
    RRT_ASSIGN_OR_RETURN(const DeviceDraw* ddev, call.Array(absl::MakeConstSpan(dd)));
    RRT_ASSIGN_OR_RETURN(const DeviceEdit* edev, call.Array(absl::MakeConstSpan(de)));
    RRT_ASSIGN_OR_RETURN(TensorView work, call.Scratch(DType::kF32, {rows, vocab}));
    static_assert(sizeof(DeviceDrawn) % 4 == 0);
    RRT_ASSIGN_OR_RETURN(
        TensorView drawn,
        call.Scratch(DType::kI32, {rows * static_cast<int64_t>(sizeof(DeviceDrawn) / 4)}));
    RRT_RETURN_IF_ERROR(
        CudaStatus(cuda::SampleTokens(dl.data_as<float>(), rows, vocab, ddev, edev,
                                      work.mutable_data_as<float>(),
                                      static_cast<DeviceDrawn*>(drawn.mutable_data()), stream()),
                   "SampleTokens"));
    std::vector<DeviceDrawn> host(static_cast<size_t>(rows));
    RRT_RETURN_IF_ERROR(
        CudaStatus(cudaMemcpyAsync(host.data(), drawn.data(), host.size() * sizeof(DeviceDrawn),
                                   cudaMemcpyDeviceToHost, stream()),
                   "SampleTokens"));
    RRT_RETURN_IF_ERROR(CudaStatus(cudaStreamSynchronize(stream()), "SampleTokens"));
    RRT_RETURN_IF_ERROR(call.Finish("SampleTokens"));
    for (int64_t r = 0; r < rows; ++r) {
      const DeviceDrawn& h = host[r];
      switch (h.error) {
        case kDrawOk:
          out[r] = DrawnToken{h.token, h.logprob, h.sampled_logprob, h.score_logprob};
          break;
        case kDrawNaN:
        case kDrawInfinity:
          return absl::InvalidArgumentError(StrCat("SampleTokens: row ", r, ": logits contain ",
                                                   h.error == kDrawNaN ? "NaN" : "+inf", " (token ",
                                                   h.token, ")"));
        default:
          return absl::InvalidArgumentError(
              StrCat("SampleTokens: row ", r, ": no token can be sampled: every logit is -inf"));
      }
    }
    return absl::OkStatus();
  }

 private:
  enum class RepeatedArg {
    kPositions,
    kInvFreq,
    kSlots,
    kTables,
    kTableOffsets,
    kRowPositions,
    kTiles,
    kCount
  };
  struct LastArgument {
    std::string bytes;
    std::shared_ptr<void> memory;
  };

  // The device memory and transfers of one operation: host operands copied in, host
  // outputs copied back by Finish, scratch freed (stream-ordered) when the Call ends.
  class Call {
   public:
    explicit Call(CudaBackend& be) : be_(be) {
      cudaSetDevice(be.device_);
      if (be_.timer_ != nullptr) start_ = be_.timer_->Start();
    }
    ~Call() {
      if (start_ != nullptr) cudaEventDestroy(start_);  // a call that failed before Finish
    }

    // t on this device (as is) or a copy of host t for this call.
    absl::StatusOr<TensorView> In(const TensorView& t) {
      if (rows_ < 0 && t.rank() > 0) rows_ = t.dim(0);
      if (t.device().type != DeviceType::kCpu || t.num_elements() == 0) return be_.Local(t);
      return Upload(t);
    }

    // Host weights as one device matrix (WeightCopies::FindFused).
    absl::StatusOr<TensorView> Fused(absl::Span<const TensorView* const> parts) {
      return WeightCopies::Get().FindFused(parts, be_.device_, &uploaded_);
    }

    // A weight-like operand: host memory with an owner goes through the shared copies.
    absl::StatusOr<TensorView> Weight(const TensorView& t) {
      if (t.device().type != DeviceType::kCpu || t.num_elements() == 0) return be_.Local(t);
      if (t.owner() == nullptr) return Upload(t);
      return WeightCopies::Get().Find(t, be_.device_, &uploaded_);
    }

    // The device copy of an fp8 weight's block scales and their columns; none otherwise.
    absl::StatusOr<Fp8Scales> Scales(const reasonrt::Weight& w) {
      if (w.data.dtype() != DType::kF8E4M3) return Fp8Scales{};
      RRT_ASSIGN_OR_RETURN(TensorView ds, Weight(w.scale_inv));
      return Fp8Scales{ds.data_as<float>(), w.scale_inv.dim(1)};
    }

    // Where the kernel writes t: t itself on this device, or device memory copied back to
    // host t by Finish. keep_contents: the kernel reads t's contents, or does not write
    // every byte of its span (strided views), so they are copied in first.
    absl::StatusOr<TensorView> Out(const TensorView& t, bool keep_contents) {
      if (t.device().type != DeviceType::kCpu || t.num_elements() == 0) return be_.Local(t);
      RRT_ASSIGN_OR_RETURN(TensorView d,
                           keep_contents || !t.is_contiguous() ? Upload(t) : Buffer(t));
      downloads_.push_back({d, t});
      return d;
    }

    // Host values copied to the device for this call.
    template <typename T>
    absl::StatusOr<const T*> Array(absl::Span<const T> values) {
      if (values.empty()) return nullptr;
      RRT_ASSIGN_OR_RETURN(void* p, Memory(values.size() * sizeof(T)));
      RRT_RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(p, values.data(), values.size() * sizeof(T),
                                                     cudaMemcpyHostToDevice, be_.stream()),
                                     "copy arguments"));
      return static_cast<const T*>(p);
    }

    // The same for arguments that repeat from call to call (a forward pass gives every
    // layer the same positions, cache slots and block tables): the backend keeps the last
    // values of each kind on the device and copies only when they change.
    template <typename T>
    absl::StatusOr<const T*> Repeated(RepeatedArg kind, absl::Span<const T> values) {
      if (values.empty()) return nullptr;
      LastArgument& last = be_.last_arguments_[static_cast<int>(kind)];
      const size_t bytes = values.size() * sizeof(T);
      if (last.bytes.size() != bytes || std::memcmp(last.bytes.data(), values.data(), bytes) != 0) {
        RRT_ASSIGN_OR_RETURN(std::shared_ptr<void> m, be_.DeviceMemory(bytes, "arguments"));
        RRT_RETURN_IF_ERROR(CudaStatus(
            cudaMemcpyAsync(m.get(), values.data(), bytes, cudaMemcpyHostToDevice, be_.stream()),
            "copy arguments"));
        last.bytes.assign(reinterpret_cast<const char*>(values.data()), bytes);
        last.memory = std::move(m);  // the old copy is freed after the kernels queued on it
      }
      return static_cast<const T*>(last.memory.get());
    }

    absl::StatusOr<TensorView> Scratch(DType dtype, std::initializer_list<int64_t> shape) {
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      RRT_ASSIGN_OR_RETURN(void* p, Memory(static_cast<size_t>(n) * DTypeSize(dtype)));
      return TensorView::Borrow(p, dtype, shape, be_.device());
    }

    // Queued work done, host outputs written; the status of everything the call ran.
    absl::Status Finish(std::string_view op) {
      for (const auto& [device, host] : downloads_) {
        RRT_RETURN_IF_ERROR(
            CudaStatus(cudaMemcpyAsync(const_cast<void*>(host.data()), device.data(),
                                       static_cast<size_t>(host.span_bytes()),
                                       cudaMemcpyDeviceToHost, be_.stream()),
                       op));
      }
      if (be_.timer_ != nullptr)
        be_.timer_->Stop(std::exchange(start_, nullptr), op, rows_, uploaded_);
      if (!downloads_.empty())
        RRT_RETURN_IF_ERROR(CudaStatus(cudaStreamSynchronize(be_.stream()), op));
      return CudaStatus(cudaPeekAtLastError(), op);
    }

   private:
    absl::StatusOr<void*> Memory(size_t bytes) {
      RRT_ASSIGN_OR_RETURN(std::shared_ptr<void> m, be_.DeviceMemory(bytes, "scratch"));
      keep_.push_back(m);
      return m.get();
    }

    // Device memory with t's layout (same strides), not initialised.
    absl::StatusOr<TensorView> Buffer(const TensorView& t) {
      RRT_ASSIGN_OR_RETURN(void* p, Memory(static_cast<size_t>(t.span_bytes())));
      return TensorView::BorrowStrided(p, t.dtype(), t.shape(), t.strides(), be_.device());
    }

    absl::StatusOr<TensorView> Upload(const TensorView& t) {
      RRT_ASSIGN_OR_RETURN(TensorView d, Buffer(t));
      RRT_RETURN_IF_ERROR(CudaStatus(
          cudaMemcpyAsync(d.mutable_data(), t.data(), static_cast<size_t>(t.span_bytes()),
                          cudaMemcpyHostToDevice, be_.stream()),
          "copy operand in"));
      return d;
    }

    CudaBackend& be_;
    cudaEvent_t start_ = nullptr;  // with the op timer
    int64_t rows_ = -1;            // the first operand's rows, for the op timer
    bool uploaded_ = false;        // a weight went to the device first
    std::vector<std::shared_ptr<void>> keep_;
    std::vector<std::pair<TensorView, TensorView>> downloads_;  // (device, host)
  };

  cudaStream_t stream() const { return stream_->stream; }

  absl::Status Select() { return CudaStatus(cudaSetDevice(device_), "select device"); }

  // t if it lives on this device; an error naming both devices otherwise.
  absl::StatusOr<TensorView> Local(const TensorView& t) const {
    if (t.num_elements() == 0 ||
        (t.device().type == DeviceType::kCuda && t.device().index == device_))
      return t;
    return absl::InvalidArgumentError(StrCat("cuda backend on device ", device_, " was given ",
                                             t.DebugString(), " on another device"));
  }

  // Stream-ordered device memory, freed on this backend's stream when the last user lets go.
  absl::StatusOr<std::shared_ptr<void>> DeviceMemory(size_t bytes, std::string_view what) {
    RRT_RETURN_IF_ERROR(Select());
    void* p = nullptr;
    if (bytes > 0) RRT_RETURN_IF_ERROR(CudaStatus(cudaMallocAsync(&p, bytes, stream()), what));
    std::shared_ptr<Stream> s = stream_;
    return std::shared_ptr<void>(p, [s](void* q) {
      if (q == nullptr) return;
      cudaSetDevice(s->device);
      cudaFreeAsync(q, s->stream);
    });
  }

  // Whether ExpertMatMul may stack these experts ([n, k], one float dtype, as checked)
  // into one device matrix: the moe path is on, each is a contiguous host weight with an
  // owner (fp8: its scales too, and n a whole number of scale blocks).
  bool Stackable(absl::Span<const reasonrt::Weight> experts, int64_t n) const {
    const bool fp8 = experts[0].data.dtype() == DType::kF8E4M3;
    bool stackable = Experimental(kMoe) && (!fp8 || n % 128 == 0) &&
                     experts.size() <= static_cast<size_t>(INT32_MAX);
    for (const reasonrt::Weight& w : experts) {
      stackable &= w.data.device().type == DeviceType::kCpu && w.data.owner() != nullptr &&
                   w.data.is_contiguous() &&
                   (!fp8 || (w.scale_inv.device().type == DeviceType::kCpu &&
                             w.scale_inv.owner() != nullptr && w.scale_inv.is_contiguous()));
    }
    return stackable;
  }
  // ExpertGemv's arguments: x [P, K] and the ids on the device, the experts stacked
  // (Stack's w and scales), y [P, N].
  static ExpertGemvArgs StackedExpertArgs(const TensorView& x, const TensorView& ids,
                                          absl::Span<const reasonrt::Weight> experts,
                                          const TensorView& w, const TensorView& scales,
                                          const TensorView& y) {
    const bool fp8 = experts[0].data.dtype() == DType::kF8E4M3;
    ExpertGemvArgs a{};
    a.x = x.data_as<float>(), a.ids = ids.data_as<int32_t>(), a.w = w.data();
    a.w_dtype = experts[0].data.dtype();
    a.scale_inv = fp8 ? scales.data_as<float>() : nullptr;
    a.scale_cols = fp8 ? experts[0].scale_inv.dim(1) : 0;
    a.experts = static_cast<int32_t>(experts.size());
    a.rows = x.dim(0), a.n = y.dim(1), a.k = x.dim(1);
    a.y = y.mutable_data_as<float>();
    return a;
  }
  // The experts' device matrix (uploaded once) and, for fp8, their stacked scales.
  static absl::Status Stack(Call& call, absl::Span<const reasonrt::Weight> experts, TensorView& w,
                            TensorView& scales) {
    std::vector<const TensorView*> parts, scale_parts;
    for (const reasonrt::Weight& e : experts) {
      parts.push_back(&e.data);
      scale_parts.push_back(&e.scale_inv);
    }
    RRT_ASSIGN_OR_RETURN(w, call.Fused(parts));
    if (experts[0].data.dtype() == DType::kF8E4M3) {
      RRT_ASSIGN_OR_RETURN(scales, call.Fused(scale_parts));
    }
    return absl::OkStatus();
  }

  // AddWeightedRows with its weights already on the device.
  absl::Status AddWeightedRowsWith(Call& call, const TensorView& x, const float* weights, int64_t k,
                                   const TensorView& out) {
    RRT_ASSIGN_OR_RETURN(TensorView dx, call.In(x));
    RRT_ASSIGN_OR_RETURN(TensorView dout, call.Out(out, /*keep_contents=*/true));
    RRT_RETURN_IF_ERROR(
        CudaStatus(cuda::AddWeightedRows(dx.data_as<float>(), weights, out.dim(0), k, out.dim(1),
                                         dout.mutable_data_as<float>(), stream()),
                   "AddWeightedRows"));
    return call.Finish("AddWeightedRows");
  }

  // y = x . W^T (+ bias) with x, y on the device; the weight through the shared copies.
  absl::Status RunMatMul(Call& call, const TensorView& x, const reasonrt::Weight& w,
                         const TensorView* bias, const TensorView& y) {
    RRT_ASSIGN_OR_RETURN(TensorView dw, call.Weight(w.data));
    RRT_ASSIGN_OR_RETURN(const Fp8Scales fp8, call.Scales(w));
    const float* scales = fp8.data;
    const int64_t scale_cols = fp8.cols;
    const void* b = nullptr;
    DType bias_dtype = DType::kF32;
    if (bias != nullptr && !bias->empty()) {
      RRT_ASSIGN_OR_RETURN(TensorView db, call.Weight(*bias));
      b = db.data(), bias_dtype = db.dtype();
    }
    const int64_t t = x.dim(0), k = x.dim(1), n = w.data.dim(0);
    if (t > 8 && dw.dtype() == DType::kBF16 && std::max({t, k, n}) <= INT32_MAX) {
      if (void* blas = Blas(); blas != nullptr)
        return CublasMatMul(call, blas, x, dw, b, bias_dtype, y);
    }
    // Experimental (RRT_CUDA_EXPERIMENTAL=1; not yet run on a GPU): a prompt's fp8 weight
    // dequantized into a bf16 copy (its block scales applied, then rounded as the
    // activations are) for the bf16 tensor-core GEMM, where the tiled kernel computes in
    // f32 on the CUDA cores. Not with exact activations (the copy rounds the weights). The
    // copy is freed on the stream as soon as the GEMM is queued (stream-ordered), not at
    // the end of the call: a grouped MatMul converts one expert after another.
    if (Experimental(kFp8Prompt) && !exact_ && t >= kFp8GemmMinRows &&
        dw.dtype() == DType::kF8E4M3 && std::max({t, k, n}) <= INT32_MAX) {
      if (void* blas = Blas(); blas != nullptr) {
        RRT_ASSIGN_OR_RETURN(
            std::shared_ptr<void> copy,
            DeviceMemory(static_cast<size_t>(n * k) * 2, "MatMul fp8 weight as bf16"));
        RRT_ASSIGN_OR_RETURN(const TensorView wb,
                             TensorView::Borrow(copy.get(), DType::kBF16, {n, k}, device()));
        RRT_RETURN_IF_ERROR(CudaStatus(
            DequantizeFp8ToBf16(dw.data(), scales, scale_cols, n, k, wb.mutable_data(), stream()),
            "MatMul fp8 weight to bf16"));
        return CublasMatMul(call, blas, x, wb, b, bias_dtype, y);
      }
    }
    return CudaStatus(cuda::MatMul(x.data_as<float>(), t, k, dw.data(), dw.dtype(), scales,
                                   scale_cols, b, bias_dtype, n, y.mutable_data_as<float>(),
                                   stream(), WeightsSettled(w), RoundGemvActivations()),
                      "MatMul");
  }

  // The prompt GEMM of bf16 weights on tensor cores (cuBLAS): the activations rounded to
  // bf16, or with exact activations split into hi + lo bf16 halves, two GEMMs summed.
  absl::Status CublasMatMul(Call& call, void* blas, const TensorView& x, const TensorView& w,
                            const void* bias, DType bias_dtype, const TensorView& y) {
    const int t = static_cast<int>(x.dim(0)), k = static_cast<int>(x.dim(1));
    const int n = static_cast<int>(w.dim(0));
    RRT_ASSIGN_OR_RETURN(TensorView hi, call.Scratch(DType::kBF16, {t, k}));
    TensorView lo;
    if (exact_) {
      RRT_ASSIGN_OR_RETURN(lo, call.Scratch(DType::kBF16, {t, k}));
    }
    RRT_RETURN_IF_ERROR(
        CudaStatus(SplitBf16(x.data_as<float>(), x.num_elements(), hi.mutable_data(),
                             exact_ ? lo.mutable_data() : nullptr, stream()),
                   "MatMul"));
    const Cublas* cublas = Cublas::Get();
    float* out = y.mutable_data_as<float>();
    if (!cublas->GemmBf16(blas, t, n, k, hi.data(), w.data(), 0.0f, out) ||
        (exact_ && !cublas->GemmBf16(blas, t, n, k, lo.data(), w.data(), 1.0f, out))) {
      return absl::InternalError(
          StrCat("cuda MatMul: cuBLAS bf16 GEMM [", t, ", ", k, "] x [", n, ", ", k, "]^T failed"));
    }
    if (bias == nullptr) return absl::OkStatus();
    return CudaStatus(AddBias(out, t, n, bias, bias_dtype, stream()), "MatMul bias");
  }

  // Whether sequence s of a prompt call runs on tensor cores (GemmAttention): activations
  // need not be exact, the sequence has rows enough to pay for the extra launches, the
  // widths suit 16-byte bf16 rows, and cuBLAS is there (and has not failed us).
  bool UseGemmAttention(const AttentionArgs& a, const AttentionSequence& s) {
    return !exact_ && !gemm_attention_failed_ && s.query_count >= kGemmAttentionMinRows &&
           a.v != nullptr && a.dk % 8 == 0 && a.dv % 8 == 0 &&
           (a.cache_dtype == DType::kF32 || a.cache_dtype == DType::kBF16) &&
           s.first_position + s.query_count <= INT32_MAX / 8 && Blas() != nullptr;
  }

  // Attention of one prompt sequence as GEMMs: its keys and values gathered from the paged
  // cache into plain bf16 matrices; then per chunk of rows (scratch under
  // attention_scratch_bytes_) its queries in bf16 with the heads first, so that the rows
  // of each kv head's group of query heads form one matrix; the scores of every group (one
  // batched GEMM over the kv heads), the causal softmax into bf16 weights, the weights
  // times the values (a second batched GEMM), and the outputs back to rows first.
  // *ran is false, with nothing to undo, where cuBLAS refused: the tiled kernel then writes
  // every row of the sequence instead.
  absl::Status GemmAttention(Call& call, const AttentionArgs& a, const AttentionSequence& s,
                             const int32_t* table, bool* ran) {
    const int64_t keys = s.first_position + s.query_count, n_rows = s.query_count;
    const int64_t group = a.heads / a.kv_heads, k_width = a.kv_heads * a.dk,
                  v_width = a.kv_heads * a.dv;
    const int64_t ld_max = (keys + 7) / 8 * 8;
    const int64_t row_bytes = a.heads * ld_max * static_cast<int64_t>(sizeof(float) + 2);
    const int64_t chunk = std::clamp<int64_t>(attention_scratch_bytes_ / row_bytes, 16, n_rows);
    RRT_ASSIGN_OR_RETURN(TensorView kb, call.Scratch(DType::kBF16, {keys, k_width}));
    RRT_ASSIGN_OR_RETURN(TensorView vb, call.Scratch(DType::kBF16, {keys, v_width}));
    RRT_ASSIGN_OR_RETURN(TensorView qb, call.Scratch(DType::kBF16, {a.heads * chunk, a.dk}));
    RRT_ASSIGN_OR_RETURN(TensorView ob, call.Scratch(DType::kF32, {a.heads * chunk, a.dv}));
    RRT_ASSIGN_OR_RETURN(TensorView scores, call.Scratch(DType::kF32, {a.heads * chunk, ld_max}));
    RRT_ASSIGN_OR_RETURN(TensorView weights, call.Scratch(DType::kBF16, {a.heads * chunk, ld_max}));
    RRT_RETURN_IF_ERROR(CudaStatus(
        GatherKeys(a.k, a.cache_dtype, table, keys, k_width, kb.mutable_data(), stream()),
        "Attention gather keys"));
    RRT_RETURN_IF_ERROR(CudaStatus(
        GatherKeys(a.v, a.cache_dtype, table, keys, v_width, vb.mutable_data(), stream()),
        "Attention gather values"));
    const auto* k16 = static_cast<const uint16_t*>(kb.data());
    const auto* v16 = static_cast<const uint16_t*>(vb.data());
    const auto* q16 = static_cast<const uint16_t*>(qb.data());
    auto* p16 = static_cast<uint16_t*>(weights.mutable_data());
    float* sc = scores.mutable_data_as<float>();
    float* o = ob.mutable_data_as<float>();
    const Cublas* blas = Cublas::Get();
    const int kv = static_cast<int>(a.kv_heads);
    for (int64_t r0 = 0; r0 < n_rows; r0 += chunk) {
      const int64_t n = std::min(chunk, n_rows - r0), seen = s.first_position + r0 + n;
      const int64_t ld = (seen + 7) / 8 * 8, group_rows = group * n;
      const int64_t first_row = s.query_begin + r0;
      RRT_RETURN_IF_ERROR(CudaStatus(HeadsFirst(a.q + first_row * a.heads * a.dk, n, a.heads, a.dk,
                                                qb.mutable_data(), stream()),
                                     "Attention queries"));
      // Column-major, per kv head g: scores_g [seen, group_rows] = K_g [dk, seen]^T . Q_g.
      bool ok = blas->GemmStridedBatchedBf16(
          blas_, /*trans_a=*/true, /*trans_b=*/false, static_cast<int>(seen),
          static_cast<int>(group_rows), static_cast<int>(a.dk), a.scale,
          {k16, static_cast<int>(k_width), a.dk}, {q16, static_cast<int>(a.dk), group_rows * a.dk},
          0.0f, sc, static_cast<int>(ld), group_rows * ld, kv);
      if (!ok) return GemmAttentionFailed(ran);
      RRT_RETURN_IF_ERROR(CudaStatus(
          CausalSoftmax(sc, p16, a.heads, n, seen, ld, s.first_position + r0 + 1, stream()),
          "Attention softmax"));
      // o_g [dv, group_rows] = V_g [dv, seen] . P_g [seen, group_rows].
      ok = blas->GemmStridedBatchedBf16(blas_, false, false, static_cast<int>(a.dv),
                                        static_cast<int>(group_rows), static_cast<int>(seen), 1.0f,
                                        {v16, static_cast<int>(v_width), a.dv},
                                        {p16, static_cast<int>(ld), group_rows * ld}, 0.0f, o,
                                        static_cast<int>(a.dv), group_rows * a.dv, kv);
      if (!ok) return GemmAttentionFailed(ran);
      RRT_RETURN_IF_ERROR(
          CudaStatus(RowsFirst(o, a.heads, n, a.dv, a.out + first_row * a.heads * a.dv, stream()),
                     "Attention outputs"));
    }
    *ran = true;
    return absl::OkStatus();
  }

  absl::Status GemmAttentionFailed(bool* ran) {
    gemm_attention_failed_ = true;  // not tried again by this backend
    *ran = false;
    return absl::OkStatus();
  }

  // Whether no kernel writes w's device memory: true of the device copies of host weights
  // (written by synchronous uploads); a weight the caller keeps on the device may be the
  // output of a kernel still queued.
  static bool WeightsSettled(const reasonrt::Weight& w) {
    return w.data.device().type == DeviceType::kCpu &&
           (w.scale_inv.empty() || w.scale_inv.device().type == DeviceType::kCpu);
  }

  // Whether 2 to 8 rows against bf16 weights may run on tensor cores with bf16-rounded
  // activations (GemvBatch::round_activations): not with exact activations, nor where
  // RRT_CUDA_FAST_PATHS=0 turns it off.
  bool RoundGemvActivations() const { return fast_paths_ && !exact_; }

  // This backend's cuBLAS handle (made on first use), or nullptr without cuBLAS.
  void* Blas() {
    if (blas_ == nullptr && Cublas::Get() != nullptr) blas_ = Cublas::Get()->NewHandle(stream());
    return blas_;
  }

  int device_;
  bool exact_;
  std::shared_ptr<Stream> stream_;
  int multiprocessors_;
  void* blas_ = nullptr;
  int64_t attention_scratch_bytes_ = int64_t{256} << 20;
  bool gemm_attention_failed_ = false;
  // The tensor-core GEMV for groups, RopeAndStoreKv and SiluMulMatMul in one step each
  // (RRT_CUDA_FAST_PATHS=0: off).
  bool fast_paths_ = true;
  // RRT_CUDA_EXPERIMENTAL: paths written without a GPU at hand, not yet run on one (see
  // ExperimentalPath).
  unsigned experimental_ = 0;  // ExperimentalPath bits RRT_CUDA_EXPERIMENTAL turned on
  bool Experimental(ExperimentalPath path) const { return (experimental_ & path) != 0; }
  // The fewest prompt rows for which an fp8 weight is converted for the tensor cores (a
  // guess until measured: the conversion writes twice the weight's bytes).
  static constexpr int64_t kFp8GemmMinRows = 64;
  static constexpr int64_t kExpertGemvMaxRows =
      16;                // ExpertMatMul rows that read ids on the device
  Kept norm_scratch_;    // NormScratch
  Kept merge_counters_;  // AttentionArgs::merge_counters
  std::unique_ptr<OpTimer> timer_;
  std::array<LastArgument, static_cast<int>(RepeatedArg::kCount)> last_arguments_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> NewCudaBackend(const BackendOptions& options, int device) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || device < 0 || device >= count) {
    cudaGetLastError();
    return absl::FailedPreconditionError(
        StrCat("cuda: no device ", device, " (", count, " found)"));
  }
  auto stream = std::make_shared<Stream>();
  stream->device = device;
  RRT_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(device), "select device"));
  RRT_RETURN_IF_ERROR(CudaStatus(cudaStreamCreateWithFlags(&stream->stream, cudaStreamNonBlocking),
                                 "create stream"));
  int multiprocessors = 0;
  RRT_RETURN_IF_ERROR(CudaStatus(
      cudaDeviceGetAttribute(&multiprocessors, cudaDevAttrMultiProcessorCount, device),
      "count multiprocessors"));
  return std::unique_ptr<Backend>(new CudaBackend(device, options.exact_activations,
                                                  std::move(stream), multiprocessors));
}

}  // namespace reasonrt::cuda
