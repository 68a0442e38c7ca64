// Errors as values, the way every Berth component returns them.
//
// Debian builds Abseil with its own absl::string_view (not an alias of
// std::string_view), so Berth uses absl::string_view throughout.
//
// Debian's Abseil has no status macros; these are Berth's, defined once here.
//
//   absl::StatusOr<Row> Find(absl::string_view key) {
//     BERTH_RETURN_IF_ERROR(ValidateKey(key));
//     BERTH_ASSIGN_OR_RETURN(Statement stmt, db_.Prepare(kFindSql));
//     ...
//   }
//
// ErrnoStatus turns a failed syscall into the status whose code a client would
// expect (ENOENT → NotFound, EEXIST → AlreadyExists, ENOSPC → ResourceExhausted
// …) and a message in crun's style: `open "snapshots/42/fs": No such file or
// directory`.
#ifndef BERTH_BASE_STATUS_H_
#define BERTH_BASE_STATUS_H_

#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define BERTH_STATUS_CONCAT_INNER_(a, b) a##b
#define BERTH_STATUS_CONCAT_(a, b) BERTH_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define BERTH_RETURN_IF_ERROR(expr)                      \
  do {                                                   \
    if (absl::Status berth_status_ = (expr); !berth_status_.ok()) \
      return berth_status_;                              \
  } while (0)

// `lhs = value of expr` (an absl::StatusOr<T>), or returns its error.
#define BERTH_ASSIGN_OR_RETURN(lhs, expr) \
  BERTH_ASSIGN_OR_RETURN_IMPL_(BERTH_STATUS_CONCAT_(berth_statusor_, __LINE__), lhs, expr)

#define BERTH_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                 \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

namespace berth {

// The status for a syscall `op` on `object` that failed with `err` (an errno).
absl::Status ErrnoStatus(int err, absl::string_view op, absl::string_view object);

// The same, reading errno.
absl::Status ErrnoStatus(absl::string_view op, absl::string_view object);

}  // namespace berth

#endif  // BERTH_BASE_STATUS_H_
