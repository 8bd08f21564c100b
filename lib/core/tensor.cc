// TensorView: shape bookkeeping and owning allocation.
#include "reasonrt/tensor.h"

#include <cstdlib>
#include <cstring>
#include <limits>

#include "lib/core/strings.h"
#include "absl/strings/str_join.h"

namespace reasonrt {

std::string ShapeString(absl::Span<const int64_t> shape) {
  return StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::StatusOr<int64_t> CheckedNumElements(absl::Span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return absl::InvalidArgumentError(StrCat("negative dim in shape ", ShapeString(shape)));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) {
      return absl::InvalidArgumentError(
          StrCat("element count of shape ", ShapeString(shape), " overflows"));
    }
    n *= d;
  }
  return n;
}

absl::StatusOr<TensorView> TensorView::Make(void* data, DType dtype,
                                            absl::Span<const int64_t> shape,
                                            absl::Span<const int64_t> strides, bool read_only,
                                            Device device, std::shared_ptr<const void> owner) {
  if (static_cast<int>(dtype) >= kNumDTypes) {
    return absl::InvalidArgumentError("tensor dtype out of range");
  }
  if (shape.size() > kMaxTensorRank) {
    return absl::InvalidArgumentError(
        StrCat("tensor rank ", shape.size(), " exceeds ", kMaxTensorRank));
  }
  auto n = CheckedNumElements(shape);
  if (!n.ok()) return n.status();
  if (!strides.empty() && strides.size() != shape.size()) {
    return absl::InvalidArgumentError("strides and shape differ in rank");
  }
  TensorView v;
  v.dtype_ = dtype;
  v.device_ = device;
  v.rank_ = static_cast<int>(shape.size());
  v.read_only_ = read_only;
  v.data_ = data;
  v.owner_ = std::move(owner);
  int64_t stride = 1;
  for (int i = v.rank_ - 1; i >= 0; --i) {
    v.dims_[i] = shape[i];
    v.strides_[i] = strides.empty() ? stride : strides[i];
    stride *= shape[i];
  }
  return v;
}

absl::StatusOr<TensorView> TensorView::Borrow(void* data, DType dtype,
                                              absl::Span<const int64_t> shape, Device device) {
  return Make(data, dtype, shape, {}, false, device, nullptr);
}

absl::StatusOr<TensorView> TensorView::BorrowReadOnly(const void* data, DType dtype,
                                                      absl::Span<const int64_t> shape,
                                                      Device device) {
  return Make(const_cast<void*>(data), dtype, shape, {}, true, device, nullptr);
}

absl::StatusOr<TensorView> TensorView::BorrowStrided(void* data, DType dtype,
                                                     absl::Span<const int64_t> shape,
                                                     absl::Span<const int64_t> strides,
                                                     Device device) {
  if (strides.size() != shape.size()) {
    return absl::InvalidArgumentError("strides and shape differ in rank");
  }
  return Make(data, dtype, shape, strides, false, device, nullptr);
}

absl::StatusOr<TensorView> TensorView::Shared(std::shared_ptr<const void> owner, const void* data,
                                              DType dtype, absl::Span<const int64_t> shape,
                                              bool read_only, Device device) {
  return Make(const_cast<void*>(data), dtype, shape, {}, read_only, device, std::move(owner));
}

absl::StatusOr<TensorView> TensorView::Allocate(DType dtype, absl::Span<const int64_t> shape) {
  auto n = CheckedNumElements(shape);
  if (!n.ok()) return n.status();
  const size_t elem = DTypeSize(dtype);
  if (*n > std::numeric_limits<int64_t>::max() / static_cast<int64_t>(elem) - 64) {
    return absl::ResourceExhaustedError(
        StrCat("tensor ", ShapeString(shape), " is too large to allocate"));
  }
  size_t bytes = static_cast<size_t>(*n) * elem;
  bytes = (bytes + 63) / 64 * 64;
  if (bytes == 0) bytes = 64;
  void* p = std::aligned_alloc(64, bytes);
  if (p == nullptr) {
    return absl::ResourceExhaustedError(
        StrCat("out of memory allocating ", bytes, " bytes for tensor ", ShapeString(shape)));
  }
  std::memset(p, 0, bytes);
  std::shared_ptr<const void> owner(p, [](const void* q) { std::free(const_cast<void*>(q)); });
  return Make(p, dtype, shape, {}, false, Device{}, std::move(owner));
}

int64_t TensorView::num_elements() const {
  int64_t n = 1;
  for (int i = 0; i < rank_; ++i) n *= dims_[i];
  return n;
}

int64_t TensorView::span_bytes() const {
  if (num_elements() == 0) return 0;
  int64_t last = 0;
  for (int i = 0; i < rank_; ++i) last += (dims_[i] - 1) * strides_[i];
  return (last + 1) * static_cast<int64_t>(DTypeSize(dtype_));
}

bool TensorView::is_contiguous() const {
  int64_t expected = 1;
  for (int i = rank_ - 1; i >= 0; --i) {
    if (dims_[i] != 1 && strides_[i] != expected) return false;
    expected *= dims_[i];
  }
  return true;
}

absl::StatusOr<TensorView> TensorView::Reshape(absl::Span<const int64_t> shape) const {
  if (!is_contiguous()) return absl::InvalidArgumentError("Reshape needs a contiguous tensor");
  auto n = CheckedNumElements(shape);
  if (!n.ok()) return n.status();
  if (*n != num_elements()) {
    return absl::InvalidArgumentError(StrCat("cannot reshape ", DebugString(), " to ",
                                                   ShapeString(shape)));
  }
  return Make(data_, dtype_, shape, {}, read_only_, device_, owner_);
}

absl::StatusOr<TensorView> TensorView::Slice(int dim, int64_t begin, int64_t end) const {
  if (dim < 0 || dim >= rank_) {
    return absl::InvalidArgumentError(StrCat("Slice dim ", dim, " out of range for ",
                                                   DebugString()));
  }
  if (begin < 0 || end < begin || end > dims_[dim]) {
    return absl::OutOfRangeError(StrCat("Slice [", begin, ", ", end, ") of dim ", dim,
                                              " out of range for ", DebugString()));
  }
  TensorView v = *this;
  v.dims_[dim] = end - begin;
  v.data_ = static_cast<char*>(data_) +
            begin * strides_[dim] * static_cast<int64_t>(DTypeSize(dtype_));
  return v;
}

absl::StatusOr<TensorView> TensorView::Select(int64_t i) const {
  if (rank_ == 0) return absl::InvalidArgumentError("Select on a rank-0 tensor");
  auto s = Slice(0, i, i + 1);
  if (!s.ok()) return s.status();
  TensorView v = *s;
  for (int d = 1; d < rank_; ++d) {
    v.dims_[d - 1] = dims_[d];
    v.strides_[d - 1] = strides_[d];
  }
  v.rank_ = rank_ - 1;
  return v;
}

absl::StatusOr<TensorView> TensorView::Transpose(int a, int b) const {
  if (a < 0 || b < 0 || a >= rank_ || b >= rank_) {
    return absl::InvalidArgumentError(StrCat("Transpose(", a, ", ", b, ") out of range for ",
                                                   DebugString()));
  }
  TensorView v = *this;
  std::swap(v.dims_[a], v.dims_[b]);
  std::swap(v.strides_[a], v.strides_[b]);
  return v;
}

std::string TensorView::DebugString() const {
  return StrCat(DTypeName(dtype_), ShapeString(shape()));
}

}  // namespace reasonrt
