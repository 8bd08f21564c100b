// lib/core/status_macros.h: early-return helpers for absl::Status and absl::StatusOr.
#ifndef REASONRT_LIB_CORE_STATUS_MACROS_H_
#define REASONRT_LIB_CORE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define RRT_RETURN_IF_ERROR(expr)                \
  do {                                           \
    const absl::Status rrt_status_ = (expr);     \
    if (!rrt_status_.ok()) return rrt_status_;   \
  } while (0)

#define RRT_CONCAT_INNER_(a, b) a##b
#define RRT_CONCAT_(a, b) RRT_CONCAT_INNER_(a, b)

// RRT_ASSIGN_OR_RETURN(auto x, MakeX());  or  RRT_ASSIGN_OR_RETURN(x, MakeX());
#define RRT_ASSIGN_OR_RETURN(lhs, expr) \
  RRT_ASSIGN_OR_RETURN_IMPL_(RRT_CONCAT_(rrt_statusor_, __LINE__), lhs, expr)
#define RRT_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()

#endif  // REASONRT_LIB_CORE_STATUS_MACROS_H_
