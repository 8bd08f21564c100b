// `reasonrt bench`: prompt processing and decode speed, measured against the machine's
// own read bandwidth and oneDNN's bf16 GEMM peak, measured in the same run.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <set>
#include <tuple>
#include <vector>

#include "examples/cli/commands.h"
#include "lib/backends/cpu/gemv_bf16_dot.h"
#include "lib/backends/cpu/gemv_kernels.h"
#include "lib/backends/cpu/onednn_gemm.h"
#include "lib/backends/cuda/device.h"
#include "lib/core/strings.h"
#include "lib/core/thread_pool.h"
#include "lib/generate/sampler.h"
#include "lib/models/tensor_inventory.h"
#include "reasonrt/cpu_features.h"
#include "reasonrt/dtype.h"
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

// Read bandwidth (GB/s): the best of `passes` reads of a buffer far larger than the caches,
// each thread summing its own slice with SIMD.
class BandwidthProbe {
 public:
  // Random contents: a repetitive pattern lets a hypervisor merge identical pages (KSM),
  // and the probe would then read cache, not DRAM.
  // (Left uninitialised by new: the fill below is its first touch, on the probe's threads;
  // a vector zeroed all 1 GiB on one thread first.)
  explicit BandwidthProbe(int threads)
      : pool_(threads), buf_(new float[static_cast<size_t>(kFloats)]) {
    pool_.ParallelFor(kFloats, 1 << 20, [&](int64_t b, int64_t e) {
      uint64_t state = 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(b + 1);
      for (int64_t i = b; i < e; ++i) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        buf_[i] = static_cast<float>(state >> 40);
      }
    });
  }
  double Measure(int passes) {
    double best = 0.0;
    for (int r = 0; r < passes; ++r) {
      const auto t0 = Clock::now();
      pool_.ParallelFor(kFloats, 1 << 20, [&](int64_t b, int64_t e) {
        sink_.fetch_add(cpu::StreamSum(buf_.get() + b, e - b), std::memory_order_relaxed);
      });
      best = std::max(best, kFloats * 4.0 / Seconds(t0) / 1e9);
    }
    return best;
  }

 private:
  static constexpr int64_t kFloats = int64_t{1} << 28;  // 1 GiB
  ThreadPool pool_;
  std::unique_ptr<float[]> buf_;
  std::atomic<float> sink_{0.0f};  // the sums go somewhere, so the reads are not elided
};

// The batched decode kernels' compute roofline (GFLOP/s): every thread running independent
// multiply-add chains at once, no memory traffic. vdpbf16ps where a group's bf16 or FP8 GEMVs use
// it (AVX512-BF16), f32 FMA at the SIMD width otherwise.
class MultiplyAddProbe {
 public:
  MultiplyAddProbe(int threads, bool bf16_dot) : pool_(threads), bf16_dot_(bf16_dot) {}
  const char* name() const { return bf16_dot_ ? "bf16 dot (vdpbf16ps)" : "f32 FMA"; }
  // The best of `passes`, each about 10 ms of multiply-adds per thread.
  double Measure(int passes) {
    double best = 0.0;
    for (int r = 0; r < passes; ++r) {
      std::vector<int64_t> done(static_cast<size_t>(pool_.num_threads()));
      std::vector<float> sinks(done.size());
      const auto t0 = Clock::now();
      pool_.RunOnEachThread([&](int t) {
        constexpr int64_t kIterations = int64_t{1} << 22;
        done[t] = bf16_dot_ ? cpu::Bf16DotMultiplyAddLoop(kIterations, &sinks[t])
                            : cpu::MultiplyAddLoop(kIterations, &sinks[t]);
      });
      const double seconds = Seconds(t0);
      double total = 0;
      for (size_t t = 0; t < done.size(); ++t) {
        total += static_cast<double>(done[t]);
        sink_.fetch_add(sinks[t], std::memory_order_relaxed);
      }
      best = std::max(best, 2.0 * total / seconds / 1e9);
    }
    return best;
  }

