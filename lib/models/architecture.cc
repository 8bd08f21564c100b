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

absl::StatusOr<Routing> ArchitectureModel::Route(Backend&, int64_t, const TensorView&) const {
  return absl::FailedPreconditionError("this model has no routed experts");
}

absl::Status ArchitectureModel::MoeBlock(Backend&, int64_t, const TensorView&, const TensorView&,
                                         Routing*) const {
  return absl::FailedPreconditionError("this model has no routed experts");
}

}  // namespace reasonrt
