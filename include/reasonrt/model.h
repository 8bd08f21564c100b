// reasonrt/model.h: loading a model folder.
//
// Basic usage:
//
//   absl::StatusOr<std::unique_ptr<reasonrt::Model>> model =
//       reasonrt::Model::Load("/models/DeepSeek-R1-Distill-Qwen-1.5B");
//   if (!model.ok()) { /* message names the file, key or tensor at fault */ }
//   const reasonrt::ModelConfig& cfg = (*model)->config();
//   auto session = (*model)->NewSession({});
//
// Load reads config.json, maps the safetensors weights (zero-copy: weights stay in their
// stored dtype in the page cache, nothing is converted up front) and checks that every
// tensor the architecture needs is present with the right shape. A Model is safe to share
// across threads; any number of sessions may use it at once, and sessions stay valid after
// the Model object is destroyed. Its weights change only through UpdateWeights, which is
// synchronised with every session's forward passes.
#ifndef REASONRT_MODEL_H_
#define REASONRT_MODEL_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "reasonrt/export.h"
#include "absl/types/span.h"
#include "reasonrt/model_config.h"
#include "reasonrt/moe.h"
#include "reasonrt/tensor.h"
#include "reasonrt/session.h"

namespace reasonrt {

struct LoadOptions {
  std::string backend = "auto";  // "auto", "reference", "cpu", ...
  int num_threads = 0;           // 0: one per core
  // Read the weight files into anonymous memory (huge pages where allowed) instead of
  // mapping them: the whole files are read up front (MTP layers included) and held in
  // process memory; decode streams them from there.
  bool weights_in_memory = false;
  // See BackendOptions::exact_activations: prompt processing as exact as decode, at about
  // half the prompt speed with bf16 weights.
  bool exact_activations = false;
  // If set, Load reads through every weight the model uses (so the first tokens do not
  // wait on the disk) and reports the fraction done, from 0 to 1, every few tens of MB.
  // Returning false cancels: Load then returns Cancelled. Called on the loading thread.
  std::function<bool(float fraction)> progress;
};

// New values for one checkpoint tensor (Model::UpdateWeights): f32, f16 or bf16, the
// tensor's shape, contiguous.
struct WeightUpdate {
  std::string name;  // as in the checkpoint, e.g. "model.layers.0.mlp.down_proj.weight"
  TensorView values;
};

class RRT_API Model {
 public:
  // Errors: NotFound (missing files), InvalidArgument (malformed files, wrong shapes),
  // Unimplemented (architectures or features this build does not run).
  static absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& path,
                                                     const LoadOptions& options = {});
  ~Model();

  const ModelConfig& config() const;
  // The backend sessions use.
  std::string_view backend_name() const;
  // Host threads it may keep busy: LoadOptions::num_threads, or the cores available (0).
  // Generation samples a group's completions on as many.
  int num_threads() const;

  // (MoE models, see reasonrt/moe.h) Decoder layer `layer`'s router, and its whole MoE
  // block (routed and shared experts), applied to `tokens` rows of `hidden`
  // [tokens, hidden_size]: the block's input, i.e. the layer's post-attention RMSNorm
  // output. Run on the model's backend, with the model's weights. FailedPrecondition for
  // dense models; InvalidArgument for a layer without routed experts or a wrong size.
  absl::StatusOr<Routing> RouteLayer(int layer, absl::Span<const float> hidden,
                                     int64_t tokens) const;
  absl::StatusOr<MoeLayerOutput> MoeLayerForward(int layer, absl::Span<const float> hidden,
                                                 int64_t tokens) const;

  // Replaces weights in place, the way a trainer syncs its new policy into a rollout engine
  // (without a reload from disk). Values are converted to each tensor's stored dtype (f32,
  // f16, bf16; FP8 weights: Unimplemented). Needs the model loaded with weights_in_memory
  // (a mapped file is read-only: FailedPrecondition). Every update is checked (name, shape,
  // dtype) before any is written: InvalidArgument names the first bad one and changes
  // nothing. Waits for running forward passes and holds new ones while it writes; caches
  // keep the keys and values computed with the old weights (start new sequences after an
  // update for on-policy results).
  absl::Status UpdateWeights(absl::Span<const WeightUpdate> updates) const;
  // The shape of checkpoint tensor `name` (NotFound if there is none).
  absl::StatusOr<std::vector<int64_t>> WeightShape(std::string_view name) const;

  // A new session with its own KV cache. ResourceExhausted if the cache cannot be allocated.
  absl::StatusOr<std::unique_ptr<Session>> NewSession(const SessionOptions& options = {}) const;

  struct Impl;

 private:
  explicit Model(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;  // sessions share it: a Model may go before its sessions
};

}  // namespace reasonrt

#endif  // REASONRT_MODEL_H_
