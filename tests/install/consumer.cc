// A program outside the reasonrt build, using only the installed headers and library.
#include <cstdio>

#include "reasonrt/cpu_features.h"
#include "reasonrt/dtype.h"
#include "reasonrt/model_config.h"
#include "reasonrt/tensor.h"

int main() {
  auto t = reasonrt::TensorView::Allocate(reasonrt::DType::kBF16, {2, 3});
  if (!t.ok() || t->num_elements() != 6) return 1;
  auto cfg = reasonrt::ParseModelConfig(
      R"({"model_type":"llama","hidden_size":64,"num_hidden_layers":1,"num_attention_heads":4,)"
      R"("intermediate_size":128,"vocab_size":300,"max_position_embeddings":64})");
  if (!cfg.ok() || cfg->head_dim != 16) return 2;
  auto bad = reasonrt::ParseModelConfig("{}");
  if (bad.ok()) return 3;
  std::printf("consumer ok: %s, cpu: %s\n", t->DebugString().c_str(),
              reasonrt::CpuFeaturesString(reasonrt::GetCpuFeatures()).c_str());
  return 0;
}
