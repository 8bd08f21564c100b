// The cuda backend's decode attention (lib/backends/cuda/attention_kernel.cuh) over split
// keys with the experimental merge by the last split to finish (a ticket per row and
// head), its source run on the host through tests/backends/cuda_emulation.h, against
// softmax(scale q.k) v in f64 over a paged cache: rows at different depths, grouped-query
// heads, more splits than some rows have keys for (empty splits), f32 and bf16 caches;
// the tickets back at zero for the next launch, and the same bits whichever split finishes
// last (the blocks one at a time forward and reversed, two at a time shuffled, four at a
// time). Tolerance 1e-5 (f32 cache) and 1e-5 of
// the largest value (bf16: the reference reads the same rounded cache). Each launch is a
// dependent one (cuda_emulation.h's ScopedPredecessor): the query and the cache are written
// only when the kernel waits for the kernels before.
// clang-format off
#include "tests/backends/cuda_emulation.h"
#include "lib/backends/cuda/kernel_util.cuh"
#include "lib/backends/cuda/attention_kernel.cuh"
// clang-format on

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "reasonrt/dtype.h"

namespace reasonrt::cuda {
namespace {

template <DType C>
void CheckMergedSplits(int64_t splits) {
  SCOPED_TRACE(std::string(DTypeName(C)) + " splits " + std::to_string(splits));
  const int64_t heads = 4, kv_heads = 2, dk = 64, dv = 48, blocks = 10;
  const float kScale = 0.125f;
  const std::vector<int32_t> tables = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  const std::vector<int32_t> table_offset = {0, 3};     // row 0: blocks 0-2; row 1: blocks 3-9
  const std::vector<int32_t> row_position = {37, 100};  // 38 and 101 keys
  const int64_t rows = 2;
  std::mt19937 rng(23);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> q(static_cast<size_t>(rows * heads * dk)),
      kf(static_cast<size_t>(blocks * 16 * kv_heads * dk)),
      vf(static_cast<size_t>(blocks * 16 * kv_heads * dv));
  for (float& v : q) v = u(rng);
  for (float& v : kf) v = u(rng);
  for (float& v : vf) v = u(rng);
  std::vector<char> k(kf.size() * DTypeSize(C)), v(vf.size() * DTypeSize(C));
  ConvertFromF32(C, kf.data(), k.data(), kf.size());
  ConvertFromF32(C, vf.data(), v.data(), vf.size());
  ConvertToF32(C, k.data(), kf.data(), kf.size());  // what the kernel reads
  ConvertToF32(C, v.data(), vf.data(), vf.size());
  // One launch in the given block order; the tickets are the same ones each time, so each
  // launch relies on the previous one's reset.
  std::vector<unsigned> counters(static_cast<size_t>(rows * heads), 0);
  auto launch = [&](cuda_emulation::BlockOrder order, unsigned at_once) {
    cuda_emulation::ScopedLaunch in_order(order, at_once);
    std::vector<float> out(static_cast<size_t>(rows * heads * dv), NAN);
    std::vector<float> partial(static_cast<size_t>(rows * heads * splits * (dv + 2)), NAN);
    // A dependent launch: the kernels before (the query's RoPE, the KV store) still write
    // the query and the cache until the attention waits for them.
    std::vector<float> q_in(q.size(), NAN);
    std::vector<char> k_in(k.size(), '\xff'), v_in(v.size(), '\xff');  // NaN in f32 and bf16
    cuda_emulation::ScopedPredecessor before([&] {
      std::copy(q.begin(), q.end(), q_in.begin());
      std::copy(k.begin(), k.end(), k_in.begin());
      std::copy(v.begin(), v.end(), v_in.begin());
      std::fill(out.begin(), out.end(), NAN);
    });
    AttentionArgs a{};
    a.q = q_in.data(), a.k = k_in.data(), a.v = v_in.data(), a.cache_dtype = C;
    a.tables = tables.data(), a.table_offset = table_offset.data(),
    a.row_position = row_position.data();
    a.out = out.data(), a.rows = rows, a.heads = heads, a.kv_heads = kv_heads, a.dk = dk, a.dv = dv;
    a.scale = kScale, a.splits = splits, a.partial = partial.data(),
    a.merge_counters = counters.data();
    cuda_emulation::RunBlocks(
        static_cast<unsigned>(rows), kAttentionWarps * kWarp, [&] { AttentionKernel<C, true>(a); },
        static_cast<unsigned>(heads), static_cast<unsigned>(splits),
        AttentionKernelShared(a, /*merge=*/true));
    for (unsigned c : counters) EXPECT_EQ(c, 0u);
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
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t* table = tables.data() + table_offset[r];
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t kvh = h / (heads / kv_heads);
      std::vector<double> score;
      double top = -INFINITY;
      for (int64_t p = 0; p <= row_position[r]; ++p) {
        const int64_t slot = int64_t{table[p / 16]} * 16 + p % 16;
        double dot = 0;
        for (int64_t d = 0; d < dk; ++d)
          dot += double(q[(r * heads + h) * dk + d]) * kf[(slot * kv_heads + kvh) * dk + d];
        score.push_back(dot * kScale);
        top = std::max(top, score.back());
      }
      double z = 0;
      for (double& s : score) z += (s = std::exp(s - top));
      for (int64_t d = 0; d < dv; ++d) {
        double want = 0;
        for (int64_t p = 0; p <= row_position[r]; ++p) {
          const int64_t slot = int64_t{table[p / 16]} * 16 + p % 16;
          want += score[p] / z * vf[(slot * kv_heads + kvh) * dv + d];
        }
        ASSERT_NEAR(out[(r * heads + h) * dv + d], want, 1e-5)
            << "row " << r << " head " << h << " dim " << d;
      }
    }
  }
}

TEST(AttentionKernelEmulationTest, LastSplitMergesTheSplits) {
  CheckMergedSplits<DType::kF32>(3);
  CheckMergedSplits<DType::kF32>(16);  // row 0 has keys for 13 of 16 splits
  CheckMergedSplits<DType::kBF16>(5);
}

}  // namespace
}  // namespace reasonrt::cuda
