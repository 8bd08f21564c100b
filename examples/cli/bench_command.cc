// `reasonrt bench`: prompt processing and decode speed, measured against the machine's
// own read bandwidth and oneDNN's bf16 GEMM peak, measured in the same run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "examples/cli/commands.h"
#include "lib/backends/cpu/gemv_kernels.h"
#include "lib/backends/cpu/onednn_gemm.h"
#include "lib/core/strings.h"
#include "lib/core/thread_pool.h"
#include "lib/models/tensor_inventory.h"
#include "reasonrt/cpu_features.h"
#include "reasonrt/model.h"
#include "reasonrt/safetensors.h"

namespace reasonrt::cli {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Best-of-reps read bandwidth (GB/s) over a buffer far larger than the caches, read by
// `threads` threads, each its own slice.
double MeasureReadBandwidth(int threads, int reps) {
  const int64_t n = int64_t{1} << 28;  // 1 GiB of floats
  std::vector<float> buf(static_cast<size_t>(n));
  ThreadPool pool(threads);
  pool.ParallelFor(n, 1 << 20, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) buf[i] = static_cast<float>(i & 7);
  });
  double best = 0.0;
  volatile float sink = 0.0f;
  for (int r = 0; r < reps; ++r) {
    std::vector<float> partial(pool.num_threads());
    const auto t0 = Clock::now();
    pool.ParallelFor(n, 1 << 20, [&](int64_t b, int64_t e) {
      const float s = cpu::StreamSum(buf.data() + b, e - b);
      partial[b * pool.num_threads() / n] += s;
    });
    best = std::max(best, n * 4.0 / Seconds(t0) / 1e9);
    for (float p : partial) sink = sink + p;
  }
  return best;
}

// Bytes of weights one decoded token reads: every layer's tensors and the head (the
// embedding contributes one row).
int64_t WeightBytesPerToken(const ModelConfig& config, const Checkpoint& ckpt) {
  int64_t bytes = 0;
  InventoryOptions inv;
  inv.fp8 = config.fp8_weights;
  for (const TensorSpec& spec : ExpectedTensors(config, inv)) {
    if (spec.mtp) continue;
    const TensorInfo* info = ckpt.Find(spec.name);
    if (info == nullptr) continue;
    if (spec.kind == WeightKind::kEmbedding) {
      bytes += static_cast<int64_t>(info->byte_size()) / spec.shape[0];
      if (config.tie_word_embeddings) bytes += static_cast<int64_t>(info->byte_size());
      continue;
    }
    if (spec.expert >= 0) {  // only the routed experts a token uses
      bytes += static_cast<int64_t>(info->byte_size()) * config.num_experts_per_tok / config.n_routed_experts;
      continue;
    }
    bytes += static_cast<int64_t>(info->byte_size());
  }
  return bytes;
}

// FLOPs of the matmuls of one token (2 per weight element), attention aside.
double MatmulFlopsPerToken(const ModelConfig& config) {
  const ParameterCounts p = CountParameters(config);
  return 2.0 * static_cast<double>(p.active_per_token - p.embedding +
                                   (config.tie_word_embeddings ? p.embedding : 0));
}

}  // namespace

