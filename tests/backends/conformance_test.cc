// Every op of every built backend against the reference backend, per dtype.
//
// Tolerances: ops computed in f32 on both sides agree to 1e-5 of the largest value.
// MatMul's bound is per output element, |got - want| <= tol * sum_i |x_i * w_i| + 1e-6,
// with tol = 2^-8 where a backend rounds activations to bf16 for a bf16-weight matmul of
// several rows (the prompt GEMM, batched decode on AVX512-BF16 and on cuda's tensor cores)
// or an FP8-weight matmul of several rows (the cpu backend's dot kernel for decode rows,
// and where oneDNN runs bf16 the prompt GEMM, both round the activations, the GEMM them
// times their block scales), and 1e-5 where it keeps them f32 (one row, f32 and f16
// weights, or exact_activations).
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "reasonrt/backend.h"
#include "tests/testing/backend_names.h"

namespace reasonrt {
namespace {

std::mt19937& Rng() {
  static std::mt19937 rng(42);
  return rng;
}

TensorView Random(DType dtype, std::initializer_list<int64_t> shape, float lo = -1.0f,
                  float hi = 1.0f) {
  TensorView t = *TensorView::Allocate(dtype, shape);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(t.num_elements());
  for (float& f : v) f = u(Rng());
  ConvertFromF32(dtype, v.data(), t.mutable_data(), v.size());
  return t;
}

// A random [n, k] weight; FP8 with random block scales (0.001-0.01, a checkpoint's range).
Weight RandomWeight(DType dtype, int64_t n, int64_t k) {
  Weight w{Random(dtype, {n, k}), {}};
  if (dtype == DType::kF8E4M3)
    w.scale_inv = Random(DType::kF32, {Fp8ScaleBlocks(n), Fp8ScaleBlocks(k)}, 0.001f, 0.01f);
  return w;
}

TensorView Zeros(DType dtype, std::initializer_list<int64_t> shape) {
  return *TensorView::Allocate(dtype, shape);
}

std::vector<float> AsF32(const TensorView& t) {
  std::vector<float> v(t.num_elements());
  ConvertToF32(t.dtype(), t.data(), v.data(), v.size());
  return v;
}

std::vector<float> Dequantized(const Weight& w) {
  const int64_t n = w.data.dim(0), k = w.data.dim(1);
  std::vector<float> out(n * k);
  if (w.data.dtype() == DType::kF8E4M3) {
    DequantizeFp8Blocks(w.data.data_as<uint8_t>(), w.scale_inv.data_as<float>(), n, k, out.data());
  } else {
    ConvertToF32(w.data.dtype(), w.data.data(), out.data(), out.size());
  }
  return out;
}

// Whether a backend may compute a matmul of m rows of `dtype` weights on bf16 operands
// (one row keeps x to about f32 precision: a single sequence's decode).
bool BF16Rounded(DType dtype, int64_t m) {
  return (dtype == DType::kBF16 || dtype == DType::kF8E4M3) && m > 1;
}

void ExpectAllNear(const TensorView& got, const TensorView& want, float rel, const std::string& what) {
  const std::vector<float> g = AsF32(got), w = AsF32(want);
  ASSERT_EQ(g.size(), w.size()) << what;
  float scale = 0.0f;
  for (float v : w) scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < g.size(); ++i) {
    ASSERT_NEAR(g[i], w[i], rel * scale + 1e-6f) << what << " at " << i;
  }
}

// MatMul's bound at every element of y [m, n]: |got - want| <= tol * sum_i |x_i * w_i| + floor.
void ExpectMatMulNear(const TensorView& got, const TensorView& want, const TensorView& x,
                      const Weight& w, float tol, float floor, const std::string& what) {
  const int64_t m = x.dim(0), k = x.dim(1), n = w.data.dim(0);
  const std::vector<float> wf = Dequantized(w), xf = AsF32(x);
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t j = 0; j < n; ++j) {
      float mag = 0.0f;
      for (int64_t i = 0; i < k; ++i) mag += std::fabs(xf[r * k + i] * wf[j * k + i]);
      ASSERT_NEAR(got.data_as<float>()[r * n + j], want.data_as<float>()[r * n + j],
                  tol * mag + floor)
          << what << " at " << r << "," << j;
    }
  }
}

class ConformanceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ref_ = *CreateBackend("reference", {});
    auto b = CreateBackend(GetParam(), {});
    ASSERT_TRUE(b.ok()) << b.status();
    be_ = std::move(*b);
  }
  // Expert ids for p rows, on the host and in this backend's memory: every third row
  // (from row 0) names expert `favourite`, the others one of experts 0 .. others - 1.
  std::pair<TensorView, TensorView> ExpertIds(int64_t p, int32_t favourite, int32_t others,
                                              std::mt19937& rng) {
    TensorView host = Zeros(DType::kI32, {p});
    for (int64_t i = 0; i < p; ++i) {
      host.mutable_data_as<int32_t>()[i] =
          i % 3 == 0 ? favourite : static_cast<int32_t>(rng() % static_cast<uint32_t>(others));
    }
    TensorView device = *be_->Allocate(DType::kI32, {p});
    EXPECT_TRUE(be_->Copy(host, device).ok());
    return {host, device};
  }
  // A gated MLP's projections as formed (gate holds silu(gate) * up) or not (both), against
  // the reference's two projections: the product, or each, within tol of the largest.
  void ExpectGatedOutputs(bool formed, const TensorView& gate, const TensorView& up,
                          const TensorView& gate_ref, const TensorView& up_ref, float tol,
                          const std::string& what) {
    if (!formed) {
      ExpectAllNear(gate, gate_ref, tol, what + " gate");
      ExpectAllNear(up, up_ref, tol, what + " up");
      return;
    }
    TensorView product = *TensorView::Allocate(DType::kF32, gate_ref.shape());
    ASSERT_TRUE(ref_->SiluMul(gate_ref, up_ref, product).ok());
    ExpectAllNear(gate, product, tol, what + " product");
  }
  // Two paged caches of `blocks` blocks, this backend's and the reference's, holding the
  // same random keys and values at positions 0..n-1 through `table`.
  std::pair<PagedKvLayer, PagedKvLayer> FilledCaches(DType dtype, int64_t kv_heads, int64_t dk,
                                                     int64_t dv, int64_t blocks, int64_t n,
                                                     const std::vector<int32_t>& table) {
    PagedKvLayer cache{Zeros(dtype, {blocks, kKvBlockSize, kv_heads, dk}),
                       Zeros(dtype, {blocks, kKvBlockSize, kv_heads, dv})};
    PagedKvLayer cache_ref{Zeros(dtype, {blocks, kKvBlockSize, kv_heads, dk}),
                           Zeros(dtype, {blocks, kKvBlockSize, kv_heads, dv})};
    std::vector<int64_t> slots;
    for (int64_t p = 0; p < n; ++p)
      slots.push_back(table[p / kKvBlockSize] * kKvBlockSize + p % kKvBlockSize);
    TensorView k = Random(DType::kF32, {n, kv_heads, dk}),
               v = Random(DType::kF32, {n, kv_heads, dv});
    EXPECT_TRUE(be_->StoreKv(k, v, slots, cache).ok());
    EXPECT_TRUE(ref_->StoreKv(k, v, slots, cache_ref).ok());
    return {cache, cache_ref};
  }
  std::unique_ptr<Backend> ref_, be_;
};

