// reasonrt/tensor.h: a typed, strided view of CPU or GPU memory, owning or borrowed.
//
// Basic usage:
//
//   // Own a new zeroed [2, 3] f32 tensor (64-byte aligned).
//   absl::StatusOr<reasonrt::TensorView> t = reasonrt::TensorView::Allocate(DType::kF32, {2, 3});
//   float* p = t->data_as<float>();                     // row-major, p[i * 3 + j]
//
//   // Borrow memory someone else owns (nothing is freed when the view goes away).
//   auto v = reasonrt::TensorView::Borrow(buf, DType::kBF16, {rows, cols});
//   reasonrt::TensorView row = *v.Slice(0, 5, 6);       // [1, cols], shares the memory
//
// A view is a small value: copying it copies the shape and shares the storage. Owning
// views keep their storage alive through a reference count (so do views of a mapped
// model file); borrowed views are valid only while the memory they point at is.
// Views are not synchronized: share them across threads only for reading.
#ifndef REASONRT_TENSOR_H_
#define REASONRT_TENSOR_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "reasonrt/dtype.h"
#include "reasonrt/export.h"

namespace reasonrt {

enum class DeviceType : uint8_t { kCpu = 0, kCuda = 1 };

struct Device {
  DeviceType type = DeviceType::kCpu;
  int index = 0;
  friend bool operator==(const Device&, const Device&) = default;
};

inline constexpr int kMaxTensorRank = 6;

class RRT_API TensorView {
 public:
  // An empty view: rank 0, no data.
  TensorView() = default;

  // A view of contiguous row-major memory that the caller owns and keeps alive.
  // `read_only` views return nullptr from mutable_data(). Shapes with more than
  // kMaxTensorRank dims or negative dims give InvalidArgument.
  static absl::StatusOr<TensorView> Borrow(void* data, DType dtype, absl::Span<const int64_t> shape,
                                           Device device = {});
  static absl::StatusOr<TensorView> BorrowReadOnly(const void* data, DType dtype,
                                                   absl::Span<const int64_t> shape,
                                                   Device device = {});

  // A view of strided memory (strides in elements, may be 0 for broadcasting).
  static absl::StatusOr<TensorView> BorrowStrided(void* data, DType dtype,
                                                  absl::Span<const int64_t> shape,
                                                  absl::Span<const int64_t> strides,
                                                  Device device = {});

  // A view that keeps `owner` alive as long as any copy of it exists (used for mapped
  // files and device buffers).
  static absl::StatusOr<TensorView> Shared(std::shared_ptr<const void> owner, const void* data,
                                           DType dtype, absl::Span<const int64_t> shape,
                                           bool read_only, Device device = {});

  // New zeroed, 64-byte aligned, contiguous CPU memory owned by the view.
  // ResourceExhausted when the size overflows or the allocation fails.
  static absl::StatusOr<TensorView> Allocate(DType dtype, absl::Span<const int64_t> shape);

  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  int rank() const { return rank_; }
  int64_t dim(int i) const { return dims_[i]; }
  int64_t stride(int i) const { return strides_[i]; }
  absl::Span<const int64_t> shape() const { return {dims_.data(), static_cast<size_t>(rank_)}; }
  absl::Span<const int64_t> strides() const {
    return {strides_.data(), static_cast<size_t>(rank_)};
  }
  int64_t num_elements() const;
  // Bytes spanned by the elements if the view is contiguous: num_elements * DTypeSize.
  int64_t byte_size() const { return num_elements() * static_cast<int64_t>(DTypeSize(dtype_)); }
  // Bytes from data() to one past the last element the view reaches, strides included (0
  // when it has no elements): byte_size() for a contiguous view, more for a strided one.
  int64_t span_bytes() const;
  bool is_contiguous() const;
  bool empty() const { return data_ == nullptr; }
  bool read_only() const { return read_only_; }

  const void* data() const { return data_; }
  // nullptr for read-only views (such as weights mapped from a file).
  void* mutable_data() const { return read_only_ ? nullptr : data_; }
  template <typename T>
  const T* data_as() const {
    return static_cast<const T*>(data_);
  }
  template <typename T>
  T* mutable_data_as() const {
    return static_cast<T*>(mutable_data());
  }

  // What keeps the memory alive (null for borrowed views). Device backends use it to
  // tell whether a weight they copied is still the same allocation.
  const std::shared_ptr<const void>& owner() const { return owner_; }

  // Same memory, new shape; needs a contiguous view and the same element count.
  absl::StatusOr<TensorView> Reshape(absl::Span<const int64_t> shape) const;
  // Elements [begin, end) of dimension `dim`; same rank.
  absl::StatusOr<TensorView> Slice(int dim, int64_t begin, int64_t end) const;
  // Index `i` of dimension 0, dropping that dimension.
  absl::StatusOr<TensorView> Select(int64_t i) const;
  // Dimensions `a` and `b` swapped (no copy; the result is strided).
  absl::StatusOr<TensorView> Transpose(int a, int b) const;

  // "bf16[2, 3]"
  std::string DebugString() const;

 private:
  static absl::StatusOr<TensorView> Make(void* data, DType dtype, absl::Span<const int64_t> shape,
                                         absl::Span<const int64_t> strides, bool read_only,
                                         Device device, std::shared_ptr<const void> owner);

  DType dtype_ = DType::kF32;
  Device device_;
  int rank_ = 0;
  bool read_only_ = false;
  std::array<int64_t, kMaxTensorRank> dims_{};
  std::array<int64_t, kMaxTensorRank> strides_{};
  void* data_ = nullptr;
  std::shared_ptr<const void> owner_;
};

// Formats a shape as "[2, 3]".
RRT_API std::string ShapeString(absl::Span<const int64_t> shape);

// Element count of `shape`, or an error if a dim is negative or the product overflows int64.
RRT_API absl::StatusOr<int64_t> CheckedNumElements(absl::Span<const int64_t> shape);

}  // namespace reasonrt

#endif  // REASONRT_TENSOR_H_
