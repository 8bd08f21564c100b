// The cuda backend's decode-step norm and RoPE kernels (lib/backends/cuda/ops_kernel.cuh),
// their source run on the host through tests/backends/cuda_emulation.h, against the same
// steps in f64:
// - RmsNormKernel: y = x / sqrt(mean(x^2) + eps) * gain, with delta (AddRmsNorm) x += delta
//   first and written back (the same f32 sums, so the same bits); float4 rows (up to 8192
//   wide, the widest kept in registers) and one value a thread; strided rows, y in place;
//   f32, bf16 and f16 gains. Tolerance 1e-5 relative (y).
// - RopeStoreKernel (RoPE and the KV store in one launch) and RopeKernel: q and k rotated
//   in place inside a fused q/k/v row (both pair layouts, YaRN's cos/sin scale), the
//   rotated keys and the values stored into the cache rows of their slots (f32, or bf16 as
//   the host rounds), other cache rows untouched. The angle is the kernel's f32 product of
//   position and frequency; its cos and sin in f64. Tolerance 1e-5 (and bf16's half ulp).
// Each runs as a dependent launch (cuda_emulation.h's ScopedPredecessor): the kernel before
// writes the inputs (and a gain that is not settled) only when the kernel waits for it.
// clang-format off
#include "tests/backends/cuda_emulation.h"
#include "lib/backends/cuda/kernel_util.cuh"
#include "lib/backends/cuda/ops_kernel.cuh"
// clang-format on

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "reasonrt/dtype.h"
#include "tests/backends/emulation_weights.h"