TEST_P(ConformanceTest, MatMulEveryDtypeAndPath) {
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16, DType::kF8E4M3}) {
    for (int64_t m : {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 17, 32, 33}) {
      // {300, 2100}: the cpu backend's FP8 prompt GEMM on bf16 converts each 128-row block
      // in chunks of 62 rows, and the last block is short (f32 panels: see
      // ExactActivationsKeepPromptGemmsTight).
      // {19, 4600}: 5-8 bf16 rows too wide for L1 take the AVX512-BF16 kernel's two passes
      // over tiles of 4 weight rows (19: a short last tile).
      for (auto [n, k] : {std::pair<int64_t, int64_t>{37, 200},
                          {130, 256},
                          {67, 1000},
                          {16, 4600},
                          {19, 4600},
                          {300, 2100},
                          {5, 7}}) {
        const std::string what = std::string(DTypeName(dtype)) + " m=" + std::to_string(m) +
                                 " n=" + std::to_string(n) + " k=" + std::to_string(k);
        TensorView x = Random(DType::kF32, {m, k});
        const Weight w = RandomWeight(dtype, n, k);
        TensorView bias = Random(DType::kBF16, {n});
        TensorView y = Zeros(DType::kF32, {m, n}), y_ref = Zeros(DType::kF32, {m, n});
        ASSERT_TRUE(be_->MatMul(x, w, &bias, y).ok()) << what;
        ASSERT_TRUE(ref_->MatMul(x, w, &bias, y_ref).ok()) << what;
        const float tol = BF16Rounded(dtype, m) ? std::ldexp(1.0f, -8) : 1e-5f;
        ExpectMatMulNear(y, y_ref, x, w, tol, 1e-6f, what);
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST_P(ConformanceTest, ExactActivationsKeepPromptGemmsTight) {
  BackendOptions options;
  options.exact_activations = true;
  auto exact = CreateBackend(GetParam(), options);
  ASSERT_TRUE(exact.ok());
  // The batched-decode kernels (k = 2100: 8 rows of hi + lo exceed L1, its two passes; 13
  // rows: passes of 4 over tiles of weight rows) and the prompt GEMM.
  for (DType dtype : {DType::kBF16, DType::kF8E4M3}) {
    for (auto [m, n, k] : {std::array<int64_t, 3>{2, 130, 1000},
                           {5, 130, 1000},
                           {8, 130, 1000},
                           {8, 67, 2100},
                           {13, 67, 1000},
                           {33, 130, 1000}}) {
      const std::string what = std::string(DTypeName(dtype)) + " m=" + std::to_string(m);
      TensorView x = Random(DType::kF32, {m, k});
      const Weight w = RandomWeight(dtype, n, k);
      TensorView y = Zeros(DType::kF32, {m, n}), y_ref = Zeros(DType::kF32, {m, n});
      ASSERT_TRUE((*exact)->MatMul(x, w, nullptr, y).ok());
      ASSERT_TRUE(ref_->MatMul(x, w, nullptr, y_ref).ok());
      // hi + lo carries 16 mantissa bits of x: 2^-15 relative, plus f32 accumulation.
      ExpectMatMulNear(y, y_ref, x, w, std::ldexp(1.0f, -15), 1e-5f, what);
      if (HasFatalFailure()) return;
    }
  }
  // A prompt's GEMM of f16 and FP8 weights keeps them (and x) in f32: MatMul's 1e-5. (The
  // cpu backend's f32 panels of k = 16384 are 64 rows: three a thread, edges off FP8's
  // 128-row blocks.)
  for (DType dtype : {DType::kF16, DType::kF8E4M3}) {
    const int64_t m = 33, n = 300, k = 16384;
    TensorView x = Random(DType::kF32, {m, k});
    const Weight w = RandomWeight(dtype, n, k);
    TensorView y = Zeros(DType::kF32, {m, n}), y_ref = Zeros(DType::kF32, {m, n});
    ASSERT_TRUE((*exact)->MatMul(x, w, nullptr, y).ok());
    ASSERT_TRUE(ref_->MatMul(x, w, nullptr, y_ref).ok());
    ExpectMatMulNear(y, y_ref, x, w, 1e-5f, 1e-6f, std::string(DTypeName(dtype)));
    if (HasFatalFailure()) return;
  }
}

TEST_P(ConformanceTest, MatMulSharedInput) {
  for (int64_t m : {1, 3, 12}) {
    TensorView x = Random(DType::kF32, {m, 96});
    Weight a{Random(DType::kBF16, {40, 96}), {}}, b{Random(DType::kF32, {8, 96}), {}},
        c{Random(DType::kF16, {17, 96}), {}};
    TensorView bias = Random(DType::kF32, {8});
    std::vector<TensorView> ys, refs;
    for (int64_t n : {40, 8, 17}) {
      ys.push_back(Zeros(DType::kF32, {m, n}));
      refs.push_back(Zeros(DType::kF32, {m, n}));
    }
    ASSERT_TRUE(be_->MatMulShared(x, {&a, &b, &c}, {nullptr, &bias, nullptr}, {&ys[0], &ys[1], &ys[2]}).ok());
    ASSERT_TRUE(ref_->MatMulShared(x, {&a, &b, &c}, {nullptr, &bias, nullptr}, {&refs[0], &refs[1], &refs[2]}).ok());
    // (bf16 weights from 2 rows on may round the activations to bf16: the cuda backend's
    // tensor-core GEMV for groups.)
    for (int i = 0; i < 3; ++i)
      ExpectAllNear(ys[i], refs[i], m > 8 || (i == 0 && m > 1) ? 1e-2f : 1e-5f, "MatMulShared");
    EXPECT_FALSE(be_->MatMulShared(x, {&a, &b}, {nullptr}, {&ys[0], &ys[1]}).ok());
    // One dtype and one large weight beside small ones (q, k and v), every one with a bias:
    // a backend may run them as one matrix. (All bf16: from 2 rows on, the cpu backend's
    // dot-product kernel rounds activations to bf16 too, hence 1e-2 there.)
    Weight q{Random(DType::kBF16, {40, 96}), {}}, k{Random(DType::kBF16, {8, 96}), {}},
        v{Random(DType::kBF16, {8, 96}), {}};
    TensorView qb = Random(DType::kBF16, {40}), kb = Random(DType::kF32, {8}),
               vb = Random(DType::kF16, {8});
    ys[1] = Zeros(DType::kF32, {m, 8}), refs[1] = Zeros(DType::kF32, {m, 8});
    ys[2] = Zeros(DType::kF32, {m, 8}), refs[2] = Zeros(DType::kF32, {m, 8});
    ASSERT_TRUE(be_->MatMulShared(x, {&q, &k, &v}, {&qb, &kb, &vb}, {&ys[0], &ys[1], &ys[2]}).ok());
    ASSERT_TRUE(
        ref_->MatMulShared(x, {&q, &k, &v}, {&qb, &kb, &vb}, {&refs[0], &refs[1], &refs[2]}).ok());
    for (int i = 0; i < 3; ++i)
      ExpectAllNear(ys[i], refs[i], m > 1 ? 1e-2f : 1e-5f, "MatMulShared q/k/v");
  }
}

// SiluMulMatMul is SiluMul then MatMul: decode rows and prompt rows (1e-5 in f32; bf16
// weights from 2 rows on, and prompts, may round the product to bf16 first: 1e-2), f32 and
// bf16 weights; y overlapping gate is refused.
TEST_P(ConformanceTest, SiluMulMatMulIsSiluMulThenMatMul) {
  for (int64_t m : {1, 3, 12}) {
    for (DType w_dtype : {DType::kF32, DType::kBF16}) {
      const std::string what =
          "SiluMulMatMul m=" + std::to_string(m) + " " + std::string(DTypeName(w_dtype));
      TensorView gate = Random(DType::kF32, {m, 96}, -4.0f, 4.0f),
                 up = Random(DType::kF32, {m, 96});
      TensorView gate_ref = Zeros(DType::kF32, {m, 96});
      std::memcpy(gate_ref.mutable_data(), gate.data(), gate.byte_size());
      Weight w{Random(w_dtype, {40, 96}), {}};
      TensorView y = Zeros(DType::kF32, {m, 40}), y_ref = Zeros(DType::kF32, {m, 40});
      ASSERT_TRUE(be_->SiluMulMatMul(gate, up, w, y).ok()) << what;
      ASSERT_TRUE(ref_->SiluMul(gate_ref, up, gate_ref).ok());
      ASSERT_TRUE(ref_->MatMul(gate_ref, w, nullptr, y_ref).ok());
      const bool rounded = m > 8 || (w_dtype == DType::kBF16 && m > 1);
      ExpectAllNear(y, y_ref, rounded ? 1e-2f : 1e-5f, what);
      EXPECT_EQ(be_->SiluMulMatMul(gate, up, w, *gate.Slice(1, 0, 40)).code(),
                absl::StatusCode::kInvalidArgument);
    }
  }
}

// GateUpMatMul gives the two projections (false) or silu(gate) * up in gate (true), as the
// reference's projections and SiluMul give them: decode rows and groups, f32, bf16, f16 and
// fp8 weights (1e-5 of the largest; 1e-2 where bf16 weights from 2 rows on, or prompts, may
// round the activations); mismatched or overlapping operands are refused.
TEST_P(ConformanceTest, GateUpMatMulGivesTheProductEitherWay) {
  for (int64_t m : {1, 3, 12}) {
    for (DType w_dtype : {DType::kF32, DType::kBF16, DType::kF16, DType::kF8E4M3}) {
      const std::string what =
          "GateUpMatMul m=" + std::to_string(m) + " " + std::string(DTypeName(w_dtype));
      const int64_t n = 200, k = 256;
      TensorView x = Random(DType::kF32, {m, k}, -2.0f, 2.0f);
      const Weight gate_w = RandomWeight(w_dtype, n, k), up_w = RandomWeight(w_dtype, n, k);
      TensorView gate = Zeros(DType::kF32, {m, n}), up = Zeros(DType::kF32, {m, n});
      TensorView gate_ref = Zeros(DType::kF32, {m, n}), up_ref = Zeros(DType::kF32, {m, n});
      absl::StatusOr<bool> formed = be_->GateUpMatMul(x, gate_w, up_w, gate, up);
      ASSERT_TRUE(formed.ok()) << what << ": " << formed.status();
      absl::StatusOr<bool> ref_formed = ref_->GateUpMatMul(x, gate_w, up_w, gate_ref, up_ref);
      ASSERT_TRUE(ref_formed.ok() && !*ref_formed) << what;  // the default: the projections
      const float tol = m > 8 || BF16Rounded(w_dtype, m) ? 1e-2f : 1e-5f;
      ExpectGatedOutputs(*formed, gate, up, gate_ref, up_ref, tol, what);
    }
  }
  TensorView x = Random(DType::kF32, {1, 64});
  Weight gate_w{Random(DType::kBF16, {32, 64}), {}}, up_w{Random(DType::kBF16, {32, 64}), {}},
      short_w{Random(DType::kBF16, {16, 64}), {}};
  TensorView both = Zeros(DType::kF32, {1, 64}), gate = Zeros(DType::kF32, {1, 32}),
             up = Zeros(DType::kF32, {1, 32}), up16 = Zeros(DType::kF32, {1, 16});
  EXPECT_EQ(be_->GateUpMatMul(x, gate_w, short_w, gate, up16).status().code(),
            absl::StatusCode::kInvalidArgument);  // gate and up of different widths
  EXPECT_EQ(be_->GateUpMatMul(x, gate_w, up_w, *both.Slice(1, 0, 32), *both.Slice(1, 16, 48))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);  // overlapping outputs
  EXPECT_EQ(be_->GateUpMatMul(x, gate_w, up_w, gate, gate).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(be_->GateUpMatMul(x, gate_w, up_w, gate, *x.Slice(1, 0, 32)).status().code(),
            absl::StatusCode::kInvalidArgument);  // up over x
}

// MatMulAddRmsNorm is MatMul (or SiluMulMatMul, with up) then AddRmsNorm: y, the updated
// residual and the norm as this backend's two steps give them (1e-6 of the largest: a
// fused norm may sum its squares in another order), and the reference's within the
// matmul's tolerance; overlapping operands are refused.
TEST_P(ConformanceTest, MatMulAddRmsNormIsTheTwoSteps) {
  for (int64_t m : {1, 3, 12}) {
    for (bool with_up : {false, true}) {
      for (DType w_dtype : {DType::kF32, DType::kBF16}) {
        const std::string what = "MatMulAddRmsNorm m=" + std::to_string(m) +
                                 (with_up ? " up " : " ") + std::string(DTypeName(w_dtype));
        const int64_t k = 256, n = 96;
        TensorView x = Random(DType::kF32, {m, k}, -4.0f, 4.0f), up = Random(DType::kF32, {m, k});
        TensorView x2 = Zeros(DType::kF32, {m, k});
        std::memcpy(x2.mutable_data(), x.data(), x.byte_size());
        Weight w{Random(w_dtype, {n, k}), {}};
        TensorView gain = Random(DType::kBF16, {n}, 0.5f, 1.5f);
        TensorView residual = Random(DType::kF32, {m, n}, -2.0f, 2.0f),
                   residual2 = Zeros(DType::kF32, {m, n});
        std::memcpy(residual2.mutable_data(), residual.data(), residual.byte_size());
        TensorView y = Zeros(DType::kF32, {m, n}), y2 = Zeros(DType::kF32, {m, n});
        TensorView normed = Zeros(DType::kF32, {m, n}), normed2 = Zeros(DType::kF32, {m, n});
        ASSERT_TRUE(
            be_->MatMulAddRmsNorm(x, with_up ? &up : nullptr, w, y, residual, gain, 1e-6f, normed)
                .ok())
            << what;
        ASSERT_TRUE(
            (with_up ? be_->SiluMulMatMul(x2, up, w, y2) : be_->MatMul(x2, w, nullptr, y2)).ok());
        ASSERT_TRUE(be_->AddRmsNorm(residual2, y2, gain, 1e-6f, normed2).ok());
        ExpectAllNear(y, y2, 1e-6f, what + " y");
        ExpectAllNear(residual, residual2, 1e-6f, what + " residual");
        ExpectAllNear(normed, normed2, 1e-6f, what + " normed");
        // Against the reference's two steps (its own inputs again).
        TensorView x3 = Zeros(DType::kF32, {m, k}), r3 = Zeros(DType::kF32, {m, n});
        std::memcpy(x3.mutable_data(), x2.data(), x2.byte_size());
        TensorView y3 = Zeros(DType::kF32, {m, n}), n3 = Zeros(DType::kF32, {m, n});
        ASSERT_TRUE(be_->MatMulAddRmsNorm(x3, nullptr, w, y3, r3, gain, 1e-6f, n3).ok());
        TensorView y_ref = Zeros(DType::kF32, {m, n}), r_ref = Zeros(DType::kF32, {m, n}),
                   n_ref = Zeros(DType::kF32, {m, n});
        ASSERT_TRUE(ref_->MatMul(x2, w, nullptr, y_ref).ok());
        ASSERT_TRUE(ref_->AddRmsNorm(r_ref, y_ref, gain, 1e-6f, n_ref).ok());
        const bool rounded = m > 8 || (w_dtype == DType::kBF16 && m > 1);
        ExpectAllNear(y3, y_ref, rounded ? 1e-2f : 1e-5f, what + " y against the reference");
        ExpectAllNear(n3, n_ref, rounded ? 1e-2f : 1e-5f, what + " normed against the reference");
        // Overlaps: y with the residual, an input with normed or the residual.
        EXPECT_EQ(
            be_->MatMulAddRmsNorm(x, nullptr, w, residual, residual, gain, 1e-6f, normed).code(),
            absl::StatusCode::kInvalidArgument);
        TensorView wide = Zeros(DType::kF32, {m, k});
        EXPECT_EQ(
            be_->MatMulAddRmsNorm(wide, nullptr, w, y, residual, gain, 1e-6f, *wide.Slice(1, 0, n))
                .code(),
            absl::StatusCode::kInvalidArgument);
        EXPECT_EQ(
            be_->MatMulAddRmsNorm(x, nullptr, w, y, residual, *gain.Slice(0, 0, 8), 1e-6f, normed)
                .code(),
            absl::StatusCode::kInvalidArgument);
      }
    }
  }
}

TEST_P(ConformanceTest, GroupedMatMul) {
  const int64_t t = 10, k = 96, n = 40;
  TensorView x = Random(DType::kF32, {t, k});
  std::vector<Weight> experts = {{Random(DType::kBF16, {n, k}), {}}, {Random(DType::kBF16, {n, k}), {}},
                                 {Random(DType::kF32, {n, k}), {}}};
  std::vector<std::vector<int32_t>> rows = {{0, 3, 9}, {}, {1, 2, 4, 5, 6, 7, 8}};
  TensorView y = Zeros(DType::kF32, {t, n}), y_ref = Zeros(DType::kF32, {t, n});
  ASSERT_TRUE(be_->GroupedMatMul(x, experts, rows, y).ok());
  ASSERT_TRUE(ref_->GroupedMatMul(x, experts, rows, y_ref).ok());
  ExpectAllNear(y, y_ref, 1e-2f, "GroupedMatMul");  // bf16 experts of several rows: bf16 activations
}

// Expert ids in a tensor on the backend's device (where it has one): each row against its
// own expert, every dtype (fp8 with its block scales), a decode's few rows and a prompt's
// many; an expert no row names, and one named by many.
TEST_P(ConformanceTest, ExpertMatMulTakesIdsFromATensor) {
  const int64_t experts_n = 6, n = 256, k = 256;
  std::mt19937 rng(5);
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16, DType::kF8E4M3}) {
    std::vector<Weight> experts;
    for (int64_t e = 0; e < experts_n; ++e) {
      experts.push_back(RandomWeight(dtype, n, k));
    }
    for (int64_t p : {1, 8, 40}) {
      const std::string what = std::string(DTypeName(dtype)) + " rows=" + std::to_string(p);
      TensorView x = Random(DType::kF32, {p, k});
      const auto [host_ids, ids] = ExpertIds(p, 4, 4, rng);
      TensorView y = Zeros(DType::kF32, {p, n}), y_ref = Zeros(DType::kF32, {p, n});
      absl::Status st = be_->ExpertMatMul(x, ids, experts, y);
      ASSERT_TRUE(st.ok()) << what << ": " << st;
      ASSERT_TRUE(ref_->ExpertMatMul(x, host_ids, experts, y_ref).ok()) << what;
      // Rows of one expert run together: bf16 activations where several rows meet a bf16
      // weight, or a prompt's many rows an FP8 one (40: 14 rows take expert 4).
      ExpectAllNear(y, y_ref, BF16Rounded(dtype, p == 40 ? 14 : p) ? 1e-2f : 1e-4f,
                    "ExpertMatMul " + what);
    }
  }
  TensorView x = Random(DType::kF32, {2, 8}), y = Zeros(DType::kF32, {2, 4});
  std::vector<Weight> two = {{Random(DType::kF32, {4, 8}), {}}, {Random(DType::kF32, {4, 8}), {}}};
  TensorView bad = Zeros(DType::kI32, {2});
  bad.mutable_data_as<int32_t>()[1] = 2;
  EXPECT_EQ(be_->ExpertMatMul(x, bad, two, y).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(be_->ExpertMatMul(x, Zeros(DType::kI32, {3}), two, y).code(),
            absl::StatusCode::kInvalidArgument);
  two[1] = {Random(DType::kBF16, {4, 8}), {}};  // experts of two dtypes
  EXPECT_EQ(be_->ExpertMatMul(x, Zeros(DType::kI32, {2}), two, y).code(),
            absl::StatusCode::kInvalidArgument);
}

// ExpertGateUpMatMul gives the two projections (false) or silu(gate) * up in gate (true),
// as the reference's two ExpertMatMuls and SiluMul give them: ids in the backend's memory,
// every dtype, a decode's few rows and a prompt's many (tolerances as ExpertMatMul's); bad
// operands are refused, naming what is wrong.
TEST_P(ConformanceTest, ExpertGateUpMatMulGivesTheProductEitherWay) {
  const int64_t experts_n = 5, n = 192, k = 256;
  std::mt19937 rng(9);
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16, DType::kF8E4M3}) {
    std::vector<Weight> gates, ups;
    for (int64_t e = 0; e < experts_n; ++e) {
      gates.push_back(RandomWeight(dtype, n, k));
      ups.push_back(RandomWeight(dtype, n, k));
    }
    for (int64_t p : {1, 6, 40}) {
      const std::string what =
          "ExpertGateUpMatMul " + std::string(DTypeName(dtype)) + " rows=" + std::to_string(p);
      TensorView x = Random(DType::kF32, {p, k}, -2.0f, 2.0f);
      const auto [host_ids, ids] = ExpertIds(p, 3, 3, rng);
      TensorView gate = Zeros(DType::kF32, {p, n}), up = Zeros(DType::kF32, {p, n});
      TensorView gate_ref = Zeros(DType::kF32, {p, n}), up_ref = Zeros(DType::kF32, {p, n});
      absl::StatusOr<bool> formed = be_->ExpertGateUpMatMul(x, ids, gates, ups, gate, up);
      ASSERT_TRUE(formed.ok()) << what << ": " << formed.status();
      absl::StatusOr<bool> ref_formed =
          ref_->ExpertGateUpMatMul(x, host_ids, gates, ups, gate_ref, up_ref);
      ASSERT_TRUE(ref_formed.ok() && !*ref_formed) << what;  // the default: the projections
      // Expert 3 takes rows 0, 3, 6, ...: 14 of 40.
      const float tol = BF16Rounded(dtype, p == 40 ? 14 : (p + 2) / 3) ? 1e-2f : 1e-4f;
      ExpectGatedOutputs(*formed, gate, up, gate_ref, up_ref, tol, what);
    }
  }
  TensorView x = Random(DType::kF32, {2, 8}), gate = Zeros(DType::kF32, {2, 4}),
             up = Zeros(DType::kF32, {2, 4}), both = Zeros(DType::kF32, {2, 6});
  const std::vector<Weight> two = {{Random(DType::kF32, {4, 8}), {}},
                                   {Random(DType::kF32, {4, 8}), {}}};
  const std::vector<Weight> three = {two[0], two[1], two[0]};
  const std::vector<Weight> bf16 = {{Random(DType::kBF16, {4, 8}), {}},
                                    {Random(DType::kBF16, {4, 8}), {}}};
  const TensorView ids = Zeros(DType::kI32, {2});
  auto code = [&](const absl::StatusOr<bool>& r) { return r.status().code(); };
  constexpr absl::StatusCode kBad = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(code(be_->ExpertGateUpMatMul(x, ids, two, three, gate, up)), kBad);  // counts
  EXPECT_EQ(code(be_->ExpertGateUpMatMul(x, ids, two, bf16, gate, up)), kBad);   // dtypes
  EXPECT_EQ(
      code(be_->ExpertGateUpMatMul(x, ids, two, two, *both.Slice(1, 0, 4), *both.Slice(1, 2, 6))),
      kBad);  // overlapping outputs
  EXPECT_EQ(code(be_->ExpertGateUpMatMul(x, ids, two, two, gate, *x.Slice(1, 0, 4))), kBad);
  TensorView bad = Zeros(DType::kI32, {2});
  bad.mutable_data_as<int32_t>()[1] = -1;
  const absl::StatusOr<bool> st = be_->ExpertGateUpMatMul(x, bad, two, two, gate, up);
  EXPECT_EQ(code(st), kBad);
  EXPECT_NE(st.status().message().find("row 1 names expert -1"), std::string_view::npos)
      << st.status();
}

// DeepSeek-V3's router (256 experts in 8 groups, the best 4 groups, 8 experts a token,
// sigmoid scores with a correction bias, normalised and scaled) and V2's (softmax, greedy),
// the outputs in the backend's memory, against RouteTokens on the host (the reference's).
TEST_P(ConformanceTest, RouteExpertsIsRouteTokens) {
  RouterConfig v3;
  v3.n_routed_experts = 256, v3.num_experts_per_tok = 8, v3.n_group = 8, v3.topk_group = 4;
  v3.scoring_func = ScoringFunc::kSigmoid, v3.topk_method = TopkMethod::kNoauxTc;
  v3.norm_topk_prob = true, v3.routed_scaling_factor = 2.5;
  RouterConfig v2;
  v2.n_routed_experts = 64, v2.num_experts_per_tok = 6, v2.scoring_func = ScoringFunc::kSoftmax;
  v2.topk_method = TopkMethod::kGreedy, v2.routed_scaling_factor = 1.0, v2.always_scale = false;
  for (const RouterConfig& c : {v3, v2}) {
    const int64_t t = 7, e = c.n_routed_experts, k = c.num_experts_per_tok;
    TensorView logits = Random(DType::kF32, {t, e}, -4.0f, 4.0f);
    std::vector<float> bias;
    if (c.topk_method == TopkMethod::kNoauxTc) {
      std::uniform_real_distribution<float> u(-0.1f, 0.1f);
      for (int64_t i = 0; i < e; ++i) bias.push_back(u(Rng()));
    }
    TensorView experts = *be_->Allocate(DType::kI32, {t, k}),
               weights = *be_->Allocate(DType::kF32, {t, k});
    absl::Status st = be_->RouteExperts(logits, c, bias, experts, weights);
    ASSERT_TRUE(st.ok()) << st;
    TensorView he = Zeros(DType::kI32, {t, k}), hw = Zeros(DType::kF32, {t, k});
    ASSERT_TRUE(be_->Copy(experts, he).ok());
    ASSERT_TRUE(be_->Copy(weights, hw).ok());
    absl::StatusOr<Routing> want = RouteTokens(
        c, absl::MakeConstSpan(logits.data_as<float>(), static_cast<size_t>(t * e)), t, bias);
    ASSERT_TRUE(want.ok()) << want.status();
    for (int64_t i = 0; i < t * k; ++i) {
      EXPECT_EQ(he.data_as<int32_t>()[i], want->experts[i]) << i;
      EXPECT_NEAR(hw.data_as<float>()[i], want->weights[i], 1e-5f) << i;
    }
  }
  // The configuration's errors come first, whatever the logits.
  RouterConfig bad = v3;
  bad.n_group = 7;
  TensorView logits = Random(DType::kF32, {1, 256});
  TensorView experts = *be_->Allocate(DType::kI32, {1, 8}),
             weights = *be_->Allocate(DType::kF32, {1, 8});
  EXPECT_EQ(be_->RouteExperts(logits, bad, std::vector<float>(256), experts, weights).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(be_->RouteExperts(logits, v3, {}, experts, weights).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(ConformanceTest, SmallOps) {
  for (DType gain_dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    TensorView x = Random(DType::kF32, {7, 300}, -3.0f, 3.0f);
    TensorView gain = Random(gain_dtype, {300}, 0.5f, 1.5f);
    TensorView y = Zeros(DType::kF32, {7, 300}), y_ref = Zeros(DType::kF32, {7, 300});
    ASSERT_TRUE(be_->RmsNorm(x, gain, 1e-6f, y).ok());
    ASSERT_TRUE(ref_->RmsNorm(x, gain, 1e-6f, y_ref).ok());
    ExpectAllNear(y, y_ref, 1e-5f, "RmsNorm");
  }
  // Element-wise ops on an odd count and on a multiple of 4 (device backends may take
  // those four at a time), out apart from and aliasing an input.
  for (int64_t width : {256, 333}) {
    TensorView g = Random(DType::kF32, {5, width}, -8.0f, 8.0f),
               u = Random(DType::kF32, {5, width});
    TensorView o = Zeros(DType::kF32, {5, width}), o_ref = Zeros(DType::kF32, {5, width});
    ASSERT_TRUE(be_->SiluMul(g, u, o).ok());
    ASSERT_TRUE(ref_->SiluMul(g, u, o_ref).ok());
    ExpectAllNear(o, o_ref, 1e-5f, "SiluMul");
    ASSERT_TRUE(be_->Add(g, u, o).ok());
    ASSERT_TRUE(ref_->Add(g, u, o_ref).ok());
    ExpectAllNear(o, o_ref, 0.0f, "Add");
    ASSERT_TRUE(be_->Add(o, u, o).ok());
    ASSERT_TRUE(ref_->Add(o_ref, u, o_ref).ok());
    ExpectAllNear(o, o_ref, 0.0f, "Add in place");
  }
  TensorView g = Random(DType::kF32, {5, 333}, -8.0f, 8.0f);
  TensorView o = Zeros(DType::kF32, {5, 333}), o_ref = Zeros(DType::kF32, {5, 333});
  ASSERT_TRUE(be_->Softmax(g, o).ok());
  ASSERT_TRUE(ref_->Softmax(g, o_ref).ok());
  ExpectAllNear(o, o_ref, 1e-5f, "Softmax");
  ASSERT_TRUE(be_->LogSoftmax(g, o).ok());
  ASSERT_TRUE(ref_->LogSoftmax(g, o_ref).ok());
  ExpectAllNear(o, o_ref, 1e-5f, "LogSoftmax");
  for (DType table_dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    TensorView table = Random(table_dtype, {50, 64});
    const std::vector<int32_t> ids = {3, 0, 49, 3, 17};
    TensorView e = Zeros(DType::kF32, {5, 64}), e_ref = Zeros(DType::kF32, {5, 64});
    ASSERT_TRUE(be_->Embedding(table, ids, e).ok());
    ASSERT_TRUE(ref_->Embedding(table, ids, e_ref).ok());
    ExpectAllNear(e, e_ref, 0.0f, "Embedding");
  }
}

TEST_P(ConformanceTest, TopKWithTies) {
  TensorView x = Random(DType::kF32, {4, 100});
  float* p = x.mutable_data_as<float>();
  p[10] = p[20] = p[30] = 5.0f;  // a three-way tie at the top of row 0
  p[100 + 7] = NAN;              // NaN ranks last
  TensorView v = Zeros(DType::kF32, {4, 6}), v_ref = Zeros(DType::kF32, {4, 6});
  TensorView i = Zeros(DType::kI32, {4, 6}), i_ref = Zeros(DType::kI32, {4, 6});
  ASSERT_TRUE(be_->TopK(x, 6, v, i).ok());
  ASSERT_TRUE(ref_->TopK(x, 6, v_ref, i_ref).ok());
  ExpectAllNear(v, v_ref, 0.0f, "TopK values");
  for (int j = 0; j < 24; ++j) EXPECT_EQ(i.data_as<int32_t>()[j], i_ref.data_as<int32_t>()[j]) << j;
  EXPECT_EQ(i.data_as<int32_t>()[0], 10);
  EXPECT_EQ(i.data_as<int32_t>()[1], 20);
}

// Draws from rows shaped like a model's logits (a few clear favourites over a long tail),
// every stage of the pipeline alone and together, with edits and scored tokens. The token
// must be the reference's; log-probs agree to 1e-4 (f32 sums against f64). A row whose
// draw lands within rounding of a token's edge could differ between backends; these seeds
// have none.
TEST_P(ConformanceTest, SampleTokensMatchTheReference) {
  const int64_t vocab = 5000;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  const std::vector<LogitEdit> edits = {
      {.token = 3, .bias = 4.0f},
      {.token = 17, .repetition_penalty = 1.3f},
      {.token = 18, .bias = 0.5f, .repetition_penalty = 1.1f, .offset = -0.7f},
      {.token = 40, .banned = true},
      {.token = 4999, .bias = -INFINITY}};
  std::vector<TokenDraw> draws;
  auto add = [&](TokenDraw d) { draws.push_back(d); };
  add({.greedy = true});
  add({.greedy = true, .edits = edits, .score_token = 40});
  add({.draw = false, .temperature = 0.6f, .score_token = 12});
  for (double u : {0.0, 0.13, 0.5, 0.77, 0.999}) {
    add({.temperature = 1.0f, .uniform = u});
    add({.temperature = 0.6f, .top_p = 0.95f, .uniform = u});
    add({.temperature = 0.6f, .top_p = 0.95f, .uniform = u, .edits = edits, .score_token = 3});
    add({.temperature = 1.3f, .top_k = 40, .uniform = u});
    add({.temperature = 0.8f, .top_k = 1, .uniform = u});
    add({.temperature = 2.0f, .top_p = 0.5f, .uniform = u});
    add({.temperature = 1.0f, .min_p = 0.05f, .uniform = u});
    add({.temperature = 0.7f,
         .top_k = 50,
         .top_p = 0.9f,
         .min_p = 0.02f,
         .uniform = u,
         .edits = edits});
    add({.temperature = 100.0f, .top_k = 4000, .uniform = u});  // nearly flat: most of the row kept
  }
  const int64_t rows = static_cast<int64_t>(draws.size());
  TensorView logits = Zeros(DType::kF32, {rows, vocab});
  float* p = logits.mutable_data_as<float>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < vocab; ++i) p[r * vocab + i] = normal(rng);
    for (int j = 0; j < 5; ++j)
      p[r * vocab + (r * 131 + j * 977) % vocab] += 8.0f - j;  // favourites
  }
  p[5 * vocab + 100] = p[5 * vocab + 200] = 30.0f;  // a tie at the top: the lower id wins
  std::vector<DrawnToken> got(rows), want(rows);
  ASSERT_TRUE(be_->SampleTokens(logits, draws, absl::MakeSpan(got)).ok());
  ASSERT_TRUE(ref_->SampleTokens(logits, draws, absl::MakeSpan(want)).ok());
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_EQ(got[r].token, want[r].token) << "row " << r;
    EXPECT_NEAR(got[r].logprob, want[r].logprob, 1e-4) << "row " << r;
    EXPECT_NEAR(got[r].sampled_logprob, want[r].sampled_logprob, 1e-4) << "row " << r;
    EXPECT_NEAR(got[r].score_logprob, want[r].score_logprob, 1e-4) << "row " << r;
  }
  EXPECT_EQ(want[2].token, -1);
  EXPECT_NE(want[1].token, 40);
  EXPECT_EQ(want[5].token, 100);  // row 5 is a draw at u = 0 with top-p: the best token
}

// The draws' edges: a row with every token banned, NaN, and bad parameters are errors that
// name the row; a row whose only finite token is kept whatever the uniform.
TEST_P(ConformanceTest, SampleTokensRefusesWhatCannotBeDrawn) {
  TensorView logits = Random(DType::kF32, {2, 4});
  float* p = logits.mutable_data_as<float>();
  std::vector<DrawnToken> out(2);
  const std::vector<LogitEdit> ban_all = {{.token = 0, .banned = true},
                                          {.token = 1, .banned = true},
                                          {.token = 2, .banned = true},
                                          {.token = 3, .banned = true}};
  std::vector<TokenDraw> draws = {{.temperature = 1.0f}, {.temperature = 1.0f, .edits = ban_all}};
  absl::Status s = be_->SampleTokens(logits, draws, absl::MakeSpan(out));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("row 1"), std::string_view::npos) << s;
  draws[1].edits = absl::MakeConstSpan(ban_all).subspan(0, 3);  // token 3 alone is left
  for (double u : {0.0, 0.5, 0.9999}) {
    draws[1].uniform = u;
    ASSERT_TRUE(be_->SampleTokens(logits, draws, absl::MakeSpan(out)).ok());
    EXPECT_EQ(out[1].token, 3);
    EXPECT_NEAR(out[1].sampled_logprob, 0.0f, 1e-6f);
  }
  p[2] = NAN;
  EXPECT_FALSE(be_->SampleTokens(logits, draws, absl::MakeSpan(out)).ok());
  p[2] = INFINITY;
  EXPECT_FALSE(be_->SampleTokens(logits, draws, absl::MakeSpan(out)).ok());
  p[2] = 0.0f;
  auto refused = [&](TokenDraw bad, std::string_view word) {
    std::vector<TokenDraw> two = {draws[0], bad};
    absl::Status st = be_->SampleTokens(logits, two, absl::MakeSpan(out));
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << word;
    EXPECT_NE(std::string(st.message()).find(word), std::string::npos) << st;
    EXPECT_NE(st.message().find("draw 1"), std::string_view::npos) << st;
  };
  refused({.temperature = 0.0f}, "temperature");
  refused({.top_k = -1}, "top_k");
  refused({.top_p = 0.0f}, "top_p");
  refused({.min_p = 1.5f}, "min_p");
  refused({.uniform = 1.0}, "uniform");
  refused({.score_token = 4}, "score_token");
  refused({.draw = false}, "neither");
  const std::vector<LogitEdit> unordered = {{.token = 2}, {.token = 1}};
  refused({.edits = unordered}, "increasing");
  const std::vector<LogitEdit> outside = {{.token = 4}};
  refused({.edits = outside}, "outside");
  const std::vector<LogitEdit> nan_bias = {{.token = 1, .bias = NAN}};
  refused({.edits = nan_bias}, "bias");
  const std::vector<LogitEdit> zero_penalty = {{.token = 1, .repetition_penalty = 0.0f}};
  refused({.edits = zero_penalty}, "repetition_penalty");
  std::vector<DrawnToken> short_out(1);
  EXPECT_FALSE(be_->SampleTokens(logits, draws, absl::MakeSpan(short_out)).ok());
}

