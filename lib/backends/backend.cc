// The backend front end: argument validation, optional-op defaults, the registry.
#include "reasonrt/backend.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>

#include "lib/backends/builtin.h"
#include "lib/backends/token_draw.h"
#include "lib/core/status_macros.h"
#include "lib/core/strings.h"

namespace reasonrt {
namespace {

absl::Status Bad(std::string_view op, std::string_view what) {
  return absl::InvalidArgumentError(StrCat(op, ": ", what));
}

// x must be contiguous f32 of the given rank.
absl::Status CheckActivation(std::string_view op, std::string_view name, const TensorView& t,
                             int rank) {
  if (t.empty() && t.num_elements() != 0) return Bad(op, StrCat(name, " has no data"));
  if (t.dtype() != DType::kF32) return Bad(op, StrCat(name, " must be f32, is ", t.DebugString()));
  if (t.rank() != rank) return Bad(op, StrCat(name, " must have rank ", rank, ", is ", t.DebugString()));
  if (!t.is_contiguous()) return Bad(op, StrCat(name, " must be contiguous"));
  return absl::OkStatus();
}

// f32 of the given rank (2 or 3) whose last dim is contiguous and whose outer dims may be
// strided without overlapping.
absl::Status CheckStridedRows(std::string_view op, std::string_view name, const TensorView& t,
                              int rank) {
  if (t.empty() && t.num_elements() != 0) return Bad(op, StrCat(name, " has no data"));
  if (t.dtype() != DType::kF32) return Bad(op, StrCat(name, " must be f32, is ", t.DebugString()));
  if (t.rank() != rank) return Bad(op, StrCat(name, " must have rank ", rank, ", is ", t.DebugString()));
  bool ok = t.stride(rank - 1) == 1;
  int64_t inner = t.dim(rank - 1);
  for (int d = rank - 2; d >= 0; --d) {
    ok = ok && t.stride(d) >= inner;
    inner = t.stride(d) * t.dim(d);
  }
  if (!ok) return Bad(op, StrCat(name, " needs a contiguous last dim and non-overlapping rows"));
  return absl::OkStatus();
}

// One past the last element a view reaches, as a byte address (for overlap checks).
const char* ViewEnd(const TensorView& t) {
  return static_cast<const char*>(t.data()) + t.span_bytes();
}

bool Overlap(const TensorView& a, const TensorView& b) {
  if (a.num_elements() == 0 || b.num_elements() == 0) return false;
  const char* a0 = static_cast<const char*>(a.data());
  const char* b0 = static_cast<const char*>(b.data());
  return a0 < ViewEnd(b) && b0 < ViewEnd(a);
}

absl::Status CheckWritable(std::string_view op, std::string_view name, const TensorView& t) {
  if (t.read_only()) return Bad(op, StrCat(name, " is read-only"));
  return absl::OkStatus();
}

// AddWeightedRows' operands: x [T * k, H] with `weights` values folding into out [T, H].
absl::Status CheckWeightedRows(const TensorView& x, int64_t weights, int64_t k,
                               const TensorView& out) {
  RRT_RETURN_IF_ERROR(CheckActivation("AddWeightedRows", "x", x, 2));
  RRT_RETURN_IF_ERROR(CheckActivation("AddWeightedRows", "out", out, 2));
  RRT_RETURN_IF_ERROR(CheckWritable("AddWeightedRows", "out", out));
  if (k <= 0 || x.dim(0) != out.dim(0) * k || x.dim(1) != out.dim(1) || weights != x.dim(0)) {
    return Bad("AddWeightedRows",
               StrCat("x ", x.DebugString(), " with ", weights, " weights does not fold into out ",
                      out.DebugString(), " by k = ", k));
  }
  if (Overlap(x, out)) return Bad("AddWeightedRows", "out overlaps x");
  return absl::OkStatus();
}

bool IsWeightFloat(DType d) { return d == DType::kF32 || d == DType::kF16 || d == DType::kBF16; }

absl::Status CheckWeight(std::string_view op, const Weight& w, int64_t k) {
  const TensorView& d = w.data;
  if (d.rank() != 2 || !d.is_contiguous()) return Bad(op, StrCat("weight must be a contiguous matrix, is ", d.DebugString()));
  if (d.dim(1) != k) return Bad(op, StrCat("weight ", d.DebugString(), " does not take ", k, " inputs"));
  if (d.dtype() == DType::kF8E4M3) {
    const std::vector<int64_t> want = {Fp8ScaleBlocks(d.dim(0)), Fp8ScaleBlocks(d.dim(1))};
    if (w.scale_inv.dtype() != DType::kF32 || w.scale_inv.rank() != 2 ||
        std::vector<int64_t>(w.scale_inv.shape().begin(), w.scale_inv.shape().end()) != want ||
        !w.scale_inv.is_contiguous()) {
      return Bad(op, StrCat("fp8 weight ", d.DebugString(), " needs f32 scales ", ShapeString(want),
                            ", got ", w.scale_inv.DebugString()));
    }
  } else if (!IsWeightFloat(d.dtype())) {
    return Bad(op, StrCat("weight dtype ", DTypeName(d.dtype()), " is not supported"));
  }
  return absl::OkStatus();
}

absl::Status CheckCache(std::string_view op, const PagedKvLayer& c) {
  if (c.k.rank() != 4 || !c.k.is_contiguous() || c.k.dim(1) != kKvBlockSize ||
      (c.k.dtype() != DType::kF32 && c.k.dtype() != DType::kBF16)) {
    return Bad(op, StrCat("cache k must be f32/bf16 [blocks, ", kKvBlockSize, ", heads, dim], is ",
                          c.k.DebugString()));
  }
  if (!c.v.empty()) {
    if (c.v.rank() != 4 || !c.v.is_contiguous() || c.v.dim(0) != c.k.dim(0) ||
        c.v.dim(1) != kKvBlockSize || c.v.dim(2) != c.k.dim(2) || c.v.dtype() != c.k.dtype()) {
      return Bad(op, StrCat("cache v ", c.v.DebugString(), " does not match k ", c.k.DebugString()));
    }
  }
  return absl::OkStatus();
}

struct Registry {
  std::mutex mu;
  struct Entry {
    std::string name;
    int priority;
    BackendFactory factory;
  };
  std::vector<Entry> entries;
};

Registry& GetRegistry() {
  static Registry* registry = [] {
    auto* r = new Registry();
    for (auto& [name, priority, factory] : BuiltinBackends()) {
      r->entries.push_back({std::move(name), priority, std::move(factory)});
    }
    return r;
  }();
  return *registry;
}

}  // namespace

Backend::~Backend() = default;

absl::StatusOr<TensorView> Backend::Allocate(DType dtype, absl::Span<const int64_t> shape) {
  return TensorView::Allocate(dtype, shape);
}

absl::Status Backend::Copy(const TensorView& src, const TensorView& dst) {
  if (src.dtype() != dst.dtype() || src.shape() != dst.shape() || dst.read_only() ||
      (!(src.is_contiguous() && dst.is_contiguous()) &&
       !(src.rank() >= 1 && src.stride(src.rank() - 1) == 1 && dst.stride(dst.rank() - 1) == 1))) {
    return Bad("Copy", StrCat("cannot copy ", src.DebugString(), " to ", dst.DebugString()));
  }
  if (src.num_elements() == 0) return absl::OkStatus();
  if (src.is_contiguous() && dst.is_contiguous()) {
    RRT_RETURN_IF_ERROR(DoCopyBytes(dst.mutable_data(), src.data(), static_cast<size_t>(src.byte_size())));
    return FinishCopy();
  }
  if (Overlap(src, dst)) return Bad("Copy", "src and dst overlap");
  // Row by row over the outer dims.
  const int rank = src.rank();
  const size_t elem = DTypeSize(src.dtype());
  const size_t row_bytes = static_cast<size_t>(src.dim(rank - 1)) * elem;
  const int64_t rows = src.num_elements() / src.dim(rank - 1);
  for (int64_t r = 0; r < rows; ++r) {
    int64_t rem = r, s_off = 0, d_off = 0;
    for (int d = rank - 2; d >= 0; --d) {
      const int64_t i = rem % src.dim(d);
      rem /= src.dim(d);
      s_off += i * src.stride(d);
      d_off += i * dst.stride(d);
    }
    RRT_RETURN_IF_ERROR(DoCopyBytes(static_cast<char*>(dst.mutable_data()) + d_off * elem,
                                    static_cast<const char*>(src.data()) + s_off * elem, row_bytes));
  }
  return FinishCopy();
}

absl::Status Backend::DoCopyBytes(void* dst, const void* src, size_t bytes) {
  std::memcpy(dst, src, bytes);
  return absl::OkStatus();
}

absl::Status Backend::FinishCopy() { return absl::OkStatus(); }

namespace {

absl::Status CheckMatMul(std::string_view op, const TensorView& x, const Weight& w,
                         const TensorView* bias, const TensorView& y) {
  RRT_RETURN_IF_ERROR(CheckActivation(op, "x", x, 2));
  RRT_RETURN_IF_ERROR(CheckActivation(op, "y", y, 2));
  RRT_RETURN_IF_ERROR(CheckWritable(op, "y", y));
  RRT_RETURN_IF_ERROR(CheckWeight(op, w, x.dim(1)));
  if (y.dim(0) != x.dim(0) || y.dim(1) != w.data.dim(0)) {
    return Bad(
        op, StrCat("y is ", y.DebugString(), ", expected [", x.dim(0), ", ", w.data.dim(0), "]"));
  }
  if (x.data() == y.data() && x.num_elements() > 0) return Bad(op, "y aliases x");
  if (bias != nullptr && (bias->rank() != 1 || bias->dim(0) != w.data.dim(0) ||
                          !IsWeightFloat(bias->dtype()) || !bias->is_contiguous())) {
    return Bad(op,
               StrCat("bias ", bias->DebugString(), " does not match ", w.data.dim(0), " outputs"));
  }
  return absl::OkStatus();
}

absl::Status CheckSiluMulMatMul(std::string_view op, const TensorView& gate, const TensorView& up,
                                const Weight& w, const TensorView& y) {
  RRT_RETURN_IF_ERROR(CheckActivation(op, "gate", gate, 2));
  RRT_RETURN_IF_ERROR(CheckActivation(op, "up", up, 2));
  RRT_RETURN_IF_ERROR(CheckWritable(op, "gate", gate));
  if (gate.shape() != up.shape()) return Bad(op, "gate and up differ in shape");
  RRT_RETURN_IF_ERROR(CheckActivation(op, "y", y, 2));
  RRT_RETURN_IF_ERROR(CheckWritable(op, "y", y));
  RRT_RETURN_IF_ERROR(CheckWeight(op, w, gate.dim(1)));
  if (y.dim(0) != gate.dim(0) || y.dim(1) != w.data.dim(0)) {
    return Bad(op, StrCat("y is ", y.DebugString(), ", expected [", gate.dim(0), ", ",
                          w.data.dim(0), "]"));
  }
  if (Overlap(y, gate) || Overlap(y, up)) return Bad(op, "y overlaps gate or up");
  return absl::OkStatus();
}

absl::Status CheckAddRmsNorm(std::string_view op, const TensorView& x, const TensorView& delta,
                             const TensorView& gain, float eps, const TensorView& y) {
  RRT_RETURN_IF_ERROR(CheckActivation(op, "x", x, 2));
  RRT_RETURN_IF_ERROR(CheckActivation(op, "delta", delta, 2));
  RRT_RETURN_IF_ERROR(CheckStridedRows(op, "y", y, 2));
  RRT_RETURN_IF_ERROR(CheckWritable(op, "x", x));
  RRT_RETURN_IF_ERROR(CheckWritable(op, "y", y));
  if (delta.shape() != x.shape() || y.shape() != x.shape()) {
    return Bad(op, StrCat("x ", x.DebugString(), ", delta ", delta.DebugString(), " and y ",
                          y.DebugString(), " differ in shape"));
  }
  if (gain.rank() != 1 || gain.dim(0) != x.dim(1) || !IsWeightFloat(gain.dtype())) {
    return Bad(op, StrCat("gain ", gain.DebugString(), " does not match ", x.DebugString()));
  }
  if (!(eps >= 0.0f)) return Bad(op, "eps must be >= 0");
  if (x.num_elements() > 0 && (Overlap(y, x) || Overlap(y, delta)))
    return Bad(op, "y overlaps x or delta");
  return absl::OkStatus();
}

}  // namespace

absl::Status Backend::MatMul(const TensorView& x, const Weight& w, const TensorView* bias,
                             const TensorView& y) {
  RRT_RETURN_IF_ERROR(CheckMatMul("MatMul", x, w, bias, y));
  if (x.dim(0) == 0) return absl::OkStatus();
  return DoMatMul(x, w, bias, y);
}

absl::Status Backend::MatMulAddRmsNorm(const TensorView& x, const TensorView* up, const Weight& w,
                                       const TensorView& y, const TensorView& residual,
                                       const TensorView& gain, float eps,
                                       const TensorView& normed) {
  constexpr std::string_view kOp = "MatMulAddRmsNorm";
  if (up != nullptr) {
    RRT_RETURN_IF_ERROR(CheckSiluMulMatMul(kOp, x, *up, w, y));
  } else {
    RRT_RETURN_IF_ERROR(CheckMatMul(kOp, x, w, nullptr, y));
  }
  RRT_RETURN_IF_ERROR(CheckAddRmsNorm(kOp, residual, y, gain, eps, normed));
  if (x.dim(0) == 0) return absl::OkStatus();
  for (const TensorView* in : {&x, up}) {
    if (in != nullptr && (Overlap(*in, residual) || Overlap(*in, normed)))
      return Bad(kOp, "an input overlaps residual or normed");
  }
  if (Overlap(y, residual)) return Bad(kOp, "y overlaps residual");
  return DoMatMulAddRmsNorm(x, up, w, y, residual, gain, eps, normed);
}

absl::Status Backend::DoMatMulAddRmsNorm(const TensorView& x, const TensorView* up, const Weight& w,
                                         const TensorView& y, const TensorView& residual,
                                         const TensorView& gain, float eps,
                                         const TensorView& normed) {
  RRT_RETURN_IF_ERROR(up != nullptr ? DoSiluMulMatMul(x, *up, w, y) : DoMatMul(x, w, nullptr, y));
  return DoAddRmsNorm(residual, y, gain, eps, normed);
}

namespace {

// MatMulShared's operands (for `op`).
absl::Status CheckMatMulShared(std::string_view op, const TensorView& x,
                               absl::Span<const Weight* const> weights,
                               absl::Span<const TensorView* const> biases,
                               absl::Span<const TensorView* const> ys) {
  if (weights.size() != ys.size() || biases.size() != ys.size()) {
    return Bad(op, "weights, biases and outputs differ in count");
  }
  RRT_RETURN_IF_ERROR(CheckActivation(op, "x", x, 2));
  for (size_t i = 0; i < ys.size(); ++i) {
    const TensorView& y = *ys[i];
    RRT_RETURN_IF_ERROR(CheckActivation(op, "y", y, 2));
    RRT_RETURN_IF_ERROR(CheckWritable(op, "y", y));
    RRT_RETURN_IF_ERROR(CheckWeight(op, *weights[i], x.dim(1)));
    if (y.dim(0) != x.dim(0) || y.dim(1) != weights[i]->data.dim(0) || y.data() == x.data()) {
      return Bad(op, StrCat("output ", i, " is ", y.DebugString(), ", expected [", x.dim(0), ", ",
                            weights[i]->data.dim(0), "]"));
    }
    const TensorView* b = biases[i];
    if (b != nullptr && (b->rank() != 1 || b->dim(0) != y.dim(1) || !IsWeightFloat(b->dtype()))) {
      return Bad(op, StrCat("bias ", i, " ", b->DebugString(), " does not match"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Backend::MatMulShared(const TensorView& x, absl::Span<const Weight* const> weights,
                                   absl::Span<const TensorView* const> biases,
                                   absl::Span<const TensorView* const> ys) {
  RRT_RETURN_IF_ERROR(CheckMatMulShared("MatMulShared", x, weights, biases, ys));
  if (x.dim(0) == 0) return absl::OkStatus();
  return DoMatMulShared(x, weights, biases, ys);
}

absl::Status Backend::DoMatMulShared(const TensorView& x, absl::Span<const Weight* const> weights,
                                     absl::Span<const TensorView* const> biases,
                                     absl::Span<const TensorView* const> ys) {
  for (size_t i = 0; i < ys.size(); ++i) RRT_RETURN_IF_ERROR(DoMatMul(x, *weights[i], biases[i], *ys[i]));
  return absl::OkStatus();
}

absl::StatusOr<bool> Backend::GateUpMatMul(const TensorView& x, const Weight& gate_w,
                                           const Weight& up_w, const TensorView& gate,
                                           const TensorView& up) {
  const Weight* weights[] = {&gate_w, &up_w};
  const TensorView* biases[] = {nullptr, nullptr};
  const TensorView* ys[] = {&gate, &up};
  RRT_RETURN_IF_ERROR(CheckMatMulShared("GateUpMatMul", x, weights, biases, ys));
  if (gate_w.data.dim(0) != up_w.data.dim(0)) {
    return Bad("GateUpMatMul",
               StrCat("gate's weight has ", gate_w.data.dim(0), " rows, up's ", up_w.data.dim(0)));
  }
  for (const TensorView* y : ys) {
    if (!y->is_contiguous()) {
      return Bad("GateUpMatMul", StrCat("output ", y->DebugString(), " is not contiguous"));
    }
  }
  if (Overlap(gate, up) || Overlap(gate, x) || Overlap(up, x)) {
    return Bad("GateUpMatMul", "gate, up and x overlap");
  }
  if (x.dim(0) == 0) return false;
  return DoGateUpMatMul(x, gate_w, up_w, gate, up);
}

absl::StatusOr<bool> Backend::DoGateUpMatMul(const TensorView& x, const Weight& gate_w,
                                             const Weight& up_w, const TensorView& gate,
                                             const TensorView& up) {
  const Weight* weights[] = {&gate_w, &up_w};
  const TensorView* biases[] = {nullptr, nullptr};
  const TensorView* ys[] = {&gate, &up};
  RRT_RETURN_IF_ERROR(DoMatMulShared(x, weights, biases, ys));
  return false;
}

absl::Status Backend::GroupedMatMul(const TensorView& x, absl::Span<const Weight> weights,
                                    absl::Span<const std::vector<int32_t>> rows,
                                    const TensorView& y) {
  RRT_RETURN_IF_ERROR(CheckActivation("GroupedMatMul", "x", x, 2));
  RRT_RETURN_IF_ERROR(CheckActivation("GroupedMatMul", "y", y, 2));
  RRT_RETURN_IF_ERROR(CheckWritable("GroupedMatMul", "y", y));
  if (weights.size() != rows.size()) return Bad("GroupedMatMul", "weights and rows differ in count");
  if (y.dim(0) != x.dim(0)) return Bad("GroupedMatMul", "x and y differ in rows");
  for (size_t g = 0; g < weights.size(); ++g) {
    RRT_RETURN_IF_ERROR(CheckWeight("GroupedMatMul", weights[g], x.dim(1)));
    if (weights[g].data.dim(0) != y.dim(1)) return Bad("GroupedMatMul", StrCat("group ", g, " has the wrong output width"));
    for (int32_t r : rows[g]) {
      if (r < 0 || r >= x.dim(0)) return Bad("GroupedMatMul", StrCat("row ", r, " of group ", g, " out of range"));
    }
  }
  return DoGroupedMatMul(x, weights, rows, y);
}

absl::Status Backend::DoGroupedMatMul(const TensorView& x, absl::Span<const Weight> weights,
                                      absl::Span<const std::vector<int32_t>> rows,
                                      const TensorView& y) {
  for (size_t g = 0; g < weights.size(); ++g) {
    const int64_t n = static_cast<int64_t>(rows[g].size());
    if (n == 0) continue;
    RRT_ASSIGN_OR_RETURN(TensorView xs, Allocate(DType::kF32, {n, x.dim(1)}));
    RRT_ASSIGN_OR_RETURN(TensorView ys, Allocate(DType::kF32, {n, y.dim(1)}));
    RRT_RETURN_IF_ERROR(Embedding(x, rows[g], xs));
    RRT_RETURN_IF_ERROR(MatMul(xs, weights[g], nullptr, ys));
    const float* src = ys.data_as<float>();
    float* dst = y.mutable_data_as<float>();
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(dst + rows[g][i] * y.dim(1), src + i * y.dim(1), sizeof(float) * y.dim(1));
    }
  }
  return absl::OkStatus();
}

namespace {

// Every id of host_ids (i32, host memory) names one of `experts` experts.
absl::Status CheckExpertIds(std::string_view op, const TensorView& host_ids, size_t experts) {
  for (int64_t p = 0; p < host_ids.dim(0); ++p) {
    const int32_t id = host_ids.data_as<int32_t>()[p];
    if (id < 0 || id >= static_cast<int64_t>(experts)) {
      return Bad(op, StrCat("row ", p, " names expert ", id, " of ", experts));
    }
  }
  return absl::OkStatus();
}

// t's values in host memory: t itself, or a copy made by `be`.
absl::StatusOr<TensorView> OnHost(Backend& be, const TensorView& t) {
  if (t.device().type == DeviceType::kCpu || t.num_elements() == 0) return t;
  RRT_ASSIGN_OR_RETURN(TensorView host, TensorView::Allocate(t.dtype(), t.shape()));
  RRT_RETURN_IF_ERROR(be.Copy(t, host));
  return host;
}

// ExpertMatMul's arguments for `op` (`name`: which experts, in messages): x, the ids, the
// experts (one dtype, [y's columns, x's columns]) and y.
absl::Status CheckExpertMatMul(std::string_view op, std::string_view name, const TensorView& x,
                               const TensorView& ids, absl::Span<const Weight> experts,
                               const TensorView& y) {
  RRT_RETURN_IF_ERROR(CheckActivation(op, "x", x, 2));
  RRT_RETURN_IF_ERROR(CheckActivation(op, "y", y, 2));
  RRT_RETURN_IF_ERROR(CheckWritable(op, "y", y));
  if (y.dim(0) != x.dim(0)) return Bad(op, "x and y differ in rows");
  if (ids.dtype() != DType::kI32 || ids.rank() != 1 || ids.dim(0) != x.dim(0) ||
      !ids.is_contiguous()) {
    return Bad(op, StrCat("ids must be contiguous i32 [", x.dim(0), "], is ", ids.DebugString()));
  }
  if (experts.empty()) return Bad(op, StrCat("no ", name, "s"));
  for (size_t e = 0; e < experts.size(); ++e) {
    RRT_RETURN_IF_ERROR(CheckWeight(op, experts[e], x.dim(1)));
    if (experts[e].data.dim(0) != y.dim(1) || experts[e].data.dtype() != experts[0].data.dtype()) {
      return Bad(op,
                 StrCat(name, " ", e, " is ", experts[e].data.DebugString(), ", expected ",
                        DTypeName(experts[0].data.dtype()), " [", y.dim(1), ", ", x.dim(1), "]"));
    }
  }
  if (Overlap(x, y)) return Bad(op, "y overlaps x");
  if (ids.device().type == DeviceType::kCpu)
    RRT_RETURN_IF_ERROR(CheckExpertIds(op, ids, experts.size()));
  return absl::OkStatus();
}

}  // namespace

absl::Status Backend::ExpertMatMul(const TensorView& x, const TensorView& ids,
                                   absl::Span<const Weight> experts, const TensorView& y) {
  RRT_RETURN_IF_ERROR(CheckExpertMatMul("ExpertMatMul", "expert", x, ids, experts, y));
  if (x.dim(0) == 0) return absl::OkStatus();
  return DoExpertMatMul(x, ids, experts, y);
}

absl::StatusOr<bool> Backend::ExpertGateUpMatMul(const TensorView& x, const TensorView& ids,
                                                 absl::Span<const Weight> gate_experts,
                                                 absl::Span<const Weight> up_experts,
                                                 const TensorView& gate, const TensorView& up) {
  constexpr std::string_view kOp = "ExpertGateUpMatMul";
  RRT_RETURN_IF_ERROR(CheckExpertMatMul(kOp, "gate expert", x, ids, gate_experts, gate));
  RRT_RETURN_IF_ERROR(CheckExpertMatMul(kOp, "up expert", x, ids, up_experts, up));
  if (gate_experts.size() != up_experts.size()) {
    return Bad(kOp, StrCat(gate_experts.size(), " gate experts but ", up_experts.size(), " up"));
  }
  if (gate_experts[0].data.dtype() != up_experts[0].data.dtype())
    return Bad(kOp, "gate and up experts differ in dtype");
  for (const TensorView* y : {&gate, &up}) {
    if (!y->is_contiguous())
      return Bad(kOp, StrCat("output ", y->DebugString(), " is not contiguous"));
  }
  if (gate.dim(1) != up.dim(1)) return Bad(kOp, "gate and up differ in columns");
  if (Overlap(gate, up)) return Bad(kOp, "gate and up overlap");
  if (x.dim(0) == 0) return false;
  return DoExpertGateUpMatMul(x, ids, gate_experts, up_experts, gate, up);
}

absl::StatusOr<bool> Backend::DoExpertGateUpMatMul(const TensorView& x, const TensorView& ids,
                                                   absl::Span<const Weight> gate_experts,
                                                   absl::Span<const Weight> up_experts,
                                                   const TensorView& gate, const TensorView& up) {
  RRT_RETURN_IF_ERROR(DoExpertMatMul(x, ids, gate_experts, gate));
  RRT_RETURN_IF_ERROR(DoExpertMatMul(x, ids, up_experts, up));
  return false;
}

absl::Status Backend::DoExpertMatMul(const TensorView& x, const TensorView& ids,
                                     absl::Span<const Weight> experts, const TensorView& y) {
  RRT_ASSIGN_OR_RETURN(TensorView host_ids, OnHost(*this, ids));
  RRT_RETURN_IF_ERROR(
      CheckExpertIds("ExpertMatMul", host_ids, experts.size()));  // rows_of is indexed by them
  std::vector<std::vector<int32_t>> rows_of(experts.size());
  for (int64_t p = 0; p < ids.dim(0); ++p) {
    rows_of[host_ids.data_as<int32_t>()[p]].push_back(static_cast<int32_t>(p));
  }
  std::vector<Weight> used;
  std::vector<std::vector<int32_t>> rows;
  for (size_t e = 0; e < experts.size(); ++e) {
    if (rows_of[e].empty()) continue;
    used.push_back(experts[e]);
    rows.push_back(std::move(rows_of[e]));
  }
  return GroupedMatMul(x, used, rows, y);
}

absl::Status Backend::RouteExperts(const TensorView& logits, const RouterConfig& router,
                                   absl::Span<const float> bias, const TensorView& experts,
                                   const TensorView& weights) {
  RRT_RETURN_IF_ERROR(CheckActivation("RouteExperts", "logits", logits, 2));
  RRT_RETURN_IF_ERROR(CheckActivation("RouteExperts", "weights", weights, 2));
  RRT_RETURN_IF_ERROR(CheckWritable("RouteExperts", "weights", weights));
  const int64_t t = logits.dim(0), k = router.num_experts_per_tok;
  if (logits.dim(1) != router.n_routed_experts) {
    return Bad("RouteExperts", StrCat("logits ", logits.DebugString(), " are not [tokens, ",
                                      router.n_routed_experts, "]"));
  }
  if (experts.dtype() != DType::kI32 || experts.rank() != 2 || experts.dim(0) != t ||
      experts.dim(1) != k || !experts.is_contiguous() || experts.read_only()) {
    return Bad("RouteExperts", StrCat("experts must be writable contiguous i32 [", t, ", ", k,
                                      "], is ", experts.DebugString()));
  }
  if (weights.dim(0) != t || weights.dim(1) != k) {
    return Bad("RouteExperts",
               StrCat("weights must be [", t, ", ", k, "], is ", weights.DebugString()));
  }
  // The configuration's errors, as RouteTokens words them (no tokens: no logits read).
  RRT_RETURN_IF_ERROR(RouteTokens(router, {}, 0, bias).status());
  if (t == 0) return absl::OkStatus();
  return DoRouteExperts(logits, router, bias, experts, weights);
}

absl::Status Backend::DoRouteExperts(const TensorView& logits, const RouterConfig& router,
                                     absl::Span<const float> bias, const TensorView& experts,
                                     const TensorView& weights) {
  RRT_ASSIGN_OR_RETURN(TensorView host, OnHost(*this, logits));
  RRT_ASSIGN_OR_RETURN(Routing r,
                       RouteTokens(router,
                                   absl::MakeConstSpan(host.data_as<float>(),
                                                       static_cast<size_t>(host.num_elements())),
                                   logits.dim(0), bias));
  const int64_t t = logits.dim(0), k = r.k;
  RRT_ASSIGN_OR_RETURN(TensorView e, TensorView::Borrow(r.experts.data(), DType::kI32, {t, k}));
  RRT_ASSIGN_OR_RETURN(TensorView w, TensorView::Borrow(r.weights.data(), DType::kF32, {t, k}));
  RRT_RETURN_IF_ERROR(Copy(e, experts));
  return Copy(w, weights);
}

absl::Status Backend::AddWeightedRows(const TensorView& x, const TensorView& weights, int64_t k,
                                      const TensorView& out) {
  if (weights.dtype() != DType::kF32 || weights.num_elements() != x.dim(0) ||
      !weights.is_contiguous()) {
    return Bad("AddWeightedRows", StrCat("weights must be contiguous f32 with ", x.dim(0),
                                         " values, is ", weights.DebugString()));
  }
  if (weights.device().type == DeviceType::kCpu) {
    return AddWeightedRows(
        x,
        absl::MakeConstSpan(weights.data_as<float>(), static_cast<size_t>(weights.num_elements())),
        k, out);
  }
  RRT_RETURN_IF_ERROR(CheckWeightedRows(x, weights.num_elements(), k, out));
  return DoAddWeightedRowsFrom(x, weights, k, out);
}

absl::Status Backend::DoAddWeightedRowsFrom(const TensorView& x, const TensorView& weights,
                                            int64_t k, const TensorView& out) {
  RRT_ASSIGN_OR_RETURN(TensorView host, OnHost(*this, weights));
  return DoAddWeightedRows(
      x, absl::MakeConstSpan(host.data_as<float>(), static_cast<size_t>(host.num_elements())), k,
      out);
}

absl::Status Backend::HeadMatMul(const TensorView& x, const TensorView& w,
                                 HeadWeightLayout layout, const TensorView& y) {
  RRT_RETURN_IF_ERROR(CheckStridedRows("HeadMatMul", "x", x, 3));
  RRT_RETURN_IF_ERROR(CheckStridedRows("HeadMatMul", "y", y, 3));
  RRT_RETURN_IF_ERROR(CheckWritable("HeadMatMul", "y", y));
  if (w.rank() != 3 || (w.dtype() != DType::kF32 && w.dtype() != DType::kBF16) ||
      w.stride(2) != 1 || w.stride(1) != w.dim(2) || w.stride(0) < w.dim(1) * w.dim(2)) {
    return Bad("HeadMatMul", StrCat("w must be f32/bf16 [heads, ., .] with contiguous rows, is ",
                                    w.DebugString()));
  }
  const bool out_in = layout == HeadWeightLayout::kOutIn;
  const int64_t n = out_in ? w.dim(1) : w.dim(2), k = out_in ? w.dim(2) : w.dim(1);
  if (x.dim(1) != w.dim(0) || x.dim(2) != k || y.dim(0) != x.dim(0) || y.dim(1) != w.dim(0) ||
      y.dim(2) != n) {
    return Bad("HeadMatMul", StrCat("x ", x.DebugString(), ", w ", w.DebugString(), " and y ",
                                    y.DebugString(), " do not fit together"));
  }
  if (Overlap(x, y)) return Bad("HeadMatMul", "y overlaps x");
  if (x.dim(0) == 0) return absl::OkStatus();
  return DoHeadMatMul(x, w, layout, y);
}

absl::Status Backend::AddWeightedRows(const TensorView& x, absl::Span<const float> weights,
                                      int64_t k, const TensorView& out) {
  RRT_RETURN_IF_ERROR(CheckWeightedRows(x, static_cast<int64_t>(weights.size()), k, out));
  return DoAddWeightedRows(x, weights, k, out);
}

absl::Status Backend::RmsNorm(const TensorView& x, const TensorView& gain, float eps,
                              const TensorView& y) {
  RRT_RETURN_IF_ERROR(CheckStridedRows("RmsNorm", "x", x, 2));
  RRT_RETURN_IF_ERROR(CheckStridedRows("RmsNorm", "y", y, 2));
  RRT_RETURN_IF_ERROR(CheckWritable("RmsNorm", "y", y));
  if (x.shape() != y.shape()) return Bad("RmsNorm", "x and y differ in shape");
  if (gain.rank() != 1 || gain.dim(0) != x.dim(1) || !IsWeightFloat(gain.dtype())) {
    return Bad("RmsNorm", StrCat("gain ", gain.DebugString(), " does not match ", x.DebugString()));
  }
  if (!(eps >= 0.0f)) return Bad("RmsNorm", "eps must be >= 0");
  return DoRmsNorm(x, gain, eps, y);
}

absl::Status Backend::AddRmsNorm(const TensorView& x, const TensorView& delta,
                                 const TensorView& gain, float eps, const TensorView& y) {
  RRT_RETURN_IF_ERROR(CheckAddRmsNorm("AddRmsNorm", x, delta, gain, eps, y));
  if (x.num_elements() == 0) return absl::OkStatus();
  return DoAddRmsNorm(x, delta, gain, eps, y);
}

absl::Status Backend::DoAddRmsNorm(const TensorView& x, const TensorView& delta,
                                   const TensorView& gain, float eps, const TensorView& y) {
  RRT_RETURN_IF_ERROR(DoAdd(x, delta, x));
  return DoRmsNorm(x, gain, eps, y);
}

namespace {

// Rope's operands: x f32 [T, heads, dims] (dims contiguous, writable) with one
// non-negative position a row and dims / 2 frequencies.
absl::Status CheckRope(std::string_view op, std::string_view name, const TensorView& x,
                       absl::Span<const int32_t> positions, absl::Span<const float> inv_freq) {
  if (x.dtype() != DType::kF32 || x.rank() != 3 || x.stride(2) != 1 ||
      x.stride(1) < x.dim(2) || x.stride(0) < x.dim(1) * x.stride(1)) {
    return Bad(op, StrCat(name, " must be f32 [T, heads, dims] with contiguous dims, is ",
                          x.DebugString()));
  }
  RRT_RETURN_IF_ERROR(CheckWritable(op, name, x));
  if (x.dim(2) % 2 != 0 || static_cast<int64_t>(inv_freq.size()) * 2 != x.dim(2)) {
    return Bad(op, StrCat(inv_freq.size(), " frequencies do not fit ", x.dim(2), " rotary dims of ",
                          name));
  }
  if (static_cast<int64_t>(positions.size()) != x.dim(0))
    return Bad(op, "one position per row is needed");
  for (int32_t p : positions) {
    if (p < 0) return Bad(op, StrCat("negative position ", p));
  }
  return absl::OkStatus();
}

// StoreKv's operands: k (and v where the cache has values) f32 and contiguous, matching the
// cache's heads and widths, one slot a row inside the cache.
absl::Status CheckStoreKv(std::string_view op, const TensorView& k, const TensorView& v,
                          absl::Span<const int64_t> slots, const PagedKvLayer& cache) {
  RRT_RETURN_IF_ERROR(CheckCache(op, cache));
  RRT_RETURN_IF_ERROR(CheckActivation(op, "k", k, 3));
  if (k.dim(1) != cache.k.dim(2) || k.dim(2) != cache.k.dim(3)) {
    return Bad(op,
               StrCat("k ", k.DebugString(), " does not match the cache ", cache.k.DebugString()));
  }
  if (!cache.v.empty()) {
    RRT_RETURN_IF_ERROR(CheckActivation(op, "v", v, 3));
    if (v.dim(0) != k.dim(0) || v.dim(1) != cache.v.dim(2) || v.dim(2) != cache.v.dim(3)) {
      return Bad(
          op, StrCat("v ", v.DebugString(), " does not match the cache ", cache.v.DebugString()));
    }
  }
  if (static_cast<int64_t>(slots.size()) != k.dim(0)) return Bad(op, "one slot per row is needed");
  const int64_t capacity = cache.k.dim(0) * kKvBlockSize;
  for (int64_t s : slots) {
    if (s < 0 || s >= capacity)
      return Bad(op, StrCat("slot ", s, " outside the cache (", capacity, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Backend::Rope(const TensorView& x, absl::Span<const int32_t> positions,
                           absl::Span<const float> inv_freq, RopeLayout layout,
                           float cos_sin_scale) {
  RRT_RETURN_IF_ERROR(CheckRope("Rope", "x", x, positions, inv_freq));
  return DoRope(x, positions, inv_freq, layout, cos_sin_scale);
}

absl::Status Backend::StoreKv(const TensorView& k, const TensorView& v,
                              absl::Span<const int64_t> slots, const PagedKvLayer& cache) {
  RRT_RETURN_IF_ERROR(CheckStoreKv("StoreKv", k, v, slots, cache));
  return DoStoreKv(k, v, slots, cache);
}

absl::Status Backend::RopeAndStoreKv(const TensorView& q, const TensorView& k, const TensorView& v,
                                     absl::Span<const int32_t> positions,
                                     absl::Span<const float> inv_freq, RopeLayout layout,
                                     float cos_sin_scale, absl::Span<const int64_t> slots,
                                     const PagedKvLayer& cache) {
  RRT_RETURN_IF_ERROR(CheckRope("RopeAndStoreKv", "q", q, positions, inv_freq));
  RRT_RETURN_IF_ERROR(CheckRope("RopeAndStoreKv", "k", k, positions, inv_freq));
  RRT_RETURN_IF_ERROR(CheckStoreKv("RopeAndStoreKv", k, v, slots, cache));
  if (q.dim(0) != k.dim(0)) return Bad("RopeAndStoreKv", "q and k differ in rows");
  if (Overlap(q, k) || (!v.empty() && (Overlap(q, v) || Overlap(k, v)))) {
    return Bad("RopeAndStoreKv", "q, k and v overlap");
  }
  return DoRopeAndStoreKv(q, k, v, positions, inv_freq, layout, cos_sin_scale, slots, cache);
}

absl::Status Backend::DoRopeAndStoreKv(const TensorView& q, const TensorView& k,
                                       const TensorView& v, absl::Span<const int32_t> positions,
                                       absl::Span<const float> inv_freq, RopeLayout layout,
                                       float cos_sin_scale, absl::Span<const int64_t> slots,
                                       const PagedKvLayer& cache) {
  RRT_RETURN_IF_ERROR(DoRope(q, positions, inv_freq, layout, cos_sin_scale));
  RRT_RETURN_IF_ERROR(DoRope(k, positions, inv_freq, layout, cos_sin_scale));
  return DoStoreKv(k, v, slots, cache);
}

absl::Status Backend::DoStoreKv(const TensorView& k, const TensorView& v,
                                absl::Span<const int64_t> slots, const PagedKvLayer& cache) {
  // Row t of k [T, heads, dim] goes to slot slots[t] of the cache, in the cache's dtype.
  auto store = [&](const TensorView& src, const TensorView& dst) {
    const int64_t width = src.dim(1) * src.dim(2);
    const size_t elem = DTypeSize(dst.dtype());
    for (int64_t t = 0; t < src.dim(0); ++t) {
      char* out = static_cast<char*>(dst.mutable_data()) + slots[t] * width * elem;
      ConvertFromF32(dst.dtype(), src.data_as<float>() + t * width, out, static_cast<size_t>(width));
    }
  };
  store(k, cache.k);
  if (!cache.v.empty()) store(v, cache.v);
  return absl::OkStatus();
}

absl::Status Backend::Attention(const TensorView& q, const PagedKvLayer& cache,
                                absl::Span<const AttentionSequence> sequences, float scale,
                                const TensorView& out) {
  RRT_RETURN_IF_ERROR(CheckCache("Attention", cache));
  RRT_RETURN_IF_ERROR(CheckActivation("Attention", "q", q, 3));
  RRT_RETURN_IF_ERROR(CheckActivation("Attention", "out", out, 3));
  RRT_RETURN_IF_ERROR(CheckWritable("Attention", "out", out));
  const int64_t heads = q.dim(1), kv_heads = cache.k.dim(2);
  if (heads % kv_heads != 0) return Bad("Attention", StrCat(kv_heads, " kv heads do not divide ", heads, " heads"));
  if (q.dim(2) != cache.k.dim(3)) return Bad("Attention", "q and cached k differ in head dim");
  if (cache.v.empty()) {
    if (out.dim(0) != q.dim(0) || out.dim(1) != heads || out.dim(2) > cache.k.dim(3)) {
      return Bad("Attention", StrCat("out is ", out.DebugString(), ", expected [", q.dim(0), ", ", heads,
                                     ", at most ", cache.k.dim(3), "] for a cache without values"));
    }
  } else if (out.dim(0) != q.dim(0) || out.dim(1) != heads || out.dim(2) != cache.v.dim(3)) {
    return Bad("Attention", StrCat("out is ", out.DebugString(), ", expected [", q.dim(0), ", ", heads, ", ", cache.v.dim(3), "]"));
  }
  for (const AttentionSequence& s : sequences) {
    if (s.query_begin < 0 || s.query_count < 0 || s.query_begin + s.query_count > q.dim(0) ||
        s.first_position < 0) {
      return Bad("Attention", "sequence rows out of range");
    }
    const int64_t last = s.first_position + s.query_count;  // positions needed: [0, last)
    if (static_cast<int64_t>(s.block_table.size()) * kKvBlockSize < last) {
      return Bad("Attention", StrCat("block table of ", s.block_table.size(), " blocks cannot hold ", last, " positions"));
    }
    for (int32_t b : s.block_table) {
      if (b < 0 || b >= cache.k.dim(0)) return Bad("Attention", StrCat("block ", b, " outside the cache"));
    }
  }
  return DoAttention(q, cache, sequences, scale, out);
}

absl::Status Backend::SiluMul(const TensorView& gate, const TensorView& up, const TensorView& out) {
  RRT_RETURN_IF_ERROR(CheckActivation("SiluMul", "gate", gate, 2));
  RRT_RETURN_IF_ERROR(CheckActivation("SiluMul", "up", up, 2));
  RRT_RETURN_IF_ERROR(CheckActivation("SiluMul", "out", out, 2));
  RRT_RETURN_IF_ERROR(CheckWritable("SiluMul", "out", out));
  if (gate.shape() != up.shape() || gate.shape() != out.shape()) return Bad("SiluMul", "shapes differ");
  return DoSiluMul(gate, up, out);
}

absl::Status Backend::SiluMulMatMul(const TensorView& gate, const TensorView& up, const Weight& w,
                                    const TensorView& y) {
  RRT_RETURN_IF_ERROR(CheckSiluMulMatMul("SiluMulMatMul", gate, up, w, y));
  if (gate.dim(0) == 0) return absl::OkStatus();
  return DoSiluMulMatMul(gate, up, w, y);
}

absl::Status Backend::DoSiluMulMatMul(const TensorView& gate, const TensorView& up, const Weight& w,
                                      const TensorView& y) {
  RRT_RETURN_IF_ERROR(DoSiluMul(gate, up, gate));
  return DoMatMul(gate, w, nullptr, y);
}

absl::Status Backend::Embedding(const TensorView& table, absl::Span<const int32_t> ids,
                                const TensorView& out) {
  RRT_RETURN_IF_ERROR(CheckActivation("Embedding", "out", out, 2));
  RRT_RETURN_IF_ERROR(CheckWritable("Embedding", "out", out));
  if (table.rank() != 2 || !table.is_contiguous() || !IsWeightFloat(table.dtype())) {
    return Bad("Embedding", StrCat("table must be a contiguous float matrix, is ", table.DebugString()));
  }
  if (out.dim(0) != static_cast<int64_t>(ids.size()) || out.dim(1) != table.dim(1)) {
    return Bad("Embedding", StrCat("out is ", out.DebugString(), ", expected [", ids.size(), ", ", table.dim(1), "]"));
  }
  for (int32_t id : ids) {
    if (id < 0 || id >= table.dim(0)) {
      return Bad("Embedding", StrCat("id ", id, " outside [0, ", table.dim(0), ")"));
    }
  }
  return DoEmbedding(table, ids, out);
}

absl::Status Backend::Add(const TensorView& a, const TensorView& b, const TensorView& out) {
  for (const TensorView* t : {&a, &b, &out}) {
    if (t->dtype() != DType::kF32 || !t->is_contiguous()) return Bad("Add", "operands must be contiguous f32");
  }
  RRT_RETURN_IF_ERROR(CheckWritable("Add", "out", out));
  if (a.shape() != b.shape() || a.shape() != out.shape()) return Bad("Add", "shapes differ");
  return DoAdd(a, b, out);
}

absl::Status Backend::Softmax(const TensorView& x, const TensorView& out) {
  RRT_RETURN_IF_ERROR(CheckActivation("Softmax", "x", x, 2));
  RRT_RETURN_IF_ERROR(CheckActivation("Softmax", "out", out, 2));
  if (x.shape() != out.shape()) return Bad("Softmax", "shapes differ");
  return DoSoftmax(x, out, false);
}

absl::Status Backend::LogSoftmax(const TensorView& x, const TensorView& out) {
  RRT_RETURN_IF_ERROR(CheckActivation("LogSoftmax", "x", x, 2));
  RRT_RETURN_IF_ERROR(CheckActivation("LogSoftmax", "out", out, 2));
  if (x.shape() != out.shape()) return Bad("LogSoftmax", "shapes differ");
  return DoSoftmax(x, out, true);
}

absl::Status Backend::TopK(const TensorView& x, int64_t k, const TensorView& values,
                           const TensorView& indices) {
  RRT_RETURN_IF_ERROR(CheckActivation("TopK", "x", x, 2));
  RRT_RETURN_IF_ERROR(CheckActivation("TopK", "values", values, 2));
  if (k < 1 || k > x.dim(1)) return Bad("TopK", StrCat("k = ", k, " outside [1, ", x.dim(1), "]"));
  if (values.dim(0) != x.dim(0) || values.dim(1) != k) return Bad("TopK", "values has the wrong shape");
  if (indices.dtype() != DType::kI32 || indices.rank() != 2 || indices.dim(0) != x.dim(0) ||
      indices.dim(1) != k || !indices.is_contiguous()) {
    return Bad("TopK", "indices must be contiguous i32 [T, k]");
  }
  return DoTopK(x, k, values, indices);
}

absl::Status Backend::SampleTokens(const TensorView& logits, absl::Span<const TokenDraw> draws,
                                   absl::Span<DrawnToken> out) {
  RRT_RETURN_IF_ERROR(CheckActivation("SampleTokens", "logits", logits, 2));
  const int64_t rows = logits.dim(0), vocab = logits.dim(1);
  if (static_cast<int64_t>(draws.size()) != rows || static_cast<int64_t>(out.size()) != rows) {
    return Bad("SampleTokens", StrCat("logits has ", rows, " rows but there are ", draws.size(),
                                      " draws and room for ", out.size(), " tokens"));
  }
  if (vocab == 0) return Bad("SampleTokens", "logits rows are empty");
  if (vocab > std::numeric_limits<int32_t>::max())
    return Bad("SampleTokens", "logits rows exceed the i32 token ids");
  for (int64_t r = 0; r < rows; ++r) {
    RRT_RETURN_IF_ERROR(CheckTokenDraw(draws[r], vocab, StrCat("SampleTokens: draw ", r)));
  }
  if (rows == 0) return absl::OkStatus();
  return DoSampleTokens(logits, draws, out);
}

absl::Status Backend::DoSampleTokens(const TensorView& logits, absl::Span<const TokenDraw> draws,
                                     absl::Span<DrawnToken> out) {
  RRT_ASSIGN_OR_RETURN(TensorView host, OnHost(*this, logits));
  for (size_t r = 0; r < draws.size(); ++r) {
    RRT_RETURN_IF_ERROR(DrawRowOnHost(host, static_cast<int64_t>(r), draws[r], &out[r]));
  }
  return absl::OkStatus();
}

// ---- registry ----

absl::Status RegisterBackend(std::string name, int priority, BackendFactory factory) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  for (const auto& e : r.entries) {
    if (e.name == name) return absl::AlreadyExistsError(StrCat("backend '", name, "' is already registered"));
  }
  r.entries.push_back({std::move(name), priority, std::move(factory)});
  return absl::OkStatus();
}

std::vector<std::string> RegisteredBackends() {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<const Registry::Entry*> sorted;
  for (const auto& e : r.entries) sorted.push_back(&e);
  std::stable_sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->priority > b->priority; });
  std::vector<std::string> names;
  for (auto* e : sorted) names.push_back(e->name);
  return names;
}

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(std::string_view name,
                                                       const BackendOptions& options) {
  const std::vector<std::string> names = RegisteredBackends();
  std::string wanted(name);
  const char* env = name == "auto" ? std::getenv("RRT_BACKEND") : nullptr;
  const bool from_env = env != nullptr && *env != '\0' && std::string_view(env) != "auto";
  if (from_env) {
    wanted = env;
  } else if (name == "auto" && !names.empty()) {
    wanted = names.front();
  }
  BackendFactory factory;
  {
    Registry& r = GetRegistry();
    std::lock_guard<std::mutex> lock(r.mu);
    for (const auto& e : r.entries) {
      if (e.name == wanted) factory = e.factory;
    }
  }
  if (!factory) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    if (from_env) {
      return absl::NotFoundError(StrCat("RRT_BACKEND names backend '", wanted,
                                        "', which is not registered (registered: ", list, ")"));
    }
    return absl::NotFoundError(StrCat("no backend '", name, "' (registered: ", list, ")"));
  }
  return factory(options);
}

namespace {
std::atomic<uint64_t> weight_copies_generation{0};
}  // namespace

void InvalidateWeightCopies() { weight_copies_generation.fetch_add(1, std::memory_order_acq_rel); }

uint64_t WeightCopiesGeneration() { return weight_copies_generation.load(std::memory_order_acquire); }

}  // namespace reasonrt
