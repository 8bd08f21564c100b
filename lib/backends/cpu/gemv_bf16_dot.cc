#include "lib/backends/cpu/gemv_bf16_dot.h"

#include <algorithm>
#include <cstring>

#include "lib/backends/cpu/gemv_kernels.h"
#include "reasonrt/cpu_features.h"
#include "reasonrt/dtype.h"

#if defined(__x86_64__)
#include <immintrin.h>
// GCC 12's AVX-512 intrinsics (shuffles, unpacks, masked moves) start from a
// self-initialised register (`__Y = __Y`), and -Wmaybe-uninitialized reports each use
// inlined here (144 warnings a build, none about this file's code).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#endif

namespace reasonrt::cpu {

bool HasBf16DotKernel() {
#if defined(__x86_64__)
  ApplyCpuOverrides();
  const CpuFeatures& f = GetCpuFeatures();
  return f.avx512f && f.avx512bw && f.avx512vl && f.avx512_bf16;
#else
  return false;
#endif
}

#if defined(__x86_64__)
namespace {

// F32ToBf16 on 16 lanes (each result in its u32 lane's low half): round to nearest even,
// NaNs kept NaN (quiet).
__attribute__((target("avx512f"))) inline __m512i RoundToBf16(__m512i u) {
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i rounded = _mm512_srli_epi32(
      _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff),
                                           _mm512_and_si512(_mm512_srli_epi32(u, 16), one))),
      16);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                _mm512_set1_epi32(0x7f800000));
  const __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
  return _mm512_mask_mov_epi32(rounded, nan, quiet);
}

// The lanes of a 16-wide step with `left` values still to go: all 16, or the first `left`.
inline __mmask16 StepMask(int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
}

// One row of SplitBf16, 16 values at a time (the scalar loop took ~24 us for 8 rows of
// 8960, on one thread while the others waited).
__attribute__((target("avx512f"))) void SplitRowAvx512(const float* x, int64_t k, uint16_t* hi,
                                                       uint16_t* lo) {
  for (int64_t i = 0; i < k; i += 16) {
    const __mmask16 m = StepMask(k - i);
    const __m512i u = _mm512_maskz_loadu_epi32(m, x + i);
    const __m512i h = RoundToBf16(u);
    _mm512_mask_cvtepi32_storeu_epi16(hi + i, m, h);
    if (lo != nullptr) {
      const __m512 rest =
          _mm512_sub_ps(_mm512_castsi512_ps(u), _mm512_castsi512_ps(_mm512_slli_epi32(h, 16)));
      _mm512_mask_cvtepi32_storeu_epi16(lo + i, m, RoundToBf16(_mm512_castps_si512(rest)));
    }
  }
}

}  // namespace
#endif

#if defined(__x86_64__)
namespace {

// x[i] * scales[i / kFp8BlockSize], rounded, 16 at a time (a block is 8 steps).
__attribute__((target("avx512f"))) void ScaleRowAvx512(const float* x, int64_t n,
                                                       const float* scales, uint16_t* out) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = StepMask(n - i);
    const __m512 f = _mm512_set1_ps(scales[i / kFp8BlockSize]);
    const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), f);
    _mm512_mask_cvtepi32_storeu_epi16(out + i, m, RoundToBf16(_mm512_castps_si512(v)));
  }
}

}  // namespace
#endif

void RoundToBf16(const float* x, int64_t n, uint16_t* out) {
#if defined(__x86_64__)
  if (HasBf16DotKernel()) {
    SplitRowAvx512(x, n, out, nullptr);
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i) out[i] = F32ToBf16(x[i]);
}

void RoundScaledToBf16(const float* x, int64_t n, const float* scales, uint16_t* out) {
#if defined(__x86_64__)
  if (HasBf16DotKernel()) {
    ScaleRowAvx512(x, n, scales, out);
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i) out[i] = F32ToBf16(x[i] * scales[i / kFp8BlockSize]);
}