TEST_P(ConformanceTest, RopeBothLayoutsOnStridedViews) {
  for (RopeLayout layout : {RopeLayout::kHalfSplit, RopeLayout::kInterleaved}) {
    // The rotary part is the last 16 dims of 48-wide heads (DeepSeek's q layout).
    TensorView full = Random(DType::kF32, {6, 3, 48});
    TensorView full_ref = *TensorView::Allocate(DType::kF32, {6, 3, 48});
    std::memcpy(full_ref.mutable_data(), full.data(), full.byte_size());
    TensorView part = *full.Slice(2, 32, 48), part_ref = *full_ref.Slice(2, 32, 48);
    const std::vector<int32_t> pos = {0, 1, 2, 1000, 70000, 9};
    std::vector<float> inv_freq(8);
    for (int i = 0; i < 8; ++i) inv_freq[i] = 1.0f / std::pow(10000.0f, 2.0f * i / 16.0f);
    ASSERT_TRUE(be_->Rope(part, pos, inv_freq, layout, 1.25f).ok());
    ASSERT_TRUE(ref_->Rope(part_ref, pos, inv_freq, layout, 1.25f).ok());
    ExpectAllNear(full, full_ref, 1e-6f, "Rope");
  }
}

// RopeAndStoreKv is Rope on q, Rope on k, StoreKv(k, v): q and k rotated in place as the
// reference rotates them (1e-6, as Rope), the cache then holding the rotated keys and the
// values (f32 and bf16 caches, both layouts, rows in scattered slots); overlapping operands
// and mismatched rows are refused.
TEST_P(ConformanceTest, RopeAndStoreKvIsRopeRopeStoreKv) {
  for (RopeLayout layout : {RopeLayout::kHalfSplit, RopeLayout::kInterleaved}) {
    for (DType cache_dtype : {DType::kF32, DType::kBF16}) {
      const std::string what =
          "RopeAndStoreKv " + std::string(DTypeName(cache_dtype)) +
          (layout == RopeLayout::kInterleaved ? " interleaved" : " half-split");
      const int64_t t = 5, heads = 6, kv_heads = 2, d = 32, dv = 24, blocks = 4;
      TensorView q = Random(DType::kF32, {t, heads, d}), k = Random(DType::kF32, {t, kv_heads, d}),
                 v = Random(DType::kF32, {t, kv_heads, dv});
      TensorView q_ref = Zeros(DType::kF32, {t, heads, d}),
                 k_ref = Zeros(DType::kF32, {t, kv_heads, d});
      std::memcpy(q_ref.mutable_data(), q.data(), q.byte_size());
      std::memcpy(k_ref.mutable_data(), k.data(), k.byte_size());
      PagedKvLayer cache{Zeros(cache_dtype, {blocks, kKvBlockSize, kv_heads, d}),
                         Zeros(cache_dtype, {blocks, kKvBlockSize, kv_heads, dv})};
      PagedKvLayer cache_ref{Zeros(cache_dtype, {blocks, kKvBlockSize, kv_heads, d}),
                             Zeros(cache_dtype, {blocks, kKvBlockSize, kv_heads, dv})};
      const std::vector<int32_t> pos = {0, 7, 63, 1000, 4};
      const std::vector<int64_t> slots = {3, 17, 63, 40, 0};
      std::vector<float> inv_freq(d / 2);
      for (int64_t i = 0; i < d / 2; ++i) inv_freq[i] = 1.0f / std::pow(10000.0f, 2.0f * i / d);
      ASSERT_TRUE(be_->RopeAndStoreKv(q, k, v, pos, inv_freq, layout, 1.1f, slots, cache).ok())
          << what;
      ASSERT_TRUE(ref_->Rope(q_ref, pos, inv_freq, layout, 1.1f).ok());
      ASSERT_TRUE(ref_->Rope(k_ref, pos, inv_freq, layout, 1.1f).ok());
      ASSERT_TRUE(ref_->StoreKv(k_ref, v, slots, cache_ref).ok());
      ExpectAllNear(q, q_ref, 1e-6f, what + " q");
      ExpectAllNear(k, k_ref, 1e-6f, what + " k");
      ExpectAllNear(cache.k, cache_ref.k, cache_dtype == DType::kBF16 ? 1e-2f : 1e-6f,
                    what + " cache k");
      ExpectAllNear(cache.v, cache_ref.v, 0.0f, what + " cache v");
      EXPECT_EQ(be_->RopeAndStoreKv(q, q, v, pos, inv_freq, layout, 1.0f, slots, cache).code(),
                absl::StatusCode::kInvalidArgument);  // k is not the cache's width, and overlaps q
      EXPECT_EQ(
          be_->RopeAndStoreKv(*q.Slice(0, 0, 4), k, v, pos, inv_freq, layout, 1.0f, slots, cache)
              .code(),
          absl::StatusCode::kInvalidArgument);  // 4 rows of q, 5 positions
    }
  }
}

