// The DeepSeek (MLA + MoE) model through sessions: batched == alone, prefix sharing over the
// latent cache, routing statistics and trace, and the MoE layer API against loops written
// here from the checkpoint's weights. Logits against the PyTorch reference are in
// tests/reference/test_deepseek_logits.py.
//
// Tolerances: the reference backend and the cpu backend with exact activations compute
// every row in f32 whatever the batch: rows agree to 1e-4 of the largest logit.
#include <cmath>
#include <random>
#include <set>

#include "gtest/gtest.h"
#include "lib/models/synth.h"
#include "lib/runtime/kv_cache.h"
#include "reasonrt/backend.h"
#include "reasonrt/generate.h"
#include "reasonrt/model.h"
#include "reasonrt/moe.h"
#include "reasonrt/safetensors.h"
#include "tests/testing/backend_names.h"
#include "tests/testing/temp_dir.h"

namespace reasonrt {
namespace {

// A tiny deepseek_v3: q-LoRA, 16 experts in 4 groups (2 kept), 4 per token, a shared
// expert, one dense layer first, YaRN, an MTP layer after the main ones.
const char kTinyV3[] = R"({"model_type":"deepseek_v3","hidden_size":64,"num_hidden_layers":3,
  "first_k_dense_replace":1,"intermediate_size":96,"moe_intermediate_size":32,
  "num_attention_heads":4,"num_key_value_heads":4,"q_lora_rank":48,"kv_lora_rank":32,
  "qk_nope_head_dim":16,"qk_rope_head_dim":8,"v_head_dim":16,"n_routed_experts":16,
  "n_shared_experts":1,"num_experts_per_tok":4,"n_group":4,"topk_group":2,
  "routed_scaling_factor":2.5,"scoring_func":"sigmoid","topk_method":"noaux_tc",
  "norm_topk_prob":true,"moe_layer_freq":1,"vocab_size":300,"rms_norm_eps":1e-6,
  "rope_theta":10000.0,"tie_word_embeddings":false,"max_position_embeddings":16384,
  "num_nextn_predict_layers":1,"rope_scaling":{"type":"yarn","factor":4,
  "original_max_position_embeddings":4096,"beta_fast":32,"beta_slow":1,"mscale":1.0,
  "mscale_all_dim":1.0},"bos_token_id":0,"eos_token_id":1})";

class DeepseekTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    testing::WriteFile(tmp_.file("config.json"), kTinyV3);
    SynthOptions o;
    o.config_path = tmp_.file("config.json");
    o.out_dir = tmp_.file("model");
    o.seed = 7;
    ASSERT_TRUE(WriteSyntheticModel(o).ok());
    dir_ = o.out_dir;
    LoadOptions lo;
    lo.backend = GetParam();
    lo.exact_activations = true;
    auto m = Model::Load(dir_, lo);
    ASSERT_TRUE(m.ok()) << m.status();
    model_ = std::move(*m);
  }

  std::unique_ptr<Session> NewSession(int64_t max_tokens = 256) {
    SessionOptions so;
    so.max_tokens = max_tokens;
    return *model_->NewSession(so);
  }

  std::vector<std::vector<float>> Alone(const std::vector<int32_t>& tokens) {
    auto s = NewSession();
    Batch b;
    for (size_t i = 0; i < tokens.size(); ++i) b.Add(tokens[i], static_cast<int32_t>(i), 3, true);
    auto out = s->Forward(b);
    EXPECT_TRUE(out.ok()) << out.status();
    std::vector<std::vector<float>> rows;
    for (size_t i = 0; i < tokens.size(); ++i) rows.emplace_back(out->Row(i).begin(), out->Row(i).end());
    return rows;
  }

  static void ExpectNear(absl::Span<const float> a, const std::vector<float>& b) {
    ASSERT_EQ(a.size(), b.size());
    float scale = 0.0f;
    for (float v : b) scale = std::max(scale, std::fabs(v));
    for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-4f * scale) << i;
  }

  testing::TempDir tmp_;
  std::string dir_;
  std::unique_ptr<Model> model_;
};

