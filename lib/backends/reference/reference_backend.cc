// The reference backend: plain loops, f32 accumulation, written to be read. Every other
// backend is tested against it; it is never the fast path.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "lib/backends/builtin.h"
#include "lib/core/strings.h"
#include "reasonrt/backend.h"
#include "reasonrt/dtype.h"

namespace reasonrt {
namespace {

// Row r of a float matrix in any stored dtype, as f32.
void LoadRow(const TensorView& m, int64_t r, float* out) {
  const int64_t cols = m.dim(1);
  const char* base = static_cast<const char*>(m.data()) + r * cols * DTypeSize(m.dtype());
  ConvertToF32(m.dtype(), base, out, static_cast<size_t>(cols));
}

// Row r of weight w, dequantized (fp8 block scales applied) to f32.
void LoadWeightRow(const Weight& w, int64_t r, float* out) {
  LoadRow(w.data, r, out);
  if (w.data.dtype() != DType::kF8E4M3) return;
  const float* scales = w.scale_inv.data_as<float>() + (r / kFp8BlockSize) * w.scale_inv.dim(1);
  for (int64_t c = 0; c < w.data.dim(1); ++c) out[c] *= scales[c / kFp8BlockSize];
}

float LoadScalar(const TensorView& t, int64_t i) {
  float v;
  ConvertToF32(t.dtype(), static_cast<const char*>(t.data()) + i * DTypeSize(t.dtype()), &v, 1);
  return v;
}

class ReferenceBackend final : public Backend {
 public:
  std::string_view name() const override { return "reference"; }
  Device device() const override { return Device{}; }

 protected:
  // y[T, N] = x[T, K] . W[N, K]^T + bias[N]
  absl::Status DoMatMul(const TensorView& x, const Weight& w, const TensorView* bias,
                        const TensorView& y) override {
    const int64_t t_rows = x.dim(0), k = x.dim(1), n = w.data.dim(0);
    const float* xs = x.data_as<float>();
    float* ys = y.mutable_data_as<float>();
    std::vector<float> wrow(k);
    for (int64_t j = 0; j < n; ++j) {
      LoadWeightRow(w, j, wrow.data());
      const float b = bias ? LoadScalar(*bias, j) : 0.0f;
      for (int64_t t = 0; t < t_rows; ++t) {
        float acc = 0.0f;
        for (int64_t i = 0; i < k; ++i) acc += xs[t * k + i] * wrow[i];
        ys[t * n + j] = acc + b;
      }
    }
    return absl::OkStatus();
  }

  // y = x / sqrt(mean(x^2) + eps) * gain
  absl::Status DoRmsNorm(const TensorView& x, const TensorView& gain, float eps,
                         const TensorView& y) override {
    const int64_t rows = x.dim(0), h = x.dim(1);
    std::vector<float> g(h);
    ConvertToF32(gain.dtype(), gain.data(), g.data(), static_cast<size_t>(h));
    for (int64_t r = 0; r < rows; ++r) {
      const float* in = x.data_as<float>() + r * x.stride(0);
      float* out = y.mutable_data_as<float>() + r * y.stride(0);
      float sum_sq = 0.0f;
      for (int64_t i = 0; i < h; ++i) sum_sq += in[i] * in[i];
      const float inv = 1.0f / std::sqrt(sum_sq / static_cast<float>(h) + eps);
      for (int64_t i = 0; i < h; ++i) out[i] = in[i] * inv * g[i];
    }
    return absl::OkStatus();
  }

