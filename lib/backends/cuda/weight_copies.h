// lib/backends/cuda/weight_copies.h: the device copies of host weights that every cuda
// backend of the process shares (see InvalidateWeightCopies in reasonrt/backend.h).
#ifndef REASONRT_LIB_BACKENDS_CUDA_WEIGHT_COPIES_H_
#define REASONRT_LIB_BACKENDS_CUDA_WEIGHT_COPIES_H_

#include <cuda_runtime.h>

#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "lib/backends/cuda/status.h"
#include "lib/core/status_macros.h"
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
    FusedKey key{device, {}};
    int64_t rows = 0;
    for (const TensorView* p : parts) {
      key.parts.emplace_back(p->data(), static_cast<size_t>(p->span_bytes()));
      rows += p->dim(0);
    }
    const uint64_t generation = WeightCopiesGeneration();
    const std::vector<int64_t> shape = {rows, parts[0]->dim(1)};
    std::lock_guard<std::mutex> lock(mu_);
    auto it = fused_.find(key);
    if (it != fused_.end()) {
      bool same = it->second.generation == generation;
      for (size_t i = 0; i < parts.size() && same; ++i) {
        const std::weak_ptr<const void>& o = it->second.owners[i];
        same = !o.expired() && o.lock() == parts[i]->owner();
      }
      if (same) return FusedView(it->second.memory.get(), parts[0]->dtype(), shape, device);
      fused_.erase(it);
    }
    for (auto i = fused_.begin(); i != fused_.end();) {  // drop copies of freed weights
      bool expired = false;
      for (const auto& o : i->second.owners) expired = expired || o.expired();
      i = expired ? fused_.erase(i) : std::next(i);
    }
    size_t bytes = 0;
    for (const auto& [host, part_bytes] : key.parts) bytes += part_bytes;
    void* p = nullptr;
    RRT_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(device), "select device"));
    RRT_RETURN_IF_ERROR(CudaStatus(cudaMalloc(&p, bytes), "copy of fused weights"));
    std::shared_ptr<void> memory(p, [device](void* q) {
      cudaSetDevice(device);
      cudaFree(q);
    });
    size_t offset = 0;
    FusedEntry entry{{}, generation, memory};
    for (size_t i = 0; i < parts.size(); ++i) {
      RRT_RETURN_IF_ERROR(CudaStatus(cudaMemcpy(static_cast<char*>(p) + offset, parts[i]->data(),
                                                key.parts[i].second, cudaMemcpyHostToDevice),
                                     "upload weight"));
      offset += key.parts[i].second;
      entry.owners.push_back(parts[i]->owner());
    }
    fused_[key] = std::move(entry);
    *uploaded = true;
    return FusedView(p, parts[0]->dtype(), shape, device);
  }

  // The device copy of host view t (with an owner) on `device`; uploads on first use (and
  // then sets *uploaded).
  absl::StatusOr<TensorView> Find(const TensorView& t, int device, bool* uploaded) {
    const Key key{device, t.data(), static_cast<size_t>(t.span_bytes())};
    const uint64_t generation = WeightCopiesGeneration();
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end()) {
      const Entry& e = it->second;
      const bool same =
          !e.owner.expired() && e.owner.lock() == t.owner() && e.generation == generation;
      if (same) return View(t, e.memory.get(), device);
      entries_.erase(it);
    }
    for (auto i = entries_.begin(); i != entries_.end();) {  // drop copies of freed weights
      i = i->second.owner.expired() ? entries_.erase(i) : std::next(i);
    }
    void* p = nullptr;
    RRT_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(device), "select device"));
    RRT_RETURN_IF_ERROR(
        CudaStatus(cudaMalloc(&p, key.bytes), StrCat("copy of weight ", t.DebugString())));
    std::shared_ptr<void> memory(p, [device](void* q) {
      cudaSetDevice(device);
      cudaFree(q);
    });
    RRT_RETURN_IF_ERROR(
        CudaStatus(cudaMemcpy(p, t.data(), key.bytes, cudaMemcpyHostToDevice), "upload weight"));
    entries_[key] = Entry{t.owner(), generation, memory};
    *uploaded = true;
    return View(t, p, device);
  }

 private:
  struct Key {
    int device;
    const void* host;
    size_t bytes;
    bool operator<(const Key& o) const {
      return std::tie(device, host, bytes) < std::tie(o.device, o.host, o.bytes);
    }
  };
  struct Entry {
    std::weak_ptr<const void> owner;
    uint64_t generation;
    std::shared_ptr<void> memory;
  };
  struct FusedKey {
    int device;
    std::vector<std::pair<const void*, size_t>> parts;
    bool operator<(const FusedKey& o) const {
      return std::tie(device, parts) < std::tie(o.device, o.parts);
    }
  };
  struct FusedEntry {
    std::vector<std::weak_ptr<const void>> owners;
    uint64_t generation;
    std::shared_ptr<void> memory;
  };

  static absl::StatusOr<TensorView> FusedView(void* memory, DType dtype,
                                              const std::vector<int64_t>& shape, int device) {
    return TensorView::Borrow(memory, dtype, shape, Device{DeviceType::kCuda, device});
  }

  static absl::StatusOr<TensorView> View(const TensorView& t, void* memory, int device) {
    return TensorView::BorrowStrided(memory, t.dtype(), t.shape(), t.strides(),
                                     Device{DeviceType::kCuda, device});
  }

  std::mutex mu_;
  std::map<Key, Entry> entries_;
  std::map<FusedKey, FusedEntry> fused_;
};

}  // namespace reasonrt::cuda

#endif  // REASONRT_LIB_BACKENDS_CUDA_WEIGHT_COPIES_H_
