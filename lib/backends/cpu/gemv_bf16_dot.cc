#include "lib/backends/cpu/gemv_bf16_dot.h"

#include <algorithm>
#include <cstring>

#include "lib/backends/cpu/gemv_kernels.h"
#include "reasonrt/cpu_features.h"
#include "reasonrt/dtype.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace reasonrt::cpu {

bool HasBf16DotKernel() {
#if defined(__x86_64__)
  ApplyCpuOverrides();
  const CpuFeatures& f = GetCpuFeatures();
  return f.avx512f && f.avx512bw && f.avx512_bf16;
#else
  return false;
#endif
}

void SplitBf16(const float* x, int64_t rows, int64_t k, bool exact, SplitActivations* out) {
  out->rows = rows;
  out->k = k;
  out->padded_k = (k + 31) / 32 * 32;
  out->hi.assign(static_cast<size_t>(rows * out->padded_k), 0);
  out->lo.assign(exact ? static_cast<size_t>(rows * out->padded_k) : 0, 0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < k; ++i) {
      const float v = x[r * k + i];
      const uint16_t hi = F32ToBf16(v);
      out->hi[r * out->padded_k + i] = hi;
      if (exact) out->lo[r * out->padded_k + i] = F32ToBf16(v - Bf16ToF32(hi));
    }
  }
}

