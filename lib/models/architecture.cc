// What every architecture shares: weight lookup and the defaults of optional methods.
#include "lib/models/architecture.h"

#include "lib/core/status_macros.h"

namespace reasonrt {

absl::StatusOr<Weight> GetWeight(const Checkpoint& checkpoint, const std::string& prefix) {
  Weight w;
  RRT_ASSIGN_OR_RETURN(w.data, checkpoint.Get(prefix + ".weight"));
  if (w.data.dtype() == DType::kF8E4M3) {
    RRT_ASSIGN_OR_RETURN(w.scale_inv, checkpoint.Get(prefix + ".weight_scale_inv"));
  }
  return w;
}

absl::Status HeadLogits(Backend& be, const TensorView& x, absl::Span<const int32_t> rows,
                        const TensorView& final_norm, float eps, const Weight& lm_head,
                        const TensorView& logits) {
  const int64_t n_out = static_cast<int64_t>(rows.size()), h = x.dim(1);
  if (n_out == 0) return absl::OkStatus();
  RRT_ASSIGN_OR_RETURN(TensorView selected, be.Allocate(DType::kF32, {n_out, h}));
  RRT_ASSIGN_OR_RETURN(TensorView normed, be.Allocate(DType::kF32, {n_out, h}));
  RRT_RETURN_IF_ERROR(be.Embedding(x, rows, selected));
  RRT_RETURN_IF_ERROR(be.RmsNorm(selected, final_norm, eps, normed));
  return be.MatMul(normed, lm_head, nullptr, logits);
}

absl::StatusOr<Routing> ArchitectureModel::Route(Backend&, int64_t, const TensorView&) const {
  return absl::FailedPreconditionError("this model has no routed experts");
}

absl::Status ArchitectureModel::MoeBlock(Backend&, int64_t, const TensorView&, const TensorView&,
                                         Routing*) const {
  return absl::FailedPreconditionError("this model has no routed experts");
}

}  // namespace reasonrt
