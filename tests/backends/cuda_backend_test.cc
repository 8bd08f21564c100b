// The cuda backend beyond the conformance suite (which runs every op on it wherever a GPU
// is): operands in device memory, out of memory, weight copies refreshed after an in-place
// change, and whole models (dense and DeepSeek, bf16 and fp8) against the cpu backend.
// Every test skips where no GPU runs our kernels.
//
// Tolerances: the cuda kernels and the cpu backend with exact activations both compute in
// f32 (in different orders): logits agree to 1e-4 of the largest, and greedy generations
// are identical.
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "lib/models/synth.h"
#include "reasonrt/backend.h"
#include "reasonrt/generate.h"
#include "reasonrt/model.h"
#include "reasonrt/session.h"
#include "tests/testing/temp_dir.h"

namespace reasonrt {
namespace {

bool HaveCuda() {
  const std::vector<std::string> names = RegisteredBackends();
  return std::find(names.begin(), names.end(), "cuda") != names.end();
}

#define SKIP_WITHOUT_CUDA() \
  if (!HaveCuda()) GTEST_SKIP() << "no CUDA device runs our kernels here"

// A cuda backend made while the environment variable `name` reads `value` (the backend reads
// its settings when made); the variable's previous value, or its absence, is put back, so a
// suite run with RRT_CUDA_FAST_PATHS=0 from outside keeps it for the later tests.
std::unique_ptr<Backend> CudaBackendWith(const char* name, const char* value,
                                         const BackendOptions& options = {}) {
  const char* old = std::getenv(name);
  const std::optional<std::string> previous =
      old != nullptr ? std::optional<std::string>(old) : std::nullopt;
  ::setenv(name, value, 1);
  auto be = CreateBackend("cuda", options);
  if (previous) {
    ::setenv(name, previous->c_str(), 1);
  } else {
    ::unsetenv(name);
  }
  EXPECT_TRUE(be.ok()) << be.status();
  return be.ok() ? std::move(*be) : nullptr;
}

TensorView RandomHost(DType dtype, std::initializer_list<int64_t> shape, uint32_t seed) {
  TensorView t = *TensorView::Allocate(dtype, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(t.num_elements()));
  for (float& f : v) f = u(rng);
  ConvertFromF32(dtype, v.data(), t.mutable_data(), v.size());
  return t;
}

float MaxAbs(const TensorView& t) {
  float m = 0.0f;
  for (int64_t i = 0; i < t.num_elements(); ++i) m = std::max(m, std::fabs(t.data_as<float>()[i]));
  return m;
}

void ExpectClose(const TensorView& got, const TensorView& want, float rel) {
  ASSERT_EQ(got.num_elements(), want.num_elements());
  const float scale = MaxAbs(want);
  for (int64_t i = 0; i < got.num_elements(); ++i) {
    ASSERT_NEAR(got.data_as<float>()[i], want.data_as<float>()[i], rel * scale + 1e-6f) << i;
  }
}

// Both precisions: exact activations at 1e-5; by default 3 rows of bf16 weights run on
// tensor cores with bf16-rounded activations (1e-2, as the bf16 prompt GEMM).
TEST(CudaBackendTest, OperandsInDeviceMemory) {
  SKIP_WITHOUT_CUDA();
  auto ref = *CreateBackend("reference", {});
  BackendOptions exact;
  exact.exact_activations = true;
  for (const BackendOptions& options : {BackendOptions{}, exact}) {
    SCOPED_TRACE(options.exact_activations);
    auto be = *CreateBackend("cuda", options);
    TensorView x = RandomHost(DType::kF32, {3, 256}, 1), w = RandomHost(DType::kBF16, {40, 256}, 2);
    TensorView dx = *be->Allocate(DType::kF32, {3, 256}), dy = *be->Allocate(DType::kF32, {3, 40});
    EXPECT_EQ(dx.device().type, DeviceType::kCuda);
    ASSERT_TRUE(be->Copy(x, dx).ok());
    ASSERT_TRUE(be->MatMul(dx, Weight{w, {}}, nullptr, dy).ok());
    ASSERT_TRUE(be->SiluMul(dy, dy, dy).ok());
    TensorView y = *TensorView::Allocate(DType::kF32, {3, 40}),
               want = *TensorView::Allocate(DType::kF32, {3, 40});
    ASSERT_TRUE(be->Copy(dy, y).ok());
    ASSERT_TRUE(ref->MatMul(x, Weight{w, {}}, nullptr, want).ok());
    ASSERT_TRUE(ref->SiluMul(want, want, want).ok());
    ExpectClose(y, want, options.exact_activations ? 1e-5f : 1e-2f);
  }
}

// The decode GEMV may launch while the kernel before it still runs (programmatic dependent
// launch, on sm_90 and later) and must wait for it before reading activations: a chain of
// RmsNorm -> GEMV -> Add on device memory, 1, 3 and 8 rows, 20 steps, where a GEMV that read
// its input early would see the previous step's. The chain must equal, bit for bit, the same
// chain with the host waiting for each operation (a copy out after it), which no launch can
// overlap; and with exact activations, the reference (1e-4 of the largest: f32 sums in
// different orders over 20 steps; bf16-rounded activations' errors grow past any useful bound
// over the 20 steps).
TEST(CudaBackendTest, DependentLaunchesSeeTheirPredecessorsResults) {
  SKIP_WITHOUT_CUDA();
  auto ref = *CreateBackend("reference", {});
  BackendOptions exact;
  exact.exact_activations = true;
  for (const BackendOptions& options : {BackendOptions{}, exact}) {
    auto be = *CreateBackend("cuda", options);
    for (int64_t t : {1, 3, 8}) {
      SCOPED_TRACE(::testing::Message() << "t=" << t << " exact=" << options.exact_activations);
      const int64_t h = 512;
      TensorView x = RandomHost(DType::kF32, {t, h}, 41), w = RandomHost(DType::kBF16, {h, h}, 42),
                 gain = RandomHost(DType::kF32, {h}, 43);
      TensorView n = *TensorView::Allocate(DType::kF32, {t, h}),
                 y = *TensorView::Allocate(DType::kF32, {t, h}),
                 sink = *TensorView::Allocate(DType::kF32, {t, h});
      std::vector<TensorView> results;
      for (bool wait : {false, true}) {
        TensorView dx = *be->Allocate(DType::kF32, {t, h}), dn = *be->Allocate(DType::kF32, {t, h}),
                   dy = *be->Allocate(DType::kF32, {t, h});
        ASSERT_TRUE(be->Copy(x, dx).ok());
        for (int step = 0; step < 20; ++step) {
          ASSERT_TRUE(be->RmsNorm(dx, gain, 1e-6f, dn).ok());
          if (wait) ASSERT_TRUE(be->Copy(dn, sink).ok());
          ASSERT_TRUE(be->MatMul(dn, Weight{w, {}}, nullptr, dy).ok());
          if (wait) ASSERT_TRUE(be->Copy(dy, sink).ok());
          ASSERT_TRUE(be->Add(dx, dy, dx).ok());
          if (wait) ASSERT_TRUE(be->Copy(dx, sink).ok());
        }
        results.push_back(*TensorView::Allocate(DType::kF32, {t, h}));
        ASSERT_TRUE(be->Copy(dx, results.back()).ok());
      }
      EXPECT_EQ(std::memcmp(results[0].data(), results[1].data(), t * h * sizeof(float)), 0);
      if (!options.exact_activations) continue;
      TensorView want = RandomHost(DType::kF32, {t, h}, 41);
      for (int step = 0; step < 20; ++step) {
        ASSERT_TRUE(ref->RmsNorm(want, gain, 1e-6f, n).ok());
        ASSERT_TRUE(ref->MatMul(n, Weight{w, {}}, nullptr, y).ok());
        ASSERT_TRUE(ref->Add(want, y, want).ok());
      }
      ExpectClose(results[0], want, 1e-4f);
    }
  }
}

// A long sequence over blocks 0 .. blocks - 2 in reverse order and a short one in the last
// block: their block tables and the cache slot of every token (the long one's first).
struct LongAndShort {
  int64_t blocks;
  std::vector<int32_t> table_long, table_short;
  std::vector<int64_t> slots;
};
LongAndShort LongAndShortLayout(int64_t long_len, int64_t short_len) {
  LongAndShort l;
  l.blocks = (long_len + kKvBlockSize - 1) / kKvBlockSize + 1;
  l.table_short = {static_cast<int32_t>(l.blocks - 1)};
  for (int32_t b = static_cast<int32_t>(l.blocks) - 2; b >= 0; --b) l.table_long.push_back(b);
  for (int64_t p = 0; p < long_len; ++p)
    l.slots.push_back(l.table_long[p / kKvBlockSize] * kKvBlockSize + p % kKvBlockSize);
  for (int64_t p = 0; p < short_len; ++p) l.slots.push_back(l.table_short[0] * kKvBlockSize + p);
  return l;
}

// Decode over a long context: few rows x heads, so the keys split into ranges run by separate
// blocks and merged (with a short sequence in the same call, whose later splits see no key).
// With RRT_CUDA_EXPERIMENTAL=1 the last split's block merges them: the same bits as the
// merge kernel's, three calls in a row (each (row, head) counter back at zero after each).
TEST(CudaBackendTest, SplitKeyDecodeAttentionMatchesTheReference) {
  SKIP_WITHOUT_CUDA();
  auto be = CudaBackendWith("RRT_CUDA_EXPERIMENTAL", "0");
  auto merging = CudaBackendWith("RRT_CUDA_EXPERIMENTAL", "1");
  auto ref = *CreateBackend("reference", {});
  for (DType cache_dtype : {DType::kF32, DType::kBF16}) {
    const int64_t heads = 4, kv_heads = 2, dk = 64, dv = 64, long_len = 3000, short_len = 5;
    const auto [blocks, table_long, table_short, slots] = LongAndShortLayout(long_len, short_len);
    PagedKvLayer cache{*TensorView::Allocate(cache_dtype, {blocks, kKvBlockSize, kv_heads, dk}),
                       *TensorView::Allocate(cache_dtype, {blocks, kKvBlockSize, kv_heads, dv})};
    PagedKvLayer cache_ref{*TensorView::Allocate(cache_dtype, {blocks, kKvBlockSize, kv_heads, dk}),
                           *TensorView::Allocate(cache_dtype, {blocks, kKvBlockSize, kv_heads, dv})};
    const int64_t n = static_cast<int64_t>(slots.size());
    TensorView k = RandomHost(DType::kF32, {n, kv_heads, dk}, 11), v = RandomHost(DType::kF32, {n, kv_heads, dv}, 12);
    ASSERT_TRUE(be->StoreKv(k, v, slots, cache).ok());
    ASSERT_TRUE(ref->StoreKv(k, v, slots, cache_ref).ok());
    TensorView q = RandomHost(DType::kF32, {2, heads, dk}, 13);
    const std::vector<AttentionSequence> seqs = {{table_long, 0, 1, long_len - 1},
                                                 {table_short, 1, 1, short_len - 1}};
    TensorView out = *TensorView::Allocate(DType::kF32, {2, heads, dv}),
               want = *TensorView::Allocate(DType::kF32, {2, heads, dv});
    ASSERT_TRUE(be->Attention(q, cache, seqs, 0.3f, out).ok());
    ASSERT_TRUE(ref->Attention(q, cache_ref, seqs, 0.3f, want).ok());
    ExpectClose(out, want, 1e-5f);
    for (int call = 0; call < 3; ++call) {
      SCOPED_TRACE(call);
      TensorView merged = *TensorView::Allocate(DType::kF32, {2, heads, dv});
      ASSERT_TRUE(merging->Attention(q, cache, seqs, 0.3f, merged).ok());
      EXPECT_EQ(std::memcmp(merged.data(), out.data(), out.byte_size()), 0);
    }
  }
}

// A prompt's rows run as tiles of 32 rows of one sequence: one sequence whose 40 new rows
// follow cached positions (a full tile and a partial one, over blocks in reverse order),
// another of 13 rows from position 0; head widths that are not powers of two. After 5
// cached positions all keys go in one pass; after 260, each tile's keys split into ranges
// run by separate blocks and merged (the short sequence's rows see no key in most).
TEST(CudaBackendTest, TiledPromptAttentionMatchesTheReference) {
  SKIP_WITHOUT_CUDA();
  auto be = *CreateBackend("cuda", {});
  auto ref = *CreateBackend("reference", {});
  for (const int64_t cached : {5, 260}) {
    for (DType cache_dtype : {DType::kF32, DType::kBF16}) {
      const int64_t heads = 4, kv_heads = 2, dk = 48, dv = 96, new_rows = 40, short_len = 13;
      const int64_t long_len = cached + new_rows;
      const auto [blocks, table_long, table_short, slots] = LongAndShortLayout(long_len, short_len);
      PagedKvLayer cache{*TensorView::Allocate(cache_dtype, {blocks, kKvBlockSize, kv_heads, dk}),
                         *TensorView::Allocate(cache_dtype, {blocks, kKvBlockSize, kv_heads, dv})};
      PagedKvLayer cache_ref{*TensorView::Allocate(cache_dtype, {blocks, kKvBlockSize, kv_heads, dk}),
                             *TensorView::Allocate(cache_dtype, {blocks, kKvBlockSize, kv_heads, dv})};
      const int64_t n = static_cast<int64_t>(slots.size());
      TensorView k = RandomHost(DType::kF32, {n, kv_heads, dk}, 21),
                 v = RandomHost(DType::kF32, {n, kv_heads, dv}, 22);
      ASSERT_TRUE(be->StoreKv(k, v, slots, cache).ok());
      ASSERT_TRUE(ref->StoreKv(k, v, slots, cache_ref).ok());
      const int64_t rows = new_rows + short_len;
      TensorView q = RandomHost(DType::kF32, {rows, heads, dk}, 23);
      const std::vector<AttentionSequence> seqs = {{table_long, 0, new_rows, cached},
                                                   {table_short, new_rows, short_len, 0}};
      TensorView out = *TensorView::Allocate(DType::kF32, {rows, heads, dv}),
                 want = *TensorView::Allocate(DType::kF32, {rows, heads, dv});
      ASSERT_TRUE(be->Attention(q, cache, seqs, 0.3f, out).ok());
      ASSERT_TRUE(ref->Attention(q, cache_ref, seqs, 0.3f, want).ok());
      SCOPED_TRACE(cached);
      ExpectClose(out, want, 1e-5f);
    }
  }
}

// Prompt sequences of 64 rows or more run on tensor cores (cuBLAS, bf16 operands and f32
// sums) unless activations must be exact: 150 new rows after 37 cached positions (blocks
// in reverse order), 70 rows from position 0 and 5 rows (the tiled kernel's) in one call,
// four query heads a kv head, dk != dv. Tolerance: the bf16 rounding of queries, keys,
// values and softmax weights (8 significant bits) moves the outputs by about 1e-3 of the
// largest; 5e-3 is asserted. The same rows again in chunks of 16 (scratch limited by
// RRT_CUDA_ATTENTION_SCRATCH); with exact activations the f32 kernels run (1e-5), and the
// tensor-core result differs from theirs by more than f32 rounding (so it did run).
TEST(CudaBackendTest, TensorCorePromptAttentionMatchesTheReference) {
  SKIP_WITHOUT_CUDA();
  auto ref = *CreateBackend("reference", {});
  BackendOptions exact;
  exact.exact_activations = true;
  const int64_t heads = 8, kv_heads = 2, dk = 64, dv = 32, cached = 37;
  const std::vector<int64_t> rows = {150, 70, 5}, first = {cached, 0, 0};
  // Blocks: the first sequence's 12 in reverse order, then the others' in order.
  std::vector<std::vector<int32_t>> tables(3);
  std::vector<int64_t> slots;
  int32_t next_block = 0;
  for (size_t s = 0; s < 3; ++s) {
    const int64_t keys = first[s] + rows[s], blocks = (keys + kKvBlockSize - 1) / kKvBlockSize;
    for (int64_t b = 0; b < blocks; ++b) tables[s].push_back(next_block + static_cast<int32_t>(b));
    if (s == 0) std::reverse(tables[s].begin(), tables[s].end());
    next_block += static_cast<int32_t>(blocks);
    for (int64_t p = 0; p < keys; ++p)
      slots.push_back(tables[s][p / kKvBlockSize] * kKvBlockSize + p % kKvBlockSize);
  }
  const int64_t n = static_cast<int64_t>(slots.size()), q_rows = rows[0] + rows[1] + rows[2];
  const std::vector<AttentionSequence> seqs = {{tables[0], 0, rows[0], first[0]},
                                               {tables[1], rows[0], rows[1], first[1]},
                                               {tables[2], rows[0] + rows[1], rows[2], first[2]}};
  for (DType cache_dtype : {DType::kF32, DType::kBF16}) {
    SCOPED_TRACE(DTypeName(cache_dtype));
    PagedKvLayer cache{
        *TensorView::Allocate(cache_dtype, {next_block, kKvBlockSize, kv_heads, dk}),
        *TensorView::Allocate(cache_dtype, {next_block, kKvBlockSize, kv_heads, dv})};
    TensorView k = RandomHost(DType::kF32, {n, kv_heads, dk}, 31),
               v = RandomHost(DType::kF32, {n, kv_heads, dv}, 32),
               q = RandomHost(DType::kF32, {q_rows, heads, dk}, 33);
    ASSERT_TRUE(ref->StoreKv(k, v, slots, cache).ok());
    TensorView want = *TensorView::Allocate(DType::kF32, {q_rows, heads, dv});
    ASSERT_TRUE(ref->Attention(q, cache, seqs, 0.5f, want).ok());
    auto run = [&](std::unique_ptr<Backend> be) {
      TensorView out = *TensorView::Allocate(DType::kF32, {q_rows, heads, dv});
      EXPECT_TRUE(be->Attention(q, cache, seqs, 0.5f, out).ok());
      return out;
    };
    const TensorView fast = run(*CreateBackend("cuda", {}));
    ExpectClose(fast, want, 5e-3f);
    const TensorView chunked = run(CudaBackendWith("RRT_CUDA_ATTENTION_SCRATCH", "1"));
    ExpectClose(chunked, want, 5e-3f);
    const TensorView f32 = run(*CreateBackend("cuda", exact));
    ExpectClose(f32, want, 1e-5f);
    float differ = 0.0f;
    for (int64_t i = 0; i < f32.num_elements(); ++i)
      differ = std::max(differ, std::fabs(fast.data_as<float>()[i] - f32.data_as<float>()[i]));
    EXPECT_GT(differ, 1e-5f * MaxAbs(want));
  }
}

// MLA's absorbed decode at DeepSeek-V3's shape (one latent cache row of 512 + 64 per token,
// read by every head; 20 heads: two full tiles of 8 and a partial one), one query over a
// long context (split keys) and one over 5 tokens in the same call.
TEST(CudaBackendTest, LatentDecodeAttentionMatchesTheReference) {
  SKIP_WITHOUT_CUDA();
  auto be = *CreateBackend("cuda", {});
  auto ref = *CreateBackend("reference", {});
  for (DType cache_dtype : {DType::kF32, DType::kBF16}) {
    const int64_t heads = 20, dk = 576, dv = 512, long_len = 2000, short_len = 5;
    const auto [blocks, table_long, table_short, slots] = LongAndShortLayout(long_len, short_len);
    PagedKvLayer cache{*TensorView::Allocate(cache_dtype, {blocks, kKvBlockSize, 1, dk}), {}};
    PagedKvLayer cache_ref{*TensorView::Allocate(cache_dtype, {blocks, kKvBlockSize, 1, dk}), {}};
    const int64_t n = static_cast<int64_t>(slots.size());
    TensorView k = RandomHost(DType::kF32, {n, 1, dk}, 21);
    ASSERT_TRUE(be->StoreKv(k, TensorView(), slots, cache).ok());
    ASSERT_TRUE(ref->StoreKv(k, TensorView(), slots, cache_ref).ok());
    TensorView q = RandomHost(DType::kF32, {2, heads, dk}, 22);
    const std::vector<AttentionSequence> seqs = {{table_long, 0, 1, long_len - 1},
                                                 {table_short, 1, 1, short_len - 1}};
    TensorView out = *TensorView::Allocate(DType::kF32, {2, heads, dv}),
               want = *TensorView::Allocate(DType::kF32, {2, heads, dv});
    ASSERT_TRUE(be->Attention(q, cache, seqs, 0.05f, out).ok());
    ASSERT_TRUE(ref->Attention(q, cache_ref, seqs, 0.05f, want).ok());
    ExpectClose(out, want, 1e-5f);
  }
}

TEST(CudaBackendTest, OutOfMemoryIsAnError) {
  SKIP_WITHOUT_CUDA();
  auto be = *CreateBackend("cuda", {});
  auto huge = be->Allocate(DType::kF32, {int64_t{1} << 40});  // 4 TiB
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted) << huge.status();
  EXPECT_TRUE(be->Allocate(DType::kF32, {16}).ok());  // and the device still works
}

TEST(CudaBackendTest, WeightCopiesFollowInvalidation) {
  SKIP_WITHOUT_CUDA();
  auto be = *CreateBackend("cuda", {});
  auto ref = *CreateBackend("reference", {});
  TensorView x = RandomHost(DType::kF32, {1, 64}, 3), w = RandomHost(DType::kF32, {8, 64}, 4);
  TensorView y = *TensorView::Allocate(DType::kF32, {1, 8}),
             want = *TensorView::Allocate(DType::kF32, {1, 8});
  ASSERT_TRUE(be->MatMul(x, Weight{w, {}}, nullptr, y).ok());
  for (int64_t i = 0; i < w.num_elements(); ++i) w.mutable_data_as<float>()[i] *= -2.0f;
  InvalidateWeightCopies();
  ASSERT_TRUE(be->MatMul(x, Weight{w, {}}, nullptr, y).ok());
  ASSERT_TRUE(ref->MatMul(x, Weight{w, {}}, nullptr, want).ok());
  ExpectClose(y, want, 1e-5f);
}

// q, k and v as one device matrix (one GEMV launch for a few rows, one GEMM whose columns
// are split into the outputs for many): results as the reference's, exact activations
// (1e-5) and bf16-rounded ones (1e-2, as the conformance suite), and after the weights
// change in place and InvalidateWeightCopies(), the new weights' results.
TEST(CudaBackendTest, FusedWeightsFollowInvalidation) {
  SKIP_WITHOUT_CUDA();
  auto ref = *CreateBackend("reference", {});
  BackendOptions exact;
  exact.exact_activations = true;
  Weight q{RandomHost(DType::kBF16, {64, 96}, 51), {}},
      k{RandomHost(DType::kBF16, {16, 96}, 52), {}}, v{RandomHost(DType::kBF16, {16, 96}, 53), {}};
  TensorView qb = RandomHost(DType::kBF16, {64}, 54), kb = RandomHost(DType::kF32, {16}, 55);
  for (const BackendOptions& options : {BackendOptions{}, exact}) {
    auto be = *CreateBackend("cuda", options);
    for (int64_t t : {3, 40}) {
      SCOPED_TRACE(::testing::Message() << "t=" << t << " exact=" << options.exact_activations);
      const float tol = options.exact_activations ? 1e-5f : 1e-2f;
      TensorView x = RandomHost(DType::kF32, {t, 96}, 56);
      for (int round = 0; round < 2; ++round) {
        std::vector<TensorView> got, want;
        for (int64_t n : {64, 16, 16}) {
          got.push_back(*TensorView::Allocate(DType::kF32, {t, n}));
          want.push_back(*TensorView::Allocate(DType::kF32, {t, n}));
        }
        ASSERT_TRUE(
            be->MatMulShared(x, {&q, &k, &v}, {&qb, &kb, nullptr}, {&got[0], &got[1], &got[2]})
                .ok());
        ASSERT_TRUE(
            ref->MatMulShared(x, {&q, &k, &v}, {&qb, &kb, nullptr}, {&want[0], &want[1], &want[2]})
                .ok());
        for (int i = 0; i < 3; ++i) ExpectClose(got[i], want[i], tol);
        // k's weights negated in place (bf16: the sign bit) for the second round.
        auto* bits = static_cast<uint16_t*>(k.data.mutable_data());
        for (int64_t i = 0; i < k.data.num_elements(); ++i) bits[i] ^= 0x8000;
        InvalidateWeightCopies();
      }
    }
  }
}

// 2 to 8 rows against bf16 weights on tensor cores, the activations
// rounded to bf16 (1e-2 of the largest output, as the bf16 prompt GEMM), for fused q/k/v
// (segments, biases) and a plain MatMul of 40 rows (a partial block of 16) over k = 96 (fewer
// 32-column blocks than warps). Exact activations keep the f32 kernel, and the tensor-core
// result differs from it by more than f32 rounding (so it ran).
TEST(CudaBackendTest, TensorCoreGemvMatchesTheReference) {
  SKIP_WITHOUT_CUDA();
  auto ref = *CreateBackend("reference", {});
  BackendOptions exact_options;
  exact_options.exact_activations = true;
  auto be = CudaBackendWith("RRT_CUDA_FAST_PATHS", "1");
  auto exact = CudaBackendWith("RRT_CUDA_FAST_PATHS", "1", exact_options);
  Weight q{RandomHost(DType::kBF16, {48, 256}, 61), {}},
      k{RandomHost(DType::kBF16, {16, 256}, 62), {}},
      v{RandomHost(DType::kBF16, {16, 256}, 63), {}}, o{RandomHost(DType::kBF16, {40, 96}, 64), {}};
  TensorView qb = RandomHost(DType::kF32, {48}, 65);
  for (int64_t t : {2, 5, 8}) {
    SCOPED_TRACE(t);
    TensorView x = RandomHost(DType::kF32, {t, 256}, 66),
               x96 = RandomHost(DType::kF32, {t, 96}, 67);
    std::vector<TensorView> got, want, f32;
    for (int64_t n : {48, 16, 16, 40}) {
      got.push_back(*TensorView::Allocate(DType::kF32, {t, n}));
      want.push_back(*TensorView::Allocate(DType::kF32, {t, n}));
      f32.push_back(*TensorView::Allocate(DType::kF32, {t, n}));
    }
    ASSERT_TRUE(
        be->MatMulShared(x, {&q, &k, &v}, {&qb, nullptr, nullptr}, {&got[0], &got[1], &got[2]})
            .ok());
    ASSERT_TRUE(
        ref->MatMulShared(x, {&q, &k, &v}, {&qb, nullptr, nullptr}, {&want[0], &want[1], &want[2]})
            .ok());
    ASSERT_TRUE(
        exact->MatMulShared(x, {&q, &k, &v}, {&qb, nullptr, nullptr}, {&f32[0], &f32[1], &f32[2]})
            .ok());
    ASSERT_TRUE(be->MatMul(x96, o, nullptr, got[3]).ok());
    ASSERT_TRUE(ref->MatMul(x96, o, nullptr, want[3]).ok());
    ASSERT_TRUE(exact->MatMul(x96, o, nullptr, f32[3]).ok());
    for (int i = 0; i < 4; ++i) {
      SCOPED_TRACE(i);
      ExpectClose(got[i], want[i], 1e-2f);
      ExpectClose(f32[i], want[i], 1e-5f);
      float differ = 0.0f;
      for (int64_t e = 0; e < got[i].num_elements(); ++e)
        differ =
            std::max(differ, std::fabs(got[i].data_as<float>()[e] - f32[i].data_as<float>()[e]));
      EXPECT_GT(differ, 1e-6f * MaxAbs(want[i]));
    }
  }
}

// RopeAndStoreKv in one launch at R1-Distill-Qwen-7B's widths
// (28 query heads, 4 kv heads of 128), a decode row and a 40-row prompt, bf16 cache: q and k
// as the reference rotates them (1e-6), the cache as the reference stores them.
TEST(CudaBackendTest, FusedRopeAndStoreKvMatchesTheReference) {
  SKIP_WITHOUT_CUDA();
  auto ref = *CreateBackend("reference", {});
  auto be = CudaBackendWith("RRT_CUDA_FAST_PATHS", "1");
  const int64_t heads = 28, kv_heads = 4, d = 128, blocks = 8;
  std::vector<float> inv_freq(d / 2);
  for (int64_t i = 0; i < d / 2; ++i) inv_freq[i] = 1.0f / std::pow(1e6f, 2.0f * i / d);
  for (int64_t t : {1, 40}) {
    SCOPED_TRACE(t);
    TensorView q = RandomHost(DType::kF32, {t, heads, d}, 71),
               k = RandomHost(DType::kF32, {t, kv_heads, d}, 72),
               v = RandomHost(DType::kF32, {t, kv_heads, d}, 73);
    TensorView q_ref = RandomHost(DType::kF32, {t, heads, d}, 71),
               k_ref = RandomHost(DType::kF32, {t, kv_heads, d}, 72);
    PagedKvLayer cache{*TensorView::Allocate(DType::kBF16, {blocks, kKvBlockSize, kv_heads, d}),
                       *TensorView::Allocate(DType::kBF16, {blocks, kKvBlockSize, kv_heads, d})};
    PagedKvLayer cache_ref{
        *TensorView::Allocate(DType::kBF16, {blocks, kKvBlockSize, kv_heads, d}),
        *TensorView::Allocate(DType::kBF16, {blocks, kKvBlockSize, kv_heads, d})};
    std::vector<int32_t> pos;
    std::vector<int64_t> slots;
    for (int64_t r = 0; r < t; ++r) {
      pos.push_back(static_cast<int32_t>(90 + r));
      slots.push_back((r * 37) % (blocks * kKvBlockSize));
    }
    ASSERT_TRUE(
        be->RopeAndStoreKv(q, k, v, pos, inv_freq, RopeLayout::kHalfSplit, 1.0f, slots, cache)
            .ok());
    ASSERT_TRUE(ref->RopeAndStoreKv(q_ref, k_ref, v, pos, inv_freq, RopeLayout::kHalfSplit, 1.0f,
                                    slots, cache_ref)
                    .ok());
    ExpectClose(q, q_ref, 1e-6f);
    ExpectClose(k, k_ref, 1e-6f);
    for (const auto& [got, want] :
         {std::pair{&cache.k, &cache_ref.k}, std::pair{&cache.v, &cache_ref.v}}) {
      const auto* g = static_cast<const uint16_t*>(got->data());
      const auto* w = static_cast<const uint16_t*>(want->data());
      int64_t differ = 0;  // bf16 values: the same, or one unit apart where rounding tipped
      for (int64_t i = 0; i < got->num_elements(); ++i)
        differ += std::abs(int(g[i]) - int(w[i])) > 1;
      EXPECT_EQ(differ, 0);
    }
  }
}

// SiluMulMatMul of a 40-row prompt forms the bf16 product in one pass; the same values as
// SiluMul then the bf16 prompt GEMM (RRT_CUDA_FAST_PATHS=0) (the same cuBLAS call on the
// same bf16 input: 1e-6).
TEST(CudaBackendTest, FusedSiluMulMatMulMatchesTheTwoSteps) {
  SKIP_WITHOUT_CUDA();
  auto plain = CudaBackendWith("RRT_CUDA_FAST_PATHS", "0");
  auto be = CudaBackendWith("RRT_CUDA_FAST_PATHS", "1");
  Weight w{RandomHost(DType::kBF16, {72, 256}, 81), {}};
  TensorView gate = RandomHost(DType::kF32, {40, 256}, 82),
             up = RandomHost(DType::kF32, {40, 256}, 83);
  TensorView gate2 = RandomHost(DType::kF32, {40, 256}, 82);
  TensorView got = *TensorView::Allocate(DType::kF32, {40, 72}),
             want = *TensorView::Allocate(DType::kF32, {40, 72});
  ASSERT_TRUE(be->SiluMulMatMul(gate, up, w, got).ok());
  ASSERT_TRUE(plain->SiluMulMatMul(gate2, up, w, want).ok());
  ExpectClose(got, want, 1e-6f);
}

// RRT_CUDA_EXPERIMENTAL=1: a prompt (64 rows or more) of an fp8 weight converts the
// weight to bf16 (block scales applied) for the tensor-core GEMM. Against the reference: each
// product's error is bf16 rounding of x and of the scaled weight, so 2^-8 of the sum of
// |x w| bounds every output; below 64 rows, and with exact activations, the f32 tiled
// kernel as before (1e-5). n and k off the 128 blocks; k % 4 != 0 takes the one-byte loads.
TEST(CudaBackendTest, Fp8PromptOnTensorCoresStaysWithinBf16Rounding) {
  SKIP_WITHOUT_CUDA();
  auto experimental = CudaBackendWith("RRT_CUDA_EXPERIMENTAL", "1");
  BackendOptions exact_options;
  exact_options.exact_activations = true;
  auto exact = CudaBackendWith("RRT_CUDA_EXPERIMENTAL", "1", exact_options);
  auto ref = *CreateBackend("reference", {});
  for (auto [t, n, k] : {std::tuple<int64_t, int64_t, int64_t>{64, 300, 1000},
                         {200, 130, 258},
                         {63, 300, 1000},
                         {96, 257, 4100}}) {
    SCOPED_TRACE(::testing::Message() << "t=" << t << " n=" << n << " k=" << k);
    Weight w{RandomHost(DType::kF8E4M3, {n, k}, 81), {}};
    w.scale_inv = RandomHost(DType::kF32, {Fp8ScaleBlocks(n), Fp8ScaleBlocks(k)}, 82);
    TensorView bias = RandomHost(DType::kBF16, {n}, 83);
    TensorView x = RandomHost(DType::kF32, {t, k}, 84);
    TensorView y_ref = *TensorView::Allocate(DType::kF32, {t, n});
    ASSERT_TRUE(ref->MatMul(x, w, &bias, y_ref).ok());
    std::vector<float> wf(static_cast<size_t>(n * k));
    ConvertToF32(DType::kF8E4M3, w.data.data(), wf.data(), wf.size());
    for (Backend* be : {experimental.get(), exact.get()}) {
      const bool rounded = be == experimental.get() && t >= 64;
      TensorView y = *TensorView::Allocate(DType::kF32, {t, n});
      ASSERT_TRUE(be->MatMul(x, w, &bias, y).ok());
      for (int64_t r = 0; r < t; ++r) {
        for (int64_t j = 0; j < n; ++j) {
          double mag = 0;
          for (int64_t i = 0; i < k; ++i) {
            const float scale =
                w.scale_inv.data_as<float>()[(j / 128) * w.scale_inv.dim(1) + i / 128];
            mag += std::fabs(static_cast<double>(x.data_as<float>()[r * k + i]) * wf[j * k + i] *
                             scale);
          }
          ASSERT_NEAR(y.data_as<float>()[r * n + j], y_ref.data_as<float>()[r * n + j],
                      (rounded ? std::ldexp(1.0, -8) : 1e-5) * mag + 1e-5)
              << (rounded ? "bf16 tensor cores" : "f32 kernel") << " at " << r << "," << j;
        }
      }
    }
  }
}

// RRT_CUDA_EXPERIMENTAL=1: MatMulAddRmsNorm of one decode row on device operands runs the
// residual step and the norm in the GEMV's last block. Against the plain backend's two
// steps: y and the residual bit for bit (the same sums and adds), the norm within 1e-6
// (its squares summed in another order); for f32, bf16 and fp8 weights, with and without
// up, k = 256 (one warp a row) and 1536 (four), n = 1000 (a partial block) and 3584, three
// calls in a row (the block counter must be back at zero after each).
TEST(CudaBackendTest, FusedMatMulAddRmsNormMatchesTheTwoSteps) {
  SKIP_WITHOUT_CUDA();
  auto plain = CudaBackendWith("RRT_CUDA_EXPERIMENTAL", "0");
  auto fused = CudaBackendWith("RRT_CUDA_EXPERIMENTAL", "1");
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF8E4M3}) {
    for (int64_t k : {256, 1536}) {
      for (int64_t n : {1000, 3584}) {
        for (bool with_up : {false, true}) {
          SCOPED_TRACE(::testing::Message()
                       << DTypeName(dtype) << " k=" << k << " n=" << n << " up=" << with_up);
          Weight w{RandomHost(dtype, {n, k}, 91), {}};
          if (dtype == DType::kF8E4M3) {
            w.scale_inv = RandomHost(DType::kF32, {Fp8ScaleBlocks(n), Fp8ScaleBlocks(k)}, 92);
          }
          TensorView gain = RandomHost(DType::kF32, {n}, 93);
          std::vector<TensorView> results;  // per backend: y, residual, normed of each call
          for (Backend* be : {plain.get(), fused.get()}) {
            TensorView x = *be->Allocate(DType::kF32, {1, k}),
                       up = *be->Allocate(DType::kF32, {1, k});
            TensorView y = *be->Allocate(DType::kF32, {1, n}),
                       residual = *be->Allocate(DType::kF32, {1, n}),
                       normed = *be->Allocate(DType::kF32, {1, n});
            ASSERT_TRUE(be->Copy(RandomHost(DType::kF32, {1, n}, 94), residual).ok());
            for (int call = 0; call < 3; ++call) {
              ASSERT_TRUE(be->Copy(RandomHost(DType::kF32, {1, k}, 95 + call), x).ok());
              ASSERT_TRUE(be->Copy(RandomHost(DType::kF32, {1, k}, 98 + call), up).ok());
              ASSERT_TRUE(be->MatMulAddRmsNorm(x, with_up ? &up : nullptr, w, y, residual, gain,
                                               1e-6f, normed)
                              .ok());
              for (const TensorView* t : {&y, &residual, &normed}) {
                results.push_back(*TensorView::Allocate(DType::kF32, {1, t->dim(1)}));
                ASSERT_TRUE(be->Copy(*t, results.back()).ok());
              }
            }
          }
          const size_t half = results.size() / 2;
          for (size_t i = 0; i < half; ++i) {
            SCOPED_TRACE(i);
            if (i % 3 == 2) {
              ExpectClose(results[half + i], results[i], 1e-6f);
            } else {
              EXPECT_EQ(
                  std::memcmp(results[half + i].data(), results[i].data(), results[i].byte_size()),
                  0);
            }
          }
        }
      }
    }
  }
}