TEST_P(ConformanceTest, PagedAttentionPrefillAndDecode) {
  for (DType cache_dtype : {DType::kF32, DType::kBF16}) {
    const int64_t heads = 6, kv_heads = 2, dk = 32, dv = 24, blocks = 12;
    PagedKvLayer cache{Zeros(cache_dtype, {blocks, kKvBlockSize, kv_heads, dk}),
                       Zeros(cache_dtype, {blocks, kKvBlockSize, kv_heads, dv})};
    PagedKvLayer cache_ref{Zeros(cache_dtype, {blocks, kKvBlockSize, kv_heads, dk}),
                           Zeros(cache_dtype, {blocks, kKvBlockSize, kv_heads, dv})};
    // Sequence A: 37 cached positions in blocks {5, 0, 9}; this call: its last 3 rows.
    // Sequence B: 1 new row at position 20 in blocks {2, 7}.
    const std::vector<int32_t> table_a = {5, 0, 9}, table_b = {2, 7};
    auto slot = [](const std::vector<int32_t>& t, int64_t p) { return t[p / kKvBlockSize] * kKvBlockSize + p % kKvBlockSize; };
    std::vector<int64_t> slots;
    for (int64_t p = 0; p < 37; ++p) slots.push_back(slot(table_a, p));
    for (int64_t p = 0; p < 21; ++p) slots.push_back(slot(table_b, p));
    const int64_t rows = static_cast<int64_t>(slots.size());
    TensorView k = Random(DType::kF32, {rows, kv_heads, dk}), v = Random(DType::kF32, {rows, kv_heads, dv});
    ASSERT_TRUE(be_->StoreKv(k, v, slots, cache).ok());
    ASSERT_TRUE(ref_->StoreKv(k, v, slots, cache_ref).ok());
    ExpectAllNear(cache.k, cache_ref.k, 0.0f, "StoreKv k");
    ExpectAllNear(cache.v, cache_ref.v, 0.0f, "StoreKv v");
    TensorView q = Random(DType::kF32, {4, heads, dk}, -2.0f, 2.0f);
    std::vector<AttentionSequence> seqs = {{table_a, 0, 3, 34}, {table_b, 3, 1, 20}};
    TensorView out = Zeros(DType::kF32, {4, heads, dv}), out_ref = Zeros(DType::kF32, {4, heads, dv});
    ASSERT_TRUE(be_->Attention(q, cache, seqs, 0.17f, out).ok());
    ASSERT_TRUE(ref_->Attention(q, cache_ref, seqs, 0.17f, out_ref).ok());
    ExpectAllNear(out, out_ref, 1e-5f, "Attention");
  }
}

