// Decode GEMV kernels, compiled once per instruction set and dispatched at run time.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "lib/backends/cpu/gemv_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "lib/backends/cpu/gemv_kernels.h"
#include "reasonrt/cpu_features.h"

#include <vector>

#ifndef RRT_FP8_PREFETCH
#define RRT_FP8_PREFETCH 4096
#endif

HWY_BEFORE_NAMESPACE();
namespace reasonrt::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// Loads lanes(df) weights starting at `p` as f32. FP8 yields the value times 2^-8: its bits
// placed as an f16's (sign to bit 15, exponent and mantissa to 13..7; e4m3 subnormals land
// on f16 subnormals, so every value converts exactly), then the hardware f16 -> f32
// conversion, which gives normal f32 values only (no denormal slow paths, no underflow of
// the products); the caller multiplies 2^8 back into the block scale.
template <DType kType>
HWY_INLINE VF LoadWeights(DF df, const void* p, int64_t i) {
  if constexpr (kType == DType::kF32) {
    return hn::LoadU(df, static_cast<const float*>(p) + i);
  } else if constexpr (kType == DType::kBF16) {
    const hn::RebindToUnsigned<DF> du32;
    const hn::Rebind<uint16_t, DF> du16;
    const auto bits = hn::PromoteTo(du32, hn::LoadU(du16, static_cast<const uint16_t*>(p) + i));
    return hn::BitCast(df, hn::ShiftLeft<16>(bits));
  } else if constexpr (kType == DType::kF16) {
    const hn::Rebind<hwy::float16_t, DF> df16;
    return hn::PromoteTo(df, hn::LoadU(df16, static_cast<const hwy::float16_t*>(p) + i));
  } else {  // kF8E4M3 via f16 bits
    const hn::Rebind<uint16_t, DF> du16;
    const hn::Rebind<hwy::float16_t, DF> df16;
    const hn::Rebind<uint8_t, DF> du8;
    const auto b = hn::PromoteTo(du16, hn::LoadU(du8, static_cast<const uint8_t*>(p) + i));
    const auto sign = hn::ShiftLeft<8>(hn::And(b, hn::Set(du16, uint16_t{0x80})));
    const auto mag = hn::ShiftLeft<7>(hn::And(b, hn::Set(du16, uint16_t{0x7f})));
    return hn::PromoteTo(df, hn::BitCast(df16, hn::Or(sign, mag)));
  }
}

// 2 x lanes(df) FP8 weights from `p` + i as two f32 vectors (times 2^-8, as LoadWeights):
// sign-extend each byte to 16 bits (bits 15..7 copies of the sign), shift left by 7 (sign
// to bit 15, exponent and mantissa to 13..7), clear bit 14 (another sign copy): the f16
// bits of LoadWeights in three operations per 2 x lanes weights, then two conversions.
HWY_INLINE void LoadFp8Pair(DF df, const uint8_t* p, int64_t i, VF& lo, VF& hi) {
#if HWY_TARGET == HWY_SCALAR
  lo = LoadWeights<DType::kF8E4M3>(df, p, i);
  hi = LoadWeights<DType::kF8E4M3>(df, p, i + static_cast<int64_t>(hn::Lanes(df)));
#else
  const hn::Repartition<int16_t, DF> d16;
  const hn::Rebind<int8_t, decltype(d16)> d8;
  const hn::Half<decltype(d16)> d16h;
  const hn::Rebind<hwy::float16_t, DF> df16;
  const auto v = hn::And(hn::ShiftLeft<7>(hn::PromoteTo(d16, hn::LoadU(d8, reinterpret_cast<const int8_t*>(p) + i))),
                         hn::Set(d16, static_cast<int16_t>(0xBFFF)));
  lo = hn::PromoteTo(df, hn::BitCast(df16, hn::LowerHalf(d16h, v)));
  hi = hn::PromoteTo(df, hn::BitCast(df16, hn::UpperHalf(d16h, v)));
#endif
}

template <DType kType>
float LoadScalarWeight(const void* p, int64_t i) {
  if constexpr (kType == DType::kF32) return static_cast<const float*>(p)[i];
  if constexpr (kType == DType::kBF16) return Bf16ToF32(static_cast<const uint16_t*>(p)[i]);
  if constexpr (kType == DType::kF16) return F16ToF32(static_cast<const uint16_t*>(p)[i]);
  if constexpr (kType == DType::kF8E4M3) {
    // Same 2^-8 convention as LoadWeights.
    return Fp8E4M3ToF32(static_cast<const uint8_t*>(p)[i]) * 0.00390625f;
  }
  return 0.0f;
}

