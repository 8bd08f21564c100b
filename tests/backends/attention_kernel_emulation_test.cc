// The cuda backend's attention kernels over the paged cache (lib/backends/cuda/
// attention_kernel.cuh), their source run on the host through tests/backends/cuda_emulation.h,
// against softmax(scale q.k) v in f64 over the same cache (rows at different depths,
// grouped-query heads, f32 and bf16 caches; the reference reads the same rounded cache):
// - decode (AttentionKernel) with its keys split, merged by AttentionCombineKernel, or by
//   the experimental merge in the last split to finish (a ticket per row and head): the
//   tickets back at zero for the next launch, and the same bits whichever split finishes
//   last (the blocks one at a time forward and reversed, two at a time shuffled, four at a
//   time); more splits than some rows have keys for (empty splits);
// - MLA's absorbed decode (MlaDecodeKernel) over a latent cache (one kv head, the values
//   the keys' first dv dims), DeepSeek-V3's widths among them, a head tile part empty, a
//   row no sequence covers (left unwritten), one split or several;
// - the tiled prompt kernel (TiledAttentionKernel): two sequences' query rows in tiles of
//   up to 32, causal, one split of the keys or two.
// Tolerance 1e-5 absolute (every output is a weighted mean of values in [-1, 1]).
// And the KV store and the kernels around the tensor-core prompt path's GEMMs (gathering a
// sequence's keys, the query and output layouts, the causal softmax): the host's bits, or
// bf16's rounding of the f64 softmax.
// The decode kernels run as dependent launches (cuda_emulation.h's ScopedPredecessor): the
// query and the cache are written only when the kernel waits for the kernels before.
// clang-format off
#include "tests/backends/cuda_emulation.h"
#include "lib/backends/cuda/kernel_util.cuh"
#include "lib/backends/cuda/attention_kernel.cuh"
// clang-format on

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "reasonrt/dtype.h"

namespace reasonrt::cuda {
namespace {

// The cache's bytes for `values` in dtype c.
std::vector<char> CacheBytes(DType c, const std::vector<float>& values) {
  std::vector<char> bytes(values.size() * DTypeSize(c));
  ConvertFromF32(c, values.data(), bytes.data(), values.size());
  return bytes;
}

// Query rows over a paged cache of 16-slot blocks: each row reads the keys at positions
// [0, row_position] through its table (tables + table_offset[row]); a position of -1 is a
// row no sequence covers. With latent = true there is one kv head and no values: the
// first dv dims of each key are its value (MLA).
struct PagedCase {
  DType cache_dtype;
  int64_t heads, kv_heads, dk, dv;
  bool latent;
  std::vector<int32_t> tables, table_offset, row_position;
  std::vector<float> q, kf, vf;  // vf empty when latent; kf, vf as the cache rounds them
  std::vector<char> k, v;        // the cache in cache_dtype
  std::vector<float> q_in;       // what the kernels read: NaN until the predecessor runs
  std::vector<char> k_in, v_in;
  float scale;

  PagedCase(DType c, int64_t heads_, int64_t kv_heads_, int64_t dk_, int64_t dv_, bool latent_,
            std::vector<int32_t> tables_, std::vector<int32_t> offsets,
            std::vector<int32_t> positions)
      : cache_dtype(c),
        heads(heads_),
        kv_heads(kv_heads_),
        dk(dk_),
        dv(dv_),
        latent(latent_),
        tables(std::move(tables_)),
        table_offset(std::move(offsets)),
        row_position(std::move(positions)),
        scale(1.0f / std::sqrt(static_cast<float>(dk_))) {
    std::mt19937 rng(23);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    const int64_t slots = 16 * (*std::max_element(tables.begin(), tables.end()) + 1);
    q.resize(static_cast<size_t>(rows() * heads * dk));
    kf.resize(static_cast<size_t>(slots * kv_heads * dk));
    vf.resize(latent ? 0 : static_cast<size_t>(slots * kv_heads * dv));
    for (float& x : q) x = u(rng) * 2.0f;  // scores of a few units: softmax far from flat
    for (float& x : kf) x = u(rng);
    for (float& x : vf) x = u(rng);
    k = CacheBytes(c, kf), v = CacheBytes(c, vf);
    ConvertToF32(c, k.data(), kf.data(), kf.size());  // what the kernels read
    ConvertToF32(c, v.data(), vf.data(), vf.size());
    q_in.assign(q.size(), NAN);
    k_in.assign(k.size(), '\xff');  // NaN in f32 and bf16
    v_in.assign(v.size(), '\xff');
  }
  int64_t rows() const { return static_cast<int64_t>(row_position.size()); }