// Decode and short prefill rows at a real model's widths (head dims 128, 6 query heads a kv
// head as in R1-Distill-Qwen-1.5B) and odd ones (a head dim off the vector width), over a
// context of 700 positions in scattered blocks that ends inside a block; then one decode
// row alone (the cpu backend splits its keys over the threads and merges the parts).
TEST_P(ConformanceTest, PagedAttentionLongContextRealWidths) {
  for (DType cache_dtype : {DType::kF32, DType::kBF16}) {
    for (auto [dk, dv] : {std::pair<int64_t, int64_t>{128, 128}, {36, 20}}) {
      const std::string what = "Attention " + std::string(DTypeName(cache_dtype)) + " dk=" +
                               std::to_string(dk) + " dv=" + std::to_string(dv);
      const int64_t heads = 12, kv_heads = 2, blocks = 48, n = 700;
      std::vector<int32_t> table;
      for (int32_t b = 0; b < 44; ++b) table.push_back((b * 7 + 3) % blocks);  // distinct blocks
      const auto [cache, cache_ref] = FilledCaches(cache_dtype, kv_heads, dk, dv, blocks, n, table);
      // Rows at positions 697-699 (a prefill's last rows, then a decode-like row).
      TensorView q = Random(DType::kF32, {3, heads, dk}, -1.0f, 1.0f);
      std::vector<AttentionSequence> seqs = {{table, 0, 2, 697}, {table, 2, 1, 699}};
      TensorView out = Zeros(DType::kF32, {3, heads, dv}), out_ref = Zeros(DType::kF32, {3, heads, dv});
      ASSERT_TRUE(be_->Attention(q, cache, seqs, 1.0f / std::sqrt(float(dk)), out).ok()) << what;
      ASSERT_TRUE(ref_->Attention(q, cache_ref, seqs, 1.0f / std::sqrt(float(dk)), out_ref).ok());
      ExpectAllNear(out, out_ref, 1e-5f, what);
      TensorView q1 = *q.Slice(0, 2, 3);
      const std::vector<AttentionSequence> one = {{table, 0, 1, 699}};
      TensorView out1 = Zeros(DType::kF32, {1, heads, dv});
      ASSERT_TRUE(be_->Attention(q1, cache, one, 1.0f / std::sqrt(float(dk)), out1).ok()) << what;
      ExpectAllNear(out1, *out_ref.Slice(0, 2, 3), 1e-5f, what + " alone");
    }
  }
}

