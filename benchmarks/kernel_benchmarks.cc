// Micro-benchmarks of the CPU backend's matmul per weight dtype: decode GEMV (1 row,
// bytes/s is the number to compare with the read bandwidth) and prompt GEMM (128 rows,
// FLOP/s). Shapes are R1-Distill-Qwen-1.5B's MLP: [8960, 1536] and [1536, 8960].
//
//   build/benchmarks/kernel_benchmarks --benchmark_filter=Gemv
#include <algorithm>
#include <random>

#include "benchmark/benchmark.h"
#include "lib/backends/cpu/gemv_bf16_dot.h"
#include "lib/backends/cpu/gemv_kernels.h"
#include "lib/core/thread_pool.h"
#include "reasonrt/backend.h"

namespace reasonrt {
namespace {

// Enough weight copies to exceed the last-level cache (32 MiB here) many times over, so
// decode numbers measure DRAM streaming as a real forward pass does.
constexpr int64_t kColdBytes = int64_t{512} << 20;

struct Setup {
  TensorView x, y, scales;
  std::vector<TensorView> w;
  std::unique_ptr<Backend> backend;
};

Setup Make(DType dtype, int64_t m, int64_t n, int64_t k, int64_t bytes = kColdBytes) {
  Setup s;
  s.backend = *CreateBackend("cpu", {});
  s.x = *TensorView::Allocate(DType::kF32, {m, k});
  s.y = *TensorView::Allocate(DType::kF32, {m, n});
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t i = 0; i < m * k; ++i) s.x.mutable_data_as<float>()[i] = u(rng);
  std::vector<float> tmp(n * k);
  for (float& v : tmp) v = u(rng);
  const int64_t copies = std::max<int64_t>(1, bytes / (n * k * static_cast<int64_t>(DTypeSize(dtype))));
  for (int64_t c = 0; c < copies; ++c) {
    // Distinct contents per copy, so no page of one copy equals a page of another (a
    // hypervisor merging identical pages would turn DRAM reads into cache hits). FP8 as a
    // checkpoint stores it, each block's largest values near 448.
    for (float& v : tmp) v = u(rng) * (dtype == DType::kF8E4M3 ? 448.0f : 1.0f);
    s.w.push_back(*TensorView::Allocate(dtype, {n, k}));
    ConvertFromF32(dtype, tmp.data(), s.w.back().mutable_data(), tmp.size());
  }
  if (dtype == DType::kF8E4M3) {
    s.scales = *TensorView::Allocate(DType::kF32, {Fp8ScaleBlocks(n), Fp8ScaleBlocks(k)});
    for (int64_t i = 0; i < s.scales.num_elements(); ++i) s.scales.mutable_data_as<float>()[i] = 0.01f;
  }
  return s;
}

void BM_MatMul(benchmark::State& state, DType dtype, int64_t m) {
  const int64_t n = state.range(0), k = state.range(1);
  Setup s = Make(dtype, m, n, k);
  size_t next = 0;
  for (auto _ : state) {
    const Weight w{s.w[next], s.scales};
    next = (next + 1) % s.w.size();
    auto status = s.backend->MatMul(s.x, w, nullptr, s.y);
    if (!status.ok()) state.SkipWithError(std::string(status.message()).c_str());
    benchmark::DoNotOptimize(s.y.data());
  }
  state.SetBytesProcessed(state.iterations() * s.w[0].byte_size());
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * m * n * k * state.iterations() / 1e9,
                                                 benchmark::Counter::kIsRate);
}

