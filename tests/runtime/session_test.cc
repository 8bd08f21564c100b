// Sessions: batching, the paged cache (sharing, copy-on-write, capacity), bad batches.
#include <atomic>
#include <cmath>
#include <thread>

#include "gtest/gtest.h"
#include "lib/core/thread_pool.h"
#include "lib/models/synth.h"
#include "lib/runtime/kv_cache.h"
#include "reasonrt/backend.h"
#include "reasonrt/model.h"
#include "reasonrt/safetensors.h"
#include "tests/testing/backend_names.h"
#include "tests/testing/temp_dir.h"

namespace reasonrt {
namespace {

const char kTiny[] = R"({"model_type":"qwen2","hidden_size":64,"num_hidden_layers":2,
  "num_attention_heads":4,"num_key_value_heads":2,"intermediate_size":96,"vocab_size":300,
  "max_position_embeddings":256,"rms_norm_eps":1e-6,"bos_token_id":290,"eos_token_id":291})";

// Every backend: the reference one and the fast ones.
class SessionTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    testing::WriteFile(tmp_.file("config.json"), kTiny);
    SynthOptions o;
    o.config_path = tmp_.file("config.json");
    o.out_dir = tmp_.file("model");
    ASSERT_TRUE(WriteSyntheticModel(o).ok());
    LoadOptions lo;
    lo.backend = GetParam();
    auto m = Model::Load(o.out_dir, lo);
    ASSERT_TRUE(m.ok()) << m.status();
    model_ = std::move(*m);
  }

  std::unique_ptr<Session> NewSession(int64_t max_tokens = 256) {
    SessionOptions so;
    so.max_tokens = max_tokens;
    return *model_->NewSession(so);
  }

  // Logits of every position of `tokens` run alone, one prefill.
  std::vector<std::vector<float>> Alone(const std::vector<int32_t>& tokens) {
    auto s = NewSession();
    Batch b;
    for (size_t i = 0; i < tokens.size(); ++i) b.Add(tokens[i], static_cast<int32_t>(i), 7, true);
    auto out = s->Forward(b);
    EXPECT_TRUE(out.ok()) << out.status();
    std::vector<std::vector<float>> rows;
    for (size_t i = 0; i < tokens.size(); ++i) rows.emplace_back(out->Row(i).begin(), out->Row(i).end());
    return rows;
  }

  testing::TempDir tmp_;
  std::unique_ptr<Model> model_;
};

// The reference backend computes every row the same way whatever the batch; the cpu
// backend rounds activations to bf16 in batches of more than 8 rows (its prompt GEMM),
// so a row's logits depend on its batch's size within that rounding: 1e-2 of the
// largest logit (see tests/reference/test_dense_logits.py).
void ExpectNear(absl::Span<const float> a, const std::vector<float>& b) {
  ASSERT_EQ(a.size(), b.size());
  const bool exact = ::testing::UnitTest::GetInstance()->current_test_info()->value_param() ==
                     std::string("\"reference\"");
  float scale = 0.0f;
  for (float v : b) scale = std::max(scale, std::fabs(v));
  const float tol = exact ? 1e-5f : 1e-2f * scale;
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], tol) << i;
}

TEST_P(SessionTest, InterleavedBatchEqualsEachSequenceAlone) {
  const std::vector<int32_t> a = {5, 17, 200, 3, 99, 42, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18};
  const std::vector<int32_t> b = {250, 1, 2};
  const auto want_a = Alone(a), want_b = Alone(b);
  auto s = NewSession();
  // Prefill both, interleaved rows, then decode both in one batch.
  Batch prefill;
  size_t ia = 0, ib = 0;
  while (ia + 1 < a.size() || ib + 1 < b.size()) {
    if (ia + 1 < a.size()) { prefill.Add(a[ia], static_cast<int32_t>(ia), 1, true); ++ia; }
    if (ib + 1 < b.size()) { prefill.Add(b[ib], static_cast<int32_t>(ib), 2, true); ++ib; }
  }
  auto out = s->Forward(prefill);
  ASSERT_TRUE(out.ok()) << out.status();
  for (size_t r = 0; r < out->batch_rows.size(); ++r) {
    const int32_t row = out->batch_rows[r];
    const bool is_a = prefill.seq_ids[row] == 1;
    ExpectNear(out->Row(r), (is_a ? want_a : want_b)[prefill.positions[row]]);
  }
  Batch decode;
  decode.Add(b.back(), static_cast<int32_t>(b.size() - 1), 2, true);
  decode.Add(a.back(), static_cast<int32_t>(a.size() - 1), 1, true);
  out = s->Forward(decode);
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear(out->Row(0), want_b.back());
  ExpectNear(out->Row(1), want_a.back());
  EXPECT_EQ(s->SequenceLength(1), static_cast<int64_t>(a.size()));
  EXPECT_EQ(s->SequenceLength(2), static_cast<int64_t>(b.size()));
}

