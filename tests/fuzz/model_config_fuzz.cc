// Fuzz target: any bytes as config.json. Must parse to a config that passes its own
// invariants, or return an error; never crash.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "reasonrt/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto cfg = reasonrt::ParseModelConfig(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!cfg.ok()) return 0;
  if (cfg->hidden_size <= 0 || cfg->num_attention_heads <= 0 || cfg->num_key_value_heads <= 0 ||
      cfg->num_attention_heads % cfg->num_key_value_heads != 0 || cfg->head_dim <= 0 ||
      cfg->num_experts_per_tok > cfg->n_routed_experts) {
    std::abort();
  }
  return 0;
}
