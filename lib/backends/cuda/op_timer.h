// lib/backends/cuda/op_timer.h: the cuda backend's per-operation GPU times (RRT_CUDA_OP_TIMES).
#ifndef REASONRT_LIB_BACKENDS_CUDA_OP_TIMER_H_
#define REASONRT_LIB_BACKENDS_CUDA_OP_TIMER_H_

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/backends/cuda/kernels.h"
#include "lib/core/strings.h"

namespace reasonrt::cuda {

// With RRT_CUDA_OP_TIMES set: each operation's GPU time (CUDA events around its work on the
// stream), summed per operation and phase (prompt: more than kMaxGemvRows rows; upload:
// calls that first copied a weight to the device) and printed to stderr when the backend
// goes. A diagnostic: the events and the periodic waits for them slow the run a little.
class OpTimer {
 public:
  explicit OpTimer(cudaStream_t stream) : stream_(stream) {}
  ~OpTimer() {
    Drain();
    std::vector<std::pair<std::string, Total>> rows(totals_.begin(), totals_.end());
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
    std::map<std::string, double> phase_ms;
    std::fprintf(stderr, "cuda op times (GPU, CUDA events):\n%-28s %9s %11s %9s\n", "op [phase]",
                 "calls", "total ms", "mean us");
    for (const auto& [name, t] : rows) {
      std::fprintf(stderr, "%-28s %9lld %11.3f %9.2f\n", name.c_str(),
                   static_cast<long long>(t.calls), t.ms, 1000.0 * t.ms / t.calls);
      phase_ms[name.substr(name.find('['))] += t.ms;
    }
    for (const auto& [phase, ms] : phase_ms)
      std::fprintf(stderr, "all %-24s %21.3f\n", phase.c_str(), ms);
  }

  cudaEvent_t Start() {
    cudaEvent_t e = nullptr;
    if (cudaEventCreate(&e) != cudaSuccess || cudaEventRecord(e, stream_) != cudaSuccess)
      return nullptr;
    return e;
  }

  void Stop(cudaEvent_t start, std::string_view op, int64_t rows, bool uploaded) {
    if (start == nullptr) return;
    cudaEvent_t stop = nullptr;
    if (cudaEventCreate(&stop) != cudaSuccess || cudaEventRecord(stop, stream_) != cudaSuccess) {
      cudaEventDestroy(start);
      return;
    }
    const char* phase = uploaded              ? " [upload]"
                        : rows < 0            ? " [-]"
                        : rows > kMaxGemvRows ? " [prompt]"
                                              : " [decode]";
    pending_.push_back({StrCat(op, phase), start, stop});
    if (pending_.size() >= 4096) Drain();
  }

 private:
  struct Pending {
    std::string name;
    cudaEvent_t start, stop;
  };
  struct Total {
    int64_t calls = 0;
    double ms = 0;
  };

  void Drain() {
    cudaStreamSynchronize(stream_);
    for (const Pending& p : pending_) {
      float ms = 0;
      if (cudaEventElapsedTime(&ms, p.start, p.stop) == cudaSuccess) {
        Total& t = totals_[p.name];
        ++t.calls, t.ms += ms;
      }
      cudaEventDestroy(p.start);
      cudaEventDestroy(p.stop);
    }
    pending_.clear();
  }

  cudaStream_t stream_;
  std::vector<Pending> pending_;
  std::map<std::string, Total> totals_;
};

}  // namespace reasonrt::cuda

#endif  // REASONRT_LIB_BACKENDS_CUDA_OP_TIMER_H_