  // The kernels' arguments, writing `out` ([rows, heads, dv]).
  AttentionArgs Args(std::vector<float>& out) {
    AttentionArgs a{};
    a.q = q_in.data(), a.k = k_in.data(), a.v = latent ? nullptr : v_in.data();
    a.cache_dtype = cache_dtype;
    a.tables = tables.data(), a.table_offset = table_offset.data(),
    a.row_position = row_position.data();
    a.out = out.data(), a.rows = rows(), a.heads = heads, a.kv_heads = kv_heads, a.dk = dk,
    a.dv = dv, a.scale = scale;
    return a;
  }

  // The query and the cache where the kernels read them.
  void WriteInputs() {
    std::copy(q.begin(), q.end(), q_in.begin());
    std::copy(k.begin(), k.end(), k_in.begin());
    std::copy(v.begin(), v.end(), v_in.begin());
  }

  // The kernels before a dependent launch: they write the inputs, and NaN into the output
  // (whose memory they may have used), only when the launch waits.
  cuda_emulation::ScopedPredecessor Before(std::vector<float>& out) {
    return cuda_emulation::ScopedPredecessor([this, &out] {
      WriteInputs();
      std::fill(out.begin(), out.end(), NAN);
    });
  }

  // `out` against the f64 reference; rows of position -1 must be unwritten (NaN).
  void Expect(const std::vector<float>& out) const {
    for (int64_t r = 0; r < rows(); ++r) {
      for (int64_t h = 0; h < heads; ++h) {
        const float* got = out.data() + (r * heads + h) * dv;
        if (row_position[r] < 0) {
          for (int64_t d = 0; d < dv; ++d)
            ASSERT_TRUE(std::isnan(got[d])) << "uncovered row " << r << " written";
          continue;
        }
        const int32_t* table = tables.data() + table_offset[r];
        const int64_t kvh = h / (heads / kv_heads);
        std::vector<double> score;
        double top = -INFINITY;
        for (int64_t p = 0; p <= row_position[r]; ++p) {
          const int64_t slot = int64_t{table[p / 16]} * 16 + p % 16;
          double dot = 0;
          for (int64_t d = 0; d < dk; ++d)
            dot += double(q[(r * heads + h) * dk + d]) * kf[(slot * kv_heads + kvh) * dk + d];
          score.push_back(dot * scale);
          top = std::max(top, score.back());
        }
        double z = 0;
        for (double& s : score) z += (s = std::exp(s - top));
        for (int64_t d = 0; d < dv; ++d) {
          double want = 0;
          for (int64_t p = 0; p <= row_position[r]; ++p) {
            const int64_t slot = int64_t{table[p / 16]} * 16 + p % 16;
            want +=
                score[p] / z * (latent ? kf[slot * dk + d] : vf[(slot * kv_heads + kvh) * dv + d]);
          }
          ASSERT_NEAR(got[d], want, 1e-5) << "row " << r << " head " << h << " dim " << d;
        }
      }
    }
  }
};

// The decode case: row 0 at position 37 (blocks 0-2), row 1 at 100 (blocks 3-9).
PagedCase DecodeCase(DType c) {
  return PagedCase(c, 4, 2, 64, 48, false, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {0, 3}, {37, 100});
}

// AttentionCombineKernel over a.splits splits of a.partial (one block a row and head), as a
// dependent launch: the partials are there only when it waits for the attention kernel.
void Combine(AttentionArgs a) {
  const auto size = static_cast<size_t>(a.rows * a.heads * a.splits * (a.dv + 2));
  const std::vector<float> written(a.partial, a.partial + size);
  std::vector<float> partial(size, NAN);
  a.partial = partial.data();
  cuda_emulation::ScopedPredecessor before(
      [&] { std::copy(written.begin(), written.end(), partial.begin()); });
  cuda_emulation::RunBlocks(
      static_cast<unsigned>(a.rows), 128, [&] { AttentionCombineKernel(a); },
      static_cast<unsigned>(a.heads), 1, sizeof(float) * static_cast<size_t>(a.splits + 4));
}

template <DType C>
void CheckMergedSplits(int64_t splits) {
  SCOPED_TRACE(std::string(DTypeName(C)) + " splits " + std::to_string(splits));
  PagedCase c = DecodeCase(C);
  // One launch in the given block order; the tickets are the same ones each time, so each
  // launch relies on the previous one's reset.
  std::vector<unsigned> counters(static_cast<size_t>(c.rows() * c.heads), 0);
  auto launch = [&](cuda_emulation::BlockOrder order, unsigned at_once) {
    cuda_emulation::ScopedLaunch in_order(order, at_once);
    std::vector<float> out(static_cast<size_t>(c.rows() * c.heads * c.dv), NAN);
    std::vector<float> partial(static_cast<size_t>(c.rows() * c.heads * splits * (c.dv + 2)), NAN);
    const auto before = c.Before(out);
    AttentionArgs a = c.Args(out);
    a.splits = splits, a.partial = partial.data(), a.merge_counters = counters.data();
    cuda_emulation::RunBlocks(
        static_cast<unsigned>(a.rows), kAttentionWarps * kWarp,
        [&] { AttentionKernel<C, true>(a); }, static_cast<unsigned>(a.heads),
        static_cast<unsigned>(splits), AttentionKernelShared(a, /*merge=*/true));
    for (unsigned n : counters) EXPECT_EQ(n, 0u);
    return out;
  };
  const std::vector<float> out = launch(cuda_emulation::BlockOrder::kForward, 1);
  // Whichever split takes the last ticket, it merges the splits in the same order: the
  // same bits.
  for (auto [order, at_once] : cuda_emulation::kTicketLaunches) {
    SCOPED_TRACE("order " + std::to_string(static_cast<int>(order)) + ", " +
                 std::to_string(at_once) + " blocks at once");
    EXPECT_EQ(launch(order, at_once), out);
  }
  c.Expect(out);
}

// The default decode path: AttentionKernel writes the output (one split) or its splits'
// partials, which AttentionCombineKernel merges.
template <DType C>
void CheckCombinedSplits(int64_t splits) {
  SCOPED_TRACE(std::string(DTypeName(C)) + " splits " + std::to_string(splits));
  PagedCase c = DecodeCase(C);
  std::vector<float> out(static_cast<size_t>(c.rows() * c.heads * c.dv), NAN);
  std::vector<float> partial(static_cast<size_t>(c.rows() * c.heads * splits * (c.dv + 2)), 7.0f);
  AttentionArgs a = c.Args(out);
  a.splits = splits, a.partial = splits > 1 ? partial.data() : nullptr;
  {
    const auto before = c.Before(out);
    cuda_emulation::RunBlocks(
        static_cast<unsigned>(a.rows), kAttentionWarps * kWarp, [&] { AttentionKernel<C>(a); },
        static_cast<unsigned>(a.heads), static_cast<unsigned>(splits),
        AttentionKernelShared(a, /*merge=*/false));
  }
  if (splits > 1) Combine(a);
  c.Expect(out);
}

// MLA's absorbed decode over a latent cache: rows at positions 37 and 100 and a row no
// sequence covers, `heads` heads in tiles of kMlaHeads.
template <DType C>
void CheckMlaDecode(int64_t heads, int64_t dk, int64_t dv, int64_t splits) {
  SCOPED_TRACE(std::string(DTypeName(C)) + " heads " + std::to_string(heads) + " dk " +
               std::to_string(dk) + " dv " + std::to_string(dv) + " splits " +
               std::to_string(splits));
  PagedCase c(C, heads, 1, dk, dv, /*latent=*/true, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {0, 3, 0},
              {37, 100, -1});
  std::vector<float> out(static_cast<size_t>(c.rows() * heads * dv), NAN);
  // Finite garbage: a read of a partial no split wrote, or a merge of a row no sequence
  // covers, shows in the output.
  std::vector<float> partial(static_cast<size_t>(c.rows() * heads * splits * (dv + 2)), 7.0f);
  AttentionArgs a = c.Args(out);
  a.splits = splits, a.partial = splits > 1 ? partial.data() : nullptr;
  ASSERT_TRUE(UseMlaDecode(a));
  {
    const auto before = c.Before(out);
    cuda_emulation::RunBlocks(
        static_cast<unsigned>(a.rows), kMlaHeads * kWarp, [&] { MlaDecodeKernel<C>(a); },
        static_cast<unsigned>((heads + kMlaHeads - 1) / kMlaHeads), static_cast<unsigned>(splits),
        sizeof(float) * static_cast<size_t>(kMlaKeys * dk));
  }
  if (splits > 1) Combine(a);
  c.Expect(out);
}

// A prompt of two sequences: 40 query rows at positions 5-44 (blocks 0-2; 5 keys cached
// before) in tiles of 32 and 8, then 7 rows at positions 0-6 (block 3), causal; the keys
// in one split or in splits of 32 (kAttentionTileKeys). (The widths are ones
// TiledAttentionFits takes: dk <= 256 a multiple of 4, dv <= 128 a multiple of 32.)
template <DType C>
void CheckTiledPrompt(int64_t dk, int64_t dv, bool split) {
  SCOPED_TRACE(std::string(DTypeName(C)) + " dk " + std::to_string(dk) + " dv " +
               std::to_string(dv) + (split ? " split" : ""));
  std::vector<int32_t> offsets, positions;
  for (int32_t i = 0; i < 40; ++i) offsets.push_back(0), positions.push_back(5 + i);
  for (int32_t i = 0; i < 7; ++i) offsets.push_back(3), positions.push_back(i);
  PagedCase c(C, 4, 2, dk, dv, /*latent=*/false, {0, 1, 2, 3}, offsets, positions);
  const std::vector<int32_t> tiles = {0, 32, 32, 8, 40, 7};
  std::vector<float> out(static_cast<size_t>(c.rows() * c.heads * dv), NAN);
  AttentionArgs a = c.Args(out);
  a.tiles = tiles.data(), a.tile_count = 3;
  std::vector<float> partial;
  if (split) {  // 45 keys at most: two splits of 32
    a.tile_keys_per_split = kAttentionTileKeys, a.splits = 2;
    partial.assign(static_cast<size_t>(c.rows() * c.heads * a.splits * (dv + 2)), NAN);
    a.partial = partial.data();
  }
  c.WriteInputs();  // (not a dependent launch)
  cuda_emulation::RunBlocks(
      static_cast<unsigned>(a.tile_count), kTileThreads, [&] { TiledAttentionKernel<C>(a); },
      static_cast<unsigned>(a.heads), static_cast<unsigned>(a.splits), TiledAttentionShared(a));
  if (split) Combine(a);
  c.Expect(out);
}

// StoreRowsKernel and StoreKeysAndValuesKernel (as dependent launches): rows of keys (and
// values) into the cache rows of their slots, as the host converts them (the same bytes);
// the other rows untouched.
TEST(AttentionKernelEmulationTest, KvStoreWritesTheSlotsRows) {
  std::mt19937 rng(89);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const int64_t t = 3, kw = 64, vw = 48, slots_n = 10;
  const std::vector<int64_t> slots = {4, 0, 9};
  std::vector<float> k(static_cast<size_t>(t * kw)), v(static_cast<size_t>(t * vw));
  for (float& x : k) x = u(rng);
  for (float& x : v) x = u(rng);
  for (DType c : {DType::kF32, DType::kBF16}) {
    SCOPED_TRACE(DTypeName(c));
    const size_t size = DTypeSize(c);
    std::vector<char> k_cache(slots_n * kw * size, '\x7f'), v_cache(slots_n * vw * size, '\x7f');
    std::vector<float> k_in(k.size(), NAN), v_in(v.size(), NAN);
    auto before = [&] {
      std::copy(k.begin(), k.end(), k_in.begin());
      std::copy(v.begin(), v.end(), v_in.begin());
    };
    {
      cuda_emulation::ScopedPredecessor p(before);
      cuda_emulation::RunBlocks(static_cast<unsigned>((t * (kw + vw) + 255) / 256), 256, [&] {
        StoreKeysAndValuesKernel(k_in.data(), kw, k_cache.data(), v_in.data(), vw, v_cache.data(),
                                 t, slots.data(), c);
      });
    }
    std::vector<char> rows_only(slots_n * kw * size, '\x7f');
    std::fill(k_in.begin(), k_in.end(), NAN);
    {
      cuda_emulation::ScopedPredecessor p(before);
      cuda_emulation::RunBlocks(static_cast<unsigned>((t * kw + 255) / 256), 256, [&] {
        StoreRowsKernel(k_in.data(), t, kw, slots.data(), rows_only.data(), c);
      });
    }
    EXPECT_EQ(rows_only, k_cache);
    const std::vector<char> k_bytes = CacheBytes(c, k), v_bytes = CacheBytes(c, v);
    for (int64_t s = 0; s < slots_n; ++s) {
      const auto it = std::find(slots.begin(), slots.end(), s);
      for (auto [cache, bytes, w] :
           {std::tuple{&k_cache, &k_bytes, kw}, {&v_cache, &v_bytes, vw}}) {
        const size_t row = static_cast<size_t>(w) * size;
        const char* got = cache->data() + s * row;
        if (it == slots.end()) {
          ASSERT_TRUE(std::all_of(got, got + row, [](char b) { return b == '\x7f'; }))
              << "row " << s << " written";
        } else {
          ASSERT_TRUE(std::equal(got, got + row, bytes->data() + (it - slots.begin()) * row))
              << "slot " << s;
        }
      }
    }
  }
}

// The tensor-core prompt path's kernels around its GEMMs: GatherKeysKernel (a sequence's
// keys from the paged cache as bf16 rows), HeadsFirstKernel and RowsFirstKernel (queries
// heads-first in bf16, outputs back rows-first): the host's bits. CausalSoftmaxKernel: the
// weights of each query's first_keys + r keys (at most `keys`) within bf16's rounding of the
// f64 softmax, the masked keys and the padding to ld exactly 0.
TEST(AttentionKernelEmulationTest, TensorCorePromptHelpers) {
  std::mt19937 rng(97);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  {
    const int64_t width = 64, keys = 40;
    const std::vector<int32_t> table = {2, 0, 3};  // keys 0-15 in block 2, 16-31 in 0, 32-39 in 3
    std::vector<float> cache_f(static_cast<size_t>(4 * 16 * width));
    for (float& x : cache_f) x = u(rng);
    for (DType c : {DType::kF32, DType::kBF16}) {
      SCOPED_TRACE(DTypeName(c));
      const std::vector<char> cache = CacheBytes(c, cache_f);
      std::vector<uint16_t> dst(static_cast<size_t>(keys * width) + 8, 0x7fc1);
      auto* out = reinterpret_cast<__nv_bfloat16*>(dst.data());
      cuda_emulation::RunBlocks(static_cast<unsigned>((keys * width / 8 + 255) / 256), 256, [&] {
        if (c == DType::kBF16)
          GatherKeysKernel<DType::kBF16>(cache.data(), table.data(), keys, width, out);
        else
          GatherKeysKernel<DType::kF32>(cache.data(), table.data(), keys, width, out);
      });
      std::vector<float> cached(cache_f.size());
      ConvertToF32(c, cache.data(), cached.data(), cached.size());
      for (int64_t j = 0; j < keys; ++j) {
        const int64_t slot = int64_t{table[j / 16]} * 16 + j % 16;
        std::vector<uint16_t> want(static_cast<size_t>(width));
        ConvertFromF32(DType::kBF16, cached.data() + slot * width, want.data(), width);
        ASSERT_TRUE(std::equal(want.begin(), want.end(), dst.begin() + j * width)) << "key " << j;
      }
      ASSERT_EQ(dst[keys * width], 0x7fc1) << "written past the keys";
    }
  }
  {
    const int64_t rows = 5, heads = 3, d = 12;
    std::vector<float> q(static_cast<size_t>(rows * heads * d)), back(q.size(), NAN);
    for (float& x : q) x = u(rng);
    std::vector<uint16_t> hf(q.size());
    const auto blocks = static_cast<unsigned>((rows * heads * d / 4 + 255) / 256);
    cuda_emulation::RunBlocks(blocks, 256, [&] {
      HeadsFirstKernel(q.data(), rows, heads, d, reinterpret_cast<__nv_bfloat16*>(hf.data()));
    });
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t h = 0; h < heads; ++h) {
        std::vector<uint16_t> want(static_cast<size_t>(d));
        ConvertFromF32(DType::kBF16, q.data() + (r * heads + h) * d, want.data(), d);
        ASSERT_TRUE(std::equal(want.begin(), want.end(), hf.begin() + (h * rows + r) * d))
            << "row " << r << " head " << h;
      }
    }
    // RowsFirst takes [heads, rows, d] back to [rows, heads, d]: q read as heads-first.
    cuda_emulation::RunBlocks(blocks, 256,
                              [&] { RowsFirstKernel(q.data(), heads, rows, d, back.data()); });
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < d; ++i)
          ASSERT_EQ(back[(r * heads + h) * d + i], q[(h * rows + r) * d + i]);
  }
  {
    const int64_t heads = 2, rows = 7, keys = 10, ld = 16, first_keys = 5;
    std::vector<float> s(static_cast<size_t>(heads * rows * ld));
    for (float& x : s) x = u(rng) * 6.0f;
    for (int64_t i = 0; i < heads * rows; ++i)  // past `seen`: NaN, which must not be read
      for (int64_t j = std::min(keys, first_keys + i % rows); j < ld; ++j) s[i * ld + j] = NAN;
    std::vector<uint16_t> p(s.size(), 0x7fc1);
    cuda_emulation::RunBlocks(static_cast<unsigned>((heads * rows + 7) / 8), 8 * kWarp, [&] {
      CausalSoftmaxKernel(s.data(), reinterpret_cast<__nv_bfloat16*>(p.data()), heads * rows, rows,
                          keys, ld, first_keys);
    });
    std::vector<float> pf(p.size());
    ConvertToF32(DType::kBF16, p.data(), pf.data(), pf.size());
    for (int64_t i = 0; i < heads * rows; ++i) {
      const int64_t seen = std::min(keys, first_keys + i % rows);
      double top = -INFINITY, z = 0;
      for (int64_t j = 0; j < seen; ++j) top = std::max(top, double(s[i * ld + j]));
      for (int64_t j = 0; j < seen; ++j) z += std::exp(s[i * ld + j] - top);
      for (int64_t j = 0; j < ld; ++j) {
        const double want = j < seen ? std::exp(s[i * ld + j] - top) / z : 0.0;
        ASSERT_NEAR(pf[i * ld + j], want, want / 256 + 1e-7) << "row " << i << " key " << j;
        if (j >= seen) ASSERT_EQ(p[i * ld + j], 0) << "row " << i << " key " << j;
      }
    }
  }
}