TEST_P(SessionTest, OnlyRequestedRowsGetLogits) {
  auto s = NewSession();
  Batch b;
  b.Add(1, 0, 0, false);
  b.Add(2, 1, 0, true);
  b.Add(3, 2, 0, false);
  auto out = s->Forward(b);
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->batch_rows, std::vector<int32_t>{1});
  EXPECT_EQ(out->values.size(), 300u);
  ExpectNear(out->Row(0), Alone({1, 2, 3})[1]);
}

// ForwardKeepLogits + SampleKept draw what SampleTokens draws from Forward's logits (the
// reference backend's, on the host), rows in any order and repeated.
TEST_P(SessionTest, KeptLogitsDrawWhatForwardsLogitsDraw) {
  Batch b;
  for (int32_t i = 0; i < 6; ++i) b.Add(10 + i * 7, i, 0, i == 2 || i == 5);
  auto host = NewSession()->Forward(b);
  ASSERT_TRUE(host.ok()) << host.status();
  auto s = NewSession();
  auto kept = s->ForwardKeepLogits(b);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(*kept, 2);
  EXPECT_EQ(s->SequenceLength(0), 6);
  const std::vector<LogitEdit> ban = {{.token = 4, .banned = true}};
  const std::vector<TokenDraw> draws = {{.greedy = true, .edits = ban, .score_token = 4},
                                        {.temperature = 0.7f, .top_p = 0.9f, .uniform = 0.3},
                                        {.draw = false, .temperature = 0.7f, .score_token = 9},
                                        {.temperature = 1.0f, .top_k = 5, .uniform = 0.8}};
  const std::vector<int32_t> rows = {1, 0, 1, 1};
  std::vector<DrawnToken> got(4), want(4);
  ASSERT_TRUE(s->SampleKept(rows, draws, absl::MakeSpan(got)).ok());
  auto ref = *CreateBackend("reference", {});
  for (size_t i = 0; i < rows.size(); ++i) {
    TensorView row =
        *TensorView::Borrow(const_cast<float*>(host->Row(rows[i]).data()), DType::kF32, {1, 300});
    ASSERT_TRUE(ref->SampleTokens(row, {draws[i]}, absl::MakeSpan(&want[i], 1)).ok());
    EXPECT_EQ(got[i].token, want[i].token) << i;
    EXPECT_NEAR(got[i].logprob, want[i].logprob, 1e-3) << i;
    EXPECT_NEAR(got[i].score_logprob, want[i].score_logprob, 1e-3) << i;
  }
  EXPECT_EQ(got[2].token, -1);
  EXPECT_LT(got[0].score_logprob, 0.0f);  // the banned token still has a log-prob
  // A Forward in between leaves the kept rows as they were.
  Batch next;
  next.Add(3, 6, 0, true);
  ASSERT_TRUE(s->Forward(next).ok());
  std::vector<DrawnToken> again(4);
  ASSERT_TRUE(s->SampleKept(rows, draws, absl::MakeSpan(again)).ok());
  for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(again[i].token, got[i].token) << i;

  // Rows outside the kept ones, mismatched spans, and a failed pass (which keeps none).
  EXPECT_EQ(s->SampleKept({2}, {draws[0]}, absl::MakeSpan(got.data(), 1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s->SampleKept({0, 1}, {draws[0]}, absl::MakeSpan(got.data(), 1)).code(),
            absl::StatusCode::kInvalidArgument);
  Batch bad;
  bad.Add(1, 99, 0, true);
  EXPECT_FALSE(s->ForwardKeepLogits(bad).ok());
  EXPECT_EQ(s->SampleKept({0}, {draws[0]}, absl::MakeSpan(got.data(), 1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NewSession()->SampleKept({0}, {draws[0]}, absl::MakeSpan(got.data(), 1)).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(SessionTest, ForkSharesThePromptAndCopiesOnWrite) {
  const std::vector<int32_t> prompt = {4, 8, 15, 16, 23, 42, 4, 8, 15, 16, 23, 42, 1, 2, 3, 4, 5, 6, 7, 8};
  auto s = NewSession();
  Batch b;
  for (size_t i = 0; i < prompt.size(); ++i) b.Add(prompt[i], static_cast<int32_t>(i), 0, false);
  ASSERT_TRUE(s->Forward(b).ok());
  const int64_t free_before = s->FreeTokens();
  ASSERT_TRUE(s->ForkSequence(0, 1).ok());
  EXPECT_EQ(s->FreeTokens(), free_before);  // no block copied yet
  EXPECT_FALSE(s->ForkSequence(0, 1).ok());  // exists
  EXPECT_FALSE(s->ForkSequence(9, 10).ok());  // unknown source
  // The two continue differently; each must match its own sequence run alone.
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
  // The shared partial block (positions 16..19) was copied for one of them.
  EXPECT_EQ(s->FreeTokens(), free_before - kKvBlockSize);
  s->RemoveSequence(0);
  s->RemoveSequence(1);
  EXPECT_EQ(s->FreeTokens(), 256);
}

TEST_P(SessionTest, FullCacheIsAnErrorAndChangesNothing) {
  auto s = NewSession(32);  // two blocks
  Batch b;
  for (int i = 0; i < 30; ++i) b.Add(i, i, 0, false);
  ASSERT_TRUE(s->Forward(b).ok());
  Batch more;
  for (int i = 30; i < 35; ++i) more.Add(i, i, 0, true);
  more.Add(1, 0, 5, true);
  auto out = s->Forward(more);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kResourceExhausted) << out.status();
  EXPECT_NE(out.status().message().find("KV cache is full"), absl::string_view::npos);
  EXPECT_EQ(s->SequenceLength(0), 30);
  EXPECT_EQ(s->SequenceLength(5), 0);
  Batch fits;
  fits.Add(30, 30, 0, true);
  EXPECT_TRUE(s->Forward(fits).ok());
}

TEST_P(SessionTest, BadBatchesAreRefused) {
  auto s = NewSession();
  auto expect_bad = [&](const Batch& b, const char* what) {
    auto out = s->Forward(b);
    ASSERT_FALSE(out.ok()) << what;
    EXPECT_NE(out.status().message().find(what), absl::string_view::npos) << out.status();
    EXPECT_EQ(s->SequenceLength(0), 0) << what;
  };
  expect_bad(Batch{}, "empty batch");
  Batch b;
  b.Add(1, 0, 0, true);
  b.positions.pop_back();
  expect_bad(b, "positions");
  Batch oov;
  oov.Add(300, 0, 0, true);
  expect_bad(oov, "outside the vocabulary");
  Batch neg;
  neg.Add(-1, 0, 0, true);
  expect_bad(neg, "outside the vocabulary");
  Batch gap;
  gap.Add(1, 1, 0, true);
  expect_bad(gap, "expected 0");
  Batch twice;
  twice.Add(1, 0, 0, true);
  twice.Add(2, 0, 0, true);
  expect_bad(twice, "expected 1");
  Batch negseq;
  negseq.Add(1, 0, -3, true);
  expect_bad(negseq, "negative sequence id");
}

TEST_P(SessionTest, PositionsPastTheModelsRangeAreRefused) {
  auto s = NewSession(512);
  Batch b;
  for (int i = 0; i < 256; ++i) b.Add(1, i, 0, false);
  ASSERT_TRUE(s->Forward(b).ok());
  Batch past;
  past.Add(1, 256, 0, true);
  EXPECT_EQ(s->Forward(past).status().code(), absl::StatusCode::kOutOfRange);
}

TEST_P(SessionTest, SessionOutlivesItsModel) {
  auto s = NewSession();
  model_.reset();
  Batch b;
  b.Add(1, 0, 0, true);
  EXPECT_TRUE(s->Forward(b).ok());
}

INSTANTIATE_TEST_SUITE_P(Backends, SessionTest, ::testing::ValuesIn(RegisteredBackends()),
                         testing::BackendTestName);

// The tiny synthetic model written into tmp/m; returns that folder.
std::string WriteTinyModel(const testing::TempDir& tmp) {
  testing::WriteFile(tmp.file("config.json"), kTiny);
  SynthOptions o;
  o.config_path = tmp.file("config.json");
  o.out_dir = tmp.file("m");
  EXPECT_TRUE(WriteSyntheticModel(o).ok());
  return o.out_dir;
}

TEST(ModelLoadTest, ErrorsNameTheProblem) {
  testing::TempDir tmp;
  EXPECT_EQ(Model::Load(tmp.path()).status().code(), absl::StatusCode::kNotFound);
  const std::string dir = WriteTinyModel(tmp);
  LoadOptions lo;
  lo.backend = "no-such-backend";
  auto m = Model::Load(dir, lo);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(m.status().message().find("reference"), absl::string_view::npos) << m.status();
  // A config that disagrees with the weights.
  testing::WriteFile(tmp.file("m/config.json"),
                     std::string(kTiny).replace(std::string(kTiny).find("96"), 2, "128"));
  auto bad = Model::Load(dir);
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("gate_proj"), absl::string_view::npos) << bad.status();
}

TEST(ModelLoadTest, NumThreadsIsTheLoadOptionOrTheCores) {
  testing::TempDir tmp;
  const std::string dir = WriteTinyModel(tmp);
  LoadOptions lo;
  lo.backend = "cpu";
  lo.num_threads = 3;
  auto three = Model::Load(dir, lo);
  ASSERT_TRUE(three.ok()) << three.status();
  EXPECT_EQ((*three)->num_threads(), 3);
  lo.num_threads = 0;
  auto all = Model::Load(dir, lo);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ((*all)->num_threads(), AvailableCores());
}

// UpdateWeights: the updated model gives the logits of a model written to disk with those
// weights (an independent path: the writer, then a fresh load); bad updates change
// nothing; a mapped model refuses; forward passes on other threads see old or new
// weights, never a torn mix or a crash.
TEST(UpdateWeightsTest, EqualsAFreshLoadOfTheSameWeights) {
  testing::TempDir tmp;
  testing::WriteFile(tmp.file("config.json"), kTiny);
  SynthOptions o;
  o.config_path = tmp.file("config.json");
  o.out_dir = tmp.file("a");
  o.seed = 1;
  ASSERT_TRUE(WriteSyntheticModel(o).ok());
  o.out_dir = tmp.file("b");
  o.seed = 2;  // the same shapes, other values: the "trained" weights
  ASSERT_TRUE(WriteSyntheticModel(o).ok());
  LoadOptions in_memory;
  in_memory.weights_in_memory = true;
  auto a = *Model::Load(tmp.file("a"), in_memory);
  auto b = *Model::Load(tmp.file("b"));
  auto ckpt_b = *Checkpoint::Open(tmp.file("b"));
  auto logits = [](const Model& m) {
    auto s = *m.NewSession({});
    Batch batch;
    for (int i = 0; i < 6; ++i) batch.Add(10 + i, i, 0, true);
    return s->Forward(batch)->values;
  };
  const std::vector<float> before = logits(*a), want = logits(*b);
  ASSERT_NE(before, want);
  // Every tensor of b, given as f32 (converted back to a's bf16).
  std::vector<std::vector<float>> storage;
  std::vector<WeightUpdate> updates;
  for (const std::string& name : ckpt_b->names()) {
    TensorView t = *ckpt_b->Get(name);
    storage.emplace_back(static_cast<size_t>(t.num_elements()));
    ConvertToF32(t.dtype(), t.data(), storage.back().data(), storage.back().size());
    updates.push_back({name, *TensorView::Borrow(storage.back().data(), DType::kF32, t.shape())});
  }
  // A bad entry anywhere: nothing is written.
  std::vector<WeightUpdate> bad = updates;
  bad.push_back({"model.norm.weight", *TensorView::Borrow(storage[0].data(), DType::kF32, {3})});
  EXPECT_EQ(a->UpdateWeights(bad).code(), absl::StatusCode::kInvalidArgument);
  bad.back() = {"no.such.tensor", updates[0].values};
  EXPECT_FALSE(a->UpdateWeights(bad).ok());
  EXPECT_EQ(logits(*a), before);
  // Forward passes on another thread while the update runs.
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    auto s = *a->NewSession({.max_tokens = 4096});
    int pos = 0;
    while (!stop.load() && pos < 4000) {
      Batch step;
      step.Add(5, pos++, 0, true);
      auto out = s->Forward(step);
      ASSERT_TRUE(out.ok());
      for (float v : out->values) ASSERT_TRUE(std::isfinite(v));
    }
  });
  ASSERT_TRUE(a->UpdateWeights(updates).ok());
  stop = true;
  reader.join();
  const std::vector<float> after = logits(*a);
  ASSERT_EQ(after.size(), want.size());
  for (size_t i = 0; i < after.size(); ++i) ASSERT_EQ(after[i], want[i]) << i;  // bitwise: same bf16 weights
  // A mapped model cannot be written.
  EXPECT_EQ(b->UpdateWeights(updates).code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace reasonrt
