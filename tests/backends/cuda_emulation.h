// tests/backends/cuda_emulation.h: just enough of CUDA on the host to run a kernel
// written against a small set of features (sampling_kernel.cuh): one std::thread per CUDA
// thread of a block, the grid's blocks one at a time or a few at once (each on threads of
// its own) in a chosen order, a barrier for __syncthreads, a barrier per warp around each
// shuffle, a copy of each shared variable per running block, atomics through
// std::atomic_ref, and the kernel before a dependent launch (ScopedPredecessor).
// It checks a kernel's logic, its synchronisation included, where there is no GPU; not its
// speed, nor anything about the device's arithmetic (expf here is glibc's). Under the
// sanitizers (scripts/sanitize.sh) it checks more: ThreadSanitizer reports two threads that
// touch the same shared or global word with nothing ordering them: within a block a missing
// __syncthreads, across blocks a last block that reads another block's result before that
// block's ticket (either of which a GPU run may or may not show); AddressSanitizer a read or
// write past a shared array or past the launch's dynamic shared memory (sized as the
// launch sizes it).
//
// Include before lib/backends/cuda/kernel_util.cuh (which then compiles for the host too)
// and the kernel's source, then run a grid with RunBlocks. A kernel declares its shared
// variables with RRT_SHARED (kernel_util.cuh), not __shared__. Every thread of a block must
// reach every __syncthreads (as on a GPU) or the emulation deadlocks.
#ifndef REASONRT_TESTS_BACKENDS_CUDA_EMULATION_H_
#define REASONRT_TESTS_BACKENDS_CUDA_EMULATION_H_

#include <cuda_runtime.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <type_traits>
#include <utility>
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
// (__shared__ stays undefined: kernels use RRT_SHARED, a copy per running block.)
#define RRT_SHARED(type, name)                                      \
  static ::cuda_emulation::PerBlock<type> name##_per_running_block; \
  std::type_identity_t<type>& name = name##_per_running_block.Get()
#define __launch_bounds__(threads)
#define RRT_DYNAMIC_SHARED(type, name) type* name = ::cuda_emulation::DynamicShared<type>()

namespace cuda_emulation {

struct Index {
  unsigned x = 1, y = 1, z = 1;
};
}  // namespace cuda_emulation

// The built-in variables, as globals (this thread's indices; the launch's dimensions).
inline thread_local cuda_emulation::Index threadIdx{0, 0, 0}, blockIdx{0, 0, 0};
inline cuda_emulation::Index blockDim, gridDim;

namespace cuda_emulation {

// At most this many blocks run at once (concurrent_blocks; ScopedLaunch sets it).
constexpr unsigned kMaxConcurrentBlocks = 4;

// Sleeps while *word holds `value` (a futex); wakes every thread asleep on word.
inline void FutexWait(std::atomic<uint32_t>* word, uint32_t value) {
  static_assert(sizeof(std::atomic<uint32_t>) == 4, "a futex word");
  syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, value, nullptr, nullptr, 0);
}
inline void FutexWakeAll(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

// A barrier for `count` threads whose only shared state is its own: a count of arrivals
// and a phase, which the last thread to arrive advances; the others sleep on the phase
// word (a futex) until it moves. std::barrier would not do: it sleeps through a table of
// waiter pools shared by the whole process, whose atomics ThreadSanitizer takes as
// synchronisation between any two threads that meet in one of its entries, so blocks
// running at once would seem ordered where nothing orders them.
class Barrier {
 public:
  explicit Barrier(unsigned count) : count_(count) {}
  void arrive_and_wait() {
    const uint32_t phase = phase_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == count_) {
      arrived_.store(0, std::memory_order_relaxed);  // no one arrives again before the phase moves
      phase_.store(phase + 1, std::memory_order_release);
      FutexWakeAll(&phase_);
      return;
    }
    for (int i = 0; i < 32; ++i) {  // a few yields first: a barrier is often about to open
      if (phase_.load(std::memory_order_acquire) != phase) return;
      std::this_thread::yield();
    }
    while (phase_.load(std::memory_order_acquire) == phase) FutexWait(&phase_, phase);
  }

 private:
  const unsigned count_;
  std::atomic<unsigned> arrived_{0};
  std::atomic<uint32_t> phase_{0};
};

