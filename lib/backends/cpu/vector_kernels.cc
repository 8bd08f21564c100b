// Small-op inner loops, compiled once per instruction set and dispatched at run time.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "lib/backends/cpu/vector_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"
#include "lib/backends/cpu/vector_kernels.h"

#include <cmath>

HWY_BEFORE_NAMESPACE();
namespace reasonrt::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

HWY_INLINE VF LoadBf16(DF df, const uint16_t* p) {
  const hn::RebindToUnsigned<DF> du32;
  const hn::Rebind<uint16_t, DF> du16;
  return hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du32, hn::LoadU(du16, p))));
}

template <bool kBf16>
HWY_INLINE VF LoadAs(DF df, const void* p, int64_t i) {
  if constexpr (kBf16) return LoadBf16(df, static_cast<const uint16_t*>(p) + i);
  return hn::LoadU(df, static_cast<const float*>(p) + i);
}

template <bool kBf16>
HWY_INLINE float ScalarAs(const void* p, int64_t i) {
  if constexpr (kBf16) return Bf16ToF32(static_cast<const uint16_t*>(p)[i]);
  return static_cast<const float*>(p)[i];
}

template <bool kBf16>
float DotT(const float* a, const void* b, int64_t n) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  VF s0 = hn::Zero(df), s1 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    s0 = hn::MulAdd(hn::LoadU(df, a + i), LoadAs<kBf16>(df, b, i), s0);
    s1 = hn::MulAdd(hn::LoadU(df, a + i + lanes), LoadAs<kBf16>(df, b, i + lanes), s1);
  }
  for (; i + lanes <= n; i += lanes) s0 = hn::MulAdd(hn::LoadU(df, a + i), LoadAs<kBf16>(df, b, i), s0);
  float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(s0, s1)));
  for (; i < n; ++i) sum += a[i] * ScalarAs<kBf16>(b, i);
  return sum;
}

float DotImpl(const float* a, const void* b, DType b_type, int64_t n) {
  return b_type == DType::kBF16 ? DotT<true>(a, b, n) : DotT<false>(a, b, n);
}

template <bool kBf16>
void AxpyT(float alpha, const void* x, float* y, int64_t n) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const VF va = hn::Set(df, alpha);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    hn::StoreU(hn::MulAdd(va, LoadAs<kBf16>(df, x, i), hn::LoadU(df, y + i)), df, y + i);
  }
  for (; i < n; ++i) y[i] += alpha * ScalarAs<kBf16>(x, i);
}

void AxpyImpl(float alpha, const void* x, DType x_type, float* y, int64_t n) {
  if (x_type == DType::kBF16) return AxpyT<true>(alpha, x, y, n);
  AxpyT<false>(alpha, x, y, n);
}

void RmsNormRowImpl(const float* x, const float* gain, float eps, float* y, int64_t n) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  VF s = hn::Zero(df);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const VF v = hn::LoadU(df, x + i);
    s = hn::MulAdd(v, v, s);
  }
  float sum_sq = hn::GetLane(hn::SumOfLanes(df, s));
  for (; i < n; ++i) sum_sq += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(sum_sq / static_cast<float>(n) + eps);
  const VF vinv = hn::Set(df, inv);
  for (i = 0; i + lanes <= n; i += lanes) {
    hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(df, x + i), vinv), hn::LoadU(df, gain + i)), df, y + i);
  }
  for (; i < n; ++i) y[i] = x[i] * inv * gain[i];
}

void SiluMulImpl(const float* gate, const float* up, float* out, int64_t n) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const VF one = hn::Set(df, 1.0f);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const VF g = hn::LoadU(df, gate + i);
    const VF sig = hn::Div(one, hn::Add(one, hn::Exp(df, hn::Neg(g))));
    hn::StoreU(hn::Mul(hn::Mul(g, sig), hn::LoadU(df, up + i)), df, out + i);
  }
  for (; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void AddImpl(const float* a, const float* b, float* out, int64_t n) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    hn::StoreU(hn::Add(hn::LoadU(df, a + i), hn::LoadU(df, b + i)), df, out + i);
  }
  for (; i < n; ++i) out[i] = a[i] + b[i];
}

}  // namespace HWY_NAMESPACE
}  // namespace reasonrt::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace reasonrt::cpu {

HWY_EXPORT(DotImpl);
HWY_EXPORT(AxpyImpl);
HWY_EXPORT(RmsNormRowImpl);
HWY_EXPORT(SiluMulImpl);
HWY_EXPORT(AddImpl);

float Dot(const float* a, const void* b, DType b_type, int64_t n) {
  return HWY_DYNAMIC_DISPATCH(DotImpl)(a, b, b_type, n);
}
void Axpy(float alpha, const void* x, DType x_type, float* y, int64_t n) {
  HWY_DYNAMIC_DISPATCH(AxpyImpl)(alpha, x, x_type, y, n);
}
void RmsNormRow(const float* x, const float* gain, float eps, float* y, int64_t n) {
  HWY_DYNAMIC_DISPATCH(RmsNormRowImpl)(x, gain, eps, y, n);
}
void SiluMul(const float* gate, const float* up, float* out, int64_t n) {
  HWY_DYNAMIC_DISPATCH(SiluMulImpl)(gate, up, out, n);
}
void Add(const float* a, const float* b, float* out, int64_t n) {
  HWY_DYNAMIC_DISPATCH(AddImpl)(a, b, out, n);
}

}  // namespace reasonrt::cpu
#endif
