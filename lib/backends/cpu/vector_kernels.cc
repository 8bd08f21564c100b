// Small-op inner loops, compiled once per instruction set and dispatched at run time.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "lib/backends/cpu/vector_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"
#include "lib/backends/cpu/vector_kernels.h"
#include "reasonrt/backend.h"

#include <algorithm>
#include <cmath>
#include <utility>

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

// ---- attention of one group of query heads against its cached rows ----

template <bool kBf16>
HWY_INLINE const void* CacheRow(const void* base, int64_t elements) {
  return static_cast<const char*>(base) + elements * (kBf16 ? 2 : 4);
}

// Prefetches one cached row (`bytes` long) into the caches.
HWY_INLINE void PrefetchRow(const void* row, int64_t bytes) {
  for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(static_cast<const char*>(row) + off);
}

// scores[(h * gn + g) * len + p] = scale * q_hg . k_hp, block by block, within a block
// kv head by kv head: the heads' rows of a slot lie side by side, so each block's rows
// are read whole within a short time (one kv head's rows alone, every other 512 bytes
// of the cache, read at about half the rate). Each key vector is loaded once for the kG
// heads of its group.
template <bool kBf16, int kG>
void AttendScores(const AttendArgs& a) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t vec_end = (a.dk / lanes) * lanes;
  const int64_t len = a.n_keys - a.key_begin;
  const int64_t row_bytes = ((a.kv_heads - 1) * a.k_head_stride + a.dk) * (kBf16 ? 2 : 4);
  for (int64_t p0 = a.key_begin; p0 < a.n_keys; p0 += kKvBlockSize) {
    const int64_t first_slot = a.block_table[p0 / kKvBlockSize] * kKvBlockSize;
    const int64_t np = std::min<int64_t>(kKvBlockSize, a.n_keys - p0);
    // The next block's rows, one a key: slots are scattered (the block table) and a slot's
    // row is one part of a wider one, which the hardware prefetchers follow poorly.
    const bool ahead = p0 + kKvBlockSize < a.n_keys;
    const int64_t next_slot = ahead ? a.block_table[p0 / kKvBlockSize + 1] * kKvBlockSize : 0;
    for (int64_t h = 0; h < a.kv_heads; ++h) {
      const float* q = a.q + h * a.q_stride;
      float* scores = a.scores + h * kG * len + p0 - a.key_begin;
      for (int64_t j = 0; j < np; ++j) {
        if (ahead && h == 0)
          PrefetchRow(CacheRow<kBf16>(a.k, (next_slot + j) * a.k_slot_stride), row_bytes);
        const void* kp =
            CacheRow<kBf16>(a.k, (first_slot + j) * a.k_slot_stride + h * a.k_head_stride);
        VF acc[kG];
        for (int g = 0; g < kG; ++g) acc[g] = hn::Zero(df);
        for (int64_t i = 0; i < vec_end; i += lanes) {
          const VF kv = LoadAs<kBf16>(df, kp, i);
          for (int g = 0; g < kG; ++g)
            acc[g] = hn::MulAdd(hn::LoadU(df, q + g * a.dk + i), kv, acc[g]);
        }
        for (int g = 0; g < kG; ++g) {
          float dot = hn::GetLane(hn::SumOfLanes(df, acc[g]));
          for (int64_t i = vec_end; i < a.dk; ++i) dot += q[g * a.dk + i] * ScalarAs<kBf16>(kp, i);
          scores[g * len + j] = dot * a.scale;
        }
      }
    }
  }
}

// Row g of scores to exp(s - max), in place, then (normalize) divided by their sum.
// Returns the max and the sum.
std::pair<float, float> SoftmaxRow(float* s, int64_t n, bool normalize) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  VF m = hn::Set(df, -HUGE_VALF);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) m = hn::Max(m, hn::LoadU(df, s + i));
  float mx = hn::GetLane(hn::MaxOfLanes(df, m));
  for (int64_t j = i; j < n; ++j) mx = std::max(mx, s[j]);
  const VF vmx = hn::Set(df, mx);
  VF sum = hn::Zero(df);
  for (i = 0; i + lanes <= n; i += lanes) {
    const VF e = hn::Exp(df, hn::Sub(hn::LoadU(df, s + i), vmx));
    hn::StoreU(e, df, s + i);
    sum = hn::Add(sum, e);
  }
  float total = hn::GetLane(hn::SumOfLanes(df, sum));
  for (int64_t j = i; j < n; ++j) total += s[j] = std::exp(s[j] - mx);
  if (!normalize) return {mx, total};
  const VF inv = hn::Set(df, 1.0f / total);
  for (i = 0; i + lanes <= n; i += lanes) hn::StoreU(hn::Mul(hn::LoadU(df, s + i), inv), df, s + i);
  for (int64_t j = i; j < n; ++j) s[j] *= 1.0f / total;
  return {mx, total};
}