void SplitBf16(const float* x, int64_t rows, int64_t k, bool exact, SplitActivations* out) {
  constexpr size_t kAlign = 32;  // uint16_t elements in 64 bytes
  out->rows = rows;
  out->k = k;
  out->padded_k = (k + 31) / 32 * 32;
  const size_t part = static_cast<size_t>(rows * out->padded_k);
  out->storage.assign((exact ? 2 : 1) * part + kAlign, 0);
  const size_t misalign =
      (reinterpret_cast<uintptr_t>(out->storage.data()) / sizeof(uint16_t)) % kAlign;
  uint16_t* const hi = out->storage.data() + (misalign == 0 ? 0 : kAlign - misalign);
  uint16_t* const lo = exact ? hi + part : nullptr;
  out->hi = hi;
  out->lo = lo;
#if defined(__x86_64__)
  if (HasBf16DotKernel()) {
    for (int64_t r = 0; r < rows; ++r) {
      SplitRowAvx512(x + r * k, k, hi + r * out->padded_k,
                     exact ? lo + r * out->padded_k : nullptr);
    }
    return;
  }
#endif
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < k; ++i) {
      const float v = x[r * k + i];
      const uint16_t h = F32ToBf16(v);
      hi[r * out->padded_k + i] = h;
      if (exact) lo[r * out->padded_k + i] = F32ToBf16(v - Bf16ToF32(h));
    }
  }
}