 private:
  ThreadPool pool_;
  bool bf16_dot_;
  std::atomic<float> sink_{0.0f};  // the results go somewhere, so the loops are not elided
};

// Bytes of weights one decoded token reads: every layer's tensors and the head (the
// embedding contributes one row), as the model holds them: the MoE router as f32, and an
// fp8 (or f16) kv_b_proj as its f32 copy (see lib/models/deepseek.cc). Routed experts are
// counted apart: `expert` is one expert of one layer, `fixed` everything else.
struct DecodeBytes {
  int64_t fixed = 0;
  int64_t expert = 0;
  // With k experts per token in each of `moe_layers` layers.
  int64_t Expected(const ModelConfig& c, int64_t moe_layers) const {
    return fixed + expert * c.num_experts_per_tok * moe_layers;
  }
};

DecodeBytes WeightBytesPerToken(const ModelConfig& config, const Checkpoint& ckpt) {
  DecodeBytes bytes;
  InventoryOptions inv;
  inv.fp8 = config.fp8_weights;
  const auto ends_with = [](const std::string& s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  for (const TensorSpec& spec : ExpectedTensors(config, inv)) {
    if (spec.mtp) continue;
    const TensorInfo* info = ckpt.Find(spec.name);
    if (info == nullptr) continue;
    int64_t size = static_cast<int64_t>(info->byte_size());
    if (spec.kind == WeightKind::kEmbedding) {
      bytes.fixed += size / spec.shape[0];
      if (config.tie_word_embeddings) bytes.fixed += size;
      continue;
    }
    const bool kv_b = spec.name.find("kv_b_proj") != std::string::npos;
    if (spec.kind == WeightKind::kRouter || (kv_b && info->dtype != DType::kBF16 && info->dtype != DType::kF32)) {
      if (ends_with(spec.name, "weight_scale_inv")) continue;  // folded into the f32 copy
      size = spec.shape[0] * spec.shape[1] * 4;
    }
    if (spec.expert >= 0) {
      if (spec.layer == config.first_k_dense_replace && spec.expert == 0) bytes.expert += size;
      continue;
    }
    bytes.fixed += size;
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

// A decode step as generation runs it: the forward pass, then each row's token drawn
// where the logits are (on a GPU only the tokens come back): greedy, or with R1's
// recommended sampling (temperature 0.6, top-p 0.95), the draws' numbers from `rng`.
absl::StatusOr<std::vector<int32_t>> DecodeStep(Session& session, const Batch& batch, bool sample,
                                                gen::Rng& rng) {
  absl::StatusOr<int64_t> rows = session.ForwardKeepLogits(batch);
  if (!rows.ok()) return rows.status();
  std::vector<int32_t> ids(static_cast<size_t>(*rows));
  std::vector<TokenDraw> draws(ids.size(), TokenDraw{.greedy = true});
  if (sample) {
    for (TokenDraw& d : draws)
      d = TokenDraw{.temperature = 0.6f, .top_p = 0.95f, .uniform = rng.Uniform()};
  }
  std::vector<DrawnToken> drawn(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  if (absl::Status s = session.SampleKept(ids, draws, absl::MakeSpan(drawn)); !s.ok()) return s;
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = drawn[i].token;
  return ids;
}

int RunBench(const BenchArgs& args) {
  const int threads = args.threads > 0 ? args.threads : AvailableCores();
  LoadOptions lo;
  lo.backend = args.backend;
  lo.num_threads = threads;
  lo.weights_in_memory = args.in_memory;
  lo.exact_activations = args.exact;
  auto model = Model::Load(args.model, lo);
  if (!model.ok()) return Fail(model.status());
  auto ckpt = Checkpoint::Open(args.model);
  if (!ckpt.ok()) return Fail(ckpt.status());
  const ModelConfig& cfg = (*model)->config();
  const DType kv_dtype = *ParseDTypeName(args.kv_dtype);  // f32 or bf16: checked by the parser
  SessionOptions so;
  so.kv_dtype = kv_dtype;
  so.max_tokens = std::max(args.prompt, args.depth) + args.decode + 16;
  if (args.group > 1) so.max_tokens += args.prompt + args.group * (args.decode + 32);
  auto session = (*model)->NewSession(so);
  if (!session.ok()) return Fail(session.status());
  std::mt19937 rng(1);
  gen::Rng draw_rng(1);  // --sample's draws
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(cfg.vocab_size - 1));

  // These machines are shared and their bandwidth drifts: every repetition measures its
  // roofline right before and after itself, and the ratios are taken per repetition.
  // On the GPU: the device's copy bandwidth and cuBLAS's bf16 GEMM on the MLP's shape.
  const bool on_gpu = (*model)->backend_name() == "cuda";
  BandwidthProbe probe(on_gpu ? 1 : threads);
  auto measure_bandwidth = [&] { return on_gpu ? cuda::MeasureCopyBandwidthGBs(0, 3) : probe.Measure(2); };
  auto measure_peak = [&] {
    return on_gpu ? cuda::MeasureCublasBf16PeakGflops(0, std::max(args.prompt, 1), static_cast<int>(cfg.intermediate_size),
                                                      static_cast<int>(cfg.hidden_size), 3)
                  : cpu::OneDnnGemm::MeasurePeakGflops(cpu::OneDnnGemm::PromptDType(), 512, 8960, 1536, threads, 2);
  };
  // Without bf16 instructions prompts compute in f32 (weights converted in panels): the
  // roofline is then oneDNN's f32 GEMM.
  const char* peak_name = on_gpu                                                  ? "cuBLAS bf16 peak"
                          : cpu::OneDnnGemm::PromptDType() == DType::kBF16 ? "oneDNN bf16 peak"
                                                                           : "oneDNN f32 peak";
  const char* bandwidth_name = on_gpu ? "device copy bandwidth" : "read bandwidth";
  const DecodeBytes decode_bytes = WeightBytesPerToken(cfg, **ckpt);
  const int64_t moe_layers = static_cast<int64_t>((*session)->routing_stats().layers.size());
  const int64_t bytes_per_token = decode_bytes.Expected(cfg, moe_layers);
  // MoE: the experts the decode actually chose (distinct per step and layer), from the
  // warm-up repetition's routing trace.
  int64_t actual_bytes_per_token = bytes_per_token;
  const double flops_per_token = MatmulFlopsPerToken(cfg);

  // Prompt processing: one prefill of `prompt` tokens, logits for the last.
  std::vector<double> pp, pp_ratio, peaks;
  for (int r = 0; r < args.reps + 1 && args.prompt > 0; ++r) {
    (*session)->RemoveSequence(0);
    Batch b;
    for (int i = 0; i < args.prompt; ++i) b.Add(token(rng), i, 0, i == args.prompt - 1);
    const double peak_before = r > 0 ? measure_peak() : 0;
    const auto t0 = Clock::now();
    auto out = (*session)->Forward(b);
    if (!out.ok()) return Fail(out.status());
    const double tokens_per_s = args.prompt / Seconds(t0);
    if (r == 0) continue;  // the first run warms up
    const double peak = (peak_before + measure_peak()) / 2;
    pp.push_back(tokens_per_s);
    peaks.push_back(peak);
    if (peak > 0) pp_ratio.push_back(tokens_per_s * flops_per_token / 1e9 / peak);
  }
  // Decode: `decode` tokens one at a time from an empty context (llama-bench's tg).
  // A group's rooflines: its weight reads (once per step for all G) against the read
  // bandwidth, and its multiply-adds (G per weight) against the kernels' peak (cpu only).
  const TensorInfo* down = (*ckpt)->Find("model.layers.0.mlp.down_proj.weight");
  const bool group_bf16_dot = cpu::HasBf16DotKernel() && down != nullptr &&
                              (down->dtype == DType::kBF16 || down->dtype == DType::kF8E4M3);
  MultiplyAddProbe fma_probe(on_gpu ? 1 : threads, group_bf16_dot);
  // With --exact the dot kernel multiplies each weight by x's hi and lo parts: twice the work.
  const double group_work = group_bf16_dot && args.exact ? 2.0 : 1.0;
  std::vector<double> tg, tg_ratio, bandwidths, group_tg, group_bw_ratio, group_fma_ratio,
      fma_peaks;
  int64_t group_kv_tokens = 0;
  for (int r = 0; r < args.reps + 1 && args.decode > 0; ++r) {
    (*session)->RemoveSequence(0);
    if (args.depth > 0) {  // fill the context first (not timed)
      Batch ctx;
      for (int i = 0; i < args.depth; ++i) ctx.Add(token(rng), i, 0, false);
      auto filled = (*session)->Forward(ctx);
      if (!filled.ok()) return Fail(filled.status());
    }
    int32_t next = token(rng);
    if (r == 0 && moe_layers > 0) (*session)->ResetRoutingStats(/*trace=*/true);
    const double bw_before = r > 0 ? measure_bandwidth() : 0;
    const auto t0 = Clock::now();
    for (int i = 0; i < args.decode; ++i) {
      Batch b;
      b.Add(next, args.depth + i, 0, true);
      auto drawn = DecodeStep(**session, b, args.sample, draw_rng);
      if (!drawn.ok()) return Fail(drawn.status());
      next = (*drawn)[0];
    }
    const double tokens_per_s = args.decode / Seconds(t0);
    if (r == 0 && moe_layers > 0) {
      const RoutingStats rs = (*session)->routing_stats();
      std::set<std::tuple<int32_t, int32_t, int32_t>> used;  // (position, layer, expert)
      for (size_t e = 0; e < rs.trace_size(); ++e) {
        if (rs.trace_positions[e] < args.depth) continue;  // the context fill
        for (int64_t j = 0; j < rs.k; ++j) {
          used.emplace(rs.trace_positions[e], rs.trace_layers[e], rs.trace_experts[e * rs.k + j]);
        }
      }
      actual_bytes_per_token = decode_bytes.fixed + decode_bytes.expert * static_cast<int64_t>(used.size()) / args.decode;
      (*session)->ResetRoutingStats(false);
    }
    if (r == 0) continue;
    const double bw_after = measure_bandwidth();
    const double bw = (bw_before + bw_after) / 2;
    if (std::getenv("RRT_BENCH_VERBOSE")) std::fprintf(stderr, "rep %d: %.2f tokens/s, bandwidth %.2f before, %.2f after\n", r, tokens_per_s, bw_before, bw_after);
    tg.push_back(tokens_per_s);
    bandwidths.push_back(bw);
    tg_ratio.push_back(tokens_per_s * bytes_per_token / 1e9 / bw);
    if (args.group > 1) {
      // A group (GRPO's n completions): one prompt, forked, then all decoded as one batch.
      // Measured right after the single sequence, so the two see the same machine.
      for (int32_t s = 0; s <= args.group; ++s) (*session)->RemoveSequence(s);
      const int64_t free_before = (*session)->FreeTokens();
      Batch prompt;
      const int p = std::max(args.prompt, 1);
      for (int i = 0; i < p; ++i) prompt.Add(token(rng), i, 0, i == p - 1);
      if (auto out = (*session)->Forward(prompt); !out.ok()) return Fail(out.status());
      for (int32_t s = 1; s < args.group; ++s) {
        if (auto st = (*session)->ForkSequence(0, s); !st.ok()) return Fail(st);
      }
      std::vector<int32_t> nexts(args.group);
      for (int32_t& t : nexts) t = token(rng);
      const auto g0 = Clock::now();
      for (int i = 0; i < args.decode; ++i) {
        Batch b;
        for (int32_t s = 0; s < args.group; ++s) b.Add(nexts[s], p + i, s, true);
        auto drawn = DecodeStep(**session, b, args.sample, draw_rng);
        if (!drawn.ok()) return Fail(drawn.status());
        nexts = *std::move(drawn);
      }
      const double group_ts = static_cast<double>(args.group) * args.decode / Seconds(g0);
      group_tg.push_back(group_ts);
      group_bw_ratio.push_back(group_ts / args.group * bytes_per_token / 1e9 / bw);
      if (!on_gpu) {
        const double fma_peak = fma_probe.Measure(3);
        fma_peaks.push_back(fma_peak);
        group_fma_ratio.push_back(group_work * group_ts * flops_per_token / 1e9 / fma_peak);
      }
      group_kv_tokens = free_before - (*session)->FreeTokens();
      for (int32_t s = 0; s < args.group; ++s) (*session)->RemoveSequence(s);
    }
  }
  auto median_or_zero = [](const std::vector<double>& v) { return v.empty() ? 0.0 : Median(v); };
  const double pp_ts = median_or_zero(pp), tg_ts = median_or_zero(tg);
  const double bandwidth = median_or_zero(bandwidths), peak = median_or_zero(peaks);
  const double decode_ratio = median_or_zero(tg_ratio), prompt_ratio = median_or_zero(pp_ratio);
  const double decode_gbs = tg_ts * bytes_per_token / 1e9;
  const double pp_gflops = pp_ts * flops_per_token / 1e9;
  const double group_ts = median_or_zero(group_tg), fma_peak = median_or_zero(fma_peaks);
  const double group_bw = median_or_zero(group_bw_ratio),
               group_fma = median_or_zero(group_fma_ratio);
  const double group_gbs = group_ts / std::max(args.group, 1) * bytes_per_token / 1e9;
  const double group_gflops = group_work * group_ts * flops_per_token / 1e9;
  if (args.json) {
    std::printf(
        "{\"model\": \"%s\", \"backend\": \"%s\", \"threads\": %d, \"cpu\": \"%s\", "
        "\"prompt_tokens\": %d, \"decode_tokens\": %d, \"depth\": %d, \"repetitions\": %d, "
        "\"prompt_tokens_per_s\": %.3f, \"decode_tokens_per_s\": %.3f, "
        "\"weight_bytes_per_token\": %lld, \"read_bandwidth_gb_s\": %.3f, "
        "\"decode_gb_s\": %.3f, \"decode_bandwidth_ratio\": %.4f, "
        "\"prompt_gflops\": %.2f, \"gemm_peak_gflops\": %.2f, \"gemm_peak_name\": \"%s\", "
        "\"prompt_peak_ratio\": %.4f, "
        "\"group\": %d, \"group_decode_tokens_per_s\": %.3f, \"group_kv_tokens\": %lld, "
        "\"group_bandwidth_ratio\": %.6g, \"group_gflops\": %.6g, \"multiply_add_peak_gflops\": "
        "%.2f, "
        "\"multiply_add_peak_name\": \"%s\", \"group_peak_ratio\": %.6g, "
        "\"actual_weight_bytes_per_token\": %lld, \"kv_cache_bytes_per_token\": %lld, "
        "\"kv_dtype\": \"%s\", \"sampled\": %s}\n",
        args.model.c_str(), std::string((*model)->backend_name()).c_str(), threads,
        CpuFeaturesString(GetCpuFeatures()).c_str(), args.prompt, args.decode, args.depth,
        args.reps, pp_ts, tg_ts, static_cast<long long>(bytes_per_token), bandwidth, decode_gbs,
        decode_ratio, pp_gflops, peak, peak_name, prompt_ratio, args.group, group_ts,
        static_cast<long long>(group_kv_tokens), group_bw, group_gflops, fma_peak,
        on_gpu ? "" : fma_probe.name(), group_fma, static_cast<long long>(actual_bytes_per_token),
        static_cast<long long>(KvCacheBytesPerToken(cfg, kv_dtype)), args.kv_dtype.c_str(),
        args.sample ? "true" : "false");
    return 0;
  }
  std::printf("model            %s (%s, %s backend, %d threads, kernels %s, %s KV cache)\n",
              args.model.c_str(), std::string(ArchitectureName(cfg.architecture)).c_str(),
              std::string((*model)->backend_name()).c_str(), threads, cpu::GemvTargetName(),
              args.kv_dtype.c_str());
  if (peak > 0) {
    std::printf("prompt pp%-6d  %8.2f tokens/s  %8.1f GFLOP/s = %5.1f%% of %s %.1f GFLOP/s\n", args.prompt,
                pp_ts, pp_gflops, 100 * prompt_ratio, peak_name, peak);
  } else {
    std::printf("prompt pp%-6d  %8.2f tokens/s  %8.1f GFLOP/s (no %s here to compare)\n", args.prompt, pp_ts,
                pp_gflops, peak_name);
  }
  if (args.depth > 0) std::printf("decode after a context of %d tokens:\n", args.depth);
  if (args.sample)
    std::printf("decode sampled (temperature 0.6, top-p 0.95), drawn where the logits are:\n");
  std::printf("decode tg%-6d  %8.2f tokens/s  %8.2f GB/s   = %5.1f%% of %s %.2f GB/s\n", args.decode, tg_ts,
              decode_gbs, 100 * decode_ratio, bandwidth_name, bandwidth);
  if (args.group > 1) {
    std::printf("decode group of %d %8.2f tokens/s  = %.2fx one sequence; KV cache %lld tokens for a %d-token prompt\n"
                "                  and %d x %d completion tokens (shared prompt blocks)\n",
                args.group, group_ts, tg_ts > 0 ? group_ts / tg_ts : 0.0, static_cast<long long>(group_kv_tokens),
                std::max(args.prompt, 1), args.group, args.decode);
    std::printf("                  weights %.2f GB/s = %5.1f%% of %s", group_gbs, 100 * group_bw,
                bandwidth_name);
    if (fma_peak > 0) {
      std::printf("; %.1f GFLOP/s = %5.1f%% of %s peak %.1f GFLOP/s", group_gflops, 100 * group_fma,
                  fma_probe.name(), fma_peak);
    }
    std::printf("\n");
  }
  std::printf("weights read per token %.1f MB; medians of %d repetitions, each ratio against the\n"
              "roofline measured right around that repetition\n", bytes_per_token / 1e6, args.reps);
  if (moe_layers > 0) {
    const ParameterCounts params = CountParameters(cfg);
    std::printf("MoE: %lld of %lld routed experts per token in %lld layers; weights actually read per decoded\n"
                "     token %.1f MB (chosen experts only; %.1f MB expected for the active parameters,\n"
                "     %.2fB active of %.2fB); latent KV cache %lld bytes/token (%s) = %lld values x %lld layers\n",
                static_cast<long long>(cfg.num_experts_per_tok), static_cast<long long>(cfg.n_routed_experts),
                static_cast<long long>(moe_layers), actual_bytes_per_token / 1e6, bytes_per_token / 1e6,
                params.active_per_token / 1e9, params.total / 1e9,
                static_cast<long long>(KvCacheBytesPerToken(cfg, kv_dtype)), args.kv_dtype.c_str(),
                static_cast<long long>(cfg.kv_lora_rank + cfg.qk_rope_head_dim),
                static_cast<long long>(cfg.num_hidden_layers));
  }
  return 0;
}

}  // namespace reasonrt::cli
