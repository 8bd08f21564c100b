// lib/models/rope.h: RoPE frequencies (plain, linear, llama3, YaRN) and the attention
// softmax scale, computed in f32 the way the Hugging Face and DeepSeek references do.
#ifndef REASONRT_LIB_MODELS_ROPE_H_
#define REASONRT_LIB_MODELS_ROPE_H_

#include <vector>

#include "absl/status/statusor.h"
#include "reasonrt/backend.h"
#include "reasonrt/model_config.h"

namespace reasonrt {

struct RopeParams {
  std::vector<float> inv_freq;  // rotary_dims / 2 entries
  RopeLayout layout = RopeLayout::kHalfSplit;
  float cos_sin_scale = 1.0f;
  float softmax_scale = 1.0f;  // applied to q . k
};

// Unimplemented for scaling types an architecture does not define (YaRN on dense models).
absl::StatusOr<RopeParams> ComputeRope(const ModelConfig& config);

}  // namespace reasonrt

#endif  // REASONRT_LIB_MODELS_ROPE_H_