// What the threads of one running block share: its barriers, the warps' shuffle slots and
// the launch's dynamic shared memory (RRT_DYNAMIC_SHARED: RunBlocks's shared_bytes, on the
// heap and no larger, so that AddressSanitizer sees a kernel step past its end).
struct BlockState {
  BlockState(unsigned threads, size_t shared_bytes)
      : block(threads), dynamic_shared(new unsigned char[shared_bytes]) {
    for (unsigned w = 0; w < threads / 32; ++w) warps.push_back(std::make_unique<Barrier>(32));
  }
  Barrier block;
  std::vector<std::unique_ptr<Barrier>> warps;
  alignas(8) unsigned char shuffle_slots[32][32][8];
  uint32_t mma_slots[32][32][6];  // each warp's lanes' mma operands (MmaBf16)
  std::unique_ptr<unsigned char[]> dynamic_shared;
};

// This thread's block: its state, and which of the concurrent blocks it is (0 to
// kMaxConcurrentBlocks - 1), which picks its copy of each static shared variable.
inline thread_local BlockState* block_state = nullptr;
inline thread_local unsigned block_slot = 0;

template <typename T>
T* DynamicShared() {
  return reinterpret_cast<T*>(block_state->dynamic_shared.get());
}

// A static shared variable (RRT_SHARED): one copy per concurrent block, each on the heap
// by itself, so that AddressSanitizer sees a step past it.
template <typename T>
class PerBlock {
 public:
  PerBlock() {
    for (auto& copy : copies_) copy = std::make_unique<Box>();
  }
  T& Get() { return copies_[block_slot]->value; }

 private:
  struct Box {
    T value;
  };
  std::unique_ptr<Box> copies_[kMaxConcurrentBlocks];
};

// The order RunBlocks hands out a grid's blocks in. A GPU gives no order, so a kernel in
// which the last block to finish does something (a ticket) should come out the same in
// each: reversed, the block with the highest index runs first and block 0 takes the last
// ticket.
enum class BlockOrder { kForward, kReverse, kShuffled };
inline BlockOrder block_order = BlockOrder::kForward;

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

// How many blocks RunBlocks runs at once (1 to kMaxConcurrentBlocks): one unless a test
// asks for more, as those of kernels whose blocks hand each other results do
// (kTicketLaunches); the others' blocks share nothing, and a run of 1024-thread blocks two
// at a time under ThreadSanitizer takes many times as long.
inline unsigned concurrent_blocks = 1;

// Sets block_order and concurrent_blocks for a scope.
class ScopedLaunch {
 public:
  ScopedLaunch(BlockOrder order, unsigned at_once)
      : saved_order_(block_order), saved_at_once_(concurrent_blocks) {
    block_order = order, concurrent_blocks = at_once;
  }
  ~ScopedLaunch() { block_order = saved_order_, concurrent_blocks = saved_at_once_; }
  ScopedLaunch(const ScopedLaunch&) = delete;
  ScopedLaunch& operator=(const ScopedLaunch&) = delete;

 private:
  BlockOrder saved_order_;
  unsigned saved_at_once_;
};

// A flag that opens once per launch; threads that wait on it sleep (a futex) until then.
class Gate {
 public:
  void Open() {
    open_.store(1, std::memory_order_release);
    FutexWakeAll(&open_);
  }
  void Wait() {
    while (open_.load(std::memory_order_acquire) == 0) FutexWait(&open_, 0);
  }
  void Close() { open_.store(0, std::memory_order_relaxed); }

 private:
  std::atomic<uint32_t> open_{0};
};

// Programmatic dependent launch. A kernel launched as a dependent one (the decode GEMV,
// every small decode kernel) may start while the kernel before it on the stream still
// runs: until its WaitForPredecessor it must not read what that kernel writes, nor write
// what that kernel reads or writes. A test checks this by giving RunBlocks the rest of the
// kernel before (ScopedPredecessor): what it still had to do when this launch started,
// typically writing this launch's inputs into memory the test filled with NaN, and NaN
// into its outputs. RunBlocks runs it once, on the first thread to reach
// WaitForPredecessor, and every thread's wait returns only after it has run (a launch that
// never waits runs it at its end). So a read of such memory before the wait sees NaN, a
// write before the wait is overwritten by NaN, and ThreadSanitizer reports either as a
// race with the predecessor where another thread ran it. Only the first blocks to run are
// checked that way; the kernels' blocks all run the same code.
struct Predecessor {
  std::function<void()> rest;  // none: the kernel before had finished (not a dependent launch)
  std::atomic<bool> claimed{false};
  Gate done;
};
inline Predecessor predecessor;