// Dot products of `kRows` x rows with 2 weight rows over k in [k0, k1), added to acc.
template <DType kType, int kRows>
HWY_INLINE void DotRange(const float* x, int64_t k_dim, const void* w0, const void* w1,
                         int64_t k0, int64_t k1, float (*acc)[2]) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  VF s0[kRows], s1[kRows];
  for (int m = 0; m < kRows; ++m) s0[m] = s1[m] = hn::Zero(df);
  int64_t k = k0;
  for (; k + lanes <= k1; k += lanes) {
    const VF a = LoadWeights<kType>(df, w0, k);
    const VF b = LoadWeights<kType>(df, w1, k);
    for (int m = 0; m < kRows; ++m) {
      const VF xv = hn::LoadU(df, x + m * k_dim + k);
      s0[m] = hn::MulAdd(xv, a, s0[m]);
      s1[m] = hn::MulAdd(xv, b, s1[m]);
    }
  }
  for (int m = 0; m < kRows; ++m) {
    float r0 = hn::GetLane(hn::SumOfLanes(df, s0[m]));
    float r1 = hn::GetLane(hn::SumOfLanes(df, s1[m]));
    for (int64_t kk = k; kk < k1; ++kk) {
      r0 += x[m * k_dim + kk] * LoadScalarWeight<kType>(w0, kk);
      r1 += x[m * k_dim + kk] * LoadScalarWeight<kType>(w1, kk);
    }
    acc[m][0] += r0;
    acc[m][1] += r1;
  }
}

// How far ahead of its loads the FP8 kernel prefetches each of its two weight rows.
constexpr int64_t kFp8PrefetchBytes = RRT_FP8_PREFETCH;

template <DType kType, int kRows>
void GemvRows(const void* w, const float* scale_inv, const float* x, int64_t k_dim,
              int64_t n_begin, int64_t n_end, float* y, int64_t ldy) {
  const size_t elem = DTypeSize(kType);
  const auto row_ptr = [&](int64_t n) { return static_cast<const char*>(w) + n * k_dim * elem; };
  const int64_t k_blocks = (k_dim + kFp8BlockSize - 1) / kFp8BlockSize;
  for (int64_t n = n_begin; n < n_end; n += 2) {
    const int64_t n1 = n + 1 < n_end ? n + 1 : n;  // an odd tail computes its row twice
    float acc[kRows][2] = {};
    if constexpr (kType == DType::kF8E4M3) {
      // Per 128-wide K block: a dot product in vector registers, folded into vector
      // accumulators times that block's scale (and 2^8); one horizontal sum per row at the end.
      const float* s0 = scale_inv + (n / kFp8BlockSize) * k_blocks;
      const float* s1 = scale_inv + (n1 / kFp8BlockSize) * k_blocks;
      const DF df;
      const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
      VF t0[kRows], t1[kRows];
      for (int m = 0; m < kRows; ++m) t0[m] = t1[m] = hn::Zero(df);
      for (int64_t b = 0; b < k_blocks; ++b) {
        const int64_t k0 = b * kFp8BlockSize;
        const int64_t k1 = k0 + kFp8BlockSize < k_dim ? k0 + kFp8BlockSize : k_dim;
        const float f0 = s0[b] * 256.0f, f1 = s1[b] * 256.0f;
        VF p0[kRows], p1[kRows];
        for (int m = 0; m < kRows; ++m) p0[m] = p1[m] = hn::Zero(df);
        int64_t k = k0;
        const auto* r0 = reinterpret_cast<const uint8_t*>(row_ptr(n));
        const auto* r1 = reinterpret_cast<const uint8_t*>(row_ptr(n1));
        for (; k + 2 * lanes <= k1; k += 2 * lanes) {
          __builtin_prefetch(r0 + k + kFp8PrefetchBytes);
          __builtin_prefetch(r1 + k + kFp8PrefetchBytes);
          VF a_lo, a_hi, c_lo, c_hi;
          LoadFp8Pair(df, r0, k, a_lo, a_hi);
          LoadFp8Pair(df, r1, k, c_lo, c_hi);
          for (int m = 0; m < kRows; ++m) {
            const VF x_lo = hn::LoadU(df, x + m * k_dim + k);
            const VF x_hi = hn::LoadU(df, x + m * k_dim + k + lanes);
            p0[m] = hn::MulAdd(x_lo, a_lo, p0[m]);
            p1[m] = hn::MulAdd(x_lo, c_lo, p1[m]);
            p0[m] = hn::MulAdd(x_hi, a_hi, p0[m]);
            p1[m] = hn::MulAdd(x_hi, c_hi, p1[m]);
          }
        }
        for (; k + lanes <= k1; k += lanes) {
          const VF a = LoadWeights<kType>(df, row_ptr(n), k);
          const VF c = LoadWeights<kType>(df, row_ptr(n1), k);
          for (int m = 0; m < kRows; ++m) {
            const VF xv = hn::LoadU(df, x + m * k_dim + k);
            p0[m] = hn::MulAdd(xv, a, p0[m]);
            p1[m] = hn::MulAdd(xv, c, p1[m]);
          }
        }
        for (; k < k1; ++k) {  // a K that is not a multiple of the vector width
          for (int m = 0; m < kRows; ++m) {
            acc[m][0] += x[m * k_dim + k] * LoadScalarWeight<kType>(row_ptr(n), k) * f0;
            acc[m][1] += x[m * k_dim + k] * LoadScalarWeight<kType>(row_ptr(n1), k) * f1;
          }
        }
        const VF v0 = hn::Set(df, f0), v1 = hn::Set(df, f1);
        for (int m = 0; m < kRows; ++m) {
          t0[m] = hn::MulAdd(p0[m], v0, t0[m]);
          t1[m] = hn::MulAdd(p1[m], v1, t1[m]);
        }
      }
      for (int m = 0; m < kRows; ++m) {
        acc[m][0] += hn::GetLane(hn::SumOfLanes(df, t0[m]));
        acc[m][1] += hn::GetLane(hn::SumOfLanes(df, t1[m]));
      }
    } else {
      DotRange<kType, kRows>(x, k_dim, row_ptr(n), row_ptr(n1), 0, k_dim, acc);
    }
    for (int m = 0; m < kRows; ++m) {
      y[m * ldy + n] = acc[m][0];
      if (n1 != n) y[m * ldy + n1] = acc[m][1];
    }
  }
}