TEST(AttentionKernelEmulationTest, LastSplitMergesTheSplits) {
  CheckMergedSplits<DType::kF32>(3);
  CheckMergedSplits<DType::kF32>(16);  // row 0 has keys for 13 of 16 splits
  CheckMergedSplits<DType::kBF16>(5);
}

TEST(AttentionKernelEmulationTest, CombineKernelMergesTheSplits) {
  CheckCombinedSplits<DType::kF32>(1);
  CheckCombinedSplits<DType::kF32>(16);
  CheckCombinedSplits<DType::kBF16>(5);
}

TEST(AttentionKernelEmulationTest, MlaDecodeReadsTheLatentCacheOncePerHeadTile) {
  CheckMlaDecode<DType::kBF16>(16, 576, 512, 1);  // DeepSeek-V3's latent widths
  CheckMlaDecode<DType::kBF16>(12, 576, 512, 4);  // a last head tile of 4: 4 warps idle
  CheckMlaDecode<DType::kF32>(8, 96, 64, 16);     // row 0 has keys for 13 of 16 splits
}

TEST(AttentionKernelEmulationTest, TiledPromptAttention) {
  CheckTiledPrompt<DType::kF32>(64, 64, false);
  CheckTiledPrompt<DType::kF32>(64, 64, true);
  CheckTiledPrompt<DType::kBF16>(128, 128, true);
  CheckTiledPrompt<DType::kBF16>(36, 32, false);  // dk a multiple of 4, not of 32
}

}  // namespace
}  // namespace reasonrt::cuda