  // y[t, h, n] = sum_k x[t, h, k] * W[h](n, k)   (kOutIn; W[h](k, n) for kInOut)
  absl::Status DoHeadMatMul(const TensorView& x, const TensorView& w, HeadWeightLayout layout,
                            const TensorView& y) override {
    const bool out_in = layout == HeadWeightLayout::kOutIn;
    const int64_t heads = w.dim(0), n = y.dim(2), k = x.dim(2);
    std::vector<float> wh(static_cast<size_t>(w.dim(1) * w.dim(2)));
    for (int64_t h = 0; h < heads; ++h) {
      const char* src = static_cast<const char*>(w.data()) + h * w.stride(0) * DTypeSize(w.dtype());
      ConvertToF32(w.dtype(), src, wh.data(), wh.size());
      for (int64_t t = 0; t < x.dim(0); ++t) {
        const float* xv = x.data_as<float>() + t * x.stride(0) + h * x.stride(1);
        float* yv = y.mutable_data_as<float>() + t * y.stride(0) + h * y.stride(1);
        for (int64_t j = 0; j < n; ++j) {
          float acc = 0.0f;
          for (int64_t i = 0; i < k; ++i) acc += xv[i] * (out_in ? wh[j * k + i] : wh[i * n + j]);
          yv[j] = acc;
        }
      }
    }
    return absl::OkStatus();
  }

  absl::Status DoAddWeightedRows(const TensorView& x, absl::Span<const float> weights, int64_t k,
                                 const TensorView& out) override {
    const int64_t h = out.dim(1);
    for (int64_t t = 0; t < out.dim(0); ++t) {
      float* o = out.mutable_data_as<float>() + t * h;
      for (int64_t j = 0; j < k; ++j) {
        const float* row = x.data_as<float>() + (t * k + j) * h;
        for (int64_t i = 0; i < h; ++i) o[i] += weights[t * k + j] * row[i];
      }
    }
    return absl::OkStatus();
  }

  // x[T, heads, D]: pairs (i, i + D/2) or (2i, 2i + 1) rotated by position * inv_freq[i].
  absl::Status DoRope(const TensorView& x, absl::Span<const int32_t> positions,
                      absl::Span<const float> inv_freq, RopeLayout layout,
                      float cos_sin_scale) override {
    const int64_t half = x.dim(2) / 2;
    for (int64_t t = 0; t < x.dim(0); ++t) {
      for (int64_t h = 0; h < x.dim(1); ++h) {
        float* v = x.mutable_data_as<float>() + t * x.stride(0) + h * x.stride(1);
        for (int64_t i = 0; i < half; ++i) {
          const float angle = static_cast<float>(positions[t]) * inv_freq[i];
          const float c = std::cos(angle) * cos_sin_scale, s = std::sin(angle) * cos_sin_scale;
          float& a = layout == RopeLayout::kHalfSplit ? v[i] : v[2 * i];
          float& b = layout == RopeLayout::kHalfSplit ? v[i + half] : v[2 * i + 1];
          const float a0 = a, b0 = b;
          a = a0 * c - b0 * s;
          b = b0 * c + a0 * s;
        }
      }
    }
    return absl::OkStatus();
  }

  // For each query row: scores over positions [0, pos], softmax, weighted sum of values.
  absl::Status DoAttention(const TensorView& q, const PagedKvLayer& cache,
                           absl::Span<const AttentionSequence> sequences, float scale,
                           const TensorView& out) override {
    // Without values (MLA's latent cache) the value is the first dv dims of the key.
    const bool latent = cache.v.empty();
    const int64_t heads = q.dim(1), dk = q.dim(2), kv_heads = cache.k.dim(2), dv = out.dim(2);
    const int64_t v_width = latent ? dk : dv;
    const int64_t group = heads / kv_heads;
    std::vector<float> keys, values, scores;
    for (const AttentionSequence& s : sequences) {
      // The sequence's cached keys and values as f32 [positions, kv_heads, dim].
      const int64_t n_pos = s.first_position + s.query_count;
      GatherSequence(cache.k, s, n_pos, keys);
      if (!latent) GatherSequence(cache.v, s, n_pos, values);
      const std::vector<float>& vals = latent ? keys : values;
      for (int64_t i = 0; i < s.query_count; ++i) {
        const int64_t row = s.query_begin + i;
        const int64_t n_keys = s.first_position + i + 1;
        scores.assign(n_keys, 0.0f);
        for (int64_t h = 0; h < heads; ++h) {
          const float* qv = q.data_as<float>() + (row * heads + h) * dk;
          const int64_t kvh = h / group;
          float max_score = -INFINITY;
          for (int64_t p = 0; p < n_keys; ++p) {
            const float* key = keys.data() + (p * kv_heads + kvh) * dk;
            float dot = 0.0f;
            for (int64_t d = 0; d < dk; ++d) dot += qv[d] * key[d];
            scores[p] = dot * scale;
            max_score = std::max(max_score, scores[p]);
          }
          float total = 0.0f;
          for (int64_t p = 0; p < n_keys; ++p) {
            scores[p] = std::exp(scores[p] - max_score);
            total += scores[p];
          }
          float* o = out.mutable_data_as<float>() + (row * heads + h) * dv;
          std::fill(o, o + dv, 0.0f);
          for (int64_t p = 0; p < n_keys; ++p) {
            const float* value = vals.data() + (p * kv_heads + kvh) * v_width;
            const float weight = scores[p] / total;
            for (int64_t d = 0; d < dv; ++d) o[d] += weight * value[d];
          }
        }
      }
    }
    return absl::OkStatus();
  }

