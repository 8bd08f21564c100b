#include "reasonrt/model_config.h"

#include <filesystem>

#include "gtest/gtest.h"
#include "lib/core/file.h"
#include "tests/testing/temp_dir.h"

namespace reasonrt {
namespace {

std::string Configs() { return testing::ModelConfigsDir(); }

absl::StatusOr<ModelConfig> LoadShared(const std::string& name) {
  return LoadModelConfig(Configs() + "/" + name);
}

class RealConfigsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(Configs())) GTEST_SKIP() << "no " << Configs();
  }
};

TEST_F(RealConfigsTest, EveryConfigParses) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(Configs())) {
    if (entry.path().extension() != ".json") continue;
    auto cfg = LoadModelConfig(entry.path().string());
    EXPECT_TRUE(cfg.ok()) << entry.path() << ": " << cfg.status();
    ++n;
  }
  EXPECT_GE(n, 9);
}

TEST_F(RealConfigsTest, QwenDistill) {
  auto c = LoadShared("r1-distill-qwen-1.5b.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->architecture, Architecture::kQwen2);
  EXPECT_EQ(c->hidden_size, 1536);
  EXPECT_EQ(c->num_hidden_layers, 28);
  EXPECT_EQ(c->num_attention_heads, 12);
  EXPECT_EQ(c->num_key_value_heads, 2);
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_EQ(c->intermediate_size, 8960);
  EXPECT_EQ(c->vocab_size, 151936);
  EXPECT_TRUE(c->attention_bias);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_EQ(c->rope_scaling.type, RopeScalingType::kNone);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-6);
  EXPECT_EQ(c->bos_token_id, 151646);
  ASSERT_EQ(c->eos_token_ids.size(), 1u);
  EXPECT_EQ(c->eos_token_ids[0], 151643);
  EXPECT_EQ(c->torch_dtype, DType::kBF16);
}