// A decode row's gate and up projections of the 1.5B's MLP ([8960, 1536] each) and
// silu(gate) * up: GateUpMatMul (the product per thread range, one pass) against
// MatMulShared then SiluMul. Bytes are both weights'.
void BM_GateUp(benchmark::State& state, bool gate_up, int64_t m) {
  const int64_t n = 8960, k = 1536;
  Setup s = Make(DType::kBF16, m, n, k);
  const TensorView up = *TensorView::Allocate(DType::kF32, {m, n});
  size_t next = 0;
  for (auto _ : state) {
    const Weight g{s.w[next], {}}, u{s.w[(next + 1) % s.w.size()], {}};
    next = (next + 2) % s.w.size();
    absl::Status status;
    if (gate_up) {
      absl::StatusOr<bool> formed = s.backend->GateUpMatMul(s.x, g, u, s.y, up);
      status = !formed.ok() ? formed.status()
               : *formed    ? absl::OkStatus()
                            : s.backend->SiluMul(s.y, up, s.y);
    } else {
      status = s.backend->MatMulShared(s.x, {&g, &u}, {nullptr, nullptr}, {&s.y, &up});
      if (status.ok()) status = s.backend->SiluMul(s.y, up, s.y);
    }
    if (!status.ok()) state.SkipWithError(std::string(status.message()).c_str());
    benchmark::DoNotOptimize(s.y.data());
  }
  state.SetBytesProcessed(state.iterations() * 2 * s.w[0].byte_size());
}
BENCHMARK_CAPTURE(BM_GateUp, GateUpMatMul, true, 1)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_GateUp, MatMulShared_SiluMul, false, 1)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_GateUp, GateUpMatMul4, true, 4)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_GateUp, MatMulShared_SiluMul4, false, 4)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// One weight copy that stays in the last-level cache ([2048, 1536] bf16: 6 MiB), read again
// and again: the kernel's compute ceiling, with no DRAM stream to wait on.
void BM_MatMulHot(benchmark::State& state, DType dtype, int64_t m) {
  const int64_t n = state.range(0), k = state.range(1);
  Setup s = Make(dtype, m, n, k, /*bytes=*/0);
  const Weight w{s.w[0], s.scales};
  for (auto _ : state) {
    auto status = s.backend->MatMul(s.x, w, nullptr, s.y);
    if (!status.ok()) state.SkipWithError(std::string(status.message()).c_str());
    benchmark::DoNotOptimize(s.y.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * m * n * k * state.iterations() / 1e9,
                                                 benchmark::Counter::kIsRate);
}

// The same cold buffers read by a plain SIMD sum on the same threads: the roofline for
// the decode rows above.
void BM_StreamRead(benchmark::State& state) {
  Setup s = Make(DType::kF32, 1, state.range(0), state.range(1));
  std::unique_ptr<ThreadPool> pool = std::make_unique<ThreadPool>(0);
  size_t next = 0;
  for (auto _ : state) {
    const float* p = s.w[next].data_as<float>();
    next = (next + 1) % s.w.size();
    const int64_t n = s.w[0].num_elements();
    pool->ParallelFor(n, 1 << 16, [&](int64_t b, int64_t e) {
      benchmark::DoNotOptimize(cpu::StreamSum(p + b, e - b));
    });
  }
  state.SetBytesProcessed(state.iterations() * s.w[0].byte_size());
}
BENCHMARK(BM_StreamRead)->Args({8960, 1536})->Unit(benchmark::kMicrosecond)->UseRealTime();

// One thread's GEMV kernel called directly (no thread pool), on a weight that stays in L2
// ([256, 1536] bf16: 768 KiB; bytes 0) or on copies far larger than the caches: the
// kernel's own compute rate, and what streaming from DRAM costs it, to hold against the
// FMA peak below (all on one core).
void BM_GemvKernel1Thread(benchmark::State& state, DType dtype, int64_t m) {
  const int64_t n = state.range(0), k = state.range(1);
  Setup s = Make(dtype, m, n, k, state.range(2));
  cpu::GemvInput in;
  cpu::PrepareGemvInput(s.x.data_as<float>(), m, k, dtype == DType::kBF16, &in);
  size_t next = 0;
  for (auto _ : state) {
    const void* w = s.w[next].data();
    next = (next + 1) % s.w.size();
    cpu::Gemv(dtype, w, s.scales.data_as<float>(), in, 0, n, s.y.mutable_data_as<float>(), n);
    benchmark::DoNotOptimize(s.y.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * m * n * k * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(BM_GemvKernel1Thread, Gemv8_bf16, DType::kBF16, 8)
    ->Args({256, 1536, 0})
    ->Args({4096, 1536, kColdBytes})
    ->Args({1536, 8960, kColdBytes})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_GemvKernel1Thread, Gemv4_bf16, DType::kBF16, 4)
    ->Args({256, 1536, 0})
    ->Unit(benchmark::kMicrosecond);
// One decode row of FP8 (block scales) on one thread: weights in L2 (256 rows, its
// arithmetic alone) and cycled past the caches (its stream).
BENCHMARK_CAPTURE(BM_GemvKernel1Thread, Gemv1_f8_e4m3, DType::kF8E4M3, 1)
    ->Args({256, 1536, 0})
    ->Args({4096, 1536, kColdBytes})
    ->Args({1536, 8960, kColdBytes})
    ->Unit(benchmark::kMicrosecond);

// The same for the AVX512-BF16 dot kernels, against the vdpbf16ps peak below: bf16 weights
// with activations rounded to bf16, FP8 with one row split hi + lo (decode of one
// sequence; against Gemv1_f8_e4m3 above, the f32 kernel it replaces there) and 8 rounded.
void BM_GemvDot1Thread(benchmark::State& state, DType dtype, int64_t m, bool exact) {
  if (!cpu::HasBf16DotKernel()) return state.SkipWithError("no AVX512-BF16 here");
  const int64_t n = state.range(0), k = state.range(1);
  Setup s = Make(dtype, m, n, k, state.range(2));
  cpu::SplitActivations split;
  cpu::SplitBf16(s.x.data_as<float>(), m, k, exact, &split);
  size_t next = 0;
  for (auto _ : state) {
    const void* w = s.w[next].data();
    next = (next + 1) % s.w.size();
    if (dtype == DType::kBF16) {
      cpu::GemvBf16Dot(static_cast<const uint16_t*>(w), split, 0, n, s.y.mutable_data_as<float>(),
                       n);
    } else {
      cpu::GemvFp8Dot(static_cast<const uint8_t*>(w), s.scales.data_as<float>(), split, 0, n,
                      s.y.mutable_data_as<float>(), n);
    }
    benchmark::DoNotOptimize(s.y.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * m * n * k * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(BM_GemvDot1Thread, Gemv8_bf16, DType::kBF16, 8, false)
    ->Args({256, 1536, 0})
    ->Args({4096, 1536, kColdBytes})
    ->Args({1536, 8960, kColdBytes})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_GemvDot1Thread, Gemv1_f8_exact, DType::kF8E4M3, 1, true)
    ->Args({256, 1536, 0})
    ->Args({4096, 1536, kColdBytes})
    ->Args({1536, 8960, kColdBytes})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_GemvDot1Thread, Gemv8_f8, DType::kF8E4M3, 8, false)
    ->Args({256, 1536, 0})
    ->Args({1536, 8960, kColdBytes})
    ->Unit(benchmark::kMicrosecond);

// One core's multiply-add peak (independent chains, no memory): f32 FMA at the kernels'
// vector width, the roofline of the f32 GEMV rows above, or vdpbf16ps, the dot kernel's.
void BM_MultiplyAddPeak(benchmark::State& state, bool bf16_dot) {
  if (bf16_dot && !cpu::HasBf16DotKernel()) return state.SkipWithError("no AVX512-BF16 here");
  int64_t multiply_adds = 0;
  float sink = 0;
  for (auto _ : state) {
    multiply_adds += bf16_dot ? cpu::Bf16DotMultiplyAddLoop(int64_t{1} << 18, &sink)
                              : cpu::MultiplyAddLoop(int64_t{1} << 18, &sink);
  }
  benchmark::DoNotOptimize(sink);
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * multiply_adds / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(BM_MultiplyAddPeak, FmaPeak, false)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_MultiplyAddPeak, Bf16DotPeak, true)->Unit(benchmark::kMicrosecond);

void Shapes(benchmark::internal::Benchmark* b) {
  b->Args({8960, 1536})->Args({1536, 8960})->Unit(benchmark::kMicrosecond)->UseRealTime();
}

BENCHMARK_CAPTURE(BM_MatMul, Gemv_bf16, DType::kBF16, 1)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_MatMul, Gemv_f16, DType::kF16, 1)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_MatMul, Gemv_f8_e4m3, DType::kF8E4M3, 1)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_MatMul, Gemv_f32, DType::kF32, 1)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_MatMul, Gemv4_bf16, DType::kBF16, 4)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_MatMul, Gemv4_f8_e4m3, DType::kF8E4M3, 4)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_MatMul, Gemv8_f8_e4m3, DType::kF8E4M3, 8)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_MatMul, Gemv16_f8_e4m3, DType::kF8E4M3, 16)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_MatMul, Gemv32_f8_e4m3, DType::kF8E4M3, 32)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_MatMul, Gemv8_bf16, DType::kBF16, 8)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_MatMulHot, Gemv8_bf16_cached, DType::kBF16, 8)
    ->Args({2048, 1536})
    ->Args({512, 1536})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_MatMulHot, Gemv4_bf16_cached, DType::kBF16, 4)
    ->Args({2048, 1536})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_MatMul, Gemm128_bf16, DType::kBF16, 128)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_MatMul, Gemm128_f32, DType::kF32, 128)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_MatMul, Gemm128_f8_e4m3, DType::kF8E4M3, 128)->Apply(Shapes);