#if defined(__x86_64__)
namespace {

#define RRT_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

// Two weight rows a pass (5-8 x rows): each row prefetched twice, into L1 kNearPrefetchBytes
// ahead of its loads, every cache line, and kFarPrefetchBytes ahead (hint T2), every other
// line pair (1.1-1.2x over kPrefetchBytes alone on Zen 5). Four a pass (up to 4 x rows):
// kPrefetchBytes ahead only (the two distances ran ~4% slower there, `bench -g 4`).
constexpr int kNearPrefetchBytes = 2048;
constexpr int kFarPrefetchBytes = 8192;
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
template <int kRows, int kW, bool kExact, bool kPrefetch = true>
RRT_BF16_TARGET void Kernel(const uint16_t* w, const SplitActivations& x, int r0, int64_t n_begin,
                            int64_t n_end, float* y, int64_t ldy) {
  const int64_t k = x.k, kp = x.padded_k;
  const uint16_t* xh = x.hi + r0 * kp;
  const uint16_t* xl = kExact ? x.lo + r0 * kp : nullptr;
  float* yr = y + r0 * ldy;
  const int64_t full = k / 32 * 32;
  const __mmask32 tail_mask = k == full ? 0 : static_cast<__mmask32>((1ull << (k - full)) - 1);
  for (int64_t n = n_begin; n < n_end; n += kW) {
    const uint16_t* wr[kW];
    for (int j = 0; j < kW; ++j) wr[j] = w + std::min<int64_t>(n + j, n_end - 1) * k;  // a short tail repeats
    // hi and lo in chains of their own where there are few (as in Fp8Kernel).
    constexpr bool kLoChains = kExact && kW * kRows <= 4;
    __m512 acc[kW][kRows], acc_lo[kW][kRows];
    for (int j = 0; j < kW; ++j) {
      for (int r = 0; r < kRows; ++r) acc[j][r] = acc_lo[j][r] = _mm512_setzero_ps();
    }
    auto step = [&](int64_t i, const __m512i* wv) RRT_BF16_TARGET {
      for (int r = 0; r < kRows; ++r) {
        const __m512bh h = (__m512bh)_mm512_loadu_si512(xh + r * kp + i);
        for (int j = 0; j < kW; ++j) acc[j][r] = _mm512_dpbf16_ps(acc[j][r], (__m512bh)wv[j], h);
        if constexpr (kExact) {
          const __m512bh l = (__m512bh)_mm512_loadu_si512(xl + r * kp + i);
          for (int j = 0; j < kW; ++j) {
            __m512& a = kLoChains ? acc_lo[j][r] : acc[j][r];
            a = _mm512_dpbf16_ps(a, (__m512bh)wv[j], l);
          }
        }
      }
    };
    int64_t i = 0;
    __m512i wv[kW];
    for (; i < full; i += 32) {
      for (int j = 0; j < kW; ++j) {
        const char* line = reinterpret_cast<const char*>(wr[j] + i);
        if constexpr (kPrefetch && kW <= 2) {
          _mm_prefetch(line + kNearPrefetchBytes, _MM_HINT_T0);
          if ((i & 63) == 0) {
            _mm_prefetch(line + kFarPrefetchBytes, _MM_HINT_T2);
            _mm_prefetch(line + kFarPrefetchBytes + 64, _MM_HINT_T2);
          }
        } else if constexpr (kPrefetch) {
          _mm_prefetch(line + kPrefetchBytes, _MM_HINT_T0);
        }
        wv[j] = _mm512_loadu_si512(wr[j] + i);
      }
      step(i, wv);
    }
    if (tail_mask) {
      for (int j = 0; j < kW; ++j) wv[j] = _mm512_maskz_loadu_epi16(tail_mask, wr[j] + i);
      step(i, wv);
    }
    if constexpr (kLoChains) {
      for (int j = 0; j < kW; ++j) {
        for (int r = 0; r < kRows; ++r) acc[j][r] = _mm512_add_ps(acc[j][r], acc_lo[j][r]);
      }
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

// Four weight rows a pass against x rows r0..r0+rows (1 to 4).
template <bool kExact, bool kPrefetch>
RRT_BF16_TARGET void FourWeightRows(const uint16_t* w, const SplitActivations& x, int r0, int rows,
                                    int64_t b, int64_t e, float* y, int64_t ldy) {
  switch (rows) {
    case 1:
      return Kernel<1, 4, kExact, kPrefetch>(w, x, r0, b, e, y, ldy);
    case 2:
      return Kernel<2, 4, kExact, kPrefetch>(w, x, r0, b, e, y, ldy);
    case 3:
      return Kernel<3, 4, kExact, kPrefetch>(w, x, r0, b, e, y, ldy);
    default:
      return Kernel<4, 4, kExact, kPrefetch>(w, x, r0, b, e, y, ldy);
  }
}

// Activations up to this size stay in L1 while the weights stream past them.
constexpr int64_t kL1ActivationBytes = 32 << 10;

// Up to 4 rows: 4 weight rows at a time; 5 to 8: 2 against all of them, or, where the
// activations do not fit in L1 (8 rows of K = 8960: 143 KB, loaded again for every pair of
// weight rows), a tile of 4 weight rows against rows 0-3, then against the rest 4 at a
// time while the tile is still in L2 (1.11-1.16x on [1536, 8960], measured on Zen 5); 9
// to 32 rows always so.
template <bool kExact>
RRT_BF16_TARGET void Run(const uint16_t* w, const SplitActivations& x, int64_t n_begin,
                         int64_t n_end, float* y, int64_t ldy) {
  const int rows = static_cast<int>(x.rows);
  if (rows <= 4) return FourWeightRows<kExact, true>(w, x, 0, rows, n_begin, n_end, y, ldy);
  const int64_t x_bytes =
      rows * x.padded_k * static_cast<int64_t>(sizeof(uint16_t)) * (kExact ? 2 : 1);
  if (rows > 8 || x_bytes > kL1ActivationBytes) {
    for (int64_t n = n_begin; n < n_end; n += 4) {
      const int64_t e = std::min(n + 4, n_end);
      FourWeightRows<kExact, true>(w, x, 0, 4, n, e, y, ldy);
      for (int r0 = 4; r0 < rows; r0 += 4) {  // the tile in L2
        FourWeightRows<kExact, false>(w, x, r0, std::min(4, rows - r0), n, e, y, ldy);
      }
    }
    return;
  }
  // 5 to 8 rows: two weight rows at a time against all of them (16 accumulators).
  switch (rows) {
    case 5: return Kernel<5, 2, kExact>(w, x, 0, n_begin, n_end, y, ldy);
    case 6: return Kernel<6, 2, kExact>(w, x, 0, n_begin, n_end, y, ldy);
    case 7: return Kernel<7, 2, kExact>(w, x, 0, n_begin, n_end, y, ldy);
    default: return Kernel<8, 2, kExact>(w, x, 0, n_begin, n_end, y, ldy);
  }
}

// 32 e4m3 weights (bytes) as bf16 times 2^8, exactly. A normal byte s.eeee.mmm becomes
// s | 0x4000 | eeee.mmm << 4: the exponent e + 128 where e4m3's is e + 7 below its bias.
// A byte with e = 0 (zero and the subnormals, m * 2^-9) would become 2^1 * 1.m instead;
// its lanes take m / 2 (times 2^8) from a table (bf16 subnormals would not do: vdpbf16ps
// treats them as zero) and the sign after.
RRT_BF16_TARGET inline __m512i Fp8ToBf16(__m256i bytes) {
  const __m512i b = _mm512_cvtepi8_epi16(bytes);  // bits 15..7 the sign, 6..0 eeee.mmm
  // (A & B) | C, A the shifted bytes: sign and eeee.mmm in place, the exponent's top bit set.
  const __m512i normal = _mm512_ternarylogic_epi32(
      _mm512_slli_epi16(b, 4), _mm512_set1_epi16(-0x7810), _mm512_set1_epi16(0x4000), 0xEA);
  const __mmask32 zero_exp = _mm512_testn_epi16_mask(b, _mm512_set1_epi16(0x78));
  // (Rare in a checkpoint, whose blocks are scaled to a largest value of 448, but a branch
  // around the fix-up when no lane needs it ran within 1.0-1.1x, so none: the speed does
  // not depend on the data.)
  // m / 2 for m = 0..7, the index's low five bits 00mmm in those lanes.
  const __m512i halves =
      _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                       0x4060, 0x4040, 0x4020, 0x4000, 0x3FC0, 0x3F80, 0x3F00, 0);
  const __m512i v = _mm512_mask_permutexvar_epi16(normal, zero_exp, b, halves);
  return _mm512_ternarylogic_epi32(v, b, _mm512_set1_epi16(-0x8000), 0xF8);  // A | (B & C)
}

// kW FP8 weight rows at a time against kRows activation rows (x rows r0..r0+kRows): per
// 128-wide K block, kW x kRows partial sums, folded into as many totals times the block's
// scale (and 2^-8).
template <int kRows, int kW, bool kExact, bool kPrefetch = true>
RRT_BF16_TARGET void Fp8Kernel(const uint8_t* w, const float* scale_inv, const SplitActivations& x,
                               int r0, int64_t n_begin, int64_t n_end, float* y, int64_t ldy) {
  const int64_t k = x.k, kp = x.padded_k;
  const int64_t k_blocks = (k + kFp8BlockSize - 1) / kFp8BlockSize;
  const uint16_t* xh = x.hi + r0 * kp;
  const uint16_t* xl = kExact ? x.lo + r0 * kp : nullptr;
  float* yr = y + r0 * ldy;
  for (int64_t n = n_begin; n < n_end; n += kW) {
    const uint8_t* wr[kW];
    const float* sr[kW];
    for (int j = 0; j < kW; ++j) {
      const int64_t row = std::min<int64_t>(n + j, n_end - 1);  // a short tail repeats
      wr[j] = w + row * k;
      sr[j] = scale_inv + row / kFp8BlockSize * k_blocks;
    }
    __m512 total[kW][kRows];
    for (int j = 0; j < kW; ++j) {
      for (int r = 0; r < kRows; ++r) total[j][r] = _mm512_setzero_ps();
    }
    for (int64_t b = 0; b < k_blocks; ++b) {
      const int64_t k0 = b * kFp8BlockSize, k1 = std::min<int64_t>(k0 + kFp8BlockSize, k);
      // With few chains, hi and lo in chains of their own (one chain of both ran 1.1x slower
      // at m = 1: the vdpbf16ps latency set the pace); with more, in one (registers).
      constexpr bool kLoChains = kExact && kW * kRows <= 4;
      __m512 acc[kW][kRows], acc_lo[kW][kRows];
      for (int j = 0; j < kW; ++j) {
        for (int r = 0; r < kRows; ++r) acc[j][r] = acc_lo[j][r] = _mm512_setzero_ps();
      }
      // 32 weights of each row from i (the first `tail` of them where tail is not 0).
      auto step = [&](int64_t i, __mmask32 tail) RRT_BF16_TARGET {
        __m512i wv[kW];
        for (int j = 0; j < kW; ++j) {
          const uint8_t* p = wr[j] + i;
          if constexpr (kPrefetch) {
            // As the bf16 kernel's two rows: every line near, every other line pair far.
            if ((i & 63) == 0) {
              const char* line = reinterpret_cast<const char*>(p);
              _mm_prefetch(line + kNearPrefetchBytes, _MM_HINT_T0);
              if ((i & 127) == 0) {
                _mm_prefetch(line + kFarPrefetchBytes, _MM_HINT_T2);
                _mm_prefetch(line + kFarPrefetchBytes + 64, _MM_HINT_T2);
              }
            }
          }
          wv[j] = Fp8ToBf16(tail == 0 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))
                                      : _mm256_maskz_loadu_epi8(tail, p));
        }
        for (int r = 0; r < kRows; ++r) {
          const __m512bh h = (__m512bh)_mm512_load_si512(xh + r * kp + i);
          for (int j = 0; j < kW; ++j) acc[j][r] = _mm512_dpbf16_ps(acc[j][r], (__m512bh)wv[j], h);
          if constexpr (kExact) {
            const __m512bh l = (__m512bh)_mm512_load_si512(xl + r * kp + i);
            for (int j = 0; j < kW; ++j) {
              __m512& a = kLoChains ? acc_lo[j][r] : acc[j][r];
              a = _mm512_dpbf16_ps(a, (__m512bh)wv[j], l);
            }
          }
        }
      };
      int64_t i = k0;
      for (; i + 32 <= k1; i += 32) step(i, 0);
      if (i < k1) step(i, static_cast<__mmask32>((1ull << (k1 - i)) - 1));
      for (int j = 0; j < kW; ++j) {
        const __m512 f = _mm512_set1_ps(sr[j][b] * 0.00390625f);
        for (int r = 0; r < kRows; ++r) {
          const __m512 sum = kLoChains ? _mm512_add_ps(acc[j][r], acc_lo[j][r]) : acc[j][r];
          total[j][r] = _mm512_fmadd_ps(sum, f, total[j][r]);
        }
      }
    }
    for (int j = 0; j < kW && n + j < n_end; ++j) {
      for (int r = 0; r < kRows; ++r) yr[r * ldy + n + j] = _mm512_reduce_add_ps(total[j][r]);
    }
  }
}

// FP8: as many weight rows a pass as keep the partial sums and totals in registers (4 for
// one or two x rows, 2 for three or four, 1 for five to eight). More x rows, or five to
// eight that do not fit in L1 (then read from L2 once per weight row: 8 rows of K = 8960
// ran as slowly as 16), in passes of 4 over pairs of weight rows while the pair is in L1.
template <bool kExact>
RRT_BF16_TARGET void RunFp8(const uint8_t* w, const float* scale_inv, const SplitActivations& x,
                            int64_t n_begin, int64_t n_end, float* y, int64_t ldy) {
  const int64_t x_bytes =
      x.rows * x.padded_k * static_cast<int64_t>(sizeof(uint16_t)) * (kExact ? 2 : 1);
  switch (x.rows <= 4 || x_bytes <= kL1ActivationBytes ? x.rows : 0) {
    case 1:
      return Fp8Kernel<1, 4, kExact>(w, scale_inv, x, 0, n_begin, n_end, y, ldy);
    case 2:
      return Fp8Kernel<2, 4, kExact>(w, scale_inv, x, 0, n_begin, n_end, y, ldy);
    case 3:
      return Fp8Kernel<3, 2, kExact>(w, scale_inv, x, 0, n_begin, n_end, y, ldy);
    case 4:
      return Fp8Kernel<4, 2, kExact>(w, scale_inv, x, 0, n_begin, n_end, y, ldy);
    case 5:
      return Fp8Kernel<5, 1, kExact>(w, scale_inv, x, 0, n_begin, n_end, y, ldy);
    case 6:
      return Fp8Kernel<6, 1, kExact>(w, scale_inv, x, 0, n_begin, n_end, y, ldy);
    case 7:
      return Fp8Kernel<7, 1, kExact>(w, scale_inv, x, 0, n_begin, n_end, y, ldy);
    case 8:
      return Fp8Kernel<8, 1, kExact>(w, scale_inv, x, 0, n_begin, n_end, y, ldy);
    default:
      break;
  }
  const int rows = static_cast<int>(x.rows);
  for (int64_t n = n_begin; n < n_end; n += 2) {
    const int64_t e = std::min(n + 2, n_end);
    Fp8Kernel<4, 2, kExact>(w, scale_inv, x, 0, n, e, y, ldy);
    for (int r0 = 4; r0 + 4 <= rows; r0 += 4)
      Fp8Kernel<4, 2, kExact, false>(w, scale_inv, x, r0, n, e, y, ldy);
    for (int r0 = rows / 4 * 4; r0 < rows; ++r0)
      Fp8Kernel<1, 2, kExact, false>(w, scale_inv, x, r0, n, e, y, ldy);
  }
}

}  // namespace