int RunBench(const BenchArgs& args) {
  const int threads = args.threads > 0 ? args.threads : AvailableCores();
  LoadOptions lo;
  lo.backend = args.backend;
  lo.num_threads = threads;
  auto model = Model::Load(args.model, lo);
  if (!model.ok()) return Fail(model.status());
  auto ckpt = Checkpoint::Open(args.model);
  if (!ckpt.ok()) return Fail(ckpt.status());
  const ModelConfig& cfg = (*model)->config();
  SessionOptions so;
  so.max_tokens = args.prompt + args.decode + 16;
  auto session = (*model)->NewSession(so);
  if (!session.ok()) return Fail(session.status());
  std::mt19937 rng(1);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(cfg.vocab_size - 1));

  // Prompt processing: one prefill of `prompt` tokens, logits for the last.
  std::vector<double> pp;
  for (int r = 0; r < args.reps + 1 && args.prompt > 0; ++r) {
    (*session)->RemoveSequence(0);
    Batch b;
    for (int i = 0; i < args.prompt; ++i) b.Add(token(rng), i, 0, i == args.prompt - 1);
    const auto t0 = Clock::now();
    auto out = (*session)->Forward(b);
    if (!out.ok()) return Fail(out.status());
    if (r > 0) pp.push_back(args.prompt / Seconds(t0));  // the first run warms up
  }
  // Decode: `decode` tokens one at a time from an empty context (llama-bench's tg).
  std::vector<double> tg;
  for (int r = 0; r < args.reps + 1 && args.decode > 0; ++r) {
    (*session)->RemoveSequence(0);
    int32_t next = token(rng);
    const auto t0 = Clock::now();
    for (int i = 0; i < args.decode; ++i) {
      Batch b;
      b.Add(next, i, 0, true);
      auto out = (*session)->Forward(b);
      if (!out.ok()) return Fail(out.status());
      next = static_cast<int32_t>(std::max_element(out->values.begin(), out->values.end()) - out->values.begin());
    }
    if (r > 0) tg.push_back(args.decode / Seconds(t0));
  }
  const double bandwidth = MeasureReadBandwidth(threads, 5);
  const double peak = cpu::OneDnnGemm::MeasureBf16PeakGflops(512, 8960, 1536, threads, 3);
  const int64_t bytes_per_token = WeightBytesPerToken(cfg, **ckpt);
  const double flops_per_token = MatmulFlopsPerToken(cfg);
  const double pp_ts = pp.empty() ? 0.0 : Median(pp);
  const double tg_ts = tg.empty() ? 0.0 : Median(tg);
  const double decode_gbs = tg_ts * bytes_per_token / 1e9;
  const double pp_gflops = pp_ts * flops_per_token / 1e9;
  if (args.json) {
    std::printf(
        "{\"model\": \"%s\", \"backend\": \"%s\", \"threads\": %d, \"cpu\": \"%s\", "
        "\"prompt_tokens\": %d, \"decode_tokens\": %d, \"repetitions\": %d, "
        "\"prompt_tokens_per_s\": %.3f, \"decode_tokens_per_s\": %.3f, "
        "\"weight_bytes_per_token\": %lld, \"read_bandwidth_gb_s\": %.3f, "
        "\"decode_gb_s\": %.3f, \"decode_bandwidth_ratio\": %.4f, "
        "\"prompt_gflops\": %.2f, \"onednn_bf16_peak_gflops\": %.2f, \"prompt_peak_ratio\": %.4f}\n",
        args.model.c_str(), std::string((*model)->backend_name()).c_str(), threads,
        CpuFeaturesString(GetCpuFeatures()).c_str(), args.prompt, args.decode, args.reps, pp_ts,
        tg_ts, static_cast<long long>(bytes_per_token), bandwidth, decode_gbs,
        bandwidth > 0 ? decode_gbs / bandwidth : 0.0, pp_gflops, peak,
        peak > 0 ? pp_gflops / peak : 0.0);
    return 0;
  }
  std::printf("model            %s (%s, %s backend, %d threads, kernels %s)\n", args.model.c_str(),
              std::string(ArchitectureName(cfg.architecture)).c_str(),
              std::string((*model)->backend_name()).c_str(), threads, cpu::GemvTargetName());
  std::printf("prompt pp%-6d  %8.2f tokens/s  %8.1f GFLOP/s = %5.1f%% of oneDNN bf16 peak %.1f GFLOP/s\n",
              args.prompt, pp_ts, pp_gflops, peak > 0 ? 100 * pp_gflops / peak : 0.0, peak);
  std::printf("decode tg%-6d  %8.2f tokens/s  %8.2f GB/s   = %5.1f%% of read bandwidth %.2f GB/s\n",
              args.decode, tg_ts, decode_gbs, bandwidth > 0 ? 100 * decode_gbs / bandwidth : 0.0,
              bandwidth);
  std::printf("weights read per token %.1f MB; median of %d repetitions\n", bytes_per_token / 1e6, args.reps);
  return 0;
}

}  // namespace reasonrt::cli
