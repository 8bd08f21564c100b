#include "lib/backends/cpu/onednn_gemm.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <tuple>

#include "lib/core/strings.h"
#include "reasonrt/cpu_features.h"

#if RRT_WITH_ONEDNN
#include <omp.h>

#include "oneapi/dnnl/dnnl.hpp"
#endif

namespace reasonrt::cpu {

#if RRT_WITH_ONEDNN
struct OneDnnGemm::Impl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::map<std::tuple<int64_t, int64_t, int64_t, int64_t, int>, dnnl::matmul> primitives;
};

OneDnnGemm::OneDnnGemm() : impl_(std::make_unique<Impl>()) {}
OneDnnGemm::~OneDnnGemm() = default;

bool OneDnnGemm::Supports(DType dtype) {
  if (dtype == DType::kF32) return true;
  const CpuFeatures& f = GetCpuFeatures();
  return dtype == DType::kBF16 && (f.avx512_bf16 || f.amx_bf16);
}

absl::Status OneDnnGemm::Run(DType dtype, const float* x, const uint16_t* x_bf16, int64_t m,
                             int64_t k, const void* w, int64_t n, float* y, int64_t ldy) {
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  if (omp_get_max_threads() != 1) omp_set_num_threads(1);
  const dt in_type = dtype == DType::kBF16 ? dt::bf16 : dt::f32;
  try {
    const dnnl::memory::desc a_md({m, k}, in_type, tag::ab);
    const dnnl::memory::desc b_md({k, n}, in_type, tag::ba);  // W[N, K] is B[K, N] column-major
    const dnnl::memory::desc c_md({m, n}, dt::f32, dnnl::memory::dims{ldy, 1});
    auto key = std::make_tuple(m, n, k, ldy, static_cast<int>(dtype));
    auto it = impl_->primitives.find(key);
    if (it == impl_->primitives.end()) {
      const dnnl::matmul::desc desc(a_md, b_md, c_md);
      const dnnl::matmul::primitive_desc pd(desc, impl_->engine);
      it = impl_->primitives.emplace(key, dnnl::matmul(pd)).first;
    }
    const void* a = dtype == DType::kBF16 ? static_cast<const void*>(x_bf16) : x;
    dnnl::memory a_mem(a_md, impl_->engine, const_cast<void*>(a));
    dnnl::memory b_mem(b_md, impl_->engine, const_cast<void*>(w));
    dnnl::memory c_mem(c_md, impl_->engine, y);
    it->second.execute(impl_->stream, {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem}, {DNNL_ARG_DST, c_mem}});
    impl_->stream.wait();
  } catch (const dnnl::error& e) {
    return absl::InternalError(StrCat("oneDNN matmul [", m, "x", k, "] x [", k, "x", n, "] failed: ", e.what()));
  }
  return absl::OkStatus();
}
double OneDnnGemm::MeasurePeakGflops(DType dtype, int64_t m, int64_t n, int64_t k, int threads, int reps) {
  if (!Supports(dtype) || (dtype != DType::kBF16 && dtype != DType::kF32)) return 0.0;
  const auto in_type = dtype == DType::kBF16 ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32;
  const int64_t in_bytes = dtype == DType::kBF16 ? 2 : 4;
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  double best = 0.0;
  try {
    dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    dnnl::stream stream(engine);
    const dnnl::memory::desc a_md({m, k}, in_type, tag::ab), b_md({k, n}, in_type, tag::ba),
        c_md({m, n}, dt::f32, tag::ab);
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), engine);
    dnnl::matmul prim(pd);
    dnnl::memory a(a_md, engine), b(b_md, engine), c(c_md, engine);
    std::memset(a.get_data_handle(), 0x3f, m * k * in_bytes);
    std::memset(b.get_data_handle(), 0x3f, k * n * in_bytes);
    for (int r = 0; r < reps + 1; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      prim.execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
      stream.wait();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (r > 0) best = std::max(best, 2.0 * m * n * k / s / 1e9);  // the first run warms up
    }
  } catch (const dnnl::error&) {
    best = 0.0;
  }
  omp_set_num_threads(saved);
  return best;
}
#else
double OneDnnGemm::MeasurePeakGflops(DType, int64_t, int64_t, int64_t, int, int) { return 0.0; }
struct OneDnnGemm::Impl {};
OneDnnGemm::OneDnnGemm() = default;
OneDnnGemm::~OneDnnGemm() = default;
bool OneDnnGemm::Supports(DType) { return false; }
absl::Status OneDnnGemm::Run(DType, const float*, const uint16_t*, int64_t, int64_t, const void*,
                             int64_t, float*, int64_t) {
  return absl::UnimplementedError("this build has no oneDNN");
}
#endif

DType OneDnnGemm::PromptDType() { return Supports(DType::kBF16) ? DType::kBF16 : DType::kF32; }

}  // namespace reasonrt::cpu
