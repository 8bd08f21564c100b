// The fast CPU backend: SIMD GEMV for decode, oneDNN GEMM for prompts, threaded small ops.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "lib/backends/builtin.h"
#include "lib/backends/cpu/gemv_bf16_dot.h"
#include "lib/backends/cpu/gemv_kernels.h"
#include "lib/backends/cpu/onednn_gemm.h"
#include "lib/backends/cpu/vector_kernels.h"
#include "lib/backends/token_draw.h"
#include "lib/core/status_macros.h"
#include "lib/core/thread_pool.h"
#include "reasonrt/backend.h"

namespace reasonrt {
namespace {

// Up to this many activation rows a matmul streams the weight through the GEMV kernels
// (all rows in one pass); beyond it, GEMM.
constexpr int64_t kGemvMaxRows = 8;
// bf16 weights on AVX512-BF16 take the batched dot kernel up to this many rows (GRPO's
// groups of 9-32 read each weight once rather than through the prompt GEMM: 1.1-1.7x).
constexpr int64_t kBf16DotMaxRows = cpu::kBf16DotMaxRows;
// A block of weight rows that the chunked GEMV (below) keeps in L2 across its chunks.
constexpr int64_t kGemvChunkBlockBytes = 256 << 10;
static_assert(kGemvMaxRows <= cpu::kGemvRows, "one Gemv call takes all of a decode batch's rows");
// GemmDequantized's f32 weight panels: each thread's GEMM takes up to 256 weight rows, at
// most kGemmPanelBytes (a panel of 16 rows of 8960 read the activations from L3 once per
// 16 rows: on Zen 5, panels of 4 MiB ran 1.1-1.3x faster than of 512 KiB with oneDNN's
// AVX-512 kernels, the same with its AVX2 ones). Fp8GemmBf16 converts its bf16 panels
// kConvertBytes of f32 at a time (in L2).
constexpr int64_t kGemmPanelBytes = 4 << 20;
constexpr int64_t kConvertBytes = 512 << 10;

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(const BackendOptions& options)
      : pool_(options.num_threads),
        gemm_(pool_.num_threads()),
        exact_(options.exact_activations),
        has_bf16_dot_(cpu::HasBf16DotKernel()) {
    cpu::ApplyCpuOverrides();
  }

  std::string_view name() const override { return "cpu"; }
  Device device() const override { return Device{}; }

 protected:
  absl::Status DoMatMul(const TensorView& x, const Weight& w, const TensorView* bias,
                        const TensorView& y) override {
    const int64_t m = x.dim(0), k = x.dim(1), n = w.data.dim(0);
    const DType dtype = w.data.dtype();
    float* ys = y.mutable_data_as<float>();
    if (UseDot(m, dtype)) {
      DecodeInput in;
      const Weight* one[] = {&w};
      PrepareDecode(x.data_as<float>(), m, k, one, &in);
      pool_.ParallelFor(n, 16, [&](int64_t n0, int64_t n1) { DecodeRows(in, w, n0, n1, ys, n); });
    } else if (const bool gemm = m > kGemvMaxRows && !UseGemvChunks(m, dtype);
               gemm && cpu::OneDnnGemm::Supports(dtype)) {
      RRT_RETURN_IF_ERROR(Gemm(x, w, y));
    } else if (gemm && cpu::OneDnnGemm::Supports(DType::kF32)) {
      RRT_RETURN_IF_ERROR(GemmDequantized(x, w, y));
    } else {
      // Up to kGemvMaxRows rows in one pass; more (bf16 groups without the dot kernel) in
      // chunks of kGemvMaxRows, every chunk over a block of weight rows while the block is
      // in L2, so that the weights still come from memory once.
      const float* scales = dtype == DType::kF8E4M3 ? w.scale_inv.data_as<float>() : nullptr;
      const int64_t chunks = (m + kGemvMaxRows - 1) / kGemvMaxRows;
      std::vector<cpu::GemvInput> inputs(static_cast<size_t>(chunks));
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t r0 = c * kGemvMaxRows;
        cpu::PrepareGemvInput(x.data_as<float>() + r0 * k, std::min(kGemvMaxRows, m - r0), k,
                              dtype == DType::kBF16, &inputs[static_cast<size_t>(c)]);
      }
      // (One chunk takes each thread's range in one call, as the kernels prefer.)
      const int64_t block =
          chunks == 1 ? n
                      : std::max<int64_t>(
                            4, kGemvChunkBlockBytes / (k * static_cast<int64_t>(DTypeSize(dtype))));
      pool_.ParallelFor(n, 16, [&](int64_t n0, int64_t n1) {
        for (int64_t b = n0; b < n1; b += block) {
          const int64_t e = std::min(n1, b + block);
          for (int64_t c = 0; c < chunks; ++c) {
            cpu::Gemv(dtype, w.data.data(), scales, inputs[static_cast<size_t>(c)], b, e,
                      ys + c * kGemvMaxRows * n, n);
          }
        }
      });
    }
    if (bias != nullptr) AddBias(*bias, y);
    return absl::OkStatus();
  }