// RRT_CUDA_EXPERIMENTAL=silu_gemv: GateUpMatMul of one decode row runs gate and up as one
// GEMV launch that writes silu(gate) * up, and says so (true); the plain backend gives the
// two projections (false), then SiluMul. The same sums and the same silu: within 1e-6 of the
// largest. f32, bf16, f16 and fp8 weights; n = 1000 (a GEMV split over 4 warps a row, a
// partial last block) and 5000 (one warp a row); device and host operands.
TEST(CudaBackendTest, FusedGateUpMatMulMatchesTheTwoSteps) {
  SKIP_WITHOUT_CUDA();
  auto plain = CudaBackendWith("RRT_CUDA_EXPERIMENTAL", "0");
  auto fused = CudaBackendWith("RRT_CUDA_EXPERIMENTAL", "silu_gemv");
  const int64_t k = 1536;
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16, DType::kF8E4M3}) {
    // One row (any dtype), and a group of 4 rows, which bf16 weights run on tensor cores
    // (both backends round its activations to bf16 alike).
    for (int64_t t : {1, 4}) {
      for (int64_t n : {1000, 5000}) {
        for (bool on_device : {true, false}) {
          SCOPED_TRACE(::testing::Message() << DTypeName(dtype) << " t=" << t << " n=" << n
                                            << (on_device ? " device" : " host") << " operands");
          Weight gate_w{RandomHost(dtype, {n, k}, 61), {}}, up_w{RandomHost(dtype, {n, k}, 62), {}};
          if (dtype == DType::kF8E4M3) {
            gate_w.scale_inv = RandomHost(DType::kF32, {Fp8ScaleBlocks(n), Fp8ScaleBlocks(k)}, 63);
            up_w.scale_inv = RandomHost(DType::kF32, {Fp8ScaleBlocks(n), Fp8ScaleBlocks(k)}, 64);
          }
          std::vector<TensorView> products;
          for (Backend* be : {plain.get(), fused.get()}) {
            auto make = [&](int64_t cols) {
              return on_device ? *be->Allocate(DType::kF32, {t, cols})
                               : *TensorView::Allocate(DType::kF32, {t, cols});
            };
            TensorView x = make(k), gate = make(n), up = make(n);
            ASSERT_TRUE(be->Copy(RandomHost(DType::kF32, {t, k}, 65), x).ok());
            absl::StatusOr<bool> formed = be->GateUpMatMul(x, gate_w, up_w, gate, up);
            ASSERT_TRUE(formed.ok()) << formed.status();
            EXPECT_EQ(*formed, be == fused.get() && (t == 1 || dtype == DType::kBF16));
            if (!*formed) ASSERT_TRUE(be->SiluMul(gate, up, gate).ok());
            products.push_back(*TensorView::Allocate(DType::kF32, {t, n}));
            ASSERT_TRUE(be->Copy(gate, products.back()).ok());
          }
          ExpectClose(products[1], products[0], t == 1 ? 1e-6f : 1e-5f);
        }
      }
    }
  }
}