namespace reasonrt::cuda {
namespace {

using testing::RoundToBf16;
using testing::Uniform;

// rows rows of width h (x's rows x_stride apart, y's y_stride; y == x when in_place), with
// delta or not, the gain in gain_dtype, read before the wait (settled) or after; vec: the
// float4 path.
struct NormCase {
  int64_t rows, h, x_stride, y_stride;
  bool delta, in_place, vec, settled;
  DType gain_dtype;
};

void CheckRmsNorm(const NormCase& c) {
  SCOPED_TRACE("rows " + std::to_string(c.rows) + " h " + std::to_string(c.h) + " strides " +
               std::to_string(c.x_stride) + "/" + std::to_string(c.y_stride) +
               (c.delta ? " delta" : "") + (c.in_place ? " in place" : "") +
               (c.vec ? " vec" : " scalar") + (c.settled ? " settled" : "") + " gain " +
               std::string(DTypeName(c.gain_dtype)));
  std::mt19937 rng(43);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const float eps = 1e-6f;
  std::vector<float> x(static_cast<size_t>(c.rows * c.x_stride)),
      delta(static_cast<size_t>(c.rows * c.h)), gain_f(static_cast<size_t>(c.h));
  for (float& v : x) v = u(rng) * 4.0f;
  for (float& v : delta) v = u(rng);
  for (float& v : gain_f) v = 1.0f + 0.1f * u(rng);
  std::vector<char> gain(gain_f.size() * DTypeSize(c.gain_dtype));
  ConvertFromF32(c.gain_dtype, gain_f.data(), gain.data(), gain_f.size());
  ConvertToF32(c.gain_dtype, gain.data(), gain_f.data(), gain_f.size());  // what the kernel reads
  // What the kernel reads and writes: NaN until the kernel before writes it (a settled gain
  // is there from the start).
  std::vector<float> x_in(x.size(), NAN), delta_in(delta.size(), NAN),
      y_out(static_cast<size_t>(c.rows * c.y_stride), NAN);
  std::vector<char> gain_in = gain;
  if (!c.settled) std::fill(gain_in.begin(), gain_in.end(), '\xff');
  float* y = c.in_place ? x_in.data() : y_out.data();
  {
    cuda_emulation::ScopedPredecessor before([&] {
      std::copy(x.begin(), x.end(), x_in.begin());
      std::copy(delta.begin(), delta.end(), delta_in.begin());
      if (!c.settled) std::copy(gain.begin(), gain.end(), gain_in.begin());
      if (!c.in_place) std::fill(y_out.begin(), y_out.end(), NAN);
    });
    cuda_emulation::RunBlocks(static_cast<unsigned>(c.rows), kNormThreads, [&] {
      RmsNormKernel(x_in.data(), c.x_stride, c.delta ? delta_in.data() : nullptr, gain_in.data(),
                    c.gain_dtype, c.settled, c.h, eps, y, c.in_place ? c.x_stride : c.y_stride,
                    c.vec);
    });
  }
  const int64_t y_stride = c.in_place ? c.x_stride : c.y_stride;
  for (int64_t r = 0; r < c.rows; ++r) {
    std::vector<float> v(static_cast<size_t>(c.h));
    double squares = 0;
    for (int64_t i = 0; i < c.h; ++i) {
      v[i] = x[r * c.x_stride + i] + (c.delta ? delta[r * c.h + i] : 0.0f);
      squares += double(v[i]) * v[i];
    }
    const double inv = 1.0 / std::sqrt(squares / double(c.h) + eps);
    for (int64_t i = 0; i < c.h; ++i) {
      if (c.delta && !c.in_place)
        ASSERT_EQ(x_in[r * c.x_stride + i], v[i]) << "residual row " << r << " column " << i;
      const double want = v[i] * inv * gain_f[i];
      ASSERT_NEAR(y[r * y_stride + i], want, 1e-5 * std::fabs(want) + 1e-6)
          << "row " << r << " column " << i;
    }
    for (int64_t i = c.h; i < y_stride && !c.in_place; ++i)
      ASSERT_TRUE(std::isnan(y[r * y_stride + i])) << "y's padding written, row " << r;
  }
}

TEST(OpsKernelEmulationTest, RmsNormEveryPath) {
  // AddRmsNorm at R1-Distill-Qwen-7B's width (896 float4s: some threads 3, some 4), y strided.
  CheckRmsNorm({3, 3584, 3584, 3592, true, false, true, false, DType::kBF16});
  CheckRmsNorm({2, 8192, 8196, 8192, false, false, true, true, DType::kF32});  // the widest
  CheckRmsNorm({2, 512, 516, 516, false, true, true, false, DType::kF32});     // y = x
  CheckRmsNorm({3, 1001, 1001, 1003, true, false, false, true, DType::kF16});  // a value a thread
  CheckRmsNorm({2, 10000, 10000, 10000, false, false, false, false, DType::kBF16});  // too wide
}

// RoPE (and the KV store) over t rows of a fused q/k/v row: q_heads heads of q, then
// k_heads of k, then v (k_heads * dims, also given apart as RopeStoreArgs::v, contiguous).
struct RopeCase {
  bool store, interleaved;
  float scale;
  DType cache_dtype;
};

void CheckRope(const RopeCase& c) {
  SCOPED_TRACE(std::string(c.store ? "RopeStoreKernel" : "RopeKernel") +
               (c.interleaved ? " interleaved" : " halves") + " scale " + std::to_string(c.scale) +
               " cache " + std::string(DTypeName(c.cache_dtype)));
  const int64_t t = 3, q_heads = 4, k_heads = 2, dims = 64, half = dims / 2, slots_n = 10;
  const int64_t row_width = (q_heads + 2 * k_heads) * dims, v_width = k_heads * dims;
  const std::vector<int32_t> positions = {0, 7, 4099};
  const std::vector<int64_t> slots = {5, 0, 9};
  std::mt19937 rng(47);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> qkv(static_cast<size_t>(t * row_width)), v(static_cast<size_t>(t * v_width)),
      inv_freq(static_cast<size_t>(half));
  for (float& x : qkv) x = u(rng);
  for (float& x : v) x = u(rng);
  for (int64_t i = 0; i < half; ++i)
    inv_freq[i] = static_cast<float>(std::pow(10000.0, -2.0 * double(i) / double(dims)));
  const size_t cache_bytes = static_cast<size_t>(slots_n * v_width) * DTypeSize(c.cache_dtype);
  std::vector<char> k_cache(cache_bytes, '\x7f'), v_cache(cache_bytes, '\x7f');
  std::vector<float> qkv_in(qkv.size(), NAN), v_in(v.size(), NAN);
  {
    cuda_emulation::ScopedPredecessor before([&] {
      std::copy(qkv.begin(), qkv.end(), qkv_in.begin());
      std::copy(v.begin(), v.end(), v_in.begin());
    });
    if (c.store) {
      RopeStoreArgs a{};
      a.q = qkv_in.data(), a.q_stride_t = row_width, a.q_stride_h = dims, a.q_heads = q_heads;
      a.k = qkv_in.data() + q_heads * dims, a.k_stride_t = row_width, a.k_stride_h = dims,
      a.k_heads = k_heads;
      a.v = v_in.data(), a.v_width = v_width, a.t = t, a.dims = dims;
      a.positions = positions.data(), a.inv_freq = inv_freq.data(), a.interleaved = c.interleaved,
      a.cos_sin_scale = c.scale;
      a.slots = slots.data(), a.k_cache = k_cache.data(), a.v_cache = v_cache.data(),
      a.cache_dtype = c.cache_dtype;
      const int64_t n = t * (q_heads + k_heads) * half + t * v_width;
      cuda_emulation::RunBlocks(static_cast<unsigned>((n + 255) / 256), 256,
                                [&] { RopeStoreKernel(a); });
    } else {  // q and k as one tensor of q_heads + k_heads heads
      const int64_t n = t * (q_heads + k_heads) * half;
      cuda_emulation::RunBlocks(static_cast<unsigned>((n + 255) / 256), 256, [&] {
        RopeKernel(qkv_in.data(), t, q_heads + k_heads, half, row_width, dims, positions.data(),
                   inv_freq.data(), c.interleaved, c.scale);
      });
    }
  }
  std::vector<float> k_f(static_cast<size_t>(slots_n * v_width)), v_f(k_f.size());
  ConvertToF32(c.cache_dtype, k_cache.data(), k_f.data(), k_f.size());
  ConvertToF32(c.cache_dtype, v_cache.data(), v_f.data(), v_f.size());
  const double ulp = c.cache_dtype == DType::kBF16 ? 1.0 / 256 : 0.0;  // bf16's half ulp, relative
  for (int64_t r = 0; r < t; ++r) {
    for (int64_t h = 0; h < q_heads + k_heads; ++h) {
      const bool is_k = h >= q_heads;
      for (int64_t i = 0; i < half; ++i) {
        const int64_t ia = c.interleaved ? 2 * i : i, ib = c.interleaved ? 2 * i + 1 : i + half;
        const float* head = qkv.data() + r * row_width + h * dims;
        const double angle = static_cast<float>(positions[r]) * inv_freq[i];  // f32, as the kernel
        const double cs = std::cos(angle) * c.scale, sn = std::sin(angle) * c.scale;
        const double a = head[ia] * cs - head[ib] * sn, b = head[ib] * cs + head[ia] * sn;
        const float* got = qkv_in.data() + r * row_width + h * dims;
        ASSERT_NEAR(got[ia], a, 1e-5) << "row " << r << " head " << h << " pair " << i;
        ASSERT_NEAR(got[ib], b, 1e-5) << "row " << r << " head " << h << " pair " << i;
        if (!is_k || !c.store) continue;
        const float* cached = k_f.data() + slots[r] * v_width + (h - q_heads) * dims;
        ASSERT_NEAR(cached[ia], a, 1e-5 + ulp * std::fabs(a)) << "cached key row " << r;
        ASSERT_NEAR(cached[ib], b, 1e-5 + ulp * std::fabs(b)) << "cached key row " << r;
      }
    }
    if (!c.store) continue;
    // The values as the host rounds them: the same bits.
    std::vector<char> want(static_cast<size_t>(v_width) * DTypeSize(c.cache_dtype));
    ConvertFromF32(c.cache_dtype, v.data() + r * v_width, want.data(), v_width);
    ASSERT_TRUE(std::equal(want.begin(), want.end(), v_cache.begin() + slots[r] * want.size()))
        << "cached values row " << r;
  }
  if (!c.store) return;
  const size_t row_bytes = static_cast<size_t>(v_width) * DTypeSize(c.cache_dtype);
  for (int64_t s = 0; s < slots_n; ++s) {
    if (std::find(slots.begin(), slots.end(), s) != slots.end()) continue;
    for (const std::vector<char>* cache : {&k_cache, &v_cache}) {
      const auto row = cache->begin() + s * static_cast<int64_t>(row_bytes);
      ASSERT_TRUE(std::all_of(row, row + static_cast<int64_t>(row_bytes),
                              [](char b) { return b == '\x7f'; }))
          << "cache row " << s << " written";
    }
  }
}

TEST(OpsKernelEmulationTest, RopeAndStoreKvBothLayouts) {
  CheckRope({true, false, 1.0f, DType::kF32});
  CheckRope({true, true, 1.0f, DType::kBF16});
  CheckRope({true, false, 1.2f, DType::kBF16});  // YaRN's mscale
  CheckRope({false, true, 1.0f, DType::kF32});
  CheckRope({false, false, 1.2f, DType::kF32});
}

// SiluMulKernel (f32 out, or bf16 for a prompt GEMM's input) and AddKernel, four values a
// thread (vec) or one; n not a multiple of the block. silu(g) * u within 1e-6 relative (bf16
// out: the host's rounding of the same f32 product, or the next bf16 value beside it); a + b
// exact. As dependent launches: the inputs written when the kernel waits.
TEST(OpsKernelEmulationTest, ElementWise) {
  std::mt19937 rng(73);
  const int64_t n = 1000;
  const std::vector<float> gate = Uniform(n, 6.0f, rng), up = Uniform(n, 2.0f, rng);
  for (bool vec : {true, false}) {
    SCOPED_TRACE(vec ? "vec" : "one a thread");
    const auto blocks = static_cast<unsigned>(((vec ? n / 4 : n) + 255) / 256);
    std::vector<float> g_in(n, NAN), u_in(n, NAN), out(n + 4, NAN);
    std::vector<uint16_t> out_bf16(n + 4, 0x7fc1);
    auto before = [&] {
      std::copy(gate.begin(), gate.end(), g_in.begin());
      std::copy(up.begin(), up.end(), u_in.begin());
    };
    {
      cuda_emulation::ScopedPredecessor p(before);
      cuda_emulation::RunBlocks(
          blocks, 256, [&] { SiluMulKernel<float>(g_in.data(), u_in.data(), out.data(), n, vec); });
    }
    {
      std::fill(g_in.begin(), g_in.end(), NAN), std::fill(u_in.begin(), u_in.end(), NAN);
      cuda_emulation::ScopedPredecessor p(before);
      auto* o = reinterpret_cast<__nv_bfloat16*>(out_bf16.data());
      cuda_emulation::RunBlocks(
          blocks, 256, [&] { SiluMulKernel<__nv_bfloat16>(g_in.data(), u_in.data(), o, n, vec); });
    }
    std::vector<float> rounded(out.begin(), out.begin() + n);
    RoundToBf16(rounded);
    for (int64_t i = 0; i < n; ++i) {
      const double want = gate[i] / (1.0 + std::exp(-double(gate[i]))) * up[i];
      ASSERT_NEAR(out[i], want, 1e-6 * std::fabs(want) + 1e-7) << i;
      float got_bf16;
      ConvertToF32(DType::kBF16, &out_bf16[i], &got_bf16, 1);
      ASSERT_NEAR(got_bf16, rounded[i], std::fabs(out[i]) / 128 + 1e-30) << i;
    }
    for (int64_t i = n; i < n + 4; ++i) {
      ASSERT_TRUE(std::isnan(out[i])) << "written past n";
      ASSERT_EQ(out_bf16[i], 0x7fc1) << "written past n";
    }
    std::fill(g_in.begin(), g_in.end(), NAN), std::fill(u_in.begin(), u_in.end(), NAN);
    {
      cuda_emulation::ScopedPredecessor p(before);
      cuda_emulation::RunBlocks(blocks, 256,
                                [&] { AddKernel(g_in.data(), u_in.data(), out.data(), n, vec); });
    }
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(out[i], gate[i] + up[i]) << i;
  }
}

// GatherRowsKernel (embedding rows of an f32, bf16 or f16 table, as the host converts
// them), ScatterRowsKernel (rows into chosen rows of y, the others untouched) and
// AddWeightedRowsKernel (out[t] += sum_j w[t, j] x[t k + j], the MoE's combine): exact, and
// the combine within 1e-6 relative of f64.
TEST(OpsKernelEmulationTest, RowGathersScattersAndCombine) {
  std::mt19937 rng(79);
  const int64_t h = 70, vocab = 9;
  const std::vector<int32_t> ids = {3, 0, 8, 3};
  const std::vector<float> table_f = Uniform(vocab * h, 1.0f, rng);
  for (DType d : {DType::kF32, DType::kBF16, DType::kF16}) {
    SCOPED_TRACE(DTypeName(d));
    std::vector<char> table(table_f.size() * DTypeSize(d));
    ConvertFromF32(d, table_f.data(), table.data(), table_f.size());
    std::vector<float> want(table_f.size()), out(ids.size() * h, NAN);
    ConvertToF32(d, table.data(), want.data(), want.size());
    const int64_t count = static_cast<int64_t>(ids.size());
    // A dependent launch: the ids are written when it waits (till then 2, asked by no row).
    std::vector<int32_t> ids_in(ids.size(), 2);
    cuda_emulation::ScopedPredecessor before(
        [&] { std::copy(ids.begin(), ids.end(), ids_in.begin()); });
    cuda_emulation::RunBlocks(static_cast<unsigned>((count * h + 255) / 256), 256, [&] {
      if (d == DType::kF32)
        GatherRowsKernel<DType::kF32>(table.data(), h, ids_in.data(), count, out.data());
      if (d == DType::kBF16)
        GatherRowsKernel<DType::kBF16>(table.data(), h, ids_in.data(), count, out.data());
      if (d == DType::kF16)
        GatherRowsKernel<DType::kF16>(table.data(), h, ids_in.data(), count, out.data());
    });
    for (int64_t r = 0; r < count; ++r)
      for (int64_t c = 0; c < h; ++c)
        ASSERT_EQ(out[r * h + c], want[ids[r] * h + c]) << r << ", " << c;
  }

  const std::vector<int32_t> rows = {4, 1};
  const std::vector<float> src = Uniform(2 * h, 1.0f, rng);
  std::vector<float> y(static_cast<size_t>(6 * h), 5.0f);
  cuda_emulation::RunBlocks(1, 256,
                            [&] { ScatterRowsKernel(src.data(), h, rows.data(), 2, y.data()); });
  for (int64_t r = 0; r < 6; ++r) {
    for (int64_t c = 0; c < h; ++c) {
      const float want = r == 4 ? src[c] : r == 1 ? src[h + c] : 5.0f;
      ASSERT_EQ(y[r * h + c], want) << r << ", " << c;
    }
  }

  const int64_t t = 3, k = 6;
  const std::vector<float> x = Uniform(t * k * h, 1.0f, rng), w = Uniform(t * k, 1.0f, rng);
  const std::vector<float> start = Uniform(t * h, 1.0f, rng);
  std::vector<float> out = start;
  cuda_emulation::RunBlocks(static_cast<unsigned>((t * h + 255) / 256), 256, [&] {
    AddWeightedRowsKernel(x.data(), w.data(), t, k, h, out.data());
  });
  for (int64_t r = 0; r < t; ++r) {
    for (int64_t c = 0; c < h; ++c) {
      double want = start[r * h + c], size = std::fabs(want);
      for (int64_t j = 0; j < k; ++j) {
        want += double(w[r * k + j]) * x[(r * k + j) * h + c];
        size += std::fabs(double(w[r * k + j]) * x[(r * k + j) * h + c]);
      }
      ASSERT_NEAR(out[r * h + c], want, 1e-6 * size) << r << ", " << c;
    }
  }
}

// SoftmaxKernel (probabilities, or log-probabilities) over rows of 1000 with -inf entries,
// against f64: 1e-6 relative (probabilities), 1e-5 absolute (logs). TopKKernel: k values and
// indices a row, larger first, equal values by lower index, NaN as -inf (after every number).
TEST(OpsKernelEmulationTest, SoftmaxAndTopK) {
  std::mt19937 rng(83);
  const int64_t rows = 3, n = 1000;
  std::vector<float> x = Uniform(rows * n, 8.0f, rng);
  x[5] = -INFINITY, x[n + 999] = -INFINITY;
  for (bool log : {false, true}) {
    SCOPED_TRACE(log ? "log" : "probabilities");
    std::vector<float> out(x.size(), NAN);
    cuda_emulation::RunBlocks(static_cast<unsigned>(rows), 256,
                              [&] { SoftmaxKernel(x.data(), out.data(), n, log); });
    for (int64_t r = 0; r < rows; ++r) {
      double top = -INFINITY, z = 0;
      for (int64_t i = 0; i < n; ++i) top = std::max(top, double(x[r * n + i]));
      for (int64_t i = 0; i < n; ++i) z += std::exp(x[r * n + i] - top);
      for (int64_t i = 0; i < n; ++i) {
        const double lp = x[r * n + i] - top - std::log(z);
        if (log) {
          if (std::isinf(lp))
            ASSERT_EQ(out[r * n + i], -INFINITY) << r << ", " << i;
          else
            ASSERT_NEAR(out[r * n + i], lp, 1e-5) << r << ", " << i;
        } else {
          ASSERT_NEAR(out[r * n + i], std::exp(lp), 1e-6 * std::exp(lp) + 1e-12) << r << ", " << i;
        }
      }
    }
  }

  const int64_t k = 6, m = 300;
  std::vector<float> v = Uniform(rows * m, 1.0f, rng);
  v[10] = v[20] = v[30] = 3.0f;                    // row 0: a three-way tie at the top
  v[40] = NAN, v[41] = 2.5f;                       // NaN sorts last
  for (int64_t i = 0; i < m; ++i) v[m + i] = NAN;  // row 1: all NaN but two
  v[m + 7] = -1.0f, v[m + 200] = -1.0f;
  std::vector<float> values(static_cast<size_t>(rows * k), NAN);
  std::vector<int32_t> indices(static_cast<size_t>(rows * k), -7);
  cuda_emulation::RunBlocks(static_cast<unsigned>(rows), 256,
                            [&] { TopKKernel(v.data(), m, k, values.data(), indices.data()); });
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<int32_t> order(static_cast<size_t>(m));
    for (int32_t i = 0; i < m; ++i) order[i] = i;
    auto key = [&](int32_t i) { return std::isnan(v[r * m + i]) ? -INFINITY : v[r * m + i]; };
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return key(a) > key(b); });
    for (int64_t j = 0; j < k; ++j) {
      ASSERT_EQ(indices[r * k + j], order[j]) << "row " << r << " rank " << j;
      const float want = v[r * m + order[j]];
      if (std::isnan(want))
        ASSERT_TRUE(std::isnan(values[r * k + j])) << "row " << r << " rank " << j;
      else
        ASSERT_EQ(values[r * k + j], want) << "row " << r << " rank " << j;
    }
  }
}

}  // namespace
}  // namespace reasonrt::cuda