// bf16 without shuffles: a u32 lane holds the pair (2i, 2i+1); `<< 16` makes element 2i
// an f32 and `& 0xffff0000` element 2i+1. x comes deinterleaved: xe[j] = x[2j], xo[j] =
// x[2j+1], per row of x, each row k_dim/2 long.
// How far ahead of the loads the bf16 kernel prefetches, in u32 (bf16 pairs).
constexpr int64_t kPrefetchU32 = 256;

// kW weight rows per pass. One row keeps each thread on a single sequential stream, which
// the hardware prefetcher follows best, but loads x once per weight vector; four rows
// share each x load, for x too large for L1 (long rows).
template <int kRows, int kW>
void GemvBf16Pairs(const uint16_t* w, const float* xe, const float* xo, const float* x,
                   int64_t k_dim, int64_t n_begin, int64_t n_end, float* y, int64_t ldy) {
  const DF df;
  const hn::RebindToUnsigned<DF> du;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t half = k_dim / 2;
  const int64_t vec_end = (half / lanes) * lanes;  // pairs handled by vectors
  const auto hi_mask = hn::Set(du, 0xffff0000u);
  for (int64_t n = n_begin; n < n_end; n += kW) {
    const uint32_t* wr[kW];
    for (int r = 0; r < kW; ++r) {
      const int64_t row = n + r < n_end ? n + r : n_end - 1;  // a short tail repeats its last row
      wr[r] = reinterpret_cast<const uint32_t*>(w + row * k_dim);
    }
    // Independent accumulator chains hide the FMA latency: kU vectors per step (one weight
    // row has only one chain otherwise) and, while registers allow, even and odd apart.
    constexpr int kU = kW == 1 ? 2 : 1;
    constexpr int kS = kRows * kW * kU <= 4 ? 2 : 1;
    VF acc[kU][kS][kRows][kW];
    for (int u = 0; u < kU; ++u) {
      for (int sp = 0; sp < kS; ++sp) {
        for (int m = 0; m < kRows; ++m) {
          for (int r = 0; r < kW; ++r) acc[u][sp][m][r] = hn::Zero(df);
        }
      }
    }
    auto step = [&](int u, int64_t j) HWY_ATTR {
      VF even[kW], odd[kW];
      for (int r = 0; r < kW; ++r) {
        __builtin_prefetch(wr[r] + j + kPrefetchU32);
        const auto v = hn::LoadU(du, wr[r] + j);
        even[r] = hn::BitCast(df, hn::ShiftLeft<16>(v));
        odd[r] = hn::BitCast(df, hn::And(v, hi_mask));
      }
      for (int m = 0; m < kRows; ++m) {
        const VF e = hn::LoadU(df, xe + m * half + j);
        const VF o = hn::LoadU(df, xo + m * half + j);
        for (int r = 0; r < kW; ++r) {
          if constexpr (kS == 2) {
            acc[u][0][m][r] = hn::MulAdd(e, even[r], acc[u][0][m][r]);
            acc[u][1][m][r] = hn::MulAdd(o, odd[r], acc[u][1][m][r]);
          } else {
            acc[u][0][m][r] = hn::MulAdd(o, odd[r], hn::MulAdd(e, even[r], acc[u][0][m][r]));
          }
        }
      }
    };
    int64_t j = 0;
    for (; j + kU * lanes <= vec_end; j += kU * lanes) {
      for (int u = 0; u < kU; ++u) step(u, j + u * lanes);
    }
    for (; j < vec_end; j += lanes) step(0, j);
    for (int m = 0; m < kRows; ++m) {
      for (int r = 0; r < kW; ++r) {
        for (int u = 0; u < kU; ++u) {
          for (int sp = 0; sp < kS; ++sp) {
            if (u != 0 || sp != 0) acc[0][0][m][r] = hn::Add(acc[0][0][m][r], acc[u][sp][m][r]);
          }
        }
      }
    }
    for (int m = 0; m < kRows; ++m) {
      for (int r = 0; r < kW && n + r < n_end; ++r) {
        float sum = hn::GetLane(hn::SumOfLanes(df, acc[0][0][m][r]));
        const uint16_t* row = reinterpret_cast<const uint16_t*>(wr[r]);
        for (int64_t k = 2 * vec_end; k < k_dim; ++k) sum += x[m * k_dim + k] * Bf16ToF32(row[k]);
        y[m * ldy + n + r] = sum;
      }
    }
  }
}