  // More than kGemvMaxRows rows of bf16 without the dot kernel (AVX2), up to
  // kBf16DotMaxRows: the GEMV kernels in chunks (a group of 16 ran at a third of a group of
  // 8's tokens/s through the GEMM).
  static bool UseGemvChunks(int64_t m, DType dtype) {
    return m > kGemvMaxRows && m <= kBf16DotMaxRows && dtype == DType::kBF16;
  }

  // The AVX512-BF16 dot kernels, up to kBf16DotMaxRows rows, bf16 and FP8: they read the
  // weights once for all rows. One row (x split hi + lo): bf16 ran 1.0-1.16x faster than
  // the f32 kernel, FP8 1.2-1.6x (its f32 kernel's conversions kept it at about half the
  // memory speed); FP8's 16 and 32 rows ran 1.6-2x and 1.1-1.4x faster than the GEMM.
  bool UseDot(int64_t m, DType dtype) const {
    if (!has_bf16_dot_ || m > kBf16DotMaxRows) return false;
    return dtype == DType::kBF16 || dtype == DType::kF8E4M3;
  }

  static void AddBias(const TensorView& bias, const TensorView& y) {
    const int64_t n = y.dim(1);
    std::vector<float> b(n);
    ConvertToF32(bias.dtype(), bias.data(), b.data(), static_cast<size_t>(n));
    float* ys = y.mutable_data_as<float>();
    for (int64_t r = 0; r < y.dim(0); ++r) {
      for (int64_t j = 0; j < n; ++j) ys[r * n + j] += b[j];
    }
  }

  // The activations of a decode pass over one or more weights, prepared once: split into
  // bf16 halves for the weights the dot kernels take, laid out for cpu::Gemv for the rest.
  // The split keeps x's lo part under exact_, and for one row (FP8's: the f32 kernel's
  // precision there).
  struct DecodeInput {
    int64_t rows = 0;
    cpu::SplitActivations split;
    cpu::GemvInput input;
  };
  void PrepareDecode(const float* x, int64_t m, int64_t k, absl::Span<const Weight* const> weights,
                     DecodeInput* in) const {
    in->rows = m;
    bool any_dot = false, any_gemv = false, any_bf16 = false;
    for (const Weight* w : weights) {
      const bool dot = UseDot(m, w->data.dtype());
      any_dot = any_dot || dot;
      any_gemv = any_gemv || !dot;
      any_bf16 = any_bf16 || (!dot && w->data.dtype() == DType::kBF16);
    }
    if (any_dot) cpu::SplitBf16(x, m, k, exact_ || m == 1, &in->split);
    if (any_gemv) cpu::PrepareGemvInput(x, m, k, any_bf16, &in->input);
  }
  // Whether a decode pass takes x against these weights (else prompts: the GEMM paths).
  bool DecodePass(int64_t m, absl::Span<const Weight* const> weights) const {
    bool all_dot = true;
    for (const Weight* w : weights) all_dot = all_dot && UseDot(m, w->data.dtype());
    return m <= kGemvMaxRows || all_dot;
  }
  // Rows [n0, n1) of w's outputs, y [m, ldy].
  void DecodeRows(const DecodeInput& in, const Weight& w, int64_t n0, int64_t n1, float* y,
                  int64_t ldy) const {
    const DType dtype = w.data.dtype();
    const float* scales = dtype == DType::kF8E4M3 ? w.scale_inv.data_as<float>() : nullptr;
    if (!UseDot(in.rows, dtype)) {
      cpu::Gemv(dtype, w.data.data(), scales, in.input, n0, n1, y, ldy);
    } else if (dtype == DType::kBF16) {
      cpu::GemvBf16Dot(static_cast<const uint16_t*>(w.data.data()), in.split, n0, n1, y, ldy);
    } else {
      cpu::GemvFp8Dot(static_cast<const uint8_t*>(w.data.data()), scales, in.split, n0, n1, y, ldy);
    }
  }

  // Decode: the weights' rows as one range split across the threads, one parallel pass.
  absl::Status DoMatMulShared(const TensorView& x, absl::Span<const Weight* const> weights,
                              absl::Span<const TensorView* const> biases,
                              absl::Span<const TensorView* const> ys) override {
    if (!DecodePass(x.dim(0), weights)) return Backend::DoMatMulShared(x, weights, biases, ys);
    std::vector<int64_t> starts = {0};
    for (const Weight* w : weights) starts.push_back(starts.back() + w->data.dim(0));
    DecodeInput in;
    PrepareDecode(x.data_as<float>(), x.dim(0), x.dim(1), weights, &in);
    pool_.ParallelFor(starts.back(), 16, [&](int64_t b, int64_t e) {
      for (size_t i = 0; i < weights.size(); ++i) {
        const int64_t n0 = std::max(b, starts[i]) - starts[i];
        const int64_t n1 = std::min(e, starts[i + 1]) - starts[i];
        if (n0 < n1)
          DecodeRows(in, *weights[i], n0, n1, ys[i]->mutable_data_as<float>(),
                     weights[i]->data.dim(0));
      }
    });
    for (size_t i = 0; i < weights.size(); ++i) {
      if (biases[i] != nullptr) AddBias(*biases[i], *ys[i]);
    }
    return absl::OkStatus();
  }