struct ModelCase {
  const char* name;
  const char* config;
  bool fp8;
};

const ModelCase kModels[] = {
    {"qwen2",
     R"({"model_type":"qwen2","hidden_size":128,"num_hidden_layers":2,"num_attention_heads":4,
      "num_key_value_heads":2,"intermediate_size":256,"vocab_size":500,"max_position_embeddings":4096,
      "rms_norm_eps":1e-6,"tie_word_embeddings":true,"bos_token_id":1,"eos_token_id":2})",
     false},
    {"llama3",
     R"({"model_type":"llama","hidden_size":128,"num_hidden_layers":2,"num_attention_heads":4,
      "num_key_value_heads":1,"intermediate_size":256,"vocab_size":500,"max_position_embeddings":4096,
      "rms_norm_eps":1e-5,"rope_theta":500000.0,"rope_scaling":{"rope_type":"llama3","factor":8.0,
      "low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":1024},
      "bos_token_id":1,"eos_token_id":2})",
     false},
    {"deepseek_v3_fp8", R"({"model_type":"deepseek_v3","hidden_size":256,"num_hidden_layers":2,
      "first_k_dense_replace":1,"intermediate_size":256,"moe_intermediate_size":128,"num_attention_heads":4,
      "num_key_value_heads":4,"q_lora_rank":128,"kv_lora_rank":64,"qk_nope_head_dim":32,"qk_rope_head_dim":16,
      "v_head_dim":32,"n_routed_experts":8,"n_shared_experts":1,"num_experts_per_tok":2,"n_group":2,
      "topk_group":1,"routed_scaling_factor":2.5,"scoring_func":"sigmoid","topk_method":"noaux_tc",
      "norm_topk_prob":true,"moe_layer_freq":1,"vocab_size":500,"rms_norm_eps":1e-6,"rope_theta":10000.0,
      "max_position_embeddings":4096,"bos_token_id":1,"eos_token_id":2})",
     true},
};