// More kv heads than the cpu backend takes in one task (8): a row's kv heads in two chunks
// (8 and 2), each query row alone (split-K over its keys) and three rows together.
TEST_P(ConformanceTest, PagedAttentionManyKvHeads) {
  for (DType cache_dtype : {DType::kF32, DType::kBF16}) {
    const int64_t heads = 20, kv_heads = 10, dk = 40, dv = 24, blocks = 40, n = 600;
    const std::string what = "Attention kv_heads=10 " + std::string(DTypeName(cache_dtype));
    std::vector<int32_t> table;
    for (int32_t b = 0; b < 38; ++b) table.push_back((b * 11 + 5) % blocks);  // distinct blocks
    const auto [cache, cache_ref] = FilledCaches(cache_dtype, kv_heads, dk, dv, blocks, n, table);
    TensorView q = Random(DType::kF32, {3, heads, dk}, -1.0f, 1.0f);
    const float scale = 1.0f / std::sqrt(float(dk));
    const std::vector<AttentionSequence> rows = {{table, 0, 3, 597}};
    TensorView out = Zeros(DType::kF32, {3, heads, dv}),
               out_ref = Zeros(DType::kF32, {3, heads, dv});
    ASSERT_TRUE(be_->Attention(q, cache, rows, scale, out).ok()) << what;
    ASSERT_TRUE(ref_->Attention(q, cache_ref, rows, scale, out_ref).ok());
    ExpectAllNear(out, out_ref, 1e-5f, what);
    for (int64_t r = 0; r < 3; ++r) {
      const std::vector<AttentionSequence> one = {{table, 0, 1, 597 + r}};
      TensorView out1 = Zeros(DType::kF32, {1, heads, dv});
      ASSERT_TRUE(be_->Attention(*q.Slice(0, r, r + 1), cache, one, scale, out1).ok()) << what;
      ExpectAllNear(out1, *out_ref.Slice(0, r, r + 1), 1e-5f, what + " row alone");
    }
  }
}