TEST_P(DeepseekTest, LatentCacheHoldsRankPlusRopeValuesPerToken) {
  // 576 values per token and layer for R1; here kv_lora_rank 32 + rope 8. The cache is
  // sized from the model's shape: capacity / free tokens follow from it.
  auto s = NewSession(64);
  EXPECT_EQ(s->FreeTokens(), 64);
  Batch b;
  for (int i = 0; i < 20; ++i) b.Add(i + 2, i, 0, i == 19);
  ASSERT_TRUE(s->Forward(b).ok());
  EXPECT_EQ(s->FreeTokens(), 64 - 2 * kKvBlockSize);
}

TEST_P(DeepseekTest, InterleavedBatchEqualsEachSequenceAlone) {
  const std::vector<int32_t> a = {5, 17, 200, 3, 99, 42, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20};
  const std::vector<int32_t> b = {250, 1, 2, 77};
  const auto want_a = Alone(a), want_b = Alone(b);
  auto s = NewSession();
  Batch prefill;
  for (size_t i = 0; i + 1 < std::max(a.size(), b.size()); ++i) {
    if (i + 1 < a.size()) prefill.Add(a[i], static_cast<int32_t>(i), 1, true);
    if (i + 1 < b.size()) prefill.Add(b[i], static_cast<int32_t>(i), 2, true);
  }
  auto out = s->Forward(prefill);
  ASSERT_TRUE(out.ok()) << out.status();
  for (size_t r = 0; r < out->batch_rows.size(); ++r) {
    const int32_t row = out->batch_rows[r];
    ExpectNear(out->Row(r), (prefill.seq_ids[row] == 1 ? want_a : want_b)[prefill.positions[row]]);
  }
  Batch decode;  // both sequences' last token in one batch
  decode.Add(b.back(), static_cast<int32_t>(b.size() - 1), 2, true);
  decode.Add(a.back(), static_cast<int32_t>(a.size() - 1), 1, true);
  out = s->Forward(decode);
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear(out->Row(0), want_b.back());
  ExpectNear(out->Row(1), want_a.back());
}

TEST_P(DeepseekTest, ForkedSequencesShareTheLatentPrefix) {
  const std::vector<int32_t> prompt = {4, 8, 15, 16, 23, 42, 4, 8, 15, 16, 23, 42, 1, 2, 3, 4, 5, 6};
  auto s = NewSession();
  Batch b;
  for (size_t i = 0; i < prompt.size(); ++i) b.Add(prompt[i], static_cast<int32_t>(i), 0, false);
  ASSERT_TRUE(s->Forward(b).ok());
  const int64_t free_before = s->FreeTokens();
  ASSERT_TRUE(s->ForkSequence(0, 1).ok());
  EXPECT_EQ(s->FreeTokens(), free_before);
  std::vector<int32_t> ca = prompt, cb = prompt;
  ca.push_back(100);
  cb.push_back(200);
  Batch step;
  step.Add(100, static_cast<int32_t>(prompt.size()), 0, true);
  step.Add(200, static_cast<int32_t>(prompt.size()), 1, true);
  auto out = s->Forward(step);
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear(out->Row(0), Alone(ca).back());
  ExpectNear(out->Row(1), Alone(cb).back());
  EXPECT_EQ(s->FreeTokens(), free_before - kKvBlockSize);  // the shared partial block, copied once
}

