// `reasonrt inspect DIR`: what a model folder holds.
#include <cstdio>
#include <map>

#include "lib/core/strings.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "examples/cli/commands.h"
#include "lib/models/tensor_inventory.h"
#include "reasonrt/model_config.h"
#include "reasonrt/safetensors.h"

namespace reasonrt::cli {
namespace {

std::string HumanCount(int64_t n) {
  if (n >= 1'000'000'000) return absl::StrFormat("%.2fB", n / 1e9);
  if (n >= 1'000'000) return absl::StrFormat("%.2fM", n / 1e6);
  if (n >= 1'000) return absl::StrFormat("%.2fK", n / 1e3);
  return StrCat(n);
}

std::string HumanBytes(uint64_t n) {
  if (n >= (1ull << 30)) return absl::StrFormat("%.2f GiB", n / double(1ull << 30));
  if (n >= (1ull << 20)) return absl::StrFormat("%.2f MiB", n / double(1ull << 20));
  if (n >= (1ull << 10)) return absl::StrFormat("%.2f KiB", n / double(1ull << 10));
  return StrCat(n, " B");
}

std::string RopeString(const ModelConfig& c) {
  const RopeScaling& r = c.rope_scaling;
  std::string s = StrCat("theta ", c.rope_theta);
  switch (r.type) {
    case RopeScalingType::kNone: return s;
    case RopeScalingType::kLinear: return StrCat(s, ", linear x", r.factor);
    case RopeScalingType::kLlama3:
      return StrCat(s, ", llama3 x", r.factor, " (low ", r.low_freq_factor, ", high ",
                          r.high_freq_factor, ", original ", r.original_max_position_embeddings, ")");
    case RopeScalingType::kYarn:
      return StrCat(s, ", yarn x", r.factor, " (beta ", r.beta_fast, "/", r.beta_slow,
                          ", mscale ", r.mscale, "/", r.mscale_all_dim, ", original ",
                          r.original_max_position_embeddings, ")");
  }
  return s;
}

}  // namespace

int RunInspect(const std::string& dir) {
  auto config = LoadModelConfig(dir);
  if (!config.ok()) return Fail(config.status());
  const ModelConfig& c = *config;
  std::printf("model:         %s\n", dir.c_str());
  std::printf("architecture:  %s\n", std::string(ArchitectureName(c.architecture)).c_str());
  std::printf("layers:        %lld, hidden %lld, vocab %lld, max positions %lld\n",
              (long long)c.num_hidden_layers, (long long)c.hidden_size, (long long)c.vocab_size,
              (long long)c.max_position_embeddings);
  if (c.is_deepseek()) {
    std::printf("attention:     MLA, %lld heads, q_lora %lld, kv_lora %lld, qk %lld+%lld, v %lld\n",
                (long long)c.num_attention_heads, (long long)c.q_lora_rank,
                (long long)c.kv_lora_rank, (long long)c.qk_nope_head_dim,
                (long long)c.qk_rope_head_dim, (long long)c.v_head_dim);
  } else {
    std::printf("attention:     %lld heads, %lld kv heads, head_dim %lld%s\n",
                (long long)c.num_attention_heads, (long long)c.num_key_value_heads,
                (long long)c.head_dim, c.attention_bias ? ", qkv bias" : "");
  }
  std::printf("mlp:           intermediate %lld\n", (long long)c.intermediate_size);
  if (c.n_routed_experts > 0) {
    std::printf("moe:           %lld routed experts (top %lld, %lld groups keep %lld), %lld shared, "
                "inner %lld, first %lld layers dense\n",
                (long long)c.n_routed_experts, (long long)c.num_experts_per_tok,
                (long long)c.n_group, (long long)c.topk_group, (long long)c.n_shared_experts,
                (long long)c.moe_intermediate_size, (long long)c.first_k_dense_replace);
  }
  std::printf("rope:          %s\n", RopeString(c).c_str());
  const ParameterCounts params = CountParameters(c);
  std::printf("parameters:    %s total, %s active per token", HumanCount(params.total).c_str(),
              HumanCount(params.active_per_token).c_str());
  if (params.mtp > 0) std::printf(", %s in MTP layers (not loaded)", HumanCount(params.mtp).c_str());
  std::printf("\n");
  std::printf("kv cache:      %lld bytes/token (bf16), %lld (f32)%s\n",
              (long long)KvCacheBytesPerToken(c, DType::kBF16),
              (long long)KvCacheBytesPerToken(c, DType::kF32),
              c.is_deepseek() ? ", latent + rope key per layer" : "");

  auto ckpt = Checkpoint::Open(dir);
  if (!ckpt.ok()) return Fail(ckpt.status());
  std::map<std::string, int> dtype_counts;
  for (const auto& f : (*ckpt)->files()) {
    for (const TensorInfo& t : f->tensors()) ++dtype_counts[std::string(DTypeName(t.dtype))];
  }
  std::vector<std::string> dtypes;
  for (const auto& [name, n] : dtype_counts) dtypes.push_back(StrCat(name, " x", n));
  std::printf("weights:       %s in %zu file(s), %zu tensors: %s\n",
              HumanBytes((*ckpt)->total_bytes()).c_str(), (*ckpt)->files().size(),
              (*ckpt)->names().size(), absl::StrJoin(dtypes, ", ").c_str());
  std::vector<std::string> unexpected;
  const absl::Status inventory = CheckInventory(c, **ckpt, &unexpected);
  if (!inventory.ok()) {
    std::printf("inventory:     PROBLEM: %s\n", std::string(inventory.message()).c_str());
    return 1;
  }
  std::printf("inventory:     complete%s\n",
              unexpected.empty() ? "" : StrCat(", ", unexpected.size(), " extra tensor(s), e.g. '", unexpected[0], "'").c_str());
  return 0;
}

}  // namespace reasonrt::cli
