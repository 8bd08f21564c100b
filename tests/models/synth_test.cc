// Synthetic checkpoints: round trip synth -> load -> compare, FP8 blocks, determinism,
// and the tensor inventory of every real config.
#include "lib/models/synth.h"

#include <cmath>
#include <cstring>
#include <filesystem>

#include "gtest/gtest.h"
#include "lib/core/file.h"
#include "lib/models/tensor_inventory.h"
#include "reasonrt/model_config.h"
#include "reasonrt/safetensors.h"
#include "tests/testing/temp_dir.h"

namespace reasonrt {
namespace {

using testing::TempDir;

const char kTinyQwen[] = R"({"model_type":"qwen2","hidden_size":64,"num_hidden_layers":3,
  "num_attention_heads":4,"num_key_value_heads":2,"intermediate_size":96,"vocab_size":400,
  "max_position_embeddings":1024,"rms_norm_eps":1e-6,"rope_theta":10000.0,
  "tie_word_embeddings":true,"bos_token_id":300,"eos_token_id":301,"torch_dtype":"bfloat16"})";

const char kTinyDeepseek[] = R"({"model_type":"deepseek_v3","hidden_size":256,"num_hidden_layers":3,
  "num_attention_heads":4,"num_key_value_heads":4,"intermediate_size":384,"vocab_size":512,
  "max_position_embeddings":4096,"q_lora_rank":192,"kv_lora_rank":128,"qk_nope_head_dim":32,
  "qk_rope_head_dim":16,"v_head_dim":32,"n_routed_experts":8,"num_experts_per_tok":2,
  "moe_intermediate_size":160,"n_shared_experts":1,"first_k_dense_replace":1,"n_group":4,
  "topk_group":2,"topk_method":"noaux_tc","scoring_func":"sigmoid","norm_topk_prob":true,
  "routed_scaling_factor":2.5,"num_nextn_predict_layers":1,"bos_token_id":0,"eos_token_id":1,
  "rope_scaling":{"type":"yarn","factor":40,"original_max_position_embeddings":4096,
  "beta_fast":32,"beta_slow":1,"mscale":1.0,"mscale_all_dim":1.0}})";

std::string WriteConfig(const TempDir& tmp, const char* json) {
  const std::string path = tmp.file("in_config.json");
  testing::WriteFile(path, json);
  return path;
}

std::vector<float> ToF32(const TensorView& t) {
  std::vector<float> out(t.num_elements());
  ConvertToF32(t.dtype(), t.data(), out.data(), out.size());
  return out;
}

TEST(SynthTest, RoundTripMatchesTheGenerator) {
  TempDir tmp;
  SynthOptions o;
  o.config_path = WriteConfig(tmp, kTinyQwen);
  o.out_dir = tmp.file("model");
  o.seed = 5;
  ASSERT_TRUE(WriteSyntheticModel(o).ok());
  auto cfg = LoadModelConfig(o.out_dir);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  auto ckpt = Checkpoint::Open(o.out_dir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  std::vector<std::string> extra;
  ASSERT_TRUE(CheckInventory(*cfg, **ckpt, &extra).ok());
  EXPECT_TRUE(extra.empty());
  EXPECT_EQ((*ckpt)->Find("lm_head.weight"), nullptr);  // tied

  for (const TensorSpec& spec : ExpectedTensors(*cfg, {})) {
    auto t = (*ckpt)->Get(spec.name);
    ASSERT_TRUE(t.ok()) << spec.name;
    ASSERT_EQ(t->dtype(), DType::kBF16) << spec.name;
    const std::vector<float> got = ToF32(*t);
    // Regenerate in f32 and round like the writer: every value must agree exactly.
    const std::vector<float> raw = SynthTensorValues(5, spec);
    ASSERT_EQ(raw.size(), got.size());
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i], Bf16ToF32(F32ToBf16(raw[i]))) << spec.name << " " << i;
    }
    if (spec.kind == WeightKind::kNorm) {
      for (float v : got) ASSERT_TRUE(v > 0.79f && v < 1.21f) << spec.name << " " << v;
    }
  }
}