// out_hg = sum_p scores[h, g, p] v_hp, a cache block (consecutive slots) at a time, within
// a block kv head by kv head (as the scores), so that a head's values stay in L1 while
// every query head of its group takes them; 8 vectors of out_hg in registers across the
// block's rows, so that 8 independent FMA chains keep both FMA units busy. (Converting a
// bf16 block to f32 once for all heads measured slower: 0.87x.)
template <bool kBf16>
void AttendValues(const AttendArgs& a) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  for (int64_t h = 0; h < a.kv_heads; ++h)
    std::fill(a.out + h * a.out_stride, a.out + h * a.out_stride + a.gn * a.dv, 0.0f);
  const int64_t len = a.n_keys - a.key_begin;
  const int64_t row_bytes = ((a.kv_heads - 1) * a.v_head_stride + a.dv) * (kBf16 ? 2 : 4);
  for (int64_t p0 = a.key_begin; p0 < a.n_keys; p0 += kKvBlockSize) {
    const int64_t first_slot = a.block_table[p0 / kKvBlockSize] * kKvBlockSize;
    const int64_t np = std::min<int64_t>(kKvBlockSize, a.n_keys - p0);
    if (p0 + kKvBlockSize < a.n_keys) {  // the next block's rows, while this one is worked on
      const int64_t next_slot = a.block_table[p0 / kKvBlockSize + 1] * kKvBlockSize;
      for (int64_t j = 0; j < kKvBlockSize && p0 + kKvBlockSize + j < a.n_keys; ++j) {
        PrefetchRow(CacheRow<kBf16>(a.v, (next_slot + j) * a.v_slot_stride), row_bytes);
      }
    }
    for (int64_t h = 0; h < a.kv_heads; ++h) {
      const void* rows[kKvBlockSize];
      for (int64_t j = 0; j < np; ++j) {
        rows[j] = CacheRow<kBf16>(a.v, (first_slot + j) * a.v_slot_stride + h * a.v_head_stride);
      }
      for (int64_t g = 0; g < a.gn; ++g) {
        float* o = a.out + h * a.out_stride + g * a.dv;
        const float* sg = a.scores + (h * a.gn + g) * len + p0 - a.key_begin;
        int64_t i = 0;
        for (; i + 8 * lanes <= a.dv; i += 8 * lanes) {
          VF acc[8];
          for (int c = 0; c < 8; ++c) acc[c] = hn::LoadU(df, o + i + c * lanes);
          for (int64_t j = 0; j < np; ++j) {
            const VF w = hn::Set(df, sg[j]);
            for (int c = 0; c < 8; ++c) {
              acc[c] = hn::MulAdd(w, LoadAs<kBf16>(df, rows[j], i + c * lanes), acc[c]);
            }
          }
          for (int c = 0; c < 8; ++c) hn::StoreU(acc[c], df, o + i + c * lanes);
        }
        for (; i + lanes <= a.dv; i += lanes) {
          VF o0 = hn::LoadU(df, o + i);
          for (int64_t j = 0; j < np; ++j) {
            o0 = hn::MulAdd(hn::Set(df, sg[j]), LoadAs<kBf16>(df, rows[j], i), o0);
          }
          hn::StoreU(o0, df, o + i);
        }
        for (; i < a.dv; ++i) {
          for (int64_t j = 0; j < np; ++j) o[i] += sg[j] * ScalarAs<kBf16>(rows[j], i);
        }
      }
    }
  }
}

template <bool kBf16>
void AttendT(const AttendArgs& a) {
  switch (a.gn) {
    case 1: AttendScores<kBf16, 1>(a); break;
    case 2: AttendScores<kBf16, 2>(a); break;
    case 3: AttendScores<kBf16, 3>(a); break;
    case 4: AttendScores<kBf16, 4>(a); break;
    case 5: AttendScores<kBf16, 5>(a); break;
    case 6: AttendScores<kBf16, 6>(a); break;
    case 7: AttendScores<kBf16, 7>(a); break;
    default: AttendScores<kBf16, 8>(a); break;
  }
  const int64_t len = a.n_keys - a.key_begin;
  for (int64_t hg = 0; hg < a.kv_heads * a.gn; ++hg) {
    const auto [mx, total] = SoftmaxRow(a.scores + hg * len, len, a.stats == nullptr);
    if (a.stats != nullptr) {
      a.stats[2 * hg] = mx;
      a.stats[2 * hg + 1] = total;
    }
  }
  AttendValues<kBf16>(a);
}

void AttendImpl(const AttendArgs& a) {
  if (a.bf16) return AttendT<true>(a);
  AttendT<false>(a);
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
HWY_EXPORT(AttendImpl);

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
void Attend(const AttendArgs& args) { HWY_DYNAMIC_DISPATCH(AttendImpl)(args); }

}  // namespace reasonrt::cpu
#endif