// kN weight rows times kM x rows (x rows m0..m0+kM-1) over the vector steps [j0, j1), added
// to the partial sums part[r] + m * lanes (zeros first when `first`). Even halves of all kN
// rows, then odd halves: each x vector loaded once serves kN weight rows, and kN x kM
// accumulators take two FMAs a step each. Odd halves by two shifts, so no mask register:
// 3 x 4 fills AVX2's 16 registers (12 sums, 3 weights, 1 x).
template <int kN, int kM>
HWY_INLINE void Bf16Tile(const uint32_t* const* wr, const float* xb, int rows, int m0, int64_t j0,
                         int64_t j1, float* const* part, bool first, const char* const* ahead) {
  const DF df;
  const hn::RebindToUnsigned<DF> du;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  VF acc[kN][kM];
  for (int r = 0; r < kN; ++r) {
    for (int m = 0; m < kM; ++m) acc[r][m] = first ? hn::Zero(df) : hn::Load(df, part[r] + (m0 + m) * lanes);
  }
  for (int64_t j = j0; j < j1; j += lanes) {
    if (ahead != nullptr) {
      for (int r = 0; r < kN; ++r) __builtin_prefetch(ahead[r] + 4 * j, 0, 2);
    }
    const float* xj = xb + (j * rows + m0 * lanes) * 2;
    VF wv[kN];
    for (int r = 0; r < kN; ++r) wv[r] = hn::BitCast(df, hn::ShiftLeft<16>(hn::LoadU(du, wr[r] + j)));
    for (int m = 0; m < kM; ++m) {
      const VF e = hn::LoadU(df, xj + 2 * m * lanes);
      for (int r = 0; r < kN; ++r) acc[r][m] = hn::MulAdd(e, wv[r], acc[r][m]);
    }
    for (int r = 0; r < kN; ++r) {
      wv[r] = hn::BitCast(df, hn::ShiftLeft<16>(hn::ShiftRight<16>(hn::LoadU(du, wr[r] + j))));
    }
    for (int m = 0; m < kM; ++m) {
      const VF o = hn::LoadU(df, xj + (2 * m + 1) * lanes);
      for (int r = 0; r < kN; ++r) acc[r][m] = hn::MulAdd(o, wv[r], acc[r][m]);
    }
  }
  for (int r = 0; r < kN; ++r) {
    for (int m = 0; m < kM; ++m) hn::Store(acc[r][m], df, part[r] + (m0 + m) * lanes);
  }
}

