#include "reasonrt/tensor.h"

#include <limits>

#include "gtest/gtest.h"

namespace reasonrt {
namespace {

TEST(TensorViewTest, AllocateIsZeroedAlignedAndContiguous) {
  auto t = TensorView::Allocate(DType::kF32, {3, 5});
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->rank(), 2);
  EXPECT_EQ(t->num_elements(), 15);
  EXPECT_EQ(t->byte_size(), 60);
  EXPECT_TRUE(t->is_contiguous());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t->data()) % 64, 0u);
  for (int i = 0; i < 15; ++i) EXPECT_EQ(t->data_as<float>()[i], 0.0f);
  EXPECT_EQ(t->DebugString(), "f32[3, 5]");
}

TEST(TensorViewTest, CopiesShareStorageAndKeepItAlive) {
  TensorView copy;
  {
    auto t = TensorView::Allocate(DType::kI32, {4});
    ASSERT_TRUE(t.ok());
    t->mutable_data_as<int32_t>()[2] = 42;
    copy = *t;
  }
  EXPECT_EQ(copy.data_as<int32_t>()[2], 42);  // still valid: the copy owns the storage too
}

TEST(TensorViewTest, SliceSelectTransposeReshape) {
  auto t = TensorView::Allocate(DType::kF32, {4, 6});
  ASSERT_TRUE(t.ok());
  float* p = t->mutable_data_as<float>();
  for (int i = 0; i < 24; ++i) p[i] = static_cast<float>(i);

  auto rows = t->Slice(0, 1, 3);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->dim(0), 2);
  EXPECT_EQ(rows->data_as<float>()[0], 6.0f);
  EXPECT_TRUE(rows->is_contiguous());

  auto cols = t->Slice(1, 2, 4);
  ASSERT_TRUE(cols.ok());
  EXPECT_FALSE(cols->is_contiguous());
  EXPECT_EQ(cols->data_as<float>()[cols->stride(0) * 1 + 1], 9.0f);  // [1][3]

  auto row = t->Select(3);
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->rank(), 1);
  EXPECT_EQ(row->data_as<float>()[5], 23.0f);

  auto tr = t->Transpose(0, 1);
  ASSERT_TRUE(tr.ok());
  EXPECT_EQ(tr->dim(0), 6);
  EXPECT_EQ(tr->data_as<float>()[2 * tr->stride(0) + 1 * tr->stride(1)], 8.0f);  // t[1][2]
  EXPECT_FALSE(tr->Reshape({24}).ok());

  auto flat = t->Reshape({2, 12});
  ASSERT_TRUE(flat.ok());
  EXPECT_EQ(flat->data_as<float>()[13], 13.0f);
  EXPECT_FALSE(t->Reshape({5, 5}).ok());
}

TEST(TensorViewTest, SpanBytesCountsTheStridesAViewReaches) {
  auto t = TensorView::Allocate(DType::kBF16, {4, 6});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->span_bytes(), 48);
  EXPECT_EQ(t->span_bytes(), t->byte_size());
  auto cols = t->Slice(1, 2, 4);  // rows of 2 of the 6: [0][2] to [3][3]
  ASSERT_TRUE(cols.ok());
  EXPECT_EQ(cols->byte_size(), 16);
  EXPECT_EQ(cols->span_bytes(), (3 * 6 + 1 + 1) * 2);
  auto tr = t->Transpose(0, 1);  // the same elements in another order: the same span
  ASSERT_TRUE(tr.ok());
  EXPECT_EQ(tr->span_bytes(), 48);
  auto none = t->Slice(0, 2, 2);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->span_bytes(), 0);
}

TEST(TensorViewTest, BadShapesAndRangesAreErrors) {
  EXPECT_FALSE(TensorView::Allocate(DType::kF32, {-1, 2}).ok());
  EXPECT_FALSE(TensorView::Allocate(DType::kF32, {1, 1, 1, 1, 1, 1, 1}).ok());
  const int64_t big = std::numeric_limits<int64_t>::max() / 2;
  EXPECT_FALSE(TensorView::Allocate(DType::kF32, {big, 4}).ok());
  auto t = TensorView::Allocate(DType::kBF16, {2, 2});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->Slice(0, 1, 3).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(t->Slice(0, -1, 1).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_FALSE(t->Slice(2, 0, 1).ok());
  EXPECT_FALSE(t->Select(2).ok());
  EXPECT_FALSE(t->Transpose(0, 2).ok());
}

TEST(TensorViewTest, ReadOnlyViewsRefuseMutableAccess) {
  const float data[4] = {1, 2, 3, 4};
  auto v = TensorView::BorrowReadOnly(data, DType::kF32, {2, 2});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->mutable_data(), nullptr);
  EXPECT_EQ(v->data_as<float>()[3], 4.0f);
  EXPECT_TRUE(v->read_only());
  float buf[4];
  auto w = TensorView::Borrow(buf, DType::kF32, {4});
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->mutable_data(), buf);
}

}  // namespace
}  // namespace reasonrt
