// The cuda backend's kernels on the GPU (built with CUDA; every benchmark skips where no
// device runs our kernels):
// - CopyBandwidth: a device-to-device copy, bytes read plus written: the roofline.
// - Gemv: the decode GEMV on R1-Distill-Qwen-7B's weights (bf16), 1 and 8 activation rows,
//   each way of splitting a weight row over warps (0: the kernel's own choice), and 2 or 8
//   rows on tensor cores (activations rounded to bf16, the default for groups). Weight
//   bytes per second, against CopyBandwidth. Each shape cycles over copies of its weights
//   that together exceed the L2 cache, so that every launch streams from memory.
// - PromptAttention: one layer's attention over a 512-token prompt at the 7B's widths
//   (28 query heads, 4 kv heads, 128 dims) through the backend: on tensor cores (cuBLAS)
//   and with exact activations (the f32 tiled kernel), f32 and bf16 KV caches.
// - Fp8PromptMatMul: a prompt's matmul of an fp8 weight through the backend, the f32 tiled
//   kernel against the bf16 tensor-core path RRT_CUDA_EXPERIMENTAL=1 turns on.
// - SampleTokens: a decode step's draws from rows of 151,936 device logits (greedy, and
//   R1's temperature 0.6 with top-p 0.95), on the GPU (RRT_CUDA_EXPERIMENTAL=1) against
//   copying the logits to the host and drawing there; microseconds a call, as a step
//   waits for them.
// - GateUpMatMul: one decode row, and a group of 8 (tensor cores), of the 7B's gate and up
//   (bf16, 271 MB, more than the L2) through the backend, then silu(gate) * up: the product
//   in the GEMV's own launch (RRT_CUDA_EXPERIMENTAL=silu_gemv) against the two projections
//   and SiluMul. Weight bytes per second.
// - ExpertGateUpMatMul: a decode step's 8 routed rows of Moonlight's experts (64 of them,
//   gate and up [1408, 2048] each, bf16; 738 MB, the calls cycling over all of them) with
//   ids on the device (RRT_CUDA_EXPERIMENTAL=moe): gate and up in one launch that writes
//   silu(gate) * up, against two ExpertMatMuls and SiluMul. Weight bytes per second.
//
//   build/benchmarks/cuda_benchmarks [--benchmark_filter=Gemv]
#include <cuda_runtime.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "lib/backends/cuda/kernels.h"
#include "reasonrt/backend.h"

namespace reasonrt {
namespace {

bool HaveGpu() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return count > 0;
}

// Device memory freed on scope exit; null where cudaMalloc failed.
std::shared_ptr<void> DeviceBytes(size_t bytes) {
  void* p = nullptr;
  if (cudaMalloc(&p, bytes) != cudaSuccess) return nullptr;
  cudaMemset(p, 0, bytes);  // zeros are valid weights and activations for timing
  return std::shared_ptr<void>(p, [](void* q) { cudaFree(q); });
}

// GPU time of `calls` runs of `body` on `stream`, in seconds.
template <typename F>
double TimeOnStream(cudaStream_t stream, int calls, F body) {
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaEventRecord(start, stream);
  for (int i = 0; i < calls; ++i) body(i);
  cudaEventRecord(stop, stream);
  cudaEventSynchronize(stop);
  float ms = 0;
  cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms / 1e3;
}

void BM_CopyBandwidth(benchmark::State& state) {
  if (!HaveGpu()) return state.SkipWithError("no CUDA device");
  const size_t bytes = size_t{1} << 30;
  auto a = DeviceBytes(bytes), b = DeviceBytes(bytes);
  if (!a || !b) return state.SkipWithError("out of device memory");
  for (auto _ : state) {
    state.SetIterationTime(TimeOnStream(nullptr, 4, [&](int) {
      cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, nullptr);
    }));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 4 * 2 * bytes);
}
BENCHMARK(BM_CopyBandwidth)->UseManualTime()->Unit(benchmark::kMillisecond);

