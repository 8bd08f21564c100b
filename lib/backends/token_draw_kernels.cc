// The token draw's SIMD passes, compiled once per instruction set, dispatched at run time.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "lib/backends/token_draw_kernels.cc"
// foreach_target.h must come first (it re-includes this file per target).
// clang-format off
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"
#include "lib/backends/token_draw_kernels.h"
// clang-format on

#include <limits>

HWY_BEFORE_NAMESPACE();
namespace reasonrt::draw {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

constexpr float kInf = std::numeric_limits<float>::infinity();

int64_t FindNotFiniteImpl(const float* x, int64_t n) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const VF inf = hn::Set(df, kInf);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    // x < +inf is false for NaN and +inf only.
    if (!hn::AllTrue(df, hn::Lt(hn::LoadU(df, x + i), inf))) break;
  }
  for (; i < n; ++i) {
    if (!(x[i] < kInf)) return i;
  }
  return -1;
}

float MaxTail(VF m, const float* x, int64_t i, int64_t n) {
  float best = hn::GetLane(hn::MaxOfLanes(DF(), m));
  for (; i < n; ++i) best = x[i] > best ? x[i] : best;
  return best;
}

float MaxOfImpl(const float* x, int64_t n) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  VF m = hn::Set(df, -kInf);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) m = hn::Max(m, hn::LoadU(df, x + i));
  return MaxTail(m, x, i, n);
}

float ScaleAndMaxImpl(float* x, int64_t n, float scale) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const VF s = hn::Set(df, scale);
  VF m = hn::Set(df, -kInf);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const VF v = hn::Mul(hn::LoadU(df, x + i), s);
    hn::StoreU(v, df, x + i);
    m = hn::Max(m, v);
  }
  for (int64_t j = i; j < n; ++j) x[j] *= scale;
  return MaxTail(m, x, i, n);
}

// sum_i exp(x[i] * scale - offset), each term also stored to out[i] when out is not null.
double SumExpImpl(const float* x, int64_t n, float scale, float offset, float* out) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const VF s = hn::Set(df, scale), off = hn::Set(df, offset);
  constexpr int64_t kBlock = 64;  // f32 sums over a block, f64 across blocks
  double total = 0;
  int64_t i = 0;
  while (i + lanes <= n) {
    VF acc = hn::Zero(df);
    const int64_t end = i + kBlock <= n ? i + kBlock : n;
    for (; i + lanes <= end; i += lanes) {
      const VF e = hn::Exp(df, hn::Sub(hn::Mul(hn::LoadU(df, x + i), s), off));
      if (out != nullptr) hn::StoreU(e, df, out + i);
      acc = hn::Add(acc, e);
    }
    total += hn::GetLane(hn::SumOfLanes(df, acc));
  }
  for (; i < n; ++i) {
    const float v = x[i] * scale - offset;
    const float e = v < -104.0f ? 0.0f : hn::GetLane(hn::Exp(df, hn::Set(df, v)));
    if (out != nullptr) out[i] = e;
    total += e;
  }
  return total;
}

int64_t IndicesAtLeastImpl(const float* x, int64_t n, float threshold, int32_t* ids) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const VF t = hn::Set(df, threshold);
  int64_t count = 0, i = 0;
  for (; i + lanes <= n; i += lanes) {
    if (hn::AllFalse(df, hn::Ge(hn::LoadU(df, x + i), t))) continue;  // most vectors
    for (int64_t j = i; j < i + lanes; ++j) {
      ids[count] = static_cast<int32_t>(j);
      count += x[j] >= threshold ? 1 : 0;
    }
  }
  for (; i < n; ++i) {
    ids[count] = static_cast<int32_t>(i);
    count += x[i] >= threshold ? 1 : 0;
  }
  return count;
}

}  // namespace HWY_NAMESPACE
}  // namespace reasonrt::draw
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace reasonrt::draw {

HWY_EXPORT(FindNotFiniteImpl);
HWY_EXPORT(MaxOfImpl);
HWY_EXPORT(ScaleAndMaxImpl);
HWY_EXPORT(SumExpImpl);
HWY_EXPORT(IndicesAtLeastImpl);

int64_t FindNotFinite(const float* x, int64_t n) {
  return HWY_DYNAMIC_DISPATCH(FindNotFiniteImpl)(x, n);
}
float MaxOf(const float* x, int64_t n) { return HWY_DYNAMIC_DISPATCH(MaxOfImpl)(x, n); }
float ScaleAndMax(float* x, int64_t n, float scale) {
  return HWY_DYNAMIC_DISPATCH(ScaleAndMaxImpl)(x, n, scale);
}
double SumExp(const float* x, int64_t n, float scale, float offset) {
  return HWY_DYNAMIC_DISPATCH(SumExpImpl)(x, n, scale, offset, nullptr);
}
double ExpOf(const float* x, int64_t n, float offset, float* out) {
  return HWY_DYNAMIC_DISPATCH(SumExpImpl)(x, n, 1.0f, offset, out);
}
int64_t IndicesAtLeast(const float* x, int64_t n, float threshold, int32_t* ids) {
  return HWY_DYNAMIC_DISPATCH(IndicesAtLeastImpl)(x, n, threshold, ids);
}

}  // namespace reasonrt::draw
#endif  // HWY_ONCE