  // Positions [0, n_pos) of a sequence from cache c [blocks, block, heads, dim] into f32.
  static void GatherSequence(const TensorView& c, const AttentionSequence& s, int64_t n_pos,
                             std::vector<float>& out) {
    const int64_t width = c.dim(2) * c.dim(3);
    out.resize(static_cast<size_t>(n_pos * width));
    for (int64_t p = 0; p < n_pos; ++p) {
      const int64_t slot = s.block_table[p / kKvBlockSize] * kKvBlockSize + p % kKvBlockSize;
      const char* src = static_cast<const char*>(c.data()) + slot * width * DTypeSize(c.dtype());
      ConvertToF32(c.dtype(), src, out.data() + p * width, static_cast<size_t>(width));
    }
  }

  absl::Status DoSiluMul(const TensorView& gate, const TensorView& up, const TensorView& out) override {
    const float* g = gate.data_as<float>();
    const float* u = up.data_as<float>();
    float* o = out.mutable_data_as<float>();
    for (int64_t i = 0; i < gate.num_elements(); ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
    return absl::OkStatus();
  }

  absl::Status DoEmbedding(const TensorView& table, absl::Span<const int32_t> ids,
                           const TensorView& out) override {
    for (size_t t = 0; t < ids.size(); ++t) LoadRow(table, ids[t], out.mutable_data_as<float>() + t * table.dim(1));
    return absl::OkStatus();
  }

  absl::Status DoAdd(const TensorView& a, const TensorView& b, const TensorView& out) override {
    for (int64_t i = 0; i < a.num_elements(); ++i) {
      out.mutable_data_as<float>()[i] = a.data_as<float>()[i] + b.data_as<float>()[i];
    }
    return absl::OkStatus();
  }

  absl::Status DoSoftmax(const TensorView& x, const TensorView& out, bool log) override {
    const int64_t n = x.dim(1);
    for (int64_t r = 0; r < x.dim(0); ++r) {
      const float* in = x.data_as<float>() + r * n;
      float* o = out.mutable_data_as<float>() + r * n;
      const float m = *std::max_element(in, in + n);
      double total = 0.0;
      for (int64_t i = 0; i < n; ++i) total += std::exp(static_cast<double>(in[i] - m));
      for (int64_t i = 0; i < n; ++i) {
        o[i] = log ? static_cast<float>((in[i] - m) - std::log(total))
                   : static_cast<float>(std::exp(static_cast<double>(in[i] - m)) / total);
      }
    }
    return absl::OkStatus();
  }

  absl::Status DoTopK(const TensorView& x, int64_t k, const TensorView& values,
                      const TensorView& indices) override {
    const int64_t n = x.dim(1);
    std::vector<int32_t> order(n);
    for (int64_t r = 0; r < x.dim(0); ++r) {
      const float* in = x.data_as<float>() + r * n;
      std::iota(order.begin(), order.end(), 0);
      // NaN ranks below everything (and keeps the ordering strict).
      auto key = [in](int32_t i) { return std::isnan(in[i]) ? -INFINITY : in[i]; };
      std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return key(a) > key(b); });
      for (int64_t i = 0; i < k; ++i) {
        values.mutable_data_as<float>()[r * k + i] = in[order[i]];
        indices.mutable_data_as<int32_t>()[r * k + i] = order[i];
      }
    }
    return absl::OkStatus();
  }

