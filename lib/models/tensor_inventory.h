// lib/models/tensor_inventory.h: the tensors each architecture's checkpoint holds, by the
// Hugging Face names, with shapes; parameter and KV-cache arithmetic derived from them.
#ifndef REASONRT_LIB_MODELS_TENSOR_INVENTORY_H_
#define REASONRT_LIB_MODELS_TENSOR_INVENTORY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "reasonrt/dtype.h"
#include "reasonrt/model_config.h"
#include "reasonrt/safetensors.h"

namespace reasonrt {

enum class WeightKind : uint8_t {
  kEmbedding,   // [vocab, hidden]
  kNorm,        // RMSNorm gain
  kLinear,      // projection [out, in]; FP8 in DeepSeek's released checkpoints
  kBias,        // projection bias [out]
  kRouter,      // MoE gate [experts, hidden]
  kRouterBias,  // e_score_correction_bias [experts], f32
  kLmHead,      // [vocab, hidden]
  kScale,       // FP8 weight_scale_inv [ceil(out/128), ceil(in/128)], f32
};

struct TensorSpec {
  std::string name;
  DType dtype = DType::kBF16;
  std::vector<int64_t> shape;
  WeightKind kind = WeightKind::kLinear;
  int64_t layer = -1;   // decoder layer, -1 for embedding / final norm / head
  int64_t expert = -1;  // routed expert, -1 otherwise
  bool mtp = false;     // part of a multi-token-prediction layer (never loaded)
  int64_t num_elements() const;
};

struct InventoryOptions {
  DType float_dtype = DType::kBF16;  // dtype of every float tensor but the ones below
  bool fp8 = false;                  // kLinear weights as e4m3 + a kScale tensor each
  bool include_mtp = true;
};

// Every tensor of a checkpoint of `config`, in a stable order (global, then by layer).
std::vector<TensorSpec> ExpectedTensors(const ModelConfig& config, const InventoryOptions& options);

struct ParameterCounts {
  int64_t total = 0;             // main model, without MTP layers or FP8 scales
  int64_t active_per_token = 0;  // total minus the routed experts a token does not use
  int64_t mtp = 0;               // MTP layers (not loaded)
  int64_t embedding = 0;         // input embedding (part of total)
};
ParameterCounts CountParameters(const ModelConfig& config);

// KV-cache bytes per token across all layers: K and V per KV head for dense models, the
// latent plus the RoPE key (absorbed MLA) for DeepSeek.
int64_t KvCacheBytesPerToken(const ModelConfig& config, DType cache_dtype);

// Checks that `checkpoint` holds every non-MTP tensor of `config` with the right shape and
// a usable dtype (FP8 projections with their scale tensors). The first problem found is
// returned, naming the tensor and file. Names the checkpoint has beyond the expected ones
// (MTP layers aside) are appended to `unexpected` when it is not null.
absl::Status CheckInventory(const ModelConfig& config, const Checkpoint& checkpoint,
                            std::vector<std::string>* unexpected);

}  // namespace reasonrt

#endif  // REASONRT_LIB_MODELS_TENSOR_INVENTORY_H_
