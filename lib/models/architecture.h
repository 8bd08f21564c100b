// lib/models/architecture.h: what the runtime needs from an architecture (dense.cc,
// deepseek.cc): its cache shape and a forward pass over a planned batch.
#ifndef REASONRT_LIB_MODELS_ARCHITECTURE_H_
#define REASONRT_LIB_MODELS_ARCHITECTURE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "reasonrt/backend.h"
#include "reasonrt/model_config.h"
#include "reasonrt/moe.h"
#include "reasonrt/safetensors.h"

namespace reasonrt {

class PagedKvCache;
struct KvCacheShape;

// A batch laid out for the kernels: rows grouped by sequence, cache slots assigned.
struct ForwardPlan {
  std::vector<int32_t> tokens;
  std::vector<int32_t> positions;
  std::vector<int64_t> slots;                  // cache slot of each row
  std::vector<AttentionSequence> sequences;    // contiguous row ranges
  std::vector<int32_t> logit_rows;             // rows whose logits are wanted
  std::vector<int32_t> seq_ids;                // sequence of each row
  // (MoE models) Where to count the routing of this pass; null: not counted. Its `layers`,
  // `n_routed_experts` and `k` come from ArchitectureModel::NewRoutingStats.
  RoutingStats* routing = nullptr;
  bool routing_trace = false;
};

class ArchitectureModel {
 public:
  virtual ~ArchitectureModel() = default;
  virtual KvCacheShape CacheShape(DType dtype) const = 0;
  // Writes logits [plan.logit_rows.size(), vocab] into `logits` (f32, contiguous; host
  // memory or the backend's device).
  virtual absl::Status Forward(Backend& backend, const PagedKvCache& cache, const ForwardPlan& plan,
                               const TensorView& logits) const = 0;

  // (MoE models) Zeroed statistics with this model's layers; no layers for dense models.
  virtual RoutingStats NewRoutingStats() const { return {}; }
  // (MoE models) Layer `layer`'s routing of `hidden` [T, hidden_size] (its MoE input), and
  // its MoE block: out [T, hidden_size] = routed + shared experts.
  virtual absl::StatusOr<Routing> Route(Backend& backend, int64_t layer,
                                        const TensorView& hidden) const;
  virtual absl::Status MoeBlock(Backend& backend, int64_t layer, const TensorView& hidden,
                                const TensorView& out, Routing* routing) const;
};

// The final RMSNorm and the LM head for rows `rows` of the residual stream x [T, hidden]
// only: logits [rows.size(), vocab].
absl::Status HeadLogits(Backend& backend, const TensorView& x, absl::Span<const int32_t> rows,
                        const TensorView& final_norm, float eps, const Weight& lm_head,
                        const TensorView& logits);

// `prefix`.weight as a Weight, with `prefix`.weight_scale_inv for fp8 ones.
absl::StatusOr<Weight> GetWeight(const Checkpoint& checkpoint, const std::string& prefix);

// deepseek_v2 and deepseek_v3 (R1): MLA and MoE. Weights are views into `checkpoint`
// (plus small f32 copies of the router and, for fp8/f16 checkpoints, of kv_b_proj).
absl::StatusOr<std::unique_ptr<ArchitectureModel>> CreateDeepseekModel(const ModelConfig& config,
                                                                      const Checkpoint& checkpoint);

// qwen2 and llama. Weights are views into `checkpoint`, which must outlive the model.
absl::StatusOr<std::unique_ptr<ArchitectureModel>> CreateDenseModel(const ModelConfig& config,
                                                                   const Checkpoint& checkpoint);

}  // namespace reasonrt

#endif  // REASONRT_LIB_MODELS_ARCHITECTURE_H_
