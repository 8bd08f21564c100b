// tests/backends/cuda_emulation.h: just enough of CUDA on the host to run a block of a
// kernel written against a small set of features (sampling_kernel.cuh): one std::thread
// per CUDA thread of the block, the grid's blocks one at a time in a chosen order, a
// barrier for __syncthreads, a barrier per warp around each shuffle, shared variables as
// function statics, atomics through std::atomic_ref.
// It checks a kernel's logic, its synchronisation included, where there is no GPU; not its
// speed, nor anything about the device's arithmetic (expf here is glibc's). Under the
// sanitizers (scripts/sanitize.sh) it checks more: ThreadSanitizer reports two threads of a
// block that touch the same shared or global word with no barrier between them (a missing
// __syncthreads, which a GPU run may or may not show), and AddressSanitizer a read or write
// past a shared array or past the launch's dynamic shared memory (sized as the launch sizes
// it).
//
// Include before lib/backends/cuda/kernel_util.cuh (which then compiles for the host too)
// and the kernel's source, then run a grid with RunBlocks. Every thread of a block must
// reach every __syncthreads (as on a GPU) or the emulation deadlocks.
#ifndef REASONRT_TESTS_BACKENDS_CUDA_EMULATION_H_
#define REASONRT_TESTS_BACKENDS_CUDA_EMULATION_H_

#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

// cuda_runtime.h gives these meanings for nvcc only; here they are plain C++.
#undef __device__
#undef __global__
#undef __forceinline__
#undef __shared__
#undef __launch_bounds__
#undef __grid_constant__
#define __grid_constant__
#define __device__
#define __global__
#define __forceinline__ inline
#define __shared__ static  // one block runs at a time: a function static is its shared memory
#define __launch_bounds__(threads)
#define RRT_DYNAMIC_SHARED(type, name) type* name = ::cuda_emulation::DynamicShared<type>()

namespace cuda_emulation {
struct Index;
}

namespace cuda_emulation {

struct Index {
  unsigned x = 1, y = 1, z = 1;
};
}  // namespace cuda_emulation

// The built-in variables, as globals (this thread's indices; the launch's dimensions).
inline thread_local cuda_emulation::Index threadIdx{0, 0, 0}, blockIdx{0, 0, 0};
inline cuda_emulation::Index blockDim, gridDim;

namespace cuda_emulation {

inline std::barrier<>* block_barrier = nullptr;
inline std::barrier<>* warp_barriers[32] = {};
alignas(8) inline unsigned char shuffle_slots[32][32][8];

// The launch's dynamic shared memory (RRT_DYNAMIC_SHARED): RunBlocks's shared_bytes, on
// the heap and no larger, so that AddressSanitizer sees a kernel step past its end.
inline unsigned char* dynamic_shared = nullptr;
template <typename T>
T* DynamicShared() {
  return reinterpret_cast<T*>(dynamic_shared);
}

// The order RunBlocks runs a grid's blocks in. A GPU gives no order, so a kernel in which
// the last block to finish does something (a ticket) should come out the same in each:
// reversed, the block with the highest index runs first and block 0 takes the last ticket.
enum class BlockOrder { kForward, kReverse, kShuffled };
inline BlockOrder block_order = BlockOrder::kForward;

// Sets block_order for a scope.
class ScopedBlockOrder {
 public:
  explicit ScopedBlockOrder(BlockOrder order) : saved_(block_order) { block_order = order; }
  ~ScopedBlockOrder() { block_order = saved_; }
  ScopedBlockOrder(const ScopedBlockOrder&) = delete;
  ScopedBlockOrder& operator=(const ScopedBlockOrder&) = delete;