TEST_P(DeepseekTest, RoutingStatsCountEveryTokenAndTraceMatchesTheRouter) {
  auto s = NewSession();
  RoutingStats empty = s->routing_stats();
  EXPECT_EQ(empty.layers, (std::vector<int32_t>{1, 2}));  // layer 0 is dense
  EXPECT_EQ(empty.n_routed_experts, 16);
  EXPECT_EQ(empty.k, 4);
  s->ResetRoutingStats(/*trace=*/true);
  Batch b;
  const std::vector<int32_t> tokens = {9, 8, 7, 6, 5, 4, 3};
  for (size_t i = 0; i < tokens.size(); ++i) b.Add(tokens[i], static_cast<int32_t>(i), 5, false);
  ASSERT_TRUE(s->Forward(b).ok());
  Batch step;
  step.Add(2, 7, 5, true);
  ASSERT_TRUE(s->Forward(step).ok());
  // A failed pass is not counted.
  Batch bad;
  bad.Add(1000, 8, 5, true);
  EXPECT_FALSE(s->Forward(bad).ok());
  const RoutingStats r = s->routing_stats();
  EXPECT_EQ(r.tokens, 8);
  for (size_t row = 0; row < r.layers.size(); ++row) {
    int64_t sum = 0;
    for (int64_t e = 0; e < 16; ++e) sum += r.Load(row, e);
    EXPECT_EQ(sum, 8 * 4) << "layer " << r.layers[row];
  }
  ASSERT_EQ(r.trace_size(), 2u * 8u);
  ASSERT_EQ(r.trace_experts.size(), 2u * 8u * 4u);
  std::vector<int64_t> recount(r.load.size(), 0);
  for (size_t e = 0; e < r.trace_size(); ++e) {
    EXPECT_EQ(r.trace_seq_ids[e], 5);
    const size_t row = r.trace_layers[e] == 1 ? 0 : 1;
    for (int j = 0; j < 4; ++j) {
      const int32_t expert = r.trace_experts[e * 4 + j];
      ++recount[row * 16 + expert];
      // noaux_tc keeps 2 of 4 groups of 4: at most two distinct groups per token.
      EXPECT_LT(expert, 16);
    }
    std::set<int32_t> groups;
    for (int j = 0; j < 4; ++j) groups.insert(r.trace_experts[e * 4 + j] / 4);
    EXPECT_LE(groups.size(), 2u);
    float total = 0.0f;
    for (int j = 0; j < 4; ++j) total += r.trace_weights[e * 4 + j];
    EXPECT_NEAR(total, 2.5f, 1e-5f);  // normalised, then scaled by routed_scaling_factor
  }
  EXPECT_EQ(recount, r.load);
  s->ResetRoutingStats();
  EXPECT_EQ(s->routing_stats().tokens, 0);
  EXPECT_EQ(s->routing_stats().trace_size(), 0u);
}

// The MoE block by itself against loops written here: sigmoid gate in f32, the router of
// moe.h (tested on its own in moe_router_test.cc), SwiGLU experts from the raw weights.
TEST_P(DeepseekTest, MoeLayerForwardMatchesLoopsOverTheCheckpoint) {
  const int64_t h = 64, inter = 32, tokens = 5;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  std::vector<float> hidden(tokens * h);
  for (float& v : hidden) v = normal(rng);
  auto out = model_->MoeLayerForward(2, hidden, tokens);
  ASSERT_TRUE(out.ok()) << out.status();
  auto routing = model_->RouteLayer(2, hidden, tokens);
  ASSERT_TRUE(routing.ok());
  EXPECT_EQ(routing->experts, out->routing.experts);
  EXPECT_EQ(routing->weights, out->routing.weights);

  auto ckpt = *Checkpoint::Open(dir_);
  auto matrix = [&](const std::string& name) {
    TensorView t = *ckpt->Get(name);
    std::vector<float> v(t.num_elements());
    ConvertToF32(t.dtype(), t.data(), v.data(), v.size());
    return v;
  };
  const std::string p = "model.layers.2.mlp.";
  const std::vector<float> gate = matrix(p + "gate.weight"), bias = matrix(p + "gate.e_score_correction_bias");
  std::vector<float> logits(tokens * 16);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t e = 0; e < 16; ++e) {
      double acc = 0.0;
      for (int64_t i = 0; i < h; ++i) acc += double(hidden[t * h + i]) * gate[e * h + i];
      logits[t * 16 + e] = static_cast<float>(acc);
    }
  }
  const Routing want = *RouteTokens(RouterConfig::FromModelConfig(model_->config()), logits, tokens, bias);
  EXPECT_EQ(want.experts, out->routing.experts);
  auto swiglu = [&](const std::string& prefix, int64_t width, const float* x, std::vector<double>& acc, double scale) {
    const std::vector<float> g = matrix(prefix + "gate_proj.weight"), u = matrix(prefix + "up_proj.weight"),
                             d = matrix(prefix + "down_proj.weight");
    std::vector<double> act(width);
    for (int64_t j = 0; j < width; ++j) {
      double gs = 0.0, us = 0.0;
      for (int64_t i = 0; i < h; ++i) {
        gs += double(x[i]) * g[j * h + i];
        us += double(x[i]) * u[j * h + i];
      }
      act[j] = gs / (1.0 + std::exp(-gs)) * us;
    }
    for (int64_t i = 0; i < h; ++i) {
      double s = 0.0;
      for (int64_t j = 0; j < width; ++j) s += act[j] * d[i * width + j];
      acc[i] += scale * s;
    }
  };
  double max_abs = 0.0;
  std::vector<std::vector<double>> expected(tokens, std::vector<double>(h, 0.0));
  for (int64_t t = 0; t < tokens; ++t) {
    for (int j = 0; j < 4; ++j) {
      swiglu(p + "experts." + std::to_string(want.experts[t * 4 + j]) + ".", inter, &hidden[t * h], expected[t],
             want.weights[t * 4 + j]);
    }
    swiglu(p + "shared_experts.", inter, &hidden[t * h], expected[t], 1.0);
    for (double v : expected[t]) max_abs = std::max(max_abs, std::fabs(v));
  }
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t i = 0; i < h; ++i) ASSERT_NEAR(out->output[t * h + i], expected[t][i], 1e-5 * max_abs) << t << "," << i;
  }
}

