// lib/backends/cuda/weight_copies.h: the device copies of host weights that every cuda
// backend of the process shares (see InvalidateWeightCopies in reasonrt/backend.h).
#ifndef REASONRT_LIB_BACKENDS_CUDA_WEIGHT_COPIES_H_
#define REASONRT_LIB_BACKENDS_CUDA_WEIGHT_COPIES_H_

#include <cuda_runtime.h>

#include <map>
#include <memory>
#include <mutex>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "lib/backends/cuda/status.h"
#include "lib/core/status_macros.h"
#include "lib/core/strings.h"
#include "reasonrt/backend.h"
#include "reasonrt/tensor.h"

namespace reasonrt::cuda {

// Host weights copied to a device, shared by every backend of the process. An entry is
// used while the host view's owner lives and no InvalidateWeightCopies() came after it.
class WeightCopies {
 public:
  static WeightCopies& Get() {
    static WeightCopies* copies = new WeightCopies();
    return *copies;
  }

  // One device matrix [sum of rows, k] holding host matrices parts[i] ([rows_i, k], same
  // dtype, contiguous, with owners) one after another, on `device`; uploads on first use
  // (and then sets *uploaded). It stands in for the parts' own copies (q, k and v as one
  // prompt GEMM), so that no weight is on the device twice.
  absl::StatusOr<TensorView> FindFused(absl::Span<const TensorView* const> parts, int device,
                                       bool* uploaded) {
    int64_t rows = 0;
    for (const TensorView* p : parts) rows += p->dim(0);
    RRT_ASSIGN_OR_RETURN(void* memory, Copy(parts, device, "copy of fused weights", uploaded));
    return TensorView::Borrow(memory, parts[0]->dtype(), {rows, parts[0]->dim(1)},
                              Device{DeviceType::kCuda, device});
  }

  // The device copy of host view t (with an owner) on `device`; uploads on first use (and
  // then sets *uploaded).
  absl::StatusOr<TensorView> Find(const TensorView& t, int device, bool* uploaded) {
    const TensorView* parts[] = {&t};
    RRT_ASSIGN_OR_RETURN(void* memory,
                         Copy(parts, device, StrCat("copy of weight ", t.DebugString()), uploaded));
    return TensorView::BorrowStrided(memory, t.dtype(), t.shape(), t.strides(),
                                     Device{DeviceType::kCuda, device});
  }

 private:
  // A copy is keyed by its device and its parts' host spans (one part: a weight's own copy).
  struct Key {
    int device;
    std::vector<std::pair<const void*, size_t>> parts;
    bool operator<(const Key& o) const {
      return std::tie(device, parts) < std::tie(o.device, o.parts);
    }
  };
  struct Entry {
    std::vector<std::weak_ptr<const void>> owners;
    uint64_t generation;
    std::shared_ptr<void> memory;
  };

  // The device memory holding the host spans of `parts` one after another: the entry made
  // earlier while every part's owner lives and no invalidation came since, else a new upload
  // (then *uploaded is set; `what` names it in an allocation error).
  absl::StatusOr<void*> Copy(absl::Span<const TensorView* const> parts, int device,
                             std::string_view what, bool* uploaded) {
    Key key{device, {}};
    size_t bytes = 0;
    for (const TensorView* p : parts) {
      key.parts.emplace_back(p->data(), static_cast<size_t>(p->span_bytes()));
      bytes += key.parts.back().second;
    }
    const uint64_t generation = WeightCopiesGeneration();
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end()) {
      bool same = it->second.generation == generation;
      for (size_t i = 0; i < parts.size() && same; ++i) {
        const std::weak_ptr<const void>& o = it->second.owners[i];
        same = !o.expired() && o.lock() == parts[i]->owner();
      }
      if (same) return it->second.memory.get();
      entries_.erase(it);
    }
    for (auto i = entries_.begin(); i != entries_.end();) {  // drop copies of freed weights
      bool expired = false;
      for (const auto& o : i->second.owners) expired = expired || o.expired();
      i = expired ? entries_.erase(i) : std::next(i);
    }
    void* p = nullptr;
    RRT_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(device), "select device"));
    RRT_RETURN_IF_ERROR(CudaStatus(cudaMalloc(&p, bytes), what));
    std::shared_ptr<void> memory(p, [device](void* q) {
      cudaSetDevice(device);
      cudaFree(q);
    });
    Entry entry{{}, generation, memory};
    size_t offset = 0;
    for (size_t i = 0; i < parts.size(); ++i) {
      RRT_RETURN_IF_ERROR(CudaStatus(cudaMemcpy(static_cast<char*>(p) + offset, parts[i]->data(),
                                                key.parts[i].second, cudaMemcpyHostToDevice),
                                     "upload weight"));
      offset += key.parts[i].second;
      entry.owners.push_back(parts[i]->owner());
    }
    entries_[key] = std::move(entry);
    *uploaded = true;
    return p;
  }

  std::mutex mu_;
  std::map<Key, Entry> entries_;
};

}  // namespace reasonrt::cuda

#endif  // REASONRT_LIB_BACKENDS_CUDA_WEIGHT_COPIES_H_