// The batched bf16 kernel's K blocks (pairs whose x, up to 16 KB, stays in L1) and its tiles
// of weight rows (whose partial sums stay in L1).
constexpr int64_t kPairsPerBlock = 256;
constexpr int64_t kTileRows = 15;

// kN weight rows from n, all kRows x rows, over the vector steps [j0, j1) of block j0: x
// rows 0-3, then the rest while the weights are still in L1. The first pass prefetches
// what these rows will need next: their next block, or after their last block the rows one
// tile further on.
template <int kRows, int kN>
HWY_INLINE void Bf16Rows(const uint16_t* w, const float* xb, int64_t k_dim, int64_t n, int64_t tile_begin,
                         int64_t n_end, int64_t j0, int64_t j1, bool last_block, float* part) {
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(DF()));
  const uint32_t* wr[kN];
  const char* ahead[kN];
  float* pn[kN];
  for (int r = 0; r < kN; ++r) {
    wr[r] = reinterpret_cast<const uint32_t*>(w + (n + r) * k_dim);
    const int64_t next_row = n + r + kTileRows < n_end ? n + r + kTileRows : n + r;
    ahead[r] = last_block ? reinterpret_cast<const char*>(w + next_row * k_dim) - 4 * j0
                          : reinterpret_cast<const char*>(wr[r]) + 4 * kPairsPerBlock;
    pn[r] = part + (n + r - tile_begin) * kRows * lanes;
  }
  Bf16Tile<kN, (kRows < 4 ? kRows : 4)>(wr, xb, kRows, 0, j0, j1, pn, j0 == 0, ahead);
  if constexpr (kRows > 4) Bf16Tile<kN, kRows - 4>(wr, xb, kRows, 4, j0, j1, pn, j0 == 0, nullptr);
}

// From 4 rows of x the blocked kernel below beats GemvBf16Pairs (both weight shapes, 2
// threads, AVX2); with 2 or 3 rows it wins on one shape and loses on the other.
constexpr int64_t kBlockedMinRows = 4;

// 4 to 8 rows of x at once for bf16 weights, for CPUs without a bf16 dot instruction
// (batched decode: each weight row is read from memory once for all rows). `xb` is x in
// PrepareBf16Impl's layout. K runs in blocks of kPairsPerBlock pairs whose x (up to 16 KB)
// stays in L1 while the kTileRows weight rows of a tile pass it, three at a time; each
// (weight row, x row) carries a vector of partial sums from block to block (in L1), then
// one horizontal sum. A tile is finished before the next starts, so the sums never leave
// L1 and the weights stream from memory once, prefetched a block ahead.
template <int kRows>
void GemvBf16Blocked(const uint16_t* w, const float* xb, const float* x, int64_t k_dim, int64_t n_begin,
                     int64_t n_end, float* y, int64_t ldy) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t half = k_dim / 2;
  const int64_t vec_end = (half / lanes) * lanes;
  HWY_ALIGN float part[kTileRows * kRows * (HWY_MAX_BYTES / sizeof(float))];
  for (int64_t t0 = n_begin; t0 < n_end; t0 += kTileRows) {
    const int64_t t1 = t0 + kTileRows < n_end ? t0 + kTileRows : n_end;
    for (int64_t j0 = 0; j0 < vec_end; j0 += kPairsPerBlock) {
      const int64_t j1 = j0 + kPairsPerBlock < vec_end ? j0 + kPairsPerBlock : vec_end;
      int64_t n = t0;
      for (; n + 3 <= t1; n += 3) {
        Bf16Rows<kRows, 3>(w, xb, k_dim, n, t0, n_end, j0, j1, j1 == vec_end, part);
      }
      // The last one or two rows: two rows still make eight independent sums (one row's
      // four, each two dependent FMAs a step, wait on the FMA latency).
      if (t1 - n == 2) {
        Bf16Rows<kRows, 2>(w, xb, k_dim, n, t0, n_end, j0, j1, j1 == vec_end, part);
      } else if (t1 - n == 1) {
        Bf16Rows<kRows, 1>(w, xb, k_dim, n, t0, n_end, j0, j1, j1 == vec_end, part);
      }
    }
    for (int64_t n = t0; n < t1; ++n) {
      const uint16_t* row = w + n * k_dim;
      for (int m = 0; m < kRows; ++m) {
        const float* pm = part + ((n - t0) * kRows + m) * lanes;
        float sum = vec_end > 0 ? hn::GetLane(hn::SumOfLanes(df, hn::Load(df, pm))) : 0.0f;
        for (int64_t k = 2 * vec_end; k < k_dim; ++k) sum += x[m * k_dim + k] * Bf16ToF32(row[k]);
        y[m * ldy + n] = sum;
      }
    }
  }
}