 private:
  BlockOrder saved_;
};

// The blocks' linear indices (x fastest) in block_order (kShuffled: a fixed permutation
// from a small linear congruential generator, the same on every run).
inline std::vector<unsigned> BlockSequence(unsigned count) {
  std::vector<unsigned> seq(count);
  for (unsigned b = 0; b < count; ++b) seq[b] = b;
  if (block_order == BlockOrder::kReverse) std::reverse(seq.begin(), seq.end());
  if (block_order == BlockOrder::kShuffled) {
    uint32_t state = 12345;
    for (unsigned i = count; i > 1; --i) {
      state = state * 1664525u + 1013904223u;
      std::swap(seq[i - 1], seq[(state >> 8) % i]);
    }
  }
  return seq;
}

// Runs `kernel` (a callable taking no arguments) as a grid of blocks_x * blocks_y * blocks_z blocks
// of `threads` threads (a multiple of 32, at most 1024), one block after another (in
// block_order) on the same threads, with `shared_bytes` of dynamic shared memory (the
// launch's third parameter).
inline void RunBlocks(unsigned blocks_x, unsigned threads, const std::function<void()>& kernel,
                      unsigned blocks_y = 1, unsigned blocks_z = 1, size_t shared_bytes = 0) {
  const std::vector<unsigned> sequence = BlockSequence(blocks_x * blocks_y * blocks_z);
  blockDim = Index{threads, 1, 1};
  gridDim = Index{blocks_x, blocks_y, blocks_z};
  std::unique_ptr<unsigned char[]> shared(new unsigned char[shared_bytes]);
  dynamic_shared = shared.get();
  std::barrier<> block(threads);
  std::vector<std::unique_ptr<std::barrier<>>> warps;
  for (unsigned w = 0; w < threads / 32; ++w) {
    warps.push_back(std::make_unique<std::barrier<>>(32));
    warp_barriers[w] = warps.back().get();
  }
  block_barrier = &block;
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      threadIdx = Index{t, 0, 0};
      for (unsigned b : sequence) {
        blockIdx = Index{b % blocks_x, b / blocks_x % blocks_y, b / (blocks_x * blocks_y)};
        kernel();
        block.arrive_and_wait();  // the block's end: its shared memory is the next one's
      }
    });
  }
  for (std::thread& t : pool) t.join();
  dynamic_shared = nullptr;
}

}  // namespace cuda_emulation

#define __syncthreads() ::cuda_emulation::block_barrier->arrive_and_wait()

template <typename T>
T __shfl_xor_sync(unsigned /*mask: the whole warp*/, T v, int lane_mask) {
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  std::memcpy(cuda_emulation::shuffle_slots[warp][lane], &v, sizeof(T));
  cuda_emulation::warp_barriers[warp]->arrive_and_wait();
  T r;
  std::memcpy(&r, cuda_emulation::shuffle_slots[warp][lane ^ static_cast<unsigned>(lane_mask)],
              sizeof(T));
  cuda_emulation::warp_barriers[warp]->arrive_and_wait();
  return r;
}
template <typename T>
T __shfl_up_sync(unsigned /*mask: the whole warp*/, T v, unsigned delta) {
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  std::memcpy(cuda_emulation::shuffle_slots[warp][lane], &v, sizeof(T));
  cuda_emulation::warp_barriers[warp]->arrive_and_wait();
  T r = v;
  if (lane >= delta) std::memcpy(&r, cuda_emulation::shuffle_slots[warp][lane - delta], sizeof(T));
  cuda_emulation::warp_barriers[warp]->arrive_and_wait();
  return r;
}
inline unsigned __ballot_sync(unsigned /*mask: the whole warp*/, bool predicate) {
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  cuda_emulation::shuffle_slots[warp][lane][0] = predicate ? 1 : 0;
  cuda_emulation::warp_barriers[warp]->arrive_and_wait();
  unsigned bits = 0;
  for (unsigned l = 0; l < 32; ++l)
    bits |= static_cast<unsigned>(cuda_emulation::shuffle_slots[warp][l][0]) << l;
  cuda_emulation::warp_barriers[warp]->arrive_and_wait();
  return bits;
}
inline int __ffs(unsigned x) { return x == 0 ? 0 : std::countr_zero(x) + 1; }
inline void __syncwarp() { cuda_emulation::warp_barriers[threadIdx.x / 32]->arrive_and_wait(); }
inline float __int_as_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}
inline float __uint_as_float(uint32_t u) { return __int_as_float(u); }
// Loads with cache hints: plain loads here.
template <typename T>
T __ldcs(const T* p) {
  return *p;
}
template <typename T>
T __ldcg(const T* p) {
  return *p;
}
inline unsigned atomicAdd(unsigned* p, unsigned v) {
  return std::atomic_ref<unsigned>(*p).fetch_add(v);
}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline uint32_t __float_as_uint(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}
inline float __fmul_rn(float a, float b) { return a * b; }  // build with -ffp-contract=off
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
  return std::atomic_ref<unsigned long long>(*p).fetch_add(v);
}
using std::isnan;
using std::min;


#endif  // REASONRT_TESTS_BACKENDS_CUDA_EMULATION_H_