  // Decode: each thread takes a range of the intermediate rows, both projections over it,
  // and multiplies silu(gate) * up there while the two are in its cache.
  absl::StatusOr<bool> DoGateUpMatMul(const TensorView& x, const Weight& gate_w, const Weight& up_w,
                                      const TensorView& gate, const TensorView& up) override {
    const Weight* weights[] = {&gate_w, &up_w};
    const int64_t m = x.dim(0), n = gate_w.data.dim(0);
    if (!DecodePass(m, weights)) return Backend::DoGateUpMatMul(x, gate_w, up_w, gate, up);
    DecodeInput in;
    PrepareDecode(x.data_as<float>(), m, x.dim(1), weights, &in);
    float* g = gate.mutable_data_as<float>();
    float* u = up.mutable_data_as<float>();
    pool_.ParallelFor(n, 16, [&](int64_t b, int64_t e) {
      DecodeRows(in, gate_w, b, e, g, n);
      DecodeRows(in, up_w, b, e, u, n);
      for (int64_t r = 0; r < m; ++r)
        cpu::SiluMul(g + r * n + b, u + r * n + b, g + r * n + b, e - b);
    });
    return true;
  }

  // MoE decode: every group of at most kGemvMaxRows rows in one parallel pass over the
  // concatenated weight rows (one dispatch for all active experts instead of one each);
  // larger groups (prompts) go through the per-group GEMM path.
  absl::Status DoGroupedMatMul(const TensorView& x, absl::Span<const Weight> weights,
                               absl::Span<const std::vector<int32_t>> rows, const TensorView& y) override {
    const int64_t k = x.dim(1), n = y.dim(1);
    std::vector<size_t> small;
    std::vector<Weight> large_w;
    std::vector<std::vector<int32_t>> large_rows;
    for (size_t g = 0; g < weights.size(); ++g) {
      const int64_t m = static_cast<int64_t>(rows[g].size());
      if (m == 0) continue;
      if (m <= kGemvMaxRows) {
        small.push_back(g);
      } else {
        large_w.push_back(weights[g]);
        large_rows.push_back(rows[g]);
      }
    }
    if (!large_w.empty()) RRT_RETURN_IF_ERROR(Backend::DoGroupedMatMul(x, large_w, large_rows, y));
    if (small.empty()) return absl::OkStatus();
    // Each small group's x rows gathered contiguously, its outputs likewise.
    std::vector<int64_t> row_start = {0};
    for (size_t g : small) row_start.push_back(row_start.back() + static_cast<int64_t>(rows[g].size()));
    std::vector<float> xs(static_cast<size_t>(row_start.back() * k)), ys(static_cast<size_t>(row_start.back() * n));
    for (size_t i = 0; i < small.size(); ++i) {
      const std::vector<int32_t>& r = rows[small[i]];
      for (size_t j = 0; j < r.size(); ++j) {
        std::memcpy(xs.data() + (row_start[i] + static_cast<int64_t>(j)) * k, x.data_as<float>() + r[j] * k,
                    sizeof(float) * static_cast<size_t>(k));
      }
    }
    std::vector<DecodeInput> inputs(small.size());
    for (size_t i = 0; i < small.size(); ++i) {
      const Weight* one[] = {&weights[small[i]]};
      PrepareDecode(xs.data() + row_start[i] * k, row_start[i + 1] - row_start[i], k, one,
                    &inputs[i]);
    }
    const int64_t total = static_cast<int64_t>(small.size()) * n;  // weight rows of all small groups
    pool_.ParallelFor(total, 16, [&](int64_t b, int64_t e) {
      for (size_t i = 0; i < small.size(); ++i) {
        const int64_t n0 = std::max<int64_t>(b, static_cast<int64_t>(i) * n) - static_cast<int64_t>(i) * n;
        const int64_t n1 = std::min<int64_t>(e, static_cast<int64_t>(i + 1) * n) - static_cast<int64_t>(i) * n;
        if (n0 >= n1) continue;
        DecodeRows(inputs[i], weights[small[i]], n0, n1, ys.data() + row_start[i] * n, n);
      }
    });
    for (size_t i = 0; i < small.size(); ++i) {
      const std::vector<int32_t>& r = rows[small[i]];
      for (size_t j = 0; j < r.size(); ++j) {
        std::memcpy(y.mutable_data_as<float>() + r[j] * n, ys.data() + (row_start[i] + static_cast<int64_t>(j)) * n,
                    sizeof(float) * static_cast<size_t>(n));
      }
    }
    return absl::OkStatus();
  }