// x laid out for the bf16 kernels: up to 3 rows, each row's even elements (rows x k_dim / 2),
// then the odd ones; 4 to 8 rows, per vector step of pairs, 2 x rows vectors (row 0 even,
// row 0 odd, row 1 even, ...), pairs past the last whole vector left out.
// Returns the start of the layout in `storage`, 64-byte aligned (no vector load of it splits
// a cache line).
float* PrepareBf16Impl(const float* x, int64_t rows, int64_t k_dim, std::vector<float>* storage) {
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(DF()));
  const int64_t half = k_dim / 2;
  constexpr size_t kAlignFloats = 16;
  storage->resize(static_cast<size_t>(2 * rows * half) + kAlignFloats);
  const size_t misalign = (reinterpret_cast<uintptr_t>(storage->data()) / sizeof(float)) % kAlignFloats;
  float* const start = storage->data() + (misalign == 0 ? 0 : kAlignFloats - misalign);
  float* dst = start;
  if (rows < kBlockedMinRows) {
    for (int64_t m = 0; m < rows; ++m) {
      for (int64_t j = 0; j < half; ++j) {
        dst[m * half + j] = x[m * k_dim + 2 * j];
        dst[(rows + m) * half + j] = x[m * k_dim + 2 * j + 1];
      }
    }
    return start;
  }
  const int64_t vec_end = (half / lanes) * lanes;
  for (int64_t j = 0; j < vec_end; j += lanes) {
    float* step = dst + j * 2 * rows;
    for (int64_t m = 0; m < rows; ++m) {
      for (int64_t l = 0; l < lanes; ++l) {
        step[(2 * m) * lanes + l] = x[m * k_dim + 2 * (j + l)];
        step[(2 * m + 1) * lanes + l] = x[m * k_dim + 2 * (j + l) + 1];
      }
    }
  }
  return start;
}

void GemvBf16(const uint16_t* w, const float* prepared, const float* x, int64_t rows, int64_t k_dim,
              int64_t n_begin, int64_t n_end, float* y, int64_t ldy) {
  switch (rows < kBlockedMinRows ? 0 : rows) {
    case 4: return GemvBf16Blocked<4>(w, prepared, x, k_dim, n_begin, n_end, y, ldy);
    case 5: return GemvBf16Blocked<5>(w, prepared, x, k_dim, n_begin, n_end, y, ldy);
    case 6: return GemvBf16Blocked<6>(w, prepared, x, k_dim, n_begin, n_end, y, ldy);
    case 7: return GemvBf16Blocked<7>(w, prepared, x, k_dim, n_begin, n_end, y, ldy);
    case 8: return GemvBf16Blocked<8>(w, prepared, x, k_dim, n_begin, n_end, y, ldy);
    default: break;
  }
  const float* xe = prepared;
  const float* xo = prepared + rows * (k_dim / 2);
  const bool x_fits_l1 = rows * k_dim * static_cast<int64_t>(sizeof(float)) <= 16 * 1024;
  if (x_fits_l1) {
    switch (rows) {
      case 1: return GemvBf16Pairs<1, 1>(w, xe, xo, x, k_dim, n_begin, n_end, y, ldy);
      case 2: return GemvBf16Pairs<2, 1>(w, xe, xo, x, k_dim, n_begin, n_end, y, ldy);
      default: return GemvBf16Pairs<3, 1>(w, xe, xo, x, k_dim, n_begin, n_end, y, ldy);
    }
  }
  switch (rows) {
    case 1: return GemvBf16Pairs<1, 4>(w, xe, xo, x, k_dim, n_begin, n_end, y, ldy);
    case 2: return GemvBf16Pairs<2, 4>(w, xe, xo, x, k_dim, n_begin, n_end, y, ldy);
    default: return GemvBf16Pairs<3, 4>(w, xe, xo, x, k_dim, n_begin, n_end, y, ldy);
  }
}