struct GemvShape {
  const char* name;
  std::vector<int64_t> rows;  // per segment
  int64_t k;
};
// R1-Distill-Qwen-7B: hidden 3584, intermediate 18944, 28 q / 4 kv heads of 128, vocab 152064.
const GemvShape kShapes[] = {
    {"qkv", {3584, 512, 512}, 3584}, {"o", {3584}, 3584},         {"gate_up", {18944, 18944}, 3584},
    {"down", {3584}, 18944},         {"lm_head", {152064}, 3584},
};

void BM_Gemv(benchmark::State& state) {
  if (!HaveGpu()) return state.SkipWithError("no CUDA device");
  const GemvShape& shape = kShapes[state.range(0)];
  const int64_t t = state.range(1);
  const int split = static_cast<int>(state.range(2));
  const bool mma = state.range(3) != 0;
  state.SetLabel(std::string(shape.name) + " rows=" + std::to_string(t) +
                 " split=" + (split == 0 ? std::string("auto") : std::to_string(split)) +
                 (mma ? " tensor cores" : ""));
  int64_t n_all = 0, n_max = 0;
  for (int64_t n : shape.rows) n_all += n, n_max = std::max(n_max, n);
  const size_t weight_bytes = static_cast<size_t>(n_all * shape.k) * 2;
  const int copies = static_cast<int>(std::max<size_t>(1, (size_t{512} << 20) / weight_bytes));
  auto w = DeviceBytes(weight_bytes * copies);
  auto x = DeviceBytes(static_cast<size_t>(t * shape.k) * sizeof(float));
  auto y = DeviceBytes(static_cast<size_t>(t * n_all) * sizeof(float));
  if (!w || !x || !y) return state.SkipWithError("out of device memory");
  auto batch_of = [&](int copy) {
    cuda::GemvBatch b{};
    b.count = static_cast<int>(shape.rows.size());
    b.split = split;
    b.weights_settled = true;  // as for host weights' device copies
    b.round_activations = mma;
    const auto* base = static_cast<const uint8_t*>(w.get()) + copy * weight_bytes;
    int64_t offset = 0;
    for (int s = 0; s < b.count; ++s) {
      const int64_t n = shape.rows[s];
      cuda::GemvSegment& g = b.segments[s];
      g.w = base + offset * shape.k * 2, g.n = n, g.bias_dtype = DType::kF32;
      g.y = static_cast<float*>(y.get()) + t * offset;
      b.first_row[s + 1] = b.first_row[s] + n;
      offset += n;
    }
    return b;
  };
  const int calls = std::max(8, copies);
  for (auto _ : state) {
    state.SetIterationTime(TimeOnStream(nullptr, calls, [&](int i) {
      cuda::Gemv(static_cast<const float*>(x.get()), t, shape.k, DType::kBF16, batch_of(i % copies),
                 nullptr);
    }));
  }
  if (cudaDeviceSynchronize() != cudaSuccess) state.SkipWithError("kernel failed");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * calls * weight_bytes);
}
BENCHMARK(BM_Gemv)
    ->ArgsProduct({{0, 1, 2, 3, 4}, {1, 8}, {0, 1, 2, 4, 8}, {0}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);
// 2 to 8 rows on tensor cores (GemvBatch::round_activations).
BENCHMARK(BM_Gemv)
    ->ArgsProduct({{0, 1, 2, 3, 4}, {2, 8}, {0}, {1}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// One layer's prompt attention, 512 rows from position 0, through the backend.
void BM_PromptAttention(benchmark::State& state) {
  BackendOptions options;
  options.exact_activations = state.range(0) != 0;
  const DType cache_dtype = state.range(1) != 0 ? DType::kBF16 : DType::kF32;
  state.SetLabel(std::string(options.exact_activations ? "f32 tiled" : "tensor cores") + ", " +
                 std::string(DTypeName(cache_dtype)) + " cache");
  auto be = CreateBackend("cuda", options);
  if (!be.ok()) return state.SkipWithError("no cuda backend here");
  const int64_t rows = 512, heads = 28, kv_heads = 4, d = 128;
  const int64_t blocks = rows / kKvBlockSize;
  PagedKvLayer cache{*(*be)->Allocate(cache_dtype, {blocks, kKvBlockSize, kv_heads, d}),
                     *(*be)->Allocate(cache_dtype, {blocks, kKvBlockSize, kv_heads, d})};
  TensorView q = *(*be)->Allocate(DType::kF32, {rows, heads, d});
  TensorView out = *(*be)->Allocate(DType::kF32, {rows, heads, d});
  TensorView host = *TensorView::Allocate(DType::kF32, {1, heads, d});
  std::vector<int32_t> table(static_cast<size_t>(blocks));
  for (int32_t b = 0; b < blocks; ++b) table[static_cast<size_t>(b)] = b;
  const std::vector<AttentionSequence> seqs = {{table, 0, rows, 0}};
  auto run = [&] { return (*be)->Attention(q, cache, seqs, 0.088f, out); };
  if (!run().ok()) return state.SkipWithError("Attention failed");
  constexpr int kCalls = 20;
  for (auto _ : state) {
    for (int i = 0; i < kCalls; ++i) {
      if (!run().ok()) return state.SkipWithError("Attention failed");
    }
    // Waits for the queued calls (a copy to the host returns once it is done).
    if (!(*be)->Copy(*out.Slice(0, 0, 1), host).ok()) return state.SkipWithError("copy failed");
  }
  state.counters["per_call"] = benchmark::Counter(
      kCalls, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_PromptAttention)
    ->ArgsProduct({{0, 1}, {0, 1}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// A prompt's matmul of an fp8 weight (DeepSeek-V3's shapes, 128x128 block scales) through
// the backend: the f32 tiled kernel, or with RRT_CUDA_EXPERIMENTAL=1 the weight converted to
// bf16 for cuBLAS's tensor cores (the conversion included). GFLOP/s of the matmul.
struct Fp8Shape {
  const char* name;
  int64_t n, k;
};
const Fp8Shape kFp8Shapes[] = {
    {"expert gate", 2048, 7168}, {"expert down", 7168, 2048}, {"dense gate", 18432, 7168}};

void BM_Fp8PromptMatMul(benchmark::State& state) {
  const bool experimental = state.range(0) != 0;
  const Fp8Shape& shape = kFp8Shapes[state.range(1)];
  const int64_t t = state.range(2), n = shape.n, k = shape.k;
  state.SetLabel(std::string(shape.name) + " rows=" + std::to_string(t) +
                 (experimental ? " bf16 tensor cores" : " f32 tiled"));
  ::setenv("RRT_CUDA_EXPERIMENTAL", experimental ? "1" : "0", 1);
  auto be = CreateBackend("cuda", {});
  ::unsetenv("RRT_CUDA_EXPERIMENTAL");
  if (!be.ok()) return state.SkipWithError("no cuda backend here");
  Weight w{*TensorView::Allocate(DType::kF8E4M3, {n, k}),
           *TensorView::Allocate(DType::kF32, {Fp8ScaleBlocks(n), Fp8ScaleBlocks(k)})};
  std::fill_n(static_cast<uint8_t*>(w.data.mutable_data()), n * k, uint8_t{0x38});  // 1.0
  std::fill_n(w.scale_inv.mutable_data_as<float>(), w.scale_inv.num_elements(), 0.01f);
  TensorView x = *(*be)->Allocate(DType::kF32, {t, k});
  TensorView y = *(*be)->Allocate(DType::kF32, {t, n});
  TensorView host = *TensorView::Allocate(DType::kF32, {1, n});
  auto run = [&] { return (*be)->MatMul(x, w, nullptr, y); };
  if (!run().ok()) return state.SkipWithError("MatMul failed");  // uploads the weight
  constexpr int kCalls = 10;
  for (auto _ : state) {
    for (int i = 0; i < kCalls; ++i) {
      if (!run().ok()) return state.SkipWithError("MatMul failed");
    }
    if (!(*be)->Copy(*y.Slice(0, 0, 1), host).ok()) return state.SkipWithError("copy failed");
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * t * n * k * kCalls, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Fp8PromptMatMul)
    ->ArgsProduct({{0, 1}, {0, 1, 2}, {64, 512}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_SampleTokens(benchmark::State& state) {
  const bool on_device = state.range(0) != 0, greedy = state.range(1) == 0;
  const int64_t rows = state.range(2), vocab = 151936;
  state.SetLabel(std::string(on_device ? "device" : "host") +
                 (greedy ? " greedy" : " t=0.6 top-p 0.95") + " rows=" + std::to_string(rows));
  ::setenv("RRT_CUDA_EXPERIMENTAL", on_device ? "1" : "0", 1);
  auto be = CreateBackend("cuda", {});
  ::unsetenv("RRT_CUDA_EXPERIMENTAL");
  if (!be.ok()) return state.SkipWithError("no cuda backend here");
  // Logits like a model's: a normal tail and a few favourites.
  TensorView host = *TensorView::Allocate(DType::kF32, {rows, vocab});
  uint32_t seed = 7;
  float* h = host.mutable_data_as<float>();
  for (int64_t i = 0; i < rows * vocab; ++i) {
    seed = seed * 1664525u + 1013904223u;
    h[i] = static_cast<float>(seed >> 8) * 0x1.0p-24f * 8.0f - 6.0f;
  }
  for (int64_t r = 0; r < rows; ++r) h[r * vocab + (r * 7919) % vocab] = 12.0f;
  TensorView logits = *(*be)->Allocate(DType::kF32, {rows, vocab});
  if (!(*be)->Copy(host, logits).ok()) return state.SkipWithError("copy failed");
  std::vector<TokenDraw> draws(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    draws[r] = greedy ? TokenDraw{.greedy = true}
                      : TokenDraw{.temperature = 0.6f,
                                  .top_p = 0.95f,
                                  .uniform = (r + 0.5) / static_cast<double>(rows)};
  }
  std::vector<DrawnToken> out(draws.size());
  for (auto _ : state) {
    if (!(*be)->SampleTokens(logits, draws, absl::MakeSpan(out)).ok())
      return state.SkipWithError("SampleTokens failed");
  }
}
BENCHMARK(BM_SampleTokens)
    ->ArgsProduct({{0, 1}, {0, 1}, {1, 8, 16}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

void BM_GateUpMatMul(benchmark::State& state) {
  const bool experimental = state.range(0) != 0;
  const int64_t t = state.range(1), n = 18944, k = 3584;
  state.SetLabel(experimental ? "product in the GEMV" : "GEMV, then SiluMul");
  ::setenv("RRT_CUDA_EXPERIMENTAL", experimental ? "silu_gemv" : "0", 1);
  auto be = CreateBackend("cuda", {});
  ::unsetenv("RRT_CUDA_EXPERIMENTAL");
  if (!be.ok()) return state.SkipWithError("no cuda backend here");
  Weight gate_w{*TensorView::Allocate(DType::kBF16, {n, k}), {}},
      up_w{*TensorView::Allocate(DType::kBF16, {n, k}), {}};
  TensorView x = *(*be)->Allocate(DType::kF32, {t, k});
  TensorView gate = *(*be)->Allocate(DType::kF32, {t, n}),
             up = *(*be)->Allocate(DType::kF32, {t, n});
  TensorView host = *TensorView::Allocate(DType::kF32, {1, 1});
  auto run = [&]() -> absl::Status {
    absl::StatusOr<bool> formed = (*be)->GateUpMatMul(x, gate_w, up_w, gate, up);
    if (!formed.ok()) return formed.status();
    return *formed ? absl::OkStatus() : (*be)->SiluMul(gate, up, gate);
  };
  absl::StatusOr<bool> first = (*be)->GateUpMatMul(x, gate_w, up_w, gate, up);  // uploads
  if (!first.ok() || *first != experimental) return state.SkipWithError("not the path asked for");
  constexpr int kCalls = 20;
  for (auto _ : state) {
    for (int i = 0; i < kCalls; ++i) {
      if (!run().ok()) return state.SkipWithError("GateUpMatMul failed");
    }
    if (!(*be)->Copy(*gate.Slice(1, 0, 1)->Slice(0, 0, 1), host).ok())
      return state.SkipWithError("copy failed");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kCalls * 2 * n * k * 2);
}
BENCHMARK(BM_GateUpMatMul)
    ->ArgsProduct({{0, 1}, {1, 8}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

void BM_ExpertGateUpMatMul(benchmark::State& state) {
  const bool fused = state.range(0) != 0;
  constexpr int64_t kExperts = 64, kRows = 8, n = 1408, k = 2048;
  state.SetLabel(fused ? "one launch, the product" : "two ExpertMatMuls, then SiluMul");
  ::setenv("RRT_CUDA_EXPERIMENTAL", "moe", 1);
  auto be = CreateBackend("cuda", {});
  ::unsetenv("RRT_CUDA_EXPERIMENTAL");
  if (!be.ok()) return state.SkipWithError("no cuda backend here");
  std::vector<Weight> gates, ups;
  for (int64_t e = 0; e < kExperts; ++e) {
    gates.push_back({*TensorView::Allocate(DType::kBF16, {n, k}), {}});
    ups.push_back({*TensorView::Allocate(DType::kBF16, {n, k}), {}});
  }
  // Call c's rows take experts 8c .. 8c + 7 (mod 64): 8 calls read every expert once.
  std::vector<TensorView> ids;
  for (int64_t c = 0; c < kExperts / kRows; ++c) {
    TensorView host = *TensorView::Allocate(DType::kI32, {kRows});
    for (int64_t j = 0; j < kRows; ++j)
      host.mutable_data_as<int32_t>()[j] = static_cast<int32_t>(c * kRows + j);
    ids.push_back(*(*be)->Allocate(DType::kI32, {kRows}));
    if (!(*be)->Copy(host, ids.back()).ok()) return state.SkipWithError("ids copy failed");
  }
  TensorView x = *(*be)->Allocate(DType::kF32, {kRows, k});
  TensorView gate = *(*be)->Allocate(DType::kF32, {kRows, n}),
             up = *(*be)->Allocate(DType::kF32, {kRows, n});
  TensorView host = *TensorView::Allocate(DType::kF32, {1, 1});
  auto run = [&](const TensorView& id) -> absl::StatusOr<bool> {
    if (fused) return (*be)->ExpertGateUpMatMul(x, id, gates, ups, gate, up);
    absl::Status st = (*be)->ExpertMatMul(x, id, gates, gate);
    if (st.ok()) st = (*be)->ExpertMatMul(x, id, ups, up);
    if (st.ok()) st = (*be)->SiluMul(gate, up, gate);
    if (!st.ok()) return st;
    return false;
  };
  for (const TensorView& id : ids) {  // uploads every expert
    absl::StatusOr<bool> first = run(id);
    if (!first.ok() || *first != fused) return state.SkipWithError("not the path asked for");
  }
  constexpr int kCalls = 16;
  for (auto _ : state) {
    for (int i = 0; i < kCalls; ++i) {
      if (!run(ids[static_cast<size_t>(i) % ids.size()]).ok())
        return state.SkipWithError("ExpertGateUpMatMul failed");
    }
    if (!(*be)->Copy(*gate.Slice(1, 0, 1)->Slice(0, 0, 1), host).ok())
      return state.SkipWithError("copy failed");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kCalls * kRows * 2 * n * k *
                          2);
}
BENCHMARK(BM_ExpertGateUpMatMul)->Arg(0)->Arg(1)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace reasonrt

BENCHMARK_MAIN();