  absl::Status DoRmsNorm(const TensorView& x, const TensorView& gain, float eps,
                         const TensorView& y) override {
    const int64_t h = x.dim(1);
    std::vector<float> g(h);
    ConvertToF32(gain.dtype(), gain.data(), g.data(), static_cast<size_t>(h));
    pool_.ParallelFor(x.dim(0), 1, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        cpu::RmsNormRow(x.data_as<float>() + r * x.stride(0), g.data(), eps,
                        y.mutable_data_as<float>() + r * y.stride(0), h);
      }
    });
    return absl::OkStatus();
  }

  // Tasks of (head, block of rows); a kOutIn task keeps one weight row in cache while it
  // visits the block's rows.
  absl::Status DoHeadMatMul(const TensorView& x, const TensorView& w, HeadWeightLayout layout,
                            const TensorView& y) override {
    constexpr int64_t kRowBlock = 16;
    const int64_t heads = w.dim(0), rows = x.dim(0), n = y.dim(2), k = x.dim(2);
    const int64_t blocks = (rows + kRowBlock - 1) / kRowBlock;
    const size_t elem = DTypeSize(w.dtype());
    const int64_t w_row = w.dim(2);
    pool_.ParallelFor(heads * blocks, 1, [&](int64_t b, int64_t e) {
      for (int64_t task = b; task < e; ++task) {
        const int64_t h = task / blocks, t0 = task % blocks * kRowBlock;
        const int64_t t1 = std::min(rows, t0 + kRowBlock);
        const char* wh = static_cast<const char*>(w.data()) + h * w.stride(0) * elem;
        auto xrow = [&](int64_t t) { return x.data_as<float>() + t * x.stride(0) + h * x.stride(1); };
        auto yrow = [&](int64_t t) { return y.mutable_data_as<float>() + t * y.stride(0) + h * y.stride(1); };
        if (layout == HeadWeightLayout::kOutIn) {
          for (int64_t j = 0; j < n; ++j) {
            const void* wr = wh + j * w_row * elem;
            for (int64_t t = t0; t < t1; ++t) yrow(t)[j] = cpu::Dot(xrow(t), wr, w.dtype(), k);
          }
        } else {
          for (int64_t t = t0; t < t1; ++t) {
            float* yv = yrow(t);
            const float* xv = xrow(t);
            std::fill(yv, yv + n, 0.0f);
            for (int64_t i = 0; i < k; ++i) cpu::Axpy(xv[i], wh + i * w_row * elem, w.dtype(), yv, n);
          }
        }
      }
    });
    return absl::OkStatus();
  }

  absl::Status DoAddWeightedRows(const TensorView& x, absl::Span<const float> weights, int64_t k,
                                 const TensorView& out) override {
    const int64_t h = out.dim(1);
    pool_.ParallelFor(out.dim(0), 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        for (int64_t j = 0; j < k; ++j) {
          cpu::Axpy(weights[t * k + j], x.data_as<float>() + (t * k + j) * h, DType::kF32,
                    out.mutable_data_as<float>() + t * h, h);
        }
      }
    });
    return absl::OkStatus();
  }

  absl::Status DoRope(const TensorView& x, absl::Span<const int32_t> positions,
                      absl::Span<const float> inv_freq, RopeLayout layout,
                      float cos_sin_scale) override {
    const int64_t half = x.dim(2) / 2;
    pool_.ParallelFor(x.dim(0), 1, [&](int64_t t0, int64_t t1) {
      std::vector<float> cs(half), sn(half);
      for (int64_t t = t0; t < t1; ++t) {
        for (int64_t i = 0; i < half; ++i) {
          const float angle = static_cast<float>(positions[t]) * inv_freq[i];
          cs[i] = std::cos(angle) * cos_sin_scale;
          sn[i] = std::sin(angle) * cos_sin_scale;
        }
        for (int64_t h = 0; h < x.dim(1); ++h) {
          float* v = x.mutable_data_as<float>() + t * x.stride(0) + h * x.stride(1);
          const int64_t step = layout == RopeLayout::kHalfSplit ? 1 : 2;
          const int64_t offset = layout == RopeLayout::kHalfSplit ? half : 1;
          for (int64_t i = 0; i < half; ++i) {
            float& a = v[i * step];
            float& b = v[i * step + offset];
            const float a0 = a, b0 = b;
            a = a0 * cs[i] - b0 * sn[i];
            b = b0 * cs[i] + a0 * sn[i];
          }
        }
      }
    });
    return absl::OkStatus();
  }

  // One task per (query row, kv head, chunk of up to 8 of its query heads): the heads of a
  // chunk read each cached key and value once. (MLA has one kv head for all query heads;
  // the chunks let its decode use more than one thread.)
  absl::Status DoAttention(const TensorView& q, const PagedKvLayer& cache,
                           absl::Span<const AttentionSequence> sequences, float scale,
                           const TensorView& out) override {
    // Without values (MLA's latent cache) the value is the first dv dims of the key.
    const bool latent = cache.v.empty();
    const int64_t heads = q.dim(1), dk = q.dim(2), kv_heads = cache.k.dim(2), dv = out.dim(2);
    const int64_t group = heads / kv_heads;
    constexpr int64_t kHeadChunk = 8;
    // A task: one query row's heads of kv heads [kvh0, kvh1), query heads [g0, g1) of each
    // group. Groups of at most kHeadChunk heads go whole, with every kv head at once (up to
    // kKvChunk): a slot's rows of all kv heads are then read together, whole (one kv head's
    // alone, part of each cached row, streams at about half the rate); larger groups (MLA's
    // 128 heads over one latent) in chunks of kHeadChunk heads.
    constexpr int64_t kKvChunk = 8;
    struct Task {
      const AttentionSequence* seq;
      int64_t i;
      int64_t kvh0, kvh1;
      int64_t g0, g1;
    };
    std::vector<Task> tasks;
    for (const AttentionSequence& s : sequences) {
      for (int64_t i = 0; i < s.query_count; ++i) {
        if (group <= kHeadChunk) {
          for (int64_t h = 0; h < kv_heads; h += kKvChunk) {
            tasks.push_back({&s, i, h, std::min(kv_heads, h + kKvChunk), 0, group});
          }
          continue;
        }
        for (int64_t h = 0; h < kv_heads; ++h) {
          for (int64_t g0 = 0; g0 < group; g0 += kHeadChunk) {
            tasks.push_back({&s, i, h, h + 1, g0, std::min(group, g0 + kHeadChunk)});
          }
        }
      }
    }
    // Heads of the largest task: the stride of the split parts' outputs.
    int64_t task_heads = 0;
    for (const Task& t : tasks)
      task_heads = std::max(task_heads, (t.kvh1 - t.kvh0) * (t.g1 - t.g0));
    // Long rows first so the threads finish together.
    std::stable_sort(tasks.begin(), tasks.end(), [](const Task& a, const Task& b) {
      return a.seq->first_position + a.i > b.seq->first_position + b.i;
    });
    const bool bf16 = cache.k.dtype() == DType::kBF16;
    const size_t elem = DTypeSize(cache.k.dtype());
    // Split-K: too few tasks for the threads (decode with few kv heads) and long rows: each
    // task's keys in parts of at least kSplitKeys, merged after (flash-decoding).
    constexpr int64_t kSplitKeys = 256;
    const int64_t want = 2 * pool_.num_threads();
    int64_t parts = 1;
    if (static_cast<int64_t>(tasks.size()) < want && !tasks.empty()) {
      const int64_t longest = tasks.front().seq->first_position + tasks.front().i + 1;
      parts = std::min((want + static_cast<int64_t>(tasks.size()) - 1) / static_cast<int64_t>(tasks.size()),
                       longest / kSplitKeys);
      parts = std::max<int64_t>(parts, 1);
    }
    struct Part {
      int64_t task, begin, end;
    };
    std::vector<Part> work;
    for (int64_t t = 0; t < static_cast<int64_t>(tasks.size()); ++t) {
      const int64_t n_keys = tasks[t].seq->first_position + tasks[t].i + 1;
      const int64_t p = std::min(parts, std::max<int64_t>(n_keys / kSplitKeys, 1));
      // Part boundaries on cache blocks.
      const int64_t step = (n_keys / p + kKvBlockSize - 1) / kKvBlockSize * kKvBlockSize;
      for (int64_t b = 0; b < n_keys; b += step) work.push_back({t, b, std::min(n_keys, b + step)});
    }
    const bool split = work.size() > tasks.size();
    // Split parts write unnormalised outputs and (max, sum) per head here, then merge.
    std::vector<float> partial_out, partial_stats;
    if (split) {
      partial_out.resize(work.size() * static_cast<size_t>(task_heads * dv));
      partial_stats.resize(work.size() * static_cast<size_t>(task_heads) * 2);
    }
    pool_.ParallelFor(static_cast<int64_t>(work.size()), 1, [&](int64_t b, int64_t e) {
      std::vector<float> scores;
      for (int64_t wi = b; wi < e; ++wi) {
        const Task& task = tasks[work[wi].task];
        const AttentionSequence& s = *task.seq;
        const int64_t row = s.query_begin + task.i;
        const int64_t first_head = row * heads + task.kvh0 * group + task.g0;
        cpu::AttendArgs a;
        a.gn = task.g1 - task.g0;
        a.kv_heads = task.kvh1 - task.kvh0;
        a.dk = dk;
        a.dv = dv;
        a.scale = scale;
        a.q = q.data_as<float>() + first_head * dk;
        a.q_stride = group * dk;
        a.out = split ? partial_out.data() + wi * task_heads * dv
                      : out.mutable_data_as<float>() + first_head * dv;
        a.out_stride = split ? a.gn * dv : group * dv;
        a.stats = split ? partial_stats.data() + wi * task_heads * 2 : nullptr;
        a.bf16 = bf16;
        // Slot s's row of kv head h starts (s * kv_heads + h) * width elements in.
        a.k = static_cast<const char*>(cache.k.data()) + task.kvh0 * dk * elem;
        a.k_slot_stride = kv_heads * dk;
        a.k_head_stride = dk;
        if (latent) {
          a.v = a.k;
          a.v_slot_stride = a.k_slot_stride;
          a.v_head_stride = a.k_head_stride;
        } else {
          a.v = static_cast<const char*>(cache.v.data()) + task.kvh0 * dv * elem;
          a.v_slot_stride = kv_heads * dv;
          a.v_head_stride = dv;
        }
        a.block_table = s.block_table.data();
        a.key_begin = work[wi].begin;
        a.n_keys = work[wi].end;
        scores.resize(static_cast<size_t>(a.kv_heads * a.gn * (a.n_keys - a.key_begin)));
        a.scores = scores.data();
        cpu::Attend(a);
      }
    });
    if (!split) return absl::OkStatus();
    // Merge: out = sum_p e^(m_p - M) o_p / sum_p e^(m_p - M) l_p over a task's parts.
    for (size_t first = 0; first < work.size();) {
      size_t last = first;
      while (last < work.size() && work[last].task == work[first].task) ++last;
      const Task& task = tasks[work[first].task];
      const int64_t row = task.seq->query_begin + task.i;
      const int64_t gn = task.g1 - task.g0;
      for (int64_t hg = 0; hg < (task.kvh1 - task.kvh0) * gn; ++hg) {
        float m = -HUGE_VALF;
        for (size_t w = first; w < last; ++w)
          m = std::max(m, partial_stats[(w * task_heads + hg) * 2]);
        const int64_t head = (task.kvh0 + hg / gn) * group + task.g0 + hg % gn;
        float* o = out.mutable_data_as<float>() + (row * heads + head) * dv;
        std::fill(o, o + dv, 0.0f);
        double l = 0;
        for (size_t w = first; w < last; ++w) {
          const float f = std::exp(partial_stats[(w * task_heads + hg) * 2] - m);
          l += f * partial_stats[(w * task_heads + hg) * 2 + 1];
          const float* po = partial_out.data() + (w * task_heads + hg) * dv;
          for (int64_t i = 0; i < dv; ++i) o[i] += f * po[i];
        }
        const float inv = static_cast<float>(1.0 / l);
        for (int64_t i = 0; i < dv; ++i) o[i] *= inv;
      }
      first = last;
    }
    return absl::OkStatus();
  }

  absl::Status DoSiluMul(const TensorView& gate, const TensorView& up, const TensorView& out) override {
    const float* g = gate.data_as<float>();
    const float* u = up.data_as<float>();
    float* o = out.mutable_data_as<float>();
    pool_.ParallelFor(gate.num_elements(), 1 << 15, [&](int64_t b, int64_t e) {
      cpu::SiluMul(g + b, u + b, o + b, e - b);
    });
    return absl::OkStatus();
  }

  absl::Status DoEmbedding(const TensorView& table, absl::Span<const int32_t> ids,
                           const TensorView& out) override {
    const int64_t h = table.dim(1);
    const size_t row_bytes = static_cast<size_t>(h) * DTypeSize(table.dtype());
    for (size_t t = 0; t < ids.size(); ++t) {
      ConvertToF32(table.dtype(), static_cast<const char*>(table.data()) + ids[t] * row_bytes,
                   out.mutable_data_as<float>() + t * h, static_cast<size_t>(h));
    }
    return absl::OkStatus();
  }

  absl::Status DoAdd(const TensorView& a, const TensorView& b, const TensorView& out) override {
    const float* pa = a.data_as<float>();
    const float* pb = b.data_as<float>();
    float* po = out.mutable_data_as<float>();
    cpu::Add(pa, pb, po, a.num_elements());
    return absl::OkStatus();
  }

  absl::Status DoSoftmax(const TensorView& x, const TensorView& out, bool log) override {
    const int64_t n = x.dim(1);
    pool_.ParallelFor(x.dim(0), 1, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* in = x.data_as<float>() + r * n;
        float* o = out.mutable_data_as<float>() + r * n;
        const float m = *std::max_element(in, in + n);
        double total = 0.0;
        for (int64_t i = 0; i < n; ++i) total += std::exp(static_cast<double>(in[i] - m));
        const double log_total = std::log(total);
        for (int64_t i = 0; i < n; ++i) {
          o[i] = log ? static_cast<float>((in[i] - m) - log_total)
                     : static_cast<float>(std::exp(static_cast<double>(in[i] - m)) / total);
        }
      }
    });
    return absl::OkStatus();
  }

  absl::Status DoTopK(const TensorView& x, int64_t k, const TensorView& values,
                      const TensorView& indices) override {
    const int64_t n = x.dim(1);
    pool_.ParallelFor(x.dim(0), 1, [&](int64_t r0, int64_t r1) {
      std::vector<int32_t> order(n);
      for (int64_t r = r0; r < r1; ++r) {
        const float* in = x.data_as<float>() + r * n;
        std::iota(order.begin(), order.end(), 0);
        auto key = [in](int32_t i) { return std::isnan(in[i]) ? -INFINITY : in[i]; };
        std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
          return key(a) > key(b) || (key(a) == key(b) && a < b);
        });
        for (int64_t i = 0; i < k; ++i) {
          values.mutable_data_as<float>()[r * k + i] = in[order[i]];
          indices.mutable_data_as<int32_t>()[r * k + i] = order[i];
        }
      }
    });
    return absl::OkStatus();
  }

  // The host draw, rows spread over the threads (a group's draws at once).
  absl::Status DoSampleTokens(const TensorView& logits, absl::Span<const TokenDraw> draws,
                              absl::Span<DrawnToken> out) override {
    const int64_t rows = logits.dim(0);
    std::vector<absl::Status> status(static_cast<size_t>(rows));
    pool_.ParallelFor(rows, 1, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) status[r] = DrawRowOnHost(logits, r, draws[r], &out[r]);
    });
    for (const absl::Status& s : status) RRT_RETURN_IF_ERROR(s);
    return absl::OkStatus();
  }

 private:
  // oneDNN per thread on a slice of the output columns (weight rows).
  absl::Status Gemm(const TensorView& x, const Weight& w, const TensorView& y) {
    const int64_t m = x.dim(0), k = x.dim(1), n = w.data.dim(0);
    if (w.data.dtype() != DType::kBF16) return GemmPass(x.data_as<float>(), nullptr, m, k, w, y.mutable_data_as<float>());
    // bf16 weights: activations rounded to bf16 (x_hi); with exact_, a second pass on the
    // rounding error (x_lo = bf16(x - x_hi)) restores x to ~16 mantissa bits.
    RoundActivations(x);
    const float* xs = x.data_as<float>();
    if (exact_) {
      x_lo_.resize(static_cast<size_t>(m * k));
      pool_.ParallelFor(m * k, 1 << 14, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) x_lo_[i] = F32ToBf16(xs[i] - Bf16ToF32(x_bf16_[i]));
      });
    }
    RRT_RETURN_IF_ERROR(GemmPass(xs, x_bf16_.data(), m, k, w, y.mutable_data_as<float>()));
    if (!exact_) return absl::OkStatus();
    y_lo_.resize(static_cast<size_t>(m * n));
    RRT_RETURN_IF_ERROR(GemmPass(xs, x_lo_.data(), m, k, w, y_lo_.data()));
    float* ys = y.mutable_data_as<float>();
    pool_.ParallelFor(m * n, 1 << 14, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) ys[i] += y_lo_[i];
    });
    return absl::OkStatus();
  }

  // x_bf16_ = x rounded to bf16 (the bf16 GEMM's activations).
  void RoundActivations(const TensorView& x) {
    const int64_t count = x.dim(0) * x.dim(1);
    x_bf16_.resize(static_cast<size_t>(count));
    const float* xs = x.data_as<float>();
    pool_.ParallelFor(count, 1 << 14, [&](int64_t b, int64_t e) {
      cpu::RoundToBf16(xs + b, e - b, x_bf16_.data() + b);
    });
  }

  // A prompt whose weight dtype oneDNN does not take as it is (FP8, f16, bf16 without
  // AVX512-BF16): each thread converts panels of its weight rows and runs oneDNN's GEMM on
  // each. The conversion is one pass over the weights; the GEMM does 2 * m flops per
  // weight, so for prompts the GEMM dominates. FP8 where oneDNN runs bf16 (AVX512-BF16,
  // about twice its f32 rate) and not exact_: Fp8GemmBf16. Otherwise f32 panels, the
  // values the reference multiplies by.
  absl::Status GemmDequantized(const TensorView& x, const Weight& w, const TensorView& y) {
    const int64_t m = x.dim(0), k = x.dim(1), n = w.data.dim(0);
    const DType dtype = w.data.dtype();
    if (dtype == DType::kF8E4M3 && !exact_ && cpu::OneDnnGemm::Supports(DType::kBF16)) {
      return Fp8GemmBf16(x, w, y);
    }
    const float* scales = dtype == DType::kF8E4M3 ? w.scale_inv.data_as<float>() : nullptr;
    const int threads = pool_.num_threads();
    const int64_t per = ((n + threads - 1) / threads + 15) / 16 * 16;
    const int64_t panel_rows = std::clamp<int64_t>(kGemmPanelBytes / (k * 4) / 16 * 16, 16, 256);
    if (panels_.size() < static_cast<size_t>(threads)) panels_.resize(threads);
    std::vector<absl::Status> status(threads);
    pool_.RunOnEachThread([&](int t) {
      const int64_t n0 = std::min<int64_t>(n, t * per), n1 = std::min<int64_t>(n, n0 + per);
      Panel& panel = panels_[t];
      panel.f32.resize(
          static_cast<size_t>(std::min(panel_rows, std::max<int64_t>(n1 - n0, 0)) * k));
      for (int64_t p0 = n0; p0 < n1 && status[t].ok(); p0 += panel_rows) {
        const int64_t p1 = std::min(n1, p0 + panel_rows);
        cpu::DequantizeRows(dtype, w.data.data(), scales, k, p0, p1, panel.f32.data());
        status[t] = gemm_[t].Run(DType::kF32, x.data_as<float>(), nullptr, m, k, panel.f32.data(),
                                 p1 - p0, y.mutable_data_as<float>() + p0, n);
      }
    });
    for (const absl::Status& s : status) RRT_RETURN_IF_ERROR(s);
    return absl::OkStatus();
  }

  // An FP8 prompt on oneDNN's bf16 GEMM with the weights exact: bf16 holds every e4m3 value,
  // and a 128-row block's scales (one per 128 columns of K) go into the activations, so
  // y[:, rows of block b] = bf16(x * scale[b, k / 128]) . W^T. The activations are rounded
  // once, as for bf16 weights. Each thread takes whole 128-row blocks; per block it scales
  // and rounds x (m * k values, against 256 * m * k flops of GEMM) and converts the block's
  // weights (kConvertBytes of f32 at a time).
  absl::Status Fp8GemmBf16(const TensorView& x, const Weight& w, const TensorView& y) {
    const int64_t m = x.dim(0), k = x.dim(1), n = w.data.dim(0);
    const int64_t k_blocks = Fp8ScaleBlocks(k), n_blocks = Fp8ScaleBlocks(n);
    const float* scales = w.scale_inv.data_as<float>();
    const int threads = pool_.num_threads();
    const int64_t per = (n_blocks + threads - 1) / threads;  // blocks a thread
    const int64_t block = kFp8BlockSize;
    const int64_t f32_rows = std::clamp<int64_t>(kConvertBytes / (k * 4), 1, block);
    if (panels_.size() < static_cast<size_t>(threads)) panels_.resize(threads);
    std::vector<absl::Status> status(threads);
    pool_.RunOnEachThread([&](int t) {
      const int64_t b0 = std::min<int64_t>(n_blocks, t * per),
                    b1 = std::min<int64_t>(n_blocks, b0 + per);
      if (b0 >= b1) return;
      Panel& panel = panels_[t];
      panel.f32.resize(static_cast<size_t>(f32_rows * k));
      panel.bf16.resize(static_cast<size_t>(block * k));
      panel.x_bf16.resize(static_cast<size_t>(m * k));
      const float* xs = x.data_as<float>();
      for (int64_t b = b0; b < b1 && status[t].ok(); ++b) {
        const int64_t r0 = b * block, r1 = std::min(n, r0 + block);
        const float* s = scales + b * k_blocks;
        for (int64_t i = 0; i < m; ++i)
          cpu::RoundScaledToBf16(xs + i * k, k, s, panel.x_bf16.data() + i * k);
        for (int64_t q0 = r0; q0 < r1; q0 += f32_rows) {
          const int64_t q1 = std::min(r1, q0 + f32_rows);
          cpu::DequantizeRows(DType::kF8E4M3, w.data.data(), nullptr, k, q0, q1, panel.f32.data());
          cpu::RoundToBf16(panel.f32.data(), (q1 - q0) * k, panel.bf16.data() + (q0 - r0) * k);
        }
        status[t] = gemm_[t].Run(DType::kBF16, xs, panel.x_bf16.data(), m, k, panel.bf16.data(),
                                 r1 - r0, y.mutable_data_as<float>() + r0, n);
      }
    });
    for (const absl::Status& s : status) RRT_RETURN_IF_ERROR(s);
    return absl::OkStatus();
  }

  // y[m, n] = x . W^T through oneDNN, each thread on a slice of W's rows.
  absl::Status GemmPass(const float* x, const uint16_t* x_bf16, int64_t m, int64_t k,
                        const Weight& w, float* y) {
    const int64_t n = w.data.dim(0);
    const DType dtype = w.data.dtype();
    const int threads = pool_.num_threads();
    const int64_t per = ((n + threads - 1) / threads + 63) / 64 * 64;
    std::vector<absl::Status> status(threads);
    pool_.RunOnEachThread([&](int t) {
      const int64_t n0 = std::min<int64_t>(n, t * per), n1 = std::min<int64_t>(n, n0 + per);
      if (n0 >= n1) return;
      const char* wp = static_cast<const char*>(w.data.data()) + n0 * k * DTypeSize(dtype);
      status[t] = gemm_[t].Run(dtype, x, x_bf16, m, k, wp, n1 - n0, y + n0, n);
    });
    for (const absl::Status& s : status) RRT_RETURN_IF_ERROR(s);
    return absl::OkStatus();
  }

  ThreadPool pool_;
  std::vector<cpu::OneDnnGemm> gemm_;
  bool exact_;
  bool has_bf16_dot_ = false;
  std::vector<uint16_t> x_bf16_, x_lo_;
  std::vector<float> y_lo_;
  struct Panel {
    std::vector<float> f32;
    std::vector<uint16_t> bf16, x_bf16;  // Fp8GemmBf16's weights and scaled activations
  };
  std::vector<Panel> panels_;  // GemmDequantized's weight panels, per thread
};

}  // namespace

std::unique_ptr<Backend> NewCpuBackend(const BackendOptions& options) {
  return std::make_unique<CpuBackend>(options);
}

}  // namespace reasonrt