#if defined(__x86_64__)
// GCC 12's AVX-512 shuffle and unpack intrinsics start from a self-initialised register
// (`__Y = __Y`), and -Wmaybe-uninitialized reports each use inlined here (144 warnings a
// build, none about this file's code).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
namespace {

#define RRT_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))

constexpr int kPrefetchBytes = 4096;

// Lane i of the result: the sum of v[i]'s 16 lanes (16 horizontal sums in 45 instructions
// rather than 16 reductions of about 9; unused inputs zero): pairs of vectors folded within 128-bit
// lanes, then pairs of those, then the four 128-bit lanes across.
RRT_BF16_TARGET inline __m512 SixteenSums(const __m512 v[16]) {
  __m512 a[8], b[4];
  for (int i = 0; i < 8; ++i) {
    a[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]),
                         _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
  }
  for (int i = 0; i < 4; ++i) {
    const __m512d x = _mm512_castps_pd(a[2 * i]), y = _mm512_castps_pd(a[2 * i + 1]);
    b[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                         _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
  }
  const __m512 d01 = _mm512_add_ps(_mm512_shuffle_f32x4(b[0], b[1], _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_f32x4(b[0], b[1], _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 d23 = _mm512_add_ps(_mm512_shuffle_f32x4(b[2], b[3], _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_f32x4(b[2], b[3], _MM_SHUFFLE(3, 2, 3, 2)));
  return _mm512_add_ps(_mm512_shuffle_f32x4(d01, d23, _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(d01, d23, _MM_SHUFFLE(3, 1, 3, 1)));
}

// kW weight rows at a time against kRows activation rows (x rows r0..r0+kRows); each
// activation row's hi and lo parts go into the same accumulator: kW x kRows accumulators.
template <int kRows, int kW, bool kExact>
RRT_BF16_TARGET void Kernel(const uint16_t* w, const SplitActivations& x, int r0, int64_t n_begin, int64_t n_end,
                            float* y, int64_t ldy) {
  const int64_t k = x.k, kp = x.padded_k;
  const uint16_t* xh = x.hi.data() + r0 * kp;
  const uint16_t* xl = kExact ? x.lo.data() + r0 * kp : nullptr;
  float* yr = y + r0 * ldy;
  const int64_t full = k / 32 * 32;
  const __mmask32 tail_mask = k == full ? 0 : static_cast<__mmask32>((1ull << (k - full)) - 1);
  for (int64_t n = n_begin; n < n_end; n += kW) {
    const uint16_t* wr[kW];
    for (int j = 0; j < kW; ++j) wr[j] = w + std::min<int64_t>(n + j, n_end - 1) * k;  // a short tail repeats
    __m512 acc[kW][kRows];
    for (int j = 0; j < kW; ++j) {
      for (int r = 0; r < kRows; ++r) acc[j][r] = _mm512_setzero_ps();
    }
    auto step = [&](int64_t i, const __m512i* wv) RRT_BF16_TARGET {
      for (int r = 0; r < kRows; ++r) {
        const __m512bh h = (__m512bh)_mm512_loadu_si512(xh + r * kp + i);
        for (int j = 0; j < kW; ++j) acc[j][r] = _mm512_dpbf16_ps(acc[j][r], (__m512bh)wv[j], h);
        if constexpr (kExact) {
          const __m512bh l = (__m512bh)_mm512_loadu_si512(xl + r * kp + i);
          for (int j = 0; j < kW; ++j) acc[j][r] = _mm512_dpbf16_ps(acc[j][r], (__m512bh)wv[j], l);
        }
      }
    };
    int64_t i = 0;
    __m512i wv[kW];
    for (; i < full; i += 32) {
      for (int j = 0; j < kW; ++j) {
        _mm_prefetch(reinterpret_cast<const char*>(wr[j] + i) + kPrefetchBytes, _MM_HINT_T0);
        wv[j] = _mm512_loadu_si512(wr[j] + i);
      }
      step(i, wv);
    }
    if (tail_mask) {
      for (int j = 0; j < kW; ++j) wv[j] = _mm512_maskz_loadu_epi16(tail_mask, wr[j] + i);
      step(i, wv);
    }
    if constexpr (kW * kRows >= 8) {  // (fewer: the tree would cost more than it saves)
      __m512 all[16];
      for (int i = 0; i < 16; ++i)
        all[i] = i < kW * kRows ? acc[i / kRows][i % kRows] : _mm512_setzero_ps();
      alignas(64) float sums[16];
      _mm512_store_ps(sums, SixteenSums(all));
      for (int j = 0; j < kW && n + j < n_end; ++j) {
        for (int r = 0; r < kRows; ++r) yr[r * ldy + n + j] = sums[j * kRows + r];
      }
    } else {
      for (int j = 0; j < kW && n + j < n_end; ++j) {
        for (int r = 0; r < kRows; ++r) yr[r * ldy + n + j] = _mm512_reduce_add_ps(acc[j][r]);
      }
    }
  }
}

// Up to 4 rows: 4 weight rows at a time; 5 to 8: 2 (a two-pass, L2-blocked variant for
// 8 rows measured no faster here).
template <bool kExact>
RRT_BF16_TARGET void Run(const uint16_t* w, const SplitActivations& x, int64_t n_begin, int64_t n_end, float* y,
                         int64_t ldy) {
  auto pass = [&](int r0, int rows, int64_t b, int64_t e) RRT_BF16_TARGET {
    switch (rows) {
      case 1: return Kernel<1, 4, kExact>(w, x, r0, b, e, y, ldy);
      case 2: return Kernel<2, 4, kExact>(w, x, r0, b, e, y, ldy);
      case 3: return Kernel<3, 4, kExact>(w, x, r0, b, e, y, ldy);
      default: return Kernel<4, 4, kExact>(w, x, r0, b, e, y, ldy);
    }
  };
  const int rows = static_cast<int>(x.rows);
  if (rows <= 4) return pass(0, rows, n_begin, n_end);
  // 5 to 8 rows: two weight rows at a time against all of them (16 accumulators).
  switch (rows) {
    case 5: return Kernel<5, 2, kExact>(w, x, 0, n_begin, n_end, y, ldy);
    case 6: return Kernel<6, 2, kExact>(w, x, 0, n_begin, n_end, y, ldy);
    case 7: return Kernel<7, 2, kExact>(w, x, 0, n_begin, n_end, y, ldy);
    default: return Kernel<8, 2, kExact>(w, x, 0, n_begin, n_end, y, ldy);
  }
}

RRT_BF16_TARGET int64_t DotPeak(int64_t iterations, float* sink) {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80);  // 1.0
  const __m512bh b = (__m512bh)_mm512_set1_epi16(0x3a80);  // 2^-10
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, acc[i]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s);
  *sink = 0;
  for (float v : lanes) *sink += v;
  return iterations * 12 * 32;
}

}  // namespace

int64_t Bf16DotMultiplyAddLoop(int64_t iterations, float* sink) {
  return DotPeak(iterations, sink);
}

void GemvBf16Dot(const uint16_t* w, const SplitActivations& x, int64_t n_begin, int64_t n_end, float* y,
                 int64_t ldy) {
  if (x.lo.empty()) {
    Run<false>(w, x, n_begin, n_end, y, ldy);
  } else {
    Run<true>(w, x, n_begin, n_end, y, ldy);
  }
}
#else
void GemvBf16Dot(const uint16_t*, const SplitActivations&, int64_t, int64_t, float*, int64_t) {}
int64_t Bf16DotMultiplyAddLoop(int64_t, float* sink) {
  *sink = 0;
  return 0;
}
#endif

}  // namespace reasonrt::cpu