void GemvFp8Dot(const uint8_t* w, const float* scale_inv, const SplitActivations& x,
                int64_t n_begin, int64_t n_end, float* y, int64_t ldy) {
  if (x.lo == nullptr) {
    RunFp8<false>(w, scale_inv, x, n_begin, n_end, y, ldy);
  } else {
    RunFp8<true>(w, scale_inv, x, n_begin, n_end, y, ldy);
  }
}

RRT_BF16_TARGET int64_t Bf16DotMultiplyAddLoop(int64_t iterations, float* sink) {
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

void GemvBf16Dot(const uint16_t* w, const SplitActivations& x, int64_t n_begin, int64_t n_end, float* y,
                 int64_t ldy) {
  if (x.lo == nullptr) {
    Run<false>(w, x, n_begin, n_end, y, ldy);
  } else {
    Run<true>(w, x, n_begin, n_end, y, ldy);
  }
}
#else
void GemvBf16Dot(const uint16_t*, const SplitActivations&, int64_t, int64_t, float*, int64_t) {}
void GemvFp8Dot(const uint8_t*, const float*, const SplitActivations&, int64_t, int64_t, float*,
                int64_t) {}
int64_t Bf16DotMultiplyAddLoop(int64_t, float* sink) {
  *sink = 0;
  return 0;
}
#endif

}  // namespace reasonrt::cpu