// Rows [n_begin, n_end) of W in f32 (FP8: times each 128x128 block's scale), for the GEMM
// of prompts whose weight dtype the GEMM library does not take.
template <DType kType>
void DequantizeType(const void* w, const float* scale_inv, int64_t k_dim, int64_t n_begin, int64_t n_end,
                    float* out) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t k_blocks = (k_dim + kFp8BlockSize - 1) / kFp8BlockSize;
  const char* base = static_cast<const char*>(w);
  for (int64_t n = n_begin; n < n_end; ++n) {
    const void* row = base + n * k_dim * static_cast<int64_t>(DTypeSize(kType));
    float* o = out + (n - n_begin) * k_dim;
    for (int64_t k0 = 0; k0 < k_dim; k0 += kFp8BlockSize) {
      const int64_t k1 = k0 + kFp8BlockSize < k_dim ? k0 + kFp8BlockSize : k_dim;
      // LoadWeights gives FP8 times 2^-8; 2^8 goes back into the scale (exact: a power of two).
      float f = 1.0f;
      if constexpr (kType == DType::kF8E4M3) {
        f = scale_inv == nullptr
                ? 256.0f
                : scale_inv[(n / kFp8BlockSize) * k_blocks + k0 / kFp8BlockSize] * 256.0f;
      }
      const VF vf = hn::Set(df, f);
      int64_t k = k0;
      for (; k + lanes <= k1; k += lanes) {
        VF v = LoadWeights<kType>(df, row, k);
        if constexpr (kType == DType::kF8E4M3) v = hn::Mul(v, vf);
        hn::StoreU(v, df, o + k);
      }
      for (; k < k1; ++k) o[k] = LoadScalarWeight<kType>(row, k) * f;
    }
  }
}

void DequantizeImpl(DType dtype, const void* w, const float* scale_inv, int64_t k_dim, int64_t n_begin,
                    int64_t n_end, float* out) {
  switch (dtype) {
    case DType::kF32: return DequantizeType<DType::kF32>(w, scale_inv, k_dim, n_begin, n_end, out);
    case DType::kBF16: return DequantizeType<DType::kBF16>(w, scale_inv, k_dim, n_begin, n_end, out);
    case DType::kF16: return DequantizeType<DType::kF16>(w, scale_inv, k_dim, n_begin, n_end, out);
    case DType::kF8E4M3: return DequantizeType<DType::kF8E4M3>(w, scale_inv, k_dim, n_begin, n_end, out);
    default: return;
  }
}

template <DType kType>
void GemvType(const void* w, const float* scale_inv, const float* x, int64_t rows,
              int64_t k_dim, int64_t n_begin, int64_t n_end, float* y, int64_t ldy) {
  switch (rows) {
    case 1: return GemvRows<kType, 1>(w, scale_inv, x, k_dim, n_begin, n_end, y, ldy);
    case 2: return GemvRows<kType, 2>(w, scale_inv, x, k_dim, n_begin, n_end, y, ldy);
    case 3: return GemvRows<kType, 3>(w, scale_inv, x, k_dim, n_begin, n_end, y, ldy);
    default: return GemvRows<kType, 4>(w, scale_inv, x, k_dim, n_begin, n_end, y, ldy);
  }
}

void GemvImpl(DType dtype, const void* w, const float* scale_inv, const float* x, const float* bf16,
              int64_t rows, int64_t k_dim, int64_t n_begin, int64_t n_end, float* y, int64_t ldy) {
  if (rows > 4 && dtype != DType::kBF16) {  // the other dtypes' kernels take 4 rows at a time
    GemvImpl(dtype, w, scale_inv, x, nullptr, 4, k_dim, n_begin, n_end, y, ldy);
    return GemvImpl(dtype, w, scale_inv, x + 4 * k_dim, nullptr, rows - 4, k_dim, n_begin, n_end,
                    y + 4 * ldy, ldy);
  }
  switch (dtype) {
    case DType::kF32: return GemvType<DType::kF32>(w, scale_inv, x, rows, k_dim, n_begin, n_end, y, ldy);
    case DType::kBF16:
      return GemvBf16(static_cast<const uint16_t*>(w), bf16, x, rows, k_dim, n_begin, n_end, y, ldy);
    case DType::kF16: return GemvType<DType::kF16>(w, scale_inv, x, rows, k_dim, n_begin, n_end, y, ldy);
    case DType::kF8E4M3: return GemvType<DType::kF8E4M3>(w, scale_inv, x, rows, k_dim, n_begin, n_end, y, ldy);
    default: return;
  }
}

const char* TargetNameImpl() { return hwy::TargetName(HWY_TARGET); }