void PrintTo(const ModelCase& c, std::ostream* os) { *os << c.name; }

class CudaModelTest : public ::testing::TestWithParam<ModelCase> {
 protected:
  void SetUp() override {
    if (!HaveCuda()) GTEST_SKIP() << "no CUDA device runs our kernels here";
    testing::WriteFile(tmp_.file("config.json"), GetParam().config);
    SynthOptions o;
    o.config_path = tmp_.file("config.json");
    o.out_dir = tmp_.file("model");
    o.seed = 11;
    o.fp8 = GetParam().fp8;
    ASSERT_TRUE(WriteSyntheticModel(o).ok());
    dir_ = o.out_dir;
  }

  std::shared_ptr<const Model> Load(const std::string& backend) {
    LoadOptions lo;
    lo.backend = backend;
    lo.exact_activations = true;
    auto m = Model::Load(dir_, lo);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? std::shared_ptr<const Model>(std::move(*m)) : nullptr;
  }

  testing::TempDir tmp_;
  std::string dir_;
};

TEST_P(CudaModelTest, AllPositionLogitsMatchTheCpuBackend) {
  auto gpu = Load("cuda"), cpu = Load("cpu");
  ASSERT_TRUE(gpu && cpu);
  std::vector<int32_t> tokens;
  for (int i = 0; i < 70; ++i) tokens.push_back((i * 37 + 5) % 500);
  Batch b;
  for (size_t i = 0; i < tokens.size(); ++i) b.Add(tokens[i], static_cast<int32_t>(i), 0, true);
  SessionOptions so;
  so.max_tokens = 128;
  auto got = (*gpu->NewSession(so))->Forward(b);
  auto want = (*cpu->NewSession(so))->Forward(b);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(want.ok()) << want.status();
  for (size_t r = 0; r < tokens.size(); ++r) {
    absl::Span<const float> g = got->Row(r), w = want->Row(r);
    float scale = 0.0f;
    for (float v : w) scale = std::max(scale, std::fabs(v));
    for (size_t i = 0; i < w.size(); ++i)
      ASSERT_NEAR(g[i], w[i], 1e-4f * scale) << "row " << r << " logit " << i;
  }
}

TEST_P(CudaModelTest, GreedyGenerationsAreIdentical) {
  LoadOptions lo;
  lo.exact_activations = true;
  lo.backend = "cuda";
  auto gpu = Generator::Load(dir_, lo);
  lo.backend = "cpu";
  auto cpu = Generator::Load(dir_, lo);
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  GenerateOptions options;
  options.sampling.greedy = true;
  options.max_new_tokens = 24;
  const std::vector<int32_t> prompt = {1, 17, 250, 33, 480, 7, 99};
  auto a = (*gpu)->GenerateFromTokens(prompt, options);
  auto b = (*cpu)->GenerateFromTokens(prompt, options);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->completions[0].tokens, b->completions[0].tokens);
}

INSTANTIATE_TEST_SUITE_P(Models, CudaModelTest, ::testing::ValuesIn(kModels),
                         [](const ::testing::TestParamInfo<ModelCase>& i) {
                           return std::string(i.param.name);
                         });

}  // namespace
}  // namespace reasonrt