// The absorbed MLA projections: per-head matmuls on strided slices, both weight layouts.
TEST_P(ConformanceTest, HeadMatMulBothLayoutsOnStridedViews) {
  for (DType wd : {DType::kF32, DType::kBF16}) {
    for (HeadWeightLayout layout : {HeadWeightLayout::kOutIn, HeadWeightLayout::kInOut}) {
      const bool out_in = layout == HeadWeightLayout::kOutIn;
      TensorView x_full = Random(DType::kF32, {5, 3, 20});
      TensorView x = *x_full.Slice(2, 0, 12);  // k = 12 of 20
      // Weights: heads strided, as per-head row ranges of a wider matrix.
      TensorView w_full = out_in ? Random(wd, {3, 10, 12}) : Random(wd, {3, 15, 7});
      TensorView w = out_in ? *w_full.Slice(1, 2, 9) : *w_full.Slice(1, 3, 15);
      TensorView y_full = Zeros(DType::kF32, {5, 3, 9}), y_ref_full = Zeros(DType::kF32, {5, 3, 9});
      TensorView y = *y_full.Slice(2, 1, 8), y_ref = *y_ref_full.Slice(2, 1, 8);
      ASSERT_TRUE(be_->HeadMatMul(x, w, layout, y).ok());
      ASSERT_TRUE(ref_->HeadMatMul(x, w, layout, y_ref).ok());
      ExpectAllNear(y_full, y_ref_full, 1e-5f, "HeadMatMul");
      // The reference against loops written here.
      const std::vector<float> xs = AsF32(x_full), ws = AsF32(w_full), ys = AsF32(y_ref_full);
      for (int64_t t = 0; t < 5; ++t) {
        for (int64_t h = 0; h < 3; ++h) {
          for (int64_t n = 0; n < 7; ++n) {
            double acc = 0.0;
            for (int64_t i = 0; i < 12; ++i) {
              const float wv = out_in ? ws[(h * 10 + 2 + n) * 12 + i] : ws[(h * 15 + 3 + i) * 7 + n];
              acc += double(xs[(t * 3 + h) * 20 + i]) * wv;
            }
            ASSERT_NEAR(ys[(t * 3 + h) * 9 + 1 + n], acc, 1e-5) << t << " " << h << " " << n;
          }
          EXPECT_EQ(ys[(t * 3 + h) * 9], 0.0f);  // outside the slice: untouched
        }
      }
    }
  }
  TensorView x = Random(DType::kF32, {2, 3, 4});
  TensorView w = Random(DType::kF8E4M3, {3, 5, 4});
  TensorView y = Zeros(DType::kF32, {2, 3, 5});
  EXPECT_FALSE(be_->HeadMatMul(x, w, HeadWeightLayout::kOutIn, y).ok());  // fp8 not taken
  TensorView w_ok = Random(DType::kF32, {3, 5, 4});
  EXPECT_TRUE(be_->HeadMatMul(x, w_ok, HeadWeightLayout::kOutIn, y).ok());
  EXPECT_FALSE(be_->HeadMatMul(x, w_ok, HeadWeightLayout::kInOut, y).ok());  // k = 5 != 4
}

TEST_P(ConformanceTest, AddWeightedRowsAndStridedRmsNorm) {
  TensorView x = Random(DType::kF32, {12, 50});  // 4 tokens x k = 3
  const std::vector<float> wts = {0.5f, -1.0f, 2.0f, 0.0f, 1.0f, 1.0f, 0.25f, 0.25f, 0.5f, 3.0f, -2.0f, 1.0f};
  TensorView out = Random(DType::kF32, {4, 50});
  TensorView out_ref = *TensorView::Allocate(DType::kF32, {4, 50});
  std::memcpy(out_ref.mutable_data(), out.data(), out.byte_size());
  const std::vector<float> before = AsF32(out), xs = AsF32(x);
  ASSERT_TRUE(be_->AddWeightedRows(x, wts, 3, out).ok());
  ASSERT_TRUE(ref_->AddWeightedRows(x, wts, 3, out_ref).ok());
  ExpectAllNear(out, out_ref, 1e-6f, "AddWeightedRows");
  const std::vector<float> after = AsF32(out_ref);
  for (int64_t t = 0; t < 4; ++t) {
    for (int64_t i = 0; i < 50; ++i) {
      float want = before[t * 50 + i];
      for (int64_t j = 0; j < 3; ++j) want += wts[t * 3 + j] * xs[(t * 3 + j) * 50 + i];
      ASSERT_NEAR(after[t * 50 + i], want, 1e-5f);
    }
  }
  EXPECT_FALSE(be_->AddWeightedRows(x, wts, 4, out).ok());  // 12 rows do not fold into 4 x 4
  // RmsNorm in place on the first 40 of 48 columns (MLA's latent inside kv_a's output).
  TensorView m = Random(DType::kF32, {3, 48}, -2.0f, 2.0f);
  TensorView m_ref = *TensorView::Allocate(DType::kF32, {3, 48});
  std::memcpy(m_ref.mutable_data(), m.data(), m.byte_size());
  TensorView gain = Random(DType::kBF16, {40}, 0.5f, 1.5f);
  TensorView part = *m.Slice(1, 0, 40), part_ref = *m_ref.Slice(1, 0, 40);
  ASSERT_TRUE(be_->RmsNorm(part, gain, 1e-6f, part).ok());
  ASSERT_TRUE(ref_->RmsNorm(part_ref, gain, 1e-6f, part_ref).ok());
  ExpectAllNear(m, m_ref, 1e-5f, "RmsNorm strided");
}