// Sum of n floats, four independent accumulators: a pure streaming read.
float SumImpl(const float* p, int64_t n) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  VF a = hn::Zero(df), b = a, c = a, d = a;
  int64_t i = 0;
  for (; i + 4 * lanes <= n; i += 4 * lanes) {
    a = hn::Add(a, hn::LoadU(df, p + i));
    b = hn::Add(b, hn::LoadU(df, p + i + lanes));
    c = hn::Add(c, hn::LoadU(df, p + i + 2 * lanes));
    d = hn::Add(d, hn::LoadU(df, p + i + 3 * lanes));
  }
  float total = hn::GetLane(hn::SumOfLanes(df, hn::Add(hn::Add(a, b), hn::Add(c, d))));
  for (; i < n; ++i) total += p[i];
  return total;
}

// 12 accumulators: FMA latency (4-5 cycles) x 2 pipes, with room to spare.
int64_t MultiplyAddImpl(int64_t iterations, float* sink) {
  const DF df;
  VF a[12];
  for (int i = 0; i < 12; ++i) a[i] = hn::Set(df, static_cast<float>(i));
  const VF b = hn::Set(df, 0.999f), c = hn::Set(df, 0.001f);
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < 12; ++i) a[i] = hn::MulAdd(a[i], b, c);
  }
  VF s = a[0];
  for (int i = 1; i < 12; ++i) s = hn::Add(s, a[i]);
  *sink = hn::GetLane(hn::SumOfLanes(df, s));
  return iterations * 12 * static_cast<int64_t>(hn::Lanes(df));
}

}  // namespace HWY_NAMESPACE
}  // namespace reasonrt::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace reasonrt::cpu {

// Honors RRT_CPU_DISABLE (see cpu_features.h) for the SIMD dispatch too, once.
void ApplyCpuOverrides() {
  static const bool done = [] {
    const CpuFeatures& f = GetCpuFeatures();
    int64_t disabled = 0;
    if (!f.avx512f || !f.avx512bw) disabled |= HWY_AVX3 | HWY_AVX3_DL;
    if (!f.avx2 || !f.fma) disabled |= HWY_AVX2;
    if (disabled != 0) hwy::DisableTargets(disabled);
    return true;
  }();
  (void)done;
}

HWY_EXPORT(GemvImpl);
HWY_EXPORT(PrepareBf16Impl);
HWY_EXPORT(DequantizeImpl);
HWY_EXPORT(TargetNameImpl);
HWY_EXPORT(SumImpl);
HWY_EXPORT(MultiplyAddImpl);

int64_t MultiplyAddLoop(int64_t iterations, float* sink) {
  ApplyCpuOverrides();
  return HWY_DYNAMIC_DISPATCH(MultiplyAddImpl)(iterations, sink);
}

float StreamSum(const float* p, int64_t n) {
  ApplyCpuOverrides();
  return HWY_DYNAMIC_DISPATCH(SumImpl)(p, n);
}

void DequantizeRows(DType dtype, const void* w, const float* scale_inv, int64_t k_dim, int64_t n_begin,
                    int64_t n_end, float* out) {
  HWY_DYNAMIC_DISPATCH(DequantizeImpl)(dtype, w, scale_inv, k_dim, n_begin, n_end, out);
}

void PrepareGemvInput(const float* x, int64_t rows, int64_t k_dim, bool for_bf16, GemvInput* out) {
  ApplyCpuOverrides();
  out->x = x;
  out->rows = rows;
  out->k_dim = k_dim;
  out->bf16 = for_bf16 ? HWY_DYNAMIC_DISPATCH(PrepareBf16Impl)(x, rows, k_dim, &out->storage) : nullptr;
}

void Gemv(DType dtype, const void* w, const float* scale_inv, const GemvInput& x, int64_t n_begin,
          int64_t n_end, float* y, int64_t ldy) {
  ApplyCpuOverrides();
  const float* bf16 = x.bf16;
  thread_local std::vector<float> local;  // an input not prepared for bf16: prepared here
  if (dtype == DType::kBF16 && bf16 == nullptr) {
    bf16 = HWY_DYNAMIC_DISPATCH(PrepareBf16Impl)(x.x, x.rows, x.k_dim, &local);
  }
  HWY_DYNAMIC_DISPATCH(GemvImpl)(dtype, w, scale_inv, x.x, bf16, x.rows, x.k_dim, n_begin, n_end, y, ldy);
}

const char* GemvTargetName() {
  ApplyCpuOverrides();
  return HWY_DYNAMIC_DISPATCH(TargetNameImpl)();
}

}  // namespace reasonrt::cpu
#endif