// Runs the predecessor's rest if no thread has yet, and returns once it has run.
inline void FinishPredecessor() {
  if (!predecessor.rest) return;
  // Relaxed: the threads that wait are ordered after the rest (by the gate), not after the
  // thread that ran it.
  if (!predecessor.claimed.exchange(true, std::memory_order_relaxed)) {
    predecessor.rest();
    predecessor.done.Open();
  } else {
    predecessor.done.Wait();
  }
}

// Sets predecessor.rest for a scope (every launch in it).
class ScopedPredecessor {
 public:
  explicit ScopedPredecessor(std::function<void()> rest) { predecessor.rest = std::move(rest); }
  ~ScopedPredecessor() { predecessor.rest = nullptr; }
  ScopedPredecessor(const ScopedPredecessor&) = delete;
  ScopedPredecessor& operator=(const ScopedPredecessor&) = delete;
};

// Besides blocks one at a time in order, the launches a kernel whose last block does
// something (a ticket) should give the same bits in: each block order, and blocks that
// overlap.
inline constexpr std::pair<BlockOrder, unsigned> kTicketLaunches[] = {
    {BlockOrder::kReverse, 1}, {BlockOrder::kShuffled, 2}, {BlockOrder::kForward, 4}};

// Runs `kernel` (a callable taking no arguments) as a grid of blocks_x * blocks_y *
// blocks_z blocks of `threads` threads (a multiple of 32, at most 1024), with `shared_bytes`
// of dynamic shared memory (the launch's third parameter). concurrent_blocks blocks run at
// once, each on threads of its own: slot s runs the blocks at s, s + concurrent_blocks, ...
// of the sequence block_order gives. Blocks that run at once really do overlap, so a
// kernel's blocks must not wait on one another (as on a GPU, where they may run in turn),
// and what they share through global memory is seen by ThreadSanitizer: a last block that
// reads another's partial with no barrier and ticket in between is a reported race.
inline void RunBlocks(unsigned blocks_x, unsigned threads, const std::function<void()>& kernel,
                      unsigned blocks_y = 1, unsigned blocks_z = 1, size_t shared_bytes = 0) {
  const std::vector<unsigned> sequence = BlockSequence(blocks_x * blocks_y * blocks_z);
  predecessor.claimed.store(false, std::memory_order_relaxed);
  predecessor.done.Close();
  blockDim = Index{threads, 1, 1};
  gridDim = Index{blocks_x, blocks_y, blocks_z};
  const unsigned slots = std::clamp(concurrent_blocks, 1u, kMaxConcurrentBlocks);
  std::vector<std::unique_ptr<BlockState>> states;
  for (unsigned s = 0; s < slots; ++s)
    states.push_back(std::make_unique<BlockState>(threads, shared_bytes));
  std::vector<std::thread> pool;
  for (unsigned s = 0; s < slots; ++s) {
    for (unsigned t = 0; t < threads; ++t) {
      pool.emplace_back([&, s, t] {
        block_state = states[s].get();
        block_slot = s;
        threadIdx = Index{t, 0, 0};
        for (size_t i = s; i < sequence.size(); i += slots) {
          const unsigned b = sequence[i];
          blockIdx = Index{b % blocks_x, b / blocks_x % blocks_y, b / (blocks_x * blocks_y)};
          kernel();
          // The block's end: its shared memory is the next one's.
          block_state->block.arrive_and_wait();
        }
        block_state = nullptr;
      });
    }
  }
  for (std::thread& t : pool) t.join();
  FinishPredecessor();  // if no thread waited for it
}

}  // namespace cuda_emulation

#define __syncthreads() ::cuda_emulation::block_state->block.arrive_and_wait()