  // TokenDraw written as its definition reads: the whole row sorted, sums in f64.
  absl::Status DoSampleTokens(const TensorView& logits, absl::Span<const TokenDraw> draws,
                              absl::Span<DrawnToken> out) override {
    const int64_t n = logits.dim(1);
    for (size_t r = 0; r < draws.size(); ++r) {
      const TokenDraw& d = draws[r];
      const float* in = logits.data_as<float>() + static_cast<int64_t>(r) * n;
      for (int64_t i = 0; i < n; ++i) {
        if (std::isnan(in[i]) || in[i] == INFINITY) {
          return absl::InvalidArgumentError(
              StrCat("SampleTokens: row ", r, ": logits contain NaN or +inf"));
        }
      }
      const float t = d.greedy ? 1.0f : d.temperature;
      auto logprob = [&](int64_t token) {
        double m = -INFINITY, z = 0;
        for (int64_t i = 0; i < n; ++i) m = std::max(m, double(in[i] / t));
        for (int64_t i = 0; i < n; ++i) z += std::exp(double(in[i] / t) - m);
        return static_cast<float>(double(in[token] / t) - m - std::log(z));
      };
      DrawnToken& o = out[r];
      o = DrawnToken{};
      if (d.score_token >= 0) o.score_logprob = logprob(d.score_token);
      if (!d.draw) continue;
      std::vector<float> w(in, in + n);
      for (const LogitEdit& e : d.edits) {
        float v = w[e.token] + e.bias;
        if (v > 0) {
          v /= e.repetition_penalty;
        } else {
          v *= e.repetition_penalty;
        }
        v += e.offset;
        w[e.token] = e.banned ? -INFINITY : v;
      }
      if (!d.greedy) {
        const float inv_t = 1.0f / d.temperature;
        for (float& v : w) v *= inv_t;
      }
      std::vector<int32_t> order(static_cast<size_t>(n));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](int32_t a, int32_t b) { return w[a] > w[b]; });
      const float top = w[order[0]];
      if (top == -INFINITY) {
        return absl::InvalidArgumentError(StrCat("SampleTokens: row ", r, ": every logit is -inf"));
      }
      if (d.greedy) {
        o.token = order[0];
        o.logprob = logprob(o.token);
        continue;
      }
      std::vector<double> p(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) p[i] = std::exp(double(w[i]) - double(top));
      int64_t kept = d.top_k > 0 ? std::min<int64_t>(d.top_k, n) : n;
      if (d.top_p < 1.0f) {
        double mass = 0, cum = 0;
        for (int64_t j = 0; j < kept; ++j) mass += p[order[j]];
        for (int64_t j = 0; j < kept; ++j) {
          cum += p[order[j]];
          if (cum >= d.top_p * mass) {
            kept = j + 1;
            break;
          }
        }
      }
      std::vector<int32_t> ids;
      for (int64_t j = 0; j < kept; ++j) {
        if (p[order[j]] >= d.min_p && p[order[j]] > 0) ids.push_back(order[j]);
      }
      std::sort(ids.begin(), ids.end());
      double z = 0;
      for (int32_t id : ids) z += p[id];
      double cum = 0;
      o.token = ids.back();
      for (int32_t id : ids) {
        cum += p[id];
        if (d.uniform * z < cum) {
          o.token = id;
          break;
        }
      }
      o.logprob = logprob(o.token);
      o.sampled_logprob = static_cast<float>(std::log(p[o.token] / z));
    }
    return absl::OkStatus();
  }
};

}  // namespace

std::unique_ptr<Backend> NewReferenceBackend() { return std::make_unique<ReferenceBackend>(); }

}  // namespace reasonrt