TEST_P(DeepseekTest, MoeLayerApiRefusesBadLayersAndSizes) {
  std::vector<float> hidden(3 * 64, 0.5f);
  EXPECT_EQ(model_->MoeLayerForward(0, hidden, 3).status().code(), absl::StatusCode::kInvalidArgument);  // dense
  EXPECT_EQ(model_->MoeLayerForward(3, hidden, 3).status().code(), absl::StatusCode::kInvalidArgument);  // MTP
  EXPECT_EQ(model_->RouteLayer(-1, hidden, 3).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model_->RouteLayer(1, hidden, 4).status().code(), absl::StatusCode::kInvalidArgument);  // size
  EXPECT_TRUE(model_->RouteLayer(1, hidden, 3).ok());
}

TEST_P(DeepseekTest, GenerationReportsExpertLoad) {
  auto gen = Generator::Load(dir_, {.backend = GetParam()});
  ASSERT_TRUE(gen.ok()) << gen.status();
  GenerateOptions go;
  go.sampling.temperature = 0.0f;
  go.max_new_tokens = 5;
  go.n = 2;
  go.routing_stats = true;
  go.routing_trace = true;
  const std::vector<int32_t> prompt = {0, 40, 41, 42};
  auto res = (*gen)->GenerateFromTokens(prompt, go);
  ASSERT_TRUE(res.ok()) << res.status();
  const RoutingStats& r = res->routing;
  ASSERT_EQ(r.layers.size(), 2u);
  // Every forwarded token: the prompt once, then each completion's tokens but the last
  // (which was sampled and never fed back).
  int64_t fed = static_cast<int64_t>(prompt.size());
  for (const Completion& c : res->completions) fed += static_cast<int64_t>(c.tokens.size()) - 1;
  EXPECT_EQ(r.tokens, fed);
  int64_t sum = 0;
  for (int64_t e = 0; e < 16; ++e) sum += r.Load(0, e);
  EXPECT_EQ(sum, fed * 4);
  EXPECT_EQ(r.trace_size(), static_cast<size_t>(2 * fed));
  // Without the option nothing is collected.
  go.routing_stats = go.routing_trace = false;
  res = (*gen)->GenerateFromTokens(prompt, go);
  ASSERT_TRUE(res.ok());
  EXPECT_TRUE(res->routing.layers.empty());
}

TEST(DeepseekDenseTest, DenseModelsHaveNoRoutedExperts) {
  testing::TempDir tmp;
  testing::WriteFile(tmp.file("config.json"), R"({"model_type":"qwen2","hidden_size":64,
    "num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":2,"intermediate_size":96,
    "vocab_size":300,"max_position_embeddings":256,"bos_token_id":290,"eos_token_id":291})");
  SynthOptions o;
  o.config_path = tmp.file("config.json");
  o.out_dir = tmp.file("model");
  ASSERT_TRUE(WriteSyntheticModel(o).ok());
  auto m = *Model::Load(o.out_dir);
  std::vector<float> hidden(64, 1.0f);
  EXPECT_EQ(m->MoeLayerForward(0, hidden, 1).status().code(), absl::StatusCode::kFailedPrecondition);
  auto s = *m->NewSession({});
  EXPECT_TRUE(s->routing_stats().layers.empty());
}

// The backends that compute every row in f32: reference, cpu (exact activations) and,
// where a GPU runs it, cuda.
std::vector<std::string> ExactBackends() {
  std::vector<std::string> out = {"reference", "cpu"};
  for (const std::string& name : RegisteredBackends()) {
    if (name == "cuda") out.push_back(name);
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Backends, DeepseekTest, ::testing::ValuesIn(ExactBackends()),
                         testing::BackendTestName);

}  // namespace
}  // namespace reasonrt