TEST_F(RealConfigsTest, LlamaDistill) {
  auto c = LoadShared("r1-distill-llama-8b.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->architecture, Architecture::kLlama);
  EXPECT_FALSE(c->attention_bias);
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_EQ(c->rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_DOUBLE_EQ(c->rope_scaling.factor, 8.0);
  EXPECT_DOUBLE_EQ(c->rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c->rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c->rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_DOUBLE_EQ(c->rope_theta, 500000.0);
}

TEST_F(RealConfigsTest, DeepseekR1) {
  auto c = LoadShared("deepseek-r1.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->architecture, Architecture::kDeepseekV3);
  EXPECT_EQ(c->q_lora_rank, 1536);
  EXPECT_EQ(c->kv_lora_rank, 512);
  EXPECT_EQ(c->qk_head_dim(), 192);
  EXPECT_EQ(c->v_head_dim, 128);
  EXPECT_EQ(c->n_routed_experts, 256);
  EXPECT_EQ(c->num_experts_per_tok, 8);
  EXPECT_EQ(c->n_group, 8);
  EXPECT_EQ(c->topk_group, 4);
  EXPECT_EQ(c->scoring_func, ScoringFunc::kSigmoid);
  EXPECT_EQ(c->topk_method, TopkMethod::kNoauxTc);
  EXPECT_TRUE(c->norm_topk_prob);
  EXPECT_DOUBLE_EQ(c->routed_scaling_factor, 2.5);
  EXPECT_EQ(c->first_k_dense_replace, 3);
  EXPECT_EQ(c->num_nextn_predict_layers, 1);
  EXPECT_FALSE(c->IsMoeLayer(2));
  EXPECT_TRUE(c->IsMoeLayer(3));
  EXPECT_EQ(c->rope_scaling.type, RopeScalingType::kYarn);
  EXPECT_DOUBLE_EQ(c->rope_scaling.factor, 40.0);
  EXPECT_DOUBLE_EQ(c->rope_scaling.mscale_all_dim, 1.0);
  EXPECT_EQ(c->bos_token_id, 0);
}

TEST_F(RealConfigsTest, DeepseekV2LiteAndMoonlight) {
  auto v2 = LoadShared("deepseek-v2-lite.json");
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(v2->architecture, Architecture::kDeepseekV2);
  EXPECT_EQ(v2->q_lora_rank, 0);  // null: plain q_proj
  EXPECT_EQ(v2->scoring_func, ScoringFunc::kSoftmax);
  EXPECT_EQ(v2->topk_method, TopkMethod::kGreedy);
  EXPECT_FALSE(v2->norm_topk_prob);
  EXPECT_DOUBLE_EQ(v2->rope_scaling.mscale, 0.707);
  auto moon = LoadShared("moonlight-16b-a3b.json");
  ASSERT_TRUE(moon.ok()) << moon.status();
  EXPECT_EQ(moon->rope_scaling.type, RopeScalingType::kNone);  // rope_scaling: null
  EXPECT_EQ(moon->n_shared_experts, 2);
}

// ---- validation, on a small config edited one key at a time ----

std::string Minimal(const std::string& extra = "") {
  return R"({"model_type":"qwen2","hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,)"
         R"("num_key_value_heads":2,"intermediate_size":128,"vocab_size":300,)"
         R"("max_position_embeddings":512)" + extra + "}";
}

std::string MinimalDeepseek(const std::string& extra = "") {
  return R"({"model_type":"deepseek_v3","hidden_size":64,"num_hidden_layers":3,"num_attention_heads":4,)"
         R"("intermediate_size":128,"vocab_size":300,"max_position_embeddings":512,)"
         R"("kv_lora_rank":32,"qk_nope_head_dim":16,"qk_rope_head_dim":8,"v_head_dim":16,)"
         R"("n_routed_experts":8,"num_experts_per_tok":2,"moe_intermediate_size":32,"n_group":4,)"
         R"("topk_group":2,"topk_method":"noaux_tc","scoring_func":"sigmoid")" + extra + "}";
}

TEST(ModelConfigTest, MinimalParsesWithDefaults) {
  auto c = ParseModelConfig(Minimal());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_DOUBLE_EQ(c->rope_theta, 10000.0);
  EXPECT_EQ(c->bos_token_id, -1);
  auto d = ParseModelConfig(MinimalDeepseek());
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->n_group, 4);
}

TEST(ModelConfigTest, EosListAndQuantization) {
  auto c = ParseModelConfig(Minimal(R"(,"eos_token_id":[1,2],"bos_token_id":0,)"
                                    R"("quantization_config":{"quant_method":"fp8","fmt":"e4m3","weight_block_size":[128,128]})"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(c->fp8_weights);
}

struct BadConfig {
  std::string json;
  const char* key;  // the message must name it
};

class ModelConfigBadTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(ModelConfigBadTest, NamesTheKey) {
  auto c = ParseModelConfig(GetParam().json, "cfg.json");
  ASSERT_FALSE(c.ok()) << GetParam().json;
  EXPECT_NE(c.status().message().find(GetParam().key), absl::string_view::npos) << c.status();
  EXPECT_NE(c.status().message().find("cfg.json"), absl::string_view::npos) << c.status();
}

std::string Without(std::string json, const std::string& key) {
  const size_t at = json.find("\"" + key + "\"");
  const size_t end = json.find_first_of(",}", at);
  json.erase(at, end - at + (json[end] == ',' ? 1 : 0));
  if (json[at - 1] == ',' && json[at] == '}') json.erase(at - 1, 1);
  return json;
}

INSTANTIATE_TEST_SUITE_P(
    Rules, ModelConfigBadTest,
    ::testing::Values(
        BadConfig{Without(Minimal(), "hidden_size"), "hidden_size"},
        BadConfig{Without(Minimal(), "vocab_size"), "vocab_size"},
        BadConfig{Without(Minimal(), "num_hidden_layers"), "num_hidden_layers"},
        BadConfig{Without(Minimal(), "max_position_embeddings"), "max_position_embeddings"},
        BadConfig{R"({"hidden_size":64})", "model_type"},
        BadConfig{Minimal(R"(,"model_type":"gpt2")"), "model_type"},  // duplicate key: last wins? either way refused
        BadConfig{R"({"model_type":"mamba","hidden_size":64})", "mamba"},
        BadConfig{Minimal(R"(,"rms_norm_eps":"small")"), "rms_norm_eps"},
        BadConfig{Minimal(R"(,"rms_norm_eps":-1)"), "rms_norm_eps"},
        BadConfig{Minimal(R"(,"tie_word_embeddings":1)"), "tie_word_embeddings"},
        BadConfig{R"({"model_type":"qwen2","hidden_size":"64","num_hidden_layers":2,"num_attention_heads":4,"intermediate_size":128,"vocab_size":300,"max_position_embeddings":512})", "hidden_size"},
        BadConfig{R"({"model_type":"qwen2","hidden_size":64.5,"num_hidden_layers":2,"num_attention_heads":4,"intermediate_size":128,"vocab_size":300,"max_position_embeddings":512})", "hidden_size"},
        BadConfig{R"({"model_type":"qwen2","hidden_size":0,"num_hidden_layers":2,"num_attention_heads":4,"intermediate_size":128,"vocab_size":300,"max_position_embeddings":512})", "hidden_size"},
        BadConfig{R"({"model_type":"qwen2","hidden_size":66,"num_hidden_layers":2,"num_attention_heads":4,"intermediate_size":128,"vocab_size":300,"max_position_embeddings":512})", "num_attention_heads"},
        BadConfig{R"({"model_type":"qwen2","hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":3,"intermediate_size":128,"vocab_size":300,"max_position_embeddings":512})", "num_key_value_heads"},
        BadConfig{Minimal(R"(,"head_dim":15)"), "head_dim"},
        BadConfig{Minimal(R"(,"hidden_act":"gelu")"), "hidden_act"},
        BadConfig{Minimal(R"(,"use_sliding_window":true)"), "use_sliding_window"},
        BadConfig{Minimal(R"(,"bos_token_id":300)"), "bos_token_id"},
        BadConfig{Minimal(R"(,"eos_token_id":[1,"x"])"), "eos_token_id"},
        BadConfig{Minimal(R"(,"rope_scaling":{"rope_type":"dynamic","factor":2})"), "dynamic"},
        BadConfig{Minimal(R"(,"rope_scaling":{"rope_type":"llama3","factor":8})"), "low_freq_factor"},
        BadConfig{Minimal(R"(,"rope_scaling":{"type":"yarn","factor":40})"), "original_max_position_embeddings"},
        BadConfig{Minimal(R"(,"rope_scaling":{"factor":40})"), "rope_type"},
        BadConfig{Minimal(R"(,"rope_scaling":7)"), "rope_scaling"},
        BadConfig{Minimal(R"(,"quantization_config":{"quant_method":"gptq"})"), "gptq"},
        BadConfig{Minimal(R"(,"quantization_config":{"quant_method":"fp8","weight_block_size":[64,64]})"), "weight_block_size"},
        BadConfig{Without(MinimalDeepseek(), "kv_lora_rank"), "kv_lora_rank"},
        BadConfig{MinimalDeepseek(R"(,"qk_rope_head_dim":7)"), "qk_rope_head_dim"},
        BadConfig{MinimalDeepseek(R"(,"num_experts_per_tok":9)"), "num_experts_per_tok"},
        BadConfig{MinimalDeepseek(R"(,"n_group":3)"), "n_group"},
        BadConfig{MinimalDeepseek(R"(,"topk_group":5)"), "topk_group"},
        BadConfig{MinimalDeepseek(R"(,"num_experts_per_tok":5)"), "num_experts_per_tok"},
        BadConfig{MinimalDeepseek(R"(,"first_k_dense_replace":4)"), "first_k_dense_replace"},
        BadConfig{MinimalDeepseek(R"(,"scoring_func":"relu")"), "scoring_func"},
        BadConfig{MinimalDeepseek(R"(,"topk_method":"random")"), "topk_method"},
        BadConfig{Without(MinimalDeepseek(), "moe_intermediate_size"), "moe_intermediate_size"},
        BadConfig{"[1,2,3]", "not a JSON object"},
        BadConfig{"{\"model_type\":", "malformed JSON"}));

TEST(ModelConfigTest, LoadFromFolderAndMissingFile) {
  testing::TempDir tmp;
  testing::WriteFile(tmp.file("config.json"), Minimal());
  EXPECT_TRUE(LoadModelConfig(tmp.path()).ok());
  EXPECT_EQ(LoadModelConfig(tmp.file("nope")).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace reasonrt