TEST(SynthTest, DeterministicBySeedAndLayerCount) {
  TempDir tmp;
  SynthOptions o;
  o.config_path = WriteConfig(tmp, kTinyQwen);
  o.seed = 9;
  o.out_dir = tmp.file("a");
  ASSERT_TRUE(WriteSyntheticModel(o).ok());
  o.out_dir = tmp.file("b");
  ASSERT_TRUE(WriteSyntheticModel(o).ok());
  o.out_dir = tmp.file("c");
  o.seed = 10;
  ASSERT_TRUE(WriteSyntheticModel(o).ok());
  o.out_dir = tmp.file("d");
  o.seed = 9;
  o.layers = 1;
  ASSERT_TRUE(WriteSyntheticModel(o).ok());
  const std::string a = testing::ReadFile(tmp.file("a/model.safetensors"));
  EXPECT_EQ(a, testing::ReadFile(tmp.file("b/model.safetensors")));
  EXPECT_NE(a, testing::ReadFile(tmp.file("c/model.safetensors")));
  auto ca = Checkpoint::Open(tmp.file("a"));
  auto cd = Checkpoint::Open(tmp.file("d"));
  ASSERT_TRUE(ca.ok() && cd.ok());
  EXPECT_EQ((*cd)->Find("model.layers.1.input_layernorm.weight"), nullptr);
  for (const std::string& name : (*cd)->names()) {
    auto x = (*ca)->Get(name), y = (*cd)->Get(name);
    ASSERT_TRUE(x.ok() && y.ok());
    ASSERT_EQ(x->byte_size(), y->byte_size());
    EXPECT_EQ(std::memcmp(x->data(), y->data(), x->byte_size()), 0) << name;
  }
  auto cfg = LoadModelConfig(tmp.file("d"));
  ASSERT_TRUE(cfg.ok());
  EXPECT_EQ(cfg->num_hidden_layers, 1);
}

