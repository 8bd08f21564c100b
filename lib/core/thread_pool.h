// lib/core/thread_pool.h: a fixed set of worker threads for data-parallel loops.
#ifndef REASONRT_LIB_CORE_THREAD_POOL_H_
#define REASONRT_LIB_CORE_THREAD_POOL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace reasonrt {

// Runs ParallelFor loops on `num_threads` threads (the caller's thread is one of them).
// ParallelFor calls are made by one thread at a time (a Session's); workers spin briefly
// between loops, then sleep, so back-to-back small loops (decode) stay cheap.
class ThreadPool {
 public:
  // 0: one thread per core.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) over disjoint chunks covering [0, n), each a multiple of `grain`
  // long (but the last), which the threads take dynamically. Returns when all are done.
  void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  // Calls fn(thread_index) once on each thread.
  void RunOnEachThread(const std::function<void(int)>& fn);

 private:
  void WorkerLoop(int index);
  void Dispatch(const std::function<void(int)>& job);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_;
  const std::function<void(int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  bool stop_ = false;
};

// Cores available to this process (sched_getaffinity), at least 1.
int AvailableCores();

}  // namespace reasonrt

#endif  // REASONRT_LIB_CORE_THREAD_POOL_H_