template <typename T>
T __shfl_xor_sync(unsigned /*mask: the whole warp*/, T v, int lane_mask) {
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  std::memcpy(cuda_emulation::block_state->shuffle_slots[warp][lane], &v, sizeof(T));
  cuda_emulation::block_state->warps[warp]->arrive_and_wait();
  T r;
  std::memcpy(
      &r, cuda_emulation::block_state->shuffle_slots[warp][lane ^ static_cast<unsigned>(lane_mask)],
      sizeof(T));
  cuda_emulation::block_state->warps[warp]->arrive_and_wait();
  return r;
}
template <typename T>
T __shfl_up_sync(unsigned /*mask: the whole warp*/, T v, unsigned delta) {
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  std::memcpy(cuda_emulation::block_state->shuffle_slots[warp][lane], &v, sizeof(T));
  cuda_emulation::block_state->warps[warp]->arrive_and_wait();
  T r = v;
  if (lane >= delta)
    std::memcpy(&r, cuda_emulation::block_state->shuffle_slots[warp][lane - delta], sizeof(T));
  cuda_emulation::block_state->warps[warp]->arrive_and_wait();
  return r;
}
inline unsigned __ballot_sync(unsigned /*mask: the whole warp*/, bool predicate) {
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  cuda_emulation::block_state->shuffle_slots[warp][lane][0] = predicate ? 1 : 0;
  cuda_emulation::block_state->warps[warp]->arrive_and_wait();
  unsigned bits = 0;
  for (unsigned l = 0; l < 32; ++l)
    bits |= static_cast<unsigned>(cuda_emulation::block_state->shuffle_slots[warp][l][0]) << l;
  cuda_emulation::block_state->warps[warp]->arrive_and_wait();
  return bits;
}
// mma.sync.m16n8k16.row.col.f32.bf16.bf16.f32 (the kernels' MmaBf16, kernel_util.cuh's
// layout): every lane hands its A and B registers to the warp, then sums its four outputs'
// 16 products in f32, in k order (the hardware's order and rounding inside one mma are its
// own: a kernel's tolerance should not depend on them).
#define RRT_EMULATED_MMA
inline void MmaBf16(float c[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                    uint32_t b1) {
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  uint32_t(&slots)[32][6] = cuda_emulation::block_state->mma_slots[warp];
  const uint32_t mine[6] = {a0, a1, a2, a3, b0, b1};
  std::memcpy(slots[lane], mine, sizeof(mine));
  cuda_emulation::block_state->warps[warp]->arrive_and_wait();
  // Element (row, k) of A and (k, col) of B, from the lane and register that hold them.
  auto half = [](uint32_t pair, unsigned k) {
    const uint32_t bits = (k % 2 == 0 ? pair : pair >> 16) << 16;
    float v;
    std::memcpy(&v, &bits, sizeof(v));
    return v;
  };
  auto a = [&](unsigned row, unsigned k) {
    const unsigned reg = (row >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0);
    return half(slots[(row % 8) * 4 + (k % 8) / 2][reg], k);
  };
  auto b = [&](unsigned k, unsigned col) {
    return half(slots[col * 4 + (k % 8) / 2][k >= 8 ? 5 : 4], k);
  };
  const unsigned g = lane / 4, q = lane % 4;
  for (int i = 0; i < 4; ++i) {
    const unsigned row = g + (i >= 2 ? 8 : 0), col = 2 * q + i % 2;
    float sum = c[i];
    for (unsigned k = 0; k < 16; ++k) sum += a(row, k) * b(k, col);
    c[i] = sum;
  }
  cuda_emulation::block_state->warps[warp]->arrive_and_wait();  // the slots are reused
}
// griddepcontrol.wait: after the kernel before (RunBlocks's predecessor) has finished.
#define RRT_EMULATED_PDL
inline void WaitForPredecessor() { cuda_emulation::FinishPredecessor(); }
inline int __ffs(unsigned x) { return x == 0 ? 0 : std::countr_zero(x) + 1; }
inline void __syncwarp() {
  cuda_emulation::block_state->warps[threadIdx.x / 32]->arrive_and_wait();
}
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
using std::max;
using std::min;


#endif  // REASONRT_TESTS_BACKENDS_CUDA_EMULATION_H_