// One decode row's attention for one layer of `heads` query heads over `kv_heads` kv heads
// of 128 dims (R1-Distill-Qwen-1.5B: 12 over 2) after `depth` cached positions, the cache in
// `dtype`; bytes: the layer's keys and values read once. The cache of 28 layers (a token's
// decode) does not fit the L3, so a copy per layer is cycled through, as decode does.
void BM_AttentionDecode(benchmark::State& state, DType dtype, int64_t heads, int64_t kv_heads) {
  const int64_t depth = state.range(0), d = 128, layers = 28;
  const int64_t blocks = (depth + kKvBlockSize - 1) / kKvBlockSize;
  std::unique_ptr<Backend> be = *CreateBackend("cpu", {});
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<PagedKvLayer> caches;
  for (int64_t l = 0; l < layers; ++l) {
    PagedKvLayer c{*TensorView::Allocate(dtype, {blocks, kKvBlockSize, kv_heads, d}),
                   *TensorView::Allocate(dtype, {blocks, kKvBlockSize, kv_heads, d})};
    for (TensorView* t : {&c.k, &c.v}) {
      std::vector<float> tmp(static_cast<size_t>(t->num_elements()));
      for (float& x : tmp) x = u(rng);
      ConvertFromF32(dtype, tmp.data(), t->mutable_data(), tmp.size());
    }
    caches.push_back(c);
  }
  std::vector<int32_t> table(static_cast<size_t>(blocks));
  for (int64_t b = 0; b < blocks; ++b) table[b] = static_cast<int32_t>(b);
  TensorView q = *TensorView::Allocate(DType::kF32, {1, heads, d});
  for (int64_t i = 0; i < q.num_elements(); ++i) q.mutable_data_as<float>()[i] = u(rng);
  TensorView out = *TensorView::Allocate(DType::kF32, {1, heads, d});
  const AttentionSequence seq{table, 0, 1, depth - 1};
  size_t next = 0;
  for (auto _ : state) {
    auto status = be->Attention(q, caches[next], {&seq, 1}, 0.088f, out);
    if (!status.ok()) state.SkipWithError(std::string(status.message()).c_str());
    next = (next + 1) % caches.size();
  }
  state.SetBytesProcessed(state.iterations() * 2 * depth * kv_heads * d *
                          static_cast<int64_t>(DTypeSize(dtype)));
}
BENCHMARK_CAPTURE(BM_AttentionDecode, f32, DType::kF32, 12, 2)
    ->Arg(1024)->Arg(4096)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_AttentionDecode, bf16, DType::kBF16, 12, 2)
    ->Arg(4096)->Unit(benchmark::kMicrosecond)->UseRealTime();
// R1-Distill-Llama-8B's attention (32 query heads over 8 kv heads): 4x the cache a position.
BENCHMARK_CAPTURE(BM_AttentionDecode, llama8b_f32, DType::kF32, 32, 8)
    ->Arg(1024)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace reasonrt

BENCHMARK_MAIN();