TEST(SynthTest, Fp8DeepseekWithScalesAndMtp) {
  TempDir tmp;
  SynthOptions o;
  o.config_path = WriteConfig(tmp, kTinyDeepseek);
  o.out_dir = tmp.file("model");
  o.fp8 = true;
  o.max_shard_bytes = 1 << 20;  // several shards
  ASSERT_TRUE(WriteSyntheticModel(o).ok());
  EXPECT_TRUE(std::filesystem::exists(tmp.file("model/model.safetensors.index.json")));
  auto cfg = LoadModelConfig(o.out_dir);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_TRUE(cfg->fp8_weights);
  auto ckpt = Checkpoint::Open(o.out_dir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  std::vector<std::string> extra;
  ASSERT_TRUE(CheckInventory(*cfg, **ckpt, &extra).ok()) << CheckInventory(*cfg, **ckpt, nullptr);
  EXPECT_TRUE(extra.empty()) << extra[0];
  // The MTP layer (index 3) is in the files.
  EXPECT_NE((*ckpt)->Find("model.layers.3.eh_proj.weight"), nullptr);
  EXPECT_NE((*ckpt)->Find("model.layers.3.mlp.experts.7.down_proj.weight"), nullptr);

  const std::string name = "model.layers.1.mlp.experts.3.up_proj.weight";
  auto w = (*ckpt)->Get(name);
  auto s = (*ckpt)->Get(name + "_scale_inv");
  ASSERT_TRUE(w.ok() && s.ok());
  EXPECT_EQ(w->dtype(), DType::kF8E4M3);
  EXPECT_EQ(s->DebugString(), "f32[2, 2]");  // [160, 256] in 128-blocks
  const int64_t rows = 160, cols = 256;
  std::vector<float> deq(rows * cols), raw(rows * cols);
  DequantizeFp8Blocks(w->data_as<uint8_t>(), s->data_as<float>(), rows, cols, deq.data());
  const float bound = std::sqrt(3.0f) / std::sqrt(256.0f);
  SynthValues(0, name, bound, 0.0f, raw.data(), rows * cols);
  InventoryOptions inv;
  inv.fp8 = true;
  for (const TensorSpec& spec : ExpectedTensors(*cfg, inv)) {
    if (spec.name == name) EXPECT_EQ(SynthTensorValues(0, spec), raw);
  }
  float amax = 0;
  for (int64_t i = 0; i < rows * cols; ++i) {
    ASSERT_NEAR(deq[i], raw[i], std::fabs(raw[i]) / 16 + bound / 448 / 512) << i;
    amax = std::max(amax, std::fabs(deq[i]));
  }
  EXPECT_GT(amax, bound * 0.95f);
  // Router bias stays f32, the router bf16.
  EXPECT_EQ((*ckpt)->Find("model.layers.1.mlp.gate.e_score_correction_bias")->dtype, DType::kF32);
  EXPECT_EQ((*ckpt)->Find("model.layers.1.mlp.gate.weight")->dtype, DType::kBF16);
}

TEST(SynthTest, OverridesAndBadOptions) {
  TempDir tmp;
  SynthOptions o;
  o.config_path = WriteConfig(tmp, kTinyQwen);
  o.out_dir = tmp.file("m");
  o.overrides = {{"hidden_size", "32"}, {"tie_word_embeddings", "false"}};
  ASSERT_TRUE(WriteSyntheticModel(o).ok());
  auto cfg = LoadModelConfig(o.out_dir);
  ASSERT_TRUE(cfg.ok());
  EXPECT_EQ(cfg->hidden_size, 32);
  EXPECT_FALSE(cfg->tie_word_embeddings);
  o.overrides = {{"hidden_size", "{bad"}};
  EXPECT_FALSE(WriteSyntheticModel(o).ok());
  o.overrides = {{"num_key_value_heads", "3"}};
  EXPECT_FALSE(WriteSyntheticModel(o).ok());  // the result is validated before writing
  o.overrides = {{"vocab_size", "100"}};
  EXPECT_FALSE(WriteSyntheticModel(o).ok());  // too small for a byte-level tokenizer
  o.overrides = {};
  o.config_path = tmp.file("missing.json");
  EXPECT_EQ(WriteSyntheticModel(o).code(), absl::StatusCode::kNotFound);
}

TEST(InventoryTest, CheckFindsMissingAndMisshapenTensors) {
  TempDir tmp;
  SynthOptions o;
  o.config_path = WriteConfig(tmp, kTinyQwen);
  o.out_dir = tmp.file("m");
  o.zeros = true;
  ASSERT_TRUE(WriteSyntheticModel(o).ok());
  auto cfg = LoadModelConfig(o.out_dir);
  ASSERT_TRUE(cfg.ok());
  ModelConfig wider = *cfg;
  wider.intermediate_size = 128;
  auto ckpt = Checkpoint::Open(o.out_dir);
  ASSERT_TRUE(ckpt.ok());
  absl::Status s = CheckInventory(wider, **ckpt, nullptr);
  EXPECT_NE(s.message().find("mlp.gate_proj.weight' has shape [96, 64], the config implies [128, 64]"),
            absl::string_view::npos) << s;
  ModelConfig untied = *cfg;
  untied.tie_word_embeddings = false;
  s = CheckInventory(untied, **ckpt, nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(s.message().find("lm_head.weight"), absl::string_view::npos) << s;
}

TEST(InventoryTest, ParameterCountsOfTheRealModels) {
  const std::string dir = testing::ModelConfigsDir();
  if (!std::filesystem::exists(dir)) GTEST_SKIP();
  auto r1 = LoadModelConfig(dir + "/deepseek-r1.json");
  ASSERT_TRUE(r1.ok());
  const ParameterCounts p = CountParameters(*r1);
  // DeepSeek-V3/R1: 671B parameters, 37B activated per token, plus the MTP module.
  EXPECT_NEAR(p.total / 1e9, 671.0, 1.0);
  EXPECT_NEAR(p.active_per_token / 1e9, 37.5, 0.6);
  EXPECT_GT(p.mtp, 11'000'000'000);
  EXPECT_EQ(KvCacheBytesPerToken(*r1, DType::kBF16), 61 * 576 * 2);
  auto qwen = LoadModelConfig(dir + "/r1-distill-qwen-1.5b.json");
  ASSERT_TRUE(qwen.ok());
  EXPECT_NEAR(CountParameters(*qwen).total / 1e9, 1.777, 0.01);  // "1.5B" with embeddings untied
  EXPECT_EQ(KvCacheBytesPerToken(*qwen, DType::kBF16), 28 * 2 * 2 * 128 * 2);
  auto llama = LoadModelConfig(dir + "/r1-distill-llama-8b.json");
  ASSERT_TRUE(llama.ok());
  EXPECT_NEAR(CountParameters(*llama).total / 1e9, 8.03, 0.01);
}

// Every real config, with few layers, all-zero (sparse) weights: the files hold the full
// inventory with the real shapes, and the loader's check accepts it.
class RealInventoryTest : public ::testing::TestWithParam<std::string> {};

TEST_P(RealInventoryTest, SynthesizedCheckpointHasTheFullInventory) {
  const std::string config = testing::ModelConfigsDir() + "/" + GetParam();
  if (!std::filesystem::exists(config)) GTEST_SKIP();
  TempDir tmp;
  SynthOptions o;
  o.config_path = config;
  o.out_dir = tmp.file("m");
  o.zeros = true;
  auto base = LoadModelConfig(config);
  ASSERT_TRUE(base.ok());
  o.layers = base->is_deepseek() ? base->first_k_dense_replace + 1 : 2;
  o.fp8 = base->architecture == Architecture::kDeepseekV3;
  ASSERT_TRUE(WriteSyntheticModel(o).ok());
  auto cfg = LoadModelConfig(o.out_dir);
  auto ckpt = Checkpoint::Open(o.out_dir);
  ASSERT_TRUE(cfg.ok() && ckpt.ok()) << ckpt.status();
  std::vector<std::string> extra;
  const absl::Status s = CheckInventory(*cfg, **ckpt, &extra);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(extra.empty());
  InventoryOptions inv;
  inv.fp8 = o.fp8;
  const std::vector<TensorSpec> specs = ExpectedTensors(*cfg, inv);
  EXPECT_EQ((*ckpt)->names().size(), specs.size());
  for (const TensorSpec& spec : specs) {
    const TensorInfo* info = (*ckpt)->Find(spec.name);
    ASSERT_NE(info, nullptr) << spec.name;
    EXPECT_EQ(info->shape, spec.shape) << spec.name;
    EXPECT_EQ(info->dtype, spec.dtype) << spec.name;
  }
  // Real shapes: the embedding is [vocab, hidden] of the real model.
  EXPECT_EQ((*ckpt)->Find("model.embed_tokens.weight")->shape,
            (std::vector<int64_t>{base->vocab_size, base->hidden_size}));
  if (base->is_deepseek() && base->num_nextn_predict_layers > 0) {
    const std::string mtp = "model.layers." + std::to_string(o.layers) + ".eh_proj.weight";
    EXPECT_NE((*ckpt)->Find(mtp), nullptr) << mtp;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Configs, RealInventoryTest,
    ::testing::Values("deepseek-r1.json", "deepseek-v2-lite.json", "moonlight-16b-a3b.json",
                      "r1-distill-llama-70b.json", "r1-distill-llama-8b.json",
                      "r1-distill-qwen-1.5b.json", "r1-distill-qwen-14b.json",
                      "r1-distill-qwen-32b.json", "r1-distill-qwen-7b.json"),
    [](const ::testing::TestParamInfo<std::string>& info) {
      std::string name = info.param.substr(0, info.param.size() - 5);
      for (char& c : name) if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      return name;
    });

}  // namespace
}  // namespace reasonrt