// x += delta, then the norm of x into y (here a view of the first h columns of a wider
// matrix, whose last 8 stay untouched); the sum is the f32 sum, bit for bit.
TEST_P(ConformanceTest, AddRmsNormIsTheResidualStepThenTheNorm) {
  for (int64_t t : {1, 5}) {
    for (int64_t h : {300, 333, 1536}) {
      const std::string what = "AddRmsNorm t=" + std::to_string(t) + " h=" + std::to_string(h);
      TensorView x = Random(DType::kF32, {t, h}, -3.0f, 3.0f), delta = Random(DType::kF32, {t, h});
      TensorView x_ref = *TensorView::Allocate(DType::kF32, {t, h});
      std::memcpy(x_ref.mutable_data(), x.data(), x.byte_size());
      const std::vector<float> before = AsF32(x), d = AsF32(delta);
      TensorView gain = Random(DType::kBF16, {h}, 0.5f, 1.5f);
      TensorView wide = Zeros(DType::kF32, {t, h + 8}), wide_ref = Zeros(DType::kF32, {t, h + 8});
      TensorView y = *wide.Slice(1, 0, h), y_ref = *wide_ref.Slice(1, 0, h);
      ASSERT_TRUE(be_->AddRmsNorm(x, delta, gain, 1e-6f, y).ok()) << what;
      ASSERT_TRUE(ref_->Add(x_ref, delta, x_ref).ok());
      ASSERT_TRUE(ref_->RmsNorm(x_ref, gain, 1e-6f, y_ref).ok());
      const std::vector<float> after = AsF32(x);
      for (int64_t i = 0; i < t * h; ++i) ASSERT_EQ(after[i], before[i] + d[i]) << what << " " << i;
      ExpectAllNear(wide, wide_ref, 1e-5f, what);
      const std::vector<float> w = AsF32(wide);
      for (int64_t r = 0; r < t; ++r) {
        for (int64_t c = h; c < h + 8; ++c) ASSERT_EQ(w[r * (h + 8) + c], 0.0f) << what;
      }
    }
  }
  TensorView x = Random(DType::kF32, {2, 64}), y = Zeros(DType::kF32, {2, 64});
  TensorView gain = Random(DType::kF32, {64});
  EXPECT_EQ(be_->AddRmsNorm(x, Random(DType::kF32, {2, 32}), gain, 1e-6f, y).code(),
            absl::StatusCode::kInvalidArgument);  // delta's shape
  EXPECT_EQ(be_->AddRmsNorm(x, Random(DType::kF32, {2, 64}), gain, 1e-6f, x).code(),
            absl::StatusCode::kInvalidArgument);  // y is x
  EXPECT_EQ(be_->AddRmsNorm(x, Random(DType::kF32, {2, 64}), Random(DType::kF32, {63}), 1e-6f, y)
                .code(),
            absl::StatusCode::kInvalidArgument);  // gain's size
}

// MLA's latent cache: keys only; the value is the first dv dims of each key.
TEST_P(ConformanceTest, LatentAttentionUsesTheKeyPrefixAsValue) {
  for (DType cache_dtype : {DType::kF32, DType::kBF16}) {
    const int64_t heads = 12, dk = 40, dv = 32, blocks = 6;
    PagedKvLayer latent{Zeros(cache_dtype, {blocks, kKvBlockSize, 1, dk}), {}};
    PagedKvLayer latent_ref{Zeros(cache_dtype, {blocks, kKvBlockSize, 1, dk}), {}};
    // The same attention with the values stored separately: the independent check.
    PagedKvLayer split{Zeros(cache_dtype, {blocks, kKvBlockSize, 1, dk}),
                       Zeros(cache_dtype, {blocks, kKvBlockSize, 1, dv})};
    const std::vector<int32_t> table = {4, 1, 3};
    std::vector<int64_t> slots;
    for (int64_t p = 0; p < 40; ++p) slots.push_back(table[p / kKvBlockSize] * kKvBlockSize + p % kKvBlockSize);
    TensorView k = Random(DType::kF32, {40, 1, dk});
    TensorView v = *TensorView::Allocate(DType::kF32, {40, 1, dv});
    for (int64_t p = 0; p < 40; ++p) {
      std::memcpy(v.mutable_data_as<float>() + p * dv, k.data_as<float>() + p * dk, dv * sizeof(float));
    }
    ASSERT_TRUE(be_->StoreKv(k, TensorView(), slots, latent).ok());
    ASSERT_TRUE(ref_->StoreKv(k, TensorView(), slots, latent_ref).ok());
    ASSERT_TRUE(ref_->StoreKv(k, v, slots, split).ok());
    TensorView q = Random(DType::kF32, {3, heads, dk}, -2.0f, 2.0f);
    std::vector<AttentionSequence> seqs = {{table, 0, 2, 38}, {table, 2, 1, 10}};
    TensorView out = Zeros(DType::kF32, {3, heads, dv}), out_ref = Zeros(DType::kF32, {3, heads, dv});
    TensorView out_split = Zeros(DType::kF32, {3, heads, dv});
    ASSERT_TRUE(be_->Attention(q, latent, seqs, 0.2f, out).ok());
    ASSERT_TRUE(ref_->Attention(q, latent_ref, seqs, 0.2f, out_ref).ok());
    ASSERT_TRUE(ref_->Attention(q, split, seqs, 0.2f, out_split).ok());
    ExpectAllNear(out_ref, out_split, 1e-6f, "latent reference vs split values");
    ExpectAllNear(out, out_ref, 1e-5f, "latent Attention");
    TensorView too_wide = Zeros(DType::kF32, {3, heads, dk + 1});
    EXPECT_FALSE(be_->Attention(q, latent, seqs, 0.2f, too_wide).ok());
  }
}

TEST_P(ConformanceTest, FrontEndRefusesBadArguments) {
  TensorView x = Random(DType::kF32, {2, 8});
  TensorView y = Zeros(DType::kF32, {2, 4});
  Weight w{Random(DType::kBF16, {4, 8}), {}};
  EXPECT_TRUE(be_->MatMul(x, w, nullptr, y).ok());
  Weight wrong_k{Random(DType::kBF16, {4, 9}), {}};
  EXPECT_FALSE(be_->MatMul(x, wrong_k, nullptr, y).ok());
  Weight fp8_no_scale{Random(DType::kF8E4M3, {4, 8}), {}};
  EXPECT_FALSE(be_->MatMul(x, fp8_no_scale, nullptr, y).ok());
  EXPECT_FALSE(be_->MatMul(x, w, nullptr, x).ok());  // y aliases x / wrong shape
  TensorView table = Random(DType::kF32, {10, 8});
  const std::vector<int32_t> bad_ids = {3, 10};
  EXPECT_FALSE(be_->Embedding(table, bad_ids, x).ok());
  TensorView k = Random(DType::kF32, {1, 1, 8});
  PagedKvLayer cache{Zeros(DType::kF32, {2, kKvBlockSize, 1, 8}), Zeros(DType::kF32, {2, kKvBlockSize, 1, 8})};
  const std::vector<int64_t> outside = {2 * kKvBlockSize};
  EXPECT_FALSE(be_->StoreKv(k, k, outside, cache).ok());
  const std::vector<int32_t> table_bad = {5};
  std::vector<AttentionSequence> seqs = {{table_bad, 0, 1, 0}};
  TensorView out = Zeros(DType::kF32, {1, 1, 8});
  EXPECT_FALSE(be_->Attention(k, cache, seqs, 1.0f, out).ok());
  TensorView v = Zeros(DType::kF32, {1, 3}), idx = Zeros(DType::kI32, {1, 3});
  EXPECT_FALSE(be_->TopK(Random(DType::kF32, {1, 2}), 3, v, idx).ok());
}

std::vector<std::string> FastBackends() {
  std::vector<std::string> out;
  for (const std::string& name : RegisteredBackends()) {
    if (name != "reference") out.push_back(name);
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Backends, ConformanceTest, ::testing::ValuesIn(FastBackends()),
                         testing::BackendTestName);

TEST(BackendRegistryTest, TestInstancesAreNamedAfterTheirBackend) {
  EXPECT_EQ(testing::BackendTestName({"cpu", 0}), "cpu");
  EXPECT_EQ(testing::BackendTestName({"cuda:1", 1}), "cuda_1");
}

// Sets an environment variable for one scope, then puts the old value back.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(BackendRegistryTest, RrtBackendChoosesWhatAutoMeans) {
  {
    ScopedEnv env("RRT_BACKEND", "reference");
    EXPECT_EQ((*CreateBackend("auto", {}))->name(), "reference");
    EXPECT_EQ((*CreateBackend("cpu", {}))->name(), "cpu");  // a name given is kept
  }
  {
    ScopedEnv env("RRT_BACKEND", "nope");
    const absl::Status s = CreateBackend("auto", {}).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
    EXPECT_NE(s.message().find("RRT_BACKEND names backend 'nope'"), std::string_view::npos) << s;
  }
  {
    ScopedEnv env("RRT_BACKEND", "");  // empty: as if unset
    EXPECT_EQ((*CreateBackend("auto", {}))->name(), RegisteredBackends().front());
  }
}

TEST(BackendRegistryTest, AutoPicksTheFastestAndUnknownIsNotFound) {
  ScopedEnv env("RRT_BACKEND", nullptr);
  auto names = RegisteredBackends();
  ASSERT_GE(names.size(), 2u);
  EXPECT_EQ(names.back(), "reference");
  EXPECT_EQ((*CreateBackend("auto", {}))->name(), names.front());
  EXPECT_EQ(CreateBackend("nope", {}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(RegisterBackend("reference", 1, nullptr).code(), absl::StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace reasonrt
