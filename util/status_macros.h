// RETURN_IF_ERROR / ASSIGN_OR_RETURN, written once: Debian's Abseil 20220623 has no public
// status macros.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SHARDTX_CONCAT_INNER(a, b) a##b
#define SHARDTX_CONCAT(a, b) SHARDTX_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                    \
  do {                                           \
    ::absl::Status shardtx_status_ = (expr);     \
    if (!shardtx_status_.ok()) return shardtx_status_; \
  } while (0)

#define SHARDTX_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return std::move(tmp).status();      \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  SHARDTX_ASSIGN_OR_RETURN_IMPL(SHARDTX_CONCAT(shardtx_statusor_, __LINE__), lhs, expr)
